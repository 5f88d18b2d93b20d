//! Which interfaces the multicast socket has joined the group on and sends from, kept up to
//! date while the node runs ([`Membership`]).
//!
//! Two ways to choose, from [`Options`]:
//!
//! * **Fixed**: local mode (TTL 0) with no `--interface`: one interface, exactly as the
//!   reference (the default interface, or the loopback fallback; see [`crate::socket`]).
//!   Datagrams never leave the host then, so one interface reaches every local node, and a
//!   reference node on the host (joined on the default interface) hears us.
//! * **Following**: `remote` (TTL 1), or any `--interface`: every interface the
//!   [`InterfaceFilter`] admits, with an IPv4 address. The list is read again every
//!   [`Options::interface_poll`]; an interface that appears (or gets its first address) is
//!   joined, one that disappears is left. With none admitted, loopback stands in (as the
//!   fallback of the fixed way) so that the nodes of the host still meet.
//!
//! Every multicast datagram goes out once per route, each with `IP_MULTICAST_IF` set to
//! that interface's address. Multicast loopback is on for the first route only: a node on
//! this host that joined on several interfaces gets each datagram once, not once per
//! interface. (A peer reached through two of our interfaces, e.g. Ethernet and Wi-Fi on
//! one LAN, still hears each datagram twice; heartbeats are idempotent, and the core keeps
//! one service per sid.)

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use socket2::SockRef;

use crate::interfaces::{self, HeardOn, InterfaceFilter, NetInterface};
use crate::options::Options;
use crate::socket::MulticastSetup;

/// `EADDRINUSE`: the group is already joined on that interface (its address changed).
const EADDRINUSE: i32 = 98;

/// One interface the group is joined on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The interface's name.
    pub name: String,
    /// The address the group was joined with and datagrams leave from.
    pub address: Ipv4Addr,
}

/// What a [`Membership::sync`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Routes joined.
    pub joined: Vec<Route>,
    /// Routes left.
    pub left: Vec<Route>,
}

/// The interfaces in use and how they are chosen (see the module docs).
#[derive(Debug, Clone)]
pub struct Membership {
    group: Ipv4Addr,
    /// `None`: the fixed way.
    filter: Option<InterfaceFilter>,
    routes: Vec<Route>,
    /// The host's interfaces at the last read (to say where a peer was heard).
    interfaces: Vec<NetInterface>,
    poll_ms: u64,
    next_poll: u64,
}

impl Membership {
    /// The fixed way: the one interface `setup` chose.
    #[must_use]
    pub fn fixed(group: Ipv4Addr, setup: &MulticastSetup) -> Self {
        let interfaces = interfaces::list().unwrap_or_default();
        let address = match setup.interface {
            crate::socket::MulticastInterface::Default { source } => source,
            crate::socket::MulticastInterface::LoopbackFallback => Some(Ipv4Addr::LOCALHOST),
            crate::socket::MulticastInterface::Configured(a) => Some(a),
            crate::socket::MulticastInterface::Following => None,
        };
        let routes = address
            .map(|address| Route {
                name: interfaces
                    .iter()
                    .find(|i| i.owns(IpAddr::V4(address)))
                    .map_or_else(|| "default".to_owned(), |i| i.name.clone()),
                address,
            })
            .into_iter()
            .collect();
        Self {
            group,
            filter: None,
            routes,
            interfaces,
            poll_ms: u64::MAX,
            next_poll: u64::MAX,
        }
    }

