//! A node under a flood on loopback, plain and sealed side by side (issue 8's figures).
//!
//! `cargo bench -p cluster-benches --bench flood` (environment: `FLOOD_RUNS`, default 3;
//! `FLOOD_SECS`, the length of each flood, default 3; `FLOOD_PACED`, the rate of the paced
//! flood, default 50,000 datagrams a second).
//!
//! Each configuration runs in a child process of its own (this program, started again with
//! `CLUSTER_FLOOD_CHILD=plain|sealed`), so that its peak memory (`VmHWM`) is its own. In the
//! child, on loopback, on a port of its own:
//!
//! * the node under test (`Cluster::start`, its driver on a current-thread runtime of its own
//!   thread, as `cluster join` runs it) answers queries with `pong`; a second node, the
//!   querier, on the main thread's runtime, queries it one query at a time;
//! * a sniffer captures the two nodes' datagrams for a second, for the replays and forgeries;
//! * **quiet**: 1,000 queries without flood (p50, p99);
//! * **flood + queries**: one thread sends the flood of the test (`Mix::MIXED`: garbage,
//!   bogus lengths, 3,000 invented services, foreign hids, replays, forged sealed frames;
//!   `cluster_testkit::flooder`) to the group from four ephemeral ports as fast as the
//!   kernel takes it, for `FLOOD_SECS`, while the querier keeps querying (p50, p99, and
//!   queries that timed out after 2 s). The querier is a real node on the same host: it
//!   receives the same flood and handles it on the same two cores;
//! * **paced flood + queries**: the same at `FLOOD_PACED` datagrams a second, a rate both
//!   nodes keep up with;
//! * **alone**: the querier leaves; then three floods, each `FLOOD_SECS`, of the mix, of
//!   invented services only and of forged sealed frames only.
//!
//! For each flood the node's counters are read (`Handle::stats`) when the flood starts, when
//! it stops (the rate: datagrams read per second of flood), and once the node has drained its
//! socket (the totals: datagrams sent, read by the node, dropped by the kernel because the
//! node's receive buffer was full, and the node's verdicts). Peak memory is the child's
//! `VmHWM`: the node under test, the querier and the flooder's buffers, before the floods and
//! at the end.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster_core::Stats;
use cluster_testkit::flooder;
use cluster_tokio::{Answer, Cluster, Event, Handle, Options, QuerySpec, Selector, TransportStats};
use flooder::{Flood, Kind, Mix, Senders, Sniffer};
use serde_json::{Value, json};

const CHILD: &str = "CLUSTER_FLOOD_CHILD";
const HID: &str = "02:00:00:00:00:f1";
const QUIET_QUERIES: usize = 1000;
const INVENTED_SIDS: u32 = 3_000;
const PATIENCE: Duration = Duration::from_secs(10);

