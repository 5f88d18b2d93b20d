//! Routes: services that do not speak `mx` (reference nodes, firmware, nodes without seeds),
//! reachable through a gateway on their LAN.
//!
//! A gateway lists the LAN-only services it hears in the trailer of its exchanges (see the
//! `entry` module); a receiver keeps them as routes "`sid` via `gateway`". The gateway's
//! list is authoritative for its own routes: each exchange from it replaces them all, and
//! when the gateway is lost its routes go with it. A service behind several gateways keeps
//! one route per gateway; the one in use is the **lowest gateway sid**, so that every node
//! chooses the same gateway and a second gateway on the LAN never duplicates an answer,
//! and when that gateway is lost the next one takes over.

use core::net::SocketAddr;

use super::entry::Entry;
use crate::identity::Sid;

/// A service reachable through a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The service as the gateway exports it; `addr` is the gateway's TCP address, where
    /// frames for the service go.
    pub entry: Entry,
    /// The gateway's sid.
    pub gateway: Sid,
}

/// A change of the route in use for a sid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEvent {
    /// `sid` is reachable through a (new) gateway, or its exported entry changed.
    Up(Sid),
    /// No gateway offers `sid` any more.
    Down(Sid),
}

/// The routes a node knows, at most `N` (a gateway's routes beyond that are dropped and
/// counted by the caller).
#[derive(Debug)]
pub struct Routes<const N: usize> {
    routes: heapless::Vec<Route, N>,
}

impl<const N: usize> Default for Routes<N> {
    fn default() -> Self {
        Self {
            routes: heapless::Vec::new(),
        }
    }
}

impl<const N: usize> Routes<N> {
    /// Every route (all gateways).
    #[must_use]
    pub fn all(&self) -> &[Route] {
        &self.routes
    }

    /// The route in use for `sid`: the one through the lowest gateway sid.
    #[must_use]
    pub fn chosen(&self, sid: &Sid) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.entry.sid == *sid)
            .min_by(|a, b| a.gateway.as_bytes().cmp(b.gateway.as_bytes()))
    }

    /// Replaces the routes through `gateway` (whose TCP address is `gateway_addr`) by
    /// `listed`, and reports each sid whose route in use changed through `emit`. Returns
    /// how many listed entries did not fit.
    pub fn replace(
        &mut self,
        gateway: &Sid,
        gateway_addr: SocketAddr,
        listed: impl Iterator<Item = Entry> + Clone,
        mut emit: impl FnMut(RouteEvent),
    ) -> usize {
        // The sids whose route may change: the gateway's old ones and its new ones.
        let mut before: heapless::Vec<(Sid, Option<Route>), N> = heapless::Vec::new();
        let mut note = |sid: Sid, routes: &Self| {
            if !before.iter().any(|(s, _)| *s == sid) {
                let _ = before.push((sid, routes.chosen(&sid).copied()));
            }
        };
        for route in self.routes.iter().filter(|r| r.gateway == *gateway) {
            note(route.entry.sid, self);
        }
        for entry in listed.clone() {
            note(entry.sid, self);
        }
        self.routes.retain(|r| r.gateway != *gateway);
        let mut dropped = 0;
        for mut entry in listed {
            if entry.sid == *gateway
                || self
                    .routes
                    .iter()
                    .any(|r| r.entry.sid == entry.sid && r.gateway == *gateway)
            {
                continue;
            }
            entry.addr = gateway_addr;
            if self
                .routes
                .push(Route {
                    entry,
                    gateway: *gateway,
                })
                .is_err()
            {
                dropped += 1;
            }
        }
        for (sid, old) in before {
            match (old, self.chosen(&sid).copied()) {
                (Some(_), None) => emit(RouteEvent::Down(sid)),
                (old, Some(new)) if old != Some(new) => emit(RouteEvent::Up(sid)),
                _ => {}
            }
        }
        dropped
    }

    /// The gateway `gateway` is lost: its routes go, the next gateway takes over.
    pub fn drop_gateway(&mut self, gateway: &Sid, emit: impl FnMut(RouteEvent)) {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        self.replace(gateway, unspecified, core::iter::empty(), emit);
    }
}
