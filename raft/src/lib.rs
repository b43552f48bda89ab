//! ArtStore's replicated catalog: openraft with its log and state machine persisted in an embedded
//! engine (sled), and the cluster transport (QUIC with mutual TLS, tarpc) that carries Raft RPCs and
//! forwarded proposals between nodes.
//!
//! The entry point is [`RaftNode`]: open it on a data folder, then propose [`Command`]s from any node
//! (they are forwarded to the leader), read the [`Catalog`], and change membership.

#![forbid(unsafe_code)]

mod catalog;
mod clock;
mod error;
mod node;
pub mod store;
pub mod transport;
mod types;

pub use catalog::{
    AccountChanges, AuditEvent, AuditRecord, AuditVerification, Catalog, ChunkRef, ElementMode, FeedBatch, FileChanges,
    FileRecord, KeyAlgorithm, Refusal, Replica, RetentionPolicy, Role, ServiceAccount, SetAside, SigningKey,
    StorageElement, Subscription, DRAIN_SETTING,
};
pub use clock::{now_ms, rfc3339, LAST_RFC3339_MS};
pub use error::Error;
pub use node::{ClusterStatus, MemberStatus, MetricsWatch, RaftNode, RaftNodeOptions, DEFAULT_CATCH_UP};
pub use types::{ClusterNode, Command, CommandResult, NodeId, Raft, TypeConfig, MAX_ENTRY_BYTES};
