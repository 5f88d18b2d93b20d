//! `examples/node.rs` as processes, one per runtime, read through their `--json` lines and
//! queried from a node in the test process. `cargo test` builds the example; run the whole
//! suite (or `cargo build -p cluster-smol --example node` first) when running this file
//! alone.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cluster_core::LostReason;
use cluster_smol::{QuerySpec, Selector};
use common::{HID, PATIENCE, Rt, Runtime, discovered_all, fresh_port, lost, options, within};
use serde_json::Value;

/// The example's binary, next to this test's (`target/<profile>/examples/node`).
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir
        .join("examples")
        .join(format!("node{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p cluster-smol --example node`",
        path.display()
    );
    path
}

/// A running example process, its stdout read line by line on a thread.
struct Node {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Node {
    fn spawn(port: u16, extra: &[&str]) -> Self {
        let port = port.to_string();
        let mut args = vec![
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
        let mut child = Command::new(example())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run the example");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line: {line}: {e}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The first line `pick` accepts, within [`PATIENCE`].
    fn wait_line<T>(&self, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no expected line within {PATIENCE:?}: {e}"));
            if let Some(found) = pick(&line) {
                return found;
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// The exit code, within [`PATIENCE`].
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "no exit within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_example_prints_cluster_join_lines_answers_and_leaves_on_a_signal() {
    let port = fresh_port();
    let mut on_smol = Node::spawn(port, &["--tags", "a b", "--answer", "smol here", "--stats"]);
    let mut on_std = Node::spawn(
        port,
        &["--runtime", "async-std", "--answer", "async-std here"],
    );
    let joined = on_smol.wait_line(|l| (l["event"] == "joined").then(|| l.clone()));
    let keys: Vec<&str> = joined
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "event",
            "sid",
            "hid",
            "group",
            "port",
            "protocols",
            "tcp_port",
            "unix_path",
            "interfaces"
        ],
        "the keys and order of `cluster join --json`"
    );
    assert_eq!(joined["port"], u64::from(port));
    assert_eq!(joined["hid"], HID);
    let smol_sid = joined["sid"].as_str().expect("sid").to_owned();
    let std_sid = on_std.wait_line(|l| {
        (l["event"] == "joined").then(|| l["sid"].as_str().expect("sid").to_owned())
    });

    let rt = Rt::Smol;
    rt.run(async {
        let asker = rt.join(options(port)).await;
        let mut events = asker.events();
        let sid = |s: &str| cluster_core::Sid::new(s.as_bytes()).expect("sid");
        discovered_all(&mut events, &[sid(&smol_sid), sid(&std_sid)]).await;
        let seen = on_smol.wait_line(|l| {
            (l["event"] == "discovered" && l["sid"] == asker.sid().to_string()).then(|| l.clone())
        });
        assert_eq!(seen["ip"], "127.0.0.1");
        assert_eq!(seen["local"], true);
        let outcome = within(
            "the answers",
            asker
                .query(QuerySpec::new(Selector::all(), "who?"))
                .await
                .expect("query")
                .collect(),
        )
        .await;
        let mut answers: Vec<String> = outcome
            .responses
            .iter()
            .map(|(_, p)| p.data_lossy())
            .collect();
        answers.sort();
        assert_eq!(answers, ["async-std here", "smol here"]);
        let query = on_std.wait_line(|l| (l["event"] == "query").then(|| l.clone()));
        assert_eq!(query["data"], "who?");

        on_smol.signal("TERM");
        // `--stats`: every counter, before the leave.
        let stats = on_smol.wait_line(|l| (l["event"] == "stats").then(|| l.clone()));
        assert!(stats["frames_accepted"].as_u64().expect("a counter") > 0);
        assert!(
            stats["writes_ok"].as_u64().expect("a counter") >= 1,
            "{stats}"
        );
        assert_eq!(stats["connections_refused"], 0);
        assert_eq!(
            lost(&mut events, sid(&smol_sid)).await,
            LostReason::Disconnected
        );
        on_std.signal("INT");
        assert_eq!(
            lost(&mut events, sid(&std_sid)).await,
            LostReason::Disconnected
        );
        asker.leave().await.expect("leave");
    });
    assert_eq!(on_smol.exit_code(), Some(0), "SIGTERM: leave, then exit 0");
    assert_eq!(on_std.exit_code(), Some(0), "SIGINT too");
}
