//! The host's network interfaces, as the multicast socket uses them: which ones join the
//! group and send ([`InterfaceFilter`]), and on which one a peer was heard ([`heard_on`]).
//!
//! The list is read with `if-addrs` (no unsafe code of our own) and grouped by interface
//! name. `if-addrs` leaves IPv6 link-local addresses out; on Linux they are read from
//! `/proc/net/if_inet6`, so that an interface whose only IPv6 address is link-local still
//! joins the IPv6 group. An interface is a candidate when it is up, is not loopback and can do multicast.
//! `if-addrs` does not report the `IFF_MULTICAST` flag: on Linux it is read from
//! `/sys/class/net/NAME/flags`; elsewhere every up interface counts as multicast-capable
//! (a join that the system refuses is then skipped, see [`crate::multicast`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One network interface and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetInterface {
    /// Its name (`eth0`, `wlan0`, `lo`).
    pub name: String,
    /// Its index (`if_nametoindex`), when the system reported one.
    pub index: Option<u32>,
    /// Its IPv4 addresses with their prefix lengths.
    pub v4: Vec<(Ipv4Addr, u8)>,
    /// Its IPv6 addresses with their prefix lengths.
    pub v6: Vec<(Ipv6Addr, u8)>,
    /// Up (operationally, where the system says; else administratively).
    pub up: bool,
    /// The loopback interface.
    pub loopback: bool,
    /// Able to send and receive multicast (see the module docs).
    pub multicast: bool,
}

impl NetInterface {
    /// Its first IPv4 address: the one multicast is sent from (`IP_MULTICAST_IF`).
    #[must_use]
    pub fn first_v4(&self) -> Option<Ipv4Addr> {
        self.v4.first().map(|(a, _)| *a)
    }

    /// Whether `ip` lies in one of its prefixes, or is one of its addresses.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => self.v4.iter().any(|&(a, len)| same_prefix_v4(a, ip, len)),
            IpAddr::V6(ip) => self.v6.iter().any(|&(a, len)| same_prefix_v6(a, ip, len)),
        }
    }

    /// Whether `ip` is one of its own addresses.
    #[must_use]
    pub fn owns(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => self.v4.iter().any(|&(a, _)| a == ip),
            IpAddr::V6(ip) => self.v6.iter().any(|&(a, _)| a == ip),
        }
    }

    /// Up, not loopback, multicast-capable: joined by default.
    #[must_use]
    pub fn is_candidate(&self) -> bool {
        self.up && !self.loopback && self.multicast
    }
}

fn same_prefix_v4(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

fn same_prefix_v6(a: Ipv6Addr, b: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0);
    u128::from(a) & mask == u128::from(b) & mask
}

/// The host's interfaces now, in the system's order, grouped by name.
///
/// # Errors
///
/// The system's interface list could not be read.
pub fn list() -> std::io::Result<Vec<NetInterface>> {
    let mut out: Vec<NetInterface> = Vec::new();
    for entry in if_addrs::get_if_addrs()? {
        let index = match out.iter().position(|i| i.name == entry.name) {
            Some(index) => index,
            None => {
                out.push(NetInterface {
                    multicast: multicast_flag(&entry.name),
                    name: entry.name.clone(),
                    index: entry.index,
                    v4: Vec::new(),
                    v6: Vec::new(),
                    up: entry.is_oper_up() || entry.oper_status == if_addrs::IfOperStatus::Unknown,
                    loopback: entry.is_loopback(),
                });
                out.len() - 1
            }
        };
        let Some(interface) = out.get_mut(index) else {
            continue;
        };
        match &entry.addr {
            if_addrs::IfAddr::V4(v4) => interface.v4.push((v4.ip, v4.prefixlen)),
            if_addrs::IfAddr::V6(v6) => interface.v6.push((v6.ip, v6.prefixlen)),
        }
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    add_link_local(&mut out);
    Ok(out)
}

/// Adds the IPv6 link-local addresses of `/proc/net/if_inet6` (lines `ADDRESS INDEX PREFIX
/// SCOPE FLAGS NAME`, hexadecimal), and the interfaces that have no other address.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn add_link_local(out: &mut Vec<NetInterface>) {
    let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") else {
        return;
    };
    for line in text.lines() {
        let Some((address, index, prefix, name)) = if_inet6_line(line) else {
            continue;
        };
        if !address.is_unicast_link_local() {
            continue;
        }
        let position = match out.iter().position(|i| i.name == name) {
            Some(position) => position,
            None => {
                let flags = sys_flags(name);
                out.push(NetInterface {
                    name: name.to_owned(),
                    index: Some(index),
                    v4: Vec::new(),
                    v6: Vec::new(),
                    // IFF_UP, IFF_LOOPBACK, IFF_MULTICAST.
                    up: flags.is_some_and(|f| f & 0x1 != 0),
                    loopback: flags.is_some_and(|f| f & 0x8 != 0),
                    multicast: flags.is_none_or(|f| f & 0x1000 != 0),
                });
                out.len() - 1
            }
        };
        if let Some(interface) = out.get_mut(position)
            && !interface.v6.iter().any(|(a, _)| *a == address)
        {
            interface.v6.push((address, prefix));
        }
    }
}

