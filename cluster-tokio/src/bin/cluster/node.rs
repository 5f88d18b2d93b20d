//! `cluster join | services | query | send`: the node commands.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use cluster_core::{QueryError, SendError};
use cluster_host::metrics::NodeMetrics;
use cluster_host::{
    Answer, DurationError, Options, OptionsError, Profile, parse_channels, parse_protocols,
    read_key_file, split_list,
};
use cluster_tokio::{
    Cluster, CommandError, Event, Handle, IncomingQueries, IncomingQuery, JoinError, QueryEvent,
    QueryOutcome, QuerySpec, QuerySummary, Selector, SendSpec,
};
use serde_json::json;

use crate::CliError;
use crate::answer_cmd::AnswerCmd;
use crate::output::Printer;

fn duration(text: &str) -> Result<Duration, DurationError> {
    cluster_host::parse_duration(text)
}

/// The options of every node command.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// Tags of this node (repeat the option, or separate with spaces or commas).
    #[arg(long, value_name = "TAGS")]
    tags: Vec<String>,
    /// Extra channels to subscribe to (0, 1 and 2 always are).
    #[arg(long, value_name = "CHANNELS")]
    channels: Vec<String>,
    /// Protocols in priority order, e.g. "t c" or "u t c" (c is always added).
    #[arg(long, value_name = "LETTERS")]
    protocols: Option<String>,
    /// Reach services on other hosts (multicast TTL 1); by default this host only (TTL 0).
    #[arg(long)]
    remote: bool,
    /// Multicast group.
    #[arg(long, default_value = "230.230.230.230")]
    address: Ipv4Addr,
    /// UDP port, bound and sent to.
    #[arg(long, default_value_t = 23000)]
    port: u16,
    /// Heartbeat interval (e.g. 500ms, 2s), instead of the profile's.
    #[arg(long, value_parser = duration, value_name = "DUR")]
    heartbeat: Option<Duration>,
    /// How long a service may go unseen before it is dropped (e.g. 2s).
    #[arg(long, value_parser = duration, value_name = "DUR")]
    ttl: Option<Duration>,
    /// Timer profile: lan-fast (heartbeat ~0.5 s, ttl 2 s) or reference (the Tcl
    /// package's: heartbeat 110-140 s, ttl 600 s; use it next to Tcl nodes).
    #[arg(long, default_value = "lan-fast", value_parser = profile)]
    profile: Profile,
    /// Hardware id; by default the MAC of eth0 (else of the first interface with one).
    #[arg(long)]
    hid: Option<String>,
    /// An interface that joins the group and sends multicast, by name (eth0) or address
    /// (127.0.0.1); repeat for several. By default: locally the default interface (or
    /// loopback on hosts without a multicast route); with --remote every up,
    /// multicast-capable, non-loopback interface, followed as interfaces come and go.
    #[arg(long, value_name = "NAME|ADDR")]
    interface: Vec<String>,
    /// The IPv6 group joined next to the IPv4 one (on the same port) when interfaces are
    /// followed (--remote or --interface): link-local scope by default.
    #[arg(long, default_value_t = cluster_host::options::DEFAULT_GROUP_V6, value_name = "ADDR")]
    address6: std::net::Ipv6Addr,
    /// IPv4 only: no IPv6 group.
    #[arg(long)]
    no_ipv6: bool,
    /// Never use the interfaces whose names match GLOB (* and ?), e.g. "docker*"; repeat
    /// for several.
    #[arg(long, value_name = "GLOB")]
    exclude_interface: Vec<String>,
    /// Unix-socket path /dir/name.ext for protocol u (the node listens on
    /// /dir/name-SID.ext); adds u in front of the protocols.
    #[arg(long, value_name = "PATH")]
    unix_path: Option<PathBuf>,
    /// Seal every frame with the keys of FILE and accept only frames sealed with one of
    /// them: one key per line, "ID HEX" (id 0-255, 64 hex digits), the key to send with
    /// written "*ID HEX". `cluster join` reads the file again on SIGHUP (key rotation).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Stream connections (t and u, accepted and outgoing) open at most; while that many
    /// are, new inbound ones are closed at once.
    #[arg(long, default_value_t = cluster_host::options::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
    /// Events kept for the output while it falls behind (stdout may stall); past that the
    /// oldest are dropped and a `dropped` line says how many.
    #[arg(long, default_value_t = EVENTS_PRINTED, value_name = "N")]
    event_buffer: usize,
    /// Publish KEY=VALUE as this node's data (repeat the option); every peer reads it
    /// (`cluster services --json` shows it, and `--resolve data:KEY=VALUE` selects by it).
    #[arg(long = "data", value_name = "KEY=VALUE", value_parser = data_pair)]
    publish: Vec<(String, String)>,
    /// A seed beyond the LAN, HOST:PORT of a node's TCP listener (repeat for several; names
    /// are resolved again while unreachable). Exchanges membership with it over TCP and
    /// heartbeats remote members unicast; implies --remote.
    #[arg(long, value_name = "HOST:PORT")]
    seed: Vec<String>,
    /// TCP port of protocol t (default: an ephemeral one); a node others name as a seed
    /// needs a fixed one.
    #[arg(long, value_name = "PORT")]
    tcp_port: Option<u16>,
    /// Name this node's segment (a site, a subnet; up to 16 bytes, no spaces): remote
    /// members show it for this node and for the services it relays as a gateway.
    #[arg(long, value_name = "NAME")]
    segment: Option<String>,
    /// Reply TEXT to every accepted query (default: an empty reply).
    #[arg(long, value_name = "TEXT")]
    answer: Option<String>,
    /// Print one JSON object per line.
    #[arg(long)]
    pub(crate) json: bool,
}

