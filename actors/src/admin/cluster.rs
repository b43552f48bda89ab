//! The cluster's control plane as operators reach it through the admin actor: membership
//! (join, remove), cluster-wide settings, catalog digests, and this node's readiness. The HTTP
//! layer calls these instead of holding the Raft node; Raft errors pass through unchanged, so
//! each keeps its one status.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::net::IpAddr;

use artstore_raft::store::backup::BackupImage;
use artstore_raft::{ClusterNode, ClusterStatus, Command, Error, NodeId, Role};

use super::{AdminHandle, Principal};
use crate::AdminError;

/// How long a digest read waits for this node to apply the digest's entry.
const DIGEST_WAIT: Duration = Duration::from_secs(10);

/// This node's digest of the catalog at a log index, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAt {
    Found(String),
    /// The index is past the committed log (`committed`): no entry there yet.
    NotCommitted {
        committed: u64,
    },
    /// This node has applied only up to `applied` within the wait.
    Behind {
        applied: u64,
    },
    /// The entry at that index is not a digest entry.
    NotADigest,
}

impl AdminHandle {
    pub fn node_id(&self) -> NodeId {
        self.node().id()
    }

    /// This node's view of the cluster.
    pub fn cluster_status(&self) -> ClusterStatus {
        self.node().status()
    }

    /// Ready: security is bootstrapped (admin account and signing key), a leader is known and
    /// this node has caught up with it. Otherwise the reason.
    pub fn readiness(&self) -> Result<(), String> {
        match self.node().catalog().security_initialized() {
            Ok(true) => self.node().readiness(),
            Ok(false) => Err("waiting for the leader to create the bootstrap admin account and signing key".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Adds a node as learner, waits up to `catch_up` for it, then promotes it to voter.
    pub async fn add_member(&self, node_id: NodeId, node: ClusterNode, catch_up: Duration) -> Result<(), Error> {
        self.node().add_member(node_id, node, catch_up).await
    }

    pub async fn remove_member(&self, node_id: NodeId) -> Result<(), Error> {
        self.node().remove_member(node_id).await
    }

    /// Every cluster-wide setting; with `consistent`, as of every change committed before the call.
    pub async fn settings(&self, consistent: bool) -> Result<BTreeMap<String, String>, Error> {
        if consistent {
            self.node().read_barrier().await?;
        }
        self.node().catalog().settings()
    }

    pub async fn setting(&self, key: &str, consistent: bool) -> Result<Option<String>, Error> {
        if consistent {
            self.node().read_barrier().await?;
        }
        self.node().catalog().setting(key)
    }

    /// Sets a setting; returns the log index of the change and the value it replaced.
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<(u64, Option<String>), Error> {
        self.node().put_setting(key, value).await
    }

    pub async fn delete_setting(&self, key: &str) -> Result<(), Error> {
        self.node().delete_setting(key).await
    }

    /// Appends a digest entry; every node records its catalog's digest at its log index.
    pub async fn take_digest(&self) -> Result<u64, Error> {
        self.node().take_digest().await
    }

    /// This node's digest at `index`, waiting (bounded) for this node to apply it.
    pub async fn digest_at(&self, index: u64) -> Result<DigestAt, Error> {
        // An index past the committed log has no entry (yet): say so at once rather than wait
        // for an entry that may never be written.
        let committed = self.node().status().commit_index;
        if index > committed {
            return Ok(DigestAt::NotCommitted { committed });
        }
        let deadline = Instant::now() + DIGEST_WAIT;
        while self.node().applied_index() < index {
            if Instant::now() > deadline {
                return Ok(DigestAt::Behind { applied: self.node().applied_index() });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(self.node().catalog().digest_at(index)?.map_or(DigestAt::NotADigest, DigestAt::Found))
    }

    /// A consistent image of the catalog at one log index, for `artstore backup` (admin role:
    /// it holds every account's secret hashes and the signing keys). Audited.
    pub async fn backup(&self, actor: &Principal, source: Option<IpAddr>) -> Result<BackupImage, AdminError> {
        actor.require(Role::Admin)?;
        let image = self.node().backup().await?;
        let (index, files) = (image.info.last_log_id.index, image.info.files);
        let target = format!("log index {index} ({files} files, {} bytes)", image.bytes);
        let event = Self::event(&actor.client_id, "cluster.backup", &target, "ok", source);
        self.audited(Command::AuditOnly, event).await?;
        Ok(image)
    }

    pub fn cluster_id(&self) -> &str {
        &self.inner.issuer
    }
}
