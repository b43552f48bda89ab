//! The query actor: a tantivy index of file metadata on every node, fed from the catalog's change
//! feed, and search over it.
//!
//! The indexer ([`indexer`], a worker with a thread of its own) reads its subscription to the
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
mod indexer;
mod listing;
mod schema;
mod search;
mod waiters;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artstore_raft::RaftNode;
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::query::QueryParser;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};
use tokio::sync::watch;

mod bounds;
#[cfg(test)]
mod fuzz;
pub use bounds::check_text;
pub use listing::{FileFilter, LIST_SCAN_BUDGET};
pub use search::{AttrRange, AttrValue, Hit, SearchPage, SearchRequest, SortBy, DEFAULT_PAGE, MAX_PAGE};

use self::cache::ChunkCache;
pub use self::indexer::IndexWorker;
use self::indexer::Indexer;
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

/// A page of search results: the files' current records, best first.
#[derive(Debug, Clone)]
pub struct Found {
    pub files: Vec<FoundFile>,
    /// How many files the index matched (regardless of paging).
    pub total: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FoundFile {
    pub record: artstore_raft::FileRecord,
    pub score: f32,
}

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
    /// The actor that owns `consistent` searches waiting for the indexer ([`waiters`]).
    waiters: crate::mailbox::Mailbox<waiters::Message>,
    /// Where downloads read chunks from, and the cache in front of it.
    storage: StorageHandle,
    cache: Arc<ChunkCache>,
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
    /// Opens (or creates) the index under `dir` and starts the indexer thread; returns the
    /// handle and the indexer's worker, which indexes only once started under the node's
    /// [`Workers`](crate::worker::Workers). Downloads read through `storage`, with a read cache
    /// of `read_cache_bytes`.
    pub fn spawn(
        node: RaftNode,
        dir: PathBuf,
        storage: StorageHandle,
        read_cache_bytes: u64,
    ) -> Result<(Self, IndexWorker), QueryError> {
        let (index, indexed, rebuild) = match open_existing(&dir) {
            Some((index, indexed)) => (index, indexed, false),
            None => (create(&dir)?, 0, true),
        };
        schema::register_analyzer(&index);
        let (_, fields) = schema::schema();
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(index_err)?;
        let parser = query_parser(&index, &fields);
        let (tx, rx) = watch::channel(indexed);
        let waiting = Arc::new(AtomicUsize::new(0));
        let catalog = node.catalog().clone();
        let feed = catalog.subscribe(CONSUMER).map_err(index_err)?;
        let waiters = waiters::Waiters::spawn(indexed, waiting.clone());
        let (reader_for_indexer, waiters_for_indexer) = (reader.clone(), waiters.clone());
        let make = move || {
            let writer = index.writer_with_num_threads(1, WRITER_MEMORY).map_err(index_err)?;
            Ok(Indexer {
                catalog,
                feed,
                writer,
                reader: reader_for_indexer,
                fields,
                indexed,
                durable: indexed,
                published: tx,
                waiters: waiters_for_indexer,
                last_commit: None,
            })
        };
        let indexer = IndexWorker::start(&node, make, rebuild, waiting, INDEXER_NICENESS)?;
        let cache = Arc::new(ChunkCache::new(read_cache_bytes));
        let handle =
            Self { inner: Arc::new(Inner { node, reader, parser, fields, indexed: rx, waiters, storage, cache }) };
        Ok((handle, indexer))
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

    /// Runs a search and returns the live records of its hits. With `consistent`, the result
    /// reflects every change committed before the call. The catalog is at least as new as the
    /// index, so a file deleted since it was indexed is left out.
    pub async fn search(&self, req: SearchRequest, consistent: bool) -> Result<Found, QueryError> {
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
        let catalog = self.inner.node.catalog();
        let mut files = Vec::with_capacity(page.hits.len());
        for hit in page.hits {
            if let Some(record) = catalog.file(&hit.id).map_err(index_err)?.filter(|f| f.deleted_at.is_none()) {
                files.push(FoundFile { record, score: hit.score });
            }
        }
        Ok(Found { files, total: page.total, next_cursor: page.next_cursor })
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
