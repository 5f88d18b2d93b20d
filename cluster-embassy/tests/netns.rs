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

use std::path::PathBuf;
use std::sync::OnceLock;

use cluster_testkit::netns::{Bridge, KeyFile, Proc, build, unavailable};
use serde_json::{Value, json};

/// The timers and output of every node of these tests.
const TIMERS: [&str; 5] = ["--heartbeat", "200ms", "--ttl", "1500ms", "--json"];

/// Hosts on one bridge: `h0` (a veth `eth0`, 10.253.0.1/24, with a route for 224.0.0.0/4)
/// for the tokio nodes, and TAP devices on the bridge itself (`tap0`, `tap1`, ...), which the
/// embassy stacks (10.253.0.2/24, 10.253.0.3/24, ...) drive from the bridge's namespace.
struct Lab {
    net: Bridge,
}

impl Lab {
    /// A lab with `taps` TAP devices, whose namespaces are named after this process and
    /// `name` (one per test, so that tests can run side by side).
    fn new(name: &str, taps: usize) -> Result<Self, String> {
        Ok(Self {
            net: Bridge::new(&format!("cy{name}"), "10.253.0", taps)?,
        })
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
        Proc::spawn(name, &self.net.bridge, &binaries().tuntap, &all)
    }

    /// `cluster COMMAND --remote ARGS... TIMERS... [DATA]` on the host `h0` (10.253.0.1).
    fn cluster(&self, name: &'static str, command: &str, args: &[&str], data: &[&str]) -> Proc {
        let mut all = vec![command, "--remote"];
        all.extend(args);
        all.extend(TIMERS);
        all.extend(data);
        Proc::spawn(name, &self.net.host, &binaries().cluster, &all)
    }
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
    let crash_sid = crash.wait_joined().0;
    let tok_sid = tok.wait_joined().0;
    let tok_leave_sid = tok_leave.wait_joined().0;
    let tok_crash_sid = tok_crash.wait_joined().0;

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
    emb.command("query tok how are you?");
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
    emb.command("send tok hello");
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
    let emb_sid = emb.wait_joined().0;
    let tok_sid = tok.wait_joined().0;
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
    emb.command("query tok status?");
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
