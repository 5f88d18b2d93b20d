//! [`Cluster`]: many [`Node`]s on one [`SimNet`], driven by the driving contract on virtual
//! time.

use core::cmp::Reverse;
use core::fmt;
use core::ops::{Deref, DerefMut, Range};
use core::time::Duration;
use std::boxed::Box;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::format;
use std::net::Ipv4Addr;
use std::string::String;
use std::vec::Vec;

use super::net::{Delivery, EndpointId, HostId, LinkModel, NetConfig, SimNet, Trace};
use super::rng::{SimRng, derive_seed, node_seed};
use crate::time::millis_ceil;
use crate::wire::{Reassembler, StreamItem};
use crate::{Config, DatagramError, DefaultPolicy, Event, Instant, Node, Policy, Protocol, Sid};

/// Steps [`Cluster::run_for`] may take before it declares a livelock.
const RUN_FOR_STEP_LIMIT: u64 = 200_000_000;
/// Transmits one drain may take before it declares a node that never stops sending.
const DRAIN_LIMIT: usize = 10_000_000;
/// Nodes larger than this are constructed on a thread with a big stack.
const BIG_NODE: usize = 256 * 1024;

/// Where a node slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Not joined yet.
    Pending,
    /// Running.
    Up,
    /// Crashed (silently stopped); [`Cluster::restart`] brings it back.
    Crashed,
    /// Left with [`Cluster::leave`].
    Left,
}

/// One event a node emitted, with when and in which incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent<const DATA: usize> {
    /// When it was drained.
    pub at: Instant,
    /// The incarnation of the node (0 at the first join, one more per restart).
    pub incarnation: u32,
    /// The event.
    pub event: Event<DATA>,
}

/// Why [`Cluster::run_until`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutReason {
    /// `max_steps` were taken.
    StepLimit,
    /// Nothing was left to do: no delivery, no deadline, no join.
    Idle,
}

/// [`Cluster::run_until`] gave up before its predicate held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTimeout {
    /// The run's seed.
    pub seed: u64,
    /// Virtual time when it gave up.
    pub now: Instant,
    /// Steps taken by this call.
    pub steps: u64,
    /// Why.
    pub reason: TimeoutReason,
}

impl fmt::Display for SimTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason {
            TimeoutReason::StepLimit => "step limit reached",
            TimeoutReason::Idle => "nothing left to do",
        };
        write!(
            f,
            "simulation with seed {} gave up at {} ms after {} steps ({reason}); replay with \
             SIM_SEED={}",
            self.seed,
            self.now.as_millis(),
            self.steps,
            self.seed
        )
    }
}

impl std::error::Error for SimTimeout {}

/// `expect` that names the seed to replay.
pub trait ExpectSeed<T> {
    /// The value, or a panic naming `seed` and how to replay it.
    ///
    /// # Panics
    ///
    /// On an error.
    fn expect_seed(self, seed: u64) -> T;
}

impl<T, E: fmt::Display> ExpectSeed<T> for Result<T, E> {
    #[track_caller]
    fn expect_seed(self, seed: u64) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("seed {seed}: {e} (replay with SIM_SEED={seed})"),
        }
    }
}

/// Per-node counters kept by the harness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeCounters {
    /// Frame bytes handed to the network since the last [`Cluster::reset_counters`].
    pub bytes_sent: u64,
    /// Frames handed to the network since the last reset.
    pub frames_sent: u64,
    /// `handle_datagram` calls that returned an error (all time).
    pub datagram_errors: u64,
    /// Events the node reported as dropped with `Event::Dropped` (all time).
    pub events_dropped: u64,
}

#[derive(Debug, Clone)]
struct HostSpec {
    hid: String,
    ips: Vec<Ipv4Addr>,
    lan: u32,
}

#[derive(Debug, Clone)]
struct NodeSpec<P> {
    host: usize,
    config: Config,
    policy: P,
    join_at: Option<Instant>,
    #[cfg(feature = "seal")]
    keys: Option<crate::seal::KeyRing>,
}

/// Builds a [`Cluster`] with a custom layout: hosts, nodes on hosts, join times, network.
///
/// ```
/// use cluster_core::Config;
/// use cluster_core::sim::{Cluster, ClusterBuilder};
/// let mut b = ClusterBuilder::new(7);
/// let h = b.host();
/// b.node(h, Config::lan_fast());
/// b.node(h, Config::lan_fast());
/// let mut c: Cluster = b.build();
/// c.run_until(|c| c.all_know_each_other(), 10_000).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ClusterBuilder<P = DefaultPolicy> {
    seed: u64,
    net: NetConfig,
    hosts: Vec<HostSpec>,
    nodes: Vec<NodeSpec<P>>,
    policy: P,
    join_window: Duration,
    log_events: bool,
    record_losses: bool,
    trace: bool,
}

impl ClusterBuilder<DefaultPolicy> {
    /// An empty layout for run `seed`, with [`DefaultPolicy`] nodes and a loss-free LAN.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            net: NetConfig::default(),
            hosts: Vec::new(),
            nodes: Vec::new(),
            policy: DefaultPolicy,
            join_window: Duration::ZERO,
            log_events: true,
            record_losses: true,
            trace: false,
        }
    }
}

