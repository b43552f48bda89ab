//! The change feed: every applied file change is recorded as `change/<log index>/<file id>` in
//! the same write as the record itself, so a consumer that reads the feed sees every change
//! exactly in log order, across crashes. Node-local consumers (the search index, the sidecar
//! keeper, later webhooks and content extraction) [`Catalog::subscribe`] by name and get a
//! [`Subscription`]: batches of changes after their position, a commit that records their cursor
//! and prunes what every subscriber is done with, and the handling of poison records — a change
//! a consumer keeps failing on is set aside (counted, visible in `artstore repair status`) and
//! retried with backoff while everything after it flows on.
//!
//! Invariants: the feed is pruned only below every subscriber's cursor; the feed's keys (the
//! changes, the floor, cursors and set-aside records) are node-local: they differ between nodes,
//! are left out of catalog digests, and cursors and set-aside records are kept across a snapshot
//! install (they describe this node, not the snapshot's sender).
//!
//! The feed shares the catalog's tree rather than a tree of its own: that is what makes recording
//! a change atomic with the record (one batch) without a cross-tree transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{encode, Catalog};
use crate::store::engine::WriteBatch;
use crate::Error;

/// The change feed: `change/<log index>/<file id>` for every applied file change, in log order.
/// Node-local consumers (the search index, the sidecar writer) read it and prune what they have
/// made durable; it is therefore not identical across nodes and is left out of catalog comparisons.
const CHANGE: &str = "change/";
/// Node-local bookkeeping of the change feed (its floor and its consumers' cursors).
const CHANGES_LOCAL: &str = "_changes/";
/// Everything in the change feed at or below this log index has been pruned.
const CHANGE_FLOOR: &str = "_changes/floor";
/// `_changes/cursor/<consumer>`: how far a consumer has made the feed durable.
const CHANGE_CURSOR: &str = "_changes/cursor/";
/// `_changes/aside/<consumer>/<file id>`: a change a consumer kept failing on, set aside so that
/// everything after it keeps flowing; retried with backoff until it succeeds.
const CHANGE_ASIDE: &str = "_changes/aside/";
/// A change a consumer of the feed could not process, kept out of its way (node-local).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    pub consumer: String,
    pub file_id: String,
    /// Log index of the change (the latest one, when it failed again later).
    pub index: u64,
    pub error: String,
    pub attempts: u32,
    /// Milliseconds since the epoch.
    pub first_failed_at: i64,
    pub next_retry_at: i64,
}

impl Catalog {
    pub(crate) fn record_change(index: u64, file_id: &str, batch: &mut WriteBatch) {
        batch.put(format!("{CHANGE}{index:020}/{file_id}").into_bytes(), Vec::new());
    }

