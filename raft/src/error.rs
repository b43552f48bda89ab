//! The error type of the `artstore-raft` crate.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize, PartialEq, Eq)]
pub enum Error {
    /// The embedded engine failed (disk full, corruption, I/O).
    #[error("storage engine: {0}")]
    Storage(String),
    /// A TLS file is missing or unusable; the first field is the config key naming it.
    #[error("{0}: {1}")]
    Tls(String, String),
    /// The QUIC endpoint could not be created or a peer could not be reached.
    #[error("cluster transport: {0}")]
    Transport(String),
    /// No leader could be found or reached in time; the caller may retry later.
    #[error("no leader available: {0}")]
    NoLeader(String),
    /// The request contradicts the cluster's state (e.g. removing an unknown member).
    #[error("{0}")]
    Rejected(String),
    /// Waiting for the cluster took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A change too large for one Raft entry ([`crate::MAX_ENTRY_BYTES`]).
    #[error("{0}")]
    TooLarge(String),
    /// Raft stopped on this node (shutdown or a fatal storage error).
    #[error("raft stopped: {0}")]
    Stopped(String),
}
