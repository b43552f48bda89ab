//! Persistence of Raft: the log store, the state machine, and the engine both sit on.
//!
//! Layout of the one engine database (`DATA_DIR/raft`): tree `log` (entries by big-endian index),
//! tree `log_meta` (vote, last purged and committed log ids), tree `catalog` (the state machine:
//! catalog keys plus `_meta/` keys for the last applied log id and membership) and tree `snapshot`
//! (the latest snapshot, kept until the next one), and tree `format` (the database's format
//! version, [`STORE_FORMAT`]).

// openraft's `StorageError` is large, but it is the error type its storage traits require; our
// helpers return it unboxed so `?` works inside the trait methods.
#![allow(clippy::result_large_err)]

pub mod backup;
pub mod engine;
pub mod image;
mod log_store;
mod state_machine;

pub use log_store::LogStore;
pub use state_machine::{StateMachineStore, SNAPSHOTS_DIR};

use crate::types::StorageError;

/// The on-disk format of the log entries, the catalog and snapshots this release writes,
/// recorded in tree `format` when the database is created. Format 2 keeps snapshots as image
/// files beside the database (format 1 kept them inside it); the state machine migrates a
/// format 1 database when it opens it.
pub const STORE_FORMAT: u32 = 2;

/// Records that the database now is in [`STORE_FORMAT`] (after a migration).
pub(crate) fn record_format(engine: &engine::Engine) -> Result<(), crate::Error> {
    engine.tree("format")?.insert(b"store", STORE_FORMAT.to_string().as_bytes())
}

/// Refuses a database written by a release with a newer format (a downgrade would misread it);
/// records [`STORE_FORMAT`] in a new database. Older formats are migrated here when one changes.
pub fn check_format(engine: &engine::Engine) -> Result<u32, crate::Error> {
    let tree = engine.tree("format")?;
    match tree.get_string("store")? {
        None => {
            tree.insert(b"store", STORE_FORMAT.to_string().as_bytes())?;
            engine.flush()?;
            Ok(STORE_FORMAT)
        }
        Some(v) => match v.parse::<u32>() {
            Ok(found) if found <= STORE_FORMAT => Ok(found),
            _ => Err(crate::Error::Storage(format!(
                "the raft database is in format {v}, written by a newer release; this release reads formats up to \
                 {STORE_FORMAT}: run the newer release, or restore this node's data from a backup"
            ))),
        },
    }
}

/// Converts any displayable error into openraft's storage error for the given subject.
pub(crate) fn io_err(
    subject: openraft::ErrorSubject<crate::NodeId>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    let io = std::io::Error::other(e.to_string());
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(&io)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine::Engine::open(&dir.path().join("raft")).unwrap();
        assert_eq!(check_format(&engine).unwrap(), STORE_FORMAT);
        assert_eq!(check_format(&engine).unwrap(), STORE_FORMAT, "recorded once, read back");
        engine.tree("format").unwrap().insert(b"store", (STORE_FORMAT + 1).to_string().as_bytes()).unwrap();
        let e = check_format(&engine).unwrap_err().to_string();
        assert!(e.contains("newer release") && e.contains(&format!("up to {STORE_FORMAT}")), "{e}");
    }
}
