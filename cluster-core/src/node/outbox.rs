//! The outbound queues: small records of intent ("heartbeat owed", "event to X, protocol 2
//! of 3"), never encoded frames, and the pool of payloads, each stored once and shared by
//! every target of a send. [`send`](super::send) chooses routes and encodes from them.

use crate::compact::compact;
use crate::event::{Payload, Ruid};
use crate::identity::Sid;
use crate::protocol::{ConnSlot, Protocol, ProtocolList, ProtocolSet};
use crate::transmit::SendId;

/// Payloads that may be queued at once (each shared by all targets of one send).
const PAYLOAD_SLOTS: usize = 4;
/// Broadcast frames that may be queued at once.
const BROADCAST_QUEUE: usize = 8;
/// Filtered broadcasts that may be queued at once (one bit per service each).
const BROADCAST_MARKS: u8 = 8;
/// The reference count of a pinned slot (never reached by counting).
const PINNED: u32 = u32::MAX;
/// The most sids one ping names.
pub(crate) const PING_MAX: usize = 16;

/// A reference-counted payload; free while `refs` is 0.
#[derive(Debug)]
struct Slot<const DATA: usize> {
    payload: Payload<DATA>,
    refs: u32,
}

/// Payloads shared by queued sends.
#[derive(Debug)]
pub(crate) struct PayloadPool<const DATA: usize> {
    slots: [Slot<DATA>; PAYLOAD_SLOTS],
}

impl<const DATA: usize> PayloadPool<DATA> {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const {
                Slot {
                    payload: Payload::new_empty(),
                    refs: 0,
                }
            }; PAYLOAD_SLOTS],
        }
    }

    /// Stores `payload` for `refs` users; `None` when every slot is taken.
    #[cfg(any(test, feature = "node-data"))]
    pub(crate) fn alloc(&mut self, payload: Payload<DATA>, refs: u32) -> Option<u8> {
        let (index, slot) = self.vacant()?;
        *slot = payload;
        self.commit(index, refs);
        Some(index)
    }

    /// A free slot and its payload, to be filled where it lies (a payload moved in would be
    /// copied whole, all `DATA` bytes). The slot stays free, and its contents unused, until
    /// [`commit`](Self::commit); `None` when every slot is taken.
    pub(crate) fn vacant(&mut self) -> Option<(u8, &mut Payload<DATA>)> {
        let index = self.slots.iter().position(|s| s.refs == 0)?;
        let slot = self.slots.get_mut(index)?;
        Some((u8::try_from(index).ok()?, &mut slot.payload))
    }

    /// Takes the free slot `index` (from [`vacant`](Self::vacant), filled since) for `refs`
    /// users; a slot in use is left as it is. Out of line: one copy for its callers.
    #[inline(never)]
    pub(crate) fn commit(&mut self, index: u8, refs: u32) {
        if let Some(slot) = self
            .slots
            .get_mut(usize::from(index))
            .filter(|s| s.refs == 0)
        {
            slot.refs = refs;
        }
    }

    #[cfg(feature = "node-data")]
    /// Keeps `payload` in a slot until [`unpin`](Self::unpin) (this node's published data);
    /// `None` when every slot is taken.
    pub(crate) fn pin(&mut self, payload: Payload<DATA>) -> Option<()> {
        self.alloc(payload, PINNED).map(|_| ())
    }

    #[cfg(feature = "node-data")]
    /// The pinned payload.
    pub(crate) fn pinned(&self) -> Option<&Payload<DATA>> {
        self.slots
            .iter()
            .find(|s| s.refs == PINNED)
            .map(|s| &s.payload)
    }

    #[cfg(feature = "node-data")]
    /// The pinned payload, to replace it.
    pub(crate) fn pinned_mut(&mut self) -> Option<&mut Payload<DATA>> {
        self.slots
            .iter_mut()
            .find(|s| s.refs == PINNED)
            .map(|s| &mut s.payload)
    }

    #[cfg(feature = "node-data")]
    /// Frees the pinned slot.
    pub(crate) fn unpin(&mut self) {
        for slot in &mut self.slots {
            if slot.refs == PINNED {
                slot.refs = 0;
            }
        }
    }

    pub(crate) fn get(&self, index: u8) -> Option<&Payload<DATA>> {
        self.slots
            .get(usize::from(index))
            .filter(|s| s.refs > 0)
            .map(|s| &s.payload)
    }

    /// Adds `refs` references to a slot in use; false (nothing changed) when it is free.
    pub(crate) fn add_refs(&mut self, index: u8, refs: u32) -> bool {
        match self
            .slots
            .get_mut(usize::from(index))
            .filter(|s| s.refs > 0)
        {
            Some(slot) => {
                slot.refs = slot.refs.saturating_add(refs);
                true
            }
            None => false,
        }
    }

    /// Drops one reference; the slot is freed with the last.
    #[inline(never)]
    pub(crate) fn release(&mut self, index: u8) {
        if let Some(slot) = self.slots.get_mut(usize::from(index))
            && slot.refs != PINNED
        {
            slot.refs = slot.refs.saturating_sub(1);
        }
    }

    /// Frees every slot.
    pub(crate) fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.refs = 0;
        }
    }

    pub(super) fn free(&self) -> usize {
        self.slots.iter().filter(|s| s.refs == 0).count()
    }
}

