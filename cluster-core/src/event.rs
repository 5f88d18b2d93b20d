//! Events: what the node tells the application, drained with
//! [`Node::poll_event`](crate::Node::poll_event).

use crate::identity::{InlineStr, Sid};
use crate::protocol::Protocol;

/// A request id (`ruid`) as received: opaque, at most 32 bytes.
pub type Ruid = InlineStr<32>;

/// The id of one of this node's queries.
pub type QueryId = InlineStr<32>;

/// Names a query this node holds open ([`Event::QueryHeld`]): drawn from a per-node 32-bit
/// counter, so no two queries held at the same time share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyToken(pub(crate) u32);

impl ReplyToken {
    /// The token as a number (for logs and for carrying it across a process boundary).
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The token a number from [`get`](Self::get) stands for.
    #[must_use]
    pub const fn from_u32(value: u32) -> Self {
        Self(value)
    }
}

/// The application part of a frame: `data` and `raw`, copied into one bounded buffer of
/// `DATA` bytes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payload<const DATA: usize> {
    bytes: heapless::Vec<u8, DATA>,
    shape: PayloadShape,
}

/// Where a payload's buffer splits into `data` and `raw`: whether each is present and how
/// long `data` is (`raw` is the rest), in 4 bytes: bit 31 set when `raw` is present, the low
/// 31 bits `data`'s length + 1, or 0 without `data`. (An `Option<usize>` and a `bool` took 12
/// bytes on 32-bit targets: every payload, queued event and pool slot is 8 bytes smaller.)
/// All zero bits is no `data` and no `raw`, as an empty node must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PayloadShape(u32);

impl PayloadShape {
    /// The flag of a present `raw`.
    const RAW: u32 = 1 << 31;
    /// The most bytes a payload may hold, so that `data`'s length + 1 fits in 31 bits.
    pub(crate) const MAX_LEN: usize = (1 << 31) - 2;

    /// No `data`, no `raw`.
    pub(crate) const NONE: Self = Self(0);

    /// `data` of `data_len` bytes (or none) and `raw` present or not. A length above
    /// [`MAX_LEN`](Self::MAX_LEN) cannot occur: payloads are at most `DATA` bytes, which
    /// `Payload` holds to it.
    pub(crate) fn new(data_len: Option<usize>, has_raw: bool) -> Self {
        let mut shape = Self::NONE;
        shape.set_data_len(data_len);
        shape.set_raw(has_raw);
        shape
    }

    /// `data`'s length, when present.
    pub(crate) fn data_len(self) -> Option<usize> {
        match self.0 & !Self::RAW {
            0 => None,
            stored => usize::try_from(stored - 1).ok(),
        }
    }

    /// True when `raw` is present.
    pub(crate) fn has_raw(self) -> bool {
        self.0 & Self::RAW != 0
    }

    /// Sets `data`'s length (`None`: no `data`), keeping the raw flag.
    pub(crate) fn set_data_len(&mut self, data_len: Option<usize>) {
        let stored = data_len
            .and_then(|len| u32::try_from(len.min(Self::MAX_LEN)).ok())
            .map_or(0, |len| len + 1);
        self.0 = (self.0 & Self::RAW) | stored;
    }

    /// Sets whether `raw` is present, keeping `data`.
    pub(crate) fn set_raw(&mut self, has_raw: bool) {
        self.0 = if has_raw {
            self.0 | Self::RAW
        } else {
            self.0 & !Self::RAW
        };
    }
}

impl<const DATA: usize> Payload<DATA> {
    /// No `data`, no `raw` (the default), in `const` contexts.
    pub(crate) const fn new_empty() -> Self {
        const {
            assert!(
                DATA <= PayloadShape::MAX_LEN,
                "a payload holds at most 2^31 - 2 bytes"
            );
        };
        Self {
            bytes: heapless::Vec::new(),
            shape: PayloadShape::NONE,
        }
    }

    /// A payload of `data` and `raw`, or `None` when together they exceed `DATA` bytes.
    #[must_use]
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn new(data: Option<&[u8]>, raw: Option<&[u8]>) -> Option<Self> {
        // On microcontrollers, whose flash is counted: one copy of the code, `refill`'s.
        #[cfg(target_os = "none")]
        {
            let mut payload = Self::new_empty();
            payload.refill(data, raw).then_some(payload)
        }
        // Elsewhere inlined, so that the payload is built where the caller keeps it (built
        // aside, it would be copied whole, all `DATA` bytes).
        #[cfg(not(target_os = "none"))]
        {
            let mut bytes = heapless::Vec::new();
            for part in [data, raw].into_iter().flatten() {
                bytes.extend_from_slice(part).ok()?;
            }
            Some(Self {
                bytes,
                shape: PayloadShape::new(data.map(<[u8]>::len), raw.is_some()),
            })
        }
    }

