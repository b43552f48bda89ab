//! The sidecar keeper: every node keeps the sidecars of the files whose chunks it holds in step
//! with the catalog, driven by the catalog's change feed rather than by the node that took an
//! upload.
//!
//! The keeper reads the feed from its cursor, gathers changes for a moment, writes (or, for a
//! deleted file, removes) the sidecar in every local element holding one of the file's chunks,
//! makes the whole batch durable with one sync per element, and only then moves its cursor
//! (`_changes/cursor/sidecars`) and lets the feed be pruned. A crash therefore repeats a batch,
//! never skips one. When the feed was pruned past the cursor (a snapshot from a peer), it writes
//! the sidecar of every file held here instead.
//!
//! A file whose sidecar keeps failing (a name the file system refuses, a broken object store
//! path) does not hold up the rest: its change is set aside in the catalog's node-local
//! bookkeeping with the error (`artstore repair status` lists it, `artstore_change_feed_set_aside`
//! counts it), retried with backoff, and the cursor moves on. Only when every write of a batch
//! fails (a full or unmounted element) is the batch retried as a whole instead.
//!
//! Sidecars are how an archive whose catalogs are all lost is rebuilt (`artstore recover`); they
//! are not on an upload's acknowledgement path, which needs the chunks on a quorum and the record
//! committed, and nothing else.

use std::collections::BTreeMap;
use std::time::Duration;

use artstore_raft::{FeedBatch, FileRecord};

use super::sidecar::Sidecar;
use super::StorageHandle;
use crate::worker::{Next, Stop, Worker};
use crate::StorageError;

/// The keeper's name among the change feed's subscribers.
pub(super) const CONSUMER: &str = "sidecars";
/// Changes gather this long before a batch is written, so one sync serves many files.
const GATHER: Duration = Duration::from_millis(100);
/// Changes read from the feed per batch.
const BATCH: usize = 5_000;

/// Set-aside changes retried per pass.
const RETRIES_PER_PASS: usize = 100;

/// One sidecar write (`Some(json)`) or removal (`None`) at a relative path, for a file.
#[derive(Clone)]
struct Op {
    file_id: String,
    relative: String,
    json: Option<Vec<u8>>,
    /// The file changed or went: its sidecars under earlier names are removed too.
    prune: bool,
}

/// Sidecar writes and removals per local element index.
type Work = BTreeMap<usize, Vec<Op>>;

impl StorageHandle {
    /// The `sidecars` worker of this node.
    pub fn sidecar_keeper(&self) -> SidecarKeeper {
        SidecarKeeper { storage: self.clone(), changes: self.inner.node.watch(), cursor: None, failures: 0 }
    }

    /// Writes the sidecars of every change applied so far (at shutdown, so that a stopped node
    /// leaves no acknowledged file without its sidecar); gives up after `timeout`.
    pub async fn flush_sidecars(&self, timeout: Duration) {
        let flushed = tokio::time::timeout(timeout, async {
            let catalog = self.inner.node.catalog().clone();
            let target = catalog.applied_index()?;
            let mut cursor = self.inner.feed.cursor()?;
            while cursor < target {
                cursor = self.sidecar_step(cursor).await?;
            }
            Ok::<_, StorageError>(())
        })
        .await;
        match flushed {
            Ok(Ok(())) => tracing::info!("sidecars written"),
            Ok(Err(e)) => tracing::warn!(error = %e, "sidecars not all written at shutdown; written at the next start"),
            Err(_) => tracing::warn!("sidecars not all written at shutdown in time; written at the next start"),
        }
    }

