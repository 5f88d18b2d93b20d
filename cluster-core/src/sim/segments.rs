//! Routed segments without multicast between them, for [`Membership`]: each node has an IP
//! on its segment and reaches others only by unicast; latency, loss, partitions between
//! groups of segments and crashes are seeded and in virtual time.

use core::cmp::Reverse;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::boxed::Box;
use std::collections::{BinaryHeap, HashMap};
use std::vec::Vec;

use super::rng::{SimRng, derive_seed};
use crate::Instant;
use crate::identity::{Hid, Sid};
use crate::membership::{
    Entry, MemberEvent, MemberState, MemberText, Membership, MembershipConfig,
};
use crate::wire::Message;

/// Members a simulated node can hold.
pub const SIM_MEMBERS: usize = 1024;
/// The port every simulated node listens on.
const PORT: u16 = 41_000;
/// Send buffer: large enough for a full table exchange.
const BUF: usize = 1 << 18;

/// Latencies and loss between simulated segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentLinks {
    /// One-way latency inside a segment, in ms (plus up to as much jitter).
    pub local_ms: u64,
    /// One-way latency between segments, in ms (plus up to half as much jitter).
    pub routed_ms: u64,
    /// Probability that a frame is lost.
    pub loss: f64,
}

impl Default for SegmentLinks {
    fn default() -> Self {
        Self {
            local_ms: 1,
            routed_ms: 10,
            loss: 0.0,
        }
    }
}

/// One change of a node's member table, with when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEvent {
    /// When.
    pub at: Instant,
    /// Which node saw it.
    pub node: usize,
    /// What it saw.
    pub event: MemberEvent,
}

#[derive(Debug)]
struct SimMember {
    segment: u32,
    ip: Ipv4Addr,
    up: bool,
    membership: Box<Membership<SIM_MEMBERS>>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: u64,
    seq: u64,
    to: usize,
    from: IpAddr,
    frame: Vec<u8>,
}

/// Nodes running [`Membership`] on routed segments.
#[derive(Debug)]
pub struct SegmentSim {
    now: Instant,
    seed: u64,
    links: SegmentLinks,
    config: MembershipConfig,
    nodes: Vec<SimMember>,
    by_ip: HashMap<IpAddr, usize>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    wakeups: BinaryHeap<Reverse<(u64, usize)>>,
    group_of_segment: Option<HashMap<u32, usize>>,
    rng: SimRng,
    seq: u64,
    buf: Vec<u8>,
    log: Vec<SegmentEvent>,
    frames: u64,
}

impl SegmentSim {
    /// An empty network; `seed` determines the whole run.
    #[must_use]
    pub fn new(seed: u64, links: SegmentLinks, config: MembershipConfig) -> Self {
        Self {
            now: Instant::ZERO,
            seed,
            links,
            config,
            nodes: Vec::new(),
            by_ip: HashMap::new(),
            in_flight: BinaryHeap::new(),
            wakeups: BinaryHeap::new(),
            group_of_segment: None,
            rng: SimRng::new(derive_seed(seed, 0x5e9)),
            seq: 0,
            buf: std::vec![0; BUF],
            log: Vec::new(),
            frames: 0,
        }
    }

    /// Adds a node on `segment` with these seed nodes, starting now. Returns its index.
    ///
    /// # Panics
    ///
    /// With more than 250 nodes on one segment or 250 segments, or more seeds than
    /// [`MAX_SEEDS`](crate::membership::MAX_SEEDS).
    pub fn add_node(&mut self, segment: u32, seeds: &[usize]) -> usize {
        let index = self.nodes.len();
        let on_segment = self.nodes.iter().filter(|n| n.segment == segment).count();
        let ip = Ipv4Addr::new(
            10,
            u8::try_from(segment).expect("segment below 250"),
            u8::try_from(on_segment / 250).expect("fewer nodes"),
            u8::try_from(on_segment % 250 + 1).expect("fewer nodes"),
        );
        let sid = std::format!("S{index:07}");
        let hid = std::format!("02:fc:00:00:{:02x}:{:02x}", index >> 8, index & 0xFF);
        let me = Entry {
            sid: Sid::new(sid.as_bytes()).expect("short sid"),
            hid: Hid::new(hid.as_bytes()).expect("short hid"),
            addr: SocketAddr::new(IpAddr::V4(ip), PORT),
            incarnation: 0,
            protocols: MemberText::new(b"t c").expect("short"),
            props: MemberText::new(std::format!("t {{port {PORT}}}").as_bytes()).expect("short"),
            tags: MemberText::EMPTY,
        };
        let mut membership = Box::new(Membership::new(
            self.config,
            me,
            derive_seed(self.seed, index as u64),
            self.now,
        ));
        let seed_addrs: Vec<SocketAddr> = seeds
            .iter()
            .map(|&s| SocketAddr::new(IpAddr::V4(self.nodes[s].ip), PORT))
            .collect();
        membership
            .set_seeds(self.now, &seed_addrs)
            .expect("few seeds");
        self.by_ip.insert(IpAddr::V4(ip), index);
        self.nodes.push(SimMember {
            segment,
            ip,
            up: true,
            membership,
        });
        self.wake(index, self.now);
        index
    }

    fn wake(&mut self, index: usize, at: Instant) {
        self.wakeups.push(Reverse((at.as_millis(), index)));
    }

    /// Virtual time now.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Frames sent so far.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Every member-table change so far, in order.
    #[must_use]
    pub fn log(&self) -> &[SegmentEvent] {
        &self.log
    }

