//! The memory of a node on embassy: [`State`] (shared by the runner and every handle) and
//! [`Buffers`] (the runner's alone).

use cluster_core::{DefaultPolicy, HeldRoom, NoHeld, Node, Policy, QueryEvent};
use embassy_net::udp::PacketMetadata;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, RawMutex};
use embassy_sync::mutex::Mutex;
use embassy_sync::pubsub::PubSubChannel;
use embassy_sync::signal::Signal;

use crate::event::Event;

/// Counters of the adapter (the node's own are in [`Node::stats`]). They only grow
/// (saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams read from the socket and handed to the node.
    pub datagrams_received: u64,
    /// Datagrams the node dropped (the reason is counted in [`Node::stats`]).
    pub datagrams_dropped: u64,
    /// Datagrams queued in the socket for sending.
    pub datagrams_sent: u64,
    /// Frames given up: a datagram larger than the socket's whole transmit buffer, one
    /// embassy-net refused (no route), or one that found no room in the socket for a second
    /// (the MAC driver took no frames).
    pub frames_unsendable: u64,
    /// Direct sends over `t` or `u`, which this adapter does not run, reported failed so
    /// that the node fell back to multicast. Zero with a multicast-only node.
    pub direct_sends_refused: u64,
    /// Events published while the events channel was full: the oldest unread one was
    /// overwritten, and each subscription that had not read it gets
    /// [`Event::Dropped`](crate::Event::Dropped).
    pub events_overwritten: u64,
    /// Query answers published while the answers channel was full (the oldest was
    /// overwritten; a [`QueryStream`](crate::QueryStream) that missed it counts it in
    /// [`dropped`](crate::QueryStream::dropped)).
    pub answers_overwritten: u64,
}

impl Stats {
    const ZERO: Self = Self {
        datagrams_received: 0,
        datagrams_dropped: 0,
        datagrams_sent: 0,
        frames_unsendable: 0,
        direct_sends_refused: 0,
        events_overwritten: 0,
        answers_overwritten: 0,
    };
}

pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

/// What the runner and the handles take turns at: the node and the adapter's counters.
pub(crate) struct Inner<P: Policy, const SERVICES: usize, const DATA: usize, H: HeldRoom> {
    pub(crate) node: Node<P, SERVICES, DATA, H>,
    pub(crate) stats: Stats,
}

/// Everything a node on embassy shares between its [`Runner`](crate::Runner) and its
/// [`Handle`](crate::Handle)s: the node itself (behind an async mutex), the runner's wake-up
/// signal, the events channel and the query answers channel. Put it in a `static` (a
/// `static_cell::StaticCell`, or `ConstStaticCell` with [`State::new`], which is `const`) and
/// hand it to [`new`](crate::new).
///
/// Type parameters, all with defaults:
/// * `M`: the mutex kind of the channels and of the node's lock.
///   [`CriticalSectionRawMutex`] (the default) lets handles be used from any executor or
///   interrupt priority; `NoopRawMutex` suffices when the runner and every handle run on one
///   executor.
/// * `P`, `SERVICES`, `DATA`: the node's policy and sizes, as on [`Node`].
/// * `EVENTS`: the depth of the events channel, shared by every subscription; a subscription
///   more than `EVENTS` behind loses the oldest events and is told
///   [`Event::Dropped`](crate::Event::Dropped) (lag counted, as a tokio broadcast channel).
/// * `SUBSCRIBERS`: how many [`Events`](crate::Events) subscriptions may exist at once.
/// * `ANSWERS`: the depth of the query answers channel, shared by every query in progress.
/// * `QUERIES`: how many [`QueryStream`](crate::QueryStream)s may exist at once.
/// * `H`: the node's room for queries held open to be answered later (feature `held`:
///   `Handle::hold_queries`): [`NoHeld`] (the default, no memory: the policy answers every
///   query on the spot) or a
///   [`HeldTable<N>`](cluster_core::HeldTable) (about 120 bytes a query).
///
/// Memory: the node (`Node<P, SERVICES, DATA, H>`, about 23 KiB with the defaults) plus
/// `EVENTS` events and `ANSWERS` answers of about `DATA + 80` bytes each.
///
/// The node is not a separate object: it is created empty here ([`Node::empty`], all zero
/// bits but the policy, so a `static` `State` takes no flash image) and started in place by
/// [`new`](crate::new); it never moves.
pub struct State<
    M: RawMutex = CriticalSectionRawMutex,
    P: Policy = DefaultPolicy,
    const SERVICES: usize = 32,
    const DATA: usize = 512,
    const EVENTS: usize = 4,
    const SUBSCRIBERS: usize = 2,
    const ANSWERS: usize = 4,
    const QUERIES: usize = 1,
    H: HeldRoom = NoHeld,
