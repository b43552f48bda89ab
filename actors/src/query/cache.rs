//! A read cache of verified chunks, bounded by bytes, evicting the least recently used.
//!
//! Only chunks of files small enough to be "hot documents" are admitted (a quarter of the cache
//! at most), so streaming one large file never flushes everything else out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;

pub struct ChunkCache {
    capacity: u64,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    /// sha256 → (bytes, last use).
    entries: HashMap<String, (Bytes, u64)>,
    /// last use → sha256, oldest first.
    order: BTreeMap<u64, String>,
    bytes: u64,
    clock: u64,
}

impl ChunkCache {
    pub fn new(capacity: u64) -> Self {
        Self { capacity, inner: Mutex::new(Lru::default()) }
    }

    /// Whether a file of `file_size` bytes (or, for ranges, one chunk of that size) is worth caching.
    pub fn admits(&self, file_size: u64) -> bool {
        self.capacity > 0 && file_size <= self.capacity / 4
    }

    pub fn get(&self, sha256: &str) -> Option<Bytes> {
        let mut lru = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        lru.clock += 1;
        let now = lru.clock;
        let (bytes, old) = match lru.entries.get_mut(sha256) {
            Some((b, used)) => {
                let old = std::mem::replace(used, now);
                (b.clone(), old)
            }
            None => {
                metrics::counter!("artstore_read_cache_misses_total").increment(1);
                return None;
            }
        };
        lru.order.remove(&old);
        lru.order.insert(now, sha256.to_string());
        metrics::counter!("artstore_read_cache_hits_total").increment(1);
        Some(bytes)
    }

    pub fn put(&self, sha256: &str, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > self.capacity / 4 {
            return;
        }
        let mut lru = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        lru.clock += 1;
        let now = lru.clock;
        if let Some((old, used)) = lru.entries.insert(sha256.to_string(), (bytes, now)) {
            lru.order.remove(&used);
            lru.bytes -= old.len() as u64;
        }
        lru.order.insert(now, sha256.to_string());
        lru.bytes += size;
        while lru.bytes > self.capacity {
            let Some((_, victim)) = lru.order.pop_first() else { break };
            if let Some((b, _)) = lru.entries.remove(&victim) {
                lru.bytes -= b.len() as u64;
            }
        }
        metrics::gauge!("artstore_read_cache_bytes").set(lru.bytes as f64);
    }
}

impl crate::storage::StoredChunkCache for ChunkCache {
    fn get(&self, sha256: &str) -> Option<Bytes> {
        ChunkCache::get(self, sha256)
    }

    fn put(&self, sha256: &str, stored: Bytes) {
        ChunkCache::put(self, sha256, stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let cache = ChunkCache::new(400);
        cache.put("a", Bytes::from(vec![1; 100]));
        cache.put("b", Bytes::from(vec![2; 100]));
        cache.put("c", Bytes::from(vec![3; 100]));
        assert!(cache.get("a").is_some()); // a is now the most recent
        cache.put("d", Bytes::from(vec![4; 100]));
        cache.put("e", Bytes::from(vec![5; 100])); // over 400: b goes first
        assert!(cache.get("b").is_none());
        assert_eq!(cache.get("a").unwrap()[0], 1);
        assert!(cache.get("e").is_some());
        cache.put("huge", Bytes::from(vec![0; 101])); // larger than a quarter: not admitted
        assert!(cache.get("huge").is_none());
        assert!(cache.admits(100) && !cache.admits(101));
        assert!(!ChunkCache::new(0).admits(0));
    }
}
