//! The firmware driver on a Linux TAP device: the same `Driver`, smoltcp stack and static
//! buffers as on a microcontroller, with smoltcp's `TunTapInterface` as the Ethernet device.
//! Host only (feature `tap`); needs an existing TAP device and the right to open it (root, or
//! a TAP owned by the user).
//!
//! ```text
//! ip tuntap add dev tap0 mode tap && ip link set tap0 up     # e.g. on a bridge
//! cargo run -p cluster-embedded --features tap --example tap_node -- \
//!     --tap tap0 --ip 10.251.0.2/24 --tags sensor --answer "temperature 21.5" --json
//! ```
//!
//! The node joins in remote mode, runs protocol `c` only, answers every query with
//! `--answer`, and prints the same lines as `cluster join` (`--json`: one JSON object per
//! line, as `cluster join --json`). Its hid is the MAC it gives the stack (`--mac`, by
//! default `02:c1` followed by the four bytes of `--ip`). SIGINT or SIGTERM makes it leave:
//! it sends its disconnect, then exits.
//!
//! With `--key-file FILE` it seals every frame with the keys of FILE (the format of
//! `cluster join --key-file`: one key per line, `ID HEX`, the send key marked `*ID HEX`) and
//! accepts only frames sealed with one of them, so it joins a sealed cluster of
//! `cluster join --key-file FILE` nodes. The file is read with `std` here; the driver gets
//! the parsed `KeyRing` (`Driver::set_keys`) before its first poll, as firmware would from
//! its provisioning storage. SIGHUP reads the file again and hands the driver the new ring
//! (key rotation).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use clap::Parser;
use cluster_core::{Config, Event, Node, ProtocolList};
use cluster_embedded::{Driver, Group, MacHid, UdpBuffers, core_instant, firmware_config};
use cluster_host::json::{JoinedInfo, event_json, joined_json};
use cluster_host::tap_args;
use cluster_host::{
    Answer, Translated, os_seed, parse_duration, read_key_file, split_list, translate,
};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet, SocketStorage};
use smoltcp::phy::{Medium, TunTapInterface, wait};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Cidr};

/// A cluster node on a TAP device, driven by `cluster-embedded`.
#[derive(Debug, Parser)]
#[command(name = "tap_node")]
struct Args {
    /// The TAP device to attach to (it must exist).
    #[arg(long, value_name = "TAP")]
    tap: String,
    /// The stack's IPv4 address and prefix, e.g. 10.251.0.2/24.
    #[arg(long, value_name = "A.B.C.D/NN", value_parser = parse_cidr)]
    ip: Ipv4Cidr,
    /// The stack's MAC address, which is also the node's hid (default: 02:c1 then the four
    /// bytes of --ip).
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    mac: Option<EthernetAddress>,
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
    /// Print one JSON object per line, as `cluster join --json`.
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

fn parse_mac(text: &str) -> Result<EthernetAddress, String> {
    tap_args::parse_unicast_mac(text).map(EthernetAddress)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap_node: {e}");
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

/// The clock: smoltcp time since the start of the process.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(i64::try_from(self.0.elapsed().as_micros()).unwrap_or(i64::MAX))
    }
}

