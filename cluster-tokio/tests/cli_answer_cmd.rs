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

/// What a query gets from an answerer whose command is `command` (its other options
/// `extra`).
fn answer_from(command: &str, extra: &[&str]) -> serde_json::Value {
    let port = fresh_port();
    let mut args = vec!["--tags", "answerer", "--answer-cmd", command];
    args.extend_from_slice(extra);
    let mut answerer = Node::on_loopback("join", port, &args);
    answerer.joined();
    let answer = ask(port, "x");
    answerer.signal("TERM");
    answerer.wait_exit();
    answer
}

#[test]
fn a_failing_command_refuses_the_query() {
    let answer = answer_from("cat >/dev/null; exit 3", &[]);
    assert_eq!(answer["event"], "error");
    assert_eq!(answer["error"], "answer command failed (exit status: 3)");
}

#[test]
fn a_command_past_its_time_is_killed_and_the_query_refused() {
    let answer = answer_from("sleep 30", &["--answer-timeout", "300ms"]);
    assert_eq!(answer["event"], "error");
    assert_eq!(answer["error"], "answer command timed out after 300ms");
}

#[test]
fn an_answer_over_the_payload_capacity_is_refused() {
    let answer = answer_from("head -c 100000 /dev/zero", &[]);
    assert_eq!(answer["event"], "error");
    assert_eq!(answer["error"], "answer longer than 8192 bytes");
}

/// Asks the node tagged `answerer` from three `cluster query` processes at once; returns
/// their answer lines.
fn ask_three_at_once(port: u16) -> Vec<serde_json::Value> {
    let askers: Vec<Node> = (0..3)
        .map(|i| {
            Node::on_loopback(
                "query",
                port,
                &[
                    "--resolve",
                    "answerer",
                    "--expect",
                    "1",
                    "--wait",
                    "5s",
                    "--timeout",
                    "8s",
                    &format!("q{i}"),
                ],
            )
        })
        .collect();
    askers
        .into_iter()
        .map(|mut asker| {
            let lines = asker.rest();
            assert_eq!(asker.wait_exit().code(), Some(0), "lines: {lines:#?}");
            lines
                .into_iter()
                .find(|l| l["event"] == "response" || l["event"] == "error")
                .expect("an answer line")
        })
        .collect()
}

#[test]
fn answer_jobs_bounds_the_commands_running_at_once() {
    // Each command marks itself running in a scratch folder, notes how many are running,
    // holds its slot for 0.5 s and answers. With one job the three queries, which arrive
    // together, run one after the other: no command ever sees another one running.
    let dir = std::env::temp_dir().join(format!("cluster-answer-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "cat >/dev/null; d={d}; touch $d/run.$$; ls $d | grep -c '^run\\.' >> $d/seen; \
         sleep 0.5; rm $d/run.$$; printf ok",
        d = dir.display()
    );
    let port = fresh_port();
    let mut answerer = Node::on_loopback(
        "join",
        port,
        &[
            "--tags",
            "answerer",
            "--answer-cmd",
            &script,
            "--answer-jobs",
            "1",
            "--answer-timeout",
            "6s",
        ],
    );
    answerer.joined();
    let answers = ask_three_at_once(port);
    let seen = std::fs::read_to_string(dir.join("seen")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for answer in &answers {
        assert_eq!(answer["event"], "response", "{answer}");
        assert_eq!(answer["data"], "ok");
    }
    let running: Vec<u32> = seen.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(
        running,
        [1, 1, 1],
        "commands running at once, as each saw it"
    );
    answerer.signal("TERM");
    answerer.wait_exit();
}
