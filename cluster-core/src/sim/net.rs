//! [`SimNet`]: a sans-IO virtual network of hosts, multicast groups and TCP connections.

use core::cmp::Reverse;
use core::time::Duration;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use super::fanout::{Copy, Fanout};
use super::rng::SimRng;
use crate::time::millis_ceil;
use crate::wire::{Message, MessageKind};
use crate::{ConnId, Destination, Endpoint, Instant, Protocol, SendId, Source, Transmit};

/// A host of the virtual network: one hid, one or more IPv4 addresses, one LAN segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub usize);

/// A node's place on the network (its sockets): one per node slot, kept across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub usize);

/// How datagrams and stream bytes travel between two endpoints.
///
/// Each datagram takes `latency` plus a uniform draw in `0..=jitter`; it is lost with
/// probability `loss`, delivered twice with probability `duplicate`, and held back by up to
/// `reorder_delay` more with probability `reorder`. Streams (TCP) take `latency` plus jitter
/// too, and are never lost, duplicated or reordered; with [`NetConfig::stream_rto`] set, `loss`
/// delays them as TCP's retransmissions would.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Largest extra random delay.
    pub jitter: Duration,
    /// Probability that a datagram is lost (per receiver).
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram is delayed by up to `reorder_delay` more.
    pub reorder: f64,
    /// The extra delay of a reordered datagram.
    pub reorder_delay: Duration,
}

impl LinkModel {
    /// A loss-free switched LAN: 1 ms plus up to 1 ms of jitter.
    #[must_use]
    pub const fn lan() -> Self {
        Self {
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
        }
    }

    /// The loopback between two nodes of one host: no delay, no loss.
    #[must_use]
    pub const fn loopback() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
        }
    }

    /// This model with datagram loss probability `loss`.
    #[must_use]
    pub const fn with_loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }

    /// This model with duplication and reordering probabilities.
    #[must_use]
    pub const fn with_chaos(mut self, duplicate: f64, reorder: f64) -> Self {
        self.duplicate = duplicate;
        self.reorder = reorder;
        self
    }
}

/// The network's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// Between hosts.
    pub lan: LinkModel,
    /// Between the endpoints of one host.
    pub local: LinkModel,
    /// How long a TCP connect or write to an unreachable host (partitioned, or no such
    /// address) takes to fail. A reachable host without a listener on the port refuses at
    /// once (one round trip).
    pub connect_timeout: Duration,
    /// The multicast port, the source port of every multicast datagram (spec 1.1).
    pub multicast_port: u16,
    /// Probability that a stream write is read by the receiver in two chunks (exercises
    /// reassembly; the bytes stay in order).
    pub stream_split: f64,
    /// Largest extra delay of the second chunk of a split write (0: both chunks are read at
    /// the same instant).
    pub stream_split_delay: Duration,
    /// TCP's first retransmission timeout for data (Linux: 200 ms at least). When non-zero,
    /// each stream write is lost with the link's `loss` and sent again after this long,
    /// doubling at each loss in a row, so loss delays streams as it does real TCP; when zero,
    /// streams ignore `loss`.
    pub stream_rto: Duration,
    /// TCP's first SYN retransmission timeout (Linux: 1 s), used with
    /// [`stream_rto`](Self::stream_rto): a connection is set up when both the SYN and the
    /// SYN-ACK get through (each lost with the link's `loss`), retried after this long,
    /// doubling.
    pub syn_rto: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            lan: LinkModel::lan(),
            local: LinkModel::loopback(),
            connect_timeout: Duration::from_millis(1000),
            multicast_port: 23000,
            stream_split: 0.0,
            stream_split_delay: Duration::ZERO,
            stream_rto: Duration::ZERO,
            syn_rto: Duration::ZERO,
        }
    }
}

/// What the network hands to an endpoint, in `(time, seq)` order.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Received bytes: a multicast datagram, or a chunk of a TCP stream.
    Bytes {
        /// The receiver.
        to: EndpointId,
        /// Where they came from, as the adapter would describe it.
        source: Source,
        /// The bytes.
        bytes: Rc<[u8]>,
    },
    /// A direct send was delivered to the transport (connected and written).
    TransportOk {
        /// The sender.
        to: EndpointId,
        /// The send's token.
        send: SendId,
    },
    /// A direct send failed (refused, reset, timed out, no address).
    TransportFailed {
        /// The sender.
        to: EndpointId,
        /// The send's token.
        send: SendId,
    },
    /// A connection of this endpoint was closed or reset.
    ConnectionClosed {
        /// The endpoint whose connection closed.
        to: EndpointId,
        /// The connection, as its bytes were described.
        source: Source,
    },
}

/// One recorded network event (see [`SimNet::set_trace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// A node handed a frame to the network.
    Sent {
        /// When.
        at: Instant,
        /// The sender.
        from: EndpointId,
        /// Where to.
        dst: Destination,
        /// The frame's bytes.
        frame: Vec<u8>,
    },
    /// A direct send's outcome reached its sender.
    Outcome {
        /// When.
        at: Instant,
        /// The sender.
        to: EndpointId,
        /// The send's token.
        send: SendId,
        /// Whether it worked.
        ok: bool,
    },
}

impl Trace {
    /// The message kind of a sent frame (`None` for outcomes and undecodable frames).
    #[must_use]
    pub fn kind(&self) -> Option<MessageKind> {
        match self {
            Self::Sent { frame, .. } => Message::parse(frame).ok().and_then(|(m, _)| m.kind),
            Self::Outcome { .. } => None,
        }
    }

