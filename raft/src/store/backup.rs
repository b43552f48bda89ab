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

/// A backup ready to be sent: the snapshot's image file (open, at its start, never held in
/// memory) and what the manifest says of it.
#[derive(Debug)]
pub struct BackupImage {
    pub info: BackupInfo,
    pub file: std::fs::File,
    /// Length of the image.
    pub bytes: u64,
    /// SHA-256 of the whole image, hex.
    pub sha256: String,
}

/// Passes reads through, hashing and counting every byte.
struct Hashing<R> {
    input: R,
    hash: sha2::Sha256,
    bytes: u64,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Reads the image `file` (of the current format) once, in pieces: checks that it decodes to its
/// end and counts its file records, hashes it, and hands it back rewound.
pub fn inspect_file(last_log_id: LogId, file: std::fs::File) -> Result<BackupImage, Error> {
    use std::io::{Read, Seek};
    let io = |e: std::io::Error| Error::Storage(format!("reading the snapshot image: {e}"));
    let mut file = file;
    file.rewind().map_err(io)?;
    let mut reader =
        std::io::BufReader::with_capacity(1 << 20, Hashing { input: file, hash: Default::default(), bytes: 0 });
    let (_, files) = image::verify(&mut reader, |k| k.starts_with(Catalog::FILE_PREFIX.as_bytes()))?;
    // The reader stops at the digest; anything after it belongs to the bytes sent too.
    std::io::copy(&mut reader.by_ref(), &mut std::io::sink()).map_err(io)?;
    let Hashing { input: mut file, hash, bytes } = reader.into_inner();
    file.rewind().map_err(io)?;
    let sha256 = hex::encode(sha2::Digest::finalize(hash));
    Ok(BackupImage { info: BackupInfo { last_log_id, files }, file, bytes, sha256 })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An image file of `files` file records and two other pairs.
    fn image_file(dir: &Path, files: u64) -> std::fs::File {
        let path = dir.join("snapshot.img");
        let mut w = image::ImageWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
        w.put(b"account/admin", b"{}").unwrap();
        for i in 0..files {
            w.put(format!("{}{i:08}", Catalog::FILE_PREFIX).as_bytes(), &[7u8; 300]).unwrap();
        }
        w.put(b"setting/x", b"1").unwrap();
        w.finish().unwrap().0.sync_all().unwrap();
        std::fs::File::open(path).unwrap()
    }

    #[test]
    fn a_backup_image_is_counted_and_hashed_from_its_file_and_handed_back_rewound() {
        let dir = tempfile::tempdir().unwrap();
        let log_id = LogId::new(openraft::CommittedLeaderId::new(3, 1), 42);
        let image = inspect_file(log_id, image_file(dir.path(), 5000)).unwrap();
        let whole = std::fs::read(dir.path().join("snapshot.img")).unwrap();
        assert_eq!((image.info.files, image.info.last_log_id), (5000, log_id));
        assert_eq!(image.bytes, whole.len() as u64);
        assert_eq!(image.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&whole)));
        let mut sent = Vec::new();
        let mut file = image.file;
        file.read_to_end(&mut sent).unwrap();
        assert_eq!(sent, whole, "the file is read from its start");
        assert_eq!(inspect(&whole).unwrap(), 5000, "the in-memory count agrees");
    }

    #[test]
    fn a_damaged_image_is_not_offered_as_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let _ = image_file(dir.path(), 10);
        let path = dir.path().join("snapshot.img");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 1;
        std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
        let log_id = LogId::new(openraft::CommittedLeaderId::new(1, 1), 1);
        assert!(inspect_file(log_id, std::fs::File::open(&path).unwrap()).is_err());
    }
}
