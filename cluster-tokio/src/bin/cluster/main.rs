//! The `cluster` command.
//!
//! Node commands (`join`, `services`, `query`, `send`, in [`node`]) and the packet tools
//! (`decode`, `encode`, [`cluster_tokio::packet`]). Each subcommand is one [`Command`]
//! variant with its own argument struct and one arm in [`run`]; every failure is a
//! [`CliError`], turned into the exit status by [`exit_code`].

mod answer_cmd;
mod doctor;
mod metrics;
mod node;
mod output;

use std::io::{self, ErrorKind};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cluster_core::wire::Compat;
use cluster_tokio::packet::{self, DecodeFormat, StreamReport};

/// Exit statuses, documented in `--help`.
const EXIT_BAD_LINES: u8 = 1;
const EXIT_NOTHING_MATCHED: u8 = 2;
const EXIT_IO: u8 = 3;
const EXIT_MISSING: u8 = 3;
const EXIT_JOIN: u8 = 4;
const EXIT_NODE: u8 = 5;
const EXIT_UNHEALTHY: u8 = 6;

#[derive(Debug, Parser)]
#[command(
    name = "cluster",
    version,
    about = "Tools for the cluster LAN discovery and messaging protocol (wire-compatible with the Tcl package)",
    after_help = "Exit status: 0 success; 1 (decode, encode) some input lines were bad (each is reported, \
                  the run carries on); 2 usage error, or (query, send) no service matched; 3 I/O error, or \
                  (query) the timeout passed with targets missing; 4 could not join (hid, sockets, options); \
                  5 the node refused a command; 6 (doctor) some interface's verdict is not ok."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join the cluster and print events until SIGINT or SIGTERM, then leave (send the
    /// disconnect) and exit 0. With --key-file, SIGHUP reads the key file again (a bad file
    /// is reported and the keys in use stay).
    Join(node::JoinArgs),
    /// Join, listen for a while (--wait, default 2s), print the known services (and with
    /// --stats every counter of the node and its transports), leave.
    Services(node::ServicesArgs),
    /// Join, wait for targets, query them, print each answer and a summary. Exit 0 when every
    /// target answered, 3 on timeout with targets missing, 2 when nothing matched.
    Query(node::QueryArgs),
    /// Join, wait for targets, send them an event, leave. Exit 2 when nothing matched.
    Send(node::SendArgs),
    /// Check each interface: does a multicast datagram to the group come back (loop), does
    /// another node answer; one verdict line per interface (ok, alone, no_loop, error) with
    /// hints on group, port, TTL and firewalls. Exit 0 when every verdict is ok, else 6.
    Doctor(doctor::DoctorArgs),
    /// Decode hex frames (one per line on stdin) to JSON or readable summaries.
    Decode(DecodeArgs),
    /// Encode JSON objects of fields (one per line on stdin) to hex frames.
    Encode(EncodeArgs),
}

#[derive(Debug, Args)]
#[command(
    long_about = "Decode hex frames, one per line on stdin, to one line each on stdout.

Whitespace inside a line is ignored and blank lines are skipped. A line must hold exactly one \
complete frame (c0 8d, length, fields, 00 00); bytes after the footer make it a bad line.",
    after_long_help = r#"Readable output (default), e.g.:
  heartbeat sid=AbCd1234 hid=00:11:22:33:44:55 ch=0 protocols=[t c] known=3
  error: truncated_varint: varint cut by the end of the frame

JSON output (--json): one object per frame, e.g.
  {"kind":"heartbeat","sid":"AbCd1234","hid":"00:11:22:33:44:55","type":1,"channel":0,"protocols":["t","c"],"known":3}
  - "kind" comes first: the message type's name (heartbeat, query, ..., "unknown" outside 0-8),
    or null when the frame has no type field.
  - Then the fields in wire order, named as in the spec: type channel hid sid known timestamp
    protocols ruid op data raw tags keepalive filter error. Varints are numbers, strings are
    strings ({"bytes_hex":"..."} when not UTF-8), lists are arrays, raw is hex, keepalive is 0/1.
  - A frame repeating a field keeps the LAST value at the FIRST position (as the reference's
    dict does) and gets a final "duplicates" key listing the repeated field names.

A bad line (bad hex, a decode error, trailing bytes) prints
  {"error":"<message>","error_kind":"<kind>"}
