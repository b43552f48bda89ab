//! The storage actor: this node's storage elements, the storage protocol that moves chunk bodies
//! between nodes over the cluster transport, and the sidecar keeper ([`keeper`]).
//!
//! Shape: [`StorageHandle`] is the face other actors and the HTTP layer use; it serves local
//! requests directly and remote ones by opening a storage stream to the peer, whose handle serves
//! it. It hands out a [`Placement`] for each file written ([`placement`]), replicates chunks with
//! the write quorum ([`replication`]), reads them back verified ([`reader`]), and runs repair and
//! scrub ([`repair`]). Its actor task ([`reports`]) owns the damaged replicas found by reads and
//! records each once. Its workers register the elements in the catalog and keep their usage
//! current (`capacity`), keep sidecars in step with the catalog (`sidecars`) and collect garbage.
//! Invariant: a chunk is acknowledged only once it is fsynced under its SHA-256 name, and every
//! chunk read is re-hashed.

mod backend;
mod disk;
mod keeper;
mod object;
mod placement;
mod placement_rules;
/// The frames of the storage protocol. Public only so that benchmarks can measure framing
/// (`benches/hot_paths.rs`); not an API for other crates.
#[doc(hidden)]
pub mod protocol;
mod reader;
pub mod recover;
pub mod repair;
mod replication;
mod reports;
pub mod sidecar;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artstore_cluster_config::{StorageConfig, StorageElementConfig, Thresholds};
use artstore_raft::transport::STREAM_STORAGE;
use artstore_raft::{AuditEvent, Command, ElementMode, NodeId, RaftNode, Replica, RetentionPolicy, StorageElement};
use backend::Backend;
use bytes::Bytes;
pub use disk::{is_chunk_name, sha256_hex};
pub use placement::{place, place_zoned, Placement, ZonedNode};
pub use placement_rules::Drain;
use protocol::{read_frame, write_frame, Call, FrameError, Refusal, Reply, Request, TraceContext, VERSION};
pub use reader::{unpack, StoredChunkCache, READ_AHEAD};
use tracing::Instrument;

use crate::worker::{Next, Stop, Worker};
use crate::StorageError;

/// Largest chunk accepted from a peer or read from an element (chunks are at most
/// `storage.chunk_size_bytes`, itself at most 64 MiB).
pub const MAX_CHUNK: u64 = 64 * 1024 * 1024;

/// The longest one storage call (a chunk body each way) may take: a peer that stops answering
/// costs a reader or a replica this long, never forever.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// The storage actor's handle; cheap to clone.
#[derive(Clone)]
pub struct StorageHandle {
    inner: Arc<Inner>,
}

struct Inner {
    node: RaftNode,
    /// Local elements, lowest priority value first, with their configuration and live state.
    elements: Vec<Backend>,
    configs: Vec<StorageElementConfig>,
    state: Vec<ElementState>,
    thresholds: (Thresholds, Thresholds),
    zone: String,
    /// Replicas wanted per chunk.
    replication_factor: usize,
    /// The sidecar keeper's subscription to the catalog's change feed.
    feed: artstore_raft::Subscription,
    /// The actor that owns damaged-replica reports ([`reports`]).
    reports: crate::mailbox::Mailbox<reports::Message>,
}

/// Consecutive full measurements (2 s apart) before a full `rw` element turns `ro` for good.
const FULL_MEASUREMENTS_BEFORE_RO: u32 = 3;

/// What the actor tracks of each local element between capacity checks.
#[derive(Default)]
struct ElementState {
    used: AtomicU64,
    full: AtomicBool,
    /// The last look at the element's file system, which the room check of writes reuses.
    reading: std::sync::Mutex<Option<FsReading>>,
}

/// How long one look at a file system's free space serves the room check of chunk writes.
/// Reading it for every chunk cost two `statfs` calls per replica of every upload; between two
/// looks the bytes this node wrote are subtracted, the capacity monitor looks afresh every few
/// seconds, and a write that meets a full disk still marks the element full at once.
const FS_READING_TTL: Duration = Duration::from_millis(500);

