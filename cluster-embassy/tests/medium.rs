//! Embassy nodes on an in-memory Ethernet, without root: a hub wiring several
//! `embassy_net::Stack`s (every frame a port transmits reaches every other port, in order),
//! each with its cluster runner, on embassy's std executor and clock. The nodes discover
//! each other, query, send, change tags and leave through their handles, hold queries and
//! answer (or drop) them later from another task; a subscription that does not keep up is
//! told how many events it missed.
//!
//! Time is real (embassy-time's std driver) with the `lan_fast` timers, and every wait is
//! bounded ([`PATIENCE`]); nothing is asserted about elapsed time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Waker};

use cluster_core::wire::Message;
use cluster_core::{
    Config, LostReason, Policy, Protocol, ProtocolList, QueryEvent, QueryRequest, Refusal, Reply,
    Resolver, SendRequest, Service, TagOp, Targets,
};
use cluster_embassy::{
    Buffers, CommandError, Error, Event, Events, Group, Handle, Runner, State, firmware_config,
};
use embassy_executor::{Executor, Spawner};
use embassy_net::driver::{self, Capabilities, HardwareAddress, LinkState};
use embassy_net::{Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_time::{Duration, with_timeout};

/// The longest any step may take.
const PATIENCE: Duration = Duration::from_secs(10);

// ----- the medium -----

/// Frames in flight, one queue per port, and the waker of each port's stack.
#[derive(Default)]
struct Hub {
    queues: Vec<VecDeque<Vec<u8>>>,
    wakers: Vec<Option<Waker>>,
    /// Ports whose cable is cut: they neither send nor receive.
    cut: Vec<bool>,
}

impl Hub {
    fn deliver(&mut self, from: usize, frame: &[u8]) {
        if self.cut[from] {
            return;
        }
        for (to, queue) in self.queues.iter_mut().enumerate() {
            if to != from && !self.cut[to] {
                queue.push_back(frame.to_vec());
                if let Some(waker) = self.wakers[to].take() {
                    waker.wake();
                }
            }
        }
    }
}

/// One port of the hub: an embassy-net Ethernet driver.
struct Port {
    hub: Rc<RefCell<Hub>>,
    index: usize,
    mac: [u8; 6],
}

struct Rx(Vec<u8>);

struct Tx {
    hub: Rc<RefCell<Hub>>,
    from: usize,
}

impl driver::RxToken for Rx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
        f(&mut self.0)
    }
}

impl driver::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.hub.borrow_mut().deliver(self.from, &frame);
        result
    }
}

impl driver::Driver for Port {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(Rx, Tx)> {
        let mut hub = self.hub.borrow_mut();
        let Some(frame) = hub.queues[self.index].pop_front() else {
            hub.wakers[self.index] = Some(cx.waker().clone());
            return None;
        };
        drop(hub);
        Some((Rx(frame), self.tx()))
    }

    fn transmit(&mut self, _cx: &mut Context<'_>) -> Option<Tx> {
        Some(self.tx())
    }

    fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = 1514;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

impl Port {
    fn tx(&self) -> Tx {
        Tx {
            hub: Rc::clone(&self.hub),
            from: self.index,
        }
    }
}

// ----- the nodes -----

/// Answers every query with a fixed text; one starting with `!` refuses with the rest.
struct Answer(&'static str);

impl Policy for Answer {
    fn answer_query(
        &mut self,
        _from: &Service,
        _query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        if let Some(refusal) = self.0.strip_prefix('!') {
            return Err(Refusal::new(refusal));
        }
        reply
            .set_data(self.0.as_bytes())
            .map_err(|_| Refusal::new("too long"))
    }
}

/// Two events deep, so that a subscription that does not read falls behind quickly.
type TestState = State<NoopRawMutex, Answer, 32, 512, 2, 2, 4, 1>;
type TestHandle = Handle<'static, NoopRawMutex, Answer, 32, 512, 2, 2, 4, 1>;
type TestRunner = Runner<'static, NoopRawMutex, Answer, 32, 512, 2, 2, 4, 1>;

fn mac(index: usize) -> [u8; 6] {
    [0x02, 0xe0, 0, 0, 0, index as u8 + 1]
}

/// A stack on port `index` of `hub`, 10.254.0.<index + 1>/24, its runner spawned.
fn stack(spawner: Spawner, hub: &Rc<RefCell<Hub>>, index: usize) -> Stack<'static> {
    {
        let mut hub = hub.borrow_mut();
        hub.queues.push(VecDeque::new());
        hub.wakers.push(None);
        hub.cut.push(false);
    }
    let port = Port {
        hub: Rc::clone(hub),
        index,
        mac: mac(index),
    };
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(10, 254, 0, index as u8 + 1), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources = Box::leak(Box::new(StackResources::<2>::new()));
    let (stack, runner) = embassy_net::new(port, config, resources, 0x5eed + index as u64);
    spawner.spawn(net_task(runner).expect("a net task slot"));
    stack
}

fn config(tag: &str) -> Config {
    let mut config = firmware_config(Config::lan_fast());
    config.add_tag(tag).unwrap();
    config
}

/// A started node on `stack`, tagged `tag`, answering `answer`; its events subscribed before
/// its runner is spawned.
fn node(
    spawner: Spawner,
    stack: Stack<'static>,
    tag: &str,
    answer: &'static str,
) -> (TestHandle, Events<'static, 512>) {
    let state: &'static mut TestState = Box::leak(Box::new(State::new(Answer(answer))));
    let buffers: &'static mut Buffers = Box::leak(Box::default());
    // The seed differs per node (as per boot in firmware): it draws the sid.
    let seed = u64::from(stack.hardware_address().as_bytes()[5]);
    let (handle, runner) =
        cluster_embassy::new(stack, state, buffers, Group::CLUSTER, config(tag), seed).unwrap();
    let events = handle.events().unwrap();
    spawner.spawn(cluster_task(runner).expect("a cluster task slot"));
    (handle, events)
}

#[embassy_executor::task(pool_size = 24)]
async fn net_task(mut runner: embassy_net::Runner<'static, Port>) -> ! {
    runner.run().await
}

#[embassy_executor::task(pool_size = 16)]
async fn cluster_task(runner: TestRunner) {
    runner.run().await;
}

/// The next event that `pick` accepts, within [`PATIENCE`].
async fn wait_for<T>(
    events: &mut Events<'static, 512>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let found = with_timeout(PATIENCE, async {
        loop {
            if let Some(found) = pick(&events.next().await) {
                return found;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} within {PATIENCE:?}"))
}

/// Waits until `handle`'s node has announced `count` services (by the node's table, not the
/// events channel, which a burst of discoveries may overflow).
async fn wait_discovered(handle: &TestHandle, count: usize) {
    with_timeout(PATIENCE, async {
        while handle
            .with_node(|n| n.services().filter(|s| s.is_discovered()).count())
            .await
            .unwrap()
            < count
        {
            embassy_time::Timer::after_millis(5).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} services not discovered within {PATIENCE:?}"));
}

static SCENARIO_DONE: AtomicBool = AtomicBool::new(false);

#[test]
fn two_embassy_nodes_discover_query_send_retag_and_leave() {
    SCENARIO_DONE.store(false, Ordering::Relaxed);
    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run_until(
        |spawner| spawner.spawn(two_nodes(spawner).expect("the scenario's slot")),
        || SCENARIO_DONE.load(Ordering::Relaxed),
    );
}

#[embassy_executor::task]
async fn two_nodes(spawner: Spawner) {
    let hub = Rc::new(RefCell::new(Hub::default()));
    let stack_a = stack(spawner, &hub, 0);
    let stack_b = stack(spawner, &hub, 1);
    let (a, mut events_a) = node(spawner, stack_a, "alpha", "a ok");
    // A second subscription on `a` that reads nothing until the end: it falls behind.
    let mut idle = a.events().unwrap();
    let (b, mut events_b) = node(spawner, stack_b, "beta", "b ok");
    assert_eq!(
        a.events().unwrap_err(),
        CommandError::NoSubscriber,
        "two subscriptions at most"
    );
    assert_eq!(a.hid().as_bytes(), b"02:e0:00:00:00:01");

    // Discovery: the event carries the service as the node knew it.
    let b_sid = b.sid();
    let service = wait_for(&mut events_a, "discovery of b", |e| match e {
        Event::Discovered(s) if *s.sid() == b_sid => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(service.ip(), Some("10.254.0.2".parse().unwrap()));
    assert!(!service.is_local(), "remote mode: another host");
    assert_eq!(service.tags()[0].as_bytes(), b"beta");
    assert_eq!(
        service.protocols(),
        ProtocolList::new(&[Protocol::Multicast])
    );
    assert_eq!(service.hid().as_bytes(), b"02:e0:00:00:00:02");
    let a_sid = a.sid();
    wait_for(&mut events_b, "discovery of a", |e| match e {
        Event::Discovered(s) if *s.sid() == a_sid => Some(()),
        _ => None,
    })
    .await;

    // A query: the answer as it arrives, then the end.
    let filters = ["beta"];
    let resolver = Resolver::resolve(&filters);
    let request = QueryRequest::new(Targets::resolve(&resolver), b"status?");
    let mut answers = a.query(&request).await.unwrap();
    let first = with_timeout(PATIENCE, answers.next()).await.unwrap();
    match first {
        Some(QueryEvent::Response { sid, payload, .. }) => {
            assert_eq!(sid, b_sid);
            assert_eq!(payload.data(), Some(&b"b ok"[..]));
        }
        other => panic!("a response expected, got {other:?}"),
    }
    let end = with_timeout(PATIENCE, answers.next()).await.unwrap();
    assert!(
        matches!(
            end,
            Some(QueryEvent::Done {
                answered: 1,
                missing: 0,
                timed_out: false,
                ..
            })
        ),
        "{end:?}"
    );
    assert_eq!(answers.next().await, None, "the stream ends after Done");
    assert_eq!(answers.dropped(), 0);
    let asked = wait_for(&mut events_b, "the query", |e| match e {
        Event::QueryReceived { sid, payload, .. } if *sid == a_sid => Some(payload.clone()),
        _ => None,
    })
    .await;
    assert_eq!(asked.data(), Some(&b"status?"[..]));
    drop(answers);

    // A query that selects nobody fails at once, and creates no query.
    let nobody = ["nobody"];
    let resolver = Resolver::resolve(&nobody);
    let request = QueryRequest::new(Targets::resolve(&resolver), b"?");
    assert!(matches!(
        a.query(&request).await,
        Err(CommandError::Query(_))
    ));

    // An event (type 6).
    let resolver = Resolver::resolve(&filters);
    let request = SendRequest::new(Targets::resolve(&resolver), b"hello");
    a.send(&request).await.unwrap();
    let message = wait_for(&mut events_b, "the message", |e| match e {
        Event::Message { sid, payload, .. } if *sid == a_sid => Some(payload.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message.data(), Some(&b"hello"[..]));

    // Tags: the change reaches the peer with the new list.
    assert!(a.update_tags(&[TagOp::Append("gamma")]).await.unwrap());
    assert_eq!(a.tags().await.unwrap().len(), 2);
    let tags = wait_for(&mut events_b, "the new tags", |e| match e {
        Event::TagsChanged { sid, tags } if *sid == a_sid => Some(tags.clone()),
        _ => None,
    })
    .await;
    let tags: Vec<&[u8]> = tags.iter().map(|t| t.as_bytes()).collect();
    assert_eq!(tags, [&b"alpha"[..], b"gamma"]);

    // Three events the other way: `a` reads them, its idle subscription does not.
    let to_a = ["alpha"];
    let resolver = Resolver::resolve(&to_a);
    for text in [&b"one"[..], b"two", b"three"] {
        let request = SendRequest::new(Targets::resolve(&resolver), text);
        b.send(&request).await.unwrap();
    }
    wait_for(&mut events_a, "the third message", |e| match e {
        Event::Message { sid, payload, .. } if *sid == b_sid => {
            (payload.data() == Some(&b"three"[..])).then_some(())
        }
        _ => None,
    })
    .await;

    // b leaves: a sees its disconnect; b's own view ends with `Left`, and its commands fail.
    b.leave().await;
    let reason = wait_for(&mut events_a, "b's disconnect", |e| match e {
        Event::Lost { sid, reason } if *sid == b_sid => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LostReason::Disconnected);
    let reason = wait_for(&mut events_b, "b's own leave", |e| match e {
        Event::Lost { sid, reason } if *sid == a_sid => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LostReason::Left);
    assert!(b.has_left().await);
    assert_eq!(b.discover().await, Err(CommandError::Left));
    let (_, stats) = b.stats().await;
    assert!(stats.datagrams_sent > 0 && stats.datagrams_received > 0);
    assert_eq!(stats.direct_sends_refused, 0, "c only: nothing direct");

    // The idle subscription missed events beyond the channel's two; it is told how many,
    // then reads on from the oldest event still held.
    match idle.try_next() {
        Some(Event::Dropped { count }) => {
            assert!(count > 0);
            assert_eq!(idle.lagged(), count);
        }
        other => panic!("Dropped expected first, got {other:?}"),
    }
    assert!(idle.try_next().is_some());
    let (_, stats) = a.stats().await;
    assert!(stats.events_overwritten > 0);

    SCENARIO_DONE.store(true, Ordering::Relaxed);
}

#[test]
fn new_refuses_local_mode_and_stream_protocols() {
    LOCAL_DONE.store(false, Ordering::Relaxed);
    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run_until(
        |spawner| spawner.spawn(refusals(spawner).expect("the scenario's slot")),
        || LOCAL_DONE.load(Ordering::Relaxed),
    );
}

static LOCAL_DONE: AtomicBool = AtomicBool::new(false);

#[embassy_executor::task]
async fn refusals(spawner: Spawner) {
    let hub = Rc::new(RefCell::new(Hub::default()));
    let stack = stack(spawner, &hub, 0);
    let attempt = |config: Config| {
        let state: &'static mut TestState = Box::leak(Box::new(State::new(Answer(""))));
        let buffers: &'static mut Buffers = Box::leak(Box::default());
        cluster_embassy::new(stack, state, buffers, Group::CLUSTER, config, 1).map(|_| ())
    };
    let mut local = config("x");
    local.remote = false;
    assert_eq!(attempt(local), Err(Error::LocalMode));
    let mut tcp = config("x");
    tcp.protocols = ProtocolList::new(&[Protocol::Tcp, Protocol::Multicast]);
    assert_eq!(attempt(tcp), Err(Error::UnsupportedProtocol));
    let mut bad = config("x");
    bad.heartbeat_min = core::time::Duration::from_secs(2);
    bad.heartbeat_max = core::time::Duration::from_secs(1);
    assert!(matches!(attempt(bad), Err(Error::Config(_))));
    assert_eq!(attempt(config("x")), Ok(()));
    LOCAL_DONE.store(true, Ordering::Relaxed);
}

#[test]
fn a_query_stream_reports_a_refusal_then_a_silent_target_at_the_timeout() {
    QUERY_DONE.store(false, Ordering::Relaxed);
    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run_until(
        |spawner| spawner.spawn(three_nodes(spawner).expect("the scenario's slot")),
        || QUERY_DONE.load(Ordering::Relaxed),
    );
}

static QUERY_DONE: AtomicBool = AtomicBool::new(false);

#[embassy_executor::task]
async fn three_nodes(spawner: Spawner) {
    let hub = Rc::new(RefCell::new(Hub::default()));
    let stacks = [0, 1, 2].map(|i| stack(spawner, &hub, i));
    let (a, _) = node(spawner, stacks[0], "asker", "");
    let (b, _) = node(spawner, stacks[1], "target", "!busy");
    let (c, _) = node(spawner, stacks[2], "target", "c ok");
    wait_discovered(&a, 2).await;
    // c's cable is cut: it hears nothing and says nothing, but a knows it for its ttl.
    hub.borrow_mut().cut[2] = true;
    let filters = ["target"];
    let resolver = Resolver::resolve(&filters);
    let mut request = QueryRequest::new(Targets::resolve(&resolver), b"status?");
    request.timeout = Some(core::time::Duration::from_millis(500));
    let mut answers = a.query(&request).await.unwrap();
    let mut news = Vec::new();
    while let Some(item) = with_timeout(PATIENCE, answers.next()).await.unwrap() {
        news.push(item);
    }
    assert_eq!(news.len(), 3, "{news:?}");
    match &news[0] {
        QueryEvent::Error { sid, error, .. } => {
            assert_eq!(*sid, b.sid());
            assert_eq!(error.data(), Some(&b"busy"[..]));
        }
        other => panic!("b's refusal expected first, got {other:?}"),
    }
    assert!(
        matches!(&news[1], QueryEvent::Missing { sid, .. } if *sid == c.sid()),
        "{news:?}"
    );
    assert!(
        matches!(
            news[2],
            QueryEvent::Done {
                answered: 1,
                missing: 1,
                timed_out: true,
                ..
            }
        ),
        "{news:?}"
    );
    assert_eq!(answers.done(), Some(&news[2]));
    assert!(!answers.id().is_empty(), "the query id the targets echo");
    QUERY_DONE.store(true, Ordering::Relaxed);
}

#[test]
fn a_query_stream_that_falls_behind_counts_what_it_lost_and_still_ends() {
    LAG_DONE.store(false, Ordering::Relaxed);
    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run_until(
        |spawner| spawner.spawn(five_nodes(spawner).expect("the scenario's slot")),
        || LAG_DONE.load(Ordering::Relaxed),
    );
}

static LAG_DONE: AtomicBool = AtomicBool::new(false);

#[embassy_executor::task]
async fn five_nodes(spawner: Spawner) {
    let hub = Rc::new(RefCell::new(Hub::default()));
    let stacks = [0, 1, 2, 3, 4].map(|i| stack(spawner, &hub, i));
    // The events channel holds two: four discoveries at once overflow it, so wait on the
    // node itself.
    let (a, _) = node(spawner, stacks[0], "asker", "");
    for stack in &stacks[1..] {
        node(spawner, *stack, "target", "ok");
    }
    wait_discovered(&a, 4).await;
    // Four targets: four responses and the end, five pieces of news for a channel of four.
    let filters = ["target"];
    let resolver = Resolver::resolve(&filters);
    let request = QueryRequest::new(Targets::resolve(&resolver), b"status?");
    let mut answers = a.query(&request).await.unwrap();
    // Read nothing until the runner has overwritten the oldest answer (the fifth piece of
    // news, the end, was published then).
    with_timeout(PATIENCE, async {
        while a.stats().await.1.answers_overwritten == 0 {
            embassy_time::Timer::after_millis(5).await;
        }
    })
    .await
    .expect("the answers channel overflows");
    let mut news = Vec::new();
    while let Some(item) = with_timeout(PATIENCE, answers.next()).await.unwrap() {
        news.push(item);
    }
    assert_eq!(
        answers.dropped(),
        1,
        "the oldest response was lost: {news:?}"
    );
    assert_eq!(news.len(), 4, "{news:?}");
    assert!(
        news[..3]
            .iter()
            .all(|n| matches!(n, QueryEvent::Response { .. })),
        "{news:?}"
    );
    assert!(
        matches!(
            news[3],
            QueryEvent::Done {
                answered: 4,
                missing: 0,
                timed_out: false,
                ..
            }
        ),
        "the end still arrives: {news:?}"
    );
    LAG_DONE.store(true, Ordering::Relaxed);
}

// ----- queries held open and answered later (feature `held`) -----

#[cfg(feature = "held")]
mod held {
    use super::*;
    use cluster_core::{AnswerError, HeldTable, ReplyToken};

    /// A node with room for four queries held open.
    type HeldState = State<NoopRawMutex, Answer, 32, 512, 2, 2, 4, 1, HeldTable<4>>;
    type HeldHandle = Handle<'static, NoopRawMutex, Answer, 32, 512, 2, 2, 4, 1, HeldTable<4>>;
    type HeldRunner = Runner<'static, NoopRawMutex, Answer, 32, 512, 2, 2, 4, 1, HeldTable<4>>;

    /// As [`node`], with room for held queries, holding every query it receives.
    async fn holding_node(
        spawner: Spawner,
        stack: Stack<'static>,
        tag: &str,
        answer: &'static str,
    ) -> (HeldHandle, Events<'static, 512>) {
        let state: &'static mut HeldState = Box::leak(Box::new(State::new(Answer(answer))));
        let buffers: &'static mut Buffers = Box::leak(Box::default());
        let seed = u64::from(stack.hardware_address().as_bytes()[5]);
        let (handle, runner) =
            cluster_embassy::new(stack, state, buffers, Group::CLUSTER, config(tag), seed).unwrap();
        assert!(
            handle.hold_queries(true).await.unwrap(),
            "a HeldTable holds"
        );
        let events = handle.events().unwrap();
        spawner.spawn(held_cluster_task(runner).expect("a held cluster task slot"));
        (handle, events)
    }

    #[embassy_executor::task(pool_size = 4)]
    async fn held_cluster_task(runner: HeldRunner) {
        runner.run().await;
    }

    /// An asker (`NoHeld`: it cannot hold) and a holder that discovered each other, the
    /// holder's events subscribed.
    async fn asker_and_holder(spawner: Spawner) -> (TestHandle, HeldHandle, Events<'static, 512>) {
        let hub = Rc::new(RefCell::new(Hub::default()));
        let stacks = [0, 1].map(|i| stack(spawner, &hub, i));
        let (asker, _) = node(spawner, stacks[0], "asker", "asker ok");
        let (holder, holder_events) = holding_node(spawner, stacks[1], "holder", "policy ok").await;
        assert!(
            !asker.hold_queries(true).await.unwrap(),
            "a NoHeld node holds nothing"
        );
        wait_discovered(&asker, 1).await;
        (asker, holder, holder_events)
    }

    /// The token of the next query the holder holds, from `asker`.
    async fn held_query(events: &mut Events<'static, 512>, asker: &TestHandle) -> ReplyToken {
        let asker = asker.sid();
        wait_for(events, "a held query", |e| match e {
            Event::QueryHeld {
                token,
                sid,
                payload,
                ..
            } if *sid == asker => {
                assert_eq!(payload.data(), Some(&b"status?"[..]));
                Some(*token)
            }
            Event::QueryReceived { .. } => panic!("the policy answered a query to hold"),
            _ => None,
        })
        .await
    }

    /// Answers a held query from a task of its own.
    #[embassy_executor::task(pool_size = 2)]
    async fn answer_later(holder: HeldHandle, token: ReplyToken) {
        holder
            .answer(token, b"answered later", None)
            .await
            .expect("the query is still held");
    }

    #[test]
    fn a_held_query_answered_later_from_another_task_reaches_the_asker_and_one_refused_too() {
        HELD_ANSWER_DONE.store(false, Ordering::Relaxed);
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run_until(
            |spawner| spawner.spawn(held_answer(spawner).expect("the scenario's slot")),
            || HELD_ANSWER_DONE.load(Ordering::Relaxed),
        );
    }

    static HELD_ANSWER_DONE: AtomicBool = AtomicBool::new(false);

    #[embassy_executor::task]
    async fn held_answer(spawner: Spawner) {
        let (asker, holder, mut holder_events) = asker_and_holder(spawner).await;
        let filters = ["holder"];
        let resolver = Resolver::resolve(&filters);
        let request = QueryRequest::new(Targets::resolve(&resolver), b"status?");
        let mut answers = asker.query(&request).await.unwrap();
        let token = held_query(&mut holder_events, &asker).await;
        assert_eq!(holder.held().await, 1, "held, not answered by the policy");
        spawner.spawn(answer_later(holder, token).expect("an answering task slot"));

        match with_timeout(PATIENCE, answers.next()).await.unwrap() {
            Some(QueryEvent::Response { sid, payload, .. }) => {
                assert_eq!(sid, holder.sid());
                assert_eq!(payload.data(), Some(&b"answered later"[..]));
            }
            other => panic!("the later answer expected, got {other:?}"),
        }
        let end = with_timeout(PATIENCE, answers.next()).await.unwrap();
        assert!(
            matches!(
                end,
                Some(QueryEvent::Done {
                    answered: 1,
                    missing: 0,
                    ..
                })
            ),
            "{end:?}"
        );
        assert_eq!(holder.held().await, 0);
        let stats = holder.held_stats().await;
        assert_eq!((stats.held, stats.answered, stats.dropped), (1, 1, 0));
        assert_eq!(
            holder.answer(token, b"twice", None).await,
            Err(CommandError::Answer(AnswerError::Unknown)),
            "a token answers once"
        );

        // A second query, refused: the asker gets the refusal's text as the error.
        drop(answers); // one query stream at a time
        let mut answers = asker.query(&request).await.unwrap();
        let token = held_query(&mut holder_events, &asker).await;
        holder.refuse(token, "not now").await.unwrap();
        match with_timeout(PATIENCE, answers.next()).await.unwrap() {
            Some(QueryEvent::Error { sid, error, .. }) => {
                assert_eq!(sid, holder.sid());
                assert_eq!(error.data(), Some(&b"not now"[..]));
            }
            other => panic!("the refusal expected, got {other:?}"),
        }
        let stats = holder.held_stats().await;
        assert_eq!((stats.held, stats.answered, stats.refused), (2, 1, 1));
        HELD_ANSWER_DONE.store(true, Ordering::Relaxed);
    }

    #[test]
    fn a_held_query_dropped_unanswered_reaches_the_asker_as_an_error() {
        HELD_DROP_DONE.store(false, Ordering::Relaxed);
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run_until(
            |spawner| spawner.spawn(held_drop(spawner).expect("the scenario's slot")),
            || HELD_DROP_DONE.load(Ordering::Relaxed),
        );
    }

    static HELD_DROP_DONE: AtomicBool = AtomicBool::new(false);

    #[embassy_executor::task]
    async fn held_drop(spawner: Spawner) {
        let (asker, holder, mut holder_events) = asker_and_holder(spawner).await;
        let filters = ["holder"];
        let resolver = Resolver::resolve(&filters);
        let request = QueryRequest::new(Targets::resolve(&resolver), b"status?");
        let mut answers = asker.query(&request).await.unwrap();
        let token = held_query(&mut holder_events, &asker).await;
        holder.drop_held(token).await.unwrap();

        match with_timeout(PATIENCE, answers.next()).await.unwrap() {
            Some(QueryEvent::Error { sid, error, .. }) => {
                assert_eq!(sid, holder.sid());
                assert_eq!(error.data(), Some(&b"query dropped unanswered"[..]));
            }
            other => panic!("the drop's error expected, got {other:?}"),
        }
        let end = with_timeout(PATIENCE, answers.next()).await.unwrap();
        assert!(
            matches!(end, Some(QueryEvent::Done { missing: 0, .. })),
            "{end:?}"
        );
        let stats = holder.held_stats().await;
        assert_eq!((stats.held, stats.answered, stats.dropped), (1, 0, 1));
        assert_eq!(
            holder.drop_held(token).await,
            Err(CommandError::Answer(AnswerError::Unknown)),
            "a dropped token is gone"
        );
        HELD_DROP_DONE.store(true, Ordering::Relaxed);
    }
}
