//! The rules for changing a committed file's metadata and for deleting it, so that no HTTP
//! handler proposes catalog commands itself: the file must be live, every element holding it must
//! still take writes (`edit` or `rw`), and the catalog's own rules (retention only extended, no
//! delete before `retention_until`, permanent files never deleted) refuse the rest.

use artstore_raft::{AuditEvent, Command, FileChanges, FileRecord};

use super::IngestHandle;
use crate::StorageError;

impl IngestHandle {
    /// The live record of file `id`, as of every write acknowledged before the call (read index).
    pub async fn live_file(&self, id: &str) -> Result<FileRecord, StorageError> {
        self.node.read_barrier().await?;
        match self.node.catalog().file(id)? {
            Some(f) if f.deleted_at.is_none() => Ok(f),
            Some(_) => Err(StorageError::NotFound(format!("file {id} was deleted"))),
            None => Err(StorageError::NotFound(format!("no file {id}"))),
        }
    }

    /// Applies `changes` to file `id` (its version goes up) and returns the new record.
    pub async fn update_metadata(&self, id: &str, changes: FileChanges) -> Result<FileRecord, StorageError> {
        let current = self.live_file(id).await?;
        self.check_mutable(&current)?;
        let r =
            self.node.propose(Command::UpdateFile { id: id.to_string(), changes, at: artstore_raft::now_ms() }).await?;
        if let Some(refusal) = r.rejected {
            return Err(refusal.into());
        }
        self.live_file(id).await
    }

    /// Deletes file `id` (a tombstone; its chunks are collected later), audited as `actor` from
    /// `source`.
    pub async fn delete_file(
        &self,
        id: &str,
        actor: &str,
        source: Option<std::net::IpAddr>,
    ) -> Result<(), StorageError> {
        let file = self.live_file(id).await?;
        self.check_mutable(&file)?;
        let at = artstore_raft::now_ms();
        let event = AuditEvent {
            at,
            actor: actor.to_string(),
            action: "file.delete".into(),
            target: id.to_string(),
            outcome: "ok".into(),
            source: source.map(|s| s.to_string()).unwrap_or_default(),
        };
        let command = Command::Audited { command: Box::new(Command::DeleteFile { id: id.to_string(), at }), event };
        match self.node.propose(command).await?.rejected {
            Some(refusal) => Err(refusal.into()),
            None => Ok(()),
        }
    }

    /// Metadata may change while every element holding the file is `edit` or `rw`.
    fn check_mutable(&self, f: &FileRecord) -> Result<(), StorageError> {
        let catalog = self.node.catalog();
        for r in f.chunks.iter().flat_map(|c| c.replicas.iter()) {
            if let Some(e) = catalog.element(r.node_id, &r.element)? {
                if !e.mode.accepts_uploads() {
                    return Err(StorageError::ReadOnly(format!(
                        "the file lives on element {} of node {}, which is {}",
                        e.name,
                        e.node_id,
                        e.mode.as_str()
                    )));
                }
            }
        }
        Ok(())
    }
}