impl<P: Policy + Clone + Send> ClusterBuilder<P> {
    /// Uses `policy` (cloned) for the nodes added from now on, and at their restarts.
    ///
    /// # Panics
    ///
    /// When nodes were already added with another policy type.
    #[must_use]
    pub fn policy<Q: Policy + Clone + Send>(self, policy: Q) -> ClusterBuilder<Q> {
        assert!(self.nodes.is_empty(), "set the policy before adding nodes");
        ClusterBuilder {
            seed: self.seed,
            net: self.net,
            hosts: self.hosts,
            nodes: Vec::new(),
            policy,
            join_window: self.join_window,
            log_events: self.log_events,
            record_losses: self.record_losses,
            trace: self.trace,
        }
    }

    /// The network parameters.
    pub fn net(&mut self, net: NetConfig) -> &mut Self {
        self.net = net;
        self
    }

    /// The link model between hosts.
    pub fn lan(&mut self, lan: LinkModel) -> &mut Self {
        self.net.lan = lan;
        self
    }

    /// Nodes without an explicit join time join at a uniformly random time in `0..=window`
    /// (all at 0 by default).
    pub fn join_within(&mut self, window: Duration) -> &mut Self {
        self.join_window = window;
        self
    }

    /// Whether the harness keeps every node's events (on by default; `Lost` times and the
    /// counters are kept either way). Turn it off for very large runs.
    pub fn log_events(&mut self, on: bool) -> &mut Self {
        self.log_events = on;
        self
    }

    /// Whether the harness keeps when each node first reported each sid lost, for
    /// [`Cluster::lost_at`] and [`Cluster::lost_by_all`] (on by default). Turn it off for very
    /// large runs whose nodes evict services from full registries: every evicted sid is a
    /// `Lost` event, and a LAN of n nodes can report n² of them.
    pub fn record_losses(&mut self, on: bool) -> &mut Self {
        self.record_losses = on;
        self
    }

    /// Whether the network records every frame and outcome ([`Cluster::trace`]).
    pub fn trace(&mut self, on: bool) -> &mut Self {
        self.trace = on;
        self
    }

    /// Adds a host on LAN segment 0 with a generated hid (`02:fc:00:00:HH:HH`) and address
    /// (`10.0.x.y`).
    pub fn host(&mut self) -> HostId {
        self.host_on_lan(0)
    }

    /// Adds a host on LAN segment `lan` with a generated hid and address.
    pub fn host_on_lan(&mut self, lan: u32) -> HostId {
        let n = self.hosts.len();
        let hid = format!("02:fc:00:00:{:02x}:{:02x}", (n >> 8) & 0xff, n & 0xff);
        let ip = Ipv4Addr::new(10, 0, ((n / 250) & 0xff) as u8, (n % 250 + 1) as u8);
        self.host_with(&hid, &[ip], lan)
    }

    /// Adds a host with this hid, these addresses (the first is the source of its
    /// datagrams) and LAN segment.
    pub fn host_with(&mut self, hid: &str, ips: &[Ipv4Addr], lan: u32) -> HostId {
        self.hosts.push(HostSpec {
            hid: hid.into(),
            ips: ips.to_vec(),
            lan,
        });
        HostId(self.hosts.len() - 1)
    }

    /// Adds a node on `host`; returns its index.
    pub fn node(&mut self, host: HostId, config: Config) -> usize {
        let policy = self.policy.clone();
        self.node_with_policy(host, config, policy)
    }

    /// Adds a node on `host` with its own policy value.
    pub fn node_with_policy(&mut self, host: HostId, config: Config, policy: P) -> usize {
        self.nodes.push(NodeSpec {
            host: host.0,
            config,
            policy,
            join_at: None,
            #[cfg(feature = "seal")]
            keys: None,
        });
        self.nodes.len() - 1
    }

    /// Adds `n` nodes, each on a new host, in remote mode (multicast TTL 1).
    pub fn nodes_one_per_host(&mut self, n: usize, config: &Config) -> Range<usize> {
        let start = self.nodes.len();
        for _ in 0..n {
            let mut config = config.clone();
            config.remote = true;
            let host = self.host();
            self.node(host, config);
        }
        start..self.nodes.len()
    }

    /// Adds `n` nodes on `host`.
    pub fn nodes_on_host(&mut self, host: HostId, n: usize, config: &Config) -> Range<usize> {
        let start = self.nodes.len();
        for _ in 0..n {
            self.node(host, config.clone());
        }
        start..self.nodes.len()
    }

    /// Node `node` joins at `at` instead of at a random time.
    pub fn join_at(&mut self, node: usize, at: Instant) -> &mut Self {
        self.nodes[node].join_at = Some(at);
        self
    }

    /// Node `node` seals its frames with `keys` from its join on, and at its restarts
    /// (feature `seal`).
    #[cfg(feature = "seal")]
    pub fn keys(&mut self, node: usize, keys: crate::seal::KeyRing) -> &mut Self {
        self.nodes[node].keys = Some(keys);
        self
    }

