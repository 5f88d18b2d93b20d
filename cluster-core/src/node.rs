//! The sans-IO node: the whole protocol as a state machine over bytes, time and commands.
//!
//! `node.rs` holds the public entry points; each delegates to one concern in `node/*`. The
//! concerns share the node's state through `impl` blocks on [`Node`] rather than by passing
//! each piece separately: the receive pipeline touches the registry, the queues, the query
//! table and the ping batch for every frame, and threading six `&mut` arguments through it
//! would obscure more than it isolates. Pure pieces (the registry, props, resolver, tags, the
//! TTL rule) stay free functions or small types with their own tests.

mod answered;
#[cfg(feature = "node-data")]
mod data;
mod event_queue;
mod heartbeat;
mod held;
mod hold;
mod late;
mod outbox;
mod ping;
#[cfg(feature = "large-registry")]
mod probation;
mod probe;
mod props;
mod query;
mod receive;
mod registry;
#[cfg(feature = "heartbeat-fast-path")]
mod repeat;
mod request;
mod resolve;
mod retry;
mod send;
mod slots;
mod state;
mod tags;

use core::time::Duration;

use crate::config::{Config, ConfigError};
#[cfg(feature = "node-data")]
use crate::error::DataError;
use crate::error::{AnswerError, DatagramError, QueryError, SendError};
use crate::event::{Event, LostReason, QueryId, ReplyToken};
use crate::identity::{Hid, Sid, TagList, generate_sid};
use crate::policy::{DefaultPolicy, Policy};
use crate::protocol::{ConnSlot, Protocol, ProtocolList};
use crate::rng::Rng;
use crate::service::{Service, UnixPath};
use crate::stats::{HeldStats, Stats, bump};
use crate::time::{Instant, millis_ceil};
use crate::transmit::{ConnId, SendId, Source, Transmit};
use crate::wire::{Frame, Message, StreamTable};

pub use request::{QueryRequest, SendRequest, Targets};
pub use resolve::{ResolveError, Resolver, ResolverMembers, ResolverSet, glob_match};
pub use tags::{TagError, TagOp};

use held::Outcome;
pub use held::{HeldRoom, HeldTable, NoHeld};
use outbox::{Outbox, PayloadPool};
use props::{OwnProps, PROPS_TEXT_LEN};
use query::QueryTable;
use registry::Registry;

/// Reassembly buffers: this many senders may have a partial frame pending at once.
const STREAM_SENDERS: usize = 2;
/// The key of a sender's reassembly buffer: its protocol, address and connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamKey {
    via: Protocol,
    addr: Option<core::net::SocketAddr>,
    conn: Option<ConnId>,
}

