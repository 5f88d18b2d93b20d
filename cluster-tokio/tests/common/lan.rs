//! `cluster` processes on the hosts of a [`Lan`] (the loss, partition and soak tests).

use cluster_testkit::netns::Lan;

use super::process::Node;

/// `head` (the command and its own options), then `--json --remote` on `port` with a 200 ms
/// heartbeat and a 2 s ttl: the timers of the lossy-LAN tests.
pub fn remote_args(port: u16, head: &[String]) -> Vec<String> {
    let port = port.to_string();
    let tail = [
        "--json",
        "--remote",
        "--port",
        &port,
        "--heartbeat",
        "200ms",
        "--ttl",
        "2s",
    ];
    head.iter()
        .cloned()
        .chain(tail.iter().map(|a| (*a).to_owned()))
        .collect()
}

/// Runs `cluster args...` on host `host` of `lan`.
pub fn spawn_on(lan: &Lan, host: usize, args: &[String]) -> Node {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Node::spawn(&["ip", "netns", "exec", &lan.hosts[host]], &args)
}

/// A member on every host of `lan` (tags `member` and `host<i>`, answering `from host<i>`,
/// then `extra` options), each having discovered every other: the members and their sids.
pub fn members(lan: &Lan, port: u16, extra: &[&str]) -> (Vec<Node>, Vec<String>) {
    let mut members: Vec<Node> = (0..lan.hosts.len())
        .map(|i| {
            let mut head = vec![
                "join".to_owned(),
                "--tags".to_owned(),
                format!("member host{i}"),
                "--answer".to_owned(),
                format!("from host{i}"),
            ];
            head.extend(extra.iter().map(|a| (*a).to_owned()));
            spawn_on(lan, i, &remote_args(port, &head))
        })
        .collect();
    let sids: Vec<String> = members.iter_mut().map(Node::joined).collect();
    for (i, member) in members.iter_mut().enumerate() {
        for (j, sid) in sids.iter().enumerate() {
            if i != j {
                member.wait_event("discovered", sid);
            }
        }
    }
    (members, sids)
}
