//! Hosts, modes and partitions on the simulator: the local-only rule, remote mode,
//! partitions and healing.
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed};
use cluster_core::{Config, DatagramError, Event, LostReason};

#[test]
fn a_node_in_local_mode_ignores_nodes_on_other_hosts() {
    for seed in sim::seeds(0..16) {
        let mut b = ClusterBuilder::new(seed);
        let (h1, h2) = (b.host(), b.host());
        let local = Config::lan_fast();
        let mut remote = Config::lan_fast();
        remote.remote = true;
        let a = b.node(h1, remote.clone()); // remote, host 1
        let l1 = b.node(h1, local.clone()); // local, host 1
        let l2 = b.node(h2, local); // local, host 2
        let r2 = b.node(h2, remote); // remote, host 2
        let mut c: Cluster = b.build();
        c.run_for(Duration::from_secs(3));
        // Same host: everyone meets, whatever the mode.
        for (x, y) in [(a, l1), (l2, r2)] {
            assert!(c.knows(x, y) && c.knows(y, x), "seed {seed}: {x} and {y}");
        }
        // Remote nodes on two hosts meet (TTL 1 multicast, TCP between hosts).
        assert!(c.knows(a, r2) && c.knows(r2, a), "seed {seed}");
        // Local nodes never accept anything from another host, and their TTL-0 multicast
        // never leaves their host.
        for (x, y) in [(l1, l2), (l1, r2), (l2, a), (l2, l1)] {
            assert!(!c.knows(x, y), "seed {seed}: {x} knows {y}");
        }
        assert!(!c.knows(a, l2) && !c.knows(r2, l1), "seed {seed}");
        for x in [l1, l2] {
            let non_local = c
                .datagram_errors(x)
                .iter()
                .find(|(e, _)| *e == DatagramError::NonLocalSource)
                .map_or(0, |(_, n)| *n);
            assert!(non_local > 0, "seed {seed}: node {x} saw no foreign frame");
        }
        assert_eq!(c.node(l1).unwrap().known(), 1, "seed {seed}");
        assert_eq!(c.node(l2).unwrap().known(), 1, "seed {seed}");
        assert_eq!(c.node(a).unwrap().known(), 2, "seed {seed}");
        assert_eq!(c.node(r2).unwrap().known(), 2, "seed {seed}");
    }
}

#[test]
fn remote_mode_reaches_only_its_own_lan_segment_by_multicast() {
    for seed in sim::seeds(0..8) {
        let mut b = ClusterBuilder::new(seed);
        let mut remote = Config::lan_fast();
        remote.remote = true;
        let lan0 = [b.host_on_lan(0), b.host_on_lan(0)];
        let lan1 = [b.host_on_lan(1), b.host_on_lan(1)];
        for h in lan0.into_iter().chain(lan1) {
            b.node(h, remote.clone());
        }
        let mut c: Cluster = b.build();
        c.run_for(Duration::from_secs(3));
        assert!(c.knows(0, 1) && c.knows(1, 0) && c.knows(2, 3) && c.knows(3, 2));
        for (x, y) in [(0, 2), (0, 3), (1, 2), (3, 0)] {
            assert!(!c.knows(x, y), "seed {seed}: {x} knows {y} across segments");
        }
    }
}

fn partitioned_lan(seed: u64) -> Cluster {
    let mut config = Config::lan_fast();
    config.add_tag("app").unwrap();
    let mut b = ClusterBuilder::new(seed);
    b.nodes_one_per_host(8, &config);
    let mut c: Cluster = b.build();
    c.run_until(|c| c.all_know_each_other(), 100_000)
        .expect_seed(seed);
    c.run_for(Duration::from_millis(500));
    c
}

#[test]
fn a_partition_splits_the_cluster_and_healing_joins_it_again() {
    for seed in sim::seeds(0..16) {
        let mut c = partitioned_lan(seed);
        let (left, right) = ([0, 1, 2, 3], [4, 5, 6, 7]);
        let cut = c.now();
        c.partition(&[&left, &right]);
        let split = c
            .run_until(
                |c| {
                    left.iter()
                        .all(|&a| right.iter().all(|&b| !c.knows(a, b) && !c.knows(b, a)))
                },
                1_000_000,
            )
            .expect_seed(seed);
        // ttl + the longest heartbeat interval.
        assert!(
            split.as_millis() - cut.as_millis() <= 2610,
            "seed {seed}: {split:?}"
        );
        for side in [left, right] {
            for &a in &side {
                for &b in side.iter().filter(|&&b| b != a) {
                    assert!(c.knows(a, b), "seed {seed}: {a} lost {b} on its own side");
                }
                let lost: Vec<_> = c
                    .events(a)
                    .iter()
                    .filter_map(|e| match e.event {
                        Event::Lost { sid, reason } => Some((sid, reason)),
                        _ => None,
                    })
                    .collect();
                assert_eq!(lost.len(), 4, "seed {seed}: node {a}: {lost:?}");
                assert!(lost.iter().all(|(_, r)| *r == LostReason::Expired));
                assert_eq!(c.counters(a).events_dropped, 0, "seed {seed}: node {a}");
            }
        }
        let healed = c.now();
        c.heal();
        let joined = c
            .run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        // The next heartbeat of each node is enough.
        assert!(
            joined.as_millis() - healed.as_millis() <= 610,
            "seed {seed}: {joined:?}"
        );
    }
}

/// Node gap: a service re-learned from a periodic heartbeat (after a partition heals, or when
/// both join frames of a node were lost) has neither props nor tags, because periodic
/// heartbeats carry neither (spec 5.4) and nothing asks for them: its tags and TCP port stay
/// unknown until that node changes them.
#[test]
fn after_healing_every_node_knows_the_tags_and_port_of_the_other_side() {
    for seed in sim::seeds(0..8) {
        let mut c = partitioned_lan(seed);
        let (left, right) = ([0, 1, 2, 3], [4, 5, 6, 7]);
        c.partition(&[&left, &right]);
        c.run_until(
            |c| left.iter().all(|&a| right.iter().all(|&b| !c.knows(a, b))),
            1_000_000,
        )
        .expect_seed(seed);
        c.heal();
        c.run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        c.run_for(Duration::from_secs(5));
        for a in 0..8 {
            for b in (0..8).filter(|&b| b != a) {
                let sid = c.sid(b).unwrap();
                let s = c.node(a).unwrap().service(sid.as_bytes()).unwrap();
                assert!(
                    s.tags().iter().any(|t| t == "app"),
                    "seed {seed}: {a} sees {b} without tags"
                );
                assert_eq!(
                    s.tcp_port(),
                    c.net().listener(sim::EndpointId(b)),
                    "seed {seed}: {a} sees {b} without its port"
                );
            }
        }
    }
}
