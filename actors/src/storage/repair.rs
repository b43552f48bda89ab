//! Durability: scrub (every node re-reads and re-hashes its chunks) and repair (the leader
//! re-creates replicas that are damaged, missing, or on a node that has been down too long).
//!
//! The repair queue is the catalog's `repair/` index, written in the same Raft entry as the file
//! record, so it survives restarts and leader changes. Nodes down longer than
//! `storage.node_down_after_secs` are found by a scan of the catalog while they stay down. A repair
//! reads a verified copy, writes it to the node the placement rule picks among the live nodes that
//! lack one, and then commits the new replica list (`RepairChunk`); the record never lists fewer
//! good replicas than before. Copies are throttled to `storage.repair_mib_per_sec`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use artstore_client::wire::{RepairStatus, ScrubStatus};
use artstore_raft::{ChunkRef, Command, FileRecord, NodeId, Replica, RetentionPolicy};
use bytes::Bytes;

use super::{place_zoned, StorageHandle};
use crate::worker::{Next, Stop, Worker};
use crate::{files_page, StorageError};

/// How repair and scrub behave.
#[derive(Debug, Clone)]
pub struct RepairConfig {
    pub interval: Duration,
    pub bytes_per_sec: u64,
    pub down_after: Duration,
    /// `None`: scrub is off.
    pub scrub_interval: Option<Duration>,
    pub scrub_bytes_per_sec: u64,
}

/// What one repair pass works with.
struct Scope {
    /// Scan the whole catalog, not just the repair queue.
    full_scan: bool,
    /// Members unreachable for longer than the threshold.
    down: Vec<NodeId>,
    /// Members being drained.
    draining: Vec<NodeId>,
    /// Current members: replicas on any other node (removed without a drain) are replaced.
    members: Vec<NodeId>,
}

/// Every this many passes the leader scans the whole catalog, not just the repair queue.
const FULL_SCAN_EVERY: u64 = 30;

#[derive(Clone)]
pub struct RepairHandle {
    inner: Arc<Inner>,
}

struct Inner {
    storage: StorageHandle,
    config: RepairConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    unreachable_since: BTreeMap<NodeId, Instant>,
    chunks_repaired: u64,
    bytes_repaired: u64,
    unrecoverable: u64,
    last_pass: Option<SystemTime>,
    scrub: ScrubStatus,
}

fn rfc3339(t: SystemTime) -> String {
    artstore_raft::rfc3339(t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0))
}

/// Keeps a loop at `bytes_per_sec` by sleeping after each piece of work.
struct Throttle {
    started: Instant,
    bytes: u64,
    rate: u64,
}

impl Throttle {
    fn new(rate: u64) -> Self {
        Self { started: Instant::now(), bytes: 0, rate: rate.max(1) }
    }

