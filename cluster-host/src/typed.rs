//! Typed messages end to end: a [`Typed`] value travels postcard-encoded in `raw` (as
//! `cluster_core::typed` does), with its [`KIND`](Typed::KIND) in `data`, so that receivers
//! tell types apart before decoding and Tcl nodes (or `cluster decode`) see a readable label.
//!
//! | what | how |
//! | --- | --- |
//! | send a value as an event | [`Handle::send_typed`], or [`SendSpec::typed`] |
//! | events of one type | [`Handle::typed_events`]: a [`TypedEvents`] stream, other messages skipped |
//! | a typed query and its typed answers | [`Handle::query_typed`]: a [`TypedQueryStream`] |
//! | answer typed queries on the spot | the [`TypedAnswer`] policy: a closure from the request type to the response type |
//! | answer typed queries later | [`IncomingQuery::typed`], [`Responder::answer_typed`] |
//!
//! Nothing a peer sends makes these panic: an answer or event that claims a kind but does not
//! decode is a [`TypedError`] for that one item, and the others still arrive.
//!
//! ```
//! use cluster_host::typed::{self, Typed};
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Reading { sensor: u16, celsius: i32 }
//! impl Typed for Reading { const KIND: &'static str = "reading"; }
//!
//! let payload = typed::encode(&Reading { sensor: 7, celsius: -4 })?;
//! assert_eq!(payload.data_str(), Some("reading"));
//! assert_eq!(typed::decode::<Reading>(&payload)?, Reading { sensor: 7, celsius: -4 });
//! # Ok::<(), cluster_host::typed::TypedError>(())
//! ```

use std::marker::PhantomData;

use cluster_core::wire::Message;
use cluster_core::{Policy, Refusal, Reply, Service, Sid};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CommandError;
use crate::event::{Event, Payload, QueryEvent, QuerySummary};
use crate::handle::{Events, Handle};
use crate::held::{HeldAnswer, IncomingQuery, Responder};
use crate::query::QueryStream;
use crate::request::{QuerySpec, Selector, SendSpec};

/// A type that travels as a typed message: postcard in `raw`, [`KIND`](Self::KIND) in `data`.
pub trait Typed: Serialize + DeserializeOwned {
    /// The name receivers tell this type by (the message's `data`): short, ASCII, and unique
    /// among the types an application exchanges.
    const KIND: &'static str;
}

/// Why a typed value could not be sent or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypedError {
    /// The message is of another kind (its `data`).
    #[error("expected a {expected} message, got {found:?}")]
    OtherKind {
        /// The kind asked for.
        expected: &'static str,
        /// The message's `data`, as text.
        found: Option<String>,
    },
    /// The message has the right kind but no `raw` field.
    #[error("{kind} message without a raw field")]
    NoRaw {
        /// The kind.
        kind: &'static str,
    },
    /// The `raw` field is not a postcard encoding of the type.
    #[error("{kind} message whose raw field does not decode")]
    Decode {
        /// The kind.
        kind: &'static str,
    },
    /// The value does not fit in a payload ([`DATA`](crate::DATA) bytes), or could not be
    /// serialised.
    #[error("{kind} value larger than a payload, or not serialisable")]
    Encode {
        /// The kind.
        kind: &'static str,
    },
    /// The peer refused the query, with this error text.
    #[error("refused: {0}")]
    Refused(String),
}

/// `value` as a payload: its kind in `data`, its postcard bytes in `raw`.
///
/// # Errors
///
/// [`TypedError::Encode`] when it does not fit in [`DATA`](crate::DATA) bytes (kind
/// included) or cannot be serialised.
pub fn encode<T: Typed>(value: &T) -> Result<Payload, TypedError> {
    let kind = T::KIND;
    let mut buf = vec![0; crate::DATA.saturating_sub(kind.len())];
    let raw =
        cluster_core::typed::encode(value, &mut buf).map_err(|_| TypedError::Encode { kind })?;
    Ok(Payload {
        data: Some(kind.as_bytes().to_vec()),
        raw: Some(raw.to_vec()),
    })
}

/// The `T` a payload carries.
///
/// # Errors
///
/// [`TypedError::OtherKind`] when its `data` is not `T::KIND`; [`TypedError::NoRaw`] or
/// [`TypedError::Decode`] when it claims the kind but carries no `T`.
pub fn decode<T: Typed>(payload: &Payload) -> Result<T, TypedError> {
    let kind = T::KIND;
    if !is_kind::<T>(payload) {
        return Err(TypedError::OtherKind {
            expected: kind,
            found: payload.data.as_ref().map(|_| payload.data_lossy()),
        });
    }
    let raw = payload.raw.as_deref().ok_or(TypedError::NoRaw { kind })?;
    cluster_core::typed::decode(raw).map_err(|_| TypedError::Decode { kind })
}

