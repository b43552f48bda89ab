//! Listing files from the catalog (not the index): in id (= creation) order, deleted files left
//! out, filtered, consistent with every upload acknowledged before the call. One listing examines
//! at most [`LIST_SCAN_BUDGET`] records, so a selective filter over a large catalog answers a
//! short page and a cursor instead of scanning everything.

use artstore_raft::FileRecord;

use super::QueryHandle;
use crate::QueryError;

/// Records one listing examines at most; a page may then hold fewer than `limit` files and its
/// cursor continues the scan.
pub const LIST_SCAN_BUDGET: usize = 10_000;

/// What a listing keeps (every field optional).
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    /// Compared without regard to case.
    pub content_type: Option<String>,
    pub tag: Option<String>,
    pub created_by: Option<String>,
    /// Unix milliseconds, inclusive.
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
}

impl FileFilter {
    fn matches(&self, f: &FileRecord) -> bool {
        f.deleted_at.is_none()
            && self.content_type.as_ref().is_none_or(|c| f.content_type.eq_ignore_ascii_case(c))
            && self.tag.as_ref().is_none_or(|t| f.tags.contains(t))
            && self.created_by.as_ref().is_none_or(|c| &f.created_by == c)
            && self.created_after.is_none_or(|t| f.created_at >= t)
            && self.created_before.is_none_or(|t| f.created_at <= t)
    }
}

impl QueryHandle {
    /// Up to `limit` live files after id `after` that `filter` keeps, and the cursor to continue
    /// from (absent when the catalog is exhausted).
    pub async fn list_files(
        &self,
        filter: FileFilter,
        after: String,
        limit: usize,
    ) -> Result<(Vec<FileRecord>, Option<String>), QueryError> {
        let unavailable = |e: artstore_raft::Error| QueryError::Unavailable(e.to_string());
        // A listing reflects every upload acknowledged before it, whichever node took it.
        self.inner.node.read_barrier().await.map_err(unavailable)?;
        let catalog = self.inner.node.catalog().clone();
        let mut cursor = after;
        tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            let mut scanned = 0;
            loop {
                let want = (LIST_SCAN_BUDGET - scanned).min(1000);
                let page = catalog.files_after(&cursor, want).map_err(unavailable)?;
                let exhausted = page.len() < want;
                for f in page {
                    scanned += 1;
                    cursor = f.id.clone();
                    if filter.matches(&f) {
                        files.push(f);
                        if files.len() == limit {
                            return Ok((files, Some(cursor)));
                        }
                    }
                }
                if exhausted {
                    return Ok((files, None));
                }
                if scanned >= LIST_SCAN_BUDGET {
                    return Ok((files, Some(cursor)));
                }
            }
        })
        .await
        .map_err(|e| QueryError::Index(e.to_string()))?
    }
}
