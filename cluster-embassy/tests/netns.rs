//! The embassy adapter next to `cluster-tokio` nodes, on hosts made of network namespaces:
//! the `tuntap` example (the runner on an embassy-net stack over a TAP device) and
//! `cluster join` in remote mode, on one bridge. They discover each other, query each other
//! and send each other events (both ways), and each sees the other crash (expired) and leave
//! (disconnect). Sealed: with
//! the same `--key-file` the same holds while an unkeyed node sees neither, and the embassy
//! node rotates its send key on SIGHUP (`Handle::set_keys`) without losing its peer.
//!
//! Needs root, iproute2 and /dev/net/tun; run it with
//! `cargo test -p cluster-embassy --test netns -- --ignored` (it builds the `cluster` binary
//! and the `tuntap` example first). Addresses 10.253.0.0/24 exist only inside the namespaces,
//! which the test creates and removes (a `Drop` guard, also on failure); no frame leaves them.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long to wait for a line or an exit before failing.
const PATIENCE: Duration = Duration::from_secs(20);

/// The timers and output of every node of these tests.
const TIMERS: [&str; 5] = ["--heartbeat", "200ms", "--ttl", "1500ms", "--json"];

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

/// Hosts on one bridge: `h0` (a veth `eth0`, 10.253.0.1/24, with a route for 224.0.0.0/4)
/// for the tokio nodes, and TAP devices on the bridge itself (`tap0`, `tap1`, ...), which the
/// embassy stacks (10.253.0.2/24, 10.253.0.3/24, ...) drive from the bridge's namespace.
struct Lab {
    bridge: String,
    host: String,
    taps: usize,
}

