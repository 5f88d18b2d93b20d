//! Several nodes in one test process, on real sockets, loopback only (multicast on `lo`
//! with TTL 0, TCP and unix sockets on this host). Every wait is bounded by
//! [`PATIENCE`](crate::common::PATIENCE) and ends on the awaited event, never on a sleep.

use crate::common::{
    HID, Runtime, discovered, discovered_all, fresh_port, lost, options, wait_for, within,
};
use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
use cluster_core::{LostReason, Policy, Protocol, Refusal, Reply, Service};
use cluster_host::COMMAND_QUEUE;
use cluster_host::prelude::{
    Answer, CommandError, Event, Handle, QueryEvent, QuerySpec, Selector, SendSpec, TagEdit,
};

pub async fn two_nodes_discover_each_other_and_a_leave_is_seen_at_once(rt: impl Runtime) {
    let port = fresh_port();
    let a = rt.join(options(port).tag("a").unwrap()).await;
    let mut a_events = a.events();
    let b = rt.join(options(port).tag("b").unwrap()).await;
    let mut b_events = b.events();
    let found = discovered(&mut a_events, b.sid()).await;
    assert_eq!(found.tags, ["b"]);
    assert!(found.local);
    assert!(found.tcp_port.is_some());
    assert_eq!(found.protocols.letters().as_slice(), ["t", "c"]);
    discovered(&mut b_events, a.sid()).await;
    assert_eq!(a.services().await.unwrap().len(), 1);
    a.leave().await.unwrap();
    assert!(a.is_closed(), "a handle is closed once leave returned");
    // A disconnect, not an expiry: the leave is seen as soon as the frame arrives.
    assert_eq!(lost(&mut b_events, a.sid()).await, LostReason::Disconnected);
    assert!(a.services().await.is_err());
    b.leave().await.unwrap();
}