/// A frame for the multicast group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Broadcast {
    /// A full heartbeat, carrying props and tags when they were queued.
    Heartbeat { props: bool, tags: bool },
    /// A discovery request to everyone, or, with `mark`, only to the services carrying the
    /// mark (filter first): how a node asks services it learned of from a frame without props
    /// or tags (a periodic heartbeat) for their props and tags.
    Discovery { mark: Option<u8> },
    /// A ping naming the sids in [`Outbox::ping_sids`].
    Ping,
    /// The disconnect sent on leave, with the number of services known when leaving (the
    /// registry is emptied before the frame is encoded).
    Disconnect { known: u64 },
    /// An event, filtered to the services carrying `mark` (or to no one in particular).
    Event {
        channel: u64,
        ruid: Option<Ruid>,
        payload: u8,
        mark: Option<u8>,
    },
    /// A query, filtered to its targets.
    Query { slot: u8, payload: u8 },
}

/// What a direct frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectBody {
    /// A full heartbeat answering a discovery.
    DiscoveryAnswer,
    /// A query response; its payload holds `data`, or the error text when `error`.
    Response { error: bool },
    /// An event.
    Event,
    /// A query of query slot `slot`.
    Query { slot: u8 },
    /// A report of the protocols that failed before this one worked.
    Failed { protocols: ProtocolSet },
}

/// A channel number aligned to 4 bytes, not the `u64`'s 8: a queued send is 80 bytes on
/// 32-bit targets instead of 88.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(Rust, packed(4))]
pub(crate) struct Channel(pub(crate) u64);

/// One service-level send with its failover state (spec 5.13).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Direct {
    pub(crate) to: Sid,
    pub(crate) body: DirectBody,
    pub(crate) channel: Channel,
    pub(crate) ruid: Option<Ruid>,
    pub(crate) keepalive: Option<bool>,
    pub(crate) payload: Option<u8>,
    /// Protocols to try in this order; `None`: the target's advertised order.
    pub(crate) order: Option<ProtocolList>,
    pub(crate) tried: ProtocolSet,
    pub(crate) failed: ProtocolSet,
    pub(crate) allow_multicast: bool,
    /// The connection to answer on (a query response goes back where the query came from).
    pub(crate) conn: ConnSlot,
    /// The id of the frame in flight, if [`sent_via`](Self::sent_via) is set (two fields
    /// rather than an `Option<(SendId, Protocol)>`, whose padding took 3 bytes).
    sent_as: SendId,
    /// The protocol of the frame in flight; `None` while none is.
    sent_via: Option<Protocol>,
}

impl Direct {
    /// A direct send to `to` with nothing tried yet. Out of line: one copy of the record's
    /// set-up for its four callers.
    #[inline(never)]
    pub(crate) fn new(to: Sid, body: DirectBody, allow_multicast: bool) -> Self {
        Self {
            to,
            body,
            channel: Channel(0),
            ruid: None,
            keepalive: None,
            payload: None,
            order: None,
            tried: ProtocolSet::default(),
            failed: ProtocolSet::default(),
            allow_multicast,
            conn: ConnSlot::NONE,
            sent_as: SendId::UNTRACKED,
            sent_via: None,
        }
    }

    /// The frame in flight: its id and protocol.
    pub(crate) fn in_flight(&self) -> Option<(SendId, Protocol)> {
        self.sent_via.map(|via| (self.sent_as, via))
    }

    /// Notes the frame just handed out for it.
    pub(crate) fn set_in_flight(&mut self, id: SendId, via: Protocol) {
        (self.sent_as, self.sent_via) = (id, Some(via));
    }

    /// Takes the frame in flight, leaving none.
    pub(crate) fn take_in_flight(&mut self) -> Option<(SendId, Protocol)> {
        let in_flight = self.in_flight();
        self.sent_via = None;
        in_flight
    }
}

