//! `cluster-core`: the sans-IO core of `cluster`, a zero-configuration LAN discovery and
//! messaging protocol, wire-compatible with the Tcl package "cluster" (reference: cluster 1.1.8
//! with the bpacket 1.3.2 codec).
//!
//! It holds the bpacket codec ([`wire`]) and the protocol state machine ([`Node`]): heartbeats,
//! discovery, service expiry, ping-driven TTL reduction, protocol failover, channels, tags,
//! resolve/resolver, queries and hooks ([`Policy`]).
//!
//! What it is not: it performs no I/O, reads no clock, draws no entropy and never allocates.
//! Adapters (`cluster-tokio`, `cluster-smol`, `cluster-embedded`) own the sockets and feed the
//! node bytes, time and transport outcomes; the node gives back frames to send and events.
//! It never panics on input and its memory is fixed when it is created.
//!
//! # Driving a node
//!
//! Methods come in four kinds, and each method's docs name its kind:
//!
//! | kind | methods |
//! | --- | --- |
//! | inputs | [`Node::handle_datagram`], [`Node::handle_timeout`], [`Node::transport_ok`], [`Node::transport_failed`], [`Node::connection_closed`] |
//! | commands | [`Node::send`], [`Node::query`], [`Node::update_tags`], [`Node::set_tcp_port`], [`Node::discover`], [`Node::heartbeat`], [`Node::leave`], ... |
//! | outputs | [`Node::poll_transmit`] (and [`Node::has_transmit`], which says whether it has a frame), [`Node::poll_event`], [`Node::poll_timeout`] |
//! | getters | [`Node::sid`], [`Node::services`], [`Node::service`], [`Node::resolve`], [`Node::stats`], ... |
//!
//! The driving contract:
//! 1. Make exactly one input or command call.
//! 2. Drain [`Node::poll_transmit`] until `None`: send each frame (to the multicast group, or
//!    to a service over `t`/`u`) and report every direct send's outcome with
//!    [`Node::transport_ok`] or [`Node::transport_failed`]. Then drain [`Node::poll_event`].
//! 3. Wait for the first of: the [`Node::poll_timeout`] deadline, incoming bytes, a transport
//!    outcome, or a command.
//! 4. `now` never goes backwards; if it does, the node clamps it and counts the regression.
//!
//! Two nodes on one host, wired by hand, until each has discovered the other:
//!
//! ```
//! use std::net::SocketAddr;
//! use cluster_core::{Config, ConnId, DefaultPolicy, Destination, Event, Instant, Node, Source};
//!
//! let hid = "02:fc:00:00:00:01"; // nodes on one host share the host's MAC
//! let start = Instant::ZERO;
//! let mut nodes = [
//!     Node::<DefaultPolicy>::new(Config::lan_fast(), hid, DefaultPolicy, 1, start)?,
//!     Node::<DefaultPolicy>::new(Config::lan_fast(), hid, DefaultPolicy, 2, start)?,
//! ];
//! nodes[0].set_tcp_port(start, Some(40001));
//! nodes[1].set_tcp_port(start, Some(40002));
//! let host: SocketAddr = "127.0.0.1:23000".parse().unwrap();
//! let mut buf = vec![0u8; Node::<DefaultPolicy>::TRANSMIT_BUF];
//! let mut now = start;
//! let mut discovered = [false, false];
//! for _ in 0..100 {
//!     for from in 0..2 {
//!         let to = 1 - from;
//!         // 2. Drain the transmits: here every frame reaches the other node.
//!         while let Some(transmit) = nodes[from].poll_transmit(now, &mut buf) {
//!             let frame = buf[..transmit.len].to_vec();
//!             let source = match transmit.dst {
//!                 Destination::Group { .. } => Source::multicast(host, true),
//!                 Destination::Service { .. } => Source::tcp(ConnId(from as u32), host, true),
//!             };
//!             if let Some(id) = transmit.dst.send_id() {
//!                 nodes[from].transport_ok(now, id);
//!             }
//!             // 1. One input call on the receiver.
//!             nodes[to].handle_datagram(now, source, &frame)?;
//!         }
//!         // ... then drain the events.
//!         while let Some(event) = nodes[from].poll_event() {
//!             if let Event::Discovered { sid } = event {
//!                 println!("node {from} discovered {sid}");
//!                 discovered[from] = true;
//!             }
//!         }
//!     }
//!     if discovered == [true, true] {
//!         break;
//!     }
//!     // 3. Wait for the earliest deadline (virtual time here: jump to it).
//!     now = nodes.iter().filter_map(Node::poll_timeout).min().unwrap_or(now);
//!     for node in &mut nodes {
//!         node.handle_timeout(now);
//!     }
//! }
//! assert_eq!(discovered, [true, true]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Time, randomness and capacity
//!
//! * Time is an [`Instant`] in milliseconds from an epoch the caller picks, passed to every
//!   input. Deadlines are absolute; [`Node::poll_timeout`] returns the earliest.
//! * Randomness comes from the `seed` given to [`Node::new`] (the heartbeat interval, the
//!   sid, the ping-answer stagger): a run is reproduced exactly from its seed. Adapters seed
//!   from the OS; firmware passes a seed that differs at every boot.
//! * Capacity is fixed by const generics: `Node<P, SERVICES = 32, DATA = 512>` knows at most
//!   `SERVICES` services and carries payloads of at most `DATA` bytes. Every bounded container
//!   has a documented policy when full and a counter in [`Stats`]; a flood never evicts an
//!   established service (see [`Node`], "Capacity and floods"). The default node takes
//!   **21,352 bytes** on 64-bit targets (pinned by the
//!   test `node_size`; 8 of them the registry's remembered index and 384 its sorted sid
//!   index, which microcontrollers do without), no heap; 256 more with the feature `node-data` (each service record
//!   keeps the version of its data: 8 bytes more with alignment), 848 more with the feature
//!   `loss-recovery` (the query retransmission table and the answer memory, which have no
//!   capacity without it) and 1,088 more with the feature `unix` (832 with `node-data` too). [`ServerNode`] (16,384 services, 64 KiB payloads) is
//!   megabytes: keep it on the heap.
//! * [`Node::new`] returns the node by value. To build one in place, as firmware does in a
//!   `static`, start from [`Node::empty`] (a `const`, all zero bits but the policy, so it
//!   lands in `.bss`) and call [`Node::start`] on it: no node-sized temporary is made. (A
//!   heap node is still built by value first: safe Rust has no placement into a `Box`.)
//!
//! # Limits
//!
//! Every bounded container, what happens when it is full, and the [`Stats`] counter that
//! shows it:
//!
//! | container | bound | when full | counter |
//! | --- | --- | --- | --- |
//! | service registry | `SERVICES` | a newcomer evicts a service still on probation, never an established one; otherwise its frames are dropped (see [`Node`], "Capacity and floods") | `services_evicted`, `services_rejected` |
//! | reassembly buffers (`c`) | 2 senders of `DATA` bytes, 5 s idle | the least recent partial frame is dropped | `stream_overflows` |
//! | frame length | [`Config::max_frame_len`] (1 MiB) | the header is skipped and the stream resyncs | `stream_overflows` |
//! | outbound queue | one direct send per service, 8 broadcasts, 4 payloads | the command returns `Full` | `sends_rejected` |
//! | query table | 8 queries | [`Node::query`] returns [`QueryError::Full`] | `queries_rejected` |
//! | payloads kept for copies (retransmitted queries, remembered answers) | the 4 payloads of the outbound queue | a new send takes the place of the oldest kept payload | `holds_reclaimed` |
//! | answer memory | 16 queries, the counters of 16 askers | the oldest is forgotten; a copy of its query is answered by the policy again only if its id has no counter | `copies_dropped` |
//! | ping batch | 16 sids per ping | the service is not pinged (it still expires) | `ping_batch_full` |
//! | held queries ([`Node::hold_queries`]) | `N` of the node's [`HeldTable<N>`] (none by default), each until [`Config::query_timeout`] | a new query is refused at once with the error `busy: too many queries held open`; an expired one is forgotten, a late answer refused | [`HeldStats`]: `busy`, `expired`, `late` |
//! | published data (feature `node-data`: `Node::set_data`) | `DATA` bytes with the protocols' props, in one of the 4 payload slots | `Node::set_data` returns `DataError::TooLarge` or `DataError::Full`; the old data stays | — |
//! | event queue | `EVENTS` events with data (3 by default); derived events are never dropped | the event is dropped, [`Event::Dropped`] follows | `events_dropped` |
//! | payload, tags, props, sids | `DATA`, 8 tags, 104-byte unix paths (4 kept) | the frame (or the path) is dropped | `oversized` |
//! | replay table (`seal`) | `SERVICES` senders | the least recent sender is forgotten | `replay_evictions` |
//! | sealed-frame opening buffer (`seal`) | 2 × `DATA` | the frame is dropped | `oversized` |
//!
//! Adapters add their own bounds (connections, per-connection buffers, idle times) with
//! counters of their own.
//!
//! # Profiles
//!
//! [`Config::reference`] has the reference's timers (heartbeat every 110–140 s, services
//! expire 600 s unseen, checked at heartbeats) for networks shared with Tcl nodes;
//! [`Config::lan_fast`] works in seconds (see its docs for the reasoning behind each value).
//!
//! # Compatibility with the Tcl reference
//!
//! Every frame this crate emits is one a reference node accepts, byte for byte what the
//! reference would send for the same payload (golden vectors: `tests/frame_vectors.rs`,
//! `tests/node_pipeline.rs`). Where the reference misbehaves, this crate deliberately differs
//! (spec section 7), each backed by a test:
//!
//! | reference | here | test |
//! | --- | --- | --- |
//! | never sends its disconnect (Q1) | [`Node::leave`] broadcasts a type-0 frame | `leave_sends_the_reference_disconnect_layout` |
//! | every query of a node has the same id (Q3) | ids `q<s0><s2>#<slast>.<n>` are unique; a live id is refused | `query_ids_are_unique_and_a_live_id_is_refused` |
//! | hangs on a truncated varint, mis-reads varints starting `C0 8D` (Q5) | typed errors; the encoder refuses such varints | `invalid_frame_cases_give_their_outcome`, `encoder_cases_refuse_reserved_varints_and_accept_the_rest` |
//! | cluster-level sends never fall back to multicast (Q6) | they do, with `filter=[target]` and a type-8 report | `cluster_send_falls_back_to_multicast_and_reports_the_failure` |
//! | one shared, unbounded UDP reassembly buffer (Q7) | one bounded buffer per sender | `stream_vectors` |
//! | a service never discovered is reported lost (Q11) | it is not | `every_pipeline_case_is_dropped_rejected_or_accepted_as_listed` |
//! | only types 1, 2, 5 refresh last-seen (Q12) | any accepted frame does | `any_accepted_frame_counts_as_seen` |
//! | the ping batch is cancelled only when it held one sid (Q13) | a service heard from leaves the batch | `a_service_heard_again_leaves_the_ping_batch` |
//! | resolver modifiers reset the operation, `-exact` unimplemented (Q9) | fixed | `node::resolve` unit tests |
//! | a connection on which a frame of a service arrives becomes the route to it (newest wins, spec 1.2), so a frame replayed over an attacker's TCP connection takes the service's traffic | only a frame addressed to this node (its `filter` names our sid, as every direct send's does) from the service's address makes its connection the route (`routes_refused` counts the others) | `a_frame_replayed_over_tcp_does_not_take_its_services_route` (cluster-tokio) |
//! | one UDP reassembly buffer; here one per sender, but every node of a host sends from the cluster port, so a bogus length from that address held back every local node's frames | a datagram holding a whole frame is parsed on its own, past a partial frame pending from its address | `a_whole_datagram_passes_a_partial_frame_pending_from_its_key` |
//! | a query is sent once; each copy that reaches a node is answered by its hook again | with [`Config::lan_fast`], a query is sent again by multicast to the targets that have not answered, and a copy is answered from memory, without the policy (see [`Node`], "Loss") | `at_twenty_percent_loss_99_percent_of_answers_arrive_in_time_and_no_node_is_lost` |
//! | a tags change is sent once, so a discovery answer with the old tags that arrives late (over TCP) leaves peers with the old tags | the heartbeat after the change carries the tags again | `a_tags_change_is_repeated_so_a_late_frame_with_the_old_tags_is_corrected` |
//! | per-service props are protocol props only | with the feature `node-data`, a node may publish key/value data (`Node::set_data`): one more props entry, `meta {version V data {..} hex {..}}`, which reference nodes store as the service's `meta` props; while it does, its periodic heartbeats carry `data` = `metav V` (a valid props dict; the reference's periodic heartbeat has no `data`). A node that publishes nothing sends exactly the reference's frames; without the feature a node never publishes, and ignores the `meta` entry and the `metav` digest of peers' props | `an_update_goes_out_at_once_in_the_props_and_periodic_heartbeats_carry_its_version`, `a_node_without_data_sends_what_the_reference_sends`; without the feature `a_peers_data_entry_and_digest_change_nothing` |
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | *(default)* | nothing: `no_std`, no allocator |
//! | `alloc` | conveniences that allocate, such as `wire::Message::encode_to_vec` |
//! | `std` | `alloc` |
//! | `serde` | typed payloads (module `typed`: any `T: Serialize` in the `raw` field, postcard-encoded, no allocator), and `Serialize` on ids and [`Instant`] |
//! | `sim` | `std`, plus `sim`: a deterministic virtual-time network and the `Cluster` harness the scenario tests use |
//! | `seal` | module `seal`: every frame sealed (XChaCha20-Poly1305) under a pre-shared key ring, with replay protection; no allocator |
//! | `node-data` | per-node data: `Node::set_data` and `Node::data_version`, `Event::DataChanged`, `Service::data_version`, `DataError`; the props entry `meta {version V data {..} hex {..}}` and the `metav V` digest of periodic heartbeats, read from peers too. Off, a node publishes nothing, ignores peers' data (no event, no discovery asked for it) and links none of that code (2,140 B of flash in the sealed thumbv7em node image); cluster-host turns it on, the firmware images leave it off |
//! | `loss-recovery` | the remedies for heavy loss that `Config::lan_fast` turns on: query retransmission (`Config::query_retry`), the answer memory (`Config::answer_memory`: a copy of a query is answered again without the policy), probing of silent services (`Config::probe_silent`), the hold of expiry after a late tick, and their counters. Off, those `Config` fields have no effect, the node behaves as the reference does under loss and links none of that code (about 3.7 KB of flash in the sealed thumbv7em node image); cluster-host turns it on, the firmware images leave it off |
//! | `unix` | the unix-socket transport's state: the node's own advertised path (`Node::set_unix_path`) and the paths of 4 local services that run `u`. Off, the node advertises no path (`set_unix_path` refuses one), keeps none, keeps no service's unix connection, never sends over `u`, and saves 848 bytes of RAM and about 1 KB of flash in the sealed thumbv7em node image; cluster-host turns it on, the firmware images (which have no unix sockets) leave it off |
//! | `heartbeat-fast-path` | for large simulations: a periodic heartbeat that repeats, byte for byte, the last one accepted from its service over multicast refreshes the service without being decoded again (the same effects, counters and deadlines as the full pipeline, tested against it; not with sealing, and only when the policy's `Policy::sees_every_frame` is false, as `DefaultPolicy`'s), `Stats::heartbeats_repeated`, and `Node::last_datagram_was_quiet`, which lets the simulator skip driving a node that has nothing to say. Costs about 100 bytes per service (a copy of its last heartbeat) and 8 bytes per service of hints; the benches turn it on, the firmware images and the adapters leave it off |
//! | `large-registry` | for registries of hundreds or thousands of services: removing a service moves the records on the shorter side of it (a ring buffer) instead of every later one, and a full registry picks the service to evict from a compact copy of what eviction reads of each service instead of walking the records; the same order and the same evictions as without it. Costs 24 bytes per service and a few more per registry; the benches turn it on, the firmware images and the adapters leave it off |
//!
//! The minimum supported Rust version is 1.91 (smoltcp's), edition 2024.
//!
//! # Layout
//!
//! The modules follow the house style's table, with these differences:
//!
//! * `service.rs` holds what `policy`, `transmit` and the node share ([`Service`],
//!   [`UnixPath`], and the last-seen scale), so no module outside `node/` imports from
//!   `node/`. [`ConnId`] lives in `protocol.rs` (re-exported by `transmit.rs`), so `service.rs`
//!   and `transmit.rs` do not import each other.
//! * `node/state.rs` holds the node's internal state logic (phases, reset on join, the clock
//!   and timers, the event queue, expiry and removal of services, props changes, leaving),
//!   and `node.rs` holds the public entry points.
//! * `node/outbox.rs` holds the outbound queues and the payload pool, with their own unit
//!   tests; `node/send.rs` chooses routes, fails over and encodes.
//! * The remedies for lossy LANs ([`Node`], "Loss") have a module each: `node/retry.rs`
//!   (query retransmission), `node/answered.rs` (the answer memory), `node/hold.rs` (payloads
//!   kept for copies, given up under pressure) and `node/probe.rs` (probing silent services).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

