//! `artstore-client`: the Rust SDK for ArtStore's HTTP API.
//!
//! A [`Client`] is built from a list of node URLs. Any node accepts any request; on a connection
//! error or `503 Service Unavailable` the client tries the next node, so a caller survives a node
//! going away. The types the server puts on the wire live in [`wire`] and are shared with it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), artstore_client::ClientError> {
//! let client = artstore_client::Client::new(["http://127.0.0.1:8080"])?;
//! let status = client.cluster_status().await?;
//! println!("leader: {:?}, members: {}", status.leader_id, status.members.len());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod error;
mod search;
pub mod wire;

pub use client::{Client, UploadOptions};
pub use error::ClientError;
pub use search::{Search, SortBy};
