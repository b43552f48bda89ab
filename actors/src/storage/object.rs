//! A storage element in an object store (`s3://bucket/prefix`, `file:///path`, any scheme
//! `object_store` parses), with the same layout as a local element: `chunks/ab/<sha256>` and
//! `files/YYYY/MM/DD/HH/<name>.attr.json` under the URL's path.
//!
//! A successful put is durable in the store's own terms (S3: acknowledged by the service). S3
//! settings come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, …); the credentials may also be files named
//! by `AWS_ACCESS_KEY_ID_FILE`, `AWS_SECRET_ACCESS_KEY_FILE`, `AWS_SESSION_TOKEN_FILE` (secret
//! mounts). Option values are never logged.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::disk::{is_chunk_name, not_a_chunk_name, sha256_hex, ChunkReadError};

#[derive(Clone)]
pub struct ObjectElement {
    pub name: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl ObjectElement {
    /// Opens the store named by `location`.
    pub fn open(name: &str, location: &str) -> Result<Self, String> {
        let url = url::Url::parse(location).map_err(|e| format!("{location:?} is not a URL: {e}"))?;
        let options = artstore_cluster_config::secret_settings::object_store_options(std::env::vars())?;
        let (store, prefix) = object_store::parse_url_opts(&url, options).map_err(err)?;
        Ok(Self { name: name.to_string(), store: Arc::from(store), prefix })
    }

    fn chunk_path(&self, hash: &str) -> Path {
        self.prefix.clone().join("chunks").join(&hash[..2.min(hash.len())]).join(hash)
    }

    pub async fn put_chunk(&self, hash: &str, bytes: Bytes) -> Result<bool, String> {
        if !is_chunk_name(hash) {
            return Err(not_a_chunk_name(hash));
        }
        let actual = sha256_hex(&bytes);
        if actual != hash {
            return Err(format!("chunk content hashes to {actual}, not {hash}"));
        }
        let path = self.chunk_path(hash);
        if self.store.head(&path).await.is_ok_and(|m| m.size == bytes.len() as u64) {
            return Ok(false);
        }
        self.store.put(&path, PutPayload::from_bytes(bytes)).await.map_err(err)?;
        Ok(true)
    }

    pub async fn read_chunk(&self, hash: &str) -> Result<Vec<u8>, ChunkReadError> {
        if !is_chunk_name(hash) {
            return Err(ChunkReadError::Failed(not_a_chunk_name(hash)));
        }
        let got = match self.store.get(&self.chunk_path(hash)).await {
            Ok(g) => g,
            Err(e @ object_store::Error::NotFound { .. }) => return Err(ChunkReadError::Damaged(err(e))),
            Err(e) => return Err(ChunkReadError::Failed(err(e))),
        };
        if got.meta.size > super::MAX_CHUNK {
            return Err(ChunkReadError::Damaged(format!(
                "chunk {hash} in the object store is {} bytes, longer than any chunk",
                got.meta.size
            )));
        }
        let bytes = got.bytes().await.map_err(|e| ChunkReadError::Failed(err(e)))?;
        let actual = sha256_hex(&bytes);
        if actual != hash {
            return Err(ChunkReadError::Damaged(format!(
                "chunk {hash} in the object store is corrupt (hashes to {actual})"
            )));
        }
        Ok(bytes.to_vec())
    }

    fn sidecar_path(&self, relative: &str) -> Result<Path, String> {
        if !super::sidecar::is_safe_relative(relative) {
            return Err(format!("bad sidecar path {relative:?}"));
        }
        let mut path = self.prefix.clone().join("files");
        for part in relative.split('/') {
            path = path.join(part);
        }
        Ok(path)
    }

    /// Durable when it returns (the store acknowledges a completed PUT).
    pub async fn put_sidecar(&self, relative: &str, json: Vec<u8>) -> Result<(), String> {
        let path = self.sidecar_path(relative)?;
        self.store.put(&path, PutPayload::from(json)).await.map_err(err)?;
        Ok(())
    }

    pub async fn remove_sidecar(&self, relative: &str) -> Result<(), String> {
        let path = self.sidecar_path(relative)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// Bytes under `chunks/`.
    pub async fn has_sidecars(&self) -> bool {
        let prefix = self.prefix.clone().join("files");
        // An unreachable store counts as holding sidecars: collection then waits.
        self.store.list(Some(&prefix)).next().await.is_some()
    }

    pub async fn used_bytes(&self) -> u64 {
        let prefix = self.prefix.clone().join("chunks");
        let mut listing = self.store.list(Some(&prefix));
        let mut total = 0;
        while let Some(Ok(meta)) = listing.next().await {
            total += meta.size;
        }
        total
    }

    /// Like the local element's collection: unreferenced chunks older than `grace`.
    pub async fn collect_garbage(
        &self,
        grace: std::time::Duration,
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> (u64, u64) {
        let prefix = self.prefix.clone().join("chunks");
        let mut listing = self.store.list(Some(&prefix));
        let cutoff = chrono_now_minus(grace);
        let (mut files, mut bytes) = (0, 0);
        while let Some(Ok(meta)) = listing.next().await {
            let name = meta.location.filename().unwrap_or_default().to_string();
            if meta.last_modified.timestamp_millis() < cutoff
                && !keep(&name)
                && self.store.delete(&meta.location).await.is_ok()
            {
                files += 1;
                bytes += meta.size;
            }
        }
        (files, bytes)
    }
}

/// Unix milliseconds `grace` ago.
fn chrono_now_minus(grace: std::time::Duration) -> i64 {
    crate::admin::now_ms() - grace.as_millis() as i64
}
