//! `cluster query/send --raw-hex`: raw bytes (typed payloads) sent from the command line and
//! shown as hex in the JSON lines.

mod common;

use common::fresh_port;
use common::process::Node;

fn run(command: &str, port: u16, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut node = Node::on_loopback(command, port, extra);
    let lines = node.rest();
    assert_eq!(node.wait_exit().code(), Some(0), "lines: {lines:#?}");
    lines
}

#[test]
fn send_raw_hex_arrives_as_the_raw_of_the_message_line() {
    let port = fresh_port();
    let mut sink = Node::on_loopback("join", port, &["--tags", "sink"]);
    sink.joined();
    let wait = ["--resolve", "sink", "--expect", "1", "--wait", "5s"];
    let mut extra = wait.to_vec();
    extra.extend(["--raw-hex", "0A ff 00", "reading"]);
    run("send", port, &extra);
    let message = sink.wait_line(|l| (l["event"] == "message").then(|| l.clone()));
    assert_eq!(message["data"], "reading");
    assert_eq!(message["raw"], "0aff00");
    sink.signal("TERM");
    sink.wait_exit();
}

#[test]
fn query_raw_hex_reaches_the_answering_node() {
    let port = fresh_port();
    let mut answerer = Node::on_loopback("join", port, &["--tags", "answerer", "--answer", "ok"]);
    answerer.joined();
    let extra = [
        "--resolve",
        "answerer",
        "--expect",
        "1",
        "--wait",
        "5s",
        "--raw-hex",
        "0102",
        "ping",
    ];
    let lines = run("query", port, &extra);
    let response = lines.iter().find(|l| l["event"] == "response").unwrap();
    assert_eq!(response["data"], "ok");
    assert!(response.get("raw").is_none(), "no raw in a text answer");
    let query = answerer.wait_line(|l| (l["event"] == "query").then(|| l.clone()));
    assert_eq!(
        (&query["data"], &query["raw"]),
        (&"ping".into(), &"0102".into())
    );
    answerer.signal("TERM");
    answerer.wait_exit();
}

#[test]
fn bad_hex_is_refused_before_joining() {
    let port = fresh_port();
    let mut node = Node::on_loopback("send", port, &["--raw-hex", "0g", "x"]);
    let status = node.wait_exit();
    assert_eq!(status.code(), Some(2), "clap's usage error");
}
