//! The embassy adapter on a Linux TAP device: the same `Runner` and `Handle` as in firmware,
//! on an `embassy_net::Stack` over `embassy-net-tuntap`, with embassy's std executor and
//! clock. Host only (feature `tap`); needs an existing TAP device and the right to open it
//! (root, or a TAP owned by the user).
//!
//! ```text
//! ip tuntap add dev tap0 mode tap && ip link set tap0 up     # e.g. on a bridge
//! cargo run -p cluster-embassy --example tuntap --features tap -- \
//!     --tap tap0 --ip 10.251.0.2/24 --tags sensor --answer "temperature 21.5"
//! ```
//!
//! The node joins in remote mode, runs protocol `c` only, answers every query with
//! `--answer`, and prints the JSON lines of `cluster join --json` (joined, discovered, lost,
//! tags, message, query, dropped). Its hid is the MAC it gives the stack (`--mac`, by default
//! `02:c2` followed by the four bytes of `--ip`). SIGINT or SIGTERM makes it leave: it sends
//! its disconnect, then exits.
//!
//! With `--key-file FILE` it seals every frame with the keys of FILE (the format of
//! `cluster join --key-file`) and accepts only frames sealed with one of them; the ring is set
//! on the node before it starts, so the join frames are sealed too. SIGHUP reads the file
//! again and hands the node the new ring (`Handle::set_keys`: key rotation).
//!
//! It also reads commands from its standard input, one per line, and runs them through the
//! `Handle` from another task:
//!
//! | line | does | prints |
//! | --- | --- | --- |
//! | `query TAG TEXT` | queries the services tagged TAG with TEXT | a `response`, `error` or `missing` line per target, then `done` (as `cluster query --json`) |
//! | `send TAG TEXT` | sends TEXT (an event, type 6) to the services tagged TAG | an `error` line if it fails |
//! | `leave` | leaves, as SIGTERM | |

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use clap::Parser;
use cluster_core::Config;
use cluster_core::{QueryEvent, QueryRequest, Resolver, SendRequest, Targets};
use cluster_embassy::{Buffers, Event, Events, Group, Handle, Runner, State, firmware_config};
use cluster_host::json::{JoinedInfo, event_json, joined_json, query_event_json};
use cluster_host::tap_args;
use cluster_host::{
    Answer, QuerySummary, ServiceInfo, os_seed, parse_duration, read_key_file, split_list,
};
use embassy_executor::{Executor, Spawner};
use embassy_futures::select::select4;
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_time::Timer;
use static_cell::StaticCell;

/// A cluster node on a TAP device, run by `cluster-embassy`.
#[derive(Debug, Parser)]
#[command(name = "tuntap")]
struct Args {
    /// The TAP device to attach to (it must exist).
    #[arg(long, value_name = "TAP")]
    tap: String,
    /// The stack's IPv4 address and prefix, e.g. 10.251.0.2/24.
    #[arg(long, value_name = "A.B.C.D/NN", value_parser = parse_cidr)]
    ip: Ipv4Cidr,
    /// The stack's MAC address, which is also the node's hid (default: 02:c2 then the four
    /// bytes of --ip).
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    mac: Option<[u8; 6]>,
    /// Tags of this node (repeat the option, or separate with spaces or commas).
    #[arg(long, value_name = "T")]
    tags: Vec<String>,
    /// Reply TEXT to every query (default: an empty reply).
    #[arg(long, value_name = "TEXT")]
    answer: Option<String>,
    /// Heartbeat interval (e.g. 500ms, 2s), instead of the lan-fast profile's 400-600 ms.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    heartbeat: Option<StdDuration>,
    /// How long a service may go unseen before it is dropped (default 2s).
    #[arg(long, value_name = "DUR", value_parser = duration)]
    ttl: Option<StdDuration>,
    /// UDP port, bound and sent to.
    #[arg(long, default_value_t = 23000)]
    port: u16,
    /// Seal every frame with the keys of FILE and accept only frames sealed with one of
    /// them: one key per line, "ID HEX" (id 0-255, 64 hex digits), the key to send with
    /// written "*ID HEX". SIGHUP reads the file again (key rotation).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Print one JSON object per line, as `cluster join --json` (the only output; accepted
    /// so that the command line matches the other nodes').
    #[arg(long)]
    json: bool,
}

fn duration(text: &str) -> Result<StdDuration, cluster_host::DurationError> {
    parse_duration(text)
}

fn parse_cidr(text: &str) -> Result<Ipv4Cidr, String> {
    let (addr, prefix) = tap_args::parse_ipv4_cidr(text)?;
    Ok(Ipv4Cidr::new(addr, prefix))
}

fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    tap_args::parse_unicast_mac(text)
}

