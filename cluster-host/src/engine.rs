//! [`Engine`]: the runtime-independent half of an adapter's driver task.
//!
//! A hosted adapter's driver owns the node in one task and loops: wait for the first of a
//! command, a datagram, a connection event, a new connection, the multicast socket becoming
//! writable again, or the deadline; make exactly one input or command call; drain the node's
//! outputs. Everything in that loop except the waiting is the same on every runtime, and is
//! here, once:
//!
//! * the node (boxed), the connection table ([`Transports`]: bounded, the newest
//!   connection wins, or the one a service was last heard on; idle timeouts), the host's
//!   addresses ([`LocalAddrs`]) and the transport counters;
//! * the bounds of the crate docs' "Limits": an inbound connection is refused while the table
//!   is full ([`accepted`](Engine::accepted) returns `None`), an outgoing one takes the place
//!   of a connection no known service uses, and each connection's bytes are cut into frames
//!   by a reassembler of its own ([`handle_read`](Engine::handle_read));
//! * one input per call ([`handle_datagram`](Engine::handle_datagram),
//!   [`handle_io`](Engine::handle_io), [`handle_timers`](Engine::handle_timers),
//!   [`accepted`](Engine::accepted)) and the commands of a handle ([`send`](Engine::send),
//!   [`query`](Engine::query), [`update_tags`](Engine::update_tags),
//!   `set_keys` with feature `seal`, ...), each followed by the drain of the driving
//!   contract;
//! * the drain itself: multicast datagrams go out through [`Io::send_datagram`] (non-blocking;
//!   a datagram the socket cannot take yet is kept in **one buffered slot**, and the drain of
//!   transmits stops until the adapter saw the socket writable and called
//!   [`resume`](Engine::resume)); direct sends are routed to the newest open connection
//!   or the one the service was last heard on ([`Transports::route`]), or a new one
//!   ([`Io::connect`]) and handed over without waiting ([`Io::write`]: queued, or written
//!   at once by an adapter that can), a send that cannot be queued failing over at once;
//!   events are translated ([`translate`]) and published to the handle's
//!   subscriptions, query news goes to its query's [`QueryStream`](crate::QueryStream) (a
//!   dropped stream cancels its query in the node), and a type-8 report about our own
//!   protocol reopens its listener ([`Io::reopen_tcp`], [`Io::reopen_unix`]) and advertises
//!   it;
//! * the front half's other end: the engine takes the [`Handle`]'s commands
//!   ([`poll_command`](Engine::poll_command) or [`next_command`](Engine::next_command)) and
//!   answers each ([`command`](Engine::command)), `flush` once no direct send is in flight
//!   ([`answer_flushes`](Engine::answer_flushes)) and `leave` once the driver finished
//!   ([`finish`](Engine::finish)).
//!
//! Times are milliseconds on the adapter's clock, from the join. What stays in the adapter:
//! the sockets and the waiting, the connection tasks and the spawning.
//!
//! An adapter's driver is therefore this loop (here with `futures-lite`'s `race`; an
//! adapter may instead poll each source with a waker of its own):
//!
//! ```ignore
//! let (mut engine, sockets, handle) = Engine::from_setup(setup(options, policy)?);
//! // ... wrap `sockets` in the runtime's types (`io`), give `handle` to the caller ...
//! engine.start(clock.ms(), &mut io);
//! loop {
//!     engine.handle_timers(clock.ms(), &mut io);
//!     engine.answer_flushes();
//!     let wake = wait_for_first_of(engine.next_command(), io.datagram(), io.accept(), ...,
//!         timer(engine.next_deadline())).await;
//!     let now = clock.ms();
//!     match wake {
//!         Wake::Command(command) => if engine.command(now, command, &mut io) == Flow::Left { break },
//!         Wake::Datagram(bytes, from) => engine.handle_datagram(now, from, bytes, &mut io),
//!         // ... accepted connections, bytes read, write outcomes, writability, the timer ...
//!     }
//!     engine.answer_flushes();
//! }
//! // ... let the disconnect out, remove the unix socket file ...
//! engine.finish();
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::PathBuf;
use std::task::{Context, Poll};

use cluster_core::membership::Entry;
use cluster_core::wire::{DecodeError, Frame, MessageKind, ReassemblerStats};
use cluster_core::{
    ConnId, Destination, Endpoint, HeldStats, Instant, Policy, Protocol, QueryId, ReplyToken,
    Resolver, SendId, Sid, Source, Stats,
};

use tokio::sync::{broadcast, mpsc};

use crate::command::{Command, Reply};
use crate::conn::{IoEvent, Target};
use crate::copies::Copies;
use crate::error::{CommandError, JoinError};
use crate::event::{Event, QueryEvent, ServiceInfo, Translated, translate, translate_query};
use crate::gateway::{self, Relays};
use crate::handle::{Handle, front};
use crate::held::{
    HeldAnswer, INCOMING_QUEUE, IncomingQueries, IncomingQuery, IncomingSink, Undelivered,
};
use crate::id_hash::IdHash;
use crate::json::JoinedInfo;
use crate::metrics::QueryLatency;
use crate::multicast::Membership;
use crate::node_data::{DATA_FILTER, DataFilter, DataTable, WithData};
use crate::options::Options;
use crate::query::QueryStart;
use crate::query_inbox::{QuerySink, SidList};
use crate::request::{QuerySpec, Selector, SendSpec, TagEdit, with_tag_ops};
use crate::seeds::{Seeds, own_entry};
use crate::setup::Setup;
use crate::socket::{MulticastSetup, canonical};
use crate::transports::{StreamFrames, TransportStats, Transports};
use crate::{HostNode, LocalAddrs};
use socket2::SockRef;

/// What the engine asks of the adapter. Every method returns at once: nothing here waits.
pub trait Io {
    /// The adapter's handle on one connection's task (typically the sender of its write
    /// queue). Dropping it closes the connection once the frames queued on it are written.
    type Conn;

    /// Sends one datagram to the multicast group `to` without waiting.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when the socket cannot take it now: the engine keeps
    /// the datagram and sends nothing more until [`Engine::resume`]. Any other error counts
    /// the datagram as failed.
    fn send_datagram(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()>;

    /// Starts the task of an outgoing connection `id` to `target`. Frames may be queued
    /// before it is connected; a failed connect fails every frame queued on it (each
    /// reported as [`IoEvent::Written`] with `ok` false) and then reports
    /// [`IoEvent::Closed`].
    fn connect(&mut self, id: ConnId, target: Target) -> Self::Conn;

    /// Hands the frame `bytes` of the direct send `send` to a connection without waiting:
    /// [`Write::Queued`] on its write queue (its outcome must then come back as
    /// [`IoEvent::Written`]), [`Write::Written`] when the adapter wrote all of it at once
    /// (a fast path: the engine reports the send as done, no [`IoEvent::Written`] follows), or
    /// [`Write::Refused`] when its queue is full or closed (the send then fails over at once).
    fn write(&mut self, conn: &mut Self::Conn, bytes: &[u8], send: SendId) -> Write;

    /// A frame queued on `conn` was reported [`IoEvent::Written`] (called before the engine
    /// handles that outcome). Nothing by default.
    fn written(&mut self, conn: &mut Self::Conn) {
        let _ = conn;
    }

    /// Replaces the `t` listener with a new one on a fresh ephemeral port (a peer reported
    /// our `t` as failing) and returns that port.
    ///
    /// # Errors
    ///
    /// The listener could not be opened; the old one is kept.
    fn reopen_tcp(&mut self) -> io::Result<u16>;

    /// Re-creates the `u` listener at its path (a peer reported our `u` as failing).
    ///
    /// # Errors
    ///
    /// The listener could not be re-created; the node has no `u` listener any more.
    fn reopen_unix(&mut self) -> io::Result<()>;

    /// The multicast socket, for the options of each route's copy of a datagram
    /// (`IP_MULTICAST_IF`) and for joining and leaving the group as interfaces come and go
    /// ([`crate::multicast::Membership`]). `None` (the default): every datagram goes out
    /// once, on the interface the socket was set up with, and the set of interfaces is fixed.
    fn multicast_socket(&self) -> Option<SockRef<'_>> {
        None
    }

    /// The IPv6 multicast socket, when the join opened one ([`Sockets::udp6`]).
    fn multicast_socket_v6(&self) -> Option<SockRef<'_>> {
        None
    }

    /// Sends one datagram to the IPv6 group `to` on the IPv6 multicast socket, without
    /// waiting.
    ///
    /// # Errors
    ///
    /// Any error, [`io::ErrorKind::WouldBlock`] included, counts this copy as failed (the
    /// IPv4 copy decides whether a datagram is held back). By default
    /// [`io::ErrorKind::Unsupported`].
    fn send_datagram_v6(&mut self, bytes: &[u8], to: SocketAddrV6) -> io::Result<()> {
        let _ = (bytes, to);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// What [`Io::write`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Queued for the connection's task; its outcome comes back as [`IoEvent::Written`].
    Queued,
    /// Written whole at once: the send succeeded.
    Written,
    /// Not taken (queue full or closed): the send fails.
    Refused,
}