fn run(args: &Args) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let config = config(args)?;
    // Read before anything is opened: a bad key file stops the node before it joins.
    let keys = args
        .key_file
        .as_deref()
        .map(read_key_file)
        .transpose()
        .map_err(|e| e.to_string())?;
    let reload = Arc::new(AtomicBool::new(false));
    if keys.is_some() {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
            .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    }
    let mut device = TunTapInterface::new(&args.tap, Medium::Ethernet)
        .map_err(|e| format!("cannot open TAP device {}: {e}", args.tap))?;
    let clock = Clock(std::time::Instant::now());
    let seed = os_seed();

    let mac = args
        .mac
        .unwrap_or_else(|| EthernetAddress(tap_args::mac_of([0x02, 0xc1], args.ip.address())));
    let mut iface_config = IfaceConfig::new(mac.into());
    iface_config.random_seed = seed;
    let mut iface = Interface::new(iface_config, &mut device, clock.now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::Ipv4(args.ip));
    });

    // The same static-sized storage as in firmware, on this stack frame.
    let mut buffers: Box<UdpBuffers> = Box::default();
    let mut storage = [SocketStorage::EMPTY; 1];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let socket = sockets.add(buffers.socket());

    let hid = MacHid::new(mac.0);
    let mut node: Box<Node<Answer>> = Box::new(
        Node::new(
            config,
            hid.as_str(),
            Answer::new(args.answer.clone().unwrap_or_default()),
            seed,
            core_instant(clock.now()),
        )
        .map_err(|e| format!("invalid configuration: {e}"))?,
    );
    let group = Group {
        port: args.port,
        ..Group::CLUSTER
    };
    let mut driver: Driver<'_, Answer> =
        Driver::new(&mut node, group, &mut iface, &mut sockets, socket)
            .map_err(|e| format!("cannot join: {e}"))?;
    // Before the first poll, so that the join frames are sealed too.
    if keys.is_some() {
        driver.set_keys(keys);
    }
    let out = Printer { json: args.json };
    out.joined(&driver, group);

    loop {
        let now = clock.now();
        if stop.load(Ordering::Relaxed) && !driver.has_left() {
            driver.leave(now);
        }
        if reload.swap(false, Ordering::Relaxed)
            && let Some(path) = &args.key_file
        {
            // Takes effect at once: the next frame is sealed with the new send key.
            match read_key_file(path) {
                Ok(ring) => driver.set_keys(Some(ring)),
                Err(e) => eprintln!("tap_node: {e}; the keys in use stay"),
            }
        }
        iface.poll(now, &mut device, &mut sockets);
        let next = driver.poll(now, &mut iface, &mut sockets);
        iface.poll(now, &mut device, &mut sockets);
        while let Some(event) = driver.poll_event() {
            out.event(&driver, &event);
        }
        if driver.has_left() && driver.is_idle() && iface.poll_at(now, &sockets).is_none() {
            // The disconnect is on the wire.
            return Ok(());
        }
        let deadline = match (next, iface.poll_at(now, &sockets)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Wake up at least every 100 ms to notice a signal that arrived between two checks.
        let delay = deadline
            .map_or(Duration::from_millis(100), |at| {
                if at > now { at - now } else { Duration::ZERO }
            })
            .min(Duration::from_millis(100));
        // Interrupted by a signal: loop around and look at the flag.
        let _ = wait(std::os::fd::AsRawFd::as_raw_fd(&device), Some(delay));
    }
}

/// Prints lines as `cluster join` does.
struct Printer {
    json: bool,
}

impl Printer {
    fn joined(&self, driver: &Driver<'_, Answer>, group: Group) {
        let node = driver.node();
        if self.json {
            let info = JoinedInfo {
                sid: *node.sid(),
                hid: *node.hid(),
                group: std::net::SocketAddrV4::new(group.addr, group.port),
                protocols: node.protocols(),
                tcp_port: None,
                unix_path: None,
                // One smoltcp / embassy-net interface, which has no name of its own.
                interfaces: Vec::new(),
            };
            println!("{}", joined_json(&info));
        } else {
            println!(
                "joined {}@{} on {}:{} protocols {}",
                node.sid(),
                node.hid(),
                group.addr,
                group.port,
                letters(node.protocols())
            );
        }
    }

    fn event(&self, driver: &Driver<'_, Answer>, event: &Event) {
        let Some(Translated::Event(event)) = translate(driver.node(), event) else {
            return;
        };
        if self.json {
            println!("{}", event_json(&event));
            return;
        }
        match &event {
            cluster_host::Event::Discovered(s) => println!(
                "+ {} {} {} tags [{}] protocols {}",
                s.sid,
                s.hid,
                s.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                s.tags.join(" "),
                letters(s.protocols)
            ),
            cluster_host::Event::Lost { sid, reason } => println!("- {sid} {}", reason.name()),
            cluster_host::Event::TagsChanged { sid, tags } => {
                println!("~ {sid} tags [{}]", tags.join(" "));
            }
            cluster_host::Event::Message {
                sid,
                channel,
                payload,
                ..
            } => println!("> {sid} channel {channel}: {}", payload.data_lossy()),
            cluster_host::Event::QueryReceived { sid, payload, .. } => {
                println!("? {sid} asked: {}", payload.data_lossy());
            }
            other => println!("{other:?}"),
        }
    }
}

fn letters(list: ProtocolList) -> String {
    list.letters().join(" ")
}
