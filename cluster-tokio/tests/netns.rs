//! Three hosts on one machine: network namespaces on a bridge, created and removed by the
//! test (addresses 10.250.0.1-3/24 exist only inside them). `cluster` processes run inside
//! with `ip netns exec` in remote mode. Needs root and iproute2; otherwise the test prints why
//! and passes without running.

mod common;

use cluster_testkit::netns::{Lan, unavailable};
use common::fresh_port;
use common::process::Node;

/// `cluster join` on host `i` of `lan`.
fn join(lan: &Lan, i: usize, port: u16) -> Node {
    let args = node_args(
        port,
        &[
            "join",
            "--tags",
            &format!("host{i}"),
            "--answer",
            &format!("from host{i}"),
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Node::spawn(&["ip", "netns", "exec", &lan.hosts[i]], &args)
}

fn node_args(port: u16, head: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = head.iter().map(|s| (*s).to_owned()).collect();
    for a in [
        "--json",
        "--remote",
        "--port",
        &port.to_string(),
        "--heartbeat",
        "200ms",
        "--ttl",
        "1500ms",
    ] {
        args.push(a.to_owned());
    }
    args
}

#[test]
fn three_hosts_discover_query_over_tcp_and_notice_a_cut_cable() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED three_hosts_discover_query_over_tcp_and_notice_a_cut_cable: {reason}");
        return;
    }
    let lab = Lan::new("cl", "10.250.0", 3)
        .unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    let port = fresh_port();
    let mut nodes: Vec<Node> = (0..3).map(|i| join(&lab, i, port)).collect();
    let sids: Vec<String> = nodes.iter_mut().map(Node::joined).collect();

    // Remote-mode discovery, each host with its own address.
    for (i, node) in nodes.iter_mut().enumerate() {
        for (j, sid) in sids.iter().enumerate() {
            if i == j {
                continue;
            }
            let seen = node.wait_event("discovered", sid);
            assert_eq!(
                seen["ip"],
                format!("10.250.0.{}", j + 1),
                "host {i} sees host {j}"
            );
            assert_eq!(seen["local"], false);
            assert_eq!(seen["tags"], serde_json::json!([format!("host{j}")]));
        }
    }

    // A direct cross-host query: host 0 asks host 1, over TCP (no direct write failed, so
    // nothing went by the multicast fallback).
    let args = node_args(
        port,
        &[
            "query",
            "--resolve",
            "host1",
            "--expect",
            "1",
            "--wait",
            "5s",
            "ping?",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut query = Node::spawn(&["ip", "netns", "exec", &lab.hosts[0]], &args);
    let lines = query.rest();
    assert_eq!(query.wait_exit().code(), Some(0), "lines: {lines:#?}");
    let response = lines
        .iter()
        .find(|l| l["event"] == "response")
        .expect("a response");
    assert_eq!(response["sid"], sids[1].as_str());
    assert_eq!(response["data"], "from host1");
    let done = lines.last().unwrap();
    assert_eq!(done["direct_failures"], 0, "done: {done}");
    assert!(done["direct_writes"].as_u64() >= Some(1), "done: {done}");

    // Host 2's cable is cut: the others drop it; restored: they find it again.
    lab.link(2, false).expect("link down");
    for node in nodes.iter_mut().take(2) {
        let lost = node.wait_event("lost", &sids[2]);
        assert_eq!(lost["reason"], "expired");
    }
    lab.link(2, true).expect("link up");
    for node in nodes.iter_mut().take(2) {
        let seen = node.wait_event("discovered", &sids[2]);
        assert_eq!(seen["ip"], "10.250.0.3");
    }
    drop(nodes);
    drop(lab);
}
