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

/// At most `N` events, first in, first out.
pub(super) struct EventQueue<const DATA: usize, const N: usize> {
    slots: [Event<DATA>; N],
    front: usize,
    len: usize,
}

impl<const DATA: usize, const N: usize> EventQueue<DATA, N> {
    /// An empty queue.
    pub(super) const fn new() -> Self {
        Self {
            slots: [const { Event::Dropped { count: 0 } }; N],
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
    fn free_slot(&mut self) -> Option<&mut Event<DATA>> {
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
                *slot = event;
                Ok(())
            }
            None => Err(event),
        }
    }

    /// Queues the event `header` describes, with `data` and `raw` written into its payload
    /// in its slot. `None` when the queue is full; else whether they fit in `DATA` bytes (when
    /// not, the payload is empty).
    pub(super) fn push_filled(
        &mut self,
        header: Header,
        data: Option<&[u8]>,
        raw: Option<&[u8]>,
    ) -> Option<bool> {
        let slot = self.free_slot()?;
        let payload = match (slot, header) {
            (
                Event::Message {
                    sid,
                    channel,
                    ruid,
                    payload,
                },
                Header::Message {
                    sid: new_sid,
                    channel: new_channel,
                    ruid: new_ruid,
                },
            )
            | (
                Event::QueryReceived {
                    sid,
                    channel,
                    ruid,
                    payload,
                },
                Header::QueryReceived {
                    sid: new_sid,
                    channel: new_channel,
                    ruid: new_ruid,
                },
            ) => {
                (*sid, *channel, *ruid) = (new_sid, new_channel, new_ruid);
                payload
            }
            (
                Event::QueryHeld {
                    token,
                    sid,
                    channel,
                    ruid,
                    payload,
                },
                Header::QueryHeld {
                    token: new_token,
                    sid: new_sid,
                    channel: new_channel,
                    ruid: new_ruid,
                },
            ) => {
                (*token, *sid, *channel, *ruid) = (new_token, new_sid, new_channel, new_ruid);
                payload
            }
            (
                Event::Query(QueryEvent::Response { id, sid, payload }),
                Header::Response {
                    id: new_id,
                    sid: new_sid,
                },
            )
            | (
                Event::Query(QueryEvent::Error {
                    id,
                    sid,
                    error: payload,
                }),
                Header::Error {
                    id: new_id,
                    sid: new_sid,
                },
            ) => {
                (*id, *sid) = (new_id, new_sid);
                payload
            }
            (slot, header) => {
                *slot = header.into_event();
                slot.payload_mut()?
            }
        };
        Some(payload.refill(data, raw))
    }

    /// The first event, to read where it lies.
    pub(super) fn front(&self) -> Option<&Event<DATA>> {
        if self.is_empty() {
            return None;
        }
        self.slots.get(self.front)
    }

    /// Removes the first event; its slot keeps it, for the next event of its kind.
    pub(super) fn discard_front(&mut self) {
        if !self.is_empty() {
            self.front = (self.front + 1) % N;
            self.len -= 1;
        }
    }

    /// Removes the first event and returns a copy of it (its payload's bytes only).
    pub(super) fn pop(&mut self) -> Option<Event<DATA>> {
        let event = self.front().cloned();
        self.discard_front();
        event
    }
}
