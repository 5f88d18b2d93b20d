//! Hosts on one LAN: a namespace per host, each with a veth `eth0` on a bridge, whose cables
//! can be cut and whose output can be made lossy with nftables (this kernel has no netem).

use std::process::Command;

use super::{Lab, ip};

/// `hosts` network namespaces `{tag}{pid}h0`, `h1`, ... whose `eth0` (`SUBNET.(i+1)/24`, a
/// route for 224.0.0.0/4) are ports `port0`, `port1`, ... of a bridge in namespace
/// `{tag}{pid}br`: a [`Lab`] of one bridge. Removed when dropped (also when a test fails).
#[derive(Debug)]
pub struct Lan {
    /// The bridge's namespace.
    pub bridge: String,
    /// The hosts' namespaces.
    pub hosts: Vec<String>,
    subnet: String,
    _lab: Lab,
}

impl Lan {
    /// Builds the namespaces; `subnet` is the first three bytes, e.g. `10.252.0`.
    ///
    /// # Errors
    ///
    /// An `ip` command failed (what was built is removed).
    pub fn new(tag: &str, subnet: &str, hosts: usize) -> Result<Self, String> {
        let mut lab = Lab::new(tag);
        let bridge = lab.bridge("br")?;
        let mut names = Vec::new();
        for i in 0..hosts {
            // Cables are numbered in the order they are plugged: host i is on `port{i}`.
            let ns = lab.host(&format!("h{i}"))?;
            lab.cable(&ns, "eth0", &bridge, &[&format!("{subnet}.{}/24", i + 1)])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
            names.push(ns);
        }
        Ok(Self {
            bridge,
            hosts: names,
            subnet: subnet.to_owned(),
            _lab: lab,
        })
    }

    /// Host `host`'s address.
    #[must_use]
    pub fn address(&self, host: usize) -> String {
        format!("{}.{}", self.subnet, host + 1)
    }

    /// Cuts (`up` false) or restores host `host`'s cable, on the bridge side.
    ///
    /// # Errors
    ///
    /// `ip` failed.
    pub fn link(&self, host: usize, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            &self.bridge,
            "link",
            "set",
            &format!("port{host}"),
            state,
        ])
    }

    /// Drops `percent`% of the packets host `host` sends on `eth0`, at random (nftables
    /// `numgen random mod 100 < P drop` on the output hook); 0 removes the rule.
    ///
    /// # Errors
    ///
    /// `nft` could not run or failed.
    pub fn output_loss(&self, host: usize, percent: u32) -> Result<(), String> {
        let ns = &self.hosts[host];
        let _ = nft(ns, "delete table inet cluster_loss");
        if percent == 0 {
            return Ok(());
        }
        nft(ns, "add table inet cluster_loss")?;
        nft(
            ns,
            "add chain inet cluster_loss out { type filter hook output priority 0 ; policy accept ; }",
        )?;
        nft(
            ns,
            &format!(
                "add rule inet cluster_loss out oifname \"eth0\" numgen random mod 100 < {percent} counter drop"
            ),
        )
    }

    /// The packets host `host`'s loss rule dropped so far.
    ///
    /// # Errors
    ///
    /// `nft` failed, or no rule is set.
    pub fn dropped(&self, host: usize) -> Result<u64, String> {
        let out = nft_output(&self.hosts[host], "list chain inet cluster_loss out")?;
        let packets = out
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .ok_or_else(|| format!("no counter in: {out}"))?;
        packets.parse().map_err(|e| format!("{packets}: {e}"))
    }
}

/// Runs `nft COMMAND` in namespace `netns`.
///
/// # Errors
///
/// `nft` could not run or failed.
pub fn nft(netns: &str, command: &str) -> Result<(), String> {
    nft_output(netns, command).map(drop)
}

fn nft_output(netns: &str, command: &str) -> Result<String, String> {
    let output = Command::new("ip")
        .args(["netns", "exec", netns, "nft"])
        .arg(command)
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "nft {command}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Why nftables cannot be used here, if it cannot (no `nft`); under CI a failure, as for
/// [`unavailable`](super::unavailable).
#[must_use]
pub fn nft_unavailable() -> Option<String> {
    let reason = match Command::new("nft").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "nft --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!(
            "no nft ({e}); .ci/run installs the nftables package"
        )),
    };
    if let Some(reason) = &reason {
        assert!(
            std::env::var_os("CI").is_none(),
            "this machine cannot run the loss tests ({reason}), and CI is set"
        );
    }
    reason
}
