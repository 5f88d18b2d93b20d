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
//!
//! The same discovery also names, at most [`UNTOLD_PER_HEARTBEAT`] at a time, the services
//! whose tags have not arrived yet: a service first heard through a frame without tags (a
//! periodic heartbeat, when this node's join discovery was lost) is asked for them once
//! when it is met, and that question or its answer can be lost too. Until its tags arrive it
//! cannot be resolved by tag.

use super::Core;
use super::hold::LOSS_RECOVERY;
use crate::policy::Policy;
use crate::service::Seen;
use crate::stats::bump;
use crate::time::Instant;

/// Services whose tags are unknown asked at one full heartbeat, at most (so that a flood of
/// invented sids does not make each discovery a list of all of them).
const UNTOLD_PER_HEARTBEAT: usize = 8;

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// Asks the services silent for more than half their ttl for a heartbeat, and some of
    /// those whose tags are unknown for them.
    pub(super) fn probe_silent_services(&mut self, now: Instant) {
        if !LOSS_RECOVERY || !self.config.probe_silent {
            return;
        }
        let half = self.ttl().ms / 2;
        let seen_now = Seen::at(now);
        let mut untold = 0;
        for index in 0..self.registry.len() {
            let Some(service) = self.registry.at(index) else {
                continue;
            };
            let silent = seen_now.0.saturating_sub(service.last_seen.0) > half;
            let ask_tags = !service.is_told() && untold < UNTOLD_PER_HEARTBEAT;
            if !silent && !ask_tags {
                continue;
            }
            untold += usize::from(!silent);
            let sid = service.sid;
            if self.ask_for_props(&sid) {
                bump(&mut self.stats.silent_probes);
            }
        }
    }
}
