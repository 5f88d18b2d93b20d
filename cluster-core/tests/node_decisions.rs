//! The deliberate differences from the reference (spec 7.2), one test each, plus hooks.

mod common;

use cluster_core::wire::{Message, MessageKind};
use cluster_core::{
    ConnId, Destination, Event, Policy, QueryError, QueryEvent, QueryRequest, Refusal, Reply,
    SendRequest, Service, Sid, Source, Targets, Verdict,
};
use common::node::*;

const PEER: &str = "PEER0001";

fn peer_sid() -> Sid {
    Sid::new(PEER.as_bytes()).unwrap()
}

/// A node that knows PEER0001 (heard at t = 10 ms).
fn node_with_peer(seed: u64) -> TestNode {
    let mut node = fresh(seed);
    drain(&mut node, at(0));
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, PEER))
        .unwrap();
    node.handle_timeout(at(1010));
    events(&mut node);
    node
}

#[test]
fn query_ids_are_unique_and_a_live_id_is_refused() {
    let mut node = node_with_peer(1);
    let peers = [peer_sid()];
    let request = QueryRequest::new(Targets::services(&peers), b"status");
    let first = node.query(at(2000), &request).unwrap();
    let second = node.query(at(2000), &request).unwrap();
    assert_ne!(first, second);
    let sid = node.sid().as_str().unwrap().to_owned();
    let prefix = format!("q{}{}#{}.", &sid[0..1], &sid[2..3], &sid[7..8]);
    assert!(first.as_str().unwrap().starts_with(&prefix), "{first}");
    let explicit = QueryRequest {
        id: Some(first.as_str().unwrap()),
        ..request
    };
    assert_eq!(
        node.query(at(2000), &explicit),
        Err(QueryError::DuplicateId)
    );
}

#[test]
fn cluster_send_falls_back_to_multicast_and_reports_the_failure() {
    let mut node = node_with_peer(2);
    let peers = [peer_sid()];
    node.send(
        at(2000),
        &SendRequest::new(Targets::services(&peers), b"hi"),
    )
    .unwrap();
    let frames = drain(&mut node, at(2000));
    let Destination::Service { send, .. } = frames[0].0 else {
        panic!("{:?}", frames[0].0)
    };
    let direct_fields = field_names(&frames[0].1);
    node.transport_failed(at(2001), send);
    let frames = drain(&mut node, at(2001));
    let Destination::Group { send: Some(send) } = frames[0].0 else {
        panic!("{:?}", frames[0].0)
    };
    // Same layout as the direct send: filter=[target] last.
    assert_eq!(field_names(&frames[0].1), direct_fields);
    assert_eq!(
        field_names(&frames[0].1),
        [
            "sid",
            "hid",
            "type",
            "channel",
            "protocols",
            "data",
            "filter"
        ]
    );
    node.transport_ok(at(2002), send);
    let frames = drain(&mut node, at(2002));
    assert_eq!(kind_of(&frames[0].1), MessageKind::Failed);
    assert!(matches!(frames[0].0, Destination::Group { .. }));
}

#[test]
fn without_fallback_a_failed_send_goes_to_the_ping_logic() {
    let mut node = node_with_peer(3);
    let peers = [peer_sid()];
    let request = SendRequest {
        broadcast: Some(false),
        ..SendRequest::new(Targets::services(&peers), b"hi")
    };
    // Allowed only on t: the failure exhausts the protocols.
    let request = SendRequest {
        protocols: Some(cluster_core::ProtocolList::new(&[
            cluster_core::Protocol::Tcp,
        ])),
        ..request
    };
    node.send(at(4000), &request).unwrap();
    let frames = drain(&mut node, at(4000));
    let Destination::Service { send, .. } = frames[0].0 else {
        panic!()
    };
    node.transport_failed(at(4001), send);
    assert!(drain(&mut node, at(4001)).is_empty());
    assert!(node.service(PEER.as_bytes()).unwrap().is_expected());
    // The ping leaves after the 5 s batch window.
    assert_eq!(node.poll_timeout(), Some(at(9001)));
    node.handle_timeout(at(9001));
    let frames = drain(&mut node, at(9001));
    let (m, _) = Message::parse(&frames[0].1).unwrap();
    assert_eq!(m.kind, Some(MessageKind::Ping));
    assert_eq!(m.data.unwrap().to_str().unwrap(), PEER);
}

