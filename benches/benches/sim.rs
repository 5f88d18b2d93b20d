//! The simulator as a benchmark: simulated seconds per wall-clock second for 64 and 1,000
//! nodes, convergence time after joining, and steady-state bytes per node per second, for
//! `Config::lan_fast()` and `Config::reference()`.
//!
//! `cargo bench -p cluster-benches --bench sim` (plain output, not criterion: each figure is
//! one deterministic run, only the wall-clock rate varies between machines).

use std::time::{Duration, Instant as WallClock};

use cluster_core::Config;
use cluster_core::sim::{Cluster, ClusterBuilder, LinkModel};

fn cluster<const SERVICES: usize>(
    n: usize,
    config: &Config,
) -> Cluster<cluster_core::DefaultPolicy, SERVICES, 512> {
    let mut b = ClusterBuilder::new(1);
    b.lan(LinkModel::lan());
    b.nodes_one_per_host(n, config);
    b.join_within(Duration::from_millis(300));
    b.build::<SERVICES, 512>()
}

fn run<const SERVICES: usize>(name: &str, n: usize, mut config: Config, steady: Duration) {
    config.remote = true;
    let wall = WallClock::now();
    let mut c = cluster::<SERVICES>(n, &config);
    let converged = c
        .run_until(|c| c.all_know_each_other(), u64::MAX)
        .expect("converges");
    let last_join = c.last_join().expect("joined");
    let join_wall = wall.elapsed();
    c.reset_counters();
    let start = c.now();
    let wall = WallClock::now();
    c.run_for(steady);
    let elapsed = wall.elapsed();
    let simulated = c.now().saturating_duration_since(start);
    let bytes: f64 = (0..n).map(|i| c.bytes_per_sec(i)).sum::<f64>() / n as f64;
    println!(
        "{name:<10} {n:>5} nodes | converged {:>5} ms after the last join ({:.1} s wall) | \
         steady: {:>7.1} simulated s per wall s, {:>7.1} bytes/node/s",
        converged.as_millis().saturating_sub(last_join.as_millis()),
        join_wall.as_secs_f64(),
        simulated.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
        bytes,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore any arguments.
    run::<128>("lan_fast", 64, Config::lan_fast(), Duration::from_secs(60));
    run::<128>(
        "reference",
        64,
        Config::reference(),
        Duration::from_secs(600),
    );
    run::<1024>(
        "lan_fast",
        1000,
        Config::lan_fast(),
        Duration::from_secs(10),
    );
    run::<1024>(
        "reference",
        1000,
        Config::reference(),
        Duration::from_secs(300),
    );
}
