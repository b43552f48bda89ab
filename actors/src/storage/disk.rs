//! One local storage element on disk: content-addressed chunk files and sidecars.
//!
//! Layout under the element's folder: `chunks/<first two hex digits>/<sha256>` and
//! `files/YYYY/MM/DD/HH/<name stem>_<account>_<YYYYMMDDTHHMMSS>_<id>.attr.json`.
//! Every write is atomic (temporary file, rename). Chunks are durable before `put_chunk` returns
//! (the element's group sync); sidecars once the writer calls [`Element::sync`] after a batch.
//! These functions block; callers run them with `spawn_blocking`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Name of the identity file at the root of a local element.
pub const IDENTITY_FILE: &str = "element.json";

/// Whose element a folder is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub node_id: u64,
    pub element: String,
}

/// Why a chunk could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkReadError {
    /// The replica is gone or its bytes do not hash to its name: it needs repair.
    Damaged(String),
    /// Anything else (I/O error, element unreachable): may pass by itself.
    Failed(String),
}

impl std::fmt::Display for ChunkReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Damaged(m) | Self::Failed(m) => f.write_str(m),
        }
    }
}

use sha2::{Digest, Sha256};

/// A local element: its name and folder.
#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    pub root: PathBuf,
    sync: Arc<GroupSync>,
}

impl Element {
    pub fn new(name: String, root: PathBuf) -> Self {
        let sync = GroupSync::start(root.clone());
        Self { name, root, sync }
    }
}

/// Group commit for an element's files: writers that need durability queue up, and one thread
/// makes everything written so far durable with a single `syncfs` for all of them (file data,
/// renames and directory entries alike), instead of two fsyncs per file.
pub struct GroupSync {
    tx: Mutex<std::sync::mpsc::Sender<std::sync::mpsc::Sender<Result<(), String>>>>,
}

impl std::fmt::Debug for GroupSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupSync")
    }
}

impl GroupSync {
    fn start(root: PathBuf) -> Arc<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<Result<(), String>>>();
        let spawned = std::thread::Builder::new().name("element-sync".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut waiters = vec![first];
                waiters.extend(rx.try_iter());
                let started = std::time::Instant::now();
                // Opened for every sync, not kept: a file system mounted over the folder since
                // must be the one synced.
                let result = File::open(&root)
                    .and_then(|f| rustix::fs::syncfs(&f).map_err(std::io::Error::from))
                    .map_err(|e| format!("{}: sync: {e}", root.display()));
                metrics::counter!("artstore_syncs_total", "kind" => "element_syncfs").increment(1);
                metrics::histogram!("artstore_storage_sync_seconds").record(started.elapsed().as_secs_f64());
                metrics::histogram!("artstore_storage_sync_batch_size").record(waiters.len() as f64);
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start an element's sync thread; writes will fail");
        }
        Arc::new(Self { tx: Mutex::new(tx) })
    }

    /// Returns once everything written to the element's file system before the call is durable.
    pub fn sync(&self) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.lock().map_err(|_| "sync queue poisoned".to_string())?.send(tx).map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())?
    }
}

/// Replaces `path` with `bytes` atomically (temporary file, rename); durable only after the
/// element's next group sync.
fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().ok_or_else(|| "path has no parent".to_string())?;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
        rand::random::<u64>()
    ));
    let written = create_in_folder(dir, &tmp).and_then(|mut f| f.write_all(bytes)).and_then(|_| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Creates `file` in `dir`, making the folder only when it is missing: the folders of chunks and
/// sidecars nearly always exist, and asking first (`mkdir`, then `stat` when it exists) cost two
/// system calls per file written.
fn create_in_folder(dir: &Path, file: &Path) -> std::io::Result<File> {
    match File::create(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            File::create(file)
        }
        other => other,
    }
}

