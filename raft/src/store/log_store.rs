//! The Raft log on the engine, with group commit.
//!
//! `append` writes entries and hands the flush callback to a dedicated flusher thread. The thread
//! takes every callback waiting at that moment, makes them durable with one engine flush (one
//! fsync), then acknowledges them all: under load many proposals share one fsync, and an entry is
//! never acknowledged before it is on disk. Votes are flushed before `save_vote` returns.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, Vote};

use super::engine::{Engine, Tree};
use super::io_err;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, REPLICATION_BUDGET};

pub(super) const VOTE: &[u8] = b"vote";
pub(super) const PURGED: &[u8] = b"last_purged";
pub(super) const COMMITTED: &[u8] = b"committed";

/// Handle to the log; clones share the same trees and flusher.
#[derive(Clone)]
pub struct LogStore {
    engine: Engine,
    log: Tree,
    meta: Tree,
    flusher: mpsc::Sender<LogFlushed<TypeConfig>>,
    committed: Arc<AtomicU64>,
}

fn key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    pub fn open(engine: &Engine) -> Result<Self, crate::Error> {
        let log = engine.tree("log")?;
        let meta = engine.tree("log_meta")?;
        let (tx, rx) = mpsc::channel::<LogFlushed<TypeConfig>>();
        let flush_engine = engine.clone();
        std::thread::Builder::new()
            .name("raft-log-flusher".into())
            .spawn(move || group_commit(flush_engine, rx))
            .map_err(|e| crate::Error::Storage(format!("cannot start the log flusher: {e}")))?;
        let store = Self { engine: engine.clone(), log, meta, flusher: tx, committed: Arc::new(AtomicU64::new(0)) };
        if let Some(c) =
            store.read_meta::<Option<LogId>>(COMMITTED).map_err(|e| crate::Error::Storage(e.to_string()))?.flatten()
        {
            store.committed.store(c.index, Ordering::Relaxed);
        }
        Ok(store)
    }

    /// The highest log index this node knows to be committed.
    pub fn committed_index(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, k: &[u8]) -> Result<Option<T>, StorageError> {
        match self.meta.get(k).map_err(read_err)? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(read_err),
            None => Ok(None),
        }
    }

    /// Removes the log entries whose keys fall in `range`.
    fn remove_entries<R: RangeBounds<Vec<u8>>>(&self, range: R) -> Result<(), StorageError> {
        let doomed: Vec<Vec<u8>> =
            self.log.range(range).map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>().map_err(read_err)?;
        for k in doomed {
            self.log.remove(&k).map_err(write_err)?;
        }
        Ok(())
    }

    fn write_meta<T: serde::Serialize>(&self, k: &[u8], v: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(v).map_err(write_err)?;
        self.meta.insert(k, &bytes).map_err(write_err)
    }
}

/// The flusher thread: one flush per batch of waiting appends.
fn group_commit(engine: Engine, rx: mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let started = std::time::Instant::now();
        let result = engine.flush();
        metrics::counter!("artstore_raft_log_flushes_total").increment(1);
        metrics::histogram!("artstore_raft_log_flush_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("artstore_raft_log_flush_batch_size").record(waiting.len() as f64);
        for callback in waiting {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            callback.log_io_completed(r);
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(key(*i)),
            Bound::Excluded(i) => Bound::Excluded(key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(key(*i)),
            Bound::Excluded(i) => Bound::Excluded(key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self.log.range((start, end)) {
            let (_, v) = item.map_err(read_err)?;
            out.push(serde_json::from_slice(&v).map_err(read_err)?);
        }
        Ok(out)
    }

    /// What replication sends next: the entries from `start`, up to [`REPLICATION_BUDGET`] bytes
    /// as stored (and always the first one). openraft asks for up to `max_payload_entries` at a
    /// time; for entries of a few hundred KiB (bulk catalog writes) that would decode hundreds of
    /// MiB on the leader for one call that could not reach a follower within its deadline anyway.
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for item in self.log.range(key(start)..key(end)) {
            let (_, v) = item.map_err(read_err)?;
            bytes += v.len() as u64;
            if bytes > REPLICATION_BUDGET && !out.is_empty() {
                break;
            }
            out.push(serde_json::from_slice(&v).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(PURGED)?;
        let last = match self.log.last().map_err(read_err)? {
            Some((_, v)) => Some(serde_json::from_slice::<Entry>(&v).map_err(read_err)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(vote).map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.meta.insert(VOTE, &bytes).map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        // A vote must be durable before it is acted on, or a restarted node could vote twice in a term.
        self.engine.flush_async().await.map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(c) = committed {
            self.committed.store(c.index, Ordering::Relaxed);
        }
        // Not flushed: after a crash a smaller committed index is only a hint that is re-learned.
        self.write_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut count = 0u64;
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(write_err)?;
            self.log.insert(&key(entry.log_id.index), &bytes).map_err(write_err)?;
            count += 1;
        }
        metrics::counter!("artstore_raft_log_entries_appended_total").increment(count);
        self.flusher.send(callback).map_err(|_| write_err("the log flusher thread has stopped"))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_entries(key(log_id.index)..)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first, so a crash mid-purge never leaves a hole below it.
        self.write_meta(PURGED, &log_id)?;
        self.remove_entries(..=key(log_id.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Command;
    use openraft::{CommittedLeaderId, EntryPayload};

    /// A store whose log holds `count` entries of about `size` bytes each, from index 1.
    fn log_of(dir: &std::path::Path, count: u64, size: usize) -> LogStore {
        let store = LogStore::open(&Engine::open(&dir.join("raft")).unwrap()).unwrap();
        for index in 1..=count {
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                payload: EntryPayload::Normal(Command::SetSetting {
                    key: format!("k{index}"),
                    value: "x".repeat(size),
                }),
            };
            store.log.insert(&key(index), &serde_json::to_vec(&entry).unwrap()).unwrap();
        }
        store
    }

    #[tokio::test]
    async fn replication_reads_entries_up_to_its_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let third = (REPLICATION_BUDGET / 3) as usize;
        let mut store = log_of(dir.path(), 10, third - 200);
        let first = store.limited_get_log_entries(1, 11).await.unwrap();
        assert_eq!(first.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), [1, 2, 3]);
        let next = store.limited_get_log_entries(4, 6).await.unwrap();
        assert_eq!(next.len(), 2, "a short range is read whole");
        // Small entries: the whole range; every entry is still readable through the plain read.
        assert_eq!(store.try_get_log_entries(1..11).await.unwrap().len(), 10);
        let small_dir = tempfile::tempdir().unwrap();
        let mut small = log_of(small_dir.path(), 300, 100);
        assert_eq!(small.limited_get_log_entries(1, 301).await.unwrap().len(), 300);
    }

    #[tokio::test]
    async fn an_entry_over_the_budget_is_read_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = log_of(dir.path(), 3, REPLICATION_BUDGET as usize + 10);
        let read = store.limited_get_log_entries(2, 4).await.unwrap();
        assert_eq!(read.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), [2]);
    }
}