impl Lab {
    /// A lab with `taps` TAP devices, whose namespaces are named after this process and
    /// `name` (one per test, so that tests can run side by side).
    fn new(name: &str, taps: usize) -> Result<Self, String> {
        let tag = format!("cy{}{name}", std::process::id());
        // The guard exists before the first namespace: a failed step removes what was made.
        let lab = Self {
            bridge: format!("{tag}br"),
            host: format!("{tag}h0"),
            taps,
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
        ip(&["-n", h0, "addr", "add", "10.253.0.1/24", "dev", "eth0"])?;
        ip(&["-n", h0, "link", "set", "eth0", "up"])?;
        ip(&["-n", h0, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        for tap in 0..taps {
            let dev = format!("tap{tap}");
            ip(&["-n", br, "tuntap", "add", "dev", &dev, "mode", "tap"])?;
            ip(&["-n", br, "link", "set", &dev, "master", "br0"])?;
            ip(&["-n", br, "link", "set", &dev, "up"])?;
        }
        Ok(lab)
    }

    /// An embassy node: `tuntap` on `tap<index>` (10.253.0.<index + 2>/24) in the bridge's
    /// namespace, with `args` after the address and the common timers; its standard input
    /// takes commands.
    fn embassy(&self, name: &'static str, index: usize, args: &[&str]) -> Proc {
        let tap = format!("tap{index}");
        let addr = format!("10.253.0.{}/24", index + 2);
        let mut all = vec!["--tap", &tap, "--ip", &addr];
        all.extend(args);
        all.extend(TIMERS);
        Proc::spawn(name, &self.bridge, &binaries().tuntap, &all, true)
    }

    /// `cluster COMMAND --remote ARGS... TIMERS... [DATA]` on the host `h0` (10.253.0.1).
    fn cluster(&self, name: &'static str, command: &str, args: &[&str], data: &[&str]) -> Proc {
        let mut all = vec![command, "--remote"];
        all.extend(args);
        all.extend(TIMERS);
        all.extend(data);
        Proc::spawn(name, &self.host, &binaries().cluster, &all, false)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for tap in 0..self.taps {
            let dev = format!("tap{tap}");
            let _ = ip(&[
                "-n",
                &self.bridge,
                "tuntap",
                "del",
                "dev",
                &dev,
                "mode",
                "tap",
            ]);
        }
        let _ = ip(&["netns", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.bridge]);
    }
}

/// A process whose stdout is read line by line as JSON; killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Proc {
    fn spawn(name: &'static str, netns: &str, program: &Path, args: &[&str], input: bool) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(program)
            .args(args)
            .stdin(if input { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
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
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Writes a command line to the process's standard input.
    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("a process that takes commands");
        writeln!(stdin, "{line}").expect("write a command");
        stdin.flush().expect("flush a command");
    }

    /// The first line (read before or within [`PATIENCE`]) that `pick` accepts and no
    /// earlier call returned.
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

    /// Every line printed so far, without waiting.
    fn lines(&mut self) -> &[Value] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// The tags of every service discovered so far (each node of these tests has one tag).
    fn discovered_tags(&mut self) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|v| v["event"] == "discovered")
            .map(|v| v["tags"].to_string())
            .collect()
    }

    fn wait_joined(&mut self) -> String {
        let joined = self.wait_for("joined", |v| v["event"] == "joined");
        joined["sid"].as_str().expect("sid").to_owned()
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

    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
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

/// The executables the tests run.
struct Binaries {
    /// `cluster` (cluster-tokio).
    cluster: PathBuf,
    /// The `tuntap` example (its feature `tap` turns on `seal` for `--key-file`).
    tuntap: PathBuf,
}

/// Builds the executables once per test process.
fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries {
        cluster: build(&["-p", "cluster-tokio", "--bin", "cluster"]),
        tuntap: build(&[
            "-p",
            "cluster-embassy",
            "--features",
            "tap",
            "--example",
            "tuntap",
        ]),
    })
}

/// A key file in the temporary directory (seen by every namespace: they share the file
/// system), removed when dropped.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(name: &str, text: &str) -> Self {
        let file = format!("cluster-embassy-netns-{}-{name}.keys", std::process::id());
        let key_file = Self(std::env::temp_dir().join(file));
        key_file.write(text);
        key_file
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("key file");
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Why this machine cannot run the tests, if it cannot (probed once per test process, so
/// that tests running side by side do not race on the probe).
fn unavailable() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    let reason = REASON.get_or_init(probe).clone();
    if let Some(reason) = &reason {
        // CI runs as root on a machine that has all of it: a skip there would hide a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "this machine cannot run the network tests ({reason}), and CI is set"
        );
    }
    reason
}

fn probe() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    let probe = format!("cyprobe{}", std::process::id());
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
fn embassy_and_tokio_nodes_discover_query_and_see_each_other_crash_and_leave() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    binaries();
    let lab = Lab::new("p", 2).unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    // `emb` stays to the end and leaves; `crash` is killed. Likewise on the tokio side:
    // `tok` stays, `tokleave` leaves, `tokcrash` is killed.
    let mut emb = lab.embassy("embassy node", 0, &["--tags", "emb", "--answer", "emb ok"]);
    let mut crash = lab.embassy("embassy node to crash", 1, &["--tags", "embcrash"]);
    let mut tok = lab.cluster(
        "cluster join",
        "join",
        &["--tags", "tok", "--answer", "tok ok"],
        &[],
    );
    let mut tok_leave = lab.cluster(
        "cluster join to leave",
        "join",
        &["--tags", "tokleave"],
        &[],
    );
    let mut tok_crash = lab.cluster(
        "cluster join to crash",
        "join",
        &["--tags", "tokcrash"],
        &[],
    );

    let joined = emb.wait_for("joined", |v| v["event"] == "joined");
    let emb_sid = joined["sid"].as_str().expect("sid").to_owned();
    assert_eq!(
        joined["hid"], "02:c2:0a:fd:00:02",
        "the hid is the stack's MAC"
    );
    assert_eq!(joined["protocols"], json!(["c"]));
    let crash_sid = crash.wait_joined();
    let tok_sid = tok.wait_joined();
    let tok_leave_sid = tok_leave.wait_joined();
    let tok_crash_sid = tok_crash.wait_joined();

    // Each discovers the other, with its address on the bridge, in remote mode.
    let seen = tok.wait_event("discovered", &emb_sid);
    assert_eq!(seen["ip"], "10.253.0.2");
    assert_eq!(seen["local"], false);
    assert_eq!(seen["tags"], json!(["emb"]));
    assert_eq!(
        seen["protocols"],
        json!(["c"]),
        "the embassy node runs c only"
    );
    assert_eq!(seen["hid"], "02:c2:0a:fd:00:02");
    let seen = emb.wait_event("discovered", &tok_sid);
    assert_eq!(seen["ip"], "10.253.0.1");
    assert_eq!(seen["local"], false);
    assert_eq!(seen["tags"], json!(["tok"]));
    // The two embassy nodes see each other too.
    let seen = emb.wait_event("discovered", &crash_sid);
    assert_eq!(seen["ip"], "10.253.0.3");
    tok.wait_event("discovered", &crash_sid);
    emb.wait_event("discovered", &tok_leave_sid);
    emb.wait_event("discovered", &tok_crash_sid);