    /// The bytes of a sent frame.
    #[must_use]
    pub fn frame(&self) -> Option<&[u8]> {
        match self {
            Self::Sent { frame, .. } => Some(frame),
            Self::Outcome { .. } => None,
        }
    }

    /// True for a sent frame whose `filter` names `item`.
    #[must_use]
    pub fn filter_names(&self, item: &[u8]) -> bool {
        self.frame()
            .and_then(|f| Message::parse(f).ok())
            .and_then(|(m, _)| m.filter)
            .is_some_and(|filter| filter.contains(item))
    }

    /// When it happened.
    #[must_use]
    pub const fn at(&self) -> Instant {
        match self {
            Self::Sent { at, .. } | Self::Outcome { at, .. } => *at,
        }
    }
}

/// Counters of a [`SimNet`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Multicast datagrams sent (each reaches every receiver in range).
    pub multicasts: u64,
    /// Datagram copies scheduled for delivery (duplicates included).
    pub datagrams_scheduled: u64,
    /// Datagram copies lost by the link model.
    pub datagrams_lost: u64,
    /// Datagram copies duplicated by the link model.
    pub datagrams_duplicated: u64,
    /// Datagram copies dropped because a partition cut the path while in flight, or the
    /// receiver was down when they arrived.
    pub datagrams_undeliverable: u64,
    /// Stream writes.
    pub stream_writes: u64,
    /// Stream segments and connection set-ups sent again after a loss
    /// ([`NetConfig::stream_rto`]).
    pub stream_retransmits: u64,
    /// TCP connections opened.
    pub connections_opened: u64,
    /// Connects refused (host reachable, nobody listening on the port).
    pub connects_refused: u64,
    /// Connects and writes that timed out (host unreachable).
    pub timeouts: u64,
    /// Writes on a connection whose peer was gone (reset).
    pub resets: u64,
}

#[derive(Debug, Clone)]
struct Host {
    hid: String,
    ips: Vec<Ipv4Addr>,
    lan: u32,
    group: u32,
    next_port: u16,
    next_ephemeral: u16,
}

#[derive(Debug, Clone, Default)]
struct Ep {
    host: usize,
    up: bool,
    incarnation: u32,
    remote: bool,
    listener: Option<u16>,
    /// The adapter's cache of connections it opened, by peer address.
    outbound: HashMap<SocketAddrV4, usize>,
}

#[derive(Debug, Clone, Copy)]
struct End {
    ep: usize,
    incarnation: u32,
    addr: SocketAddrV4,
}

#[derive(Debug, Clone)]
struct Conn {
    ends: [End; 2],
    open: bool,
    /// The latest scheduled delivery towards each end, so that streams stay ordered.
    last_at: [Instant; 2],
}

/// The id of end `end` of connection `conn` (ids are unique across the whole network).
fn conn_id(conn: usize, end: usize) -> ConnId {
    let conn = u32::try_from(conn).expect("sim: more than 2^31 connections");
    ConnId((conn << 1) | u32::from(end == 1))
}

#[derive(Debug)]
enum ItemKind {
    /// The copies of one multicast datagram due at one instant.
    Fanout(Fanout),
    Stream {
        to: usize,
        incarnation: u32,
        source: Source,
        bytes: Rc<[u8]>,
    },
    Outcome {
        to: usize,
        incarnation: u32,
        send: SendId,
        ok: bool,
    },
    Closed {
        to: usize,
        incarnation: u32,
        source: Source,
    },
}

/// A queue entry: its time, its sequence number (ties keep sending order) and the slot of
/// its item. Items live in a slab so that the heap moves 24 bytes, not whole items. A
/// multicast datagram takes one entry per instant at which copies arrive (a [`Fanout`]),
/// keyed by the sequence number of its next copy: the copies keep the order they would have
/// as one entry each, and a datagram sent to a thousand receivers costs a few heap
/// operations instead of a thousand.
type Entry = Reverse<(Instant, u64, u32)>;

/// A deterministic, sans-IO virtual network.
///
/// It plays both the wire and the adapters' socket layer: multicast with TTL 0 (same host)
/// or 1 (same LAN segment, for endpoints in remote mode), and TCP connections with the
/// adapter's bookkeeping (listeners, [`ConnId`]s, reuse of connections, outcomes of direct
/// sends). Everything it does is ordered by `(time, seq)` and drawn from one seed.
///
/// Drive it like a node: [`send`](Self::send) what a node transmits, then wait until
/// [`poll_timeout`](Self::poll_timeout) and take [`poll_delivery`](Self::poll_delivery)
/// until `None`.
///
/// TCP model: a write on an open connection succeeds at once and arrives after the link
/// delay, in order. A connect to a reachable host succeeds after one round trip when an
/// endpoint listens on the port, and is refused after one round trip otherwise. Writes and
/// connects to unreachable hosts (partitioned, unknown address) fail after
/// [`NetConfig::connect_timeout`]. A write on a connection whose peer crashed is reset after
/// one round trip. Closing a connection notifies its ends ([`Delivery::ConnectionClosed`]).
#[derive(Debug)]
pub struct SimNet {
    config: NetConfig,
    rng: SimRng,
    now: Instant,
    seq: u64,
    queue: BinaryHeap<Entry>,
    /// The fanout being delivered, out of the heap while it stays the earliest entry.
    current: Option<Entry>,
    /// Deliveries in flight (one per datagram copy).
    pending: usize,
    items: Vec<Option<ItemKind>>,
    free: Vec<u32>,
    hosts: Vec<Host>,
    host_by_ip: HashMap<Ipv4Addr, usize>,
    eps: Vec<Ep>,
    listeners: HashMap<(usize, u16), usize>,
    conns: Vec<Conn>,
    stats: NetStats,
    trace: Option<Vec<Trace>>,
}

