//! Two subnets joined by a router namespace (`ip_forward` on, no multicast routing): the
//! lab of the seed and gateway tests.

use std::process::Command;

use cluster_testkit::netns::{Lab, ip};

/// Subnet `a` (`{prefix}.1.0/24`) and `b` (`{prefix}.2.0/24`), each a bridge with hosts
/// `.11`, `.12`, ..., whose default route is host `router` (`.1` on both), forwarding.
/// Removed when dropped.
pub struct Routed {
    _lab: Lab,
    /// The router's namespace.
    pub router: String,
    /// The hosts of subnet a, from `.11` up.
    pub a: Vec<String>,
    /// The hosts of subnet b, from `.11` up.
    pub b: Vec<String>,
}

/// Builds the subnets with `hosts[0]` hosts on a and `hosts[1]` on b; `prefix` is the first
/// two bytes of the addresses (e.g. `10.252`), `tag` keeps the names of tests apart.
pub fn routed(tag: &str, prefix: &str, hosts: [usize; 2]) -> Result<Routed, String> {
    let mut lab = Lab::new(tag);
    let bridge_a = lab.bridge("a")?;
    let bridge_b = lab.bridge("b")?;
    let router = lab.host("router")?;
    lab.cable(&router, "eth0", &bridge_a, &[&format!("{prefix}.1.1/24")])?;
    lab.cable(&router, "eth1", &bridge_b, &[&format!("{prefix}.2.1/24")])?;
    let forwarding = Command::new("ip")
        .args([
            "netns",
            "exec",
            &router,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .map_err(|e| e.to_string())?;
    if !forwarding.success() {
        return Err("cannot turn ip_forward on".into());
    }
    let mut sides = [Vec::new(), Vec::new()];
    for (side, bridge) in [&bridge_a, &bridge_b].into_iter().enumerate() {
        let subnet = side + 1;
        for host in 11..11 + hosts[side] {
            let ns = lab.host(&format!("h{subnet}{host}"))?;
            let address = format!("{prefix}.{subnet}.{host}/24");
            lab.cable(&ns, "eth0", bridge, &[&address])?;
            let gateway = format!("{prefix}.{subnet}.1");
            ip(&["-n", &ns, "route", "add", "default", "via", &gateway])?;
            sides[side].push(ns);
        }
    }
    let [a, b] = sides;
    Ok(Routed {
        _lab: lab,
        router,
        a,
        b,
    })
}
