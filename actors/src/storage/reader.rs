//! The verified reader of file bodies: each chunk from a local replica when there is one, else
//! from the first peer replica that answers with bytes hashing to the chunk's name. A replica
//! found corrupt is reported to the catalog (which queues it for repair) and the next one tried.
//! Shared by query's downloads, ingest's finalize and repair.
//!
//! Invariant: no byte leaves this module unverified. Damage is reported to the storage actor
//! ([`super::reports`]), which records each damaged replica once.

use std::sync::Arc;

use artstore_raft::{ChunkRef, FileRecord, NodeId};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use super::reports::Message;
use super::StorageHandle;
use crate::StorageError;

/// A cache of verified chunks as stored, by SHA-256, in front of replica reads (query keeps one
/// for downloads).
pub trait StoredChunkCache: Send + Sync + 'static {
    fn get(&self, sha256: &str) -> Option<Bytes>;
    fn put(&self, sha256: &str, stored: Bytes);
}

/// Chunks of one read fetched and verified ahead of the one being consumed (bounds a read's
/// memory to this many chunks).
pub const READ_AHEAD: usize = 3;

impl StorageHandle {
    /// Chunk `chunk` of file `file_id` as stored (compressed chunks stay compressed), verified,
    /// from the first replica that has it intact.
    pub async fn read_stored(&self, file_id: &str, chunk: &ChunkRef) -> Result<Bytes, StorageError> {
        let me = self.node_id();
        let mut replicas = chunk.replicas.clone();
        replicas.sort_by_key(|r| r.node_id != me);
        let mut problems = Vec::new();
        for r in &replicas {
            match self.get_chunk(r, &chunk.sha256).await {
                Ok(b) => return Ok(b),
                Err(e) => {
                    tracing::warn!(node = r.node_id, chunk = %chunk.sha256, error = %e, "replica unreadable; trying the next");
                    metrics::counter!("artstore_read_replica_failures_total").increment(1);
                    if matches!(e, StorageError::Damaged(_)) {
                        self.report_damaged(file_id, &chunk.sha256, r.node_id);
                    }
                    problems.push(e.to_string());
                }
            }
        }
        Err(StorageError::Io(format!("no replica of chunk {} could be read: {}", chunk.sha256, problems.join("; "))))
    }

    /// The file's body as a stream of verified chunks in order, as stored (`decompress: false`,
    /// for copying) or as content. With `cache`, a chunk found there is not read again, and a
    /// chunk read is put there (as stored, verified).
    pub fn read_chunks(
        &self,
        file: FileRecord,
        decompress: bool,
        cache: Option<Arc<dyn StoredChunkCache>>,
    ) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        let this = self.clone();
        let file_id = Arc::new(file.id);
        let logged = file_id.clone();
        futures::stream::iter(file.chunks)
            .map(move |chunk| {
                let (this, file_id, cache) = (this.clone(), file_id.clone(), cache.clone());
                async move {
                    let stored = match cache.as_ref().and_then(|c| c.get(&chunk.sha256)) {
                        Some(b) => b,
                        None => {
                            let b = this.read_stored(&file_id, &chunk).await?;
                            if let Some(c) = &cache {
                                c.put(&chunk.sha256, b.clone());
                            }
                            b
                        }
                    };
                    if !decompress {
                        return Ok(stored);
                    }
                    let content = unpack(&chunk, stored).await?;
                    if content.len() as u64 != chunk.size {
                        // Intact bytes, but not what the record says the chunk holds.
                        return Err(StorageError::Io(format!(
                            "chunk {} holds {} bytes of content; the file's record says {}",
                            chunk.sha256,
                            content.len(),
                            chunk.size
                        )));
                    }
                    Ok(content)
                }
            })
            // Read (and verify) the next chunks while the current one is being consumed.
            .buffered(READ_AHEAD)
            .inspect_err(move |e| tracing::warn!(file = %logged, error = %e, "reading a file's body failed"))
    }

    /// Tells the storage actor that the replica of `chunk` on `node` is corrupt; it records
    /// that in the catalog (once), which queues the replica for repair.
    pub(crate) fn report_damaged(&self, file_id: &str, chunk: &str, node: NodeId) {
        let _ = self.inner.reports.tell(Message::Damaged((file_id.to_string(), chunk.to_string(), node)));
    }

    /// Damaged-replica reports not yet recorded in the catalog.
    pub async fn damage_reports_pending(&self) -> usize {
        self.inner.reports.call(Message::Pending).await.unwrap_or(0)
    }
}

/// A chunk's content from its stored bytes (zstd-decompressed off the reactor when it was stored
/// compressed).
pub async fn unpack(chunk: &ChunkRef, stored: Bytes) -> Result<Bytes, StorageError> {
    if !chunk.compressed {
        return Ok(stored);
    }
    let (size, sha) = (chunk.size as usize, chunk.sha256.clone());
    tokio::task::spawn_blocking(move || zstd::bulk::decompress(&stored, size))
        .await
        .map_err(|e| StorageError::Io(e.to_string()))?
        .map(Bytes::from)
        .map_err(|e| StorageError::Io(format!("chunk {sha}: {e}")))
}
