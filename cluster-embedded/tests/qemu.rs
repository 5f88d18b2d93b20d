//! The firmware on an emulated microcontroller: QEMU `mps2-an386` boards (Cortex-M4F, LAN9220
//! Ethernet) booted by `cluster-embedded/qemu/run.sh`, each on a TAP device of a bridge (two
//! with the smoltcp driver's firmware, one with cluster-embassy's), and `cluster join` nodes
//! (tokio) on a veth host of the same bridge. Discovery all
//! ways, `cluster query` answered by each board, a board's own query answered by the tokio
//! node, garbage and a flood from the tokio side (counted, the board keeps answering), the
//! tokio node SIGKILLed (both boards report it lost within their ttl), a board told to leave
//! (the tokio node sees `disconnect`); sealed: a key ring, an unkeyed node that sees nothing,
//! and a key rotation on the board's `keys` command.
//!
//! Needs root, iproute2, /dev/net/tun and qemu-system-arm (run.sh installs it as root); run
//! it with `cargo test -p cluster-embedded --test qemu -- --ignored --nocapture` (it builds
//! the `cluster` binary and the firmware images first; the figures it measures are printed
//! on stderr). Addresses 10.251.1.0/24 exist only inside the namespaces, which the test
//! creates and removes (a `Drop` guard, also on failure).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cluster_testkit::netns::{Bridge, KeyFile, Proc, build, unavailable};
use serde_json::{Value, json};

/// The timers of every node: fast heartbeats, a short ttl.
const HEARTBEAT: &str = "200ms";
const TTL: &str = "1500ms";
const TTL_MS: u128 = 1500;

/// A bridge with `boards` TAP devices (`tap0`, ...) for QEMU boards (10.251.1.2, .3, ...),
/// and a veth host `h0` (10.251.1.1/24, a route for 224.0.0.0/4) for the tokio nodes.
struct Lab {
    net: Bridge,
}

impl Lab {
    fn new(name: &str, boards: usize) -> Result<Self, String> {
        Ok(Self {
            net: Bridge::new(&format!("cq{name}"), "10.251.1", boards)?,
        })
    }

    /// Board `index`'s address, without the prefix.
    fn board_ip(index: usize) -> String {
        format!("10.251.1.{}", index + 2)
    }

    /// Boots board `index` with `run.sh` on `tap<index>`, `args` after the address and timers.
    fn board(&self, name: &'static str, index: usize, args: &[&str]) -> Proc {
        let tap = format!("tap{index}");
        let address = format!("{}/24", Self::board_ip(index));
        let mut all = vec!["--tap", &tap, "--ip", &address];
        all.extend(["--heartbeat", HEARTBEAT, "--ttl", TTL]);
        all.extend(args);
        Proc::spawn(name, &self.net.bridge, &run_sh(), &all)
    }

    /// `cluster COMMAND --remote ARGS... TIMERS... [DATA]` on the host `h0`.
    fn cluster(&self, name: &'static str, command: &str, args: &[&str], data: &[&str]) -> Proc {
        let mut all = vec![command, "--remote"];
        all.extend(args);
        all.extend(["--heartbeat", HEARTBEAT, "--ttl", TTL, "--json"]);
        all.extend(data);
        Proc::spawn(name, &self.net.host, &binaries().cluster, &all)
    }

    /// Runs a Python program on the host `h0` (the garbage sender) and waits for it.
    fn python_on_host(&self, program: &str) {
        let status = Command::new("ip")
            .args(["netns", "exec", &self.net.host, "python3", "-c", program])
            .status()
            .expect("python3");
        assert!(status.success(), "the garbage sender failed");
    }
}

fn run_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu/run.sh")
}

/// The executables the tests run.
struct Binaries {
    /// `cluster` (cluster-tokio).
    cluster: PathBuf,
}

/// Builds the `cluster` binary and both firmware images once per test process (so that no
/// board's boot waits for a build).
fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        for variant in [
            &["--build-only"][..],
            &["--build-only", "--key-file", "/dev/null"],
            &["--build-only", "--embassy"],
        ] {
            let status = Command::new(run_sh())
                .args(variant)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("run.sh");
            assert!(status.success(), "run.sh {variant:?} failed");
        }
        Binaries {
            cluster: build(&["-p", "cluster-tokio", "--bin", "cluster"]),
        }
    })
}