    async fn spent(&mut self, bytes: u64) {
        self.bytes += bytes;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

impl RepairHandle {
    /// The repair actor; its work runs as the `repair` worker (under
    /// [`crate::worker::LeaderOnly`]) and the `scrub` worker (every node), see [`RepairHandle::workers`].
    pub fn new(storage: StorageHandle, config: RepairConfig) -> Self {
        let this = Self { inner: Arc::new(Inner { storage, config, state: Mutex::default() }) };
        this.state().scrub.enabled = this.inner.config.scrub_interval.is_some();
        this
    }

    /// The `repair` worker, started after one interval, and the `scrub` worker (when scrub is on)
    /// with the pause before its first pass (soon after start-up: a node may come back with a
    /// wiped disk).
    pub fn workers(&self) -> (RepairWorker, Duration, Option<(ScrubWorker, Duration)>) {
        let repair = RepairWorker { repair: self.clone(), was_leader: false, balanced_for: None, passes: 0 };
        let scrub = self
            .inner
            .config
            .scrub_interval
            .map(|every| (ScrubWorker { repair: self.clone(), every }, every.min(Duration::from_secs(60))));
        (repair, self.inner.config.interval, scrub)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The repair queue and progress, as of every change committed before the call.
    pub async fn status(&self) -> Result<RepairStatus, StorageError> {
        let node = self.inner.storage.node().clone();
        node.read_barrier().await?;
        let catalog = node.catalog().clone();
        let (queued, missing) = tokio::task::spawn_blocking(move || -> Result<(u64, u64), StorageError> {
            let (mut queued, mut missing, mut after) = (0u64, 0u64, String::new());
            loop {
                let ids = catalog.repair_queue(&after, 1000)?;
                let Some(last) = ids.last() else { break };
                after = last.clone();
                for id in &ids {
                    if let Some(f) = catalog.file(id)? {
                        queued += 1;
                        missing += f.chunks.iter().map(|c| c.missing.len() as u64).sum::<u64>();
                    }
                }
            }
            Ok((queued, missing))
        })
        .await
        .map_err(|e| StorageError::Io(e.to_string()))??;
        let status = node.status();
        let damage_reports_pending = self.inner.storage.damage_reports_pending().await as u64;
        let s = self.state();
        Ok(RepairStatus {
            node_id: node.id(),
            leader_id: status.leader_id,
            queued_files: queued,
            missing_replicas: missing,
            unreachable_nodes: s.unreachable_since.iter().map(|(n, t)| (*n, t.elapsed().as_secs())).collect(),
            chunks_repaired: s.chunks_repaired,
            bytes_repaired: s.bytes_repaired,
            unrecoverable_chunks: s.unrecoverable,
            last_repair_pass: s.last_pass.map(rfc3339),
            scrub: s.scrub.clone(),
            set_aside: node
                .catalog()
                .set_aside_all()?
                .into_iter()
                .map(|a| artstore_client::wire::SetAsideChange {
                    consumer: a.consumer,
                    file_id: a.file_id,
                    index: a.index,
                    error: a.error,
                    attempts: a.attempts,
                    first_failed_at: artstore_raft::rfc3339(a.first_failed_at),
                    next_retry_at: artstore_raft::rfc3339(a.next_retry_at),
                })
                .collect(),
            // Filled in by whoever runs the workers.
            workers: Vec::new(),
            damage_reports_pending,
        })
    }

    /// Tracks which members are unreachable since when; returns those down past the threshold.
    fn nodes_down_too_long(&self) -> Vec<NodeId> {
        let status = self.inner.storage.node().status();
        let mut s = self.state();
        let now = Instant::now();
        let members: HashSet<NodeId> = status.members.iter().map(|m| m.node_id).collect();
        s.unreachable_since.retain(|n, _| members.contains(n));
        for m in &status.members {
            if m.reachable {
                s.unreachable_since.remove(&m.node_id);
            } else {
                s.unreachable_since.entry(m.node_id).or_insert(now);
            }
        }
        s.unreachable_since
            .iter()
            .filter(|(_, since)| since.elapsed() >= self.inner.config.down_after)
            .map(|(n, _)| *n)
            .collect()
    }

    /// What placement depends on: the nodes that take each kind of file, and the draining ones.
    fn placement_inputs(&self, draining: &[NodeId]) -> Vec<Vec<NodeId>> {
        let mut out = Vec::new();
        for policy in [RetentionPolicy::Permanent, RetentionPolicy::Temporary] {
            let mut nodes: Vec<NodeId> = self
                .inner
                .storage
                .candidates(policy)
                .map(|(c, _)| c.into_iter().map(|(n, _)| n).collect())
                .unwrap_or_default();
            nodes.sort_unstable();
            out.push(nodes);
        }
        out.push(draining.to_vec());
        out
    }

    /// Moves replicas so that every chunk sits where the placement rule puts it over today's
    /// nodes (after a join, or away from draining nodes), copying before dropping so no chunk ever
    /// has fewer than its replica count. Chunks with a replica on a node that no longer takes
    /// writes (a read-only element) stay where they are. Returns whether everything is in place.
    async fn rebalance(&self, scope: &Scope) -> Result<bool, StorageError> {
        let node = self.inner.storage.node().clone();
        let mut throttle = Throttle::new(self.inner.config.bytes_per_sec);
        let mut complete = true;
        let mut moved = 0;
        let mut after = String::new();
        loop {
            let page = files_page(&node, &after).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for file in page.iter().filter(|f| f.deleted_at.is_none() && !f.needs_repair()) {
                match self.rebalance_file(file, scope, &mut throttle).await {
                    Ok((changed, done)) => {
                        moved += changed as usize;
                        complete &= done;
                    }
                    Err(e) => {
                        complete = false;
                        tracing::warn!(file = %file.id, error = %e, "rebalancing a file failed");
                    }
                }
            }
        }
        if moved > 0 {
            tracing::info!(files = moved, "rebalanced files to the current placement");
        }
        Ok(complete)
    }

    /// Returns (record changed, every chunk in place).
    async fn rebalance_file(
        &self,
        file: &FileRecord,
        scope: &Scope,
        throttle: &mut Throttle,
    ) -> Result<(bool, bool), StorageError> {
        let storage = &self.inner.storage;
        let (candidates, live) = storage.candidates(file.policy)?;
        let wanted = storage.replication_factor().min(candidates.len());
        if wanted == 0 {
            return Ok((false, true));
        }
        let pool: Vec<NodeId> = candidates.iter().map(|(n, _)| *n).collect();
        let (mut changed, mut done) = (false, true);
        let mut seen = HashSet::new();
        for chunk in file.chunks.iter().filter(|c| seen.insert(c.sha256.clone())) {
            let current: Vec<NodeId> = chunk.replicas.iter().map(|r| r.node_id).collect();
            if !chunk.missing.is_empty() || current.iter().any(|n| scope.down.contains(n)) {
                continue; // repair's business
            }
            if current.iter().any(|n| !pool.contains(n) && !scope.draining.contains(n)) {
                continue; // a read-only element keeps what it has
            }
            let desired = place_zoned(&chunk.sha256, &candidates, wanted);
            let to_add: Vec<NodeId> = desired.iter().copied().filter(|n| !current.contains(n)).collect();
            let to_drop: Vec<NodeId> = current.iter().copied().filter(|n| !desired.contains(n)).collect();
            if to_add.is_empty() && to_drop.is_empty() {
                continue;
            }
            if to_add.iter().any(|n| !live.contains(n)) {
                done = false;
                continue;
            }
            let added =
                self.copy_chunk(file, chunk, &chunk.replicas.iter().collect::<Vec<_>>(), &to_add, throttle).await;
            let dropped = if added.len() == to_add.len() { to_drop } else { Vec::new() };
            done &= added.len() == to_add.len();
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            let command = Command::RepairChunk { id: file.id.clone(), sha256: chunk.sha256.clone(), added, dropped };
            storage.node().propose(command).await?;
            changed = true;
        }
        Ok((changed, done))
    }

    /// Copies a verified replica of `chunk` (read from the first of `sources` that serves it) to
    /// each of `targets`; returns the replicas made.
    async fn copy_chunk(
        &self,
        file: &FileRecord,
        chunk: &ChunkRef,
        sources: &[&Replica],
        targets: &[NodeId],
        throttle: &mut Throttle,
    ) -> Vec<Replica> {
        let storage = &self.inner.storage;
        let mut bytes: Option<Bytes> = None;
        for src in sources {
            match storage.get_chunk(src, &chunk.sha256).await {
                Ok(b) => {
                    bytes = Some(b);
                    break;
                }
                Err(e) => {
                    tracing::warn!(chunk = %chunk.sha256, node = src.node_id, error = %e, "copy source unreadable")
                }
            }
        }
        let Some(bytes) = bytes else {
            tracing::error!(file = %file.id, chunk = %chunk.sha256, "no readable replica of this chunk is left");
            metrics::counter!("artstore_repair_unrecoverable_chunks_total").increment(1);
            self.state().unrecoverable += 1;
            return Vec::new();
        };
        let mut added = Vec::new();
        for target in targets {
            match storage.put_chunk(*target, file.policy, &chunk.sha256, bytes.clone()).await {
                Ok(element) => added.push(Replica { node_id: *target, element }),
                Err(e) => tracing::warn!(chunk = %chunk.sha256, node = target, error = %e, "chunk copy failed"),
            }
        }
        let copied = bytes.len() as u64 * added.len() as u64;
        throttle.spent(copied.max(bytes.len() as u64)).await;
        let mut s = self.state();
        s.chunks_repaired += added.len() as u64;
        s.bytes_repaired += copied;
        metrics::counter!("artstore_repair_chunks_total").increment(added.len() as u64);
        metrics::counter!("artstore_repair_bytes_total").increment(copied);
        added
    }

    /// Files needing work: the repair queue, plus (after a leader change, or while a node is down
    /// too long) every file a catalog scan finds under-replicated or on a down node.
    async fn work_list(&self, scope: &Scope) -> Result<Vec<String>, StorageError> {
        let catalog = self.inner.storage.node().catalog().clone();
        let full_scan = scope.full_scan;
        let down: Vec<NodeId> = scope.down.iter().chain(&scope.draining).copied().collect();
        let members = scope.members.clone();
        let r = self.inner.storage.replication_factor();
        tokio::task::spawn_blocking(move || -> Result<Vec<String>, StorageError> {
            let mut ids = Vec::new();
            let mut after = String::new();
            loop {
                let page = catalog.repair_queue(&after, 1000)?;
                let Some(last) = page.last() else { break };
                after = last.clone();
                ids.extend(page);
            }
            if full_scan {
                let mut after = String::new();
                loop {
                    let page = catalog.files_after(&after, 1000)?;
                    let Some(last) = page.last() else { break };
                    after = last.id.clone();
                    for f in page.iter().filter(|f| f.deleted_at.is_none()) {
                        let suspect = f.chunks.iter().any(|c| {
                            c.replicas.len() < r
                                || c.replicas.iter().any(|x| down.contains(&x.node_id) || !members.contains(&x.node_id))
                        });
                        if suspect || f.needs_repair() {
                            ids.push(f.id.clone());
                        }
                    }
                }
                ids.sort();
                ids.dedup();
            }
            Ok(ids)
        })
        .await
        .map_err(|e| StorageError::Io(e.to_string()))?
    }

    /// One pass over the work list; returns how many files were changed.
    async fn pass(&self, scope: &Scope) -> Result<usize, StorageError> {
        let ids = self.work_list(scope).await?;
        metrics::gauge!("artstore_repair_queue_files").set(ids.len() as f64);
        let mut throttle = Throttle::new(self.inner.config.bytes_per_sec);
        let mut changed = 0;
        for id in ids {
            let Some(file) = self.inner.storage.node().catalog().file(&id)? else { continue };
            if file.deleted_at.is_some() {
                continue;
            }
            match self.repair_file(&file, scope, &mut throttle).await {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(file = %id, error = %e, "repair of a file failed; it stays queued"),
            }
        }
        Ok(changed)
    }

    /// Brings every chunk of `file` back to its replica count. Returns whether the record changed.
    async fn repair_file(
        &self,
        file: &FileRecord,
        scope: &Scope,
        throttle: &mut Throttle,
    ) -> Result<bool, StorageError> {
        let storage = &self.inner.storage;
        let (candidates, live) = storage.candidates(file.policy)?;
        let wanted = storage.replication_factor().min(candidates.len().max(1));
        let mut seen = HashSet::new();
        let mut changed = false;
        for chunk in file.chunks.iter().filter(|c| seen.insert(c.sha256.clone())) {
            // Replicas to replace: damaged or never written, on a node down too long, or draining.
            let bad: Vec<NodeId> =
                chunk
                    .missing
                    .iter()
                    .copied()
                    .chain(
                        chunk.replicas.iter().map(|r| r.node_id).filter(|n| {
                            scope.down.contains(n) || scope.draining.contains(n) || !scope.members.contains(n)
                        }),
                    )
                    .collect();
            let good: Vec<&Replica> = chunk.replicas.iter().filter(|r| !bad.contains(&r.node_id)).collect();
            let need = wanted.saturating_sub(good.len());
            if need == 0 && bad.is_empty() {
                continue;
            }
            let mut added = Vec::new();
            if need > 0 {
                // Good replicas first; then draining ones and one reported damaged (the hash decides).
                let mut sources: Vec<&Replica> = good.clone();
                sources.extend(chunk.replicas.iter().filter(|r| {
                    bad.contains(&r.node_id) && !scope.down.contains(&r.node_id) && scope.members.contains(&r.node_id)
                }));
                let pool: Vec<(NodeId, String)> = candidates
                    .iter()
                    .filter(|(n, _)| {
                        live.contains(n) && !scope.down.contains(n) && !good.iter().any(|g| g.node_id == *n)
                    })
                    .cloned()
                    .collect();
                let targets = place_zoned(&chunk.sha256, &pool, need);
                added = self.copy_chunk(file, chunk, &sources, &targets, throttle).await;
            }
            // Bad replicas leave the record only once enough good ones stand in their place.
            let dropped: Vec<NodeId> = if good.len() + added.len() >= wanted {
                bad.iter().copied().filter(|n| !added.iter().any(|a| a.node_id == *n)).collect()
            } else {
                Vec::new()
            };
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            let holders: Vec<NodeId> = added.iter().map(|a| a.node_id).collect();
            let command = Command::RepairChunk {
                id: file.id.clone(),
                sha256: chunk.sha256.clone(),
                added,
                dropped: dropped.clone(),
            };
            storage.node().propose(command).await?;
            tracing::info!(file = %file.id, chunk = %chunk.sha256, new = ?holders, dropped = ?dropped, "chunk repaired");
            changed = true;
        }
        Ok(changed)
    }

    /// Re-reads and re-hashes every chunk the catalog places on this node; damaged or missing
    /// ones are recorded through Raft, which queues them for repair.
    async fn scrub_pass(&self, stop: &Stop) -> Result<(), StorageError> {
        let storage = &self.inner.storage;
        let node = storage.node().clone();
        let me = node.id();
        let started = Instant::now();
        let mut throttle = Throttle::new(self.inner.config.scrub_bytes_per_sec);
        let (mut checked, mut bytes, mut damaged) = (0u64, 0u64, 0u64);
        let mut reported = (0u64, 0u64, 0u64);
        self.state().scrub.running = true;
        tracing::info!("scrub pass started");
        let mut after = String::new();
        loop {
            if stop.requested() {
                self.state().scrub.running = false;
                tracing::info!(chunks = checked, "scrub pass stopped for shutdown; the next start begins a new one");
                return Ok(());
            }
            let page = files_page(&node, &after).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for file in page.iter().filter(|f| f.deleted_at.is_none()) {
                for chunk in &file.chunks {
                    for r in chunk.replicas.iter().filter(|r| r.node_id == me) {
                        if chunk.missing.contains(&me) {
                            continue; // already queued
                        }
                        match storage.get_chunk_local(&r.element, &chunk.sha256).await {
                            Ok(b) => {
                                checked += 1;
                                bytes += b.len() as u64;
                                metrics::counter!("artstore_scrub_chunks_total").increment(1);
                                metrics::counter!("artstore_scrub_bytes_total").increment(b.len() as u64);
                                throttle.spent(b.len() as u64).await;
                            }
                            Err(StorageError::Damaged(why)) => {
                                damaged += 1;
                                metrics::counter!("artstore_scrub_damaged_total").increment(1);
                                tracing::warn!(file = %file.id, chunk = %chunk.sha256, %why, "scrub found a damaged replica");
                                let command = Command::MarkReplicaDamaged {
                                    id: file.id.clone(),
                                    sha256: chunk.sha256.clone(),
                                    node_id: me,
                                };
                                if let Err(e) = node.propose(command).await {
                                    tracing::warn!(error = %e, "could not queue a damaged replica; the next pass retries");
                                }
                            }
                            Err(e) => tracing::warn!(chunk = %chunk.sha256, error = %e, "scrub could not read a chunk"),
                        }
                    }
                }
            }
            // Progress so far, visible in the status while the pass runs.
            let mut s = self.state();
            s.scrub.chunks_checked += checked - reported.0;
            s.scrub.bytes_checked += bytes - reported.1;
            s.scrub.damaged_found += damaged - reported.2;
            reported = (checked, bytes, damaged);
        }
        let mut s = self.state();
        s.scrub.running = false;
        s.scrub.passes += 1;
        s.scrub.last_pass_finished = Some(rfc3339(SystemTime::now()));
        metrics::counter!("artstore_scrub_passes_total").increment(1);
        tracing::info!(
            chunks = checked,
            mib = bytes >> 20,
            damaged,
            took_s = started.elapsed().as_secs(),
            "scrub pass finished"
        );
        Ok(())
    }
}

/// On the leader, every interval: repairs damaged, missing and long-down replicas, and rebalances
/// after the placement inputs change (a join, a drain, an element that stopped taking writes).
pub struct RepairWorker {
    repair: RepairHandle,
    /// Whether the previous step ran as leader (a new leader scans the whole catalog once).
    was_leader: bool,
    /// The placement inputs the data was last found balanced for.
    balanced_for: Option<Vec<Vec<NodeId>>>,
    passes: u64,
}

impl Worker for RepairWorker {
    fn name(&self) -> &'static str {
        "repair"
    }

    fn standby(&mut self, demoted: bool) {
        // Every node keeps track of who has been unreachable for how long, so that a new leader
        // knows at once.
        self.repair.nodes_down_too_long();
        if demoted {
            self.was_leader = false;
            self.balanced_for = None;
        }
    }

    async fn step(&mut self, _stop: &Stop) -> Result<Next, String> {
        let this = &self.repair;
        let interval = this.inner.config.interval;
        let down = this.nodes_down_too_long();
        let node = this.inner.storage.node().clone();
        let draining = node.catalog().draining_nodes().map_err(|e| format!("repair cannot read the catalog: {e}"))?;
        let placement = this.placement_inputs(&draining);
        let rebalance = self.balanced_for.as_ref() != Some(&placement);
        self.passes += 1;
        // Now and then the whole catalog, for replicas left on nodes removed without a drain.
        let periodic = self.passes.is_multiple_of(FULL_SCAN_EVERY);
        let members = node.status().members.iter().map(|m| m.node_id).collect();
        let scope = Scope {
            full_scan: !self.was_leader || !down.is_empty() || !draining.is_empty() || periodic,
            down,
            draining,
            members,
        };
        self.was_leader = true;
        match this.pass(&scope).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "repair pass finished"),
            Err(e) => tracing::warn!(error = %e, "repair pass failed; retrying next interval"),
        }
        if rebalance {
            match this.rebalance(&scope).await {
                Ok(true) => self.balanced_for = Some(placement),
                Ok(false) => tracing::debug!("rebalancing incomplete (a target is down); retrying next interval"),
                Err(e) => tracing::warn!(error = %e, "rebalancing failed; retrying next interval"),
            }
        }
        this.state().last_pass = Some(SystemTime::now());
        Ok(Next::After(interval))
    }
}

/// On every node, every scrub interval: re-reads and re-hashes the local replicas.
pub struct ScrubWorker {
    repair: RepairHandle,
    every: Duration,
}

impl Worker for ScrubWorker {
    fn name(&self) -> &'static str {
        "scrub"
    }

    async fn step(&mut self, stop: &Stop) -> Result<Next, String> {
        if let Err(why) = self.repair.inner.storage.node().readiness() {
            tracing::debug!(%why, "scrub waits for the catalog to catch up");
            return Ok(Next::After(Duration::from_secs(5).min(self.every)));
        }
        self.repair.scrub_pass(stop).await.map_err(|e| format!("scrub pass failed: {e}"))?;
        Ok(Next::After(self.every))
    }
}
