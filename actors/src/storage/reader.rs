//! The verified reader of file bodies: each chunk from a local replica when there is one, else
//! from the first peer replica that answers with bytes hashing to the chunk's name. A replica
//! found corrupt is reported to the catalog (which queues it for repair) and the next one tried.
//! Shared by query's downloads, ingest's finalize and repair.
//!
//! Invariant: no byte leaves this module unverified, and one damaged replica is reported once
//! while its report is in flight.

use std::sync::Arc;

use artstore_raft::{ChunkRef, Command, FileRecord, NodeId};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::StorageHandle;
use crate::StorageError;

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
    /// for copying) or as content.
    pub fn read_chunks(
        &self,
        file: FileRecord,
        decompress: bool,
    ) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        let this = self.clone();
        let file_id = Arc::new(file.id);
        futures::stream::iter(file.chunks)
            .map(move |chunk| {
                let (this, file_id) = (this.clone(), file_id.clone());
                async move {
                    let stored = this.read_stored(&file_id, &chunk).await?;
                    if decompress {
                        unpack(&chunk, stored).await
                    } else {
                        Ok(stored)
                    }
                }
            })
            .buffered(READ_AHEAD)
    }

    /// Records in the catalog (through Raft, in the background) that the replica of `chunk` on
    /// `node` is corrupt, which queues it for repair.
    pub(crate) fn report_damaged(&self, file_id: &str, chunk: &str, node: NodeId) {
        let key = (file_id.to_string(), chunk.to_string(), node);
        if !self.inner.reporting.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return;
        }
        metrics::counter!("artstore_damaged_replicas_reported_total").increment(1);
        let this = self.clone();
        tokio::spawn(async move {
            let command = Command::MarkReplicaDamaged { id: key.0.clone(), sha256: key.1.clone(), node_id: node };
            match this.inner.node.propose(command).await {
                Ok(_) => tracing::warn!(file = %key.0, chunk = %key.1, node, "damaged replica queued for repair"),
                Err(e) => {
                    tracing::error!(file = %key.0, chunk = %key.1, node, error = %e, "could not record a damaged replica")
                }
            }
            this.inner.reporting.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        });
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