/// One line of `/proc/net/if_inet6`: the address, the interface index, the prefix length
/// and the name.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn if_inet6_line(line: &str) -> Option<(Ipv6Addr, u32, u8, &str)> {
    let mut words = line.split_whitespace();
    let address = u128::from_str_radix(words.next()?, 16).ok()?;
    let index = u32::from_str_radix(words.next()?, 16).ok()?;
    let prefix = u8::from_str_radix(words.next()?, 16).ok()?;
    let (_scope, _flags, name) = (words.next()?, words.next()?, words.next()?);
    Some((Ipv6Addr::from(address), index, prefix, name))
}

/// The flags of `/sys/class/net/NAME/flags`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn sys_flags(name: &str) -> Option<u32> {
    let path = format!("/sys/class/net/{name}/flags");
    let text = std::fs::read_to_string(path).ok()?;
    u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

/// `IFF_MULTICAST` of `/sys/class/net/NAME/flags`; true when it cannot be read.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn multicast_flag(name: &str) -> bool {
    const IFF_MULTICAST: u32 = 0x1000;
    sys_flags(name).is_none_or(|flags| flags & IFF_MULTICAST != 0)
}

/// Other systems: `if-addrs` gives no flags, so every interface counts as capable.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn multicast_flag(_: &str) -> bool {
    true
}

/// One `--interface` value: an interface name, or one of its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSelector {
    /// The interface of this name.
    Name(String),
    /// The interface that has this address.
    Addr(IpAddr),
}

impl std::str::FromStr for InterfaceSelector {
    type Err = std::convert::Infallible;

    /// An address when the text parses as one, else a name.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.parse::<IpAddr>() {
            Ok(addr) => Self::Addr(addr),
            Err(_) => Self::Name(text.to_owned()),
        })
    }
}

impl std::fmt::Display for InterfaceSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

impl InterfaceSelector {
    /// Whether it names `interface`.
    #[must_use]
    pub fn matches(&self, interface: &NetInterface) -> bool {
        match self {
            Self::Name(name) => interface.name == *name,
            Self::Addr(addr) => interface.owns(*addr),
        }
    }
}

/// Which interfaces join the group and send: `--interface` (any of them; none given: every
/// candidate, see [`NetInterface::is_candidate`]) minus `--exclude-interface` globs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceFilter {
    /// Only these (empty: every candidate). A chosen interface need not be a candidate:
    /// `127.0.0.1` selects loopback.
    pub only: Vec<InterfaceSelector>,
    /// Names matching any of these globs (`*` any run, `?` one character) are left out.
    pub exclude: Vec<String>,
}

impl InterfaceFilter {
    /// Whether `interface` is used.
    #[must_use]
    pub fn admits(&self, interface: &NetInterface) -> bool {
        let chosen = if self.only.is_empty() {
            interface.is_candidate()
        } else {
            self.only.iter().any(|s| s.matches(interface))
        };
        chosen && !self.exclude.iter().any(|g| glob(g, &interface.name))
    }

    /// The interfaces of `all` that are used, in order.
    #[must_use]
    pub fn select<'a>(&self, all: &'a [NetInterface]) -> Vec<&'a NetInterface> {
        all.iter().filter(|i| self.admits(i)).collect()
    }
}

/// Matches `name` against `pattern`: `*` is any run of characters, `?` any one.
#[must_use]
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative with one backtrack point: linear in practice, never recursive.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Where a peer was heard: the interface and this host's address on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardOn {
    /// The interface's name.
    pub interface: String,
    /// This host's address on that interface (of the peer's family when there is one).
    pub address: IpAddr,
}

