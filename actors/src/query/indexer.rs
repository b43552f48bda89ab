//! The search indexer: a worker ([`IndexWorker`]) whose steps run on a dedicated thread.
//!
//! tantivy's writer is blocking and its commits are expensive, so the writer lives on one thread
//! of its own, at a lower priority (its indexing and merge threads inherit it). The worker under
//! the node's [`Workers`](crate::worker::Workers) is that thread's async face: each step lets
//! changes gather for up to [`COMMIT_INTERVAL`] (less when a `consistent` search waits), asks the
//! thread to index the change feed up to the applied index (or to rebuild), and then waits for
//! the next applied entry. So the indexer has a status, counts its failures, and stops in order
//! on shutdown like every other worker; when the worker is dropped the thread ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artstore_raft::{Catalog, FeedBatch, RaftNode, Subscription};
use tantivy::{IndexReader, IndexWriter, Term};
use tokio::sync::{oneshot, watch};

use super::schema::{self, Fields};
use super::{index_err, waiters, Payload, COMMIT_INTERVAL, FEED_BATCH, WAITER_POLL};
use crate::worker::{Next, Stop, Worker};
use crate::QueryError;

/// How long a step waits for the next applied entry before looking anyway (a missed wake-up).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// One step asked of the indexer thread.
struct Job {
    rebuild: bool,
    stop: Stop,
    reply: oneshot::Sender<Result<Progress, QueryError>>,
}

/// What a step on the thread achieved.
struct Progress {
    /// A rebuild is needed (the feed was pruned past the index) or was interrupted.
    rebuild: bool,
    applied: u64,
    indexed: u64,
    last_commit: Option<Instant>,
}

/// The search indexer as a [`Worker`].
pub struct IndexWorker {
    jobs: std::sync::mpsc::Sender<Job>,
    changes: artstore_raft::MetricsWatch,
    /// Searches waiting for the index: they cut the gathering short.
    waiting: Arc<AtomicUsize>,
    rebuild: bool,
    last_commit: Option<Instant>,
}

impl IndexWorker {
    /// Starts the indexer thread around `indexer` (`rebuild` when the index is new or unusable).
    /// `writer` is called on the thread, after its priority is lowered.
    pub(super) fn start(
        node: &RaftNode,
        make: impl FnOnce() -> Result<Indexer, QueryError> + Send + 'static,
        rebuild: bool,
        waiting: Arc<AtomicUsize>,
        niceness: i32,
    ) -> Result<Self, QueryError> {
        let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || {
                // Indexing is background work: when the machine is busy, uploads and searches go
                // first. Threads inherit the priority, so the writer's own indexing and merge
                // threads run at it too.
                if let Err(e) = rustix::process::setpriority_process(None, niceness) {
                    tracing::debug!(error = %e, "cannot lower the indexer's priority");
                }
                let mut indexer = match make() {
                    Ok(i) => i,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                // Serves steps until the worker is dropped.
                while let Ok(job) = inbox.recv() {
                    let outcome = indexer.step(job.rebuild, &job.stop);
                    let _ = job.reply.send(outcome);
                }
                tracing::debug!("search indexer thread stopped");
            })
            .map_err(|e| index_err(format!("cannot start the indexer thread: {e}")))?;
        started.recv().map_err(|_| index_err("the indexer thread stopped while starting"))??;
        Ok(Self { jobs, changes: node.watch(), waiting, rebuild, last_commit: None })
    }
}

impl Worker for IndexWorker {
    fn name(&self) -> &'static str {
        "indexer"
    }

    async fn step(&mut self, stop: &Stop) -> Result<Next, String> {
        // Let changes gather between commits, unless a `consistent` search is waiting.
        if let Some(last) = self.last_commit.filter(|_| !self.rebuild) {
            while last.elapsed() < COMMIT_INTERVAL && self.waiting.load(Ordering::Relaxed) == 0 && !stop.requested() {
                tokio::time::sleep(WAITER_POLL.min(COMMIT_INTERVAL.saturating_sub(last.elapsed()))).await;
            }
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { rebuild: self.rebuild, stop: stop.clone(), reply })
            .map_err(|_| "the indexer thread has stopped".to_string())?;
        let progress = answer.await.map_err(|_| "the indexer thread has stopped".to_string())?;
        let progress = progress.map_err(|e| format!("search indexing failed: {e}"))?;
        self.rebuild = progress.rebuild;
        self.last_commit = progress.last_commit;
        metrics::gauge!("artstore_search_index_lag_entries")
            .set(progress.applied.saturating_sub(progress.indexed) as f64);
        metrics::gauge!("artstore_search_indexed_index").set(progress.indexed as f64);
        if progress.applied > progress.indexed || progress.rebuild {
            return Ok(Next::Now);
        }
        // Wake on the next applied entry, or look again now and then in case a wake-up was missed.
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::timeout(IDLE_POLL, self.changes.changed()) => {}
            _ = stop.wait() => {}
        }
        Ok(Next::Now)
    }
}

pub(super) struct Indexer {
    pub(super) catalog: Catalog,
    /// The indexer's subscription to the catalog's change feed.
    pub(super) feed: Subscription,
    pub(super) writer: IndexWriter,
    pub(super) reader: IndexReader,
    pub(super) fields: Fields,
    /// Reached in memory (what searches see once published).
    pub(super) indexed: u64,
    /// Reached in a commit (what survives a restart; the feed is pruned up to here).
    pub(super) durable: u64,
    pub(super) published: watch::Sender<u64>,
    /// Told how far the index got, to answer waiting searches.
    pub(super) waiters: crate::mailbox::Mailbox<waiters::Message>,
    pub(super) last_commit: Option<Instant>,
}

