//! `cluster-embassy`: a [`cluster_core`] node as an async task on embassy.
//!
//! A cluster node on an [`embassy_net::Stack`], the way embassy firmware is written: [`new`]
//! starts the node and returns a [`Runner`], the task to spawn next to embassy-net's own
//! runner, and a [`Handle`] that any task uses to query, send, edit tags, read events and
//! leave. The runner owns a UDP socket on the stack, joined to the multicast group
//! `230.230.230.230` (IGMP), port 23000; [`embassy_time`] is the clock. `no_std`, no
//! allocator; all memory is fixed by const generics and lives where the application puts it
//! (in `static`s: [`State`] and [`Buffers`]).
//!
//! # Spawn and use
//!
//! ```no_run
//! # #![allow(clippy::needless_doctest_main)]
//! use cluster_core::{QueryEvent, QueryRequest, Resolver, Targets};
//! use cluster_embassy::{Buffers, Event, Group, Handle, Runner, State, firmware_config};
//! use embassy_executor::Spawner;
//! use embassy_net::{Stack, StackResources};
//! use static_cell::StaticCell;
//! # type Device = embassy_net_tuntap::TunTapDevice;
//! # fn device() -> Device { unimplemented!() }
//! # fn rng_seed() -> u64 { 0 }
//!
//! // Every const generic has a default: 32 services, DATA 512, 4 events, 2 subscribers,
//! // 4 query answers, 1 query stream; the mutex kind is `CriticalSectionRawMutex`.
//! type Cluster = State;
//! type ClusterRunner = Runner<'static, embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex,
//!     cluster_core::DefaultPolicy>;
//! type ClusterHandle = Handle<'static, embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex,
//!     cluster_core::DefaultPolicy>;
//!
//! #[embassy_executor::task]
//! async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
//!     runner.run().await
//! }
//!
//! #[embassy_executor::task]
//! async fn cluster_task(runner: ClusterRunner) {
//!     runner.run().await // returns after `Handle::leave`
//! }
//!
//! #[embassy_executor::task]
//! async fn app_task(cluster: ClusterHandle) {
//!     let resolver = Resolver::resolve(&["sensor"]);
//!     let request = QueryRequest::new(Targets::resolve(&resolver), b"status?");
//!     if let Ok(mut answers) = cluster.query(&request).await {
//!         while let Some(news) = answers.next().await {
//!             if let QueryEvent::Response { sid, payload, .. } = news {
//!                 // `sid` answered `payload.data()`
//!                 # let _ = (sid, payload);
//!             }
//!         }
//!     }
//! }
//!
//! #[embassy_executor::main]
//! async fn main(spawner: Spawner) {
//!     let seed = rng_seed(); // the part's RNG: different on each boot
//!     static NET: StaticCell<StackResources<3>> = StaticCell::new();
//!     // A static address here; with embassy-net's `dhcpv4` feature, `Config::dhcpv4`.
//!     let config = embassy_net::Config::ipv4_static(embassy_net::StaticConfigV4 {
//!         address: embassy_net::Ipv4Cidr::new(embassy_net::Ipv4Address::new(192, 168, 1, 50), 24),
//!         gateway: None,
//!         dns_servers: Default::default(),
//!     });
//!     let (stack, net_runner) =
//!         embassy_net::new(device(), config, NET.init(StackResources::new()), seed);
//!     spawner.spawn(net_task(net_runner).unwrap());
//!     stack.wait_config_up().await;
//!
//!     // The node (about 23 KiB) and the channels, and the socket's buffers: static.
//!     static STATE: StaticCell<Cluster> = StaticCell::new();
//!     static BUFFERS: StaticCell<Buffers> = StaticCell::new();
//!     let mut config = firmware_config(cluster_core::Config::lan_fast());
//!     config.add_tag("sensor").unwrap();
//!     let (cluster, runner) = cluster_embassy::new(
//!         stack,
//!         STATE.init(State::new(cluster_core::DefaultPolicy)),
//!         BUFFERS.init(Buffers::new()),
//!         Group::CLUSTER,
//!         config,
//!         seed ^ 0x5eed,
//!     )
//!     .unwrap();
//!     let mut events = cluster.events().unwrap(); // before the runner: every event
//!     spawner.spawn(cluster_task(runner).unwrap());
//!     spawner.spawn(app_task(cluster).unwrap());
//!
//!     loop {
//!         match events.next().await {
//!             Event::Discovered(service) => { /* service.ip(), service.tags(), ... */ }
//!             Event::Lost { sid, reason } => { /* ... */ }
//!             Event::Message { payload, .. } => { /* payload.data() */ }
//!             _ => {}
//!         }
//!     }
//! }
//! ```
//!
//! Queries are answered by the node's [`Policy`](cluster_core::Policy) (`answer_query`), in
//! the runner, as they arrive; the application sees them as [`Event::QueryReceived`]. To
//! answer later instead, see below.
//!
//! # Answering queries later (feature `held`)
//!
//! An answer that needs an `.await` (a sensor reading, a bus transfer) cannot come from the
//! policy. With the feature `held`, give the [`State`] room for held queries (its last
//! parameter `H`, a [`HeldTable<N>`](cluster_core::HeldTable); the default
//! [`NoHeld`](cluster_core::NoHeld) takes no memory) and call `Handle::hold_queries`: each
//! query is then published as `Event::QueryHeld` with a
//! [`ReplyToken`](cluster_core::ReplyToken), and any task answers it with `Handle::answer`
//! (or `refuse`, or `drop_held` to let it go: the asker gets an error at once) before the
//! node's `query_timeout`. A late or unknown token is a `CommandError::Answer`, never a
//! panic, and counted in `Handle::held_stats`; a query arriving while all `N` are held is
//! refused `busy`. The documentation of `Handle::hold_queries` shows two tasks doing it.
//! Without the feature, the event and error variants do not exist (a firmware image stays
//! as small as before) and a held query's event is not published.
//!
//! # Names
//!
//! The names are those of the host adapters (`cluster-tokio`, `cluster-smol`) where they
//! mean the same: [`Handle`] with `sid`, `hid`, `events`, `send`, `query`, `update_tags`,
//! `tags`, `discover`, `heartbeat`, `subscribe`, `stats`, `held_stats`, `set_keys` and
//! `leave`; [`Events::next`] and [`Events::try_next`]; [`QueryStream::next`] and
//! [`QueryStream::id`]; [`Event`] with `Discovered`, `Lost`, `TagsChanged`, `Message`,
//! `QueryReceived`, `QueryHeld` and `Dropped`. Held queries are answered with the core's
//! names (`hold_queries`, `answer`, `refuse`, `drop_held`, given the token of
//! `Event::QueryHeld`), where the host adapters hand out a `Responder` per query from
//! `Handle::incoming_queries` (which needs an allocator). The commands take the core's
//! borrowed requests ([`SendRequest`],
//! [`QueryRequest`], [`TagOp`]) rather than owned specs: nothing is copied on the way.
//!
//! [`SendRequest`]: cluster_core::SendRequest
//! [`QueryRequest`]: cluster_core::QueryRequest
//! [`TagOp`]: cluster_core::TagOp
//!
//! # One lock, not a command channel
//!
//! Unlike the host adapters, whose driver owns the node and takes commands over a channel,
//! the node here sits behind an async mutex ([`embassy_sync::mutex::Mutex`]) that the runner
//! and the handles take in turn. A command channel without an allocator would hold owned
//! copies of every request (its data, raw bytes, targets and tag operations) in each slot;
//! the lock lets a command borrow its request, costs no copy and no RAM, and returns the
//! node's answer (a query id, a tag error) at once. A handle holds the lock for one call on
//! the node, without waiting on anything; the runner for one pass: at most 16 datagrams, the
//! timers and the frames they make, each datagram waiting at most a second for room in the
//! socket. After a pass that left datagrams in the socket the runner yields, so that a flood
//! starves neither the handles nor the timers.
//!
//! # What is supported
//!
//! As `cluster-embedded`: **protocol `c` only, in remote mode** (build the configuration with
//! [`firmware_config`]; [`new`] refuses others), no `t` and no `u` (a direct send over them
//! is reported failed at once and the node falls back to multicast), datagrams up to the MTU
//! unless the application enables embassy-net's fragmentation, and no own echoes. Peers reach
//! a multicast-only node by multicast with a filter: discovery answers, query responses and
//! this project's direct sends. **Sealed frames** with the feature `seal`: set a
//! `cluster_core::KeyRing` on the node before [`new`] ([`State::node_mut`], so the join
//! frames are sealed too) or later with `Handle::set_keys` (key rotation).
//!
//! # Events and answers
//!
//! The runner never waits for a slow reader. Events go to an
//! [`embassy_sync::pubsub::PubSubChannel`] of depth `EVENTS`: each [`Events`] subscription
//! reads every event; one that falls more than `EVENTS` behind loses the oldest and gets
//! [`Event::Dropped`] with the count (as a tokio broadcast channel; [`Events::lagged`]). A
//! `Discovered` event carries a snapshot of the service (address, tags, protocols), so the
//! reader needs no access to the node. Query news (responses, errors, missing targets, the
//! end) go to a second channel of depth `ANSWERS`, which [`QueryStream`]s read, each keeping
//! its own query's news.
//!
//! # Memory
//!
//! Everything is static: the [`State`] (the node, `Node<P, SERVICES, DATA>`, about 23 KiB
//! with the defaults; `EVENTS + ANSWERS` messages of about `DATA + 80` bytes) and the
//! [`Buffers`] (the frame buffer, at least
//! [`Node::TRANSMIT_BUF`](cluster_core::Node::TRANSMIT_BUF), and the socket's). On a
//! Cortex-M4F (`firmware/measure.sh`: 32 services, `DATA = 512`, every command used, release,
//! `opt-level = "z"`), a whole embassy firmware with this node takes 76.1 KiB of flash and
//! 37.3 KiB of static RAM (the node 22.7 KiB of it, the channels 4.9 KiB); the crate's README
//! compares it with `cluster-embedded`'s smoltcp driver.
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | *(default)* | nothing: `no_std`, no allocator |
//! | `held` | queries answered later: `Event::QueryHeld`, `CommandError::Answer` and `Handle::hold_queries`, `answer`, `refuse`, `drop_held`, `held`, `held_stats` (no allocator; without it the firmware image is about 350 bytes smaller) |
//! | `seal` | sealed frames: `Handle::set_keys`, and `cluster-core/seal` (XChaCha20-Poly1305 under a pre-shared key ring, replay protection; no allocator) |
//! | `tap` | host only: the `tuntap` example on a Linux TAP device (`embassy-net-tuntap`, embassy's std executor and clock), with `--key-file`; turns on `seal` |
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod error;
mod event;
mod handle;
#[cfg(feature = "held")]
mod held;
mod runner;
mod state;
mod time;

pub use cluster_core::MacHid;
pub use error::{CommandError, Error};
pub use event::Event;
pub use handle::{Events, Handle, QueryStream};
pub use runner::{Group, Runner, new};
pub use state::{Buffers, State, Stats};
pub use time::{core_instant, embassy_instant};

pub use cluster_core;
pub use embassy_net;

use cluster_core::{Config, Protocol, ProtocolList};

/// `config` made fit for an embassy node: remote mode (multicast TTL 1, peers on other hosts
/// accepted) and the protocol `c` only. Everything else is kept. (The same as
/// `cluster_embedded::firmware_config`.)
#[must_use]
pub fn firmware_config(mut config: Config) -> Config {
    config.remote = true;
    config.protocols = ProtocolList::new(&[Protocol::Multicast]);
    config
}
