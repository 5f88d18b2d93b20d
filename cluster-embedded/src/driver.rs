//! The poll-based driver: one [`Node`] on one smoltcp UDP socket.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::{
    DefaultPolicy, Destination, Event, NoHeld, Node, Policy, Protocol, QueryError, QueryId,
    QueryRequest, SendError, SendRequest, Sid, Source, TagError, TagOp,
};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::time::{Duration as NetDuration, Instant as NetInstant};
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::error::Error;
use crate::time::{core_instant, net_instant};

/// The multicast group and port of a cluster (spec 1.1): the driver joins `addr`, binds its
/// socket to `port` and sends every frame to `addr:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// The group address.
    pub addr: Ipv4Addr,
    /// The UDP port, bound and sent to.
    pub port: u16,
}

impl Group {
    /// The reference's group: `230.230.230.230:23000`.
    pub const CLUSTER: Self = Self {
        addr: Ipv4Addr::new(230, 230, 230, 230),
        port: 23000,
    };

    fn endpoint(self) -> IpEndpoint {
        IpEndpoint::new(IpAddress::from(self.addr), self.port)
    }
}

impl Default for Group {
    fn default() -> Self {
        Self::CLUSTER
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Group {
    fn format(&self, f: defmt::Formatter<'_>) {
        let [a, b, c, d] = self.addr.octets();
        defmt::write!(f, "{=u8}.{=u8}.{=u8}.{=u8}:{=u16}", a, b, c, d, self.port);
    }
}

/// How long the driver leaves datagrams in the socket at most while the node's event queue is
/// full ([`Driver::poll`]): long enough for an application that reads its events after every
/// poll, short against any `ttl`, so that the node still hears its peers' heartbeats when the
/// application is slow.
pub const EVENT_HOLD: NetDuration = NetDuration::from_millis(100);

/// Counters of the driver (the node's own are in [`Node::stats`]). They only grow
/// (saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams read from the socket and handed to the node.
    pub datagrams_received: u64,
    /// Datagrams the node dropped (the reason is counted in [`Node::stats`]).
    pub datagrams_dropped: u64,
    /// Times the driver started leaving datagrams in the socket because the node's event
    /// queue was full (see [`Driver::poll`]).
    pub holds: u64,
    /// Datagrams queued in the socket for sending.
    pub datagrams_sent: u64,
    /// Times the socket's transmit buffer had no room for `TX` more bytes while the node
    /// owed frames; they stayed in the node and left at a later [`Driver::poll`].
    pub send_stalls: u64,
    /// Times smoltcp refused to queue for the group as unaddressable (the socket was unbound
    /// or closed behind the driver's back); the node's frames stay queued in the node.
    pub frames_unsendable: u64,
    /// Direct sends over `t` or `u`, which this driver does not run. They cannot come up:
    /// [`Driver::new`] takes only nodes that run `c` alone, and a node sends only over its
    /// own protocols. Were one to, its frame (which names its target in its filter) is sent
    /// to the group and reported delivered.
    pub direct_sends_refused: u64,
}

/// Logs service changes at debug level (with `defmt`).
fn log_event<const DATA: usize>(event: &Event<DATA>) {
    #[cfg(feature = "defmt")]
    match event {
        Event::Discovered { sid } => {
            defmt::debug!("cluster: discovered {=[u8]:a}", sid.as_bytes());
        }
        Event::Lost { sid, reason } => {
            defmt::debug!(
                "cluster: lost {=[u8]:a} ({=str})",
                sid.as_bytes(),
                reason.name()
            );
        }
        _ => {}
    }
    let _ = event;
}

/// Adds one, saturating (never inlined: see `cluster_core`'s counters).
#[inline(never)]
fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

/// A cluster node on smoltcp: drives a [`Node`] on a UDP socket of the caller's
/// [`SocketSet`]; the node holds its events for the caller.
///
/// The driver holds the node by exclusive reference (`&'a mut Node`) rather than by value:
/// a node is about 23 KiB, and moving one into the driver costs a stack temporary of that
/// size at start-up on a microcontroller. Create the node where it will stay (in firmware a
/// `static` holding [`Node::empty`] and started in place with [`Node::start`]; a local or a
/// `Box` on a host) and lend it to [`Driver::new`]; nothing else may touch it while the
/// driver runs, except through [`node`](Self::node) and [`node_mut`](Self::node_mut).
///
/// Type parameters: the node's policy `P`, `SERVICES`, `DATA` and `EVENTS` (as on [`Node`]:
/// `EVENTS` is the number of events with data the node holds for the caller, 3 by default as
/// on [`Node`]; see [`poll_event`](Self::poll_event)), and `TX`, the room reserved in the
/// socket's transmit buffer for each frame. The driver has no frame buffer of its own: the node writes each
/// frame straight into the socket's transmit buffer ([`Node::poll_transmit`] into the space
/// `udp::Socket::send_with` reserves, shrunk to the frame), once
/// [`Node::has_transmit`] said there is one, so nothing reserved is left unused. `TX` must
/// be at least [`Node::TRANSMIT_BUF`] (1401 bytes for the default `SERVICES = 32`,
/// `DATA = 512`, the default of `TX`; 1470 bytes with the feature `seal`, whose frames carry
/// the seal) and at most 4096 (each frame leaves whole, as one datagram); other values fail
/// to compile. The socket's transmit buffer must hold `TX` bytes ([`Error::SocketTooSmall`]):
/// a frame is queued only where `TX` contiguous bytes are free, so the buffer holds several
/// frames at once only when it is larger than `TX` by their sizes.
///
/// The driver is sans-executor: nothing happens outside [`poll`](Self::poll) and the
/// commands. See the crate docs for the loop.
// `repr(C)`, fields in this order: `hold_until` (zero, 4-byte aligned, at offset 4 on a
// 32-bit target) right before the counters, so that `new` zeroes both with one 4-byte-aligned
// clear (`__aeabi_memclr4`, linked anyway) instead of the counters alone with an 8-byte-aligned
// one, `__aeabi_memclr8`, 174 B of flash on a Cortex-M for this one call. It pads the driver
// from 80 to 88 bytes on such a target (4 before the 8-byte-aligned counters, 4 at the end).
#[repr(C)]
pub struct Driver<
    'a,
    P: Policy = DefaultPolicy,
    const SERVICES: usize = 32,
    const DATA: usize = 512,
    const EVENTS: usize = 3,
    const TX: usize = { Node::<DefaultPolicy, 32, 512>::TRANSMIT_BUF },
> {
    node: &'a mut Node<P, SERVICES, DATA, NoHeld, EVENTS>,
    /// Until when datagrams may wait in the socket for the node's full event queue, once a
    /// hold started (the node's milliseconds modulo 2^32: a hold is far shorter).
    hold_until: Option<u32>,
    stats: Stats,
    socket: SocketHandle,
    group: Group,
    /// The last flush stopped because the socket had no room: the node owes more frames.
    stalled: bool,
    /// Whether the group was left after the node left.
    group_left: bool,
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize, const TX: usize>
    core::fmt::Debug for Driver<'_, P, SERVICES, DATA, EVENTS, TX>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("node", &self.node)
            .field("group", &self.group)
            .field("stalled", &self.stalled)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize, const TX: usize>
    defmt::Format for Driver<'_, P, SERVICES, DATA, EVENTS, TX>
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Driver {{ sid: {=[u8]:a}, group: {}, services: {=usize}, left: {=bool} }}",
            self.node.sid().as_bytes(),
            self.group,
            self.node.known(),
            self.node.has_left()
        );
    }
}

