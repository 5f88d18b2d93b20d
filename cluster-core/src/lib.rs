//! `cluster-core`: the sans-IO core of the `cluster` protocol.
//!
//! This crate holds the bpacket codec ([`wire`]) used by the Tcl package "cluster" (reference:
//! cluster 1.1.8 with bpacket 1.3.2), byte-for-byte compatible with it. It never performs I/O,
//! never reads a clock, never draws entropy and never allocates: decoding borrows from the
//! caller's bytes and encoding writes into the caller's buffer.
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | *(default)* | nothing: `no_std`, no allocator |
//! | `alloc` | conveniences that allocate, such as [`wire::Message::encode_to_vec`] |
//! | `std` | `alloc` |
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

mod config;
mod error;
mod event;
mod identity;
mod node;
mod policy;
mod protocol;
mod rng;
mod stats;
mod time;
mod transmit;
pub mod wire;

pub use config::{Config, ConfigError, MAX_CHANNELS};
pub use error::{DatagramError, QueryError, SendError};
pub use event::{Event, LostReason, Payload, QueryEvent, QueryId, Ruid};
pub use identity::{Hid, InlineStr, MAX_TAGS, Sid, Tag, TagList, is_mac_hid};
pub use node::{
    Node, QueryRequest, ResolveError, Resolver, ResolverSet, SendRequest, ServerNode, Service,
    TagError, TagOp, Targets, UnixPath, glob_match,
};
pub use policy::{
    DefaultPolicy, Outgoing, PayloadFull, PayloadMut, Policy, Refusal, Reply, Verdict,
};
pub use protocol::{Protocol, ProtocolList};
pub use stats::Stats;
pub use time::Instant;
pub use transmit::{ConnId, Destination, Endpoint, SendId, Source, Transmit};