/// The interface a datagram from `ip` came in on, among `all`.
///
/// Multicast reaches at most the peers on the link (TTL 1) or on the host (TTL 0), so the
/// sender's address lies in a prefix of the interface it arrived on, or is one of this
/// host's addresses (a peer on this host: the interface owning it). An IPv6 link-local
/// sender is found by its scope (`scope_id`, the interface index). `None` when no
/// interface matches (an address outside every prefix, e.g. a routed sender).
#[must_use]
pub fn heard_on(all: &[NetInterface], ip: IpAddr, scope: Option<u32>) -> Option<HeardOn> {
    let ip = ip.to_canonical();
    let found = scope
        .filter(|&s| s != 0)
        .and_then(|s| all.iter().find(|i| i.index == Some(s)))
        .or_else(|| all.iter().find(|i| i.owns(ip)))
        .or_else(|| all.iter().find(|i| !i.loopback && i.contains(ip)))
        .or_else(|| all.iter().find(|i| i.contains(ip)))?;
    let address = match ip {
        IpAddr::V4(_) => found.first_v4().map(IpAddr::V4),
        IpAddr::V6(_) => found.v6.first().map(|(a, _)| IpAddr::V6(*a)),
    }
    .or_else(|| found.first_v4().map(IpAddr::V4))?;
    let address = if found.owns(ip) { ip } else { address };
    Some(HeardOn {
        interface: found.name.clone(),
        address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(name: &str, v4: &[(&str, u8)], v6: &[(&str, u8)], index: u32) -> NetInterface {
        NetInterface {
            name: name.to_owned(),
            index: Some(index),
            v4: v4.iter().map(|(a, l)| (a.parse().unwrap(), *l)).collect(),
            v6: v6.iter().map(|(a, l)| (a.parse().unwrap(), *l)).collect(),
            up: true,
            loopback: name == "lo",
            multicast: name != "lo",
        }
    }

    fn host() -> Vec<NetInterface> {
        vec![
            nic("lo", &[("127.0.0.1", 8)], &[("::1", 128)], 1),
            nic("eth0", &[("10.1.0.2", 24)], &[("fe80::1", 64)], 2),
            nic("wlan0", &[("192.168.5.9", 24)], &[("fe80::2", 64)], 3),
            nic("docker0", &[("172.17.0.1", 16)], &[], 4),
        ]
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob("docker*", "docker0"));
        assert!(glob("veth*", "veth"));
        assert!(glob("*0", "eth0"));
        assert!(glob("e?h*", "eth10"));
        assert!(glob("*", ""));
        assert!(!glob("docker*", "eth0"));
        assert!(!glob("eth?", "eth10"));
        assert!(glob("a*b*c", "aXXbYbZc"));
        assert!(!glob("a*b*c", "aXXbYbZ"));
    }

    #[test]
    fn by_default_every_candidate_but_the_excluded_ones_is_used() {
        let all = host();
        let filter = InterfaceFilter {
            only: vec![],
            exclude: vec!["docker*".into()],
        };
        let names: Vec<&str> = filter
            .select(&all)
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(names, ["eth0", "wlan0"]);
    }

    #[test]
    fn chosen_interfaces_by_name_or_address_include_loopback_when_asked() {
        let all = host();
        let filter = InterfaceFilter {
            only: vec!["127.0.0.1".parse().unwrap(), "wlan0".parse().unwrap()],
            exclude: vec![],
        };
        let names: Vec<&str> = filter
            .select(&all)
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(names, ["lo", "wlan0"]);
    }

    #[test]
    fn a_peer_is_heard_on_the_interface_whose_prefix_holds_it() {
        let all = host();
        let heard = |ip: &str, scope| heard_on(&all, ip.parse().unwrap(), scope);
        assert_eq!(
            heard("10.1.0.77", None),
            Some(HeardOn {
                interface: "eth0".into(),
                address: "10.1.0.2".parse().unwrap()
            })
        );
        assert_eq!(heard("192.168.5.9", None).unwrap().interface, "wlan0");
        assert_eq!(heard("127.0.0.1", None).unwrap().interface, "lo");
        let v6 = heard("fe80::99", Some(3)).unwrap();
        assert_eq!(v6.interface, "wlan0");
        assert_eq!(v6.address, "fe80::2".parse::<IpAddr>().unwrap());
        assert_eq!(heard("8.8.8.8", None), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn lines_of_proc_net_if_inet6_parse() {
        let line = "fe8000000000000058a219fffeba24e1 03 40 20 80     eth0";
        assert_eq!(
            if_inet6_line(line),
            Some(("fe80::58a2:19ff:feba:24e1".parse().unwrap(), 3, 64, "eth0"))
        );
        assert_eq!(if_inet6_line("zz 03 40 20 80 eth0"), None);
        assert_eq!(if_inet6_line("fe80 03"), None);
    }

    #[test]
    fn this_hosts_interfaces_can_be_listed() {
        let all = list().expect("interface list");
        assert!(all.iter().any(|i| i.loopback), "{all:#?}");
    }
}
