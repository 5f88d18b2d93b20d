//! [`Command`]: what a [`Handle`](crate::Handle) asks of the driver task, each with the
//! one-shot channel its answer goes back on (a query with its [`QueryStart`], which carries
//! the verdict and then the query's news). The driver hands each to
//! [`Engine::command`](crate::Engine::command).

#[cfg(feature = "seal")]
use cluster_core::KeyRing;
use cluster_core::{HeldStats, ReplyToken, Sid, Stats};

use crate::error::CommandError;
use crate::held::{HeldAnswer, IncomingQueries};
use crate::json::JoinedInfo;
use crate::query::QueryStart;
use crate::request::{QuerySpec, Selector, SendSpec, TagEdit};
use crate::{ServiceInfo, TransportStats};

/// Commands queued towards the driver before senders wait (backpressure).
pub const COMMAND_QUEUE: usize = 64;

/// A one-shot reply. Its receiver may be gone (the asker stopped waiting); the answer is
/// then dropped.
pub type Reply<T> = tokio::sync::oneshot::Sender<T>;

/// What a handle asks of the driver, and where the answer goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// [`Handle::send`](crate::Handle::send).
    Send(SendSpec, Reply<Result<(), CommandError>>),
    /// [`Handle::send_queued`](crate::Handle::send_queued): no reply; a refusal is published
    /// as [`Event::SendFailed`](crate::Event::SendFailed) and counted.
    SendQueued(SendSpec),
    /// [`Handle::query`](crate::Handle::query).
    Query(QuerySpec, QueryStart),
    /// [`Handle::update_tags`](crate::Handle::update_tags).
    Tags(Vec<TagEdit>, Reply<Result<bool, CommandError>>),
    /// [`Handle::tags`](crate::Handle::tags).
    OwnTags(Reply<Vec<String>>),
    /// [`Handle::discover`](crate::Handle::discover).
    Discover(Reply<bool>),
    /// [`Handle::heartbeat`](crate::Handle::heartbeat).
    Heartbeat(Reply<()>),
    /// [`Handle::services`](crate::Handle::services).
    Services(Reply<Vec<ServiceInfo>>),
    /// [`Handle::resolve`](crate::Handle::resolve).
    Resolve(Selector, Reply<Result<Vec<Sid>, CommandError>>),
    /// [`Handle::info`](crate::Handle::info).
    Info(Reply<JoinedInfo>),
    /// [`Handle::stats`](crate::Handle::stats).
    Stats(Reply<(Stats, TransportStats)>),
    /// [`Handle::set_keys`](crate::Handle::set_keys) (feature `seal`).
    #[cfg(feature = "seal")]
    SetKeys(Option<KeyRing>, Reply<()>),
    /// [`Handle::subscribe`](crate::Handle::subscribe).
    Subscribe(u64, Reply<bool>),
    /// [`Handle::incoming_queries`](crate::Handle::incoming_queries): hold queries open from
    /// now on; their responders answer through the commands of the handle given (weakly).
    Hold(tokio::sync::mpsc::WeakSender<Self>, Reply<IncomingQueries>),
    /// [`Responder::send`](crate::Responder::send): answers a held query.
    Answer(ReplyToken, HeldAnswer, Reply<Result<(), CommandError>>),
    /// A [`Responder`](crate::Responder) was dropped unanswered.
    DropHeld(ReplyToken),
    /// [`Handle::set_data`](crate::Handle::set_data).
    SetData(Vec<(String, Vec<u8>)>, Reply<Result<u16, CommandError>>),
    /// [`Handle::held_stats`](crate::Handle::held_stats).
    HeldStats(Reply<HeldStats>),
    /// [`Handle::flush`](crate::Handle::flush): answered once no direct send is in flight.
    Flush(Reply<()>),
    /// [`Handle::leave`](crate::Handle::leave): answered once the driver finished.
    Leave(Reply<()>),
}