impl Indexer {
    /// One step on the indexer thread: a rebuild, or the feed up to the applied index.
    fn step(&mut self, rebuild: bool, stop: &Stop) -> Result<Progress, QueryError> {
        let rebuild = if rebuild { self.rebuild(stop)? } else { self.catch_up()? };
        let applied = self.catalog.applied_index().unwrap_or(0);
        Ok(Progress { rebuild, applied, indexed: self.indexed, last_commit: self.last_commit })
    }

    fn commit(&mut self, indexed: u64) -> Result<(), QueryError> {
        let started = Instant::now();
        self.last_commit = Some(started);
        let mut prepared = self.writer.prepare_commit().map_err(index_err)?;
        let payload = serde_json::to_string(&Payload { schema: schema::SCHEMA_VERSION, indexed }).unwrap_or_default();
        prepared.set_payload(&payload);
        prepared.commit().map_err(index_err)?;
        metrics::counter!("artstore_syncs_total", "kind" => "search_commit").increment(1);
        self.reader.reload().map_err(index_err)?;
        metrics::histogram!("artstore_search_index_commit_seconds").record(started.elapsed().as_secs_f64());
        self.durable = indexed;
        self.publish(indexed);
        // The feed below a durable index is no longer needed.
        self.feed.commit(indexed).map_err(index_err)?;
        self.feed.count_set_aside().map_err(index_err)?;
        Ok(())
    }

    fn publish(&mut self, indexed: u64) {
        self.indexed = indexed;
        self.published.send_replace(indexed);
        let _ = self.waiters.tell(waiters::Message::Indexed(indexed));
    }

    /// Indexes the feed up to the applied index. Returns whether a rebuild is needed instead.
    fn catch_up(&mut self) -> Result<bool, QueryError> {
        let applied = self.catalog.applied_index().map_err(index_err)?;
        if applied <= self.indexed {
            return Ok(false);
        }
        if self.feed.behind(self.indexed).map_err(index_err)? {
            tracing::warn!(
                indexed = self.indexed,
                "the change feed was pruned past this index (a snapshot from a peer); rebuilding the search index"
            );
            return Ok(true);
        }
        // The latest change of every file in the batch, and how far it takes the index.
        let FeedBatch { files: latest, reached } = self.feed.next_batch(self.indexed, FEED_BATCH).map_err(index_err)?;
        if latest.is_empty() {
            self.publish(reached);
            return Ok(false);
        }
        let started = Instant::now();
        for (id, index) in &latest {
            // One record that cannot be indexed is set aside; the rest of the feed goes on.
            if let Err(e) = self.index_file(id) {
                self.feed.set_aside(id, *index, &e.to_string()).map_err(index_err)?;
            }
        }
        // Changes set aside earlier whose retry time has come go along with this commit.
        for a in self.feed.retries_due(100).map_err(index_err)? {
            match self.index_file(&a.file_id) {
                Ok(()) => self.feed.retried(&a.file_id).map_err(index_err)?,
                Err(e) => {
                    self.feed.set_aside(&a.file_id, a.index, &e.to_string()).map_err(index_err)?;
                }
            }
        }
        // A snapshot installed while this batch was read could have replaced the feed under it.
        if self.feed.behind(self.indexed).map_err(index_err)? {
            self.writer.rollback().map_err(index_err)?;
            return Ok(true);
        }
        self.commit(reached)?;
        metrics::counter!("artstore_search_documents_indexed_total").increment(latest.len() as u64);
        tracing::debug!(
            files = latest.len(),
            indexed = reached,
            took_ms = started.elapsed().as_millis() as u64,
            "indexed"
        );
        Ok(false)
    }

    /// Replaces `id`'s document with one from its current record (none once deleted).
    fn index_file(&mut self, id: &str) -> Result<(), QueryError> {
        self.writer.delete_term(Term::from_field_text(self.fields.id, id));
        if let Some(file) = self.catalog.file(id).map_err(index_err)? {
            if file.deleted_at.is_none() {
                self.writer.add_document(schema::document(&self.fields, &file)).map_err(index_err)?;
            }
        }
        Ok(())
    }

    /// Re-indexes every file from the catalog.
    fn rebuild(&mut self, stop: &Stop) -> Result<bool, QueryError> {
        let started = Instant::now();
        let applied = self.catalog.applied_index().map_err(index_err)?;
        tracing::info!(applied, "rebuilding the search index from the catalog");
        self.writer.delete_all_documents().map_err(index_err)?;
        let mut after = String::new();
        let mut count = 0u64;
        let mut last_log = Instant::now();
        loop {
            if stop.requested() {
                self.writer.rollback().map_err(index_err)?;
                return Ok(true);
            }
            let page = self.catalog.files_after(&after, 1000).map_err(index_err)?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for file in page.iter().filter(|f| f.deleted_at.is_none()) {
                self.writer.add_document(schema::document(&self.fields, file)).map_err(index_err)?;
                count += 1;
            }
            if last_log.elapsed() > Duration::from_secs(5) {
                tracing::info!(files = count, "rebuilding the search index");
                last_log = Instant::now();
            }
        }
        // Files changed during the scan are in the feed above `applied` and are indexed again next.
        self.commit(applied)?;
        tracing::info!(
            files = count,
            indexed = applied,
            took_ms = started.elapsed().as_millis() as u64,
            "search index rebuilt"
        );
        Ok(false)
    }
}
