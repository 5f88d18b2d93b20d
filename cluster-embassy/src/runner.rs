//! [`new`] and the [`Runner`]: the task that owns the node's socket and drives the node.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::{
    Config, DefaultPolicy, Destination, Event as CoreEvent, HeldRoom, NoHeld, Node, Policy,
    Protocol, Source,
};
use embassy_futures::select::select3;
use embassy_futures::yield_now;
use embassy_net::udp::UdpSocket;
use embassy_net::{HardwareAddress, IpAddress, IpEndpoint, Stack};
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, RawMutex};
use embassy_time::{Duration, Timer, with_timeout};

use crate::error::Error;
use crate::event::Event;
use crate::handle::Handle;
use crate::state::{Buffers, Inner, State, bump};
use crate::time::{embassy_instant, now};
use cluster_core::MacHid;

/// The multicast group and port of a cluster (spec 1.1): the runner joins `addr`, binds its
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

/// How long the runner waits, after the node left, for the socket to send the disconnect.
const FLUSH_PATIENCE: Duration = Duration::from_secs(1);

/// How long a datagram may wait for room in the socket's transmit buffer (embassy-net makes
/// room as the MAC driver takes frames) before its frame is given up: a stalled driver must
/// not hold the node's lock for ever.
const SEND_PATIENCE: Duration = Duration::from_secs(1);

/// The most datagrams one pass hands the node. A pass that reaches it runs the timers, sends,
/// releases the node's lock and yields to the executor before the next, so that a flood of
/// datagrams neither starves the handles nor delays the node's timers.
const DATAGRAMS_PER_PASS: usize = 16;

/// Starts a node on `stack`: starts the node of `state` in place with `config`, `seed` and
/// the hid of the stack's MAC address, binds a UDP socket over `buffers` to the group's port
/// with TTL 1 (remote mode, spec 1.1), and joins the group (embassy-net sends the IGMP
/// report). Returns the [`Handle`] for the application's tasks and the [`Runner`] to spawn;
/// the join frames leave when the runner first runs.
///
/// `config` must be in remote mode and list the protocol `c` only: build it with
/// [`firmware_config`](crate::firmware_config). Seed with a value that differs on each boot
/// (the part's RNG). Subscribe to the events ([`Handle::events`]) before spawning the runner
/// to see every event since the join.
///
/// # Errors
///
/// [`Error`]: the configuration's mode or protocols, the stack's hardware address, the
/// node's configuration check, or the socket or group setup.
#[allow(
    clippy::type_complexity,
    reason = "the pair of the handle and the runner, with the state's parameters"
)]
pub fn new<
    'd,
    M: RawMutex,
    P: Policy,
    const SERVICES: usize,
    const DATA: usize,
    const EVENTS: usize,
    const SUBSCRIBERS: usize,
    const ANSWERS: usize,
    const QUERIES: usize,
    H: HeldRoom,
    const TX: usize,
    const PACKETS: usize,
    const RX: usize,
    const SEND: usize,
>(
    stack: Stack<'d>,
    state: &'d mut State<M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>,
    buffers: &'d mut Buffers<TX, PACKETS, RX, SEND>,
    group: Group,
    config: Config,
    seed: u64,
) -> Result<
    (
        Handle<'d, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>,
        Runner<'d, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>,
    ),
    Error,
> {
    const {
        assert!(
            TX >= Node::<P, SERVICES, DATA>::TRANSMIT_BUF,
            "TX must be at least Node::<P, SERVICES, DATA>::TRANSMIT_BUF"
        );
        assert!(EVENTS >= 1, "EVENTS must be at least 1");
        assert!(ANSWERS >= 1, "ANSWERS must be at least 1");
    };
    if !config.remote {
        return Err(Error::LocalMode);
    }
    if config.protocols.iter().any(|p| p != Protocol::Multicast) {
        return Err(Error::UnsupportedProtocol);
    }
    #[allow(
        unreachable_patterns,
        reason = "other media exist when the application enables them"
    )]
    let mac = match stack.hardware_address() {
        HardwareAddress::Ethernet(mac) => mac.0,
        _ => return Err(Error::NoMac),
    };
    let hid = MacHid::new(mac);
    state
        .node_mut()
        .start(config, hid.as_str(), seed, now())
        .map_err(Error::Config)?;
    let Buffers {
        tx,
        rx_meta,
        rx,
        send_meta,
        send,
    } = buffers;
    let mut socket = UdpSocket::new(stack, rx_meta, rx, send_meta, send);
    socket.bind(group.port).map_err(Error::Bind)?;
    socket.set_hop_limit(Some(1));
    stack
        .join_multicast_group(group.addr)
        .map_err(Error::Join)?;
    let state: &'d State<M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H> = state;
    Ok((
        Handle::new(state),
        Runner {
            stack,
            socket,
            state,
            tx,
            group,
        },
    ))
}