/// Everything queued for sending.
#[derive(Debug)]
pub(crate) struct Outbox<const SERVICES: usize> {
    pub(super) broadcasts: super::slots::Slots<Broadcast, BROADCAST_QUEUE>,
    pub(super) directs: heapless::Vec<Direct, SERVICES>,
    pub(crate) ping_sids: heapless::Vec<Sid, PING_MAX>,
    next_send_id: u32,
    pub(super) marks_in_use: u8,
}

impl<const SERVICES: usize> Outbox<SERVICES> {
    pub(crate) const fn new() -> Self {
        Self {
            broadcasts: super::slots::Slots::new(),
            directs: heapless::Vec::new(),
            ping_sids: heapless::Vec::new(),
            next_send_id: 0,
            marks_in_use: 0,
        }
    }

    /// Queues a broadcast; an identical one already queued absorbs it (heartbeats merge
    /// their props and tags flags). `false` when the queue is full.
    pub(crate) fn push_broadcast(&mut self, broadcast: Broadcast) -> bool {
        if let Broadcast::Heartbeat { props, tags } = broadcast {
            for queued in self.broadcasts.iter_mut() {
                if let Broadcast::Heartbeat { props: p, tags: t } = queued {
                    *p |= props;
                    *t |= tags;
                    return true;
                }
            }
        } else if self
            .broadcasts
            .iter()
            .any(|queued| match (queued, &broadcast) {
                // Only these two are absorbed (compared here, not through `PartialEq`, which
                // would compare every kind).
                (Broadcast::Discovery { mark: None }, Broadcast::Discovery { mark: None }) => true,
                (Broadcast::Disconnect { known: a }, Broadcast::Disconnect { known: b }) => a == b,
                _ => false,
            })
        {
            return true;
        }
        self.broadcasts.push(broadcast).is_ok()
    }

    /// True when a heartbeat carrying props is still queued.
    pub(crate) fn props_heartbeat_queued(&self) -> bool {
        self.broadcasts
            .iter()
            .any(|b| matches!(b, Broadcast::Heartbeat { props: true, .. }))
    }

    pub(crate) fn direct_room(&self) -> usize {
        SERVICES - self.directs.len()
    }

    #[inline(never)]
    pub(crate) fn push_direct(&mut self, direct: Direct) -> bool {
        self.directs.push(direct).is_ok()
    }

    pub(super) fn alloc_mark(&mut self) -> Option<u8> {
        let bit = (0..BROADCAST_MARKS).find(|b| self.marks_in_use & (1 << b) == 0)?;
        self.marks_in_use |= 1 << bit;
        Some(bit)
    }

    pub(super) fn next_send_id(&mut self) -> SendId {
        self.next_send_id = self.next_send_id.wrapping_add(1);
        if SendId(self.next_send_id) == SendId::UNTRACKED {
            self.next_send_id = self.next_send_id.wrapping_add(1);
        }
        SendId(self.next_send_id)
    }

    /// Drops the queued direct sends to `sid`, releasing their payloads.
    pub(crate) fn forget<const DATA: usize>(&mut self, sid: &Sid, pool: &mut PayloadPool<DATA>) {
        self.forget_directs(pool, &|d| d.to == *sid);
    }

    /// Drops the queued direct sends `forgotten` picks, releasing their payloads (one copy
    /// of the walk for every choice).
    fn forget_directs<const DATA: usize>(
        &mut self,
        pool: &mut PayloadPool<DATA>,
        forgotten: &dyn Fn(&Direct) -> bool,
    ) {
        let kept = compact(&mut self.directs, |d| {
            let keep = !forgotten(d);
            if !keep && let Some(p) = d.payload {
                pool.release(p);
            }
            keep
        });
        self.directs.truncate(kept);
    }

    /// Drops every queued frame of query slot `slot`.
    pub(crate) fn forget_query<const DATA: usize>(
        &mut self,
        slot: u8,
        pool: &mut PayloadPool<DATA>,
    ) {
        self.forget_directs(pool, &|d| d.body == DirectBody::Query { slot });
        let mut at = 0;
        while let Some(b) = self.broadcasts.get(at) {
            if let &Broadcast::Query { slot: s, payload } = b
                && s == slot
            {
                pool.release(payload);
                self.broadcasts.remove(at);
            } else {
                at += 1;
            }
        }
    }

