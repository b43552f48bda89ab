//! The ingest actor: streaming uploads. A body given to any node is cut into fixed-size chunks,
//! each hashed and sent to the replicas rendezvous hashing picks among live nodes with a writable
//! element; the file record is committed through Raft only when every chunk is durable on a write
//! quorum, and only then is the upload acknowledged.
//!
//! Metadata changes and deletion of committed files follow their rules here too ([`metadata`]):
//! HTTP handlers call the handle, they do not propose catalog commands.
//!
//! Memory stays bounded: at most [`IN_FLIGHT`] chunks are buffered or being replicated at once,
//! whatever the file size. Hashing runs off the reactor.

mod metadata;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artstore_raft::{ChunkRef, Command, FileRecord, NodeId, RaftNode, Replica, RetentionPolicy};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::admin::now_ms;
use crate::chunk_cache::ChunkCache;
use crate::storage::StorageHandle;
use crate::StorageError;

/// Chunks buffered or in replication at once, per upload.
pub const IN_FLIGHT: usize = 3;
/// Chunks up to this size are hashed on the reactor, and an upload's buffer starts this big.
const SMALL_CHUNK: usize = 64 * 1024;

/// What the uploader says about the file.
#[derive(Debug, Clone)]
pub struct UploadMeta {
    pub name: String,
    pub content_type: String,
    pub description: String,
    pub tags: Vec<String>,
    /// A JSON object, already validated and size-checked.
    pub attributes_json: String,
    pub policy: RetentionPolicy,
    /// For temporary files: lifetime in seconds (the API takes days, 1–365, or seconds).
    pub ttl_secs: u64,
    pub retention_until: Option<i64>,
    /// Expected SHA-256 of the whole body (hex), from `X-Checksum-SHA256` or `Content-Digest`.
    pub expected_sha256: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_by: String,
    /// Store chunks zstd-compressed (only those that shrink); reads are unaffected.
    pub compress: bool,
}

/// The ingest actor's handle; cheap to clone.
#[derive(Clone)]
pub struct IngestHandle {
    node: RaftNode,
    storage: StorageHandle,
    chunk_size: usize,
    replication_factor: usize,
    cache: Arc<ChunkCache>,
    /// Group commit of file records.
    commits: crate::batcher::Batcher,
    /// Damaged replicas reported to the catalog and not yet acknowledged (no duplicate reports).
    reporting: Arc<Mutex<HashSet<(String, String, NodeId)>>>,
}

/// Environment switch that makes uploads acknowledge *before* the Raft commit. It exists only so
/// that the chaos checker can be shown to catch the lost uploads this causes; never set it.
pub const UNSAFE_ACK_BEFORE_COMMIT: &str = "ARTSTORE_UNSAFE_ACK_BEFORE_COMMIT";

fn unsafe_ack_before_commit() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let on = std::env::var_os(UNSAFE_ACK_BEFORE_COMMIT).is_some_and(|v| v == "1");
        if on {
            tracing::error!("{UNSAFE_ACK_BEFORE_COMMIT}=1: uploads are acknowledged before they commit (test only)");
        }
        on
    })
}

/// Chunks of one download read and verified ahead of the one being sent (bounds its memory to
/// this many chunks).
const READ_AHEAD: usize = 3;

/// Outcome of an upload: the record, and whether it was created now or by an earlier request
/// with the same idempotency key.
pub struct Uploaded {
    pub file: FileRecord,
    pub replayed: bool,
}

/// What [`IngestHandle::stage`] leaves: a replay of an earlier upload, or a stored file whose
/// record is ready to commit.
pub enum Staged {
    Replay(Uploaded),
    Stored(StagedFile),
}

/// A file whose chunks are on a write quorum and whose record is not committed yet.
pub struct StagedFile {
    file: FileRecord,
    idempotency: Option<(String, String)>,
    started: Instant,
}

