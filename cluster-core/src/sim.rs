//! The deterministic simulator (being written).
#![allow(missing_docs)]
mod rng;