impl<'a, P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize, const TX: usize>
    Driver<'a, P, SERVICES, DATA, EVENTS, TX>
{
    /// Takes over `node` and runs it on the UDP socket `socket` of `sockets`: binds the
    /// socket to the group's port, sets its TTL to 1 (remote mode, spec 1.1) and joins the
    /// group on `iface` (smoltcp sends the IGMP report at its next poll). The node's join
    /// frames leave at the first [`poll`](Self::poll).
    ///
    /// `node` must be in remote mode and run the protocol `c` only: build its
    /// [`Config`](cluster_core::Config) with [`firmware_config`](crate::firmware_config).
    /// Create it with [`core_instant`](crate::core_instant) of the same clock as the later
    /// polls.
    ///
    /// # Errors
    ///
    /// [`Error`]: the node's mode or protocols, the socket's transmit buffer, or the socket
    /// or group setup.
    ///
    /// # Panics
    ///
    /// If `socket` is not a UDP socket of `sockets` (smoltcp's `SocketSet::get_mut`).
    // Out of line (called once): inlined into a firmware's start-up, the zeroing of its
    // counters lost their alignment and linked compiler-builtins' unaligned `__aeabi_memclr`
    // (208 B); here it is an aligned one, `__aeabi_memclr4` with the struct's field order
    // (node image: -20 B of flash, then -160 B with the order; issue 14, ninth round).
    #[inline(never)]
    pub fn new(
        node: &'a mut Node<P, SERVICES, DATA, NoHeld, EVENTS>,
        group: Group,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
        socket: SocketHandle,
    ) -> Result<Self, Error> {
        const {
            assert!(
                TX >= Node::<P, SERVICES, DATA>::TRANSMIT_BUF,
                "TX must be at least Node::<P, SERVICES, DATA>::TRANSMIT_BUF"
            );
            assert!(
                TX <= cluster_core::wire::MAX_DATAGRAM,
                "TX must be at most 4096 bytes: each frame leaves as one datagram"
            );
        };
        if node.has_left() {
            return Err(Error::Left);
        }
        if !node.config().remote {
            return Err(Error::LocalMode);
        }
        if node.protocols().iter().any(|p| p != Protocol::Multicast) {
            return Err(Error::UnsupportedProtocol);
        }
        let udp = sockets.get_mut::<udp::Socket<'_>>(socket);
        if udp.payload_send_capacity() < TX || udp.packet_send_capacity() == 0 {
            return Err(Error::SocketTooSmall);
        }
        udp.bind(group.port).map_err(Error::Bind)?;
        udp.set_hop_limit(Some(1));
        iface
            .join_multicast_group(group.addr)
            .map_err(Error::Join)?;
        debug!("cluster: joined as {=[u8]:a}", node.sid().as_bytes());
        Ok(Self {
            node,
            socket,
            group,
            stalled: false,
            hold_until: None,
            group_left: false,
            stats: Stats::default(),
        })
    }

    /// Runs the node: sends the frames it owes (those that waited for room first), hands it
    /// every datagram the socket received and runs its timers; its events wait in the node for
    /// [`poll_event`](Self::poll_event). Call it after every `iface.poll`, and after commands.
    ///
    /// While the node's event queue is full (`EVENTS` events with data unread), datagrams
    /// are left in the socket, so that a burst waits there instead of being dropped, for at
    /// most [`EVENT_HOLD`] since the queue filled; after that they are read and handed to
    /// the node again (which then drops data events beyond its queue, reported as
    /// [`Event::Dropped`], and stays current on its peers' heartbeats). The socket's receive
    /// buffer holds what waits; beyond it smoltcp drops datagrams.
    ///
    /// Returns when to call it next at the latest, if nothing arrives before: the node's
    /// earliest deadline, or `now` when the socket had no room for everything the node owes
    /// (smoltcp makes room at its next poll) or when a hold began and datagrams were left
    /// waiting for the events to be read (read them, then poll again). When a hold goes on
    /// because the events were not read since the last poll, it returns the end of the
    /// hold (or the node's deadline, if earlier) instead of `now`, so that an application
    /// that reads events late does not poll in a tight loop meanwhile. Merge it with
    /// `iface.poll_at`.
    ///
    /// After [`leave`](Self::leave), the poll that sends the disconnect also leaves the
    /// multicast group.
    ///
    /// # Panics
    ///
    /// If the socket given to [`new`](Self::new) was removed from `sockets`.
    pub fn poll(
        &mut self,
        now: NetInstant,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> Option<NetInstant> {
        let at = core_instant(now);
        let socket = sockets.get_mut::<udp::Socket<'_>>(self.socket);
        self.flush(at, socket);
        // Whether the application has had the chance to read its events since the hold on
        // the socket began: not when the hold is new in this call.
        let mut hold_is_new = self.hold_until.is_none();
        // `recv` lends the datagram from the socket's own buffer: no receive scratch buffer
        // (of up to a datagram's size) in the driver, unlike `recv_slice`.
        loop {
            if !self.node.event_queue_full() {
                self.hold_until = None;
                hold_is_new = true;
            } else if socket.can_recv() && self.holding(at) {
                // The application has not read the events yet: the datagrams wait.
                break;
            }
            let Ok((bytes, meta)) = socket.recv() else {
                break;
            };
            let from = IpAddr::from(meta.endpoint.addr);
            // Remote mode: a peer is local only when it is this interface (spec 5.6).
            let local = iface
                .ip_addrs()
                .iter()
                .any(|cidr| IpAddr::from(cidr.address()) == from);
            let source = Source::multicast(SocketAddr::new(from, meta.endpoint.port), local);
            bump(&mut self.stats.datagrams_received);
            if let Err(_error) = self.node.handle_datagram(at, source, bytes) {
                bump(&mut self.stats.datagrams_dropped);
                trace!(
                    "cluster: datagram dropped: {}",
                    defmt::Debug2Format(&_error)
                );
            }
            self.flush(at, socket);
        }
        if self
            .node
            .poll_timeout()
            .is_some_and(|deadline| deadline <= at)
        {
            self.node.handle_timeout(at);
            self.flush(at, socket);
        }
        if self.node.has_left() && self.is_idle() && !self.group_left {
            // The disconnect is queued in the socket; stop answering IGMP queries.
            let _ = iface.leave_multicast_group(self.group.addr);
            self.group_left = true;
        }
        let deadline = self.node.poll_timeout().map(net_instant);
        if !self.is_idle() {
            return Some(now);
        }
        // Datagrams left waiting for the events to be read (after a hold they are all read).
        if let Some(until) = self.hold_until.filter(|_| socket.can_recv()) {
            if hold_is_new {
                // Read the events, then poll again: the datagrams are taken at once.
                return Some(now);
            }
            // The events were not read since the last poll: no use polling before the hold
            // ends (or the node's deadline), when the datagrams are read regardless. An
            // application that reads its events later polls again then, as always.
            let left = (until.wrapping_sub(at.as_millis() as u32) as i32).max(0);
            let hold_end = now + NetDuration::from_millis(left as u64);
            return Some(deadline.map_or(hold_end, |d| d.min(hold_end)));
        }
        deadline
    }

    /// Output: the next event, or `None`.
    ///
    /// The events wait inside the node, as [`Node::poll_event`] returns them: those derived
    /// from state (`Discovered`, `Lost`, a query's `Missing` and `Done`) are never lost,
    /// while data events (messages, queries received, responses, tag changes) beyond the
    /// node's `EVENTS` are dropped and reported as [`Event::Dropped`] (and counted in the
    /// node's `events_dropped`). Read events after every poll, and poll again when it
    /// returned `now`, to lose none: while the node's queue is full the driver leaves
    /// datagrams in the socket (for [`EVENT_HOLD`] at most), so a burst larger than `EVENTS`
    /// is handed to the node as the events are read. The driver holds no events of its own
    /// (before, it held `EVENTS` beside the node's fixed 3 and read the socket regardless;
    /// `EVENTS = 7` keeps that depth for an application that reads events late).
    ///
    /// Changes after: [`poll`](Self::poll) and the commands.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<DATA>> {
        let event = self.node.poll_event();
        if let Some(event) = &event {
            log_event(event);
        }
        event
    }

    // ----- commands: their frames leave at the next `poll` -----

    /// Command: sends an event (type 6), as [`Node::send`]. The frames leave at the next
    /// [`poll`](Self::poll).
    ///
    /// # Errors
    ///
    /// [`SendError`]; nothing was queued.
    pub fn send(&mut self, now: NetInstant, request: &SendRequest<'_>) -> Result<(), SendError> {
        self.node.send(core_instant(now), request)
    }

    /// Command: starts a query, as [`Node::query`]; replies arrive as
    /// [`Event::Query`](cluster_core::Event::Query). The frames leave at the next
    /// [`poll`](Self::poll).
    ///
    /// # Errors
    ///
    /// [`QueryError`]; no query was created.
    pub fn query(
        &mut self,
        now: NetInstant,
        request: &QueryRequest<'_>,
    ) -> Result<QueryId, QueryError> {
        self.node.query(core_instant(now), request)
    }

    /// Command: ends a query early, as [`Node::cancel_query`]. Returns false when no live
    /// query has this id.
    pub fn cancel_query(&mut self, now: NetInstant, id: &str) -> bool {
        self.node.cancel_query(core_instant(now), id)
    }

    /// Command: edits this node's tags, as [`Node::update_tags`]; a full heartbeat follows at
    /// the next [`poll`](Self::poll). Returns whether they changed.
    ///
    /// # Errors
    ///
    /// [`TagError`]; the tags are unchanged.
    pub fn update_tags(&mut self, now: NetInstant, ops: &[TagOp<'_>]) -> Result<bool, TagError> {
        self.node.update_tags(core_instant(now), ops)
    }

    /// Command: broadcasts a discovery unless one went out recently, as [`Node::discover`].
    /// Returns whether one was queued.
    pub fn discover(&mut self, now: NetInstant) -> bool {
        self.node.discover(core_instant(now))
    }

    /// Command: sends a full heartbeat at the next [`poll`](Self::poll).
    pub fn heartbeat(&mut self, now: NetInstant) {
        self.node.heartbeat(core_instant(now));
    }

    /// Command: leaves the cluster, as [`Node::leave`]: the next [`poll`](Self::poll) sends
    /// the disconnect (type 0) and leaves the multicast group; every known service is
    /// reported [`Lost`](cluster_core::Event::Lost) with reason `Left`. Later polls and
    /// commands do nothing. Keep polling the interface until the socket has sent the
    /// disconnect (`iface.poll_at` returns `None`, or the socket's `send_queue()` is 0).
    pub fn leave(&mut self, now: NetInstant) {
        self.node.leave(core_instant(now));
    }

    /// Command: seals every frame from now on with the send key of `keys`, and accepts only
    /// frames sealed with one of its keys, as [`Node::set_keys`]; `None` turns sealing off
    /// (feature `seal`).
    ///
    /// Call it before the first [`poll`](Self::poll), so that the join frames are sealed too
    /// (or set the keys on the node before [`new`](Self::new): they stay across
    /// [`Node::start`]). Called later, it rotates the keys at once: the next frame the node
    /// encodes is sealed with the new send key, and received frames are opened with the new
    /// ring. A frame already sealed (one waiting for room in the socket, and the datagrams
    /// queued in it) leaves as it is; peers that follow the rotation steps of
    /// [`KeyRing`](cluster_core::KeyRing) still accept it.
    ///
    /// Unsealed, forged and replayed frames are dropped before they touch the node's state:
    /// [`Stats::datagrams_dropped`] counts them, and the node's stats (`unsealed`,
    /// `unknown_key`, `forged`, `replayed`) say why.
    #[cfg(feature = "seal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "seal")))]
    pub fn set_keys(&mut self, keys: Option<cluster_core::KeyRing>) {
        self.node.set_keys(keys);
    }

    // ----- getters -----

    /// The key ring the node seals and opens frames with, when sealing is on (feature
    /// `seal`).
    #[cfg(feature = "seal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "seal")))]
    #[must_use]
    pub fn keys(&self) -> Option<&cluster_core::KeyRing> {
        self.node.keys()
    }

    /// The node (its sid, services, resolver, stats, ...).
    #[must_use]
    pub fn node(&self) -> &Node<P, SERVICES, DATA, NoHeld, EVENTS> {
        self.node
    }

    /// The node, for commands the driver does not wrap ([`Node::subscribe`],
    /// [`Node::policy_mut`], ...). Call [`poll`](Self::poll) after any input or command made
    /// through it, so that its frames leave.
    pub fn node_mut(&mut self) -> &mut Node<P, SERVICES, DATA, NoHeld, EVENTS> {
        self.node
    }

    /// This node's sid.
    #[must_use]
    pub fn sid(&self) -> &Sid {
        self.node.sid()
    }

    /// The group and port.
    #[must_use]
    pub fn group(&self) -> Group {
        self.group
    }

    /// The socket the driver uses.
    #[must_use]
    pub fn socket(&self) -> SocketHandle {
        self.socket
    }

    /// True after [`leave`](Self::leave).
    #[must_use]
    pub fn has_left(&self) -> bool {
        self.node.has_left()
    }

    /// True when the node owes nothing the socket had no room for at the last poll.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        !self.stalled
    }

    /// The driver's counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    // ----- internals -----

    /// Whether the hold on reading the socket lasts at `at` (starting one there).
    fn holding(&mut self, at: cluster_core::Instant) -> bool {
        // Milliseconds truncated to 32 bits, compared by their wrapping difference: a hold
        // is far shorter than 2^31 ms.
        let now = at.as_millis() as u32;
        let until = match self.hold_until {
            Some(until) => until,
            None => {
                bump(&mut self.stats.holds);
                let until = now.wrapping_add(EVENT_HOLD.total_millis() as u32);
                self.hold_until = Some(until);
                until
            }
        };
        (until.wrapping_sub(now) as i32) > 0
    }

    /// Sends every frame the node owes while the socket has room (driving contract, step 2;
    /// the events wait in the node for [`poll_event`](Self::poll_event)). Each frame is written by the node straight into
    /// the socket's transmit buffer, into `TX` bytes reserved there only once the node said
    /// it has a frame ([`Node::has_transmit`]): the reservation cannot be withdrawn, and the
    /// node then always fills it (its buffer holds `TRANSMIT_BUF` bytes or more, below the
    /// lengths the encoder refuses).
    fn flush(&mut self, at: cluster_core::Instant, socket: &mut udp::Socket<'_>) {
        self.stalled = false;
        let endpoint = self.group.endpoint();
        while self.node.has_transmit(at) {
            let node = &mut *self.node;
            let mut dst = None;
            let queued = socket.send_with(TX, endpoint, |reserved| {
                match node.poll_transmit(at, reserved) {
                    Some(transmit) => {
                        dst = Some(transmit.dst);
                        transmit.len
                    }
                    // Not reached: `has_transmit` said there is a frame.
                    None => 0,
                }
            });
            match queued {
                Ok(_) => bump(&mut self.stats.datagrams_sent),
                Err(udp::SendError::BufferFull) => {
                    // The frame stays in the node until smoltcp has sent what it holds.
                    self.stalled = true;
                    bump(&mut self.stats.send_stalls);
                    break;
                }
                Err(udp::SendError::Unaddressable) => {
                    warn!("cluster: the socket refused the group as unaddressable");
                    bump(&mut self.stats.frames_unsendable);
                    break;
                }
            }
            match dst {
                Some(Destination::Group { send: Some(id) }) => self.node.transport_ok(at, id),
                Some(Destination::Service { send, via, .. }) => {
                    // Not reached with a node that runs `c` only (see `Stats`).
                    bump(&mut self.stats.direct_sends_refused);
                    debug!(
                        "cluster: no transport for {}, sent to the group",
                        via.letter()
                    );
                    let _ = via;
                    self.node.transport_ok(at, send);
                }
                Some(Destination::Group { send: None }) | None => {}
            }
        }
    }
}
