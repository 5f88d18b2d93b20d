//! The node's queue of events: a ring of slots that keep their events after they are read,
//! so that a new event carrying a payload is written into a slot's payload in place.
//!
//! An [`Event`] holds its payload inline (up to `DATA` bytes). Built aside and moved into a
//! queue, every event would cost a fill and a copy of all `DATA` bytes, however few it uses.
//! Here an event with a payload takes a slot whose event is of the same kind: its fields are
//! overwritten and only the payload's bytes are written. A slot holding another kind is
//! rewritten whole, once.

use crate::event::{Event, Payload, QueryEvent, QueryId, ReplyToken, Ruid};
use crate::identity::Sid;

/// The fields of an event that carries a payload, without the payload.
#[derive(Clone, Copy)]
pub(super) enum Header {
    /// [`Event::Message`].
    Message {
        sid: Sid,
        channel: u64,
        ruid: Option<Ruid>,
    },
    /// [`Event::QueryReceived`].
    QueryReceived {
        sid: Sid,
        channel: u64,
        ruid: Option<Ruid>,
    },
    /// [`Event::QueryHeld`].
    QueryHeld {
        token: ReplyToken,
        sid: Sid,
        channel: u64,
        ruid: Option<Ruid>,
    },
    /// [`QueryEvent::Response`].
    Response { id: QueryId, sid: Sid },
    /// [`QueryEvent::Error`].
    Error { id: QueryId, sid: Sid },
}

impl Header {
    /// The whole event, with an empty payload.
    #[inline(never)]
    fn into_event<const DATA: usize>(self) -> Event<DATA> {
        let payload = Payload::new_empty();
        match self {
            Self::Message { sid, channel, ruid } => Event::Message {
                sid,
                channel,
                ruid,
                payload,
            },
            Self::QueryReceived { sid, channel, ruid } => Event::QueryReceived {
                sid,
                channel,
                ruid,
                payload,
            },
            Self::QueryHeld {
                token,
                sid,
                channel,
                ruid,
            } => Event::QueryHeld {
                token,
                sid,
                channel,
                ruid,
                payload,
            },
            Self::Response { id, sid } => Event::Query(QueryEvent::Response { id, sid, payload }),
            Self::Error { id, sid } => Event::Query(QueryEvent::Error {
                id,
                sid,
                error: payload,
            }),
        }
    }
}

/// A slot of the queue: empty until its first event, then keeping its last one.
///
/// `repr(u8)` puts the variant in a byte of its own, zero for `Empty`, so that an empty
/// queue is all zero bits (a node in a `static` starts in `.bss`, not `.data`).
#[repr(u8)]
enum Slot<const DATA: usize> {
    Empty,
    Full(Event<DATA>),
}

/// At most `N` events, first in, first out.
pub(super) struct EventQueue<const DATA: usize, const N: usize> {
    slots: [Slot<DATA>; N],
    front: usize,
    len: usize,
}

impl<const DATA: usize, const N: usize> EventQueue<DATA, N> {
    /// Whether a slot is reused for an event of its kind: for payloads above 512 bytes. Up to
    /// 512 (the default, and the firmware's), rewriting the slot whole costs a copy of a few
    /// hundred bytes, less than the code of the reuse costs a firmware's flash budget.
    const REUSES_SLOTS: bool = DATA > 512;

    /// An empty queue.
    pub(super) const fn new() -> Self {
        Self {
            slots: [const { Slot::Empty }; N],
            front: 0,
            len: 0,
        }
    }

    /// True when no event is queued.
    pub(super) const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no slot is free.
    pub(super) const fn is_full(&self) -> bool {
        self.len == N
    }

    /// Removes every event (their slots keep them).
    pub(super) fn clear(&mut self) {
        self.front = 0;
        self.len = 0;
    }

    /// The slot behind the last event, when one is free.
    fn free_slot(&mut self) -> Option<&mut Slot<DATA>> {
        if self.is_full() {
            return None;
        }
        let index = (self.front + self.len) % N;
        self.len += 1;
        self.slots.get_mut(index)
    }

    /// Queues `event`; gives it back when the queue is full.
    pub(super) fn push(&mut self, event: Event<DATA>) -> Result<(), Event<DATA>> {
        match self.free_slot() {
            Some(slot) => {
                *slot = Slot::Full(event);
                Ok(())
            }
            None => Err(event),
        }
    }