    /// True when `data` and `raw` together fit in `DATA` bytes.
    pub(crate) fn fits(data: Option<&[u8]>, raw: Option<&[u8]>) -> bool {
        let len = |part: Option<&[u8]>| part.map_or(0, <[u8]>::len);
        len(data).saturating_add(len(raw)) <= DATA
    }

    /// The `data` field, when present (text; peers do not guarantee UTF-8).
    #[must_use]
    pub fn data(&self) -> Option<&[u8]> {
        self.shape.data_len().and_then(|len| self.bytes.get(..len))
    }

    /// The `data` field as text, when present and UTF-8.
    #[must_use]
    pub fn data_str(&self) -> Option<&str> {
        self.data().and_then(|d| core::str::from_utf8(d).ok())
    }

    /// The `raw` field, when present.
    #[must_use]
    pub fn raw(&self) -> Option<&[u8]> {
        if self.shape.has_raw() {
            self.bytes.get(self.shape.data_len().unwrap_or(0)..)
        } else {
            None
        }
    }

    /// Replaces the contents with `data` and `raw`; false (and emptied) when they do not fit.
    pub(crate) fn refill(&mut self, data: Option<&[u8]>, raw: Option<&[u8]>) -> bool {
        self.bytes.clear();
        self.shape = PayloadShape::new(data.map(<[u8]>::len), raw.is_some());
        let fits = [data, raw]
            .into_iter()
            .flatten()
            .all(|part| self.bytes.extend_from_slice(part).is_ok());
        if !fits {
            self.bytes.clear();
            self.shape = PayloadShape::NONE;
        }
        fits
    }

    /// The parts, for a mutable view.
    pub(crate) fn parts_mut(&mut self) -> (&mut heapless::Vec<u8, DATA>, &mut PayloadShape) {
        (&mut self.bytes, &mut self.shape)
    }

    /// Total bytes held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when neither field holds a byte.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl<const DATA: usize> core::fmt::Debug for Payload<DATA> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut s = f.debug_struct("Payload");
        if let Some(data) = self.data() {
            s.field("data", &crate::wire::Str::from_bytes(data));
        }
        if let Some(raw) = self.raw() {
            s.field("raw_len", &raw.len());
        }
        s.finish()
    }
}

impl<const DATA: usize> Event<DATA> {
    /// The payload the event carries (a message's, a query's, a response's), for filling it
    /// where the event lies.
    pub(crate) fn payload_mut(&mut self) -> Option<&mut Payload<DATA>> {
        match self {
            Self::Message { payload, .. }
            | Self::QueryReceived { payload, .. }
            | Self::QueryHeld { payload, .. }
            | Self::Query(QueryEvent::Response { payload, .. }) => Some(payload),
            Self::Query(QueryEvent::Error { error, .. }) => Some(error),
            #[cfg(feature = "node-data")]
            Self::DataChanged { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The payload the event carries, when it carries one.
    #[must_use]
    pub fn payload(&self) -> Option<&Payload<DATA>> {
        match self {
            Self::Message { payload, .. }
            | Self::QueryReceived { payload, .. }
            | Self::QueryHeld { payload, .. }
            | Self::Query(QueryEvent::Response { payload, .. }) => Some(payload),
            Self::Query(QueryEvent::Error { error, .. }) => Some(error),
            #[cfg(feature = "node-data")]
            Self::DataChanged { data, .. } => Some(data),
            _ => None,
        }
    }
}

/// Why a service was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// Not seen for longer than its time to live (possibly reduced by pings).
    Expired,
    /// It sent a disconnect (type 0).
    Disconnected,
    /// This node left, forgetting every service.
    Left,
    /// Still on probation, it made room for a newcomer while the registry (or its share for
    /// newcomers) was full: see [`Node`](crate::Node), "Capacity and floods".
    Evicted,
}

impl LostReason {
    /// A lowercase name: `expired`, `disconnect`, `left`, `evicted`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Disconnected => "disconnect",
            Self::Left => "left",
            Self::Evicted => "evicted",
        }
    }
}

/// News about one of this node's queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryEvent<const DATA: usize> {
    /// A target answered.
    Response {
        /// The query.
        id: QueryId,
        /// The target.
        sid: Sid,
        /// Its answer.
        payload: Payload<DATA>,
    },
    /// A target's query handler refused, with this `error` text.
    Error {
        /// The query.
        id: QueryId,
        /// The target.
        sid: Sid,
        /// The error text, in a payload's `data`.
        error: Payload<DATA>,
    },
    /// A target had not answered when the query timed out.
    Missing {
        /// The query.
        id: QueryId,
        /// The target.
        sid: Sid,
    },
    /// The query ended: every target answered, it timed out, or it was cancelled.
    Done {
        /// The query.
        id: QueryId,
        /// Targets that answered (responses and errors).
        answered: u32,
        /// Targets that did not.
        missing: u32,
        /// True when it ended by timeout.
        timed_out: bool,
    },
}