fn main() {
    if let Ok(config) = std::env::var(CHILD) {
        child(config == "sealed");
        return;
    }
    let runs: usize = env_number("FLOOD_RUNS", 3);
    let exe = std::env::current_exe().expect("current exe");
    let mut results: Vec<(String, Value)> = Vec::new();
    for run in 1..=runs {
        for config in ["plain", "sealed"] {
            let output = Command::new(&exe)
                .env(CHILD, config)
                .output()
                .expect("child");
            assert!(
                output.status.success(),
                "{config} run {run} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let text = String::from_utf8_lossy(&output.stdout);
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .expect("a RESULT line");
            let value: Value = serde_json::from_str(line).expect("json");
            println!("run {run}, {config}: {value}");
            results.push((config.to_owned(), value));
        }
    }
    report(&results, runs);
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `min–max` of one figure over the runs of a configuration.
fn range(results: &[(String, Value)], config: &str, path: &[&str]) -> String {
    let values: Vec<f64> = results
        .iter()
        .filter(|(c, _)| c == config)
        .filter_map(|(_, v)| path.iter().try_fold(v, |v, k| v.get(*k))?.as_f64())
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let show = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    if values.is_empty() {
        "-".to_owned()
    } else if show(min) == show(max) {
        show(min)
    } else {
        format!("{}–{}", show(min), show(max))
    }
}

fn report(results: &[(String, Value)], runs: usize) {
    println!();
    println!("{runs} run(s) of each; ranges are min–max over the runs");
    println!("{:<52} {:>16} {:>16}", "figure", "plain", "sealed");
    let rows: &[(&str, &[&str])] = &[
        ("quiet: query p50 (µs)", &["quiet", "p50_us"]),
        ("quiet: query p99 (µs)", &["quiet", "p99_us"]),
    ];
    table(results, rows);
    for (phase, title) in [
        ("with_queries", "flood + queries, as fast as possible"),
        ("paced", "flood + queries, paced (FLOOD_PACED per s)"),
        ("mix", "alone, mix"),
        ("invented", "alone, invented services only"),
        ("forged", "alone, forged sealed frames only"),
    ] {
        println!("{title}:");
        let mut rows: Vec<(&str, Vec<&str>)> = vec![
            ("  sent per s", vec![phase, "sent_per_s"]),
            (
                "  dropped by the kernel at the node (%)",
                vec![phase, "kernel_dropped_pct"],
            ),
            (
                "  absorbed by the node per s",
                vec![phase, "absorbed_per_s"],
            ),
            (
                "  node's share of one core (%)",
                vec![phase, "node_core_pct"],
            ),
            (
                "  node CPU per absorbed datagram (µs)",
                vec![phase, "cpu_us_per_datagram"],
            ),
            (
                "  node's ceiling on one core (per s)",
                vec![phase, "ceiling_per_s"],
            ),
            ("  node's own datagrams sent", vec![phase, "node_sent"]),
            ("  node's TCP connects", vec![phase, "node_connects"]),
        ];
        if phase == "with_queries" || phase == "paced" {
            rows.extend([
                (
                    "  querier's share of one core (%)",
                    vec![phase, "querier_core_pct"],
                ),
                ("  query p50 (µs)", vec![phase, "p50_us"]),
                ("  query p99 (µs)", vec![phase, "p99_us"]),
                ("  queries", vec![phase, "queries"]),
                ("  queries timed out", vec![phase, "timeouts"]),
            ]);
        }
        let rows: Vec<(&str, &[&str])> = rows.iter().map(|(n, p)| (*n, p.as_slice())).collect();
        table(results, &rows);
    }
    let rows: &[(&str, &[&str])] = &[
        ("VmHWM before the floods (KiB)", &["hwm_before_kib"]),
        ("VmHWM at the end (KiB)", &["hwm_end_kib"]),
        ("VmRSS at the end (KiB)", &["rss_end_kib"]),
        ("load average (1 min) at the start", &["load_start"]),
        ("load average (1 min) at the end", &["load_end"]),
    ];
    table(results, rows);
}

fn table(results: &[(String, Value)], rows: &[(&str, &[&str])]) {
    for (name, path) in rows {
        println!(
            "{name:<52} {:>16} {:>16}",
            range(results, "plain", path),
            range(results, "sealed", path)
        );
    }
}

// ----- the child -----

fn options(port: u16, keys: Option<&std::path::Path>) -> Options {
    let options = Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(port)
        .hid(HID)
        .heartbeat(Duration::from_millis(200))
        .ttl(Duration::from_millis(1500));
    match keys {
        Some(path) => options.key_file(path).expect("key file"),
        None => options,
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[at].as_secs_f64() * 1e6
}

/// The 1-minute load average (`/proc/loadavg`).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The inodes of the UDP sockets bound to `port` (`/proc/net/udp`).
fn udp_inodes(port: u16) -> Vec<u64> {
    udp_table()
        .into_iter()
        .filter(|(p, _, _)| *p == port)
        .map(|(_, inode, _)| inode)
        .collect()
}

/// Datagrams the kernel dropped for the socket `inode` because its receive buffer was full
/// (the `drops` column of `/proc/net/udp`).
fn socket_drops(inode: u64) -> u64 {
    udp_table()
        .into_iter()
        .find(|(_, i, _)| *i == inode)
        .map_or(0, |(_, _, drops)| drops)
}

/// `(local port, inode, drops)` of every IPv4 UDP socket.
fn udp_table() -> Vec<(u16, u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.split(':').nth(1)?, 16).ok()?;
            let inode = fields.get(9)?.parse().ok()?;
            let drops = fields.last()?.parse().ok()?;
            Some((port, inode, drops))
        })
        .collect()
}