    /// The following way, nothing joined yet: call [`sync`](Self::sync).
    #[must_use]
    pub fn following(options: &Options) -> Self {
        Self {
            group: options.group,
            filter: Some(options.interface_filter()),
            routes: Vec::new(),
            interfaces: Vec::new(),
            poll_ms: u64::try_from(options.interface_poll.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            next_poll: 0,
        }
    }

    /// Whether `options` choose the following way.
    #[must_use]
    pub fn follows(options: &Options) -> bool {
        options.config.remote || !options.interfaces.is_empty()
    }

    /// The interfaces datagrams go out on, in order.
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The names of [`routes`](Self::routes).
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.name.clone()).collect()
    }

    /// Whether each datagram goes out on several routes, each with its own
    /// `IP_MULTICAST_IF` (see [`prepare_send`](Self::prepare_send)).
    #[must_use]
    pub fn fans_out(&self) -> bool {
        self.filter.is_some() && self.routes.len() > 1
    }

    /// When the interface list is next read (`u64::MAX` in the fixed way).
    #[must_use]
    pub fn next_poll(&self) -> u64 {
        self.next_poll
    }

    /// Where a peer at `ip` (`scope`: an IPv6 source's scope id) was heard, by the
    /// interface list of the last read ([`interfaces::heard_on`]).
    #[must_use]
    pub fn heard_on(&self, ip: IpAddr, scope: Option<u32>) -> Option<HeardOn> {
        interfaces::heard_on(&self.interfaces, ip, scope)
    }

    /// Reads the interface list when due and joins or leaves to match it.
    pub fn poll(&mut self, now_ms: u64, socket: Option<SockRef<'_>>) -> Changes {
        if now_ms < self.next_poll {
            return Changes::default();
        }
        self.next_poll = now_ms.saturating_add(self.poll_ms);
        // A failed read keeps what is joined.
        let Ok(all) = interfaces::list() else {
            return Changes::default();
        };
        match socket {
            Some(socket) => self.sync(&socket, all),
            None => {
                self.interfaces = all;
                Changes::default()
            }
        }
    }

    /// Joins the group on every admitted interface not joined yet and leaves the routes no
    /// longer admitted (the fixed way only records `all`). A join the system refuses is
    /// skipped and tried again at the next read.
    pub fn sync(&mut self, socket: &socket2::Socket, all: Vec<NetInterface>) -> Changes {
        let mut changes = Changes::default();
        let Some(filter) = &self.filter else {
            self.interfaces = all;
            return changes;
        };
        let mut wanted: Vec<Route> = filter
            .select(&all)
            .into_iter()
            .filter_map(|i| {
                i.first_v4().map(|address| Route {
                    name: i.name.clone(),
                    address,
                })
            })
            .collect();
        if wanted.is_empty() && filter.only.is_empty() {
            wanted.push(Route {
                name: all
                    .iter()
                    .find(|i| i.loopback)
                    .map_or_else(|| "lo".to_owned(), |i| i.name.clone()),
                address: Ipv4Addr::LOCALHOST,
            });
        }
        let group = self.group;
        self.routes.retain(|route| {
            if wanted.contains(route) {
                return true;
            }
            // The interface may be gone already (the system then left for us).
            let _ = socket.leave_multicast_v4(&group, &route.address);
            changes.left.push(route.clone());
            false
        });
        for route in wanted {
            if self.routes.contains(&route) {
                continue;
            }
            match socket.join_multicast_v4(&group, &route.address) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(EADDRINUSE) => {}
                Err(_) => continue,
            }
            changes.joined.push(route.clone());
            self.routes.push(route);
        }
        if let Some(first) = self.routes.first() {
            // Sends without a fan-out go out on the first route.
            let _ = socket.set_multicast_if_v4(&first.address);
            let _ = socket.set_multicast_loop_v4(true);
        }
        self.interfaces = all;
        changes
    }

    /// Points the socket at route `index` before its copy of a datagram is sent: its
    /// interface, and multicast loopback on for the first route only.
    ///
    /// # Errors
    ///
    /// A `setsockopt` failed: skip this route for this datagram.
    pub fn prepare_send(&self, socket: &socket2::Socket, index: usize) -> io::Result<()> {
        let route = self.routes.get(index).ok_or(io::ErrorKind::NotFound)?;
        socket.set_multicast_if_v4(&route.address)?;
        socket.set_multicast_loop_v4(index == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lo_only() -> Vec<NetInterface> {
        vec![NetInterface {
            name: "lo".into(),
            index: Some(1),
            v4: vec![(Ipv4Addr::LOCALHOST, 8)],
            v6: vec![],
            up: true,
            loopback: true,
            multicast: false,
        }]
    }

    fn socket() -> socket2::Socket {
        let (udp, _) = crate::socket::multicast_socket(
            Ipv4Addr::new(230, 230, 230, 230),
            0,
            false,
            Some(Ipv4Addr::LOCALHOST),
        )
        .expect("socket");
        udp.into()
    }

    #[test]
    fn remote_with_no_candidate_falls_back_to_loopback_and_a_new_interface_replaces_it() {
        let options = Options::default()
            .remote(true)
            .interface_poll(Duration::from_secs(1));
        let mut membership = Membership::following(&options);
        let socket = socket();
        let changes = membership.sync(&socket, lo_only());
        assert_eq!(membership.names(), ["lo"]);
        assert_eq!(changes.joined.len(), 1);
        // An interface appears: it is joined and the fallback is left.
        let mut host = lo_only();
        host.push(NetInterface {
            name: "lo-alias".into(),
            index: Some(1),
            v4: vec![(Ipv4Addr::new(127, 0, 0, 1), 8)],
            v6: vec![],
            up: true,
            loopback: false,
            multicast: true,
        });
        let changes = membership.sync(&socket, host);
        assert_eq!(membership.names(), ["lo-alias"]);
        assert_eq!(changes.left.len(), 1);
        assert!(!membership.fans_out());
    }

    #[test]
    fn chosen_interfaces_that_match_nothing_join_nothing() {
        let options = Options::default().interface_name("no-such-nic");
        let mut membership = Membership::following(&options);
        membership.sync(&socket(), lo_only());
        assert!(membership.routes().is_empty());
    }
}
