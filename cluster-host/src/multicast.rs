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
//! **IPv6.** In the following way, when [`Options::group_v6`] is set (by default
//! [`DEFAULT_GROUP_V6`](crate::options::DEFAULT_GROUP_V6), `ff02::e6e6:e6e6`, link-local
//! scope: `e6e6:e6e6` is 230.230.230.230), a second socket, IPv6 only, bound to the same
//! port, joins that group on every admitted interface that has an IPv6 address (a
//! link-local one is enough), and every datagram also goes out there, the same bytes. A
//! host without any IPv4 address thus discovers, queries and watches peers over IPv6
//! alone; the reference (IPv4 only) is not affected. Copies of one datagram that arrive
//! over both families (or over two interfaces) are dropped by the engine, so a dual-stack
//! peer is one service whose events arrive once.
//!
//! Every multicast datagram goes out once per route, each with `IP_MULTICAST_IF` set to
//! that interface's address. Multicast loopback is on for the first route only: a node on
//! this host that joined on several interfaces gets each datagram once, not once per
//! interface. The first route is the interface the kernel's multicast route points at when it
//! is in use, so that a reference node on this host, which joins on the default interface
//! only, hears the looped-back copy. (A peer reached through two of our interfaces, e.g. Ethernet and Wi-Fi on
//! one LAN, still hears each datagram twice; heartbeats are idempotent, and the core keeps
//! one service per sid.)

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};

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

/// One interface the IPv6 group is joined on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6 {
    /// The interface's name.
    pub name: String,
    /// Its index: the group is joined on it and datagrams leave through it.
    pub index: u32,
}

/// What a [`Membership::sync`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Routes joined.
    pub joined: Vec<Route>,
    /// Routes left.
    pub left: Vec<Route>,
    /// IPv6 routes joined.
    pub joined_v6: Vec<Route6>,
    /// IPv6 routes left.
    pub left_v6: Vec<Route6>,
}

