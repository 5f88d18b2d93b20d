//! `cluster join --answer-cmd CMD`: queries answered by a command, as separate processes on
//! loopback, read through their `--json` lines.

mod common;

use common::fresh_port;
use common::process::Node;

/// Queries every node tagged `answerer` with `text`; returns the one answer line (a
/// `response` or an `error`).
fn ask(port: u16, text: &str) -> serde_json::Value {
    let mut asker = Node::on_loopback(
        "query",
        port,
        &[
            "--resolve",
            "answerer",
            "--expect",
            "1",
            "--wait",
            "5s",
            text,
        ],
    );
    let lines = asker.rest();
    let status = asker.wait_exit();
    assert_eq!(status.code(), Some(0), "lines: {lines:#?}");
    let answers: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "response" || l["event"] == "error")
        .cloned()
        .collect();
    assert_eq!(answers.len(), 1, "lines: {lines:#?}");
    answers[0].clone()
}

#[test]
fn the_command_reads_the_query_on_stdin_and_its_stdout_is_the_answer() {
    let port = fresh_port();
    let script = r#"printf '%s for %s' "$(tr a-z A-Z)" "$CLUSTER_SID""#;
    let mut answerer = Node::on_loopback(
        "join",
        port,
        &["--tags", "answerer", "--answer-cmd", script],
    );
    answerer.joined();
    let answer = ask(port, "who?");
    // The answering node prints the query as `cluster join` always does.
    let query = answerer.wait_line(|l| (l["event"] == "query").then(|| l.clone()));
    assert_eq!(query["data"], "who?");
    let asker = query["sid"].as_str().unwrap();
    assert_eq!(answer["event"], "response");
    assert_eq!(answer["data"], format!("WHO? for {asker}"));
    answerer.signal("TERM");
    assert_eq!(answerer.wait_exit().code(), Some(0));
}

#[test]
fn a_failing_command_refuses_the_query() {
    let port = fresh_port();
    let mut answerer = Node::on_loopback(
        "join",
        port,
        &[
            "--tags",
            "answerer",
            "--answer-cmd",
            "cat >/dev/null; exit 3",
        ],
    );
    answerer.joined();
    let answer = ask(port, "x");
    assert_eq!(answer["event"], "error");
    assert_eq!(answer["error"], "answer command failed (exit status: 3)");
    answerer.signal("TERM");
    answerer.wait_exit();
}

#[test]
fn a_command_past_its_time_is_killed_and_the_query_refused() {
    let port = fresh_port();
    let mut answerer = Node::on_loopback(
        "join",
        port,
        &[
            "--tags",
            "answerer",
            "--answer-cmd",
            "sleep 30",
            "--answer-timeout",
            "300ms",
        ],
    );
    answerer.joined();
    let answer = ask(port, "x");
    assert_eq!(answer["event"], "error");
    assert_eq!(answer["error"], "answer command timed out after 300ms");
    answerer.signal("TERM");
    answerer.wait_exit();
}

#[test]
fn an_answer_over_the_payload_capacity_is_refused() {
    let port = fresh_port();
    let mut answerer = Node::on_loopback(
        "join",
        port,
        &[
            "--tags",
            "answerer",
            "--answer-cmd",
            "head -c 100000 /dev/zero",
        ],
    );
    answerer.joined();
    let answer = ask(port, "x");
    assert_eq!(answer["event"], "error");
    assert_eq!(answer["error"], "answer longer than 8192 bytes");
    answerer.signal("TERM");
    answerer.wait_exit();
}