/// The sockets of a [`Setup`] that the adapter wraps in its runtime's types, and the options
/// joined with. See [`Engine::from_setup`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Sockets {
    /// The multicast socket, non-blocking.
    pub udp: UdpSocket,
    /// The IPv6 multicast socket, non-blocking, when IPv6 is used ([`crate::multicast`]).
    pub udp6: Option<UdpSocket>,
    /// How it was set up (its [`MulticastSetup::destination`] is where datagrams go).
    pub multicast: MulticastSetup,
    /// The `t` listener, when `t` runs.
    pub tcp: Option<TcpListener>,
    /// The `u` listener and its path, when `u` runs.
    #[cfg(unix)]
    pub unix: Option<(UnixListener, PathBuf)>,
    /// The options joined with (timeouts for the connection tasks).
    pub options: Options,
}

impl Sockets {
    /// Wraps the multicast socket and the `t` listener in the runtime's types; the `u`
    /// listener, if any, is left for [`UnixSocket::new`](crate::socket::UnixSocket::new).
    ///
    /// # Errors
    ///
    /// [`JoinError::Io`] naming the socket a wrapper refused.
    pub fn wrap<U, T>(
        self,
        udp: impl Fn(UdpSocket) -> io::Result<U>,
        tcp: impl FnOnce(TcpListener) -> io::Result<T>,
    ) -> Result<Wrapped<U, T>, JoinError> {
        Ok(Wrapped {
            udp: udp(self.udp).map_err(JoinError::io("multicast socket"))?,
            udp6: self
                .udp6
                .map(&udp)
                .transpose()
                .map_err(JoinError::io("IPv6 multicast socket"))?,
            tcp: self
                .tcp
                .map(tcp)
                .transpose()
                .map_err(JoinError::io("TCP listener"))?,
            #[cfg(unix)]
            unix: self.unix,
            options: self.options,
        })
    }
}

/// A join's sockets in the runtime's types ([`Sockets::wrap`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Wrapped<U, T> {
    /// The multicast socket.
    pub udp: U,
    /// The IPv6 multicast socket, when IPv6 is used.
    pub udp6: Option<U>,
    /// The `t` listener, when `t` runs.
    pub tcp: Option<T>,
    /// The `u` listener and its path, when `u` runs.
    #[cfg(unix)]
    pub unix: Option<(UnixListener, PathBuf)>,
    /// The options joined with (timeouts for the connection tasks).
    pub options: Options,
}

/// Whether the driver goes on after a [`Command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Flow {
    /// The node runs on.
    Running,
    /// The node left: let the disconnect out, then [`Engine::finish`].
    Left,
}

/// What the engine drains from the node: a query's news keyed by the id as the node made it
/// (no string is made per event), or any other event, translated.
enum Drained {
    Query(QueryId, QueryEvent),
    Other(Translated),
}

/// A query id as text (the node makes them of ASCII: borrowed).
fn id_text(id: &QueryId) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(id.as_bytes())
}

#[derive(Debug)]
enum Followup {
    CancelQuery(String),
    Refresh(Protocol),
    /// A held query the application cannot be given: let it go (the asker gets an error).
    DropHeld(ReplyToken),
    /// The stream of held queries was dropped: the policy answers again.
    StopHolding,
}

/// The multicast datagrams of one transmit that the socket could not take yet.
#[derive(Debug)]
struct Blocked {
    segments: VecDeque<Vec<u8>>,
    send: Option<SendId>,
    ok: bool,
}

/// The runtime-independent state and logic of a driver task (see the module docs).
pub struct Engine<P: Policy, I: Io> {
    node: Box<HostNode<P>>,
    transports: Transports<I::Conn>,
    counters: TransportStats,
    addrs: LocalAddrs,
    /// The interfaces the group is joined on, followed while running.
    membership: Membership,
    /// Recent datagrams, to drop the copies that came over another path.
    copies: Copies,
    /// Where each answer's latency goes, when metrics are kept.
    query_latency: Option<QueryLatency>,
    /// When each query in [`queries`](Self::queries) started, when metrics are kept.
    query_started: HashMap<QueryId, u64, IdHash>,
    /// The interface (scope) of each IPv6 link-local sender heard, to connect to it and to
    /// say where it was heard (the node keeps addresses without scope). Bounded by
    /// [`SCOPES`].
    scopes: HashMap<Ipv6Addr, u32>,
    /// The interface the last datagram from each sender arrived on, where the adapter knows
    /// ([`handle_datagram_on`](Self::handle_datagram_on)). Bounded by [`SCOPES`].
    arrivals: HashMap<IpAddr, u32>,
    group: SocketAddrV4,
    tcp_port: Option<u16>,
    unix_path: Option<String>,
    queries: HashMap<QueryId, QuerySink, IdHash>,
    /// Where held queries go, once a handle asked for them.
    incoming: Option<IncomingSink>,
    /// What every known service publishes.
    data: DataTable,
    /// The handles' commands.
    commands: mpsc::Receiver<Command>,
    /// The events' fan-out to the handles' subscriptions.
    events: broadcast::Sender<Event>,
    /// `flush` commands waiting for the direct sends in flight.
    flush_waiters: Vec<Reply<()>>,
    /// `leave` commands waiting for the driver to finish.
    leave_waiters: Vec<Reply<()>>,
    /// Follow-up commands found while draining events (cancelled queries, refreshes).
    followups: Vec<Followup>,
    /// Direct sends handed to a connection whose outcome is not known yet.
    in_flight: usize,
    blocked: Option<Blocked>,
    buf: Vec<u8>,
    /// A reassembly buffer with nothing pending, to parse a connection's bytes with when
    /// that connection has no partial frame (kept for its allocation).
    spare: Option<Box<StreamFrames>>,
    /// The longest body a connection's reassembler accepts ([`cluster_core::Config::max_frame_len`]).
    max_frame_len: usize,
    /// Membership beyond the LAN, when the options name seeds ([`crate::seeds`]).
    seeds: Option<Box<Seeds>>,
    /// The name of this node's segment ([`Options::segment`]).
    segment: Option<String>,
    /// Queries relayed as a gateway ([`crate::gateway`]), and the answers to write back.
    relays: Relays,
    relayed_answers: Vec<(ConnId, Vec<u8>)>,
}

impl<P: Policy, I: Io> std::fmt::Debug for Engine<P, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.node)
            .field("connections", &self.transports.len())
            .field("queries", &self.queries.len())
            .field("in_flight", &self.in_flight)
            .field("blocked", &self.blocked.is_some())
            .finish_non_exhaustive()
    }
}

/// Sends one multicast datagram: once, or (when the membership fans out) once per route,
/// each with its interface set. The first route's outcome is the datagram's: a
/// `WouldBlock` there holds it back whole; a later route that fails is counted in
/// `datagrams_failed` and skipped for this datagram.
fn send_group<I: Io>(
    membership: &Membership,
    counters: &mut TransportStats,
    io: &mut I,
    segment: &[u8],
    group: SocketAddrV4,
) -> io::Result<()> {
    if !membership.fans_out() {
        return io.send_datagram(segment, group);
    }
    for index in 0..membership.routes().len() {
        let prepared = io
            .multicast_socket()
            .map_or(Ok(()), |socket| membership.prepare_send(&socket, index));
        let sent = prepared.and_then(|()| io.send_datagram(segment, group));
        match sent {
            Ok(()) => {}
            Err(e) if index == 0 => return Err(e),
            Err(_) => counters.datagrams_failed += 1,
        }
    }
    for index in 0..membership.routes_v6().len() {
        let to = io.multicast_socket_v6().map_or_else(
            || Err(io::ErrorKind::NotFound.into()),
            |socket| membership.prepare_send_v6(&socket, index, group.port()),
        );
        match to.and_then(|to| io.send_datagram_v6(segment, to)) {
            Ok(()) => counters.datagrams_sent_v6 += 1,
            Err(_) => counters.datagrams_failed += 1,
        }
    }
    Ok(())
}

/// Senders whose interface (an IPv6 link-local sender's scope, or where its last datagram
/// arrived) is remembered at most; past that the list starts again (the senders still heard
/// are back within a heartbeat).
const SCOPES: usize = 4096;

