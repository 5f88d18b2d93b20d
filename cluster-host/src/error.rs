//! Errors shared by the adapters.

use std::io;

use cluster_core::{
    AnswerError, ConfigError, DataError, QueryError, ResolveError, SendError, TagError,
};

use crate::hid::HidError;
use crate::options::OptionsError;

/// Why joining failed. Nothing is left open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The options are invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// No hid was given and none could be read from the host.
    #[error(transparent)]
    Hid(#[from] HidError),
    /// The node refused the configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A socket could not be opened.
    #[error("{what}: {source}")]
    Io {
        /// What was being opened.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl JoinError {
    /// Makes [`JoinError::Io`] of an error met opening `what` (for `map_err`).
    pub fn io(what: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}

/// Why a command given to a running node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The node has left or its task ended.
    #[error("the node is no longer running")]
    Closed,
    /// The selector's resolver arguments are invalid.
    #[error("bad resolver: {0}")]
    Resolve(#[from] ResolveError),
    /// The node refused the send.
    #[error("send refused: {0}")]
    Send(#[from] SendError),
    /// The node refused the query.
    #[error("query refused: {0}")]
    Query(#[from] QueryError),
    /// The node refused the tag edit.
    #[error("tag edit refused: {0}")]
    Tags(#[from] TagError),
    /// A typed value could not be encoded.
    #[error("typed value: {0}")]
    Typed(#[from] crate::typed::TypedError),
    /// The node refused the data to publish.
    #[error("data refused: {0}")]
    Data(#[from] DataError),
    /// The node did not send the answer to a held query.
    #[error("answer not sent: {0}")]
    Answer(#[from] AnswerError),
}
