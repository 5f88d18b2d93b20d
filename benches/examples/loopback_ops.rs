//! Runs one loopback path N times and prints its rate, for instruction counts under
//! callgrind and syscall or packet counts under `perf stat` (`benches/loopback_counts.sh`):
//! `loopback_ops PATH N` with PATH one of
//!
//! * `events`: N broadcast events in batches of 200 from one node, each delivered to the
//!   other node's event stream as `Event::Message` (as `one_way/broadcast_event`);
//! * `events_queued`: the same events sent with `Handle::send_queued` (as
//!   `one_way/queued_event`);
//! * `query`: N queries to one service answered over TCP (as `round_trip/query`);
//! * `query_tail`: the same, each timed, printing p50 and p99 with and without the round
//!   trips during which the thread was switched out (Linux);
//! * `udp`: N datagrams sent and received by bare tokio sockets (as `one_way/udp`);
//! * `echo`: N bare tokio UDP echo round trips (as `round_trip/udp_echo`);
//! * `tcp_echo`: N bare tokio TCP echo round trips of 74 bytes (a query's size) on one
//!   connection with `TCP_NODELAY`: the kernel's share of a query answered over TCP, without
//!   any protocol code;
//! * `multicast`: N datagrams to the group, received by the other of two multicast sockets
//!   set up as the nodes' are, the sender's own echo dropped by the kernel: the kernel's
//!   share of an event, without any protocol code;
//! * `smol_events`, `smol_events_queued`, `smol_query`, `smol_query_tail`, `smol_udp`,
//!   `smol_echo`: the same paths with the smol adapter and async-io sockets, on a
//!   `LocalExecutor` inside `block_on` (as the smol side of the loopback bench).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use cluster_host::socket;
use cluster_tokio::{Answer, Cluster, Event, Options, QuerySpec, Selector, SendSpec};
use tokio::net::UdpSocket;

#[path = "loopback_ops/smol_side.rs"]
mod smol_side;
#[path = "loopback_ops/tail.rs"]
mod tail;

/// Events sent before their delivery is awaited.
const BATCH: u64 = 200;

fn options() -> Options {
    Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(port(24_200))
        .hid("02:00:00:00:00:be")
}

fn port(base: u16) -> u16 {
    base + u16::try_from(std::process::id() % 500).unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    if let Some(smol_path) = path.strip_prefix("smol_") {
        smol_side::run(smol_path, n);
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let start = Instant::now();
        match path.as_str() {
            "events" | "events_queued" | "query" | "query_tail" => nodes(&path, n).await,
            "udp" | "multicast" => one_way(&path, n).await,
            "echo" => echo(n).await,
            "tcp_echo" => tcp_echo(n).await,
            _ => panic!("unknown path {path:?}"),
        }
        let per_op = start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
        println!("{path}: {n} in {per_op:.2} us each, start-up included");
    });
}

async fn nodes(path: &str, n: u64) {
    let answerer = Cluster::join_with(options().channel(7).expect("channel"), Answer::new("pong"))
        .await
        .expect("join");
    let mut delivered = answerer.events();
    let asker = Cluster::join(options()).await.expect("join");
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
        tail::report(path, &samples);
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

async fn one_way(path: &str, n: u64) {
    let (sender, receiver, to) = if path == "multicast" {
        let group = Ipv4Addr::new(230, 230, 230, 230);
        let lo = Some(Ipv4Addr::LOCALHOST);
        let (a, setup) = socket::multicast_socket(group, port(25_200), false, lo).expect("socket");
        let (b, _) = socket::multicast_socket(group, port(25_200), false, lo).expect("socket");
        socket::drop_own_echoes(&a, b"ownsid01").expect("filter");
        let a = UdpSocket::from_std(a).expect("socket");
        let b = UdpSocket::from_std(b).expect("socket");
        (a, b, SocketAddr::V4(setup.destination))
    } else {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let sender = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = receiver.local_addr().expect("addr");
        (sender, receiver, to)
    };
    // A frame of ours as the filter sees it: `C0 8D`, length 8, `sid` "ownsid01", footer.
    let mut frame = vec![0xC0, 0x8D, 8, 4, 8];
    frame.extend_from_slice(b"ownsid01");
    frame.extend_from_slice(&[0, 0]);
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        sender.send_to(&frame, to).await.expect("send");
        receiver.recv_from(&mut buf).await.expect("receive");
    }
}

async fn echo(n: u64) {
    let echo = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let echo_addr = echo.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        client.send_to(&[7u8; 64], echo_addr).await.expect("send");
        client.recv_from(&mut buf).await.expect("receive");
    }
}

async fn tcp_echo(n: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const FRAME: usize = 74;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        conn.set_nodelay(true).expect("nodelay");
        let mut buf = [0u8; FRAME];
        while conn.read_exact(&mut buf).await.is_ok() {
            if conn.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
    client.set_nodelay(true).expect("nodelay");
    let mut buf = [7u8; FRAME];
    for _ in 0..n {
        client.write_all(&[7u8; FRAME]).await.expect("send");
        client.read_exact(&mut buf).await.expect("receive");
    }
}
