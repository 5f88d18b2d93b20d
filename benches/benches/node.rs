//! The node's hot paths: a heartbeat handled with 32, 1,000 and 10,000 known services, a
//! heartbeat written by `poll_transmit`, and a query fanned out to 64 services.
//!
//! `cargo bench -p cluster-benches --bench node`

use std::hint::black_box;

use cluster_benches::{BigNode, node_knowing, peer_sid, periodic_heartbeat, source};
use cluster_core::{Instant, QueryRequest, Resolver, Targets};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn handle_heartbeat(c: &mut Criterion) {
    let mut group = c.benchmark_group("handle_datagram/heartbeat");
    for services in [32usize, 1_000, 10_000] {
        let mut node = node_knowing(services);
        // Heartbeats from every known peer in turn, so lookups are not all cache hits.
        let frames: Vec<Vec<u8>> = (0..services.min(1024))
            .map(|i| periodic_heartbeat(&peer_sid(i * services / services.min(1024))))
            .collect();
        let mut now = 10_000u64;
        let mut next = 0usize;
        group.bench_function(format!("{services}_known"), |b| {
            b.iter(|| {
                now += 1;
                next = (next + 1) % frames.len();
                node.handle_datagram(
                    Instant::from_millis(now),
                    source(),
                    black_box(&frames[next]),
                )
                .unwrap();
            })
        });
        assert_eq!(node.known(), services);
    }
    group.finish();
}

fn poll_transmit_heartbeat(c: &mut Criterion) {
    let mut node = node_knowing(32);
    let mut buf = vec![0u8; BigNode::TRANSMIT_BUF];
    let mut now = 10_000u64;
    c.bench_function("poll_transmit/heartbeat", |b| {
        b.iter(|| {
            now += 1;
            let at = Instant::from_millis(now);
            node.heartbeat(at);
            let t = node.poll_transmit(at, black_box(&mut buf)).unwrap();
            black_box(t.len)
        })
    });
}

fn query_fan_out(c: &mut Criterion) {
    let mut node = node_knowing(64);
    let mut buf = vec![0u8; BigNode::TRANSMIT_BUF];
    let resolver = Resolver::resolve(&["bench"]);
    let mut now = 10_000u64;
    c.bench_function("query/fan_out_64", |b| {
        b.iter_batched(
            || (),
            |()| {
                now += 1;
                let at = Instant::from_millis(now);
                let id = node
                    .query(
                        at,
                        &QueryRequest::new(Targets::resolve(&resolver), b"status"),
                    )
                    .unwrap();
                let mut sent = 0;
                while let Some(t) = node.poll_transmit(at, &mut buf) {
                    if let Some(send) = t.dst.send_id() {
                        node.transport_ok(at, send);
                    }
                    sent += 1;
                }
                assert_eq!(sent, 64);
                node.cancel_query(at, id.as_str().unwrap());
                while node.poll_event().is_some() {}
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(
    benches,
    handle_heartbeat,
    poll_transmit_heartbeat,
    query_fan_out
);
criterion_main!(benches);