type TapState = State<CriticalSectionRawMutex, Answer>;
type TapRunner = Runner<'static, CriticalSectionRawMutex, Answer>;
type TapHandle = Handle<'static, CriticalSectionRawMutex, Answer>;

/// Lines read from the standard input (by a thread), for the node's task.
static LINES: Channel<CriticalSectionRawMutex, String, 4> = Channel::new();

/// Raised when the node has left and its last events are printed: the executor stops.
static DONE: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuntap: {e}");
            ExitCode::from(4)
        }
    }
}

fn config(args: &Args) -> Result<Config, String> {
    let mut config = firmware_config(Config::lan_fast());
    if let Some(heartbeat) = args.heartbeat {
        config.heartbeat_min = heartbeat;
        config.heartbeat_max = heartbeat;
    }
    if let Some(ttl) = args.ttl {
        config.ttl = ttl;
    }
    for tag in args.tags.iter().flat_map(|t| split_list(t)) {
        config.add_tag(tag).map_err(|e| format!("tag {tag}: {e}"))?;
    }
    Ok(config)
}

/// The signal flags, set by the handlers and read by the node's task.
#[derive(Debug, Clone)]
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

fn run(args: Args) -> Result<(), String> {
    let signals = Signals {
        stop: Arc::new(AtomicBool::new(false)),
        reload: Arc::new(AtomicBool::new(false)),
    };
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&signals.stop))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let config = config(&args)?;
    // Read before anything is opened: a bad key file stops the node before it joins.
    let keys = args
        .key_file
        .as_deref()
        .map(read_key_file)
        .transpose()
        .map_err(|e| e.to_string())?;
    if keys.is_some() {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&signals.reload))
            .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    }
    let mut device = TunTapDevice::new(&args.tap)
        .map_err(|e| format!("cannot open TAP device {}: {e}", args.tap))?;
    let mac = args
        .mac
        .unwrap_or_else(|| tap_args::mac_of([0x02, 0xc2], args.ip.address()));
    device.set_hardware_address(mac);
    let seed = os_seed();

    // The stack, as an embassy application builds it, with a static address.
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: args.ip,
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack, net_runner) = embassy_net::new(
        device,
        net_config,
        RESOURCES.init(StackResources::new()),
        seed,
    );

    // The node and its buffers: static, as in firmware.
    static STATE: StaticCell<TapState> = StaticCell::new();
    static BUFFERS: StaticCell<Buffers> = StaticCell::new();
    let state = STATE.init(State::new(Answer::new(
        args.answer.clone().unwrap_or_default(),
    )));
    // Before the start, so that the join frames are sealed too.
    if keys.is_some() {
        state.node_mut().set_keys(keys);
    }
    let group = Group {
        port: args.port,
        ..Group::CLUSTER
    };
    let protocols = config.protocols;
    let (handle, runner) = cluster_embassy::new(
        stack,
        state,
        BUFFERS.init(Buffers::new()),
        group,
        config,
        seed.rotate_left(17),
    )
    .map_err(|e| format!("cannot join: {e}"))?;
    let events = handle
        .events()
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    let info = JoinedInfo {
        sid: handle.sid(),
        hid: handle.hid(),
        group: std::net::SocketAddrV4::new(group.addr, group.port),
        protocols,
        tcp_port: None,
        unix_path: None,
        // One smoltcp / embassy-net interface, which has no name of its own.
        interfaces: Vec::new(),
    };
    println!("{}", joined_json(&info));

    std::thread::spawn(|| {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            embassy_futures::block_on(LINES.send(line));
        }
    });

    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    let key_file = args.key_file.clone();
    EXECUTOR.init(Executor::new()).run_until(
        |spawner: Spawner| {
            spawner.spawn(net_task(net_runner).expect("one net task"));
            spawner.spawn(
                node_task(runner, handle, events, signals, key_file).expect("one node task"),
            );
        },
        || DONE.load(Ordering::Relaxed),
    );
    Ok(())
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

/// Runs the node and prints its events until it has left, then stops the executor.
#[embassy_executor::task]
async fn node_task(
    runner: TapRunner,
    handle: TapHandle,
    mut events: Events<'static, 512>,
    signals: Signals,
    key_file: Option<PathBuf>,
) {
    select4(
        runner.run(),
        print_events(&mut events),
        watch_signals(handle, &signals, key_file.as_deref()),
        commands(handle),
    )
    .await;
    // The runner returned: the node left. Print what it published last (the `lost` lines).
    while let Some(event) = events.try_next() {
        print_event(&event);
    }
    DONE.store(true, Ordering::Relaxed);
}

async fn print_events(events: &mut Events<'static, 512>) {
    loop {
        print_event(&events.next().await);
    }
}

