//! Rebuilding file records from what is on disk (`artstore recover`), for the disaster in which
//! every node's catalog is lost but the element folders survive.
//!
//! Every local element folder names its node and element in `element.json`; every replica holder
//! keeps a sidecar per file under `files/` and the chunks under `chunks/`. A record is the sidecar's
//! metadata with, for each chunk, every (node, element) whose copy is present and hashes right.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use artstore_raft::{ChunkRef, FileRecord, Replica, RetentionPolicy};

use super::disk::{read_chunk_file, sha256_hex, Identity, IDENTITY_FILE};
use super::sidecar::Sidecar;

/// A file some of whose chunks have no intact copy in the folders scanned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Incomplete {
    pub id: String,
    pub name: String,
    pub missing_chunks: Vec<String>,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Files with an intact copy of every chunk, ready to be committed.
    pub files: Vec<FileRecord>,
    pub incomplete: Vec<Incomplete>,
    pub elements: Vec<(Identity, PathBuf)>,
    pub sidecars: u64,
    pub chunks_verified: u64,
}

/// Every element folder (one holding `element.json`) at or under `dir`.
fn element_roots(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.join(IDENTITY_FILE).is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "chunks" && n != "files") {
                element_roots(&p, out);
            }
        }
    }
}

fn sidecars(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                sidecars(&p, out);
            } else if p.to_string_lossy().ends_with(".attr.json") {
                out.push(p);
            }
        }
    }
}

fn millis(field: &str, t: &str) -> Result<i64, String> {
    let t = humantime::parse_rfc3339_weak(t).map_err(|e| format!("{field}: {t:?}: {e}"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0))
}

fn record(s: &Sidecar) -> Result<FileRecord, String> {
    let created_at = millis("created_at", &s.created_at)?;
    let policy = match s.retention_policy.as_deref() {
        Some("temporary") => RetentionPolicy::Temporary,
        _ => RetentionPolicy::Permanent,
    };
    Ok(FileRecord {
        id: s.id.clone(),
        name: s.name.clone(),
        content_type: s.content_type.clone(),
        size: s.size,
        sha256: s.sha256.clone(),
        chunk_size: s.chunk_size.unwrap_or_else(|| s.chunks.iter().map(|c| c.size).max().unwrap_or(0)),
        chunks: s
            .chunks
            .iter()
            .map(|c| ChunkRef {
                sha256: c.sha256.clone(),
                size: c.size,
                compressed: c.compressed,
                replicas: Vec::new(),
                missing: Vec::new(),
            })
            .collect(),
        description: s.description.clone(),
        tags: s.tags.clone(),
        attributes_json: serde_json::to_string(&s.custom_attributes).unwrap_or_else(|_| "{}".into()),
        policy,
        expires_at: s.expires_at.as_deref().map(|t| millis("expires_at", t)).transpose()?,
        retention_until: s.retention_until.as_deref().map(|t| millis("retention_until", t)).transpose()?,
        created_at,
        created_by: s.created_by.clone(),
        updated_at: created_at,
        version: s.version,
        deleted_at: None,
    })
}

/// Whether the chunk file named `sha256` under `root` is there and intact.
fn intact_chunk(root: &Path, sha256: &str) -> bool {
    read_chunk_file(root, sha256).is_ok_and(|b| sha256_hex(&b) == sha256)
}

