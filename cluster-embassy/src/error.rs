//! Why the adapter could not start, and why a command failed.

use core::fmt;

use cluster_core::{ConfigError, QueryError, SendError, TagError};
use embassy_net::MulticastError;
use embassy_net::udp::BindError;

/// Why [`new`](crate::new) refused to start. Nothing was sent.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The configuration is in local mode (`Config::remote` is false). An embassy node is
    /// alone on its host, so the local-only rule would drop every peer's frame, and
    /// embassy-net cannot send with the multicast TTL 0 that local mode requires: build the
    /// configuration with [`firmware_config`](crate::firmware_config).
    LocalMode,
    /// The configuration lists a protocol other than `c` (multicast). The adapter has no TCP
    /// or unix-socket transport, so advertising `t` or `u` would send peers to a listener
    /// that does not exist: see [`firmware_config`](crate::firmware_config).
    UnsupportedProtocol,
    /// The stack has no Ethernet MAC address to take the hid from.
    NoMac,
    /// The node refused the configuration (or the hid); it is unchanged.
    Config(ConfigError),
    /// The UDP socket could not be bound to the cluster port.
    Bind(BindError),
    /// The stack could not join the multicast group (its group table is full, or the address
    /// is not a multicast address).
    Join(MulticastError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalMode => {
                f.write_str("the node is in local mode; embassy nodes need remote mode")
            }
            Self::UnsupportedProtocol => {
                f.write_str("the node advertises a protocol other than c (multicast)")
            }
            Self::NoMac => f.write_str("the stack has no Ethernet MAC address for the hid"),
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            Self::Bind(e) => write!(f, "cannot bind the cluster port: {e:?}"),
            Self::Join(e) => write!(f, "cannot join the multicast group: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// Why a [`Handle`](crate::Handle) command failed. The node's state is unchanged, except
/// where a variant says otherwise.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// The node left the cluster; the runner stopped.
    Left,
    /// Every subscriber slot is taken (`SUBSCRIBERS` for events, `QUERIES` for query
    /// streams); drop an [`Events`](crate::Events) or a [`QueryStream`](crate::QueryStream)
    /// first.
    NoSubscriber,
    /// [`Handle::send`](crate::Handle::send) failed; nothing was queued.
    Send(SendError),
    /// [`Handle::query`](crate::Handle::query) failed; no query was created.
    Query(QueryError),
    /// [`Handle::update_tags`](crate::Handle::update_tags) failed; the tags are unchanged.
    Tags(TagError),
    /// [`Handle::answer`](crate::Handle::answer), [`refuse`](crate::Handle::refuse) or
    /// [`drop_held`](crate::Handle::drop_held) failed: see
    /// [`AnswerError`](cluster_core::AnswerError) for what became of the held query.
    #[cfg(feature = "held")]
    #[cfg_attr(docsrs, doc(cfg(feature = "held")))]
    Answer(cluster_core::AnswerError),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Left => f.write_str("the node has left the cluster"),
            Self::NoSubscriber => f.write_str("every subscriber slot is taken"),
            Self::Send(e) => write!(f, "{e}"),
            Self::Query(e) => write!(f, "{e}"),
            Self::Tags(e) => write!(f, "{e}"),
            #[cfg(feature = "held")]
            Self::Answer(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for CommandError {}

impl From<SendError> for CommandError {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

impl From<QueryError> for CommandError {
    fn from(e: QueryError) -> Self {
        Self::Query(e)
    }
}

impl From<TagError> for CommandError {
    fn from(e: TagError) -> Self {
        Self::Tags(e)
    }
}

#[cfg(feature = "held")]
impl From<cluster_core::AnswerError> for CommandError {
    fn from(e: cluster_core::AnswerError) -> Self {
        Self::Answer(e)
    }
}
