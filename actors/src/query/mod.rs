//! The query actor: a tantivy index of file metadata on every node, fed from the catalog's change
//! feed, and search over it.
//!
//! One indexer thread (tantivy commits are blocking and expensive) reads its subscription to the
//! catalog's change feed from the log index it has reached, re-indexes each changed file from its
//! current record (or drops it when deleted), commits with the reached log index as the commit
//! payload, and then commits the subscription up to it. After a
//! restart it resumes from the payload; if the index is missing, unreadable, of another schema
//! version, or behind what the feed still holds (after a snapshot from a peer that pruned further),
//! it is rebuilt from the catalog with progress in the log.
//!
//! Searches run on the blocking pool against the last committed reader. `consistent` searches first
//! take a Raft read index and wait until the indexer has passed it; the actor task ([`waiters`])
//! owns those waits. Downloads, ranges and the read cache are in [`download`].

mod cache;
mod download;
mod listing;
mod schema;
mod search;
mod waiters;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artstore_raft::{Catalog, FeedBatch, RaftNode, Subscription};
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::query::QueryParser;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};
use tokio::sync::watch;

mod bounds;
#[cfg(test)]
mod fuzz;
pub use bounds::check_text;
pub use listing::{FileFilter, LIST_SCAN_BUDGET};
pub use search::{AttrRange, AttrValue, Hit, SearchPage, SearchRequest, SortBy, DEFAULT_PAGE, MAX_PAGE};

use self::cache::ChunkCache;
use self::schema::Fields;
use crate::storage::StorageHandle;
use crate::QueryError;

/// Memory the index writer may buffer before it flushes a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// Changes read from the feed per step.
const FEED_BATCH: usize = 20_000;
/// The indexer's name among the change feed's consumers.
const CONSUMER: &str = "index";
/// Commits of the index are at least this far apart, so that a stream of small uploads costs
/// one commit (its segment, fsyncs and later merges) per interval rather than one per upload.
/// A `consistent` search waiting for the index cuts the wait short.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The indexer's threads run at this niceness (lower priority than the rest of the node).
const INDEXER_NICENESS: i32 = 10;
/// How often the indexer looks for a waiting `consistent` search while it lets changes gather.
const WAITER_POLL: Duration = Duration::from_millis(5);
/// How long a `consistent` search waits for the index to catch up.
pub const CONSISTENT_WAIT: Duration = Duration::from_secs(5);

/// Stored as the commit payload.
#[derive(Serialize, Deserialize)]
struct Payload {
    schema: u32,
    indexed: u64,
}

/// Handle to the query actor; cheap to clone.
#[derive(Clone)]
pub struct QueryHandle {
    inner: Arc<Inner>,
}

struct Inner {
    node: RaftNode,
    reader: IndexReader,
    parser: QueryParser,
    fields: Fields,
    indexed: watch::Receiver<u64>,
    stop: Arc<AtomicBool>,
    /// The actor that owns `consistent` searches waiting for the indexer ([`waiters`]).
    waiters: crate::mailbox::Mailbox<waiters::Message>,
    /// Where downloads read chunks from, and the cache in front of it.
    storage: StorageHandle,
    cache: Arc<ChunkCache>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn index_err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Index(e.to_string())
}

/// Opens the index in `dir` if it is usable, and the log index it covers.
fn open_existing(dir: &Path) -> Option<(Index, u64)> {
    if !dir.join("meta.json").exists() {
        tracing::info!(dir = %dir.display(), "no search index yet; building it from the catalog");
        return None;
    }
    let index = match Index::open_in_dir(dir) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "search index is unreadable; rebuilding it");
            return None;
        }
    };
    let payload = index.load_metas().ok()?.payload.and_then(|p| serde_json::from_str::<Payload>(&p).ok());
    match payload {
        Some(p) if p.schema == schema::SCHEMA_VERSION && index.schema() == schema::schema().0 => {
            Some((index, p.indexed))
        }
        _ => {
            tracing::warn!(dir = %dir.display(), "search index has another schema version; rebuilding it");
            None
        }
    }
}

