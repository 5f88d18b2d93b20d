//! [`Cluster`]: joining, on tokio.

use cluster_core::{DefaultPolicy, Policy};
use cluster_host::conn::IO_QUEUE;
#[cfg(unix)]
use cluster_host::socket::UnixSocket;
use cluster_host::{Driver, Engine, Handle, JoinError, Options, setup};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::driver::{Clock, Driver as Inner, TokioIo};

/// Joins clusters on tokio. See the crate docs for an example.
#[derive(Debug, Clone, Copy)]
pub struct Cluster;

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
        let (engine, sockets, handle) = Engine::from_setup(setup);
        let sockets = sockets.wrap(UdpSocket::from_std, TcpListener::from_std)?;
        #[cfg(unix)]
        let unix = UnixSocket::new(sockets.unix, tokio::net::UnixListener::from_std)
            .map_err(JoinError::io("unix listener"))?;
        let (io_tx, io_rx) = mpsc::channel(IO_QUEUE);
        let io = TokioIo {
            udp: sockets.udp,
            udp6: sockets.udp6,
            tcp: sockets.tcp,
            #[cfg(unix)]
            unix,
            io_tx,
            connect_timeout: sockets.options.connect_timeout,
            reopened: false,
            ready: std::sync::Arc::default(),
        };
        let driver = Inner::new(engine, io, Clock(clock_start), io_rx);
        Ok((handle, Driver::new(driver.run())))
    }
}