fn profile(text: &str) -> Result<Profile, OptionsError> {
    text.parse()
}

/// One `--data KEY=VALUE`.
fn data_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// The bytes of `--raw-hex`.
#[derive(Debug, Clone)]
pub(crate) struct RawHex(Vec<u8>);

fn raw_hex(text: &str) -> Result<RawHex, cluster_host::packet::PacketError> {
    cluster_host::packet::unhex(text).map(RawHex)
}

/// The events a node command keeps for its output by default: a flood of invented services
/// makes thousands in seconds, all of which `cluster join` prints. The slots take about
/// 2.6 MB (a 128-byte event and the channel's bookkeeping each), allocated at the join.
const EVENTS_PRINTED: usize = 16_384;

impl NodeArgs {
    pub(crate) fn options(&self) -> Result<Options, CliError> {
        let mut options = Options::new(self.profile)
            .group(self.address)
            .port(self.port)
            .remote(self.remote)
            .max_connections(self.max_connections)
            .event_buffer(self.event_buffer);
        if let Some(protocols) = &self.protocols {
            options.config.protocols = parse_protocols(protocols).map_err(JoinError::from)?;
        }
        if let Some(heartbeat) = self.heartbeat {
            options = options.heartbeat(heartbeat);
        }
        if let Some(ttl) = self.ttl {
            options = options.ttl(ttl);
        }
        if let Some(hid) = &self.hid {
            options = options.hid(hid.clone());
        }
        for interface in &self.interface {
            options = options.interface_name(interface);
        }
        options = options.group_v6((!self.no_ipv6).then_some(self.address6));
        for glob in &self.exclude_interface {
            options = options.exclude_interface(glob.clone());
        }
        if let Some(path) = &self.key_file {
            options = options.key_file(path).map_err(JoinError::from)?;
        }
        if let Some(path) = &self.unix_path {
            options = options.unix_path(path.clone());
        }
        options.tcp_port = self.tcp_port;
        options.segment = self.segment.clone();
        for seed in &self.seed {
            options = options.seed(seed.clone());
        }
        for tag in self.tags.iter().flat_map(|t| split_list(t)) {
            options = options.tag(tag).map_err(JoinError::from)?;
        }
        for text in &self.channels {
            for channel in parse_channels(text).map_err(JoinError::from)? {
                options = options.channel(channel).map_err(JoinError::from)?;
            }
        }
        Ok(options)
    }