/// Remembers `value` for `key` in a map of at most [`SCOPES`] entries.
fn remember<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K, value: u32) {
    if map.len() >= SCOPES && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

/// The sender's sid of a (plain) frame, when it parses.
fn sender_of(bytes: &[u8]) -> Option<Sid> {
    let (message, _) = cluster_core::wire::Message::parse(bytes).ok()?;
    Sid::new(message.sid?.as_bytes())
}

/// The services `node` knows that were heard on the LAN and are not members: what this
/// node relays as a gateway, as entries for its exchanges (sorted by sid).
fn lan_only<P: Policy>(node: &HostNode<P>, seeds: &Seeds, now: u64, tcp_port: u16) -> Vec<Entry> {
    let mut out: Vec<Entry> = node
        .services()
        .filter(|s| seeds.may_export(now, s.sid()) && seeds.membership().member(s.sid()).is_none())
        .map(|s| {
            let mut entry = own_entry(s.sid(), s.hid(), tcp_port, s.tags());
            if let Some(ip) = s.ip() {
                entry.addr.set_ip(ip);
            }
            entry
        })
        .collect();
    out.sort_unstable_by(|a, b| a.sid.as_bytes().cmp(b.sid.as_bytes()));
    out
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

impl<P: Policy, I: Io> Engine<P, I> {
    /// Takes the node of a [`Setup`] and hands back its sockets, for the adapter to wrap,
    /// and the node's [`Handle`], whose commands the engine takes. The engine's clock starts
    /// at 0 with the setup's (the node was built at time zero).
    #[must_use]
    pub fn from_setup(setup: Setup<P>) -> (Self, Sockets, Handle) {
        let tcp_port = setup
            .tcp
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port());
        #[cfg(unix)]
        let unix_path = setup
            .unix
            .as_ref()
            .map(|(_, p)| p.to_string_lossy().into_owned());
        #[cfg(not(unix))]
        let unix_path = None;
        let seeds = (!setup.options.seeds.is_empty()).then(|| {
            let me = own_entry(
                setup.node.sid(),
                setup.node.hid(),
                tcp_port.unwrap_or_default(),
                setup.node.tags(),
            );
            #[allow(unused_mut)]
            let mut seeds = Box::new(Seeds::new(
                setup.options.seeds.clone(),
                me,
                u64::try_from(setup.options.config.ttl.as_millis()).unwrap_or(u64::MAX),
                crate::seed::os_seed(),
                0,
            ));
            #[cfg(feature = "seal")]
            seeds.set_keys(setup.node.keys().cloned(), crate::seed::os_seed());
            if let Some(name) = &setup.options.segment {
                seeds.set_segment(name);
            }
            seeds
        });
        let (handle, front) = front(
            *setup.node.sid(),
            *setup.node.hid(),
            setup.options.event_buffer,
        );
        let engine = Self {
            commands: front.commands,
            events: front.events,
            flush_waiters: Vec::new(),
            leave_waiters: Vec::new(),
            node: setup.node,
            transports: Transports::new(setup.options.tcp_idle_timeout)
                .with_max_connections(setup.options.max_connections),
            counters: TransportStats::default(),
            addrs: setup.addrs,
            membership: setup.membership,
            copies: Copies::new(),
            query_latency: setup.options.query_latency.clone(),
            query_started: HashMap::default(),
            scopes: HashMap::new(),
            arrivals: HashMap::new(),
            group: setup.multicast.destination,
            tcp_port,
            unix_path,
            queries: HashMap::default(),
            incoming: None,
            data: DataTable::default(),
            followups: Vec::new(),
            in_flight: 0,
            blocked: None,
            buf: vec![0; HostNode::<P>::TRANSMIT_BUF],
            spare: None,
            max_frame_len: setup.options.config.max_frame_len,
            seeds,
            segment: setup.options.segment.clone(),
            relays: Relays::default(),
            relayed_answers: Vec::new(),
        };
        let sockets = Sockets {
            udp: setup.udp,
            udp6: setup.udp6,
            multicast: setup.multicast,
            tcp: setup.tcp,
            #[cfg(unix)]
            unix: setup.unix,
            options: setup.options,
        };
        (engine, sockets, handle)
    }

    /// The node (getters only: every input goes through the engine).
    #[must_use]
    pub fn node(&self) -> &HostNode<P> {
        &self.node
    }

    /// Sends what the node queued at its creation (the join heartbeat and discovery). Call
    /// it once, first.
    pub fn start(&mut self, now: u64, io: &mut I) {
        self.drain(now, io);
    }

    /// The earliest time at which [`handle_timers`](Self::handle_timers) has work: the
    /// node's deadline, a connection's idle timeout, or the periodic read of the host's
    /// addresses.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.node.poll_timeout().map(Instant::as_millis),
            self.transports.next_deadline(),
            Some(self.addrs.next_refresh()),
            Some(self.membership.next_poll()),
            self.seeds.as_ref().map(|s| s.next_deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now`, compared with the clock directly: the node's timers, idle
    /// connections (closed, the node told), the read of the host's addresses. Call it at
    /// every turn of the loop, before waiting.
    pub fn handle_timers(&mut self, now: u64, io: &mut I) {
        if self
            .node
            .poll_timeout()
            .is_some_and(|d| d.as_millis() <= now)
        {
            self.node.handle_timeout(at(now));
            self.drain(now, io);
        }
        if self.transports.next_deadline().is_some_and(|d| d <= now) {
            for id in self.transports.expired(now) {
                self.counters.idle_closes += 1;
                self.close_conn(now, id);
                self.drain(now, io);
            }
        }
        self.addrs.refresh_if_due(now);
        if let Some(seeds) = &mut self.seeds
            && seeds.next_deadline() <= now
        {
            let known: std::collections::HashSet<Sid> =
                self.node.services().map(|s| *s.sid()).collect();
            seeds.keep_lan(|sid| known.contains(sid));
            seeds.set_exports(&lan_only(
                &self.node,
                seeds,
                now,
                self.tcp_port.unwrap_or_default(),
            ));
            for to_node in seeds.handle_timeout(now) {
                let _ = self
                    .node
                    .handle_datagram(at(now), to_node.source, &to_node.frame);
            }
            self.drain(now, io);
        }
        if self.membership.next_poll() <= now {
            let changes =
                self.membership
                    .poll(now, io.multicast_socket(), io.multicast_socket_v6());
            for route in &changes.joined {
                tracing::info!(interface = %route.name, address = %route.address, "joined the group");
            }
            for route in &changes.left {
                tracing::info!(interface = %route.name, address = %route.address, "left the group");
            }
            for route in &changes.joined_v6 {
                tracing::info!(interface = %route.name, index = route.index, "joined the IPv6 group");
            }
            for route in &changes.left_v6 {
                tracing::info!(interface = %route.name, index = route.index, "left the IPv6 group");
            }
        }
    }

    /// True while a multicast datagram waits for the socket to become writable: the
    /// adapter then also waits for writability and calls [`resume`](Self::resume).
    #[must_use]
    pub fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// The multicast socket may be writable again: sends what was held back, then goes on
    /// draining.
    pub fn resume(&mut self, now: u64, io: &mut I) {
        self.drain(now, io);
    }

    /// Input: a multicast datagram of `bytes` from `from`.
    pub fn handle_datagram(&mut self, now: u64, from: SocketAddr, bytes: &[u8], io: &mut I) {
        self.handle_datagram_on(now, from, None, bytes, io);
    }

    /// Input: a multicast datagram of `bytes` from `from` that arrived on the interface of
    /// index `arrived` ([`crate::arrival::recv_from`]; `None`: not known).
    pub fn handle_datagram_on(
        &mut self,
        now: u64,
        from: SocketAddr,
        arrived: Option<u32>,
        bytes: &[u8],
        io: &mut I,
    ) {
        self.counters.datagrams_received += 1;
        if let SocketAddr::V6(v6) = from
            && v6.ip().to_ipv4_mapped().is_none()
        {
            self.counters.datagrams_received_v6 += 1;
            if v6.ip().is_unicast_link_local() && v6.scope_id() != 0 {
                remember(&mut self.scopes, *v6.ip(), v6.scope_id());
            }
        }
        let from = canonical(from);
        if let Some(index) = arrived {
            remember(&mut self.arrivals, from.ip(), index);
        }
        if self.membership.has_paths() && self.copies.is_copy(now, (from.ip(), arrived), bytes) {
            self.counters.datagram_copies += 1;
            tracing::trace!(from = %from, len = bytes.len(), "dropped a copy of a datagram");
            return;
        }
        let local = self.addrs.is_local(from.ip(), now);
        if let Some(seeds) = &mut self.seeds
            && let Some(sid) = seeds
                .plain(now, bytes, Protocol::Multicast)
                .and_then(|plain| sender_of(&plain))
        {
            seeds.heard_on_lan(now, sid);
        }
        // Errors are counted in the node's stats; nothing else to do.
        let _ = self
            .node
            .handle_datagram(at(now), Source::multicast(from, local), bytes);
        self.drain(now, io);
    }

    /// A stream connection was accepted on the `t` (with its peer) or `u` listener:
    /// records it and returns its id, with which `conn` makes the adapter's handle (and
    /// starts its task).
    ///
    /// `None` when the connection table is full ([`Options::max_connections`]): the
    /// connection is refused (counted in `connections_refused`), `conn` is not called, and
    /// the adapter closes the stream at once. Connections known services use are never
    /// closed for a newcomer.
    pub fn accepted(
        &mut self,
        now: u64,
        protocol: Protocol,
        peer: Option<SocketAddr>,
        conn: impl FnOnce(ConnId) -> I::Conn,
    ) -> Option<ConnId> {
        if self.transports.is_full() {
            self.counters.connections_refused += 1;
            return None;
        }
        self.counters.accepts += 1;
        let (peer, local) = match peer {
            Some(peer) => {
                let peer = canonical(peer);
                (Some(peer), self.addrs.is_local(peer.ip(), now))
            }
            None => (None, true),
        };
        Some(
            self.transports
                .open(protocol, peer, local, false, None, now, conn),
        )
    }

    /// The adapter's handle on connection `id`, while the engine keeps it (an adapter that
    /// reads its connections in the driver keeps the read half there).
    pub fn connection_mut(&mut self, id: ConnId) -> Option<&mut I::Conn> {
        self.transports.get_mut(id).map(|entry| &mut entry.writer)
    }

    /// Input: `bytes` read from connection `conn` (part of a frame, one frame or several),
    /// as [`IoEvent::Read`] but borrowed, for an adapter that reads in the driver.
    ///
    /// The bytes are cut into frames by the connection's reassembler (at most
    /// [`STREAM_FRAME`](crate::transports::STREAM_FRAME) bytes pending, a declared length
    /// over [`cluster_core::Config::max_frame_len`] skipped, spec 7.3); each whole frame is
    /// one input to the node, followed by its drain.
    pub fn handle_read(&mut self, now: u64, conn: ConnId, bytes: &[u8], io: &mut I) {
        let Some(entry) = self.transports.get_mut(conn) else {
            return; // closed by us meanwhile
        };
        let mut frames = match entry.take_frames().or_else(|| self.spare.take()) {
            Some(frames) => frames,
            None => {
                let mut frames = Box::new(StreamFrames::new());
                frames.set_max_frame_len(self.max_frame_len);
                frames
            }
        };
        let before = frames.stats();
        // Each frame's body is validated once, by the node as it decodes it; frames and
        // decode errors are counted below, from the reassembler's counters.
        frames.push_frames(bytes, |frame| {
            let decoded = self.frame(now, conn, frame.as_bytes());
            self.drain(now, io);
            decoded
        });
        self.count_stream(before, frames.stats());
        if frames.is_pending() {
            if let Some(entry) = self.transports.get_mut(conn) {
                entry.put_frames(frames);
            }
        } else if self.spare.is_none() {
            self.spare = Some(frames);
        }
    }

    /// Adds what a connection's reassembler counted during one push.
    fn count_stream(&mut self, before: ReassemblerStats, after: ReassemblerStats) {
        let grew = |a: u64, b: u64| b.saturating_sub(a);
        let counters = &mut self.counters;
        counters.stream_frames_oversized += grew(before.overflows, after.overflows);
        counters.stream_garbage_bytes += grew(before.garbage_bytes, after.garbage_bytes);
        counters.stream_decode_errors += grew(before.errors, after.errors);
        counters.stream_frames_received += grew(before.frames, after.frames);
    }

    /// One whole frame read from connection `conn` (header, length and footer checked),
    /// handed to the node, which validates its body as it decodes it; the decode error when
    /// the body is not valid.
    fn frame(&mut self, now: u64, conn: ConnId, frame: &[u8]) -> Result<(), DecodeError> {
        let Some(entry) = self.transports.get(conn) else {
            return Ok(()); // closed by us meanwhile
        };
        let source = entry.source(conn);
        let protocol = entry.protocol;
        self.transports.touch(conn, now);
        if let (Some(seeds), Some(peer)) = (&mut self.seeds, source.addr) {
            // The membership and the relay read the frame before the node: validated first.
            Frame::parse(frame)?;
            // Membership frames and queries to relay count only when they open (sealed).
            let plain = seeds.plain(now, frame, protocol);
            if plain.is_none() {
                tracing::debug!(peer = %peer, len = frame.len(), "a frame did not open for the membership");
            }
            if let Some(plain) = &plain
                && seeds.handle_frame(now, peer, plain)
            {
                return Ok(());
            }
            // Only a node that exports something reads frames for relaying.
            let inbound = plain
                .as_deref()
                .filter(|_| !seeds.membership().exports().is_empty())
                .and_then(|plain| gateway::inbound(plain, |sid| seeds.is_export(sid)));
            if let Some(inbound) = inbound {
                self.relay(now, conn, inbound);
            }
        }
        let handled = self.node.handle_datagram(at(now), source, frame);
        if self.transports.needs_sid(conn) {
            let sid = self
                .node
                .services()
                .find(|s| s.conn(protocol) == Some(conn))
                .map(|s| *s.sid());
            if let Some(sid) = sid {
                self.transports.note_sid(conn, sid);
            }
        }
        match handled {
            Err(cluster_core::DatagramError::Decode(error)) => Err(error),
            _ => Ok(()),
        }
    }

    /// Input: what a connection task reported.
    pub fn handle_io(&mut self, now: u64, event: IoEvent, io: &mut I) {
        match event {
            IoEvent::Read { conn, bytes } => self.handle_read(now, conn, &bytes, io),
            IoEvent::Closed { conn } => {
                if let Some(entry) = self.transports.remove(conn) {
                    self.node.connection_closed(at(now), entry.source(conn));
                }
                for id in self.relays.closed(conn) {
                    self.node.cancel_query(at(now), &id);
                }
            }
            IoEvent::Written { conn, send, ok } => {
                if let Some(entry) = self.transports.get_mut(conn) {
                    io.written(&mut entry.writer);
                }
                if ok {
                    self.counters.writes_ok += 1;
                    self.transports.touch(conn, now);
                } else {
                    self.counters.writes_failed += 1;
                }
                if let Some(send) = send.filter(|s| *s != SendId::UNTRACKED) {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.report(now, send, ok);
                }
            }
        }
        self.drain(now, io);
    }

    /// Command: sends an event (type 6) to the selected services.
    ///
    /// # Errors
    ///
    /// [`CommandError::Send`] or [`CommandError::Resolve`]; nothing was queued.
    pub fn send(&mut self, now: u64, spec: &SendSpec, io: &mut I) -> Result<(), CommandError> {
        let narrowed = match self.narrow(&spec.to) {
            Ok(Some(to)) => Some(SendSpec { to, ..spec.clone() }),
            Ok(None) => None,
            Err(e) => return Err(e),
        };
        let spec = narrowed.as_ref().unwrap_or(spec);
        let result = spec
            .with_request(|request| self.node.send(at(now), request))
            .map_err(CommandError::from)
            .and_then(|r| r.map_err(CommandError::from));
        self.drain(now, io);
        result
    }

    /// Command: starts a query and gives the verdict through `start`: the query's id and
    /// targets, then its news until its [`QueryEvent::Done`], or why no query was created
    /// ([`CommandError::Query`] or [`CommandError::Resolve`]). Dropping the asker's stream
    /// before the end cancels the query in the node.
    pub fn query(&mut self, now: u64, spec: &QuerySpec, start: QueryStart, io: &mut I) {
        match self.start_query(now, spec) {
            Ok((key, targets)) => {
                if let Some(sink) = start.start(Ok((key, targets))) {
                    self.queries.insert(key, sink);
                }
            }
            Err(e) => {
                start.start(Err(e));
            }
        }
        self.drain(now, io);
    }

    /// The node's query for `spec`: its id and targets.
    fn start_query(
        &mut self,
        now: u64,
        spec: &QuerySpec,
    ) -> Result<(QueryId, SidList), CommandError> {
        let narrowed = match self.narrow(&spec.to) {
            Ok(Some(to)) => Some(QuerySpec { to, ..spec.clone() }),
            Ok(None) => None,
            Err(CommandError::Send(cluster_core::SendError::NoTargets)) => {
                return Err(CommandError::Query(cluster_core::QueryError::NoTargets));
            }
            Err(e) => return Err(e),
        };
        let spec = narrowed.as_ref().unwrap_or(spec);
        let targets = spec.to.matching_list(&self.node)?;
        let key = spec.with_request(|request| self.node.query(at(now), request))??;
        if self.query_latency.is_some() {
            self.query_started.insert(key, now);
        }
        Ok((key, targets))
    }

    /// Command: edits this node's tags; returns whether they changed.
    ///
    /// # Errors
    ///
    /// [`CommandError::Tags`]; the tags are unchanged.
    pub fn update_tags(
        &mut self,
        now: u64,
        edits: &[TagEdit],
        io: &mut I,
    ) -> Result<bool, CommandError> {
        let result = with_tag_ops(edits, |ops| self.node.update_tags(at(now), ops))
            .and_then(|r| r)
            .map_err(CommandError::from);
        if let Some(seeds) = &mut self.seeds {
            seeds.set_tags(self.node.tags());
        }
        self.drain(now, io);
        result
    }

    /// Command: holds queries open from now on; they arrive on the returned stream (a
    /// stream taken before ends). Their responders answer through `commands`.
    pub fn hold(&mut self, commands: mpsc::WeakSender<Command>) -> IncomingQueries {
        let (queries, rx) = mpsc::channel(INCOMING_QUEUE);
        self.incoming = Some(IncomingSink { queries, commands });
        self.node.hold_queries(true);
        IncomingQueries::new(rx)
    }

    /// Command: answers the held query `token`.
    ///
    /// # Errors
    ///
    /// [`CommandError::Answer`]: nothing was sent.
    pub fn answer(
        &mut self,
        now: u64,
        token: ReplyToken,
        answer: &HeldAnswer,
        io: &mut I,
    ) -> Result<(), CommandError> {
        let result = match answer {
            HeldAnswer::Data(data, raw) => self.node.answer(at(now), token, data, raw.as_deref()),
            HeldAnswer::Refuse(error) => self.node.refuse(at(now), token, error),
        };
        self.drain(now, io);
        result.map_err(CommandError::from)
    }

    /// Command: publishes `pairs` as this node's data; returns the new version.
    ///
    /// # Errors
    ///
    /// [`CommandError::Data`]; what was published before stays.
    pub fn set_data(
        &mut self,
        now: u64,
        pairs: &[(String, Vec<u8>)],
        io: &mut I,
    ) -> Result<u16, CommandError> {
        let pairs: Vec<(&str, &[u8])> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let result = self.node.set_data(at(now), &pairs);
        self.drain(now, io);
        result.map_err(CommandError::from)
    }

    /// `selector` with its `data:` filters or members (see [`node_data`](crate::node_data)) applied:
    /// the services it selects, named one by one; `None` when it has no such filter.
    ///
    /// # Errors
    ///
    /// [`CommandError::Resolve`]; [`CommandError::Send`] with `NoTargets` when no service
    /// passes the filters.
    fn narrow(&self, selector: &Selector) -> Result<Option<Selector>, CommandError> {
        let Some(args) = &selector.resolver else {
            return Ok(None);
        };
        let resolver_form = args.first().is_some_and(|a| a.starts_with('-'));
        let mut services: Vec<Sid> = if resolver_form {
            if !args.iter().any(|a| a.contains(DATA_FILTER)) {
                return Ok(None);
            }
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let resolver = Resolver::parse(&words)?;
            self.node
                .services()
                .filter(|s| {
                    let data = self.data.members(s.sid());
                    resolver.matches_members(&WithData {
                        set: s.resolver_set(),
                        data: &data,
                    })
                })
                .map(|s| *s.sid())
                .collect()
        } else {
            let filters: Vec<DataFilter> =
                args.iter().filter_map(|a| DataFilter::parse(a)).collect();
            if filters.is_empty() {
                return Ok(None);
            }
            let rest = Selector {
                resolver: Some(
                    args.iter()
                        .filter(|a| DataFilter::parse(a).is_none())
                        .cloned()
                        .collect(),
                ),
                services: Vec::new(),
            };
            rest.matching(&self.node)?
                .into_iter()
                .filter(|sid| self.data.matches(sid, &filters))
                .collect()
        };
        for sid in &selector.services {
            if !services.contains(sid) {
                services.push(*sid);
            }
        }
        if services.is_empty() {
            return Err(CommandError::Send(cluster_core::SendError::NoTargets));
        }
        Ok(Some(Selector {
            resolver: None,
            services,
        }))
    }

    /// The counters of held queries.
    #[must_use]
    pub fn held_stats(&self) -> HeldStats {
        self.node.held_stats()
    }

    /// Command: broadcasts a discovery unless one went out too recently.
    pub fn discover(&mut self, now: u64, io: &mut I) -> bool {
        let queued = self.node.discover(at(now));
        self.drain(now, io);
        queued
    }

    /// Command: sends a full heartbeat now.
    pub fn heartbeat(&mut self, now: u64, io: &mut I) {
        self.node.heartbeat(at(now));
        self.drain(now, io);
    }

    /// Command: subscribes to a channel; false when the channel table is full.
    pub fn subscribe(&mut self, channel: u64) -> bool {
        self.node.subscribe(channel)
    }

    /// Command: leaves. The disconnect goes out and every service is reported lost; later
    /// inputs are ignored by the node.
    pub fn leave(&mut self, now: u64, io: &mut I) {
        if let Some(seeds) = &mut self.seeds {
            seeds.leave();
        }
        self.node.leave(at(now));
        self.drain(now, io);
    }

    /// The next command of the handles, as a poll: `Ready(None)` once every handle was
    /// dropped (hand it to [`command`](Self::command) all the same: the node then leaves).
    pub fn poll_command(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        self.commands.poll_recv(cx)
    }

    /// The next command of the handles; `None` once every handle was dropped (hand it to
    /// [`command`](Self::command) all the same: the node then leaves). The future borrows
    /// only the command channel, so it is `Send` whatever the policy.
    pub fn next_command(&mut self) -> impl Future<Output = Option<Command>> + Send + '_ {
        let commands = &mut self.commands;
        async move { commands.recv().await }
    }

    /// Answers one command of a handle (`None`: every handle was dropped, which leaves as
    /// [`Command::Leave`] does). Replies whose asker went away are dropped. A `flush` is
    /// answered by [`answer_flushes`](Self::answer_flushes), a `leave` by
    /// [`finish`](Self::finish).
    pub fn command(&mut self, now: u64, command: Option<Command>, io: &mut I) -> Flow {
        let Some(command) = command else {
            self.leave(now, io);
            return Flow::Left;
        };
        match command {
            Command::Send(spec, reply) => {
                let _ = reply.send(self.send(now, &spec, io));
            }
            Command::SendQueued(spec) => {
                if let Err(error) = self.send(now, &spec, io) {
                    self.counters.queued_sends_refused += 1;
                    self.publish(Event::SendFailed { error });
                }
            }
            Command::Query(spec, start) => self.query(now, &spec, start, io),
            Command::Tags(edits, reply) => {
                let _ = reply.send(self.update_tags(now, &edits, io));
            }
            Command::OwnTags(reply) => {
                let _ = reply.send(self.tags());
            }
            Command::Discover(reply) => {
                let _ = reply.send(self.discover(now, io));
            }
            Command::Heartbeat(reply) => {
                self.heartbeat(now, io);
                let _ = reply.send(());
            }
            Command::Services(reply) => {
                let _ = reply.send(self.services());
            }
            Command::Resolve(selector, reply) => {
                let _ = reply.send(self.resolve(&selector));
            }
            Command::Info(reply) => {
                let _ = reply.send(self.info());
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            #[cfg(feature = "seal")]
            Command::SetKeys(keys, reply) => {
                self.set_keys(keys);
                let _ = reply.send(());
            }
            Command::Subscribe(channel, reply) => {
                let _ = reply.send(self.subscribe(channel));
            }
            Command::Hold(commands, reply) => {
                let _ = reply.send(self.hold(commands));
            }
            Command::Answer(token, answer, reply) => {
                let _ = reply.send(self.answer(now, token, &answer, io));
            }
            Command::DropHeld(token) => {
                let _ = self.node.drop_held(at(now), token);
                self.drain(now, io);
            }
            Command::SetData(pairs, reply) => {
                let _ = reply.send(self.set_data(now, &pairs, io));
            }
            Command::HeldStats(reply) => {
                let _ = reply.send(self.node.held_stats());
            }
            Command::Flush(reply) => self.flush_waiters.push(reply),
            Command::Leave(reply) => {
                self.leave_waiters.push(reply);
                self.leave(now, io);
                return Flow::Left;
            }
        }
        Flow::Running
    }

    /// Answers the `flush` commands once no direct send is in flight. Call it after every
    /// input and before waiting.
    pub fn answer_flushes(&mut self) {
        if self.in_flight == 0 {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// The driver is done (after [`Flow::Left`], once the disconnect went out): closes the
    /// handles, forgets every connection ([`close_all`](Self::close_all)) and answers the
    /// `leave` commands. Remove the unix socket file before: `leave` returns once it is gone.
    pub fn finish(&mut self) {
        self.commands.close();
        self.close_all();
        for waiter in self.leave_waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.flush_waiters.clear();
    }

    /// Forgets every connection (their tasks write what is queued, then close) and every
    /// query (their streams end): the driver is stopping.
    pub fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.transports.iter().map(|(id, _)| id).collect();
        for id in ids {
            self.transports.remove(id);
        }
        self.queries.clear();
    }

    /// This node's tags.
    #[must_use]
    pub fn tags(&self) -> Vec<String> {
        self.node
            .tags()
            .iter()
            .map(|t| String::from_utf8_lossy(t.as_bytes()).into_owned())
            .collect()
    }

    /// A snapshot of the known services.
    #[must_use]
    pub fn services(&self) -> Vec<ServiceInfo> {
        let mut services = ServiceInfo::all(&self.node);
        for service in &mut services {
            self.note_heard_on(service);
            self.fill_data(service);
        }
        services
    }

    /// The interfaces the group is joined on and sent from.
    #[must_use]
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Records an answer's latency (metrics kept), and forgets a query's start once done.
    fn note_latency(&mut self, now: u64, id: &QueryId, event: &QueryEvent, done: bool) {
        let Some(latency) = &self.query_latency else {
            return;
        };
        if matches!(
            event,
            QueryEvent::Response { .. } | QueryEvent::Error { .. }
        ) && let Some(started) = self.query_started.get(id)
        {
            latency.observe_ms(now.saturating_sub(*started));
        }
        if done {
            self.query_started.remove(id);
        }
    }

    /// Fills in where `service` was heard, from its address.
    fn note_heard_on(&self, service: &mut ServiceInfo) {
        service.heard_on = service.ip.and_then(|ip| {
            let arrived = self.arrivals.get(&ip).copied().or(match ip {
                IpAddr::V6(v6) => self.scopes.get(&v6).copied(),
                IpAddr::V4(_) => None,
            });
            self.membership.heard_on(ip, arrived)
        });
        // A service on none of our subnets that the membership knows came through seeds,
        // or through a gateway when only a route leads to it.
        service.segment.clone_from(&self.segment);
        if service.heard_on.is_none()
            && let Some(seeds) = &self.seeds
            && !seeds.is_on_lan(&service.sid)
        {
            let membership = seeds.membership();
            let named = |sid: &Sid| {
                membership
                    .member(sid)
                    .and_then(|m| m.segment.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            if membership.member(&service.sid).is_some() {
                service.learned = "seed";
                service.segment = named(&service.sid);
            } else if let Some(route) = membership.route(&service.sid) {
                service.learned = "gateway";
                service.segment = named(&route.gateway);
            }
        }
    }

    /// `addr` with the scope of the interface its IPv6 link-local address was heard on.
    fn scoped(&self, addr: SocketAddr) -> SocketAddr {
        match addr {
            SocketAddr::V6(v6) if v6.scope_id() == 0 && v6.ip().is_unicast_link_local() => {
                let scope = self.scopes.get(v6.ip()).copied().unwrap_or(0);
                SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, scope))
            }
            _ => addr,
        }
    }

    /// Fills in the data `service` publishes, as last seen.
    fn fill_data(&self, service: &mut ServiceInfo) {
        (service.data_version, service.data) = self.data.get(&service.sid);
    }

    /// The sids of the known services `selector` selects.
    ///
    /// # Errors
    ///
    /// [`CommandError::Resolve`] for invalid resolver arguments.
    pub fn resolve(&self, selector: &Selector) -> Result<Vec<Sid>, CommandError> {
        match self.narrow(selector) {
            Ok(Some(narrowed)) => Ok(narrowed.services),
            Ok(None) => selector.matching(&self.node).map_err(CommandError::from),
            Err(CommandError::Send(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// What this node advertises.
    #[must_use]
    pub fn info(&self) -> JoinedInfo {
        JoinedInfo {
            sid: *self.node.sid(),
            hid: *self.node.hid(),
            group: self.group,
            protocols: self.node.protocols(),
            tcp_port: self.tcp_port,
            unix_path: self.unix_path.clone(),
            interfaces: self.membership.names(),
        }
    }

    /// The node's counters and the transport counters (`events_lagged` is the handle's to
    /// add).
    #[must_use]
    pub fn stats(&self) -> (Stats, TransportStats) {
        let mut transport = self.counters;
        transport.connections_open = self.transports.len() as u64;
        (self.node.stats(), transport)
    }

    /// Command: seals every frame from now on with `keys`' send key and accepts only frames
    /// sealed with one of its keys; `None` turns sealing off ([`cluster_core::Node::set_keys`]).
    /// It takes effect at once, for the next frame either way: rotate keys by adding the new
    /// key to every node, then making it the send key everywhere, then removing the old one
    /// ([`KeyRing`](cluster_core::KeyRing)).
    #[cfg(feature = "seal")]
    pub fn set_keys(&mut self, keys: Option<cluster_core::KeyRing>) {
        if let Some(seeds) = &mut self.seeds {
            seeds.set_keys(keys.clone(), crate::seed::os_seed());
        }
        self.node.set_keys(keys);
    }

    /// The key ring in use, if any.
    #[must_use]
    #[cfg(feature = "seal")]
    pub fn keys(&self) -> Option<&cluster_core::KeyRing> {
        self.node.keys()
    }

    /// Direct sends queued on a connection whose outcome is not known yet: a `flush` is
    /// answered when this is zero.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn report(&mut self, now: u64, send: SendId, ok: bool) {
        if ok {
            self.node.transport_ok(at(now), send);
        } else {
            self.node.transport_failed(at(now), send);
        }
    }

    /// Closes a connection on our side (idle) and tells the node.
    fn close_conn(&mut self, now: u64, id: ConnId) {
        if let Some(entry) = self.transports.remove(id) {
            let source = entry.source(id);
            drop(entry);
            self.node.connection_closed(at(now), source);
        }
    }

    /// Step 2 of the contract: every transmit, then every event; then the follow-up
    /// commands found on the way, each followed by its own drain.
    fn drain(&mut self, now: u64, io: &mut I) {
        loop {
            self.drain_transmits(now, io);
            if self.drain_seeds(now, io) {
                continue;
            }
            self.drain_events(now);
            self.write_relayed_answers(now, io);
            let Some(followup) = self.followups.pop() else {
                break;
            };
            match followup {
                Followup::CancelQuery(id) => {
                    self.node.cancel_query(at(now), &id);
                }
                Followup::Refresh(protocol) => self.refresh(now, protocol, io),
                Followup::DropHeld(token) => {
                    let _ = self.node.drop_held(at(now), token);
                }
                Followup::StopHolding => {
                    self.incoming = None;
                    self.node.hold_queries(false);
                }
            }
        }
    }

    /// Sends the held-back datagrams; false while the socket still cannot take them.
    fn send_blocked(&mut self, now: u64, io: &mut I) -> bool {
        let Some(blocked) = &mut self.blocked else {
            return true;
        };
        while let Some(segment) = blocked.segments.front() {
            match send_group(
                &self.membership,
                &mut self.counters,
                io,
                segment,
                self.group,
            ) {
                Ok(()) => {
                    self.counters.datagrams_sent += 1;
                    blocked.segments.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => {
                    self.counters.datagrams_failed += 1;
                    blocked.ok = false;
                    blocked.segments.clear();
                }
            }
        }
        if let Some(Blocked {
            send: Some(send),
            ok,
            ..
        }) = self.blocked.take()
        {
            self.report(now, send, ok);
        }
        true
    }

    fn drain_transmits(&mut self, now: u64, io: &mut I) {
        if !self.send_blocked(now, io) {
            return;
        }
        while let Some(transmit) = self.node.poll_transmit(at(now), &mut self.buf) {
            match transmit.dst {
                Destination::Group { send } => {
                    let frame = self.buf.get(..transmit.len).unwrap_or_default();
                    let size = transmit.segment_size.max(1);
                    let mut ok = true;
                    for (i, segment) in frame.chunks(size).enumerate() {
                        match send_group(
                            &self.membership,
                            &mut self.counters,
                            io,
                            segment,
                            self.group,
                        ) {
                            Ok(()) => self.counters.datagrams_sent += 1,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                self.blocked = Some(Blocked {
                                    segments: frame
                                        .chunks(size)
                                        .skip(i)
                                        .map(<[u8]>::to_vec)
                                        .collect(),
                                    send,
                                    ok,
                                });
                                return;
                            }
                            Err(_) => {
                                self.counters.datagrams_failed += 1;
                                ok = false;
                                break;
                            }
                        }
                    }
                    if let Some(send) = send {
                        self.report(now, send, ok);
                    }
                }
                Destination::Service {
                    sid,
                    via,
                    conn,
                    endpoint,
                    send,
                } => {
                    let buf = std::mem::take(&mut self.buf);
                    let frame = buf.get(..transmit.len).unwrap_or_default();
                    let queued = self.queue_direct(now, sid, via, conn, endpoint, frame, send, io);
                    self.buf = buf;
                    if !queued {
                        self.counters.writes_failed += 1;
                        self.report(now, send, false);
                    }
                }
            }
        }
    }

    /// Queues a direct send on the connection to `sid` ([`Transports::route`]), connecting
    /// when there is none. False when it cannot even be queued (no endpoint, queue full): a failure.
    #[allow(clippy::too_many_arguments)]
    fn queue_direct(
        &mut self,
        now: u64,
        sid: Sid,
        via: Protocol,
        hint: Option<ConnId>,
        endpoint: Endpoint,
        frame: &[u8],
        send: SendId,
        io: &mut I,
    ) -> bool {
        // Of two nodes, the one with the smaller sid follows the other's choice of
        // connection, so that both use the same one.
        let follow = self.node.sid().as_bytes() < sid.as_bytes();
        let id = match self.transports.route(&sid, via, hint, follow) {
            Some(id) => id,
            None => {
                let (target, peer, local) = match endpoint {
                    Endpoint::Tcp(addr) => {
                        let addr = self.scoped(addr);
                        let local = self.addrs.is_local(addr.ip(), now);
                        (Target::Tcp(addr), Some(addr), local)
                    }
                    #[cfg(unix)]
                    Endpoint::Unix(path) => {
                        let Some(path) = path.as_str() else {
                            return false;
                        };
                        (Target::Unix(PathBuf::from(path)), None, true)
                    }
                    _ => return false,
                };
                if !self.make_room(now) {
                    return false;
                }
                self.counters.connects += 1;
                self.transports
                    .open(via, peer, local, true, Some(sid), now, |id| {
                        io.connect(id, target)
                    })
            }
        };
        let Some(entry) = self.transports.get_mut(id) else {
            return false;
        };
        match io.write(&mut entry.writer, frame, send) {
            Write::Written => {
                self.counters.writes_ok += 1;
                self.transports.touch(id, now);
                self.report(now, send, true);
                true
            }
            Write::Queued => {
                self.in_flight += 1;
                self.transports.touch(id, now);
                true
            }
            Write::Refused => {
                self.counters.writes_refused += 1;
                false
            }
        }
    }

    /// Sends the membership's `mx` frames over TCP (to the newest connection this node
    /// opened to that address, or a new one) and hands its news to the node. True when the
    /// node got frames (its transmits need draining again).
    fn drain_seeds(&mut self, now: u64, io: &mut I) -> bool {
        let Some(mut seeds) = self.seeds.take() else {
            return false;
        };
        while let Some((to, frame)) = seeds.poll_transmit(now) {
            let existing = self
                .transports
                .iter()
                .filter(|(_, c)| c.outgoing && c.peer == Some(to) && c.protocol == Protocol::Tcp)
                .map(|(id, _)| id)
                .max_by_key(|id| id.0);
            let id = match existing {
                Some(id) => id,
                None => {
                    if !self.make_room(now) {
                        continue;
                    }
                    self.counters.connects += 1;
                    let local = self.addrs.is_local(to.ip(), now);
                    self.transports
                        .open(Protocol::Tcp, Some(to), local, true, None, now, |id| {
                            io.connect(id, Target::Tcp(to))
                        })
                }
            };
            if let Some(entry) = self.transports.get_mut(id) {
                match io.write(&mut entry.writer, frame, SendId::UNTRACKED) {
                    Write::Written | Write::Queued => self.transports.touch(id, now),
                    Write::Refused => self.counters.writes_refused += 1,
                }
            }
        }
        let mut fed = false;
        while let Some(to_node) = seeds.poll_to_node() {
            let _ = self
                .node
                .handle_datagram(at(now), to_node.source, &to_node.frame);
            fed = true;
        }
        self.seeds = Some(seeds);
        fed
    }

    /// A query or event for services this node relays as a gateway: this node's node
    /// sends it to each of them on the LAN (queries are remembered, their answers go back
    /// on `conn`). A copy of a query already being relayed is not relayed again.
    fn relay(&mut self, now: u64, conn: ConnId, inbound: gateway::Inbound) {
        for target in inbound.targets {
            let Some(target_hid) = self
                .node
                .services()
                .find(|s| *s.sid() == target)
                .map(|s| *s.hid())
            else {
                continue;
            };
            let to = Selector {
                resolver: None,
                services: vec![target],
            };
            if inbound.kind == MessageKind::Event {
                let spec = SendSpec {
                    to,
                    data: inbound.data.clone(),
                    raw: inbound.raw.clone(),
                    channel: inbound.channel,
                    ruid: inbound.ruid.clone(),
                    ..SendSpec::default()
                };
                let sent = spec.with_request(|request| self.node.send(at(now), request));
                tracing::debug!(from = %inbound.from, to = %target, ok = matches!(sent, Ok(Ok(_))), "relayed an event");
                continue;
            }
            if self
                .relays
                .refuses(&inbound.from, inbound.ruid.as_deref(), &target)
            {
                continue;
            }
            let spec = QuerySpec {
                to,
                data: inbound.data.clone(),
                raw: inbound.raw.clone(),
                channel: inbound.channel,
                ..QuerySpec::default()
            };
            let started = spec.with_request(|request| self.node.query(at(now), request));
            let Ok(Ok(id)) = started else {
                tracing::debug!(from = %inbound.from, to = %target, "a relayed query did not start");
                continue;
            };
            let id = String::from_utf8_lossy(id.as_bytes()).into_owned();
            tracing::debug!(from = %inbound.from, to = %target, id = %id, "relaying a query");
            self.relays.start(
                id,
                gateway::Pending {
                    conn,
                    asker: inbound.from,
                    ruid: inbound.ruid.clone(),
                    keepalive: inbound.keepalive,
                    channel: inbound.channel,
                    target,
                    target_hid,
                },
            );
        }
    }

    /// News of a relayed query (this node's query `id`): an answer is queued for the
    /// asker's connection; the end forgets it.
    fn relayed_answer(&mut self, id: &str, event: &QueryEvent) {
        let Some(pending) = self.relays.get(id) else {
            return;
        };
        let answer = match event {
            QueryEvent::Response { payload, .. } => Some(gateway::Answer::Data(
                payload.data.as_deref(),
                payload.raw.as_deref(),
            )),
            QueryEvent::Error { error, .. } => Some(gateway::Answer::Error(error.as_bytes())),
            QueryEvent::Missing { .. } => None,
            QueryEvent::Done(_) => {
                self.relays.finish(id);
                return;
            }
        };
        if let Some(frame) = answer.and_then(|a| gateway::answer_frame(pending, a)) {
            self.relayed_answers.push((pending.conn, frame));
        }
    }

    /// Writes the queued answers of relayed queries on their askers' connections.
    fn write_relayed_answers(&mut self, now: u64, io: &mut I) {
        for (conn, frame) in std::mem::take(&mut self.relayed_answers) {
            let Some(frame) = self.seeds.as_mut().and_then(|s| s.seal_frame(&frame)) else {
                continue;
            };
            if let Some(entry) = self.transports.get_mut(conn) {
                match io.write(&mut entry.writer, &frame, SendId::UNTRACKED) {
                    Write::Written | Write::Queued => self.transports.touch(conn, now),
                    Write::Refused => self.counters.writes_refused += 1,
                }
            }
        }
    }

    /// The membership beyond the LAN, when the node has seeds.
    #[must_use]
    pub fn seeds(&self) -> Option<&Seeds> {
        self.seeds.as_deref()
    }

    /// Room for one more connection: when the table is full, the connection
    /// [`Transports::evictable`] names is closed (counted in `connections_evicted`). False
    /// when none may be (counted in `connects_refused`).
    fn make_room(&mut self, now: u64) -> bool {
        if !self.transports.is_full() {
            return true;
        }
        match self.transports.evictable() {
            Some(victim) => {
                self.counters.connections_evicted += 1;
                self.close_conn(now, victim);
                true
            }
            None => {
                self.counters.connects_refused += 1;
                false
            }
        }
    }

    /// Publishes an event to the handles' subscriptions. A full buffer drops a slow
    /// subscriber's oldest event (it is told); with no subscriber the event has nowhere to go.
    fn publish(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn drain_events(&mut self, now: u64) {
        // Lent where it lies in the node's queue: a core event holds a payload of up to `DATA`
        // bytes inline, and moving it out would copy all of them.
        while let Some(drained) = self.node.poll_event_with(|node, event| match event {
            cluster_core::Event::Query(query) => {
                let (id, news) = translate_query(query);
                Some(Drained::Query(id, news))
            }
            _ => translate(node, event).map(Drained::Other),
        }) {
            match drained {
                Some(Drained::Other(Translated::Event(mut event))) => {
                    match &mut event {
                        Event::Discovered(service) => {
                            self.note_heard_on(service);
                            self.fill_data(service);
                            tracing::debug!(
                                sid = %service.sid,
                                ip = ?service.ip,
                                interface = ?service.heard_on.as_ref().map(|h| &h.interface),
                                "discovered"
                            );
                        }
                        Event::Lost { sid, reason } => {
                            tracing::debug!(sid = %sid, reason = reason.name(), "lost");
                            if let Some(seeds) = &mut self.seeds {
                                seeds.lost(sid);
                                if *reason == cluster_core::LostReason::Disconnected {
                                    seeds.departed(now, sid);
                                }
                            }
                            self.data.remove(sid);
                        }
                        Event::DataChanged { sid, version, data } => {
                            self.data.set(*sid, *version, data.clone());
                        }
                        _ => {}
                    }
                    self.publish(event);
                }
                Some(Drained::Query(id, event))
                    if !self.relays.is_empty() && self.relays.get(&id_text(&id)).is_some() =>
                {
                    self.relayed_answer(&id_text(&id), &event);
                }
                Some(Drained::Query(id, event)) => {
                    let done = matches!(event, QueryEvent::Done(_));
                    self.note_latency(now, &id, &event, done);
                    let delivered = self
                        .queries
                        .get(&id)
                        .is_some_and(|sink| sink.send(event).is_ok());
                    if done {
                        self.queries.remove(&id);
                    } else if !delivered && self.queries.remove(&id).is_some() {
                        self.query_started.remove(&id);
                        // The caller dropped its stream: free the node's query slot.
                        let id = id_text(&id).into_owned();
                        self.followups.push(Followup::CancelQuery(id));
                    }
                }
                Some(Drained::Other(Translated::Refresh(protocol))) => {
                    self.followups.push(Followup::Refresh(protocol));
                }
                Some(Drained::Other(Translated::Held {
                    token,
                    sid,
                    channel,
                    ruid,
                    payload,
                })) => {
                    let delivered = self.incoming.as_ref().map(|sink| {
                        sink.deliver(token, |responder| IncomingQuery {
                            sid,
                            channel,
                            ruid,
                            payload,
                            responder,
                        })
                    });
                    match delivered {
                        Some(Ok(())) => {}
                        Some(Err(Undelivered::Full)) => {
                            self.followups.push(Followup::DropHeld(token));
                        }
                        Some(Err(Undelivered::Closed)) | None => {
                            self.followups.push(Followup::DropHeld(token));
                            self.followups.push(Followup::StopHolding);
                        }
                    }
                }
                // Queries' news came as `Drained::Query`.
                Some(Drained::Other(Translated::Query { .. })) | None => {}
            }
        }
    }

    /// A peer reported our `protocol` failing (type 8): reopen its listener (spec 5.11).
    fn refresh(&mut self, now: u64, protocol: Protocol, io: &mut I) {
        match protocol {
            Protocol::Tcp if self.tcp_port.is_some() => {
                if let Ok(port) = io.reopen_tcp() {
                    self.tcp_port = Some(port);
                    self.node.set_tcp_port(at(now), Some(port));
                    self.publish(Event::ProtocolRefreshed { protocol });
                }
            }
            Protocol::Unix if self.unix_path.is_some() => match io.reopen_unix() {
                Ok(()) => self.publish(Event::ProtocolRefreshed { protocol }),
                Err(_) => self.unix_path = None,
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use cluster_core::{Config, DefaultPolicy};

    /// Records what the engine asks; the multicast socket takes `room` datagrams, then
    /// blocks.
    #[derive(Debug, Default)]
    struct Recorder {
        datagrams: Vec<Vec<u8>>,
        room: usize,
        connects: Vec<Target>,
    }

    impl Io for Recorder {
        type Conn = ();

        fn send_datagram(&mut self, bytes: &[u8], _: SocketAddrV4) -> io::Result<()> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= 1;
            self.datagrams.push(bytes.to_vec());
            Ok(())
        }
        fn connect(&mut self, _: ConnId, target: Target) {
            self.connects.push(target);
        }
        fn write(&mut self, (): &mut (), _: &[u8], _: SendId) -> Write {
            Write::Queued
        }
        fn reopen_tcp(&mut self) -> io::Result<u16> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn reopen_unix(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    fn engine(seed: u64) -> Engine<DefaultPolicy, Recorder> {
        let config = Config::lan_fast();
        let node = HostNode::new(
            config,
            "02:00:00:00:00:01",
            DefaultPolicy,
            seed,
            Instant::ZERO,
        )
        .map(Box::new);
        let node = node.expect("node");
        // No handle: the tests subscribe to the events where they look at them.
        let (_, front) = front(*node.sid(), *node.hid(), crate::EVENT_BUFFER);
        Engine {
            commands: front.commands,
            events: front.events,
            flush_waiters: Vec::new(),
            leave_waiters: Vec::new(),
            node,
            transports: Transports::new(Duration::from_secs(120)),
            counters: TransportStats::default(),
            addrs: LocalAddrs::fixed(vec![]),
            copies: Copies::new(),
            query_latency: None,
            query_started: HashMap::default(),
            scopes: HashMap::new(),
            arrivals: HashMap::new(),
            membership: Membership::fixed(
                Ipv4Addr::new(230, 230, 230, 230),
                &MulticastSetup {
                    destination: SocketAddrV4::new(Ipv4Addr::new(230, 230, 230, 230), 23000),
                    interface: crate::socket::MulticastInterface::Configured(Ipv4Addr::LOCALHOST),
                    ttl: 0,
                },
            ),
            group: SocketAddrV4::new(Ipv4Addr::new(230, 230, 230, 230), 23000),
            tcp_port: None,
            unix_path: None,
            queries: HashMap::default(),
            incoming: None,
            data: DataTable::default(),
            followups: Vec::new(),
            in_flight: 0,
            blocked: None,
            buf: vec![0; HostNode::<DefaultPolicy>::TRANSMIT_BUF],
            spare: None,
            max_frame_len: cluster_core::wire::MAX_FRAME_LEN,
            seeds: None,
            segment: None,
            relays: Relays::default(),
            relayed_answers: Vec::new(),
        }
    }

    fn with_big_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(32 << 20)
            .spawn(f)
            .expect("thread")
            .join()
            .expect("no panic");
    }

    #[test]
    fn a_blocked_socket_holds_the_datagram_until_resume_and_loses_nothing() {
        with_big_stack(|| {
            let mut free = Recorder {
                room: usize::MAX,
                ..Recorder::default()
            };
            let mut reference = engine(7);
            reference.start(0, &mut free);
            let join_frames = free.datagrams.len();
            assert!(join_frames >= 2, "the join heartbeat and the discovery");

            let mut io = Recorder::default();
            let mut engine = engine(7);
            engine.start(0, &mut io);
            assert!(engine.is_blocked());
            assert!(io.datagrams.is_empty());
            io.room = 1;
            engine.resume(0, &mut io);
            assert!(engine.is_blocked(), "one went out, the next is held");
            io.room = usize::MAX;
            engine.resume(0, &mut io);
            assert!(!engine.is_blocked());
            assert_eq!(io.datagrams, free.datagrams, "same frames, same order");
            assert_eq!(engine.stats().1.datagrams_sent, join_frames as u64);
        });
    }

    #[test]
    fn own_datagrams_are_dropped_and_the_deadline_is_the_nodes() {
        with_big_stack(|| {
            let mut io = Recorder {
                room: usize::MAX,
                ..Recorder::default()
            };
            let mut engine = engine(9);
            engine.start(0, &mut io);
            let deadline = engine.next_deadline().expect("a heartbeat is due");
            assert!(deadline <= engine.addrs.next_refresh());
            let echo = io.datagrams[0].clone();
            let from: SocketAddr = "127.0.0.1:23000".parse().unwrap();
            let mut events = engine.events.subscribe();
            engine.handle_datagram(1, from, &echo, &mut io);
            assert!(events.try_recv().is_err(), "its own frame is no service");
            assert_eq!(engine.stats().1.datagrams_received, 1);
            let before = io.datagrams.len();
            engine.handle_timers(deadline, &mut io);
            assert!(io.datagrams.len() > before, "the heartbeat went out");
            engine.leave(deadline, &mut io);
            assert!(engine.node().has_left());
        });
    }

    /// A local service's heartbeat advertising `t` on `port`.
    fn heartbeat(sid: &str, port: u16) -> Vec<u8> {
        use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
        let props = format!("t {{port {port}}}");
        let message = Message {
            kind: Some(MessageKind::Heartbeat),
            sid: Some(Str::from(sid)),
            hid: Some(Str::from("02:00:00:00:00:01")),
            channel: Some(0),
            protocols: Some(List::from_items(&["t", "c"])),
            data: Some(Str::from(props.as_str())),
            known: Some(0),
            ..Message::default()
        };
        let mut frame = vec![0; 256];
        let len = message
            .encode(FilterPlacement::Last, &mut frame)
            .expect("encode");
        frame.truncate(len);
        frame
    }

    /// An empty frame, declaring no body: the node drops it, but it is a whole frame.
    const EMPTY_FRAME: [u8; 5] = [0xC0, 0x8D, 0x00, 0x00, 0x00];

    #[test]
    fn a_huge_declared_length_is_dropped_resynced_and_counted_without_buffering() {
        with_big_stack(|| {
            let mut io = Recorder {
                room: usize::MAX,
                ..Recorder::default()
            };
            let mut engine = engine(11);
            engine.start(0, &mut io);
            let own = io.datagrams[0].clone();
            let id = engine
                .accepted(
                    0,
                    Protocol::Tcp,
                    Some("127.0.0.1:4000".parse().unwrap()),
                    |_| {},
                )
                .expect("room");
            // A header declaring 1,000,000 bytes (under max_frame_len, over STREAM_FRAME),
            // then a body of zeros far longer than the buffer.
            engine.handle_read(1, id, &[0xC0, 0x8D, 0xC0, 0x84, 0x3D], &mut io);
            let zeros = vec![0; 64 * 1024];
            for _ in 0..32 {
                engine.handle_read(1, id, &zeros, &mut io);
                assert_eq!(engine.transports.get(id).unwrap().pending_len(), 0);
            }
            // A header declaring 2^40 bytes (over max_frame_len).
            engine.handle_read(
                1,
                id,
                &[0xC0, 0x8D, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
                &mut io,
            );
            let (_, t) = engine.stats();
            assert_eq!(t.stream_frames_oversized, 1);
            assert!(t.stream_garbage_bytes >= 32 * 64 * 1024 + 4);
            // The stream resynced: a frame split over two reads gets through.
            let before = engine.stats().0.own_echoes;
            let (head, tail) = own.split_at(own.len() / 2);
            engine.handle_read(2, id, head, &mut io);
            assert!(engine.transports.get(id).unwrap().pending_len() > 0);
            engine.handle_read(2, id, tail, &mut io);
            assert_eq!(engine.stats().0.own_echoes, before + 1, "a whole frame");
            assert_eq!(engine.transports.get(id).unwrap().pending_len(), 0);
            // A frame whose body does not decode is counted too (by the node, which reads
            // the body once), and not as a frame received.
            let (node_before, received_before) = (
                engine.stats().0.decode_errors,
                engine.stats().1.stream_frames_received,
            );
            engine.handle_read(3, id, &[0xC0, 0x8D, 0x01, 0xFF, 0x00, 0x00], &mut io);
            engine.handle_read(3, id, &EMPTY_FRAME, &mut io);
            let (node, transport) = engine.stats();
            assert_eq!(transport.stream_decode_errors, 1);
            assert_eq!(node.decode_errors, node_before + 1);
            assert_eq!(transport.stream_frames_received, received_before + 1);
        });
    }

    #[test]
    fn a_full_table_refuses_inbound_connections_and_evicts_an_anonymous_one_for_a_send() {
        with_big_stack(|| {
            let mut io = Recorder {
                room: usize::MAX,
                ..Recorder::default()
            };
            let mut engine = engine(12);
            engine.transports = Transports::new(Duration::from_secs(120)).with_max_connections(2);
            engine.start(0, &mut io);
            let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
            let first = engine.accepted(0, Protocol::Tcp, Some(peer), |_| {});
            let second = engine.accepted(1, Protocol::Tcp, Some(peer), |_| {});
            assert!(first.is_some() && second.is_some());
            let mut called = false;
            let third = engine.accepted(2, Protocol::Tcp, Some(peer), |_| called = true);
            assert_eq!(third, None);
            assert!(!called, "a refused connection gets no handle");
            let (_, t) = engine.stats();
            assert_eq!(
                (t.accepts, t.connections_refused, t.connections_open),
                (2, 1, 2)
            );
            // A send to a service with no connection: the least recently active anonymous
            // connection makes room.
            let from: SocketAddr = "127.0.0.1:23000".parse().unwrap();
            engine.handle_datagram(3, from, &heartbeat("peer0001", 4001), &mut io);
            engine.handle_datagram(3, from, &heartbeat("peer0002", 4002), &mut io);
            let send = |engine: &mut Engine<_, _>, io: &mut Recorder, to: &str| {
                let to = Selector::service(Sid::new(to.as_bytes()).unwrap());
                engine
                    .send(4, &SendSpec::new(to, "hi"), io)
                    .expect("queued");
            };
            send(&mut engine, &mut io, "peer0001");
            let target = |port| Target::Tcp(SocketAddr::from(([127, 0, 0, 1], port)));
            assert_eq!(io.connects, vec![target(4001)]);
            assert!(engine.transports.get(first.unwrap()).is_none(), "evicted");
            let (_, t) = engine.stats();
            assert_eq!((t.connections_evicted, t.connections_open), (1, 2));
            // Once every connection is a known service's, another send finds no room.
            engine
                .transports
                .note_sid(second.unwrap(), Sid::new(b"peer0003").unwrap());
            let failed = engine.stats().1.writes_failed;
            send(&mut engine, &mut io, "peer0002");
            assert_eq!(io.connects.len(), 1, "no connect");
            let (_, t) = engine.stats();
            assert_eq!(t.writes_failed, failed + 1, "the send failed over");
            assert_eq!(engine.stats().1.connects_refused, 1);
        });
    }
}