/// Like [`write_atomic`], with durability from the element's group sync.
fn write_grouped(path: &Path, bytes: &[u8], sync: &GroupSync) -> Result<(), String> {
    write_replace(path, bytes)?;
    sync.sync()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `hash` can name a chunk: 64 lowercase hex digits, as [`sha256_hex`] writes them.
/// Checked before a name becomes a path or an object key, whoever supplied it (a peer, a
/// recovered record), so that no name reaches outside the chunk folder.
pub fn is_chunk_name(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Refusal of a name that is not a chunk name.
pub(crate) fn not_a_chunk_name(hash: &str) -> String {
    format!("{:?} is not a SHA-256 hex digest", hash.chars().take(80).collect::<String>())
}

pub(crate) fn chunk_path(root: &Path, hash: &str) -> PathBuf {
    root.join("chunks").join(&hash[..2.min(hash.len())]).join(hash)
}

/// The bytes of the chunk file named `hash` in the element folder `root`, unverified. A name that
/// is not a digest is never opened; a file longer than any chunk is damaged (and not read further).
pub(crate) fn read_chunk_file(root: &Path, hash: &str) -> Result<Vec<u8>, ChunkReadError> {
    if !is_chunk_name(hash) {
        return Err(ChunkReadError::Failed(not_a_chunk_name(hash)));
    }
    let path = chunk_path(root, hash);
    let mut bytes = Vec::new();
    File::open(&path).and_then(|f| f.take(super::MAX_CHUNK + 1).read_to_end(&mut bytes)).map_err(|e| {
        let msg = format!("{}: {e}", path.display());
        if e.kind() == std::io::ErrorKind::NotFound {
            ChunkReadError::Damaged(msg)
        } else {
            ChunkReadError::Failed(msg)
        }
    })?;
    if bytes.len() as u64 > super::MAX_CHUNK {
        return Err(ChunkReadError::Damaged(format!(
            "{}: longer than any chunk ({} bytes at most)",
            path.display(),
            super::MAX_CHUNK
        )));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically and durably.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("path has no parent"))?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        metrics::counter!("artstore_syncs_total", "kind" => "file").increment(2);
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl Element {
    /// Stores a chunk after checking its hash; a chunk already present (same content) is kept.
    /// Returns whether new bytes were written.
    pub fn put_chunk(&self, hash: &str, bytes: &[u8]) -> Result<bool, String> {
        if !is_chunk_name(hash) {
            return Err(not_a_chunk_name(hash));
        }
        let actual = sha256_hex(bytes);
        if actual != hash {
            return Err(format!("chunk content hashes to {actual}, not {hash}"));
        }
        let path = chunk_path(&self.root, hash);
        // An intact copy is kept; a damaged one (same length, wrong bytes) is replaced.
        if fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) && self.read_chunk(hash).is_ok() {
            return Ok(false);
        }
        write_grouped(&path, bytes, &self.sync)?;
        Ok(true)
    }

    /// Writes `element.json` (which node and element this folder is), so that `artstore recover`
    /// can tell whose replicas a folder holds.
    pub fn write_identity(&self, node_id: u64) -> Result<(), String> {
        let path = self.root.join(IDENTITY_FILE);
        let json = serde_json::to_vec_pretty(&Identity { node_id, element: self.name.clone() }).unwrap_or_default();
        if fs::read(&path).is_ok_and(|old| old == json) {
            return Ok(());
        }
        write_atomic(&path, &json).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether any sidecar exists under `files/`.
    pub fn has_sidecars(&self) -> bool {
        fn walk(p: &Path) -> bool {
            let Ok(entries) = fs::read_dir(p) else { return false };
            entries.flatten().any(|e| {
                let path = e.path();
                if path.is_dir() {
                    walk(&path)
                } else {
                    path.to_string_lossy().ends_with(".attr.json")
                }
            })
        }
        walk(&self.root.join("files"))
    }

    /// Reads a chunk and checks it against its name.
    pub fn read_chunk(&self, hash: &str) -> Result<Vec<u8>, ChunkReadError> {
        let bytes = self.read_chunk_unverified(hash)?;
        let actual = sha256_hex(&bytes);
        if actual != hash {
            return Err(ChunkReadError::Damaged(format!("chunk {hash} on disk is corrupt (hashes to {actual})")));
        }
        Ok(bytes)
    }

    /// Reads a chunk without hashing it: for a peer, which verifies what it receives anyway.
    pub fn read_chunk_unverified(&self, hash: &str) -> Result<Vec<u8>, ChunkReadError> {
        read_chunk_file(&self.root, hash)
    }

    fn sidecar_path(&self, relative: &str) -> Result<PathBuf, String> {
        if !super::sidecar::is_safe_relative(relative) {
            return Err(format!("bad sidecar path {relative:?}"));
        }
        Ok(self.root.join("files").join(relative))
    }

    /// Writes (or replaces) a sidecar at its relative path, atomically; durable after the next
    /// [`Element::sync`] (sidecars are written in batches, one sync for all of them).
    pub fn put_sidecar(&self, relative: &str, json: &[u8]) -> Result<(), String> {
        write_replace(&self.sidecar_path(relative)?, json)
    }

    /// Removes a sidecar (gone already is fine); durable after the next [`Element::sync`].
    pub fn remove_sidecar(&self, relative: &str) -> Result<(), String> {
        let path = self.sidecar_path(relative)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: {e}", path.display())),
            _ => Ok(()),
        }
    }

    /// Removes the sidecars of file `id` in the folder of `relative` other than `relative` itself
    /// (written under an earlier name of the file).
    pub fn remove_other_sidecars(&self, relative: &str, id: &str) -> Result<(), String> {
        let path = self.sidecar_path(relative)?;
        let Some(dir) = path.parent() else { return Ok(()) };
        let keep = path.file_name().map(|n| n.to_os_string());
        let suffix = format!("_{id}.attr.json");
        let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if Some(&name) != keep.as_ref() && name.to_string_lossy().ends_with(&suffix) {
                fs::remove_file(entry.path()).map_err(|e| format!("{}: {e}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// Makes everything written to the element so far durable.
    pub fn sync(&self) -> Result<(), String> {
        self.sync.sync()
    }

    /// Deletes chunk files (and leftover temporary files) older than `grace` that `keep` rejects;
    /// returns (files, bytes) removed.
    pub fn collect_garbage(&self, grace: std::time::Duration, keep: &dyn Fn(&str) -> bool) -> (u64, u64) {
        let (mut files, mut bytes) = (0, 0);
        let Ok(dirs) = fs::read_dir(self.root.join("chunks")) else { return (0, 0) };
        for dir in dirs.flatten() {
            let Ok(entries) = fs::read_dir(dir.path()) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(meta) = entry.metadata() else { continue };
                let old = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age >= grace);
                let leftover = name.starts_with('.') && name.contains(".tmp-");
                if old && (leftover || !keep(&name)) && fs::remove_file(entry.path()).is_ok() {
                    files += 1;
                    bytes += meta.len();
                }
            }
        }
        (files, bytes)
    }

    /// Bytes used by chunk files (a walk; called at start-up and periodically).
    pub fn used_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            fs::read_dir(p)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.root.join("chunks"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_checked_on_the_way_in_and_out() {
        let dir = tempfile::tempdir().unwrap();
        let e = Element::new("e".into(), dir.path().into());
        let data = b"hello chunk";
        let h = sha256_hex(data);
        assert!(e.put_chunk(&sha256_hex(b"other"), data).is_err());
        e.put_chunk(&h, data).unwrap();
        e.put_chunk(&h, data).unwrap();
        assert_eq!(e.read_chunk(&h).unwrap(), data);
        // Bit rot is detected on read.
        fs::write(chunk_path(dir.path(), &h), b"hellO chunk").unwrap();
        assert!(matches!(e.read_chunk(&h).unwrap_err(), ChunkReadError::Damaged(m) if m.contains("corrupt")));
    }

    #[test]
    fn only_chunk_names_become_paths_and_reads_stop_at_the_largest_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let e = Element::new("e".into(), dir.path().join("element"));
        let secret = dir.path().join("secret");
        fs::write(&secret, b"not a chunk").unwrap();
        let outside = secret.display().to_string();
        let h = sha256_hex(b"x");
        for name in [outside.as_str(), "../secret", "/dev/zero", &h.to_uppercase(), &h[..63], ""] {
            for read in [e.read_chunk(name), e.read_chunk_unverified(name)] {
                match read {
                    Err(ChunkReadError::Failed(m)) => assert!(m.contains("not a SHA-256"), "{name:?}: {m}"),
                    other => panic!("{name:?} was read as a chunk: {other:?}"),
                }
            }
            assert!(e.put_chunk(name, b"x").unwrap_err().contains("not a SHA-256"), "{name:?}");
        }
        // A chunk file longer than any chunk is damaged, and read no further than that.
        let path = chunk_path(&e.root, &h);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::File::create(&path).unwrap().set_len(super::super::MAX_CHUNK + 4096).unwrap();
        assert!(
            matches!(e.read_chunk_unverified(&h), Err(ChunkReadError::Damaged(m)) if m.contains("longer than any chunk"))
        );
    }

    #[test]
    fn folders_are_made_when_missing_and_reused_after() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("files/2026/12/07/13/report.attr.json");
        write_replace(&deep, b"{}").unwrap();
        assert_eq!(fs::read(&deep).unwrap(), b"{}");
        let sibling = deep.with_file_name("other.attr.json");
        write_replace(&sibling, b"[]").unwrap();
        write_replace(&deep, b"{\"v\":2}").unwrap();
        assert_eq!(fs::read(&deep).unwrap(), b"{\"v\":2}", "replaced in place");
        assert_eq!(fs::read(&sibling).unwrap(), b"[]");
        let left: Vec<_> = fs::read_dir(deep.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 2, "no temporary file left behind: {left:?}");
        // A folder that cannot be made is an error naming the file, not a panic.
        fs::write(dir.path().join("blocker"), b"").unwrap();
        let e = write_replace(&dir.path().join("blocker/x/y.json"), b"{}").unwrap_err();
        assert!(e.contains("y.json"), "{e}");
    }
}
