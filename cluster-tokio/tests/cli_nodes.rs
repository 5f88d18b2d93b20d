//! `cluster join | services | query | send` as separate processes on loopback, read through
//! their `--json` lines.

mod common;

use common::process::Node;
use common::{Ghost, HID, fresh_port};

/// The options every process of a test shares: its own port, loopback, fast timers.
fn node_args(port: u16) -> Vec<String> {
    [
        "--json",
        "--port",
        &port.to_string(),
        "--interface",
        "127.0.0.1",
        "--hid",
        HID,
        "--heartbeat",
        "200ms",
        "--ttl",
        "1500ms",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn join(port: u16, extra: &[&str]) -> Node {
    let mut args = vec!["join".to_owned()];
    args.extend(node_args(port));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Node::spawn(&[], &args)
}

/// Runs a short-lived command to its end; returns its lines and exit code.
fn run(port: u16, command: &str, extra: &[&str]) -> (Vec<serde_json::Value>, Option<i32>) {
    let mut args = vec![command.to_owned()];
    args.extend(node_args(port));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = Node::spawn(&[], &args);
    let lines = node.rest();
    let status = node.wait_exit();
    (lines, status.code())
}

#[test]
fn two_processes_discover_each_other_and_sigterm_sends_the_disconnect() {
    let port = fresh_port();
    let mut a = join(port, &["--tags", "alpha"]);
    let a_sid = a.joined();
    let mut b = join(port, &["--tags", "beta gamma"]);
    let b_sid = b.joined();
    let seen = a.wait_event("discovered", &b_sid);
    assert_eq!(seen["tags"], serde_json::json!(["beta", "gamma"]));
    assert_eq!(seen["hid"], HID);
    assert_eq!(seen["local"], true);
    assert_eq!(seen["ip"], "127.0.0.1");
    b.wait_event("discovered", &a_sid);
    b.signal("TERM");
    assert_eq!(b.wait_exit().code(), Some(0), "SIGTERM: leave, then exit 0");
    let lost = a.wait_event("lost", &b_sid);
    assert_eq!(lost["reason"], "disconnect");
    a.signal("INT");
    assert_eq!(a.wait_exit().code(), Some(0), "SIGINT too");
}

#[test]
fn a_killed_process_is_dropped_by_expiry() {
    let port = fresh_port();
    let mut a = join(port, &[]);
    let a_sid = a.joined();
    let mut b = join(port, &[]);
    let b_sid = b.joined();
    a.wait_event("discovered", &b_sid);
    b.wait_event("discovered", &a_sid);
    b.kill();
    let lost = a.wait_event("lost", &b_sid);
    assert_eq!(lost["reason"], "expired");
}

#[test]
fn query_prints_each_answer_and_exits_0_when_all_answered() {
    let port = fresh_port();
    let mut a = join(port, &["--tags", "greeter", "--answer", "Hello"]);
    let a_sid = a.joined();
    let mut b = join(port, &["--tags", "greeter", "--answer", "World"]);
    let b_sid = b.joined();
    let (lines, code) = run(
        port,
        "query",
        &[
            "--resolve",
            "greeter",
            "--expect",
            "2",
            "--wait",
            "5s",
            "who?",
        ],
    );
    assert_eq!(code, Some(0), "lines: {lines:#?}");
    let answer = |sid: &str| {
        lines
            .iter()
            .find(|l| l["event"] == "response" && l["sid"] == sid)
            .map(|l| l["data"].as_str().unwrap().to_owned())
    };
    assert_eq!(answer(&a_sid).as_deref(), Some("Hello"));
    assert_eq!(answer(&b_sid).as_deref(), Some("World"));
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["responses"], 2);
    assert_eq!(done["missing"], 0);
    assert_eq!(done["missing_sids"], serde_json::json!([]));
    // The answering nodes saw the query.
    let query = a.wait_line(|l| (l["event"] == "query").then(|| l.clone()));
    assert_eq!(query["data"], "who?");
}

#[test]
fn query_exits_2_when_nothing_matches() {
    let port = fresh_port();
    let (lines, code) = run(
        port,
        "query",
        &["--resolve", "nobody", "--wait", "300ms", "x"],
    );
    assert_eq!(code, Some(2));
    let done = lines.last().unwrap();
    assert_eq!(
        (done["event"].as_str(), done["responses"].as_u64()),
        (Some("done"), Some(0))
    );
}

#[test]
fn query_exits_3_when_a_target_stays_silent() {
    let port = fresh_port();
    // A multicast-only peer that heartbeats but never answers.
    let _ghost = Ghost::start(port, "silent01", &["c"], String::new());
    let (lines, code) = run(
        port,
        "query",
        &[
            "--resolve",
            "silent01",
            "--expect",
            "1",
            "--timeout",
            "500ms",
            "hello?",
        ],
    );
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done", "lines: {lines:#?}");
    assert_eq!(done["missing"], 1);
    assert_eq!(done["missing_sids"], serde_json::json!(["silent01"]));
    assert_eq!(done["timed_out"], true);
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "missing" && l["sid"] == "silent01")
    );
    assert_eq!(code, Some(3));
}

#[test]
fn send_on_a_channel_reaches_the_subscribed_node() {
    let port = fresh_port();
    let mut sink = join(port, &["--tags", "sink", "--channels", "5"]);
    sink.joined();
    let (lines, code) = run(
        port,
        "send",
        &[
            "--resolve",
            "sink",
            "--expect",
            "1",
            "--channel",
            "5",
            "hello on 5",
        ],
    );
    assert_eq!(code, Some(0), "lines: {lines:#?}");
    assert_eq!(lines.last().unwrap()["event"], "sent");
    let message = sink.wait_line(|l| (l["event"] == "message").then(|| l.clone()));
    assert_eq!(message["channel"], 5);
    assert_eq!(message["data"], "hello on 5");
}

