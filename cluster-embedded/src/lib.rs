//! `cluster-embedded`: will drive [`cluster_core`] on smoltcp for microcontrollers (no_std,
//! no allocator, static memory only).
//!
//! Nothing is implemented yet: the driver depends on the node state machine of `cluster-core`.
//! Until then the crate only re-exports the codec, and is built for `thumbv7em-none-eabihf`
//! by `.ci/run` to keep it honest about `no_std`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use cluster_core::wire;
