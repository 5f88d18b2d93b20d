//! Several nodes in one test process, on real sockets, loopback only (multicast on `lo`
//! with TTL 0, TCP and unix sockets on this host). Every wait is bounded by
//! `common::PATIENCE` and ends on the awaited event, never on a sleep.

mod common;

use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
use cluster_core::{LostReason, Policy, Protocol, Refusal, Reply, Service};
use cluster_tokio::{
    Answer, Cluster, Event, Handle, QueryEvent, QuerySpec, Selector, SendSpec, TagEdit,
};
use common::{HID, PATIENCE, fresh_port, options, wait_for};

async fn discovered(
    events: &mut cluster_tokio::Events,
    who: &Handle,
) -> cluster_tokio::ServiceInfo {
    let sid = who.sid();
    wait_for(events, |e| match e {
        Event::Discovered(s) if s.sid == sid => Some(s.clone()),
        _ => None,
    })
    .await
}

async fn lost(events: &mut cluster_tokio::Events, who: cluster_core::Sid) -> LostReason {
    wait_for(events, |e| match e {
        Event::Lost { sid, reason } if *sid == who => Some(*reason),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn two_nodes_discover_each_other_and_a_leave_is_seen_at_once() {
    let port = fresh_port();
    let a = Cluster::join(options(port).tag("a").unwrap())
        .await
        .unwrap();
    let mut a_events = a.events();
    let b = Cluster::join(options(port).tag("b").unwrap())
        .await
        .unwrap();
    let mut b_events = b.events();
    let found = discovered(&mut a_events, &b).await;
    assert_eq!(found.tags, ["b"]);
    assert!(found.local);
    assert!(found.tcp_port.is_some());
    assert_eq!(found.protocols.letters().as_slice(), ["t", "c"]);
    discovered(&mut b_events, &a).await;
    assert_eq!(a.services().await.unwrap().len(), 1);
    a.leave().await.unwrap();
    // A disconnect, not an expiry: the leave is seen as soon as the frame arrives.
    assert_eq!(lost(&mut b_events, a.sid()).await, LostReason::Disconnected);
    assert!(a.is_closed());
    b.leave().await.unwrap();
}

#[tokio::test]
async fn the_third_node_queries_the_other_two_which_answer() {
    let port = fresh_port();
    let a = Cluster::join_with(options(port).tag("hello").unwrap(), Answer::new("Hello,"))
        .await
        .unwrap();
    let b = Cluster::join_with(options(port).tag("world").unwrap(), Answer::new("World!"))
        .await
        .unwrap();
    let c = Cluster::join(options(port)).await.unwrap();
    let mut c_events = c.events();
    discovered(&mut c_events, &a).await;
    discovered(&mut c_events, &b).await;
    let stream = c
        .query(QuerySpec::new(Selector::all(), "greeting?"))
        .await
        .unwrap();
    assert_eq!(stream.targets().len(), 2);
    let outcome = stream.collect().await;
    assert_eq!(outcome.summary.answered, 2);
    assert_eq!(outcome.summary.missing, 0);
    assert!(!outcome.summary.timed_out);
    let answer_of = |h: &Handle| {
        outcome
            .responses
            .iter()
            .find(|(sid, _)| *sid == h.sid())
            .map(|(_, p)| p.data_lossy())
    };
    assert_eq!(answer_of(&a).as_deref(), Some("Hello,"));
    assert_eq!(answer_of(&b).as_deref(), Some("World!"));
    for node in [a, b, c] {
        node.leave().await.unwrap();
    }
}

/// Refuses every query: the reply carries `error`.
struct Refuse;

impl Policy for Refuse {
    fn answer_query(
        &mut self,
        _: &Service,
        _: &Message<'_>,
        _: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        Err(Refusal::new("not today"))
    }
}

#[tokio::test]
async fn a_refused_query_yields_an_error_event_then_done() {
    let port = fresh_port();
    let a = Cluster::join_with(options(port), Refuse).await.unwrap();
    let b = Cluster::join(options(port)).await.unwrap();
    let mut b_events = b.events();
    discovered(&mut b_events, &a).await;
    let mut stream = b
        .query(QuerySpec::new(Selector::service(a.sid()), "may I?"))
        .await
        .unwrap();
    let first = stream.next().await.unwrap();
    assert_eq!(
        first,
        QueryEvent::Error {
            sid: a.sid(),
            error: "not today".into()
        }
    );
    assert!(matches!(stream.next().await, Some(QueryEvent::Done(s)) if s.answered == 1));
    assert_eq!(stream.next().await, None);
    a.leave().await.unwrap();
    b.leave().await.unwrap();
}

#[tokio::test]
async fn an_event_on_a_channel_reaches_its_subscriber_directly_and_by_broadcast() {
    let port = fresh_port();
    let listener = Cluster::join(options(port).channel(5).unwrap().tag("sink").unwrap())
        .await
        .unwrap();
    let mut events = listener.events();
    let sender = Cluster::join(options(port)).await.unwrap();
    let mut sender_events = sender.events();
    discovered(&mut sender_events, &listener).await;
    sender
        .send(SendSpec::new(Selector::resolve(["sink"]), "direct").channel(5))
        .await
        .unwrap();
    let (channel, data) = wait_for(&mut events, |e| match e {
        Event::Message {
            sid,
            channel,
            payload,
            ..
        } if *sid == sender.sid() => Some((*channel, payload.data_lossy())),
        _ => None,
    })
    .await;
    assert_eq!((channel, data.as_str()), (5, "direct"));
    sender
        .send(
            SendSpec::new(Selector::none(), "to everyone")
                .channel(5)
                .broadcast(true),
        )
        .await
        .unwrap();
    let data = wait_for(&mut events, |e| match e {
        Event::Message { payload, .. } => Some(payload.data_lossy()),
        _ => None,
    })
    .await;
    assert_eq!(data, "to everyone");
    listener.leave().await.unwrap();
    sender.leave().await.unwrap();
}

#[tokio::test]
async fn a_crashed_node_is_dropped_after_its_ttl() {
    let port = fresh_port();
    let watcher = Cluster::join(options(port)).await.unwrap();
    let mut events = watcher.events();
    let (victim, driver) = Cluster::start(options(port), Answer::default())
        .await
        .unwrap();
    let task = tokio::spawn(driver);
    discovered(&mut events, &victim).await;
    // A crash: the task stops without sending its disconnect.
    task.abort();
    assert_eq!(lost(&mut events, victim.sid()).await, LostReason::Expired);
    assert!(victim.is_closed());
    watcher.leave().await.unwrap();
}

#[tokio::test]
async fn dropping_the_last_handle_leaves_cleanly() {
    let port = fresh_port();
    let watcher = Cluster::join(options(port)).await.unwrap();
    let mut events = watcher.events();
    let leaver = Cluster::join(options(port)).await.unwrap();
    let sid = leaver.sid();
    let clone = leaver.clone();
    discovered(&mut events, &leaver).await;
    drop(leaver);
    drop(clone);
    assert_eq!(lost(&mut events, sid).await, LostReason::Disconnected);
    watcher.leave().await.unwrap();
}

#[tokio::test]
async fn tag_edits_reach_the_other_nodes() {
    let port = fresh_port();
    let a = Cluster::join(options(port).tag("old").unwrap())
        .await
        .unwrap();
    let b = Cluster::join(options(port)).await.unwrap();
    let mut b_events = b.events();
    // Wait until b holds a's first tags: a answers b's discovery over TCP, and an answer
    // still on its way could otherwise overwrite the newer tags below (frames over TCP and
    // multicast are not ordered with each other).
    let first = discovered(&mut b_events, &a).await;
    if first.tags != ["old"] {
        let a_sid = a.sid();
        wait_for(&mut b_events, |e| match e {
            Event::TagsChanged { sid, tags } if *sid == a_sid && tags == &["old"] => Some(()),
            _ => None,
        })
        .await;
    }
    let changed = a
        .update_tags([TagEdit::Append("new".into()), TagEdit::Remove("old".into())])
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(a.tags().await.unwrap(), ["new"]);
    let tags = wait_for(&mut b_events, |e| match e {
        Event::TagsChanged { sid, tags } if *sid == a.sid() => Some(tags.clone()),
        _ => None,
    })
    .await;
    assert_eq!(tags, ["new"]);
    // A discovery answer with the old tags may still reach b after the heartbeat with the
    // new ones (frames over TCP and multicast are not ordered with each other); a's next
    // heartbeat repeats the tags, so b ends with the new ones.
    while b.resolve(Selector::resolve(["new"])).await.unwrap() != [a.sid()] {
        wait_for(&mut b_events, |e| match e {
            Event::TagsChanged { sid, tags } if *sid == a.sid() && tags == &["new"] => Some(()),
            _ => None,
        })
        .await;
    }
    assert!(
        a.update_tags([TagEdit::Append("-bad".into())])
            .await
            .is_err()
    );
    a.leave().await.unwrap();
    b.leave().await.unwrap();
}

#[tokio::test]
async fn two_local_nodes_talk_over_unix_sockets() {
    let port = fresh_port();
    let dir = std::env::temp_dir().join(format!("cluster-unix-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("node.sock");
    let unix_only = |answer: &str| {
        let options = options(port)
            .protocols(&[Protocol::Unix, Protocol::Multicast])
            .unix_path(&base);
        (options, Answer::new(answer))
    };
    let (options_a, answer_a) = unix_only("over unix");
    let a = Cluster::join_with(options_a, answer_a).await.unwrap();
    let (options_b, answer_b) = unix_only("");
    let b = Cluster::join_with(options_b, answer_b).await.unwrap();
    let a_path = a.info().await.unwrap().unix_path.unwrap();
    assert!(a_path.ends_with(&format!("node-{}.sock", a.sid())));
    assert!(std::path::Path::new(&a_path).exists());
    let mut b_events = b.events();
    let seen = discovered(&mut b_events, &a).await;
    assert_eq!(seen.unix_path.as_deref(), Some(a_path.as_str()));
    assert_eq!(seen.protocols.letters().as_slice(), ["u", "c"]);
    let outcome = b
        .query(QuerySpec::new(Selector::service(a.sid()), "which way?"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(outcome.responses.len(), 1);
    assert_eq!(outcome.responses[0].1.data_lossy(), "over unix");
    let (_, transport) = b.stats().await.unwrap();
    assert_eq!(
        transport.writes_failed, 0,
        "the query went over u, without failover"
    );
    assert!(transport.writes_ok >= 1);
    a.leave().await.unwrap();
    assert!(
        !std::path::Path::new(&a_path).exists(),
        "the socket file is removed on leave"
    );
    b.leave().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A peer played by the test on a raw multicast socket: it advertises a TCP port whose
/// listener is dead, then watches what the node under test multicasts.
#[tokio::test]
async fn a_send_to_a_dead_tcp_listener_falls_back_to_multicast_with_a_failed_report() {
    let port = fresh_port();
    let node = Cluster::join(options(port)).await.unwrap();
    let (raw, setup) = cluster_host::socket::multicast_socket(
        cluster_host::options::DEFAULT_GROUP,
        port,
        false,
        Some(std::net::Ipv4Addr::LOCALHOST),
    )
    .unwrap();
    let raw = tokio::net::UdpSocket::from_std(raw).unwrap();
    // A port nobody listens on any more.
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let props = format!("t {{port {dead_port}}}");
    let protocols = ["t", "c"];
    let heartbeat = Message {
        kind: Some(MessageKind::Heartbeat),
        sid: Some(Str::from("ghost001")),
        hid: Some(Str::from(HID)),
        channel: Some(0),
        protocols: Some(List::from_items(&protocols)),
        data: Some(Str::from(props.as_str())),
        known: Some(0),
        ..Message::default()
    };
    let mut frame = [0u8; 256];
    let len = heartbeat.encode(FilterPlacement::Last, &mut frame).unwrap();
    raw.send_to(&frame[..len], setup.destination).await.unwrap();
    let ghost = cluster_core::Sid::new(b"ghost001").unwrap();
    let mut events = node.events();
    wait_for(&mut events, |e| match e {
        Event::Discovered(s) if s.sid == ghost => Some(()),
        _ => None,
    })
    .await;
    node.send(SendSpec::new(Selector::service(ghost), "are you there?").channel(0))
        .await
        .unwrap();
    // Watch the group: the event, filtered to the ghost, then the type-8 report.
    let mut seen_event = false;
    let mut seen_report = false;
    let mut buf = vec![0u8; 65_535];
    tokio::time::timeout(PATIENCE, async {
        while !(seen_event && seen_report) {
            let (n, _) = raw.recv_from(&mut buf).await.unwrap();
            let Ok((message, _)) = Message::parse(&buf[..n]) else {
                continue;
            };
            let to_ghost = message.filter.is_some_and(|f| f.contains(b"ghost001"));
            match message.kind {
                Some(MessageKind::Event) if to_ghost => {
                    assert_eq!(message.data.unwrap().to_str().unwrap(), "are you there?");
                    seen_event = true;
                }
                Some(MessageKind::Failed) if to_ghost => {
                    assert!(seen_event, "the report follows the fallback");
                    let data = message.data.unwrap().to_str().unwrap().to_owned();
                    assert!(data.contains('t'), "the report names t: {data}");
                    seen_report = true;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the fallback event and the failed report within the patience");
    let (_, transport) = node.stats().await.unwrap();
    assert_eq!(transport.writes_failed, 1);
    node.leave().await.unwrap();
}
