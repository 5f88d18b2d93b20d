//! Ready-made hooks.

use cluster_core::wire::Message;
use cluster_core::{Policy, Refusal, Reply, Service};

/// Answers every accepted query with the same text (`cluster join --answer TEXT`); the
/// default policy answers with an empty `data`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    text: String,
}

impl Answer {
    /// Answers `text`.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The answer.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Policy for Answer {
    fn answer_query(
        &mut self,
        _from: &Service,
        _query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        reply
            .set_data(self.text.as_bytes())
            .map_err(|_| Refusal::new("answer larger than the node's payload capacity"))
    }
}