    /// Up to `limit` file changes with a log index in `(after, upto]`, in log order.
    pub fn changes(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<(u64, String)>, Error> {
        let start = format!("{CHANGE}{:020}", after.saturating_add(1)).into_bytes();
        let end = format!("{CHANGE}{:020}~", upto).into_bytes();
        let mut out = Vec::new();
        for item in self.tree.range(start..end).take(limit) {
            let (k, _) = item?;
            let k = String::from_utf8_lossy(&k[CHANGE.len()..]).into_owned();
            let (index, id) = k.split_once('/').ok_or_else(|| Error::Storage(format!("bad change key {k}")))?;
            let index = index.parse().map_err(|_| Error::Storage(format!("bad change key {k}")))?;
            out.push((index, id.to_string()));
        }
        Ok(out)
    }

    /// The change feed has nothing at or below this index (it was pruned up to here).
    pub fn change_floor(&self) -> Result<u64, Error> {
        Ok(self.get::<u64>(CHANGE_FLOOR)?.unwrap_or(0))
    }

    /// How far `consumer` has made the feed durable (the floor if it has not said yet). Below
    /// the floor after a snapshot install: the changes in between are gone from the feed.
    pub fn change_cursor(&self, consumer: &str) -> Result<u64, Error> {
        match self.get::<u64>(&format!("{CHANGE_CURSOR}{consumer}"))? {
            Some(cursor) => Ok(cursor),
            None => self.change_floor(),
        }
    }

    /// Records that `consumer` has made every change up to `upto` durable elsewhere, and drops
    /// the changes every consumer is done with. Returns how many were dropped.
    pub fn prune_changes(&self, consumer: &str, upto: u64) -> Result<usize, Error> {
        let floor = self.change_floor()?;
        let mut batch = WriteBatch::default();
        batch.put(format!("{CHANGE_CURSOR}{consumer}").into_bytes(), encode(&upto));
        // Every subscriber holds the feed at its cursor (one that subscribed and never committed
        // holds it at the floor it subscribed at).
        let mut prune_to = upto;
        for (key, value) in self.tree.scan_prefix(CHANGE_CURSOR.as_bytes())? {
            if key[CHANGE_CURSOR.len()..] != *consumer.as_bytes() {
                prune_to = prune_to.min(serde_json::from_slice::<u64>(&value).unwrap_or(floor));
            }
        }
        let end = format!("{CHANGE}{:020}~", prune_to).into_bytes();
        let mut n = 0;
        if prune_to > floor {
            for item in self.tree.range(CHANGE.as_bytes().to_vec()..end) {
                batch.delete(item?.0);
                n += 1;
            }
            batch.put(CHANGE_FLOOR.as_bytes().to_vec(), encode(&prune_to));
        }
        self.tree.apply(batch)?;
        Ok(n)
    }

    /// Sets the change of `file_id` aside for `consumer` after a failure: recorded with its error
    /// (the first 1 000 bytes), retried after a backoff that doubles with every attempt (1 s to
    /// an hour). Returns the record as stored.
    pub fn set_aside(
        &self,
        consumer: &str,
        file_id: &str,
        index: u64,
        error: &str,
        now_ms: i64,
    ) -> Result<SetAside, Error> {
        let key = format!("{CHANGE_ASIDE}{consumer}/{file_id}");
        let previous: Option<SetAside> = self.get(&key)?;
        let attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
        let backoff_ms = 1000i64.saturating_mul(1 << (attempts - 1).min(12)).min(3_600_000);
        let mut error = error.to_string();
        if error.len() > 1000 {
            let mut cut = 1000;
            while !error.is_char_boundary(cut) {
                cut -= 1;
            }
            error.truncate(cut);
        }
        let record = SetAside {
            consumer: consumer.to_string(),
            file_id: file_id.to_string(),
            index: previous.as_ref().map_or(index, |p| p.index.max(index)),
            error,
            attempts,
            first_failed_at: previous.as_ref().map_or(now_ms, |p| p.first_failed_at),
            next_retry_at: now_ms.saturating_add(backoff_ms),
        };
        let mut batch = WriteBatch::default();
        batch.put(key.into_bytes(), encode(&record));
        self.tree.apply(batch)?;
        Ok(record)
    }

    /// The changes `consumer` set aside whose retry time has come, at most `limit`.
    pub fn set_aside_due(&self, consumer: &str, now_ms: i64, limit: usize) -> Result<Vec<SetAside>, Error> {
        let all: Vec<SetAside> = self.scan(&format!("{CHANGE_ASIDE}{consumer}/"))?;
        Ok(all.into_iter().filter(|a| a.next_retry_at <= now_ms).take(limit).collect())
    }

    /// Forgets a set-aside change (it went through, or the file is gone).
    pub fn clear_set_aside(&self, consumer: &str, file_id: &str) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        batch.delete(format!("{CHANGE_ASIDE}{consumer}/{file_id}").into_bytes());
        self.tree.apply(batch)
    }

    /// How many changes `consumer` has set aside (a key count; nothing is decoded).
    pub fn set_aside_count(&self, consumer: &str) -> Result<usize, Error> {
        Ok(self.tree.scan_prefix(format!("{CHANGE_ASIDE}{consumer}/").as_bytes())?.len())
    }

    /// Every set-aside change of every consumer on this node.
    pub fn set_aside_all(&self) -> Result<Vec<SetAside>, Error> {
        self.scan(CHANGE_ASIDE)
    }

    pub(crate) fn is_change_cursor(key: &[u8]) -> bool {
        key.starts_with(CHANGE_CURSOR.as_bytes()) || key.starts_with(CHANGE_ASIDE.as_bytes())
    }

    /// Subscribes `consumer` to the feed: from now on the feed is kept for it until it commits
    /// past a change. A new subscriber starts at the floor; an existing one at its cursor.
    /// Subscriptions are node-local and survive restarts and snapshot installs.
    pub fn subscribe(&self, consumer: &'static str) -> Result<Subscription, Error> {
        let key = format!("{CHANGE_CURSOR}{consumer}");
        if self.get::<u64>(&key)?.is_none() {
            let mut batch = WriteBatch::default();
            batch.put(key.into_bytes(), encode(&self.change_floor()?));
            self.tree.apply(batch)?;
        }
        Ok(Subscription { catalog: self.clone(), consumer })
    }
}