/// A retry with an idempotency key must send what the first request sent; the difference is named.
fn same_upload(meta: &UploadMeta, body_sha256: &str, earlier: &FileRecord) -> Result<(), StorageError> {
    let reused = |what: String| {
        Err(StorageError::IdempotencyKeyReused(format!(
            "the Idempotency-Key was used for file {} with another {what}",
            earlier.id
        )))
    };
    if meta.name != earlier.name {
        return reused(format!("name ({:?}, not {:?})", earlier.name, meta.name));
    }
    if let Some(declared) = &meta.expected_sha256 {
        if !declared.eq_ignore_ascii_case(&earlier.sha256) {
            return reused(format!("declared SHA-256 ({}, not {declared})", earlier.sha256));
        }
    }
    if body_sha256 != earlier.sha256 {
        return reused(format!("content (SHA-256 {}, this body {body_sha256})", earlier.sha256));
    }
    Ok(())
}

/// A node and its zone (empty when zones are not configured).
pub type ZonedNode = (NodeId, String);

/// Zone-aware placement: rendezvous order, but the first pass takes at most one node per zone, so
/// replicas spread over as many zones as there are; the second pass fills up in rendezvous order.
pub fn place_zoned(chunk_sha256: &str, candidates: &[ZonedNode], r: usize) -> Vec<NodeId> {
    let ids: Vec<NodeId> = candidates.iter().map(|(n, _)| *n).collect();
    let ranked = place(chunk_sha256, &ids, ids.len());
    let zone_of = |n: NodeId| candidates.iter().find(|(m, _)| *m == n).map(|(_, z)| z.as_str()).unwrap_or("");
    let mut chosen: Vec<NodeId> = Vec::new();
    let mut zones: Vec<&str> = Vec::new();
    for n in &ranked {
        if chosen.len() < r && !zones.contains(&zone_of(*n)) {
            chosen.push(*n);
            zones.push(zone_of(*n));
        }
    }
    for n in ranked {
        if chosen.len() < r && !chosen.contains(&n) {
            chosen.push(n);
        }
    }
    chosen
}

/// Highest-random-weight placement: the `r` nodes with the largest hash of (chunk, node).
pub fn place(chunk_sha256: &str, candidates: &[NodeId], r: usize) -> Vec<NodeId> {
    let mut scored: Vec<([u8; 32], NodeId)> = candidates
        .iter()
        .map(|n| {
            let mut h = Sha256::new();
            h.update(chunk_sha256.as_bytes());
            h.update(n.to_be_bytes());
            (h.finalize().into(), *n)
        })
        .collect();
    scored.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    scored.into_iter().take(r).map(|(_, n)| n).collect()
}

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

impl IngestHandle {
    pub fn new(
        node: RaftNode,
        storage: StorageHandle,
        chunk_size: u64,
        replication_factor: u32,
        read_cache_bytes: u64,
    ) -> Self {
        Self {
            commits: crate::batcher::Batcher::spawn(node.clone()),
            node,
            storage,
            chunk_size: chunk_size as usize,
            replication_factor: replication_factor.max(1) as usize,
            cache: Arc::new(ChunkCache::new(read_cache_bytes)),
            reporting: Default::default(),
        }
    }

    /// Records in the catalog (through Raft, in the background) that the replica of `chunk` on
    /// `node` is missing or corrupt, which queues it for repair.
    pub(crate) fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    pub(crate) fn storage(&self) -> &StorageHandle {
        &self.storage
    }

    pub(crate) fn node(&self) -> &RaftNode {
        &self.node
    }