    /// The cluster. Nothing runs yet: nodes join as the first steps are taken.
    #[must_use]
    pub fn build<const SERVICES: usize, const DATA: usize>(self) -> Cluster<P, SERVICES, DATA> {
        let mut net = SimNet::new(derive_seed(self.seed, 1), self.net);
        net.set_trace(self.trace);
        let hosts: Vec<HostId> = self
            .hosts
            .iter()
            .map(|h| net.add_host(&h.hid, &h.ips, h.lan))
            .collect();
        let mut join_rng = SimRng::new(derive_seed(self.seed, 2));
        let window = millis_ceil(self.join_window);
        let mut joins = BinaryHeap::new();
        let mut slots = Vec::with_capacity(self.nodes.len());
        for (index, spec) in self.nodes.into_iter().enumerate() {
            let ep = net.add_endpoint(hosts[spec.host]);
            debug_assert_eq!(ep.0, index);
            let join_at = spec
                .join_at
                .unwrap_or_else(|| Instant::from_millis(join_rng.inclusive(0, window)));
            joins.push(Reverse((join_at, index)));
            slots.push(Slot {
                node: None,
                state: NodeState::Pending,
                host: spec.host,
                config: spec.config,
                policy: spec.policy,
                #[cfg(feature = "seal")]
                keys: spec.keys,
                incarnation: 0,
                joined_at: None,
                timer: None,
                timer_version: 0,
                deadline: None,
                log: Vec::new(),
                lost: HashMap::new(),
                sids: Vec::new(),
                counters: NodeCounters::default(),
                errors: Vec::new(),
                streams: HashMap::new(),
            });
        }
        Cluster {
            seed: self.seed,
            now: Instant::ZERO,
            net,
            slots,
            timers: BinaryHeap::new(),
            joins,
            buf: std::vec![0; Node::<P, SERVICES, DATA>::TRANSMIT_BUF],
            steps: 0,
            timer_stalls: 0,
            #[cfg(feature = "heartbeat-fast-path")]
            quiet_inputs: 0,
            log_events: self.log_events,
            record_losses: self.record_losses,
            auto_refresh: true,
            counters_since: Instant::ZERO,
        }
    }
}

struct Slot<P: Policy, const SERVICES: usize, const DATA: usize> {
    node: Option<Box<Node<P, SERVICES, DATA>>>,
    state: NodeState,
    host: usize,
    config: Config,
    policy: P,
    #[cfg(feature = "seal")]
    keys: Option<crate::seal::KeyRing>,
    incarnation: u32,
    joined_at: Option<Instant>,
    timer: Option<Instant>,
    timer_version: u64,
    /// The node's own `poll_timeout` after it was last driven (`timer` may differ: it is
    /// cleared while the deadline is handled and moved on after a stall).
    deadline: Option<Instant>,
    log: Vec<LoggedEvent<DATA>>,
    /// First `Lost` time per sid.
    lost: HashMap<Sid, Instant>,
    /// The sid of each incarnation.
    sids: Vec<Sid>,
    counters: NodeCounters,
    errors: Vec<(DatagramError, u64)>,
    /// One reassembly buffer per stream connection, as an adapter with memory keeps them:
    /// the node then only ever sees whole frames from streams. Connections with nothing
    /// pending hold no buffer.
    streams: HashMap<crate::ConnId, Box<Reassembler<STREAM_BUFFER>>>,
}

/// The largest frame the harness reassembles from a stream connection.
const STREAM_BUFFER: usize = 16 * 1024;

/// A simulated cluster: nodes on hosts of a [`SimNet`], driven on virtual time.
///
/// The harness plays every node's adapter. It follows the driving contract after every
/// input: drain `poll_transmit` into the network, report each direct send's outcome when the
/// network delivers it, drain `poll_event` into a per-node log, and wake each node at its
/// `poll_timeout`. It assigns TCP ports (`set_tcp_port` before the join frames go out), and
/// on `Event::RefreshProtocol` for `t` reopens the listener on a new port and tells the node.
///
/// [`step`](Self::step) handles exactly one thing (a join, a delivery or a node deadline) at
/// the earliest time any is due; [`run_until`](Self::run_until) and
/// [`run_for`](Self::run_for) repeat it. Virtual time is in milliseconds, like the node's.
///
/// When a test panics while a cluster is alive, the cluster prints its seed and how to replay
/// it (`SIM_SEED=<seed>`).
pub struct Cluster<P: Policy = DefaultPolicy, const SERVICES: usize = 128, const DATA: usize = 512>
{
    seed: u64,
    now: Instant,
    net: SimNet,
    slots: Vec<Slot<P, SERVICES, DATA>>,
    /// Node deadlines: `(at, node, version)`; stale versions are skipped.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    joins: BinaryHeap<Reverse<(Instant, usize)>>,
    buf: Vec<u8>,
    steps: u64,
    timer_stalls: u64,
    /// Inputs after which the node was not driven (see `deliver`).
    #[cfg(feature = "heartbeat-fast-path")]
    quiet_inputs: u64,
    log_events: bool,
    record_losses: bool,
    auto_refresh: bool,
    counters_since: Instant,
}

