//! A gateway between two routed subnets (network namespaces created and removed by the
//! test, a router namespace forwarding, no multicast routing). Subnet a holds a LAN-only
//! node (`cluster join` without seeds: it never speaks `mx`) and two gateways (nodes with
//! seeds on the same LAN, segment `plant-a`); subnet b holds a node with seeds. From b, the
//! LAN-only node is discovered (learned through a gateway, in segment `plant-a`), queried
//! and sent an event; it gets each once, from one of the gateways, and the asker gets one
//! answer. When the gateway that relayed dies, the other one relays. The same again sealed
//! (every node with the key file), with a node with seeds but without the key on subnet b
//! that learns nothing. Needs root and iproute2; otherwise the test prints why and passes
//! without running (under CI it fails).

mod common;

use std::time::Duration;

use cluster_testkit::netns::{KeyFile, unavailable};
use common::fresh_port;
use common::process::Node;
use common::routed::routed;
use serde_json::Value;

const SEED_PORT: &str = "41917";
const SEEDS: [&str; 2] = ["10.253.1.11:41917", "10.253.2.11:41917"];

/// The nodes' common arguments: the multicast port and, for a sealed cluster, the key file.
struct Cluster {
    port: String,
    extra: Vec<String>,
}

impl Cluster {
    /// `cluster <head...> --json --remote` with fast timers in namespace `ns`, plus `tail`
    /// and the common arguments.
    fn spawn(&self, ns: &str, head: &[&str], tail: &[&str]) -> Node {
        let mut args: Vec<&str> = head.to_vec();
        args.extend_from_slice(&[
            "--json",
            "--remote",
            "--port",
            &self.port,
            "--heartbeat",
            "200ms",
        ]);
        args.extend_from_slice(tail);
        args.extend(self.extra.iter().map(String::as_str));
        Node::spawn(&["ip", "netns", "exec", ns], &args)
    }

    /// A node with seeds (a gateway on its LAN) in segment `segment`, listening on the seed
    /// port when `seed_node`.
    fn gateway(&self, ns: &str, tag: &str, seed_node: bool, segment: &str) -> Node {
        let mut tail = vec![
            "--segment",
            segment,
            "--ttl",
            "1500ms",
            "--tags",
            tag,
            "--seed",
            SEEDS[0],
            "--seed",
            SEEDS[1],
        ];
        if seed_node {
            tail.extend_from_slice(&["--tcp-port", SEED_PORT]);
        }
        self.spawn(ns, &["join"], &tail)
    }

    /// `cluster query` (or `send`) from `ns` with `--seed` the b side's seed, to
    /// `--resolve lan-only`; returns its output lines after its exit status was checked.
    fn across(&self, ns: &str, command: &str, text: &str) -> Vec<Value> {
        let mut tail = vec![
            "--seed",
            SEEDS[1],
            "--resolve",
            "lan-only",
            "--expect",
            "1",
            "--wait",
            "10s",
        ];
        if command == "query" {
            tail.extend_from_slice(&["--timeout", "3s"]);
        }
        tail.push(text);
        let mut node = self.spawn(ns, &[command], &tail);
        let lines = node.rest();
        assert_eq!(node.wait_exit().code(), Some(0), "{command}: {lines:#?}");
        lines
    }
}

/// The lines of `node` with this event, read for `within` (nothing else is kept).
fn events_for(node: &mut Node, event: &str, within: Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + within;
    let mut found = Vec::new();
    while let Some(line) = node.try_line(deadline) {
        if line["event"] == event {
            found.push(line);
        }
    }
    found
}

