//! Query retransmission ([`Config::query_retry`](crate::Config::query_retry)).
//!
//! A query goes to each target once over its best protocol (spec 5.12), normally TCP. Under
//! heavy loss TCP delivers late rather than never: a lost SYN costs a second, a lost segment
//! at least 200 ms, doubling with each loss in a row. While a query is live and some targets
//! have not answered, the node therefore sends it again every `query_retry`, by multicast
//! filtered to each silent target: byte for byte the frame of the reference's service-level
//! query (`filter=[target] sid hid type=4 channel protocols ruid data keepalive=1`, spec 7.3),
//! which a reference node answers by multicast like any query. The first answer of a target
//! counts and later copies are ignored (spec 7.3); this project's answerers answer a copy from
//! memory without asking their policy again ([`answered`](super::answered)).
//!
//! The query keeps a reference on its payload while it may be retransmitted; under payload
//! pressure the node gives it up ([`hold`](super::hold)) and the query is not retransmitted
//! again.

use super::Core;
use super::hold::LOSS_RECOVERY;
use super::outbox::{Channel, Direct, DirectBody};
use super::query::QUERY_SLOTS;
use crate::policy::Policy;
use crate::protocol::{Protocol, ProtocolList};
use crate::stats::bump;
use crate::time::{Instant, millis_ceil};

/// The retransmission state of one query slot.
#[derive(Debug, Clone, Copy)]
struct Retry {
    /// The query's payload slot, referenced while retransmissions may follow.
    payload: Option<u8>,
    /// When the silent targets are asked again.
    next_at: Option<Instant>,
}

impl Retry {
    const IDLE: Self = Self {
        payload: None,
        next_at: None,
    };
}

/// Slots of the retransmission table: one per query slot, none without the feature
/// `loss-recovery` (the node then carries no table; every lookup finds no slot).
const RETRY_SLOTS: usize = if LOSS_RECOVERY { QUERY_SLOTS } else { 0 };

/// Per query slot: when to retransmit, and the payload to send.
#[derive(Debug)]
pub(crate) struct RetryTable {
    slots: [Retry; RETRY_SLOTS],
}

impl RetryTable {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [Retry::IDLE; RETRY_SLOTS],
        }
    }

    /// The earliest retransmission due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|r| r.next_at).min()
    }

    /// Forgets every slot without releasing payloads (the pool is cleared with it).
    pub(crate) fn clear(&mut self) {
        self.slots = [Retry::IDLE; RETRY_SLOTS];
    }
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// Query `slot` just started with `payload`: its first retransmission is due one
    /// interval from now, when retransmission is on and the query lasts that long.
    pub(super) fn retry_begin(&mut self, now: Instant, slot: u8, payload: u8, deadline: Instant) {
        if !LOSS_RECOVERY {
            return;
        }
        let Some(interval) = self.config.query_retry.map(millis_ceil) else {
            return;
        };
        let next_at = now.saturating_add_millis(interval.max(1));
        if next_at >= deadline || !self.payloads.add_refs(payload, 1) {
            return;
        }
        if let Some(retry) = self.retries.slots.get_mut(usize::from(slot)) {
            *retry = Retry {
                payload: Some(payload),
                next_at: Some(next_at),
            };
        }
    }

    /// Query `slot` ended: no more retransmissions, its payload released.
    pub(super) fn retry_end(&mut self, slot: u8) {
        if !LOSS_RECOVERY {
            return;
        }
        if let Some(retry) = self.retries.slots.get_mut(usize::from(slot)) {
            if let Some(payload) = retry.payload {
                self.payloads.release(payload);
            }
            *retry = Retry::IDLE;
        }
    }

    /// Gives up the payload of the query that retransmits next, to make room in the pool;
    /// false when no query holds one.
    pub(super) fn release_retry_hold(&mut self) -> bool {
        if !LOSS_RECOVERY {
            return false;
        }
        let next = self
            .retries
            .slots
            .iter()
            .enumerate()
            .filter(|(_, r)| r.payload.is_some())
            .min_by_key(|(_, r)| r.next_at)
            .map(|(slot, _)| slot);
        match next.and_then(|slot| u8::try_from(slot).ok()) {
            Some(slot) => {
                self.retry_end(slot);
                true
            }
            None => false,
        }
    }

    /// Sends the due queries again to their silent targets, by multicast filtered to each.
    pub(super) fn retry_queries(&mut self, now: Instant) {
        if !LOSS_RECOVERY {
            return;
        }
        let interval = self.config.query_retry.map_or(1, millis_ceil).max(1);
        for slot in 0..QUERY_SLOTS {
            let Some(retry) = self.retries.slots.get(slot).copied() else {
                continue;
            };
            let (Some(payload), Some(at)) = (retry.payload, retry.next_at) else {
                continue;
            };
            if at > now {
                continue;
            }
            let Ok(bit) = u8::try_from(slot) else {
                continue;
            };
            let Some(record) = self.queries.get(bit).filter(|q| q.is_live()) else {
                self.retry_end(bit);
                continue;
            };
            let (channel, deadline) = (record.channel, record.deadline);
            self.resend_query(bit, channel, payload);
            let next_at = now.saturating_add_millis(interval);
            if next_at >= deadline {
                // The last one: the payload goes back to the pool (the copies just queued
                // hold their own references).
                self.retry_end(bit);
            } else if let Some(r) = self.retries.slots.get_mut(slot) {
                r.next_at = Some(next_at);
            }
        }
    }

    /// Queues query `slot` by multicast to each target that has not answered and has no copy
    /// still waiting in the queue.
    fn resend_query(&mut self, slot: u8, channel: u64, payload: u8) {
        let bit = 1u8 << slot;
        let body = DirectBody::Query { slot };
        for index in 0..self.registry.len() {
            let Some(sid) = self
                .registry
                .at(index)
                .filter(|s| s.query_targets & bit != 0 && s.query_answered & bit == 0)
                .map(|s| s.sid)
            else {
                continue;
            };
            let waiting = self
                .outbox
                .directs
                .iter()
                .any(|d| d.to == sid && d.body == body && d.in_flight().is_none());
            if waiting || !self.payloads.add_refs(payload, 1) {
                continue;
            }
            let mut direct = Direct::new(sid, body, true);
            direct.channel = Channel(channel);
            direct.payload = Some(payload);
            direct.order = Some(ProtocolList::new(&[Protocol::Multicast]));
            if self.queue_direct(direct) {
                bump(&mut self.stats.queries_retried);
            }
        }
    }
}