    async fn join(&self) -> Result<(Handle, Printer), CliError> {
        self.join_recording(None).await
    }

    /// Joins; with `metrics`, the node records its query latencies there.
    async fn join_recording(
        &self,
        metrics: Option<&NodeMetrics>,
    ) -> Result<(Handle, Printer), CliError> {
        let answer = Answer::new(self.answer.clone().unwrap_or_default());
        let mut options = self.options()?;
        if let Some(metrics) = metrics {
            options = options.query_latency(metrics.query_latency());
        }
        let handle = Cluster::join_with(options, answer).await?;
        if !self.publish.is_empty() {
            handle.set_data(self.publish.clone()).await?;
        }
        Ok((handle, Printer::new(self.json)))
    }
}

/// `cluster join`.
#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Serve OpenMetrics text at http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks
    /// one, printed on a `metrics` line): every counter of --stats, services by location,
    /// frames per transport, query latency.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Answer each query by running `sh -c CMD`: the query text on its stdin, the answer
    /// from its stdout (one trailing newline removed). A command that fails, runs past
    /// --answer-timeout (it is then killed) or prints more than 8192 bytes refuses the
    /// query with an error text instead. The asker is in CLUSTER_SID, CLUSTER_CHANNEL and
    /// CLUSTER_RUID.
    #[arg(long, value_name = "CMD", conflicts_with = "answer")]
    answer_cmd: Option<String>,
    /// Time each query gets for its --answer-cmd, from its arrival (waiting for a free
    /// slot included); keep it below the askers' query timeout.
    #[arg(long, value_parser = duration, default_value = "1s", value_name = "DUR")]
    answer_timeout: Duration,
    /// --answer-cmd commands running at once at most; further queries wait for a slot.
    #[arg(long, default_value_t = 8, value_name = "N")]
    answer_jobs: usize,
}

/// `cluster services`.
#[derive(Debug, Args)]
pub(crate) struct ServicesArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// How long to listen before printing.
    #[arg(long, value_parser = duration, default_value = "2s", value_name = "DUR")]
    wait: Duration,
    /// Also print every counter of the node and of its transports, after the services: a
    /// table, or with --json one line {"event":"stats",...} keyed by counter name.
    #[arg(long)]
    stats: bool,
}

/// What `query` and `send` wait for before they act.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// Select services by tag, sid, hid or address (repeat: all must match); default every
    /// service.
    #[arg(long, value_name = "T")]
    resolve: Vec<String>,
    /// Act as soon as this many services match.
    #[arg(long, value_name = "N")]
    expect: Option<usize>,
    /// Wait at most this long for services to match (all of it without --expect).
    #[arg(long, value_parser = duration, default_value = "2s", value_name = "DUR")]
    wait: Duration,
}

impl TargetArgs {
    fn selector(&self) -> Selector {
        Selector::resolve(&self.resolve)
    }

    /// Waits until `--expect` services match, or `--wait` passed.
    async fn wait_for_targets(&self, handle: &Handle) -> Result<usize, CliError> {
        let selector = self.selector();
        let mut events = handle.events();
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let matching = count_matching(handle, &selector).await?;
            if self.expect.is_some_and(|n| matching >= n) {
                return Ok(matching);
            }
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(CommandError::Closed.into()),
                Err(_) => return count_matching(handle, &selector).await,
            }
        }
    }
}

async fn count_matching(handle: &Handle, selector: &Selector) -> Result<usize, CliError> {
    Ok(handle.resolve(selector.clone()).await?.len())
}

/// `cluster query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    targets: TargetArgs,
    /// How long to wait for answers (default: the profile's query timeout, 2 s for
    /// lan-fast, 30 s for reference).
    #[arg(long, value_parser = duration, value_name = "DUR")]
    timeout: Option<Duration>,
    /// Also send these bytes, given in hex, as the query's raw field (typed payloads are
    /// postcard bytes there, their kind in the text).
    #[arg(long, value_parser = raw_hex, value_name = "HEX")]
    raw_hex: Option<RawHex>,
    /// The query text.
    data: String,
}

