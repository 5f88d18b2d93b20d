//! Floods of invented services on the simulator: established services are never evicted,
//! queries keep being answered, and a real newcomer still gets in when the flood comes from
//! one address (the policy on `Node`, "Capacity and floods").
#![cfg(feature = "sim")]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed};
use cluster_core::wire::{FilterPlacement, List, Message, MessageKind};
use cluster_core::{
    Config, DefaultPolicy, Event, Instant, QueryEvent, QueryRequest, Resolver, Source, Targets,
};

/// A small registry, so that the flood fills it within milliseconds.
type Small = Cluster<DefaultPolicy, 32, 512>;

/// A join heartbeat of an invented service (props and tags included, so the victim does not
/// ask it for them).
fn invented(n: u64) -> Vec<u8> {
    let sid = format!("F{n:07}");
    let protocols = ["c"];
    let tags = ["fake"];
    let message = Message {
        kind: Some(MessageKind::Heartbeat),
        sid: Some(sid.as_str().into()),
        hid: Some("02:66:66:66:66:66".into()),
        channel: Some(0),
        protocols: Some(List::from_items(&protocols)),
        data: Some("".into()),
        known: Some(0),
        tags: Some(List::from_items(&tags)),
        ..Message::default()
    };
    let mut buf = vec![0u8; 256];
    let len = message.encode(FilterPlacement::Last, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// Where flood frame `n` comes from: one address, or a forged one per frame.
fn flood_source(n: u64, forged: bool) -> Source {
    let ip = if forged {
        Ipv4Addr::new(10, 9, (n >> 8) as u8, n as u8)
    } else {
        Ipv4Addr::new(10, 9, 9, 9)
    };
    Source::multicast(SocketAddr::from((ip, 23000)), false)
}

/// Node `from` queries node `to`; returns whether the answer came.
fn query(c: &mut Small, from: usize, to: usize) -> bool {
    let now = c.now();
    let sid = c.sid(to).unwrap();
    let resolver = [sid.as_str().unwrap_or_default()];
    let resolver = Resolver::resolve(&resolver);
    let Ok(id) = c.node_mut(from).query(
        now,
        &QueryRequest::new(Targets::resolve(&resolver), b"status"),
    ) else {
        return false;
    };
    let _ = c.run_until(
        |c| {
            c.events(from).iter().any(
                |e| matches!(&e.event, Event::Query(QueryEvent::Done { id: q, .. }) if *q == id),
            )
        },
        100_000,
    );
    c.events(from)
        .iter()
        .any(|e| matches!(&e.event, Event::Query(QueryEvent::Response { id: q, .. }) if *q == id))
}

/// Floods node 0 for `secs` seconds with `per_10ms` invented services every 10 ms while
/// nodes 1-4 query it; node 5 joins in the middle. Returns the cluster afterwards.
fn flood(seed: u64, forged: bool, per_10ms: u64, secs: u64) -> (Small, usize) {
    let mut b = ClusterBuilder::new(seed);
    b.nodes_one_per_host(6, &Config::lan_fast());
    b.join_at(5, Instant::from_millis(60_000 + secs * 500));
    let mut c: Small = b.build();
    c.run_until(
        |c| (0..5).all(|a| (0..5).all(|b| a == b || c.knows(a, b))),
        100_000,
    )
    .expect_seed(seed);
    c.run_for(Duration::from_millis(1_500));
    // Wait until the newcomer's join time is near: the flood starts at 60 s.
    c.run_to(Instant::from_millis(60_000));
    let mut sent = 0u64;
    let mut unanswered = 0;
    let end = Instant::from_millis(60_000 + secs * 1000);
    while c.now() < end {
        let now = c.now();
        {
            let mut node = c.node_mut(0);
            for _ in 0..per_10ms {
                let _ = node.handle_datagram(now, flood_source(sent, forged), &invented(sent));
                sent += 1;
            }
        }
        c.run_for(Duration::from_millis(10));
        if sent.is_multiple_of(per_10ms * 25) {
            for asker in 1..5 {
                if !query(&mut c, asker, 0) {
                    unanswered += 1;
                }
            }
        }
    }
    (c, unanswered)
}

fn real_losses(c: &Small, node: usize) -> usize {
    let real: Vec<_> = (0..6).filter_map(|i| c.sid(i)).collect();
    c.events(node)
        .iter()
        .filter(|e| matches!(e.event, Event::Lost { sid, .. } if real.contains(&sid)))
        .count()
}

#[test]
fn a_flood_from_one_address_evicts_no_real_service_and_a_newcomer_gets_in() {
    for seed in sim::seeds(0..4) {
        let (c, unanswered) = flood(seed, false, 50, 4);
        let node = c.node(0).unwrap();
        assert_eq!(real_losses(&c, 0), 0, "seed {seed}");
        assert_eq!(unanswered, 0, "seed {seed}");
        for real in 1..6 {
            let sid = c.sid(real).unwrap();
            let service = node.service(sid.as_bytes());
            assert!(
                service.is_some_and(|s| s.is_established()),
                "seed {seed}: node {real} known and established"
            );
        }
        let stats = node.stats();
        assert!(stats.services_evicted > 10_000, "seed {seed}: {stats:?}");
        assert!(node.known() <= 32);
    }
}

#[test]
fn a_flood_from_forged_addresses_evicts_no_established_service() {
    for seed in sim::seeds(0..4) {
        let (c, unanswered) = flood(seed, true, 50, 4);
        assert_eq!(real_losses(&c, 0), 0, "seed {seed}");
        assert_eq!(unanswered, 0, "seed {seed}");
        let node = c.node(0).unwrap();
        for real in 1..5 {
            let sid = c.sid(real).unwrap();
            assert!(
                node.service(sid.as_bytes()).is_some(),
                "seed {seed}: node {real}"
            );
        }
        assert!(node.stats().services_evicted > 10_000);
    }
}