and the run carries on; the exit status is then 1. error_kind is the golden vectors' class
(bad_header, truncated_varint, varint_overflow, length_overrun, unknown_field, truncated_frame,
bad_footer) or bad_hex / trailing_bytes. Field 15 is also called "error": a query response
carrying an error decodes to {"kind":"response",...,"error":"denied"}. A decoded frame always
has "kind" and never "error_kind"; a bad line never has "kind"."#
)]
struct DecodeArgs {
    /// Print one JSON object per frame instead of a readable summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Encode JSON objects of fields, one per line on stdin, to lowercase hex \
frames, one per line on stdout. Fields are written in the object's key order.",
    after_long_help = r#"Input: the objects `cluster decode --json` prints, e.g.
  {"sid":"AbCd1234","hid":"00:11:22:33:44:55","type":1,"channel":0,"protocols":["t","c"],"known":3}
Values: numbers for type channel known timestamp; strings (or {"bytes_hex":"..."}) for hid sid
ruid op data error; arrays of strings for protocols tags filter; a hex string for raw; 0/1 or
true/false for keepalive. "kind", when present, must agree with "type" (null without a type);
"duplicates" is ignored; a key given twice is refused. Blank lines are skipped.

A bad line writes "line <n>: <error_kind>: <message>" to stderr (lines counted from 1) and
nothing to stdout; the run carries on and the exit status is then 1."#
)]
struct EncodeArgs {
    /// Skip the compatibility check that refuses any varint starting c0 8d, which reference
    /// (Tcl) nodes mis-read. Only for clusters without reference nodes.
    #[arg(long)]
    unchecked: bool,
}

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// No service matched the query's or send's selection.
    #[error("no service matched")]
    NothingMatched,
    /// The query timed out with this many targets missing.
    #[error("{0} target(s) did not answer")]
    Missing(u32),
    /// Joining failed.
    #[error("cannot join: {0}")]
    Join(#[from] cluster_tokio::JoinError),
    /// The node refused a command or stopped.
    #[error("{0}")]
    Node(#[from] cluster_tokio::CommandError),
    /// `doctor` found this many interfaces whose verdict is not ok (each was reported).
    #[error("{0} interface(s) not ok")]
    Unhealthy(usize),
    /// Some input lines were bad; each was reported already.
    #[error("{0} bad line(s)")]
    BadLines(usize),
    /// Reading stdin or writing stdout or stderr failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Turns a stream's report into the run's result.
fn lines_result(report: StreamReport) -> Result<(), CliError> {
    if report.bad == 0 {
        Ok(())
    } else {
        Err(CliError::BadLines(report.bad))
    }
}

/// Runs a node command on a single-threaded tokio runtime.
fn on_runtime<F: Future<Output = Result<(), CliError>>>(command: F) -> Result<(), CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Join(args) => return on_runtime(node::join(args)),
        Command::Services(args) => return on_runtime(node::services(args)),
        Command::Query(args) => return on_runtime(node::query(args)),
        Command::Send(args) => return on_runtime(node::send(args)),
        Command::Doctor(args) => return on_runtime(doctor::doctor(args)),
        Command::Decode(_) | Command::Encode(_) => {}
    }
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    match command {
        Command::Decode(args) => {
            let format = if args.json {
                DecodeFormat::Json
            } else {
                DecodeFormat::Summary
            };
            lines_result(packet::decode_stream(stdin, stdout, format)?)
        }
        Command::Encode(args) => {
            let compat = if args.unchecked {
                Compat::Unchecked
            } else {
                Compat::Reference
            };
            let stderr = io::stderr().lock();
            lines_result(packet::encode_stream(stdin, stdout, stderr, compat)?)
        }
        Command::Join(_)
        | Command::Services(_)
        | Command::Query(_)
        | Command::Send(_)
        | Command::Doctor(_) => Ok(()),
    }
}

/// The one place where errors become exit statuses (and messages on stderr).
///
/// A closed stdout (`cluster decode | head`) ends the run quietly with status 0.
fn exit_code(result: &Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::BadLines(_)) => ExitCode::from(EXIT_BAD_LINES),
        Err(CliError::NothingMatched) => ExitCode::from(EXIT_NOTHING_MATCHED),
        Err(CliError::Missing(_)) => ExitCode::from(EXIT_MISSING),
        Err(CliError::Unhealthy(_)) => ExitCode::from(EXIT_UNHEALTHY),
        Err(error @ CliError::Join(_)) => {
            eprintln!("cluster: {error}");
            ExitCode::from(EXIT_JOIN)
        }
        Err(error @ CliError::Node(_)) => {
            eprintln!("cluster: {error}");
            ExitCode::from(EXIT_NODE)
        }
        Err(CliError::Io(error)) if error.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error @ CliError::Io(_)) => {
            eprintln!("cluster: {error}");
            ExitCode::from(EXIT_IO)
        }
    }
}

/// Spans and events of the node on stderr, filtered by `RUST_LOG` (e.g.
/// `RUST_LOG=cluster_host=debug`); nothing without it.
fn init_tracing() {
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() else {
        return;
    };
    let colour =
        io::IsTerminal::is_terminal(&io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(colour)
        .init();
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    exit_code(&run(cli.command))
}
