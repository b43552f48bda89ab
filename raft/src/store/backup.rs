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
use super::image;
use super::state_machine::{write_image_file, MEMBERSHIP, SNAPSHOTS_DIR, SNAPSHOT_FILE, SNAPSHOT_META};
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

/// Counts the file records `image` (a snapshot's bytes, either format) holds, checking that it
/// decodes to its end.
pub fn inspect(image: &[u8]) -> Result<u64, Error> {
    let mut files = 0;
    for pair in image::pairs_of(image)? {
        files += u64::from(pair?.0.starts_with(Catalog::FILE_PREFIX.as_bytes()));
    }
    Ok(files)
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
    inspect(image)?;
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
    for pair in image::pairs_of(image)? {
        let (k, v) = pair?;
        if !Catalog::is_change_cursor(&k) {
            batch.put(k, v);
        }
        if batch.len() >= 4096 {
            catalog.apply(std::mem::take(&mut batch))?;
        }
    }
    batch.put(LAST_APPLIED.to_vec(), json(&Some(last_log_id))?);
    batch.put(MEMBERSHIP.to_vec(), json(&membership)?);
    catalog.apply(batch)?;

    // The snapshot that covers it, for peers that will need one (in this release's format, whatever
    // the backup's).
    let meta = SnapshotMeta {
        last_log_id: Some(last_log_id),
        last_membership: membership,
        snapshot_id: format!("{}-{}-restored", last_log_id.leader_id.term, last_log_id.index),
    };
    let file = format!("snapshot-{}.img", meta.snapshot_id);
    write_image_file(&db_path.join(SNAPSHOTS_DIR), &file, image::pairs_of(image)?)?;
    let snapshots = engine.tree("snapshot")?;
    snapshots.insert(SNAPSHOT_FILE, file.as_bytes())?;
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
