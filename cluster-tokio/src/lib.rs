//! `cluster-tokio`: drives [`cluster_core`]'s sans-IO node on tokio with real sockets, and
//! hosts the `cluster` command.
//!
//! ```no_run
//! use cluster_tokio::{Cluster, Event, Options, QueryEvent, QuerySpec, Selector};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Cluster::join(Options::default().tag("web")?).await?;
//! let mut events = node.events();
//! while let Some(event) = events.next().await {
//!     if let Event::Discovered(service) = event {
//!         println!("found {} at {:?} with tags {:?}", service.sid, service.ip, service.tags);
//!         break;
//!     }
//! }
//! let mut answers = node.query(QuerySpec::new(Selector::resolve(["web"]), "status")).await?;
//! while let Some(answer) = answers.next().await {
//!     if let QueryEvent::Response { sid, payload } = answer {
//!         println!("{sid}: {}", payload.data_lossy());
//!     }
//! }
//! node.leave().await?; // broadcasts the disconnect
//! # Ok(()) }
//! ```
//!
//! # Model
//!
//! [`Cluster::join`] opens the sockets and spawns **one task that owns the node** (no mutex
//! around the core). The returned [`Handle`] is cheap to clone: commands travel to the task on
//! a bounded channel and replies come back on one-shot channels; [`Handle::events`] is a
//! broadcast subscription; [`Handle::query`] returns a [`QueryStream`] that yields each answer
//! as it arrives and then a summary. Hooks are a [`Policy`](cluster_core::Policy) given to
//! [`Cluster::join_with`]. Dropping the last handle makes the node leave.
//! [`Cluster::start`] returns the task as a [`Driver`] future instead, for callers that want
//! to spawn it themselves (or abort it to simulate a crash).
//!
//! The task follows the core's driving contract: it waits for a command, a datagram, bytes
//! or a write outcome from a connection, a new connection, or the node's deadline (compared
//! with the clock directly: time is milliseconds since the join on tokio's clock, so
//! paused-time tests work); makes exactly one input or command call per input; then drains
//! every transmit (multicast datagrams of at most 4096 bytes; stream writes, whose outcome
//! is reported to the node after the write completes or fails) and every event. When
//! several inputs are ready it takes them in turns, one from each source per round:
//! commands, write outcomes, the connections that have bytes (the task reads its `t` and
//! `u` connections itself), then datagrams. Frames over different protocols are not
//! ordered with each other (see "Ordering" on [`cluster_core::Node`]); within one round,
//! bytes already on a connection are handled before the next datagram.
//!
//! # Protocols
//!
//! * `c`: UDP multicast on `230.230.230.230:23000`, `SO_REUSEADDR` + `SO_REUSEPORT`, TTL 0
//!   (local) or 1 (`remote`), loopback on, joined on the default interface, with a fallback
//!   to loopback on hosts without a multicast route ([`cluster_host::socket`]). Each datagram
//!   goes to the node with its source address; the node reassembles per sender.
//! * `t`: a TCP listener on an ephemeral port, advertised as `t {port N}`. A send to a
//!   service reuses the newest open connection with it (accepted or opened), else connects
//!   to its advertised port. Connections carry frames both ways and close after
//!   [`Options::tcp_idle_timeout`] (120 s) without traffic. At most
//!   [`Options::max_connections`] (256) `t` and `u` connections are open at once: while
//!   that many are, a new inbound connection is closed at once and an outgoing one replaces
//!   a connection no known service uses (see "Limits" in `cluster_host`'s docs, which lists
//!   every bound of the adapters and its counter). When a peer reports our `t` as
//!   failing (type 8), the listener is reopened on a new port and advertised.
//! * `u`: unix stream sockets at `/dir/name-<sid>.ext` for [`Options::unix_path`]
//!   `/dir/name.ext`, advertised as `u {path ...}`, local services only; the file is
//!   removed when the node leaves or its driver is dropped. Unlike the reference, the file is
//!   re-created only when a peer reports `u` as failing (not at every heartbeat), and a lost
//!   peer's socket file is left alone (the reference deletes it, which breaks a live peer
//!   that was only dropped by a reduced ttl).
//!
//! Failover is the node's: a failed connect or write is reported with
//! `transport_failed`, and the node tries the next protocol, falls back to multicast with a
//! filter, sends the type-8 report, or starts the ping logic.
//!
//! # Counters and keys
//!
//! [`Handle::stats`] returns every counter of the node ([`cluster_core::Stats`]) and of the
//! adapter ([`TransportStats`]): one for each bound of either. With the `seal` feature
//! (on by default, for the `cluster` command), `Options::keys` seals every frame from the join on and `Handle::set_keys`
//! changes the key ring at run time
//! (rotation without downtime: add the new key everywhere, send with it everywhere, remove
//! the old one).
//!
//! # Interoperating with a reference (Tcl) node on the same host
//!
//! Spec 1.1 and 8: the multicast socket sets `SO_REUSEPORT` (without it, it cannot bind
//! next to a reference node); it joins the group on the default interface as the reference
//! does, so datagrams leave with the source address of the interface the multicast route
//! uses, one of the host's addresses and never `0.0.0.0` (the loopback fallback sends from
//! `127.0.0.1`); and the default hid is eth0's MAC, as the reference's, so local-mode frames
//! are not dropped for a foreign hid. Use [`Profile::Reference`] next to Tcl nodes: they
//! heartbeat only every two minutes, which the fast profile's 2 s ttl would take for a
//! crash.
//!
//! # Shared pieces
//!
//! This crate is a waiting loop, connection I/O and spawning, nothing else. The rest is
//! `cluster-host`'s and re-exported here ([`cluster_host::prelude`]), the same types in every
//! host adapter: the front half ([`Handle`], [`Events`], [`QueryStream`], [`Driver`], and the
//! commands a handle sends, which [`cluster_host::Engine::command`] answers), the options,
//! the events and requests, the JSON lines; and the runtime-independent half of the driver
//! ([`cluster_host::Engine`]: inputs, commands, the drain, failover, connection reuse, query
//! cancellation, listener refresh). Sockets, addresses, the hid and the seed come from
//! `cluster-host` too; this crate wraps them in its runtime's types.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod cluster;
mod conn;
mod driver;

pub use cluster::Cluster;
pub use cluster_host::packet;
pub use cluster_host::prelude::*;
