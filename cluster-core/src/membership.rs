//! Membership beyond one LAN: unicast seeds, push-pull exchanges, unicast heartbeats to
//! remote members and slow re-probing of lost ones, so that a healed partition merges back.
//!
//! [`Membership`] is sans-IO like [`Node`](crate::Node): the driver feeds it received `mx`
//! frames and time, sends what [`Membership::poll_transmit`] gives to the address it names
//! (over TCP, to the member's `t` listener) and drains [`Membership::poll_event`].
//!
//! # The wire rule (membership versions 1 and 2)
//!
//! Everything this module sends is an ordinary **type-1 heartbeat on channel 0** with the base
//! fields `sid hid type channel protocols`, no `data`, no `tags`, plus two template fields the
//! reference never sends (spec 3.1): `op` (id 9, a string) and, on exchanges, `raw` (id 11,
//! bytes). Field ids stay within 1–15, `protocols` is `t c` and the encoder keeps the `C0 8D`
//! rule, so the frame passes the reference decoder (spec 2.4). A reference node that got one
//! would treat it as a periodic heartbeat from the sender (spec 5.11: refresh, no `data` to
//! merge): nothing it does not understand is acted upon.
//!
//! `raw` is read by length, never as varints, so its bytes (which may contain `C0 8D`) do not
//! meet the header-skip quirk; they could only mislead a stream parser that lost its place,
//! which does not happen on the TCP connections these frames use (spec 2.5).
//!
//! Even so, a node sends `mx` frames only to addresses that are configured seeds or that
//! reached it through `mx` frames (which only nodes of this project send). A seed that is a
//! reference node therefore sees at most a heartbeat every retry interval and never answers,
//! and no member table ever names it: a reference node never receives a `beat` or a `pull`.
//!
//! `op` holds the **capability/version word** `mx/<version> <verb> <incarnation> <port>`:
//!
//! * a receiver that finds no `op`, or one that does not start `mx/`, handles the frame as
//!   an ordinary heartbeat;
//! * version 1 knows the verbs `push`, `pull` and `beat` (see the `frame` module); a frame
//!   of any version ≥ 1 with one of these verbs is read with the version-1 layout, and
//!   later versions may only *append* (words after the port, a trailer after the entries);
//!   an unknown verb is ignored;
//! * because every version only appends, a node writes its own version and each side
//!   reads what the lower of the two versions defines: a version-1 node reads a version-2
//!   exchange as version 1 (it never looks past the entries), and a version-2 node reads
//!   the appendix only when the sender's word says 2 or more. Mixed versions therefore
//!   agree on what the older one knows.
//!
//! The entries of `raw` are laid out as in the `entry` module: sid, hid, IP, port,
//! incarnation, protocols, props, tags.
//!
//! **Version 2** (this crate's, [`MX_VERSION`]) appends, and nothing else changes:
//!
//! * to the word, the generation of the sender's exports and its segment name
//!   (`mx/2 <verb> <incarnation> <port> <generation> [<segment>]`, at most 96 bytes): still
//!   one string in `op`, which the reference decodes and never reads;
//! * to the entries of `push` and `pull`, the sender's *exports* (the `entry` module): the
//!   LAN-only services it relays as a gateway, inside `raw`, read by length;
//! * the verb `bye` (a frame like `beat`, no `raw`): the sender leaves. A version-1 node
//!   ignores the unknown verb; a reference node, which never gets one (see above), would
//!   take it as a periodic heartbeat.
//!
//! Against the spec's parser model a version-2 frame is therefore exactly what a version-1
//! frame is: a periodic heartbeat with two template fields the reference ignores. What a
//! gateway sends on its LAN to relay a query or an event is not an `mx` frame at all but its
//! own node's ordinary query or event (`cluster-host`'s `gateway` module).
//!
//! # Behaviour
//!
//! * **Seeds** get a `push` at start and again every `seed_retry`, forever, while they
//!   have not answered or while no member is alive. A seed that answered gets one more
//!   push `seed_retry` later ([`SEED_ANSWERS`]): nodes that started at the same moment
//!   crossed at the seeds, each answered before the other arrived, and learn of each other
//!   from that second answer instead of waiting for an anti-entropy exchange.
//! * A member heard from but whose texts are unknown (only its beats arrived: it learned of
//!   this node first) gets a `push` at once, and again every `seed_retry` while still
//!   unknown, so that it is told to the node within one round trip.
//! * A `push` is answered with a `pull`; both carry the sender's alive members (as many as fit)
//!   and are merged: unknown members are added, a higher incarnation replaces what is known.
//!   Hearsay never revives a member this node has declared lost; only its own frames do.
//! * Every `beat_interval` each alive member gets a `beat`. A member not heard from for
//!   `lost_after` is **lost**; lost members get a `push` every `reprobe_interval`,
//!   forever, and come **back** as soon as one of their frames arrives.
//! * Every `exchange_interval` (±20 %) a random alive member gets a `push` (anti-entropy).
//! * A node that leaves ([`Membership::leave`]) sends each alive member a `bye` (version 2)
//!   and nothing more; the receiver loses it at once instead of after `lost_after`. A
//!   version-1 receiver ignores the unknown verb and loses it by silence.
//!
//! # Gateways
//!
//! Every node with seeds is a gateway for its LAN: the driver tells it
//! ([`Membership::set_exports`]) which services it hears on its LAN that do not speak `mx`
//! (reference nodes, firmware, nodes without seeds), and its exchanges carry them. When the
//! list changes, the next beat sweep sends pushes instead of beats, so every member knows
//! the change within a beat interval. A receiver keeps them as routes (the `route` module):
//! the sender's list replaces its earlier one, a lost gateway's routes go with it, and a
//! sid offered by several gateways uses the lowest gateway sid, the same on every node.
//! Routes are never re-exported: a gateway lists only what it hears itself, so routes
//! cannot loop. What is relayed, and how, is the driver's part (`cluster-host`'s
//! `gateway` module).

