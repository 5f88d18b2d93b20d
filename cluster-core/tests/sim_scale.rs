//! One run of a thousand nodes on one LAN.
//!
//! About 40 s in a debug build on one core (the nodes' per-frame work dominates: every node
//! handles about 1,500 frames to converge, each a linear scan of a registry of up to 1,000
//! services); a few seconds with `--release`.
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::Config;
use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed};

#[test]
fn a_thousand_nodes_joining_within_300_ms_discover_each_other() {
    for seed in sim::seeds(0..1) {
        let mut b = ClusterBuilder::new(seed);
        b.nodes_one_per_host(1000, &Config::lan_fast());
        // Within one heartbeat interval: the convergence is all join frames and discovery
        // answers (half a million TCP answers), with few periodic heartbeats.
        b.join_within(Duration::from_millis(300));
        // A thousand nodes would log a million `Discovered` events.
        b.log_events(false);
        let mut c: Cluster<_, 1024, 512> = b.build();
        let at = c
            .run_until(|c| c.all_know_each_other(), 50_000_000)
            .expect_seed(seed);
        let last = c.last_join().unwrap();
        eprintln!(
            "1000 nodes (seed {seed}): last join at {} ms, everyone knows everyone at {} ms \
             ({} ms later), {} steps",
            last.as_millis(),
            at.as_millis(),
            at.as_millis() - last.as_millis(),
            c.steps()
        );
        assert!(at.as_millis() - last.as_millis() <= 250, "seed {seed}");
        for i in 0..1000 {
            let counters = c.counters(i);
            assert_eq!(counters.datagram_errors, 0, "seed {seed}: node {i}");
            let stats = c.node(i).unwrap().stats();
            assert_eq!(stats.services_rejected, 0, "seed {seed}: node {i}");
            assert_eq!(stats.sends_rejected, 0, "seed {seed}: node {i}");
        }
        assert_eq!(c.timer_stalls(), 0, "seed {seed}");
    }
}
