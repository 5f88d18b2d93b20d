//! `cluster-host`: the runtime-independent half of the `cluster` adapters for hosted
//! platforms (Linux and other Unix systems with std).
//!
//! `cluster-tokio` and `cluster-smol` drive the same sans-IO [`cluster_core::Node`]; what does
//! not depend on the async runtime lives here, once. That includes the **front half** every
//! host adapter shares: the [`Handle`] an application holds, its [`Events`] and
//! [`QueryStream`]s, the [`Command`]s it sends the driver task and their answers
//! ([`Engine::command`]), all on channels that work under every executor (tokio's `sync`
//! module, without its runtime: waiting on them allocates nothing). An adapter adds only its waiting loop, its connection I/O and its
//! spawning, and re-exports [`prelude`].
//!
//! | module | what |
//! | --- | --- |
//! | [`socket`] | the multicast socket of `c` (`SO_REUSEADDR` + `SO_REUSEPORT`, TTL 0/1, loopback on, default interface with a loopback fallback), the `t` listener, the `u` listener ([`UnixSocket`](socket::UnixSocket): its file removed on leave or drop) |
//! | [`interfaces`] | the host's interfaces, `--interface` / `--exclude-interface` choice, on which interface a peer was heard |
//! | [`multicast`] | [`Membership`](multicast::Membership): the interfaces the group is joined on and sent from, followed while running |
//! | [`metrics`] | [`NodeMetrics`](metrics::NodeMetrics): the node's counters, services, frames per transport and query latency as OpenMetrics (`prometheus-client`) |
//! | [`addrs`] | the host's addresses, cached and refreshed (spec 7.2 Q14) |
//! | [`hid`] | the default hid: eth0's MAC, else the first interface with one |
//! | [`seed`] | the node's seed from the OS |
//! | [`transports`] | stream-connection bookkeeping: ids, the bounded table, newest-wins routing, idle timeouts, each connection's reassembly buffer; [`TransportStats`] |
//! | [`options`] | [`Options`]: the node's `Config` plus group, port, interface, hid, paths, timeouts; durations like `500ms` |
//! | [`event`], [`request`] | owned events ([`Event`], [`QueryEvent`]) and requests ([`SendSpec`], [`QuerySpec`], [`TagEdit`]) |
//! | [`policy`] | [`Answer`]: reply the same text to every query |
//! | [`node_data`] | per-node data: the pairs services publish, parsed and kept for [`ServiceInfo`]; `data:KEY=VALUE` selectors |
//! | [`held`] | [`IncomingQueries`], [`IncomingQuery`], [`Responder`]: queries answered later |
//! | [`typed`] | typed messages end to end: [`Typed`](typed::Typed) values in `raw`, typed sends, queries, answers and event streams |
//! | [`json`] | the JSON lines of `cluster join --json`, and the `stats` line of every counter |
//! | [`packet`] | hex frames to JSON and back (`cluster decode`, `cluster encode`) |
//! | [`wakeups`] | [`Wakeups`](wakeups::Wakeups): which of a driver's sources woke it, each polled with a waker of its own |
//! | [`setup()`] | a join up to the runtime: options checked, hid found, sockets opened, node built |
//! | [`engine`] | [`Engine`]: the driver task's logic without the waiting (inputs, commands, the drain, failover, routing, listener refresh) behind the [`Io`] trait; the driving loop is in its docs |
//! | [`command`] | [`Command`]: what a handle asks of the driver, with its one-shot reply |
//! | `handle` | [`Handle`], [`Events`], [`Driver`] (the driver task as a future) and [`front()`], which makes a handle and the driver's ends of its channels |
//! | [`query`] | [`QueryStream`]: one query's answers as they come; [`QueryOutcome`]: folded into one result |
//! | [`conn`] | what connection tasks and the driver tell each other ([`IoEvent`], [`Outbound`], [`Target`]) |
//! | [`ready`], [`conn_read`] | the stream connections a driver reads itself: the list of those with bytes ([`Ready`](ready::Ready)) and one connection's turn of reads ([`read_turn`](conn_read::read_turn)) |
//! | [`prelude`] | what an adapter re-exports for its users |
//!
//! (`shared/STYLE.md` lists the front half here as the target layout; this table is the
//! layout as it is.)
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | *(default)* | nothing: plain frames, as the reference sends |
//! | `seal` | sealed frames (`cluster-core/seal`): `Options::keys` and `key_file`, `read_key_file`, `Handle::set_keys`, `Engine::set_keys`, the `keys` JSON line. The adapters turn it on through their own `seal` feature (`cluster-tokio`'s is on by default, for the `cluster` command) |
//!
//! Every socket is returned as a non-blocking std socket, which each runtime wraps.
//!
//! # Limits
//!
//! The node bounds its own containers (`cluster_core`'s crate docs, "Limits", counters in
//! [`cluster_core::Stats`]). The adapters add the bounds below, the same for `cluster-tokio`
//! and `cluster-smol` because the logic is the [`Engine`]'s; each has a counter in
//! [`TransportStats`], read with the handles' `stats()` or `cluster services --stats`.
//!
//! | what | bound (default) | when reached | counter |
//! | --- | --- | --- | --- |
//! | stream connections (`t` and `u`, accepted and outgoing, opening ones included) | [`Options::max_connections`] (256) | a new inbound connection is closed at once; an outgoing one takes the place of the least recently active connection no known service uses (none identified on it yet, then superseded ones), else its send fails over to the next protocol. A connection a known service's sends go over is never closed for a newcomer. (A peer refused this way fails over to multicast and may report our `t` as failing, which reopens our listener on a new port; open connections stay.) | `connections_refused`, `connections_evicted`, `connects_refused`; `connections_open` (gauge) |
//! | idle connections | [`Options::tcp_idle_timeout`] (120 s) without a whole frame either way; a superseded connection [`SUPERSEDED_IDLE`](transports::SUPERSEDED_IDLE) (10 s) | closed, the node told | `idle_closes` |
//! | a connection's reassembly buffer | [`STREAM_FRAME`](transports::STREAM_FRAME) (64 KiB), held only while a partial frame is pending | the frame is dropped as soon as its declared length is read; the stream resyncs on the next header (spec 7.3) | `stream_frames_oversized` |
//! | declared frame length | [`Config::max_frame_len`](cluster_core::Config::max_frame_len) (1 MiB) | the header is skipped and the stream resyncs | `stream_garbage_bytes` (every byte skipped) |
//! | frames that do not decode | — | dropped | `stream_decode_errors` |
//! | a connection's write queue | [`WRITE_QUEUE`](conn::WRITE_QUEUE) (64 frames) | the direct send fails at once and fails over | `writes_refused` (also in `writes_failed`) |
//! | connecting, and each write | [`Options::connect_timeout`] (2 s) | the send (and every frame queued behind it) fails over; the connection closes | `writes_failed` |
//! | direct sends in flight | one per service (the node's outbound table) | the node refuses the command | `sends_rejected` (node) |
//! | a multicast datagram the socket cannot take | one held-back transmit | nothing more is sent until the socket is writable: a wait, not a loss | — |
//! | news from connection tasks to the driver | [`IO_QUEUE`](conn::IO_QUEUE) (256) | the tasks wait (backpressure, no loss) | — |
//! | handle commands (sends queued with [`Handle::send_queued`] included) | [`COMMAND_QUEUE`] (64) | the caller waits (backpressure, no loss) | — (a queued send the node refuses: `queued_sends_refused`, and `Event::SendFailed`) |
//! | each event subscriber | [`Options::event_buffer`] ([`EVENT_BUFFER`], 1024; the `cluster` command 16,384) unread events | its oldest events are dropped and it gets `Event::Dropped { count }` first | `events_lagged` (counted by the handle) |
//! | a query's stream | one event per target, then `Done` (targets: at most [`SERVICES`]) | cannot overflow: the node sends nothing else for a query | — |
//! | recent datagrams remembered to drop their copies from other paths (followed interfaces) | [`copies::CAPACITY`] (256) within [`copies::WINDOW_MS`] (1 s), [`copies::PATHS`] (8) addresses each | the oldest is forgotten (a later copy of it would reach the node) | `datagram_copies` (copies dropped) |
//! | IPv6 link-local senders whose interface (scope) is remembered | 4096 | the list starts again; senders still heard are back within a heartbeat | — |
//! | a copy of a datagram on a second interface or over IPv6 that the socket cannot take | — | that copy is lost (the first interface's copy decides whether a datagram waits) | `datagrams_failed` |
//!
//! Memory therefore stays bounded whatever peers send: at most `max_connections`
//! reassembly buffers of 64 KiB (16 MiB at the default, only while each holds a partial
//! frame) and write queues of 64 frames each, whose total is bounded by the direct sends in
//! flight.
//!
//! # Keys
//!
//! With the `seal` feature, `Options::keys` (or `Options::key_file`, `read_key_file`) seals
//! every frame from the join on; `Engine::set_keys` (the handles' `set_keys`, `cluster join`'s
//! SIGHUP) changes the ring at run time, which is how keys rotate without downtime (see
//! `cluster_core::KeyRing`).
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
pub mod arrival;
pub mod command;
pub mod conn;
pub mod conn_read;
pub mod copies;
mod duration;
pub mod engine;
mod error;
pub mod event;
pub mod gateway;
mod handle;
pub mod held;
pub mod hid;
mod id_hash;
pub mod interfaces;
pub mod json;
pub mod metrics;
pub mod multicast;
pub mod node_data;
pub mod options;
pub mod packet;
pub mod policy;
pub mod prelude;
pub mod query;
mod query_inbox;
pub mod ready;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod recv_batch;
pub mod request;
pub mod seed;
pub mod seeds;
mod setup;
pub mod side_seal;
pub mod socket;
pub mod tap_args;
pub mod transports;
pub mod typed;
pub mod wakeups;