/// Leaves on SIGINT or SIGTERM; reads the key file again on SIGHUP.
async fn watch_signals(handle: TapHandle, signals: &Signals, key_file: Option<&std::path::Path>) {
    loop {
        if signals.stop.load(Ordering::Relaxed) {
            handle.leave().await;
        }
        if signals.reload.swap(false, Ordering::Relaxed)
            && let Some(path) = key_file
        {
            // Takes effect at once: the next frame is sealed with the new send key.
            match read_key_file(path) {
                Ok(ring) => {
                    let _ = handle.set_keys(Some(ring)).await;
                }
                Err(e) => eprintln!("tuntap: {e}; the keys in use stay"),
            }
        }
        Timer::after_millis(50).await;
    }
}

/// Runs the commands read from the standard input.
async fn commands(handle: TapHandle) {
    loop {
        let line = LINES.receive().await;
        let mut words = line.trim().splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("query"), Some(tag), Some(text)) => query(handle, tag, text).await,
            (Some("send"), Some(tag), Some(text)) => {
                let filters = [tag];
                let resolver = Resolver::resolve(&filters);
                let request = SendRequest::new(Targets::resolve(&resolver), text.as_bytes());
                if let Err(e) = handle.send(&request).await {
                    print_error(&e.to_string(), "send");
                }
            }
            (Some("leave"), None, None) => handle.leave().await,
            _ => print_error(&format!("unknown command: {line}"), "command"),
        }
    }
}

/// Queries the services tagged `tag` and prints the answers as they arrive.
async fn query(handle: TapHandle, tag: &str, text: &str) {
    let filters = [tag];
    let resolver = Resolver::resolve(&filters);
    let request = QueryRequest::new(Targets::resolve(&resolver), text.as_bytes());
    let mut answers = match handle.query(&request).await {
        Ok(answers) => answers,
        Err(e) => return print_error(&e.to_string(), "query"),
    };
    while let Some(news) = answers.next().await {
        let news = match news {
            QueryEvent::Response {
                sid, payload: p, ..
            } => cluster_host::QueryEvent::Response {
                sid,
                payload: payload(&p),
            },
            QueryEvent::Error { sid, error, .. } => cluster_host::QueryEvent::Error {
                sid,
                error: text_of(error.data().unwrap_or_default()),
            },
            QueryEvent::Missing { sid, .. } => cluster_host::QueryEvent::Missing { sid },
            QueryEvent::Done {
                answered,
                missing,
                timed_out,
                ..
            } => cluster_host::QueryEvent::Done(QuerySummary {
                answered,
                missing,
                timed_out,
            }),
        };
        println!("{}", query_event_json(&news));
    }
}

fn print_error(error: &str, what: &str) {
    println!(
        "{}",
        serde_json::json!({ "event": "error", "error": error, "what": what })
    );
}

/// Prints an event as `cluster join --json` does.
fn print_event(event: &Event) {
    if let Some(event) = host_event(event) {
        println!("{}", event_json(&event));
    }
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn payload<const DATA: usize>(payload: &cluster_core::Payload<DATA>) -> cluster_host::Payload {
    cluster_host::Payload {
        data: payload.data().map(<[u8]>::to_vec),
        raw: payload.raw().map(<[u8]>::to_vec),
    }
}

fn tags(list: &cluster_core::TagList) -> Vec<String> {
    list.iter().map(|t| text_of(t.as_bytes())).collect()
}

/// The host adapters' event for this adapter's (they print the same line).
fn host_event(event: &Event) -> Option<cluster_host::Event> {
    use cluster_host::Event as H;
    Some(match event {
        Event::Discovered(service) => H::Discovered(ServiceInfo {
            sid: *service.sid(),
            hid: *service.hid(),
            ip: service.ip(),
            local: service.is_local(),
            tags: tags(service.tags()),
            protocols: service.protocols(),
            tcp_port: service.tcp_port(),
            unix_path: None,
            expected: service.is_expected(),
            heard_on: None,
            data_version: service.data_version(),
            data: cluster_host::node_data::DataMap::new(),
            learned: "multicast",
            segment: None,
        }),
        Event::Lost { sid, reason } => H::Lost {
            sid: *sid,
            reason: *reason,
        },
        Event::TagsChanged { sid, tags: list } => H::TagsChanged {
            sid: *sid,
            tags: tags(list),
        },
        Event::Message {
            sid,
            channel,
            ruid,
            payload: p,
        } => H::Message {
            sid: *sid,
            channel: *channel,
            ruid: ruid.map(|r| text_of(r.as_bytes())),
            payload: payload(p),
        },
        Event::QueryReceived {
            sid,
            channel,
            ruid,
            payload: p,
        } => H::QueryReceived {
            sid: *sid,
            channel: *channel,
            ruid: ruid.map(|r| text_of(r.as_bytes())),
            payload: payload(p),
        },
        Event::Dropped { count } => H::Dropped { count: *count },
        _ => return None,
    })
}
