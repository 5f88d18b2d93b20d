//! Queries answered later: [`IncomingQueries`], the stream of queries a node holds open once
//! [`Handle::incoming_queries`](crate::Handle::incoming_queries) was called, and the
//! [`Responder`] each carries, which answers it from any task at any time before the node's
//! `query_timeout` (`cluster_core::Node::hold_queries`).
//!
//! A responder answers once ([`answer`](Responder::answer), [`answer_raw`](Responder::answer_raw)
//! or [`refuse`](Responder::refuse)). Dropped unanswered, it tells the node, which answers the
//! asker with the error `query dropped unanswered` at once and counts it (`dropped` in
//! [`HeldStats`](cluster_core::HeldStats)); an answer after the timeout is refused with
//! [`AnswerError::Late`](cluster_core::AnswerError::Late) and counted (`late`). Neither panics.

use cluster_core::{ReplyToken, Sid};
use tokio::sync::{mpsc, oneshot};

use crate::command::{Command, Reply};
use crate::error::CommandError;
use crate::event::Payload;

/// Queries waiting in an [`IncomingQueries`] stream before the node refuses new ones as busy:
/// the node's room for held queries ([`HELD`](crate::HELD)).
pub const INCOMING_QUEUE: usize = crate::HELD;

/// What a held query is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeldAnswer {
    /// The answer's `data`, and `raw` when given.
    Data(Vec<u8>, Option<Vec<u8>>),
    /// A refusal: the answer's `error` text.
    Refuse(String),
}

/// One query held open for the application to answer.
#[derive(Debug)]
pub struct IncomingQuery {
    /// The asker.
    pub sid: Sid,
    /// The query's channel.
    pub channel: u64,
    /// The query id.
    pub ruid: Option<String>,
    /// The query's payload.
    pub payload: Payload,
    /// What answers it; it may move to another task.
    pub responder: Responder,
}

impl IncomingQuery {
    /// The query's `data` as text (invalid UTF-8 replaced; empty when absent).
    #[must_use]
    pub fn text(&self) -> String {
        self.payload.data_lossy()
    }
}

/// Answers one held query, once. Dropping it unanswered answers the asker with an error.
#[derive(Debug)]
pub struct Responder {
    token: ReplyToken,
    /// `None` once answered (or disarmed).
    commands: Option<mpsc::WeakSender<Command>>,
}

impl Responder {
    pub(crate) fn new(token: ReplyToken, commands: mpsc::WeakSender<Command>) -> Self {
        Self {
            token,
            commands: Some(commands),
        }
    }

    /// The node's token for the query.
    #[must_use]
    pub fn token(&self) -> ReplyToken {
        self.token
    }

    /// Forgets the query without telling the node (the engine lets it go itself).
    pub(crate) fn disarm(&mut self) {
        self.commands = None;
    }

    /// Answers with `data`.
    ///
    /// # Errors
    ///
    /// [`CommandError::Answer`] (late, too large, outbound queue full) or
    /// [`CommandError::Closed`].
    pub async fn answer(self, data: impl Into<Vec<u8>>) -> Result<(), CommandError> {
        self.send(HeldAnswer::Data(data.into(), None)).await
    }

    /// Answers with `data` and `raw` bytes (typed answers travel in `raw`).
    ///
    /// # Errors
    ///
    /// As [`answer`](Self::answer).
    pub async fn answer_raw(
        self,
        data: impl Into<Vec<u8>>,
        raw: impl Into<Vec<u8>>,
    ) -> Result<(), CommandError> {
        self.send(HeldAnswer::Data(data.into(), Some(raw.into())))
            .await
    }

    /// Refuses: the asker gets `error` as the answer's error text.
    ///
    /// # Errors
    ///
    /// As [`answer`](Self::answer).
    pub async fn refuse(self, error: impl Into<String>) -> Result<(), CommandError> {
        self.send(HeldAnswer::Refuse(error.into())).await
    }

    /// Answers with `answer`.
    ///
    /// # Errors
    ///
    /// As [`answer`](Self::answer).
    pub async fn send(mut self, answer: HeldAnswer) -> Result<(), CommandError> {
        let commands = self
            .commands
            .take()
            .and_then(|weak| weak.upgrade())
            .ok_or(CommandError::Closed)?;
        let (tx, rx): (Reply<Result<(), CommandError>>, _) = oneshot::channel();
        commands
            .send(Command::Answer(self.token, answer, tx))
            .await
            .map_err(|_| CommandError::Closed)?;
        rx.await.map_err(|_| CommandError::Closed)?
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        // Unanswered: the node answers the asker with an error at once. When the command
        // queue is full, the query is left to expire (counted as expired instead).
        if let Some(commands) = self.commands.take().and_then(|weak| weak.upgrade()) {
            let _ = commands.try_send(Command::DropHeld(self.token));
        }
    }
}

/// The queries a node holds open, as they arrive (from
/// [`Handle::incoming_queries`](crate::Handle::incoming_queries)). Dropping it makes the node
/// answer through its policy again.
#[derive(Debug)]
pub struct IncomingQueries {
    rx: mpsc::Receiver<IncomingQuery>,
}

impl IncomingQueries {
    pub(crate) fn new(rx: mpsc::Receiver<IncomingQuery>) -> Self {
        Self { rx }
    }

    /// The next query, or `None` once the node stopped (or another call to
    /// `incoming_queries` took over).
    pub async fn next(&mut self) -> Option<IncomingQuery> {
        self.rx.recv().await
    }

    /// A query already waiting, without waiting.
    pub fn try_next(&mut self) -> Option<IncomingQuery> {
        self.rx.try_recv().ok()
    }
}

/// The engine's end of an [`IncomingQueries`] stream.
#[derive(Debug)]
pub(crate) struct IncomingSink {
    pub(crate) queries: mpsc::Sender<IncomingQuery>,
    pub(crate) commands: mpsc::WeakSender<Command>,
}

/// Why a held query could not be handed to the application.
pub(crate) enum Undelivered {
    /// The stream is full: let this query go.
    Full,
    /// The stream was dropped: let it go and stop holding.
    Closed,
}

impl IncomingSink {
    /// Hands one held query to the stream.
    pub(crate) fn deliver(
        &self,
        token: ReplyToken,
        make: impl FnOnce(Responder) -> IncomingQuery,
    ) -> Result<(), Undelivered> {
        let query = make(Responder::new(token, self.commands.clone()));
        self.queries.try_send(query).map_err(|e| {
            let (mut query, why) = match e {
                mpsc::error::TrySendError::Full(q) => (q, Undelivered::Full),
                mpsc::error::TrySendError::Closed(q) => (q, Undelivered::Closed),
            };
            query.responder.disarm();
            why
        })
    }
}