/// Skips the test (with the reason) when the machine cannot run it.
fn skip() -> bool {
    let reason = unavailable().or_else(|| {
        let qemu = Command::new("sh")
            .args(["-c", "command -v qemu-system-arm || [ \"$(id -u)\" = 0 ]"])
            .stdout(std::process::Stdio::null())
            .status();
        (!qemu.is_ok_and(|s| s.success())).then(|| "no qemu-system-arm".to_owned())
    });
    if let Some(reason) = &reason {
        eprintln!("SKIPPED: {reason}");
    }
    reason.is_some()
}

/// Waits until `proc` prints a `discovered` line of each sid.
fn discovers(proc: &mut Proc, sids: &[&str]) {
    for sid in sids {
        proc.wait_event("discovered", sid);
    }
}

/// Waits until `proc` shows `tags` for `sid`: in its `discovered` line, or in a `tags` line
/// after it (a discovery answer may overtake the heartbeat that carries the tags; the next
/// heartbeat corrects them).
fn has_tags(proc: &mut Proc, sid: &str, tags: &[&str]) {
    proc.wait_for(&format!("tags {tags:?} of {sid}"), |v| {
        (v["event"] == "discovered" || v["event"] == "tags")
            && v["sid"] == sid
            && v["tags"] == json!(tags)
    });
}

/// Asks `stats` of a board and returns the line it prints.
fn stats(board: &mut Proc) -> Value {
    let count = |board: &mut Proc| {
        board
            .lines()
            .iter()
            .filter(|v| v["event"] == "stats")
            .count()
    };
    let before = count(board);
    board.command("stats");
    let deadline = Instant::now() + cluster_testkit::netns::PATIENCE;
    while count(board) == before {
        assert!(Instant::now() < deadline, "{}: no stats line", board.name);
        std::thread::sleep(Duration::from_millis(20));
    }
    board
        .seen
        .iter()
        .filter(|v| v["event"] == "stats")
        .nth(before)
        .cloned()
        .expect("stats")
}

/// From a `stats` line of a board run with `--icount`: the instructions of the average poll
/// that found a received frame (a tick of the 25 MHz clock is 40 one-nanosecond instructions).
fn instructions_per_frame(stats: &Value) -> u64 {
    let polls = stats["rx_polls"].as_u64().expect("rx_polls");
    let ticks = stats["rx_poll_ticks"].as_u64().expect("rx_poll_ticks");
    assert!(
        polls > 0 && ticks > 0,
        "no received frame measured: {stats}"
    );
    ticks * 40 / polls
}

/// `cluster query --resolve TAG` from `h0`; the answer's data.
fn query_answer(lab: &Lab, tag: &str, extra: &[&str], sid: &str) -> Value {
    let mut args = vec!["--resolve", tag, "--expect", "1", "--wait", "5s"];
    args.extend(extra);
    let mut query = lab.cluster("cluster query", "query", &args, &["status?"]);
    let status = query.wait_exit();
    assert_eq!(status.code(), Some(0), "lines: {:#?}", query.seen);
    let response = query.wait_for("response", |v| v["event"] == "response");
    assert_eq!(response["sid"], sid);
    response["data"].clone()
}

/// Garbage sent from `h0` to the cluster port, by multicast and to board 0's address: random
/// bytes, a frame header with a bogus length, truncated frames, a frame header alone; then a
/// flood of 3,000 datagrams as fast as one Python loop sends them.
const GARBAGE: &str = r#"
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
bad = [os.urandom(200), b"\xc0\x8d\xff\xff\xff\xff\x0f" + os.urandom(64), b"\xc0\x8d\x40\x04\x08AbCd",
       b"\xc0\x8d", b"\xc0\x8d\x05\x01\x01\x02\x00\x00", os.urandom(1400)]
for dest in [("230.230.230.230", 23000), ("10.251.1.2", 23000)]:
    for b in bad:
        s.sendto(b, dest)