#[test]
fn a_service_heard_again_leaves_the_ping_batch() {
    let mut node = node_with_peer(4);
    assert!(node.expected(
        at(4000),
        PEER.as_bytes(),
        core::time::Duration::from_secs(30)
    ));
    // `expected` alone does not ping; a failed send does.
    assert_ne!(node.poll_timeout(), Some(at(9000)));
    let peers = [peer_sid()];
    let request = SendRequest {
        protocols: Some(cluster_core::ProtocolList::new(&[
            cluster_core::Protocol::Tcp,
        ])),
        ..SendRequest::new(Targets::services(&peers), b"hi")
    };
    let mut other = node_with_peer(5);
    other.send(at(4000), &request).unwrap();
    let frames = drain(&mut other, at(4000));
    let Destination::Service { send, .. } = frames[0].0 else {
        panic!()
    };
    other.transport_failed(at(4001), send);
    drain(&mut other, at(4001));
    assert_eq!(other.poll_timeout(), Some(at(9001)));
    // The peer is heard from again before the ping leaves: the batch is cancelled (Q13).
    other
        .handle_datagram(at(6000), multicast_from(true), &peer_heartbeat(1, PEER))
        .unwrap();
    assert!(!other.service(PEER.as_bytes()).unwrap().is_expected());
    other.handle_timeout(at(9001));
    assert!(
        drain(&mut other, at(9001)).is_empty(),
        "no ping after recovery"
    );
    assert_ne!(other.poll_timeout(), Some(at(9001)));
}

#[test]
fn any_accepted_frame_counts_as_seen() {
    let mut node = node_with_peer(6);
    let event = encode_json(&serde_json::json!([
        ["sid", PEER],
        ["hid", HID],
        ["type", 6],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["data", "tick"]
    ]));
    node.handle_datagram(at(500_000), multicast_from(true), &event)
        .unwrap();
    assert!(matches!(events(&mut node)[..], [Event::Message { .. }]));
    // Counted from its heartbeat at 10 ms, the peer would expire at the first full heartbeat
    // after 601 s (by 741 s at the latest); counted from the event, not before 1,101 s.
    loop {
        let now = node.poll_timeout().unwrap().as_millis();
        if now > 1_050_000 {
            break;
        }
        node.handle_timeout(at(now));
        drain(&mut node, at(now));
        assert_eq!(node.known(), 1, "the peer expired at {now} ms");
    }
}

/// A policy in the style of the reference README: answers `echo:<data>`, refuses `secret`,
/// and drops everything on channel 5 that is not from a tagged service.
#[derive(Debug, Default)]
struct Echo {
    rejected: u32,
}

impl Policy for Echo {
    fn answer_query(
        &mut self,
        _from: &Service,
        query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        let data = query.data.map(|d| d.as_bytes()).unwrap_or_default();
        if data == b"secret" {
            return Err(Refusal::new("denied"));
        }
        use core::fmt::Write;
        write!(reply, "echo:").map_err(|_| Refusal::new("too long"))?;
        let mut text = String::from_utf8_lossy(data).into_owned();
        text.truncate(100);
        write!(reply, "{text}").map_err(|_| Refusal::new("too long"))
    }

    fn on_receive(
        &mut self,
        msg: &Message<'_>,
        _source: &Source,
        _payload: &mut cluster_core::PayloadMut<'_>,
    ) -> Verdict {
        if msg.channel == Some(5) {
            self.rejected += 1;
            Verdict::Reject
        } else {
            Verdict::Accept
        }
    }
}