/// Something the application may want to know. Events own their data (no borrow of the
/// node), so they can be queued and sent across tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<const DATA: usize = 512> {
    /// A new service, after the configured delay (reference: 1 s after its first frame).
    /// Read its details with [`Node::service`](crate::Node::service).
    Discovered {
        /// The service.
        sid: Sid,
    },
    /// A service was removed.
    Lost {
        /// The service.
        sid: Sid,
        /// Why.
        reason: LostReason,
    },
    /// A known service changed its tags.
    TagsChanged {
        /// The service.
        sid: Sid,
    },
    /// An event (type 6) arrived on a subscribed channel.
    Message {
        /// The sender.
        sid: Sid,
        /// Its channel.
        channel: u64,
        /// Its `ruid`, when present.
        ruid: Option<Ruid>,
        /// Its payload.
        payload: Payload<DATA>,
    },
    /// A query arrived and was answered through the [`Policy`](crate::Policy).
    QueryReceived {
        /// The asker.
        sid: Sid,
        /// Its channel.
        channel: u64,
        /// The query id.
        ruid: Option<Ruid>,
        /// The query's payload.
        payload: Payload<DATA>,
    },
    /// A query arrived while this node holds queries open
    /// ([`Node::hold_queries`](crate::Node::hold_queries)): answer it with
    /// [`Node::answer`](crate::Node::answer) or [`Node::refuse`](crate::Node::refuse) and
    /// `token`, before the node's [`query_timeout`](crate::Config::query_timeout) passes. The
    /// [`Policy`](crate::Policy) is not asked.
    QueryHeld {
        /// What answers it.
        token: ReplyToken,
        /// The asker.
        sid: Sid,
        /// Its channel.
        channel: u64,
        /// The query id.
        ruid: Option<Ruid>,
        /// The query's payload.
        payload: Payload<DATA>,
    },
    /// News about one of this node's queries.
    Query(QueryEvent<DATA>),
    /// A service published new data ([`Node::set_data`](crate::Node::set_data)): `data`
    /// holds its whole data entry, `version V data {key value ...} hex {key hex ...}` (a Tcl
    /// dict; [`wire::tcl_list`](crate::wire::tcl_list) reads it). Reported once per version,
    /// never older than the last one reported.
    #[cfg(feature = "node-data")]
    #[cfg_attr(docsrs, doc(cfg(feature = "node-data")))]
    DataChanged {
        /// The service.
        sid: Sid,
        /// Its data version.
        version: u16,
        /// The entry's text, in a payload's `data`.
        data: Payload<DATA>,
    },
    /// A peer reported that this node's `protocol` failed (type 8): the adapter should
    /// reopen that listener and call [`Node::set_tcp_port`](crate::Node::set_tcp_port) or
    /// [`Node::set_unix_path`](crate::Node::set_unix_path).
    RefreshProtocol {
        /// The protocol to refresh.
        protocol: Protocol,
    },
    /// Events were dropped because the event queue was full.
    Dropped {
        /// How many.
        count: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_shape_keeps_the_data_length_and_the_raw_flag_apart() {
        assert_eq!(size_of::<PayloadShape>(), 4);
        assert_eq!(PayloadShape::NONE, PayloadShape::default());
        for data_len in [
            None,
            Some(0),
            Some(1),
            Some(512),
            Some(PayloadShape::MAX_LEN),
        ] {
            for has_raw in [false, true] {
                let mut shape = PayloadShape::new(data_len, has_raw);
                assert_eq!((shape.data_len(), shape.has_raw()), (data_len, has_raw));
                shape.set_raw(!has_raw);
                assert_eq!((shape.data_len(), shape.has_raw()), (data_len, !has_raw));
                shape.set_data_len(Some(7));
                assert_eq!((shape.data_len(), shape.has_raw()), (Some(7), !has_raw));
                shape.set_data_len(None);
                assert_eq!((shape.data_len(), shape.has_raw()), (None, !has_raw));
            }
        }
    }

    /// A payload's `data` and `raw`, as given.
    type Fields<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    #[test]
    fn payloads_keep_data_and_raw_as_given() {
        let cases: [Fields<'_>; 5] = [
            (None, None),
            (Some(b""), None),
            (None, Some(b"")),
            (Some(b"text"), Some(b"\x00\x01")),
            (None, Some(b"raw only")),
        ];
        for (data, raw) in cases {
            let payload = Payload::<16>::new(data, raw).unwrap();
            assert_eq!((payload.data(), payload.raw()), (data, raw));
            let mut refilled = Payload::<16>::default();
            assert!(refilled.refill(data, raw));
            assert_eq!(refilled, payload);
        }
        assert!(Payload::<4>::new(Some(b"abc"), Some(b"de")).is_none());
    }
}
