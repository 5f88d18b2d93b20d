//! `cluster-smol`: drives [`cluster_core`]'s sans-IO node on `async-io`, with real sockets, so
//! that it runs under **smol**, **async-std**, or any executor (even
//! `futures_lite::future::block_on` on a thread of its own). It speaks the same protocols as
//! `cluster-tokio` (`c`, `t`, `u`), with the same handle API and the same behaviour, and
//! the two interoperate on one host.
//!
//! # Under smol
//!
//! ```no_run
//! use cluster_smol::{Cluster, Event, Options, QueryEvent, QuerySpec, Selector};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     smol::block_on(async {
//!         let node = Cluster::join(Options::default().tag("web")?, |driver| {
//!             smol::spawn(driver).detach()
//!         })
//!         .await?;
//!         let mut events = node.events();
//!         while let Some(event) = events.next().await {
//!             if let Event::Discovered(service) = event {
//!                 println!("found {} at {:?} with tags {:?}", service.sid, service.ip, service.tags);
//!                 break;
//!             }
//!         }
//!         let mut answers = node.query(QuerySpec::new(Selector::resolve(["web"]), "status")).await?;
//!         while let Some(answer) = answers.next().await {
//!             if let QueryEvent::Response { sid, payload } = answer {
//!                 println!("{sid}: {}", payload.data_lossy());
//!             }
//!         }
//!         node.leave().await?; // broadcasts the disconnect
//!         Ok(())
//!     })
//! }
//! ```
//!
//! # Under async-std
//!
//! ```no_run
//! use cluster_smol::{Answer, Cluster, Options};
//!
//! #[async_std::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let options = Options::default().tag("status")?;
//!     let node = Cluster::join_with(options, Answer::new("all good"), |driver| {
//!         async_std::task::spawn(driver);
//!     })
//!     .await?;
//!     // ... every query is now answered "all good" ...
//!     node.leave().await?;
//!     Ok(())
//! }
//! ```
//!
//! # Spawning the driver yourself
//!
//! [`Cluster::start`] returns the node's task as a [`Driver`] future: spawn it on any
//! executor, await it, or drop it to stop the node without a disconnect (as a crash would).
//!
//! ```no_run
//! use cluster_smol::{Answer, Cluster, Options};
//! use futures_lite::future;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (node, driver) = future::block_on(Cluster::start(Options::default(), Answer::new("hi")))?;
//! let thread = std::thread::spawn(|| future::block_on(driver));
//! future::block_on(node.leave())?;
//! thread.join().expect("the driver ends once the node left");
//! # Ok(()) }
//! ```
//!
//! # Model
//!
//! The [`Driver`] future **owns the node** (no mutex around the core). The [`Handle`] is
//! cheap to clone: commands travel to the driver on a bounded channel and replies come back
//! on one-shot channels; [`Handle::events`] is a broadcast subscription (a subscriber that
//! falls more than 1024 events behind gets [`Event::Dropped`]); [`Handle::query`] returns a
//! [`QueryStream`] that yields each answer as it arrives and then a summary. Hooks are a
//! [`Policy`](cluster_core::Policy) given to [`Cluster::join_with`]. Dropping the last handle
//! makes the node leave. Every channel is runtime-agnostic (the handle's are tokio's `sync`
//! channels, which need no tokio runtime; the connection tasks' are `async-channel`), so
//! handles work from any executor, and from a tokio task too.
//!
//! The driver follows the core's driving contract: it waits for a command, a datagram,
//! bytes or a write outcome from a connection, a new connection, the multicast socket
//! becoming writable again, or the node's deadline (compared with the clock directly; time
//! is milliseconds since the join on the monotonic clock); makes exactly one input or
//! command call per input; then drains every transmit and every event. That logic is
//! `cluster_host::Engine`, shared with the other adapters; this crate adds the waiting
//! (`async-io`'s reactor and timers, each source polled with a waker of its own and kept
//! registered across inputs: `cluster_host::wakeups`) and the connection tasks.
//!
//! The driver reads every stream connection itself, when the reactor reports it readable
//! (`cluster_host::ready`). Each connection has a task of its own, run by a private
//! `async-executor` inside the driver future (not smol's global executor), so the driver
//! needs nothing from the executor that polls it. The task connects (outgoing connections)
//! and writes what the driver queues; a frame the socket takes whole at once, with nothing
//! queued before it, the driver writes itself.
//!
//! # Protocols
//!
//! * `c`: UDP multicast on `230.230.230.230:23000`, `SO_REUSEADDR` + `SO_REUSEPORT`, TTL 0
//!   (local) or 1 (`remote`), loopback on, joined on the default interface, with a fallback
//!   to loopback on hosts without a multicast route ([`cluster_host::socket`]). Datagrams
//!   are sent without waiting; one the socket cannot take yet is held back (one slot) until
//!   the socket is writable, and nothing is sent past it meanwhile.
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
//!   removed when the node leaves or its driver is dropped.
//!
//! Failover is the node's: a failed connect or write is reported with `transport_failed`,
//! and the node tries the next protocol, falls back to multicast with a filter, sends the
//! type-8 report, or starts the ping logic.
//!
//! # Counters and keys
//!
//! [`Handle::stats`] returns every counter of the node ([`cluster_core::Stats`]) and of the
//! adapter ([`TransportStats`]): one for each bound of either. With the `seal` feature
//! (off by default), `Options::keys` seals every frame from the join on and `Handle::set_keys`
//! changes the key ring at run time
//! (rotation without downtime: add the new key everywhere, send with it everywhere, remove
//! the old one).
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
pub use cluster_host::prelude::*;
