//! A storage element's backend: a local folder ([`Element`]) or an object store
//! ([`ObjectElement`]). The storage actor speaks only to this type, so the two behave the same
//! (same layout, same hash checks); local file work runs on the blocking pool.

use std::sync::Arc;
use std::time::Duration;

use artstore_cluster_config::StorageElementConfig;
use bytes::Bytes;

use super::disk::{ChunkReadError, Element};
use super::object::ObjectElement;

#[derive(Clone)]
pub enum Backend {
    Local(Element),
    Object(ObjectElement),
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())
}

impl Backend {
    /// Opens the element `c` describes: a URL (`s3://…`, `file://…`) or a local folder (created).
    pub fn open(c: &StorageElementConfig) -> Result<Self, String> {
        if c.location.contains("://") {
            return Ok(Backend::Object(ObjectElement::open(&c.name, &c.location)?));
        }
        std::fs::create_dir_all(&c.location).map_err(|e| format!("{}: {e}", c.location))?;
        Ok(Backend::Local(Element::new(c.name.clone(), c.location.clone().into())))
    }

    pub fn name(&self) -> &str {
        match self {
            Backend::Local(e) => &e.name,
            Backend::Object(o) => &o.name,
        }
    }

    pub async fn put_chunk(&self, hash: &str, bytes: Bytes) -> Result<bool, String> {
        match self {
            Backend::Local(e) => {
                let (e, hash) = (e.clone(), hash.to_string());
                blocking(move || e.put_chunk(&hash, &bytes)).await?
            }
            Backend::Object(o) => o.put_chunk(hash, bytes).await,
        }
    }

    pub async fn read_chunk(&self, hash: &str) -> Result<Vec<u8>, ChunkReadError> {
        match self {
            Backend::Local(e) => {
                let (e, hash) = (e.clone(), hash.to_string());
                blocking(move || e.read_chunk(&hash)).await.map_err(ChunkReadError::Failed)?
            }
            Backend::Object(o) => o.read_chunk(hash).await,
        }
    }

    /// [`Backend::read_chunk`] without the hash check, for a peer that checks what it receives
    /// (hashing every remote chunk twice halved remote reads). An object store's bytes are
    /// checked as before: they crossed a network already.
    pub async fn read_chunk_for_peer(&self, hash: &str) -> Result<Vec<u8>, ChunkReadError> {
        match self {
            Backend::Local(e) => {
                let (e, hash) = (e.clone(), hash.to_string());
                blocking(move || e.read_chunk_unverified(&hash)).await.map_err(ChunkReadError::Failed)?
            }
            Backend::Object(o) => o.read_chunk(hash).await,
        }
    }

    /// Writes (`Some(json)`) or removes (`None`) sidecars at relative paths. With a file id in
    /// `prune`, other sidecars of that file in the same folder (left by an earlier name) are
    /// removed too (local elements; an object store keeps them until the file is recovered).
    /// Returns once all of it is durable: on a local element, one sync for the whole batch.
    pub async fn apply_sidecars(&self, ops: Vec<(String, Option<Vec<u8>>, Option<String>)>) -> Result<(), String> {
        match self {
            Backend::Local(e) => {
                let e = e.clone();
                blocking(move || {
                    for (relative, json, prune) in &ops {
                        match json {
                            Some(json) => e.put_sidecar(relative, json)?,
                            None => e.remove_sidecar(relative)?,
                        }
                        if let Some(id) = prune {
                            e.remove_other_sidecars(relative, id)?;
                        }
                    }
                    e.sync()
                })
                .await?
            }
            Backend::Object(o) => {
                for (relative, json, _) in ops {
                    match json {
                        Some(json) => o.put_sidecar(&relative, json).await?,
                        None => o.remove_sidecar(&relative).await?,
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether the element holds at least one sidecar (so it has held committed files).
    pub async fn has_sidecars(&self) -> bool {
        match self {
            Backend::Local(e) => {
                let e = e.clone();
                blocking(move || e.has_sidecars()).await.unwrap_or(true)
            }
            Backend::Object(o) => o.has_sidecars().await,
        }
    }

    pub async fn used_bytes(&self) -> u64 {
        match self {
            Backend::Local(e) => {
                let e = e.clone();
                blocking(move || e.used_bytes()).await.unwrap_or(0)
            }
            Backend::Object(o) => o.used_bytes().await,
        }
    }

    /// `(total, free)` of the file system under a local element; unknown for object stores.
    pub fn space(&self) -> Option<(u64, u64)> {
        match self {
            // One `statvfs` for both figures; free is what an unprivileged writer may use.
            Backend::Local(e) => Some(
                rustix::fs::statvfs(&e.root)
                    .map(|s| (s.f_blocks * s.f_frsize, s.f_bavail * s.f_frsize))
                    .unwrap_or((0, 0)),
            ),
            Backend::Object(_) => None,
        }
    }

    pub async fn collect_garbage(&self, grace: Duration, keep: Arc<dyn Fn(&str) -> bool + Send + Sync>) -> (u64, u64) {
        match self {
            Backend::Local(e) => {
                let e = e.clone();
                blocking(move || e.collect_garbage(grace, &|h| keep(h))).await.unwrap_or((0, 0))
            }
            Backend::Object(o) => o.collect_garbage(grace, &|h| keep(h)).await,
        }
    }
}
