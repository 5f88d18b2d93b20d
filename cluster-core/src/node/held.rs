//! Queries held open: the application answers them later, through a [`ReplyToken`], instead
//! of the [`Policy`] answering on the spot.
//!
//! The table lives in the [`Node`](crate::Node) (its `H` parameter: [`NoHeld`] by default,
//! which takes no memory, or a [`HeldTable`]), outside the core, and the receive pipeline
//! borrows it as a [`Held`] view, so that its size is not a parameter of every part of the
//! node. A held query remembers where its answer goes (the
//! asker, the protocol and connection the query came on, its `ruid` and `keepalive`) and
//! until when: the node's [`query_timeout`](crate::Config::query_timeout) from its arrival,
//! the time a node of this project waits for answers by default (the wire does not carry the
//! asker's timeout).

use heapless::vec::VecView;

use super::Core;
use super::answered::{QueryKey, Recalled};
use super::event_queue::Header;
use super::outbox::{Channel, Direct, DirectBody};
use crate::compact::compact;
use crate::error::AnswerError;
use crate::event::{Payload, ReplyToken, Ruid};
use crate::identity::Sid;
use crate::policy::{PayloadMut, Policy, Reply};
use crate::protocol::{ConnId, ConnSlot, Protocol, ProtocolList};
use crate::stats::{HeldStats, bump};
use crate::time::{Instant, millis_ceil};
use crate::transmit::Source;
use crate::wire::Message;

/// The error text of a query refused because no more queries can be held.
pub(crate) const BUSY: &[u8] = b"busy: too many queries held open";
/// The error text of a held query the application let go unanswered.
pub(crate) const UNANSWERED: &[u8] = b"query dropped unanswered";

/// Where the answer to a query goes: back to the asker, on the protocol (and connection) the
/// query came in on, echoing its `ruid` and `keepalive` (spec 5.11).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseRoute {
    pub(crate) asker: Sid,
    pub(crate) channel: u64,
    pub(crate) ruid: Option<Ruid>,
    pub(crate) keepalive: Option<bool>,
    pub(crate) via: Protocol,
    pub(crate) conn: Option<ConnId>,
}

impl ResponseRoute {
    /// The route back for query `msg` from `asker`, received from `source`.
    pub(crate) fn of(asker: Sid, channel: u64, source: &Source, msg: &Message<'_>) -> Self {
        Self {
            asker,
            channel,
            ruid: msg.ruid.and_then(|r| Ruid::new(r.as_bytes())),
            keepalive: msg.keepalive,
            via: source.via,
            conn: source.conn,
        }
    }
}

/// One query held open.
#[derive(Debug, Clone, Copy)]
struct HeldQuery {
    token: ReplyToken,
    route: ResponseRoute,
    deadline: Instant,
    /// The query as the answer memory knows it ([`answered`](super::answered)): copies of it
    /// (an asker's retransmissions) are dropped while it is held, and its answer is
    /// remembered for the copies that come after.
    query: Option<QueryKey>,
}

/// The table's state apart from its entries.
#[derive(Debug)]
struct HeldState {
    on: bool,
    issued: u32,
    stats: HeldStats,
}

/// Where a [`Node`](crate::Node) keeps the queries it holds open: [`NoHeld`] (the default)
/// or a [`HeldTable`].
pub trait HeldRoom: HeldStore {}

/// No room for held queries: the node's [`Policy`] answers every query on the spot, and
/// [`Node::hold_queries`](crate::Node::hold_queries) returns false. Takes no memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeld;

impl HeldRoom for NoHeld {}

/// Room for `N` queries held open at once (see
/// [`Node::hold_queries`](crate::Node::hold_queries)): about 120 bytes each.
#[derive(Debug)]
pub struct HeldTable<const N: usize> {
    entries: heapless::Vec<HeldQuery, N>,
    state: HeldState,
}

impl<const N: usize> HeldRoom for HeldTable<N> {}

/// The methods of [`HeldRoom`], out of the public surface.
mod store {
    use super::{Held, HeldStats, HeldTable, Instant, NoHeld};

    /// What the node asks of its room for held queries.
    pub trait HeldStore {
        /// Nothing held.
        const EMPTY: Self;
        /// False when there is never room ([`NoHeld`]): the receive path then leaves out
        /// the code that holds a query.
        const HOLDS: bool;
        /// The view the pipeline works on; `None` when there is no room at all.
        fn view(&mut self) -> Option<Held<'_>>;
        /// Turns holding on or off; false (and off) when there is no room at all.
        fn set_on(&mut self, on: bool) -> bool;
        /// The earliest timeout of a held query.
        fn next_deadline(&self) -> Option<Instant>;
        /// Forgets every held query; tokens are never reused.
        fn clear(&mut self);
        /// Queries held now.
        fn len(&self) -> usize;
        /// The counters.
        fn stats(&self) -> HeldStats;
    }

