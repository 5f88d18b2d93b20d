//! Probing silent services ([`Config::probe_silent`](crate::Config::probe_silent)).
//!
//! A service expires when nothing was heard from it for `ttl` (spec 5.9). On a lossy LAN a
//! healthy service's heartbeats can be lost several in a row; at each full heartbeat the node
//! therefore asks every service silent for more than half its `ttl` for its props, with one
//! discovery filtered to those services (the frame [`ask_for_props`](Core::ask_for_props)
//! sends). Each answers at once with a direct heartbeat (spec 5.5), over TCP when it runs it,
//! which retransmits where multicast would not: a healthy service is expired only when its
//! heartbeats for a whole `ttl` and every probe, or its answer, are lost. A crashed service
//! still expires `ttl` after its last frame.

use super::Core;
use crate::policy::Policy;
use crate::service::Seen;
use crate::stats::bump;
use crate::time::Instant;

impl<P: Policy, const SERVICES: usize, const DATA: usize> Core<P, SERVICES, DATA> {
    /// Asks the services silent for more than half their ttl for a heartbeat.
    pub(super) fn probe_silent_services(&mut self, now: Instant) {
        if !self.config.probe_silent {
            return;
        }
        let half = self.ttl().ms / 2;
        let seen_now = Seen::at(now);
        for index in 0..self.registry.len() {
            let Some(sid) = self
                .registry
                .at(index)
                .filter(|s| seen_now.0.saturating_sub(s.last_seen.0) > half)
                .map(|s| s.sid)
            else {
                continue;
            };
            if self.ask_for_props(&sid) {
                bump(&mut self.stats.silent_probes);
            }
        }
    }
}
