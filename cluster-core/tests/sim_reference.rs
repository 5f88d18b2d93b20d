//! Under `Config::reference()` the timers match the spec table (spec 5.17): heartbeat every
//! 110–140 s, ttl 600 s in whole seconds, ping 5 s after a failed send, expiry check 30 s
//! after a ping, ping answers staggered over up to 15 s.
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed, Trace};
use cluster_core::wire::{Message, MessageKind};
use cluster_core::{Config, Destination, Protocol, ProtocolList, SendRequest, Targets};

fn reference(seed: u64, n: usize) -> Cluster {
    let mut b = ClusterBuilder::new(seed);
    let host = b.host();
    b.nodes_on_host(host, n, &Config::reference());
    b.trace(true);
    let mut c: Cluster = b.build();
    c.run_until(|c| c.all_know_each_other(), 100_000)
        .expect_seed(seed);
    c
}

/// Times at which `node` broadcast a heartbeat.
fn heartbeats(c: &Cluster, node: usize) -> Vec<u64> {
    c.trace()
        .iter()
        .filter(|t| {
            matches!(t, Trace::Sent { from, dst: Destination::Group { send: None }, .. } if from.0 == node)
                && t.kind() == Some(MessageKind::Heartbeat)
        })
        .map(|t| t.at().as_millis())
        .collect()
}

fn failed_send_tcp_only(c: &mut Cluster, from: usize, to: &[usize]) {
    let sids: Vec<_> = to.iter().map(|&i| c.sid(i).unwrap()).collect();
    let tcp = [Protocol::Tcp];
    let request = SendRequest {
        protocols: Some(ProtocolList::new(&tcp)),
        broadcast: Some(false),
        ..SendRequest::new(Targets::services(&sids), b"x")
    };
    let now = c.now();
    c.node_mut(from).send(now, &request).unwrap();
}

#[test]
fn reference_profile_heartbeats_at_one_fixed_interval_between_110_and_140_seconds() {
    let mut intervals = Vec::new();
    for seed in sim::seeds(0..8) {
        let mut c = reference(seed, 3);
        c.run_for(Duration::from_secs(1000));
        for i in 0..3 {
            let drawn = c.node(i).unwrap().heartbeat_interval().as_millis() as u64;
            assert!((110_000..=140_000).contains(&drawn), "seed {seed}: {drawn}");
            let times = heartbeats(&c, i);
            assert!(times.len() >= 7, "seed {seed}: node {i}: {times:?}");
            for pair in times.windows(2) {
                assert_eq!(pair[1] - pair[0], drawn, "seed {seed}: node {i}: {times:?}");
            }
            intervals.push(drawn);
        }
    }
    intervals.sort_unstable();
    intervals.dedup();
    assert!(intervals.len() > 1, "every node drew the same interval");
}

#[test]
fn reference_profile_drops_a_silent_node_after_600_whole_seconds_at_a_full_heartbeat() {
    for seed in sim::seeds(0..8) {
        let mut c = reference(seed, 3);
        c.run_for(Duration::from_secs(10));
        let sid = c.sid(2).unwrap();
        let heard: Vec<u64> = (0..2)
            .map(|a| {
                let s = c.node(a).unwrap().service(sid.as_bytes()).unwrap();
                s.last_heard().as_millis()
            })
            .collect();
        c.crash(2);
        c.run_until(|c| c.lost_by_all(2).is_some(), 1_000_000)
            .expect_seed(seed);
        for (a, heard) in heard.into_iter().enumerate() {
            let lost = c.lost_at(a, &sid).unwrap().as_millis();
            let interval = c.node(a).unwrap().heartbeat_interval().as_millis() as u64;
            let age = lost - heard;
            // Expired means whole_secs(age) > 600, checked at this node's full heartbeats.
            assert!(
                age >= 601_000,
                "seed {seed}: node {a} dropped it at age {age} ms"
            );
            assert!(
                age < 601_000 + interval,
                "seed {seed}: node {a}: age {age} ms"
            );
            assert!(
                heartbeats(&c, a).contains(&lost),
                "seed {seed}: not at a heartbeat"
            );
        }
    }
}