/// User and system CPU time of thread `tid` of this process, in seconds
/// (`/proc/self/task/TID/stat`, fields 14 and 15, 100 ticks a second).
fn thread_cpu(tid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

/// The id of the calling thread.
fn thread_id() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .expect("tid")
}

/// What the node had done, by its counters, its socket and its thread's CPU time.
#[derive(Debug, Clone, Copy)]
struct Sample {
    stats: Stats,
    transport: TransportStats,
    drops: u64,
    cpu: f64,
}

/// The node under test, as the child watches it.
struct Watched {
    handle: Handle,
    inode: u64,
    tid: u32,
}

impl Watched {
    fn sample(&self, rt: &tokio::runtime::Runtime) -> Sample {
        let (stats, transport) = rt.block_on(self.handle.stats()).expect("stats");
        Sample {
            stats,
            transport,
            drops: socket_drops(self.inode),
            cpu: thread_cpu(self.tid),
        }
    }

    /// Waits until the node has read everything queued on its socket: its datagram count
    /// grows by less than 10 in 200 ms (the querier's heartbeats, five a second, go on), at
    /// most 10 s.
    fn drained(&self, rt: &tokio::runtime::Runtime) -> Sample {
        let mut last = self.sample(rt);
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.sample(rt);
            if now.transport.datagrams_received < last.transport.datagrams_received + 10 {
                return now;
            }
            last = now;
        }
        panic!("the node was still reading datagrams 10 s after the flood");
    }
}

/// One query; its round trip, or `None` when it was not answered.
async fn query(querier: &Handle, target: cluster_core::Sid) -> Option<Duration> {
    let start = Instant::now();
    let outcome = querier
        .query(QuerySpec::new(Selector::service(target), "ping"))
        .await
        .ok()?
        .collect()
        .await;
    (outcome.responses.len() == 1).then(|| start.elapsed())
}

/// What one flood did to the node: `start` when it started, `stop` when it stopped, `end`
/// once the node had drained its socket.
fn flood_figures(
    secs: f64,
    sent: &flooder::Tally,
    start: &Sample,
    stop: &Sample,
    end: &Sample,
) -> Value {
    let read_during = stop.transport.datagrams_received - start.transport.datagrams_received;
    // Everything the node read, its own multicast sends that came back (those its socket
    // filter does not drop) and the querier's datagrams included.
    let read = end.transport.datagrams_received - start.transport.datagrams_received;
    let dropped = end.drops - start.drops;
    // The flood's datagrams that reached the node: some were read in the drain after it.
    let absorbed = sent.sent.saturating_sub(dropped);
    let cpu = end.cpu - start.cpu;
    let d = |f: fn(&Stats) -> u64| f(&end.stats) - f(&start.stats);
    json!({
        "secs": secs,
        "sent": sent.sent,
        "sent_per_s": sent.sent as f64 / secs,
        "read": read,
        "read_per_s": read_during as f64 / secs,
        "kernel_dropped": dropped,
        "kernel_dropped_pct": 100.0 * dropped as f64 / sent.sent.max(1) as f64,
        "absorbed_per_s": absorbed as f64 / secs,
        "node_cpu_s": cpu,
        "node_core_pct": 100.0 * (stop.cpu - start.cpu) / secs,
        "cpu_us_per_datagram": cpu * 1e6 / absorbed.max(1) as f64,
        "ceiling_per_s": absorbed as f64 / cpu.max(0.01),
        "node_sent": end.transport.datagrams_sent - start.transport.datagrams_sent,
        "node_connects": end.transport.connects - start.transport.connects,
        "accepted": d(|s| s.frames_accepted),
        "dropped_by_node": d(|s| s.frames_dropped),
        "decode_errors": d(|s| s.decode_errors),
        "stream_overflows": d(|s| s.stream_overflows),
        "filtered_out": d(|s| s.filtered_out),
        "own_echoes": d(|s| s.own_echoes),
        "services_evicted": d(|s| s.services_evicted),
        "services_rejected": d(|s| s.services_rejected),
        "unsealed": d(|s| s.unsealed),
        "unknown_key": d(|s| s.unknown_key),
        "forged": d(|s| s.forged),
        "replayed": d(|s| s.replayed),
    })
}