/// An element's file system `(total, free)` as read at `at`, when the node had written `used`.
#[derive(Debug, Clone, Copy)]
struct FsReading {
    at: Instant,
    total: u64,
    free: u64,
    used: u64,
}

impl FsReading {
    /// `(total, free)` now, if the reading is recent enough: the free space less what this node
    /// wrote since (bytes it removed since are not given back until the next look).
    fn room(&self, now: Instant, used: u64) -> Option<(u64, u64)> {
        (now.saturating_duration_since(self.at) < FS_READING_TTL)
            .then(|| (self.total, self.free.saturating_sub(used.saturating_sub(self.used))))
    }
}

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(e.to_string())
}

impl StorageHandle {
    /// Opens (creating) the node's element folders, serves the storage protocol, and starts
    /// the capacity monitor that registers the elements in the catalog.
    pub fn spawn(
        node: RaftNode,
        configs: &[StorageElementConfig],
        storage: &StorageConfig,
        zone: Option<&str>,
        replication_factor: u32,
    ) -> Result<Self, StorageError> {
        let mut elements = Vec::new();
        for c in configs {
            let backend = Backend::open(c).map_err(|e| io(format!("storage element {}: {e}", c.name)))?;
            if let Backend::Local(e) = &backend {
                e.write_identity(node.id()).map_err(|e| io(format!("storage element {}: {e}", c.name)))?;
            }
            tracing::info!(element = %c.name, location = %c.location, "storage element opened");
            elements.push((c.clone(), backend));
        }
        elements.sort_by_key(|(c, _)| (c.priority, c.name.clone()));
        // Usage is measured by the monitor's first pass (listing an object store is a network call).
        let state = elements.iter().map(|_| ElementState::default()).collect();
        let handle = Self {
            inner: Arc::new(Inner {
                node: node.clone(),
                configs: elements.iter().map(|(c, _)| c.clone()).collect(),
                elements: elements.into_iter().map(|(_, e)| e).collect(),
                state,
                thresholds: (storage.rw_thresholds, storage.edit_thresholds),
                zone: zone.unwrap_or_default().to_string(),
                replication_factor: replication_factor.max(1) as usize,
                reports: reports::Reports::spawn(node.clone()),
                feed: node.catalog().subscribe(keeper::CONSUMER)?,
            }),
        };
        let server = handle.clone();
        handle.inner.node.transport().register(
            STREAM_STORAGE,
            Arc::new(move |send, recv| {
                let server = server.clone();
                tokio::spawn(async move { server.serve(send, recv).await });
            }),
        );
        Ok(handle)
    }

    fn node_id(&self) -> NodeId {
        self.inner.node.id()
    }

    pub(crate) fn node(&self) -> &RaftNode {
        &self.inner.node
    }

    /// The `capacity` worker of this node's elements.
    pub fn capacity_monitor(&self) -> CapacityMonitor {
        let n = self.inner.elements.len();
        CapacityMonitor {
            storage: self.clone(),
            measured: false,
            last_status: vec![""; n],
            full_streak: vec![0; n],
            last_registered: vec![None; n],
        }
    }

