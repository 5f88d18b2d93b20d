//! [`Lab`]: any number of hosts (network namespaces) and bridges, joined by cables (veth
//! pairs) that can be plugged in while processes run, with IPv4 and IPv6 addresses, for the
//! tests of interfaces and address families. Everything is removed when the lab is dropped.

use super::ip;

/// Namespaces named after this process and a tag; removed (with their links) when dropped,
/// also when a test fails.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    cables: usize,
}

impl Lab {
    /// An empty lab; `tag` (a few letters) keeps the names of different tests apart.
    #[must_use]
    pub fn new(tag: &str) -> Self {
        Self {
            prefix: format!("{tag}{}", std::process::id()),
            namespaces: Vec::new(),
            cables: 0,
        }
    }

    /// A host: a namespace with `lo` up, and IPv6 duplicate address detection off (its
    /// addresses, link-local ones included, are usable at once). Returns its namespace
    /// name.
    ///
    /// # Errors
    ///
    /// An `ip` command failed.
    pub fn host(&mut self, name: &str) -> Result<String, String> {
        let ns = format!("{}{name}", self.prefix);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        for key in ["all", "default"] {
            sysctl(&ns, &format!("net.ipv6.conf.{key}.accept_dad=0"))?;
        }
        Ok(ns)
    }

    /// A bridge `br0` (multicast snooping off) in a namespace of its own. Returns that
    /// namespace's name.
    ///
    /// # Errors
    ///
    /// An `ip` command failed.
    pub fn bridge(&mut self, name: &str) -> Result<String, String> {
        let ns = self.host(name)?;
        ip(&[
            "-n",
            &ns,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &ns, "link", "set", "br0", "up"])?;
        Ok(ns)
    }

    /// Plugs `host` (a namespace) into `bridge` with a new interface `nic` holding
    /// `addresses` (`10.1.0.1/24`, `fd00::1/64`; none for an IPv6 link-local address only),
    /// and brings it up. IPv6 addresses skip duplicate address detection, so that they are
    /// usable at once.
    ///
    /// # Errors
    ///
    /// An `ip` command failed.
    pub fn cable(
        &mut self,
        host: &str,
        nic: &str,
        bridge: &str,
        addresses: &[&str],
    ) -> Result<(), String> {
        let port = format!("port{}", self.cables);
        self.cables += 1;
        ip(&[
            "link", "add", "name", nic, "netns", host, "type", "veth", "peer", "name", &port,
            "netns", bridge,
        ])?;
        ip(&["-n", bridge, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", bridge, "link", "set", &port, "up"])?;
        for address in addresses {
            let mut args = vec!["-n", host, "addr", "add", address, "dev", nic];
            if address.contains(':') {
                args.push("nodad");
            }
            ip(&args)?;
        }
        ip(&["-n", host, "link", "set", nic, "up"])
    }
}

/// Runs `sysctl -w SETTING` in namespace `ns`.
fn sysctl(ns: &str, setting: &str) -> Result<(), String> {
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-qw", setting])
        .output()
        .map_err(|e| format!("cannot run sysctl: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sysctl {setting} in {ns}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
