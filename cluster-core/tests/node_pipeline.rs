//! The receive pipeline against the golden `pipeline_cases`, and single-node behaviour at
//! explicit `now` values: join frames, discovery answers, query responses, pings, expiry.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::wire::{FieldId, Frame, Message, MessageKind};
use cluster_core::{
    Config, ConnId, DatagramError, DefaultPolicy, Destination, Event, LostReason, Source,
};
use common::node::*;
use common::{fields_to_json, hex, load, unhex};

fn receiver(case: &serde_json::Value) -> TestNode {
    let r = &case["receiver"];
    let mut config = Config::reference();
    config.remote = r["remote"].as_u64().unwrap() != 0;
    for tag in r["tags"].as_array().unwrap() {
        config.add_tag(tag.as_str().unwrap()).unwrap();
    }
    for channel in r["channels"].as_array().unwrap() {
        config.add_channel(channel.as_u64().unwrap()).unwrap();
    }
    TestNode::with_sid(
        config,
        r["hid"].as_str().unwrap(),
        r["sid"].as_str().unwrap(),
        DefaultPolicy,
        1,
        at(0),
    )
    .unwrap()
}

#[test]
fn every_pipeline_case_is_dropped_rejected_or_accepted_as_listed() {
    let doc = load("invalid.json");
    let cases = doc["pipeline_cases"].as_array().expect("pipeline_cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut node = receiver(case);
        drain(&mut node, at(0));
        let local = case["receiver"]["source_is_local"].as_u64().unwrap() != 0;
        let bytes = unhex(case["hex"].as_str().unwrap());
        let (message, _) = Message::parse(&bytes).unwrap();
        let sender = message
            .sid
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default();
        let result = node.handle_datagram(at(10), multicast_from(local), &bytes);
        let created = node.service(&sender).is_some();
        let stats = node.stats();
        match case["expected"].as_str().unwrap() {
            "accept" => {
                assert_eq!(result, Ok(()), "{name}");
                assert!(created, "{name}: service created");
            }
            "drop" => {
                assert!(!created, "{name}: no service");
                let reason = case["reason"].as_str().unwrap();
                match reason {
                    "own_sid" => assert_eq!(stats.own_echoes, 1, "{name}"),
                    "filter_mismatch" => assert_eq!(stats.filtered_out, 1, "{name}"),
                    "hid_mismatch" => assert_eq!(result, Err(DatagramError::ForeignHid)),
                    "channel_not_subscribed" | "channel_requires_local" => {
                        assert!(
                            matches!(result, Err(DatagramError::NotSubscribed(_))),
                            "{name}"
                        )
                    }
                    "missing_required_field" | "unknown_type" => {
                        assert_eq!(result, Err(DatagramError::Invalid), "{name}")
                    }
                    other => panic!("{name}: unknown drop reason {other}"),
                }
            }
            "reject" => {
                assert!(!created, "{name}");
                assert_eq!(result, Err(DatagramError::Invalid), "{name}");
            }
            other => panic!("{name}: unknown expectation {other}"),
        }
        // No lost event for a service that never existed (Q11), and nothing discovered.
        node.handle_timeout(at(5_000));
        let evs = events(&mut node);
        if case["expected"] != "accept" {
            assert!(evs.is_empty(), "{name}: {evs:?}");
        }
    }
}

#[test]
fn join_sends_heartbeat_then_discovery_with_props_known_and_tags() {
    let mut node = fresh(7);
    node.set_tcp_port(at(0), Some(41503));
    let frames = drain(&mut node, at(0));
    assert_eq!(
        frames.len(),
        2,
        "exactly the join heartbeat and the discovery"
    );
    let (hb, disc) = (&frames[0].1, &frames[1].1);
    assert_eq!(kind_of(hb), MessageKind::Heartbeat);
    assert_eq!(kind_of(disc), MessageKind::Discovery);
    let layout = [
        "sid",
        "hid",
        "type",
        "channel",
        "protocols",
        "data",
        "known",
        "tags",
    ];
    assert_eq!(field_names(hb), layout);
    assert_eq!(field_names(disc), layout);
    let (m, _) = Message::parse(hb).unwrap();
    assert_eq!(m.data.unwrap().to_str().unwrap(), "t {port 41503}");
    assert_eq!(m.known, Some(0));
    assert!(matches!(frames[0].0, Destination::Group { send: None }));
}

