//! [`QueryStream`]: the answers to one query, as they come, then a summary.

use cluster_core::Sid;
use cluster_host::{Payload, QueryEvent, QuerySummary};
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

    /// Waits for the end and returns everything gathered.
    pub async fn collect(mut self) -> QueryOutcome {
        let mut outcome = QueryOutcome::default();
        while let Some(event) = self.next().await {
            match event {
                QueryEvent::Response { sid, payload } => outcome.responses.push((sid, payload)),
                QueryEvent::Error { sid, error } => outcome.errors.push((sid, error)),
                QueryEvent::Missing { sid } => outcome.missing.push(sid),
                QueryEvent::Done(summary) => outcome.summary = summary,
            }
        }
        if self.done.is_none() {
            let answered: Vec<Sid> = outcome
                .responses
                .iter()
                .map(|(s, _)| *s)
                .chain(outcome.errors.iter().map(|(s, _)| *s))
                .collect();
            outcome.missing = self
                .targets
                .iter()
                .filter(|t| !answered.contains(t))
                .copied()
                .collect();
            outcome.summary = QuerySummary {
                answered: u32::try_from(answered.len()).unwrap_or(u32::MAX),
                missing: u32::try_from(outcome.missing.len()).unwrap_or(u32::MAX),
                timed_out: false,
            };
        }
        outcome
    }
}
