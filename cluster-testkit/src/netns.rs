//! What the network-namespace tests share (`cluster-embedded`'s TAP and QEMU tests,
//! `cluster-embassy`'s, `cluster-tokio`'s): `ip` commands, a bridge with a veth host and TAP
//! devices, processes whose output is read as JSON lines (and whose standard input takes
//! commands), builds of the executables they run, key files, and the check that this machine
//! can run them (root, `/dev/net/tun`, `ip netns`; under CI a machine that cannot is a
//! failure, not a skip).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

mod lab;
mod lan;

pub use lab::Lab;
pub use lan::{Lan, nft, nft_unavailable};

/// How long to wait for a line or an exit before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `ip ARGS...`; its error output on failure.
///
/// # Errors
///
/// `ip` could not run, or failed.
pub fn ip(args: &[&str]) -> Result<(), String> {
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

/// Network namespaces on this machine: a bridge namespace holding `br0` and `taps` TAP devices
/// (`tap0`, ...) on it, and a host namespace whose veth `eth0` (`SUBNET.1/24`, a route for
/// 224.0.0.0/4) is a port of the bridge: a [`Lab`] with TAP devices for emulated boards.
/// Removed when dropped (also when a test fails).
#[derive(Debug)]
pub struct Bridge {
    /// The bridge's namespace, where the TAP devices are.
    pub bridge: String,
    /// The host's namespace.
    pub host: String,
    taps: usize,
    _lab: Lab,
}

impl Bridge {
    /// Namespaces named after this process and `tag` (one set per test, so that tests can run
    /// side by side); `subnet` is the first three bytes, e.g. `10.251.0`.
    ///
    /// # Errors
    ///
    /// An `ip` command failed (what was built is removed).
    pub fn new(tag: &str, subnet: &str, taps: usize) -> Result<Self, String> {
        let mut lab = Lab::new(tag);
        let bridge = lab.bridge("br")?;
        let host = lab.host("h0")?;
        lab.cable(&host, "eth0", &bridge, &[&format!("{subnet}.1/24")])?;
        ip(&["-n", &host, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        let mut net = Self {
            bridge,
            host,
            taps: 0,
            _lab: lab,
        };
        for index in 0..taps {
            let tap = format!("tap{index}");
            ip(&[
                "-n",
                &net.bridge,
                "tuntap",
                "add",
                "dev",
                &tap,
                "mode",
                "tap",
            ])?;
            net.taps += 1;
            ip(&["-n", &net.bridge, "link", "set", &tap, "master", "br0"])?;
            ip(&["-n", &net.bridge, "link", "set", &tap, "up"])?;
        }
        Ok(net)
    }
}

impl Drop for Bridge {
    /// TAP devices are deleted first; the lab then removes the namespaces.
    fn drop(&mut self) {
        for index in 0..self.taps {
            let tap = format!("tap{index}");
            let _ = ip(&[
                "-n",
                &self.bridge,
                "tuntap",
                "del",
                "dev",
                &tap,
                "mode",
                "tap",
            ]);
        }
    }
}

/// A process whose stdout is read line by line as JSON and whose stdin takes command lines;
/// killed when dropped.
#[derive(Debug)]
pub struct Proc {
    /// What the test calls it.
    pub name: &'static str,
    /// The process.
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    /// Every line read so far.
    pub seen: Vec<Value>,
}

impl Proc {
    /// Runs `program ARGS...` in the namespace `netns` (its standard input piped, for
    /// [`command`](Self::command)); a thread reads its output.
    ///
    /// # Panics
    ///
    /// The process cannot start; later, a line of its output is not JSON.
    pub fn spawn(name: &'static str, netns: &str, program: &Path, args: &[&str]) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
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

    /// The first line (read before or within [`PATIENCE`]) that `pick` accepts.
    pub fn wait_for(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
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
    pub fn lines(&mut self) -> &[Value] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// The tags of every service discovered so far (each node of these tests has one tag).
    pub fn discovered_tags(&mut self) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|v| v["event"] == "discovered")
            .map(|v| v["tags"].to_string())
            .collect()
    }

    /// Waits for the `joined` line: the node's sid and the line.
    pub fn wait_joined(&mut self) -> (String, Value) {
        let joined = self.wait_for("joined", |v| v["event"] == "joined");
        let sid = joined["sid"].as_str().expect("sid").to_owned();
        (sid, joined)
    }

    /// Waits for the line of `event` about `sid`.
    pub fn wait_event(&mut self, event: &str, sid: &str) -> Value {
        self.wait_for(&format!("{event} of {sid}"), |v| {
            v["event"] == event && v["sid"] == sid
        })
    }

    /// Waits (at most [`PATIENCE`]) for the process to exit, then reads what is left of its
    /// output.
    pub fn wait_exit(&mut self) -> ExitStatus {
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

    /// Writes `line` and a line feed to the process's standard input.
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot write {line:?}: {e}", self.name));
    }

    /// SIGTERM: the process leaves the cluster and exits.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`TERM`, `KILL`, `HUP`...).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds with cargo and returns the path of the executable it reports.
pub fn build(args: &[&str]) -> PathBuf {
    // This crate sits at the workspace's root, like the crates that use it.
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

/// A key file in the temporary directory (seen by every namespace: they share the file
/// system), removed when dropped.
#[derive(Debug)]
pub struct KeyFile(PathBuf);

impl KeyFile {
    /// A key file named after this process and `name`, holding `text`.
    pub fn new(name: &str, text: &str) -> Self {
        let file = format!("cluster-netns-{}-{name}.keys", std::process::id());
        let key_file = Self(std::env::temp_dir().join(file));
        key_file.write(text);
        key_file
    }

    /// Replaces the file's text.
    pub fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("key file");
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Why this machine cannot run the test, if it cannot.
pub fn unavailable() -> Option<String> {
    // Probed once per process: tests running side by side would otherwise add and delete the
    // same probe namespace, and one of them would see the other's and skip.
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
    let probe = format!("ceprobe{}", std::process::id());
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("ip netns is unavailable ({e})")),
    }
}
