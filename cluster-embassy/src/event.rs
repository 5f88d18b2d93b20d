//! [`Event`]: what the runner publishes to every [`Events`](crate::Events) subscription.

use cluster_core::{LostReason, Payload, Ruid, Service, Sid, TagList};

/// Something the application may want to know about the cluster, as the host adapters'
/// `Event`, without an allocator: the runner reads what the node knows when the event
/// happens (a discovered service's address, tags and protocols; a service's new tags), so a
/// subscriber in another task needs no access to the node.
///
/// Answers to this node's queries are not events: they go to the query's
/// [`QueryStream`](crate::QueryStream).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<const DATA: usize = 512> {
    /// A new service: a snapshot of it (sid, hid, address, tags, protocols) as the node
    /// knew it then.
    Discovered(Service),
    /// A service was removed.
    Lost {
        /// The service.
        sid: Sid,
        /// Why: expired, disconnect (it left), left (this node left), or evicted.
        reason: LostReason,
    },
    /// A known service changed its tags.
    TagsChanged {
        /// The service.
        sid: Sid,
        /// Its new tags.
        tags: TagList,
    },
    /// An event (type 6) arrived on a subscribed channel.
    Message {
        /// The sender.
        sid: Sid,
        /// The channel.
        channel: u64,
        /// Its `ruid`, when present.
        ruid: Option<Ruid>,
        /// The payload.
        payload: Payload<DATA>,
    },
    /// A query arrived and was answered through the node's policy.
    QueryReceived {
        /// The asker.
        sid: Sid,
        /// The channel.
        channel: u64,
        /// The query id.
        ruid: Option<Ruid>,
        /// The query's payload.
        payload: Payload<DATA>,
    },
    /// A query arrived while the node holds queries open
    /// ([`Handle::hold_queries`](crate::Handle::hold_queries)); the policy was not asked.
    /// Answer it with [`Handle::answer`](crate::Handle::answer) or
    /// [`Handle::refuse`](crate::Handle::refuse) and `token`, from any task, before the
    /// node's `query_timeout`, or let it go with [`Handle::drop_held`](crate::Handle::drop_held).
    /// A held query whose event a subscription missed ([`Dropped`](Self::Dropped)) is
    /// answered by nobody: its asker gets nothing until its timeout, and the node forgets it
    /// at its own (counted `expired` in [`Handle::held_stats`](crate::Handle::held_stats)).
    #[cfg(feature = "held")]
    #[cfg_attr(docsrs, doc(cfg(feature = "held")))]
    QueryHeld {
        /// What answers it.
        token: cluster_core::ReplyToken,
        /// The asker.
        sid: Sid,
        /// The channel.
        channel: u64,
        /// The query id.
        ruid: Option<Ruid>,
        /// The query's payload.
        payload: Payload<DATA>,
    },
    /// Events were lost: the node's own queue overflowed, or this subscription fell more
    /// than the channel's depth (`EVENTS`) behind.
    Dropped {
        /// How many.
        count: u64,
    },
}