#[test]
fn services_lists_the_known_nodes() {
    let port = fresh_port();
    let mut a = join(port, &["--tags", "listed"]);
    let a_sid = a.joined();
    let (lines, code) = run(port, "services", &["--wait", "1s"]);
    assert_eq!(code, Some(0));
    let listed = lines
        .iter()
        .find(|l| l["sid"] == a_sid.as_str())
        .unwrap_or_else(|| panic!("{a_sid} not listed: {lines:#?}"));
    assert_eq!(listed["event"], "service");
    assert_eq!(listed["tags"], serde_json::json!(["listed"]));
}

/// A key file holding the one key `id` (its bytes derived from the id), marked to send with.
fn write_key_file(path: &std::path::Path, id: u8) {
    let hex: String = std::iter::repeat_n(format!("{:02x}", id.wrapping_mul(0x11)), 32).collect();
    std::fs::write(path, format!("# test ring\n*{id} {hex}\n")).expect("write the key file");
}

/// A directory of its own for a test's files, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cluster-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("UTF-8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sighup_makes_join_read_its_key_file_again_and_a_bad_file_keeps_the_keys() {
    let dir = TempDir::new("sighup");
    let (a_keys, b_keys, key_2) = (dir.file("a"), dir.file("b"), dir.file("two"));
    write_key_file(a_keys.as_ref(), 1);
    write_key_file(b_keys.as_ref(), 1);
    write_key_file(key_2.as_ref(), 2);
    let port = fresh_port();
    let mut a = join(port, &["--key-file", &a_keys, "--tags", "keyed"]);
    let a_sid = a.joined();
    let mut b = join(port, &["--key-file", &b_keys]);
    let b_sid = b.joined();
    a.wait_event("discovered", &b_sid);
    b.wait_event("discovered", &a_sid);

    // B moves to key 2 alone: A, still on key 1, cannot hear it any more.
    write_key_file(b_keys.as_ref(), 2);
    b.signal("HUP");
    let keys = b.wait_line(|l| (l["event"] == "keys").then(|| l.clone()));
    assert_eq!(
        keys,
        serde_json::json!({"event": "keys", "ids": [2], "send": 2})
    );
    assert_eq!(a.wait_event("lost", &b_sid)["reason"], "expired");

    // A follows: they see each other again.
    write_key_file(a_keys.as_ref(), 2);
    a.signal("HUP");
    a.wait_line(|l| (l["event"] == "keys" && l["send"] == 2).then_some(()));
    a.wait_event("discovered", &b_sid);

    // A file that does not parse is reported; the node keeps sealing with key 2.
    std::fs::write(&a_keys, "not a key\n").unwrap();
    a.signal("HUP");
    let error = a.wait_line(|l| (l["event"] == "error").then(|| l.clone()));
    assert_eq!(error["what"], "key_file");
    assert!(
        error["error"].as_str().unwrap().contains("line 1"),
        "{error}"
    );
    let (lines, code) = run(
        port,
        "query",
        &[
            "--key-file",
            &key_2,
            "--resolve",
            "keyed",
            "--expect",
            "1",
            "still there?",
        ],
    );
    assert_eq!(code, Some(0), "lines: {lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "response" && l["sid"] == a_sid.as_str())
    );
    a.signal("TERM");
    assert_eq!(a.wait_exit().code(), Some(0));
}

#[test]
fn services_stats_prints_every_counter_by_name() {
    let port = fresh_port();
    let mut a = join(port, &[]);
    let a_sid = a.joined();
    let (lines, code) = run(port, "services", &["--wait", "1s", "--stats"]);
    assert_eq!(code, Some(0), "lines: {lines:#?}");
    assert!(lines.iter().any(|l| l["sid"] == a_sid.as_str()));
    let stats = lines.last().unwrap().as_object().expect("an object");
    let names: Vec<&str> = stats.keys().map(String::as_str).collect();
    let expected: Vec<&str> = std::iter::once("event")
        .chain(
            cluster_tokio::json::node_counters(&Default::default())
                .into_iter()
                .map(|(name, _)| name),
        )
        .chain(
            cluster_tokio::json::transport_counters(&Default::default())
                .into_iter()
                .map(|(name, _)| name),
        )
        .collect();
    assert_eq!(names, expected, "every counter, named as its field");
    assert_eq!(stats["event"], "stats");
    assert!(stats["frames_accepted"].as_u64().unwrap() > 0, "{stats:?}");
    assert!(stats["datagrams_sent"].as_u64().unwrap() > 0, "{stats:?}");
    assert!(stats.values().skip(1).all(serde_json::Value::is_u64));

    // On a terminal or a pipe without --json: a table per group.
    let output = std::process::Command::new(common::process::CLUSTER)
        .args([
            "services",
            "--wait",
            "300ms",
            "--stats",
            "--port",
            &port.to_string(),
        ])
        .args(["--interface", "127.0.0.1", "--hid", HID])
        .output()
        .expect("run cluster services");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "NODE COUNTER",
        "TRANSPORT COUNTER",
        "frames_accepted",
        "connections_refused",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn max_connections_makes_join_close_connections_over_the_limit() {
    use std::io::Read;
    let port = fresh_port();
    let mut a = join(port, &["--max-connections", "1"]);
    let joined = a.wait_line(|l| (l["event"] == "joined").then(|| l.clone()));
    let tcp = u16::try_from(joined["tcp_port"].as_u64().expect("t runs")).unwrap();
    // The first connection fills the table; the second is closed at once.
    let _first = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let mut second = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    second.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut byte = [0u8; 1];
    match second.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the second connection stays open: {other:?}"),
    }
}