    impl HeldStore for NoHeld {
        const EMPTY: Self = Self;
        const HOLDS: bool = false;
        fn view(&mut self) -> Option<Held<'_>> {
            None
        }
        fn set_on(&mut self, on: bool) -> bool {
            !on
        }
        fn next_deadline(&self) -> Option<Instant> {
            None
        }
        fn clear(&mut self) {}
        fn len(&self) -> usize {
            0
        }
        fn stats(&self) -> HeldStats {
            HeldStats::default()
        }
    }

    impl<const N: usize> HeldStore for HeldTable<N> {
        const EMPTY: Self = Self::new();
        const HOLDS: bool = true;
        fn view(&mut self) -> Option<Held<'_>> {
            Some(Held {
                entries: self.entries.as_mut_view(),
                state: &mut self.state,
            })
        }
        fn set_on(&mut self, on: bool) -> bool {
            self.state.on = on && N > 0;
            self.state.on || !on
        }
        fn next_deadline(&self) -> Option<Instant> {
            self.entries.iter().map(|q| q.deadline).min()
        }
        fn clear(&mut self) {
            self.entries.clear();
        }
        fn len(&self) -> usize {
            self.entries.len()
        }
        fn stats(&self) -> HeldStats {
            self.state.stats
        }
    }
}

pub(crate) use store::HeldStore;

impl<const N: usize> HeldTable<N> {
    /// Empty, holding nothing.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
            state: HeldState {
                on: false,
                issued: 0,
                stats: HeldStats {
                    held: 0,
                    answered: 0,
                    refused: 0,
                    late: 0,
                    dropped: 0,
                    expired: 0,
                    busy: 0,
                },
            },
        }
    }
}

impl<const N: usize> Default for HeldTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The table of held queries, borrowed whatever its capacity.
#[derive(Debug)]
pub struct Held<'a> {
    entries: &'a mut VecView<HeldQuery>,
    state: &'a mut HeldState,
}

impl Held<'_> {
    fn position(&self, token: ReplyToken) -> Option<usize> {
        self.entries.iter().position(|q| q.token == token)
    }

    /// Forgets the held queries whose timeout passed, counting each as expired.
    pub(crate) fn expire(&mut self, now: Instant) {
        let before = self.entries.len();
        let kept = compact(self.entries, |q| q.deadline > now);
        self.entries.truncate(kept);
        let gone = before.saturating_sub(self.entries.len());
        let stats = &mut self.state.stats;
        stats.expired = stats.expired.saturating_add(gone as u64);
    }
}

