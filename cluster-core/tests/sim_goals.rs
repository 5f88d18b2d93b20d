//! The goals for `Config::lan_fast()`, measured on a simulated LAN of 64 nodes
//! (one per host, 1–2 ms one-way delay). Virtual time is deterministic, so the simulated
//! durations are asserted; the figures are printed (`--nocapture` to see them).
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed, LinkModel};
use cluster_core::{Config, Event, QueryEvent, QueryRequest, Resolver, Targets};

const NODES: usize = 64;

fn lan(seed: u64, loss: f64) -> Cluster {
    let mut b = ClusterBuilder::new(seed);
    b.lan(LinkModel::lan().with_loss(loss));
    b.nodes_one_per_host(NODES, &Config::lan_fast());
    b.join_within(Duration::from_secs(1));
    b.build()
}

fn converged(seed: u64) -> Cluster {
    let mut c = lan(seed, 0.0);
    c.run_until(|c| c.all_know_each_other(), 10_000_000)
        .expect_seed(seed);
    c
}

fn report(goal: &str, unit: &str, over: &str, values: &mut [u64]) -> (u64, u64) {
    let p50 = sim::percentile(values, 50);
    let p99 = sim::percentile(values, 99);
    let max = values.iter().copied().max().unwrap_or(0);
    eprintln!(
        "goal {goal}: p50 {p50} {unit}, p99 {p99} {unit}, max {max} {unit} (over {} {over})",
        values.len()
    );
    (p99, max)
}

#[test]
fn goal_every_node_knows_every_other_within_250_ms_of_the_last_join() {
    let mut took = Vec::new();
    for seed in sim::seeds(0..20) {
        let mut c = lan(seed, 0.0);
        let at = c
            .run_until(|c| c.all_know_each_other(), 10_000_000)
            .expect_seed(seed);
        let last = c.last_join().unwrap();
        took.push(at.as_millis() - last.as_millis());
        assert!(
            at.as_millis() - last.as_millis() <= 250,
            "seed {seed}: {at:?} vs {last:?}"
        );
    }
    let (_, max) = report(
        "join (64 nodes, last join -> all know all)",
        "ms",
        "seeds",
        &mut took,
    );
    assert!(max <= 250);
}

#[test]
fn goal_a_crash_is_dropped_by_all_within_5_s() {
    let mut took = Vec::new();
    for seed in sim::seeds(0..20) {
        let mut c = converged(seed);
        c.run_for(Duration::from_millis(1000 + seed * 37));
        let victim = (seed as usize * 7) % NODES;
        let crashed = c.now();
        c.crash(victim);
        let all = c
            .run_until(|c| c.lost_by_all(victim).is_some(), 10_000_000)
            .expect_seed(seed);
        took.push(all.as_millis() - crashed.as_millis());
    }
    let (p99, _) = report(
        "crash (silent, no traffic to it) -> dropped by all 63",
        "ms",
        "seeds",
        &mut took,
    );
    assert!(p99 <= 5000);
}

#[test]
fn goal_a_leave_is_dropped_by_all_within_250_ms() {
    let mut took = Vec::new();
    for seed in sim::seeds(0..20) {
        let mut c = converged(seed);
        c.run_for(Duration::from_millis(500));
        let leaver = (seed as usize * 11) % NODES;
        let left = c.now();
        c.leave(leaver);
        let all = c
            .run_until(|c| c.lost_by_all(leaver).is_some(), 10_000_000)
            .expect_seed(seed);
        took.push(all.as_millis() - left.as_millis());
    }
    let (_, max) = report("leave -> dropped by all 63", "ms", "seeds", &mut took);
    assert!(max <= 250);
}

#[test]
fn goal_no_healthy_node_is_ever_dropped_at_one_percent_loss_over_60_s() {
    let mut unknown_ports = 0;
    let mut records = 0;
    for seed in sim::seeds(0..3) {
        let mut c = lan(seed, 0.01);
        c.run_until(|c| c.all_know_each_other(), 10_000_000)
            .expect_seed(seed);
        c.reset_counters();
        c.run_for(Duration::from_secs(60));
        let lost: usize = (0..NODES)
            .map(|i| {
                c.events(i)
                    .iter()
                    .filter(|e| matches!(e.event, Event::Lost { .. }))
                    .count()
            })
            .sum();
        assert_eq!(lost, 0, "seed {seed}: healthy nodes were dropped");
        assert!(c.all_know_each_other(), "seed {seed}");
        let stats = c.net().stats();
        let rate: f64 = (0..NODES).map(|i| c.bytes_per_sec(i)).sum::<f64>() / NODES as f64;
        eprintln!(
            "goal 1% loss, seed {seed}: 60 s, {} of {} datagrams lost, 0 healthy nodes dropped, \
             {rate:.0} bytes/s sent per node",
            stats.datagrams_lost,
            stats.datagrams_scheduled + stats.datagrams_lost
        );
        for a in 0..NODES {
            for s in c.node(a).unwrap().services() {
                records += 1;
                if s.tcp_port().is_none() {
                    unknown_ports += 1;
                }
            }
        }
    }
    eprintln!(
        "note 1% loss: {unknown_ports} of {records} service records never learned a TCP port \
         (a lost discovery is never answered, and periodic heartbeats carry no props; see \
         sim_topology.rs, after_healing_every_node_knows_the_tags_and_port_of_the_other_side)"
    );
}

#[test]
fn goal_a_query_to_all_64_completes_within_100_ms() {
    let mut took = Vec::new();
    for seed in sim::seeds(0..20) {
        let mut c = converged(seed);
        c.run_for(Duration::from_millis(300));
        let asker = seed as usize % NODES;
        let start = c.now();
        let everyone = Resolver::resolve(&[]);
        c.node_mut(asker)
            .query(
                start,
                &QueryRequest::new(Targets::resolve(&everyone), b"status"),
            )
            .expect_seed(seed);
        let done = c
            .run_until(
                |c| {
                    c.first_event_after(asker, start, |e| {
                        matches!(e, Event::Query(QueryEvent::Done { .. }))
                    })
                    .is_some()
                },
                10_000_000,
            )
            .expect_seed(seed);
        let answered = c.events(asker).iter().find_map(|e| match e.event {
            Event::Query(QueryEvent::Done {
                answered, missing, ..
            }) => Some((answered, missing)),
            _ => None,
        });
        assert_eq!(answered, Some((63, 0)), "seed {seed}");
        took.push(done.as_millis() - start.as_millis());
    }
    let (_, max) = report("query to all 63 others -> done", "ms", "seeds", &mut took);
    assert!(max <= 100);
}

#[test]
fn steady_state_traffic_of_a_quiet_cluster() {
    let seed = sim::seeds(0..1)[0];
    let mut c = converged(seed);
    c.run_for(Duration::from_secs(2));
    c.reset_counters();
    c.run_for(Duration::from_secs(10));
    let mut rates: Vec<u64> = (0..NODES).map(|i| c.bytes_per_sec(i) as u64).collect();
    report(
        "steady state (64 nodes, no application traffic), sent per node",
        "bytes/s",
        "nodes",
        &mut rates,
    );
    let max = rates.iter().copied().max().unwrap();
    // A periodic heartbeat is about 60 bytes, sent every 400-600 ms.
    assert!(max <= 300, "seed {seed}: {max} bytes/s");
}
