//! `cluster join --data KEY=VALUE`: per-node data seen by `cluster services --json` and
//! selected by `--resolve data:KEY=VALUE`.

mod common;

use common::fresh_port;
use common::process::Node;

#[test]
fn services_json_shows_each_nodes_data_and_resolve_selects_by_it() {
    let port = fresh_port();
    let mut eu = Node::on_loopback(
        "join",
        port,
        &["--data", "region=eu", "--data", "rack=7", "--answer", "eu"],
    );
    let eu_sid = eu.joined();
    let mut us = Node::on_loopback("join", port, &["--data", "region=us", "--answer", "us"]);
    let us_sid = us.joined();
    let mut services = Node::on_loopback("services", port, &["--wait", "1500ms"]);
    let lines = services.rest();
    assert_eq!(services.wait_exit().code(), Some(0));
    let line_of = |sid: &str| {
        lines
            .iter()
            .find(|l| l["event"] == "service" && l["sid"] == sid)
            .unwrap_or_else(|| panic!("no line for {sid}: {lines:#?}"))
            .clone()
    };
    let eu_line = line_of(&eu_sid);
    assert_eq!(eu_line["data_version"], 1);
    assert_eq!(
        eu_line["data"],
        serde_json::json!({"rack": "7", "region": "eu"})
    );
    assert_eq!(
        line_of(&us_sid)["data"],
        serde_json::json!({"region": "us"})
    );
    let mut query = Node::on_loopback(
        "query",
        port,
        &[
            "--resolve",
            "data:region=eu",
            "--expect",
            "1",
            "--wait",
            "5s",
            "who?",
        ],
    );
    let lines = query.rest();
    assert_eq!(query.wait_exit().code(), Some(0), "lines: {lines:#?}");
    let responses: Vec<_> = lines.iter().filter(|l| l["event"] == "response").collect();
    assert_eq!(responses.len(), 1, "lines: {lines:#?}");
    assert_eq!(responses[0]["sid"], eu_sid.as_str());
    for node in [&mut eu, &mut us] {
        node.signal("TERM");
        node.wait_exit();
    }
}
