//! Errors of the node's inputs and commands, one enum per operation.

use core::fmt;

use crate::wire::{DecodeError, EncodeError};

/// Why received bytes were dropped. Each variant says whether node state changed: for all of
/// them, nothing already stored is lost.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramError {
    /// A complete frame failed to decode. No state changed.
    Decode(DecodeError),
    /// Local mode and the sender is not on this host (spec 5.6 step 2). No state changed.
    NonLocalSource,
    /// Local mode and the frame's hid is not this host's (spec 5.6 step 6). No state changed.
    ForeignHid,
    /// The frame's channel is not subscribed, or is 1 or 2 from a non-local sender. No state
    /// changed.
    NotSubscribed(u64),
    /// A [`Policy`](crate::Policy) hook rejected the frame. No state changed.
    Rejected,
    /// A required field is missing, `protocols` lacks `c`, the sid or hid changed, the type is
    /// unknown, or `data` is not what the type needs. No state changed.
    Invalid,
    /// A value is larger than this node stores (sid, hid, tags, payload). No state changed.
    Oversized,
    /// The service registry is full: the new service was not created. No state changed.
    Full,
    /// This node requires sealed frames and the frame is not sealed. No state changed.
    Unsealed,
    /// A sealed frame did not authenticate (wrong key, altered bytes, malformed envelope).
    /// No state changed.
    Forged,
    /// A sealed frame names a key id this node's ring does not hold. No state changed.
    UnknownKey(u8),
    /// A sealed frame accepted before, or older than the replay window. No state changed.
    Replayed,
}

impl fmt::Display for DatagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "bad frame: {e}"),
            Self::NonLocalSource => f.write_str("frame from a non-local source in local mode"),
            Self::ForeignHid => f.write_str("frame with another host's hid in local mode"),
            Self::NotSubscribed(c) => write!(f, "frame on channel {c}, not accepted here"),
            Self::Rejected => f.write_str("frame rejected by policy"),
            Self::Invalid => f.write_str("frame failed validation"),
            Self::Oversized => f.write_str("frame carries more than this node stores"),
            Self::Full => f.write_str("service registry full"),
            Self::Unsealed => f.write_str("frame not sealed, and this node requires sealed frames"),
            Self::Forged => f.write_str("sealed frame did not authenticate"),
            Self::UnknownKey(id) => write!(f, "sealed frame with key id {id}, not in the key ring"),
            Self::Replayed => f.write_str("sealed frame replayed"),
        }
    }
}

impl core::error::Error for DatagramError {}

impl From<DecodeError> for DatagramError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

/// Why a [`Node::send`](crate::Node::send) was refused. Nothing was queued.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No service matched and the send is not a broadcast.
    NoTargets,
    /// The payload is larger than the node's `DATA` capacity.
    PayloadTooLarge,
    /// The outbound queue is full; try again after draining transmits.
    Full,
    /// The frame could not be encoded (e.g. a length the reference cannot read).
    Encode(EncodeError),
    /// The [`Policy`](crate::Policy) refused it.
    Rejected,
    /// The node has left.
    Left,
    /// The node was built [`empty`](crate::Node::empty) and has not
    /// [started](crate::Node::start).
    NotStarted,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTargets => f.write_str("no service matched"),
            Self::PayloadTooLarge => f.write_str("payload larger than the node's capacity"),
            Self::Full => f.write_str("outbound queue full"),
            Self::Encode(e) => write!(f, "cannot encode: {e}"),
            Self::Rejected => f.write_str("rejected by policy"),
            Self::Left => f.write_str("node has left"),
            Self::NotStarted => f.write_str("node has not started"),
        }
    }
}

impl core::error::Error for SendError {}

/// Why a [`Node::query`](crate::Node::query) was refused. No query was created.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// No service matched.
    NoTargets,
    /// The query table is full.
    Full,
    /// A caller-supplied id is already in use by a live query (spec 7.2 Q3).
    DuplicateId,
    /// The id is empty or too long.
    BadId,
    /// The send part failed.
    Send(SendError),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTargets => f.write_str("no service matched"),
            Self::Full => f.write_str("too many queries in progress"),
            Self::DuplicateId => f.write_str("a live query already has this id"),
            Self::BadId => f.write_str("query id empty or too long"),
            Self::Send(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for QueryError {}

/// Why [`Node::set_data`](crate::Node::set_data) refused the pairs. The data published
/// before stays as it was.
#[cfg(feature = "node-data")]
#[cfg_attr(docsrs, doc(cfg(feature = "node-data")))]
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataError {
    /// A key is empty.
    BadKey,
    /// A key appears twice.
    DuplicateKey,
    /// The pairs, with the protocols' props, do not fit in the node's `DATA` capacity.
    TooLarge,
    /// No payload slot was free to hold them; try again after draining transmits.
    Full,
    /// The node has not joined, or has left.
    NotJoined,
}

#[cfg(feature = "node-data")]
impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadKey => "empty data key",
            Self::DuplicateKey => "data key given twice",
            Self::TooLarge => "data larger than the node's capacity",
            Self::Full => "no payload slot free for the data",
            Self::NotJoined => "node not joined",
        })
    }
}

#[cfg(feature = "node-data")]
impl core::error::Error for DataError {}

/// Why [`Node::answer`](crate::Node::answer) or [`Node::refuse`](crate::Node::refuse) did
/// not send an answer. Each variant says what became of the held query.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// No held query has this token: it was answered already, dropped, expired and swept,
    /// or never issued (or the node left or joined again). Nothing changed.
    Unknown,
    /// The query was held for longer than the node's
    /// [`query_timeout`](crate::Config::query_timeout): the asker has given up. The held
    /// query is forgotten and counted (`late` in [`HeldStats`](crate::HeldStats)).
    Late,
    /// The answer is larger than the node's `DATA` capacity. The query is still held.
    TooLarge,
    /// The outbound queue is full. The query is still held; try again after draining
    /// transmits.
    Full,
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("no held query has this token"),
            Self::Late => f.write_str("answer too late: the query timed out"),
            Self::TooLarge => f.write_str("answer larger than the node's capacity"),
            Self::Full => f.write_str("outbound queue full"),
        }
    }
}

impl core::error::Error for AnswerError {}