    /// One garbage-collection pass: delete local chunk files that no live file references and
    /// that are older than `grace` — chunks of deleted or expired files, of finalized temporary
    /// copies, and of uploads that failed before commit. The grace keeps chunks of uploads in
    /// flight safe. Run by the `gc` worker ([`GarbageCollector`]).
    async fn collect_garbage(&self, grace: Duration, stop: &Stop) -> Result<(), StorageError> {
        // A node still catching up has a stale catalog: it would take live chunks for garbage.
        if let Err(why) = self.inner.node.readiness() {
            tracing::debug!(%why, "garbage collection waits for the catalog to catch up");
            return Ok(());
        }
        let me = self.node_id();
        // Decoding every file record is real work for a large catalog: off the reactor.
        let catalog = self.inner.node.catalog().clone();
        let files = tokio::task::spawn_blocking(move || catalog.all_files())
            .await
            .map_err(io)
            .and_then(|r| r.map_err(StorageError::from))?;
        // A catalog without a single file next to elements holding sidecars of committed
        // files is a lost catalog (to be rebuilt with `artstore recover`): collect nothing.
        if files.is_empty() {
            let mut lost = false;
            for e in self.inner.elements.iter() {
                lost |= e.has_sidecars().await;
            }
            if lost {
                tracing::warn!("the catalog holds no files but the elements hold sidecars; garbage collection waits (run `artstore recover`)");
                return Ok(());
            }
        }
        let mut referenced: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
        let missing: usize =
            files.iter().filter(|f| f.deleted_at.is_none()).flat_map(|f| &f.chunks).map(|c| c.missing.len()).sum();
        // Replicas placement wanted but never got: the repair backlog.
        metrics::gauge!("artstore_storage_missing_replicas").set(missing as f64);
        for f in files.iter().filter(|f| f.deleted_at.is_none()) {
            for c in &f.chunks {
                for r in c.replicas.iter().filter(|r| r.node_id == me) {
                    referenced.insert((r.element.clone(), c.sha256.clone()));
                }
            }
        }
        let referenced = Arc::new(referenced);
        for (i, element) in self.inner.elements.iter().enumerate() {
            if stop.requested() {
                return Ok(());
            }
            let name = element.name().to_string();
            let (referenced, owner) = (referenced.clone(), name.clone());
            let keep = Arc::new(move |hash: &str| referenced.contains(&(owner.clone(), hash.to_string())));
            let removed = element.collect_garbage(grace, keep).await;
            if removed.0 > 0 {
                self.inner.state[i]
                    .used
                    .fetch_sub(removed.1.min(self.inner.state[i].used.load(Ordering::Relaxed)), Ordering::Relaxed);
                tracing::info!(element = %name, chunks = removed.0, bytes = removed.1, "collected unreferenced chunks");
                metrics::counter!("artstore_gc_chunks_removed_total").increment(removed.0);
                metrics::counter!("artstore_gc_bytes_removed_total").increment(removed.1);
            }
        }
        Ok(())
    }

    /// The mode a retention policy's files are written to.
    pub fn mode_for(policy: RetentionPolicy) -> ElementMode {
        match policy {
            RetentionPolicy::Temporary => ElementMode::Edit,
            RetentionPolicy::Permanent => ElementMode::Rw,
        }
    }

    /// `(total, free)` bytes of local element `i`: its configured capacity less what it holds, or
    /// its file system's size and free space. An object store without a capacity never fills.
    fn space(&self, i: usize) -> (u64, u64) {
        let used = self.inner.state[i].used.load(Ordering::Relaxed);
        match self.inner.configs[i].capacity_bytes {
            Some(cap) => (cap, cap.saturating_sub(used)),
            None => {
                let (total, free) = self.inner.elements[i].space().unwrap_or((0, u64::MAX));
                if let Ok(mut r) = self.inner.state[i].reading.lock() {
                    *r = Some(FsReading { at: Instant::now(), total, free, used });
                }
                (total, free)
            }
        }
    }

    /// [`Self::space`] for the room check of a write: a look at the file system less than
    /// [`FS_READING_TTL`] old serves, less what was written since.
    fn room(&self, i: usize) -> (u64, u64) {
        let used = self.inner.state[i].used.load(Ordering::Relaxed);
        let recent =
            self.inner.state[i].reading.lock().ok().and_then(|r| *r).and_then(|r| r.room(Instant::now(), used));
        match (self.inner.configs[i].capacity_bytes, recent) {
            (None, Some(room)) => room,
            _ => self.space(i),
        }
    }

    /// The capacity thresholds of elements in `mode` (`None`: the mode takes no new data).
    fn thresholds(&self, mode: ElementMode) -> Option<&Thresholds> {
        match mode {
            ElementMode::Rw => Some(&self.inner.thresholds.0),
            ElementMode::Edit => Some(&self.inner.thresholds.1),
            _ => None,
        }
    }

