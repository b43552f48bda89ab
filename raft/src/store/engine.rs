//! The embedded key-value engine under the Raft log and the catalog.
//!
//! sled is the engine today. Everything else in this crate reaches it only through [`Engine`],
//! [`Tree`] and [`WriteBatch`], so that sled (beta software) can be swapped for another embedded
//! store without touching the log store, the state machine or the catalog.
//!
//! Durability contract: writes become durable only at [`Engine::flush`]; a [`WriteBatch`] is applied
//! atomically (all or nothing after a crash).

use std::ops::RangeBounds;
use std::path::{Path, PathBuf};

use crate::Error;

/// One key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// An open database: a set of named trees sharing one write-ahead log.
#[derive(Clone)]
pub struct Engine {
    db: sled::Db,
    path: PathBuf,
}

/// An ordered map of byte keys to byte values inside an [`Engine`].
#[derive(Clone)]
pub struct Tree {
    tree: sled::Tree,
}

/// Writes to one tree that are applied atomically.
#[derive(Default)]
pub struct WriteBatch {
    batch: sled::Batch,
    /// The same writes in order, so that batches can be appended to one another.
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn engine_err(e: sled::Error) -> Error {
    Error::Storage(e.to_string())
}

impl Engine {
    pub fn open(path: &Path) -> Result<Self, Error> {
        // sled's own timer flush stays on as a safety net; correctness relies on explicit flushes.
        // A bounded page cache: the catalog is small per entry and the node has other work for memory.
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(engine_err)?;
        Ok(Self { db, path: path.to_path_buf() })
    }

    /// The database's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tree(&self, name: &str) -> Result<Tree, Error> {
        Ok(Tree { tree: self.db.open_tree(name).map_err(engine_err)? })
    }

    /// Makes every write so far durable (one fsync for all of them).
    pub fn flush(&self) -> Result<(), Error> {
        metrics::counter!("artstore_syncs_total", "kind" => "raft_db").increment(1);
        self.db.flush().map(|_| ()).map_err(engine_err)
    }

    /// [`Engine::flush`] without blocking the async reactor.
    pub async fn flush_async(&self) -> Result<(), Error> {
        metrics::counter!("artstore_syncs_total", "kind" => "raft_db").increment(1);
        self.db.flush_async().await.map(|_| ()).map_err(engine_err)
    }
}

impl Tree {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.tree.get(key).map_err(engine_err)?.map(|v| v.to_vec()))
    }

    pub fn get_string(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self.get(key.as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.tree.insert(key, value).map(|_| ()).map_err(engine_err)
    }

    pub fn remove(&self, key: &[u8]) -> Result<(), Error> {
        self.tree.remove(key).map(|_| ()).map_err(engine_err)
    }

    pub fn apply(&self, batch: WriteBatch) -> Result<(), Error> {
        self.tree.apply_batch(batch.batch).map_err(engine_err)
    }

    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, Error> {
        self.tree.scan_prefix(prefix).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine_err)).collect()
    }

    /// Entries with keys in `range`, in key order.
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, range: R) -> impl Iterator<Item = Result<KeyValue, Error>> {
        self.tree.range(range).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine_err))
    }

    pub fn last(&self) -> Result<Option<KeyValue>, Error> {
        Ok(self.tree.last().map_err(engine_err)?.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    /// Every entry, in key order, read lazily (nothing is collected).
    pub fn iter(&self) -> impl Iterator<Item = Result<KeyValue, Error>> {
        self.tree.iter().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine_err))
    }

    /// Up to `limit` keys after `after` (from the first key when `None`), in order.
    pub fn keys_after(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<Vec<u8>>, Error> {
        let iter = match after {
            Some(a) => self.tree.range::<&[u8], _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => self.tree.iter(),
        };
        iter.keys().take(limit).map(|k| k.map(|k| k.to_vec()).map_err(engine_err)).collect()
    }

    /// Every key, in order.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, Error> {
        self.tree.iter().keys().map(|k| k.map(|k| k.to_vec()).map_err(engine_err)).collect()
    }
}

impl WriteBatch {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.insert(key.clone(), value.clone());
        self.ops.push((key, Some(value)));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.batch.remove(key.clone());
        self.ops.push((key, None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many writes the batch holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The keys the batch writes, in order (a key may appear more than once).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.ops.iter().map(|(k, _)| k.as_slice())
    }

    /// Adds `other`'s writes after this batch's.
    pub fn append(&mut self, other: WriteBatch) {
        for (k, v) in other.ops {
            match v {
                Some(v) => self.put(k, v),
                None => self.delete(k),
            }
        }
    }
}