#[test]
fn reference_profile_pings_5_s_after_a_failed_send_and_drops_the_target_30_s_later() {
    for seed in sim::seeds(0..8) {
        let mut c = reference(seed, 3);
        // Past the first ttl of the run: see `sim_failure.rs`,
        // `a_failed_send_in_the_first_ttl_after_the_epoch_still_reduces_the_ttl`.
        c.run_for(Duration::from_secs(700));
        let sid = c.sid(2).unwrap();
        c.crash(2);
        // Past the recently-seen guard (3 s).
        c.run_for(Duration::from_secs(5));
        failed_send_tcp_only(&mut c, 0, &[2]);
        c.run_until(|c| c.lost_by_all(2).is_some(), 1_000_000)
            .expect_seed(seed);
        let failed = c
            .trace()
            .iter()
            .find_map(|t| match t {
                Trace::Outcome { at, ok: false, .. } => Some(at.as_millis()),
                _ => None,
            })
            .expect("the send failed");
        let ping = c
            .trace()
            .iter()
            .find(|t| t.kind() == Some(MessageKind::Ping))
            .expect("a ping");
        let ping_at = ping.at().as_millis();
        assert_eq!(ping_at - failed, 5_000, "seed {seed}");
        let (msg, _) = Message::parse(ping.frame().unwrap()).unwrap();
        assert_eq!(msg.data.unwrap().as_bytes(), sid.as_bytes(), "seed {seed}");
        for a in 0..2 {
            let lost = c.lost_at(a, &sid).unwrap().as_millis();
            // The check 30 s after the ping; a full heartbeat of this node after
            // ping + 20 s (the reduced ttl of the others) may come first.
            assert!(
                lost <= ping_at + 30_000,
                "seed {seed}: node {a}: {lost} vs {ping_at}"
            );
            assert!(
                lost >= ping_at + 20_000,
                "seed {seed}: node {a}: {lost} vs {ping_at}"
            );
            if !heartbeats(&c, a).contains(&lost) {
                assert_eq!(lost, ping_at + 30_000, "seed {seed}: node {a}");
            }
        }
    }
}

#[test]
fn reference_profile_staggers_the_answers_to_a_ping_naming_two_nodes_over_up_to_15_s() {
    let mut delays = Vec::new();
    for seed in sim::seeds(0..12) {
        let mut c = reference(seed, 4);
        c.set_auto_refresh(false);
        c.run_for(Duration::from_secs(10));
        c.kill_listener(1);
        c.kill_listener(2);
        c.run_for(Duration::from_millis(10));
        failed_send_tcp_only(&mut c, 0, &[1, 2]);
        c.run_for(Duration::from_secs(20));
        let ping = c
            .trace()
            .iter()
            .find(|t| t.kind() == Some(MessageKind::Ping))
            .unwrap_or_else(|| panic!("seed {seed}: no ping"));
        let ping_at = ping.at().as_millis();
        let (msg, _) = Message::parse(ping.frame().unwrap()).unwrap();
        let named = msg
            .data
            .unwrap()
            .to_str()
            .unwrap()
            .split_whitespace()
            .count();
        assert_eq!(named, 2, "seed {seed}: {msg:?}");
        for i in [1, 2] {
            let answer = heartbeats(&c, i)
                .into_iter()
                .find(|&t| t >= ping_at)
                .unwrap_or_else(|| panic!("seed {seed}: node {i} never answered"));
            let delay = answer - ping_at;
            assert!(
                delay <= 15_000,
                "seed {seed}: node {i} answered after {delay} ms"
            );
            delays.push(delay);
        }
        // Everyone still knows everyone: the answers cleared the reduced ttls.
        c.run_for(Duration::from_secs(60));
        assert!(c.all_know_each_other(), "seed {seed}");
    }
    let spread = delays.iter().max().unwrap() - delays.iter().min().unwrap();
    assert!(spread > 5_000, "the stagger is not random: {delays:?}");
}
