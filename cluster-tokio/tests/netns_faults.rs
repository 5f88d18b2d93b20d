//! Five hosts in network namespaces on one bridge (`cluster_testkit::netns::Lan`), a
//! `cluster join` member on each, and faults:
//!
//! * loss: each host drops 20% of what it sends (nftables, `numgen random mod 100 < 20 drop`
//!   on `eth0`'s output: this kernel has no netem) while, for a minute, every host runs
//!   `cluster query` after `cluster query` (each a fresh node: join, wait for the members,
//!   query them, leave) against the members;
//! * a partition: one host's cable is cut for 15 s, then restored.
//!
//! Needs root, iproute2 and nft: `.ci/run` installs nftables and runs them with
//! `cargo test -p cluster-tokio --test netns_faults -- --ignored` (about 2 min). Elsewhere a
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
use common::lan::{members, remote_args, spawn_on};
use serde_json::Value;

const HOSTS: usize = 5;
const LOSS_PERCENT: u32 = 20;
const RUN: Duration = Duration::from_secs(60);

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
    let mut query = spawn_on(lan, host, &remote_args(port, &head));
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
    let (mut members, sids) = members(&lan, port, &[]);

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
            // An asker is gone once it is lost for any reason: at 20% loss its disconnect
            // may be lost too, and it then expires.
            if line["event"] == "lost" {
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

/// `cluster send` from `host` to the members that `resolve` selects, with `text`.
fn send(lan: &Lan, host: usize, port: u16, resolve: &str, text: &str) {
    let head = [
        "send".to_owned(),
        "--resolve".to_owned(),
        resolve.to_owned(),
        "--expect".to_owned(),
        "1".to_owned(),
        "--wait".to_owned(),
        "5s".to_owned(),
        text.to_owned(),
    ];
    let mut sender = spawn_on(lan, host, &remote_args(port, &head));
    let lines = sender.rest();
    assert_eq!(
        sender.wait_exit().code(),
        Some(0),
        "host {host}: send {text}: {lines:#?}"
    );
}

#[test]
#[ignore = "needs root and ip netns: run by .ci/run"]
fn a_host_cut_off_for_15_s_is_lost_then_found_within_5_s_and_nothing_sent_after_is_lost() {
    let name =
        "a_host_cut_off_for_15_s_is_lost_then_found_within_5_s_and_nothing_sent_after_is_lost";
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED {name}: {reason}");
        return;
    }
    const CUT: usize = HOSTS - 1;
    let lan = Lan::new("cl19p", "10.252.20", HOSTS)
        .unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    let port = fresh_port();
    let (mut members, sids) = members(&lan, port, &[]);

    // The cable of the last host is cut: both sides expire each other.
    lan.link(CUT, false).expect("link down");
    let cut = Instant::now();
    for i in 0..CUT {
        let lost = members[i].wait_event("lost", &sids[CUT]);
        assert_eq!(lost["reason"], "expired", "member {i}: {lost}");
        let lost = members[CUT].wait_event("lost", &sids[i]);
        assert_eq!(lost["reason"], "expired", "the cut member: {lost}");
    }
    let left = Duration::from_secs(15).saturating_sub(cut.elapsed());
    std::thread::sleep(left);

    // Restored: each side finds the other within 5 s (measured when the line is read, an
    // upper bound).
    lan.link(CUT, true).expect("link up");
    let healed = Instant::now();
    let mut found_after = Vec::new();
    for i in 0..CUT {
        members[i].wait_event("discovered", &sids[CUT]);
        found_after.push(healed.elapsed());
        members[CUT].wait_event("discovered", &sids[i]);
        found_after.push(healed.elapsed());
    }
    let slowest = found_after.iter().max().copied().unwrap_or_default();
    eprintln!("after healing, every member found every other within {slowest:?}");
    assert!(slowest <= Duration::from_secs(5), "{found_after:?}");

    // Events sent after healing, both ways, all arrive; queries get one answer per member.
    for n in 0..4 {
        let text = format!("to the cut host {n}");
        send(&lan, n, port, &format!("host{CUT}"), &text);
        members[CUT]
            .wait_line(|l| (l["event"] == "message" && l["data"] == text.as_str()).then_some(()));
        let text = format!("from the cut host {n}");
        send(&lan, CUT, port, &format!("host{n}"), &text);
        members[n]
            .wait_line(|l| (l["event"] == "message" && l["data"] == text.as_str()).then_some(()));
    }
    for host in [0, CUT] {
        let head = [
            "query".to_owned(),
            "--resolve".to_owned(),
            "member".to_owned(),
            "--expect".to_owned(),
            HOSTS.to_string(),
            "--wait".to_owned(),
            "5s".to_owned(),
            "after healing".to_owned(),
        ];
        let mut query = spawn_on(&lan, host, &remote_args(port, &head));
        let lines = query.rest();
        query.wait_exit();
        let responders: Vec<&Value> = lines
            .iter()
            .filter(|l| l["event"] == "response")
            .map(|l| &l["sid"])
            .collect();
        let distinct: HashSet<String> = responders.iter().map(|s| s.to_string()).collect();
        assert_eq!(responders.len(), HOSTS, "host {host}: {lines:#?}");
        assert_eq!(
            distinct.len(),
            HOSTS,
            "host {host}: an answer twice: {lines:#?}"
        );
    }
    drop(members);
}