/// One cluster member, as a sans-IO state machine.
///
/// `SERVICES` bounds the registry (and the outbound queue of direct sends); `DATA` bounds an
/// application payload (`data` plus `raw`) and each reassembly buffer; `H` is the room for
/// queries the application holds open to answer later ([`NoHeld`] by default, which takes no
/// memory: the [`Policy`] answers every query on the spot; a [`HeldTable`] otherwise, see
/// [`hold_queries`](Self::hold_queries)); `EVENTS` is the number of events that carry data
/// (messages, queries received, responses, tag changes) held until
/// [`poll_event`](Self::poll_event) drains them (3 by default; at least 1): beyond them such
/// an event is dropped and reported as [`Event::Dropped`]. Events derived from state
/// (`Discovered`, `Lost`, a query's `Missing` and `Done`) are not queued and are never
/// dropped.
/// Memory is fixed at construction: see the crate docs for the size of the default node.
///
/// # Driving contract
///
/// 1. Make exactly one input ([`handle_datagram`](Self::handle_datagram),
///    [`handle_timeout`](Self::handle_timeout), [`transport_ok`](Self::transport_ok),
///    [`transport_failed`](Self::transport_failed)) or command call.
/// 2. Drain [`poll_transmit`](Self::poll_transmit) until `None`, sending each frame and
///    reporting every direct send's outcome; then drain [`poll_event`](Self::poll_event).
/// 3. Wait for the first of: the [`poll_timeout`](Self::poll_timeout) deadline, incoming
///    bytes, a transport outcome, or a command.
/// 4. `now` never goes backwards; if it does, the node clamps it and counts the regression.
///
/// # Capacity and floods
///
/// Anyone on the LAN can invent services (unless the cluster is sealed, feature `seal`). So
/// that a flood of invented sids can neither push out the services this node relies on nor
/// keep real newcomers out for long, the registry tells newcomers from established services:
///
/// * A new service is **on probation** until it is heard from again at least
///   [`Config::probation`] (1 s) after its first frame, or until a direct send to it over `t`
///   or `u` is delivered (it accepted a connection at the address and port it advertised).
///   Then it is **established** ([`Service::is_established`]).
/// * While the registry has room, every newcomer gets in (a whole LAN may start at once).
/// * When it is full, a newcomer evicts the weakest service on probation: the one heard from
///   least, the earliest among equals; a newcomer from a non-local address that already
///   has `SERVICES / 16` (at least 2) services on probation evicts the weakest of those
///   instead. The evicted service is reported [`Event::Lost`] with [`LostReason::Evicted`]
///   and counted (`services_evicted`); if it is real, it comes back with its next frame.
/// * Established services are never evicted: when they fill the registry, a newcomer's
///   frames are dropped and counted (`services_rejected`) until one expires or leaves.
///
/// A flood from one address therefore fills the free slots, then churns only its own
/// entries; services from other addresses keep theirs, and a real newcomer (whose join sends
/// a heartbeat and a discovery, and who answers the discovery this node sends it) is heard
/// more often than an invented sid and stays until its probation ends. A flood that forges
/// many source addresses and repeats its sids can keep newcomers out while it lasts, but
/// never removes an established service; sealing is the answer to that attacker.
///
/// # Loss
///
/// The reference sends a query once, trusts TCP to deliver it, and expires a service whose
/// heartbeats stop for `ttl`. On a LAN that drops a fifth of all packets, TCP delivers late
/// (a lost SYN costs a second, a segment lost three times in a row 1.4 s) and four heartbeats
/// in a row are lost now and then. [`Config::lan_fast`] turns on three remedies, all made of
/// frames a reference node handles as usual; [`Config::reference`] leaves them off. They are
/// built in with the feature `loss-recovery` (cluster-host turns it on; the firmware images
/// leave it off to fit their flash budget, and a node built without it ignores the three
/// fields):
///
/// * **Query retransmission** ([`Config::query_retry`], 250 ms): while a query is live, the
///   targets that have not answered are asked again every interval, by multicast filtered to
///   each (the reference's service-level query frame), which is answered by multicast. The
///   first answer of each target is delivered; later ones are ignored.
/// * **Answer memory** ([`Config::answer_memory`], 2 s): a copy of a query answered lately
///   (same asker, id and payload) gets the same answer again, over the protocol the copy came
///   on, without asking the [`Policy`]; for this project's askers, copies of ids far older
///   are recognised by their counter and dropped. The policy answers each query once.
///   Counted in `answers_repeated` and `copies_dropped`.
/// * **Probing silent services** ([`Config::probe_silent`]): at each full heartbeat, the
///   services silent for more than half their `ttl` are asked for a heartbeat with one
///   discovery filtered to them, which each answers directly (over TCP when it runs it).
///   The same discovery asks again the services whose tags have not arrived (met through a
///   periodic heartbeat after this node's join discovery was lost), which could not be
///   resolved by tag until then.
///
/// With the feature, whatever the config, a fourth guard: **a late tick** (one that comes
/// more than 100 ms after the deadline the node asked for, because the process was not run)
/// does not expire anyone. The heartbeats sent meanwhile are still unread in the driver's
/// socket; expiry waits 100 ms for the driver to read them, at most once per `ttl` so that a
/// driver whose ticks are always late still expires services (module `late`, counted in
/// `expiry_holds`).
///
/// A healthy service is then reported lost only when, for a whole `ttl`, all its heartbeats
/// (`k` of them) and all the probes (`m`, each failing with `q`) are lost: about
/// `p^k * q^m` per heartbeat and pair at loss `p`. At 20% loss with a heartbeat of 150–250 ms
/// and `ttl` 2 s (`k` = 8, `m` = 4, `q` = 0.36) that is 4.4e-8, 3.5e-4 for five nodes over a
/// minute; with `lan_fast`'s own heartbeat (400–600 ms, `k` = 4, `m` = 2) it is about one
/// loss a minute. On such a LAN keep `ttl` at eight heartbeats or more
/// (`tests/sim_loss.rs` measures both).
///
/// # Ordering
///
/// Frames that travel over different protocols are not ordered with each other, as in the
/// reference: a discovery answer sent over TCP just before a tags change may arrive after the
/// multicast heartbeat that carries the new tags, and then set the old ones again until the
/// next change. Applications that change tags right after a peer joins should expect it.
pub struct Node<
    P: Policy = DefaultPolicy,
    const SERVICES: usize = 32,
    const DATA: usize = 512,
    H: HeldRoom = NoHeld,
    const EVENTS: usize = 3,
> {
    core: Core<P, SERVICES, DATA, EVENTS>,
    /// Kept apart from [`Core`] so that its capacity is not a parameter of every part of the
    /// node: the receive pipeline borrows it.
    held: H,
    /// Kept apart from [`Core`] so that frames borrowed from a buffer can be handed to the
    /// core while the table is borrowed.
    streams: StreamTable<StreamKey, STREAM_SENDERS, DATA>,
    /// Kept apart from [`Core`] for the same reason: opened frames borrow its buffer.
    #[cfg(feature = "seal")]
    seal: crate::seal::Sealer<SERVICES, DATA>,
    /// The last [`handle_datagram`](Self::handle_datagram) was quiet (see
    /// [`last_datagram_was_quiet`](Self::last_datagram_was_quiet)).
    #[cfg(feature = "heartbeat-fast-path")]
    quiet: bool,
}

/// Where a node is in its life. `Empty` is zero, as the rest of an empty node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Built by [`Node::empty`], not started: every input and command does nothing.
    Empty,
    /// Started: a cluster member.
    Joined,
    /// After [`Node::leave`]: every input and command does nothing.
    Left,
}

/// What [`Node::start`] sets up: the configuration and what is drawn from the seed.
struct Identity {
    config: Config,
    hid: Hid,
    sid: Sid,
    rng: Rng,
    heartbeat_ms: u64,
}

/// Everything of a node but its reassembly buffers.
struct Core<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize> {
    config: Config,
    protocols: ProtocolList,
    hid: Hid,
    sid: Sid,
    policy: P,
    rng: Rng,
    now: Instant,
    phase: Phase,
    props: OwnProps,
    props_text: heapless::String<PROPS_TEXT_LEN>,
    /// Props or tags queued for the next full heartbeat (spec 5.4).
    queued_props: bool,
    queued_tags: bool,
    /// Tags changed: the heartbeat after the one that carries them carries them again, so a
    /// frame with the old tags still on its way (a discovery answer over TCP is not ordered
    /// with multicast) cannot leave peers with the old tags for good.
    repeat_tags: bool,
    heartbeat_ms: u64,
    heartbeat_at: Option<Instant>,
    /// Services whose `Discovered` event is still to come.
    discover_pending: u32,
    /// When the first of those events is due: the earliest `discover_at` of the pending
    /// services, `None` when none is pending. Kept exact so that `poll_event` (after every
    /// input) and `poll_timeout` need not walk the registry while none is due.
    discover_next: Option<Instant>,
    /// The ping-answer heartbeat owed after a random stagger.
    ping_answer_at: Option<Instant>,
    expiry_check_at: Option<Instant>,
    /// Expiry held back after a late tick ([`late`]).
    expiry_hold: late::ExpiryHold,
    last_discovery: Option<Instant>,
    registry: Registry<SERVICES>,
    ping: ping::PingBatch,
    queries: QueryTable,
    /// Retransmission of live queries (`Config::query_retry`).
    retries: retry::RetryTable,
    /// Answers given lately, for copies of their queries (`Config::answer_memory`).
    answers: answered::AnswerMemory,
    outbox: Outbox<SERVICES>,
    payloads: PayloadPool<DATA>,
    events: event_queue::EventQueue<DATA, EVENTS>,
    /// Services removed since the last `poll_event`, with why: at most every known service.
    lost: slots::Slots<(Sid, LostReason), SERVICES>,
    events_dropped: u32,
    stats: Stats,
}

