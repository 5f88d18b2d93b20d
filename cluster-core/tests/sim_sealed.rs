//! Sealed clusters on the simulator: discovery, queries and events sealed end to end; nodes
//! with other keys or none kept apart; a key rotation without a lost query; replayed and
//! unsealed frames dropped before they touch any state.
#![cfg(all(feature = "sim", feature = "seal"))]

use std::net::SocketAddr;
use std::time::Duration;

use cluster_core::seal::is_sealed;
use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed, Trace};
use cluster_core::wire::{Frame, Message};
use cluster_core::{
    Config, DatagramError, Event, Key, KeyRing, QueryEvent, QueryRequest, Resolver, SendRequest,
    Source, Targets,
};

fn key(id: u8) -> Key {
    Key::new(id, [id.wrapping_mul(37); 32])
}

fn ring(id: u8) -> KeyRing {
    KeyRing::new(key(id))
}

/// `n` nodes on one host, each sealing with `ring` (or not, for `None`).
fn cluster(seed: u64, rings: &[Option<KeyRing>]) -> Cluster {
    let mut b = ClusterBuilder::new(seed);
    b.trace(true);
    let host = b.host();
    for ring in rings {
        let node = b.node(host, Config::lan_fast());
        if let Some(ring) = ring {
            b.keys(node, ring.clone());
        }
    }
    b.build()
}

/// Queries every service `from` knows and runs until the query is done; returns how many
/// answered and how many were missing.
fn query_everyone(c: &mut Cluster, from: usize) -> (usize, usize) {
    let now = c.now();
    let everyone = Resolver::resolve(&[]);
    let id = c
        .node_mut(from)
        .query(
            now,
            &QueryRequest::new(Targets::resolve(&everyone), b"ping?"),
        )
        .expect("a query");
    c.run_until(
        |c| {
            c.events(from).iter().any(
                |e| matches!(&e.event, Event::Query(QueryEvent::Done { id: q, .. }) if *q == id),
            )
        },
        100_000,
    )
    .expect("the query ends");
    c.events(from)
        .iter()
        .find_map(|e| match &e.event {
            Event::Query(QueryEvent::Done {
                id: q,
                answered,
                missing,
                ..
            }) if *q == id => Some((*answered as usize, *missing as usize)),
            _ => None,
        })
        .expect("a Done event")
}

