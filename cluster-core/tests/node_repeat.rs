//! The short path of repeated periodic heartbeats (feature `heartbeat-fast-path`) has exactly
//! the effects of the full receive pipeline: two nodes, one whose policy lets it take the
//! short path and one whose policy makes it see every frame, get the same pseudo-random mix
//! of inputs (repeated and changed heartbeats, join frames, pings, disconnects, frames split
//! over datagrams, copies over TCP, from other addresses and hosts, timeouts), and after every
//! input send the same frames, report the same events and deadlines, and hold the same
//! services and counters. And after an input the node calls quiet, before its deadline, it
//! has no frame, no event and the same deadline (what lets the simulator skip driving it).
#![cfg(feature = "heartbeat-fast-path")]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::{Config, ConnId, DefaultPolicy, Instant, Node, Policy, Service, Source, Stats};
use common::node::{HID, encode_json, peer_heartbeat};

/// A policy with every hook at its default, which says the hooks see every frame: its node
/// never takes the short path.
#[derive(Debug, Clone, Copy, Default)]
struct SeesEveryFrame;

impl Policy for SeesEveryFrame {}

type Fast = Node<DefaultPolicy, 32, 512>;
type Full = Node<SeesEveryFrame, 32, 512>;

const PEERS: usize = 6;

/// A small deterministic generator (xorshift64*), so that every run draws the same script.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn sid(peer: usize) -> String {
    format!("PEER{peer:04}")
}

fn addr(host: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)), 23000)
}

fn periodic(peer: usize, known: u64) -> Vec<u8> {
    encode_json(&serde_json::json!([
        ["sid", sid(peer)],
        ["hid", HID],
        ["type", 1],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["known", known]
    ]))
}

fn join(peer: usize, kind: u64) -> Vec<u8> {
    peer_heartbeat(kind, &sid(peer))
}

fn ping(from: usize, named: &[usize]) -> Vec<u8> {
    let names: Vec<String> = named.iter().map(|p| sid(*p)).collect();
    encode_json(&serde_json::json!([
        ["sid", sid(from)],
        ["hid", HID],
        ["type", 3],
        ["channel", 0],
        ["protocols", ["c"]],
        ["data", names.join(" ")],
        ["known", 2]
    ]))
}

fn disconnect(peer: usize) -> Vec<u8> {
    encode_json(&serde_json::json!([
        ["sid", sid(peer)],
        ["hid", HID],
        ["type", 0],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["known", 0],
        ["tags", []]
    ]))
}

/// Everything observable of a node after an input, its counters without the short path's.
#[derive(Debug, PartialEq)]
struct Seen {
    transmits: Vec<(String, Vec<u8>)>,
    events: Vec<String>,
    timeout: Option<Instant>,
    services: Vec<Service>,
    stats: Stats,
    stream: String,
}

fn observe<P: Policy>(node: &mut Node<P, 32, 512>, now: Instant) -> (Seen, u64) {
    let mut buf = vec![0u8; Fast::TRANSMIT_BUF];
    let mut transmits = Vec::new();
    while let Some(t) = node.poll_transmit(now, &mut buf) {
        transmits.push((format!("{:?}", t.dst), buf[..t.len].to_vec()));
    }
    let events = std::iter::from_fn(|| node.poll_event())
        .map(|e| format!("{e:?}"))
        .collect();
    let mut stats = node.stats();
    let repeated = core::mem::take(&mut stats.heartbeats_repeated);
    let seen = Seen {
        transmits,
        events,
        timeout: node.poll_timeout(),
        services: node.services().cloned().collect(),
        stats,
        stream: format!("{:?}", node.stream_stats()),
    };
    (seen, repeated)
}

