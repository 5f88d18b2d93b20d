//! Lossy and chaotic networks on the simulator.
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed, LinkModel, NetConfig};
use cluster_core::{Config, Event, QueryEvent, QueryRequest, Resolver, Targets};

fn lossy(seed: u64, n: usize, loss: f64) -> Cluster {
    let mut b = ClusterBuilder::new(seed);
    b.lan(LinkModel::lan().with_loss(loss));
    b.nodes_one_per_host(n, &Config::lan_fast());
    b.join_within(Duration::from_millis(500));
    b.build()
}

fn lost_events(c: &Cluster, n: usize) -> usize {
    (0..n)
        .map(|i| {
            c.events(i)
                .iter()
                .filter(|e| matches!(e.event, Event::Lost { .. }))
                .count()
        })
        .sum()
}

#[test]
fn at_one_percent_loss_discovery_converges_and_no_healthy_node_is_dropped() {
    for seed in sim::seeds(0..8) {
        let mut c = lossy(seed, 16, 0.01);
        c.run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        c.run_for(Duration::from_secs(20));
        assert_eq!(lost_events(&c, 16), 0, "seed {seed}");
        assert!(c.all_know_each_other(), "seed {seed}");
        assert!(
            c.net().stats().datagrams_lost > 0,
            "seed {seed}: no loss happened"
        );
    }
}

#[test]
fn at_ten_percent_loss_discovery_converges_and_dropped_nodes_come_back() {
    for seed in sim::seeds(0..8) {
        let mut c = lossy(seed, 16, 0.10);
        c.run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        c.run_for(Duration::from_secs(20));
        // A healthy node is dropped only when 4 heartbeats in a row are lost (about 1e-4 per
        // pair and ttl): it may happen, and the next heartbeat brings it back.
        c.run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        let lost = lost_events(&c, 16);
        assert!(lost <= 16, "seed {seed}: {lost} nodes dropped");
        for i in 0..16 {
            assert_eq!(c.counters(i).events_dropped, 0, "seed {seed}");
        }
    }
}

#[test]
fn duplicated_reordered_and_split_packets_do_not_disturb_discovery_or_queries() {
    for seed in sim::seeds(0..8) {
        let mut b = ClusterBuilder::new(seed);
        b.net(NetConfig {
            lan: LinkModel::lan().with_chaos(0.05, 0.10),
            stream_split: 0.5,
            ..NetConfig::default()
        });
        b.nodes_one_per_host(12, &Config::lan_fast());
        let mut c: Cluster = b.build();
        c.run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        assert!(c.net().stats().datagrams_duplicated > 0, "seed {seed}");
        let now = c.now();
        let everyone = Resolver::resolve(&[]);
        c.node_mut(0)
            .query(now, &QueryRequest::new(Targets::resolve(&everyone), b"q"))
            .expect_seed(seed);
        c.run_for(Duration::from_secs(3));
        let done: Vec<_> = c
            .events(0)
            .iter()
            .filter_map(|e| match e.event {
                Event::Query(QueryEvent::Done {
                    answered, missing, ..
                }) => Some((answered, missing)),
                _ => None,
            })
            .collect();
        assert_eq!(done, [(11, 0)], "seed {seed}");
        assert_eq!(lost_events(&c, 12), 0, "seed {seed}");
        for i in 0..12 {
            let decode = c
                .datagram_errors(i)
                .iter()
                .filter(|(e, _)| matches!(e, cluster_core::DatagramError::Decode(_)))
                .count();
            assert_eq!(
                decode,
                0,
                "seed {seed}: node {i}: {:?}",
                c.datagram_errors(i)
            );
        }
    }
}