mod entry;
mod frame;
mod receive;
mod route;
#[cfg(test)]
mod route_tests;
#[cfg(test)]
mod tests;
mod timers;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use entry::{Entries, Entry, EntryError, EntryWriter, MEMBER_TEXT, MemberText};
pub use frame::{
    MX_VERSION, MxWord, MxWordError, SEGMENT, Segment, Sender, Verb, encode as encode_frame,
};
pub use route::{Route, RouteEvent, Routes};

use crate::identity::{Hid, Sid};
use crate::rng::Rng;
use crate::time::Instant;
use crate::wire::{EncodeError, Message};

/// Most seeds a node keeps.
pub const MAX_SEEDS: usize = 8;
/// Answers a node collects from each seed before it stops pushing to it (while some member
/// is alive): the second, `seed_retry` after the first, carries the members that reached
/// the seed while the first was on its way.
pub const SEED_ANSWERS: u8 = 2;
/// Routes and exports a membership keeps by default (the second parameter of
/// [`Membership`]).
pub const ROUTES: usize = 16;
/// The first membership version whose exchanges carry a gateway's exports.
pub const EXPORTS_VERSION: u32 = 2;
/// Pending pushes and pulls; more are dropped (and counted), their senders retry.
const PENDING: usize = 64;
/// Space a frame needs besides its `raw` bytes (base fields and `op`).
const FRAME_OVERHEAD: usize = 160;

/// Timing of the membership protocol, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipConfig {
    /// Between two beats to each alive member.
    pub beat_interval: u64,
    /// Silence after which a member is lost.
    pub lost_after: u64,
    /// Between two checks for silent members.
    pub check_interval: u64,
    /// Mean time between two anti-entropy exchanges.
    pub exchange_interval: u64,
    /// Between two pushes to a seed that has not answered.
    pub seed_retry: u64,
    /// Between two pushes to a lost member.
    pub reprobe_interval: u64,
}

impl Default for MembershipConfig {
    /// Crash detection in at most `lost_after + check_interval` (4.75 s); a false loss needs
    /// four beats in a row lost.
    fn default() -> Self {
        Self {
            beat_interval: 1_000,
            lost_after: 4_500,
            check_interval: 250,
            exchange_interval: 10_000,
            seed_retry: 2_000,
            reprobe_interval: 5_000,
        }
    }
}

/// Whether a member is heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Heard from within `lost_after`, or learned recently.
    Alive,
    /// Silent for `lost_after`; re-probed slowly.
    Lost,
}

/// How a member became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// From another member's exchange.
    Exchange,
    /// From its own frame.
    Direct,
}

/// A remote member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// What it is and where it is.
    pub entry: Entry,
    /// Alive or lost.
    pub state: MemberState,
    /// How it became known.
    pub learned: Learned,
    /// True once one of its own frames arrived.
    pub heard: bool,
    /// True while its texts are unknown (only its beats were seen).
    pub placeholder: bool,
    /// Its segment, as its own frames name it (empty: none named).
    pub segment: Segment,
    /// The generation of its exports that its routes here come from (0: none).
    exports_seen: u32,
    last_heard: Instant,
    next_probe: Instant,
}