    fn report_damaged(&self, file_id: &str, chunk: &str, node: NodeId) {
        let key = (file_id.to_string(), chunk.to_string(), node);
        if !self.reporting.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return;
        }
        metrics::counter!("artstore_damaged_replicas_reported_total").increment(1);
        let this = self.clone();
        tokio::spawn(async move {
            let command = Command::MarkReplicaDamaged { id: key.0.clone(), sha256: key.1.clone(), node_id: node };
            match this.node.propose(command).await {
                Ok(_) => tracing::warn!(file = %key.0, chunk = %key.1, node, "damaged replica queued for repair"),
                Err(e) => {
                    tracing::error!(file = %key.0, chunk = %key.1, node, error = %e, "could not record a damaged replica")
                }
            }
            this.reporting.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        });
    }

    /// Nodes (with their zones) that have an element taking `policy` uploads, and which of them
    /// are reachable now.
    pub(crate) fn candidates(&self, policy: RetentionPolicy) -> Result<(Vec<ZonedNode>, Vec<NodeId>), StorageError> {
        let want = StorageHandle::mode_for(policy);
        let status = self.node.status();
        let elements = self.node.catalog().elements()?;
        let draining = self.node.catalog().draining_nodes()?;
        let writable: Vec<&artstore_raft::MemberStatus> = status
            .members
            .iter()
            .filter(|m| !draining.contains(&m.node_id))
            .filter(|m| elements.iter().any(|e| e.node_id == m.node_id && e.mode == want && !e.full))
            .collect();
        let zone = |n: NodeId| elements.iter().find(|e| e.node_id == n).map(|e| e.zone.clone()).unwrap_or_default();
        let all = writable.iter().map(|m| (m.node_id, zone(m.node_id))).collect();
        let live = writable.iter().filter(|m| m.reachable).map(|m| m.node_id).collect();
        Ok((all, live))
    }

    /// The 507 for an upload no element can take, naming every element that could have and why
    /// it did not (its mode, or its free space).
    fn no_room(&self, policy: RetentionPolicy) -> StorageError {
        let want = StorageHandle::mode_for(policy);
        let elements = self.node.catalog().elements().unwrap_or_default();
        let draining = self.node.catalog().draining_nodes().unwrap_or_default();
        let why: Vec<String> = elements
            .iter()
            .filter(|e| {
                e.mode == want || (want == artstore_raft::ElementMode::Rw && e.mode == artstore_raft::ElementMode::Ro)
            })
            .map(|e| {
                let free = e.capacity_bytes.saturating_sub(e.used_bytes);
                let state = if e.mode != want {
                    e.mode.as_str()
                } else if e.full {
                    "full"
                } else if draining.contains(&e.node_id) {
                    "its node is draining"
                } else {
                    "unreachable"
                };
                format!("element {} on node {}: {state}, {free} bytes free of {}", e.name, e.node_id, e.capacity_bytes)
            })
            .collect();
        StorageError::NoSpace(format!(
            "no reachable node has a {} storage element accepting uploads ({})",
            want.as_str(),
            if why.is_empty() { "none is configured".to_string() } else { why.join("; ") }
        ))
    }

    /// Streams `body` into the archive and commits its record. Nothing is committed unless every
    /// chunk reached a write quorum and the digest (if given) matches.
    pub async fn upload<S, E>(&self, meta: UploadMeta, body: S) -> Result<Uploaded, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        match self.stage(meta, body).await? {
            Staged::Replay(u) => Ok(u),
            Staged::Stored(f) => self.commit(f).await,
        }
    }

    /// Streams `body` into the archive: every chunk on a write quorum, the digest checked, the
    /// record built but not committed (the caller decides, with [`IngestHandle::commit`], once
    /// the rest of its request turned out well; chunks of a staged file never committed are
    /// garbage after the grace period). A retry with an idempotency key already used reads the
    /// whole body too, so the client can read the answer, and is a replay only if it sends the
    /// same file.
    pub async fn stage<S, E>(&self, meta: UploadMeta, mut body: S) -> Result<Staged, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if let Some(key) = &meta.idempotency_key {
            if let Some(id) = self.node.catalog().idempotent_file(&meta.created_by, key)? {
                if let Some(file) = self.node.catalog().file(&id)? {
                    let mut hasher = Sha256::new();
                    while let Some(piece) = body.next().await {
                        let piece =
                            piece.map_err(|e| StorageError::Invalid(format!("the upload stream failed: {e}")))?;
                        hasher.update(&piece);
                    }
                    let sha256 = hex::encode(hasher.finalize());
                    same_upload(&meta, &sha256, &file)?;
                    return Ok(Staged::Replay(Uploaded { file, replayed: true }));
                }
            }
        }
        // Placement is over every node with a writable element, so a node that is down still gets
        // its share: those replicas are recorded as missing (queued for repair) instead of silently
        // lowering the replication factor. Down nodes are not even tried.
        let (candidates, live) = self.candidates(meta.policy)?;
        if live.is_empty() {
            return Err(self.no_room(meta.policy));
        }
        let r = self.replication_factor.min(candidates.len());
        let quorum = r / 2 + 1;
        let started = Instant::now();

        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tasks: JoinSet<Result<(usize, ChunkRef), StorageError>> = JoinSet::new();
        let mut file_hash = Some(Sha256::new());
        // Most documents are far smaller than a chunk: the buffer starts small and grows, and only
        // once a whole chunk has been cut does it take a chunk's capacity at once.
        let mut buffer = BytesMut::with_capacity(self.chunk_size.min(SMALL_CHUNK));
        let mut size = 0u64;
        let mut index = 0usize;
        let mut finished = false;
        let mut done: Vec<(usize, ChunkRef)> = Vec::new();
        while !finished {
            // Fill one chunk (or reach the end of the body).
            let permit = permits.clone().acquire_owned().await.map_err(|e| StorageError::Io(e.to_string()))?;
            while buffer.len() < self.chunk_size {
                match body.next().await {
                    Some(Ok(piece)) => buffer.extend_from_slice(&piece),
                    Some(Err(e)) => {
                        tasks.abort_all();
                        return Err(StorageError::Invalid(format!("the upload stream failed: {e}")));
                    }
                    None => {
                        finished = true;
                        break;
                    }
                }
                // Collect finished chunks; fail fast if a replication already failed.
                while let Some(joined) = tasks.try_join_next() {
                    match joined {
                        Ok(Ok((i, c))) => done.push((i, c)),
                        Ok(Err(e)) => {
                            tasks.abort_all();
                            return Err(e);
                        }
                        Err(e) => return Err(StorageError::Io(e.to_string())),
                    }
                }
            }
            let take = buffer.len().min(self.chunk_size);
            if take == 0 {
                break;
            }
            let chunk = buffer.split_to(take).freeze();
            if buffer.capacity() < self.chunk_size && take == self.chunk_size {
                buffer.reserve(self.chunk_size);
            }
            size += chunk.len() as u64;
            let mut hasher = file_hash.take().ok_or_else(|| StorageError::Io("hasher lost".into()))?;
            let compress = meta.compress;
            let work = move || {
                hasher.update(&chunk);
                // A compressed chunk is named (and verified) by the hash of what is stored.
                let packed =
                    compress.then(|| zstd::bulk::compress(&chunk, 3).ok()).flatten().filter(|p| p.len() < chunk.len());
                let raw_len = chunk.len() as u64;
                match packed {
                    Some(p) => (hasher, hex::encode(Sha256::digest(&p)), Bytes::from(p), raw_len, true),
                    None => (hasher, hex::encode(Sha256::digest(&chunk)), chunk, raw_len, false),
                }
            };
            // Hashing a small chunk takes microseconds, less than a hand-off to the blocking pool.
            let (hasher, chunk_sha, stored, raw_len, compressed) = if take <= SMALL_CHUNK && !compress {
                work()
            } else {
                tokio::task::spawn_blocking(work).await.map_err(|e| StorageError::Io(e.to_string()))?
            };
            file_hash = Some(hasher);
            // Liveness is re-read for every chunk: a node that dies mid-upload is skipped at once.
            let live = Arc::new(self.candidates(meta.policy)?.1);
            let (storage, targets, policy, i) =
                (self.storage.clone(), place_zoned(&chunk_sha, &candidates, r), meta.policy, index);
            tasks.spawn(async move {
                let _permit = permit;
                let mut c = replicate(&storage, policy, chunk_sha, stored, &targets, &live, quorum, i).await?;
                c.size = raw_len;
                c.compressed = compressed;
                Ok((i, c))
            });
            index += 1;
        }
        let mut chunks: Vec<Option<ChunkRef>> = vec![None; index];
        for (i, c) in done {
            chunks[i] = Some(c);
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok((i, c))) => chunks[i] = Some(c),
                Ok(Err(e)) => {
                    tasks.abort_all();
                    return Err(e);
                }
                Err(e) => return Err(StorageError::Io(e.to_string())),
            }
        }
        let chunks: Vec<ChunkRef> =
            chunks.into_iter().collect::<Option<_>>().ok_or_else(|| StorageError::Io("a chunk went missing".into()))?;
        let sha256 = hex::encode(file_hash.ok_or_else(|| StorageError::Io("hasher lost".into()))?.finalize());
        if let Some(expected) = &meta.expected_sha256 {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(StorageError::DigestMismatch(format!(
                    "the client said {expected}, the body hashes to {sha256}"
                )));
            }
        }

        let now = now_ms();
        let file = FileRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: meta.name,
            content_type: meta.content_type,
            size,
            sha256,
            chunk_size: self.chunk_size as u64,
            chunks,
            description: meta.description,
            tags: meta.tags,
            attributes_json: meta.attributes_json,
            policy: meta.policy,
            expires_at: (meta.policy == RetentionPolicy::Temporary).then(|| now + (meta.ttl_secs as i64) * 1000),
            retention_until: meta.retention_until,
            created_at: now,
            created_by: meta.created_by.clone(),
            updated_at: now,
            version: 1,
            deleted_at: None,
        };
        let idempotency = meta.idempotency_key.map(|k| (meta.created_by.clone(), k));
        Ok(Staged::Stored(StagedFile { file, idempotency, started }))
    }

    /// Commits the record of a staged upload: the upload is acknowledged once this returns.
    pub async fn commit(&self, staged: StagedFile) -> Result<Uploaded, StorageError> {
        let StagedFile { file, idempotency, started } = staged;
        let size = file.size;
        let command = Command::CreateFile { file: file.clone(), idempotency };
        if unsafe_ack_before_commit() {
            // Deliberately broken (see `UNSAFE_ACK_BEFORE_COMMIT`): acknowledge, commit later.
            let node = self.node.clone();
            tokio::spawn(async move { node.propose(command).await });
            return Ok(Uploaded { file, replayed: false });
        }
        let result = self.commits.propose(command).await?;
        if let Some(refusal) = result.rejected {
            return Err(refusal.into());
        }
        if let Some(existing) = result.existing {
            // A concurrent request with the same key won the race: a replay only of the same file.
            let earlier = self.node.catalog().file(&existing)?.ok_or(StorageError::NotFound(existing))?;
            if earlier.name != file.name || earlier.sha256 != file.sha256 {
                return Err(StorageError::IdempotencyKeyReused(format!(
                    "the Idempotency-Key was used for file {} ({:?}, SHA-256 {}), not for {:?} with SHA-256 {}",
                    earlier.id, earlier.name, earlier.sha256, file.name, file.sha256
                )));
            }
            return Ok(Uploaded { file: earlier, replayed: true });
        }
        metrics::counter!("artstore_ingest_files_total").increment(1);
        metrics::counter!("artstore_ingest_bytes_total").increment(size);
        metrics::histogram!("artstore_ingest_upload_seconds").record(started.elapsed().as_secs_f64());
        // Every holder writes the file's sidecar itself once it applies the record (storage's
        // sidecar keeper); the acknowledgement does not wait for it.
        Ok(Uploaded { file, replayed: false })
    }

    /// Makes a temporary file permanent under the same id: every chunk is copied (and
    /// re-verified) to `rw` elements chosen by placement, then the record is switched in one Raft
    /// entry. The temporary copies become unreferenced and are collected after the grace period.
    pub async fn finalize(&self, id: &str) -> Result<FileRecord, StorageError> {
        let file = match self.node.catalog().file(id)? {
            Some(f) if f.deleted_at.is_none() => f,
            _ => return Err(StorageError::NotFound(format!("no file {id}"))),
        };
        if file.policy == RetentionPolicy::Permanent {
            return Ok(file);
        }
        let (candidates, live) = self.candidates(RetentionPolicy::Permanent)?;
        if live.is_empty() {
            return Err(StorageError::NoSpace("no reachable node has an rw storage element accepting uploads".into()));
        }
        let r = self.replication_factor.min(candidates.len());
        let quorum = r / 2 + 1;
        let mut chunks = Vec::new();
        // Stored bytes are copied as they are (compressed chunks stay compressed).
        let mut body = std::pin::pin!(self.read_chunks(file.clone(), false, false));
        let mut i = 0;
        while let Some(bytes) = body.next().await {
            let bytes = bytes?;
            let sha = file.chunks[i].sha256.clone();
            let targets = place_zoned(&sha, &candidates, r);
            let mut c =
                replicate(&self.storage, RetentionPolicy::Permanent, sha, bytes, &targets, &live, quorum, i).await?;
            c.size = file.chunks[i].size;
            c.compressed = file.chunks[i].compressed;
            chunks.push(c);
            i += 1;
        }
        let r = self.node.propose(Command::FinalizeFile { id: id.to_string(), chunks, at: now_ms() }).await?;
        if let Some(refusal) = r.rejected {
            return Err(refusal.into());
        }
        self.node.read_barrier().await?;
        let file = self.node.catalog().file(id)?.ok_or_else(|| StorageError::NotFound(id.to_string()))?;
        tracing::info!(file = %id, "temporary file finalized as permanent");
        Ok(file)
    }

    /// The `expiry` worker (run it under [`crate::worker::LeaderOnly`]).
    pub fn expiry(&self, interval: std::time::Duration) -> Expiry {
        Expiry { ingest: self.clone(), interval }
    }

    /// The file's body as a stream of verified chunks, in order. Each chunk comes from a local
    /// replica when there is one, else from the first peer replica that answers with the right
    /// bytes; a bad or unreachable replica is skipped (and logged for repair).
    pub fn read(&self, file: FileRecord) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        let cacheable = self.cache.admits(file.size);
        self.read_chunks(file, true, cacheable)
    }

    /// Bytes `start..=end` of the file's content, reading only the chunks that overlap them.
    pub fn read_range(
        &self,
        mut file: FileRecord,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        // Keep the overlapping chunks, with the slice of each that is wanted.
        let mut offset = 0u64;
        let mut cuts = Vec::new();
        file.chunks.retain(|c| {
            let (from, to) = (offset, offset + c.size); // [from, to)
            offset = to;
            let keep = to > start && from <= end;
            if keep {
                let a = start.saturating_sub(from) as usize;
                let b = ((end + 1).min(to) - from) as usize;
                cuts.push((a, b));
            }
            keep
        });
        let cuts = std::sync::Arc::new(cuts);
        // Ranges are read again and again (media, paging through big documents): their chunks are
        // cached whatever the file's size, as long as one chunk fits the cache's admission limit.
        let cacheable = file.chunks.iter().all(|c| self.cache.admits(c.size));
        self.read_chunks(file, true, cacheable).enumerate().map(move |(i, r)| {
            r.map(|b| {
                let (a, z) = cuts[i];
                b.slice(a.min(b.len())..z.min(b.len()))
            })
        })
    }

    /// The chunks as stored (`decompress: false`) or as file content.
    fn read_chunks(
        &self,
        file: FileRecord,
        decompress: bool,
        cacheable: bool,
    ) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        let me = self.node.id();
        let this = self.clone();
        let file_id = Arc::new(file.id);
        futures::stream::iter(file.chunks).map(move |chunk| {
            let (this, file_id) = (this.clone(), file_id.clone());
            async move {
                let mut replicas = chunk.replicas.clone();
                replicas.sort_by_key(|r| r.node_id != me);
                let mut problems = Vec::new();
                let cached = if cacheable { this.cache.get(&chunk.sha256) } else { None };
                for r in &replicas {
                    let read = match &cached {
                        Some(b) => Ok(b.clone()),
                        None => this.storage.get_chunk(r, &chunk.sha256).await,
                    };
                    if cacheable && cached.is_none() {
                        if let Ok(b) = &read {
                            this.cache.put(&chunk.sha256, b.clone());
                        }
                    }
                    match read {
                        Ok(b) if decompress && chunk.compressed => {
                            let size = chunk.size as usize;
                            let raw = tokio::task::spawn_blocking(move || zstd::bulk::decompress(&b, size))
                                .await
                                .map_err(|e| StorageError::Io(e.to_string()))?
                                .map_err(|e| StorageError::Io(format!("chunk {}: {e}", chunk.sha256)))?;
                            return Ok(Bytes::from(raw));
                        }
                        Ok(b) => return Ok(b),
                        Err(e) => {
                            tracing::warn!(node = r.node_id, chunk = %chunk.sha256, error = %e, "replica unreadable; trying the next");
                            metrics::counter!("artstore_read_replica_failures_total").increment(1);
                            if matches!(e, StorageError::Damaged(_)) {
                                this.report_damaged(&file_id, &chunk.sha256, r.node_id);
                            }
                            problems.push(e.to_string());
                        }
                    }
                }
                Err(StorageError::Io(format!("no replica of chunk {} could be read: {}", chunk.sha256, problems.join("; "))))
            }
        })
        // Read (and verify) the next chunks while the current one is being sent.
        .buffered(READ_AHEAD)
    }
}