> {
    pub(crate) inner: Mutex<M, Inner<P, SERVICES, DATA, H>>,
    /// Set by a handle after a command: the runner sends what the node now owes.
    pub(crate) wake: Signal<M, ()>,
    pub(crate) events: PubSubChannel<M, Event<DATA>, EVENTS, SUBSCRIBERS, 1>,
    pub(crate) answers: PubSubChannel<M, QueryEvent<DATA>, ANSWERS, QUERIES, 1>,
}

impl<
    M: RawMutex,
    P: Policy,
    const SERVICES: usize,
    const DATA: usize,
    const EVENTS: usize,
    const SUBSCRIBERS: usize,
    const ANSWERS: usize,
    const QUERIES: usize,
    H: HeldRoom,
> State<M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    /// An empty state around a node that has not joined yet ([`Node::empty`]), with its
    /// policy. [`new`](crate::new) starts the node.
    #[must_use]
    pub const fn new(policy: P) -> Self {
        Self {
            inner: Mutex::new(Inner {
                node: Node::empty(policy),
                stats: Stats::ZERO,
            }),
            wake: Signal::new(),
            events: PubSubChannel::new(),
            answers: PubSubChannel::new(),
        }
    }

    /// The node, before [`new`](crate::new) starts it: for example to set its keys
    /// (`Node::set_keys`, feature `seal`; they stay across the start, so the join frames
    /// are sealed too) or subscribe channels.
    pub fn node_mut(&mut self) -> &mut Node<P, SERVICES, DATA, H> {
        &mut self.inner.get_mut().node
    }
}

impl<
    M: RawMutex,
    P: Policy,
    const SERVICES: usize,
    const DATA: usize,
    const EVENTS: usize,
    const SUBSCRIBERS: usize,
    const ANSWERS: usize,
    const QUERIES: usize,
    H: HeldRoom,
> core::fmt::Debug for State<M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("State")
            .field("services", &SERVICES)
            .field("data", &DATA)
            .field("events", &EVENTS)
            .field("subscribers", &SUBSCRIBERS)
            .field("answers", &ANSWERS)
            .field("queries", &QUERIES)
            .finish_non_exhaustive()
    }
}

/// The runner's buffers: the frame buffer `TX` handed to [`Node::poll_transmit`], and the
/// UDP socket's storage (in each direction a ring of at most `PACKETS` datagrams, with `RX`
/// bytes of payload for received datagrams and `SEND` bytes for datagrams waiting to leave).
///
/// [`Buffers::new`] is `const`, so they can live in a `static` and never touch the stack.
///
/// `TX` must be at least [`Node::TRANSMIT_BUF`] of the node (1401 bytes for the default
/// `SERVICES = 32`, `DATA = 512`, the default of `TX`; 1470 bytes with the feature `seal`); a
/// smaller value fails to compile in [`new`](crate::new). The socket buffers must hold the
/// largest datagram, plus the datagrams that arrive between two runs of the runner: without
/// smoltcp's `proto-ipv4-fragmentation` no datagram exceeds the MTU (1472 bytes of UDP payload
/// on Ethernet). The defaults (8 datagrams, 2 KiB each way) suit 32 peers.
pub struct Buffers<
    const TX: usize = { Node::<DefaultPolicy, 32, 512>::TRANSMIT_BUF },
    const PACKETS: usize = 8,
    const RX: usize = 2048,
    const SEND: usize = 2048,
> {
    pub(crate) tx: [u8; TX],
    pub(crate) rx_meta: [PacketMetadata; PACKETS],
    pub(crate) rx: [u8; RX],
    pub(crate) send_meta: [PacketMetadata; PACKETS],
    pub(crate) send: [u8; SEND],
}

impl<const TX: usize, const PACKETS: usize, const RX: usize, const SEND: usize>
    Buffers<TX, PACKETS, RX, SEND>
{
    /// Empty buffers.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            tx: [0; TX],
            rx_meta: [PacketMetadata::EMPTY; PACKETS],
            rx: [0; RX],
            send_meta: [PacketMetadata::EMPTY; PACKETS],
            send: [0; SEND],
        }
    }
}

impl<const TX: usize, const PACKETS: usize, const RX: usize, const SEND: usize> Default
    for Buffers<TX, PACKETS, RX, SEND>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const TX: usize, const PACKETS: usize, const RX: usize, const SEND: usize> core::fmt::Debug
    for Buffers<TX, PACKETS, RX, SEND>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Buffers")
            .field("tx", &TX)
            .field("packets", &PACKETS)
            .field("rx", &RX)
            .field("send", &SEND)
            .finish()
    }
}