    /// Whether `len` more bytes fit element `i` at all (its configured capacity, or its file
    /// system's free space). The thresholds' reserves are the monitor's business: writes between
    /// two measurements may use the reserve, which is what it is for.
    fn fits(&self, i: usize, len: u64) -> Result<(), String> {
        let (total, free) = self.room(i);
        if total > 0 && free < len {
            return Err(format!(
                "{} element {} on node {} has {free} bytes free of {total}, too few for a {len}-byte chunk",
                self.inner.configs[i].mode.as_str(),
                self.inner.configs[i].name,
                self.node_id()
            ));
        }
        Ok(())
    }

    /// The first element by priority that takes `policy` data and has room for `len` bytes; one
    /// without room is taken out of placement at once (the monitor confirms or clears that).
    fn element_with_room(&self, policy: RetentionPolicy, len: u64) -> Result<(usize, Backend), StorageError> {
        let want = Self::mode_for(policy);
        let catalog = self.inner.node.catalog();
        let mut refusals = Vec::new();
        for (i, (e, state)) in self.inner.elements.iter().zip(&self.inner.state).enumerate() {
            if catalog.element(self.node_id(), e.name())?.is_none_or(|r| r.mode != want) {
                continue;
            }
            if state.full.load(Ordering::Relaxed) {
                // Named with its room, like one found full just now: concurrent chunks of one
                // upload see either, and the refusal must say the same either way.
                let (total, free) = self.room(i);
                refusals.push(format!(
                    "{} element {} on node {} is full: {free} bytes free of {total}",
                    want.as_str(),
                    e.name(),
                    self.node_id()
                ));
                continue;
            }
            match self.fits(i, len) {
                Ok(()) => return Ok((i, e.clone())),
                Err(why) => {
                    state.full.store(true, Ordering::Relaxed);
                    refusals.push(why);
                }
            }
        }
        if refusals.is_empty() {
            refusals.push(format!("node {} has no {} element accepting uploads", self.node_id(), want.as_str()));
        }
        Err(StorageError::NoSpace(refusals.join("; ")))
    }

    fn writable_element(&self, policy: RetentionPolicy) -> Result<&Backend, StorageError> {
        let want = Self::mode_for(policy);
        let catalog = self.inner.node.catalog();
        // Sequential fill: the first element by priority that is writable and not full.
        for (e, state) in self.inner.elements.iter().zip(&self.inner.state) {
            if !state.full.load(Ordering::Relaxed)
                && catalog.element(self.node_id(), e.name())?.is_some_and(|r| r.mode == want)
            {
                return Ok(e);
            }
        }
        Err(StorageError::NoSpace(format!(
            "node {} has no {} element accepting uploads",
            self.node_id(),
            want.as_str()
        )))
    }

