//! Files and storage elements as the catalog records them.
//!
//! A file's body is not in the catalog: it is a list of content-addressed chunks, each with the
//! nodes (and storage element on each) that hold a durable replica.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{encode, Refusal, ELEMENT, EXPIRY, IDEMPOTENCY};
use crate::store::engine::WriteBatch;
use crate::types::NodeId;
use crate::types::{Command, CommandResult};

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

/// The version after `f`'s: a record can change no more once its counter is exhausted (only a
/// record committed with a hostile version gets there), refused the same way on every node
/// rather than overflowing while the entry is applied.
fn next_version(f: &FileRecord) -> Result<u64, Refusal> {
    f.version.checked_add(1).ok_or_else(|| Refusal::Invalid(format!("file {}: its version counter is exhausted", f.id)))
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

impl super::Catalog {
    /// Applies a command of storage elements (see `Catalog::apply`).
    pub(super) fn apply_element(&self, command: &Command, batch: &mut WriteBatch) -> Result<(), Refusal> {
        match command {
            Command::RegisterElement { element } => {
                let key = format!("{ELEMENT}{:020}/{}", element.node_id, element.name);
                let merged = match self.element(element.node_id, &element.name)? {
                    // Re-registration (a restart) refreshes capacity but never moves the mode back.
                    Some(old) => StorageElement { mode: old.mode, ..element.clone() },
                    None => element.clone(),
                };
                batch.put(key.into_bytes(), encode(&merged));
            }
            Command::SetElementMode { node_id, name, mode } => {
                let Some(mut e) = self.element(*node_id, name)? else {
                    return Err(Refusal::NotFound(format!("no storage element {name:?} on node {node_id}")));
                };
                if !e.mode.may_become(*mode) {
                    return Err(Refusal::Conflict(format!(
                        "element {name:?} is {}; modes move forward only (rw → ro → ar) and edit stays edit",
                        e.mode.as_str()
                    )));
                }
                e.mode = *mode;
                batch.put(format!("{ELEMENT}{node_id:020}/{name}").into_bytes(), encode(&e));
            }
            other => return Err(Refusal::Invalid(format!("not a elements command: {other:?}"))),
        }
        Ok(())
    }

    /// Applies a command of file records (see `Catalog::apply`).
    pub(super) fn apply_file(
        &self,
        command: &Command,
        batch: &mut WriteBatch,
        result: &mut CommandResult,
    ) -> Result<(), Refusal> {
        match command {
            Command::CreateFile { file, idempotency } => {
                if let Some((client, key)) = idempotency {
                    if let Some(existing) = self.idempotent_file(client, key)? {
                        result.existing = Some(existing);
                        return Ok(());
                    }
                    batch.put(format!("{IDEMPOTENCY}{client}/{key}").into_bytes(), encode(&file.id));
                }
                if let Some(existing) = self.file(&file.id)? {
                    // The same upload applied again (a forwarded proposal whose reply was lost and
                    // that was retried): the id is fresh per upload, so this is not a conflict.
                    if existing.sha256 == file.sha256 && existing.created_by == file.created_by {
                        result.existing = Some(file.id.clone());
                        return Ok(());
                    }
                    return Err(Refusal::Conflict(format!("file {} already exists", file.id)));
                }
                if let Some(at) = file.expires_at {
                    batch.put(format!("{EXPIRY}{at:020}/{}", file.id).into_bytes(), Vec::new());
                }
                Self::put_file(file, batch);
            }
            Command::UpdateFile { id, changes, at } => {
                let mut f = self.live_file(id)?;
                if let Some(until) = f.retention_until {
                    if changes.retention_until.is_some_and(|new| new < until) {
                        return Err(Refusal::Conflict("retention_until can only be extended".into()));
                    }
                }
                if let Some(n) = &changes.name {
                    f.name = n.clone();
                }
                if let Some(d) = &changes.description {
                    f.description = d.clone();
                }
                if let Some(t) = &changes.tags {
                    f.tags = t.clone();
                }
                if let Some(a) = &changes.attributes_json {
                    f.attributes_json = a.clone();
                }
                if let Some(r) = changes.retention_until {
                    f.retention_until = Some(r);
                }
                f.version = next_version(&f)?;
                f.updated_at = *at;
                Self::put_file(&f, batch);
            }
            Command::DeleteFile { id, at } => {
                let mut f = self.live_file(id)?;
                if let Some(until) = f.retention_until {
                    if *at < until {
                        return Err(Refusal::Conflict(format!(
                            "retention: the file may not be deleted before {until} (unix ms)"
                        )));
                    }
                }
                if f.policy == RetentionPolicy::Permanent {
                    return Err(Refusal::Conflict("permanent files live on rw elements, which never delete".into()));
                }
                if let Some(exp) = f.expires_at {
                    batch.delete(format!("{EXPIRY}{exp:020}/{id}").into_bytes());
                }
                f.deleted_at = Some(*at);
                f.updated_at = *at;
                Self::put_file(&f, batch);
            }
            Command::FinalizeFile { id, chunks, at } => {
                let mut f = self.live_file(id)?;
                if f.policy != RetentionPolicy::Temporary {
                    return Err(Refusal::Conflict(format!("file {id} is already permanent")));
                }
                if chunks.len() != f.chunks.len() || chunks.iter().zip(&f.chunks).any(|(a, b)| a.sha256 != b.sha256) {
                    return Err(Refusal::Conflict("the permanent copy does not match the file's chunks".into()));
                }
                if let Some(exp) = f.expires_at {
                    batch.delete(format!("{EXPIRY}{exp:020}/{id}").into_bytes());
                }
                f.policy = RetentionPolicy::Permanent;
                f.expires_at = None;
                f.chunks = chunks.clone();
                f.version = next_version(&f)?;
                f.updated_at = *at;
                Self::put_file(&f, batch);
            }
            Command::MarkReplicaDamaged { id, sha256, node_id } => {
                let Some(mut f) = self.file(id)? else {
                    return Err(Refusal::NotFound(format!("no file {id}")));
                };
                let mut changed = false;
                for c in f.chunks.iter_mut().filter(|c| &c.sha256 == sha256) {
                    if c.replicas.len() > 1 {
                        let before = c.replicas.len();
                        c.replicas.retain(|r| r.node_id != *node_id);
                        changed |= c.replicas.len() != before;
                    }
                    if !c.missing.contains(node_id) {
                        c.missing.push(*node_id);
                        changed = true;
                    }
                }
                if changed {
                    Self::put_file(&f, batch);
                }
            }
            Command::RepairChunk { id, sha256, added, dropped } => {
                let f = self.live_file(id)?;
                let mut f = f;
                for c in f.chunks.iter_mut().filter(|c| &c.sha256 == sha256) {
                    // Never drop the last replica without a new one in its place.
                    if added.is_empty() && c.replicas.iter().all(|r| dropped.contains(&r.node_id)) {
                        return Err(Refusal::Conflict(format!("chunk {sha256} would be left without a replica")));
                    }
                    c.replicas.retain(|r| !dropped.contains(&r.node_id));
                    c.missing.retain(|n| !dropped.contains(n));
                    for r in added {
                        c.replicas.retain(|old| old.node_id != r.node_id);
                        c.replicas.push(r.clone());
                        c.missing.retain(|n| *n != r.node_id);
                    }
                }
                Self::put_file(&f, batch);
            }
            Command::RecoverFiles { files, overwrite } => {
                for f in files {
                    if !overwrite && self.file(&f.id)?.is_some() {
                        return Err(Refusal::Conflict(format!("file {} is already in the catalog", f.id)));
                    }
                }
                for f in files {
                    if let Some(at) = f.expires_at {
                        batch.put(format!("{EXPIRY}{at:020}/{}", f.id).into_bytes(), Vec::new());
                    }
                    Self::put_file(f, batch);
                }
            }
            other => return Err(Refusal::Invalid(format!("not a files command: {other:?}"))),
        }
        Ok(())
    }
}