    // A tokio node's query reaches the embassy node (by multicast with a filter: it runs c
    // only) and gets the answer of its policy.
    let query_args = ["--resolve", "emb", "--expect", "1", "--wait", "5s"];
    let mut query = lab.cluster("cluster query", "query", &query_args, &["status?"]);
    let status = query.wait_exit();
    assert_eq!(status.code(), Some(0), "lines: {:#?}", query.seen);
    let response = query.wait_for("response", |v| v["event"] == "response");
    assert_eq!(response["sid"], emb_sid.as_str());
    assert_eq!(response["data"], "emb ok");
    let asked = emb.wait_for("query", |v| v["event"] == "query");
    assert_eq!(asked["data"], "status?");
    assert_eq!(asked["ruid"], response_ruid(&query));

    // A tokio node's event reaches it too (a direct send falls back to multicast with a
    // filter) and is printed as `cluster join` prints it.
    let send_args = ["--resolve", "emb", "--expect", "1", "--wait", "5s"];
    let mut send = lab.cluster("cluster send", "send", &send_args, &["hi emb"]);
    let status = send.wait_exit();
    assert_eq!(status.code(), Some(0), "lines: {:#?}", send.seen);
    let message = emb.wait_for("message", |v| v["event"] == "message");
    assert_eq!(message["data"], "hi emb");
    assert_eq!(message["channel"], 0);

    // The embassy node queries the tokio node through its handle: the answer as it arrives,
    // then the end.
    emb.say("query tok how are you?");
    let response = emb.wait_for("response", |v| v["event"] == "response");
    assert_eq!(response["sid"], tok_sid.as_str());
    assert_eq!(response["data"], "tok ok");
    let done = emb.wait_for("done", |v| v["event"] == "done");
    assert_eq!(done["responses"], 1);
    assert_eq!(done["missing"], 0);
    assert_eq!(done["timed_out"], false);
    let asked = tok.wait_for("query from the embassy node", |v| {
        v["event"] == "query" && v["sid"] == emb_sid.as_str()
    });
    assert_eq!(asked["data"], "how are you?");

    // ... and sends it an event.
    emb.say("send tok hello");
    let message = tok.wait_for("message", |v| v["event"] == "message");
    assert_eq!(message["sid"], emb_sid.as_str());
    assert_eq!(message["data"], "hello");

    // Crashes: each side sees the other's silence expire.
    tok_crash.signal("KILL");
    let lost = emb.wait_event("lost", &tok_crash_sid);
    assert_eq!(
        lost["reason"], "expired",
        "the embassy node saw the tokio node crash"
    );
    crash.signal("KILL");
    let lost = tok.wait_event("lost", &crash_sid);
    assert_eq!(
        lost["reason"], "expired",
        "the tokio node saw the embassy node crash"
    );

    // Leaves: each side sees the other's disconnect.
    tok_leave.signal("TERM");
    assert!(tok_leave.wait_exit().success());
    let lost = emb.wait_event("lost", &tok_leave_sid);
    assert_eq!(
        lost["reason"], "disconnect",
        "the embassy node saw the tokio node leave"
    );
    emb.signal("TERM");
    assert!(emb.wait_exit().success(), "lines: {:#?}", emb.seen);
    let lost = tok.wait_event("lost", &emb_sid);
    assert_eq!(
        lost["reason"], "disconnect",
        "the tokio node saw the embassy node leave"
    );
    // On leaving, the embassy node reported the services it still knew as left.
    let left = emb.wait_event("lost", &tok_sid);
    assert_eq!(left["reason"], "left");
}

/// The query id of a `cluster query` run (its `done` line).
fn response_ruid(query: &Proc) -> Value {
    query
        .seen
        .iter()
        .find(|v| v["event"] == "done")
        .map(|v| v["id"].clone())
        .expect("a done line")
}