impl SimNet {
    /// An empty network whose randomness follows from `seed`.
    #[must_use]
    pub fn new(seed: u64, config: NetConfig) -> Self {
        Self {
            config,
            rng: SimRng::new(seed),
            now: Instant::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            current: None,
            pending: 0,
            items: Vec::new(),
            free: Vec::new(),
            hosts: Vec::new(),
            host_by_ip: HashMap::new(),
            eps: Vec::new(),
            listeners: HashMap::new(),
            conns: Vec::new(),
            stats: NetStats::default(),
            trace: None,
        }
    }

    /// The parameters.
    #[must_use]
    pub const fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Changes the link model between hosts from now on (datagrams in flight keep theirs).
    pub fn set_lan(&mut self, lan: LinkModel) {
        self.config.lan = lan;
    }

    /// Changes every parameter from now on.
    pub fn set_config(&mut self, config: NetConfig) {
        self.config = config;
    }

    /// Starts (`true`) or stops recording every frame sent and every outcome.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = if on { Some(Vec::new()) } else { None };
    }

    /// What was recorded since [`set_trace`](Self::set_trace).
    #[must_use]
    pub fn trace(&self) -> &[Trace] {
        self.trace.as_deref().unwrap_or_default()
    }

    /// Counters.
    #[must_use]
    pub const fn stats(&self) -> NetStats {
        self.stats
    }

    /// Adds a host with hid `hid` and addresses `ips` (the first is its source address) on
    /// LAN segment `lan`.
    ///
    /// # Panics
    ///
    /// When `ips` is empty or an address is already taken.
    pub fn add_host(&mut self, hid: &str, ips: &[Ipv4Addr], lan: u32) -> HostId {
        assert!(!ips.is_empty(), "a host needs an address");
        let index = self.hosts.len();
        for ip in ips {
            let previous = self.host_by_ip.insert(*ip, index);
            assert!(previous.is_none(), "address {ip} is already taken");
        }
        self.hosts.push(Host {
            hid: hid.into(),
            ips: ips.to_vec(),
            lan,
            group: 0,
            next_port: 40_000,
            next_ephemeral: 50_000,
        });
        HostId(index)
    }

    /// The hid of `host`.
    #[must_use]
    pub fn hid(&self, host: HostId) -> &str {
        &self.hosts[host.0].hid
    }

    /// The addresses of `host`.
    #[must_use]
    pub fn ips(&self, host: HostId) -> &[Ipv4Addr] {
        &self.hosts[host.0].ips
    }

    /// Adds an endpoint (a node's sockets) on `host`, down until [`start`](Self::start).
    pub fn add_endpoint(&mut self, host: HostId) -> EndpointId {
        self.eps.push(Ep {
            host: host.0,
            ..Ep::default()
        });
        EndpointId(self.eps.len() - 1)
    }

    /// The host of `ep`.
    #[must_use]
    pub fn host_of(&self, ep: EndpointId) -> HostId {
        HostId(self.eps[ep.0].host)
    }

    /// Brings `ep` up (again): a new incarnation, with no connection and no listener. With
    /// `remote`, its multicast datagrams have TTL 1 and reach its LAN segment; otherwise TTL
    /// 0, its host only.
    pub fn start(&mut self, ep: EndpointId, remote: bool) {
        let e = &mut self.eps[ep.0];
        e.up = true;
        e.incarnation += 1;
        e.remote = remote;
        e.outbound.clear();
    }

    /// True while `ep` is up.
    #[must_use]
    pub fn is_up(&self, ep: EndpointId) -> bool {
        self.eps[ep.0].up
    }

    /// Opens a TCP listener for `ep` on a fresh port of its host, closing its previous one;
    /// returns the port.
    pub fn listen(&mut self, ep: EndpointId) -> u16 {
        self.close_listener(ep);
        let host = self.eps[ep.0].host;
        let h = &mut self.hosts[host];
        let port = h.next_port;
        h.next_port = if h.next_port >= 49_999 {
            40_000
        } else {
            h.next_port + 1
        };
        self.listeners.insert((host, port), ep.0);
        self.eps[ep.0].listener = Some(port);
        port
    }

    /// The port `ep` listens on.
    #[must_use]
    pub fn listener(&self, ep: EndpointId) -> Option<u16> {
        self.eps[ep.0].listener
    }

    fn close_listener(&mut self, ep: EndpointId) {
        let e = &mut self.eps[ep.0];
        if let Some(port) = e.listener.take() {
            self.listeners.remove(&(e.host, port));
        }
    }

    /// The TCP stack of `ep` dies: its listener closes (connects are refused) and every
    /// connection is reset; both ends are told. The endpoint stays up: multicast still works.
    pub fn kill_listener(&mut self, now: Instant, ep: EndpointId) {
        self.advance(now);
        self.close_listener(ep);
        self.close_all(ep, true);
    }

    /// `ep` stops (crash or exit): listener closed, connections closed (peers are told after
    /// the link delay, as they would read end-of-file), and nothing more is delivered to it.
    pub fn stop(&mut self, now: Instant, ep: EndpointId) {
        self.advance(now);
        self.close_listener(ep);
        self.close_all(ep, false);
        self.eps[ep.0].up = false;
    }

    /// Splits the network: hosts in different groups cannot reach each other (same-host
    /// traffic always flows). Hosts not listed form one more group.
    pub fn partition(&mut self, groups: &[&[HostId]]) {
        for host in &mut self.hosts {
            host.group = 0;
        }
        for (index, group) in groups.iter().enumerate() {
            for host in *group {
                self.hosts[host.0].group = u32::try_from(index).unwrap_or(u32::MAX - 1) + 1;
            }
        }
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        for host in &mut self.hosts {
            host.group = 0;
        }
    }

    /// True when `a` and `b` can exchange packets.
    #[must_use]
    pub fn reachable(&self, a: HostId, b: HostId) -> bool {
        a == b || self.hosts[a.0].group == self.hosts[b.0].group
    }

    /// The earliest pending delivery.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.earliest().map(|Reverse((at, _, _))| at)
    }

    /// Number of items in flight (each copy of a datagram counts).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.pending
    }

    /// The earliest entry: the current fanout or the top of the heap.
    fn earliest(&self) -> Option<Entry> {
        match (self.current, self.queue.peek()) {
            (Some(current), Some(top)) => Some(current.max(*top)),
            (current, top) => current.or(top.copied()),
        }
    }

    /// Takes the earliest entry.
    fn pop_earliest(&mut self) -> Option<Entry> {
        match (self.current, self.queue.peek()) {
            (Some(current), Some(top)) if *top > current => self.queue.pop(),
            (Some(_), _) => self.current.take(),
            (None, _) => self.queue.pop(),
        }
    }

    /// The next delivery due at `now`, or `None`. Items addressed to an endpoint that went
    /// down (or restarted) since they were sent are discarded.
    pub fn poll_delivery(&mut self, now: Instant) -> Option<Delivery> {
        self.advance(now);
        while self.earliest().is_some_and(|Reverse((at, _, _))| at <= now) {
            let Reverse((at, _, slot)) = self.pop_earliest()?;
            let Some(kind) = self.items.get_mut(slot as usize).and_then(Option::take) else {
                continue;
            };
            let alive = |net: &Self, to: usize, incarnation: u32| {
                net.eps[to].up && net.eps[to].incarnation == incarnation
            };
            if let ItemKind::Fanout(mut fanout) = kind {
                let Some(copy) = fanout.take() else {
                    self.free.push(slot);
                    continue;
                };
                self.pending -= 1;
                let (from_host, source, bytes) = (
                    fanout.from_host,
                    fanout.source(&copy),
                    Rc::clone(&fanout.bytes),
                );
                self.requeue(at, slot, fanout);
                let host = HostId(self.eps[copy.to].host);
                if alive(self, copy.to, copy.incarnation) && self.reachable(HostId(from_host), host)
                {
                    return Some(Delivery::Bytes {
                        to: EndpointId(copy.to),
                        source,
                        bytes,
                    });
                }
                self.stats.datagrams_undeliverable += 1;
                continue;
            }
            self.free.push(slot);
            self.pending -= 1;
            match kind {
                ItemKind::Fanout(_) => {}
                ItemKind::Stream {
                    to,
                    incarnation,
                    source,
                    bytes,
                } => {
                    if alive(self, to, incarnation) {
                        return Some(Delivery::Bytes {
                            to: EndpointId(to),
                            source,
                            bytes,
                        });
                    }
                }
                ItemKind::Outcome {
                    to,
                    incarnation,
                    send,
                    ok,
                } => {
                    if alive(self, to, incarnation) {
                        if let Some(trace) = &mut self.trace {
                            trace.push(Trace::Outcome {
                                at: now,
                                to: EndpointId(to),
                                send,
                                ok,
                            });
                        }
                        let to = EndpointId(to);
                        return Some(if ok {
                            Delivery::TransportOk { to, send }
                        } else {
                            Delivery::TransportFailed { to, send }
                        });
                    }
                }
                ItemKind::Closed {
                    to,
                    incarnation,
                    source,
                } => {
                    if alive(self, to, incarnation) {
                        return Some(Delivery::ConnectionClosed {
                            to: EndpointId(to),
                            source,
                        });
                    }
                }
            }
        }
        None
    }

    /// Sends what a node at `from` transmitted: `t` as returned by `poll_transmit`, whose
    /// frame is `buf[..t.len]`. Direct sends get their outcome later, as a delivery.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than `t.len`.
    pub fn send(&mut self, now: Instant, from: EndpointId, t: &Transmit, buf: &[u8]) {
        self.advance(now);
        let frame = &buf[..t.len];
        if let Some(trace) = &mut self.trace {
            trace.push(Trace::Sent {
                at: now,
                from,
                dst: t.dst,
                frame: frame.to_vec(),
            });
        }
        if !self.eps[from.0].up {
            return;
        }
        match t.dst {
            Destination::Group { send } => {
                for segment in t.segments(buf) {
                    self.multicast(now, from.0, segment);
                }
                if let Some(send) = send {
                    // A UDP send succeeds locally whoever listens.
                    self.outcome(now, from.0, send, true);
                }
            }
            Destination::Service {
                via: Protocol::Tcp,
                conn,
                endpoint,
                send,
                ..
            } => self.tcp_send(now, from.0, conn, endpoint, send, frame),
            Destination::Service { send, .. } => {
                // No unix sockets in the simulator.
                self.outcome(now, from.0, send, false);
            }
        }
    }

    // ----- internals -----

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn push(&mut self, at: Instant, kind: ItemKind) {
        self.seq += 1;
        self.pending += 1;
        self.insert(at, self.seq, kind);
    }

    /// Queues `kind` at `(at, seq)`.
    fn insert(&mut self, at: Instant, seq: u64, kind: ItemKind) {
        let slot = if let Some(slot) = self.free.pop() {
            self.items[slot as usize] = Some(kind);
            slot
        } else {
            self.items.push(Some(kind));
            u32::try_from(self.items.len() - 1).expect("sim: more than 2^32 items in flight")
        };
        self.queue.push(Reverse((at, seq, slot)));
    }

    /// Puts a fanout back after one of its copies was taken: as the current entry, keyed by
    /// its next copy, or frees its slot when none is left.
    fn requeue(&mut self, at: Instant, slot: u32, fanout: Fanout) {
        let Some(seq) = fanout.next_seq() else {
            self.free.push(slot);
            return;
        };
        self.items[slot as usize] = Some(ItemKind::Fanout(fanout));
        if let Some(previous) = self.current.replace(Reverse((at, seq, slot))) {
            self.queue.push(previous);
        }
    }

    fn link(&self, a: usize, b: usize) -> LinkModel {
        if self.eps[a].host == self.eps[b].host {
            self.config.local
        } else {
            self.config.lan
        }
    }

    fn delay(&mut self, link: &LinkModel) -> u64 {
        millis_ceil(link.latency) + self.rng.inclusive(0, millis_ceil(link.jitter))
    }

    /// The time a stream write loses to retransmissions: `stream_rto`, doubling, for each
    /// loss in a row (none when `stream_rto` is zero).
    fn stream_retransmits(&mut self, link: &LinkModel) -> u64 {
        let rto = millis_ceil(self.config.stream_rto);
        self.backoff(rto, |net| net.rng.chance(link.loss))
    }

    /// The time a connection set-up loses to lost SYNs or SYN-ACKs.
    fn handshake_retries(&mut self, link: &LinkModel) -> u64 {
        let rto = millis_ceil(self.config.syn_rto);
        if millis_ceil(self.config.stream_rto) == 0 {
            return 0;
        }
        self.backoff(rto, |net| {
            net.rng.chance(link.loss) || net.rng.chance(link.loss)
        })
    }

    /// `rto + 2 rto + 4 rto + ...`, one term per `lost()` in a row (at most 8).
    fn backoff(&mut self, rto: u64, lost: impl Fn(&mut Self) -> bool) -> u64 {
        let mut total = 0;
        let mut wait = rto;
        if rto == 0 {
            return 0;
        }
        for _ in 0..8 {
            if !lost(self) {
                break;
            }
            self.stats.stream_retransmits += 1;
            total += wait;
            wait *= 2;
        }
        total
    }

    fn outcome(&mut self, at: Instant, to: usize, send: SendId, ok: bool) {
        let incarnation = self.eps[to].incarnation;
        self.push(
            at,
            ItemKind::Outcome {
                to,
                incarnation,
                send,
                ok,
            },
        );
    }

    fn multicast(&mut self, now: Instant, from: usize, segment: &[u8]) {
        self.stats.multicasts += 1;
        let src_host = self.eps[from].host;
        let remote = self.eps[from].remote;
        let src_ip = self.hosts[src_host].ips[0];
        let addr = SocketAddr::new(IpAddr::V4(src_ip), self.config.multicast_port);
        let bytes: Rc<[u8]> = Rc::from(segment);
        // One fanout per arrival instant (a handful: latency plus jitter).
        let mut fanouts: Vec<(Instant, Fanout)> = Vec::new();
        for to in 0..self.eps.len() {
            let ep = &self.eps[to];
            if !ep.up {
                continue;
            }
            let same = ep.host == src_host;
            if !same {
                let (a, b) = (&self.hosts[src_host], &self.hosts[ep.host]);
                if !remote || a.lan != b.lan || a.group != b.group {
                    continue;
                }
            }
            let link = if same {
                self.config.local
            } else {
                self.config.lan
            };
            let incarnation = ep.incarnation;
            if self.rng.chance(link.loss) {
                self.stats.datagrams_lost += 1;
                continue;
            }
            let copies = if self.rng.chance(link.duplicate) {
                self.stats.datagrams_duplicated += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let mut delay = self.delay(&link);
                if self.rng.chance(link.reorder) {
                    delay += self.rng.inclusive(0, millis_ceil(link.reorder_delay));
                }
                self.stats.datagrams_scheduled += 1;
                self.seq += 1;
                self.pending += 1;
                let at = now.saturating_add_millis(delay);
                let copy = Copy {
                    to,
                    incarnation,
                    seq: self.seq,
                    local: same,
                };
                match fanouts.iter_mut().find(|(t, _)| *t == at) {
                    Some((_, fanout)) => fanout.add(copy),
                    None => {
                        fanouts.push((at, Fanout::new(src_host, addr, Rc::clone(&bytes), copy)))
                    }
                }
            }
        }
        for (at, fanout) in fanouts {
            if let Some(seq) = fanout.next_seq() {
                self.insert(at, seq, ItemKind::Fanout(fanout));
            }
        }
    }

    /// The open connection `id` with an end at `ep` (its current incarnation).
    fn open_end(&self, ep: usize, id: ConnId) -> Option<(usize, usize)> {
        let conn = usize::try_from(id.0 >> 1).ok()?;
        let end = usize::from(id.0 & 1 == 1);
        self.usable(ep, conn, end).then_some((conn, end))
    }

    fn usable(&self, ep: usize, conn: usize, end: usize) -> bool {
        self.conns.get(conn).is_some_and(|c| {
            c.open && c.ends[end].ep == ep && c.ends[end].incarnation == self.eps[ep].incarnation
        })
    }

    fn cached(&self, ep: usize, endpoint: Endpoint) -> Option<(usize, usize)> {
        let Endpoint::Tcp(SocketAddr::V4(addr)) = endpoint else {
            return None;
        };
        let conn = *self.eps[ep].outbound.get(&addr)?;
        self.usable(ep, conn, 0).then_some((conn, 0))
    }

    fn tcp_send(
        &mut self,
        now: Instant,
        from: usize,
        conn: Option<ConnId>,
        endpoint: Endpoint,
        send: SendId,
        frame: &[u8],
    ) {
        let timeout = millis_ceil(self.config.connect_timeout);
        let existing = conn
            .and_then(|c| self.open_end(from, c))
            .or_else(|| self.cached(from, endpoint));
        if let Some((conn, end)) = existing {
            let peer = self.conns[conn].ends[1 - end];
            let link = self.link(from, peer.ep);
            let (a, b) = (HostId(self.eps[from].host), HostId(self.eps[peer.ep].host));
            let peer_alive =
                self.eps[peer.ep].up && self.eps[peer.ep].incarnation == peer.incarnation;
            if !self.reachable(a, b) {
                self.stats.timeouts += 1;
                let at = now.saturating_add_millis(timeout);
                self.fail_conn(conn, end, at);
                self.outcome(at, from, send, false);
            } else if !peer_alive {
                self.stats.resets += 1;
                let rtt = self.delay(&link) + self.delay(&link);
                let at = now.saturating_add_millis(rtt);
                self.fail_conn(conn, end, at);
                self.outcome(at, from, send, false);
            } else {
                self.write(now, conn, end, frame);
                self.outcome(now, from, send, true);
            }
            return;
        }
        let target = match endpoint {
            Endpoint::Tcp(SocketAddr::V4(addr)) => Some(addr),
            _ => None,
        };
        let Some(addr) = target else {
            self.outcome(now, from, send, false);
            return;
        };
        let from_host = self.eps[from].host;
        let host = if addr.ip().is_loopback() {
            Some(from_host)
        } else {
            self.host_by_ip.get(addr.ip()).copied()
        };
        let Some(host) = host.filter(|h| self.reachable(HostId(from_host), HostId(*h))) else {
            self.stats.timeouts += 1;
            self.outcome(now.saturating_add_millis(timeout), from, send, false);
            return;
        };
        let link = if host == from_host {
            self.config.local
        } else {
            self.config.lan
        };
        let rtt = self.delay(&link) + self.delay(&link);
        let connected = now.saturating_add_millis(rtt + self.handshake_retries(&link));
        let Some(&to) = self.listeners.get(&(host, addr.port())) else {
            self.stats.connects_refused += 1;
            self.outcome(connected, from, send, false);
            return;
        };
        // Connected: the accepting side gets a connection of its own.
        let h = &mut self.hosts[from_host];
        let port = h.next_ephemeral;
        h.next_ephemeral = if h.next_ephemeral >= 60_999 {
            50_000
        } else {
            h.next_ephemeral + 1
        };
        let local = SocketAddrV4::new(self.hosts[from_host].ips[0], port);
        let remote = SocketAddrV4::new(self.hosts[host].ips[0], addr.port());
        let index = self.conns.len();
        self.conns.push(Conn {
            ends: [
                End {
                    ep: from,
                    incarnation: self.eps[from].incarnation,
                    addr: local,
                },
                End {
                    ep: to,
                    incarnation: self.eps[to].incarnation,
                    addr: remote,
                },
            ],
            open: true,
            last_at: [connected, connected],
        });
        self.stats.connections_opened += 1;
        self.eps[from].outbound.insert(addr, index);
        self.write(connected, index, 0, frame);
        self.outcome(connected, from, send, true);
    }

    /// Writes `bytes` from end `from_end` of `conn`, in order behind earlier writes.
    fn write(&mut self, now: Instant, conn: usize, from_end: usize, bytes: &[u8]) {
        self.stats.stream_writes += 1;
        let to_end = 1 - from_end;
        let c = &self.conns[conn];
        let (src, dst) = (c.ends[from_end], c.ends[to_end]);
        let link = self.link(src.ep, dst.ep);
        let same = self.eps[src.ep].host == self.eps[dst.ep].host;
        let at = now
            .saturating_add_millis(self.delay(&link) + self.stream_retransmits(&link))
            .max(self.conns[conn].last_at[to_end]);
        self.conns[conn].last_at[to_end] = at;
        let source = Source::tcp(conn_id(conn, to_end), SocketAddr::V4(src.addr), same);
        let split = if bytes.len() >= 2 && self.rng.chance(self.config.stream_split) {
            let cut = self.rng.inclusive(1, bytes.len() as u64 - 1);
            usize::try_from(cut).unwrap_or(1)
        } else {
            bytes.len()
        };
        let (first, rest) = bytes.split_at(split);
        let mut at = at;
        for (index, part) in [first, rest].into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            if index == 1 {
                let extra = self
                    .rng
                    .inclusive(0, millis_ceil(self.config.stream_split_delay));
                at = at.saturating_add_millis(extra);
                self.conns[conn].last_at[to_end] = at;
            }
            self.push(
                at,
                ItemKind::Stream {
                    to: dst.ep,
                    incarnation: dst.incarnation,
                    source,
                    bytes: Rc::from(part),
                },
            );
        }
    }

    /// The source of `conn` as end `end` sees it.
    fn source_at(&self, conn: usize, end: usize) -> Source {
        let c = &self.conns[conn];
        let peer = c.ends[1 - end];
        let same = self.eps[c.ends[end].ep].host == self.eps[peer.ep].host;
        Source::tcp(conn_id(conn, end), SocketAddr::V4(peer.addr), same)
    }

    /// A write on `conn` from `end` failed at `at`: the sender's adapter closes it.
    fn fail_conn(&mut self, conn: usize, end: usize, at: Instant) {
        self.conns[conn].open = false;
        let me = self.conns[conn].ends[end];
        let source = self.source_at(conn, end);
        self.push(
            at,
            ItemKind::Closed {
                to: me.ep,
                incarnation: me.incarnation,
                source,
            },
        );
    }

    /// Closes every open connection of `ep` (of its current incarnation), in the order they
    /// were opened; peers that can hear it are told after the link delay, and `ep` itself at
    /// once when `tell_self`. Found by a scan of all connections rather than kept in a list
    /// per endpoint: a large LAN opens millions, and closing them all is rare.
    fn close_all(&mut self, ep: EndpointId, tell_self: bool) {
        let now = self.now;
        self.eps[ep.0].outbound.clear();
        let incarnation = self.eps[ep.0].incarnation;
        for conn in 0..self.conns.len() {
            let c = &self.conns[conn];
            let here = c
                .ends
                .iter()
                .any(|e| e.ep == ep.0 && e.incarnation == incarnation);
            if !c.open || !here {
                continue;
            }
            self.conns[conn].open = false;
            for end in 0..2 {
                let e = self.conns[conn].ends[end];
                let source = self.source_at(conn, end);
                let current = self.eps[e.ep].up && self.eps[e.ep].incarnation == e.incarnation;
                if e.ep == ep.0 {
                    if tell_self && current {
                        self.push(
                            now,
                            ItemKind::Closed {
                                to: e.ep,
                                incarnation: e.incarnation,
                                source,
                            },
                        );
                    }
                    continue;
                }
                let (a, b) = (HostId(self.eps[ep.0].host), HostId(self.eps[e.ep].host));
                if current && self.reachable(a, b) {
                    let link = self.link(ep.0, e.ep);
                    let at = now.saturating_add_millis(self.delay(&link));
                    self.push(
                        at,
                        ItemKind::Closed {
                            to: e.ep,
                            incarnation: e.incarnation,
                            source,
                        },
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sid;

    fn group(len: usize) -> Transmit {
        Transmit {
            dst: Destination::Group { send: None },
            len,
            segment_size: 4096,
        }
    }

    fn tcp(addr: SocketAddrV4, send: u32, len: usize) -> Transmit {
        Transmit {
            dst: Destination::Service {
                sid: Sid::new(b"target").unwrap(),
                via: Protocol::Tcp,
                conn: None,
                endpoint: Endpoint::Tcp(SocketAddr::V4(addr)),
                send: SendId(send),
            },
            len,
            segment_size: len,
        }
    }

    fn drain(net: &mut SimNet, until: u64) -> Vec<(u64, Delivery)> {
        let mut out = Vec::new();
        while let Some(at) = net.poll_timeout().filter(|t| t.as_millis() <= until) {
            if let Some(d) = net.poll_delivery(at) {
                out.push((at.as_millis(), d));
            }
        }
        out
    }

    /// Two hosts of one LAN, two endpoints on the first, one on the second.
    fn net() -> (SimNet, [EndpointId; 3], [Ipv4Addr; 2]) {
        let mut net = SimNet::new(1, NetConfig::default());
        let ips = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        let h1 = net.add_host("02:00:00:00:00:01", &ips[..1], 0);
        let h2 = net.add_host("02:00:00:00:00:02", &ips[1..], 0);
        let eps = [
            net.add_endpoint(h1),
            net.add_endpoint(h1),
            net.add_endpoint(h2),
        ];
        (net, eps, ips)
    }

    fn receivers(out: &[(u64, Delivery)]) -> Vec<usize> {
        let mut to: Vec<usize> = out
            .iter()
            .filter_map(|(_, d)| match d {
                Delivery::Bytes { to, .. } => Some(to.0),
                _ => None,
            })
            .collect();
        to.sort_unstable();
        to
    }

    #[test]
    fn multicast_with_ttl_0_stays_on_its_host_and_ttl_1_reaches_the_lan() {
        let (mut net, [a, b, c], _) = net();
        net.start(a, false);
        net.start(b, false);
        net.start(c, true);
        net.send(Instant::ZERO, a, &group(3), b"abc");
        // Loopback included: the sender hears its own datagram.
        assert_eq!(receivers(&drain(&mut net, 100)), [0, 1]);
        net.send(Instant::from_millis(100), c, &group(3), b"abc");
        let out = drain(&mut net, 200);
        assert_eq!(receivers(&out), [0, 1, 2]);
        for (at, d) in &out {
            if let Delivery::Bytes { to, source, .. } = d {
                assert_eq!(source.local, to.0 == 2);
                assert_eq!(source.ip(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
                assert!((100..=102).contains(at) || to.0 == 2);
            }
        }
        net.partition(&[&[HostId(0)], &[HostId(1)]]);
        net.send(Instant::from_millis(200), c, &group(3), b"abc");
        assert_eq!(receivers(&drain(&mut net, 300)), [2]);
    }

    #[test]
    fn tcp_connects_to_listeners_refuses_closed_ports_and_times_out_when_unreachable() {
        let (mut net, [a, _, c], ips) = net();
        net.start(a, true);
        net.start(c, true);
        let port = net.listen(c);
        let at = Instant::ZERO;
        net.send(at, a, &tcp(SocketAddrV4::new(ips[1], port), 1, 2), b"hi");
        net.send(
            at,
            a,
            &tcp(SocketAddrV4::new(ips[1], port + 1), 2, 2),
            b"hi",
        );
        let out = drain(&mut net, 100);
        let ok = out
            .iter()
            .any(|(_, d)| matches!(d, Delivery::TransportOk { send, .. } if send.0 == 1));
        let refused = out
            .iter()
            .find(|(_, d)| matches!(d, Delivery::TransportFailed { send, .. } if send.0 == 2));
        assert!(ok);
        assert!(refused.is_some_and(|(t, _)| *t <= 4), "{out:?}");
        let bytes = out.iter().find_map(|(_, d)| match d {
            Delivery::Bytes { to, source, bytes } if to.0 == 2 => Some((*source, bytes.clone())),
            _ => None,
        });
        let (source, bytes) = bytes.expect("delivered");
        assert_eq!(&*bytes, b"hi");
        assert_eq!(source.via, Protocol::Tcp);
        assert!(!source.local);
        net.partition(&[&[HostId(1)]]);
        net.send(
            Instant::from_millis(100),
            a,
            &tcp(SocketAddrV4::new(ips[1], port), 3, 2),
            b"hi",
        );
        let out = drain(&mut net, 2000);
        let failed = out
            .iter()
            .find(|(_, d)| matches!(d, Delivery::TransportFailed { send, .. } if send.0 == 3));
        assert_eq!(failed.map(|(t, _)| *t), Some(1100), "{out:?}");
    }

    #[test]
    fn a_stream_stays_in_order_despite_jitter() {
        let mut config = NetConfig::default();
        config.lan.jitter = Duration::from_millis(20);
        config.stream_split = 0.5;
        let mut net = SimNet::new(3, config);
        let ips = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        let h1 = net.add_host("h1", &ips[..1], 0);
        let h2 = net.add_host("h2", &ips[1..], 0);
        let (a, c) = (net.add_endpoint(h1), net.add_endpoint(h2));
        net.start(a, true);
        net.start(c, true);
        let port = net.listen(c);
        let addr = SocketAddrV4::new(ips[1], port);
        let mut expected = Vec::new();
        for i in 0..50u8 {
            let bytes = [i; 8];
            expected.extend_from_slice(&bytes);
            net.send(
                Instant::from_millis(u64::from(i)),
                a,
                &tcp(addr, u32::from(i), 8),
                &bytes,
            );
        }
        let received: Vec<u8> = drain(&mut net, 10_000)
            .into_iter()
            .filter_map(|(_, d)| match d {
                Delivery::Bytes { bytes, .. } => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(received, expected);
        assert_eq!(net.stats().connections_opened, 1);
    }

    #[test]
    fn with_stream_rto_a_lossy_link_delays_streams_as_retransmissions_would() {
        let timed = |loss: f64, stream_rto: u64| {
            let mut lan = LinkModel::lan().with_loss(loss);
            lan.jitter = Duration::ZERO;
            let config = NetConfig {
                lan,
                stream_rto: Duration::from_millis(stream_rto),
                syn_rto: Duration::from_millis(1000),
                ..NetConfig::default()
            };
            let mut net = SimNet::new(7, config);
            let ips = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
            let h1 = net.add_host("h1", &ips[..1], 0);
            let h2 = net.add_host("h2", &ips[1..], 0);
            let (a, c) = (net.add_endpoint(h1), net.add_endpoint(h2));
            net.start(a, true);
            net.start(c, true);
            let addr = SocketAddrV4::new(ips[1], net.listen(c));
            for i in 0..200u32 {
                net.send(
                    Instant::from_millis(u64::from(i) * 10),
                    a,
                    &tcp(addr, i, 1),
                    &[1],
                );
            }
            let arrivals: Vec<u64> = drain(&mut net, 1_000_000)
                .into_iter()
                .filter(|(_, d)| matches!(d, Delivery::Bytes { .. }))
                .map(|(t, _)| t)
                .collect();
            (arrivals, net.stats().stream_retransmits)
        };
        // Without the model, loss does not touch streams: every write takes the 1 ms latency
        // (after the 2 ms connect of the first).
        let (plain, retransmits) = timed(0.5, 0);
        assert_eq!(retransmits, 0);
        assert_eq!(plain.len(), 200);
        assert!(
            plain
                .iter()
                .enumerate()
                .skip(1)
                .all(|(i, t)| *t == i as u64 * 10 + 1)
        );
        // With it, every byte still arrives, in order, and some late: by 200 ms, 600 ms, ...
        let (lossy, retransmits) = timed(0.5, 200);
        assert_eq!(lossy.len(), 200);
        assert!(lossy.windows(2).all(|w| w[0] <= w[1]), "out of order");
        assert!(retransmits > 50, "{retransmits}");
        let late = lossy
            .iter()
            .enumerate()
            .filter(|(i, t)| **t >= *i as u64 * 10 + 201)
            .count();
        assert!(late > 50, "{late} writes delayed");
    }
}
