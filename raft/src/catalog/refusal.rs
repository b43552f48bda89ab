//! Why the catalog refused a command: a typed reason that every node computes identically while
//! applying the entry, carried back to the proposer in `CommandResult::rejected`. Callers match on
//! the kind (the HTTP layer maps it to a status in one place); the message is for people.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// What the command names does not exist (or is deleted): a file, an account, an element.
    #[error("{0}")]
    NotFound(String),
    /// The catalog's rules forbid it now: it exists already, retention or an element's mode
    /// forbids it, the bootstrap admin is protected, a chunk would lose its last replica.
    #[error("{0}")]
    Conflict(String),
    /// The command cannot be applied in this form (a nested batch, an unauditable command).
    #[error("{0}")]
    Invalid(String),
    /// The local store failed while checking the command.
    #[error("catalog store: {0}")]
    Store(String),
}

impl From<crate::Error> for Refusal {
    fn from(e: crate::Error) -> Self {
        Refusal::Store(e.to_string())
    }
}