/// The whole scenario (see the module docs), `sealed` or not; `tag` names the lab.
fn through_gateways(tag: &str, sealed: bool) {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED {tag}: {reason}");
        return;
    }
    let net = routed(tag, "10.253", [3, 2]).expect("lab");
    // One key, marked to send with.
    let key_file = sealed.then(|| KeyFile::new(tag, &format!("*1 {}\n", "5a".repeat(32))));
    let mut cluster = Cluster {
        port: fresh_port().to_string(),
        extra: Vec::new(),
    };
    if let Some(key_file) = &key_file {
        cluster.extra = vec!["--key-file".into(), key_file.path().into()];
    }
    let mut lan_only = cluster.spawn(
        &net.a[1],
        &["join"],
        &[
            "--ttl",
            "1500ms",
            "--tags",
            "lan-only",
            "--answer",
            "from the lan",
        ],
    );
    let lan_sid = lan_only.joined();
    let mut gateways = [
        cluster.gateway(&net.a[0], "gw1", true, "plant-a"),
        cluster.gateway(&net.a[2], "gw2", false, "plant-a"),
    ];
    let gateway_sids: Vec<String> = gateways.iter_mut().map(Node::joined).collect();
    let mut far = cluster.gateway(&net.b[0], "far", true, "plant-b");
    let far_sid = far.joined();
    // With a sealed cluster, a node with the seeds but without the key learns nothing.
    let mut keyless = sealed.then(|| {
        let plain = Cluster {
            port: cluster.port.clone(),
            extra: Vec::new(),
        };
        plain.gateway(&net.b[1], "keyless", false, "plant-b")
    });
    // The far side learns the LAN-only node through a gateway.
    let seen = far.wait_event("discovered", &lan_sid);
    assert_eq!(seen["learned"], "gateway", "{seen}");
    assert_eq!(seen["segment"], "plant-a", "the gateway's segment: {seen}");
    lan_only.forget_seen();

    // A query from the far side: one answer, and the LAN-only node was asked once, by one
    // of the gateways (a querier uses the lowest gateway sid among the routes it knows; one
    // that has just started may know one gateway's route only).
    let lines = cluster.across(&net.b[1], "query", "status?");
    let answers: Vec<&Value> = lines.iter().filter(|l| l["event"] == "response").collect();
    assert_eq!(answers.len(), 1, "{lines:#?}");
    assert_eq!(answers[0]["sid"], lan_sid.as_str());
    assert_eq!(answers[0]["data"], "from the lan");
    let asked = events_for(&mut lan_only, "query", Duration::from_secs(2));
    assert_eq!(asked.len(), 1, "asked once: {asked:#?}");
    let relaying = asked[0]["sid"].as_str().unwrap().to_owned();
    assert!(gateway_sids.contains(&relaying), "asked by {relaying}");
    assert_eq!(asked[0]["data"], "status?");

    // An event from the far side arrives once, from a gateway.
    let _ = cluster.across(&net.b[1], "send", "hello from b");
    let got = events_for(&mut lan_only, "message", Duration::from_secs(2));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["data"], "hello from b");
    let sender = got[0]["sid"].as_str().unwrap_or_default();
    assert!(gateway_sids.iter().any(|s| s == sender), "{got:#?}");

    if let Some(keyless) = &mut keyless {
        let learned = events_for(keyless, "discovered", Duration::from_millis(100));
        let sealed_sids: Vec<&String> = gateway_sids.iter().chain([&lan_sid, &far_sid]).collect();
        assert!(
            learned
                .iter()
                .all(|l| sealed_sids.iter().all(|s| l["sid"] != s.as_str())),
            "the keyless node learned: {learned:#?}"
        );
    }

    // The relaying gateway dies: the other one takes over.
    let dead = gateway_sids.iter().position(|s| *s == relaying).unwrap();
    gateways[dead].kill();
    far.wait_event("lost", &relaying);
    let lines = cluster.across(&net.b[1], "query", "still there?");
    let answers: Vec<&Value> = lines.iter().filter(|l| l["event"] == "response").collect();
    assert_eq!(answers.len(), 1, "{lines:#?}");
    let asked = events_for(&mut lan_only, "query", Duration::from_secs(1));
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert_eq!(
        asked[0]["sid"].as_str(),
        Some(gateway_sids[1 - dead].as_str())
    );
}

#[test]
fn a_lan_only_node_is_found_queried_and_sent_to_through_one_of_two_gateways() {
    through_gateways("cgw", false);
}

#[test]
fn a_sealed_cluster_relays_through_gateways_with_the_key_and_tells_a_keyless_node_nothing() {
    through_gateways("cgs", true);
}
