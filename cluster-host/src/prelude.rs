//! What a host adapter gives its users, in one place: each adapter re-exports this module
//! (`pub use cluster_host::prelude::*`) next to its own `Cluster`, so that
//! `cluster_tokio::Handle` and `cluster_smol::Handle` are the same type.

pub use cluster_core::wire;
#[cfg(feature = "seal")]
pub use cluster_core::{Key, KeyRing};

pub use crate::duration::parse_duration;
pub use crate::error::{CommandError, JoinError};
pub use crate::event::{Event, Payload, QueryEvent, QuerySummary, ServiceInfo};
pub use crate::handle::{Driver, Events, Handle};
pub use crate::held::{HeldAnswer, IncomingQueries, IncomingQuery, Responder};
pub use crate::json::{self, JoinedInfo};
pub use crate::options::{Options, Profile};
pub use crate::policy::Answer;
pub use crate::query::{QueryOutcome, QueryStream};
pub use crate::request::{QuerySpec, Selector, SendSpec, TagEdit};
pub use crate::transports::TransportStats;
pub use crate::typed::{
    Typed, TypedAnswer, TypedError, TypedEvents, TypedMessage, TypedOutcome, TypedQueryEvent,
    TypedQueryStream,
};