/// Node bug: a node has 2 reassembly buffers (`STREAM_SENDERS`) for all its senders. TCP
/// hands over frames in arbitrary pieces; when more than 2 connections have a partial frame
/// pending at once (a joining node receiving discovery answers from everyone), buffers are
/// evicted and those frames are lost (`stream_overflows`): here about 15% of the discovery
/// answers, so those services are learned later from periodic heartbeats, without their TCP
/// port or tags.
#[test]
fn discovery_answers_read_in_pieces_from_many_connections_are_all_reassembled() {
    for seed in sim::seeds(0..4) {
        let mut b = ClusterBuilder::new(seed);
        b.net(NetConfig {
            stream_split: 0.5,
            stream_split_delay: Duration::from_millis(5),
            ..NetConfig::default()
        });
        b.nodes_one_per_host(32, &Config::lan_fast());
        b.join_within(Duration::from_millis(300));
        let mut c: Cluster = b.build();
        c.run_until(|c| c.all_know_each_other(), 1_000_000)
            .expect_seed(seed);
        for a in 0..32 {
            let node = c.node(a).unwrap();
            assert_eq!(node.stats().stream_overflows, 0, "seed {seed}: node {a}");
            let unknown = node.services().filter(|s| s.tcp_port().is_none()).count();
            assert_eq!(unknown, 0, "seed {seed}: node {a}");
        }
    }
}

/// What five nodes at 20% loss measured over a minute of queries.
#[derive(Debug, Default)]
struct LossRun {
    /// Targets asked, over all queries.
    asked: u32,
    /// Targets that answered in time.
    answered: u32,
    /// Responses delivered for a (query, target) pair that already had one.
    duplicates: usize,
    /// Queries a node's policy answered more than once for the same asker and id.
    answered_twice: usize,
    /// `Lost` events after everyone knew everyone.
    lost: usize,
    /// Copies answered from memory, query frames sent again.
    repeated: u64,
    retried: u64,
}

/// Five nodes, one per host, at 20% loss on every datagram and stream segment (the
/// simulator's TCP loses time to retransmissions, as the kernel's does), `config` on each:
/// once all know each other, each in turn queries the four others every 250 ms for 60 s.
fn twenty_percent_loss(seed: u64, config: &Config, timeout: Duration) -> LossRun {
    const N: usize = 5;
    let mut b = ClusterBuilder::new(seed);
    b.net(NetConfig {
        lan: LinkModel::lan().with_loss(0.20),
        stream_rto: Duration::from_millis(200),
        syn_rto: Duration::from_secs(1),
        ..NetConfig::default()
    });
    b.nodes_one_per_host(N, config);
    b.join_within(Duration::from_millis(500));
    let mut c: Cluster = b.build();
    c.run_until(|c| c.all_know_each_other(), 1_000_000)
        .expect_seed(seed);
    let settled = c.now();
    let everyone = Resolver::resolve(&[]);
    let mut ids = Vec::new();
    for round in 0..240 {
        let asker = round % N;
        let now = c.now();
        let mut request = QueryRequest::new(Targets::resolve(&everyone), b"q");
        request.timeout = Some(timeout);
        let id = c.node_mut(asker).query(now, &request).expect_seed(seed);
        ids.push((asker, id));
        c.run_for(Duration::from_millis(250));
    }
    c.run_for(Duration::from_secs(3));
    let mut run = LossRun::default();
    for (asker, id) in &ids {
        let mut seen = std::collections::HashSet::new();
        for e in c.events(*asker) {
            match &e.event {
                Event::Query(QueryEvent::Response { id: i, sid, .. })
                    if i == id && !seen.insert(*sid) =>
                {
                    run.duplicates += 1;
                }
                Event::Query(QueryEvent::Done {
                    id: i,
                    answered,
                    missing,
                    ..
                }) if i == id => {
                    run.asked += answered + missing;
                    run.answered += answered;
                }
                _ => {}
            }
        }
    }
    for i in 0..N {
        let mut received = std::collections::HashMap::new();
        for e in c.events(i) {
            if let Event::QueryReceived { sid, ruid, .. } = &e.event {
                *received.entry((*sid, *ruid)).or_insert(0) += 1;
            }
            if matches!(e.event, Event::Lost { .. }) && e.at >= settled {
                run.lost += 1;
            }
        }
        run.answered_twice += received.values().filter(|n| **n > 1).count();
        let stats = c.node(i).unwrap().stats();
        run.repeated += stats.answers_repeated;
        run.retried += stats.queries_retried;
    }
    assert!(
        c.net().stats().stream_retransmits > 0,
        "seed {seed}: no TCP loss"
    );
    run
}