impl<P: Policy, const SERVICES: usize, const DATA: usize> fmt::Debug
    for Cluster<P, SERVICES, DATA>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("nodes", &self.slots.len())
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl<P: Policy, const SERVICES: usize, const DATA: usize> Drop for Cluster<P, SERVICES, DATA> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::eprintln!(
                "sim: the run with seed {seed} failed at {} ms; replay it with SIM_SEED={seed}",
                self.now.as_millis(),
                seed = self.seed,
            );
        }
    }
}

impl Cluster {
    /// `n` nodes with `config`, all joining at time 0 on a loss-free network: on one host in
    /// local mode, or each on its own host of one LAN when `config.remote` is set.
    #[must_use]
    pub fn new(seed: u64, n: usize, config: Config) -> Self {
        let mut b = ClusterBuilder::new(seed);
        if config.remote {
            b.nodes_one_per_host(n, &config);
        } else {
            let host = b.host();
            b.nodes_on_host(host, n, &config);
        }
        b.build()
    }
}

/// Builds a node on the heap; big nodes on a thread with a big stack, as the node is first
/// built by value.
fn build_node<P: Policy + Send, const SERVICES: usize, const DATA: usize>(
    config: Config,
    hid: &str,
    policy: P,
    seed: u64,
    now: Instant,
) -> Box<Node<P, SERVICES, DATA>> {
    let make = move || {
        Box::new(
            Node::<P, SERVICES, DATA>::new(config, hid, policy, seed, now)
                .unwrap_or_else(|e| panic!("sim: invalid node configuration: {e}")),
        )
    };
    let size = size_of::<Node<P, SERVICES, DATA>>();
    if size <= BIG_NODE {
        return make();
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("sim-node-builder".into())
            .stack_size(size * 8 + (8 << 20))
            .spawn_scoped(scope, make)
            .expect("sim: cannot spawn a thread to build a node")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

impl<P: Policy + Clone + Send, const SERVICES: usize, const DATA: usize>
    Cluster<P, SERVICES, DATA>
{
    // ----- running -----

    /// Handles the next thing due (a join, a delivery or a node deadline), advancing virtual
    /// time to it. Returns the new time, or `None` when nothing is left to do.
    pub fn step(&mut self) -> Option<Instant> {
        let next = self.next_time()?;
        Some(self.step_at(next))
    }

    /// [`step`](Self::step) when the next thing is due at `next` (as `next_time` said).
    fn step_at(&mut self, next: Instant) -> Instant {
        self.now = self.now.max(next);
        self.steps += 1;
        let now = self.now;
        if self.joins.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            if let Some(Reverse((_, index))) = self.joins.pop()
                && self.slots[index].state == NodeState::Pending
            {
                self.join(index);
            }
        } else if self.net.poll_timeout().is_some_and(|at| at <= now) {
            if let Some(delivery) = self.net.poll_delivery(now) {
                self.deliver(delivery);
            }
        } else if let Some(Reverse((_, index, _))) = self.timers.pop() {
            let slot = &mut self.slots[index];
            slot.timer = None;
            slot.timer_version += 1;
            if let Some(node) = slot.node.as_deref_mut() {
                node.handle_timeout(now);
                self.drive(index, true);
            }
        }
        now
    }

    /// Steps until `pred` holds at the end of an instant (after everything due at that
    /// millisecond was handled), for at most `max_steps` steps. Returns the time at which it
    /// held.
    ///
    /// # Errors
    ///
    /// [`SimTimeout`] when the steps ran out or nothing was left to do.
    pub fn run_until(
        &mut self,
        mut pred: impl FnMut(&Self) -> bool,
        max_steps: u64,
    ) -> Result<Instant, SimTimeout> {
        let mut steps = 0;
        loop {
            let next = self.next_time();
            if next.is_none_or(|t| t > self.now) {
                if pred(self) {
                    return Ok(self.now);
                }
                if next.is_none() {
                    return Err(self.timeout(steps, TimeoutReason::Idle));
                }
            }
            if steps >= max_steps {
                return Err(self.timeout(steps, TimeoutReason::StepLimit));
            }
            if let Some(next) = next {
                self.step_at(next);
            }
            steps += 1;
        }
    }

    /// Steps through everything due within `duration` from now; time then stands at
    /// `now + duration`.
    ///
    /// # Panics
    ///
    /// After an absurd number of steps (a livelock in a node).
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now.saturating_add_millis(millis_ceil(duration));
        self.run_to(end);
    }

    /// Steps through everything due until `end`; time then stands at `end` (or later, if it
    /// already was).
    ///
    /// # Panics
    ///
    /// After an absurd number of steps (a livelock in a node).
    pub fn run_to(&mut self, end: Instant) {
        let mut steps = 0u64;
        while let Some(next) = self.next_time().filter(|t| *t <= end) {
            self.step_at(next);
            steps += 1;
            assert!(
                steps < RUN_FOR_STEP_LIMIT,
                "sim: livelock: {steps} steps without reaching {} ms (now {} ms)",
                end.as_millis(),
                self.now.as_millis()
            );
        }
        self.now = self.now.max(end);
    }

    fn timeout(&self, steps: u64, reason: TimeoutReason) -> SimTimeout {
        SimTimeout {
            seed: self.seed,
            now: self.now,
            steps,
            reason,
        }
    }

    /// The earliest time anything is due.
    fn next_time(&mut self) -> Option<Instant> {
        while let Some(Reverse((_, index, version))) = self.timers.peek() {
            if self.slots[*index].timer_version == *version {
                break;
            }
            self.timers.pop();
        }
        [
            self.joins.peek().map(|Reverse((at, _))| *at),
            self.net.poll_timeout(),
            self.timers.peek().map(|Reverse((at, _, _))| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn join(&mut self, index: usize) {
        let now = self.now;
        let ep = EndpointId(index);
        let slot = &self.slots[index];
        let remote = slot.config.remote;
        let tcp = slot.config.protocols.contains(Protocol::Tcp);
        let hid = String::from(self.net.hid(HostId(slot.host)));
        let seed = node_seed(self.seed, index, slot.incarnation);
        self.net.start(ep, remote);
        let port = tcp.then(|| self.net.listen(ep));
        let slot = &mut self.slots[index];
        let mut node = build_node::<P, SERVICES, DATA>(
            slot.config.clone(),
            &hid,
            slot.policy.clone(),
            seed,
            now,
        );
        if port.is_some() {
            node.set_tcp_port(now, port);
        }
        #[cfg(feature = "seal")]
        node.set_keys(slot.keys.clone());
        slot.sids.push(*node.sid());
        slot.node = Some(node);
        slot.state = NodeState::Up;
        slot.joined_at = Some(now);
        self.drive(index, false);
    }

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.now;
        let index = match &delivery {
            Delivery::Bytes { to, .. }
            | Delivery::TransportOk { to, .. }
            | Delivery::TransportFailed { to, .. }
            | Delivery::ConnectionClosed { to, .. } => to.0,
        };
        if let Delivery::Bytes { source, bytes, .. } = &delivery
            && let Some(conn) = source.conn
        {
            // A stream: reassemble here and hand the node whole frames, one input each.
            let slot = &mut self.slots[index];
            let stream = slot
                .streams
                .entry(conn)
                .or_insert_with(|| Box::new(Reassembler::new()));
            let mut frames = Vec::new();
            let mut errors = Vec::new();
            stream.push(bytes, |item| match item {
                StreamItem::Frame(frame) => frames.push(frame.as_bytes().to_vec()),
                StreamItem::Error(e) => errors.push(DatagramError::Decode(e)),
            });
            // Only connections with a partial frame pending keep a buffer: a 1,000-node run
            // has a million connections.
            if !stream.is_pending() {
                slot.streams.remove(&conn);
            }
            for e in errors {
                Self::count_error(slot, e);
            }
            for frame in frames {
                self.input(index, |node| node.handle_datagram(now, *source, &frame));
            }
            return;
        }
        let slot = &mut self.slots[index];
        let Some(node) = slot.node.as_deref_mut() else {
            return;
        };
        match delivery {
            Delivery::Bytes { source, bytes, .. } => {
                let result = node.handle_datagram(now, source, &bytes);
                #[cfg(feature = "heartbeat-fast-path")]
                let quiet = node.last_datagram_was_quiet();
                if let Err(e) = result {
                    Self::count_error(slot, e);
                }
                // A repeated heartbeat that changed nothing the outputs read, before the
                // node's deadline: driving it would find no frame, no event and the same
                // deadline.
                #[cfg(feature = "heartbeat-fast-path")]
                if quiet && slot.deadline.is_none_or(|at| now < at) {
                    self.quiet_inputs += 1;
                    return;
                }
            }
            Delivery::TransportOk { send, .. } => node.transport_ok(now, send),
            Delivery::TransportFailed { send, .. } => node.transport_failed(now, send),
            Delivery::ConnectionClosed { source, .. } => {
                if let Some(conn) = source.conn {
                    slot.streams.remove(&conn);
                }
                node.connection_closed(now, source);
            }
        }
        self.drive(index, false);
    }

    /// One input call on node `index`, then the rest of the driving contract.
    fn input(
        &mut self,
        index: usize,
        call: impl FnOnce(&mut Node<P, SERVICES, DATA>) -> Result<(), DatagramError>,
    ) {
        let slot = &mut self.slots[index];
        let Some(node) = slot.node.as_deref_mut() else {
            return;
        };
        if let Err(e) = call(node) {
            Self::count_error(slot, e);
        }
        self.drive(index, false);
    }

    fn count_error(slot: &mut Slot<P, SERVICES, DATA>, e: DatagramError) {
        slot.counters.datagram_errors += 1;
        match slot.errors.iter_mut().find(|(k, _)| *k == e) {
            Some((_, n)) => *n += 1,
            None => slot.errors.push((e, 1)),
        }
    }

    /// Step 2 of the driving contract for node `index`, then re-arms its deadline.
    fn drive(&mut self, index: usize, after_timeout: bool) {
        let now = self.now;
        let Self {
            slots,
            net,
            buf,
            log_events,
            record_losses,
            auto_refresh,
            timers,
            timer_stalls,
            ..
        } = self;
        let slot = &mut slots[index];
        let Some(node) = slot.node.as_deref_mut() else {
            return;
        };
        loop {
            let mut sent = 0usize;
            while let Some(t) = node.poll_transmit(now, buf) {
                slot.counters.bytes_sent += t.len as u64;
                slot.counters.frames_sent += 1;
                net.send(now, EndpointId(index), &t, buf);
                sent += 1;
                assert!(
                    sent < DRAIN_LIMIT,
                    "sim: node {index} never stops transmitting at {} ms",
                    now.as_millis()
                );
            }
            let mut refresh = false;
            // Lent where they lie in the node: copied only when logged.
            let mut note = |_: &Node<P, SERVICES, DATA>, event: &Event<DATA>| {
                match event {
                    Event::RefreshProtocol {
                        protocol: Protocol::Tcp,
                    } => refresh = *auto_refresh,
                    Event::Lost { sid, .. } if *record_losses => {
                        slot.lost.entry(*sid).or_insert(now);
                    }
                    Event::Dropped { count } => {
                        slot.counters.events_dropped += u64::from(*count);
                    }
                    _ => {}
                }
                if *log_events {
                    slot.log.push(LoggedEvent {
                        at: now,
                        incarnation: slot.incarnation,
                        event: event.clone(),
                    });
                }
            };
            while node.poll_event_with(&mut note).is_some() {}
            if refresh && net.is_up(EndpointId(index)) {
                let port = net.listen(EndpointId(index));
                node.set_tcp_port(now, Some(port));
                continue;
            }
            break;
        }
        let mut deadline = node.poll_timeout();
        slot.deadline = deadline;
        if after_timeout && deadline.is_some_and(|t| t <= now) {
            // The node asks to be woken in the past right after handling its deadline: a
            // node bug. Count it and move on, so that a run cannot livelock.
            *timer_stalls += 1;
            deadline = Some(now.saturating_add_millis(1));
        }
        if node.has_left() {
            deadline = None;
        }
        if deadline != slot.timer {
            slot.timer = deadline;
            slot.timer_version += 1;
            if let Some(at) = deadline {
                timers.push(Reverse((at, index, slot.timer_version)));
            }
        }
    }

    fn invalidate_timer(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.timer = None;
        slot.timer_version += 1;
    }

    // ----- faults and life cycle -----

    /// Node `index` stops silently (no disconnect): it is dropped, its connections close
    /// (peers read end-of-file after the link delay) and its listener is gone.
    pub fn crash(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.state != NodeState::Up {
            return;
        }
        slot.node = None;
        slot.streams.clear();
        slot.state = NodeState::Crashed;
        self.invalidate_timer(index);
        self.net.stop(self.now, EndpointId(index));
    }

    /// Node `index` leaves gracefully: `leave` (a disconnect goes out), then its sockets
    /// close. The node is kept for inspection.
    pub fn leave(&mut self, index: usize) {
        if self.slots[index].state != NodeState::Up {
            return;
        }
        let now = self.now;
        if let Some(node) = self.slots[index].node.as_deref_mut() {
            node.leave(now);
        }
        self.drive(index, false);
        self.slots[index].state = NodeState::Left;
        self.invalidate_timer(index);
        self.net.stop(now, EndpointId(index));
    }

    /// A crashed or departed node joins again on the same host: a new `Node` (new seed, new
    /// sid), a new listener port.
    ///
    /// # Panics
    ///
    /// When the node is pending or up.
    pub fn restart(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        assert!(
            matches!(slot.state, NodeState::Crashed | NodeState::Left),
            "sim: only a crashed or departed node restarts"
        );
        slot.incarnation += 1;
        slot.node = None;
        slot.streams.clear();
        self.join(index);
    }

    /// The TCP stack of node `index` dies: listener closed (connects refused) and every
    /// connection reset. Multicast still works. When the node reports
    /// `Event::RefreshProtocol` for `t` (after a peer's type-8 report), the harness reopens the
    /// listener on a new port.
    pub fn kill_listener(&mut self, index: usize) {
        self.net.kill_listener(self.now, EndpointId(index));
    }

    /// Whether the harness reopens a node's listener on `RefreshProtocol` (on by default).
    pub fn set_auto_refresh(&mut self, on: bool) {
        self.auto_refresh = on;
    }

    /// Splits the network between groups of nodes (by their hosts); hosts not named form one
    /// more group. Nodes of one host are never separated.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        let hosts: Vec<Vec<HostId>> = groups
            .iter()
            .map(|g| g.iter().map(|&i| HostId(self.slots[i].host)).collect())
            .collect();
        let refs: Vec<&[HostId]> = hosts.iter().map(Vec::as_slice).collect();
        self.net.partition(&refs);
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        self.net.heal();
    }

    // ----- access -----

    /// The run's seed.
    #[must_use]
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time.
    #[must_use]
    pub const fn now(&self) -> Instant {
        self.now
    }

    /// Steps taken so far.
    #[must_use]
    pub const fn steps(&self) -> u64 {
        self.steps
    }

    /// Number of node slots.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there is no node slot.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The network.
    #[must_use]
    pub const fn net(&self) -> &SimNet {
        &self.net
    }

    /// The network, to change its parameters mid-run (see [`SimNet::set_lan`]).
    pub fn net_mut(&mut self) -> &mut SimNet {
        &mut self.net
    }

    /// Every frame and outcome, when the builder enabled the trace.
    #[must_use]
    pub fn trace(&self) -> &[Trace] {
        self.net.trace()
    }

    /// Where node `index` is in its life.
    #[must_use]
    pub fn state(&self, index: usize) -> NodeState {
        self.slots[index].state
    }

    /// True while node `index` runs.
    #[must_use]
    pub fn is_up(&self, index: usize) -> bool {
        self.slots[index].state == NodeState::Up
    }

    /// Indices of the running nodes.
    #[must_use]
    pub fn up_nodes(&self) -> Vec<usize> {
        (0..self.slots.len()).filter(|&i| self.is_up(i)).collect()
    }

    /// The host of node `index`.
    #[must_use]
    pub fn host_of(&self, index: usize) -> HostId {
        HostId(self.slots[index].host)
    }

    /// When node `index` last joined.
    #[must_use]
    pub fn joined_at(&self, index: usize) -> Option<Instant> {
        self.slots[index].joined_at
    }

    /// The last join time of all nodes that joined.
    #[must_use]
    pub fn last_join(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.joined_at).max()
    }

    /// Node `index`, when it exists (up, or left and kept).
    #[must_use]
    pub fn node(&self, index: usize) -> Option<&Node<P, SERVICES, DATA>> {
        self.slots[index].node.as_deref()
    }

    /// Node `index` for a command. The guard derefs to the node and, when dropped, runs
    /// step 2 of the driving contract (drains transmits and events):
    ///
    /// ```
    /// # use cluster_core::{Config, Resolver, SendRequest, Targets};
    /// # use cluster_core::sim::Cluster;
    /// let mut c = Cluster::new(1, 2, Config::lan_fast());
    /// c.run_until(|c| c.all_know_each_other(), 10_000).unwrap();
    /// let now = c.now();
    /// let everyone = Resolver::resolve(&[]);
    /// c.node_mut(0).send(now, &SendRequest::new(Targets::resolve(&everyone), b"hi")).unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// When the node does not exist (pending or crashed).
    pub fn node_mut(&mut self, index: usize) -> NodeMut<'_, P, SERVICES, DATA> {
        assert!(
            self.slots[index].node.is_some(),
            "sim: node {index} is {:?}",
            self.slots[index].state
        );
        NodeMut {
            cluster: self,
            index,
        }
    }

    /// The current sid of node `index` (its last one when crashed).
    #[must_use]
    pub fn sid(&self, index: usize) -> Option<Sid> {
        self.slots[index].sids.last().copied()
    }

    /// The sid of every incarnation of node `index`.
    #[must_use]
    pub fn sids(&self, index: usize) -> &[Sid] {
        &self.slots[index].sids
    }

    /// The node slot whose current sid is `sid`.
    #[must_use]
    pub fn index_of(&self, sid: &Sid) -> Option<usize> {
        self.slots.iter().position(|s| s.sids.last() == Some(sid))
    }

    /// True when node `a` is up and has discovered node `b`'s current incarnation.
    #[must_use]
    pub fn knows(&self, a: usize, b: usize) -> bool {
        let (Some(node), Some(sid)) = (self.up_node(a), self.sid(b)) else {
            return false;
        };
        node.service(sid.as_bytes())
            .is_some_and(crate::Service::is_discovered)
    }

    /// True when some up node other than `b` still has node `b`'s current (or last) sid.
    #[must_use]
    pub fn anyone_knows(&self, b: usize) -> bool {
        let Some(sid) = self.sid(b) else {
            return false;
        };
        (0..self.slots.len())
            .filter(|&a| a != b)
            .filter_map(|a| self.up_node(a))
            .any(|n| n.service(sid.as_bytes()).is_some())
    }

    fn up_node(&self, index: usize) -> Option<&Node<P, SERVICES, DATA>> {
        if self.is_up(index) {
            self.node(index)
        } else {
            None
        }
    }

    /// True when every up node has discovered every other up node (and no pending node is
    /// left to join).
    #[must_use]
    pub fn all_know_each_other(&self) -> bool {
        if !self.joins.is_empty() {
            return false;
        }
        let up = self.up_nodes();
        let others = up.len().saturating_sub(1);
        if up
            .iter()
            .any(|&i| self.node(i).is_none_or(|n| n.known() < others))
        {
            return false;
        }
        let live: HashSet<Sid> = up.iter().filter_map(|&i| self.sid(i)).collect();
        up.iter().all(|&i| {
            self.node(i).is_some_and(|n| {
                n.services()
                    .filter(|s| s.is_discovered() && live.contains(s.sid()))
                    .count()
                    == others
            })
        })
    }

    /// Node `index`'s events, oldest first (empty when the event log is off).
    #[must_use]
    pub fn events(&self, index: usize) -> &[LoggedEvent<DATA>] {
        &self.slots[index].log
    }

    /// When node `index` first emitted an event matching `pred`.
    pub fn first_event_time(
        &self,
        index: usize,
        pred: impl Fn(&Event<DATA>) -> bool,
    ) -> Option<Instant> {
        self.first_event_after(index, Instant::ZERO, pred)
    }

    /// When node `index` first emitted an event matching `pred` at or after `since`.
    pub fn first_event_after(
        &self,
        index: usize,
        since: Instant,
        pred: impl Fn(&Event<DATA>) -> bool,
    ) -> Option<Instant> {
        self.slots[index]
            .log
            .iter()
            .find(|e| e.at >= since && pred(&e.event))
            .map(|e| e.at)
    }

    /// When node `index` first reported `sid` lost (kept even with the event log off, unless
    /// [`ClusterBuilder::record_losses`] turned it off).
    #[must_use]
    pub fn lost_at(&self, index: usize, sid: &Sid) -> Option<Instant> {
        self.slots[index].lost.get(sid).copied()
    }

    /// When the last of the up nodes other than `b` reported node `b`'s current (or last)
    /// sid lost; `None` while one has not.
    #[must_use]
    pub fn lost_by_all(&self, b: usize) -> Option<Instant> {
        let sid = self.sid(b)?;
        let mut last = Instant::ZERO;
        for a in self.up_nodes() {
            if a != b {
                last = last.max(self.lost_at(a, &sid)?);
            }
        }
        Some(last)
    }

    /// Harness counters of node `index`.
    #[must_use]
    pub fn counters(&self, index: usize) -> NodeCounters {
        self.slots[index].counters
    }

    /// The errors `handle_datagram` returned to node `index`, with counts.
    #[must_use]
    pub fn datagram_errors(&self, index: usize) -> &[(DatagramError, u64)] {
        &self.slots[index].errors
    }

    /// Bytes node `index` sent per second of virtual time since the last
    /// [`reset_counters`](Self::reset_counters).
    #[must_use]
    pub fn bytes_per_sec(&self, index: usize) -> f64 {
        let ms = self.now.saturating_millis_since(self.counters_since).max(1);
        #[allow(clippy::cast_precision_loss)]
        let rate = self.slots[index].counters.bytes_sent as f64 * 1000.0 / ms as f64;
        rate
    }

    /// Restarts the byte and frame counters of every node.
    pub fn reset_counters(&mut self) {
        self.counters_since = self.now;
        for slot in &mut self.slots {
            slot.counters.bytes_sent = 0;
            slot.counters.frames_sent = 0;
        }
    }

    /// Times a node asked to be woken at or before the instant it had just handled (a node
    /// bug; the harness wakes it 1 ms later instead).
    #[must_use]
    pub const fn timer_stalls(&self) -> u64 {
        self.timer_stalls
    }

    /// Datagrams after which the node was not driven: periodic heartbeats that repeated the
    /// last one from their service and changed nothing the node's outputs read (feature
    /// `heartbeat-fast-path`, [`Node::last_datagram_was_quiet`]).
    #[cfg(feature = "heartbeat-fast-path")]
    #[must_use]
    pub const fn quiet_inputs(&self) -> u64 {
        self.quiet_inputs
    }
}

