//! The same measurements with the smol adapter (`cluster-smol` on async-io), everything on
//! one thread as with tokio's current-thread runtime: a `LocalExecutor` runs the nodes'
//! drivers and the measuring tasks inside async-io's `block_on`, which drives the reactor.
//! The bare baselines use async-io sockets (`smol::net::UdpSocket`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use cluster_smol::{
    Answer, Cluster, Event, Events, Handle, Options, QuerySpec, Selector, SendSpec,
};
use criterion::{Criterion, Throughput};
use futures_lite::future;
use smol::LocalExecutor;
use smol::net::UdpSocket;

use super::{BATCH, PATIENCE, percentiles};

/// One executor for the whole run, as a runtime would be.
fn executor() -> &'static LocalExecutor<'static> {
    Box::leak(Box::new(LocalExecutor::new()))
}

fn run<T>(ex: &'static LocalExecutor<'static>, fut: impl Future<Output = T>) -> T {
    smol::block_on(ex.run(fut))
}

fn options() -> Options {
    Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(23_700 + (std::process::id() % 500) as u16)
        .hid("02:00:00:00:00:bf")
}

async fn patience<T>(what: &str, fut: impl Future<Output = T>) -> T {
    future::or(async { Some(fut.await) }, async {
        smol::Timer::after(PATIENCE).await;
        None
    })
    .await
    .unwrap_or_else(|| panic!("{what}: no answer within {PATIENCE:?}"))
}

/// Two smol nodes that know each other; the second answers queries with "pong".
struct Pair {
    asker: Handle,
    answerer: Handle,
    answerer_events: Events,
}

async fn pair(ex: &'static LocalExecutor<'static>) -> Pair {
    let spawn = |driver| ex.spawn(driver).detach();
    let answerer = Cluster::join_with(
        options().channel(7).expect("channel"),
        Answer::new("pong"),
        spawn,
    )
    .await
    .expect("join");
    let answerer_events = answerer.events();
    let asker = Cluster::join(options(), spawn).await.expect("join");
    let mut events = asker.events();
    patience("discovery", async {
        while let Some(event) = events.next().await {
            if matches!(event, Event::Discovered(ref s) if s.sid == answerer.sid()) {
                return;
            }
        }
    })
    .await;
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

/// A bare async-io UDP echo on loopback.
async fn udp_echo(ex: &'static LocalExecutor<'static>) -> (UdpSocket, SocketAddr) {
    let echo = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let echo_addr = echo.local_addr().expect("addr");
    ex.spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    })
    .detach();
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    (client, echo_addr)
}

async fn echo_once(client: &UdpSocket, to: SocketAddr) {
    let mut buf = [0u8; 2048];
    client.send_to(&[7u8; 64], to).await.expect("send");
    client.recv_from(&mut buf).await.expect("recv");
}

/// `n` round trips of `once`, each timed, inside one `block_on` (as an application runs).
async fn timed<F: Future<Output = ()>>(n: u64, once: impl Fn() -> F) -> Vec<Duration> {
    let mut samples = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        once().await;
        samples.push(start.elapsed());
    }
    samples
}

/// `smol_round_trip/udp_echo` vs `smol_round_trip/query`. Every sample and every criterion
/// batch runs inside one `block_on`, as an application's loop does: entering `block_on`
/// anew for each round trip would hand the reactor to async-io's helper thread in between
/// (it takes the reactor whenever no `block_on` runs), and every wake-up of that round trip
/// would then cross threads.
pub(crate) fn round_trip(c: &mut Criterion) {
    let ex = executor();
    let pair = run(ex, pair(ex));
    let (client, echo) = run(ex, udp_echo(ex));
    percentiles(
        "smol_round_trip/udp_echo",
        run(ex, timed(2000, || echo_once(&client, echo))),
    );
    percentiles(
        "smol_round_trip/query",
        run(ex, timed(2000, || query_once(&pair))),
    );
    // The query first: while criterion analyses a benchmark nothing runs the executor, and
    // under load the pause can outlast the answerer's TTL at the asker (`NoTargets`).
    let mut group = c.benchmark_group("smol_round_trip");
    group.bench_function("query", |b| {
        b.iter_custom(|n| run(ex, timed(n, || query_once(&pair))).iter().sum());
    });
    group.bench_function("udp_echo", |b| {
        b.iter_custom(|n| run(ex, timed(n, || echo_once(&client, echo))).iter().sum());
    });
    group.finish();
    run(ex, async {
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
        patience("events delivered", async {
            while got < BATCH {
                match delivered.next().await {
                    Some(Event::Message { .. }) => got += 1,
                    Some(Event::Dropped { count }) => got += count,
                    Some(_) => {}
                    None => break,
                }
            }
        })
        .await;
    }
}

/// `smol_one_way/udp`, `smol_one_way/broadcast_event` (both sides in a task of the
/// executor) and `smol_one_way/broadcast_event_from_root` (from the future `block_on` runs);
/// `queued_event` and `queued_event_from_root` the same with `Handle::send_queued`.
pub(crate) fn one_way(c: &mut Criterion) {
    let ex = executor();
    let pair = run(ex, pair(ex));
    let asker = pair.asker.clone();
    let mut delivered = Some(pair.answerer_events);
    let (sender, receiver) = run(ex, async {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let sender = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        (sender, receiver)
    });
    let to = receiver.local_addr().expect("addr");
    let mut group = c.benchmark_group("smol_one_way");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("udp", |b| {
        b.iter_custom(|batches| {
            let (sender, receiver) = (sender.clone(), receiver.clone());
            run(
                ex,
                ex.spawn(async move {
                    let start = Instant::now();
                    udp_batches(&sender, &receiver, to, batches).await;
                    start.elapsed()
                }),
            )
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
                let (elapsed, events) = run(
                    ex,
                    ex.spawn(async move {
                        let start = Instant::now();
                        event_batches(&asker, &mut events, batches, sending).await;
                        (start.elapsed(), events)
                    }),
                );
                delivered = Some(events);
                elapsed
            });
        });
        group.bench_function(format!("{name}_from_root"), |b| {
            b.iter_custom(|batches| {
                let events = delivered.as_mut().expect("events");
                run(ex, async {
                    let start = Instant::now();
                    event_batches(&asker, events, batches, sending).await;
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
    drop(pair.answerer);
}
