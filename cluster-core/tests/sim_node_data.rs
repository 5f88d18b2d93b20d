//! Per-node data (`Node::set_data`) on the simulator: an update reaches every node within one
//! heartbeat period on `lan_fast`, and every node ends up with the latest version under loss.
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed, LinkModel};
use cluster_core::wire::tcl_list;
use cluster_core::{Config, Event};

type Big = Cluster<cluster_core::DefaultPolicy, 128, 8192>;

fn cluster(seed: u64, n: usize, loss: f64) -> Big {
    let mut b = ClusterBuilder::new(seed);
    b.lan(LinkModel::lan().with_loss(loss));
    b.nodes_one_per_host(n, &Config::lan_fast());
    b.join_within(Duration::from_millis(300));
    b.build()
}

/// True when every up node but `from` has seen `from`'s data at `version`.
fn everyone_has(c: &Big, from: usize, version: u16) -> bool {
    let sid = c.sid(from).unwrap();
    c.up_nodes().into_iter().filter(|&i| i != from).all(|i| {
        c.node(i)
            .and_then(|n| n.service(sid.as_bytes()))
            .is_some_and(|s| s.data_version() == version)
    })
}

/// The pairs of the last `DataChanged` node `at` saw from `from`.
fn last_data(c: &Big, at: usize, from: usize) -> Option<(u16, Vec<(String, String)>)> {
    let sid = c.sid(from).unwrap();
    c.events(at).iter().rev().find_map(|e| match &e.event {
        Event::DataChanged {
            sid: s,
            version,
            data,
        } if *s == sid => {
            let text = data.data_str().unwrap();
            let pairs_text = tcl_list::dict_get(text, "data")
                .unwrap()
                .unwrap()
                .to_string();
            let pairs = tcl_list::dict_pairs(&pairs_text)
                .map(|p| {
                    let (k, v) = p.unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
            Some((*version, pairs))
        }
        _ => None,
    })
}

#[test]
fn an_update_reaches_all_64_nodes_within_one_heartbeat_period() {
    let period = Config::lan_fast().heartbeat_max;
    for seed in sim::seeds(0..4) {
        let mut c = cluster(seed, 64, 0.0);
        c.run_until(|c| c.all_know_each_other(), 10_000_000)
            .expect_seed(seed);
        let pairs: [(&str, &[u8]); 2] = [("region", b"eu west"), ("rack", b"7")];
        let start = c.now();
        let version = c.node_mut(0).set_data(start, &pairs).expect_seed(seed);
        assert_eq!(version, 1);
        let seen = c
            .run_until(|c| everyone_has(c, 0, 1), 10_000_000)
            .expect_seed(seed);
        let took = seen.saturating_duration_since(start);
        assert!(took <= period, "seed {seed}: {took:?} > {period:?}");
        // Every node read the same pairs, once.
        for i in 1..64 {
            let (v, pairs) = last_data(&c, i, 0).unwrap();
            assert_eq!(v, 1, "seed {seed}");
            assert_eq!(
                pairs,
                [
                    ("region".to_owned(), "eu west".to_owned()),
                    ("rack".to_owned(), "7".to_owned())
                ],
                "seed {seed}"
            );
        }
        // A second update replaces the first as a whole.
        let start = c.now();
        let version = c
            .node_mut(0)
            .set_data(start, &[("region", b"us")])
            .expect_seed(seed);
        assert_eq!(version, 2);
        let seen = c
            .run_until(|c| everyone_has(c, 0, 2), 10_000_000)
            .expect_seed(seed);
        assert!(
            seen.saturating_duration_since(start) <= period,
            "seed {seed}"
        );
        let (_, pairs) = last_data(&c, 33, 0).unwrap();
        assert_eq!(pairs, [("region".to_owned(), "us".to_owned())]);
    }
}

#[test]
fn at_one_percent_loss_every_node_ends_up_with_the_latest_version() {
    for seed in sim::seeds(0..4) {
        let mut c = cluster(seed, 64, 0.01);
        c.run_until(|c| c.all_know_each_other(), 10_000_000)
            .expect_seed(seed);
        // Several nodes publish, several times, quickly.
        let mut versions = Vec::new();
        for round in 0..3u8 {
            for from in [0, 21, 42] {
                let now = c.now();
                let value = [b'a' + round; 40];
                let version = c
                    .node_mut(from)
                    .set_data(now, &[("round", &value), ("blob", &[round, 0xff])])
                    .expect_seed(seed);
                versions.push((from, version));
            }
            c.run_for(Duration::from_millis(100));
        }
        c.run_until(
            |c| [0, 21, 42].iter().all(|&from| everyone_has(c, from, 3)),
            10_000_000,
        )
        .expect_seed(seed);
        assert!(c.net().stats().datagrams_lost > 0, "seed {seed}: no loss");
        // Versions only went forward at every node.
        for i in c.up_nodes() {
            for from in [0, 21, 42] {
                let sid = c.sid(from).unwrap();
                let seen: Vec<u16> = c
                    .events(i)
                    .iter()
                    .filter_map(|e| match &e.event {
                        Event::DataChanged {
                            sid: s, version, ..
                        } if *s == sid => Some(*version),
                        _ => None,
                    })
                    .collect();
                assert!(
                    seen.windows(2).all(|w| w[0] < w[1]),
                    "seed {seed}: {seen:?}"
                );
            }
        }
    }
}

#[test]
fn a_node_that_missed_an_update_catches_up_from_the_next_periodic_heartbeat() {
    let period = Config::lan_fast().heartbeat_max;
    for seed in sim::seeds(0..8) {
        let mut c = cluster(seed, 4, 0.0);
        c.run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        // Node 3 is cut off while node 0 publishes (shorter than the ttl: nobody expires).
        c.partition(&[&[0, 1, 2], &[3]]);
        let now = c.now();
        c.node_mut(0)
            .set_data(now, &[("k", b"v")])
            .expect_seed(seed);
        c.run_for(Duration::from_millis(50));
        let sid = c.sid(0).unwrap();
        let version_at_3 = |c: &Big| {
            c.node(3)
                .and_then(|n| n.service(sid.as_bytes()))
                .map(|s| s.data_version())
        };
        assert_eq!(version_at_3(&c), Some(0), "seed {seed}: node 3 missed it");
        c.heal();
        let healed = c.now();
        let seen = c
            .run_until(|c| version_at_3(c) == Some(1), 1_000_000)
            .expect_seed(seed);
        // The next periodic heartbeat carries the digest; node 3 asks and is answered.
        assert!(
            seen.saturating_duration_since(healed) <= period + Duration::from_millis(50),
            "seed {seed}: {:?}",
            seen.saturating_duration_since(healed)
        );
        assert!(c.all_know_each_other(), "seed {seed}");
    }
}