#[test]
#[ignore = "needs root, iproute2 and /dev/net/tun; run with --ignored"]
fn sealed_embassy_and_tokio_nodes_form_a_cluster_an_unkeyed_node_does_not_see() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    binaries();
    let lab = Lab::new("s", 1).unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    // Key 3 seals; key 4 is accepted too, ready for the rotation at the end.
    let (key3, key4) = ("5eb1ed0c".repeat(8), "0c7a4e11".repeat(8));
    let keys = KeyFile::new(
        "ring",
        &format!("# the netns test's keys\n*3 {key3}\n4 {key4}\n"),
    );
    let mut emb = lab.embassy(
        "sealed embassy node",
        0,
        &[
            "--tags",
            "emb",
            "--answer",
            "emb sealed",
            "--key-file",
            keys.path(),
        ],
    );
    let mut tok = lab.cluster(
        "sealed cluster join",
        "join",
        &[
            "--tags",
            "tok",
            "--answer",
            "tok sealed",
            "--key-file",
            keys.path(),
        ],
        &[],
    );
    let mut plain = lab.cluster("unkeyed cluster join", "join", &["--tags", "plain"], &[]);
    let emb_sid = emb.wait_joined();
    let tok_sid = tok.wait_joined();
    plain.wait_joined();

    // The sealed nodes discover each other and query each other.
    let seen = tok.wait_event("discovered", &emb_sid);
    assert_eq!(seen["ip"], "10.253.0.2");
    assert_eq!(seen["tags"], json!(["emb"]));
    emb.wait_event("discovered", &tok_sid);
    let mut query = lab.cluster(
        "sealed cluster query",
        "query",
        &[
            "--tags",
            "sealq",
            "--resolve",
            "emb",
            "--expect",
            "1",
            "--wait",
            "5s",
            "--key-file",
            keys.path(),
        ],
        &["status?"],
    );
    let status = query.wait_exit();
    assert_eq!(status.code(), Some(0), "lines: {:#?}", query.seen);
    let response = query.wait_for("response", |v| v["event"] == "response");
    assert_eq!(response["data"], "emb sealed");
    emb.say("query tok status?");
    let response = emb.wait_for("response", |v| v["event"] == "response");
    assert_eq!(response["sid"], tok_sid.as_str());
    assert_eq!(response["data"], "tok sealed");

    // The unkeyed node has been on the bridge all along (over ten heartbeats of each sealed
    // node by now): it saw neither sealed node, and neither saw it.
    emb.wait_for("done", |v| v["event"] == "done");
    let tags =
        |names: &[&str]| -> Vec<String> { names.iter().map(|t| json!([t]).to_string()).collect() };
    let only = |seen: Vec<String>, allowed: &[String], who: &str| {
        assert!(
            seen.iter().all(|t| allowed.contains(t)),
            "{who} discovered {seen:?}"
        );
    };
    only(plain.discovered_tags(), &[], "the unkeyed node");
    // The sealed query ran as a node of its own, tagged `sealq`.
    only(
        emb.discovered_tags(),
        &tags(&["tok", "sealq"]),
        "the embassy node",
    );
    only(
        tok.discovered_tags(),
        &tags(&["emb", "sealq"]),
        "the tokio node",
    );

    // Key rotation in the embassy node: on SIGHUP it reads its key file again and hands the
    // new ring to the node through its handle (send key 4). A node that holds key 3 only
    // loses it (its frames no longer open there); the tokio node, which holds both, keeps it.
    let old_keys = KeyFile::new("old", &format!("*3 {key3}\n"));
    let mut old = lab.cluster(
        "cluster join with key 3 only",
        "join",
        &["--tags", "old", "--key-file", old_keys.path()],
        &[],
    );
    old.wait_event("discovered", &emb_sid);
    keys.write(&format!("3 {key3}\n*4 {key4}\n"));
    emb.signal("HUP");
    let lost = old.wait_event("lost", &emb_sid);
    assert_eq!(lost["reason"], "expired");
    assert!(
        !tok.lines()
            .iter()
            .any(|v| v["event"] == "lost" && v["sid"] == emb_sid.as_str()),
        "the tokio node lost the embassy node in the rotation"
    );

    // The embassy node's sealed disconnect (key 4) reaches the sealed node only.
    emb.signal("TERM");
    assert!(emb.wait_exit().success(), "lines: {:#?}", emb.seen);
    let lost = tok.wait_event("lost", &emb_sid);
    assert_eq!(lost["reason"], "disconnect");
    assert!(
        !plain
            .lines()
            .iter()
            .any(|v| v["event"] == "lost" && v["sid"] == emb_sid.as_str())
    );
}