/// A change of the member table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member was heard from for the first time.
    Joined(Sid),
    /// A member fell silent.
    Lost(Sid),
    /// A lost member was heard from again.
    Back(Sid),
}

/// A frame to send, written at the start of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// The member's (or seed's) TCP address.
    pub to: SocketAddr,
    /// Frame length.
    pub len: usize,
    /// What it is.
    pub verb: Verb,
}

/// Why a received `mx` frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipError {
    /// The `op` word is unreadable.
    Word(MxWordError),
    /// The entries are unreadable (entries before the bad one were merged).
    Entries(EntryError),
    /// `sid` or `hid` is missing or too long.
    Sender,
}

/// Too many seeds (more than [`MAX_SEEDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManySeeds;

/// Counters of what went wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipStats {
    /// Members not added because the table was full of alive members.
    pub table_full: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Pushes or pulls not queued because the queue was full.
    pub pending_dropped: u64,
    /// Frames that could not be encoded (buffer too small even for the sender alone).
    pub encode_failed: u64,
    /// Received `mx` frames dropped as malformed.
    pub bad_frames: u64,
    /// Routes or exports not kept because their table was full.
    pub routes_full: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seed {
    addr: SocketAddr,
    /// Pulls received from it, up to [`SEED_ANSWERS`].
    answers: u8,
    next_try: Instant,
}

/// The membership state of one node: its seeds and remote members, at most `MEMBERS`, and
/// the routes through gateways and its own exports as a gateway, at most `ROUTES` each.
#[derive(Debug)]
pub struct Membership<const MEMBERS: usize, const ROUTES: usize = { self::ROUTES }> {
    config: MembershipConfig,
    me: Entry,
    /// The LAN-only services this node relays as a gateway.
    exports: heapless::Vec<Entry, ROUTES>,
    /// Services reachable through other gateways.
    routes: Routes<ROUTES>,
    route_events: heapless::Deque<RouteEvent, ROUTES>,
    /// The exports changed: the next beat sweep pushes to every alive member instead.
    exports_changed: bool,
    /// Grows at every change of the exports (0: never exported); announced in every word.
    exports_generation: u32,
    /// The current beat sweep pushes (it carries the new exports).
    sweep_pushes: bool,
    /// This node left: one sweep of byes, then nothing.
    leaving: bool,
    /// This node's segment, named in its words.
    segment: Segment,
    seeds: heapless::Vec<Seed, MAX_SEEDS>,
    members: heapless::Vec<Member, MEMBERS>,
    replies: heapless::Deque<SocketAddr, PENDING>,
    pushes: heapless::Deque<SocketAddr, PENDING>,
    events: heapless::Deque<MemberEvent, MEMBERS>,
    /// The next member of the current beat sweep; `usize::MAX` between sweeps.
    beat_cursor: usize,
    next_beat: Instant,
    next_check: Instant,
    next_exchange: Instant,
    rng: Rng,
    stats: MembershipStats,
}