#[test]
fn join_heartbeat_matches_the_captured_reference_frame_byte_for_byte() {
    // r1-01: node A = G4xYW467, tags [ONE], TCP port 41503.
    let doc = load("captured.json");
    let vector = doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "r1-01-join-heartbeat-A")
        .expect("the r1-01 join heartbeat vector");
    let mut config = Config::reference();
    config.add_tag("ONE").unwrap();
    let mut node = TestNode::with_sid(config, HID, "G4xYW467", DefaultPolicy, 1, at(0)).unwrap();
    node.set_tcp_port(at(0), Some(41503));
    let frames = drain(&mut node, at(0));
    assert_eq!(hex(&frames[0].1), vector["hex"].as_str().unwrap());
}

#[test]
fn periodic_heartbeat_is_sid_hid_type_channel_protocols_known() {
    let mut node = fresh(3);
    drain(&mut node, at(0));
    let interval = node.heartbeat_interval().as_millis() as u64;
    assert!((110_000..=140_000).contains(&interval));
    assert_eq!(node.poll_timeout(), Some(at(interval)));
    node.handle_timeout(at(interval - 1));
    assert!(
        drain(&mut node, at(interval - 1)).is_empty(),
        "no early heartbeat"
    );
    node.handle_timeout(at(interval));
    let frames = drain(&mut node, at(interval));
    assert_eq!(frames.len(), 1);
    assert_eq!(
        field_names(&frames[0].1),
        ["sid", "hid", "type", "channel", "protocols", "known"]
    );
}

#[test]
fn discovery_is_answered_at_once_over_tcp_with_filter_last() {
    let mut node = fresh(11);
    node.set_tcp_port(at(0), Some(41000));
    drain(&mut node, at(0));
    let discovery = peer_heartbeat(2, "PEER0001");
    node.handle_datagram(at(100), multicast_from(true), &discovery)
        .unwrap();
    let frames = drain(&mut node, at(100));
    assert_eq!(frames.len(), 1, "{frames:?}");
    let (dst, frame) = &frames[0];
    let Destination::Service {
        via,
        endpoint,
        send,
        ..
    } = dst
    else {
        panic!("direct answer expected, got {dst:?}");
    };
    assert_eq!(*via, cluster_core::Protocol::Tcp);
    // Local service first met: ip 127.0.0.1 until... it came over multicast, so the source.
    assert_eq!(
        *endpoint,
        cluster_core::Endpoint::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            40000
        ))
    );
    assert_eq!(
        field_names(frame),
        [
            "sid",
            "hid",
            "type",
            "channel",
            "protocols",
            "data",
            "known",
            "tags",
            "filter"
        ]
    );
    node.transport_ok(at(101), *send);
    assert!(drain(&mut node, at(101)).is_empty());
    // Discovered one second later, as the reference.
    node.handle_timeout(at(1099));
    assert!(events(&mut node).is_empty());
    node.handle_timeout(at(1100));
    assert!(matches!(events(&mut node)[..], [Event::Discovered { .. }]));
}

#[test]
fn failed_tcp_answer_falls_back_to_multicast_and_reports_the_failure() {
    let mut node = fresh(12);
    drain(&mut node, at(0));
    node.handle_datagram(
        at(100),
        multicast_from(true),
        &peer_heartbeat(2, "PEER0001"),
    )
    .unwrap();
    let frames = drain(&mut node, at(100));
    let Destination::Service { send, .. } = frames[0].0 else {
        panic!()
    };
    node.transport_failed(at(101), send);
    let frames = drain(&mut node, at(101));
    assert_eq!(frames.len(), 1);
    let Destination::Group { send: Some(send) } = frames[0].0 else {
        panic!("multicast fallback expected: {:?}", frames[0].0)
    };
    assert_eq!(*field_names(&frames[0].1).last().unwrap(), "filter");
    node.transport_ok(at(102), send);
    let frames = drain(&mut node, at(102));
    assert_eq!(frames.len(), 1, "the failed report");
    let (m, _) = Message::parse(&frames[0].1).unwrap();
    assert_eq!(m.kind, Some(MessageKind::Failed));
    assert_eq!(m.data.unwrap().to_str().unwrap(), "protocols t");
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
}