mod compact;
mod config;
mod error;
mod event;
mod identity;
mod mac_hid;
pub mod membership;
mod node;
mod policy;
mod protocol;
mod rng;
#[cfg(feature = "seal")]
#[cfg_attr(docsrs, doc(cfg(feature = "seal")))]
pub mod seal;
mod service;
#[cfg(feature = "sim")]
pub mod sim;
mod stats;
mod text;
mod time;
mod transmit;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod typed;
pub mod wire;

pub use config::{Config, ConfigError, MAX_CHANNELS};
#[cfg(feature = "node-data")]
pub use error::DataError;
pub use error::{AnswerError, DatagramError, QueryError, SendError};
pub use event::{Event, LostReason, Payload, QueryEvent, QueryId, ReplyToken, Ruid};
pub use identity::{Hid, InlineStr, MAX_TAGS, Sid, Tag, TagList, is_mac_hid};
pub use mac_hid::MacHid;
pub use node::{
    HeldRoom, HeldTable, NoHeld, Node, QueryRequest, ResolveError, Resolver, ResolverMembers,
    ResolverSet, SendRequest, ServerNode, TagError, TagOp, Targets, glob_match,
};
pub use policy::{
    Answer, DefaultPolicy, Outgoing, PayloadFull, PayloadMut, Policy, Refusal, Reply, Verdict,
};
pub use protocol::{Protocol, ProtocolList};
#[cfg(feature = "seal")]
pub use seal::{Key, KeyRing, KeyRingError};
pub use service::{Service, UnixPath};
pub use stats::{HeldStats, Stats};
pub use time::Instant;
pub use transmit::{ConnId, Destination, Endpoint, SendId, Source, Transmit};