impl<const MEMBERS: usize, const ROUTES: usize> Membership<MEMBERS, ROUTES> {
    /// A node's membership. `me` is its own entry; its IP is ignored (receivers use the
    /// frame's source address). `seed` seeds the jitter.
    #[must_use]
    pub fn new(config: MembershipConfig, mut me: Entry, seed: u64, now: Instant) -> Self {
        me.addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), me.addr.port());
        let mut rng = Rng::new(seed);
        let beat_phase = rng.below(config.beat_interval.max(1));
        let mut membership = Self {
            config,
            me,
            exports: heapless::Vec::new(),
            routes: Routes::default(),
            route_events: heapless::Deque::new(),
            exports_changed: false,
            exports_generation: 0,
            sweep_pushes: false,
            leaving: false,
            segment: Segment::EMPTY,
            seeds: heapless::Vec::new(),
            members: heapless::Vec::new(),
            replies: heapless::Deque::new(),
            pushes: heapless::Deque::new(),
            events: heapless::Deque::new(),
            beat_cursor: usize::MAX,
            next_beat: now.saturating_add_millis(beat_phase),
            next_check: now.saturating_add_millis(config.check_interval),
            next_exchange: now,
            rng,
            stats: MembershipStats::default(),
        };
        membership.next_exchange = now.saturating_add_millis(membership.exchange_delay());
        membership
    }

    /// Command: replaces the seeds (after resolving their names again, for example). Seeds
    /// already known keep their state; new ones are pushed to at once.
    ///
    /// # Errors
    ///
    /// [`TooManySeeds`], and nothing changes.
    pub fn set_seeds(&mut self, now: Instant, seeds: &[SocketAddr]) -> Result<(), TooManySeeds> {
        if seeds.len() > MAX_SEEDS {
            return Err(TooManySeeds);
        }
        let mut next = heapless::Vec::new();
        for &addr in seeds {
            let seed = self
                .seeds
                .iter()
                .find(|s| s.addr == addr)
                .copied()
                .unwrap_or(Seed {
                    addr,
                    answers: 0,
                    next_try: now,
                });
            next.push(seed).map_err(|_| TooManySeeds)?;
        }
        self.seeds = next;
        Ok(())
    }

    /// Command: changes this node's tags and props; the incarnation grows so that the change
    /// wins wherever it is merged.
    pub fn set_texts(&mut self, props: MemberText, tags: MemberText) {
        self.me.props = props;
        self.me.tags = tags;
        self.me.incarnation = self.me.incarnation.saturating_add(1);
    }

    /// Command: the LAN-only services this node relays as a gateway (services it hears on
    /// its LAN that do not speak `mx`). When they differ from the last ones, the next beat
    /// sweep pushes to every alive member so that the change is known within a beat
    /// interval. Services beyond `ROUTES` are left out (counted in `routes_full`).
    pub fn set_exports(&mut self, exports: &[Entry]) {
        let kept = exports.get(..ROUTES.min(exports.len())).unwrap_or_default();
        if kept.len() < exports.len() {
            self.stats.routes_full += 1;
        }
        if self.exports.as_slice() != kept {
            self.exports.clear();
            // `kept` fits: it is at most `ROUTES` long.
            let _ = self.exports.extend_from_slice(kept);
            self.exports_changed = true;
            self.exports_generation = self.exports_generation.checked_add(1).unwrap_or(1);
        }
    }

    /// Command: the name of this node's segment, told in every word from now on.
    pub fn set_segment(&mut self, segment: Segment) {
        self.segment = segment;
    }

    /// Getter: this node's segment (empty: none).
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Getter: what this node relays as a gateway.
    #[must_use]
    pub fn exports(&self) -> &[Entry] {
        &self.exports
    }

    /// Getter: the routes through gateways (all of them; [`route`](Self::route) gives the
    /// one in use for a sid).
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        self.routes.all()
    }

    /// Getter: the route in use for `sid`, through the lowest gateway sid that offers it.
    #[must_use]
    pub fn route(&self, sid: &Sid) -> Option<&Route> {
        self.routes.chosen(sid)
    }

    /// Output: the next change of the routes in use.
    pub fn poll_route_event(&mut self) -> Option<RouteEvent> {
        self.route_events.pop_front()
    }

    fn drop_routes_of(&mut self, gateway: &Sid) {
        if let Some(m) = self
            .find(gateway)
            .ok()
            .and_then(|i| self.members.get_mut(i))
        {
            m.exports_seen = 0;
        }
        let events = &mut self.route_events;
        let stats = &mut self.stats;
        self.routes.drop_gateway(gateway, |event| {
            if events.push_back(event).is_err() {
                stats.events_dropped += 1;
            }
        });
    }

    /// Getter: this node's own entry.
    #[must_use]
    pub fn me(&self) -> &Entry {
        &self.me
    }

    /// Getter: the remote members, sorted by sid.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Getter: one member.
    #[must_use]
    pub fn member(&self, sid: &Sid) -> Option<&Member> {
        self.find(sid).ok().and_then(|i| self.members.get(i))
    }

    /// Getter: true while some seed has never answered (the driver resolves seed names again
    /// and calls [`set_seeds`](Self::set_seeds)).
    #[must_use]
    pub fn seeds_unanswered(&self) -> bool {
        self.seeds.iter().any(|s| s.answers == 0)
    }

    /// Getter: counters.
    #[must_use]
    pub fn stats(&self) -> MembershipStats {
        self.stats
    }

    fn find(&self, sid: &Sid) -> Result<usize, usize> {
        self.members
            .binary_search_by(|m| m.entry.sid.as_bytes().cmp(sid.as_bytes()))
    }

    fn exchange_delay(&mut self) -> u64 {
        let mean = self.config.exchange_interval;
        self.rng.inclusive(mean - mean / 5, mean + mean / 5)
    }

    fn emit(&mut self, event: MemberEvent) {
        if self.events.push_back(event).is_err() {
            self.stats.events_dropped += 1;
        }
    }
}
