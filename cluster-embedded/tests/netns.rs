//! The firmware driver next to a `cluster-tokio` node, on two hosts made of network
//! namespaces: the `tap_node` example (the driver on a TAP device) and `cluster join` in
//! remote mode, on one bridge. Each discovers the other, `cluster query` gets the firmware's
//! answer, and the firmware's disconnect reaches the tokio node when it stops. Sealed: with
//! the same `--key-file` on both the same holds, while an unkeyed `cluster` node on the
//! same bridge sees neither of them and is not seen; and the firmware rotates its send key
//! on SIGHUP without losing the tokio node.
//!
//! Needs root, iproute2 and /dev/net/tun; run it with
//! `cargo test -p cluster-embedded --test netns -- --ignored` (it builds the `cluster`
//! binary and the `tap_node` example first). Addresses 10.251.0.0/24 exist only inside the
//! namespaces, which the test creates and removes (a `Drop` guard, also on failure).

use std::path::PathBuf;
use std::sync::OnceLock;

use cluster_testkit::netns::{Bridge, KeyFile, Proc, build, unavailable};
use serde_json::json;

/// The timers and output of every node of these tests.
const TIMERS: [&str; 5] = ["--heartbeat", "200ms", "--ttl", "1500ms", "--json"];

/// Two hosts on one bridge: `h0` (a veth `eth0`, 10.251.0.1/24, with a route for
/// 224.0.0.0/4) for the tokio node, and the TAP device `tap0` on the bridge itself, which the
/// firmware stack (10.251.0.2/24) drives from the bridge's namespace.
struct Lab {
    net: Bridge,
}

impl Lab {
    /// A lab whose namespaces are named after this process and `name`.
    fn new(name: &str) -> Result<Self, String> {
        Ok(Self {
            net: Bridge::new(&format!("ce{name}"), "10.251.0", 1)?,
        })
    }

    /// The firmware node: `tap_node` on `tap0` (10.251.0.2/24) in the bridge's namespace,
    /// with `args` after the address and the common timers.
    fn firmware(&self, args: &[&str]) -> Proc {
        let mut all = vec!["--tap", "tap0", "--ip", "10.251.0.2/24"];
        all.extend(args);
        all.extend(TIMERS);
        Proc::spawn("tap_node", &self.net.bridge, &binaries().tap_node, &all)
    }

    /// `cluster COMMAND --remote ARGS... TIMERS... [DATA]` on the host `h0` (10.251.0.1).
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
    /// The `tap_node` example (its feature `tap` turns on `seal` for `--key-file`).
    tap_node: PathBuf,
}

/// Builds the executables once per test process.
fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries {
        cluster: build(&["-p", "cluster-tokio", "--bin", "cluster"]),
        tap_node: build(&[
            "-p",
            "cluster-embedded",
            "--features",
            "tap",
            "--example",
            "tap_node",
        ]),
    })
}

#[test]
#[ignore = "needs root, iproute2 and /dev/net/tun; run with --ignored"]
fn firmware_and_tokio_nodes_discover_each_other_and_the_query_gets_the_firmware_answer() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    binaries();
    let lab = Lab::new("p").unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    let mut firmware = lab.firmware(&["--tags", "fw", "--answer", "fw ok"]);
    let mut tokio = lab.cluster("cluster join", "join", &["--tags", "tok"], &[]);

    let (fw_sid, joined) = firmware.wait_joined();
    assert_eq!(
        joined["hid"], "02:c1:0a:fb:00:02",
        "the hid is the TAP stack's MAC"
    );
    assert_eq!(joined["protocols"], json!(["c"]));
    let (tok_sid, _) = tokio.wait_joined();

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
    let query_args = ["--resolve", "fw", "--expect", "1", "--wait", "5s"];
    let mut query = lab.cluster("cluster query", "query", &query_args, &["status?"]);
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

