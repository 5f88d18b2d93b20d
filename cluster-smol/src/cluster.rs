//! [`Cluster`]: joining, on any executor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_executor::Executor;
use async_io::Async;
use async_net::TcpListener;
use cluster_core::{DefaultPolicy, Policy};
use cluster_host::conn::IO_QUEUE;
use cluster_host::{Engine, JoinError, Options, setup};

use crate::driver::{Clock, Driver as Inner, SmolIo};
use crate::handle::{COMMAND_QUEUE, EVENT_BUFFER, Handle};

/// Joins clusters on `async-io`, from any executor. See the crate docs for examples.
#[derive(Debug, Clone, Copy)]
pub struct Cluster;

/// The task that owns a node, as a future: spawn it on your executor (or await it) for the
/// node to run. It is `Send` and `'static`, and needs no particular executor: it runs its
/// stream connections on a private task set inside itself, and its sockets and timers on
/// `async-io`'s reactor.
///
/// It completes once the node has left (every handle dropped, or [`Handle::leave`]) and
/// the connections have written what was queued on them (at most
/// [`Options::connect_timeout`] more). Dropping it before then stops the node without a
/// disconnect, as a crash would; the unix socket file is still removed.
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
    /// hands the node's [`Driver`] to `spawn`, which must run it to completion:
    ///
    /// * smol: `|driver| smol::spawn(driver).detach()`
    /// * async-std: `|driver| { async_std::task::spawn(driver); }`
    /// * a thread of its own: `|driver| { std::thread::spawn(|| futures_lite::future::block_on(driver)); }`
    ///
    /// (`spawn` returns `()`, so that a task handle that would cancel the driver when
    /// dropped, as smol's `Task`, cannot be dropped by mistake.)
    ///
    /// # Errors
    ///
    /// [`JoinError`] when the options are invalid, no hid is found, or a socket cannot be
    /// opened.
    pub async fn join(options: Options, spawn: impl FnOnce(Driver)) -> Result<Handle, JoinError> {
        Self::join_with(options, DefaultPolicy, spawn).await
    }

    /// Joins with custom hooks (a [`Policy`]) and hands the node's [`Driver`] to `spawn`
    /// (see [`join`](Self::join)).
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub async fn join_with<P>(
        options: Options,
        policy: P,
        spawn: impl FnOnce(Driver),
    ) -> Result<Handle, JoinError>
    where
        P: Policy + Send + 'static,
    {
        let (handle, driver) = Self::start(options, policy).await?;
        spawn(driver);
        Ok(handle)
    }

    /// Joins and returns the node's task as a [`Driver`] future for the caller to spawn or
    /// await: the join frames leave once it runs.
    ///
    /// Opening the sockets and building the node blocks for a moment (the node is built on
    /// a thread with a large stack), as in every adapter.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub async fn start<P>(options: Options, policy: P) -> Result<(Handle, Driver), JoinError>
    where
        P: Policy + Send + 'static,
    {
        let clock = Clock(std::time::Instant::now());
        let (engine, sockets) = Engine::<P, SmolIo>::from_setup(setup(options, policy)?);
        let io = |what| move |source| JoinError::Io { what, source };
        let udp = Async::new(sockets.udp).map_err(io("multicast socket"))?;
        let tcp = sockets
            .tcp
            .map(TcpListener::try_from)
            .transpose()
            .map_err(io("TCP listener"))?;
        #[cfg(unix)]
        let unix = match sockets.unix {
            Some((listener, path)) => Some((
                async_net::unix::UnixListener::try_from(listener).map_err(io("unix listener"))?,
                path,
            )),
            None => None,
        };
        let (commands_tx, commands) = async_channel::bounded(COMMAND_QUEUE);
        let (mut events, first) = async_broadcast::broadcast(EVENT_BUFFER);
        events.set_overflow(true);
        events.set_await_active(false);
        let (io_tx, io_rx) = async_channel::bounded(IO_QUEUE);
        let node = engine.node();
        let handle = Handle::new(commands_tx, *node.sid(), *node.hid(), first);
        let executor = Arc::new(Executor::new());
        let smol_io = SmolIo {
            udp,
            tcp,
            #[cfg(unix)]
            unix,
            events,
            io_tx,
            executor: Arc::clone(&executor),
            tasks: Vec::new(),
            connect_timeout: sockets.options.connect_timeout,
        };
        let driver = Inner::new(engine, smol_io, clock, commands, io_rx);
        let inner = async move { executor.run(driver.run()).await };
        Ok((
            handle,
            Driver {
                inner: Box::pin(inner),
            },
        ))
    }
}
