//! The node's internal state logic, behind the public entry points of `node.rs`: the phases
//! (joined, left), reset on join, the clock's advance and the timers, the bounded event queue
//! and the discovered notices, expiry and removal of services, props changes, and leaving.

use super::event_queue::Header;
use super::late;
use super::props::{self, OwnProps};
use super::registry::{Removed, Ttl};
use super::{Core, Identity, Phase, earliest};
use crate::error::SendError;
use crate::event::{Event, LostReason};
use crate::identity::Sid;
use crate::policy::Policy;
use crate::service::Service;
use crate::stats::bump;
use crate::time::{Instant, millis_ceil};

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// True between [`Node::start`] and [`Node::leave`].
    pub(super) fn joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// Why a send cannot be made when not [`joined`](Self::joined).
    pub(super) fn not_joined(&self) -> SendError {
        if self.phase == Phase::Left {
            SendError::Left
        } else {
            SendError::NotStarted
        }
    }

    /// Drops everything the node held and takes `identity`, in place (no node-sized
    /// temporary): the state of a node just created, before its join is queued. The policy,
    /// the clock and the counters stay; so does the send id counter, so that an outcome
    /// reported late for a send of the previous join never matches a new send.
    pub(super) fn reset(&mut self, identity: Identity) {
        // Every field is named, so that a new field cannot be forgotten here.
        let Self {
            config,
            protocols,
            hid,
            sid,
            policy: _,
            rng,
            now: _,
            phase,
            props,
            props_text,
            queued_props,
            queued_tags,
            repeat_tags,
            heartbeat_ms,
            heartbeat_at,
            discover_pending,
            discover_next,
            ping_answer_at,
            expiry_check_at,
            expiry_hold,
            last_discovery,
            registry,
            ping,
            queries,
            retries,
            answers,
            outbox,
            payloads,
            events,
            lost,
            events_dropped,
            stats: _,
        } = self;
        *protocols = identity.config.effective_protocols();
        *config = identity.config;
        *hid = identity.hid;
        *sid = identity.sid;
        *rng = identity.rng;
        *phase = Phase::Joined;
        *props = OwnProps::NONE;
        props_text.clear();
        *queued_props = true;
        *queued_tags = true;
        *repeat_tags = false;
        *heartbeat_ms = identity.heartbeat_ms;
        *heartbeat_at = None;
        *discover_pending = 0;
        *discover_next = None;
        *ping_answer_at = None;
        *expiry_check_at = None;
        *expiry_hold = late::ExpiryHold::NONE;
        *last_discovery = None;
        registry.clear();
        ping.clear();
        queries.clear();
        retries.clear();
        answers.clear();
        outbox.clear(payloads);
        events.clear();
        lost.clear();
        *events_dropped = 0;
    }

    /// Clamps `now` so that it never goes backwards.
    pub(super) fn advance(&mut self, now: Instant) -> Instant {
        if now < self.now {
            bump(&mut self.stats.clock_regressions);
        } else {
            self.now = now;
        }
        self.now
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let held = self.hold_expiry_if_late(now);
        let ping_answer_due = self.ping_answer_at.is_some_and(|t| t <= now);
        if ping_answer_due {
            self.queued_props = true;
            self.queued_tags = true;
        }
        if ping_answer_due || self.heartbeat_at.is_some_and(|t| t <= now) {
            self.full_heartbeat(now);
        }
        if self.expiry_check_at.is_some_and(|t| t <= now) {
            self.expiry_check_at = None;
            self.expire_services(now);
        }
        if self.ping.due(now) {
            self.send_ping(now);
        }
        self.expire_queries(now);
        self.retry_queries(now);
        if held {
            self.end_expiry_hold(now);
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        if !self.joined() {
            return None;
        }
        let discoveries = if self.discover_pending > 0 {
            self.discover_next
        } else {
            None
        };
        debug_assert_eq!(
            discoveries,
            self.registry.iter().filter_map(Service::discover_at).min(),
            "discover_next is the earliest pending Discovered event"
        );
        let mut next = earliest(self.heartbeat_at, self.ping_answer_at);
        next = earliest(next, self.expiry_check_at);
        next = earliest(next, self.ping.deadline());
        next = earliest(next, self.queries.next_deadline());
        next = earliest(next, self.retries.next_deadline());
        earliest(next, discoveries)
    }

    pub(super) fn ttl(&self) -> Ttl {
        Ttl {
            ms: millis_ceil(self.config.ttl),
            whole_seconds: self.config.ttl_whole_seconds,
        }
    }

    pub(super) fn push_event(&mut self, event: Event<DATA>) {
        if self.events.push(event).is_err() {
            self.note_event_dropped();
        }
    }

    /// Queues the event `header` describes, with `data` and `raw` written into its payload
    /// where it lies in the queue ([`EventQueue`](super::event_queue::EventQueue)); the
    /// payload is empty when they do not fit in `DATA` bytes.
    pub(super) fn push_event_filled(
        &mut self,
        header: Header,
        data: Option<&[u8]>,
        raw: Option<&[u8]>,
    ) {
        if !self.events.push_filled(header, data, raw) {
            self.note_event_dropped();
        }
    }

    fn note_event_dropped(&mut self) {
        self.events_dropped = self.events_dropped.saturating_add(1);
        bump(&mut self.stats.events_dropped);
    }

    /// Removes the front queued event, already read.
    pub(super) fn discard_front_event(&mut self) {
        self.events.discard_front();
    }

    /// The next event: queued ones first, then those derived from state (services lost,
    /// services whose discovery delay passed, ended queries), then the count of drops.
    pub(super) fn pop_event(&mut self) -> Option<Event<DATA>> {
        if !self.events.is_empty() {
            return self.events.pop();
        }
        if let Some((sid, reason)) = self.lost.pop_front() {
            return Some(Event::Lost { sid, reason });
        }
        if let Some(sid) = self.next_discovered() {
            return Some(Event::Discovered { sid });
        }
        // Returned as it is built: an event is as large as its payload.
        self.next_query_event()
    }

    /// After the events of ended queries, the count of drops.
    pub(super) fn take_dropped(&mut self) -> Option<Event<DATA>> {
        if self.events_dropped > 0 {
            let count = core::mem::take(&mut self.events_dropped);
            return Some(Event::Dropped { count });
        }
        None
    }

    /// The first service whose discovery delay has passed, now announced.
    pub(super) fn next_discovered(&mut self) -> Option<Sid> {
        if self.discover_pending == 0 {
            return None;
        }
        let now = self.now;
        if self.discover_next.is_some_and(|t| t > now) {
            return None;
        }
        let Some(index) = self
            .registry
            .iter()
            .position(|s| s.discover_at().is_some_and(|t| t <= now))
        else {
            // Not reached while `discover_next` is exact; refreshed so it is again.
            self.refresh_discover_next();
            return None;
        };
        let service = self.registry.at_mut(index)?;
        service.set_announced();
        self.discover_pending = self.discover_pending.saturating_sub(1);
        let sid = service.sid;
        self.refresh_discover_next();
        if let Some(service) = self.registry.at(index) {
            self.policy.on_discovered(service);
        }
        Some(sid)
    }

    /// Sets `discover_next` from the registry: a walk over it, done only when a pending
    /// service was announced or removed.
    pub(super) fn refresh_discover_next(&mut self) {
        self.discover_next = self.registry.iter().filter_map(Service::discover_at).min();
    }

    /// Removes every service whose age is over its ttl (spec 5.9).
    pub(super) fn expire_services(&mut self, now: Instant) {
        if self.expiry_hold.is_on() {
            return;
        }
        let ttl = self.ttl();
        while let Some(index) = self.registry.first_expired(now, ttl) {
            if let Some(service) = self.registry.remove_at(index) {
                self.service_removed(now, &service, LostReason::Expired);
            }
        }
    }

    /// Bookkeeping after a service left the registry: its ping entry, its queued sends, its
    /// part in queries, and the `Lost` event (never for a service not yet announced, Q11).
    pub(super) fn service_removed(&mut self, now: Instant, service: &Removed, reason: LostReason) {
        self.ping.remove(service.sid.as_bytes());
        self.outbox.forget(&service.sid, &mut self.payloads);
        self.query_target_lost(now, service);
        if !service.announced {
            self.discover_pending = self.discover_pending.saturating_sub(1);
            // `discover_next` is the earliest due time: only the removal of a service due
            // then can change it (with `large-registry`; the small registries of a firmware
            // keep the smaller code).
            #[cfg(feature = "large-registry")]
            let earliest_removed = self.discover_next == service.discover_at;
            #[cfg(not(feature = "large-registry"))]
            let earliest_removed = true;
            if earliest_removed {
                self.refresh_discover_next();
            }
        } else {
            self.policy.on_lost(&service.sid, reason);
            // Cannot overflow: it holds at most one entry per service the registry held, and
            // the driving contract drains events after every input.
            if self.lost.push((service.sid, reason)).is_err() {
                self.events_dropped = self.events_dropped.saturating_add(1);
                bump(&mut self.stats.events_dropped);
            }
        }
    }

    pub(super) fn props_changed(&mut self, now: Instant) {
        self.refresh_props_text();
        // A heartbeat with props still queued (the join's) will carry the new ones: props are
        // written when the frame is encoded.
        if self.outbox.props_heartbeat_queued() {
            return;
        }
        self.queued_props = true;
        if self.joined() {
            self.heartbeat_at = Some(now);
        }
    }

    pub(super) fn refresh_props_text(&mut self) {
        if props::write_props(&self.props, self.protocols, &mut self.props_text).is_err() {
            self.props_text.clear();
        }
        // Out of line, and only for a node publishing data: its text buffers are not on the
        // stack of every props change.
        #[cfg(feature = "node-data")]
        if self.payloads.pinned().is_some() {
            self.refresh_data_text();
        }
    }

    #[expect(
        clippy::manual_contains,
        reason = "`slice::contains` unrolls its search for integers, larger in flash than this walk"
    )]
    pub(super) fn subscribed(&self, channel: u64) -> bool {
        channel <= 2 || self.config.channels.iter().any(|&c| c == channel)
    }

    pub(super) fn leave(&mut self, now: Instant) {
        if !self.joined() {
            return;
        }
        self.outbox.clear(&mut self.payloads);
        self.queue_disconnect();
        self.finish_all_queries(now);
        while let Some(service) = self.registry.remove_at(self.registry.len().wrapping_sub(1)) {
            self.service_removed(now, &service, LostReason::Left);
        }
        self.phase = Phase::Left;
        self.heartbeat_at = None;
        self.ping_answer_at = None;
        self.expiry_check_at = None;
        self.ping.clear();
    }
}