    /// Drops everything queued (on leave).
    pub(crate) fn clear<const DATA: usize>(&mut self, pool: &mut PayloadPool<DATA>) {
        pool.clear();
        self.broadcasts.clear();
        self.directs.clear();
        self.ping_sids.clear();
        self.marks_in_use = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(name: &str) -> Sid {
        Sid::new(name.as_bytes()).unwrap()
    }

    fn payload(text: &str) -> Payload<64> {
        Payload::new(Some(text.as_bytes()), None).unwrap()
    }

    #[test]
    fn queued_heartbeats_merge_their_props_and_tags_flags() {
        let mut outbox = Outbox::<4>::new();
        assert!(outbox.push_broadcast(Broadcast::Heartbeat {
            props: false,
            tags: true
        }));
        assert!(!outbox.props_heartbeat_queued());
        assert!(outbox.push_broadcast(Broadcast::Heartbeat {
            props: true,
            tags: false
        }));
        assert_eq!(
            outbox.broadcasts.len(),
            1,
            "one heartbeat absorbs the other"
        );
        assert_eq!(
            outbox.broadcasts.get(0),
            Some(&Broadcast::Heartbeat {
                props: true,
                tags: true
            })
        );
        assert!(outbox.props_heartbeat_queued());
    }

    #[test]
    fn identical_discoveries_and_disconnects_coalesce_but_filtered_ones_do_not() {
        let mut outbox = Outbox::<4>::new();
        for _ in 0..3 {
            assert!(outbox.push_broadcast(Broadcast::Discovery { mark: None }));
            assert!(outbox.push_broadcast(Broadcast::Disconnect { known: 2 }));
        }
        assert_eq!(outbox.broadcasts.len(), 2);
        assert!(outbox.push_broadcast(Broadcast::Discovery { mark: Some(0) }));
        assert!(outbox.push_broadcast(Broadcast::Discovery { mark: Some(0) }));
        assert_eq!(
            outbox.broadcasts.len(),
            4,
            "filtered discoveries are kept apart"
        );
        assert!(outbox.push_broadcast(Broadcast::Disconnect { known: 3 }));
        assert_eq!(outbox.broadcasts.len(), 5, "another count is another frame");
    }

    #[test]
    fn a_full_broadcast_queue_refuses_and_keeps_what_it_holds() {
        let mut outbox = Outbox::<4>::new();
        for _ in 0..BROADCAST_QUEUE {
            assert!(outbox.push_broadcast(Broadcast::Ping));
        }
        assert!(!outbox.push_broadcast(Broadcast::Ping));
        assert_eq!(outbox.broadcasts.len(), BROADCAST_QUEUE);
        // A heartbeat merges only with a queued heartbeat: none is queued, so it is refused.
        assert!(!outbox.push_broadcast(Broadcast::Heartbeat {
            props: true,
            tags: true
        }));
    }

    #[test]
    fn direct_sends_are_bounded_by_the_service_count() {
        let mut outbox = Outbox::<2>::new();
        assert_eq!(outbox.direct_room(), 2);
        assert!(outbox.push_direct(Direct::new(sid("a"), DirectBody::Event, true)));
        assert!(outbox.push_direct(Direct::new(sid("b"), DirectBody::Event, true)));
        assert_eq!(outbox.direct_room(), 0);
        assert!(!outbox.push_direct(Direct::new(sid("c"), DirectBody::Event, true)));
    }

    #[test]
    fn payload_slots_are_shared_and_freed_with_their_last_reference() {
        let mut pool = PayloadPool::<64>::new();
        let first = pool.alloc(payload("one"), 2).unwrap();
        assert_eq!(pool.get(first), Some(&payload("one")));
        for _ in 1..PAYLOAD_SLOTS {
            assert!(pool.alloc(payload("more"), 1).is_some());
        }
        assert_eq!(pool.free(), 0);
        assert_eq!(pool.alloc(payload("none"), 1), None, "every slot is taken");
        pool.release(first);
        assert_eq!(pool.get(first), Some(&payload("one")), "one reference left");
        pool.release(first);
        assert_eq!(pool.get(first), None);
        assert_eq!(pool.free(), 1);
        assert_eq!(pool.alloc(payload("again"), 1), Some(first));
        pool.clear();
        assert_eq!(pool.free(), PAYLOAD_SLOTS);
    }

    #[test]
    fn a_vacant_slot_is_filled_in_place_and_stays_free_until_committed() {
        let mut pool = PayloadPool::<64>::new();
        let (index, slot) = pool.vacant().unwrap();
        assert!(slot.refill(Some(b"built here"), None));
        assert_eq!(pool.free(), PAYLOAD_SLOTS, "not taken before commit");
        assert_eq!(pool.get(index), None);
        let (again, _) = pool.vacant().unwrap();
        assert_eq!(again, index, "an uncommitted slot is offered again");
        pool.commit(index, 2);
        assert_eq!(pool.get(index), Some(&payload("built here")));
        assert_eq!(pool.free(), PAYLOAD_SLOTS - 1);
        pool.commit(index, 7);
        pool.release(index);
        assert!(pool.get(index).is_some(), "a slot in use keeps its count");
        pool.release(index);
        assert_eq!(pool.get(index), None);
        for _ in 0..PAYLOAD_SLOTS {
            let (index, _) = pool.vacant().unwrap();
            pool.commit(index, 1);
        }
        assert!(pool.vacant().is_none(), "every slot is taken");
    }

    #[test]
    fn forgetting_a_service_drops_its_sends_and_releases_their_payloads() {
        let mut pool = PayloadPool::<64>::new();
        let shared = pool.alloc(payload("to both"), 2).unwrap();
        let mut outbox = Outbox::<4>::new();
        for to in ["a", "b"] {
            let mut direct = Direct::new(sid(to), DirectBody::Event, true);
            direct.payload = Some(shared);
            assert!(outbox.push_direct(direct));
        }
        outbox.forget(&sid("a"), &mut pool);
        assert_eq!(outbox.directs.len(), 1);
        assert_eq!(outbox.directs[0].to, sid("b"));
        assert!(pool.get(shared).is_some(), "b still needs it");
        outbox.forget(&sid("b"), &mut pool);
        assert!(outbox.directs.is_empty());
        assert_eq!(pool.get(shared), None);
    }

    #[test]
    fn forgetting_a_query_drops_its_frames_only_and_keeps_the_order_of_the_rest() {
        let mut pool = PayloadPool::<64>::new();
        let query = pool.alloc(payload("q"), 2).unwrap();
        let other = pool.alloc(payload("r"), 2).unwrap();
        let mut outbox = Outbox::<4>::new();
        assert!(outbox.push_broadcast(Broadcast::Ping));
        assert!(outbox.push_broadcast(Broadcast::Query {
            slot: 1,
            payload: query
        }));
        assert!(outbox.push_broadcast(Broadcast::Query {
            slot: 2,
            payload: other
        }));
        assert!(outbox.push_broadcast(Broadcast::Discovery { mark: None }));
        let mut direct = Direct::new(sid("a"), DirectBody::Query { slot: 1 }, true);
        direct.payload = Some(query);
        assert!(outbox.push_direct(direct));
        let mut direct = Direct::new(sid("a"), DirectBody::Query { slot: 2 }, true);
        direct.payload = Some(other);
        assert!(outbox.push_direct(direct));

        outbox.forget_query(1, &mut pool);
        let kept: heapless::Vec<Broadcast, 8> = outbox.broadcasts.iter().cloned().collect();
        assert_eq!(
            kept.as_slice(),
            [
                Broadcast::Ping,
                Broadcast::Query {
                    slot: 2,
                    payload: other
                },
                Broadcast::Discovery { mark: None },
            ]
        );
        assert_eq!(outbox.directs.len(), 1);
        assert_eq!(outbox.directs[0].body, DirectBody::Query { slot: 2 });
        assert_eq!(pool.get(query), None, "both references released");
        assert!(pool.get(other).is_some());
    }

    #[test]
    fn marks_run_out_after_eight_and_clear_frees_everything() {
        let mut pool = PayloadPool::<64>::new();
        let mut outbox = Outbox::<4>::new();
        let marks: heapless::Vec<u8, 8> = (0..BROADCAST_MARKS)
            .map(|_| outbox.alloc_mark().unwrap())
            .collect();
        assert_eq!(marks.as_slice(), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(outbox.alloc_mark(), None);
        let id = pool.alloc(payload("x"), 1).unwrap();
        assert!(outbox.push_broadcast(Broadcast::Ping));
        let mut direct = Direct::new(sid("a"), DirectBody::Event, true);
        direct.payload = Some(id);
        assert!(outbox.push_direct(direct));
        assert!(outbox.ping_sids.push(sid("a")).is_ok());

        outbox.clear(&mut pool);
        assert!(outbox.broadcasts.is_empty());
        assert!(outbox.directs.is_empty());
        assert!(outbox.ping_sids.is_empty());
        assert_eq!(outbox.alloc_mark(), Some(0));
        assert_eq!(pool.free(), PAYLOAD_SLOTS);
    }

    #[test]
    fn send_ids_count_up_from_one_and_wrap() {
        let mut outbox = Outbox::<1>::new();
        assert_eq!(outbox.next_send_id(), SendId(1));
        assert_eq!(outbox.next_send_id(), SendId(2));
        outbox.next_send_id = u32::MAX - 1;
        assert_eq!(outbox.next_send_id(), SendId(0), "UNTRACKED is skipped");
    }
}