for i in range(3000):
    s.sendto(bad[i % len(bad)], ("230.230.230.230", 23000))
"#;

#[test]
#[ignore = "needs root, iproute2, /dev/net/tun and qemu-system-arm; run with --ignored"]
fn boards_of_both_drivers_and_a_tokio_node_discover_query_survive_garbage_crash_and_leave() {
    if skip() {
        return;
    }
    binaries();
    let lab = Lab::new("p", 3).unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    let boot = Instant::now();
    let mut board_a = lab.board(
        "board a",
        0,
        &["--tags", "fwa", "--answer", "fw a", "--query-every", "2"],
    );
    let mut board_b = lab.board("board b", 1, &["--tags", "fwb", "--answer", "fw b"]);
    // Board e runs cluster-embassy's firmware: embassy's executor and embassy-net on the same
    // board support, the LAN9220 behind embassy-net-driver.
    let mut board_e = lab.board(
        "board e (embassy)",
        2,
        &["--embassy", "--tags", "emb", "--answer", "emb ok"],
    );
    let (a_sid, joined) = board_a.wait_joined();
    let boot_to_joined = boot.elapsed();
    assert_eq!(
        joined["hid"], "02:c1:0a:fb:01:02",
        "the hid is the LAN9220's MAC"
    );
    assert_eq!(joined["protocols"], json!(["c"]));
    assert_eq!(joined["group"], "230.230.230.230");
    let (b_sid, _) = board_b.wait_joined();
    let (e_sid, joined) = board_e.wait_joined();
    assert_eq!(joined["hid"], "02:c1:0a:fb:01:04");
    assert_eq!(joined["protocols"], json!(["c"]));

    // The tokio node starts once the boards run: how long until board a discovers it.
    let started = Instant::now();
    let mut tokio = lab.cluster(
        "cluster join",
        "join",
        &["--tags", "tok", "--answer", "tok ok"],
        &[],
    );
    let (tok_sid, _) = tokio.wait_joined();

    // Discovery all ways, with addresses, tags and protocols.
    let seen = board_a.wait_event("discovered", &tok_sid);
    let time_to_discover = started.elapsed();
    assert_eq!(seen["ip"], "10.251.1.1");
    assert_eq!(seen["local"], false);
    has_tags(&mut board_a, &tok_sid, &["tok"]);
    discovers(&mut board_a, &[&b_sid, &e_sid]);
    discovers(&mut board_b, &[&a_sid, &tok_sid, &e_sid]);
    discovers(&mut board_e, &[&a_sid, &b_sid, &tok_sid]);
    has_tags(&mut board_e, &tok_sid, &["tok"]);
    let seen = tokio.wait_event("discovered", &a_sid);
    assert_eq!(seen["ip"], "10.251.1.2");
    has_tags(&mut tokio, &a_sid, &["fwa"]);
    assert_eq!(seen["protocols"], json!(["c"]));
    let seen = tokio.wait_event("discovered", &b_sid);
    assert_eq!(seen["ip"], "10.251.1.3");
    let seen = tokio.wait_event("discovered", &e_sid);
    assert_eq!(seen["ip"], "10.251.1.4");
    has_tags(&mut tokio, &e_sid, &["emb"]);

    // `cluster query` is answered by each board.
    assert_eq!(query_answer(&lab, "fwa", &[], &a_sid), "fw a");
    assert_eq!(query_answer(&lab, "fwb", &[], &b_sid), "fw b");
    assert_eq!(query_answer(&lab, "emb", &[], &e_sid), "emb ok");
    let asked = board_e.wait_for("query", |v| v["event"] == "query");
    assert_eq!(asked["data"], "status?");
    let asked = board_a.wait_for("query", |v| v["event"] == "query");
    assert_eq!(asked["data"], "status?");

    // Board a's own periodic query (every 2 s) is answered by the tokio node.
    let answer = board_a.wait_for("the tokio node's response", |v| {
        v["event"] == "response" && v["sid"] == tok_sid.as_str()
    });
    assert_eq!(answer["data"], "tok ok");
    board_a.wait_for("done", |v| v["event"] == "done");

    // Garbage and a flood: counted and dropped; the boards keep everyone and keep answering.
    let before = stats(&mut board_a);
    lab.python_on_host(GARBAGE);
    let after = stats(&mut board_a);
    let rejected = |v: &Value| {
        ["decode_errors", "frames_dropped", "stream_garbage_bytes"]
            .iter()
            .map(|counter| v[counter].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert!(
        rejected(&after) > rejected(&before),
        "the garbage was not counted: {before} then {after}"
    );
    assert_eq!(query_answer(&lab, "fwa", &[], &a_sid), "fw a");
    assert_eq!(query_answer(&lab, "fwb", &[], &b_sid), "fw b");
    assert_eq!(query_answer(&lab, "emb", &[], &e_sid), "emb ok");
    // (The `cluster query` nodes leave when done: their `lost` lines are expected.)
    let members = [
        a_sid.as_str(),
        b_sid.as_str(),
        e_sid.as_str(),
        tok_sid.as_str(),
    ];
    for (board, who) in [
        (&mut board_a, "a"),
        (&mut board_b, "b"),
        (&mut board_e, "e"),
    ] {
        assert!(
            !board
                .lines()
                .iter()
                .any(|v| v["event"] == "lost" && members.iter().any(|m| v["sid"] == *m)),
            "board {who} lost a member during the flood: {:#?}",
            board.seen
        );
    }

    // The tokio node is killed: every board sees it expire, within its ttl.
    let killed = Instant::now();
    tokio.signal("KILL");
    let mut lost_after = Vec::new();
    for board in [&mut board_a, &mut board_b, &mut board_e] {
        let lost = board.wait_event("lost", &tok_sid);
        lost_after.push(killed.elapsed());
        assert_eq!(lost["reason"], "expired");
    }
    for after in &lost_after {
        // The last heartbeat left at most one period before the kill; the ttl runs from it.
        assert!(
            after.as_millis() <= TTL_MS + 200,
            "lost {after:?} after the kill, ttl {TTL}"
        );
    }

    // Board b is told to leave: a new tokio node and board a see its disconnect; QEMU exits 0.
    let mut watcher = lab.cluster("cluster join (watcher)", "join", &["--tags", "w"], &[]);
    watcher.wait_joined();
    watcher.wait_event("discovered", &b_sid);
    board_b.command("leave");
    assert!(board_b.wait_exit().success(), "lines: {:#?}", board_b.seen);
    assert_eq!(watcher.wait_event("lost", &b_sid)["reason"], "disconnect");
    assert_eq!(board_a.wait_event("lost", &b_sid)["reason"], "disconnect");
    assert_eq!(board_e.wait_event("lost", &b_sid)["reason"], "disconnect");

    // The embassy board leaves too: its disconnect reaches the watcher and board a.
    watcher.wait_event("discovered", &e_sid);
    board_e.command("leave");
    assert!(board_e.wait_exit().success(), "lines: {:#?}", board_e.seen);
    assert_eq!(watcher.wait_event("lost", &e_sid)["reason"], "disconnect");
    assert_eq!(board_a.wait_event("lost", &e_sid)["reason"], "disconnect");

    let figures = stats(&mut board_a);
    eprintln!(
        "figures: boot to joined {boot_to_joined:?} (QEMU start included); a tokio node started \
         to its discovery by board a {time_to_discover:?}; tokio node lost after {lost_after:?} (ttl {TTL}); \
         board a: {figures}"
    );
}

#[test]
#[ignore = "needs root, iproute2, /dev/net/tun and qemu-system-arm; run with --ignored"]
fn a_sealed_board_joins_a_sealed_cluster_and_rotates_its_key() {
    if skip() {
        return;
    }
    binaries();
    let lab = Lab::new("s", 2).unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    // Key 3 seals; key 4 is accepted too, ready for the rotation at the end.
    let (key3, key4) = ("5eb1ed0c".repeat(8), "0c7a4e11".repeat(8));
    let keys = KeyFile::new(
        "qring",
        &format!("# the qemu test's keys\n*3 {key3}\n4 {key4}\n"),
    );
    let sealed = ["--key-file", keys.path()];
    let mut board = lab.board(
        "sealed board",
        0,
        &[
            "--tags",
            "fw",
            "--answer",
            "fw sealed",
            "--icount",
            sealed[0],
            sealed[1],
        ],
    );
    let mut tokio = lab.cluster(
        "sealed cluster join",
        "join",
        &["--tags", "tok", sealed[0], sealed[1]],
        &[],
    );
    let mut plain = lab.cluster("unkeyed cluster join", "join", &["--tags", "plain"], &[]);
    // An unkeyed board beside them, run with `-icount shift=0` like the sealed one: the work
    // of a received plain frame, to compare with a sealed one's.
    let mut plain_board = lab.board("unkeyed board", 1, &["--tags", "pb", "--icount"]);
    let (fw_sid, _) = board.wait_joined();
    let (tok_sid, _) = tokio.wait_joined();
    let (plain_sid, _) = plain.wait_joined();

    // The sealed nodes discover each other, and a sealed query gets the board's answer.
    tokio.wait_event("discovered", &fw_sid);
    has_tags(&mut tokio, &fw_sid, &["fw"]);
    board.wait_event("discovered", &tok_sid);
    has_tags(&mut board, &tok_sid, &["tok"]);
    plain_board.wait_event("discovered", &plain_sid);
    // Heartbeats (and discovery) only so far: the work of each received frame, sealed and not.
    std::thread::sleep(Duration::from_secs(2));
    let sealed_frame = instructions_per_frame(&stats(&mut board));
    let plain_frame = instructions_per_frame(&stats(&mut plain_board));
    eprintln!(
        "figures: instructions per received frame (icount): plain {plain_frame}, sealed \
         {sealed_frame}"
    );
    let data = query_answer(
        &lab,
        "fw",
        &["--tags", "sealq", sealed[0], sealed[1]],
        &fw_sid,
    );
    assert_eq!(data, "fw sealed");

    // An unkeyed query finds nothing tagged fw within 2 s (exit status 2).
    let mut unkeyed = lab.cluster(
        "unkeyed cluster query",
        "query",
        &["--tags", "plainq", "--resolve", "fw", "--wait", "2s"],
        &["status?"],
    );
    assert_eq!(
        unkeyed.wait_exit().code(),
        Some(2),
        "lines: {:#?}",
        unkeyed.seen
    );
    let stats = stats(&mut board);
    assert!(
        stats["unsealed"].as_u64().unwrap_or(0) > 0,
        "the board counted no unsealed frame: {stats}"
    );
    assert!(
        !board
            .lines()
            .iter()
            .any(|v| v["event"] == "discovered" && v["sid"] == plain_sid.as_str()),
        "the sealed board discovered the unkeyed node"
    );
    assert!(
        !plain
            .lines()
            .iter()
            .any(|v| v["event"] == "discovered" && v["sid"] == fw_sid.as_str()),
        "the unkeyed node discovered the sealed board"
    );

    // Rotation: the key file's send key becomes 4 and the board reads it again (`keys`). A
    // node holding key 3 only loses the board; the tokio node, holding both, keeps it.
    let old_keys = KeyFile::new("qold", &format!("*3 {key3}\n"));
    let mut old = lab.cluster(
        "cluster join with key 3 only",
        "join",
        &["--tags", "old", "--key-file", old_keys.path()],
        &[],
    );
    old.wait_event("discovered", &fw_sid);
    keys.write(&format!("3 {key3}\n*4 {key4}\n"));
    board.command("keys");
    assert_eq!(old.wait_event("lost", &fw_sid)["reason"], "expired");
    assert!(
        !tokio
            .lines()
            .iter()
            .any(|v| v["event"] == "lost" && v["sid"] == fw_sid.as_str()),
        "the tokio node lost the board in the rotation"
    );
    assert!(
        !board.lines().iter().any(|v| v["event"] == "warning"),
        "lines: {:#?}",
        board.seen
    );

    // The board's sealed disconnect (key 4) reaches the sealed node.
    board.command("leave");
    assert!(board.wait_exit().success(), "lines: {:#?}", board.seen);
    assert_eq!(tokio.wait_event("lost", &fw_sid)["reason"], "disconnect");
}