/// `cluster send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    targets: TargetArgs,
    /// The channel to send on.
    #[arg(long, default_value_t = 0, value_name = "N")]
    channel: u64,
    /// One multicast frame (to everyone without --resolve) instead of direct sends.
    #[arg(long)]
    broadcast: bool,
    /// Also send these bytes, given in hex, as the event's raw field (typed payloads are
    /// postcard bytes there, their kind in the text).
    #[arg(long, value_parser = raw_hex, value_name = "HEX")]
    raw_hex: Option<RawHex>,
    /// The event text.
    data: String,
}

/// `cluster join`: prints events until SIGINT or SIGTERM, then leaves (sends the
/// disconnect) and returns. With `--key-file`, SIGHUP reads the file again and the node
/// seals with the new ring from the next frame on; a file that cannot be read or parsed is
/// reported (stderr, or an `error` line with `--json`) and the keys in use stay.
pub(crate) async fn join(args: JoinArgs) -> Result<(), CliError> {
    let metrics = args.metrics.map(|_| NodeMetrics::new());
    // Bound before joining: an address in use fails the command before anything is sent.
    let listener = match args.metrics {
        Some(address) => Some(tokio::net::TcpListener::bind(address).await?),
        None => None,
    };
    let (handle, printer) = args.node.join_recording(metrics.as_ref()).await?;
    let mut events = handle.events();
    let answer_cmd = args
        .answer_cmd
        .clone()
        .map(|cmd| AnswerCmd::new(cmd, args.answer_timeout, args.answer_jobs));
    let mut incoming = match &answer_cmd {
        Some(_) => Some(handle.incoming_queries().await?),
        None => None,
    };
    // Before the `joined` line: a SIGHUP sent once it is printed is never the default
    // (which ends the process).
    let mut hangups = Hangups::new(args.node.key_file.is_some())?;
    printer.joined(&handle.info().await?)?;
    if let (Some(listener), Some(metrics)) = (listener, metrics) {
        printer.metrics(listener.local_addr()?)?;
        tokio::spawn(crate::metrics::serve(listener, handle.clone(), metrics));
    }
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            signal = &mut stop => {
                signal?;
                break;
            }
            () = hangups.next() => {
                if let Some(path) = &args.node.key_file {
                    reload_keys(&handle, printer, path).await?;
                }
            }
            event = events.next() => match event {
                Some(event) => printer.event(&event)?,
                None => return Err(CommandError::Closed.into()),
            },
            query = next_query(&mut incoming) => match (query, &answer_cmd) {
                (Some(query), Some(answer_cmd)) => {
                    printer.event(&Event::QueryReceived {
                        sid: query.sid,
                        channel: query.channel,
                        ruid: query.ruid.clone(),
                        payload: query.payload.clone(),
                    })?;
                    answer_cmd.spawn(query);
                }
                _ => return Err(CommandError::Closed.into()),
            },
        }
    }
    handle.leave().await?;
    Ok(())
}

/// The next held query; never without a stream.
async fn next_query(incoming: &mut Option<IncomingQueries>) -> Option<IncomingQuery> {
    match incoming {
        Some(incoming) => incoming.next().await,
        None => std::future::pending().await,
    }
}

/// Reads the key file again and hands the ring to the node, or reports why not.
async fn reload_keys(
    handle: &Handle,
    printer: Printer,
    path: &std::path::Path,
) -> Result<(), CliError> {
    match read_key_file(path) {
        Ok(ring) => {
            handle.set_keys(Some(ring.clone())).await?;
            printer.keys(Some(&ring))?;
        }
        Err(error) => printer.error("key_file", &error, "the keys in use stay")?,
    }
    Ok(())
}

