//! The Raft state machine: applies committed entries to the [`Catalog`], builds and installs
//! snapshots.
//!
//! Each entry's catalog writes and the new "last applied" id are one atomic batch, so after a crash
//! the catalog is exactly the state after some prefix of the log and openraft re-applies the rest.
//! A snapshot is the whole catalog tree (keys and values, bincode), taken after a flush; installing
//! one replaces the tree in one atomic batch and is flushed before it is acknowledged.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use super::engine::{Engine, Tree, WriteBatch};
use super::io_err;
use crate::catalog::Catalog;
use crate::types::{CommandResult, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

use crate::catalog::LAST_APPLIED;
pub(super) const MEMBERSHIP: &[u8] = b"_meta/membership";
pub(super) const SNAPSHOT_META: &[u8] = b"meta";
pub(super) const SNAPSHOT_DATA: &[u8] = b"data";

/// Handle to the state machine; clones share the same trees.
#[derive(Clone)]
pub struct StateMachineStore {
    engine: Engine,
    tree: Tree,
    snapshots: Tree,
    catalog: Catalog,
    snapshot_seq: Arc<AtomicU64>,
}

/// The bytes of a snapshot: every key and value of the catalog tree.
#[derive(Serialize, Deserialize)]
pub(super) struct SnapshotImage {
    pub(super) format: u32,
    pub(super) pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::StateMachine, verb, e)
}

impl StateMachineStore {
    pub fn open(engine: &Engine) -> Result<Self, crate::Error> {
        let tree = engine.tree("catalog")?;
        Ok(Self {
            engine: engine.clone(),
            catalog: Catalog::new(tree.clone()),
            tree,
            snapshots: engine.tree("snapshot")?,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Read access to the catalog this state machine maintains.
    pub fn catalog(&self) -> Catalog {
        self.catalog.clone()
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, k: &[u8]) -> Result<Option<T>, StorageError> {
        match self.tree.get(k).map_err(|e| sm_err(ErrorVerb::Read, e))? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| sm_err(ErrorVerb::Read, e)),
            None => Ok(None),
        }
    }

    fn image(&self) -> Result<Vec<u8>, StorageError> {
        let pairs = self.tree.scan_prefix(b"").map_err(|e| sm_err(ErrorVerb::Read, e))?;
        bincode::serialize(&SnapshotImage { format: 1, pairs }).map_err(|e| sm_err(ErrorVerb::Read, e))
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let err = |e| io_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e);
        let meta_bytes = serde_json::to_vec(meta).map_err(|e| err(e.to_string()))?;
        self.snapshots.insert(SNAPSHOT_DATA, data).map_err(|e| err(e.to_string()))?;
        self.snapshots.insert(SNAPSHOT_META, &meta_bytes).map_err(|e| err(e.to_string()))?;
        self.engine.flush().map_err(|e| err(e.to_string()))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            // The catalog must be durable before logs covered by this snapshot may be purged.
            this.engine.flush().map_err(|e| sm_err(ErrorVerb::Write, e))?;
            let last_log_id: Option<LogId> = this.get_json::<Option<LogId>>(LAST_APPLIED)?.flatten();
            let last_membership: StoredMembership = this.get_json(MEMBERSHIP)?.unwrap_or_default();
            let data = this.image()?;
            let seq = this.snapshot_seq.fetch_add(1, Ordering::Relaxed);
            let snapshot_id = match &last_log_id {
                Some(l) => format!("{}-{}-{seq}", l.leader_id.term, l.index),
                None => format!("0-0-{seq}"),
            };
            let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id };
            this.save_snapshot(&meta, &data)?;
            tracing::info!(last_log_index = ?meta.last_log_id.map(|l| l.index), bytes = data.len(), "built catalog snapshot");
            metrics::counter!("artstore_raft_snapshots_built_total").increment(1);
            Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
        })
        .await
        .map_err(|e| sm_err(ErrorVerb::Write, e))?
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.get_json::<Option<LogId>>(LAST_APPLIED)?.flatten(), self.get_json(MEMBERSHIP)?.unwrap_or_default()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            let mut batch = WriteBatch::default();
            let mut result = CommandResult { log_index: entry.log_id.index, ..Default::default() };
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(command) => {
                    if matches!(command, crate::types::Command::Digest) {
                        let digest = self.catalog.digest().map_err(|e| sm_err(ErrorVerb::Read, e))?;
                        Catalog::record_digest(entry.log_id.index, &digest, &mut batch);
                    }
                    let r = self.catalog.apply(command, &mut batch).map_err(|e| sm_err(ErrorVerb::Write, e))?;
                    if r.rejected.is_none() {
                        for id in command.touched_files() {
                            Catalog::record_change(entry.log_id.index, id, &mut batch);
                        }
                    }
                    result = CommandResult { log_index: entry.log_id.index, ..r };
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(entry.log_id), m.clone());
                    batch.put(
                        MEMBERSHIP.to_vec(),
                        serde_json::to_vec(&stored).map_err(|e| sm_err(ErrorVerb::Write, e))?,
                    );
                }
            }
            let applied = serde_json::to_vec(&Some(entry.log_id)).map_err(|e| sm_err(ErrorVerb::Write, e))?;
            batch.put(LAST_APPLIED.to_vec(), applied);
            self.tree.apply(batch).map_err(|e| sm_err(ErrorVerb::Write, e))?;
            results.push(result);
        }
        metrics::counter!("artstore_raft_entries_applied_total").increment(results.len() as u64);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            let err = |e: String| io_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e);
            let image: SnapshotImage = bincode::deserialize(&data).map_err(|e| err(e.to_string()))?;
            if image.format != 1 {
                return Err(err(format!("unknown snapshot format {}", image.format)));
            }
            // How far this node's change-feed consumers got describes this node, not the sender.
            let cursors = this.catalog.change_cursors().map_err(|e| err(e.to_string()))?;
            let mut batch = WriteBatch::default();
            for k in this.tree.keys().map_err(|e| err(e.to_string()))? {
                batch.delete(k);
            }
            for (k, v) in image.pairs.into_iter().filter(|(k, _)| !Catalog::is_change_cursor(k)) {
                batch.put(k, v);
            }
            for (k, v) in cursors {
                batch.put(k, v);
            }
            // The snapshot's meta is the authority on what it covers.
            batch.put(LAST_APPLIED.to_vec(), serde_json::to_vec(&meta.last_log_id).map_err(|e| err(e.to_string()))?);
            batch.put(MEMBERSHIP.to_vec(), serde_json::to_vec(&meta.last_membership).map_err(|e| err(e.to_string()))?);
            this.tree.apply(batch).map_err(|e| err(e.to_string()))?;
            this.save_snapshot(&meta, &data)?;
            tracing::info!(last_log_index = ?meta.last_log_id.map(|l| l.index), bytes = data.len(), "installed catalog snapshot from the leader");
            metrics::counter!("artstore_raft_snapshots_installed_total").increment(1);
            Ok(())
        })
        .await
        .map_err(|e| sm_err(ErrorVerb::Write, e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let meta = match self.snapshots.get(SNAPSHOT_META).map_err(|e| sm_err(ErrorVerb::Read, e))? {
            Some(m) => serde_json::from_slice::<SnapshotMeta>(&m).map_err(|e| sm_err(ErrorVerb::Read, e))?,
            None => return Ok(None),
        };
        let data = self.snapshots.get(SNAPSHOT_DATA).map_err(|e| sm_err(ErrorVerb::Read, e))?.unwrap_or_default();
        Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}
