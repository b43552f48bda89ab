//! ArtStore's actors. Each owns one concern of a node and is reached through a cheap, cloneable
//! handle; the HTTP layer talks only to handles.
//!
//! - [`admin`]: service accounts, the token endpoint, JWT signing keys and their rotation, JWKS,
//!   the audit log, token rate limits.

#![forbid(unsafe_code)]

pub mod admin;
mod error;
pub mod ingest;
pub mod storage;

pub use error::{AdminError, StorageError};
