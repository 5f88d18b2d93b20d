//! The query table: ids, targets, collected replies, timeouts (spec 5.12, 7.2 Q3).
//!
//! A query's targets are marked in the services themselves (one bit per query slot), so the
//! table costs a few bytes per query whatever the number of targets.

use super::Core;
use super::event_queue::Header;
use super::outbox::{Broadcast, Channel, Direct, DirectBody};
use super::registry::Removed;
use super::send::with_payload_mut;
use crate::error::{QueryError, SendError};
use crate::event::{Event, Payload, QueryEvent, QueryId};
use crate::identity::Sid;
use crate::policy::{Outgoing, Policy, Verdict};
use crate::stats::bump;
use crate::text::{push_byte_chars, push_decimal};
use crate::time::{Instant, millis_ceil};
use crate::wire::{Message, MessageKind};

/// Queries that may run at once (one bit per slot in each service).
pub(crate) const QUERY_SLOTS: usize = 8;

/// One live query.
#[derive(Debug, Clone)]
pub(crate) struct QueryRecord {
    pub(crate) id: QueryId,
    pub(crate) channel: u64,
    pub(crate) deadline: Instant,
    pub(crate) targets: u32,
    pub(crate) answered: u32,
    pub(crate) missing: u32,
    /// [`FREE`](Self::FREE) for a free slot, [`LIVE`](Self::LIVE), then [`ENDED`](Self::ENDED)
    /// (in time) or `ENDED + 1` (timed out) once the query ended: its `Missing` and `Done`
    /// events are being delivered, derived from the services' bits, and the slot is freed
    /// with `Done`. A byte rather than an `Option` around the record, so that the table of an
    /// empty node is all zero bits and costs no tag per slot.
    state: u8,
}

impl QueryRecord {
    const FREE: u8 = 0;
    const LIVE: u8 = 1;
    const ENDED: u8 = 2;

    /// A free slot.
    const EMPTY: Self = Self {
        id: QueryId::EMPTY,
        channel: 0,
        deadline: Instant::ZERO,
        targets: 0,
        answered: 0,
        missing: 0,
        state: Self::FREE,
    };

    /// True until the query ended.
    pub(crate) fn is_live(&self) -> bool {
        self.state == Self::LIVE
    }

    /// `Some(timed_out)` once the query ended.
    pub(crate) fn ended(&self) -> Option<bool> {
        match self.state {
            Self::FREE | Self::LIVE => None,
            Self::ENDED => Some(false),
            _ => Some(true),
        }
    }

    fn end(&mut self, timed_out: bool) {
        self.state = Self::ENDED + u8::from(timed_out);
    }

    fn in_use(&self) -> bool {
        self.state != Self::FREE
    }
}

/// The live queries.
#[derive(Debug)]
pub(crate) struct QueryTable {
    slots: [QueryRecord; QUERY_SLOTS],
    counter: u64,
}

