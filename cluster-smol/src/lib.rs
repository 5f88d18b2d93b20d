//! `cluster-smol`: will drive [`cluster_core`] on `async-io`, so that it runs under smol,
//! async-std or any executor.
//!
//! Nothing is implemented yet: the driver depends on the node state machine of `cluster-core`
//! and on the shared adapter pieces of `cluster-tokio`. Until then the crate only re-exports
//! the codec so that the workspace layout is in place.

pub use cluster_core::wire;
