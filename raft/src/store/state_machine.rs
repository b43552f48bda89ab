//! The Raft state machine: applies committed entries to the [`Catalog`], builds and installs
//! snapshots.
//!
//! Each entry's catalog writes and the new "last applied" id are one atomic batch, so after a crash
//! the catalog is exactly the state after some prefix of the log and openraft re-applies the rest.
//!
//! **Snapshots stream.** A snapshot is a file in the database's `catalog-snapshots` folder holding
//! the catalog as an [`image`](super::image) (format 2: key-value pairs, a count and a SHA-256). It is
//! written pair by pair from a lazy scan of the catalog, sent to peers in openraft's chunks straight
//! from the file, received into a file, and installed in bounded batches, so no step holds a whole
//! catalog in memory; the snapshot tree keeps only the meta and the file's name.
//!
//! **A snapshot is the catalog at one log index.** openraft builds snapshots in a task of their own
//! while entries keep being applied, and the engine has no point-in-time views. So the builder is
//! made a *cut*: when it is created (between two applies) it records the last applied log id, and
//! from then until the scan ends every apply first saves the value each key had before its first
//! write since the cut. The scan emits a key's saved value instead of the live one, and at its end
//! the saved values of keys it had not reached (deleted since the cut) — exactly the catalog as of
//! the recorded log id, whatever was applied meanwhile, at the cost of one read per written key
//! while a build runs. The change feed's node-local keys are written outside the log (a consumer's
//! prunes) and stay out of the cut; an install keeps the receiver's own cursors anyway.
//!
//! **An install survives a crash.** The received file is verified (count and digest) before anything
//! changes, then marked as being installed, then the catalog is replaced in batches and the mark is
//! cleared in the same flush as the new meta. A node that finds the mark at start-up finishes the
//! install from the file before it serves.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use super::engine::{Engine, Tree, WriteBatch};
use super::image::{self, ImageReader, ImageWriter};
use super::io_err;
use crate::catalog::Catalog;
use crate::types::{CommandResult, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

use crate::catalog::LAST_APPLIED;
pub(super) const MEMBERSHIP: &[u8] = b"_meta/membership";
pub(super) const SNAPSHOT_META: &[u8] = b"meta";
/// The current snapshot's file name in [`SNAPSHOTS_DIR`].
pub(super) const SNAPSHOT_FILE: &[u8] = b"file";
/// Format 1 kept the snapshot's bytes here; migrated to a file at open.
const SNAPSHOT_DATA: &[u8] = b"data";
/// Set while a snapshot is being installed: [`Installing`].
const INSTALLING: &[u8] = b"installing";
/// The folder, inside the engine's, that holds snapshot files.
pub const SNAPSHOTS_DIR: &str = "catalog-snapshots";
/// Writes per batch while a catalog is replaced (bounds the memory of an install).
const INSTALL_BATCH_PAIRS: usize = 4096;
const INSTALL_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Handle to the state machine; clones share the same trees.
#[derive(Clone)]
pub struct StateMachineStore {
    engine: Engine,
    tree: Tree,
    snapshots: Tree,
    catalog: Catalog,
    snapshot_seq: Arc<AtomicU64>,
    dir: PathBuf,
    /// The cut of the snapshot being built, if one is.
    cut: Arc<Mutex<Option<Cut>>>,
    /// The file the snapshot being received is written to.
    receiving: Arc<Mutex<Option<PathBuf>>>,
    /// Held while the current snapshot is read and opened, and while it is replaced (its keys
    /// swapped and the old file removed), so that a reader gets one snapshot's meta and file.
    current: Arc<Mutex<()>>,
}

/// What a snapshot build needs to see the catalog as it was when the build began.
struct Cut {
    /// Which build this cut belongs to.
    id: u64,
    /// The last key the scan has emitted.
    scanned: Option<Vec<u8>>,
    /// For each key written since the cut: its value at the cut, and whether the scan had
    /// already passed it when it was first written.
    before: BTreeMap<Vec<u8>, (Option<Vec<u8>>, bool)>,
}

/// The mark of an install in progress.
#[derive(Serialize, Deserialize)]
struct Installing {
    meta: SnapshotMeta,
    file: String,
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::StateMachine, verb, e)
}