    fn local_element(&self, name: &str) -> Result<Backend, StorageError> {
        self.inner
            .elements
            .iter()
            .find(|e| e.name() == name)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(format!("no storage element {name:?} on node {}", self.node_id())))
    }

    /// Stores a chunk on this node; returns the element that holds it.
    pub async fn put_chunk_local(
        &self,
        policy: RetentionPolicy,
        sha256: &str,
        bytes: Bytes,
    ) -> Result<String, StorageError> {
        let len = bytes.len() as u64;
        let (index, element) = self.element_with_room(policy, len)?;
        let started = Instant::now();
        let written = element.put_chunk(sha256, bytes).await.map_err(|e| {
            if e.contains("No space left") || e.contains("os error 28") {
                self.inner.state[index].full.store(true, Ordering::Relaxed);
                StorageError::NoSpace(format!("element {} on node {}: {e}", element.name(), self.node_id()))
            } else {
                StorageError::Io(e)
            }
        })?;
        let name = element.name().to_string();
        if written {
            self.inner.state[index].used.fetch_add(len, Ordering::Relaxed);
            metrics::counter!("artstore_storage_bytes_written_total").increment(len);
        }
        metrics::counter!("artstore_storage_chunks_written_total").increment(1);
        metrics::histogram!("artstore_storage_chunk_write_seconds").record(started.elapsed().as_secs_f64());
        Ok(name)
    }

    /// Every node's storage elements as the catalog records them (mode, capacity, use).
    pub fn elements(&self) -> Result<Vec<StorageElement>, StorageError> {
        Ok(self.inner.node.catalog().elements()?)
    }

    /// Reads and verifies a chunk from a local element.
    pub async fn get_chunk_local(&self, element: &str, sha256: &str) -> Result<Bytes, StorageError> {
        let element = self.local_element(element)?;
        match element.read_chunk(sha256).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(disk::ChunkReadError::Damaged(m)) => Err(StorageError::Damaged(m)),
            Err(disk::ChunkReadError::Failed(m)) => Err(StorageError::Io(m)),
        }
    }

    /// A local chunk for a peer, unverified: the peer verifies it on receipt.
    async fn get_chunk_for_peer(&self, element: &str, sha256: &str) -> Result<Bytes, StorageError> {
        let element = self.local_element(element)?;
        match element.read_chunk_for_peer(sha256).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(disk::ChunkReadError::Damaged(m)) => Err(StorageError::Damaged(m)),
            Err(disk::ChunkReadError::Failed(m)) => Err(StorageError::Io(m)),
        }
    }

    // ----- the same, on any node -----

    fn addr_of(&self, node: NodeId) -> Result<String, StorageError> {
        self.inner
            .node
            .status()
            .members
            .into_iter()
            .find(|m| m.node_id == node)
            .map(|m| m.quic_addr)
            .ok_or_else(|| StorageError::Io(format!("node {node} is not a member")))
    }

    /// Sends one request on its own storage stream (with `body` after it) and reads the reply
    /// header; the caller reads any body that follows. Bounded by [`CALL_DEADLINE`].
    async fn call(
        &self,
        node: NodeId,
        request: &Request,
        body: Option<&[u8]>,
    ) -> Result<(Reply, quinn::RecvStream), StorageError> {
        let addr = self.addr_of(node)?;
        let op = match request {
            Request::PutChunk { .. } => "put_chunk",
            Request::GetChunk { .. } => "get_chunk",
        };
        let span = tracing::info_span!("storage call", otel.name = %format!("storage.{op}"), otel.kind = "client", peer = node);
        let call = Call { request: request.clone(), trace: TraceContext::of(&span) };
        let exchange = async {
            let (mut send, mut recv) = self.inner.node.transport().open_stream(node, &addr, STREAM_STORAGE).await?;
            write_frame(&mut send, &call).await.map_err(io)?;
            if let Some(b) = body {
                send.write_all(b).await.map_err(io)?;
            }
            send.finish().map_err(io)?;
            let reply: Reply = read_frame(&mut recv).await.map_err(|e| {
                if let FrameError::Version(theirs) = e {
                    tracing::warn!(node, theirs, ours = VERSION, "peer answers in another storage protocol version");
                }
                io(format!("node {node}: {e}"))
            })?;
            Ok::<_, StorageError>((reply, recv))
        };
        let (reply, recv) = tokio::time::timeout(CALL_DEADLINE, exchange.instrument(span))
            .await
            .map_err(|_| io(format!("node {node} did not answer a storage call within {CALL_DEADLINE:?}")))??;
        let refusal = match reply {
            Reply::Refused(r) => r,
            ok => return Ok((ok, recv)),
        };
        Err(match refusal {
            Refusal::Damaged(e) => StorageError::Damaged(format!("node {node}: {e}")),
            Refusal::NoSpace(e) => StorageError::NoSpace(format!("node {node}: {e}")),
            Refusal::Invalid(e) | Refusal::Failed(e) => StorageError::Io(format!("node {node}: {e}")),
            Refusal::Version { spoken } => {
                tracing::warn!(node, theirs = spoken, ours = VERSION, "peer refused our storage protocol version");
                StorageError::Io(format!(
                    "node {node} speaks storage protocol v{spoken}, this node v{VERSION}: finish the upgrade"
                ))
            }
        })
    }

    /// Stores a chunk on `node` (this one or a peer); returns the element that holds it.
    pub async fn put_chunk(
        &self,
        node: NodeId,
        policy: RetentionPolicy,
        sha256: &str,
        bytes: Bytes,
    ) -> Result<String, StorageError> {
        if node == self.node_id() {
            return self.put_chunk_local(policy, sha256, bytes).await;
        }
        let req = Request::PutChunk { policy, sha256: sha256.to_string(), size: bytes.len() as u64 };
        match self.call(node, &req, Some(&bytes)).await? {
            (Reply::Stored { element }, _) => Ok(element),
            (other, _) => Err(io(format!("node {node} answered a put with {other:?}"))),
        }
    }

    /// Reads a chunk from a replica (this node or a peer) and verifies its hash.
    pub async fn get_chunk(&self, replica: &Replica, sha256: &str) -> Result<Bytes, StorageError> {
        if replica.node_id == self.node_id() {
            return self.get_chunk_local(&replica.element, sha256).await;
        }
        let req = Request::GetChunk { element: replica.element.clone(), sha256: sha256.to_string() };
        let (size, mut recv) = match self.call(replica.node_id, &req, None).await? {
            (Reply::Body { size }, recv) => (size, recv),
            (other, _) => return Err(io(format!("node {} answered a get with {other:?}", replica.node_id))),
        };
        if size > MAX_CHUNK {
            return Err(io(format!("chunk of {size} bytes is too large")));
        }
        let mut buf = vec![0; size as usize];
        tokio::time::timeout(CALL_DEADLINE, recv.read_exact(&mut buf))
            .await
            .map_err(|_| io(format!("node {} did not send chunk {sha256} in time", replica.node_id)))?
            .map_err(io)?;
        let actual = tokio::task::spawn_blocking(move || (disk::sha256_hex(&buf), buf)).await.map_err(io)?;
        if actual.0 != sha256 {
            return Err(StorageError::Damaged(format!("chunk {sha256} from node {} is corrupt", replica.node_id)));
        }
        Ok(Bytes::from(actual.1))
    }

    /// Serves one storage stream from a peer.
    async fn serve(self, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
        // The span is made once the header is read: it is named by the call and is the child of
        // the caller's span (a span's parent is fixed when it starts).
        let call = read_frame::<_, Call>(&mut recv).await;
        let op = match &call {
            Ok(Call { request: Request::PutChunk { .. }, .. }) => "storage.put_chunk",
            Ok(Call { request: Request::GetChunk { .. }, .. }) => "storage.get_chunk",
            Err(_) => "storage.refused",
        };
        let span = tracing::info_span!("storage serve", otel.name = op, otel.kind = "server");
        if let Ok(Call { trace: Some(t), .. }) = &call {
            t.adopt(&span);
        }
        let result: Result<(Reply, Option<Bytes>), Refusal> = async {
            let call = match call {
                Ok(r) => r,
                Err(FrameError::Version(theirs)) => {
                    tracing::warn!(theirs, ours = VERSION, "refused a storage call in another protocol version");
                    return Err(Refusal::Version { spoken: VERSION });
                }
                Err(e) => return Err(Refusal::Invalid(e.to_string())),
            };
            match call.request {
                Request::PutChunk { policy, sha256, size } => {
                    if size > MAX_CHUNK {
                        return Err(Refusal::Invalid(format!("chunk of {size} bytes is too large")));
                    }
                    let mut buf = vec![0; size as usize];
                    tokio::time::timeout(CALL_DEADLINE, recv.read_exact(&mut buf))
                        .await
                        .map_err(|_| Refusal::Failed("the chunk body did not arrive in time".into()))?
                        .map_err(|e| Refusal::Failed(e.to_string()))?;
                    let element = self.put_chunk_local(policy, &sha256, Bytes::from(buf)).await.map_err(refusal)?;
                    Ok((Reply::Stored { element }, None))
                }
                Request::GetChunk { element, sha256 } => {
                    // The caller hashes what it receives and reports a corrupt replica itself.
                    let bytes = self.get_chunk_for_peer(&element, &sha256).await.map_err(refusal)?;
                    Ok((Reply::Body { size: bytes.len() as u64 }, Some(bytes)))
                }
            }
        }
        .instrument(span)
        .await;
        let (reply, body) = result.unwrap_or_else(|r| (Reply::Refused(r), None));
        if write_frame(&mut send, &reply).await.is_ok() {
            if let Some(b) = body {
                let _ = send.write_all(&b).await;
            }
            let _ = send.finish();
        }
        // Let the peer read the answer before the stream is dropped.
        let _ = tokio::time::timeout(CALL_DEADLINE, send.stopped()).await;
    }
}

