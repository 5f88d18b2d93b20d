//! Bytes on the wire per data update (`Node::set_data`), counted exactly from the frames a
//! node sends: the heartbeat that carries an update (one multicast datagram, or several
//! 4096-byte ones for a large set), the digest every periodic heartbeat carries while data is
//! published. Then, on the simulator, what 64 `lan_fast` nodes send in 10 s starting with one
//! update, against 10 s without one, without loss and at 1% loss (where peers that missed the
//! update ask for it: a filtered discovery each, answered with the props).
//!
//! `cargo run --release -p cluster-benches --example data_bytes`

use std::time::Duration;

use cluster_benches::HID;
use cluster_core::sim::{Cluster, ClusterBuilder, LinkModel};
use cluster_core::wire::{Message, MessageKind};
use cluster_core::{Config, DefaultPolicy, Destination, Instant, Node};

type HostSized = Node<DefaultPolicy, 64, 8192>;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Every frame `node` sends now, with its kind and length.
fn drain(node: &mut HostSized, now: Instant) -> Vec<(MessageKind, usize, Destination)> {
    let mut buf = vec![0u8; HostSized::TRANSMIT_BUF];
    let mut out = Vec::new();
    while let Some(t) = node.poll_transmit(now, &mut buf) {
        let (m, _) = Message::parse(&buf[..t.len]).expect("frame");
        out.push((m.kind.expect("kind"), t.len, t.dst));
    }
    out
}

fn heartbeat_bytes(frames: &[(MessageKind, usize, Destination)]) -> usize {
    frames
        .iter()
        .filter(|(k, _, _)| *k == MessageKind::Heartbeat)
        .map(|(_, len, _)| len)
        .sum()
}

/// The frames of one update of `pairs`, and of the periodic heartbeat after it.
fn update(pairs: &[(&str, Vec<u8>)]) -> (usize, usize, usize) {
    let mut node = HostSized::new(Config::lan_fast(), HID, DefaultPolicy, 1, at(0)).unwrap();
    node.set_tcp_port(at(0), Some(41241));
    drain(&mut node, at(0));
    let next = node.poll_timeout().unwrap();
    node.handle_timeout(next);
    let plain = heartbeat_bytes(&drain(&mut node, next));
    let pairs: Vec<(&str, &[u8])> = pairs.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    node.set_data(next, &pairs).expect("set_data");
    node.handle_timeout(next);
    let carrying = heartbeat_bytes(&drain(&mut node, next));
    let later = node.poll_timeout().unwrap();
    node.handle_timeout(later);
    let digest = heartbeat_bytes(&drain(&mut node, later));
    (plain, carrying, digest)
}

fn pairs(count: usize, value_len: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| (format!("key{i:03}"), vec![b'v'; value_len]))
        .collect()
}

/// Bytes and frames sent in `window` by node 0, and by all the others.
fn sent(c: &mut Cluster<DefaultPolicy, 128, 8192>, window: Duration) -> [(u64, u64); 2] {
    c.reset_counters();
    c.run_for(window);
    let of = |i: usize| (c.counters(i).bytes_sent, c.counters(i).frames_sent);
    let others = (1..c.len())
        .map(of)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    [of(0), others]
}

/// 64 `lan_fast` nodes at `loss`: what is sent in 10 s without an update, then in the 10 s
/// starting with one update of 10 pairs by node 0.
fn cluster(loss: f64) {
    let mut b = ClusterBuilder::new(7);
    b.lan(LinkModel::lan().with_loss(loss));
    b.nodes_one_per_host(64, &Config::lan_fast());
    b.log_events(false);
    let mut c: Cluster<DefaultPolicy, 128, 8192> = b.build();
    c.run_until(|c| c.all_know_each_other(), 10_000_000)
        .expect("converged");
    c.run_for(Duration::from_secs(5));
    let window = Duration::from_secs(10);
    let [quiet0, quiet] = sent(&mut c, window);
    let owned = pairs(10, 32);
    let refs: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let now = c.now();
    c.node_mut(0).set_data(now, &refs).expect("set_data");
    let [busy0, busy] = sent(&mut c, window);
    println!(
        "| {:.0}% | {} B in {} frames | {} B in {} frames | {} B in {} frames | {} B in {} frames |",
        loss * 100.0,
        quiet0.0,
        quiet0.1,
        busy0.0,
        busy0.1,
        quiet.0,
        quiet.1,
        busy.0,
        busy.1
    );
}

fn main() {
    println!(
        "| data published | periodic heartbeat before | heartbeat carrying the update | periodic heartbeat after (digest) |"
    );
    println!("| --- | ---: | ---: | ---: |");
    for (label, count, len) in [
        ("1 pair, 8-byte value", 1, 8),
        ("10 pairs, 32-byte values", 10, 32),
        ("4 KiB: 64 pairs, 56-byte values", 64, 56),
    ] {
        let owned = pairs(count, len);
        let refs: Vec<(&str, Vec<u8>)> =
            owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let (plain, carrying, digest) = update(&refs);
        println!("| {label} | {plain} B | {carrying} B | {digest} B |");
    }

    println!();
    println!(
        "64 nodes, lan_fast, 10 s windows: without an update, then starting with one update of 10 pairs by node 0"
    );
    println!();
    println!(
        "| loss | node 0, quiet | node 0, with the update | the 63 others, quiet | the 63 others, with the update |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for loss in [0.0, 0.01] {
        cluster(loss);
    }
}