/// SIGHUP, when it is handled (a key file to read again).
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn new(handle: bool) -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = if handle {
                Some(signal(SignalKind::hangup())?)
            } else {
                None
            };
            Ok(Self { signal })
        }
        #[cfg(not(unix))]
        {
            let _ = handle;
            Ok(Self {})
        }
    }

    /// The next SIGHUP; never when none is handled.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending().await
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// `cluster services`: listens for `--wait`, prints the known services (and with `--stats`
/// every counter), leaves.
pub(crate) async fn services(args: ServicesArgs) -> Result<(), CliError> {
    let (handle, printer) = args.node.join().await?;
    tokio::time::sleep(args.wait).await;
    let services = handle.services().await?;
    printer.service_table(&services)?;
    if args.stats {
        let (node, transport) = handle.stats().await?;
        printer.stats(&node, &transport)?;
    }
    handle.leave().await?;
    Ok(())
}

/// `cluster query`: waits for targets, queries them, prints each answer and a summary.
pub(crate) async fn query(args: QueryArgs) -> Result<(), CliError> {
    let (handle, printer) = args.node.join().await?;
    args.targets.wait_for_targets(&handle).await?;
    let mut spec = QuerySpec::new(args.targets.selector(), args.data.as_bytes());
    spec.timeout = args.timeout;
    spec.raw = args.raw_hex.map(|raw| raw.0);
    let result = match handle.query(spec).await {
        Ok(stream) => run_query(&handle, printer, stream).await,
        Err(CommandError::Query(QueryError::NoTargets)) => {
            printer.done(&QuerySummary::default(), &[], &[("targets", json!(0))])?;
            Err(CliError::NothingMatched)
        }
        Err(e) => Err(e.into()),
    };
    handle.leave().await?;
    result
}

async fn run_query(
    handle: &Handle,
    printer: Printer,
    mut stream: cluster_tokio::QueryStream,
) -> Result<(), CliError> {
    let expected = stream.targets().len();
    let mut answered = 0;
    printer.progress(answered, expected);
    let mut outcome = QueryOutcome::default();
    while let Some(event) = stream.next().await {
        match &event {
            QueryEvent::Done(_) => {}
            QueryEvent::Response { .. } | QueryEvent::Error { .. } => {
                answered += 1;
                printer.query_event(&event)?;
                printer.progress(answered, expected);
            }
            QueryEvent::Missing { .. } => printer.query_event(&event)?,
        }
        outcome.push(event);
    }
    if stream.summary().is_none() {
        outcome.finish_without_done(stream.targets());
    }
    let summary = outcome.summary;
    let (_, transport) = handle.stats().await?;
    printer.done(
        &summary,
        &outcome.missing,
        &[
            ("targets", json!(expected)),
            ("id", json!(stream.id())),
            ("direct_writes", json!(transport.writes_ok)),
            ("direct_failures", json!(transport.writes_failed)),
        ],
    )?;
    if summary.missing == 0 {
        Ok(())
    } else {
        Err(CliError::Missing(summary.missing))
    }
}

/// `cluster send`: waits for targets, sends, waits for the writes, leaves.
pub(crate) async fn send(args: SendArgs) -> Result<(), CliError> {
    let (handle, printer) = args.node.join().await?;
    let matching = args.targets.wait_for_targets(&handle).await?;
    let to = if args.broadcast && args.targets.resolve.is_empty() {
        Selector::none()
    } else {
        args.targets.selector()
    };
    let mut spec = SendSpec::new(to, args.data.as_bytes()).channel(args.channel);
    spec.raw = args.raw_hex.map(|raw| raw.0);
    if args.broadcast {
        spec = spec.broadcast(true);
    }
    let result = match handle.send(spec).await {
        Ok(()) => {
            handle.flush().await?;
            let (_, transport) = handle.stats().await?;
            let line = json!({
                "event": "sent",
                "targets": matching,
                "channel": args.channel,
                "broadcast": args.broadcast,
                "direct_writes": transport.writes_ok,
                "direct_failures": transport.writes_failed,
            });
            printer.sent(
                &line,
                format!("sent to {matching} service(s) on channel {}", args.channel),
            )?;
            Ok(())
        }
        Err(CommandError::Send(SendError::NoTargets)) => Err(CliError::NothingMatched),
        Err(e) => Err(e.into()),
    };
    handle.leave().await?;
    result
}
