//! Real nodes on loopback (tokio adapter, real sockets) side by side with a bare tokio UDP
//! socket pair, the physical baseline, in one run:
//!
//! * `round_trip/udp_echo` vs `round_trip/query`: one 64-byte datagram echoed, vs one query
//!   to one service answered over TCP (after discovery, so the connection is reused);
//! * `round_trip/query` vs `round_trip/typed_query`: the same query with text both ways, vs
//!   a typed one (`Handle::query_typed`: a struct postcard-encoded in `raw`, answered by the
//!   `TypedAnswer` policy with another, decoded by the asker);
//! * `one_way/udp` vs `one_way/broadcast_event`: a batch of datagrams received, vs a batch of
//!   broadcast events (one datagram each) delivered as `Event::Message`; `one_way/queued_event`
//!   sends the same events with `Handle::send_queued` (no wait for each send's verdict).
//!
//! Before criterion runs, p50 and p99 of 2,000 round trips of each kind are printed.
//!
//! The same measurements run with the smol adapter (`smol_round_trip`, `smol_one_way`,
//! against bare async-io sockets), side by side in the same run: see `loopback/smol_side.rs`.
//!
//! `cargo bench -p cluster-benches --bench loopback` (`-- smol_` for the smol side only,
//! `-- '^(round_trip|one_way)'` for the tokio side only)

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_tokio::{
    Answer, Cluster, Event, Events, Handle, Options, QuerySpec, Selector, SendSpec, Typed,
    TypedAnswer,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;

#[path = "loopback/smol_side.rs"]
mod smol_side;

const BATCH: u64 = 200;
const PATIENCE: Duration = Duration::from_secs(10);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn options() -> Options {
    // A long ttl: on a loaded machine (the 2-second default of `lan-fast`), a node starved
    // during a phase of the run could expire and fail the next query; the ttl plays no part
    // in what is measured.
    Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(23_200 + (std::process::id() % 500) as u16)
        .hid("02:00:00:00:00:be")
        .ttl(Duration::from_secs(60))
}

/// Two nodes that know each other; the second answers queries with "pong".
struct Pair {
    asker: Handle,
    answerer: Handle,
    answerer_events: Events,
}

async fn pair() -> Pair {
    let answerer = Cluster::join_with(options().channel(7).expect("channel"), Answer::new("pong"))
        .await
        .expect("join");
    let answerer_events = answerer.events();
    let asker = Cluster::join(options()).await.expect("join");
    let mut events = asker.events();
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.next().await {
            if matches!(event, Event::Discovered(ref s) if s.sid == answerer.sid()) {
                return;
            }
        }
    })
    .await
    .expect("discovery");
    Pair {
        asker,
        answerer,
        answerer_events,
    }
}

async fn query_once(pair: &Pair) {
    let outcome = pair
        .asker
        .query(QuerySpec::new(
            Selector::service(pair.answerer.sid()),
            "ping",
        ))
        .await
        .expect("query")
        .collect()
        .await;
    assert_eq!(outcome.responses.len(), 1, "answered");
}

/// The typed query: a small struct, as an application would send.
#[derive(serde::Serialize, serde::Deserialize)]
struct Ping {
    seq: u32,
    name: String,
}

impl Typed for Ping {
    const KIND: &'static str = "ping";
}

/// The typed answer.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pong {
    seq: u32,
    load: u16,
    name: String,
}

impl Typed for Pong {
    const KIND: &'static str = "pong";
}

/// Two nodes that know each other; the second answers `Ping`s with `Pong`s.
async fn typed_pair() -> (Handle, Handle) {
    let policy = TypedAnswer::new(|ping: Ping| {
        Ok::<_, String>(Pong {
            seq: ping.seq,
            load: 7,
            name: ping.name,
        })
    });
    // A port of their own: the other pair's frames stay out of this one's measurements.
    let options = || options().port(options().port + 500);
    let answerer = Cluster::join_with(options(), policy).await.expect("join");
    let asker = Cluster::join(options()).await.expect("join");
    let mut events = asker.events();
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.next().await {
            if matches!(event, Event::Discovered(ref s) if s.sid == answerer.sid()) {
                return;
            }
        }
    })
    .await
    .expect("discovery");
    (asker, answerer)
}

async fn typed_query_once(asker: &Handle, answerer: &Handle) {
    let ping = Ping {
        seq: 1,
        name: "ping".into(),
    };
    let outcome = asker
        .query_typed::<Ping, Pong>(Selector::service(answerer.sid()), &ping)
        .await
        .expect("query")
        .collect()
        .await;
    assert_eq!(
        outcome.answers.len(),
        1,
        "answered: {:?} {:?} {:?}",
        outcome.errors,
        outcome.missing,
        outcome.summary
    );
}

/// A bare UDP echo on loopback.
async fn udp_echo() -> (UdpSocket, SocketAddr) {
    let echo = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let echo_addr = echo.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    (client, echo_addr)
}

