//! Shared set-up for the benchmarks in `benches/`: building nodes that already know many
//! services. Run a benchmark with `cargo bench -p cluster-benches --bench NAME`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::wire::{Compat, Field, FieldId, List, Str, Value, encode_fields};
use cluster_core::{Config, DefaultPolicy, Instant, Node, Source};

/// The hid every benchmark node shares (one host, local mode).
pub const HID: &str = "02:fc:00:00:00:01";

/// A node sized for servers: up to 16,384 known services.
pub type BigNode = Node<DefaultPolicy, 16_384, 512>;

/// The multicast source every peer frame comes from.
#[must_use]
pub fn source() -> Source {
    Source::multicast(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 23000),
        true,
    )
}

/// The sid of peer `i`: 8 characters, as the reference draws them.
#[must_use]
pub fn peer_sid(i: usize) -> String {
    format!("P{i:07}")
}

/// A peer's periodic heartbeat: `sid hid type=1 channel=0 protocols=[t c] known`.
#[must_use]
pub fn periodic_heartbeat(sid: &str) -> Vec<u8> {
    let protocols = ["t", "c"];
    let fields = [
        Field::new(FieldId::Sid, Value::Str(Str::from(sid))),
        Field::new(FieldId::Hid, Value::Str(Str::from(HID))),
        Field::new(FieldId::Type, Value::Varint(1)),
        Field::new(FieldId::Channel, Value::Varint(0)),
        Field::new(
            FieldId::Protocols,
            Value::List(List::from_items(&protocols)),
        ),
        Field::new(FieldId::Known, Value::Varint(3)),
    ]
    .map(|f| f.expect("template kinds"));
    let mut out = vec![0u8; 128];
    let len = encode_fields(fields, Compat::Reference, &mut out).expect("fits");
    out.truncate(len);
    out
}

/// A peer's join heartbeat with props and a tag.
#[must_use]
pub fn join_heartbeat(sid: &str, port: u16) -> Vec<u8> {
    let protocols = ["t", "c"];
    let tags = ["bench"];
    let data = format!("t {{port {port}}}");
    let fields = [
        Field::new(FieldId::Sid, Value::Str(Str::from(sid))),
        Field::new(FieldId::Hid, Value::Str(Str::from(HID))),
        Field::new(FieldId::Type, Value::Varint(1)),
        Field::new(FieldId::Channel, Value::Varint(0)),
        Field::new(
            FieldId::Protocols,
            Value::List(List::from_items(&protocols)),
        ),
        Field::new(FieldId::Data, Value::Str(Str::from(data.as_str()))),
        Field::new(FieldId::Known, Value::Varint(0)),
        Field::new(FieldId::Tags, Value::List(List::from_items(&tags))),
    ]
    .map(|f| f.expect("template kinds"));
    let mut out = vec![0u8; 128];
    let len = encode_fields(fields, Compat::Reference, &mut out).expect("fits");
    out.truncate(len);
    out
}

/// A server-sized node that knows `services` peers, each with a TCP port, built on a thread
/// with a large stack (the node is megabytes) and moved to the heap.
#[must_use]
pub fn node_knowing(services: usize) -> Box<BigNode> {
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || {
            let mut node = Box::new(
                BigNode::new(Config::reference(), HID, DefaultPolicy, 7, Instant::ZERO)
                    .expect("valid config"),
            );
            let mut buf = vec![0u8; BigNode::TRANSMIT_BUF];
            while node.poll_transmit(Instant::ZERO, &mut buf).is_some() {}
            for i in 0..services {
                let frame = join_heartbeat(&peer_sid(i), 40_000 + (i % 20_000) as u16);
                node.handle_datagram(Instant::from_millis(1), source(), &frame)
                    .expect("accepted");
            }
            node.handle_timeout(Instant::from_millis(2_000));
            while node.poll_event().is_some() {}
            while node
                .poll_transmit(Instant::from_millis(2_000), &mut buf)
                .is_some()
            {}
            assert_eq!(node.known(), services);
            node
        })
        .expect("thread")
        .join()
        .expect("node built")
}
