//! `expected(within)`, the ping batch, reduced TTLs and the handling of received pings
//! (spec 5.10, 7.2 Q13).

use super::Core;
use super::outbox::{Broadcast, PING_MAX};
use crate::compact::compact;
use crate::identity::Sid;
use crate::policy::Policy;
use crate::service::Seen;
use crate::stats::bump;
use crate::time::{Instant, millis_ceil};
use crate::wire::tcl_list;

/// Sids collected for the next ping, and when it goes out.
#[derive(Debug)]
pub(crate) struct PingBatch {
    sids: heapless::Vec<Sid, PING_MAX>,
    deadline: Option<Instant>,
}

impl PingBatch {
    pub(crate) const fn new() -> Self {
        Self {
            sids: heapless::Vec::new(),
            deadline: None,
        }
    }

    /// Adds `sid`; the first sid starts the batch window. False when the batch is full.
    pub(crate) fn add(&mut self, sid: Sid, now: Instant, window_ms: u64) -> bool {
        if self.sids.contains(&sid) {
            return true;
        }
        if self.sids.is_empty() {
            self.deadline = Some(now.saturating_add_millis(window_ms));
        }
        self.sids.push(sid).is_ok()
    }

    /// Removes `sid`; an emptied batch is cancelled (Q13).
    pub(crate) fn remove(&mut self, sid: &[u8]) {
        let kept = compact(&mut self.sids, |s| s.as_bytes() != sid);
        self.sids.truncate(kept);
        if self.sids.is_empty() {
            self.deadline = None;
        }
    }

    pub(crate) fn due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|t| t <= now)
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub(crate) fn clear(&mut self) {
        self.sids.clear();
        self.deadline = None;
    }
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// `expected(within)`: unless `sid` was heard from within the recently-seen guard or is
    /// already expected, mark it and leave it `within_ms` to live. True when it did.
    pub(super) fn mark_expected(&mut self, now: Instant, sid: &[u8], within_ms: u64) -> bool {
        let guard = millis_ceil(self.config.recently_seen_guard);
        let ttl = millis_ceil(self.config.ttl);
        let Some(service) = self.registry.get_mut(sid) else {
            return false;
        };
        if service.is_expected() || now.saturating_millis_since(service.heard) < guard {
            return false;
        }
        service.set_expected(true);
        let lowered = Seen::at(now).lowered(ttl, within_ms);
        service.last_seen = service.last_seen.min(lowered);
        true
    }

    /// Every protocol of a direct send failed (spec 5.10 trigger): reduce the target's ttl and
    /// put it in the ping batch.
    pub(super) fn direct_send_exhausted(&mut self, now: Instant, sid: &Sid) {
        let within = millis_ceil(self.config.expected_after_failure);
        if self.mark_expected(now, sid.as_bytes(), within) {
            let window = millis_ceil(self.config.ping_batch_window);
            if !self.ping.add(*sid, now, window) {
                bump(&mut self.stats.ping_batch_full);
            }
        }
    }

    /// The batch window ended: broadcast the ping and handle it locally as a receiver would.
    pub(super) fn send_ping(&mut self, now: Instant) {
        let sids = core::mem::take(&mut self.ping.sids);
        self.ping.deadline = None;
        if sids.is_empty() {
            return;
        }
        self.outbox.ping_sids = sids;
        if self.outbox.push_broadcast(Broadcast::Ping) {
            bump(&mut self.stats.pings_sent);
        }
        self.schedule_expiry_check(now);
    }

    /// A received ping (type 3) with the sid list `data`.
    pub(super) fn handle_ping(&mut self, now: Instant, data: &str) {
        let mut named = 0usize;
        let mut named_self = false;
        for element in tcl_list::elements(data).flatten() {
            named += 1;
            if element.eq_str(self.sid.as_str().unwrap_or_default()) {
                named_self = true;
            }
        }
        if named_self {
            self.answer_ping(now, named);
        }
        let within = millis_ceil(self.config.expected_when_pinged);
        for element in tcl_list::elements(data).flatten() {
            let mut sid = heapless::String::<{ Sid::MAX_LEN }>::new();
            if element.write_to(sid.as_mut_view()).is_ok() && sid.as_bytes() != self.sid.as_bytes()
            {
                // Looked up by exact sid (spec 7.3), not by glob substring.
                self.mark_expected(now, sid.as_bytes(), within);
            }
        }
        self.schedule_expiry_check(now);
    }

    fn schedule_expiry_check(&mut self, now: Instant) {
        if self.expiry_check_at.is_none() {
            let delay = millis_ceil(self.config.expiry_check_after_ping);
            self.expiry_check_at = Some(now.saturating_add_millis(delay));
        }
    }
}