pub use addrs::LocalAddrs;
pub use command::{COMMAND_QUEUE, Command, Reply};
pub use conn::{IoEvent, Outbound, Target};
pub use duration::{DurationError, format_duration, parse_duration};
pub use engine::{Engine, Flow, Io, Sockets, Wrapped, Write};
pub use error::{CommandError, JoinError};
pub use event::{Event, Payload, QueryEvent, QuerySummary, ServiceInfo, Translated, translate};
pub use handle::{Driver, EVENT_BUFFER, Events, Front, Handle, front};
pub use held::{HeldAnswer, IncomingQueries, IncomingQuery, Responder};
pub use hid::{HidError, host_hid};
#[cfg(feature = "seal")]
pub use options::read_key_file;
pub use options::{
    Options, OptionsError, Profile, parse_channels, parse_protocols, split_list, unix_socket_path,
};
pub use policy::Answer;
pub use query::{QueryOutcome, QueryStart, QueryStream};
pub use request::{QuerySpec, Selector, SendSpec, TagEdit, with_tag_ops};
pub use seed::os_seed;
pub use setup::{Setup, setup};
pub use transports::{TransportStats, Transports};

/// The node the hosted adapters run: up to [`SERVICES`] services and payloads of up to
/// [`DATA`] bytes, holding up to [`HELD`] queries open. It is about 620 KiB (the held
/// queries about 120 KiB of it): adapters build it on a thread with a large stack and keep
/// it in a `Box`.
pub type HostNode<P> = cluster_core::Node<P, SERVICES, DATA, cluster_core::HeldTable<HELD>>;

/// Queries a hosted node holds open at once for the application to answer later
/// ([`Handle::incoming_queries`]); beyond that, new ones are refused as busy.
pub const HELD: usize = 1024;

/// Services a hosted node knows at most.
pub const SERVICES: usize = 1024;
/// Largest application payload (`data` plus `raw`) of a hosted node, in bytes.
pub const DATA: usize = 8192;
