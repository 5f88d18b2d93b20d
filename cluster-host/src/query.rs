//! [`QueryOutcome`]: everything one query gathered, folded from its [`QueryEvent`]s the same
//! way whatever the runtime that carried them.

use cluster_core::Sid;

use crate::event::{Payload, QueryEvent, QuerySummary};

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