/// Whether `key` is one of the feed's node-local keys.
pub(super) fn is_node_local(key: &[u8]) -> bool {
    key.starts_with(CHANGE.as_bytes()) || key.starts_with(CHANGES_LOCAL.as_bytes())
}

/// One consumer's view of the feed.
#[derive(Clone)]
pub struct Subscription {
    catalog: Catalog,
    consumer: &'static str,
}

/// Changes after a consumer's position: the latest log index of every file changed, and the
/// position the consumer reaches once it has handled them.
#[derive(Debug, Default)]
pub struct FeedBatch {
    pub files: BTreeMap<String, u64>,
    pub reached: u64,
}

impl Subscription {
    pub fn consumer(&self) -> &'static str {
        self.consumer
    }

    /// The position this consumer last committed.
    pub fn cursor(&self) -> Result<u64, Error> {
        self.catalog.change_cursor(self.consumer)
    }

    /// Whether the feed was pruned past `position` (a snapshot from a peer replaced the catalog):
    /// the consumer must then start over from the whole catalog.
    pub fn behind(&self, position: u64) -> Result<bool, Error> {
        let behind = self.catalog.change_floor()? > position;
        if behind {
            // It starts over from the whole catalog: as far behind as the applied index.
            let applied = self.catalog.applied_index()?;
            metrics::gauge!("artstore_change_feed_lag_entries", "consumer" => self.consumer)
                .set(applied.saturating_sub(position) as f64);
        }
        Ok(behind)
    }

    /// Up to `limit` changes after `position`, up to the applied index. A full batch stops at its
    /// last change; otherwise the consumer reaches the applied index.
    pub fn next_batch(&self, position: u64, limit: usize) -> Result<FeedBatch, Error> {
        let applied = self.catalog.applied_index()?;
        let changes = if applied <= position { Vec::new() } else { self.catalog.changes(position, applied, limit)? };
        // Set at every request too, so that a consumer failing before its commit shows its lag
        // growing instead of the value of its last commit. Entries that changed no file leave it
        // nothing to do, so it is not behind (consumers need not commit an empty batch).
        let lag = if changes.is_empty() { 0 } else { applied.saturating_sub(position) };
        metrics::gauge!("artstore_change_feed_lag_entries", "consumer" => self.consumer).set(lag as f64);
        if applied <= position {
            return Ok(FeedBatch { files: BTreeMap::new(), reached: position });
        }
        let reached = if changes.len() == limit { changes.last().map_or(applied, |(i, _)| *i) } else { applied };
        Ok(FeedBatch { files: changes.into_iter().map(|(i, id)| (id, i)).collect(), reached })
    }

    /// Records that every change up to `upto` is handled (durably, wherever the consumer keeps
    /// its results), pruning what every subscriber is done with; returns how many were pruned.
    pub fn commit(&self, upto: u64) -> Result<usize, Error> {
        let pruned = self.catalog.prune_changes(self.consumer, upto)?;
        let applied = self.catalog.applied_index()?;
        metrics::gauge!("artstore_change_feed_lag_entries", "consumer" => self.consumer)
            .set(applied.saturating_sub(upto) as f64);
        Ok(pruned)
    }

    /// Sets the change of `file_id` (at log index `index`) aside after a failure; the consumer
    /// moves on, and [`Subscription::retries_due`] hands it back after the backoff.
    pub fn set_aside(&self, file_id: &str, index: u64, error: &str) -> Result<SetAside, Error> {
        let record = self.catalog.set_aside(self.consumer, file_id, index, error, crate::now_ms())?;
        tracing::warn!(
            consumer = self.consumer,
            file = file_id,
            attempts = record.attempts,
            error,
            "change set aside after a failure; later changes go on, this one is retried with backoff"
        );
        self.count_set_aside()?;
        Ok(record)
    }

    /// Set-aside changes whose retry time has come, at most `limit`.
    pub fn retries_due(&self, limit: usize) -> Result<Vec<SetAside>, Error> {
        self.catalog.set_aside_due(self.consumer, crate::now_ms(), limit)
    }

    /// A set-aside change went through (or its file is gone): forget it.
    pub fn retried(&self, file_id: &str) -> Result<(), Error> {
        self.catalog.clear_set_aside(self.consumer, file_id)?;
        self.count_set_aside().map(|_| ())
    }

    /// Publishes (and returns) how many changes this consumer has set aside.
    pub fn count_set_aside(&self) -> Result<usize, Error> {
        let n = self.catalog.set_aside_count(self.consumer)?;
        metrics::gauge!("artstore_change_feed_set_aside", "consumer" => self.consumer).set(n as f64);
        Ok(n)
    }
}