/// One input, drawn: the bytes and where they come from, or `None` for a timeout.
/// In local mode (`remote` false) most frames come from this host, as they would.
fn draw_input(
    draw: &mut Draw,
    known: &mut [u64; PEERS],
    remote: bool,
) -> Option<(Source, Vec<u8>)> {
    let peer = draw.below(PEERS as u64) as usize;
    // Most peers sit on their own host; sometimes a copy comes from elsewhere.
    let host = if draw.below(20) == 0 {
        99
    } else {
        10 + peer as u8
    };
    let local = if remote {
        draw.below(25) == 0
    } else {
        draw.below(10) != 0
    };
    let multicast = Source::multicast(addr(host), local);
    let roll = draw.below(100);
    let (source, bytes) = match roll {
        0..=59 => {
            if draw.below(15) == 0 {
                known[peer] = draw.below(3);
            }
            (multicast, periodic(peer, known[peer]))
        }
        60..=66 => (multicast, join(peer, 1 + draw.below(2))),
        67..=69 => {
            let other = (peer + 1 + draw.below(PEERS as u64 - 1) as usize) % PEERS;
            (multicast, ping(peer, &[other, (other + 1) % PEERS]))
        }
        70..=71 => (multicast, disconnect(peer)),
        72..=75 => {
            // The same periodic heartbeat over a TCP connection.
            let conn = ConnId(draw.below(4) as u32);
            (
                Source::tcp(conn, addr(host), local),
                periodic(peer, known[peer]),
            )
        }
        76 => {
            // Half a heartbeat: the next datagram from that address continues it.
            let mut bytes = periodic(peer, known[peer]);
            bytes.truncate(bytes.len() / 2);
            (multicast, bytes)
        }
        77..=78 => (multicast, b"\xc0\x8d\x05garbage".to_vec()),
        _ => return None,
    };
    Some((source, bytes))
}

/// Short paths taken, and quiet inputs checked.
fn run(seed: u64, remote: bool) -> (u64, u64) {
    let mut config = Config::lan_fast();
    config.remote = remote;
    let start = Instant::from_millis(0);
    let mut fast = Fast::new(config.clone(), HID, DefaultPolicy, seed, start).unwrap();
    let mut full = Full::new(config, HID, SeesEveryFrame, seed, start).unwrap();
    let mut draw = Draw(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut known = [1; PEERS];
    let mut now = start;
    let mut repeated = 0;
    let mut quiet = 0;
    let mut deadline = None;
    for step in 0..20_000 {
        // Quiet spells long enough for services to expire now and then.
        let gap = if draw.below(200) == 0 {
            3_000
        } else {
            draw.below(40)
        };
        now = now.saturating_add_millis(gap);
        let mut quiet_now = false;
        match draw_input(&mut draw, &mut known, remote) {
            Some((source, bytes)) => {
                let a = fast.handle_datagram(now, source, &bytes);
                let b = full.handle_datagram(now, source, &bytes);
                assert_eq!(a, b, "seed {seed} step {step}");
                quiet_now = fast.last_datagram_was_quiet();
            }
            None => {
                fast.handle_timeout(now);
                full.handle_timeout(now);
            }
        }
        let (a, hits) = observe(&mut fast, now);
        if quiet_now && deadline.is_none_or(|at| now < at) {
            quiet += 1;
            let nothing = (a.transmits.is_empty(), a.events.is_empty(), a.timeout);
            assert_eq!(nothing, (true, true, deadline), "seed {seed} step {step}");
        }
        deadline = a.timeout;
        let (b, none) = observe(&mut full, now);
        assert_eq!(a, b, "seed {seed}, remote {remote}, step {step}");
        assert_eq!(
            none, 0,
            "the node whose policy sees every frame took the short path"
        );
        repeated = hits;
    }
    (repeated, quiet)
}

#[test]
fn a_repeated_heartbeat_has_the_effects_of_the_full_pipeline() {
    for seed in 1..=4 {
        for remote in [true, false] {
            let (repeated, quiet) = run(seed, remote);
            // The short path was taken often, or the comparison proves nothing.
            eprintln!("seed {seed}, remote {remote}: {repeated} short paths, {quiet} quiet");
            assert!(
                repeated > 2_000 && quiet > 500,
                "seed {seed}, remote {remote}: only {repeated} short paths, {quiet} quiet"
            );
        }
    }
}
