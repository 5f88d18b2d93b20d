//! Without the feature `node-data`: a node sends the reference's frames (no data entry, no
//! digest) and reads a peer's data entry and digest as unknown props, which it ignores.
#![cfg(not(feature = "node-data"))]

mod common;

use cluster_core::wire::{Message, MessageKind};
use common::node::*;

/// A type-1 heartbeat of peer `PEER0001` whose `data` is `data`, when given.
fn heartbeat(data: Option<&str>) -> Vec<u8> {
    let mut fields = vec![
        serde_json::json!(["sid", "PEER0001"]),
        serde_json::json!(["hid", HID]),
        serde_json::json!(["type", 1]),
        serde_json::json!(["channel", 0]),
        serde_json::json!(["protocols", ["t", "c"]]),
    ];
    if let Some(data) = data {
        fields.push(serde_json::json!(["data", data]));
    }
    fields.push(serde_json::json!(["known", 0]));
    fields.push(serde_json::json!(["tags", ["TWO"]]));
    encode_json(&serde_json::Value::Array(fields))
}

#[test]
fn a_node_sends_the_reference_frames_props_and_heartbeats_without_data() {
    let mut node = fresh(2);
    node.set_tcp_port(at(0), Some(41241));
    let joined = drain(&mut node, at(0));
    for (_, frame) in &joined {
        let (m, _) = Message::parse(frame).unwrap();
        let data = m.data.map(|d| d.to_str().unwrap().to_owned());
        assert!(
            data.as_deref().is_none_or(|d| !d.contains("meta")),
            "{data:?}"
        );
    }
    let next = node.poll_timeout().unwrap();
    node.handle_timeout(next);
    let periodic: Vec<_> = drain(&mut node, next)
        .into_iter()
        .filter(|(_, f)| kind_of(f) == MessageKind::Heartbeat)
        .map(|(_, f)| Message::parse(&f).unwrap().0.data.is_some())
        .collect();
    assert_eq!(periodic, [false], "a periodic heartbeat carries no `data`");
}

#[test]
fn a_peers_data_entry_and_digest_change_nothing() {
    // Two nodes alike (same seed): one hears the peer's data, its twin the same frames
    // without it. Both must report the same events and send the same frames.
    let mut hearing = fresh(4);
    let mut twin = fresh(4);
    drain(&mut hearing, at(0));
    drain(&mut twin, at(0));
    let source = multicast_from(true);
    let steps: [(u64, Option<&str>, Option<&str>); 3] = [
        (
            1,
            Some("t {port 40000} meta {version 2 data {k v}}"),
            Some("t {port 40000}"),
        ),
        (
            2,
            Some("t {port 40000} meta {version 3 data {k w}}"),
            Some("t {port 40000}"),
        ),
        // A newer digest: a node with the feature would ask the peer for its props.
        (3, Some("metav 4"), None),
    ];
    for (ms, heard, plain) in steps {
        hearing
            .handle_datagram(at(ms), source, &heartbeat(heard))
            .unwrap();
        twin.handle_datagram(at(ms), source, &heartbeat(plain))
            .unwrap();
        assert_eq!(
            format!("{:?}", events(&mut hearing)),
            format!("{:?}", events(&mut twin)),
            "events at {ms} ms"
        );
        let sent = drain(&mut hearing, at(ms));
        assert!(
            sent.iter()
                .all(|(_, f)| kind_of(f) != MessageKind::Discovery),
            "nothing is asked for the peer's data"
        );
        assert_eq!(sent, drain(&mut twin, at(ms)), "frames at {ms} ms");
    }
    let peer = hearing.service(b"PEER0001").unwrap();
    assert_eq!(
        peer.tcp_port(),
        Some(40000),
        "the protocols' props still apply"
    );
}