/// The task that drives the node: it owns the UDP socket, hands the node every datagram,
/// runs its timers, sends its frames, and publishes its events and query answers. Spawn
/// [`run`](Self::run) as an embassy task (next to embassy-net's own runner).
///
/// Between passes it waits for the first of: a datagram, a command from a handle, the
/// node's next deadline. Each pass takes the node's lock (handles wait meanwhile) and
/// follows the core's driving contract: one input, then every transmit, then every event.
/// Sending waits for room in the socket's transmit buffer (embassy-net's runner makes room),
/// at most a second a datagram.
pub struct Runner<
    'd,
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
    stack: Stack<'d>,
    socket: UdpSocket<'d>,
    state: &'d State<M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>,
    tx: &'d mut [u8],
    group: Group,
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
> core::fmt::Debug for Runner<'_, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Runner")
            .field("group", &self.group)
            .field("tx", &self.tx.len())
            .finish_non_exhaustive()
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
> Runner<'_, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    /// Runs the node until it leaves ([`Handle::leave`]): then sends the disconnect, waits
    /// (at most a second) for the socket to hand it to the stack, leaves the multicast group
    /// and returns. Until then it never returns.
    pub async fn run(mut self) {
        loop {
            let (deadline, more) = {
                let mut inner = self.state.inner.lock().await;
                let more = self.pass(&mut inner).await;
                if inner.node.has_left() {
                    break;
                }
                (inner.node.poll_timeout(), more)
            };
            if more {
                // Datagrams are waiting still: let the other tasks (the handles) run first.
                yield_now().await;
                continue;
            }
            // No deadline (never, in practice: the heartbeat is one): wake up hourly.
            let timer = match deadline {
                Some(at) => Timer::at(embassy_instant(at)),
                None => Timer::after(Duration::from_secs(3600)),
            };
            select3(self.socket.wait_recv_ready(), self.state.wake.wait(), timer).await;
        }
        // The disconnect is queued in the socket; stop answering IGMP queries once it left.
        let _ = with_timeout(FLUSH_PATIENCE, self.socket.flush()).await;
        let _ = self.stack.leave_multicast_group(self.group.addr);
    }

    /// One pass: the datagrams waiting in the socket (at most [`DATAGRAMS_PER_PASS`], fewer
    /// when the channels fill up), then the node's timers, then what commands queued; after
    /// each input, the transmits and the events. Returns whether it left datagrams in the
    /// socket.
    async fn pass(&mut self, inner: &mut Inner<P, SERVICES, DATA, H>) -> bool {
        // Remote mode: a peer is local only when it is this interface (spec 5.6).
        let own = self
            .stack
            .config_v4()
            .map(|c| IpAddr::V4(c.address.address()));
        let mut handed = 0;
        let mut paused = false;
        while self.socket.may_recv() && !inner.node.has_left() {
            if handed == DATAGRAMS_PER_PASS {
                break;
            }
            // The subscriptions read what was published before more datagrams are handed
            // on: a burst handled in one pass would overwrite events that no task had a
            // chance to read (a pass yields to the other tasks only at its end).
            if handed > 0 && (backlogged(&self.state.events) || backlogged(&self.state.answers)) {
                paused = true;
                break;
            }
            handed += 1;
            let at = now();
            let Inner { node, stats } = &mut *inner;
            let accepted = self
                .socket
                .recv_from_with(|bytes, meta| {
                    let from = IpAddr::from(meta.endpoint.addr);
                    let source = Source::multicast(
                        SocketAddr::new(from, meta.endpoint.port),
                        own == Some(from),
                    );
                    node.handle_datagram(at, source, bytes).is_ok()
                })
                .await;
            bump(&mut stats.datagrams_received);
            if !accepted {
                bump(&mut stats.datagrams_dropped);
            }
            self.flush(inner, at).await;
        }
        let at = now();
        if inner
            .node
            .poll_timeout()
            .is_some_and(|deadline| deadline <= at)
        {
            inner.node.handle_timeout(at);
        }
        // Also what the handles' commands queued since the last pass.
        self.flush(inner, at).await;
        (handed == DATAGRAMS_PER_PASS || paused) && self.socket.may_recv()
    }

    /// Sends every frame the node owes, then publishes its events (driving contract,
    /// step 2).
    async fn flush(&mut self, inner: &mut Inner<P, SERVICES, DATA, H>, at: cluster_core::Instant) {
        let endpoint = self.group.endpoint();
        while let Some(transmit) = inner.node.poll_transmit(at, self.tx) {
            match transmit.dst {
                Destination::Group { send } => {
                    let mut delivered = true;
                    for segment in transmit.segments(self.tx) {
                        let sent =
                            with_timeout(SEND_PATIENCE, self.socket.send_to(segment, endpoint))
                                .await;
                        if !matches!(sent, Ok(Ok(()))) {
                            delivered = false;
                            break;
                        }
                        bump(&mut inner.stats.datagrams_sent);
                    }
                    if !delivered {
                        bump(&mut inner.stats.frames_unsendable);
                    }
                    // A multicast step of a direct send (the fallback) owes the node its
                    // outcome.
                    if let Some(id) = send {
                        if delivered {
                            inner.node.transport_ok(at, id);
                        } else {
                            inner.node.transport_failed(at, id);
                        }
                    }
                }
                Destination::Service { send, .. } => {
                    // No stream transport here: the node tries the target's next protocol,
                    // which ends with `c` (spec 5.13).
                    bump(&mut inner.stats.direct_sends_refused);
                    inner.node.transport_failed(at, send);
                }
            }
        }
        self.publish(inner);
    }

    /// Publishes the node's events: query news to the answers channel, the rest (with what
    /// the node knows now of the service) to the events channel. Neither waits: a full
    /// channel loses its oldest message, which the subscriptions that missed it count.
    fn publish(&self, inner: &mut Inner<P, SERVICES, DATA, H>) {
        let events = self.state.events.immediate_publisher();
        let answers = self.state.answers.immediate_publisher();
        while let Some(event) = inner.node.poll_event() {
            let event = match event {
                CoreEvent::Query(news) => {
                    if self.state.answers.is_full() {
                        bump(&mut inner.stats.answers_overwritten);
                    }
                    answers.publish_immediate(news);
                    continue;
                }
                CoreEvent::Discovered { sid } => {
                    let Some(service) = inner.node.service(sid.as_bytes()) else {
                        continue;
                    };
                    Event::Discovered(service.clone())
                }
                CoreEvent::Lost { sid, reason } => Event::Lost { sid, reason },
                CoreEvent::TagsChanged { sid } => Event::TagsChanged {
                    sid,
                    tags: inner
                        .node
                        .service(sid.as_bytes())
                        .map(|s| s.tags().clone())
                        .unwrap_or_default(),
                },
                CoreEvent::Message {
                    sid,
                    channel,
                    ruid,
                    payload,
                } => Event::Message {
                    sid,
                    channel,
                    ruid,
                    payload,
                },
                CoreEvent::QueryReceived {
                    sid,
                    channel,
                    ruid,
                    payload,
                } => Event::QueryReceived {
                    sid,
                    channel,
                    ruid,
                    payload,
                },
                #[cfg(feature = "held")]
                CoreEvent::QueryHeld {
                    token,
                    sid,
                    channel,
                    ruid,
                    payload,
                } => Event::QueryHeld {
                    token,
                    sid,
                    channel,
                    ruid,
                    payload,
                },
                CoreEvent::Dropped { count } => Event::Dropped {
                    count: u64::from(count),
                },
                // `RefreshProtocol` is about `t` and `u`, which this node does not run. Without
                // the feature `held` nothing asks the node to hold queries, so no `QueryHeld`.
                _ => continue,
            };
            if self.state.events.is_full() {
                bump(&mut inner.stats.events_overwritten);
            }
            events.publish_immediate(event);
        }
    }
}

/// True when a channel holds half its depth or more unread: time to let its readers run.
fn backlogged<M: RawMutex, T: Clone, const N: usize, const S: usize>(
    channel: &embassy_sync::pubsub::PubSubChannel<M, T, N, S, 1>,
) -> bool {
    channel.len() * 2 >= N
}
