//! Runs one simulated LAN for profiling and for the long runs the CI leaves out:
//! `sim_run PROFILE NODES SECONDS [CAPACITY]` with PROFILE `lan_fast` or `reference`. Every
//! node sits on its own host (remote mode), joins within 300 ms; the run goes until every
//! node knows every other, then for SECONDS more simulated seconds. Prints the convergence
//! time, the wall time of both phases and the steady rate in simulated seconds per wall
//! second, and per second of CPU time of the thread (from `/proc/thread-self/schedstat`, on
//! Linux: the fairer figure on a shared machine).
//!
//! CAPACITY is the number of services each node can hold (128, 1024, 4096 or 16384; by
//! default the smallest that holds every other node). A node's registry is a fixed array, so
//! a LAN of n nodes that all know each other holds n × CAPACITY records of 340 bytes: 10,000
//! nodes need 16384-service nodes, about 55 GB. With a CAPACITY below NODES − 1 the run does
//! not wait for convergence (it cannot happen): it runs SECONDS past the last join and prints
//! how many services the nodes know.
//!
//! `cargo run --release -p cluster-benches --example sim_run -- reference 10000 10 1024` is
//! the 10,000-node run of `BENCHMARKS.md` (with `128` instead of `1024`, the one that
//! finished there: the same joins, smaller registries); under `valgrind --tool=callgrind` a
//! small LAN shows where the simulator spends its instructions.
//!
//! With `SIM_RUN_PROGRESS_MS=M` in the environment, a long run prints a line to stderr every
//! M simulated milliseconds: simulated time, steps, wall and CPU time, resident memory,
//! connections opened and datagram copies scheduled so far (the run itself is the same: it
//! only stops at those instants to print).

use std::time::{Duration, Instant as WallClock};

use cluster_core::sim::{Cluster, ClusterBuilder, LinkModel};
use cluster_core::{Config, DefaultPolicy, Policy};

/// CPU time of this thread so far, when Linux tells it.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Resident memory of this process in MB, when Linux tells it.
fn resident_mb() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096 / 1_000_000)
}

/// The progress interval of `SIM_RUN_PROGRESS_MS`, if set.
fn progress_interval() -> Option<Duration> {
    let ms: u64 = std::env::var("SIM_RUN_PROGRESS_MS").ok()?.parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// `c.run_for(duration)`, printing progress lines at every `SIM_RUN_PROGRESS_MS`.
fn run_for_reporting<P: Policy + Clone + Send, const SERVICES: usize>(
    c: &mut Cluster<P, SERVICES, 512>,
    duration: Duration,
) {
    let Some(every) = progress_interval() else {
        c.run_for(duration);
        return;
    };
    let end = c.now().saturating_add_millis(duration.as_millis() as u64);
    let wall = WallClock::now();
    while c.now() < end {
        let left = Duration::from_millis(end.as_millis() - c.now().as_millis());
        c.run_for(every.min(left));
        let net = c.net().stats();
        eprintln!(
            "progress: {} simulated ms, {} steps, {:.1} s wall, {:.1} s CPU, {} MB resident, \
             {} connections opened, {} datagram copies scheduled",
            c.now().as_millis(),
            c.steps(),
            wall.elapsed().as_secs_f64(),
            cpu_time().unwrap_or_default().as_secs_f64(),
            resident_mb().unwrap_or(0),
            net.connections_opened,
            net.datagrams_scheduled,
        );
    }
}

/// Simulated seconds per CPU second since `cpu_start`, or NaN without `/proc`.
fn per_cpu_second(simulated: Duration, cpu_start: Option<Duration>) -> f64 {
    match (cpu_start, cpu_time()) {
        (Some(start), Some(end)) => {
            simulated.as_secs_f64() / end.saturating_sub(start).as_secs_f64().max(1e-9)
        }
        _ => f64::NAN,
    }
}

fn run<const SERVICES: usize>(profile: &str, n: usize, steady: Duration) {
    let mut config = match profile {
        "lan_fast" => Config::lan_fast(),
        "reference" => Config::reference(),
        other => panic!("unknown profile {other}: lan_fast or reference"),
    };
    config.remote = true;
    let wall = WallClock::now();
    let mut b = ClusterBuilder::new(1);
    b.lan(LinkModel::lan());
    b.log_events(false);
    // Full registries evict: a Lost event per evicted sid, n² of them in a large LAN.
    b.record_losses(false);
    b.nodes_one_per_host(n, &config);
    b.join_within(Duration::from_millis(300));
    let mut c: Cluster<DefaultPolicy, SERVICES, 512> = b.build();
    if SERVICES < n.saturating_sub(1) {
        run_capped(&mut c, profile, steady);
        return;
    }
    let converged = c
        .run_until(|c| c.all_know_each_other(), u64::MAX)
        .expect("converges");
    let last_join = c.last_join().expect("joined");
    let join_wall = wall.elapsed();
    let start = c.now();
    let cpu = cpu_time();
    let wall = WallClock::now();
    run_for_reporting(&mut c, steady);
    let elapsed = wall.elapsed();
    let simulated = c.now().saturating_duration_since(start);
    println!(
        "{profile} {n} nodes: converged {} ms after the last join ({:.1} s wall); {:.1} \
         simulated s in {:.1} s wall: {:.2} simulated s per wall s, {:.2} per CPU s; {} steps, \
         {} of them repeated heartbeats after which the node was not driven",
        converged.as_millis().saturating_sub(last_join.as_millis()),
        join_wall.as_secs_f64(),
        simulated.as_secs_f64(),
        elapsed.as_secs_f64(),
        simulated.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
        per_cpu_second(simulated, cpu),
        c.steps(),
        c.quiet_inputs(),
    );
}

/// A LAN larger than each node's registry: joins, then `steady` more; prints what nodes know.
fn run_capped<const SERVICES: usize>(
    c: &mut Cluster<DefaultPolicy, SERVICES, 512>,
    profile: &str,
    steady: Duration,
) {
    let wall = WallClock::now();
    run_for_reporting(c, Duration::from_millis(300));
    let join_wall = wall.elapsed();
    let start = c.now();
    let cpu = cpu_time();
    let wall = WallClock::now();
    run_for_reporting(c, steady);
    let elapsed = wall.elapsed();
    let simulated = c.now().saturating_duration_since(start);
    let known: Vec<usize> = (0..c.len())
        .filter_map(|i| c.node(i).map(cluster_core::Node::known))
        .collect();
    println!(
        "{profile} {} nodes, {SERVICES} services each: joins in {:.1} s wall; {:.1} simulated s \
         in {:.1} s wall: {:.2} simulated s per wall s, {:.2} per CPU s; known services per \
         node {}..={}; {} steps",
        c.len(),
        join_wall.as_secs_f64(),
        simulated.as_secs_f64(),
        elapsed.as_secs_f64(),
        simulated.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
        per_cpu_second(simulated, cpu),
        known.iter().min().unwrap_or(&0),
        known.iter().max().unwrap_or(&0),
        c.steps(),
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let profile = args.next().unwrap_or_else(|| "lan_fast".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let steady = Duration::from_secs(secs);
    let capacity: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(n.saturating_sub(1));
    match capacity {
        0..=128 => run::<128>(&profile, n, steady),
        129..=1024 => run::<1024>(&profile, n, steady),
        1025..=4096 => run::<4096>(&profile, n, steady),
        _ => run::<16_384>(&profile, n, steady),
    }
}