fn create(dir: &Path) -> Result<Index, QueryError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| index_err(format!("removing {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| index_err(format!("creating {}: {e}", dir.display())))?;
    let directory = MmapDirectory::open(dir).map_err(index_err)?;
    Index::create(directory, schema::schema().0, Default::default()).map_err(index_err)
}

/// Free text searches name, description, tags and attribute values; all words must match; a
/// match in the name counts double.
fn query_parser(index: &Index, fields: &Fields) -> QueryParser {
    let mut parser =
        QueryParser::for_index(index, vec![fields.name, fields.description, fields.tags, fields.attributes]);
    parser.set_conjunction_by_default();
    parser.set_field_boost(fields.name, 2.0);
    parser
}

impl QueryHandle {
    /// Opens (or creates) the index under `dir` and starts the indexer thread. Downloads read
    /// through `storage`, with a read cache of `read_cache_bytes`.
    pub fn spawn(
        node: RaftNode,
        dir: PathBuf,
        storage: StorageHandle,
        read_cache_bytes: u64,
    ) -> Result<Self, QueryError> {
        let (index, indexed, rebuild) = match open_existing(&dir) {
            Some((index, indexed)) => (index, indexed, false),
            None => (create(&dir)?, 0, true),
        };
        schema::register_analyzer(&index);
        let (_, fields) = schema::schema();
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(index_err)?;
        let parser = query_parser(&index, &fields);
        let (tx, rx) = watch::channel(indexed);
        let stop = Arc::new(AtomicBool::new(false));
        let waiting = Arc::new(AtomicUsize::new(0));
        let (catalog, raft, reader_for_indexer) = (node.catalog().clone(), node.clone(), reader.clone());
        let feed = catalog.subscribe(CONSUMER).map_err(index_err)?;
        let waiters = waiters::Waiters::spawn(indexed, waiting.clone());
        let (stop_for_indexer, waiting_for_indexer, waiters_for_indexer) = (stop.clone(), waiting, waiters.clone());
        let indexer = move |writer| Indexer {
            catalog,
            feed,
            node: raft,
            writer,
            reader: reader_for_indexer,
            fields,
            indexed,
            durable: indexed,
            published: tx,
            waiters: waiters_for_indexer,
            stop: stop_for_indexer,
            waiting: waiting_for_indexer,
            last_commit: None,
        };
        let runtime = tokio::runtime::Handle::current();
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || {
                // Indexing is background work: when the machine is busy, uploads and searches go
                // first. Threads inherit the priority, so the writer's own indexing and merge
                // threads, started below, run at it too.
                if let Err(e) = rustix::process::setpriority_process(None, INDEXER_NICENESS) {
                    tracing::debug!(error = %e, "cannot lower the indexer's priority");
                }
                match index.writer_with_num_threads(1, WRITER_MEMORY) {
                    Ok(writer) => {
                        let _ = ready.send(Ok(()));
                        indexer(writer).run(runtime, rebuild);
                    }
                    Err(e) => {
                        let _ = ready.send(Err(index_err(e)));
                    }
                }
            })
            .map_err(|e| index_err(format!("cannot start the indexer thread: {e}")))?;
        started.recv().map_err(|_| index_err("the indexer thread stopped while starting"))??;
        let cache = Arc::new(ChunkCache::new(read_cache_bytes));
        Ok(Self { inner: Arc::new(Inner { node, reader, parser, fields, indexed: rx, stop, waiters, storage, cache }) })
    }

    /// Log index up to which every file change is searchable on this node.
    pub fn indexed_index(&self) -> u64 {
        *self.inner.indexed.borrow()
    }

    /// Waits until the index covers log index `index` (the query actor answers once the
    /// indexer got there).
    pub async fn wait_indexed(&self, index: u64, timeout: Duration) -> Result<(), QueryError> {
        if self.indexed_index() >= index {
            return Ok(());
        }
        let wait = self.inner.waiters.call(|reply| waiters::Message::Wait(index, reply));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(QueryError::Unavailable(format!(
                "the search index on this node has reached log index {} of {index}; retry shortly",
                self.indexed_index()
            ))),
        }
    }

    /// Runs a search. With `consistent`, the result reflects every change committed before the call.
    pub async fn search(&self, req: SearchRequest, consistent: bool) -> Result<SearchPage, QueryError> {
        if consistent {
            let index = self.inner.node.read_barrier().await.map_err(|e| QueryError::Unavailable(e.to_string()))?;
            self.wait_indexed(index, CONSISTENT_WAIT).await?;
        }
        let this = self.clone();
        let started = Instant::now();
        let page = tokio::task::spawn_blocking(move || {
            let searcher = this.inner.reader.searcher();
            search::run(&searcher, &this.inner.parser, &this.inner.fields, &req)
        })
        .await
        .map_err(index_err)??;
        metrics::histogram!("artstore_search_duration_seconds").record(started.elapsed().as_secs_f64());
        Ok(page)
    }
}

