//! `cluster-host`: the runtime-independent half of the `cluster` adapters for hosted
//! platforms (Linux and other Unix systems with std).
//!
//! `cluster-tokio` and `cluster-smol` drive the same sans-IO [`cluster_core::Node`]; what does
//! not depend on the async runtime lives here, once:
//!
//! | module | what |
//! | --- | --- |
//! | [`socket`] | the multicast socket of `c` (`SO_REUSEADDR` + `SO_REUSEPORT`, TTL 0/1, loopback on, default interface with a loopback fallback), the `t` listener, the `u` listener |
//! | [`addrs`] | the host's addresses, cached and refreshed (spec 7.2 Q14) |
//! | [`hid`] | the default hid: eth0's MAC, else the first interface with one |
//! | [`seed`] | the node's seed from the OS |
//! | [`transports`] | stream-connection bookkeeping: ids, newest-wins routing, idle timeouts |
//! | [`options`] | [`Options`]: the node's `Config` plus group, port, interface, hid, paths, timeouts; durations like `500ms` |
//! | [`event`], [`request`] | owned events ([`Event`], [`QueryEvent`]) and requests ([`SendSpec`], [`QuerySpec`], [`TagEdit`]) |
//! | [`policy`] | [`Answer`]: reply the same text to every query |
//! | [`json`] | the JSON lines of `cluster join --json` |
//! | [`setup()`] | a join up to the runtime: options checked, hid found, sockets opened, node built |
//! | [`engine`] | [`Engine`]: the driver task's logic without the waiting (inputs, commands, the drain, failover, routing, listener refresh) behind the [`Io`] trait |
//! | [`conn`] | what connection tasks and the driver tell each other ([`IoEvent`], [`Outbound`], [`Target`]) |
//! | [`query`] | [`QueryOutcome`]: a query's news folded into one result |
//!
//! Every socket is returned as a non-blocking std socket, which each runtime wraps.
//!
//! ```
//! use cluster_host::{Options, Profile, parse_duration};
//! let options = Options::new(Profile::LanFast)
//!     .ttl(parse_duration("3s")?)
//!     .tag("web")?;
//! assert!(options.validate().is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod addrs;
pub mod conn;
mod duration;
pub mod engine;
mod error;
pub mod event;
pub mod hid;
pub mod json;
pub mod options;
pub mod policy;
pub mod query;
pub mod request;
pub mod seed;
mod setup;
pub mod socket;
pub mod transports;

pub use addrs::LocalAddrs;
pub use conn::{IoEvent, Outbound, Target};
pub use duration::{DurationError, format_duration, parse_duration};
pub use engine::{Engine, Io, Sockets, StartedQuery, Write};
pub use error::{CommandError, JoinError};
pub use event::{Event, Payload, QueryEvent, QuerySummary, ServiceInfo, Translated, translate};
pub use hid::{HidError, host_hid};
pub use options::{
    Options, OptionsError, Profile, parse_channels, parse_protocols, read_key_file, split_list,
    unix_socket_path,
};
pub use policy::Answer;
pub use query::QueryOutcome;
pub use request::{QuerySpec, Selector, SendSpec, TagEdit, with_tag_ops};
pub use seed::os_seed;
pub use setup::{Setup, setup};
pub use transports::{TransportStats, Transports};

/// The node the hosted adapters run: up to [`SERVICES`] services and payloads of up to
/// [`DATA`] bytes. It is about 540 KiB: adapters build it on a thread with a large stack and keep it in a
/// `Box`.
pub type HostNode<P> = cluster_core::Node<P, SERVICES, DATA>;

/// Services a hosted node knows at most.
pub const SERVICES: usize = 1024;
/// Largest application payload (`data` plus `raw`) of a hosted node, in bytes.
pub const DATA: usize = 8192;