/// True when `payload` says it carries a `T` (its `data` is `T::KIND`).
#[must_use]
pub fn is_kind<T: Typed>(payload: &Payload) -> bool {
    payload.data.as_deref() == Some(T::KIND.as_bytes())
}

impl SendSpec {
    /// An event carrying `value` to the services `to` selects.
    ///
    /// # Errors
    ///
    /// [`TypedError::Encode`].
    pub fn typed<T: Typed>(to: Selector, value: &T) -> Result<Self, TypedError> {
        let payload = encode(value)?;
        let mut spec = Self::new(to, payload.data.unwrap_or_default());
        spec.raw = payload.raw;
        Ok(spec)
    }
}

impl QuerySpec {
    /// A query carrying `value` to the services `to` selects.
    ///
    /// # Errors
    ///
    /// [`TypedError::Encode`].
    pub fn typed<T: Typed>(to: Selector, value: &T) -> Result<Self, TypedError> {
        let payload = encode(value)?;
        let mut spec = Self::new(to, payload.data.unwrap_or_default());
        spec.raw = payload.raw;
        Ok(spec)
    }
}

impl Handle {
    /// Sends `value` as an event to the services `to` selects (see [`send`](Self::send)).
    ///
    /// # Errors
    ///
    /// [`CommandError::Typed`] when it cannot be encoded; otherwise as [`send`](Self::send).
    pub async fn send_typed<T: Typed>(&self, to: Selector, value: &T) -> Result<(), CommandError> {
        self.send(SendSpec::typed(to, value)?).await
    }

    /// Queries the services `to` selects with `request`; their answers arrive decoded as
    /// `R` on the returned stream (see [`query`](Self::query)).
    ///
    /// # Errors
    ///
    /// [`CommandError::Typed`] when `request` cannot be encoded; otherwise as
    /// [`query`](Self::query).
    pub async fn query_typed<Q: Typed, R: Typed>(
        &self,
        to: Selector,
        request: &Q,
    ) -> Result<TypedQueryStream<R>, CommandError> {
        let stream = self.query(QuerySpec::typed(to, request)?).await?;
        Ok(TypedQueryStream {
            inner: stream,
            kind: PhantomData,
        })
    }

    /// The events (type 6) carrying a `T`, from now on (see [`events`](Self::events));
    /// other messages and events are skipped.
    #[must_use]
    pub fn typed_events<T: Typed>(&self) -> TypedEvents<T> {
        TypedEvents {
            events: self.events(),
            kind: PhantomData,
        }
    }
}

/// An event that carried a `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedMessage<T> {
    /// The sender.
    pub sid: Sid,
    /// Its channel.
    pub channel: u64,
    /// Its `ruid`, when present.
    pub ruid: Option<String>,
    /// The value.
    pub value: T,
}

/// The events of one type (from [`Handle::typed_events`]).
#[derive(Debug)]
pub struct TypedEvents<T> {
    events: Events,
    kind: PhantomData<fn() -> T>,
}

impl<T: Typed> TypedEvents<T> {
    /// The next event of kind `T::KIND`: its value, or, when it does not decode, the
    /// sender and the error. `None` once the node stopped. Lost events (a subscriber that
    /// fell behind) are skipped; they are counted as for [`Events`].
    pub async fn next(&mut self) -> Option<Result<TypedMessage<T>, (Sid, TypedError)>> {
        loop {
            let event = self.events.next().await?;
            if let Event::Message {
                sid,
                channel,
                ruid,
                payload,
            } = event
                && is_kind::<T>(&payload)
            {
                return Some(match decode::<T>(&payload) {
                    Ok(value) => Ok(TypedMessage {
                        sid,
                        channel,
                        ruid,
                        value,
                    }),
                    Err(error) => Err((sid, error)),
                });
            }
        }
    }
}

/// News about a typed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedQueryEvent<R> {
    /// A target answered: its value, or why it is not an `R` (a refusal included).
    Answer {
        /// The target.
        sid: Sid,
        /// Its answer.
        value: Result<R, TypedError>,
    },
    /// A target had not answered at the timeout.
    Missing {
        /// The target.
        sid: Sid,
    },
    /// The query ended; the last event.
    Done(QuerySummary),
}

/// Everything a typed query gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedOutcome<R> {
    /// The answers that decoded, in arrival order.
    pub answers: Vec<(Sid, R)>,
    /// The answers that did not (refusals included), in arrival order.
    pub errors: Vec<(Sid, TypedError)>,
    /// Targets that had not answered at the timeout.
    pub missing: Vec<Sid>,
    /// How it ended.
    pub summary: QuerySummary,
}

