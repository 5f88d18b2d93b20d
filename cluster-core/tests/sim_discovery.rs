//! Join and discovery on the simulator: small and medium clusters, props and tags carried
//! by the join frames, restarts under a new sid.
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed};
use cluster_core::{Config, Event};

#[test]
fn three_nodes_on_one_host_discover_each_other() {
    for seed in sim::seeds(0..32) {
        let mut c = Cluster::new(seed, 3, Config::lan_fast());
        let at = c
            .run_until(|c| c.all_know_each_other(), 10_000)
            .expect_seed(seed);
        assert!(at.as_millis() <= 50, "seed {seed}: converged at {at:?}");
        for i in 0..3 {
            assert_eq!(c.datagram_errors(i), &[], "seed {seed}: node {i}");
        }
        assert_eq!(c.timer_stalls(), 0, "seed {seed}");
    }
}

#[test]
fn sixty_four_nodes_joining_within_a_second_discover_each_other() {
    for seed in sim::seeds(0..8) {
        let mut b = ClusterBuilder::new(seed);
        b.nodes_one_per_host(64, &Config::lan_fast());
        b.join_within(Duration::from_secs(1));
        let mut c: Cluster = b.build();
        let at = c
            .run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        let last = c.last_join().expect("everyone joined");
        assert!(at >= last, "seed {seed}");
        assert!(
            at.as_millis() - last.as_millis() <= 250,
            "seed {seed}: {at:?} vs {last:?}"
        );
        // Each node announced each other node exactly once.
        for i in 0..64 {
            let discovered = c
                .events(i)
                .iter()
                .filter(|e| matches!(e.event, Event::Discovered { .. }))
                .count();
            assert_eq!(discovered, 63, "seed {seed}: node {i}");
            assert_eq!(c.counters(i).events_dropped, 0, "seed {seed}: node {i}");
        }
        assert_eq!(c.timer_stalls(), 0, "seed {seed}");
    }
}

#[test]
fn discovered_services_carry_their_tcp_port_and_tags() {
    for seed in sim::seeds(0..16) {
        let mut b = ClusterBuilder::new(seed);
        let mut config = Config::lan_fast();
        config.add_tag("web").unwrap();
        let host = b.host();
        b.nodes_on_host(host, 4, &config);
        let mut c: Cluster = b.build();
        c.run_until(|c| c.all_know_each_other(), 10_000)
            .expect_seed(seed);
        for a in 0..4 {
            for b in (0..4).filter(|&b| b != a) {
                let sid = c.sid(b).unwrap();
                let service = c.node(a).unwrap().service(sid.as_bytes()).unwrap();
                let port = c.net().listener(sim::EndpointId(b));
                assert_eq!(service.tcp_port(), port, "seed {seed}: {a} sees {b}");
                assert!(service.tags().iter().any(|t| t == "web"), "seed {seed}");
                assert!(service.is_local(), "seed {seed}");
            }
        }
    }
}

#[test]
fn a_restarted_node_is_rediscovered_under_a_new_sid_and_its_old_sid_expires() {
    for seed in sim::seeds(0..16) {
        let mut c = Cluster::new(seed, 4, Config::lan_fast());
        c.run_until(|c| c.all_know_each_other(), 10_000)
            .expect_seed(seed);
        c.run_for(Duration::from_millis(300));
        c.crash(3);
        let old = c.sid(3).unwrap();
        c.run_for(Duration::from_millis(100));
        c.restart(3);
        let new = c.sid(3).unwrap();
        assert_ne!(old, new, "seed {seed}");
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        c.run_until(
            |c| (0..3).all(|a| c.node(a).unwrap().service(old.as_bytes()).is_none()),
            100_000,
        )
        .expect_seed(seed);
        assert!(c.all_know_each_other(), "seed {seed}");
        for a in 0..3 {
            assert!(
                c.lost_at(a, &old).is_some(),
                "seed {seed}: {a} never lost the old sid"
            );
        }
    }
}

#[test]
fn the_same_seed_replays_the_same_run_exactly() {
    fn run(seed: u64) -> (Vec<(u64, usize, String)>, sim::NetStats, u64) {
        let mut b = ClusterBuilder::new(seed);
        b.lan(sim::LinkModel::lan().with_loss(0.05).with_chaos(0.05, 0.1));
        b.nodes_one_per_host(10, &Config::lan_fast());
        b.join_within(Duration::from_millis(500));
        let mut c: Cluster = b.build();
        c.run_for(Duration::from_secs(3));
        c.crash(3);
        c.run_for(Duration::from_secs(3));
        let mut log = Vec::new();
        for i in 0..10 {
            for e in c.events(i) {
                log.push((e.at.as_millis(), i, format!("{:?}", e.event)));
            }
        }
        (log, c.net().stats(), c.steps())
    }
    for seed in sim::seeds(0..4) {
        let first = run(seed);
        assert!(!first.0.is_empty());
        assert_eq!(first, run(seed), "seed {seed}");
        assert_ne!(first, run(seed + 1000), "seed {seed}");
    }
}