/// The interfaces in use and how they are chosen (see the module docs).
#[derive(Debug, Clone)]
pub struct Membership {
    group: Ipv4Addr,
    /// The port (to ask the kernel which interface its multicast route points at).
    port: u16,
    /// The IPv6 group, when IPv6 is used.
    group_v6: Option<Ipv6Addr>,
    /// `None`: the fixed way.
    filter: Option<InterfaceFilter>,
    routes: Vec<Route>,
    routes_v6: Vec<Route6>,
    /// The host's interfaces at the last read (to say where a peer was heard).
    interfaces: Vec<NetInterface>,
    poll_ms: u64,
    next_poll: u64,
    /// The sockets report each datagram's arriving interface ([`crate::arrival`]).
    reports_arrival: bool,
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
            port: setup.destination.port(),
            group_v6: None,
            filter: None,
            routes,
            routes_v6: Vec::new(),
            interfaces,
            poll_ms: u64::MAX,
            next_poll: u64::MAX,
            reports_arrival: false,
        }
    }

    /// The following way, nothing joined yet: call [`sync`](Self::sync).
    #[must_use]
    pub fn following(options: &Options) -> Self {
        Self {
            group: options.group,
            port: options.port,
            group_v6: options.group_v6,
            filter: Some(options.interface_filter()),
            routes: Vec::new(),
            routes_v6: Vec::new(),
            interfaces: Vec::new(),
            poll_ms: u64::try_from(options.interface_poll.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            next_poll: 0,
            reports_arrival: false,
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

    /// The interfaces datagrams also go out on over IPv6, in order.
    #[must_use]
    pub fn routes_v6(&self) -> &[Route6] {
        &self.routes_v6
    }

    /// The IPv6 group, when IPv6 is used.
    #[must_use]
    pub fn group_v6(&self) -> Option<Ipv6Addr> {
        self.group_v6
    }

    /// The names of the interfaces in use, IPv4 routes first, each once.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.routes.iter().map(|r| r.name.clone()).collect();
        for route in &self.routes_v6 {
            if !names.contains(&route.name) {
                names.push(route.name.clone());
            }
        }
        names
    }

    /// Whether each datagram goes out on several routes (or over IPv6), each with its own
    /// interface set (see [`prepare_send`](Self::prepare_send)); else it goes out once on
    /// the IPv4 socket as it is set up.
    #[must_use]
    pub fn fans_out(&self) -> bool {
        self.filter.is_some() && (self.routes.len() > 1 || !self.routes_v6.is_empty())
    }

    /// Whether datagrams may arrive over more than one path (several interfaces, or both
    /// families), so that copies of one datagram must be told apart.
    #[must_use]
    pub fn has_paths(&self) -> bool {
        self.routes.len() + self.routes_v6.len() > 1
    }

    /// Whether the adapter should read the multicast sockets with
    /// [`arrival::recv_from`](crate::arrival::recv_from), which says on which interface each
    /// datagram arrived: the join turned that on, and datagrams may come over several paths
    /// ([`has_paths`](Self::has_paths)). With one path the plain read is cheaper, and the
    /// interface is that path's.
    #[must_use]
    pub fn reports_arrival(&self) -> bool {
        self.reports_arrival && self.has_paths()
    }

    /// Notes that the join turned on arrival reports on every multicast socket.
    pub fn set_reports_arrival(&mut self, on: bool) {
        self.reports_arrival = on;
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
    pub fn poll(
        &mut self,
        now_ms: u64,
        socket: Option<SockRef<'_>>,
        socket_v6: Option<SockRef<'_>>,
    ) -> Changes {
        if now_ms < self.next_poll {
            return Changes::default();
        }
        self.next_poll = now_ms.saturating_add(self.poll_ms);
        // A failed read keeps what is joined.
        let Ok(all) = interfaces::list() else {
            return Changes::default();
        };
        match socket {
            Some(socket) => self.sync(&socket, socket_v6.as_deref(), all),
            None => {
                self.interfaces = all;
                Changes::default()
            }
        }
    }

    /// Joins the group on every admitted interface not joined yet and leaves the routes no
    /// longer admitted (the fixed way only records `all`). A join the system refuses is
    /// skipped and tried again at the next read.
    pub fn sync(
        &mut self,
        socket: &socket2::Socket,
        socket_v6: Option<&socket2::Socket>,
        all: Vec<NetInterface>,
    ) -> Changes {
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
        // The default interface first: it gets the looped-back copy.
        if let Some(source) = crate::socket::default_route_source(self.group, self.port)
            && let Some(at) = wanted.iter().position(|r| r.address == source)
        {
            wanted[..=at].rotate_right(1);
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
        for route in &wanted {
            if self.routes.contains(route) {
                continue;
            }
            match socket.join_multicast_v4(&group, &route.address) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(EADDRINUSE) => {}
                Err(_) => continue,
            }
            changes.joined.push(route.clone());
            self.routes.push(route.clone());
        }
        // In the order wanted (the default interface first).
        self.routes
            .sort_by_key(|r| wanted.iter().position(|w| w == r).unwrap_or(usize::MAX));
        if let (Some(socket_v6), Some(group_v6)) = (socket_v6, self.group_v6) {
            self.sync_v6(socket_v6, group_v6, &all, &mut changes);
        }
        if let Some(first) = self.routes.first() {
            // Sends without a fan-out go out on the first route.
            let _ = socket.set_multicast_if_v4(&first.address);
            let _ = socket.set_multicast_loop_v4(true);
        }
        self.interfaces = all;
        changes
    }

    /// The IPv6 half of [`sync`](Self::sync): every admitted interface with an index and an
    /// IPv6 address, but loopback (Linux's `lo` cannot carry IPv6 multicast; the IPv4 group
    /// serves the nodes of the host).
    fn sync_v6(
        &mut self,
        socket: &socket2::Socket,
        group: Ipv6Addr,
        all: &[NetInterface],
        changes: &mut Changes,
    ) {
        let Some(filter) = &self.filter else {
            return;
        };
        let wanted: Vec<Route6> = filter
            .select(all)
            .into_iter()
            .filter(|i| !i.v6.is_empty() && !i.loopback)
            .filter_map(|i| {
                i.index.map(|index| Route6 {
                    name: i.name.clone(),
                    index,
                })
            })
            .collect();
        self.routes_v6.retain(|route| {
            if wanted.contains(route) {
                return true;
            }
            let _ = socket.leave_multicast_v6(&group, route.index);
            changes.left_v6.push(route.clone());
            false
        });
        for route in wanted {
            if self.routes_v6.contains(&route) {
                continue;
            }
            match socket.join_multicast_v6(&group, route.index) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(EADDRINUSE) => {}
                Err(_) => continue,
            }
            changes.joined_v6.push(route.clone());
            self.routes_v6.push(route);
        }
    }

    /// Points the IPv6 socket at IPv6 route `index` (`IPV6_MULTICAST_IF`) and returns
    /// where its copy goes: the group, scoped to that interface.
    ///
    /// # Errors
    ///
    /// No such route, no IPv6 group, or the `setsockopt` failed: skip this route.
    pub fn prepare_send_v6(
        &self,
        socket: &socket2::Socket,
        index: usize,
        port: u16,
    ) -> io::Result<SocketAddrV6> {
        let route = self.routes_v6.get(index).ok_or(io::ErrorKind::NotFound)?;
        let group = self.group_v6.ok_or(io::ErrorKind::NotFound)?;
        socket.set_multicast_if_v6(route.index)?;
        Ok(SocketAddrV6::new(group, port, 0, route.index))
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
        let changes = membership.sync(&socket, None, lo_only());
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
        let changes = membership.sync(&socket, None, host);
        assert_eq!(membership.names(), ["lo-alias"]);
        assert_eq!(changes.left.len(), 1);
        assert!(!membership.fans_out());
    }

    #[test]
    fn chosen_interfaces_that_match_nothing_join_nothing() {
        let options = Options::default().interface_name("no-such-nic");
        let mut membership = Membership::following(&options);
        membership.sync(&socket(), None, lo_only());
        assert!(membership.routes().is_empty());
    }
}