/// One typed query's answers as they come (from [`Handle::query_typed`]).
#[derive(Debug)]
pub struct TypedQueryStream<R> {
    inner: QueryStream,
    kind: PhantomData<fn() -> R>,
}

impl<R: Typed> TypedQueryStream<R> {
    /// The targets.
    #[must_use]
    pub fn targets(&self) -> &[Sid] {
        self.inner.targets()
    }

    /// The next news, `None` after [`TypedQueryEvent::Done`].
    pub async fn next(&mut self) -> Option<TypedQueryEvent<R>> {
        Some(match self.inner.next().await? {
            QueryEvent::Response { sid, payload } => TypedQueryEvent::Answer {
                sid,
                value: decode::<R>(&payload),
            },
            QueryEvent::Error { sid, error } => TypedQueryEvent::Answer {
                sid,
                value: Err(TypedError::Refused(error)),
            },
            QueryEvent::Missing { sid } => TypedQueryEvent::Missing { sid },
            QueryEvent::Done(summary) => TypedQueryEvent::Done(summary),
        })
    }

    /// Waits for the end and returns everything gathered.
    pub async fn collect(mut self) -> TypedOutcome<R> {
        let mut outcome = TypedOutcome {
            answers: Vec::new(),
            errors: Vec::new(),
            missing: Vec::new(),
            summary: QuerySummary::default(),
        };
        while let Some(event) = self.next().await {
            match event {
                TypedQueryEvent::Answer { sid, value } => match value {
                    Ok(value) => outcome.answers.push((sid, value)),
                    Err(error) => outcome.errors.push((sid, error)),
                },
                TypedQueryEvent::Missing { sid } => outcome.missing.push(sid),
                TypedQueryEvent::Done(summary) => outcome.summary = summary,
            }
        }
        outcome
    }
}

/// A policy answering typed queries on the spot: `answer` maps each `Q` to an `R` (or an
/// error text, sent as a refusal). A query that is not a `Q`, or does not decode, is refused
/// with a text saying so; an `R` too large for a payload is refused too.
///
/// ```
/// use cluster_host::typed::{Typed, TypedAnswer};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Ping(u32);
/// impl Typed for Ping { const KIND: &'static str = "ping"; }
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Pong(u32);
/// impl Typed for Pong { const KIND: &'static str = "pong"; }
///
/// let policy = TypedAnswer::new(|Ping(n): Ping| Ok::<_, String>(Pong(n + 1)));
/// # let _ = policy;
/// ```
pub struct TypedAnswer<Q, R, F> {
    answer: F,
    kinds: PhantomData<fn(Q) -> R>,
}

impl<Q, R, F> std::fmt::Debug for TypedAnswer<Q, R, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedAnswer").finish_non_exhaustive()
    }
}

impl<Q, R, F> TypedAnswer<Q, R, F>
where
    Q: Typed,
    R: Typed,
    F: FnMut(Q) -> Result<R, String>,
{
    /// Answers each `Q` with `answer(q)`.
    pub fn new(answer: F) -> Self {
        Self {
            answer,
            kinds: PhantomData,
        }
    }
}

impl<Q, R, F> Policy for TypedAnswer<Q, R, F>
where
    Q: Typed,
    R: Typed,
    F: FnMut(Q) -> Result<R, String>,
{
    fn answer_query(
        &mut self,
        _from: &Service,
        query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        let payload = Payload {
            data: query.data.map(|d| d.as_bytes().to_vec()),
            raw: query.raw.map(<[u8]>::to_vec),
        };
        let request = decode::<Q>(&payload).map_err(|e| Refusal::new(&e.to_string()))?;
        let response = (self.answer)(request).map_err(|text| Refusal::new(&text))?;
        let too_large = |_| Refusal::new(&TypedError::Encode { kind: R::KIND }.to_string());
        reply
            .set_data(R::KIND.as_bytes())
            .map_err(|_| too_large(()))?;
        reply.set_typed(&response).map_err(|_| too_large(()))
    }
}

impl IncomingQuery {
    /// The `Q` a held query carries.
    ///
    /// # Errors
    ///
    /// As [`decode`].
    pub fn typed<Q: Typed>(&self) -> Result<Q, TypedError> {
        decode(&self.payload)
    }
}

impl Responder {
    /// Answers with `value` (its kind in `data`, the value in `raw`).
    ///
    /// # Errors
    ///
    /// [`CommandError::Typed`] when it cannot be encoded (the query is then dropped, which
    /// answers the asker with an error); otherwise as [`answer`](Self::answer).
    pub async fn answer_typed<R: Typed>(self, value: &R) -> Result<(), CommandError> {
        let payload = encode(value)?;
        self.send(HeldAnswer::Data(
            payload.data.unwrap_or_default(),
            payload.raw,
        ))
        .await
    }
}
