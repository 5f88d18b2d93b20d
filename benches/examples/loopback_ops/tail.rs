//! The `query_tail` paths: each query round trip timed, with the context switches of the
//! thread running it (Linux: `/proc/thread-self/status`, read outside the timed part), so
//! that a slow round trip can be told apart from one whose thread was preempted.

use std::time::{Duration, Instant};

/// The thread's voluntary and involuntary context switches so far.
fn switches() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let count = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        count("voluntary_ctxt_switches:"),
        count("nonvoluntary_ctxt_switches:"),
    )
}

/// One round trip's time and whether its thread was switched out meanwhile.
pub(crate) struct Sample {
    took: Duration,
    switched: bool,
}

/// Times `round_trip` once.
pub(crate) async fn sample(round_trip: impl Future<Output = ()>) -> Sample {
    let before = switches();
    let start = Instant::now();
    round_trip.await;
    let took = start.elapsed();
    let after = switches();
    Sample {
        took,
        switched: after != before,
    }
}

fn at(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * q) as usize)
        .copied()
        .unwrap_or_default()
}

/// Prints p50 and p99 of all the samples, how many of those at or over the p99 had their
/// thread switched out, and p50, p99 and p99.5 of the samples that were not.
pub(crate) fn report(path: &str, samples: &[Sample]) {
    let mut all: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    all.sort_unstable();
    let p99 = at(&all, 0.99);
    let slow = samples.iter().filter(|s| s.took >= p99).count();
    let slow_switched = samples
        .iter()
        .filter(|s| s.took >= p99 && s.switched)
        .count();
    let switched = samples.iter().filter(|s| s.switched).count();
    let mut quiet: Vec<Duration> = samples
        .iter()
        .filter(|s| !s.switched)
        .map(|s| s.took)
        .collect();
    quiet.sort_unstable();
    println!(
        "{path}: p50 {:?}, p99 {p99:?}; {switched} of {} switched out, {slow_switched} of the {slow} at or over the p99",
        at(&all, 0.5),
        samples.len(),
    );
    println!(
        "{path} not switched out: p50 {:?}, p99 {:?}, p99.5 {:?} ({} samples)",
        at(&quiet, 0.5),
        at(&quiet, 0.99),
        at(&quiet, 0.995),
        quiet.len()
    );
}
