//! The node's metrics: `cluster join --metrics` serves them at `GET /metrics`, and
//! `NodeMetrics` registers them in an application's registry. Every scrape is read with a
//! real OpenMetrics parser (`common::openmetrics`), on loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use cluster_host::metrics::NodeMetrics;
use cluster_tokio::{Answer, Cluster, QuerySpec, Selector};
use common::openmetrics::{family, parse, sample};
use common::process::Node;
use common::{fresh_port, options};

/// `GET path` over HTTP/1.1: the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    assert!(
        head.contains("Connection: close"),
        "one request per connection: {head}"
    );
    (status, body.to_owned())
}

#[test]
fn join_serves_every_counter_services_and_frames_at_get_metrics() {
    let port = fresh_port();
    let mut a = Node::on_loopback("join", port, &["--metrics", "127.0.0.1:0"]);
    a.joined();
    let address = a.wait_line(|l| {
        (l["event"] == "metrics").then(|| l["address"].as_str().unwrap().to_owned())
    });
    let mut b = Node::on_loopback("join", port, &[]);
    let b_sid = b.joined();
    a.wait_event("discovered", &b_sid);

    let (status, body) = get(&address, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let families = parse(&body);
    let services = family(&families, "cluster_services");
    assert_eq!(services["type"], "gauge");
    assert_eq!(
        sample(services, "cluster_services", &[("location", "local")]),
        1.0
    );
    assert_eq!(
        sample(services, "cluster_services", &[("location", "remote")]),
        0.0
    );
    let received = family(&families, "cluster_frames_received");
    assert_eq!(received["type"], "counter");
    assert!(
        sample(
            received,
            "cluster_frames_received_total",
            &[("transport", "multicast")]
        ) > 0.0
    );
    let accepted = family(&families, "cluster_node_frames_accepted");
    assert!(sample(accepted, "cluster_node_frames_accepted_total", &[]) > 0.0);
    // Every counter `--stats` prints is there, by the same name.
    let node_counters = cluster_host::json::node_counters(&cluster_core::Stats::default());
    let transport_counters =
        cluster_host::json::transport_counters(&cluster_tokio::TransportStats::default());
    for (name, _) in node_counters {
        family(&families, &format!("cluster_node_{name}"));
    }
    for (name, _) in transport_counters {
        family(&families, &format!("cluster_transport_{name}"));
    }
    let latency = family(&families, "cluster_query_latency_seconds");
    assert_eq!(
        (latency["type"].as_str(), latency["unit"].as_str()),
        (Some("histogram"), Some("seconds"))
    );
    let interfaces = family(&families, "cluster_interfaces");
    assert_eq!(
        sample(interfaces, "cluster_interfaces", &[("interface", "lo")]),
        1.0
    );

    let (status, _) = get(&address, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_registers_the_metrics_and_sees_its_query_latencies() {
    let port = fresh_port();
    let metrics = NodeMetrics::new();
    let asker = Cluster::join(options(port).query_latency(metrics.query_latency()))
        .await
        .expect("join");
    let answerer = Cluster::join_with(options(port).tag("web").expect("tag"), Answer::new("yes"))
        .await
        .expect("join");
    let mut events = asker.events();
    common::wait_for(&mut events, |e| match e {
        cluster_tokio::Event::Discovered(s) if s.sid == answerer.sid() => Some(()),
        _ => None,
    })
    .await;
    let outcome = asker
        .query(QuerySpec::new(Selector::resolve(["web"]), "q"))
        .await
        .expect("query")
        .collect()
        .await;
    assert_eq!(outcome.responses.len(), 1);

    // The application's own registry, with a metric of its own next to the node's.
    let mut registry = prometheus_client::registry::Registry::default();
    let own = prometheus_client::metrics::counter::Counter::<u64>::default();
    own.inc();
    registry.register("app_requests", "The application's own", own);
    metrics.register(&mut registry);
    metrics.refresh(&asker).await.expect("refresh");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    let families = parse(&text);
    assert_eq!(
        sample(family(&families, "app_requests"), "app_requests_total", &[]),
        1.0
    );
    let latency = family(&families, "cluster_query_latency_seconds");
    assert_eq!(
        sample(latency, "cluster_query_latency_seconds_count", &[]),
        1.0
    );
    assert_eq!(
        sample(
            latency,
            "cluster_query_latency_seconds_bucket",
            &[("le", "+Inf")]
        ),
        1.0
    );
    let services = family(&families, "cluster_services");
    assert_eq!(
        sample(services, "cluster_services", &[("location", "local")]),
        1.0
    );
    asker.leave().await.expect("leave");
    answerer.leave().await.expect("leave");
}
