//! What the caller asks for: [`SendRequest`] and [`QueryRequest`], and their [`Targets`].

use core::time::Duration;

use super::Resolver;
use crate::identity::Sid;
use crate::protocol::ProtocolList;

/// The services a send or query goes to: the union of a resolver's matches and explicit
/// sids, de-duplicated (spec 5.13). Empty targets select nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct Targets<'a> {
    /// Services matched by this resolver.
    pub resolver: Option<&'a Resolver<'a>>,
    /// These services, by sid.
    pub services: &'a [Sid],
}

impl<'a> Targets<'a> {
    /// The services `resolver` matches.
    #[must_use]
    pub const fn resolve(resolver: &'a Resolver<'a>) -> Self {
        Self {
            resolver: Some(resolver),
            services: &[],
        }
    }

    /// These services.
    #[must_use]
    pub const fn services(services: &'a [Sid]) -> Self {
        Self {
            resolver: None,
            services,
        }
    }

    /// Nobody (a broadcast then reaches everyone).
    #[must_use]
    pub const fn none() -> Self {
        Self {
            resolver: None,
            services: &[],
        }
    }

    /// True when `service` is one of the targets (an explicit sid, or a resolver match).
    #[must_use]
    pub fn selects(&self, service: &super::Service) -> bool {
        self.services.contains(&service.sid)
            || self
                .resolver
                .is_some_and(|r| r.matches(&service.resolver_set()))
    }
}

/// An event (type 6) to send with [`Node::send`](crate::Node::send).
#[derive(Debug, Clone, Copy, Default)]
pub struct SendRequest<'a> {
    /// Who gets it.
    pub targets: Targets<'a>,
    /// `Some(true)`: one multicast frame (filtered to the targets when there are any, else to
    /// everyone); `Some(false)`: direct sends only; `None`: direct to at most 3 targets, a
    /// filtered multicast above that (spec 5.13).
    pub broadcast: Option<bool>,
    /// Protocols to try in this order instead of each target's advertised order.
    pub protocols: Option<ProtocolList>,
    /// The channel (0 by default).
    pub channel: u64,
    /// A free-form request id.
    pub ruid: Option<&'a str>,
    /// The payload text.
    pub data: Option<&'a [u8]>,
    /// Raw payload bytes (field 11; a Tcl node ignores it).
    pub raw: Option<&'a [u8]>,
}

impl<'a> SendRequest<'a> {
    /// An event with `data` to `targets`.
    #[must_use]
    pub fn new(targets: Targets<'a>, data: &'a [u8]) -> Self {
        Self {
            targets,
            data: Some(data),
            ..Self::default()
        }
    }
}

/// A query to start with [`Node::query`](crate::Node::query).
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryRequest<'a> {
    /// Who is asked.
    pub targets: Targets<'a>,
    /// The query text.
    pub data: Option<&'a [u8]>,
    /// Raw query bytes.
    pub raw: Option<&'a [u8]>,
    /// The query id; by default `q<s0><s2>#<slast>.<n>` with a per-node counter, unique
    /// (spec 7.2 Q3).
    pub id: Option<&'a str>,
    /// How long to wait for replies (the configured `query_timeout` by default).
    pub timeout: Option<Duration>,
    /// One multicast frame filtered to the targets instead of direct sends.
    pub broadcast: bool,
    /// The channel (0 by default).
    pub channel: u64,
    /// Protocols to try in this order instead of each target's advertised order.
    pub protocols: Option<ProtocolList>,
}

impl<'a> QueryRequest<'a> {
    /// A query with `data` to `targets`.
    #[must_use]
    pub fn new(targets: Targets<'a>, data: &'a [u8]) -> Self {
        Self {
            targets,
            data: Some(data),
            ..Self::default()
        }
    }
}