/// Node `index` of a [`Cluster`], borrowed for a command; dropping it drains the node's
/// transmits and events (see [`Cluster::node_mut`]).
pub struct NodeMut<'c, P: Policy + Clone + Send, const SERVICES: usize, const DATA: usize> {
    cluster: &'c mut Cluster<P, SERVICES, DATA>,
    index: usize,
}

impl<P: Policy + Clone + Send, const SERVICES: usize, const DATA: usize> fmt::Debug
    for NodeMut<'_, P, SERVICES, DATA>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeMut")
            .field("index", &self.index)
            .finish()
    }
}

impl<P: Policy + Clone + Send, const SERVICES: usize, const DATA: usize> Deref
    for NodeMut<'_, P, SERVICES, DATA>
{
    type Target = Node<P, SERVICES, DATA>;

    fn deref(&self) -> &Self::Target {
        self.cluster.slots[self.index]
            .node
            .as_deref()
            .expect("checked by node_mut")
    }
}

impl<P: Policy + Clone + Send, const SERVICES: usize, const DATA: usize> DerefMut
    for NodeMut<'_, P, SERVICES, DATA>
{
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.cluster.slots[self.index]
            .node
            .as_deref_mut()
            .expect("checked by node_mut")
    }
}

impl<P: Policy + Clone + Send, const SERVICES: usize, const DATA: usize> Drop
    for NodeMut<'_, P, SERVICES, DATA>
{
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.cluster.drive(self.index, false);
        }
    }
}
