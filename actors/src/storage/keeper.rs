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
//! Sidecars are how an archive whose catalogs are all lost is rebuilt (`artstore recover`); they
//! are not on an upload's acknowledgement path, which needs the chunks on a quorum and the record
//! committed, and nothing else.

use std::collections::BTreeMap;
use std::time::Duration;

use artstore_raft::FileRecord;

use super::sidecar::Sidecar;
use super::StorageHandle;
use crate::StorageError;

/// The keeper's name among the change feed's consumers.
const CONSUMER: &str = "sidecars";
/// Changes gather this long before a batch is written, so one sync serves many files.
const GATHER: Duration = Duration::from_millis(100);
/// Changes read from the feed per batch.
const BATCH: usize = 5_000;

/// Sidecar writes and removals per local element index.
type Work = BTreeMap<usize, Vec<(String, Option<Vec<u8>>)>>;

impl StorageHandle {
    /// Runs for the node's lifetime.
    pub(super) async fn keep_sidecars(self) {
        let catalog = self.inner.node.catalog().clone();
        let mut changes = self.inner.node.watch();
        let mut cursor = match catalog.change_cursor(CONSUMER) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the sidecar keeper's position; sidecars are not kept");
                return;
            }
        };
        let mut failures = 0u32;
        loop {
            let applied = catalog.applied_index().unwrap_or(0);
            if applied <= cursor {
                if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await {
                    // Raft has stopped: the node is shutting down.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
            tokio::time::sleep(GATHER).await;
            match self.sidecar_step(cursor).await {
                Ok(reached) => {
                    failures = 0;
                    cursor = reached;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "sidecars not written yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * failures.min(25) as u64)).await;
                }
            }
        }
    }

    /// Writes the sidecars of every change applied so far (at shutdown, so that a stopped node
    /// leaves no acknowledged file without its sidecar); gives up after `timeout`.
    pub async fn flush_sidecars(&self, timeout: Duration) {
        let flushed = tokio::time::timeout(timeout, async {
            let catalog = self.inner.node.catalog().clone();
            let target = catalog.applied_index()?;
            let mut cursor = catalog.change_cursor(CONSUMER)?;
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
        let catalog = self.inner.node.catalog().clone();
        if catalog.change_floor()? > cursor {
            return self.rewrite_all_sidecars().await;
        }
        // Thousands of catalog reads: off the reactor.
        let this = self.clone();
        let planned = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            let applied = catalog.applied_index()?;
            let batch = catalog.changes(cursor, applied, BATCH)?;
            let reached = if batch.len() == BATCH { batch.last().map_or(applied, |(i, _)| *i) } else { applied };
            let mut ids: Vec<String> = batch.into_iter().map(|(_, id)| id).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut work = Work::new();
            for id in &ids {
                if let Some(file) = catalog.file(id)? {
                    this.plan_sidecar(&file, &mut work)?;
                }
            }
            Ok((reached, work))
        });
        let (reached, work) = planned.await.map_err(|e| StorageError::Io(e.to_string()))??;
        let catalog = self.inner.node.catalog().clone();
        // A snapshot installed meanwhile may have replaced the feed under this batch.
        if catalog.change_floor()? > cursor {
            return Ok(cursor);
        }
        self.apply_sidecar_work(work).await?;
        catalog.prune_changes(CONSUMER, reached)?;
        metrics::gauge!("artstore_storage_sidecar_position").set(reached as f64);
        Ok(reached)
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
            for file in &page {
                self.plan_sidecar(file, &mut work)?;
            }
            files += work.values().map(|w| w.len() as u64).sum::<u64>();
            self.apply_sidecar_work(work).await?;
        }
        // Changes during the scan are in the feed above `applied`, and are written next.
        catalog.prune_changes(CONSUMER, applied)?;
        tracing::info!(sidecars = files, applied, "sidecars rewritten");
        Ok(applied)
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
            work.entry(element).or_default().push((relative.clone(), json.clone()));
        }
        Ok(())
    }

    async fn apply_sidecar_work(&self, work: Work) -> Result<(), StorageError> {
        let count: usize = work.values().map(Vec::len).sum();
        for (element, ops) in work {
            let backend = &self.inner.elements[element];
            backend.apply_sidecars(ops).await.map_err(|e| StorageError::Io(format!("{}: {e}", backend.name())))?;
        }
        metrics::counter!("artstore_storage_sidecars_written_total").increment(count as u64);
        Ok(())
    }
}
