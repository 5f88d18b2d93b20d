//! Ready-made hooks.

/// Answers every accepted query with the same text (`cluster join --answer TEXT`); the
/// default policy answers with an empty `data`. The one answer-everything policy of
/// `cluster_core` ([`cluster_core::Answer`]), holding a `String`.
pub type Answer = cluster_core::Answer<String>;