    /// Queues the event `header` describes, with `data` and `raw` written into its payload
    /// in its slot (left empty when they do not fit in `DATA` bytes). False when the queue is
    /// full.
    pub(super) fn push_filled(
        &mut self,
        header: Header,
        data: Option<&[u8]>,
        raw: Option<&[u8]>,
    ) -> bool {
        let Some(slot) = self.free_slot() else {
            return false;
        };
        let payload = match (slot, header) {
            (
                Slot::Full(Event::Message {
                    sid,
                    channel,
                    ruid,
                    payload,
                }),
                Header::Message {
                    sid: new_sid,
                    channel: new_channel,
                    ruid: new_ruid,
                },
            )
            | (
                Slot::Full(Event::QueryReceived {
                    sid,
                    channel,
                    ruid,
                    payload,
                }),
                Header::QueryReceived {
                    sid: new_sid,
                    channel: new_channel,
                    ruid: new_ruid,
                },
            ) if Self::REUSES_SLOTS => {
                (*sid, *channel, *ruid) = (new_sid, new_channel, new_ruid);
                payload
            }
            (
                Slot::Full(Event::Query(QueryEvent::Response { id, sid, payload })),
                Header::Response {
                    id: new_id,
                    sid: new_sid,
                },
            ) if Self::REUSES_SLOTS => {
                (*id, *sid) = (new_id, new_sid);
                payload
            }
            (slot, header) => {
                *slot = Slot::Full(header.into_event());
                match slot {
                    Slot::Full(event) => match event.payload_mut() {
                        Some(payload) => payload,
                        None => return true,
                    },
                    Slot::Empty => return true,
                }
            }
        };
        payload.refill(data, raw);
        true
    }

    /// The first event, to read where it lies.
    pub(super) fn front(&self) -> Option<&Event<DATA>> {
        if self.is_empty() {
            return None;
        }
        match self.slots.get(self.front)? {
            Slot::Full(event) => Some(event),
            Slot::Empty => None,
        }
    }

    /// Removes the first event; its slot keeps it, for the next event of its kind.
    pub(super) fn discard_front(&mut self) {
        if !self.is_empty() {
            self.front = (self.front + 1) % N;
            self.len -= 1;
        }
    }