/// Every `interval`, on the leader: deletes temporary files whose TTL has ended (audited as
/// `file.expire`; a `retention_until` still in the future wins and the file stays).
pub struct Expiry {
    ingest: IngestHandle,
    interval: std::time::Duration,
}

impl crate::worker::Worker for Expiry {
    fn name(&self) -> &'static str {
        "expiry"
    }

    async fn step(&mut self, stop: &crate::worker::Stop) -> Result<crate::worker::Next, String> {
        let node = &self.ingest.node;
        let now = now_ms();
        let expired = node.catalog().expired_files(now, 1000).map_err(|e| format!("cannot read the catalog: {e}"))?;
        for id in expired {
            if stop.requested() {
                break;
            }
            let event = artstore_raft::AuditEvent {
                at: now,
                actor: "-".into(),
                action: "file.expire".into(),
                target: id.clone(),
                outcome: "ok".into(),
                source: String::new(),
            };
            let command =
                Command::Audited { command: Box::new(Command::DeleteFile { id: id.clone(), at: now }), event };
            match node.propose(command).await {
                Ok(r) if r.rejected.is_none() => {
                    tracing::info!(file = %id, "expired temporary file removed");
                    metrics::counter!("artstore_collector_files_expired_total").increment(1);
                }
                Ok(r) => tracing::debug!(file = %id, reason = ?r.rejected, "expired file kept"),
                Err(e) => tracing::warn!(file = %id, error = %e, "cannot remove expired file yet"),
            }
        }
        Ok(crate::worker::Next::After(self.interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_placement_spreads_replicas_over_zones() {
        let nodes: Vec<(NodeId, String)> =
            [(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "c")].into_iter().map(|(n, z)| (n, z.to_string())).collect();
        for i in 0..200 {
            let chosen = place_zoned(&format!("chunk{i}"), &nodes, 3);
            let mut zones: Vec<&str> =
                chosen.iter().map(|n| nodes.iter().find(|(m, _)| m == n).unwrap().1.as_str()).collect();
            zones.sort_unstable();
            assert_eq!(zones, ["a", "b", "c"], "chunk{i}: {chosen:?}");
        }
        // Without zones it is plain rendezvous placement.
        let flat: Vec<(NodeId, String)> = (1..=5).map(|n| (n, String::new())).collect();
        assert_eq!(place_zoned("x", &flat, 3), place("x", &[1, 2, 3, 4, 5], 3));
    }

    #[test]
    fn placement_is_deterministic_distinct_and_spread() {
        let nodes = [1, 2, 3, 4, 5];
        let a = place("abc", &nodes, 3);
        assert_eq!(a, place("abc", &nodes, 3));
        assert_eq!(a.len(), 3);
        let mut d = a.clone();
        d.dedup();
        assert_eq!(d.len(), 3);
        // Over many chunks every node gets some.
        let mut counts = [0; 6];
        for i in 0..300 {
            for n in place(&format!("chunk{i}"), &nodes, 3) {
                counts[n as usize] += 1;
            }
        }
        assert!(counts[1..].iter().all(|c| *c > 100), "{counts:?}");
        // Removing a node only moves the chunks it held (rendezvous property).
        let fewer = [1, 2, 3, 4];
        for i in 0..100 {
            let before = place(&format!("c{i}"), &nodes, 3);
            if !before.contains(&5) {
                assert_eq!(before, place(&format!("c{i}"), &fewer, 3));
            }
        }
    }
}
