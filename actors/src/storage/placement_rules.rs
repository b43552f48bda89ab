//! The operator's levers on placement, with their rules, so that no HTTP handler proposes them:
//! a storage element's mode (forward only, audited) and draining a node (never the last one that
//! takes files), with the drain's progress counted from the catalog.

use std::net::IpAddr;

use artstore_raft::{AuditEvent, Command, ElementMode, NodeId, StorageElement, DRAIN_SETTING};

use super::StorageHandle;
use crate::StorageError;

/// Where a drain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain {
    pub node_id: NodeId,
    pub draining: bool,
    /// Replicas of live files the node still holds.
    pub replicas_remaining: u64,
}

impl StorageHandle {
    /// Moves element `name` of node `node_id` to `mode` (audited as `actor` from `source`) and
    /// returns it as the catalog now has it. Modes move forward only; the catalog refuses the rest.
    pub async fn set_element_mode(
        &self,
        node_id: NodeId,
        name: &str,
        mode: ElementMode,
        actor: &str,
        source: Option<IpAddr>,
    ) -> Result<StorageElement, StorageError> {
        let node = &self.inner.node;
        let event = AuditEvent {
            at: artstore_raft::now_ms(),
            actor: actor.to_string(),
            action: "element.mode".into(),
            target: format!("{node_id}/{name}→{}", mode.as_str()),
            outcome: "ok".into(),
            source: source.map(|s| s.to_string()).unwrap_or_default(),
        };
        let command = Command::SetElementMode { node_id, name: name.to_string(), mode };
        if let Some(refusal) = node.propose(Command::Audited { command: Box::new(command), event }).await?.rejected {
            return Err(refusal.into());
        }
        // Read our own write even when this node is a follower.
        node.read_barrier().await?;
        node.catalog().element(node_id, name)?.ok_or_else(|| StorageError::NotFound(format!("element {name} vanished")))
    }

    /// Starts moving every replica off member `node_id` (it leaves placement). Refused for the
    /// last member that takes new files: uploads and its replicas would have nowhere to go.
    pub async fn start_drain(&self, node_id: NodeId) -> Result<Drain, StorageError> {
        let node = &self.inner.node;
        self.member(node_id)?;
        let draining = node.catalog().draining_nodes()?;
        let others =
            node.status().members.iter().filter(|m| m.node_id != node_id && !draining.contains(&m.node_id)).count();
        if others == 0 {
            return Err(StorageError::Conflict(format!(
                "node {node_id} is the last member that takes new files; add a node before draining it"
            )));
        }
        node.propose(Command::SetSetting { key: format!("{DRAIN_SETTING}{node_id}"), value: "true".into() }).await?;
        tracing::info!(node_id, "draining started");
        self.drain(node_id).await
    }

    /// Node `node_id` takes new replicas again.
    pub async fn stop_drain(&self, node_id: NodeId) -> Result<Drain, StorageError> {
        self.inner.node.propose(Command::DeleteSetting { key: format!("{DRAIN_SETTING}{node_id}") }).await?;
        self.drain(node_id).await
    }

    /// Whether member `node_id` is draining and how many replicas it still holds.
    pub async fn drain(&self, node_id: NodeId) -> Result<Drain, StorageError> {
        // As of every change committed before the call (a drain started through another node).
        self.inner.node.read_barrier().await?;
        let catalog = self.inner.node.catalog().clone();
        let draining = catalog.draining_nodes()?.contains(&node_id);
        // A page at a time through every file record: off the reactor.
        let remaining = tokio::task::spawn_blocking(move || -> Result<u64, artstore_raft::Error> {
            let (mut n, mut after) = (0u64, String::new());
            loop {
                let page = catalog.files_after(&after, 1000)?;
                let Some(last) = page.last() else { break };
                after = last.id.clone();
                n += page
                    .iter()
                    .filter(|f| f.deleted_at.is_none())
                    .flat_map(|f| &f.chunks)
                    .map(|c| c.replicas.iter().filter(|r| r.node_id == node_id).count() as u64)
                    .sum::<u64>();
            }
            Ok(n)
        })
        .await
        .map_err(|e| StorageError::Io(e.to_string()))??;
        Ok(Drain { node_id, draining, replicas_remaining: remaining })
    }

    fn member(&self, node_id: NodeId) -> Result<(), StorageError> {
        if self.inner.node.status().members.iter().any(|m| m.node_id == node_id) {
            Ok(())
        } else {
            Err(StorageError::NotFound(format!("node {node_id} is not a member")))
        }
    }
}

impl StorageHandle {
    /// Commits file records rebuilt from sidecars and chunks on disk (`artstore recover`),
    /// audited as `actor` from `source`; returns the log index that carried them. A record that
    /// exists already is refused unless `overwrite`.
    pub async fn commit_recovered(
        &self,
        files: Vec<artstore_raft::FileRecord>,
        overwrite: bool,
        actor: &str,
        source: Option<IpAddr>,
    ) -> Result<u64, StorageError> {
        if let Some(f) = files.iter().find(|f| f.chunks.iter().any(|c| c.replicas.is_empty())) {
            return Err(StorageError::Invalid(format!("file {} has a chunk with no replica", f.id)));
        }
        let event = AuditEvent {
            at: artstore_raft::now_ms(),
            actor: actor.to_string(),
            action: "files.recover".into(),
            target: format!("{} files", files.len()),
            outcome: "ok".into(),
            source: source.map(|s| s.to_string()).unwrap_or_default(),
        };
        let command = Command::Audited { command: Box::new(Command::RecoverFiles { files, overwrite }), event };
        let r = self.inner.node.propose(command).await?;
        match r.rejected {
            Some(artstore_raft::Refusal::Conflict(m)) => {
                Err(StorageError::Conflict(format!("{m}; pass --force to overwrite")))
            }
            Some(refusal) => Err(refusal.into()),
            None => Ok(r.log_index),
        }
    }
}
