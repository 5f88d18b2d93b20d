//! Five hosts in network namespaces on one bridge, each dropping 20% of what it sends
//! (nftables, `numgen random mod 100 < 20 drop` on `eth0`'s output: this kernel has no
//! netem). `cluster join` members run on every host while, for a minute, every host runs
//! `cluster query` after `cluster query` (each a fresh node: join, wait for the members,
//! query them, leave) against the members.
//!
//! Needs root, iproute2 and nft: `.ci/run` installs nftables and runs it with
//! `cargo test -p cluster-tokio --test netns_loss -- --ignored` (about 80 s). Elsewhere the
//! test prints why it cannot run and passes.
//!
//! The members run `lan_fast` with a heartbeat of 200 ms and a ttl of 2 s: a member is
//! reported lost only when its 10 heartbeats of a ttl, and the probes of the silent-service
//! check (`Config::probe_silent`), are all lost; at 20% that is about 0.2^10 x 0.36^5 = 6e-10
//! per pair and heartbeat, 1.3e-5 for the 20 ordered pairs over the minute (see `Node`,
//! "Loss", in cluster-core).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster_testkit::netns::{Lan, nft_unavailable, unavailable};
use common::fresh_port;
use common::process::Node;
use serde_json::Value;

const HOSTS: usize = 5;
const LOSS_PERCENT: u32 = 20;
const RUN: Duration = Duration::from_secs(60);

fn node_args(port: u16, head: &[String]) -> Vec<String> {
    let mut args = head.to_vec();
    for a in [
        "--json",
        "--remote",
        "--port",
        &port.to_string(),
        "--heartbeat",
        "200ms",
        "--ttl",
        "2s",
    ] {
        args.push(a.to_owned());
    }
    args
}

fn spawn(lan: &Lan, host: usize, args: &[String]) -> Node {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Node::spawn(&["ip", "netns", "exec", &lan.hosts[host]], &args)
}

/// One `cluster query` to every member from `host`: its `done` line.
fn query_members(lan: &Lan, host: usize, port: u16, n: usize) -> Value {
    let head = [
        "query".to_owned(),
        "--resolve".to_owned(),
        "member".to_owned(),
        "--expect".to_owned(),
        HOSTS.to_string(),
        "--wait".to_owned(),
        "5s".to_owned(),
        format!("q{host}.{n}"),
    ];
    let mut query = spawn(lan, host, &node_args(port, &head));
    let lines = query.rest();
    query.wait_exit();
    lines
        .into_iter()
        .find(|l| l["event"] == "done")
        .unwrap_or_else(|| panic!("host {host}: query {n} printed no done line"))
}

/// What the queries of the minute measured.
#[derive(Debug, Default)]
struct Tally {
    queries: u64,
    /// Queries that started with fewer than every member (their node had not heard them all
    /// within 5 s).
    short: u64,
    targets: u64,
    responses: u64,
}

#[test]
#[ignore = "needs root, ip netns and nft: run by .ci/run"]
fn five_hosts_at_twenty_percent_loss_keep_every_member_and_answer_99_percent_of_queries() {
    let name =
        "five_hosts_at_twenty_percent_loss_keep_every_member_and_answer_99_percent_of_queries";
    if let Some(reason) = unavailable().or_else(nft_unavailable) {
        eprintln!("SKIPPED {name}: {reason}");
        return;
    }
    let lan = Lan::new("cl19l", "10.252.19", HOSTS)
        .unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    let port = fresh_port();
    let mut members: Vec<Node> = (0..HOSTS)
        .map(|i| {
            let head = [
                "join".to_owned(),
                "--tags".to_owned(),
                format!("member host{i}"),
                "--answer".to_owned(),
                format!("from host{i}"),
            ];
            spawn(&lan, i, &node_args(port, &head))
        })
        .collect();
    let sids: Vec<String> = members.iter_mut().map(Node::joined).collect();
    for (i, member) in members.iter_mut().enumerate() {
        for (j, sid) in sids.iter().enumerate() {
            if i != j {
                member.wait_event("discovered", sid);
            }
        }
    }

    for host in 0..HOSTS {
        lan.output_loss(host, LOSS_PERCENT)
            .unwrap_or_else(|e| panic!("nft: {e}"));
    }
    let lan = Arc::new(lan);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let askers: Vec<_> = (0..HOSTS)
        .map(|host| {
            let (lan, stop) = (Arc::clone(&lan), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let done = query_members(&lan, host, port, n);
                    n += 1;
                    let targets = done["targets"].as_u64().expect("targets");
                    tally.queries += 1;
                    tally.short += u64::from(targets < HOSTS as u64);
                    tally.targets += targets;
                    tally.responses += done["responses"].as_u64().expect("responses");
                }
                tally
            })
        })
        .collect();
    std::thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for asker in askers {
        let t = asker.join().expect("asker thread");
        total.queries += t.queries;
        total.short += t.short;
        total.targets += t.targets;
        total.responses += t.responses;
    }
    let elapsed = started.elapsed();
    let dropped: Vec<u64> = (0..HOSTS)
        .map(|h| lan.dropped(h).unwrap_or_else(|e| panic!("nft: {e}")))
        .collect();
    for host in 0..HOSTS {
        lan.output_loss(host, 0)
            .unwrap_or_else(|e| panic!("nft: {e}"));
    }

    // Every member's account: no member lost, each query answered by the policy once, but
    // for one case: a copy TCP delivers after its asker left (its disconnect came first) and
    // after 16 other askers came (each `cluster query` is a node of its own), which the node
    // no longer recognises (cluster-core `node/answered.rs`). Counted apart, and reported.
    let mut lost = Vec::new();
    let mut answered_twice = Vec::new();
    let mut after_leaving = 0;
    for (i, member) in members.iter_mut().enumerate() {
        member.signal("TERM");
        let lines = member.rest();
        let mut received: HashMap<(String, String), u32> = HashMap::new();
        let mut departed: HashSet<String> = HashSet::new();
        for line in &lines {
            let sid = line["sid"].to_string();
            // The disconnects of the members leaving at the end are not losses.
            if line["event"] == "lost"
                && line["reason"] != "disconnect"
                && sids.iter().any(|s| line["sid"] == s.as_str())
            {
                lost.push((i, line.clone()));
            }
            if line["event"] == "lost" && line["reason"] == "disconnect" {
                departed.insert(sid.clone());
            }
            if line["event"] == "query" {
                let count = received
                    .entry((sid.clone(), line["ruid"].to_string()))
                    .or_default();
                *count += 1;
                if *count > 1 {
                    if departed.contains(&sid) {
                        after_leaving += 1;
                    } else {
                        answered_twice.push((i, line.clone()));
                    }
                }
            }
        }
    }
    eprintln!(
        "{LOSS_PERCENT}% loss for {elapsed:?}: {total:?}; {:.2}% answered in time; packets \
         dropped per host {dropped:?}; copies answered again after their asker left: \
         {after_leaving}",
        total.responses as f64 * 100.0 / total.targets.max(1) as f64
    );
    assert!(
        dropped.iter().all(|d| *d > 100),
        "the loss rules dropped {dropped:?}"
    );
    assert!(total.queries >= 50, "{total:?}");
    assert!(
        total.responses * 100 >= total.targets * 99,
        "fewer than 99% of the answers arrived in time: {total:?}"
    );
    assert_eq!(lost, [], "members reported lost");
    assert_eq!(
        answered_twice,
        [],
        "queries of live askers answered twice by a member's policy"
    );
}
