//! [`Cluster`]: joining, on tokio.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use cluster_core::{DefaultPolicy, Policy};
use cluster_host::conn::IO_QUEUE;
use cluster_host::{Engine, JoinError, Options, setup};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc};

use crate::driver::{Clock, Driver as Inner, TokioIo};
use crate::handle::{COMMAND_QUEUE, EVENT_BUFFER, Handle};

/// Joins clusters on tokio. See the crate docs for an example.
#[derive(Debug, Clone, Copy)]
pub struct Cluster;

/// The task that owns a node, as a future: spawn it (or await it) for the node to run.
/// Aborting it stops the node without a disconnect, as a crash would.
#[must_use = "the node does nothing unless its driver is spawned or awaited"]
pub struct Driver {
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl Cluster {
    /// Joins with the default hooks (every query is answered with an empty `data`) and
    /// spawns the node's task on the current runtime.
    ///
    /// # Errors
    ///
    /// [`JoinError`] when the options are invalid, no hid is found, or a socket cannot be
    /// opened.
    pub async fn join(options: Options) -> Result<Handle, JoinError> {
        Self::join_with(options, DefaultPolicy).await
    }

    /// Joins with custom hooks (a [`Policy`]) and spawns the node's task on the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub async fn join_with<P>(options: Options, policy: P) -> Result<Handle, JoinError>
    where
        P: Policy + Send + 'static,
    {
        let (handle, driver) = Self::start(options, policy).await?;
        tokio::spawn(driver);
        Ok(handle)
    }

    /// Joins and returns the node's task as a [`Driver`] future for the caller to spawn:
    /// the join frames leave once it runs.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub async fn start<P>(options: Options, policy: P) -> Result<(Handle, Driver), JoinError>
    where
        P: Policy + Send + 'static,
    {
        let clock_start = tokio::time::Instant::now();
        let setup = setup(options, policy)?;
        let (engine, sockets) = Engine::from_setup(setup);
        let io = |what| move |source| JoinError::Io { what, source };
        let udp = UdpSocket::from_std(sockets.udp).map_err(io("multicast socket"))?;
        let tcp = sockets
            .tcp
            .map(TcpListener::from_std)
            .transpose()
            .map_err(io("TCP listener"))?;
        #[cfg(unix)]
        let unix = match sockets.unix {
            Some((listener, path)) => Some((
                tokio::net::UnixListener::from_std(listener).map_err(io("unix listener"))?,
                path,
            )),
            None => None,
        };
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events, first) = broadcast::channel(EVENT_BUFFER);
        let handle = Handle::new(
            commands_tx,
            *engine.node().sid(),
            *engine.node().hid(),
            first,
        );
        let (io_tx, io_rx) = mpsc::channel(IO_QUEUE);
        let io = TokioIo {
            udp,
            tcp,
            #[cfg(unix)]
            unix,
            events,
            io_tx,
            connect_timeout: sockets.options.connect_timeout,
            reopened: false,
            ready: std::sync::Arc::default(),
        };
        let driver = Inner::new(engine, io, Clock(clock_start), commands, io_rx);
        Ok((
            handle,
            Driver {
                inner: Box::pin(driver.run()),
            },
        ))
    }
}
