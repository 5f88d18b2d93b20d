//! Owned, runtime-independent events: what an adapter's handle hands the application. They
//! are built from the core's [`cluster_core::Event`]s by [`translate`], which adds what the
//! node knows at that moment (a discovered service's address, tags and protocols).

use std::net::IpAddr;

use crate::interfaces::HeardOn;
use crate::node_data::{DataMap, parse_entry};
use cluster_core::{
    HeldRoom, Hid, LostReason, Node, Payload as CorePayload, Policy, Protocol, ProtocolList,
    QueryEvent as CoreQueryEvent, QueryId, ReplyToken, Service, Sid,
};

/// An application payload: the `data` text and the `raw` bytes of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    /// The `data` field (text by convention; peers do not guarantee UTF-8).
    pub data: Option<Vec<u8>>,
    /// The `raw` field (field 11).
    pub raw: Option<Vec<u8>>,
}

impl Payload {
    /// A payload of `data` only.
    #[must_use]
    pub fn text(data: impl Into<Vec<u8>>) -> Self {
        Self {
            data: Some(data.into()),
            raw: None,
        }
    }

    /// `data` as text, when present and UTF-8.
    #[must_use]
    pub fn data_str(&self) -> Option<&str> {
        self.data
            .as_deref()
            .and_then(|d| std::str::from_utf8(d).ok())
    }

    /// `data` as text with invalid UTF-8 replaced; empty when absent.
    #[must_use]
    pub fn data_lossy(&self) -> String {
        String::from_utf8_lossy(self.data.as_deref().unwrap_or_default()).into_owned()
    }

    pub(crate) fn from_core<const DATA: usize>(payload: &CorePayload<DATA>) -> Self {
        Self {
            data: payload.data().map(<[u8]>::to_vec),
            raw: payload.raw().map(<[u8]>::to_vec),
        }
    }
}

/// A snapshot of a known service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Its sid.
    pub sid: Sid,
    /// Its hid.
    pub hid: Hid,
    /// Its address (see [`Service::ip`]).
    pub ip: Option<IpAddr>,
    /// True when it runs on this host.
    pub local: bool,
    /// Its tags, in its order.
    pub tags: Vec<String>,
    /// Its protocols, in its priority order.
    pub protocols: ProtocolList,
    /// The TCP port it advertised.
    pub tcp_port: Option<u16>,
    /// The unix-socket path it advertised.
    pub unix_path: Option<String>,
    /// True when a failed send or a ping reduced its time to live.
    pub expected: bool,
    /// Where it was heard, by its address: our interface and our address on it (filled in
    /// by the [`Engine`](crate::Engine); `None` from [`of`](Self::of), or when no
    /// interface's prefix holds its address).
    pub heard_on: Option<HeardOn>,
    /// The version of the data it publishes (0: none seen).
    pub data_version: u16,
    /// The data it publishes ([`node_data`](crate::node_data)).
    pub data: DataMap,
    /// How it was learned: `multicast` (its own frames, on a LAN), `seed` (through the
    /// membership exchanged with seeds, [`crate::seeds`]) or `gateway` (a service on another
    /// LAN that does not speak the membership protocol, reached through a gateway there,
    /// [`crate::gateway`]); filled in by the [`Engine`](crate::Engine).
    pub learned: &'static str,
    /// The segment it is on: ours for a service heard on the LAN, the member's for one
    /// learned through seeds, the gateway's for one reached through a gateway; `None` when
    /// that segment has no name ([`Options::segment`](crate::Options::segment)).
    pub segment: Option<String>,
}

impl ServiceInfo {
    /// The snapshot of `service`, as `node` knows it.
    #[must_use]
    pub fn of<P: Policy, const S: usize, const D: usize, H: HeldRoom>(
        node: &Node<P, S, D, H>,
        service: &Service,
    ) -> Self {
        Self {
            sid: *service.sid(),
            hid: *service.hid(),
            ip: service.ip(),
            local: service.is_local(),
            tags: tag_strings(service),
            protocols: service.protocols(),
            tcp_port: service.tcp_port(),
            unix_path: node
                .unix_path_of(service.sid().as_bytes())
                .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()),
            expected: service.is_expected(),
            heard_on: None,
            data_version: 0,
            data: DataMap::new(),
            learned: "multicast",
            segment: None,
        }
    }

    /// Every service `node` knows, in the order first heard from.
    #[must_use]
    pub fn all<P: Policy, const S: usize, const D: usize, H: HeldRoom>(
        node: &Node<P, S, D, H>,
    ) -> Vec<Self> {
        node.services().map(|s| Self::of(node, s)).collect()
    }
}

fn tag_strings(service: &Service) -> Vec<String> {
    service
        .tags()
        .iter()
        .map(|t| String::from_utf8_lossy(t.as_bytes()).into_owned())
        .collect()
}

