//! Files and storage elements as the catalog records them.
//!
//! A file's body is not in the catalog: it is a list of content-addressed chunks, each with the
//! nodes (and storage element on each) that hold a durable replica.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

pub use artstore_cluster_config::ElementMode;

/// A storage element of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageElement {
    pub node_id: NodeId,
    pub name: String,
    pub mode: ElementMode,
    /// Lower fills first within a node.
    pub priority: u32,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    /// Below its `full` threshold: out of placement.
    #[serde(default)]
    pub full: bool,
    /// The zone of the node (empty when zones are not configured).
    #[serde(default)]
    pub zone: String,
}

/// Temporary files live on `edit` elements and expire; permanent ones live on `rw` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPolicy {
    Temporary,
    #[default]
    Permanent,
}

impl RetentionPolicy {
    /// `temporary` or `permanent`, as the API and sidecars name it.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionPolicy::Temporary => "temporary",
            RetentionPolicy::Permanent => "permanent",
        }
    }
}

/// Where one replica of a chunk is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    pub node_id: NodeId,
    pub element: String,
}

/// One chunk of a file body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// SHA-256 of the chunk's bytes as stored (compressed, if it is), hex: also its name on disk.
    pub sha256: String,
    /// Bytes of file content the chunk holds (after decompression).
    pub size: u64,
    /// Stored zstd-compressed (decompressed transparently on read).
    #[serde(default)]
    pub compressed: bool,
    pub replicas: Vec<Replica>,
    /// Replicas that placement chose but that did not acknowledge (queued for repair).
    pub missing: Vec<NodeId>,
}

/// A file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// UUIDv7.
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub chunk_size: u64,
    pub chunks: Vec<ChunkRef>,
    pub description: String,
    pub tags: Vec<String>,
    /// Custom attributes (JSON text of an object, so the record stays bincode-friendly).
    pub attributes_json: String,
    pub policy: RetentionPolicy,
    /// For temporary files: when the collector may remove it (unix ms).
    pub expires_at: Option<i64>,
    /// Write-once: no delete or content change before this (unix ms).
    pub retention_until: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub version: u64,
    /// Tombstone: set by delete; the record stays so the id is never reused.
    pub deleted_at: Option<i64>,
}

/// Metadata changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub attributes_json: Option<String>,
    pub retention_until: Option<i64>,
}

impl FileRecord {
    /// Nodes holding at least one chunk of this file.
    pub fn holders(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.chunks.iter().flat_map(|c| c.replicas.iter().map(|r| r.node_id)).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Live, and some chunk lacks a replica placement wanted (damaged, or never written).
    pub fn needs_repair(&self) -> bool {
        self.deleted_at.is_none() && self.chunks.iter().any(|c| !c.missing.is_empty())
    }

    /// Custom attributes as a map of JSON values.
    pub fn attributes(&self) -> BTreeMap<String, serde_json::Value> {
        serde_json::from_str(&self.attributes_json).unwrap_or_default()
    }
}
