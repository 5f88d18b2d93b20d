//! [`QueryStream`]: the answers to one query, as they come, then a summary.

use cluster_core::Sid;
use cluster_host::{QueryEvent, QueryOutcome, QuerySummary};
use tokio::sync::mpsc;

/// The answers to one query. [`next`](Self::next) yields each [`QueryEvent`] as it arrives
/// and ends after [`QueryEvent::Done`]; [`collect`](Self::collect) waits for the end.
///
/// Dropping the stream before the end cancels the query in the node.
#[derive(Debug)]
pub struct QueryStream {
    id: String,
    targets: Vec<Sid>,
    // Unbounded, but holds at most one event per target plus `Done`: the node sends nothing
    // else for a query.
    events: mpsc::UnboundedReceiver<QueryEvent>,
    done: Option<QuerySummary>,
}

impl QueryStream {
    pub(crate) fn new(
        id: String,
        targets: Vec<Sid>,
        events: mpsc::UnboundedReceiver<QueryEvent>,
    ) -> Self {
        Self {
            id,
            targets,
            events,
            done: None,
        }
    }

    /// The query id (the `ruid` the targets echo).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The services asked, as the node selected them when the query started.
    #[must_use]
    pub fn targets(&self) -> &[Sid] {
        &self.targets
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
            outcome.finish_without_done(&self.targets);
        }
        outcome
    }
}