/// Scans `dirs` (node data folders or element folders). `progress(done, total)` is called as
/// sidecars are processed. Fails on a folder with no element in it or an unreadable identity.
pub fn scan(dirs: &[PathBuf], progress: &dyn Fn(u64, u64)) -> Result<Recovery, String> {
    let mut rec = Recovery::default();
    for d in dirs {
        let mut roots = Vec::new();
        element_roots(d, &mut roots);
        if roots.is_empty() {
            return Err(format!("{}: no storage element found (no {IDENTITY_FILE} at or under it)", d.display()));
        }
        for root in roots {
            let id: Identity = std::fs::read(root.join(IDENTITY_FILE))
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                .map_err(|e| format!("{}: {e}", root.join(IDENTITY_FILE).display()))?;
            if !rec.elements.iter().any(|(i, _)| *i == id) {
                rec.elements.push((id, root));
            }
        }
    }
    // Sidecars of every element, newest version of each file winning.
    let mut work: Vec<(usize, PathBuf)> = Vec::new();
    for (i, (_, root)) in rec.elements.iter().enumerate() {
        let mut found = Vec::new();
        sidecars(&root.join("files"), &mut found);
        work.extend(found.into_iter().map(|p| (i, p)));
    }
    let total = work.len() as u64;
    let mut files: BTreeMap<String, FileRecord> = BTreeMap::new();
    for (done, (i, path)) in work.iter().enumerate() {
        progress(done as u64, total);
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let sidecar = Sidecar::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        rec.sidecars += 1;
        let mut f = record(&sidecar).map_err(|e| format!("{}: {e}", path.display()))?;
        let (identity, root) = &rec.elements[*i];
        if let Some(existing) = files.get(&f.id) {
            if existing.version >= f.version {
                f = existing.clone();
            } else {
                // A newer sidecar: keep the replicas found so far.
                for (new, old) in f.chunks.iter_mut().zip(&existing.chunks) {
                    if new.sha256 == old.sha256 {
                        new.replicas = old.replicas.clone();
                    }
                }
            }
        }
        for c in f.chunks.iter_mut() {
            if c.replicas.iter().any(|r| r.node_id == identity.node_id && r.element == identity.element) {
                continue;
            }
            let intact = intact_chunk(root, &c.sha256);
            if intact {
                rec.chunks_verified += 1;
                c.replicas.push(Replica { node_id: identity.node_id, element: identity.element.clone() });
            }
        }
        files.insert(f.id.clone(), f);
    }
    progress(total, total);
    for (_, f) in files {
        let missing: Vec<String> =
            f.chunks.iter().filter(|c| c.replicas.is_empty()).map(|c| c.sha256.clone()).collect();
        // A sidecar without a chunk list (version 1, of the original system) names no bytes to
        // serve: the file is incomplete, not empty.
        let held: u64 = f.chunks.iter().map(|c| c.size).sum();
        if missing.is_empty() && held == f.size {
            rec.files.push(f);
        } else {
            rec.incomplete.push(Incomplete { id: f.id, name: f.name, missing_chunks: missing });
        }
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::super::disk::Element;
    use super::*;

    fn sidecar_of(id: &str, chunks: Vec<ChunkRef>) -> Vec<u8> {
        let size = chunks.iter().map(|c| c.size).sum();
        let f = FileRecord {
            id: id.into(),
            name: format!("{id}.bin"),
            content_type: "application/octet-stream".into(),
            size,
            chunk_size: 4 << 20,
            chunks,
            created_at: 1_700_000_000_000,
            version: 1,
            ..Default::default()
        };
        serde_json::to_vec(&Sidecar::from_record(&f)).unwrap()
    }

    fn chunk(sha256: &str, size: u64) -> ChunkRef {
        ChunkRef { sha256: sha256.into(), size, compressed: false, replicas: Vec::new(), missing: Vec::new() }
    }

    #[test]
    fn a_scan_keeps_only_files_whose_chunks_are_named_by_digests_intact_and_adding_up() {
        let dir = tempfile::tempdir().unwrap();
        let e = Element::new("default".into(), dir.path().join("element"));
        e.write_identity(1).unwrap();
        let data = b"recovered bytes";
        let h = sha256_hex(data);
        e.put_chunk(&h, data).unwrap();
        std::fs::write(dir.path().join("outside"), b"not a chunk").unwrap();
        e.put_sidecar("a/good.attr.json", &sidecar_of("good", vec![chunk(&h, data.len() as u64)])).unwrap();
        // A digest that is a path is never opened, even when the file it names exists.
        e.put_sidecar("a/path.attr.json", &sidecar_of("path", vec![chunk("../../outside", 11)])).unwrap();
        // A version 1 sidecar lists no chunks: its bytes cannot be served.
        let v1 = br#"{"file_id":"f1","original_filename":"old.pdf","file_size":42,"checksum":"x","created_at":"2020-01-01T00:00:00Z"}"#;
        e.put_sidecar("a/old.attr.json", v1).unwrap();
        e.sync().unwrap();

        let rec = scan(&[dir.path().join("element")], &|_, _| {}).unwrap();
        let complete: Vec<&str> = rec.files.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(complete, ["good"]);
        assert_eq!(rec.files[0].chunks[0].replicas, [Replica { node_id: 1, element: "default".into() }]);
        let mut incomplete: Vec<&str> = rec.incomplete.iter().map(|f| f.id.as_str()).collect();
        incomplete.sort();
        assert_eq!(incomplete, ["f1", "path"]);
    }
}