#[test]
fn a_sealed_cluster_discovers_queries_and_messages_with_every_frame_sealed() {
    for seed in sim::seeds(0..8) {
        let rings = vec![Some(ring(1)); 4];
        let mut c = cluster(seed, &rings);
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        assert_eq!(query_everyone(&mut c, 0), (3, 0), "seed {seed}");
        let now = c.now();
        let everyone = Resolver::resolve(&[]);
        c.node_mut(1)
            .send(
                now,
                &SendRequest::new(Targets::resolve(&everyone), b"sealed hello"),
            )
            .expect_seed(seed);
        c.run_for(Duration::from_millis(100));
        for node in [0, 2, 3] {
            assert!(
                c.events(node).iter().any(|e| matches!(
                    &e.event,
                    Event::Message { payload, .. } if payload.data() == Some(&b"sealed hello"[..])
                )),
                "seed {seed}: node {node} got the event"
            );
        }
        let frames: Vec<&[u8]> = c.trace().iter().filter_map(Trace::frame).collect();
        assert!(frames.len() > 20);
        for frame in frames {
            let (frame, _) = Frame::parse(frame).expect("a frame");
            assert!(is_sealed(&frame), "seed {seed}: a frame went out unsealed");
        }
        for node in 0..4 {
            let stats = c.node(node).unwrap().stats();
            assert_eq!(
                (
                    stats.unsealed,
                    stats.forged,
                    stats.unknown_key,
                    stats.replayed
                ),
                (0, 0, 0, 0),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn nodes_with_another_key_or_none_never_meet_the_sealed_ones() {
    for seed in sim::seeds(0..8) {
        let rings = [Some(ring(1)), Some(ring(1)), Some(ring(2)), None];
        let mut c = cluster(seed, &rings);
        c.run_for(Duration::from_secs(5));
        assert!(c.knows(0, 1) && c.knows(1, 0), "seed {seed}");
        for (a, b) in [(0, 2), (0, 3), (2, 0), (2, 3), (3, 0), (3, 2)] {
            assert!(!c.knows(a, b), "seed {seed}: {a} knows {b}");
        }
        let sealed = c.node(0).unwrap().stats();
        assert!(sealed.unsealed > 0, "seed {seed}: node 3's frames");
        assert!(sealed.unknown_key > 0, "seed {seed}: node 2's frames");
        // An unkeyed node takes sealed frames for frames filtered to someone else.
        let open = c.node(3).unwrap().stats();
        assert!(
            open.filtered_out > 0 && open.services_rejected == 0,
            "seed {seed}"
        );
        assert_eq!(c.node(3).unwrap().known(), 0, "seed {seed}");
    }
}

#[test]
fn a_key_rotation_in_three_steps_loses_no_query_and_no_service() {
    for seed in sim::seeds(0..8) {
        let rings = vec![Some(ring(1)); 3];
        let mut c = cluster(seed, &rings);
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        let mut both = ring(1);
        both.add(key(2)).unwrap();
        let mut sending_new = both.clone();
        sending_new.set_send(2).unwrap();
        let only_new = ring(2);
        // Each step reaches the nodes one at a time, with traffic in between.
        for step in [&both, &sending_new, &only_new] {
            for node in 0..3 {
                c.node_mut(node).set_keys(Some(step.clone()));
                c.run_for(Duration::from_millis(700));
                for asker in 0..3 {
                    assert_eq!(query_everyone(&mut c, asker), (2, 0), "seed {seed}");
                }
            }
        }
        for node in 0..3 {
            assert!(
                !c.events(node)
                    .iter()
                    .any(|e| matches!(e.event, Event::Lost { .. })),
                "seed {seed}: node {node} lost a service during the rotation"
            );
            let stats = c.node(node).unwrap().stats();
            assert_eq!((stats.unknown_key, stats.forged), (0, 0), "seed {seed}");
        }
    }
}

#[test]
fn replayed_and_unsealed_frames_are_dropped_before_they_touch_any_state() {
    let seed = sim::seeds(0..1)[0];
    let rings = vec![Some(ring(1)); 2];
    let mut c = cluster(seed, &rings);
    c.run_until(|c| c.all_know_each_other(), 100_000)
        .expect_seed(seed);
    // Everything node 1 sent so far, captured on the wire.
    let captured: Vec<Vec<u8>> = c
        .trace()
        .iter()
        .filter_map(|t| match t {
            Trace::Sent { from, frame, .. } if from.0 == 1 => Some(frame.clone()),
            _ => None,
        })
        .collect();
    assert!(!captured.is_empty());
    let sid1 = c.sid(1).unwrap();
    c.crash(1);
    c.run_for(Duration::from_secs(3));
    assert!(!c.knows(0, 1), "node 1 expired");
    let before = c.node(0).unwrap().stats();
    let from: SocketAddr = "10.0.0.1:23000".parse().unwrap();
    let now = c.now();
    {
        let mut node = c.node_mut(0);
        for frame in &captured {
            let outcome = node.handle_datagram(now, Source::multicast(from, true), frame);
            assert_eq!(outcome, Err(DatagramError::Replayed));
        }
        // A plaintext heartbeat of an invented service.
        let plain = hex_frame(
            "c08d2904084162436431323334031130303a31313a32323a33333a34343a35350101020007020174016305030000",
        );
        assert_eq!(
            node.handle_datagram(now, Source::multicast(from, true), &plain),
            Err(DatagramError::Unsealed)
        );
        assert_eq!(node.known(), 0, "no service came back or was invented");
    }
    let after = c.node(0).unwrap().stats();
    assert_eq!(after.replayed - before.replayed, captured.len() as u64);
    assert_eq!(after.unsealed - before.unsealed, 1);
    assert_eq!(after.frames_accepted, before.frames_accepted);
    c.run_for(Duration::from_secs(1));
    assert!(!c.knows(0, 1));
    assert!(c.node(0).unwrap().service(sid1.as_bytes()).is_none());
    // The captured frames parse as ordinary frames that name nobody.
    let (message, _) = Message::parse(&captured[0]).unwrap();
    assert_eq!(message.filter.map(|f| f.iter().count()), Some(0));
    assert!(message.sid.is_none() && message.raw.is_some());
}

fn hex_frame(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