/// The profile at heavy loss: `lan_fast` with a heartbeat of 150-250 ms, so that `ttl` (2 s)
/// spans at least 8 heartbeats.
///
/// A healthy node is reported lost when nothing from it is heard for `ttl`: every heartbeat in
/// that window lost (at least 8, at 20%: 0.2^8 = 2.6e-6) and every probe of
/// [`Config::probe_silent`] or its answer too (one per full heartbeat of the prober after
/// half the ttl, at least 4: a probe fails with about 1 - 0.8 x 0.8 = 0.36 when its answer
/// goes by TCP that delivers within the second left, so 0.36^4 = 0.017). Per pair of nodes
/// and heartbeat, 4.4e-8; over 60 s (at most 400 heartbeats) and 20 ordered pairs, 3.5e-4:
/// the test expects none. The same bound without the probes is 2.1e-2, and with `lan_fast`'s
/// own heartbeat (400-600 ms, 4 heartbeats per ttl) 0.2^4 x 0.36^2 x 150 x 20 = 0.6 losses
/// a minute: at such loss, keep `ttl` at 8 heartbeats or more.
fn heavy_loss_config() -> Config {
    let mut config = Config::lan_fast();
    config.heartbeat_min = Duration::from_millis(150);
    config.heartbeat_max = Duration::from_millis(250);
    config
}

#[test]
fn at_twenty_percent_loss_99_percent_of_answers_arrive_in_time_and_no_node_is_lost() {
    for (timeout, seeds) in [(2000, 0..4), (1000, 4..6)] {
        for seed in sim::seeds(seeds) {
            let timeout = Duration::from_millis(timeout);
            let run = twenty_percent_loss(seed, &heavy_loss_config(), timeout);
            eprintln!("seed {seed}, timeout {timeout:?}: {run:?}");
            assert_eq!(run.asked, 240 * 4, "seed {seed}");
            assert!(
                u64::from(run.answered) * 100 >= u64::from(run.asked) * 99,
                "seed {seed}: {run:?}"
            );
            assert_eq!(run.duplicates, 0, "seed {seed}: {run:?}");
            assert_eq!(run.answered_twice, 0, "seed {seed}: {run:?}");
            assert_eq!(run.lost, 0, "seed {seed}: {run:?}");
            assert!(run.retried > 0 && run.repeated > 0, "seed {seed}: {run:?}");
        }
    }
}

/// The same minute without retransmission and memory (the reference's behaviour), with 1 s
/// timeouts: TCP alone delivers late (a segment lost three times in a row waits 1.4 s), and
/// fewer than 99% of the answers arrive in time. This is the control of the test above: it
/// fails if the network model stops losing time.
#[test]
fn at_twenty_percent_loss_without_retransmission_answers_are_missed() {
    let mut config = heavy_loss_config();
    config.query_retry = None;
    config.answer_memory = Duration::ZERO;
    for seed in sim::seeds(4..6) {
        let run = twenty_percent_loss(seed, &config, Duration::from_millis(1000));
        eprintln!("seed {seed}: {run:?}");
        assert!(
            u64::from(run.answered) * 100 < u64::from(run.asked) * 99,
            "seed {seed}: {run:?}"
        );
        assert_eq!(run.retried, 0, "seed {seed}");
    }
}

/// The control of the answer memory: with retransmission but without the memory, copies of
/// queries reach the policy again.
#[test]
fn at_twenty_percent_loss_retransmission_without_the_memory_asks_the_policy_twice() {
    let mut config = heavy_loss_config();
    config.answer_memory = Duration::ZERO;
    for seed in sim::seeds(0..2) {
        let run = twenty_percent_loss(seed, &config, Duration::from_millis(2000));
        eprintln!("seed {seed}: {run:?}");
        assert!(run.answered_twice > 0, "seed {seed}: {run:?}");
        assert_eq!(run.repeated, 0, "seed {seed}");
    }
}