/// What a held query is answered with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome<'a> {
    /// `data` and `raw`.
    Answer(Option<&'a [u8]>, Option<&'a [u8]>),
    /// An error text (the response's `error` field).
    Refuse(&'a [u8]),
    /// The application let it go: answered with [`UNANSWERED`].
    Drop,
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// A query (type 4) while holding is on: held and reported as [`Event::QueryHeld`], or,
    /// when the table or the event queue is full, refused at once with [`BUSY`]. False when
    /// holding is off: the policy answers. `query` is the query's key, from
    /// [`recall_answer`](Self::recall_answer).
    pub(super) fn hold_query(
        &mut self,
        now: Instant,
        held: &mut Option<Held<'_>>,
        route: ResponseRoute,
        msg: &Message<'_>,
        query: Option<QueryKey>,
    ) -> bool {
        let Some(held) = held.as_mut().filter(|h| h.state.on) else {
            return false;
        };
        if query.is_some() && held.entries.iter().any(|e| e.query == query) {
            // A copy of a query the application has not answered yet: the answer goes to
            // the asker once it is given, and is remembered for later copies.
            bump(&mut self.stats.copies_dropped);
            return true;
        }
        let (data, raw) = (msg.data.map(|d| d.as_bytes()), msg.raw);
        let room = !held.entries.is_full() && !self.events.is_full();
        if !(room && Payload::<DATA>::fits(data, raw)) {
            bump(&mut held.state.stats.busy);
            let _ = self.queue_response(route, Some(BUSY), None, true);
            return true;
        }
        held.state.issued = held.state.issued.wrapping_add(1);
        let token = ReplyToken(held.state.issued);
        let timeout = millis_ceil(self.config.query_timeout);
        let entry = HeldQuery {
            token,
            route,
            deadline: now.saturating_add_millis(timeout),
            query,
        };
        if held.entries.push(entry).is_err() {
            return true; // checked above
        }
        bump(&mut held.state.stats.held);
        let event = Header::QueryHeld {
            token,
            sid: route.asker,
            channel: route.channel,
            ruid: route.ruid,
        };
        self.push_event_filled(event, data, raw);
        true
    }

    /// Answers the held query `token` (see [`Node::answer`](crate::Node::answer)).
    pub(super) fn answer_held(
        &mut self,
        now: Instant,
        held: Option<Held<'_>>,
        token: ReplyToken,
        outcome: Outcome<'_>,
    ) -> Result<(), AnswerError> {
        let held = held.ok_or(AnswerError::Unknown)?;
        let index = held.position(token).ok_or(AnswerError::Unknown)?;
        let entry = *held.entries.get(index).ok_or(AnswerError::Unknown)?;
        if entry.deadline <= now {
            held.entries.swap_remove(index);
            bump(&mut held.state.stats.late);
            return Err(AnswerError::Late);
        }
        let (data, raw, error) = match outcome {
            Outcome::Answer(data, raw) => (data.or(Some(b"")), raw, false),
            Outcome::Refuse(text) => (Some(text), None, true),
            Outcome::Drop => (Some(UNANSWERED), None, true),
        };
        if !Payload::<DATA>::fits(data, raw) {
            return Err(AnswerError::TooLarge);
        }
        let Some(answer) = self.queue_response(entry.route, data, raw, error) else {
            return Err(AnswerError::Full);
        };
        self.remember_answer(now, entry.route.asker.as_bytes(), entry.query, answer);
        held.entries.swap_remove(index);
        let stats = &mut held.state.stats;
        bump(match outcome {
            Outcome::Answer(..) => &mut stats.answered,
            Outcome::Refuse(_) => &mut stats.refused,
            Outcome::Drop => &mut stats.dropped,
        });
        Ok(())
    }

    /// Queues the answer `data` and `raw` (which fit in `DATA` bytes) to the query that
    /// `route` leads back to; the payload's slot and whether it is an error on success (to be
    /// remembered), `None` when the outbox or the payload pool is full (counted in
    /// `sends_rejected`).
    pub(super) fn queue_response(
        &mut self,
        route: ResponseRoute,
        data: Option<&[u8]>,
        raw: Option<&[u8]>,
        error: bool,
    ) -> Option<Recalled> {
        if self.outbox.direct_room() == 0 {
            bump(&mut self.stats.sends_rejected);
            return None;
        }
        self.make_payload_room();
        let Some((slot, payload)) = self.payloads.vacant() else {
            bump(&mut self.stats.sends_rejected);
            return None;
        };
        // Emptied when it does not fit: the callers check an application's answer, and only
        // the fixed error texts can miss, on a node of a few bytes.
        let _ = payload.refill(data, raw);
        self.payloads.commit(slot, 1);
        let answer = Recalled {
            payload: slot,
            error,
        };
        self.queue_recalled(route, answer).then_some(answer)
    }

    /// Asks the policy for its answer to `query` from the service at `index`, built in the
    /// payload pool's free slot (making room by giving up kept payloads), which it takes with
    /// one reference; `None` when there is no such service, or when the pool is full (the
    /// policy still answers, its writes failing, and the answer is dropped;
    /// counted in `sends_rejected`).
    pub(super) fn store_policy_answer(
        &mut self,
        index: usize,
        query: &Message<'_>,
    ) -> Option<Recalled> {
        self.make_payload_room();
        let service = self.registry.at(index)?;
        let vacant = self.payloads.vacant();
        let (slot, payload) = match vacant {
            Some((slot, payload)) => (Some(slot), Some(payload)),
            None => (None, None),
        };
        let error = build_answer(&mut self.policy, service, query, payload);
        let Some(slot) = slot else {
            bump(&mut self.stats.sends_rejected);
            return None;
        };
        self.payloads.commit(slot, 1);
        Some(Recalled {
            payload: slot,
            error,
        })
    }

    /// Queues the answer whose payload `answer` holds a reference on (taken by the send, or
    /// released when the outbox is full) to the query that `route` leads back to.
    pub(super) fn queue_recalled(&mut self, route: ResponseRoute, answer: Recalled) -> bool {
        let mut response = Direct::new(
            route.asker,
            DirectBody::Response {
                error: answer.error,
            },
            route.via == Protocol::Multicast,
        );
        response.channel = Channel(route.channel);
        response.ruid = route.ruid;
        response.keepalive = route.keepalive;
        response.payload = Some(answer.payload);
        response.order = Some(ProtocolList::new(&[route.via]));
        response.conn = ConnSlot::new(route.conn);
        self.queue_direct(response)
    }
}

/// Fills `payload` with the policy's answer to `query` from `from` (an empty `data` unless
/// the policy writes one); true when the policy refused, and `payload` holds the error text.
fn build_answer<P: Policy, const DATA: usize>(
    policy: &mut P,
    from: &crate::service::Service,
    query: &Message<'_>,
    payload: Option<&mut Payload<DATA>>,
) -> bool {
    let Some(payload) = payload else {
        // No room: the policy still answers (its writes fail), and the answer is dropped.
        let mut reply = Reply {
            payload: PayloadMut::received(None, Some(b""), None),
        };
        return policy.answer_query(from, query, &mut reply).is_err();
    };
    payload.refill(Some(b""), None);
    let (bytes, shape) = payload.parts_mut();
    let mut reply = Reply {
        payload: PayloadMut::new(bytes.as_mut_view(), shape),
    };
    match policy.answer_query(from, query, &mut reply) {
        Ok(()) => false,
        Err(refusal) => {
            payload.refill(Some(refusal.text()), None);
            true
        }
    }
}
