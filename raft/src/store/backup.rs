//! Catalog backups: a consistent image of the catalog at one log index (the latest Raft
//! snapshot, built on demand), and the restore that seeds a new cluster's nodes from it.
//!
//! A restore writes, into a node's empty Raft database, what installing that snapshot would
//! leave: the catalog, the snapshot itself, the log purged up to the backup's log id, and the
//! new cluster's membership (its bootstrap peers) as of that log id. Every node of the new
//! cluster is restored from the same backup, so they start with identical state and elect a
//! leader among themselves; file bodies stay on the nodes' disks, where the catalog's replica
//! lists find them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::engine::{Engine, WriteBatch};
use super::state_machine::{SnapshotImage, MEMBERSHIP, SNAPSHOT_DATA, SNAPSHOT_META};
use crate::catalog::{Catalog, LAST_APPLIED};
use crate::types::{ClusterNode, LogId, NodeId, SnapshotMeta, StoredMembership};
use crate::Error;

/// What a backup holds besides the image, as `manifest.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The log id the image is the catalog at.
    pub last_log_id: LogId,
    /// File records in the image (deleted ones included).
    pub files: u64,
}

/// Counts what `image` (a snapshot's bytes) holds, checking that it decodes.
pub fn inspect(image: &[u8]) -> Result<u64, Error> {
    let image = decode(image)?;
    Ok(image.pairs.iter().filter(|(k, _)| k.starts_with(Catalog::FILE_PREFIX.as_bytes())).count() as u64)
}

fn decode(image: &[u8]) -> Result<SnapshotImage, Error> {
    let image: SnapshotImage =
        bincode::deserialize(image).map_err(|e| Error::Storage(format!("not a catalog image: {e}")))?;
    if image.format != 1 {
        return Err(Error::Storage(format!("catalog image format {} is not one this release reads", image.format)));
    }
    Ok(image)
}

/// Seeds the empty Raft database at `db_path` from `image` taken at `last_log_id`, as node
/// `node_id` of a cluster whose members are `members`.
pub fn restore(
    db_path: &Path,
    image: &[u8],
    last_log_id: LogId,
    node_id: NodeId,
    members: BTreeMap<NodeId, ClusterNode>,
) -> Result<(), Error> {
    if !members.contains_key(&node_id) {
        return Err(Error::Rejected(format!("node {node_id} is not one of the members to restore")));
    }
    let decoded = decode(image)?;
    if db_path.exists() && std::fs::read_dir(db_path).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::Rejected(format!(
            "{} already holds a Raft database: restore seeds new nodes only (move it away first)",
            db_path.display()
        )));
    }
    let engine = Engine::open(db_path)?;
    super::check_format(&engine)?;
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let membership = StoredMembership::new(Some(last_log_id), openraft::Membership::new(vec![voters], members));

    // The catalog as the image has it, at the backup's log id, with the new membership. Change
    // cursors describe the consumers of the node the backup came from: this node's start afresh.
    let catalog = engine.tree("catalog")?;
    let mut batch = WriteBatch::default();
    for (k, v) in decoded.pairs.into_iter().filter(|(k, _)| !Catalog::is_change_cursor(k)) {
        batch.put(k, v);
    }
    batch.put(LAST_APPLIED.to_vec(), json(&Some(last_log_id))?);
    batch.put(MEMBERSHIP.to_vec(), json(&membership)?);
    catalog.apply(batch)?;

    // The snapshot that covers it, for peers that will need one.
    let meta = SnapshotMeta {
        last_log_id: Some(last_log_id),
        last_membership: membership,
        snapshot_id: format!("{}-{}-restored", last_log_id.leader_id.term, last_log_id.index),
    };
    let snapshots = engine.tree("snapshot")?;
    snapshots.insert(SNAPSHOT_DATA, image)?;
    snapshots.insert(SNAPSHOT_META, &json(&meta)?)?;

    // The log starts after the backup; the next election is in a later term than its entries.
    let log_meta = engine.tree("log_meta")?;
    log_meta.insert(super::log_store::PURGED, &json(&Some(last_log_id))?)?;
    log_meta.insert(super::log_store::COMMITTED, &json(&Some(last_log_id))?)?;
    let vote = openraft::Vote::new(last_log_id.leader_id.term, node_id);
    log_meta.insert(super::log_store::VOTE, &json(&vote)?)?;
    engine.flush()
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Storage(e.to_string()))
}