/// Floods for `secs` with `mix`, `per_sec` datagrams a second or as fast as possible;
/// `during` runs on this thread meanwhile
/// (it must return once `stop` is set).
#[allow(clippy::too_many_arguments)]
fn flood_for<T>(
    port: u16,
    mix: Mix,
    seed: u64,
    captured: &flooder::Captured,
    secs: f64,
    per_sec: Option<u64>,
    during: impl FnOnce(&AtomicBool) -> T,
) -> (flooder::Tally, T) {
    let stop = AtomicBool::new(false);
    let dead_port = flooder::dead_port();
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let senders = Senders::new(port, 4);
            let mut flood = Flood::new(seed, mix, HID, INVENTED_SIDS, captured.clone(), dead_port);
            flooder::udp_flood(&senders, &mut flood, u64::MAX, per_sec, &stop)
        });
        let timer = scope.spawn(|| {
            std::thread::sleep(Duration::from_secs_f64(secs));
            stop.store(true, Ordering::Relaxed);
        });
        let out = during(&stop);
        timer.join().expect("timer");
        (sender.join().expect("flooder"), out)
    })
}

fn child(sealed: bool) {
    let secs: f64 = env_number("FLOOD_SECS", 3.0);
    let paced: u64 = env_number("FLOOD_PACED", 50_000);
    let load_start = load_average();
    let port = 22_000 + (std::process::id() % 900) as u16;
    let keys = sealed.then(|| {
        let dir = std::env::temp_dir().join(format!("cluster-flood-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("keys");
        std::fs::write(&path, format!("*1 {}\n", "a5".repeat(32))).expect("key file");
        path
    });

    // The node under test, on a thread and runtime of its own.
    let (tx, rx) = std::sync::mpsc::channel();
    let node_options = options(port, keys.as_deref());
    let node_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let (handle, driver) = Cluster::start(node_options, Answer::new("pong"))
                .await
                .expect("join");
            tx.send((handle, thread_id())).expect("handle");
            driver.await;
        });
    });
    let (node, tid): (Handle, u32) = rx.recv().expect("node");
    let inodes = udp_inodes(port);
    assert_eq!(inodes.len(), 1, "one socket on port {port}: the node's");
    let watched = Watched {
        handle: node.clone(),
        inode: inodes[0],
        tid,
    };
    let sniffer = Sniffer::start(port);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let querier = rt.block_on(async {
        let querier = Cluster::join(options(port, keys.as_deref()))
            .await
            .expect("join");
        let mut events = querier.events();
        tokio::time::timeout(PATIENCE, async {
            while let Some(event) = events.next().await {
                if matches!(event, Event::Discovered(ref s) if s.sid == node.sid()) {
                    return;
                }
            }
        })
        .await
        .expect("discovery");
        querier
    });
    let target = node.sid();

    // Quiet round trips, while the sniffer captures frames for the replays.
    let mut quiet: Vec<Duration> = (0..QUIET_QUERIES)
        .map(|_| {
            rt.block_on(query(&querier, target))
                .expect("quiet query answered")
        })
        .collect();
    quiet.sort_unstable();
    std::thread::sleep(Duration::from_secs(2));
    let captured = sniffer.frames();
    // Stop sniffing: the sniffer would receive the flood too.
    drop(sniffer);
    // The node's own plain frames would be dropped by its socket filter, unread and
    // uncounted: replay the querier's only, so that what the node does not read is what the
    // kernel dropped for want of room in its receive buffer.
    captured.retain(|frame| {
        cluster_core::wire::Message::parse(frame)
            .ok()
            .and_then(|(m, _)| m.sid)
            .is_none_or(|sid| sid.as_bytes() != target.as_bytes())
    });
    let hwm_before = flooder::status_kib(std::process::id(), "VmHWM");

    // Flood + queries.
    let main_tid = thread_id();
    let mut with_queries = serde_json::Map::new();
    for (name, per_sec, seed) in [("with_queries", None, 1), ("paced", Some(paced), 5)] {
        let querier_cpu = thread_cpu(main_tid);
        let start = watched.sample(&rt);
        let (sent, (mut latencies, timeouts, stop_stats)) =
            flood_for(port, Mix::MIXED, seed, &captured, secs, per_sec, |stop| {
                let mut latencies = Vec::new();
                let mut timeouts = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    match rt.block_on(query(&querier, target)) {
                        Some(t) => latencies.push(t),
                        None => timeouts += 1,
                    }
                }
                (latencies, timeouts, watched.sample(&rt))
            });
        let end = watched.drained(&rt);
        latencies.sort_unstable();
        let mut figures = flood_figures(secs, &sent, &start, &stop_stats, &end);
        figures["queries"] = json!(latencies.len() as u64 + timeouts);
        figures["timeouts"] = json!(timeouts);
        figures["querier_core_pct"] = json!(100.0 * (thread_cpu(main_tid) - querier_cpu) / secs);
        figures["p50_us"] = json!(percentile(&latencies, 0.50));
        figures["p99_us"] = json!(percentile(&latencies, 0.99));
        with_queries.insert(name.to_owned(), figures);
        // Let the invented services expire.
        std::thread::sleep(Duration::from_secs(2));
    }
    rt.block_on(querier.leave()).expect("leave");

    // Alone.
    let mut alone = serde_json::Map::new();
    for (name, mix, seed) in [
        ("mix", Mix::MIXED, 2),
        ("invented", Mix::only(Kind::Invented), 3),
        ("forged", Mix::only(Kind::Forged), 4),
    ] {
        let start = watched.sample(&rt);
        let (sent, stop_stats) = flood_for(port, mix, seed, &captured, secs, None, |stop| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            watched.sample(&rt)
        });
        let end = watched.drained(&rt);
        alone.insert(
            name.to_owned(),
            flood_figures(secs, &sent, &start, &stop_stats, &end),
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let hwm_end = flooder::status_kib(std::process::id(), "VmHWM");
    let rss_end = flooder::status_kib(std::process::id(), "VmRSS");
    rt.block_on(node.leave()).expect("leave");
    node_thread.join().expect("node thread");
    if let Some(path) = &keys {
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    let mut result = json!({
        "config": if sealed { "sealed" } else { "plain" },
        "captured": captured.len(),
        "quiet": {
            "queries": quiet.len(),
            "p50_us": percentile(&quiet, 0.50),
            "p99_us": percentile(&quiet, 0.99),
        },
        "hwm_before_kib": hwm_before,
        "hwm_end_kib": hwm_end,
        "rss_end_kib": rss_end,
        "load_start": load_start,
        "load_end": load_average(),
    });
    for (name, value) in with_queries.into_iter().chain(alone) {
        result[name] = value;
    }
    println!("RESULT {result}");
}