/// The earlier of two deadlines, either of which may be unset. Inlined on hosts, where the
/// call cost as much as the comparison (nine calls each time a driver asks for the deadline,
/// three times a query round trip); out of line on microcontrollers, where it saves flash.
#[cfg_attr(not(target_os = "none"), inline(always))]
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    // Matched on the second only: in the node's chains of merges the first is the running
    // result, whose test the compiler then shares (smaller on a Cortex-M than matching the
    // pair: -56 B in the node image).
    match b {
        Some(y) => Some(a.map_or(y, |x| x.min(y))),
        None => a,
    }
}

/// A node sized for servers: 16,384 services and 64 KiB payloads. It is megabytes: keep it on
/// the heap.
pub type ServerNode<P = DefaultPolicy> = Node<P, 16_384, 65_536>;

impl<P: Policy, const SERVICES: usize, const DATA: usize, H: HeldRoom, const EVENTS: usize>
    core::fmt::Debug for Node<P, SERVICES, DATA, H, EVENTS>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("sid", &self.core.sid)
            .field("hid", &self.core.hid)
            .field("services", &self.core.registry.len())
            .field("phase", &self.core.phase)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, H: HeldRoom, const EVENTS: usize>
    Node<P, SERVICES, DATA, H, EVENTS>
{
    /// A buffer of this many bytes always holds the largest frame this node sends (1401
    /// bytes for the default node): give [`poll_transmit`](Self::poll_transmit) at least this
    /// much. Frames that do not fit a smaller buffer are dropped and counted
    /// (`transmit_buffer_too_small`).
    #[cfg(not(feature = "seal"))]
    pub const TRANSMIT_BUF: usize = send::transmit_buf_len(SERVICES, DATA);

    /// A buffer of this many bytes always holds the largest frame this node sends, sealed or
    /// not, plus the room it uses to prepare list fields: give
    /// [`poll_transmit`](Self::poll_transmit) at least this much. Frames that do not fit a
    /// smaller buffer are dropped and counted (`transmit_buffer_too_small`).
    #[cfg(feature = "seal")]
    pub const TRANSMIT_BUF: usize =
        crate::seal::transmit_buf_len(send::transmit_buf_len(SERVICES, DATA));

    /// Creates a node and queues its join: a heartbeat with props and tags, then a discovery
    /// (spec 5.3). Props set with [`set_tcp_port`](Self::set_tcp_port) before the first
    /// [`poll_transmit`](Self::poll_transmit) ride the join frames.
    ///
    /// Draws, in order, the heartbeat interval and the sid from `seed`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid or the hid empty or too long.
    pub fn new(
        config: Config,
        hid: &str,
        policy: P,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        Self::build(config, hid, None, policy, seed, now)
    }

    /// As [`new`](Self::new), with a given sid instead of a drawn one: for replaying captures
    /// and for tests. A sid must be new at every join, so normal use draws it.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and [`ConfigError::BadSid`] for an empty or too long sid.
    pub fn with_sid(
        config: Config,
        hid: &str,
        sid: &str,
        policy: P,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let sid = Sid::new(sid.as_bytes())
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::BadSid)?;
        Self::build(config, hid, Some(sid), policy, seed, now)
    }

    fn build(
        config: Config,
        hid: &str,
        sid: Option<Sid>,
        policy: P,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let mut node = Self::empty(policy);
        node.start_as(config, hid, sid, seed, now)?;
        Ok(node)
    }

    /// A node that has not joined yet: no configuration, no identity, nothing queued. Every
    /// input and output does nothing until [`start`](Self::start).
    ///
    /// It is `const` and, apart from `policy`, all zero bits, so that a firmware keeps its
    /// node in a `static` that takes no flash image (`.bss`) and builds it there, in place,
    /// with `start`: the node never passes through the stack.
    ///
    /// ```
    /// use cluster_core::{Config, DefaultPolicy, Instant, Node};
    ///
    /// let mut node = Node::<DefaultPolicy, 8, 256>::empty(DefaultPolicy);
    /// assert!(node.poll_timeout().is_none());
    /// node.start(Config::lan_fast(), "02:fc:00:00:00:01", 7, Instant::ZERO)?;
    /// assert!(node.poll_timeout().is_some());
    /// # Ok::<(), cluster_core::ConfigError>(())
    /// ```
    #[must_use]
    pub const fn empty(policy: P) -> Self {
        const { assert!(SERVICES >= 1 && DATA >= 64 && EVENTS >= 1) };
        Self {
            held: H::EMPTY,
            streams: StreamTable::unconfigured(),
            #[cfg(feature = "seal")]
            seal: crate::seal::Sealer::empty(),
            #[cfg(feature = "heartbeat-fast-path")]
            quiet: false,
            core: Core {
                config: Config::unset(),
                protocols: ProtocolList::EMPTY,
                hid: Hid::EMPTY,
                sid: Sid::EMPTY,
                policy,
                rng: Rng::unseeded(),
                now: Instant::ZERO,
                phase: Phase::Empty,
                props: OwnProps::NONE,
                props_text: heapless::String::new(),
                queued_props: false,
                queued_tags: false,
                repeat_tags: false,
                heartbeat_ms: 0,
                heartbeat_at: None,
                discover_pending: 0,
                discover_next: None,
                ping_answer_at: None,
                expiry_check_at: None,
                expiry_hold: late::ExpiryHold::NONE,
                last_discovery: None,
                registry: Registry::new(),
                ping: ping::PingBatch::new(),
                queries: QueryTable::new(),
                retries: retry::RetryTable::new(),
                answers: answered::AnswerMemory::new(),
                outbox: Outbox::new(),
                payloads: PayloadPool::new(),
                events: event_queue::EventQueue::new(),
                lost: slots::Slots::new(),
                events_dropped: 0,
                stats: Stats::ZERO,
            },
        }
    }

    /// Command: joins with `config`, filling the node in place, as [`new`](Self::new) does
    /// for a node it returns: validates the configuration, draws the heartbeat interval and
    /// the sid from `seed`, and queues the join (a heartbeat with props and tags, then a
    /// discovery, spec 5.3). The policy stays.
    ///
    /// Use it on an [`empty`](Self::empty) node, or to join again after
    /// [`leave`](Self::leave) (with a new sid, as the protocol wants at every join). Whatever
    /// the node held is dropped first, without a disconnect or events: known services,
    /// queries, queued frames and unread events, props set with
    /// [`set_tcp_port`](Self::set_tcp_port) or [`set_unix_path`](Self::set_unix_path) and
    /// channels subscribed since. The counters ([`stats`](Self::stats)) go on.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid or the hid empty or too long; the
    /// node is then unchanged.
    pub fn start(
        &mut self,
        config: Config,
        hid: &str,
        seed: u64,
        now: Instant,
    ) -> Result<(), ConfigError> {
        self.start_as(config, hid, None, seed, now)
    }

    // Out of line: inlined into a firmware's start-up, the configuration's constant fields
    // were stored into the node one by one (after building the same configuration on the
    // stack to validate it); here the node takes it with one copy (node image: -324 B).
    #[inline(never)]
    fn start_as(
        &mut self,
        config: Config,
        hid: &str,
        sid: Option<Sid>,
        seed: u64,
        now: Instant,
    ) -> Result<(), ConfigError> {
        config.validate()?;
        let hid = Hid::new(hid.as_bytes())
            .filter(|h| !h.is_empty())
            .ok_or(ConfigError::BadHid)?;
        let now = self.core.advance(now);
        let mut rng = Rng::new(seed);
        let heartbeat_ms = rng.inclusive(
            millis_ceil(config.heartbeat_min),
            millis_ceil(config.heartbeat_max),
        );
        let drawn = generate_sid(&mut rng);
        self.streams.clear();
        self.held.clear();
        self.streams.set_max_frame_len(config.max_frame_len);
        self.streams.set_idle_ms(millis_ceil(config.stream_idle));
        // A new salt and replay table at every start; the keys stay.
        #[cfg(feature = "seal")]
        self.seal.start(seed);
        self.core.reset(Identity {
            config,
            hid,
            sid: sid.unwrap_or(drawn),
            rng,
            heartbeat_ms,
        });
        self.core.refresh_props_text();
        self.core.full_heartbeat(now);
        self.core.queue_discovery(now);
        Ok(())
    }

    // ----- inputs -----

    /// Input: bytes received from `source` (part of a frame, one frame, or several).
    ///
    /// Frames are reassembled per sender (protocol, address and connection) and each complete
    /// frame goes through the receive pipeline (spec 5.6).
    ///
    /// The node holds a partial frame for at most 2 senders at once (the least recently active
    /// loses its partial frame when a third needs a buffer), which suits UDP, where frames
    /// nearly always arrive whole. An adapter with memory to spare should reassemble stream
    /// connections (`t`, `u`) itself, one [`wire::Reassembler`](crate::wire::Reassembler) per
    /// connection, and pass each complete frame ([`Frame::as_bytes`](crate::wire::Frame::as_bytes)):
    /// whole frames never take a buffer here.
    ///
    /// # Errors
    ///
    /// The last error among the frames these bytes completed; every dropped frame is also
    /// counted in [`stats`](Self::stats). Own echoes and filter misses are not errors.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: Source,
        bytes: &[u8],
    ) -> Result<(), DatagramError> {
        #[cfg(feature = "heartbeat-fast-path")]
        {
            self.quiet = false;
        }
        let now = self.core.advance(now);
        if !self.core.joined() {
            return Ok(());
        }
        let key = StreamKey {
            via: source.via,
            addr: source.addr,
            conn: source.conn,
        };
        #[cfg(feature = "heartbeat-fast-path")]
        if self.repeat_short_path(now, &source, &key, bytes) {
            return Ok(());
        }
        let core = &mut self.core;
        let mut held = self.held.view();
        #[cfg(feature = "seal")]
        let seal = &mut self.seal;
        let mut result = Ok(());
        // Each frame's fields are decoded once, as its body is validated.
        let mut on_frame = |frame: Frame<'_>| {
            let mut message = Message::default();
            if let Err(e) = message.read_fields(frame.body()) {
                bump(&mut core.stats.decode_errors);
                bump(&mut core.stats.frames_dropped);
                result = Err(DatagramError::Decode(e));
                return Err(e);
            }
            #[cfg(all(feature = "heartbeat-fast-path", feature = "seal"))]
            let sealing = seal.is_on();
            #[cfg(feature = "seal")]
            let outcome = match seal.admit(source.via, frame, &mut message, &mut core.stats) {
                crate::seal::Admit::Frame => {
                    core.handle_frame::<H>(now, &source, &message, &mut held)
                }
                crate::seal::Admit::OwnEcho => Ok(()),
                crate::seal::Admit::Drop(e) => Err(e),
            };
            #[cfg(not(feature = "seal"))]
            let outcome = core.handle_frame::<H>(now, &source, &message, &mut held);
            #[cfg(all(feature = "heartbeat-fast-path", feature = "seal"))]
            let outcome = outcome.inspect(|()| {
                if !sealing {
                    core.remember_heartbeat(&source, frame.as_bytes(), &message);
                }
            });
            #[cfg(all(feature = "heartbeat-fast-path", not(feature = "seal")))]
            let outcome = outcome.inspect(|()| {
                core.remember_heartbeat(&source, frame.as_bytes(), &message);
            });
            if let Err(e) = outcome {
                bump(&mut core.stats.frames_dropped);
                result = Err(e);
            }
            Ok(())
        };
        let now_ms = now.as_millis();
        if source.via == Protocol::Multicast {
            self.streams
                .push_datagram_frames(now_ms, key, bytes, &mut on_frame);
        } else {
            self.streams.push_frames(now_ms, key, bytes, &mut on_frame);
        }
        self.sync_stream_stats();
        result
    }

    /// The short path of a periodic heartbeat that repeats the last one accepted from its
    /// service ([`repeat`]); true when it handled `bytes`.
    #[cfg(feature = "heartbeat-fast-path")]
    fn repeat_short_path(
        &mut self,
        now: Instant,
        source: &Source,
        key: &StreamKey,
        bytes: &[u8],
    ) -> bool {
        if source.via != Protocol::Multicast || source.conn.is_some() {
            return false;
        }
        #[cfg(feature = "seal")]
        if self.seal.is_on() {
            return false;
        }
        let Some(index) = self.core.repeated_heartbeat(source, bytes) else {
            return false;
        };
        let no_partial_frames = self.streams.is_empty();
        if !self.streams.take_whole_datagram(now.as_millis(), key) {
            return false;
        }
        let touched_ping = self.core.refresh_repeated(now, source, index);
        self.sync_stream_stats();
        self.quiet = no_partial_frames && !touched_ping;
        true
    }

    /// True when the last [`handle_datagram`](Self::handle_datagram) was a periodic heartbeat
    /// repeating the last one accepted from its service (feature `heartbeat-fast-path`)
    /// that changed nothing the outputs read: no frame, no event and no deadline. When it
    /// came before the deadline [`poll_timeout`](Self::poll_timeout) gave after the previous
    /// input, [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event)
    /// have nothing and `poll_timeout` gives the same deadline: a driver (the simulator) may
    /// skip step 2 of the driving contract for it.
    #[cfg(feature = "heartbeat-fast-path")]
    #[must_use]
    pub fn last_datagram_was_quiet(&self) -> bool {
        self.quiet
    }

    /// Input: a deadline passed. Runs every timer due at `now`; early or repeated calls do
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.core.advance(now);
        if !self.core.joined() {
            return;
        }
        self.streams.expire(now.as_millis());
        self.sync_stream_stats();
        if let Some(mut held) = self.held.view() {
            held.expire(now);
        }
        self.core.handle_timeout(now);
    }

    /// Input: the direct send `id` (from a [`Transmit`]) was delivered.
    pub fn transport_ok(&mut self, now: Instant, id: SendId) {
        let now = self.core.advance(now);
        self.core.send_succeeded(now, id);
    }

    /// Input: the direct send `id` failed (connection refused, reset, write error, ...). The
    /// node tries the target's next protocol, and starts the ping logic when none is left.
    pub fn transport_failed(&mut self, now: Instant, id: SendId) {
        let now = self.core.advance(now);
        self.core.send_failed(now, id);
    }

    /// Input: the adapter closed or lost the connection of `source` (as given to
    /// [`handle_datagram`](Self::handle_datagram)): its reassembly buffer is dropped and no
    /// service keeps it as its send connection.
    pub fn connection_closed(&mut self, now: Instant, source: Source) {
        self.core.advance(now);
        let Some(conn) = source.conn else {
            return;
        };
        for service in self.core.registry.iter_mut() {
            if service.tcp_conn.get() == Some(conn) {
                service.tcp_conn = ConnSlot::NONE;
            }
            #[cfg(feature = "unix")]
            if service.unix_conn.get() == Some(conn) {
                service.unix_conn = ConnSlot::NONE;
            }
        }
        self.streams.remove(&StreamKey {
            via: source.via,
            addr: source.addr,
            conn: source.conn,
        });
    }

    // ----- commands -----

    /// Command: sends an event (type 6) to the services `request` selects (spec 5.13).
    ///
    /// # Errors
    ///
    /// [`SendError`]; nothing was queued. The payload is built in the node's payload pool
    /// and the [`Policy::on_send`] hook rewrites it there, so a full pool is reported
    /// ([`SendError::Full`]) before the hook is asked: when both would refuse, `Full` wins.
    pub fn send(&mut self, now: Instant, request: &SendRequest<'_>) -> Result<(), SendError> {
        let now = self.core.advance(now);
        self.core.send_event(now, request)
    }

    /// Command: starts a query (spec 5.12); replies arrive as [`Event::Query`].
    ///
    /// # Errors
    ///
    /// [`QueryError`]; no query was created. As with [`send`](Self::send), a full payload
    /// pool (`QueryError::Send(SendError::Full)`) is reported before the
    /// [`Policy::on_send`] hook is asked.
    pub fn query(
        &mut self,
        now: Instant,
        request: &QueryRequest<'_>,
    ) -> Result<QueryId, QueryError> {
        let now = self.core.advance(now);
        self.core.start_query(now, request)
    }

    /// Command: ends a query early; a [`QueryEvent::Done`](crate::QueryEvent) follows.
    /// Returns false when no live query has this id.
    pub fn cancel_query(&mut self, now: Instant, id: &str) -> bool {
        let now = self.core.advance(now);
        self.core.finish_query_by_id(now, id.as_bytes())
    }

    /// Command: edits this node's tags (spec 5.15). Any call schedules a full heartbeat now,
    /// which carries the tags when they changed; so does the next full heartbeat after it
    /// (a deliberate difference from the reference: a discovery answer with the old tags,
    /// sent over TCP before the change, may reach a peer after the multicast heartbeat with
    /// the new ones, and would otherwise leave it with the old tags until the next change).
    /// Returns whether they changed.
    ///
    /// # Errors
    ///
    /// [`TagError`]; the tags are unchanged.
    pub fn update_tags(&mut self, now: Instant, ops: &[TagOp<'_>]) -> Result<bool, TagError> {
        let now = self.core.advance(now);
        let changed = tags::apply(&mut self.core.config.tags, ops)?;
        if changed {
            self.core.queued_tags = true;
            self.core.repeat_tags = true;
        }
        if self.core.joined() {
            self.core.heartbeat_at = Some(now);
        }
        Ok(changed)
    }

    /// Command: sets (or clears) the TCP port this node advertises as `t {port N}`; a full
    /// heartbeat with the new props follows at once.
    pub fn set_tcp_port(&mut self, now: Instant, port: Option<u16>) {
        let now = self.core.advance(now);
        if self.core.props.tcp_port != port {
            self.core.props.tcp_port = port;
            self.core.props_changed(now);
        }
    }

    /// Command: sets (or clears) the unix-socket path this node advertises as `u {path P}`.
    /// Returns false, changing nothing, when the path is longer than [`UnixPath::MAX_LEN`],
    /// and for any path without the feature `unix` (a build with no unix-socket transport,
    /// such as the firmware's, advertises none; clearing is accepted).
    pub fn set_unix_path(&mut self, now: Instant, path: Option<&str>) -> bool {
        let now = self.core.advance(now);
        #[cfg(not(feature = "unix"))]
        {
            let _ = now;
            path.is_none()
        }
        #[cfg(feature = "unix")]
        self.set_own_unix_path(now, path)
    }

    #[cfg(feature = "unix")]
    fn set_own_unix_path(&mut self, now: Instant, path: Option<&str>) -> bool {
        let path = match path {
            Some(p) => match UnixPath::new(p.as_bytes()) {
                Some(p) => Some(p),
                None => return false,
            },
            None => None,
        };
        if self.core.props.unix_path != path {
            self.core.props.unix_path = path;
            self.core.props_changed(now);
        }
        true
    }

    /// Command: publishes `pairs` (text keys, byte values) as this node's data, replacing what
    /// it published before, and returns the new version (1 for the first, then counting, after 65535 again 1).
    /// Every peer reads it: a full heartbeat carrying it goes out at once, and later frames
    /// keep peers that missed it up to date (see [`Event::DataChanged`]). With no pairs the
    /// node publishes an empty set (a new version).
    ///
    /// The pairs ride the props (`meta {version V data {k v ...} hex {k hex ...}}` after the
    /// protocols', which Tcl nodes store as the service's `meta` props) and take one of the
    /// node's payload slots while published: with the protocols' props they must fit in
    /// `DATA` bytes, values that are not UTF-8 counting twice (hex).
    ///
    /// # Errors
    ///
    /// [`DataError`]; what was published before stays.
    #[cfg(feature = "node-data")]
    #[cfg_attr(docsrs, doc(cfg(feature = "node-data")))]
    pub fn set_data(&mut self, now: Instant, pairs: &[(&str, &[u8])]) -> Result<u16, DataError> {
        let now = self.core.advance(now);
        self.core.set_data(now, pairs)
    }

    /// The version of the data this node publishes (0: none).
    #[cfg(feature = "node-data")]
    #[cfg_attr(docsrs, doc(cfg(feature = "node-data")))]
    #[must_use]
    pub fn data_version(&self) -> u16 {
        self.core.data_version()
    }

    /// Command: subscribes to a channel. Returns false when the channel table is full.
    pub fn subscribe(&mut self, channel: u64) -> bool {
        self.core.config.add_channel(channel).is_ok()
    }

    /// Command: leaves a channel (channels 0, 1 and 2 cannot be left).
    pub fn unsubscribe(&mut self, channel: u64) {
        self.core.config.channels.retain(|c| *c != channel);
    }

    /// Command: broadcasts a discovery, unless the last one was at most `discover_interval`
    /// ago (compared in whole seconds under the reference profile, spec 5.5). Returns whether
    /// one was queued.
    pub fn discover(&mut self, now: Instant) -> bool {
        let now = self.core.advance(now);
        self.core.discover(now)
    }

    /// Command: sends a full heartbeat now.
    pub fn heartbeat(&mut self, now: Instant) {
        let now = self.core.advance(now);
        if self.core.joined() {
            self.core.full_heartbeat(now);
        }
    }

    /// Command: moves the next full heartbeat to `delay` from now.
    pub fn heartbeat_after(&mut self, now: Instant, delay: Duration) {
        let now = self.core.advance(now);
        if self.core.joined() {
            self.core.heartbeat_at = Some(now.checked_add(delay).unwrap_or(now));
        }
    }

    /// Command: leaves `sid` `within` to live unless it was heard from within the
    /// recently-seen guard or is already expected (spec 5.10 `expected`). Returns whether it
    /// did.
    pub fn expected(&mut self, now: Instant, sid: &[u8], within: Duration) -> bool {
        let now = self.core.advance(now);
        self.core.mark_expected(now, sid, millis_ceil(within))
    }

    /// Command: leaves the cluster. Queues one disconnect (type 0, spec 7.2 Q1), forgets every
    /// service (each with [`Event::Lost`] and reason `Left`) and ends every query. Later
    /// inputs and commands are ignored.
    pub fn leave(&mut self, now: Instant) {
        let now = self.core.advance(now);
        self.core.leave(now);
        self.streams.clear();
        self.held.clear();
    }

    // ----- queries held open -----

    /// Command: holds every query that arrives from now on open for the application to
    /// answer later, instead of asking the [`Policy`] on the spot (`on` false: the policy
    /// answers again; queries already held stay held). Each held query is reported as
    /// [`Event::QueryHeld`] with a [`ReplyToken`]; answer it with [`answer`](Self::answer)
    /// or [`refuse`](Self::refuse) within the node's
    /// [`query_timeout`](Config::query_timeout) (the asker's own timeout is not on the wire;
    /// by default both are 30 s).
    ///
    /// At most `N` queries are held at once (the node's [`HeldTable<N>`]). A query arriving while the table (or the
    /// event queue) is full is refused at once with the error text
    /// `busy: too many queries held open` and counted (`busy` in
    /// [`held_stats`](Self::held_stats)). Returns false, holding nothing, when the node has no
    /// room for held queries ([`NoHeld`]).
    pub fn hold_queries(&mut self, on: bool) -> bool {
        self.held.set_on(on)
    }

    /// Command: answers the held query `token` with `data` (and `raw`, when given), on the
    /// protocol and connection it arrived on.
    ///
    /// # Errors
    ///
    /// [`AnswerError`]: the query is unknown (already answered, dropped, expired), late (its
    /// timeout passed: nothing is sent, the query is forgotten and counted), or, still held,
    /// the answer does not fit or the outbound queue is full.
    pub fn answer(
        &mut self,
        now: Instant,
        token: ReplyToken,
        data: &[u8],
        raw: Option<&[u8]>,
    ) -> Result<(), AnswerError> {
        let now = self.core.advance(now);
        let outcome = Outcome::Answer(Some(data), raw);
        self.core.answer_held(now, self.held.view(), token, outcome)
    }

    /// Command: refuses the held query `token`: its answer carries `error` (at most the
    /// node's `DATA` bytes) in place of `data`, as a [`Refusal`](crate::Refusal) does.
    ///
    /// # Errors
    ///
    /// As [`answer`](Self::answer).
    pub fn refuse(
        &mut self,
        now: Instant,
        token: ReplyToken,
        error: &str,
    ) -> Result<(), AnswerError> {
        let now = self.core.advance(now);
        let outcome = Outcome::Refuse(error.as_bytes());
        self.core.answer_held(now, self.held.view(), token, outcome)
    }

    /// Command: lets the held query `token` go unanswered (the application dropped it): its
    /// asker gets the error `query dropped unanswered` at once rather than waiting for its
    /// timeout, and the drop is counted (`dropped` in [`held_stats`](Self::held_stats)).
    ///
    /// # Errors
    ///
    /// As [`answer`](Self::answer) (a late drop is counted `late`).
    pub fn drop_held(&mut self, now: Instant, token: ReplyToken) -> Result<(), AnswerError> {
        let now = self.core.advance(now);
        self.core
            .answer_held(now, self.held.view(), token, Outcome::Drop)
    }

    /// Queries held open now.
    #[must_use]
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The counters of held queries.
    #[must_use]
    pub fn held_stats(&self) -> HeldStats {
        self.held.stats()
    }

    // ----- outputs -----

    /// Output: the next frame to send, written at the start of `buf`, or `None`.
    ///
    /// Changes after: any input or command that queues frames (join, heartbeats, discovery
    /// answers, query responses, sends, queries, pings, failed reports, leave).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let now = self.core.advance(now);
        #[cfg(feature = "seal")]
        if self.seal.is_on() {
            return self.next_sealed_transmit(now, buf);
        }
        self.core.next_transmit(now, buf)
    }

    /// Output: whether [`poll_transmit`](Self::poll_transmit) has a frame now, without
    /// encoding it. It first settles, as `poll_transmit` would, the queued direct sends that
    /// lead to no frame (their service gone, every protocol tried, a protocol with nothing
    /// to connect to); nothing else changes.
    ///
    /// When it returns true, the next `poll_transmit` at the same `now`, with no input or
    /// command between and a buffer of at least [`TRANSMIT_BUF`](Self::TRANSMIT_BUF) bytes,
    /// returns a frame. (The one exception is a frame the encoder refuses, counted in
    /// `encode_errors`: a length whose varint would start `C0 8D`, spec 7.3, which needs a
    /// frame of at least 18,112 bytes; channels and payload lengths are checked when the
    /// frame is queued.) An adapter that writes frames straight into a transmit queue's
    /// reserved space, which it cannot withdraw, asks this first.
    pub fn has_transmit(&mut self, now: Instant) -> bool {
        let now = self.core.advance(now);
        self.core.has_transmit(now)
    }

    /// The next frame, sealed: encoded in the middle of `buf`, then sealed in place. A frame
    /// that cannot be sealed is counted and skipped (a direct send's is reported failed, so
    /// the node moves on to the next protocol).
    #[cfg(feature = "seal")]
    fn next_sealed_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let range = crate::seal::inner_range(buf.len()).unwrap_or(0..0);
        loop {
            let inner = buf.get_mut(range.clone()).unwrap_or_default();
            let transmit = self.core.next_transmit(now, inner)?;
            let compat = self.core.config.compat;
            let via = match transmit.dst {
                crate::Destination::Group { .. } => Protocol::Multicast,
                crate::Destination::Service { via, .. } => via,
            };
            match self.seal.seal(buf, transmit.len, compat, via) {
                Ok(len) => {
                    let segment_size = match transmit.dst {
                        crate::Destination::Group { .. } => transmit.segment_size,
                        crate::Destination::Service { .. } => len.max(1),
                    };
                    return Some(Transmit {
                        len,
                        segment_size,
                        ..transmit
                    });
                }
                Err(failure) => {
                    crate::seal::count_seal_failure(failure, &mut self.core.stats);
                    if let Some(id) = transmit.dst.send_id() {
                        self.core.send_failed(now, id);
                    }
                }
            }
        }
    }

    /// Command: seals every frame sent from now on with `keys`' send key and accepts only
    /// frames sealed with one of its keys (feature `seal`); `None` turns sealing off. Set the
    /// keys before the first [`poll_transmit`](Self::poll_transmit) so that the join frames
    /// are sealed too. Changing the ring takes effect at once: that is how keys rotate.
    #[cfg(feature = "seal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "seal")))]
    pub fn set_keys(&mut self, keys: Option<crate::seal::KeyRing>) {
        self.seal.set_keys(keys);
    }

    /// The key ring, when sealing is on (feature `seal`).
    #[cfg(feature = "seal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "seal")))]
    #[must_use]
    pub fn keys(&self) -> Option<&crate::seal::KeyRing> {
        self.seal.ring()
    }

    /// Output: the next event, or `None`.
    ///
    /// Changes after: inputs (received frames, timeouts) and the commands `leave` and
    /// `cancel_query`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<DATA>> {
        self.core.pop_event()
    }

    /// True when the queue of events with data holds `EVENTS` of them: the next such event
    /// would be dropped (and reported as [`Event::Dropped`]) unless
    /// [`poll_event`](Self::poll_event) makes room first. A driver may leave received input
    /// unread meanwhile.
    #[must_use]
    pub fn event_queue_full(&self) -> bool {
        self.core.events.is_full()
    }

    /// Output: lends the next event to `lend`, with the node to read (services, queries),
    /// and returns what `lend` returns, or `None` when there is no event. The same events,
    /// in the same order, as [`poll_event`](Self::poll_event), which returns each by value:
    /// an event's payload is up to `DATA` bytes inline, and a queued event lent here is read
    /// where it lies in the node's queue, so its bytes are not copied out.
    ///
    /// Changes after: as [`poll_event`](Self::poll_event).
    pub fn poll_event_with<R>(&mut self, lend: impl FnOnce(&Self, &Event<DATA>) -> R) -> Option<R> {
        if let Some(event) = self.core.events.front() {
            let result = lend(self, event);
            self.core.discard_front_event();
            return Some(result);
        }
        // Borrowed where it was returned: moving it out of the `Option` would copy it whole.
        let next = self.core.pop_event();
        Some(lend(self, next.as_ref()?))
    }

    /// Output: the earliest deadline at which [`handle_timeout`](Self::handle_timeout) has
    /// work, or `None`.
    ///
    /// Changes after: every input and command.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let streams = self.streams.next_expiry().map(Instant::from_millis);
        let held = self.held.next_deadline().filter(|_| self.core.joined());
        earliest(earliest(self.core.next_deadline(), streams), held)
    }

    // ----- getters -----

    /// This node's sid (new at every join).
    #[must_use]
    pub fn sid(&self) -> &Sid {
        &self.core.sid
    }

    /// This node's hid.
    #[must_use]
    pub fn hid(&self) -> &Hid {
        &self.core.hid
    }

    /// This node's tags.
    #[must_use]
    pub fn tags(&self) -> &TagList {
        &self.core.config.tags
    }

    /// This node's configuration, as it runs: its tags are the current ones (see
    /// [`update_tags`](Self::update_tags)) and its channels include those
    /// [subscribed](Self::subscribe) since.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// The protocols this node runs, in priority order (`c` always included).
    #[must_use]
    pub fn protocols(&self) -> ProtocolList {
        self.core.protocols
    }

    /// The heartbeat interval drawn at creation.
    #[must_use]
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.core.heartbeat_ms)
    }

    /// Known services, in the order they were first heard from.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.core.registry.iter()
    }

    /// Number of known services (the `known` field of this node's frames).
    #[must_use]
    pub fn known(&self) -> usize {
        self.core.registry.len()
    }

    /// One known service.
    #[must_use]
    pub fn service(&self, sid: &[u8]) -> Option<&Service> {
        self.core.registry.get(sid)
    }

    /// The service whose last frame over `protocol` came on connection `conn`: how an
    /// adapter learns who is behind a connection it accepted.
    #[must_use]
    pub fn service_by_conn(&self, protocol: Protocol, conn: ConnId) -> Option<&Service> {
        self.core
            .registry
            .iter()
            .find(|s| s.conn(protocol) == Some(conn))
    }

    /// The unix-socket path a known service advertised (`u {path P}`).
    #[must_use]
    pub fn unix_path_of(&self, sid: &[u8]) -> Option<&UnixPath> {
        self.core.registry.unix_path(sid)
    }

    /// The known services `resolver` matches.
    pub fn resolve<'r>(
        &'r self,
        resolver: &'r Resolver<'r>,
    ) -> impl Iterator<Item = &'r Service> + 'r {
        self.core
            .registry
            .iter()
            .filter(move |s| resolver.matches(&s.resolver_set()))
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// True after [`leave`](Self::leave).
    #[must_use]
    pub fn has_left(&self) -> bool {
        self.core.phase == Phase::Left
    }

    /// The policy (hooks).
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.core.policy
    }

    /// The counters of the datagram reassembler: frames and decode errors, and the
    /// `garbage_bytes` it skipped looking for a frame header (bytes no frame claims, which
    /// [`Stats`] does not count).
    #[must_use]
    pub fn stream_stats(&self) -> crate::wire::StreamTableStats {
        self.streams.stats()
    }

    fn sync_stream_stats(&mut self) {
        self.core.stats.stream_overflows = self.streams.stats().dropped_partials();
    }
}

#[cfg(test)]
mod earliest_tests {
    use super::{Instant, earliest};

    #[test]
    fn the_earlier_of_two_deadlines_either_of_which_may_be_unset() {
        let values = [
            None,
            Some(0),
            Some(1),
            Some(7),
            Some(u64::MAX - 1),
            Some(u64::MAX),
        ]
        .map(|ms| ms.map(Instant::from_millis));
        for a in values {
            for b in values {
                let expected = match (a, b) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                assert_eq!(earliest(a, b), expected, "{a:?} {b:?}");
            }
        }
    }
}
