//! Hosts with several network interfaces, in network namespaces created and removed by the
//! test ([`cluster_testkit::netns::Lab`]): a host with two NICs on two bridges hears a peer
//! on each and says where it heard it; an interface plugged in while the node runs is
//! joined. `cluster join --remote` processes run inside with `ip netns exec`. Needs root and
//! iproute2; otherwise the test prints why and passes without running (under CI it fails).

mod common;

use cluster_testkit::netns::{Lab, unavailable};
use common::fresh_port;
use common::process::Node;

/// `cluster join --remote --json` with fast timers in namespace `ns`, tagged `tag`.
fn join(ns: &str, port: u16, tag: &str, extra: &[&str]) -> Node {
    let port = port.to_string();
    let mut args = vec![
        "join",
        "--json",
        "--remote",
        "--port",
        &port,
        "--heartbeat",
        "200ms",
        "--ttl",
        "1500ms",
        "--tags",
        tag,
        "--answer",
        tag,
    ];
    args.extend_from_slice(extra);
    Node::spawn(&["ip", "netns", "exec", ns], &args)
}

/// Two bridges, `a` and `b`; host `mid` on both (eth0 10.251.1.1 on `a`, eth1 10.251.2.1
/// on `b`, the latter plugged in only when `both` is true), host `left` on `a` (10.251.1.2),
/// host `right` on `b` (10.251.2.2).
struct TwoLinks {
    lab: Lab,
    mid: String,
    left: String,
    right: String,
    b: String,
}

impl TwoLinks {
    fn new(tag: &str, both: bool) -> Result<Self, String> {
        let mut lab = Lab::new(tag);
        let a = lab.bridge("a")?;
        let b = lab.bridge("b")?;
        let mid = lab.host("mid")?;
        let left = lab.host("left")?;
        let right = lab.host("right")?;
        lab.cable(&mid, "eth0", &a, &["10.251.1.1/24"])?;
        lab.cable(&left, "eth0", &a, &["10.251.1.2/24"])?;
        lab.cable(&right, "eth0", &b, &["10.251.2.2/24"])?;
        let mut links = Self {
            lab,
            mid,
            left,
            right,
            b,
        };
        if both {
            links.plug_mid_into_b()?;
        }
        Ok(links)
    }

    fn plug_mid_into_b(&mut self) -> Result<(), String> {
        let (mid, b) = (self.mid.clone(), self.b.clone());
        self.lab.cable(&mid, "eth1", &b, &["10.251.2.1/24"])
    }
}

#[test]
fn a_host_with_two_nics_discovers_a_peer_on_each_and_says_where() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED a_host_with_two_nics_discovers_a_peer_on_each_and_says_where: {reason}");
        return;
    }
    let links = TwoLinks::new("ci2n", true).expect("lab");
    let port = fresh_port();
    let mut mid = join(&links.mid, port, "mid", &[]);
    let joined = mid.wait_line(|l| (l["event"] == "joined").then(|| l.clone()));
    let mid_sid = joined["sid"].as_str().expect("sid").to_owned();
    assert_eq!(joined["interfaces"], serde_json::json!(["eth0", "eth1"]));
    let mut left = join(&links.left, port, "left", &[]);
    let left_sid = left.joined();
    let mut right = join(&links.right, port, "right", &[]);
    let right_sid = right.joined();
    let seen = mid.wait_event("discovered", &left_sid);
    assert_eq!(
        (seen["ip"].as_str(), seen["interface"].as_str()),
        (Some("10.251.1.2"), Some("eth0"))
    );
    assert_eq!(seen["interface_address"], "10.251.1.1");
    let seen = mid.wait_event("discovered", &right_sid);
    assert_eq!(
        (seen["ip"].as_str(), seen["interface"].as_str()),
        (Some("10.251.2.2"), Some("eth1"))
    );
    assert_eq!(seen["interface_address"], "10.251.2.1");
    // Each side hears mid on its own link, from mid's address there.
    assert_eq!(left.wait_event("discovered", &mid_sid)["ip"], "10.251.1.1");
    assert_eq!(right.wait_event("discovered", &mid_sid)["ip"], "10.251.2.1");
}

#[test]
fn an_interface_plugged_in_while_running_is_joined() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED an_interface_plugged_in_while_running_is_joined: {reason}");
        return;
    }
    let mut links = TwoLinks::new("ci2p", false).expect("lab");
    let port = fresh_port();
    let mut mid = join(&links.mid, port, "mid", &[]);
    let joined = mid.wait_line(|l| (l["event"] == "joined").then(|| l.clone()));
    let mid_sid = joined["sid"].as_str().expect("sid").to_owned();
    assert_eq!(joined["interfaces"], serde_json::json!(["eth0"]));
    let mut right = join(&links.right, port, "right", &[]);
    let right_sid = right.joined();
    let mut left = join(&links.left, port, "left", &[]);
    let left_sid = left.joined();
    mid.wait_event("discovered", &left_sid);
    links.plug_mid_into_b().expect("plug eth1");
    // Joined at the next read of the interface list (every 2 s).
    let seen = mid.wait_event("discovered", &right_sid);
    assert_eq!(seen["interface"], "eth1");
    right.wait_event("discovered", &mid_sid);
}