/// Something the application may want to know about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new service.
    Discovered(ServiceInfo),
    /// A service was removed.
    Lost {
        /// The service.
        sid: Sid,
        /// Why: expired, disconnect (it left), or left (this node left).
        reason: LostReason,
    },
    /// A service changed its tags.
    TagsChanged {
        /// The service.
        sid: Sid,
        /// Its new tags.
        tags: Vec<String>,
    },
    /// An event (type 6) arrived on a subscribed channel.
    Message {
        /// The sender.
        sid: Sid,
        /// The channel.
        channel: u64,
        /// Its `ruid`, when present.
        ruid: Option<String>,
        /// The payload.
        payload: Payload,
    },
    /// A query arrived and was answered through the node's policy.
    QueryReceived {
        /// The asker.
        sid: Sid,
        /// The channel.
        channel: u64,
        /// The query id.
        ruid: Option<String>,
        /// The query's payload.
        payload: Payload,
    },
    /// A peer reported this node's `protocol` as failing; its listener was reopened.
    ProtocolRefreshed {
        /// The protocol.
        protocol: Protocol,
    },
    /// A service published new data (a newer version; reported once per version).
    DataChanged {
        /// The service.
        sid: Sid,
        /// Its data version.
        version: u16,
        /// All its pairs (the new set replaces the old one as a whole).
        data: DataMap,
    },
    /// Events were lost: the node's queue or the subscriber's buffer overflowed.
    Dropped {
        /// How many.
        count: u64,
    },
    /// The node refused a send made with
    /// [`Handle::send_queued`](crate::Handle::send_queued): the error
    /// [`Handle::send`](crate::Handle::send) would have returned. Nothing was sent.
    SendFailed {
        /// Why ([`CommandError::Send`](crate::CommandError::Send) or
        /// [`CommandError::Resolve`](crate::CommandError::Resolve)).
        error: crate::CommandError,
    },
}

/// News about one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryEvent {
    /// A target answered.
    Response {
        /// The target.
        sid: Sid,
        /// Its answer.
        payload: Payload,
    },
    /// A target refused, with this error text.
    Error {
        /// The target.
        sid: Sid,
        /// The error text.
        error: String,
    },
    /// A target had not answered at the timeout.
    Missing {
        /// The target.
        sid: Sid,
    },
    /// The query ended; the last event of a query.
    Done(QuerySummary),
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuerySummary {
    /// Targets that answered (responses and errors).
    pub answered: u32,
    /// Targets that did not.
    pub missing: u32,
    /// True when it ended by timeout.
    pub timed_out: bool,
}

/// A core event, translated for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translated {
    /// For every subscriber.
    Event(Event),
    /// For the caller of the query `id`.
    Query {
        /// The query id.
        id: String,
        /// The news.
        event: QueryEvent,
    },
    /// The adapter must reopen this protocol's listener (then report
    /// [`Event::ProtocolRefreshed`]).
    Refresh(Protocol),
    /// A query held open, for the application to answer with `token`.
    Held {
        /// What answers it.
        token: ReplyToken,
        /// The asker.
        sid: Sid,
        /// Its channel.
        channel: u64,
        /// The query id.
        ruid: Option<String>,
        /// The query's payload.
        payload: Payload,
    },
}

/// Translates a core event, reading what it needs from `node` (call it while draining
/// [`Node::poll_event`], before the next input).
#[must_use]
pub fn translate<P: Policy, const S: usize, const D: usize, H: HeldRoom>(
    node: &Node<P, S, D, H>,
    event: &cluster_core::Event<D>,
) -> Option<Translated> {
    use cluster_core::Event as E;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some(match event {
        E::Discovered { sid } => {
            let service = node.service(sid.as_bytes())?;
            Translated::Event(Event::Discovered(ServiceInfo::of(node, service)))
        }
        E::Lost { sid, reason } => Translated::Event(Event::Lost {
            sid: *sid,
            reason: *reason,
        }),
        E::TagsChanged { sid } => Translated::Event(Event::TagsChanged {
            sid: *sid,
            tags: node
                .service(sid.as_bytes())
                .map(tag_strings)
                .unwrap_or_default(),
        }),
        E::Message {
            sid,
            channel,
            ruid,
            payload,
        } => Translated::Event(Event::Message {
            sid: *sid,
            channel: *channel,
            ruid: ruid.map(|r| text(r.as_bytes())),
            payload: Payload::from_core(payload),
        }),
        E::QueryReceived {
            sid,
            channel,
            ruid,
            payload,
        } => Translated::Event(Event::QueryReceived {
            sid: *sid,
            channel: *channel,
            ruid: ruid.map(|r| text(r.as_bytes())),
            payload: Payload::from_core(payload),
        }),
        E::Query(query) => {
            let (id, event) = translate_query(query);
            Translated::Query {
                id: text(id.as_bytes()),
                event,
            }
        }
        E::RefreshProtocol { protocol } => Translated::Refresh(*protocol),
        E::QueryHeld {
            token,
            sid,
            channel,
            ruid,
            payload,
        } => Translated::Held {
            token: *token,
            sid: *sid,
            channel: *channel,
            ruid: ruid.map(|r| text(r.as_bytes())),
            payload: Payload::from_core(payload),
        },
        E::DataChanged { sid, version, data } => Translated::Event(Event::DataChanged {
            sid: *sid,
            version: *version,
            data: parse_entry(data.data_str()?)?,
        }),
        E::Dropped { count } => Translated::Event(Event::Dropped {
            count: u64::from(*count),
        }),
        _ => return None,
    })
}

/// Translates a core query event: the query's id (as the node made it) and its news.
#[must_use]
pub fn translate_query<const D: usize>(query: &CoreQueryEvent<D>) -> (QueryId, QueryEvent) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match query {
        CoreQueryEvent::Response { id, sid, payload } => (
            *id,
            QueryEvent::Response {
                sid: *sid,
                payload: Payload::from_core(payload),
            },
        ),
        CoreQueryEvent::Error { id, sid, error } => (
            *id,
            QueryEvent::Error {
                sid: *sid,
                error: text(error.data().unwrap_or_default()),
            },
        ),
        CoreQueryEvent::Missing { id, sid } => (*id, QueryEvent::Missing { sid: *sid }),
        CoreQueryEvent::Done {
            id,
            answered,
            missing,
            timed_out,
        } => (
            *id,
            QueryEvent::Done(QuerySummary {
                answered: *answered,
                missing: *missing,
                timed_out: *timed_out,
            }),
        ),
    }
}