#[test]
fn hooks_answer_queries_refuse_with_an_error_and_filter_a_channel() {
    let mut config = cluster_core::Config::reference();
    config.add_channel(5).unwrap();
    let mut node =
        cluster_core::Node::<Echo, 32, 512>::new(config, HID, Echo::default(), 7, at(0)).unwrap();
    let mut buf = vec![0u8; 8192];
    while node.poll_transmit(at(0), &mut buf).is_some() {}
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, PEER))
        .unwrap();
    let query = |data: &str| {
        encode_json(&serde_json::json!([
            ["filter", ["ONE", HID]],
            ["sid", PEER],
            ["hid", HID],
            ["type", 4],
            ["channel", 0],
            ["protocols", ["t", "c"]],
            ["ruid", "r1"],
            ["data", data],
            ["keepalive", 1]
        ]))
    };
    let source = Source::tcp(ConnId(1), lan([127, 0, 0, 1]), true);
    node.handle_datagram(at(20), source, &query("ping"))
        .unwrap();
    let t = node.poll_transmit(at(20), &mut buf).unwrap();
    let (m, _) = Message::parse(&buf[..t.len]).unwrap();
    assert_eq!(m.data.unwrap().to_str().unwrap(), "echo:ping");
    node.handle_datagram(at(30), source, &query("secret"))
        .unwrap();
    let t = node.poll_transmit(at(30), &mut buf).unwrap();
    let (m, _) = Message::parse(&buf[..t.len]).unwrap();
    assert_eq!(m.error.unwrap().to_str().unwrap(), "denied");
    assert_eq!(m.data, None);
    let on5 = encode_json(&serde_json::json!([
        ["sid", PEER],
        ["hid", HID],
        ["type", 6],
        ["channel", 5],
        ["protocols", ["c"]],
        ["data", "x"]
    ]));
    assert_eq!(
        node.handle_datagram(at(40), multicast_from(true), &on5),
        Err(cluster_core::DatagramError::Rejected)
    );
    assert_eq!(node.policy_mut().rejected, 1);
}

#[test]
fn query_collects_responses_and_reports_missing_targets_at_timeout() {
    let mut node = node_with_peer(8);
    node.handle_datagram(
        at(1020),
        multicast_from(true),
        &peer_heartbeat(1, "PEER0002"),
    )
    .unwrap();
    node.handle_timeout(at(2020));
    events(&mut node);
    let resolver = cluster_core::Resolver::resolve(&["TWO"]);
    let id = node
        .query(
            at(2030),
            &QueryRequest::new(Targets::resolve(&resolver), b"q"),
        )
        .unwrap();
    let frames = drain(&mut node, at(2000));
    assert_eq!(frames.len(), 2, "one direct query per target");
    for (dst, _) in &frames {
        if let Some(send) = dst.send_id() {
            node.transport_ok(at(2001), send);
        }
    }
    let response = encode_json(&serde_json::json!([
        ["sid", PEER],
        ["hid", HID],
        ["type", 5],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["ruid", id.as_str().unwrap()],
        ["keepalive", 1],
        ["data", "ok"],
        ["filter", [node.sid().as_str().unwrap()]]
    ]));
    node.handle_datagram(at(2100), multicast_from(true), &response)
        .unwrap();
    // A second answer from the same target is ignored.
    node.handle_datagram(at(2101), multicast_from(true), &response)
        .unwrap();
    let evs = events(&mut node);
    assert!(
        matches!(&evs[..], [Event::Query(QueryEvent::Response { .. })]),
        "{evs:?}"
    );
    node.handle_timeout(at(32_029));
    assert!(events(&mut node).is_empty(), "not before the 30 s timeout");
    node.handle_timeout(at(32_030));
    let evs = events(&mut node);
    assert!(
        matches!(
            &evs[..],
            [
                Event::Query(QueryEvent::Missing { .. }),
                Event::Query(QueryEvent::Done {
                    answered: 1,
                    missing: 1,
                    timed_out: true,
                    ..
                })
            ]
        ),
        "{evs:?}"
    );
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Reading<'a> {
    sensor: &'a str,
    celsius: i32,
    samples: [u16; 3],
}

