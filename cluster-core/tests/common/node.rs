//! Helpers for driving one node by hand in tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::wire::{Frame, Message, MessageKind};
use cluster_core::{Config, DefaultPolicy, Destination, Event, Instant, Node, Source};

pub type TestNode = Node<DefaultPolicy, 32, 512>;

pub const HID: &str = "02:fc:00:00:00:01";

pub fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub fn lan(ip: [u8; 4]) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 23000)
}

pub fn multicast_from(local: bool) -> Source {
    Source::multicast(lan([192, 0, 2, 2]), local)
}

/// Drains every transmit, decoding each into its kind and wire fields (as JSON).
pub fn drain(node: &mut TestNode, now: Instant) -> Vec<(Destination, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; TestNode::TRANSMIT_BUF];
    while let Some(t) = node.poll_transmit(now, &mut buf) {
        out.push((t.dst, buf[..t.len].to_vec()));
    }
    out
}

pub fn events(node: &mut TestNode) -> Vec<Event<512>> {
    std::iter::from_fn(|| node.poll_event()).collect()
}

pub fn kind_of(frame: &[u8]) -> MessageKind {
    let (m, _) = Message::parse(frame).unwrap();
    m.kind.unwrap()
}

pub fn field_names(frame: &[u8]) -> Vec<&'static str> {
    let (f, _) = Frame::parse(frame).unwrap();
    f.fields().map(|f| f.id.name()).collect()
}

pub fn fresh(seed: u64) -> TestNode {
    let mut config = Config::reference();
    config.add_tag("ONE").unwrap();
    TestNode::new(config, HID, DefaultPolicy, seed, at(0)).unwrap()
}

/// A peer's join heartbeat: sid `PEER0001`, tags [TWO], t port 40000.
pub fn peer_heartbeat(kind: u64, sid: &str) -> Vec<u8> {
    let line = serde_json::json!([
        ["sid", sid],
        ["hid", HID],
        ["type", kind],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["data", "t {port 40000}"],
        ["known", 0],
        ["tags", ["TWO"]]
    ]);
    encode_json(&line)
}

pub fn encode_json(fields: &serde_json::Value) -> Vec<u8> {
    let fields = super::fields_from_json(fields);
    let mut out = vec![0u8; 4096];
    let len = cluster_core::wire::encode_fields(
        fields.iter().copied(),
        cluster_core::wire::Compat::Reference,
        &mut out,
    )
    .unwrap();
    out.truncate(len);
    out
}
