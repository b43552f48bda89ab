//! The ingest actor: streaming uploads, finalize and expiry. A body given to any node is cut into
//! fixed-size chunks, each hashed and handed to the storage actor, which places it and replicates
//! it with its write quorum; the file record is committed through Raft only when every chunk is
//! durable on a write quorum, and only then is the upload acknowledged.
//!
//! Metadata changes and deletion of committed files follow their rules here too ([`metadata`]):
//! HTTP handlers call the handle, they do not propose catalog commands. The actor task
//! ([`uploads`]) owns which uploads are in flight: it hands each one a ticket, and at shutdown
//! refuses new ones and tells the supervisor when the last one is done.
//!
//! Memory stays bounded: at most [`IN_FLIGHT`] chunks are buffered or being replicated at once,
//! whatever the file size. Hashing runs off the reactor.

mod metadata;
mod uploads;

use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

use artstore_raft::{ChunkRef, Command, FileRecord, RaftNode, RetentionPolicy};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::admin::now_ms;
use crate::mailbox::Mailbox;
use crate::storage::StorageHandle;
use crate::StorageError;
pub use uploads::UploadTicket;

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

/// The largest encoded reference to one chunk: its digest, sizes and up to 16 replicas on
/// elements with names of up to 64 bytes (the bound a chunk still in flight is counted at).
const MAX_CHUNK_REF_BYTES: u64 = 100 + 16 * 96;

/// Encoded bytes of a chunk reference in a file record.
fn chunk_ref_bytes(c: &ChunkRef) -> u64 {
    bincode::serialized_size(c).unwrap_or(MAX_CHUNK_REF_BYTES)
}

/// Encoded bytes of a file record and its command, less its chunks: the metadata and some
/// room for ids, times and the command's own fields.
fn record_bytes_before_chunks(meta: &UploadMeta) -> u64 {
    let text = meta.name.len() + meta.content_type.len() + meta.description.len() + meta.attributes_json.len();
    let tags: usize = meta.tags.iter().map(|t| t.len() + 8).sum();
    let key = meta.idempotency_key.as_ref().map_or(0, |k| k.len() + meta.created_by.len());
    (text + tags + key + meta.created_by.len() + 1024) as u64
}

/// The ingest actor's handle; cheap to clone.
#[derive(Clone)]
pub struct IngestHandle {
    node: RaftNode,
    storage: StorageHandle,
    chunk_size: usize,
    /// Group commit of file records.
    commits: crate::batcher::Batcher,
    /// The actor that owns which uploads are in flight ([`uploads`]).
    uploads: Mailbox<uploads::Message>,
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
    /// Returned once the record is committed (or the staged file is dropped).
    _ticket: UploadTicket,
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

impl IngestHandle {
    pub fn new(node: RaftNode, storage: StorageHandle, chunk_size: u64) -> Self {
        Self {
            commits: crate::batcher::Batcher::spawn(node.clone()),
            node,
            storage,
            chunk_size: chunk_size as usize,
            uploads: uploads::Uploads::spawn(),
        }
    }

    /// A ticket for one upload; refused once the node is shutting down.
    async fn begin(&self) -> Result<UploadTicket, StorageError> {
        self.uploads.call(uploads::Message::Begin).await.map_err(|e| StorageError::ShuttingDown(e.to_string()))?
    }

    /// Takes no new uploads from now on (the first step of shutdown).
    pub fn close(&self) {
        let _ = self.uploads.tell(uploads::Message::Close);
    }

    /// Waits until no upload is in flight, at most `grace`; returns how many are still running.
    pub async fn drain(&self, grace: std::time::Duration) -> usize {
        self.close();
        if tokio::time::timeout(grace, self.uploads.call(uploads::Message::Drain)).await.is_ok() {
            return 0;
        }
        self.in_flight().await
    }