#[test]
fn a_typed_payload_travels_postcard_encoded_in_raw() {
    let mut a = fresh(21);
    let mut b = fresh(22);
    let a_join = drain(&mut a, at(0));
    drain(&mut b, at(0));
    for (_, frame) in &a_join {
        b.handle_datagram(at(5), multicast_from(true), frame)
            .unwrap();
    }
    for (_, frame) in drain(&mut b, at(5)) {
        // b's answer to a's discovery, delivered as if it came over multicast.
        a.handle_datagram(at(6), multicast_from(true), &frame)
            .unwrap();
    }
    let reading = Reading {
        sensor: "boiler",
        celsius: -4,
        samples: [1, 2, 65_535],
    };
    let mut buf = [0u8; 64];
    let raw = cluster_core::typed::encode(&reading, &mut buf).unwrap();
    let to = [*b.sid()];
    let request = SendRequest {
        raw: Some(raw),
        data: None,
        ..SendRequest::new(Targets::services(&to), b"")
    };
    a.send(at(10), &request).unwrap();
    let frames = drain(&mut a, at(10));
    b.handle_datagram(
        at(11),
        Source::tcp(ConnId(3), lan([127, 0, 0, 1]), true),
        &frames[0].1,
    )
    .unwrap();
    let message = events(&mut b)
        .into_iter()
        .find_map(|e| match e {
            Event::Message { payload, .. } => Some(payload),
            _ => None,
        })
        .expect("the event");
    assert_eq!(message.typed::<Reading<'_>>().unwrap(), reading);
    assert_eq!(message.data(), None);
}

#[test]
fn a_send_the_reference_could_not_read_is_refused_at_once() {
    let mut node = node_with_peer(23);
    let peers = [peer_sid()];
    let on_18112 = SendRequest {
        channel: 18_112,
        ..SendRequest::new(Targets::services(&peers), b"x")
    };
    assert!(matches!(
        node.send(at(2000), &on_18112),
        Err(cluster_core::SendError::Encode(
            cluster_core::wire::EncodeError::ReservedVarintPrefix { value: 18_112, .. }
        ))
    ));
    let data = vec![b'x'; 18_112];
    let long = QueryRequest::new(Targets::services(&peers), &data);
    assert!(node.query(at(2000), &long).is_err());
    assert!(drain(&mut node, at(2000)).is_empty(), "nothing was queued");
}

/// A peer that encodes unchecked may ask on a channel whose varint a reference node mis-reads
/// (spec 7.3). This node (reference compat) cannot answer on it: the answer is refused when it
/// would be queued, and counted, so that `has_transmit` never promises a frame the encoder
/// then refuses (found by the `node` fuzz target).
#[test]
fn a_query_on_a_channel_the_reference_cannot_read_is_not_answered() {
    use cluster_core::wire::{Compat, FilterPlacement, List, Str};

    let mut node = node_with_peer(24);
    assert!(node.subscribe(18_112));
    let query = Message {
        kind: Some(MessageKind::Query),
        channel: Some(18_112),
        sid: Some(Str::from(PEER)),
        hid: Some(Str::from(HID)),
        protocols: Some(List::from_items(&["t", "c"])),
        data: Some(Str::from("q")),
        ..Message::default()
    };
    let mut frame = vec![0u8; 512];
    let len = query
        .encode_with(FilterPlacement::Last, Compat::Unchecked, &mut frame)
        .unwrap();
    let before = node.stats();
    node.handle_datagram(at(2000), multicast_from(true), &frame[..len])
        .unwrap();
    assert!(!node.has_transmit(at(2000)), "no answer is promised");
    assert!(drain(&mut node, at(2000)).is_empty());
    let after = node.stats();
    assert_eq!(after.encode_errors, before.encode_errors + 1);
    assert_eq!(after.frames_accepted, before.frames_accepted + 1);
    assert_eq!(after.sends_rejected, before.sends_rejected);

    // The same query on channel 0 is answered: only the channel was refused.
    let on_0 = Message {
        channel: Some(0),
        ..query
    };
    let len = on_0
        .encode_with(FilterPlacement::Last, Compat::Reference, &mut frame)
        .unwrap();
    node.handle_datagram(at(2001), multicast_from(true), &frame[..len])
        .unwrap();
    assert!(node.has_transmit(at(2001)));
    let frames = drain(&mut node, at(2001));
    assert_eq!(frames.len(), 1);
    assert_eq!(kind_of(&frames[0].1), MessageKind::Response);
}

/// A tags change reaches peers even when a frame with the old tags, sent before the change
/// over TCP, arrives after the heartbeat with the new ones: the next heartbeat carries the
/// tags again (spec: frames over TCP and multicast are not ordered with each other).
#[test]
fn a_tags_change_is_repeated_so_a_late_frame_with_the_old_tags_is_corrected() {
    use cluster_core::{Config, DefaultPolicy, Instant, Resolver, TagOp};
    use std::net::SocketAddr;

    type Small = cluster_core::Node<DefaultPolicy, 8, 512>;
    let hid = "02:fc:00:00:00:01";
    let host: SocketAddr = "127.0.0.1:23000".parse().unwrap();
    let mut config = Config::lan_fast();
    config.add_tag("old").unwrap();
    let mut now = Instant::from_millis(1_000);
    let mut a = Small::new(config, hid, DefaultPolicy, 1, now).unwrap();
    a.set_tcp_port(now, Some(40_001));
    let mut b = Small::new(Config::lan_fast(), hid, DefaultPolicy, 2, now).unwrap();
    b.set_tcp_port(now, Some(40_002));
    let mut buf = vec![0u8; Small::TRANSMIT_BUF];
    // Drains `from`; multicast frames reach `to` at once, direct ones are returned.
    let mut exchange = |from: &mut Small, to: &mut Small, now: Instant| -> Vec<Vec<u8>> {
        let mut held = Vec::new();
        while let Some(t) = from.poll_transmit(now, &mut buf) {
            let frame = buf[..t.len].to_vec();
            if let Some(id) = t.dst.send_id() {
                from.transport_ok(now, id);
            }
            match t.dst {
                Destination::Group { .. } => {
                    let _ = to.handle_datagram(now, Source::multicast(host, true), &frame);
                }
                Destination::Service { .. } => held.push(frame),
            }
        }
        while from.poll_event().is_some() {}
        while to.poll_event().is_some() {}
        held
    };
    let _ = exchange(&mut a, &mut b, now);
    let _ = exchange(&mut b, &mut a, now);
    // a answers b's discovery over TCP, with the old tags: held back on the way.
    let late = exchange(&mut a, &mut b, now);
    assert!(!late.is_empty(), "a discovery answer");
    let sid_a = *a.sid();
    let tagged = |b: &Small, tag: &str| {
        let filter = [tag];
        let resolver = Resolver::resolve(&filter);
        b.resolve(&resolver).any(|s| *s.sid() == sid_a)
    };
    assert!(tagged(&b, "old"));
    now = Instant::from_millis(1_100);
    a.update_tags(now, &[TagOp::Replace(&["new"])]).unwrap();
    a.handle_timeout(now);
    let _ = exchange(&mut a, &mut b, now);
    assert!(tagged(&b, "new"));
    // The old answer arrives now and sets the old tags again.
    for frame in &late {
        let _ = b.handle_datagram(now, Source::tcp(ConnId(1), host, true), frame);
    }
    assert!(tagged(&b, "old"));
    // a's next heartbeat (400-600 ms later in lan_fast) carries the tags once more.
    let until = Instant::from_millis(1_100 + 600);
    while let Some(next) = a.poll_timeout().filter(|t| *t > now && *t <= until) {
        now = next;
        a.handle_timeout(now);
        let _ = exchange(&mut a, &mut b, now);
    }
    assert!(
        tagged(&b, "new"),
        "the repeated tags corrected the late frame"
    );
}

/// A receive hook that reads every payload and turns `data` into upper case; it records what
/// it read and whether its write succeeded.
#[derive(Default)]
struct Shouts {
    read: Vec<Vec<u8>>,
    writes: Vec<Result<(), cluster_core::PayloadFull>>,
}

impl Policy for Shouts {
    fn on_receive(
        &mut self,
        msg: &Message<'_>,
        _source: &Source,
        payload: &mut cluster_core::PayloadMut<'_>,
    ) -> Verdict {
        if msg.kind == Some(MessageKind::Event) {
            let data = payload.data().unwrap_or_default().to_vec();
            self.read.push(data.clone());
            let upper = data.to_ascii_uppercase();
            self.writes.push(payload.set_data(Some(&upper)));
            assert_eq!(payload.raw(), Some(&b"\x01\x02"[..]), "raw kept");
        }
        Verdict::Accept
    }
}

fn shouting_node() -> cluster_core::Node<Shouts, 32, 512> {
    let mut config = cluster_core::Config::reference();
    config.add_tag("ONE").unwrap();
    let mut node =
        cluster_core::Node::<Shouts, 32, 512>::new(config, HID, Shouts::default(), 3, at(0))
            .unwrap();
    let mut buf = vec![0u8; 8192];
    while node.poll_transmit(at(0), &mut buf).is_some() {}
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, PEER))
        .unwrap();
    node.handle_timeout(at(1010));
    while node.poll_event().is_some() {}
    node
}