    /// Brings the sidecars up to the feed's end (or one batch of it); returns the new cursor.
    async fn sidecar_step(&self, cursor: u64) -> Result<u64, StorageError> {
        if self.inner.feed.behind(cursor)? {
            return self.rewrite_all_sidecars().await;
        }
        // Thousands of catalog reads: off the reactor.
        let (this, catalog) = (self.clone(), self.inner.node.catalog().clone());
        let planned = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            // The latest change of every file in the batch, and how far it takes the keeper.
            let FeedBatch { files: latest, reached } = this.inner.feed.next_batch(cursor, BATCH)?;
            let mut work = Work::new();
            let mut failed = Vec::new();
            for id in latest.keys() {
                let planned = catalog.file(id).map_err(StorageError::from).and_then(|file| match file {
                    Some(file) => this.plan_guarded(&file, &mut work),
                    None => Ok(()),
                });
                if let Err(e) = planned {
                    failed.push((id.clone(), e.to_string()));
                }
            }
            Ok((reached, work, latest, failed))
        });
        let (reached, work, latest, mut failed) = planned.await.map_err(|e| StorageError::Io(e.to_string()))??;
        // A snapshot installed meanwhile may have replaced the feed under this batch.
        if self.inner.feed.behind(cursor)? {
            return Ok(cursor);
        }
        failed.extend(self.apply_sidecar_work(work).await?);
        for (id, error) in failed {
            let index = latest.get(&id).copied().unwrap_or(reached);
            self.set_aside(&id, index, &error)?;
        }
        self.inner.feed.commit(reached)?;
        metrics::gauge!("artstore_storage_sidecar_position").set(reached as f64);
        Ok(reached)
    }

    fn set_aside(&self, file_id: &str, index: u64, error: &str) -> Result<(), StorageError> {
        self.inner.feed.set_aside(file_id, index, error)?;
        Ok(())
    }

    /// Retries the set-aside changes whose time has come; those that go through are forgotten.
    async fn retry_set_aside(&self) -> Result<(), StorageError> {
        let catalog = self.inner.node.catalog().clone();
        let due = self.inner.feed.retries_due(RETRIES_PER_PASS)?;
        for aside in due {
            let mut work = Work::new();
            let planned = match catalog.file(&aside.file_id)? {
                Some(file) => self.plan_guarded(&file, &mut work),
                None => Ok(()),
            };
            let failure = match planned {
                Err(e) => Some(e.to_string()),
                Ok(()) => match self.apply_sidecar_work(work).await {
                    Ok(failed) => failed.into_iter().next().map(|(_, e)| e),
                    Err(e) => Some(e.to_string()),
                },
            };
            match failure {
                None => {
                    self.inner.feed.retried(&aside.file_id)?;
                    tracing::info!(file = %aside.file_id, attempts = aside.attempts, "set-aside sidecar written");
                }
                Some(error) => self.set_aside(&aside.file_id, aside.index, &error)?,
            }
        }
        self.inner.feed.count_set_aside()?;
        Ok(())
    }

    /// After the feed was pruned past the keeper: the sidecar of every file held here.
    async fn rewrite_all_sidecars(&self) -> Result<u64, StorageError> {
        let catalog = self.inner.node.catalog().clone();
        let applied = catalog.applied_index()?;
        tracing::info!(applied, "the change feed moved past this node's sidecars; rewriting every sidecar held here");
        let (mut after, mut files) = (String::new(), 0u64);
        loop {
            let page = crate::files_page(&self.inner.node, &after).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            let mut work = Work::new();
            let mut failed = Vec::new();
            for file in &page {
                if let Err(e) = self.plan_guarded(file, &mut work) {
                    failed.push((file.id.clone(), e.to_string()));
                }
            }
            for (id, error) in failed {
                self.set_aside(&id, applied, &error)?;
            }
            files += work.values().map(|w| w.len() as u64).sum::<u64>();
            for (id, error) in self.apply_sidecar_work(work).await? {
                self.set_aside(&id, applied, &error)?;
            }
        }
        // Changes during the scan are in the feed above `applied`, and are written next.
        self.inner.feed.commit(applied)?;
        tracing::info!(sidecars = files, applied, "sidecars rewritten");
        Ok(applied)
    }

    /// [`Self::plan_sidecar`] for one file, whose failure, even a panic on a record no release
    /// should have written, is that file's alone: it adds nothing to `work` and is set aside,
    /// and the keeper goes on with the rest.
    fn plan_guarded(&self, file: &FileRecord, work: &mut Work) -> Result<(), StorageError> {
        let mut mine = Work::new();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.plan_sidecar(file, &mut mine))) {
            Ok(Ok(())) => {
                for (element, ops) in mine {
                    work.entry(element).or_default().extend(ops);
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                tracing::error!(file = %file.id, why, "planning a sidecar panicked; setting the file aside");
                Err(StorageError::Io(format!("planning its sidecar panicked: {why}")))
            }
        }
    }

    /// Adds `file`'s sidecar (or its removal, once deleted) to every local element holding one of
    /// its chunks; an empty file's goes where a new file of its kind would.
    fn plan_sidecar(&self, file: &FileRecord, work: &mut Work) -> Result<(), StorageError> {
        let me = self.node_id();
        let mut holders: Vec<usize> = file
            .chunks
            .iter()
            .flat_map(|c| c.replicas.iter())
            .filter(|r| r.node_id == me)
            .filter_map(|r| self.inner.elements.iter().position(|e| e.name() == r.element))
            .collect();
        holders.sort_unstable();
        holders.dedup();
        if file.chunks.is_empty() {
            // Every node keeps an empty file's sidecar: it has no chunk to say where it lives.
            if let Ok(e) = self.writable_element(file.policy) {
                holders.extend(self.inner.elements.iter().position(|x| x.name() == e.name()));
            }
        }
        if holders.is_empty() {
            return Ok(());
        }
        let relative = Sidecar::relative_path(file);
        let json = match file.deleted_at {
            Some(_) => None,
            None => Some(
                serde_json::to_vec_pretty(&Sidecar::from_record(file)).map_err(|e| StorageError::Io(e.to_string()))?,
            ),
        };
        for element in holders {
            // A renamed file's sidecar moves: the one under its old name must not stay behind
            // (it would bring the old name back in `artstore recover`, or the file after a delete).
            let prune = file.version > 1 || file.deleted_at.is_some();
            let op = Op { file_id: file.id.clone(), relative: relative.clone(), json: json.clone(), prune };
            work.entry(element).or_default().push(op);
        }
        Ok(())
    }

    /// Applies `work`, one sync per element. Returns the files whose sidecar could not be written
    /// while others could (to be set aside); fails as a whole only when nothing could be written.
    async fn apply_sidecar_work(&self, work: Work) -> Result<Vec<(String, String)>, StorageError> {
        let count: usize = work.values().map(Vec::len).sum();
        let mut failed = Vec::new();
        for (element, ops) in work {
            let backend = &self.inner.elements[element];
            let plain = |ops: &[Op]| {
                ops.iter()
                    .map(|o| (o.relative.clone(), o.json.clone(), o.prune.then(|| o.file_id.clone())))
                    .collect::<Vec<_>>()
            };
            let Err(batch_error) = backend.apply_sidecars(plain(&ops)).await else { continue };
            let batch_error = format!("{}: {batch_error}", backend.name());
            if ops.len() == 1 {
                failed.push((ops[0].file_id.clone(), batch_error));
                continue;
            }
            // Find the bad ones: one write (and sync) each, on this failure path only.
            let mut bad = Vec::new();
            for op in &ops {
                if let Err(e) = backend.apply_sidecars(plain(std::slice::from_ref(op))).await {
                    bad.push((op.file_id.clone(), format!("{}: {e}", backend.name())));
                }
            }
            if bad.len() == ops.len() {
                return Err(StorageError::Io(batch_error));
            }
            failed.extend(bad);
        }
        metrics::counter!("artstore_storage_sidecars_written_total").increment((count - failed.len()) as u64);
        Ok(failed)
    }
}

