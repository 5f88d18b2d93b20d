//! `cluster` processes for the tests: spawned with `--json`, their stdout read line by line
//! on a thread, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{HID, PATIENCE};

/// The binary under test.
pub const CLUSTER: &str = env!("CARGO_BIN_EXE_cluster");

/// A running `cluster` process.
pub struct Node {
    child: Child,
    lines: mpsc::Receiver<Value>,
    /// Lines read but not yet picked by a wait, oldest first.
    pub backlog: Vec<Value>,
}

impl Node {
    /// Runs `cluster COMMAND --json` on loopback only (port `port`, interface 127.0.0.1, the
    /// tests' hid, heartbeat 200 ms, ttl 1.5 s), then `extra`.
    pub fn on_loopback(command: &str, port: u16, extra: &[&str]) -> Self {
        let port = port.to_string();
        let mut args = vec![
            command,
            "--json",
            "--port",
            &port,
            "--interface",
            "127.0.0.1",
            "--hid",
            HID,
            "--heartbeat",
            "200ms",
            "--ttl",
            "1500ms",
        ];
        args.extend_from_slice(extra);
        Self::spawn(&[], &args)
    }

    /// Runs `prefix... cluster args...` (the prefix is e.g. `ip netns exec NS`).
    pub fn spawn(prefix: &[&str], args: &[&str]) -> Self {
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(CLUSTER);
                c
            }
            None => Command::new(CLUSTER),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CLUSTER}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line: {line}: {e}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            backlog: Vec::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line not picked yet for which `pick` returns `Some` (lines already read
    /// first, then new ones), within [`PATIENCE`]. The line is consumed; the others stay.
    pub fn wait_line<T>(&mut self, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        for (index, line) in self.backlog.iter().enumerate() {
            if let Some(found) = pick(line) {
                self.backlog.remove(index);
                return found;
            }
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match pick(&line) {
                    Some(found) => return found,
                    None => self.backlog.push(line),
                },
                Err(e) => panic!(
                    "no expected line within {PATIENCE:?} ({e}); lines not picked: {:#?}",
                    self.backlog
                ),
            }
        }
    }

    /// The next line not picked yet (oldest first), waiting until `deadline` at most.
    #[allow(dead_code)]
    pub fn try_line(&mut self, deadline: Instant) -> Option<Value> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).ok()
    }

    /// Waits for the `joined` line and returns the sid.
    /// Forgets every line printed so far: later waits see only newer ones.
    #[allow(dead_code)]
    pub fn forget_seen(&mut self) {
        while self.lines.try_recv().is_ok() {}
        self.backlog.clear();
    }

    pub fn joined(&mut self) -> String {
        self.wait_line(|l| (l["event"] == "joined").then(|| l["sid"].as_str().unwrap().to_owned()))
    }

    /// Waits for a line with this event and sid.
    pub fn wait_event(&mut self, event: &str, sid: &str) -> Value {
        self.wait_line(|l| (l["event"] == event && l["sid"] == sid).then(|| l.clone()))
    }

    /// Sends a signal with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Kills the process at once (SIGKILL): no disconnect goes out.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the exit, at most [`PATIENCE`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line not picked yet, until the process closes stdout.
    pub fn rest(&mut self) -> Vec<Value> {
        let mut rest = std::mem::take(&mut self.backlog);
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            rest.push(line);
        }
        rest
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
