//! [`Cluster`]: joining, on any executor.

use std::sync::Arc;

use async_executor::Executor;
use async_io::Async;
use cluster_core::{DefaultPolicy, Policy};
use cluster_host::conn::IO_QUEUE;
#[cfg(unix)]
use cluster_host::socket::UnixSocket;
use cluster_host::{Driver, Engine, Handle, JoinError, Options, setup};

use crate::driver::{Clock, Driver as Inner, SmolIo};
use tracing::Instrument;

/// Joins clusters on `async-io`, from any executor. See the crate docs for examples.
#[derive(Debug, Clone, Copy)]
pub struct Cluster;

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
        let (engine, sockets, handle) = Engine::<P, SmolIo>::from_setup(setup(options, policy)?);
        let sockets = sockets.wrap(Async::new, Async::new)?;
        #[cfg(unix)]
        let unix =
            UnixSocket::new(sockets.unix, Async::new).map_err(JoinError::io("unix listener"))?;
        let (io_tx, io_rx) = async_channel::bounded(IO_QUEUE);
        let executor = Arc::new(Executor::new());
        let smol_io = SmolIo {
            udp: sockets.udp,
            udp6: sockets.udp6,
            tcp: sockets.tcp,
            #[cfg(unix)]
            unix,
            io_tx,
            executor: Arc::clone(&executor),
            tasks: Vec::new(),
            connect_timeout: sockets.options.connect_timeout,
            reopened: false,
            ready: Arc::default(),
        };
        let driver = Inner::new(engine, smol_io, clock, io_rx);
        let span = tracing::debug_span!("cluster_node", sid = %handle.sid());
        let inner = async move { executor.run(driver.run().instrument(span)).await };
        Ok((handle, Driver::new(inner)))
    }
}