pub async fn the_third_node_queries_the_other_two_which_answer(rt: impl Runtime) {
    let port = fresh_port();
    let a = rt
        .join_with(options(port).tag("hello").unwrap(), Answer::new("Hello,"))
        .await;
    let b = rt
        .join_with(options(port).tag("world").unwrap(), Answer::new("World!"))
        .await;
    let c = rt.join(options(port)).await;
    let mut c_events = c.events();
    discovered_all(&mut c_events, &[a.sid(), b.sid()]).await;
    let stream = c
        .query(QuerySpec::new(Selector::all(), "greeting?"))
        .await
        .unwrap();
    assert_eq!(stream.targets().len(), 2);
    let outcome = within("the answers", stream.collect()).await;
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

pub async fn a_refused_query_yields_an_error_event_then_done(rt: impl Runtime) {
    let port = fresh_port();
    let a = rt.join_with(options(port), Refuse).await;
    let b = rt.join(options(port)).await;
    let mut b_events = b.events();
    discovered(&mut b_events, a.sid()).await;
    let mut stream = b
        .query(QuerySpec::new(Selector::service(a.sid()), "may I?"))
        .await
        .unwrap();
    let first = within("the refusal", stream.next()).await.unwrap();
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

pub async fn an_event_on_a_channel_reaches_its_subscriber_directly_and_by_broadcast(
    rt: impl Runtime,
) {
    let port = fresh_port();
    let listener = rt
        .join(options(port).channel(5).unwrap().tag("sink").unwrap())
        .await;
    let mut events = listener.events();
    let sender = rt.join(options(port)).await;
    let mut sender_events = sender.events();
    discovered(&mut sender_events, listener.sid()).await;
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
    within("the flush", sender.flush()).await.unwrap();
    let (_, transport) = sender.stats().await.unwrap();
    assert!(transport.writes_ok >= 1, "the event went over t");
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

pub async fn queued_sends_arrive_in_order_and_a_refused_one_is_an_event_and_a_counter(
    rt: impl Runtime,
) {
    // More than the command queue holds: the caller waits for room, and nothing is lost.
    const SENT: usize = 2 * COMMAND_QUEUE + 1;
    let port = fresh_port();
    let listener = rt
        .join(options(port).channel(5).unwrap().tag("sink").unwrap())
        .await;
    let mut events = listener.events();
    let sender = rt.join(options(port)).await;
    let mut sender_events = sender.events();
    discovered(&mut sender_events, listener.sid()).await;
    for n in 0..SENT {
        let text = n.to_string();
        let spec = SendSpec::new(Selector::none(), text.as_str())
            .channel(5)
            .broadcast(true);
        within("room in the queue", sender.send_queued(spec))
            .await
            .unwrap();
    }
    for n in 0..SENT {
        let data = wait_for(&mut events, |e| match e {
            Event::Message { sid, payload, .. } if *sid == sender.sid() => {
                Some(payload.data_lossy())
            }
            _ => None,
        })
        .await;
        assert_eq!(data, n.to_string(), "in the order queued, none lost");
    }
    // Refused by the node: what `send` returns is published instead, and counted.
    let nobody = || SendSpec::new(Selector::resolve(["nobody"]), "lost").channel(5);
    within("room in the queue", sender.send_queued(nobody()))
        .await
        .unwrap();
    let error = wait_for(&mut sender_events, |e| match e {
        Event::SendFailed { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(error, CommandError::Send(_)), "{error:?}");
    assert_eq!(sender.send(nobody()).await.unwrap_err(), error);
    let (_, transport) = sender.stats().await.unwrap();
    assert_eq!(
        transport.queued_sends_refused, 1,
        "the refused send() is not"
    );
    // A direct send queued before a flush is written when the flush returns.
    let direct = SendSpec::new(Selector::resolve(["sink"]), "direct").channel(5);
    sender.send_queued(direct).await.unwrap();
    within("the flush", sender.flush()).await.unwrap();
    let (_, transport) = sender.stats().await.unwrap();
    assert!(transport.writes_ok >= 1, "the event went over t");
    let data = wait_for(&mut events, |e| match e {
        Event::Message { payload, .. } => Some(payload.data_lossy()),
        _ => None,
    })
    .await;
    assert_eq!(data, "direct");
    listener.leave().await.unwrap();
    sender.leave().await.unwrap();
    let late = SendSpec::new(Selector::none(), "late").broadcast(true);
    assert_eq!(sender.send_queued(late).await, Err(CommandError::Closed));
}

pub async fn a_crashed_node_is_dropped_after_its_ttl(rt: impl Runtime) {
    let port = fresh_port();
    let watcher = rt.join(options(port)).await;
    let mut events = watcher.events();
    let (victim, driver) = rt.start(options(port), Answer::default()).await.unwrap();
    let crash = rt.spawn_crashable(driver);
    discovered(&mut events, victim.sid()).await;
    // A crash: the driver is dropped without sending its disconnect.
    drop(crash);
    assert_eq!(lost(&mut events, victim.sid()).await, LostReason::Expired);
    assert!(victim.is_closed());
    watcher.leave().await.unwrap();
}

pub async fn dropping_the_last_handle_leaves_cleanly(rt: impl Runtime) {
    let port = fresh_port();
    let watcher = rt.join(options(port)).await;
    let mut events = watcher.events();
    let leaver = rt.join(options(port)).await;
    let sid = leaver.sid();
    let clone = leaver.clone();
    discovered(&mut events, sid).await;
    drop(leaver);
    drop(clone);
    assert_eq!(lost(&mut events, sid).await, LostReason::Disconnected);
    watcher.leave().await.unwrap();
}

pub async fn tag_edits_reach_the_other_nodes(rt: impl Runtime) {
    let port = fresh_port();
    let a = rt.join(options(port).tag("old").unwrap()).await;
    let b = rt.join(options(port)).await;
    let mut b_events = b.events();
    // Wait until b holds a's first tags: a answers b's discovery over TCP, and an answer
    // still on its way could otherwise overwrite the newer tags below (frames over TCP and
    // multicast are not ordered with each other).
    let first = discovered(&mut b_events, a.sid()).await;
    if first.tags != ["old"] {
        wait_for(&mut b_events, |e| match e {
            Event::TagsChanged { sid, tags } if *sid == a.sid() && tags == &["old"] => Some(()),
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

pub async fn two_local_nodes_talk_over_unix_sockets(rt: impl Runtime) {
    let port = fresh_port();
    let dir = std::env::temp_dir().join(format!("cluster-smol-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("node.sock");
    let unix_only = || {
        options(port)
            .protocols(&[Protocol::Unix, Protocol::Multicast])
            .unix_path(&base)
    };
    let a = rt.join_with(unix_only(), Answer::new("over unix")).await;
    let b = rt.join_with(unix_only(), Answer::new("")).await;
    let a_path = a.info().await.unwrap().unix_path.unwrap();
    assert!(a_path.ends_with(&format!("node-{}.sock", a.sid())));
    assert!(std::path::Path::new(&a_path).exists());
    let mut b_events = b.events();
    let seen = discovered(&mut b_events, a.sid()).await;
    assert_eq!(seen.unix_path.as_deref(), Some(a_path.as_str()));
    assert_eq!(seen.protocols.letters().as_slice(), ["u", "c"]);
    let stream = b
        .query(QuerySpec::new(Selector::service(a.sid()), "which way?"))
        .await
        .unwrap();
    let outcome = within("the answer", stream.collect()).await;
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

/// A peer played by the test on a raw multicast socket.
struct Ghost {
    socket: async_io::Async<std::net::UdpSocket>,
    destination: std::net::SocketAddrV4,
}

impl Ghost {
    const SID: &'static str = "ghost001";

    fn new(port: u16) -> Self {
        let (socket, setup) = cluster_host::socket::multicast_socket(
            cluster_host::options::DEFAULT_GROUP,
            port,
            false,
            Some(std::net::Ipv4Addr::LOCALHOST),
        )
        .unwrap();
        Self {
            socket: async_io::Async::new(socket).unwrap(),
            destination: setup.destination,
        }
    }

    fn sid() -> cluster_core::Sid {
        cluster_core::Sid::new(Self::SID.as_bytes()).unwrap()
    }

    async fn send(&self, message: &Message<'_>) {
        let mut frame = [0u8; 512];
        let len = message.encode(FilterPlacement::Last, &mut frame).unwrap();
        self.socket
            .send_to(&frame[..len], self.destination)
            .await
            .unwrap();
    }

    /// A heartbeat advertising `t` on `tcp_port`.
    async fn heartbeat(&self, tcp_port: u16) {
        let props = format!("t {{port {tcp_port}}}");
        let protocols = ["t", "c"];
        self.send(&Message {
            kind: Some(MessageKind::Heartbeat),
            sid: Some(Str::from(Self::SID)),
            hid: Some(Str::from(HID)),
            channel: Some(0),
            protocols: Some(List::from_items(&protocols)),
            data: Some(Str::from(props.as_str())),
            known: Some(0),
            ..Message::default()
        })
        .await;
    }
}

/// A port nobody listens on any more.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub async fn a_send_to_a_dead_tcp_listener_falls_back_to_multicast_with_a_failed_report(
    rt: impl Runtime,
) {
    let port = fresh_port();
    let node = rt.join(options(port)).await;
    let mut events = node.events();
    let ghost = Ghost::new(port);
    ghost.heartbeat(dead_port()).await;
    discovered(&mut events, Ghost::sid()).await;
    node.send(SendSpec::new(Selector::service(Ghost::sid()), "are you there?").channel(0))
        .await
        .unwrap();
    // Watch the group: the event, filtered to the ghost, then the type-8 report.
    let mut seen_event = false;
    let mut seen_report = false;
    let mut buf = vec![0u8; 65_535];
    within("the fallback event and the failed report", async {
        while !(seen_event && seen_report) {
            let (n, _) = ghost.socket.recv_from(&mut buf).await.unwrap();
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
    .await;
    let (_, transport) = node.stats().await.unwrap();
    assert_eq!(transport.writes_failed, 1);
    assert_eq!(transport.connects, 1);
    node.leave().await.unwrap();
}

pub async fn a_failed_report_about_our_tcp_reopens_the_listener(rt: impl Runtime) {
    let port = fresh_port();
    let node = rt.join(options(port)).await;
    let mut events = node.events();
    let old_port = node.info().await.unwrap().tcp_port.expect("t runs");
    let ghost = Ghost::new(port);
    ghost.heartbeat(dead_port()).await;
    discovered(&mut events, Ghost::sid()).await;
    // The ghost tells the node that its `t` failed (spec 5.11).
    let sid = node.sid().to_string();
    let filter = [sid.as_str()];
    ghost
        .send(&Message {
            kind: Some(MessageKind::Failed),
            sid: Some(Str::from(Ghost::SID)),
            hid: Some(Str::from(HID)),
            channel: Some(0),
            protocols: Some(List::from_items(&["t", "c"])),
            data: Some(Str::from("protocols {t}")),
            filter: Some(List::from_items(&filter)),
            ..Message::default()
        })
        .await;
    let protocol = wait_for(&mut events, |e| match e {
        Event::ProtocolRefreshed { protocol } => Some(*protocol),
        _ => None,
    })
    .await;
    assert_eq!(protocol, Protocol::Tcp);
    let new_port = node.info().await.unwrap().tcp_port.expect("t still runs");
    assert_ne!(new_port, old_port, "a new listener on a new port");
    let connected = async_net::TcpStream::connect(("127.0.0.1", new_port)).await;
    assert!(connected.is_ok(), "the new listener accepts");
    node.leave().await.unwrap();
}
