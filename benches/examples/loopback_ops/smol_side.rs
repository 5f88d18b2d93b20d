//! The smol paths of `loopback_ops`: nodes of `cluster-smol` and bare async-io sockets, on
//! one `LocalExecutor` inside async-io's `block_on` (which drives the reactor), as
//! `benches/benches/loopback/smol_side.rs` runs them.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use cluster_smol::{Answer, Cluster, Event, Options, QuerySpec, Selector, SendSpec};
use smol::LocalExecutor;
use smol::net::UdpSocket;

use super::{BATCH, port, tail};

fn options() -> Options {
    Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(port(24_700))
        .hid("02:00:00:00:00:bf")
}

/// Runs `path` (`events`, `events_queued`, `query`, `query_tail`, `udp` or `echo`) `n` times and prints its rate.
pub(crate) fn run(path: &str, n: u64) {
    let ex = LocalExecutor::new();
    smol::block_on(ex.run(async {
        let start = Instant::now();
        match path {
            "events" | "events_queued" | "query" | "query_tail" => nodes(&ex, path, n).await,
            "udp" => one_way(n).await,
            "echo" => echo(&ex, n).await,
            _ => panic!("unknown path smol_{path:?}"),
        }
        let per_op = start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
        println!("smol_{path}: {n} in {per_op:.2} us each, start-up included");
    }));
}

async fn nodes(ex: &LocalExecutor<'_>, path: &str, n: u64) {
    let spawn = |driver| ex.spawn(driver).detach();
    let answerer = Cluster::join_with(
        options().channel(7).expect("channel"),
        Answer::new("pong"),
        spawn,
    )
    .await
    .expect("join");
    let mut delivered = answerer.events();
    let asker = Cluster::join(options(), spawn).await.expect("join");
    let mut events = asker.events();
    while let Some(event) = events.next().await {
        if matches!(event, Event::Discovered(ref s) if s.sid == answerer.sid()) {
            break;
        }
    }
    if path == "query_tail" {
        let mut samples = Vec::new();
        for _ in 0..n {
            samples.push(
                tail::sample(async {
                    let spec = QuerySpec::new(Selector::service(answerer.sid()), "ping");
                    let outcome = asker.query(spec).await.expect("query").collect().await;
                    assert_eq!(outcome.responses.len(), 1, "answered");
                })
                .await,
            );
        }
        tail::report(&format!("smol_{path}"), &samples);
        return;
    }
    if path == "query" {
        for _ in 0..n {
            let spec = QuerySpec::new(Selector::service(answerer.sid()), "ping");
            let outcome = asker.query(spec).await.expect("query").collect().await;
            assert_eq!(outcome.responses.len(), 1, "answered");
        }
        return;
    }
    for _ in 0..n / BATCH {
        for _ in 0..BATCH {
            let spec = SendSpec::new(Selector::none(), "event")
                .channel(7)
                .broadcast(true);
            if path == "events_queued" {
                asker.send_queued(spec).await.expect("send");
            } else {
                asker.send(spec).await.expect("send");
            }
        }
        let mut got = 0;
        while got < BATCH {
            match delivered.next().await {
                Some(Event::Message { .. }) => got += 1,
                Some(Event::Dropped { count }) => got += count,
                Some(_) => {}
                None => panic!("the node stopped"),
            }
        }
    }
}

async fn one_way(n: u64) {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let sender = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let to: SocketAddr = receiver.local_addr().expect("addr");
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        sender.send_to(&[7u8; 64], to).await.expect("send");
        receiver.recv_from(&mut buf).await.expect("receive");
    }
}

async fn echo(ex: &LocalExecutor<'_>, n: u64) {
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
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        client.send_to(&[7u8; 64], echo_addr).await.expect("send");
        client.recv_from(&mut buf).await.expect("receive");
    }
}
