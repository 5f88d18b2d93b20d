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
    data_len: Option<usize>,
    has_raw: bool,
}

impl<const DATA: usize> Payload<DATA> {
    /// No `data`, no `raw` (the default), in `const` contexts.
    pub(crate) const fn new_empty() -> Self {
        Self {
            bytes: heapless::Vec::new(),
            data_len: None,
            has_raw: false,
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
                data_len: data.map(<[u8]>::len),
                has_raw: raw.is_some(),
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
        self.data_len.and_then(|len| self.bytes.get(..len))
    }

    /// The `data` field as text, when present and UTF-8.
    #[must_use]
    pub fn data_str(&self) -> Option<&str> {
        self.data().and_then(|d| core::str::from_utf8(d).ok())
    }

    /// The `raw` field, when present.
    #[must_use]
    pub fn raw(&self) -> Option<&[u8]> {
        if self.has_raw {
            self.bytes.get(self.data_len.unwrap_or(0)..)
        } else {
            None
        }
    }

    /// Replaces the contents with `data` and `raw`; false (and emptied) when they do not fit.
    pub(crate) fn refill(&mut self, data: Option<&[u8]>, raw: Option<&[u8]>) -> bool {
        self.bytes.clear();
        self.data_len = data.map(<[u8]>::len);
        self.has_raw = raw.is_some();
        let fits = [data, raw]
            .into_iter()
            .flatten()
            .all(|part| self.bytes.extend_from_slice(part).is_ok());
        if !fits {
            self.bytes.clear();
            self.data_len = None;
            self.has_raw = false;
        }
        fits
    }

    /// The parts, for a mutable view.
    pub(crate) fn parts_mut(
        &mut self,
    ) -> (&mut heapless::Vec<u8, DATA>, &mut Option<usize>, &mut bool) {
        (&mut self.bytes, &mut self.data_len, &mut self.has_raw)
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