/// The protocol's refusal for a local storage error.
fn refusal(e: StorageError) -> Refusal {
    match e {
        StorageError::Damaged(m) => Refusal::Damaged(m),
        StorageError::NoSpace(m) => Refusal::NoSpace(m),
        StorageError::NotFound(m) | StorageError::Invalid(m) => Refusal::Invalid(m),
        other => Refusal::Failed(other.to_string()),
    }
}

/// Every few seconds: measures each element against its thresholds (metrics, and a log line when
/// the status changes), takes full ones out of placement, turns a full `rw` element `ro`, and
/// keeps the catalog's view (usage, full flag) current.
pub struct CapacityMonitor {
    storage: StorageHandle,
    /// Whether each element's usage was measured from its contents (once, at start-up).
    measured: bool,
    last_status: Vec<&'static str>,
    /// Consecutive measurements that found each element full: the irreversible rw → ro switch
    /// needs several, never a single reading.
    full_streak: Vec<u32>,
    last_registered: Vec<Option<(bool, Instant)>>,
}

impl Worker for CapacityMonitor {
    fn name(&self) -> &'static str {
        "capacity"
    }

    async fn step(&mut self, _stop: &Stop) -> Result<Next, String> {
        if !std::mem::replace(&mut self.measured, true) {
            for (i, e) in self.storage.inner.elements.iter().enumerate() {
                let used = e.used_bytes().await;
                tracing::info!(element = %e.name(), used_bytes = used, "storage element usage measured");
                self.storage.inner.state[i].used.store(used, Ordering::Relaxed);
            }
        }
        for (i, c) in self.storage.inner.configs.iter().enumerate() {
            let used = self.storage.inner.state[i].used.load(Ordering::Relaxed);
            let (total, free) = self.storage.space(i);
            let catalog_mode = self
                .storage
                .inner
                .node
                .catalog()
                .element(self.storage.node_id(), &c.name)
                .ok()
                .flatten()
                .map(|r| r.mode);
            // Before the element is registered, its configured mode decides: the first
            // measurement and every later one follow the same rule.
            let status = match self.storage.thresholds(catalog_mode.unwrap_or(c.mode)) {
                Some(t) => t.status(total, free),
                None => "ok",
            };
            let full = status == "full";
            self.full_streak[i] = if full { self.full_streak[i] + 1 } else { 0 };
            self.storage.inner.state[i].full.store(full, Ordering::Relaxed);
            metrics::gauge!("artstore_storage_element_used_bytes", "element" => c.name.clone()).set(used as f64);
            metrics::gauge!("artstore_storage_element_free_bytes", "element" => c.name.clone()).set(free as f64);
            metrics::gauge!("artstore_storage_element_full", "element" => c.name.clone()).set(if full {
                1.0
            } else {
                0.0
            });
            metrics::gauge!("artstore_storage_element_capacity_bytes", "element" => c.name.clone()).set(total as f64);
            // One series per status and mode, 1 for the current one: alerts need no thresholds of their own.
            for s in ["ok", "warning", "critical", "full"] {
                metrics::gauge!("artstore_storage_element_status", "element" => c.name.clone(), "status" => s)
                    .set(if s == status { 1.0 } else { 0.0 });
            }
            let mode = catalog_mode.unwrap_or(c.mode);
            for m in [ElementMode::Edit, ElementMode::Rw, ElementMode::Ro, ElementMode::Ar] {
                metrics::gauge!("artstore_storage_element_mode", "element" => c.name.clone(), "mode" => m.as_str())
                    .set(if m == mode { 1.0 } else { 0.0 });
            }
            if self.last_status[i] != status {
                match status {
                    "ok" => tracing::info!(element = %c.name, free, total, "storage element capacity ok"),
                    _ => {
                        tracing::warn!(element = %c.name, free, total, status, "storage element capacity {status}")
                    }
                }
                self.last_status[i] = status;
            }
            if self.full_streak[i] >= FULL_MEASUREMENTS_BEFORE_RO && catalog_mode == Some(ElementMode::Rw) {
                let reserve = self.storage.inner.thresholds.0.full_reserve(total);
                tracing::warn!(element = %c.name, free, total, reserve, "rw element is full: switching it to ro");
                let event = AuditEvent {
                    at: crate::admin::now_ms(),
                    actor: "-".into(),
                    action: "element.mode".into(),
                    target: format!(
                        "{}/{}→ro (full: {free} bytes free of {total}, below the {reserve}-byte reserve in {} consecutive measurements)",
                        self.storage.node_id(),
                        c.name,
                        self.full_streak[i]
                    ),
                    outcome: "ok".into(),
                    source: String::new(),
                };
                let command = Command::SetElementMode {
                    node_id: self.storage.node_id(),
                    name: c.name.clone(),
                    mode: ElementMode::Ro,
                };
                let _ = self.storage.inner.node.propose(Command::Audited { command: Box::new(command), event }).await;
            }
            let due = match self.last_registered[i] {
                Some((was_full, at)) => {
                    was_full != full || at.elapsed() > Duration::from_secs(30) || catalog_mode.is_none()
                }
                None => true,
            };
            if due {
                let element = StorageElement {
                    node_id: self.storage.node_id(),
                    name: c.name.clone(),
                    mode: c.mode,
                    priority: c.priority,
                    capacity_bytes: total,
                    used_bytes: used,
                    full,
                    zone: self.storage.inner.zone.clone(),
                };
                match self.storage.inner.node.propose(Command::RegisterElement { element }).await {
                    Ok(_) => self.last_registered[i] = Some((full, Instant::now())),
                    Err(e) => tracing::debug!(element = %c.name, error = %e, "cannot register storage element yet"),
                }
            }
        }
        Ok(Next::After(Duration::from_secs(2)))
    }
}

/// The `gc` worker: a garbage-collection pass every `interval` ([`StorageHandle::collect_garbage`]).
pub struct GarbageCollector {
    pub storage: StorageHandle,
    pub interval: Duration,
    pub grace: Duration,
}

impl Worker for GarbageCollector {
    fn name(&self) -> &'static str {
        "gc"
    }

    async fn step(&mut self, stop: &Stop) -> Result<Next, String> {
        self.storage.collect_garbage(self.grace, stop).await.map_err(|e| format!("garbage collection: {e}"))?;
        Ok(Next::After(self.interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_reading_of_free_space_serves_less_what_was_written_since() {
        let at = Instant::now();
        let r = FsReading { at, total: 1_000, free: 300, used: 50 };
        assert_eq!(r.room(at, 50), Some((1_000, 300)));
        assert_eq!(r.room(at + Duration::from_millis(100), 150), Some((1_000, 200)), "100 bytes written since");
        assert_eq!(r.room(at, 900), Some((1_000, 0)), "never below zero");
        assert_eq!(r.room(at, 10), Some((1_000, 300)), "removals wait for the next look");
        assert_eq!(r.room(at + FS_READING_TTL, 50), None, "an old reading is read again");
    }
}