#[test]
fn query_over_tcp_is_answered_on_the_same_connection_with_an_empty_reply() {
    let mut node = fresh(13);
    drain(&mut node, at(0));
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, "PEER0001"))
        .unwrap();
    let query = encode_json(&serde_json::json!([
        ["filter", ["ONE"]],
        ["sid", "PEER0001"],
        ["hid", HID],
        ["type", 4],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["ruid", "qPE#1.1"],
        ["data", "status"],
        ["keepalive", 1]
    ]));
    let conn = ConnId(9);
    let source = Source::tcp(conn, lan([127, 0, 0, 1]), true);
    // Split over two reads.
    node.handle_datagram(at(20), source, &query[..10]).unwrap();
    assert!(drain(&mut node, at(20)).is_empty());
    node.handle_datagram(at(21), source, &query[10..]).unwrap();
    let frames = drain(&mut node, at(21));
    assert_eq!(frames.len(), 1);
    let Destination::Service { conn: Some(c), .. } = frames[0].0 else {
        panic!()
    };
    assert_eq!(c, conn);
    let fields = fields_to_json(Frame::parse(&frames[0].1).unwrap().0.fields());
    let expected = serde_json::json!([
        ["ruid", "qPE#1.1"],
        ["keepalive", 1],
        ["data", ""],
        ["filter", ["PEER0001"]]
    ]);
    assert_eq!(
        fields.as_array().unwrap()[5..],
        expected.as_array().unwrap()[..]
    );
    let evs = events(&mut node);
    assert!(
        evs.iter().any(|e| matches!(e, Event::QueryReceived { .. })),
        "{evs:?}"
    );
}

#[test]
fn disconnect_removes_the_service_at_once() {
    let mut node = fresh(14);
    drain(&mut node, at(0));
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, "PEER0001"))
        .unwrap();
    node.handle_timeout(at(1010));
    assert!(matches!(events(&mut node)[..], [Event::Discovered { .. }]));
    let bye = encode_json(&serde_json::json!([
        ["sid", "PEER0001"],
        ["hid", HID],
        ["type", 0],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["known", 1],
        ["tags", ["TWO"]]
    ]));
    node.handle_datagram(at(2000), multicast_from(true), &bye)
        .unwrap();
    assert_eq!(node.known(), 0);
    assert!(matches!(
        events(&mut node)[..],
        [Event::Lost {
            reason: LostReason::Disconnected,
            ..
        }]
    ));
}

#[test]
fn leave_sends_the_reference_disconnect_layout() {
    let mut node = fresh(15);
    drain(&mut node, at(0));
    node.leave(at(5));
    let frames = drain(&mut node, at(5));
    assert_eq!(frames.len(), 1);
    assert_eq!(kind_of(&frames[0].1), MessageKind::Disconnect);
    assert_eq!(
        field_names(&frames[0].1),
        [
            "sid",
            "hid",
            "type",
            "channel",
            "protocols",
            "known",
            "tags"
        ]
    );
    assert_eq!(node.poll_timeout(), None);
}

#[test]
fn service_expires_at_the_first_full_heartbeat_after_ttl() {
    let mut node = fresh(16);
    drain(&mut node, at(0));
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, "PEER0001"))
        .unwrap();
    node.handle_timeout(at(1010));
    events(&mut node);
    // Reference profile: checked at full heartbeats only, expired when whole seconds > 600.
    let mut now = 1010;
    while node.known() == 1 {
        now = node.poll_timeout().unwrap().as_millis();
        node.handle_timeout(at(now));
        drain(&mut node, at(now));
        assert!(now < 1_000_000);
    }
    assert!(now >= 10 + 601_000, "expired too early at {now}");
    assert!(now <= 10 + 601_000 + 140_000, "expired too late at {now}");
    assert!(matches!(
        events(&mut node)[..],
        [Event::Lost {
            reason: LostReason::Expired,
            ..
        }]
    ));
}

