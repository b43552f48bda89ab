//! The openraft type configuration and the catalog's command language.
//!
//! `Command`s travel in Raft log entries over the cluster transport (bincode) and sit in the log on
//! disk (JSON), so they must stay serde-friendly for both: no untagged enums, no skipped fields.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A node id in the Raft cluster (never reused).
pub type NodeId = u64;

/// What the cluster knows about a member: where to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// Address of the node's HTTP API (clients, the CLI).
    pub http_addr: String,
    /// UDP address of the node's QUIC endpoint (peers).
    pub quic_addr: String,
}

/// A change to the catalog, proposed through Raft and applied in log order on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Sets a cluster-wide setting (value is opaque text, usually JSON).
    SetSetting { key: String, value: String },
    /// Removes a cluster-wide setting; removing an absent key is not an error.
    DeleteSetting { key: String },
}

/// What applying a `Command` produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// Index of the log entry that carried the command.
    pub log_index: u64,
    /// For settings: the value before this command, if any.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// ArtStore's Raft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = ClusterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, ClusterNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, ClusterNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