struct Indexer {
    catalog: Catalog,
    /// The indexer's subscription to the catalog's change feed.
    feed: Subscription,
    node: RaftNode,
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    /// Reached in memory (what searches see once published).
    indexed: u64,
    /// Reached in a commit (what survives a restart; the feed is pruned up to here).
    durable: u64,
    published: watch::Sender<u64>,
    /// Told how far the index got, to answer waiting searches.
    waiters: crate::mailbox::Mailbox<waiters::Message>,
    stop: Arc<AtomicBool>,
    waiting: Arc<AtomicUsize>,
    last_commit: Option<Instant>,
}

impl Indexer {
    fn run(mut self, runtime: tokio::runtime::Handle, mut rebuild: bool) {
        let mut changes = self.node.watch();
        let mut failures = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            let step = if rebuild { self.rebuild() } else { self.catch_up() };
            match step {
                Ok(again) => {
                    failures = 0;
                    rebuild = again;
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, "search indexing failed; retrying");
                    std::thread::sleep(Duration::from_millis(200 * failures.min(25) as u64));
                    continue;
                }
            }
            let applied = self.catalog.applied_index().unwrap_or(0);
            metrics::gauge!("artstore_search_index_lag_entries").set(applied.saturating_sub(self.indexed) as f64);
            metrics::gauge!("artstore_search_indexed_index").set(self.indexed as f64);
            if applied > self.indexed || rebuild {
                continue;
            }
            // Wake on the next applied entry, or poll now and then in case a wake-up was missed.
            let _ =
                runtime.block_on(async { tokio::time::timeout(Duration::from_millis(500), changes.changed()).await });
        }
        tracing::debug!("search indexer stopped");
    }

    fn commit(&mut self, indexed: u64) -> Result<(), QueryError> {
        self.last_commit = Some(Instant::now());
        let mut prepared = self.writer.prepare_commit().map_err(index_err)?;
        let payload = serde_json::to_string(&Payload { schema: schema::SCHEMA_VERSION, indexed }).unwrap_or_default();
        prepared.set_payload(&payload);
        prepared.commit().map_err(index_err)?;
        self.reader.reload().map_err(index_err)?;
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
        // Let changes gather between commits, unless a `consistent` search is waiting.
        if let Some(last) = self.last_commit {
            while last.elapsed() < COMMIT_INTERVAL
                && self.waiting.load(Ordering::Relaxed) == 0
                && !self.stop.load(Ordering::Relaxed)
            {
                std::thread::sleep(WAITER_POLL.min(COMMIT_INTERVAL.saturating_sub(last.elapsed())));
            }
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
    fn rebuild(&mut self) -> Result<bool, QueryError> {
        let started = Instant::now();
        let applied = self.catalog.applied_index().map_err(index_err)?;
        tracing::info!(applied, "rebuilding the search index from the catalog");
        self.writer.delete_all_documents().map_err(index_err)?;
        let mut after = String::new();
        let mut count = 0u64;
        let mut last_log = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
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

/// A standalone index with the node's schema, analyzer and query code, for benchmarks that
/// measure indexing and search without a cluster around them.
#[doc(hidden)]
pub struct BenchIndex {
    writer: IndexWriter,
    reader: IndexReader,
    parser: QueryParser,
    fields: Fields,
}

impl BenchIndex {
    pub fn create(dir: &Path) -> Result<Self, QueryError> {
        let index = create(dir)?;
        schema::register_analyzer(&index);
        let (_, fields) = schema::schema();
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY).map_err(index_err)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(index_err)?;
        let parser = query_parser(&index, &fields);
        Ok(Self { writer, reader, parser, fields })
    }

    pub fn add(&mut self, file: &artstore_raft::FileRecord) -> Result<(), QueryError> {
        self.writer.add_document(schema::document(&self.fields, file)).map(|_| ()).map_err(index_err)
    }

    pub fn commit(&mut self) -> Result<(), QueryError> {
        self.writer.commit().map_err(index_err)?;
        self.reader.reload().map_err(index_err)
    }

    /// Waits for background merges to finish (a settled index, as after a quiet period).
    pub fn wait_merges(self) -> Result<Self, QueryError> {
        let Self { writer, reader, parser, fields } = self;
        let index = writer.index().clone();
        writer.wait_merging_threads().map_err(index_err)?;
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY).map_err(index_err)?;
        reader.reload().map_err(index_err)?;
        Ok(Self { writer, reader, parser, fields })
    }

    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchPage, QueryError> {
        search::run(&self.reader.searcher(), &self.parser, &self.fields, req)
    }
}