fn snap_err(meta: &SnapshotMeta, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::Snapshot(Some(meta.signature())), verb, e)
}

/// Creates `path` for writing, private to the node's user.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `pairs` as an image into a new file `name` in `dir` (synced, then renamed into place).
/// Returns the pair count and the file's size.
pub(super) fn write_image_file(
    dir: &Path,
    name: &str,
    pairs: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), crate::Error>>,
) -> Result<(u64, u64), crate::Error> {
    let io = |e: std::io::Error| crate::Error::Storage(format!("writing snapshot {name}: {e}"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let part = dir.join(format!("{name}.part"));
    let _ = std::fs::remove_file(&part);
    let mut w = ImageWriter::new(BufWriter::with_capacity(1 << 20, create_private(&part).map_err(io)?))?;
    for pair in pairs {
        let (k, v) = pair?;
        w.put(&k, &v)?;
    }
    let (out, count, bytes) = w.finish()?;
    out.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
    std::fs::rename(&part, dir.join(name)).map_err(io)?;
    sync_dir(dir).map_err(io)?;
    Ok((count, bytes))
}

impl StateMachineStore {
    /// Opens the state machine in `engine`: migrates a format 1 snapshot to a file, finishes an
    /// install a crash interrupted, and removes snapshot files nothing refers to.
    pub fn open(engine: &Engine) -> Result<Self, crate::Error> {
        let tree = engine.tree("catalog")?;
        let this = Self {
            engine: engine.clone(),
            catalog: Catalog::new(tree.clone()),
            tree,
            snapshots: engine.tree("snapshot")?,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            dir: engine.path().join(SNAPSHOTS_DIR),
            cut: Arc::default(),
            receiving: Arc::default(),
            current: Arc::default(),
        };
        std::fs::create_dir_all(&this.dir)
            .map_err(|e| crate::Error::Storage(format!("creating {}: {e}", this.dir.display())))?;
        this.migrate_format_one()?;
        super::record_format(engine)?;
        if let Some(mark) = this.snapshots.get(INSTALLING)? {
            let mark: Installing = serde_json::from_slice(&mark).map_err(|e| crate::Error::Storage(e.to_string()))?;
            tracing::warn!(snapshot = %mark.meta.snapshot_id, "finishing a snapshot install that was interrupted");
            this.replace_catalog(&mark.meta, &mark.file).map_err(|e| crate::Error::Storage(e.to_string()))?;
        }
        this.remove_stale_files();
        Ok(this)
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

    fn current_file(&self) -> Result<Option<String>, crate::Error> {
        Ok(self.snapshots.get(SNAPSHOT_FILE)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A snapshot kept by format 1 inside the database becomes a file.
    fn migrate_format_one(&self) -> Result<(), crate::Error> {
        let Some(data) = self.snapshots.get(SNAPSHOT_DATA)? else { return Ok(()) };
        let name = format!("snapshot-migrated-{}.img", std::process::id());
        let (pairs, bytes) = write_image_file(&self.dir, &name, image::pairs_of(&data)?)?;
        self.snapshots.insert(SNAPSHOT_FILE, name.as_bytes())?;
        self.snapshots.remove(SNAPSHOT_DATA)?;
        self.engine.flush()?;
        tracing::info!(pairs, bytes, file = %name, "moved the snapshot out of the database into a file");
        Ok(())
    }

    /// Deletes snapshot files that are neither the current snapshot nor being installed.
    fn remove_stale_files(&self) {
        let keep = self.current_file().ok().flatten();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if Some(&name) != keep.as_ref() {
                if let Err(e) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(file = %name, error = %e, "could not remove a stale snapshot file");
                }
            }
        }
    }

    /// Records `meta` and `file` as the current snapshot (and clears an install's mark), flushed;
    /// then removes the file it replaces. The three keys change in one batch: a crash never
    /// leaves one snapshot's meta beside another's file. A snapshot older than the current one
    /// (a build that ran while a newer snapshot was installed) replaces nothing and its file is
    /// removed. Returns the snapshot that is current afterwards, its file opened under the lock
    /// that replacing takes, so that it cannot be removed before it is open.
    fn save_snapshot(&self, meta: &SnapshotMeta, file: &str) -> Result<(SnapshotMeta, std::fs::File), StorageError> {
        let err = |e: crate::Error| snap_err(meta, ErrorVerb::Write, e);
        let meta_bytes = serde_json::to_vec(meta).map_err(|e| snap_err(meta, ErrorVerb::Write, e))?;
        let (previous, data) = {
            let _current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((newer, data)) = self.open_current()?.filter(|(m, _)| m.last_log_id > meta.last_log_id) {
                tracing::info!(built = ?meta.last_log_id, current = ?newer.last_log_id,
                    "a newer snapshot was installed while this one was built; keeping the newer one");
                let _ = std::fs::remove_file(self.dir.join(file));
                return Ok((newer, data));
            }
            let previous = self.current_file().map_err(err)?;
            let mut batch = WriteBatch::default();
            batch.put(SNAPSHOT_FILE.to_vec(), file.as_bytes().to_vec());
            batch.put(SNAPSHOT_META.to_vec(), meta_bytes);
            batch.delete(INSTALLING.to_vec());
            self.snapshots.apply(batch).map_err(err)?;
            let data = std::fs::File::open(self.dir.join(file)).map_err(|e| snap_err(meta, ErrorVerb::Read, e))?;
            (previous, data)
        };
        // Durable before the file it replaces goes (readers hold that file open already, if any).
        self.engine.flush().map_err(err)?;
        if let Some(previous) = previous.filter(|p| p != file) {
            let _ = std::fs::remove_file(self.dir.join(previous));
        }
        Ok((meta.clone(), data))
    }

    /// The current snapshot's meta and its file, opened. Call with `current` held.
    fn open_current(&self) -> Result<Option<(SnapshotMeta, std::fs::File)>, StorageError> {
        let meta = match self.snapshots.get(SNAPSHOT_META).map_err(|e| sm_err(ErrorVerb::Read, e))? {
            Some(m) => serde_json::from_slice::<SnapshotMeta>(&m).map_err(|e| sm_err(ErrorVerb::Read, e))?,
            None => return Ok(None),
        };
        let Some(file) = self.current_file().map_err(|e| sm_err(ErrorVerb::Read, e))? else { return Ok(None) };
        let data = std::fs::File::open(self.dir.join(&file)).map_err(|e| snap_err(&meta, ErrorVerb::Read, e))?;
        Ok(Some((meta, data)))
    }

    /// Replaces the catalog with the image in `file` (already verified), in bounded batches,
    /// keeping this node's change-feed cursors; then records the snapshot as current.
    fn replace_catalog(&self, meta: &SnapshotMeta, file: &str) -> Result<(), StorageError> {
        let err = |e: crate::Error| snap_err(meta, ErrorVerb::Write, e);
        // Everything but the cursors goes, a page of keys at a time.
        let mut after: Option<Vec<u8>> = None;
        loop {
            let keys = self.tree.keys_after(after.as_deref(), INSTALL_BATCH_PAIRS).map_err(err)?;
            let Some(last) = keys.last().cloned() else { break };
            let mut batch = WriteBatch::default();
            for k in keys.into_iter().filter(|k| !Catalog::is_change_cursor(k)) {
                batch.delete(k);
            }
            self.tree.apply(batch).map_err(err)?;
            after = Some(last);
        }
        let input = std::fs::File::open(self.dir.join(file))
            .map_err(|e| snap_err(meta, ErrorVerb::Read, format!("opening snapshot {file}: {e}")))?;
        let (mut batch, mut bytes, mut pairs) = (WriteBatch::default(), 0usize, 0u64);
        for pair in ImageReader::new(BufReader::with_capacity(1 << 20, input)) {
            let (k, v) = pair.map_err(err)?;
            if Catalog::is_change_cursor(&k) {
                continue;
            }
            bytes += k.len() + v.len();
            pairs += 1;
            batch.put(k, v);
            if batch.len() >= INSTALL_BATCH_PAIRS || bytes >= INSTALL_BATCH_BYTES {
                self.tree.apply(std::mem::take(&mut batch)).map_err(err)?;
                bytes = 0;
            }
        }
        // The snapshot's meta is the authority on what it covers.
        let json_err = |e: serde_json::Error| snap_err(meta, ErrorVerb::Write, e);
        batch.put(LAST_APPLIED.to_vec(), serde_json::to_vec(&meta.last_log_id).map_err(json_err)?);
        batch.put(MEMBERSHIP.to_vec(), serde_json::to_vec(&meta.last_membership).map_err(json_err)?);
        self.tree.apply(batch).map_err(err)?;
        self.save_snapshot(meta, file)?;
        tracing::info!(last_log_index = ?meta.last_log_id.map(|l| l.index), pairs, "installed catalog snapshot from the leader");
        Ok(())
    }

    /// Saves, for a snapshot being built, the value each key of `batch` has before the batch
    /// writes it (only a key's first write since the cut matters).
    fn save_for_cut(&self, batch: &WriteBatch) -> Result<(), crate::Error> {
        let mut cut = self.cut.lock().unwrap_or_else(|p| p.into_inner());
        let Some(cut) = cut.as_mut() else { return Ok(()) };
        for key in batch.keys() {
            if Catalog::is_change_cursor(key) || cut.before.contains_key(key) {
                continue;
            }
            let passed = cut.scanned.as_deref().is_some_and(|s| key <= s);
            cut.before.insert(key.to_vec(), (self.tree.get(key)?, passed));
        }
        Ok(())
    }
}

/// Builds one snapshot: the catalog as of `last_log_id` (see the module's notes on the cut).
pub struct SnapshotBuilder {
    store: StateMachineStore,
    last_log_id: Option<LogId>,
    last_membership: StoredMembership,
    cut_id: u64,
}

impl Drop for SnapshotBuilder {
    fn drop(&mut self) {
        // However the build ended, applies stop saving values for it.
        let mut cut = self.store.cut.lock().unwrap_or_else(|p| p.into_inner());
        if cut.as_ref().is_some_and(|c| c.id == self.cut_id) {
            *cut = None;
        }
    }
}

impl SnapshotBuilder {
    fn build(
        store: &StateMachineStore,
        last_log_id: Option<LogId>,
        last_membership: StoredMembership,
    ) -> Result<(SnapshotMeta, std::fs::File, u64, u64), StorageError> {
        // The catalog must be durable before logs covered by this snapshot may be purged.
        store.engine.flush().map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let seq = store.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match &last_log_id {
            Some(l) => format!("{}-{}-{seq}", l.leader_id.term, l.index),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id: snapshot_id.clone() };
        let file = format!("snapshot-{snapshot_id}-{}.img", std::process::id());
        let cut = store.cut.clone();
        let lock = || cut.lock().unwrap_or_else(|p| p.into_inner());
        let scanned = store.tree.iter().filter_map(|pair| {
            let (k, v) = match pair {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e)),
            };
            if Catalog::is_change_cursor(&k) {
                return None;
            }
            let mut guard = lock();
            let Some(cut) = guard.as_mut() else {
                return Some(Err(crate::Error::Storage("the snapshot's cut ended before its scan".into())));
            };
            cut.scanned = Some(k.clone());
            // Written since the cut: its value at the cut is emitted after the scan.
            if cut.before.contains_key(&k) {
                return None;
            }
            Some(Ok((k, v)))
        });
        // Keys written since the cut that the scan had not reached: their values at the cut (a
        // key created since then has none, and is left out).
        let rest = std::iter::from_fn({
            let mut saved: Option<std::vec::IntoIter<(Vec<u8>, Vec<u8>)>> = None;
            move || {
                let saved = saved.get_or_insert_with(|| {
                    let taken = lock().take().map(|c| c.before).unwrap_or_default();
                    taken
                        .into_iter()
                        .filter_map(|(k, (v, passed))| (!passed).then_some(v).flatten().map(|v| (k, v)))
                        .collect::<Vec<_>>()
                        .into_iter()
                });
                saved.next().map(Ok)
            }
        });
        let (pairs, bytes) = write_image_file(&store.dir, &file, scanned.chain(rest))
            .map_err(|e| snap_err(&meta, ErrorVerb::Write, e))?;
        let (meta, data) = store.save_snapshot(&meta, &file)?;
        Ok((meta, data, pairs, bytes))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (store, last_log_id, membership) = (self.store.clone(), self.last_log_id, self.last_membership.clone());
        let started = std::time::Instant::now();
        let (meta, data, pairs, bytes) =
            tokio::task::spawn_blocking(move || SnapshotBuilder::build(&store, last_log_id, membership))
                .await
                .map_err(|e| sm_err(ErrorVerb::Write, e))??;
        tracing::info!(last_log_index = ?meta.last_log_id.map(|l| l.index), pairs, bytes,
            ms = started.elapsed().as_millis() as u64, "built catalog snapshot");
        metrics::counter!("artstore_raft_snapshots_built_total").increment(1);
        Ok(Snapshot { meta, snapshot: Box::new(tokio::fs::File::from_std(data)) })
    }
}
impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

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
            self.save_for_cut(&batch).map_err(|e| sm_err(ErrorVerb::Read, e))?;
            self.tree.apply(batch).map_err(|e| sm_err(ErrorVerb::Write, e))?;
            results.push(result);
        }
        metrics::counter!("artstore_raft_entries_applied_total").increment(results.len() as u64);
        Ok(results)
    }

    /// Called between two applies: this is the moment the snapshot shows.
    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let cut_id = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Cut { id: cut_id, scanned: None, before: BTreeMap::new() });
        // Unreadable meta shows as a snapshot of nothing; the build's own reads report errors.
        let last_log_id = self.get_json::<Option<LogId>>(LAST_APPLIED).ok().flatten().flatten();
        let last_membership = self.get_json(MEMBERSHIP).ok().flatten().unwrap_or_default();
        SnapshotBuilder { store: self.clone(), last_log_id, last_membership, cut_id }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("incoming-{seq}-{}.img", std::process::id()));
        if let Some(abandoned) = self.receiving.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = std::fs::remove_file(abandoned);
        }
        // openraft seeks and writes its chunks (and may read them back).
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| sm_err(ErrorVerb::Write, format!("{}: {e}", path.display())))?;
        *self.receiving.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let err = |verb, e: &dyn std::fmt::Display| snap_err(meta, verb, e);
        let mut snapshot = snapshot;
        {
            use tokio::io::AsyncWriteExt;
            snapshot.flush().await.map_err(|e| err(ErrorVerb::Write, &e))?;
            snapshot.sync_all().await.map_err(|e| err(ErrorVerb::Write, &e))?;
        }
        drop(snapshot);
        let path = self
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| err(ErrorVerb::Write, &"no snapshot was being received"))?;
        // A build in progress reads the catalog the install is about to replace: let it finish.
        while self.cut.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            let err = |verb, e: &dyn std::fmt::Display| snap_err(&meta, verb, e);
            let started = std::time::Instant::now();
            let input = std::fs::File::open(&path).map_err(|e| err(ErrorVerb::Read, &e))?;
            let (pairs, files) = image::verify(BufReader::with_capacity(1 << 20, input), |k| {
                k.starts_with(Catalog::FILE_PREFIX.as_bytes())
            })
            .map_err(|e| {
                let _ = std::fs::remove_file(&path);
                err(ErrorVerb::Read, &e)
            })?;
            // Named by this node (the sender's snapshot id is not a file name).
            let seq = this.snapshot_seq.fetch_add(1, Ordering::Relaxed);
            let file = format!("snapshot-installed-{seq}-{}.img", std::process::id());
            std::fs::rename(&path, this.dir.join(&file)).map_err(|e| err(ErrorVerb::Write, &e))?;
            sync_dir(&this.dir).map_err(|e| err(ErrorVerb::Write, &e))?;
            let mark = serde_json::to_vec(&Installing { meta: meta.clone(), file: file.clone() })
                .map_err(|e| err(ErrorVerb::Write, &e))?;
            this.snapshots.insert(INSTALLING, &mark).map_err(|e| err(ErrorVerb::Write, &e))?;
            this.engine.flush().map_err(|e| err(ErrorVerb::Write, &e))?;
            tracing::info!(snapshot = %meta.snapshot_id, pairs, files, "received a catalog snapshot; installing it");
            this.replace_catalog(&meta, &file)?;
            tracing::info!(ms = started.elapsed().as_millis() as u64, "snapshot install finished");
            metrics::counter!("artstore_raft_snapshots_installed_total").increment(1);
            Ok(())
        })
        .await
        .map_err(|e| sm_err(ErrorVerb::Write, e))?
    }

    /// Meta and file are read, and the file opened, under the lock that replacing the snapshot
    /// takes: a build finishing meanwhile can neither pair its file with the old meta nor
    /// remove the old file before it is open (an open file outlives its removal).
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = {
            let _current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            self.open_current()?
        };
        Ok(current.map(|(meta, data)| Snapshot { meta, snapshot: Box::new(tokio::fs::File::from_std(data)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Command;
    use openraft::{CommittedLeaderId, Entry};

    fn settings(from: u64, n: u64) -> Vec<crate::types::Entry> {
        (from..from + n)
            .map(|i| Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
                payload: EntryPayload::Normal(Command::SetSetting { key: format!("k{i}"), value: format!("v{i}") }),
            })
            .collect()
    }

    fn reopen(path: &Path) -> Engine {
        // sled's background flusher may hold the file lock a moment after the last handle drops.
        for _ in 0..100 {
            if let Ok(e) = Engine::open(path) {
                return e;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Engine::open(path).unwrap()
    }

    /// A store holding `n` settings and the snapshot built of it.
    async fn snapshot_of(n: u64) -> (tempfile::TempDir, StateMachineStore, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateMachineStore::open(&Engine::open(dir.path()).unwrap()).unwrap();
        store.apply(settings(1, n)).await.unwrap();
        let snapshot = store.get_snapshot_builder().await.build_snapshot().await.unwrap();
        (dir, store, snapshot)
    }

    /// While snapshots are built one after another, the current snapshot read at any moment is a
    /// whole one: its file exists and shows exactly the log position its meta names.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_current_snapshot_is_read_whole_while_new_ones_replace_it() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateMachineStore::open(&Engine::open(dir.path()).unwrap()).unwrap();
        store.apply(settings(1, 5)).await.unwrap();
        store.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checker = tokio::spawn({
            let (mut reader, stop) = (store.clone(), stop.clone());
            async move {
                let mut checked = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut snap = reader.get_current_snapshot().await.expect("the current snapshot opens").unwrap();
                    let mut bytes = Vec::new();
                    snap.snapshot.read_to_end(&mut bytes).await.unwrap();
                    let applied = ImageReader::new(&bytes[..])
                        .map(Result::unwrap)
                        .find(|(k, _)| k == LAST_APPLIED)
                        .map(|(_, v)| serde_json::from_slice::<Option<LogId>>(&v).unwrap())
                        .expect("the image holds the last applied position");
                    assert_eq!(applied, snap.meta.last_log_id, "meta and file of different snapshots");
                    checked += 1;
                }
                checked
            }
        });
        for round in 0..150 {
            store.apply(settings(6 + round * 2, 2)).await.unwrap();
            store.get_snapshot_builder().await.build_snapshot().await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(checker.await.unwrap() > 10, "the reader hardly ran");
    }

    /// A crash between the install's mark and its last batch leaves a half-replaced catalog; the
    /// next open finishes the install from the file before anything reads the catalog.
    #[tokio::test]
    async fn an_interrupted_install_is_finished_at_open() {
        let (_a_dir, a, snapshot) = snapshot_of(50).await;
        let a_file = a.current_file().unwrap().unwrap();

        let b_dir = tempfile::tempdir().unwrap();
        {
            let mut b = StateMachineStore::open(&Engine::open(b_dir.path()).unwrap()).unwrap();
            b.apply(settings(1, 3)).await.unwrap();
            b.apply(vec![Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), 4),
                payload: EntryPayload::Normal(Command::SetSetting { key: "stale".into(), value: "x".into() }),
            }])
            .await
            .unwrap();
            std::fs::copy(a.dir.join(&a_file), b.dir.join("received.img")).unwrap();
            let mark = Installing { meta: snapshot.meta.clone(), file: "received.img".into() };
            b.snapshots.insert(INSTALLING, &serde_json::to_vec(&mark).unwrap()).unwrap();
            // Half of the old catalog is gone when the node dies.
            b.tree.remove(b"setting/k1").unwrap();
            b.engine.flush().unwrap();
        }
        let mut b = StateMachineStore::open(&reopen(b_dir.path())).unwrap();
        assert_eq!(b.catalog().settings().unwrap(), a.catalog().settings().unwrap());
        assert_eq!(b.applied_state().await.unwrap().0, snapshot.meta.last_log_id);
        assert!(b.snapshots.get(INSTALLING).unwrap().is_none(), "the mark is cleared");
        assert_eq!(b.current_file().unwrap().as_deref(), Some("received.img"));
        let current = b.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.snapshot_id, snapshot.meta.snapshot_id);
    }

    /// A record whose version counter is exhausted is refused a change, the same way on every
    /// node, instead of overflowing while the entry is applied (which stopped Raft for good).
    #[tokio::test]
    async fn a_change_to_a_record_with_an_exhausted_version_is_refused_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateMachineStore::open(&Engine::open(dir.path()).unwrap()).unwrap();
        let file = crate::FileRecord { id: "f".into(), name: "f".into(), version: u64::MAX, ..Default::default() };
        let entry = |i: u64, c: Command| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(c),
        };
        let changes = crate::FileChanges { description: Some("x".into()), ..Default::default() };
        let results = store
            .apply(vec![
                entry(1, Command::CreateFile { file, idempotency: None }),
                entry(2, Command::UpdateFile { id: "f".into(), changes, at: 1 }),
            ])
            .await
            .unwrap();
        assert!(results[0].rejected.is_none(), "{:?}", results[0]);
        assert!(
            matches!(&results[1].rejected, Some(crate::Refusal::Invalid(m)) if m.contains("exhausted")),
            "{:?}",
            results[1]
        );
        assert_eq!(store.catalog().file("f").unwrap().unwrap().version, u64::MAX);
    }

    /// A build that finishes after a newer snapshot was installed (it read the catalog before
    /// the install) replaces nothing: the installed snapshot stays current and whole, and the
    /// build answers with it.
    #[tokio::test]
    async fn a_build_finishing_after_a_newer_install_keeps_the_installed_snapshot() {
        let (_a_dir, a, snapshot) = snapshot_of(50).await;
        let (_b_dir, mut b, older) = snapshot_of(5).await;
        let received = b.begin_receiving_snapshot().await.unwrap();
        let mut received = *received;
        {
            use tokio::io::AsyncWriteExt;
            let image = std::fs::read(a.dir.join(a.current_file().unwrap().unwrap())).unwrap();
            received.write_all(&image).await.unwrap();
        }
        b.install_snapshot(&snapshot.meta, Box::new(received)).await.unwrap();
        // The late build wrote its image of index 5 and now records it.
        let late = "snapshot-late.img";
        std::fs::write(b.dir.join(late), b"an image of index 5").unwrap();
        let (meta, _file) = b.save_snapshot(&older.meta, late).unwrap();
        assert_eq!(meta.last_log_id, snapshot.meta.last_log_id, "the build answers with the installed snapshot");
        assert!(!b.dir.join(late).exists(), "the older image is removed");
        let current = b.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.snapshot_id, snapshot.meta.snapshot_id);
        assert_eq!(b.applied_state().await.unwrap().0, snapshot.meta.last_log_id);
    }

    /// A format 1 database kept its snapshot inside sled; opening it moves the snapshot into a
    /// file, which peers are then sent, and leaves no stray files.
    #[tokio::test]
    async fn a_format_one_snapshot_moves_into_a_file() {
        #[derive(Serialize)]
        struct One {
            format: u32,
            pairs: Vec<(Vec<u8>, Vec<u8>)>,
        }
        let dir = tempfile::tempdir().unwrap();
        let pairs = vec![(b"setting/a".to_vec(), b"\"1\"".to_vec()), (b"setting/b".to_vec(), b"\"2\"".to_vec())];
        {
            let engine = Engine::open(dir.path()).unwrap();
            let snapshots = engine.tree("snapshot").unwrap();
            snapshots
                .insert(SNAPSHOT_DATA, &bincode::serialize(&One { format: 1, pairs: pairs.clone() }).unwrap())
                .unwrap();
            let meta = SnapshotMeta { snapshot_id: "1-9-0".into(), ..Default::default() };
            snapshots.insert(SNAPSHOT_META, &serde_json::to_vec(&meta).unwrap()).unwrap();
            std::fs::create_dir_all(dir.path().join(SNAPSHOTS_DIR)).unwrap();
            std::fs::write(dir.path().join(SNAPSHOTS_DIR).join("incoming-3-1.img"), b"left by a crash").unwrap();
            engine.flush().unwrap();
        }
        let mut sm = StateMachineStore::open(&reopen(dir.path())).unwrap();
        assert!(sm.snapshots.get(SNAPSHOT_DATA).unwrap().is_none());
        let files: Vec<_> = std::fs::read_dir(&sm.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files.len(), 1, "only the current snapshot's file stays: {files:?}");
        let mut current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.snapshot_id, "1-9-0");
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut current.snapshot, &mut bytes).await.unwrap();
        assert_eq!(ImageReader::new(&bytes[..]).collect::<Result<Vec<_>, _>>().unwrap(), pairs);
        let format = sm.engine.tree("format").unwrap().get_string("store").unwrap();
        assert_eq!(format, Some(super::super::STORE_FORMAT.to_string()));
    }

    /// A received snapshot that is cut short or altered is refused before the catalog changes.
    #[tokio::test]
    async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
        use tokio::io::AsyncWriteExt;
        let (_a_dir, a, snapshot) = snapshot_of(20).await;
        let bytes = std::fs::read(a.dir.join(a.current_file().unwrap().unwrap())).unwrap();

        let b_dir = tempfile::tempdir().unwrap();
        let mut b = StateMachineStore::open(&Engine::open(b_dir.path()).unwrap()).unwrap();
        b.apply(settings(1, 2)).await.unwrap();
        let before = b.catalog().settings().unwrap();
        for damaged in [bytes[..bytes.len() - 1].to_vec(), {
            let mut d = bytes.clone();
            d[20] ^= 4;
            d
        }] {
            let mut into = b.begin_receiving_snapshot().await.unwrap();
            into.write_all(&damaged).await.unwrap();
            let e = b.install_snapshot(&snapshot.meta, into).await.unwrap_err().to_string();
            assert!(e.contains("catalog image"), "{e}");
            assert_eq!(b.catalog().settings().unwrap(), before);
            assert!(b.snapshots.get(INSTALLING).unwrap().is_none());
        }
    }
}
