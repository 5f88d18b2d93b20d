//! Full and periodic heartbeats, queued props and tags, discovery and its answers (spec 5.3–5.5).

use super::Core;
use super::outbox::{Broadcast, Direct, DirectBody};
use crate::event::Ruid;
use crate::identity::Sid;
use crate::policy::Policy;
use crate::time::{Instant, millis_ceil, whole_secs};
use crate::wire::Message;

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// A full heartbeat (spec 5.4): re-arms the periodic timer, takes the queued props and
    /// tags, runs the expiry check and broadcasts.
    pub(super) fn full_heartbeat(&mut self, now: Instant) {
        self.heartbeat_at = Some(now.saturating_add_millis(self.heartbeat_ms));
        self.ping_answer_at = None;
        let props = core::mem::take(&mut self.queued_props);
        let mut tags = core::mem::take(&mut self.queued_tags);
        if !tags && self.repeat_tags {
            self.repeat_tags = false;
            tags = true;
        }
        self.expire_services(now);
        self.probe_silent_services(now);
        if !self
            .outbox
            .push_broadcast(Broadcast::Heartbeat { props, tags })
        {
            // Keep what was queued for the next heartbeat.
            self.queued_props |= props;
            self.queued_tags |= tags;
            crate::stats::bump(&mut self.stats.sends_rejected);
        }
    }

    /// Queues a discovery; true when queued.
    pub(super) fn queue_discovery(&mut self, now: Instant) -> bool {
        if !self.joined() {
            return false;
        }
        self.last_discovery = Some(now);
        self.outbox
            .push_broadcast(Broadcast::Discovery { mark: None })
    }

    /// The `discover` command with its rate limit (spec 5.5).
    pub(super) fn discover(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last_discovery {
            let since = now.saturating_millis_since(last);
            let limit = millis_ceil(self.config.discover_interval);
            let too_soon = if self.config.ttl_whole_seconds {
                whole_secs(since) <= whole_secs(limit)
            } else {
                since <= limit
            };
            if too_soon {
                return false;
            }
        }
        self.queue_discovery(now)
    }

    /// Answers a discovery at once with a direct full heartbeat (spec 5.5), echoing `ruid`
    /// and `keepalive`; multicast fallback is allowed.
    pub(super) fn answer_discovery(&mut self, asker: Sid, msg: &Message<'_>) {
        let mut answer = Direct::new(asker, DirectBody::DiscoveryAnswer, true);
        answer.ruid = msg.ruid.and_then(|r| Ruid::new(r.as_bytes()));
        answer.keepalive = msg.keepalive;
        let _ = self.queue_direct(answer);
    }

    /// Answers a ping that names this node (spec 5.10): at once when it is the only sid named,
    /// else after a random stagger that replaces the periodic timer.
    pub(super) fn answer_ping(&mut self, now: Instant, named: usize) {
        if named <= 1 {
            self.queued_props = true;
            self.queued_tags = true;
            self.full_heartbeat(now);
        } else {
            let stagger = self
                .rng
                .inclusive(0, millis_ceil(self.config.ping_answer_stagger));
            self.heartbeat_at = None;
            self.ping_answer_at = Some(now.saturating_add_millis(stagger));
        }
    }
}