fn peer_event(data: &str) -> Vec<u8> {
    encode_json(&serde_json::json!([
        ["sid", PEER],
        ["hid", HID],
        ["type", 6],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["data", data],
        ["raw", "0102"]
    ]))
}

/// The message event as the node reports it: its data and raw.
fn message_payload(event: Option<Event<512>>) -> (Vec<u8>, Vec<u8>) {
    match event {
        Some(Event::Message { payload, .. }) => (
            payload.data().unwrap_or_default().to_vec(),
            payload.raw().unwrap_or_default().to_vec(),
        ),
        other => panic!("a message was expected, got {other:?}"),
    }
}

#[test]
fn a_receive_hook_reads_the_frame_and_its_rewrite_is_what_the_node_reports() {
    let mut node = shouting_node();
    node.handle_datagram(at(2000), multicast_from(true), &peer_event("quiet"))
        .unwrap();
    assert_eq!(node.policy_mut().read, [b"quiet".to_vec()]);
    assert_eq!(node.policy_mut().writes, [Ok(())]);
    assert_eq!(
        message_payload(node.poll_event()),
        (b"QUIET".to_vec(), vec![1, 2])
    );
}

/// The hook's write goes to a free slot of the payload pool; with every slot taken by queued
/// sends it fails, and the frame is handled as received.
#[test]
fn a_receive_hook_cannot_rewrite_while_every_payload_slot_is_queued() {
    let mut node = shouting_node();
    let target = [peer_sid()];
    let mut queued = 0;
    while node
        .send(
            at(2000),
            &SendRequest::new(Targets::services(&target), b"out"),
        )
        .is_ok()
    {
        queued += 1;
    }
    assert_eq!(queued, 4, "the pool's slots");
    node.handle_datagram(at(2001), multicast_from(true), &peer_event("quiet"))
        .unwrap();
    assert_eq!(node.policy_mut().writes, [Err(cluster_core::PayloadFull)]);
    assert_eq!(
        message_payload(node.poll_event()),
        (b"quiet".to_vec(), vec![1, 2])
    );
    // Once the sends are delivered, the slots are free again.
    let mut buf = vec![0u8; 8192];
    while let Some(transmit) = node.poll_transmit(at(2002), &mut buf) {
        match transmit.dst {
            Destination::Service { send, .. } | Destination::Group { send: Some(send) } => {
                node.transport_ok(at(2002), send);
            }
            Destination::Group { send: None } => {}
        }
    }
    node.handle_datagram(at(2003), multicast_from(true), &peer_event("again"))
        .unwrap();
    assert_eq!(node.policy_mut().writes.last(), Some(&Ok(())));
    assert_eq!(
        message_payload(node.poll_event()),
        (b"AGAIN".to_vec(), vec![1, 2])
    );
}