#[test]
#[ignore = "needs root, iproute2 and /dev/net/tun; run with --ignored"]
fn sealed_firmware_and_tokio_nodes_form_a_cluster_an_unkeyed_node_does_not_see() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    binaries();
    let lab = Lab::new("s").unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    // Key 3 seals; key 4 is accepted too, ready for the rotation at the end.
    let (key3, key4) = ("5eb1ed0c".repeat(8), "0c7a4e11".repeat(8));
    let keys = KeyFile::new(
        "ring",
        &format!("# the netns test's keys\n*3 {key3}\n4 {key4}\n"),
    );
    let sealed = ["--key-file", keys.path()];
    let mut firmware = lab.firmware(&[
        "--tags",
        "fw",
        "--answer",
        "fw sealed",
        "--key-file",
        keys.path(),
    ]);
    let mut tokio = lab.cluster(
        "cluster join",
        "join",
        &["--tags", "tok", sealed[0], sealed[1]],
        &[],
    );
    let mut plain = lab.cluster("unkeyed cluster join", "join", &["--tags", "plain"], &[]);
    let (fw_sid, _) = firmware.wait_joined();
    let (tok_sid, _) = tokio.wait_joined();
    plain.wait_joined();

    // The sealed nodes discover each other...
    let seen = tokio.wait_event("discovered", &fw_sid);
    assert_eq!(seen["ip"], "10.251.0.2");
    assert_eq!(seen["tags"], json!(["fw"]));
    let seen = firmware.wait_event("discovered", &tok_sid);
    assert_eq!(seen["tags"], json!(["tok"]));

    // ... and a sealed query (a node tagged `sealq`) gets the firmware's answer.
    let mut query = lab.cluster(
        "cluster query",
        "query",
        &[
            "--tags",
            "sealq",
            "--resolve",
            "fw",
            "--expect",
            "1",
            "--wait",
            "5s",
            sealed[0],
            sealed[1],
        ],
        &["status?"],
    );
    let status = query.wait_exit();
    assert_eq!(status.code(), Some(0), "lines: {:#?}", query.seen);
    let response = query.wait_for("response", |v| v["event"] == "response");
    assert_eq!(response["sid"], fw_sid.as_str());
    assert_eq!(response["data"], "fw sealed");
    let asked = firmware.wait_for("query", |v| v["event"] == "query");
    assert_eq!(asked["data"], "status?");

    // An unkeyed query (a node tagged `plainq`) listens for 2 s, ten of the firmware's
    // heartbeats, and finds no service tagged fw: nothing to ask (exit status 2). The
    // unkeyed node discovers it meanwhile: it hears the bridge, and sees only the unkeyed.
    let mut unkeyed = lab.cluster(
        "unkeyed cluster query",
        "query",
        &["--tags", "plainq", "--resolve", "fw", "--wait", "2s"],
        &["status?"],
    );
    plain.wait_for("discovered plainq", |v| {
        v["event"] == "discovered" && v["tags"] == json!(["plainq"])
    });
    let status = unkeyed.wait_exit();
    assert_eq!(status.code(), Some(2), "lines: {:#?}", unkeyed.seen);
    let done = unkeyed.wait_for("done", |v| v["event"] == "done");
    assert_eq!(done["targets"], 0);

    // Over all that time the unkeyed nodes saw none of the sealed ones, and the sealed ones
    // saw only each other.
    let tags =
        |names: &[&str]| -> Vec<String> { names.iter().map(|t| json!([t]).to_string()).collect() };
    let only = |seen: Vec<String>, allowed: &[String], who: &str| {
        assert!(
            seen.iter().all(|t| allowed.contains(t)),
            "{who} discovered {seen:?}"
        );
    };
    only(
        plain.discovered_tags(),
        &tags(&["plainq"]),
        "the unkeyed node",
    );
    only(
        firmware.discovered_tags(),
        &tags(&["tok", "sealq"]),
        "the firmware",
    );
    only(
        tokio.discovered_tags(),
        &tags(&["fw", "sealq"]),
        "the sealed tokio node",
    );
    assert!(
        firmware
            .lines()
            .iter()
            .filter(|v| v["event"] == "query")
            .all(|v| v["sid"] == asked["sid"]),
        "the firmware was asked by the sealed query only"
    );

    // Key rotation in the firmware: on SIGHUP it reads its key file again and hands the driver
    // the new ring, whose send key is 4. A node that holds key 3 only loses it (its frames no
    // longer open there); the tokio node, which holds both keys, keeps it.
    let old_keys = KeyFile::new("old", &format!("*3 {key3}\n"));
    let mut old = lab.cluster(
        "cluster join with key 3 only",
        "join",
        &["--tags", "old", "--key-file", old_keys.path()],
        &[],
    );
    old.wait_event("discovered", &fw_sid);
    keys.write(&format!("3 {key3}\n*4 {key4}\n"));
    firmware.signal("HUP");
    let lost = old.wait_event("lost", &fw_sid);
    assert_eq!(lost["reason"], "expired");
    assert!(
        !tokio
            .lines()
            .iter()
            .any(|v| v["event"] == "lost" && v["sid"] == fw_sid.as_str()),
        "the tokio node lost the firmware in the rotation"
    );

    // The firmware's sealed disconnect (key 4) reaches the sealed node only.
    firmware.terminate();
    assert!(
        firmware.wait_exit().success(),
        "lines: {:#?}",
        firmware.seen
    );
    let lost = tokio.wait_event("lost", &fw_sid);
    assert_eq!(lost["reason"], "disconnect");
    assert!(
        !plain
            .lines()
            .iter()
            .any(|v| v["event"] == "lost" && v["sid"] == fw_sid.as_str())
    );
}
