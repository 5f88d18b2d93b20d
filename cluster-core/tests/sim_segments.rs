//! Membership across routed segments with no multicast between them (issue 17): seeds,
//! push-pull exchanges, unicast beats, loss detection, and partitions that heal.
//!
//! `cargo test -p cluster-core --test sim_segments`; the 1,000-node run is ignored by
//! default: `cargo test --release -p cluster-core --test sim_segments -- --ignored`.

use cluster_core::membership::{MemberEvent, MemberState, MembershipConfig};
use cluster_core::sim::{self, SegmentLinks, SegmentSim, percentile};

/// `n` nodes over `segments` segments, node `s` (for `s < segments`) first on segment `s`
/// and the first three of them the seeds of everyone; joins spread over `spread_ms`.
fn build(seed: u64, n: usize, segments: u32, links: SegmentLinks, spread_ms: u64) -> SegmentSim {
    let mut sim = SegmentSim::new(seed, links, MembershipConfig::default());
    let seeds: Vec<usize> = (0..segments.min(3) as usize).collect();
    let step = spread_ms / n as u64;
    for i in 0..n {
        let segment = (i % segments as usize) as u32;
        let mine: Vec<usize> = seeds.iter().copied().filter(|&s| s < i).collect();
        sim.add_node(segment, &mine);
        sim.run_for(step);
    }
    sim
}

fn lost_events_after(sim: &SegmentSim, from: u64) -> Vec<(u64, usize, MemberEvent)> {
    sim.log()
        .iter()
        .filter(|e| e.at.as_millis() >= from && matches!(e.event, MemberEvent::Lost(_)))
        .map(|e| (e.at.as_millis(), e.node, e.event))
        .collect()
}

#[test]
fn sixty_four_nodes_over_three_segments_converge_and_see_crashes_within_5_s_p99() {
    let mut delays = Vec::new();
    for seed in sim::seeds(0..3) {
        let mut sim = build(seed, 64, 3, SegmentLinks::default(), 2_000);
        assert!(
            sim.run_until(20_000, SegmentSim::converged),
            "seed {seed}: no convergence"
        );
        // Crash one node on each segment, at different phases of the beats.
        for victim in [10, 23, 45] {
            let at = sim.now().as_millis();
            let sid = *sim.membership(victim).me();
            sim.crash(victim);
            assert!(
                sim.run_until(10_000, SegmentSim::converged),
                "seed {seed}: crash of {victim} not seen by all"
            );
            for node in (0..sim.len()).filter(|&i| sim.is_up(i)) {
                let seen = sim
                    .log()
                    .iter()
                    .find(|e| {
                        e.node == node
                            && e.at.as_millis() >= at
                            && e.event == MemberEvent::Lost(sid.sid)
                    })
                    .unwrap_or_else(|| panic!("seed {seed}: {node} never lost {victim}"));
                delays.push(seen.at.as_millis() - at);
            }
            sim.run_for(377);
        }
    }
    let p99 = percentile(&mut delays, 99);
    let max = *delays.iter().max().unwrap();
    println!(
        "crash detection across segments: p99 {p99} ms, max {max} ms, {} observations",
        delays.len()
    );
    assert!(p99 <= 5_000, "p99 {p99} ms");
}

#[test]
fn one_percent_loss_for_60_s_gives_no_false_loss() {
    for seed in sim::seeds(0..2) {
        let links = SegmentLinks {
            loss: 0.01,
            ..SegmentLinks::default()
        };
        let mut sim = build(seed, 64, 3, links, 2_000);
        assert!(sim.run_until(30_000, SegmentSim::converged), "seed {seed}");
        let from = sim.now().as_millis();
        sim.run_for(60_000);
        let lost = lost_events_after(&sim, from);
        assert!(lost.is_empty(), "seed {seed}: false losses {lost:?}");
        assert!(sim.converged(), "seed {seed}");
    }
}

#[test]
fn a_partition_is_detected_and_merges_back_within_10_s_of_healing() {
    for seed in sim::seeds(0..3) {
        let mut sim = build(seed, 30, 3, SegmentLinks::default(), 1_000);
        assert!(sim.run_until(20_000, SegmentSim::converged), "seed {seed}");
        sim.partition(&[&[0], &[1, 2]]);
        sim.run_for(30_000);
        // Each side has lost the other (and only the other).
        for node in 0..sim.len() {
            let mine = sim.segment_of(node) == 0;
            for m in sim.membership(node).members() {
                let index: usize = m.entry.sid.as_str().unwrap()[1..].parse().unwrap();
                let same_side = (sim.segment_of(index) == 0) == mine;
                let expected = if same_side {
                    MemberState::Alive
                } else {
                    MemberState::Lost
                };
                assert_eq!(m.state, expected, "seed {seed}: {node} about {index}");
            }
        }
        sim.heal();
        let healed = sim.now().as_millis();
        assert!(
            sim.run_until(10_000, SegmentSim::converged),
            "seed {seed}: not merged 10 s after healing"
        );
        println!(
            "seed {seed}: merged {} ms after healing",
            sim.now().as_millis() - healed
        );
    }
}

#[test]
fn an_unreachable_seed_is_retried_until_it_answers() {
    let mut sim = SegmentSim::new(7, SegmentLinks::default(), MembershipConfig::default());
    let seed = sim.add_node(0, &[]);
    sim.partition(&[&[0], &[1, 2, 3]]);
    for segment in 1..4 {
        sim.add_node(segment, &[seed]);
    }
    sim.run_for(120_000);
    for node in 1..4 {
        assert!(sim.membership(node).members().is_empty(), "{node}");
        assert!(sim.membership(node).seeds_unanswered());
    }
    sim.heal();
    // The next retry (every 2 s) reaches the seed, whose answer names everyone.
    assert!(sim.run_until(3_000, SegmentSim::converged));
    assert!(!sim.membership(1).seeds_unanswered());
}

/// The CI-sized version of the large run: 200 nodes in 10 segments, seeds only.
#[test]
fn two_hundred_nodes_in_ten_segments_converge_and_detect_a_crash() {
    large_run(200, 10);
}

/// 1,000 nodes in 10 segments, seeds only.
#[test]
#[ignore = "large: run with --release -- --ignored"]
fn a_thousand_nodes_in_ten_segments_converge_and_detect_a_crash() {
    large_run(1_000, 10);
}

fn large_run(n: usize, segments: u32) {
    let mut sim = build(1, n, segments, SegmentLinks::default(), 10_000);
    let start = sim.now().as_millis();
    assert!(
        sim.run_until(60_000, SegmentSim::converged),
        "no convergence"
    );
    println!(
        "{n} nodes: converged {} ms after the last join, {} frames",
        sim.now().as_millis() - start,
        sim.frames()
    );
    let at = sim.now().as_millis();
    let victim = n / 2 + 3;
    sim.crash(victim);
    assert!(
        sim.run_until(10_000, SegmentSim::converged),
        "crash not seen"
    );
    let mut delays: Vec<u64> = lost_events_after(&sim, at)
        .iter()
        .map(|(t, _, _)| t - at)
        .collect();
    assert_eq!(delays.len(), n - 1);
    println!("crash seen by all: p99 {} ms", percentile(&mut delays, 99));
}
