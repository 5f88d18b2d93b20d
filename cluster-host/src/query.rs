//! [`QueryStream`]: the answers to one query, as they come, then a summary; and
//! [`QueryOutcome`]: everything one query gathered, folded from its [`QueryEvent`]s.

use cluster_core::{QueryId, Sid};

use crate::error::CommandError;
use crate::event::{Payload, QueryEvent, QuerySummary};
use crate::query_inbox::{self, QueryInbox, QuerySink, SidList, Verdict};

/// Everything a query gathered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryOutcome {
    /// The answers, in arrival order.
    pub responses: Vec<(Sid, Payload)>,
    /// The refusals (`error` replies), in arrival order.
    pub errors: Vec<(Sid, String)>,
    /// Targets that had not answered at the timeout.
    pub missing: Vec<Sid>,
    /// How it ended. A query whose node stopped before the end reports every unanswered
    /// target as missing and `timed_out` false.
    pub summary: QuerySummary,
}

impl QueryOutcome {
    /// Adds one event, in arrival order.
    pub fn push(&mut self, event: QueryEvent) {
        match event {
            QueryEvent::Response { sid, payload } => self.responses.push((sid, payload)),
            QueryEvent::Error { sid, error } => self.errors.push((sid, error)),
            QueryEvent::Missing { sid } => self.missing.push(sid),
            QueryEvent::Done(summary) => self.summary = summary,
        }
    }

    /// Completes an outcome whose [`QueryEvent::Done`] never came (the node stopped): every
    /// target of `targets` that did not answer is missing, and the summary counts them.
    pub fn finish_without_done(&mut self, targets: &[Sid]) {
        let answered: Vec<Sid> = self
            .responses
            .iter()
            .map(|(s, _)| *s)
            .chain(self.errors.iter().map(|(s, _)| *s))
            .collect();
        self.missing = targets
            .iter()
            .filter(|t| !answered.contains(t))
            .copied()
            .collect();
        self.summary = QuerySummary {
            answered: u32::try_from(answered.len()).unwrap_or(u32::MAX),
            missing: u32::try_from(self.missing.len()).unwrap_or(u32::MAX),
            timed_out: false,
        };
    }
}

/// A query a handle asks the driver to start ([`Command::Query`](crate::Command::Query)):
/// the engine gives its verdict and then the query's news through it
/// ([`Engine::command`](crate::Engine::command)); the handle waits on the other end, which
/// becomes the [`QueryStream`].
#[derive(Debug)]
pub struct QueryStart(QuerySink);

impl QueryStart {
    /// A query's two ends: this one, sent with the command, and the handle's.
    pub(crate) fn new() -> (Self, PendingQuery) {
        let (sink, inbox) = query_inbox::inbox();
        (Self(sink), PendingQuery(inbox))
    }

    /// Gives the node's verdict; on success the sink stays for the query's news.
    pub(crate) fn start(self, verdict: Verdict) -> Option<QuerySink> {
        let started = verdict.is_ok();
        self.0.start(verdict);
        started.then_some(self.0)
    }
}

/// The handle's end of a query being started: waits for the verdict.
#[derive(Debug)]
pub(crate) struct PendingQuery(QueryInbox);

impl PendingQuery {
    /// The query's stream once the node started it, or why it did not.
    pub(crate) async fn started(mut self) -> Result<QueryStream, CommandError> {
        let (id, targets) = self.0.verdict().await?;
        Ok(QueryStream::new(&id, targets, self.0))
    }
}

/// A query's id as its stream shows it: the node makes its ids of ASCII, kept as they are
/// (no string is made per query); any other is kept as text.
#[derive(Debug)]
enum IdText {
    Inline(QueryId),
    Owned(String),
}

impl IdText {
    fn of(id: &QueryId) -> Self {
        if id.as_str().is_some() {
            Self::Inline(*id)
        } else {
            Self::Owned(String::from_utf8_lossy(id.as_bytes()).into_owned())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Inline(id) => id.as_str().unwrap_or_default(),
            Self::Owned(text) => text,
        }
    }
}

/// The answers to one query. [`next`](Self::next) yields each [`QueryEvent`] as it arrives
/// and ends after [`QueryEvent::Done`]; [`collect`](Self::collect) waits for the end.
///
/// Dropping the stream before the end cancels the query in the node.
#[derive(Debug)]
pub struct QueryStream {
    id: IdText,
    targets: SidList,
    // Unbounded, but holds at most one event per target plus `Done`: the node sends nothing
    // else for a query.
    events: QueryInbox,
    done: Option<QuerySummary>,
}

impl QueryStream {
    pub(crate) fn new(id: &QueryId, targets: SidList, events: QueryInbox) -> Self {
        Self {
            id: IdText::of(id),
            targets,
            events,
            done: None,
        }
    }

    /// The query id (the `ruid` the targets echo).
    #[must_use]
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The services asked, as the node selected them when the query started.
    #[must_use]
    pub fn targets(&self) -> &[Sid] {
        self.targets.as_slice()
    }

    /// The summary, once [`QueryEvent::Done`] was yielded.
    #[must_use]
    pub fn summary(&self) -> Option<QuerySummary> {
        self.done
    }

    /// The next answer, or `None` after [`QueryEvent::Done`] (or when the node stopped).
    pub async fn next(&mut self) -> Option<QueryEvent> {
        if self.done.is_some() {
            return None;
        }
        let event = self.events.recv().await?;
        if let QueryEvent::Done(summary) = event {
            self.done = Some(summary);
        }
        Some(event)
    }

    /// Waits for the end and returns everything gathered. A query whose node stopped
    /// before the end reports every unanswered target as missing.
    pub async fn collect(mut self) -> QueryOutcome {
        let mut outcome = QueryOutcome::default();
        while let Some(event) = self.next().await {
            outcome.push(event);
        }
        if self.done.is_none() {
            outcome.finish_without_done(self.targets.as_slice());
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> Sid {
        Sid::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn events_fold_in_order_and_an_unfinished_query_counts_the_silent_targets() {
        let mut outcome = QueryOutcome::default();
        outcome.push(QueryEvent::Response {
            sid: sid("a"),
            payload: Payload::text("hi"),
        });
        outcome.push(QueryEvent::Error {
            sid: sid("b"),
            error: "no".into(),
        });
        let mut unfinished = outcome.clone();
        outcome.push(QueryEvent::Missing { sid: sid("c") });
        let done = QuerySummary {
            answered: 2,
            missing: 1,
            timed_out: true,
        };
        outcome.push(QueryEvent::Done(done));
        assert_eq!(outcome.summary, done);
        assert_eq!(outcome.missing, [sid("c")]);
        unfinished.finish_without_done(&[sid("a"), sid("b"), sid("c"), sid("d")]);
        assert_eq!(unfinished.missing, [sid("c"), sid("d")]);
        assert_eq!(
            unfinished.summary,
            QuerySummary {
                answered: 2,
                missing: 2,
                timed_out: false
            }
        );
    }
}
