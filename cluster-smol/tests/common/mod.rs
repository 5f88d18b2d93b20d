//! Helpers of the socket tests: the executors a test runs under ([`Rt`], a
//! [`cluster_testkit::Runtime`]) and the suite's helpers (fresh ports, loopback options,
//! bounded waits).

#![allow(dead_code, unreachable_pub)]

use std::future::Future;

use cluster_core::Policy;
use cluster_smol::{Cluster, Driver, Handle, JoinError, Options};
pub use cluster_testkit::common::*;

/// The executor a test runs on: its body is blocked on, and its drivers spawned on, the same
/// runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// smol's `block_on` and global executor.
    Smol,
    /// async-std's `block_on` and global executor.
    AsyncStd,
    /// `futures_lite::future::block_on`, each driver on a thread of its own: no executor.
    BlockOn,
}

impl Runtime for Rt {
    fn run<F: Future>(self, body: F) -> F::Output {
        match self {
            Self::Smol => smol::block_on(body),
            Self::AsyncStd => async_std::task::block_on(body),
            Self::BlockOn => futures_lite::future::block_on(body),
        }
    }

    fn spawn(self, task: impl Future<Output = ()> + Send + 'static) {
        match self {
            Self::Smol => smol::spawn(task).detach(),
            Self::AsyncStd => {
                async_std::task::spawn(task);
            }
            Self::BlockOn => {
                std::thread::spawn(move || futures_lite::future::block_on(task));
            }
        }
    }

    async fn start<P: Policy + Send + 'static>(
        self,
        options: Options,
        policy: P,
    ) -> Result<(Handle, Driver), JoinError> {
        Cluster::start(options, policy).await
    }
}

/// smol, as a value for `adapter_suite!`.
pub const SMOL: Rt = Rt::Smol;
/// async-std, as a value for `adapter_suite!`.
pub const ASYNC_STD: Rt = Rt::AsyncStd;
