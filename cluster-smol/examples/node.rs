//! Runs one node and prints what happens, as `cluster join` does: with `--json`, the same
//! JSON lines as `cluster join --json` (a `joined` line, then one line per event, through
//! `cluster_host::json`). SIGINT or SIGTERM makes it leave (send the disconnect) and exit 0;
//! with `--stats` it prints every counter first (the `stats` line of
//! `cluster services --stats --json`).
//!
//! ```sh
//! cargo run -p cluster-smol --example node -- --tags web --answer "up" --json
//! cargo run -p cluster-smol --example node -- --runtime async-std --heartbeat 500ms --ttl 3s
//! ```
//!
//! The node's driver runs on the chosen runtime's executor (`--runtime smol`, the default,
//! or `async-std`); the main task waits on the same runtime. `--port` and `--interface`
//! (e.g. `127.0.0.1`) keep a test cluster apart from others on the host.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use async_signal::{Signal, Signals};
use clap::{Parser, ValueEnum};
use cluster_host::{DurationError, split_list};
use cluster_smol::{Answer, Cluster, Driver, Event, Handle, Options, Profile, json};
use futures_lite::{FutureExt, StreamExt};

/// The executor the node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runtime {
    Smol,
    AsyncStd,
}

fn duration(text: &str) -> Result<Duration, DurationError> {
    cluster_host::parse_duration(text)
}

/// Runs a cluster node on smol or async-std and prints its events.
#[derive(Debug, Parser)]
#[command(name = "node")]
struct Args {
    /// Tags of this node (repeat the option, or separate with spaces or commas).
    #[arg(long, value_name = "T")]
    tags: Vec<String>,
    /// Reply TEXT to every accepted query (default: an empty reply).
    #[arg(long, value_name = "TEXT")]
    answer: Option<String>,
    /// Heartbeat interval (e.g. 500ms, 2s), instead of the profile's.
    #[arg(long, value_parser = duration, value_name = "DUR")]
    heartbeat: Option<Duration>,
    /// How long a service may go unseen before it is dropped (e.g. 2s).
    #[arg(long, value_parser = duration, value_name = "DUR")]
    ttl: Option<Duration>,
    /// Reach services on other hosts (multicast TTL 1); by default this host only (TTL 0).
    #[arg(long)]
    remote: bool,
    /// Hardware id; by default the MAC of eth0 (else of the first interface with one).
    #[arg(long)]
    hid: Option<String>,
    /// Print one JSON object per line, as `cluster join --json`.
    #[arg(long)]
    json: bool,
    /// The executor that drives the node.
    #[arg(long, value_enum, default_value = "smol")]
    runtime: Runtime,
    /// UDP port, bound and sent to.
    #[arg(long, default_value_t = 23000)]
    port: u16,
    /// IPv4 address of the interface that joins the group and sends multicast.
    #[arg(long, value_name = "ADDR")]
    interface: Option<Ipv4Addr>,
    /// Print every counter of the node and of its transports before leaving: the `stats`
    /// line of `cluster services --stats --json`, or `name value` lines.
    #[arg(long)]
    stats: bool,
}

impl Args {
    fn options(&self) -> Result<Options, Box<dyn std::error::Error>> {
        let mut options = Options::new(Profile::LanFast)
            .port(self.port)
            .remote(self.remote);
        if let Some(heartbeat) = self.heartbeat {
            options = options.heartbeat(heartbeat);
        }
        if let Some(ttl) = self.ttl {
            options = options.ttl(ttl);
        }
        if let Some(hid) = &self.hid {
            options = options.hid(hid.clone());
        }
        if let Some(interface) = self.interface {
            options = options.interface(interface);
        }
        for tag in self.tags.iter().flat_map(|t| split_list(t)) {
            options = options.tag(tag)?;
        }
        Ok(options)
    }
}

/// A readable line for an event (without `--json`).
fn text(event: &Event) -> String {
    match event {
        Event::Discovered(s) => format!(
            "+ discovered {}@{} {} [{}] protocols {}{}",
            s.sid,
            s.hid,
            s.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
            s.tags.join(" "),
            s.protocols.letters().join(" "),
            if s.local { " local" } else { "" }
        ),
        Event::Lost { sid, reason } => format!("- lost {sid} ({})", reason.name()),
        Event::TagsChanged { sid, tags } => format!("~ tags {sid} [{}]", tags.join(" ")),
        Event::Message {
            sid,
            channel,
            payload,
            ..
        } => format!(
            "> message {sid} channel {channel}: {}",
            payload.data_lossy()
        ),
        Event::QueryReceived {
            sid, ruid, payload, ..
        } => format!(
            "? query {sid} {}: {}",
            ruid.as_deref().unwrap_or("-"),
            payload.data_lossy()
        ),
        Event::ProtocolRefreshed { protocol } => format!("~ refreshed {protocol}"),
        Event::Dropped { count } => format!("! dropped {count} events"),
        other => format!("{other:?}"),
    }
}

/// Why the main loop woke.
enum Wake {
    // Boxed: an event is some 200 bytes, the signal nothing.
    Event(Option<Box<Event>>),
    Signal,
}

async fn run(args: Args, spawn: fn(Driver)) -> Result<(), Box<dyn std::error::Error>> {
    let mut signals = Signals::new([Signal::Term, Signal::Int])?;
    let answer = Answer::new(args.answer.clone().unwrap_or_default());
    let node: Handle = Cluster::join_with(args.options()?, answer, spawn).await?;
    let mut events = node.events();
    let info = node.info().await?;
    if args.json {
        println!("{}", json::joined_json(&info));
    } else {
        let tcp = info
            .tcp_port
            .map(|p| format!(" tcp {p}"))
            .unwrap_or_default();
        println!("joined {}@{} on {}{tcp}", info.sid, info.hid, info.group);
    }
    loop {
        let event = async { Wake::Event(events.next().await.map(Box::new)) };
        let signal = async {
            signals.next().await;
            Wake::Signal
        };
        match event.or(signal).await {
            Wake::Event(Some(event)) if args.json => println!("{}", json::event_json(&event)),
            Wake::Event(Some(event)) => println!("{}", text(&event)),
            Wake::Event(None) => return Err("the node stopped".into()),
            Wake::Signal => break,
        }
    }
    if args.stats {
        let (counters, transport) = node.stats().await?;
        if args.json {
            println!("{}", json::stats_json(&counters, &transport));
        } else {
            let all = json::node_counters(&counters)
                .into_iter()
                .chain(json::transport_counters(&transport));
            for (name, value) in all {
                println!("{name} {value}");
            }
        }
    }
    node.leave().await?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.runtime {
        Runtime::Smol => smol::block_on(run(args, |driver| smol::spawn(driver).detach())),
        Runtime::AsyncStd => async_std::task::block_on(run(args, |driver| {
            async_std::task::spawn(driver);
        })),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("node: {error}");
            ExitCode::FAILURE
        }
    }
}
