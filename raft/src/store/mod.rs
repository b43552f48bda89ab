//! Persistence of Raft: the log store, the state machine, and the engine both sit on.
//!
//! Layout of the one engine database (`DATA_DIR/raft`): tree `log` (entries by big-endian index),
//! tree `log_meta` (vote, last purged and committed log ids), tree `catalog` (the state machine:
//! catalog keys plus `_meta/` keys for the last applied log id and membership) and tree `snapshot`
//! (the latest snapshot, kept until the next one).

// openraft's `StorageError` is large, but it is the error type its storage traits require; our
// helpers return it unboxed so `?` works inside the trait methods.
#![allow(clippy::result_large_err)]

pub mod engine;
mod log_store;
mod state_machine;

pub use log_store::LogStore;
pub use state_machine::StateMachineStore;

use crate::types::StorageError;

/// Converts any displayable error into openraft's storage error for the given subject.
pub(crate) fn io_err(
    subject: openraft::ErrorSubject<crate::NodeId>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    let io = std::io::Error::other(e.to_string());
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(&io)).into()
}