async fn echo_once(client: &UdpSocket, to: SocketAddr) {
    let mut buf = [0u8; 2048];
    client.send_to(&[7u8; 64], to).await.expect("send");
    client.recv_from(&mut buf).await.expect("recv");
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name}: p50 {:?}, p99 {:?} ({} samples)",
        at(0.50),
        at(0.99),
        samples.len()
    );
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let pair = rt.block_on(pair());
    let (typed_asker, typed_answerer) = rt.block_on(typed_pair());
    let (client, echo) = rt.block_on(udp_echo());
    let sample = |f: &dyn Fn()| {
        (0..2000)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect::<Vec<_>>()
    };
    percentiles(
        "round_trip/udp_echo",
        sample(&|| rt.block_on(echo_once(&client, echo))),
    );
    percentiles(
        "round_trip/query",
        sample(&|| rt.block_on(query_once(&pair))),
    );
    percentiles(
        "round_trip/typed_query",
        sample(&|| rt.block_on(typed_query_once(&typed_asker, &typed_answerer))),
    );
    let mut group = c.benchmark_group("round_trip");
    group.bench_function("udp_echo", |b| {
        b.iter(|| rt.block_on(echo_once(&client, echo)));
    });
    group.bench_function("query", |b| b.iter(|| rt.block_on(query_once(&pair))));
    group.bench_function("typed_query", |b| {
        b.iter(|| rt.block_on(typed_query_once(&typed_asker, &typed_answerer)));
    });
    group.finish();
    rt.block_on(async {
        typed_asker.leave().await.expect("leave");
        typed_answerer.leave().await.expect("leave");
        pair.asker.leave().await.expect("leave");
        pair.answerer.leave().await.expect("leave");
    });
}

/// `batches` batches of `BATCH` datagrams, each sent then received (one in flight).
async fn udp_batches(sender: &UdpSocket, receiver: &UdpSocket, to: SocketAddr, batches: u64) {
    let mut buf = [0u8; 2048];
    for _ in 0..batches * BATCH {
        sender.send_to(&[7u8; 64], to).await.expect("send");
        receiver.recv_from(&mut buf).await.expect("recv");
    }
}

/// How each event is sent: [`Handle::send`] (waits for the node's verdict) or
/// [`Handle::send_queued`] (returns once queued).
#[derive(Clone, Copy)]
enum Sending {
    Verdict,
    Queued,
}

/// `batches` batches of `BATCH` broadcast events, each batch sent then all delivered.
async fn event_batches(asker: &Handle, delivered: &mut Events, batches: u64, sending: Sending) {
    for _ in 0..batches {
        for _ in 0..BATCH {
            let spec = SendSpec::new(Selector::none(), "event")
                .channel(7)
                .broadcast(true);
            match sending {
                Sending::Verdict => asker.send(spec).await.expect("send"),
                Sending::Queued => asker.send_queued(spec).await.expect("send"),
            }
        }
        let mut got = 0;
        tokio::time::timeout(PATIENCE, async {
            while got < BATCH {
                match delivered.next().await {
                    Some(Event::Message { .. }) => got += 1,
                    Some(Event::Dropped { count }) => got += count,
                    Some(_) => {}
                    None => break,
                }
            }
        })
        .await
        .expect("events delivered");
    }
}

/// Both sides of each measurement run in a spawned task, as an application's code does:
/// when the runtime's root future (`block_on`) awaits another task, tokio polls its I/O
/// driver before polling the root future again, one `epoll_wait` per awaited reply, so an
/// event sent from the root future costs a runtime park that one sent from a task does not.
/// `one_way/broadcast_event_from_root` measures that case too.
fn one_way(c: &mut Criterion) {
    let rt = runtime();
    let pair = rt.block_on(pair());
    let asker = pair.asker.clone();
    let mut delivered = Some(pair.answerer_events);
    let (sender, receiver) = rt.block_on(async {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let sender = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        (Arc::new(sender), Arc::new(receiver))
    });
    let to = receiver.local_addr().expect("addr");
    let mut group = c.benchmark_group("one_way");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("udp", |b| {
        b.iter_custom(|batches| {
            let (sender, receiver) = (Arc::clone(&sender), Arc::clone(&receiver));
            rt.block_on(rt.spawn(async move {
                let start = Instant::now();
                udp_batches(&sender, &receiver, to, batches).await;
                start.elapsed()
            }))
            .expect("task")
        });
    });
    for (name, sending) in [
        ("broadcast_event", Sending::Verdict),
        ("queued_event", Sending::Queued),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|batches| {
                let asker = asker.clone();
                let mut events = delivered.take().expect("events");
                let (elapsed, events) = rt
                    .block_on(rt.spawn(async move {
                        let start = Instant::now();
                        event_batches(&asker, &mut events, batches, sending).await;
                        (start.elapsed(), events)
                    }))
                    .expect("task");
                delivered = Some(events);
                elapsed
            });
        });
        group.bench_function(format!("{name}_from_root"), |b| {
            b.iter_custom(|batches| {
                let events = delivered.as_mut().expect("events");
                rt.block_on(async {
                    let start = Instant::now();
                    event_batches(&asker, events, batches, sending).await;
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    round_trip,
    one_way,
    smol_side::round_trip,
    smol_side::one_way
);
criterion_main!(benches);