    /// One node's membership.
    #[must_use]
    pub fn membership(&self, index: usize) -> &Membership<SIM_MEMBERS> {
        &self.nodes[index].membership
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True with no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The segment a node is on.
    #[must_use]
    pub fn segment_of(&self, index: usize) -> u32 {
        self.nodes[index].segment
    }

    /// True while the node runs.
    #[must_use]
    pub fn is_up(&self, index: usize) -> bool {
        self.nodes[index].up
    }

    /// Stops a node at once: it sends nothing more and frames to it are lost.
    pub fn crash(&mut self, index: usize) {
        self.nodes[index].up = false;
    }

    /// Cuts the network into groups of segments; frames between groups are lost.
    pub fn partition(&mut self, groups: &[&[u32]]) {
        let mut map = HashMap::new();
        for (g, segments) in groups.iter().enumerate() {
            for &s in *segments {
                map.insert(s, g);
            }
        }
        self.group_of_segment = Some(map);
    }

    /// Joins the groups again.
    pub fn heal(&mut self) {
        self.group_of_segment = None;
    }

    /// True when every running node has heard from every other running node and has it
    /// alive in its table, and has no crashed node alive.
    #[must_use]
    pub fn converged(&self) -> bool {
        let up = self.nodes.iter().filter(|n| n.up).count();
        self.nodes.iter().filter(|n| n.up).all(|n| {
            let m = n.membership.members();
            let alive_up = m
                .iter()
                .filter(|m| {
                    m.state == MemberState::Alive && m.heard && self.member_is_up(m.entry.addr)
                })
                .count();
            let alive_down = m
                .iter()
                .filter(|m| m.state == MemberState::Alive && !self.member_is_up(m.entry.addr))
                .count();
            alive_up + 1 == up && alive_down == 0
        })
    }

    fn member_is_up(&self, addr: SocketAddr) -> bool {
        self.by_ip
            .get(&addr.ip())
            .is_some_and(|&i| self.nodes[i].up)
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        match &self.group_of_segment {
            None => true,
            Some(map) => map.get(&self.nodes[a].segment) == map.get(&self.nodes[b].segment),
        }
    }

    /// Runs until `until` holds (checked after each step) or `limit` ms of virtual time
    /// passed; returns whether it held.
    pub fn run_until(&mut self, limit: u64, mut until: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now.saturating_add_millis(limit);
        let mut checked_at = u64::MAX;
        loop {
            // Checking once per virtual millisecond keeps big runs fast.
            if checked_at != self.now.as_millis() {
                checked_at = self.now.as_millis();
                if until(self) {
                    return true;
                }
            }
            if !self.step(end) {
                return until(self);
            }
        }
    }

    /// Runs for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now.saturating_add_millis(ms);
        while self.step(end) {}
        self.now = self.now.max(end);
    }

    /// Handles the next delivery or wake-up at or before `end`; false when there is none.
    fn step(&mut self, end: Instant) -> bool {
        let next_frame = self.in_flight.peek().map(|Reverse(f)| f.at);
        let next_wake = self.wakeups.peek().map(|Reverse((at, _))| *at);
        let at = match (next_frame, next_wake) {
            (None, None) => return false,
            (a, b) => a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX)),
        };
        if at > end.as_millis() {
            return false;
        }
        self.now = self.now.max(Instant::from_millis(at));
        if next_frame == Some(at) {
            let Some(Reverse(frame)) = self.in_flight.pop() else {
                return false;
            };
            self.deliver(frame);
        } else {
            let Some(Reverse((_, index))) = self.wakeups.pop() else {
                return false;
            };
            if !self.nodes[index].up || self.nodes[index].membership.poll_timeout() > self.now {
                return true;
            }
            self.nodes[index].membership.handle_timeout(self.now);
            self.drain(index);
        }
        true
    }

    fn deliver(&mut self, frame: InFlight) {
        let to = frame.to;
        if !self.nodes[to].up {
            return;
        }
        let from = SocketAddr::new(frame.from, PORT);
        if let Ok((message, _)) = Message::parse(&frame.frame) {
            // Malformed frames would be a bug of the sender; they are counted by the node.
            let _ = self.nodes[to]
                .membership
                .handle_frame(self.now, from, &message);
        }
        self.drain(to);
    }

    /// Sends a node's frames and logs its events, then schedules its next wake-up.
    fn drain(&mut self, index: usize) {
        let now = self.now;
        while let Some(out) = self.nodes[index]
            .membership
            .poll_transmit(now, &mut self.buf)
        {
            self.frames += 1;
            let Some(&to) = self.by_ip.get(&out.to.ip()) else {
                continue;
            };
            if !self.connected(index, to) || self.rng.chance(self.links.loss) {
                continue;
            }
            let base = if self.nodes[index].segment == self.nodes[to].segment {
                self.links.local_ms
            } else {
                self.links.routed_ms
            };
            let delay = base + self.rng.inclusive(0, base / 2);
            self.seq += 1;
            self.in_flight.push(Reverse(InFlight {
                at: now.as_millis() + delay.max(1),
                seq: self.seq,
                to,
                from: IpAddr::V4(self.nodes[index].ip),
                frame: self.buf[..out.len].to_vec(),
            }));
        }
        while let Some(event) = self.nodes[index].membership.poll_event() {
            self.log.push(SegmentEvent {
                at: now,
                node: index,
                event,
            });
        }
        let next = self.nodes[index].membership.poll_timeout().max(now);
        self.wake(index, next);
    }
}
