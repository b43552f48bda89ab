//! `artstore-client`: the Rust SDK for ArtStore's HTTP API.
//!
//! A [`Client`] is built from a list of node URLs and a service account's credentials. Any node
//! accepts any request: on a connection error or `503 Service Unavailable` the client tries the
//! next node, and idempotent calls are retried after a capped, jittered exponential backoff
//! ([`RetryPolicy`]), so a caller rides out a node going away or a leader election. The access
//! token is fetched on first use, cached, and refreshed before it expires (and once after a `401`).
//!
//! Uploads stream from memory, a path or any `AsyncRead`, always with an `Idempotency-Key` so a
//! retry never stores a second copy; downloads stream into memory, any `AsyncWrite` or a path,
//! resume after interruptions with `Range` requests, and are checked against the file's SHA-256.
//! Errors are typed ([`ClientError`]) and carry the server's message. The types the server puts on
//! the wire live in [`wire`] and are shared with it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), artstore_client::ClientError> {
//! use artstore_client::{Client, Search, UploadOptions};
//!
//! let client = Client::new(["http://10.0.0.1:8080", "http://10.0.0.2:8080"])?
//!     .with_credentials("sa-billing", "the-client-secret");
//! let file = client.upload("invoice.pdf", b"%PDF...".to_vec(), &UploadOptions::default()).await?;
//! let hits = client.search(&Search::text("invoice").consistent()).await?;
//! assert!(hits.hits.iter().any(|h| h.id == file.id));
//! client.download_to_path(&file.id, std::path::Path::new("copy.pdf"), |_, _| {}).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
pub use admin::AuditFilter;
mod client;
mod download;
mod error;
mod retry;
mod search;
mod upload;
pub mod wire;

pub use client::Client;
pub use download::partial_path;
pub use error::ClientError;
pub use retry::RetryPolicy;
pub use search::{Search, SortBy};
pub use upload::UploadOptions;
