//! Replication of one chunk to its placement's targets with a write quorum. A chunk counts as
//! stored once `quorum` replicas are durable and the other writes are done or out of time; a
//! slow or paused peer costs an upload a fraction of a second, never its connection's timeout.
//!
//! Invariant: a replica is listed in the chunk's record only once its node said it is fsynced;
//! every other target is listed as missing, which queues it for repair.

use std::time::{Duration, Instant};

use artstore_raft::{ChunkRef, NodeId, Replica, RetentionPolicy};
use bytes::Bytes;
use futures::StreamExt;

use super::{Placement, StorageHandle};
use crate::StorageError;

/// How long replica writes still running when a chunk reached its write quorum may take before
/// they count as missing: twice what the quorum took, within these bounds. A slow or paused peer
/// therefore costs an upload a fraction of a second, never its connection's timeout.
const STRAGGLER_MIN: Duration = Duration::from_millis(25);
const STRAGGLER_MAX: Duration = Duration::from_millis(200);
/// How long a straggler may go on in the background before it is dropped (repair copies it).
const STRAGGLER_BACKGROUND: Duration = Duration::from_secs(10);

fn straggler_grace(to_quorum: Duration) -> Duration {
    (to_quorum * 2).clamp(STRAGGLER_MIN, STRAGGLER_MAX)
}

/// Sends one chunk to its `targets`, skipping those not `live`, and returns its record as soon
/// as `quorum` replicas are durable and the others are done or out of time
/// ([`straggler_grace`]). Writes still running then finish in the background; the record lists
/// their replicas as missing, which queues them for repair (a replica that lands later is found
/// in place by repair).
#[allow(clippy::too_many_arguments)]
async fn replicate(
    storage: &StorageHandle,
    policy: RetentionPolicy,
    chunk_sha: String,
    chunk: Bytes,
    targets: &[NodeId],
    live: &[NodeId],
    quorum: usize,
    index: usize,
) -> Result<ChunkRef, StorageError> {
    let started = Instant::now();
    let mut sends: futures::stream::FuturesUnordered<_> = targets
        .iter()
        .map(|n| {
            let (storage, chunk, sha, n, up) =
                (storage.clone(), chunk.clone(), chunk_sha.clone(), *n, live.contains(n));
            async move {
                if !up {
                    return (n, Err(StorageError::Io(format!("node {n} is unreachable"))));
                }
                (n, storage.put_chunk(n, policy, &sha, chunk).await)
            }
        })
        .collect();
    let mut replicas = Vec::new();
    let mut missing = Vec::new();
    let mut problems = Vec::new();
    let mut out_of_room = false;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            None => sends.next().await,
            Some(d) => match tokio::time::timeout_at(d, sends.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        let Some((n, r)) = next else { break };
        match r {
            Ok(element) => replicas.push(Replica { node_id: n, element }),
            Err(e) => {
                out_of_room |= matches!(e, StorageError::NoSpace(_));
                problems.push(format!("node {n}: {e}"));
                missing.push(n);
            }
        }
        if replicas.len() >= quorum && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + straggler_grace(started.elapsed()));
        }
    }
    if !sends.is_empty() {
        // Stragglers: recorded as missing now, left to finish on their own.
        let late: Vec<NodeId> = targets
            .iter()
            .copied()
            .filter(|n| !replicas.iter().any(|r| r.node_id == *n) && !missing.contains(n))
            .collect();
        tracing::debug!(chunk = index, ?late, "replica writes still running at the write quorum; recorded as missing");
        metrics::counter!("artstore_ingest_straggler_replicas_total").increment(late.len() as u64);
        missing.extend(late);
        // Bounded: a peer that never answers must not keep a copy of every chunk alive.
        tokio::spawn(async move {
            let _ = tokio::time::timeout(STRAGGLER_BACKGROUND, async { while sends.next().await.is_some() {} }).await;
        });
    }
    metrics::histogram!("artstore_ingest_replication_seconds").record(started.elapsed().as_secs_f64());
    if replicas.len() < quorum && out_of_room {
        // Full elements are the client's 507, not a passing outage.
        return Err(StorageError::NoSpace(format!(
            "chunk {index} reached {} of {quorum} required replicas ({})",
            replicas.len(),
            problems.join("; ")
        )));
    }
    if replicas.len() < quorum {
        metrics::counter!("artstore_storage_quorum_failures_total").increment(1);
        return Err(StorageError::Quorum(format!(
            "chunk {index} reached {} of {quorum} required replicas ({})",
            replicas.len(),
            problems.join("; ")
        )));
    }
    if !missing.is_empty() {
        tracing::warn!(chunk = index, missing = ?missing, "chunk stored below its replication factor; queued for repair");
        metrics::counter!("artstore_ingest_under_replicated_chunks_total").increment(1);
    }
    Ok(ChunkRef { sha256: chunk_sha, size: chunk.len() as u64, compressed: false, replicas, missing })
}

impl StorageHandle {
    /// Stores chunk `index` of a file on the targets `placement` gives it, skipping nodes that
    /// are not reachable now (re-read for every chunk: a node that dies mid-upload is skipped at
    /// once). The record's `size` and `compressed` are the caller's to set.
    pub async fn store_chunk(
        &self,
        placement: &Placement,
        chunk_sha256: String,
        bytes: Bytes,
        index: usize,
    ) -> Result<ChunkRef, StorageError> {
        let live = self.candidates(placement.policy)?.1;
        let targets = placement.targets(&chunk_sha256);
        replicate(self, placement.policy, chunk_sha256, bytes, &targets, &live, placement.quorum, index).await
    }
}