/// The `sidecars` worker: follows the change feed from its cursor (see the module documentation).
pub struct SidecarKeeper {
    storage: StorageHandle,
    changes: artstore_raft::MetricsWatch,
    /// Read from the catalog at the first step.
    cursor: Option<u64>,
    failures: u32,
}

impl Worker for SidecarKeeper {
    fn name(&self) -> &'static str {
        "sidecars"
    }

    async fn step(&mut self, stop: &Stop) -> Result<Next, String> {
        let catalog = self.storage.inner.node.catalog().clone();
        let cursor = match self.cursor {
            Some(c) => c,
            None => self
                .storage
                .inner
                .feed
                .cursor()
                .map_err(|e| format!("cannot read the sidecar keeper's position: {e}"))?,
        };
        self.cursor = Some(cursor);
        if let Err(e) = self.storage.retry_set_aside().await {
            tracing::warn!(error = %e, "cannot retry set-aside sidecars yet");
        }
        let applied = catalog.applied_index().unwrap_or(0);
        if applied <= cursor {
            if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(1), self.changes.changed()).await {
                // Raft has stopped: the node is shutting down.
                return Ok(Next::After(Duration::from_secs(1)));
            }
            return Ok(Next::Now);
        }
        if stop.clone().sleep(GATHER).await {
            return Ok(Next::Now);
        }
        match self.storage.sidecar_step(cursor).await {
            Ok(reached) => {
                self.failures = 0;
                self.cursor = Some(reached);
                Ok(Next::Now)
            }
            Err(e) => {
                self.failures += 1;
                tracing::warn!(error = %e, "sidecars not written yet; retrying");
                Ok(Next::After(Duration::from_millis(200 * self.failures.min(25) as u64)))
            }
        }
    }
}
