//! Per-node data on one node driven by hand: the frames that carry it, the digest on
//! periodic heartbeats, what a received entry reports, and the typed errors.

mod common;

use cluster_core::wire::{Message, MessageKind};
use cluster_core::{DataError, DefaultPolicy, Event, Node};
use common::node::*;

/// The `data` of every heartbeat among `frames`.
fn heartbeat_data(frames: &[(cluster_core::Destination, Vec<u8>)]) -> Vec<Option<String>> {
    frames
        .iter()
        .filter(|(_, f)| kind_of(f) == MessageKind::Heartbeat)
        .map(|(_, f)| {
            let (m, _) = Message::parse(f).unwrap();
            m.data.map(|d| d.to_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn an_update_goes_out_at_once_in_the_props_and_periodic_heartbeats_carry_its_version() {
    let mut node = fresh(1);
    node.set_tcp_port(at(0), Some(41241));
    drain(&mut node, at(0));
    let pairs: [(&str, &[u8]); 2] = [("region", b"eu west"), ("blob", &[0, 0xff])];
    assert_eq!(node.set_data(at(10), &pairs), Ok(1));
    assert_eq!(node.data_version(), 1);
    // The heartbeat is due at once.
    assert_eq!(node.poll_timeout(), Some(at(10)));
    node.handle_timeout(at(10));
    let sent = drain(&mut node, at(10));
    assert_eq!(
        heartbeat_data(&sent),
        [Some(
            "t {port 41241} meta {version 1 data {region {eu west}} hex {blob 00ff}}".to_owned()
        )]
    );
    // The next periodic heartbeat carries only the version.
    let next = node.poll_timeout().unwrap();
    node.handle_timeout(next);
    let sent = drain(&mut node, next);
    assert_eq!(heartbeat_data(&sent), [Some("metav 1".to_owned())]);
    // A port change keeps the data in the props.
    node.set_tcp_port(next, Some(5000));
    node.handle_timeout(next);
    let sent = drain(&mut node, next);
    assert_eq!(
        heartbeat_data(&sent),
        [Some(
            "t {port 5000} meta {version 1 data {region {eu west}} hex {blob 00ff}}".to_owned()
        )]
    );
}

#[test]
fn a_node_without_data_sends_what_the_reference_sends() {
    let mut node = fresh(2);
    drain(&mut node, at(0));
    let next = node.poll_timeout().unwrap();
    node.handle_timeout(next);
    let sent = drain(&mut node, next);
    assert_eq!(heartbeat_data(&sent), [None]);
    assert_eq!(node.data_version(), 0);
}

#[test]
fn refused_pairs_leave_the_published_data_as_it_was() {
    let mut node = fresh(3);
    drain(&mut node, at(0));
    node.set_data(at(1), &[("a", b"1")]).unwrap();
    assert_eq!(
        node.set_data(at(2), &[("a", b"1"), ("a", b"2")]),
        Err(DataError::DuplicateKey)
    );
    assert_eq!(node.set_data(at(2), &[("", b"1")]), Err(DataError::BadKey));
    let big = vec![b'x'; 600];
    assert_eq!(
        node.set_data(at(2), &[("a", &big)]),
        Err(DataError::TooLarge)
    );
    assert_eq!(node.data_version(), 1);
    let mut empty = Node::<DefaultPolicy, 32, 512>::empty(DefaultPolicy);
    assert_eq!(empty.set_data(at(0), &[]), Err(DataError::NotJoined));
}

#[test]
fn a_received_entry_is_reported_once_per_newer_version() {
    let mut node = fresh(4);
    drain(&mut node, at(0));
    let heartbeat = |data: &str| {
        encode_json(&serde_json::json!([
            ["sid", "PEER0001"],
            ["hid", HID],
            ["type", 1],
            ["channel", 0],
            ["protocols", ["t", "c"]],
            ["data", data],
            ["known", 0],
            ["tags", ["TWO"]]
        ]))
    };
    let source = multicast_from(true);
    let entry = "t {port 40000} meta {version 2 data {k v}}";
    node.handle_datagram(at(1), source, &heartbeat(entry))
        .unwrap();
    // Again, and an older one: nothing new.
    node.handle_datagram(at(2), source, &heartbeat(entry))
        .unwrap();
    let older = "t {port 40000} meta {version 1 data {k old}}";
    node.handle_datagram(at(3), source, &heartbeat(older))
        .unwrap();
    let changes: Vec<_> = events(&mut node)
        .into_iter()
        .filter_map(|e| match e {
            Event::DataChanged { version, data, .. } => {
                Some((version, data.data_str().unwrap().to_owned()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(changes, [(2, "version 2 data {k v}".to_owned())]);
    let peer = node.service(b"PEER0001").unwrap();
    assert_eq!(peer.data_version(), 2);
    assert_eq!(
        peer.tcp_port(),
        Some(40000),
        "the protocols' props still apply"
    );
    // A newer digest makes the node ask that peer for its props (a filtered discovery).
    drain(&mut node, at(3));
    node.handle_datagram(at(4), source, &heartbeat("metav 3"))
        .unwrap();
    let asked: Vec<_> = drain(&mut node, at(4))
        .into_iter()
        .filter(|(_, f)| kind_of(f) == MessageKind::Discovery)
        .map(|(_, f)| {
            let (m, _) = Message::parse(&f).unwrap();
            m.filter
                .unwrap()
                .iter()
                .map(|s| s.to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(asked, [vec![b"PEER0001".to_vec()]]);
}
