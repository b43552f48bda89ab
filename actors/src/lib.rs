//! ArtStore's actors. Each owns one concern of a node and is reached through a cheap, cloneable
//! handle; the HTTP layer talks only to handles.
//!
//! - [`admin`]: service accounts, the token endpoint, JWT signing keys and their rotation, JWKS,
//!   the audit log, token rate limits.
//! - [`storage`]: storage elements (local disk or object store), chunks, placement, replication
//!   and its write quorum, the verified reader, sidecars, garbage collection, scrub and repair.
//! - [`ingest`]: streaming upload, finalize, expiry, and the rules of file metadata changes.
//! - [`query`]: the search index fed from the catalog, search, listings, downloads with ranges,
//!   and the read cache.
//! - [`worker`]: the one shape of background work (a step, a status, a stop signal), and the
//!   leader-only wrapper.

#![forbid(unsafe_code)]

pub mod admin;
mod batcher;
mod error;
pub mod ingest;
pub mod mailbox;
pub mod storage;

pub mod query;
pub mod worker;

pub use error::{AdminError, QueryError, StorageError};

/// The next page of file records after `after`, read off the async reactor (repair's scans and
/// the sidecar keeper's rewrite page through the catalog with it).
pub(crate) async fn files_page(
    node: &artstore_raft::RaftNode,
    after: &str,
) -> Result<Vec<artstore_raft::FileRecord>, StorageError> {
    let (catalog, from) = (node.catalog().clone(), after.to_string());
    tokio::task::spawn_blocking(move || catalog.files_after(&from, 500))
        .await
        .map_err(|e| StorageError::Io(e.to_string()))?
        .map_err(StorageError::from)
}
