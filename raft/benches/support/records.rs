//! File records for the raft benches: a 4 KiB upload with one chunk on three nodes, numbered.

use artstore_raft::{ChunkRef, FileRecord, Replica, RetentionPolicy};

/// File record number `n` (its id and chunk hash follow from `n`).
pub fn record(n: u64) -> FileRecord {
    let sha = format!("{n:064x}");
    FileRecord {
        id: format!("01900000-0000-7000-8000-{n:012x}"),
        name: format!("bench-{n}.bin"),
        content_type: "application/octet-stream".into(),
        size: 4096,
        sha256: sha.clone(),
        chunk_size: 4 << 20,
        chunks: vec![ChunkRef {
            sha256: sha,
            size: 4096,
            compressed: false,
            replicas: (1..=3).map(|node_id| Replica { node_id, element: "default".into() }).collect(),
            missing: Vec::new(),
        }],
        description: String::new(),
        tags: Vec::new(),
        attributes_json: "{}".into(),
        policy: RetentionPolicy::Permanent,
        expires_at: None,
        retention_until: None,
        created_at: 1_700_000_000_000 + n as i64,
        created_by: "bench".into(),
        updated_at: 0,
        version: 1,
        deleted_at: None,
    }
}
