//! ArtStore's actors. Each owns one concern of a node and is reached through a cheap, cloneable
//! handle; the HTTP layer talks only to handles.
//!
//! - [`admin`]: service accounts, the token endpoint, JWT signing keys and their rotation, JWKS,
//!   the audit log, token rate limits.
//! - [`storage`]: storage elements (local disk or object store), chunks, sidecars, garbage collection.
//! - [`ingest`]: streaming upload, placement, replication, reads of file bodies.
//! - [`query`]: the search index fed from the catalog, and search.
//! - [`repair`]: scrub of local chunks and repair of damaged, missing or lost replicas.

#![forbid(unsafe_code)]

pub mod admin;
mod batcher;
mod chunk_cache;
mod error;
pub mod ingest;
pub mod storage;

pub mod query;
pub mod repair;

pub use error::{AdminError, QueryError, StorageError};