impl QueryTable {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [QueryRecord::EMPTY; QUERY_SLOTS],
            counter: 0,
        }
    }

    /// Frees every slot (the id counter goes on).
    pub(crate) fn clear(&mut self) {
        for slot in 0..QUERY_SLOTS {
            self.release(slot);
        }
    }

    pub(crate) fn get(&self, slot: u8) -> Option<&QueryRecord> {
        self.slots.get(usize::from(slot)).filter(|q| q.in_use())
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut QueryRecord> {
        self.slots.get_mut(slot).filter(|q| q.in_use())
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(|q| !q.in_use())
    }

    fn release(&mut self, slot: usize) {
        if let Some(record) = self.slots.get_mut(slot) {
            record.state = QueryRecord::FREE;
        }
    }

    /// The live (not ended) query with this id.
    fn find_live(&self, id: &[u8]) -> Option<u8> {
        let slot = self.find(id)?;
        self.get(slot).filter(|q| q.is_live()).map(|_| slot)
    }

    fn find(&self, id: &[u8]) -> Option<u8> {
        let index = self
            .slots
            .iter()
            .position(|q| q.in_use() && q.id.as_bytes() == id)?;
        u8::try_from(index).ok()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|q| q.is_live())
            .map(|q| q.deadline)
            .min()
    }
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// Starts a query (spec 5.12 with the fixes of 7.2 Q3 and Q6).
    pub(super) fn start_query(
        &mut self,
        now: Instant,
        request: &super::QueryRequest<'_>,
    ) -> Result<QueryId, QueryError> {
        if !self.joined() {
            return Err(QueryError::Send(self.not_joined()));
        }
        let targets = self
            .registry
            .iter()
            .filter(|s| request.targets.selects(s))
            .count();
        if targets == 0 {
            return Err(QueryError::NoTargets);
        }
        self.check_encodable(request.channel, request.data, request.raw)
            .map_err(|e| QueryError::Send(SendError::Encode(e)))?;
        let id = self.query_id(request.id)?;
        let Some(slot) = self.queries.free_slot() else {
            bump(&mut self.stats.queries_rejected);
            return Err(QueryError::Full);
        };
        let bit = u8::try_from(slot).map_err(|_| QueryError::Full)?;
        let (data, raw) = (request.data.or(Some(b"")), request.raw);
        if !Payload::<DATA>::fits(data, raw) {
            return Err(QueryError::Send(SendError::PayloadTooLarge));
        }
        // The payload is built in the pool's free slot, which stays free until it is taken
        // below: a full pool is reported before the hook is asked.
        self.make_payload_room();
        let Some((payload_slot, payload)) = self.payloads.vacant() else {
            bump(&mut self.stats.sends_rejected);
            return Err(QueryError::Send(SendError::Full));
        };
        payload.refill(data, raw);
        let verdict = with_payload_mut(payload, |p| {
            self.policy.on_send(&mut Outgoing {
                kind: MessageKind::Query,
                channel: request.channel,
                broadcast: request.broadcast,
                payload: p,
            })
        });
        if verdict == Verdict::Reject {
            return Err(QueryError::Send(SendError::Rejected));
        }
        let copies = if request.broadcast { 1 } else { targets };
        if !request.broadcast && self.outbox.direct_room() < targets {
            bump(&mut self.stats.sends_rejected);
            return Err(QueryError::Send(SendError::Full));
        }
        self.payloads
            .commit(payload_slot, u32::try_from(copies).unwrap_or(u32::MAX));
        let timeout = millis_ceil(request.timeout.unwrap_or(self.config.query_timeout));
        let record = QueryRecord {
            id,
            channel: request.channel,
            deadline: now.saturating_add_millis(timeout),
            targets: u32::try_from(targets).unwrap_or(u32::MAX),
            answered: 0,
            missing: 0,
            state: QueryRecord::LIVE,
        };
        let deadline = record.deadline;
        if let Some(entry) = self.queries.slots.get_mut(slot) {
            *entry = record;
        }
        self.retry_begin(now, bit, payload_slot, deadline);
        for service in self.registry.iter_mut() {
            service.query_answered &= !(1 << bit);
            if request.targets.selects(service) {
                service.query_targets |= 1 << bit;
            } else {
                service.query_targets &= !(1 << bit);
            }
        }
        if request.broadcast {
            let queued = self.outbox.push_broadcast(Broadcast::Query {
                slot: bit,
                payload: payload_slot,
            });
            if !queued {
                self.payloads.release(payload_slot);
                self.abandon_query(bit);
                bump(&mut self.stats.sends_rejected);
                return Err(QueryError::Send(SendError::Full));
            }
        } else {
            let allow = self.config.multicast_fallback;
            // By index rather than through a collected list of sids, which for a
            // server-sized registry is tens of KiB copied per query.
            for index in 0..self.registry.len() {
                let Some(sid) = self
                    .registry
                    .at(index)
                    .filter(|s| s.query_targets & (1 << bit) != 0)
                    .map(|s| s.sid)
                else {
                    continue;
                };
                let mut direct = Direct::new(sid, DirectBody::Query { slot: bit }, allow);
                direct.channel = Channel(request.channel);
                direct.payload = Some(payload_slot);
                direct.order = request.protocols;
                let _ = self.queue_direct(direct);
            }
        }
        Ok(id)
    }

    /// The caller's id (refused when live, Q3) or a fresh `q<s0><s2>#<slast>.<n>`.
    fn query_id(&mut self, requested: Option<&str>) -> Result<QueryId, QueryError> {
        if let Some(id) = requested {
            let id = QueryId::new(id.as_bytes())
                .filter(|i| !i.is_empty())
                .ok_or(QueryError::BadId)?;
            if self.queries.find(id.as_bytes()).is_some() {
                return Err(QueryError::DuplicateId);
            }
            return Ok(id);
        }
        loop {
            self.queries.counter = self.queries.counter.wrapping_add(1);
            let sid = self.sid.as_bytes();
            let pick = |i: usize| sid.get(i).copied().unwrap_or(b'x');
            let last = sid.len().saturating_sub(1);
            // `q<s0><s2>#<slast>.<n>`: at most 6 + 20 bytes for an ASCII sid, each sid byte as
            // the char of its value (12 + 20 bytes at most).
            let mut text = heapless::String::<32>::new();
            let _ = push_byte_chars(&mut text, &[b'q', pick(0), pick(2), b'#', pick(last), b'.']);
            let _ = push_decimal(&mut text, self.queries.counter);
            if let Some(id) = QueryId::new(text.as_bytes())
                && self.queries.find(id.as_bytes()).is_none()
            {
                return Ok(id);
            }
        }
    }

    /// A response (type 5) from `from`, whose service is at `index` in the registry (found
    /// once, by the receive pipeline): hands it to the live query its `ruid` names.
    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        index: usize,
        from: &Sid,
        msg: &Message<'_>,
    ) {
        let Some(ruid) = msg.ruid else {
            return;
        };
        let Some(slot) = self.queries.find_live(ruid.as_bytes()) else {
            return;
        };
        let bit = 1u8 << slot;
        let Some(service) = self.registry.at_mut(index) else {
            return;
        };
        // Only targets answer, and only once (spec 7.3: a second response is ignored).
        if service.query_targets & bit == 0 || service.query_answered & bit != 0 {
            return;
        }
        service.query_answered |= bit;
        let Some(record) = self.queries.get_mut(usize::from(slot)) else {
            return;
        };
        record.answered = record.answered.saturating_add(1);
        let id = record.id;
        if let Some(error) = msg.error {
            let event = Header::Error { id, sid: *from };
            self.push_event_filled(event, Some(error.as_bytes()), None);
        } else {
            let event = Header::Response { id, sid: *from };
            let data = msg.data.map(|d| d.as_bytes());
            if !Payload::<DATA>::fits(data, msg.raw) {
                bump(&mut self.stats.oversized);
            }
            self.push_event_filled(event, data, msg.raw);
        }
        self.finish_query_if_complete(now, slot);
    }

    fn finish_query_if_complete(&mut self, now: Instant, slot: u8) {
        let complete = self
            .queries
            .get(slot)
            .is_some_and(|q| q.is_live() && q.answered.saturating_add(q.missing) >= q.targets);
        if complete {
            self.finish_query(now, slot, false);
        }
    }

    /// Ends query `slot`. Its `Missing` events (one per target that did not answer) and its
    /// `Done` are derived from the services' bits when the application polls events, so a
    /// query with thousands of silent targets never overflows the event queue.
    fn finish_query(&mut self, now: Instant, slot: u8, timed_out: bool) {
        let _ = now;
        let Some(record) = self
            .queries
            .get_mut(usize::from(slot))
            .filter(|q| q.is_live())
        else {
            return;
        };
        record.end(timed_out);
        self.outbox.forget_query(slot, &mut self.payloads);
        self.retry_end(slot);
    }

    /// The next event of an ended query: a `Missing` per silent target, then `Done`, which
    /// frees the slot; with no query ended, the count of dropped events, if any. Built as a
    /// whole [`Event`] where it is returned (a `QueryEvent` is as large as a payload, and
    /// wrapping one would move it).
    pub(super) fn next_query_event(&mut self) -> Option<Event<DATA>> {
        for slot in 0..QUERY_SLOTS {
            let Some(record) = self.queries.get_mut(slot) else {
                continue;
            };
            let Some(timed_out) = record.ended() else {
                continue;
            };
            let bit = 1u8 << slot;
            let silent = self
                .registry
                .iter_mut()
                .find(|s| s.query_targets & bit != 0 && s.query_answered & bit == 0);
            if let Some(service) = silent {
                service.query_targets &= !bit;
                record.missing = record.missing.saturating_add(1);
                return Some(Event::Query(QueryEvent::Missing {
                    id: record.id,
                    sid: service.sid,
                }));
            }
            let (id, answered, missing) = (record.id, record.answered, record.missing);
            self.free_query_slot(slot);
            return Some(Event::Query(QueryEvent::Done {
                id,
                answered,
                missing,
                timed_out,
            }));
        }
        self.take_dropped()
    }

    /// Frees a slot whose query never started.
    fn abandon_query(&mut self, slot: u8) {
        self.retry_end(slot);
        self.free_query_slot(usize::from(slot));
    }

    /// Frees query slot `slot` and takes its bit off every service.
    fn free_query_slot(&mut self, slot: usize) {
        let bit = 1u8 << slot;
        self.queries.release(slot);
        for service in self.registry.iter_mut() {
            service.query_targets &= !bit;
            service.query_answered &= !bit;
        }
    }

    /// Ends the queries whose timeout passed.
    pub(super) fn expire_queries(&mut self, now: Instant) {
        for slot in 0..QUERY_SLOTS {
            let Ok(slot) = u8::try_from(slot) else { break };
            let due = self
                .queries
                .get(slot)
                .is_some_and(|q| q.is_live() && q.deadline <= now);
            if due {
                self.finish_query(now, slot, true);
            }
        }
    }

    /// Ends the query `id` early; false when no live query has it.
    pub(super) fn finish_query_by_id(&mut self, now: Instant, id: &[u8]) -> bool {
        match self.queries.find_live(id) {
            Some(slot) => {
                self.finish_query(now, slot, false);
                true
            }
            None => false,
        }
    }

    pub(super) fn finish_all_queries(&mut self, now: Instant) {
        for slot in 0..QUERY_SLOTS {
            if let Ok(slot) = u8::try_from(slot) {
                self.finish_query(now, slot, false);
            }
        }
    }

    /// A target left the registry: it counts as missing for every query it had not answered.
    pub(super) fn query_target_lost(&mut self, now: Instant, service: &Removed) {
        for slot in 0..QUERY_SLOTS {
            let Ok(slot) = u8::try_from(slot) else { break };
            let bit = 1u8 << slot;
            if service.query_targets & bit == 0 || service.query_answered & bit != 0 {
                continue;
            }
            let Some(record) = self.queries.get_mut(usize::from(slot)) else {
                continue;
            };
            record.missing = record.missing.saturating_add(1);
            // An ended query counts the target as missing in its `Done`; a live one reports
            // it now, as the service record is gone.
            if record.is_live() {
                let id = record.id;
                self.push_event(Event::Query(QueryEvent::Missing {
                    id,
                    sid: service.sid,
                }));
                self.finish_query_if_complete(now, slot);
            }
        }
    }
}