    /// Uploads in flight on this node.
    pub async fn in_flight(&self) -> usize {
        self.uploads.call(uploads::Message::InFlight).await.unwrap_or(0)
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
        let ticket = self.begin().await?;
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
        // Storage hands out where chunks go; a node that is down still gets its share (recorded
        // as missing, queued for repair), but is not even tried.
        let placement = Arc::new(self.storage.placement(meta.policy)?);
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
        // The record is one catalog entry: a body that would need more chunks than the entry can
        // list is refused as soon as that is certain, not after every chunk was stored.
        let record_bytes = record_bytes_before_chunks(&meta);
        let mut listed = 0u64;
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
                        Ok(Ok((i, c))) => {
                            listed += chunk_ref_bytes(&c);
                            done.push((i, c));
                        }
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
            // Chunks still in flight count as large as the largest reference a chunk can have.
            let in_flight = (index - done.len()) as u64 + 1;
            let needed = record_bytes + listed + in_flight * MAX_CHUNK_REF_BYTES;
            if needed > artstore_raft::MAX_ENTRY_BYTES {
                tasks.abort_all();
                return Err(StorageError::TooLarge(format!(
                    "the file needs more than {index} chunks of {} bytes, more than one catalog entry ({} bytes) \
                     can list; upload it in parts",
                    self.chunk_size,
                    artstore_raft::MAX_ENTRY_BYTES
                )));
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
            let (storage, placement, i) = (self.storage.clone(), placement.clone(), index);
            // Within the upload's span, so that its trace reaches the replicas.
            let span = tracing::info_span!("store chunk", otel.name = "ingest.store_chunk", chunk = i);
            tasks.spawn(
                async move {
                    let _permit = permit;
                    let mut c = storage.store_chunk(&placement, chunk_sha, stored, i).await?;
                    c.size = raw_len;
                    c.compressed = compressed;
                    Ok((i, c))
                }
                .instrument(span),
            );
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
        Ok(Staged::Stored(StagedFile { file, idempotency, started, _ticket: ticket }))
    }

    /// Commits the record of a staged upload: the upload is acknowledged once this returns.
    pub async fn commit(&self, staged: StagedFile) -> Result<Uploaded, StorageError> {
        let StagedFile { file, idempotency, started, _ticket } = staged;
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
            // The winner's record was committed before this entry, but this node may not have
            // applied it yet (the answer comes from the leader's apply): catch up first, or a
            // committed upload would be answered 404.
            if self.node.catalog().file(&existing)?.is_none() {
                self.node.read_barrier().await?;
            }
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
        let placement = self.storage.placement(RetentionPolicy::Permanent)?;
        let mut chunks = Vec::new();
        // Stored bytes are copied as they are (compressed chunks stay compressed).
        let mut body = std::pin::pin!(self.storage.read_chunks(file.clone(), false, None));
        let mut i = 0;
        while let Some(bytes) = body.next().await {
            let bytes = bytes?;
            let sha = file.chunks[i].sha256.clone();
            let mut c = self.storage.store_chunk(&placement, sha, bytes, i).await?;
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
    use artstore_raft::{Command, FileRecord, Replica};

    use super::*;

    /// The bound an upload is refused at counts at least what its record's entry encodes to.
    #[test]
    fn the_entry_estimate_of_an_upload_covers_its_record() {
        let meta = UploadMeta {
            name: "годовой отчёт.pdf".into(),
            content_type: "application/pdf".into(),
            description: "d".repeat(16 << 10),
            tags: vec!["tag".repeat(40); 64],
            attributes_json: format!("{{\"a\":\"{}\"}}", "x".repeat(60 << 10)),
            policy: RetentionPolicy::Permanent,
            ttl_secs: 0,
            retention_until: Some(1),
            expected_sha256: Some("0".repeat(64)),
            idempotency_key: Some("k".repeat(255)),
            created_by: "service-account-with-a-long-name".into(),
            compress: false,
        };
        let chunk = ChunkRef {
            sha256: "a".repeat(64),
            size: 4 << 20,
            compressed: false,
            replicas: (1..=3).map(|n| Replica { node_id: n, element: "element-with-a-name".into() }).collect(),
            missing: vec![4],
        };
        let chunks = vec![chunk.clone(); 1000];
        let file = FileRecord {
            id: "01900000-0000-7000-8000-000000000001".into(),
            name: meta.name.clone(),
            content_type: meta.content_type.clone(),
            size: 1000 * (4 << 20),
            sha256: "b".repeat(64),
            chunk_size: 4 << 20,
            chunks,
            description: meta.description.clone(),
            tags: meta.tags.clone(),
            attributes_json: meta.attributes_json.clone(),
            policy: meta.policy,
            expires_at: Some(1),
            retention_until: meta.retention_until,
            created_at: 1,
            created_by: meta.created_by.clone(),
            updated_at: 1,
            version: 1,
            deleted_at: None,
        };
        let idempotency = meta.idempotency_key.clone().map(|k| (meta.created_by.clone(), k));
        let actual = bincode::serialized_size(&Command::CreateFile { file, idempotency }).unwrap();
        let estimate = record_bytes_before_chunks(&meta) + 1000 * chunk_ref_bytes(&chunk);
        assert!(estimate >= actual, "estimated {estimate} bytes for an entry of {actual}");
        assert!(estimate < actual + 4096, "the estimate {estimate} is far above {actual}");
        assert!(chunk_ref_bytes(&chunk) <= MAX_CHUNK_REF_BYTES);
    }
}
