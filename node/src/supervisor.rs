//! The node's supervisor: starts the actors in dependency order with their background workers,
//! and stops them in reverse once the HTTP listener has drained.
//!
//! Start: admin and storage (both need Raft), ingest (needs storage), repair (part of storage),
//! query (needs Raft and storage); then the workers (`keys`, `token-limits`, `capacity`, `sidecars`, `gc`,
//! `expiry`, `repair`, `scrub`). Stop: new uploads refused as soon as the signal arrives, uploads
//! in flight drained (bounded), sidecars flushed (the keeper is still running), workers
//! stopped (each finishes or abandons its step between items), then Raft stopped and its store
//! flushed. New uploads are refused from the signal on (a 503 `shutting_down` the SDK retries on
//! another node) while the listener drains the requests in flight.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use artstore_actors::admin::AdminHandle;
use artstore_actors::ingest::IngestHandle;
use artstore_actors::query::QueryHandle;
use artstore_actors::storage::repair::{RepairConfig, RepairHandle};
use artstore_actors::storage::{GarbageCollector, StorageHandle};
use artstore_actors::worker::{LeaderOnly, Workers};
use artstore_cluster_config::NodeConfig;
use artstore_raft::RaftNode;

/// How long shutdown waits for sidecars to be written, and for workers to finish their steps.
const FLUSH_SIDECARS: Duration = Duration::from_secs(10);
/// How long shutdown waits for uploads still in flight once the listener has drained.
const DRAIN_UPLOADS: Duration = Duration::from_secs(10);
const STOP_WORKERS: Duration = Duration::from_secs(10);

/// The four actors (and repair) of a running node, and its workers.
pub struct Actors {
    pub admin: AdminHandle,
    pub storage: StorageHandle,
    pub ingest: IngestHandle,
    pub repair: RepairHandle,
    pub query: QueryHandle,
    pub workers: Arc<Workers>,
}

/// Starts the actors and their workers on `node`.
pub fn start(node: &RaftNode, config: &NodeConfig, data_dir: &Path) -> anyhow::Result<Actors> {
    let secs = Duration::from_secs;
    let st = &config.storage;
    let admin = AdminHandle::new(node.clone(), config.auth.clone(), &config.cluster_id);
    let storage = StorageHandle::spawn(
        node.clone(),
        &config.storage_elements(),
        st,
        config.zone.as_deref(),
        config.replication_factor,
    )
    .context("storage.elements")?;
    let ingest = IngestHandle::new(node.clone(), storage.clone(), st.chunk_size_bytes);
    let repair = RepairHandle::new(
        storage.clone(),
        RepairConfig {
            interval: secs(st.repair_interval_secs),
            bytes_per_sec: st.repair_mib_per_sec << 20,
            down_after: secs(st.node_down_after_secs),
            scrub_interval: (st.scrub_interval_secs > 0).then(|| secs(st.scrub_interval_secs)),
            scrub_bytes_per_sec: st.scrub_mib_per_sec << 20,
        },
    );
    let (query, indexer) =
        QueryHandle::spawn(node.clone(), data_dir.join("index"), storage.clone(), st.read_cache_bytes)
            .context("cannot open the search index")?;

    let workers = Arc::new(Workers::new());
    let (keys, token_limits) = admin.workers();
    workers.start(LeaderOnly::new(node.clone(), keys));
    workers.start(token_limits);
    workers.start_after(admin.secret_ages(), secs(5));
    workers.start(storage.capacity_monitor());
    workers.start(storage.sidecar_keeper());
    workers.start(indexer);
    let gc_every = secs(st.gc_interval_secs);
    workers.start_after(
        GarbageCollector { storage: storage.clone(), interval: gc_every, grace: secs(st.gc_grace_secs) },
        gc_every,
    );
    let expire_every = secs(st.collector_interval_secs.max(1));
    workers.start_after(LeaderOnly::new(node.clone(), ingest.expiry(expire_every)), expire_every);
    let (repairer, repair_first, scrub) = repair.workers();
    workers.start_after(LeaderOnly::new(node.clone(), repairer), repair_first);
    if let Some((scrubber, first)) = scrub {
        workers.start_after(scrubber, first);
    }
    tracing::info!(workers = workers.statuses().len(), "actors and workers started");
    Ok(Actors { admin, storage, ingest, repair, query, workers })
}

impl Actors {
    /// Stops everything after the listener drained: uploads still in flight (bounded), sidecars,
    /// workers, then Raft.
    pub async fn stop(self, node: &RaftNode) {
        match self.ingest.drain(DRAIN_UPLOADS).await {
            0 => tracing::info!("no upload in flight"),
            left => {
                tracing::warn!(left, "uploads still in flight after {} s; stopping anyway", DRAIN_UPLOADS.as_secs())
            }
        }
        self.storage.flush_sidecars(FLUSH_SIDECARS).await;
        tracing::info!("stopping workers");
        self.workers.stop(STOP_WORKERS).await;
        node.shutdown().await;
    }
}
