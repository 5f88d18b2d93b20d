//! The firmware driver next to a `cluster-tokio` node, on two hosts made of network
//! namespaces: the `tap_node` example (the driver on a TAP device) and `cluster join` in
//! remote mode, on one bridge. Each discovers the other, `cluster query` gets the firmware's
//! answer, and the firmware's disconnect reaches the tokio node when it stops.
//!
//! Needs root, iproute2 and /dev/net/tun; run it with
//! `cargo test -p cluster-embedded --test netns -- --ignored` (it builds the `cluster`
//! binary and the `tap_node` example first). Addresses 10.251.0.0/24 exist only inside the
//! namespaces, which the test creates and removes (a `Drop` guard, also on failure).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long to wait for a line or an exit before failing.
const PATIENCE: Duration = Duration::from_secs(20);

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Two hosts on one bridge: `h0` (a veth `eth0`, 10.251.0.1/24, with a route for
/// 224.0.0.0/4) for the tokio node, and the TAP device `tap0` on the bridge itself, which the
/// firmware stack (10.251.0.2/24) drives from the bridge's namespace.
struct Lab {
    bridge: String,
    host: String,
}

impl Lab {
    fn new() -> Result<Self, String> {
        let tag = format!("ce{}", std::process::id());
        let lab = Self {
            bridge: format!("{tag}br"),
            host: format!("{tag}h0"),
        };
        let (br, h0) = (lab.bridge.as_str(), lab.host.as_str());
        ip(&["netns", "add", br])?;
        ip(&["netns", "add", h0])?;
        ip(&[
            "-n",
            br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", br, "link", "set", "br0", "up"])?;
        ip(&[
            "link", "add", "name", "eth0", "netns", h0, "type", "veth", "peer", "name", "port0",
            "netns", br,
        ])?;
        ip(&["-n", br, "link", "set", "port0", "master", "br0"])?;
        ip(&["-n", br, "link", "set", "port0", "up"])?;
        ip(&["-n", h0, "link", "set", "lo", "up"])?;
        ip(&["-n", h0, "addr", "add", "10.251.0.1/24", "dev", "eth0"])?;
        ip(&["-n", h0, "link", "set", "eth0", "up"])?;
        ip(&["-n", h0, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        ip(&["-n", br, "tuntap", "add", "dev", "tap0", "mode", "tap"])?;
        ip(&["-n", br, "link", "set", "tap0", "master", "br0"])?;
        ip(&["-n", br, "link", "set", "tap0", "up"])?;
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = ip(&[
            "-n",
            &self.bridge,
            "tuntap",
            "del",
            "dev",
            "tap0",
            "mode",
            "tap",
        ]);
        let _ = ip(&["netns", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.bridge]);
    }
}

/// A process whose stdout is read line by line as JSON; killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Proc {
    fn spawn(name: &'static str, netns: &str, program: &Path, args: &[&str]) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{name}: not a JSON line: {line}: {e}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (read before or within [`PATIENCE`]) that `pick` accepts.
    fn wait_for(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().find(|v| pick(v)) {
            return found.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pick(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{}: no {what} within {PATIENCE:?}; lines: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    fn wait_event(&mut self, event: &str, sid: &str) -> Value {
        self.wait_for(&format!("{event} of {sid}"), |v| {
            v["event"] == event && v["sid"] == sid
        })
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Collect what is left of the output.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status;
            }
            assert!(Instant::now() < deadline, "{}: still running", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: the process leaves the cluster and exits.
    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds with cargo and returns the path of the executable it reports.
fn build(args: &[&str]) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["--message-format", "json-render-diagnostics"])
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo build");
    assert!(output.status.success(), "cargo build {args:?} failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
        .unwrap_or_else(|| panic!("cargo build {args:?} reported no executable"))
}

/// Why this machine cannot run the test, if it cannot.
fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    let probe = format!("ceprobe{}", std::process::id());
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("ip netns is unavailable ({e})")),
    }
}

#[test]
#[ignore = "needs root, iproute2 and /dev/net/tun; run with --ignored"]
fn firmware_and_tokio_nodes_discover_each_other_and_the_query_gets_the_firmware_answer() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let cluster = build(&["-p", "cluster-tokio", "--bin", "cluster"]);
    let tap_node = build(&[
        "-p",
        "cluster-embedded",
        "--features",
        "tap",
        "--example",
        "tap_node",
    ]);
    let lab = Lab::new().unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    let timers = ["--heartbeat", "200ms", "--ttl", "1500ms", "--json"];

    let mut args = vec![
        "--tap",
        "tap0",
        "--ip",
        "10.251.0.2/24",
        "--tags",
        "fw",
        "--answer",
        "fw ok",
    ];
    args.extend(timers);
    let mut firmware = Proc::spawn("tap_node", &lab.bridge, &tap_node, &args);
    let mut args = vec!["join", "--remote", "--tags", "tok"];
    args.extend(timers);
    let mut tokio = Proc::spawn("cluster join", &lab.host, &cluster, &args);

    let joined = firmware.wait_for("joined", |v| v["event"] == "joined");
    let fw_sid = joined["sid"].as_str().expect("sid").to_owned();
    assert_eq!(
        joined["hid"], "02:c1:0a:fb:00:02",
        "the hid is the TAP stack's MAC"
    );
    assert_eq!(joined["protocols"], json!(["c"]));
    let joined = tokio.wait_for("joined", |v| v["event"] == "joined");
    let tok_sid = joined["sid"].as_str().expect("sid").to_owned();

    // Each discovers the other, with its address on the bridge, in remote mode.
    let seen = tokio.wait_event("discovered", &fw_sid);
    assert_eq!(seen["ip"], "10.251.0.2");
    assert_eq!(seen["local"], false);
    assert_eq!(seen["tags"], json!(["fw"]));
    assert_eq!(
        seen["protocols"],
        json!(["c"]),
        "the firmware advertises c only"
    );
    assert_eq!(seen["hid"], "02:c1:0a:fb:00:02");
    let seen = firmware.wait_event("discovered", &tok_sid);
    assert_eq!(seen["ip"], "10.251.0.1");
    assert_eq!(seen["local"], false);
    assert_eq!(seen["tags"], json!(["tok"]));

    // A tokio node's query reaches the firmware (by multicast with a filter: it runs c only)
    // and gets its answer.
    let mut args = vec![
        "query",
        "--remote",
        "--resolve",
        "fw",
        "--expect",
        "1",
        "--wait",
        "5s",
    ];
    args.extend(timers);
    args.push("status?");
    let mut query = Proc::spawn("cluster query", &lab.host, &cluster, &args);
    let status = query.wait_exit();
    let response = query.wait_for("response", |v| v["event"] == "response");
    assert_eq!(status.code(), Some(0), "lines: {:#?}", query.seen);
    assert_eq!(response["sid"], fw_sid.as_str());
    assert_eq!(response["data"], "fw ok");
    let asked = firmware.wait_for("query", |v| v["event"] == "query");
    assert_eq!(asked["data"], "status?");

    // Stopping the firmware node sends its disconnect.
    firmware.terminate();
    assert!(
        firmware.wait_exit().success(),
        "lines: {:#?}",
        firmware.seen
    );
    let lost = tokio.wait_event("lost", &fw_sid);
    assert_eq!(lost["reason"], "disconnect");
}