#[test]
fn ping_naming_only_us_is_answered_at_once_with_props_and_tags() {
    let mut node = fresh(17);
    drain(&mut node, at(0));
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, "PEER0001"))
        .unwrap();
    let sid = node.sid().as_str().unwrap().to_owned();
    let ping = encode_json(&serde_json::json!([
        ["sid", "PEER0001"],
        ["hid", HID],
        ["type", 3],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["data", sid],
        ["known", 1]
    ]));
    node.handle_datagram(at(5000), multicast_from(true), &ping)
        .unwrap();
    let frames = drain(&mut node, at(5000));
    assert_eq!(frames.len(), 1);
    assert_eq!(
        field_names(&frames[0].1),
        [
            "sid",
            "hid",
            "type",
            "channel",
            "protocols",
            "data",
            "known",
            "tags"
        ]
    );
}

#[test]
fn a_frame_with_a_bad_body_is_one_decode_error_and_the_next_frame_of_the_datagram_is_read() {
    let mut node = fresh(19);
    drain(&mut node, at(0));
    // A whole frame whose body is one unknown field, then a peer's heartbeat, in one
    // datagram: the node decodes each frame once, as it validates it.
    let mut datagram = unhex("c08d01800000");
    datagram.extend_from_slice(&peer_heartbeat(1, "PEER0001"));
    let accepted = node.stats().frames_accepted;
    assert!(matches!(
        node.handle_datagram(at(10), multicast_from(true), &datagram),
        Err(DatagramError::Decode(_))
    ));
    assert_eq!(node.stats().decode_errors, 1);
    assert_eq!(node.stats().frames_dropped, 1);
    assert_eq!(node.stats().frames_accepted, accepted + 1);
    assert!(node.service(b"PEER0001").is_some());
}

#[test]
fn garbage_and_truncated_frames_are_typed_errors_and_lose_nothing() {
    let mut node = fresh(18);
    drain(&mut node, at(0));
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, "PEER0001"))
        .unwrap();
    let bad = unhex("c08d01800000");
    assert!(matches!(
        node.handle_datagram(at(20), multicast_from(true), &bad),
        Err(DatagramError::Decode(_))
    ));
    assert!(node.service(b"PEER0001").is_some());
    assert_eq!(node.stats().decode_errors, 1);
    // The Message of a frame with no fields is refused as invalid, not a panic.
    let empty = unhex("c08d000000");
    assert_eq!(
        node.handle_datagram(at(30), multicast_from(true), &empty),
        Err(DatagramError::Invalid)
    );
    let _ = FieldId::Sid;
}

#[test]
fn a_service_met_through_a_periodic_heartbeat_is_asked_for_its_props_and_tags() {
    let mut node = fresh(19);
    drain(&mut node, at(0));
    let periodic = encode_json(&serde_json::json!([
        ["sid", "PEER0009"],
        ["hid", HID],
        ["type", 1],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["known", 4]
    ]));
    node.handle_datagram(at(10), multicast_from(true), &periodic)
        .unwrap();
    let frames = drain(&mut node, at(10));
    assert_eq!(frames.len(), 1);
    assert_eq!(kind_of(&frames[0].1), MessageKind::Discovery);
    assert_eq!(
        field_names(&frames[0].1),
        [
            "filter",
            "sid",
            "hid",
            "type",
            "channel",
            "protocols",
            "data",
            "known",
            "tags"
        ]
    );
    let (m, _) = Message::parse(&frames[0].1).unwrap();
    assert_eq!(m.filter.unwrap().iter().collect::<Vec<_>>(), [b"PEER0009"]);
    // Known services are not asked again.
    node.handle_datagram(at(20), multicast_from(true), &periodic)
        .unwrap();
    assert!(drain(&mut node, at(20)).is_empty());
}
