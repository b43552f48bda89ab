//! Downloads: a file's content, whole or a byte range, streamed chunk by chunk through the
//! storage actor's verified reader, with the read cache in front of it.
//!
//! Invariant: only verified bytes are cached (the cache holds chunks as stored, so a compressed
//! chunk is cached compressed and unpacked on the way out); a read's memory is bounded by
//! [`READ_AHEAD`](crate::storage::READ_AHEAD) chunks whatever the file's size.

use std::sync::Arc;

use artstore_raft::FileRecord;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::QueryHandle;
use crate::storage::StoredChunkCache;
use crate::StorageError;

impl QueryHandle {
    /// The file's content as a stream of verified chunks, in order. Chunks of small files go
    /// through the read cache.
    pub fn read(&self, file: FileRecord) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        let cacheable = self.inner.cache.admits(file.size);
        self.read_content(file, cacheable)
    }

    /// Bytes `start..=end` of the file's content, reading only the chunks that overlap them.
    pub fn read_range(
        &self,
        mut file: FileRecord,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        // Keep the overlapping chunks, with the slice of each that is wanted.
        let mut offset = 0u64;
        let mut cuts = Vec::new();
        file.chunks.retain(|c| {
            let (from, to) = (offset, offset + c.size); // [from, to)
            offset = to;
            let keep = to > start && from <= end;
            if keep {
                let a = start.saturating_sub(from) as usize;
                let b = ((end + 1).min(to) - from) as usize;
                cuts.push((a, b));
            }
            keep
        });
        let cuts = Arc::new(cuts);
        // Ranges are read again and again (media, paging through big documents): their chunks are
        // cached whatever the file's size, as long as one chunk fits the cache's admission limit.
        let cacheable = file.chunks.iter().all(|c| self.inner.cache.admits(c.size));
        self.read_content(file, cacheable).enumerate().map(move |(i, r)| {
            r.map(|b| {
                let (a, z) = cuts[i];
                b.slice(a.min(b.len())..z.min(b.len()))
            })
        })
    }

    fn read_content(
        &self,
        file: FileRecord,
        cacheable: bool,
    ) -> impl Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        let cache = cacheable.then(|| self.inner.cache.clone() as Arc<dyn StoredChunkCache>);
        self.inner.storage.read_chunks(file, true, cache)
    }
}