    /// Removes the first event and returns it, emptying its slot.
    pub(super) fn pop(&mut self) -> Option<Event<DATA>> {
        if self.is_empty() {
            return None;
        }
        let front = self.front;
        self.discard_front();
        match core::mem::replace(self.slots.get_mut(front)?, Slot::Empty) {
            Slot::Full(event) => Some(event),
            Slot::Empty => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{EventQueue, Header};
    use crate::event::{Event, Payload, QueryEvent, QueryId, Ruid};
    use crate::identity::Sid;

    /// Above 512 bytes: slots are reused for events of their kind.
    const BIG: usize = 1024;

    fn sid(name: &str) -> Sid {
        Sid::new(name.as_bytes()).unwrap()
    }

    fn message(name: &str, channel: u64) -> Header {
        Header::Message {
            sid: sid(name),
            channel,
            ruid: Ruid::new(b"r1"),
        }
    }

    fn payload(data: Option<&[u8]>, raw: Option<&[u8]>) -> Payload<BIG> {
        Payload::new(data, raw).unwrap()
    }

    #[test]
    fn events_leave_in_order_and_a_full_queue_refuses() {
        let mut queue = EventQueue::<BIG, 2>::new();
        assert!(queue.push_filled(message("a", 1), Some(b"one"), None));
        assert!(queue.push_filled(message("b", 2), None, Some(b"\x00\x01")));
        assert!(queue.is_full());
        assert!(!queue.push_filled(message("c", 3), Some(b"three"), None));
        assert_eq!(
            queue.push(Event::TagsChanged { sid: sid("c") }),
            Err(Event::TagsChanged { sid: sid("c") })
        );
        let first = queue.pop().unwrap();
        assert_eq!(
            first,
            Event::Message {
                sid: sid("a"),
                channel: 1,
                ruid: Ruid::new(b"r1"),
                payload: payload(Some(b"one"), None),
            }
        );
        let Some(Event::Message {
            sid: from,
            payload: second,
            ..
        }) = queue.front()
        else {
            panic!("a message is next");
        };
        assert_eq!(
            (*from, second),
            (sid("b"), &payload(None, Some(b"\x00\x01")))
        );
        queue.discard_front();
        assert!(queue.is_empty());
        assert_eq!(queue.front(), None);
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn a_slot_reused_by_another_kind_holds_only_the_new_event() {
        let mut queue = EventQueue::<BIG, 1>::new();
        let id = QueryId::new(b"q7").unwrap();
        for round in 0..3u64 {
            assert!(queue.push_filled(
                message("a", round),
                Some(b"long message text"),
                Some(b"raw")
            ));
            queue.discard_front();
            let response = Header::Response { id, sid: sid("b") };
            assert!(queue.push_filled(response, Some(b"ok"), None));
            assert_eq!(
                queue.pop(),
                Some(Event::Query(QueryEvent::Response {
                    id,
                    sid: sid("b"),
                    payload: payload(Some(b"ok"), None)
                }))
            );
            let error = Header::Error { id, sid: sid("c") };
            assert!(queue.push_filled(error, Some(b"refused"), None));
            assert_eq!(
                queue.pop(),
                Some(Event::Query(QueryEvent::Error {
                    id,
                    sid: sid("c"),
                    error: payload(Some(b"refused"), None)
                }))
            );
            assert_eq!(queue.push(Event::TagsChanged { sid: sid("d") }), Ok(()));
            assert_eq!(queue.pop(), Some(Event::TagsChanged { sid: sid("d") }));
        }
    }

    #[test]
    fn a_reused_slot_of_the_same_kind_keeps_nothing_of_the_last_event() {
        let mut queue = EventQueue::<BIG, 1>::new();
        let held = |channel| Header::QueryHeld {
            token: crate::event::ReplyToken::from_u32(channel as u32),
            sid: sid("a"),
            channel,
            ruid: None,
        };
        assert!(queue.push_filled(held(1), Some(b"first, longer"), Some(b"raw")));
        queue.discard_front();
        assert!(queue.push_filled(held(2), None, None));
        assert_eq!(
            queue.pop(),
            Some(Event::QueryHeld {
                token: crate::event::ReplyToken::from_u32(2),
                sid: sid("a"),
                channel: 2,
                ruid: None,
                payload: Payload::default(),
            })
        );
    }

    #[test]
    fn a_payload_too_large_leaves_the_event_empty() {
        let mut queue = EventQueue::<BIG, 2>::new();
        let received = Header::QueryReceived {
            sid: sid("a"),
            channel: 5,
            ruid: None,
        };
        assert!(queue.push_filled(received, Some(b"fits"), None));
        queue.discard_front();
        assert!(queue.push_filled(received, Some(&[b'x'; 1000]), Some(&[0; 25])));
        assert_eq!(
            queue.pop(),
            Some(Event::QueryReceived {
                sid: sid("a"),
                channel: 5,
                ruid: None,
                payload: Payload::default()
            })
        );
    }

    #[test]
    fn the_ring_wraps_and_clear_empties_it() {
        let mut queue = EventQueue::<BIG, 3>::new();
        for round in 0..10u64 {
            assert!(queue.push_filled(message("a", round), Some(b"x"), None));
            assert_eq!(queue.push(Event::TagsChanged { sid: sid("b") }), Ok(()));
            assert!(
                matches!(queue.pop(), Some(Event::Message { channel, .. }) if channel == round)
            );
            assert_eq!(queue.pop(), Some(Event::TagsChanged { sid: sid("b") }));
        }
        assert_eq!(queue.push(Event::TagsChanged { sid: sid("b") }), Ok(()));
        queue.clear();
        assert!(queue.is_empty());
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn small_payloads_rewrite_their_slots_with_the_same_events() {
        let mut queue = EventQueue::<64, 1>::new();
        for round in 0..3u64 {
            assert!(queue.push_filled(message("a", round), Some(b"one"), Some(b"raw")));
            assert_eq!(
                queue.pop(),
                Some(Event::Message {
                    sid: sid("a"),
                    channel: round,
                    ruid: Ruid::new(b"r1"),
                    payload: Payload::new(Some(b"one"), Some(b"raw")).unwrap(),
                })
            );
            assert!(queue.push_filled(message("b", round), None, None));
            let Some(Event::Message { payload, .. }) = queue.front() else {
                panic!("a message is next");
            };
            assert!(payload.is_empty() && payload.data().is_none() && payload.raw().is_none());
            queue.discard_front();
        }
    }
}
