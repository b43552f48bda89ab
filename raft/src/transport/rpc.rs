//! The tarpc service nodes call on each other: Raft's own RPCs, plus the requests a follower
//! forwards to the leader (proposals, membership changes, read-index) and a liveness ping.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::types::{ClusterNode, Command, CommandResult, NodeId, TypeConfig};

/// Why a forwarded request failed on the remote node.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error, PartialEq, Eq)]
pub enum RemoteError {
    /// The remote is not (or no longer) the leader; `leader` is who it believes leads.
    #[error("node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Unavailable(String),
}

#[tarpc::service]
pub trait ClusterRpc {
    async fn append_entries(
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;
    async fn vote(req: VoteRequest<NodeId>) -> Result<VoteResponse<NodeId>, RaftError<NodeId>>;
    async fn install_snapshot(
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;
    /// Propose a command on the leader (sent by followers).
    async fn propose(command: Command) -> Result<CommandResult, RemoteError>;
    /// Add a node as learner, wait (up to `catch_up_ms`) until it has caught up, then promote it.
    async fn add_member(node_id: NodeId, node: ClusterNode, catch_up_ms: u64) -> Result<(), RemoteError>;
    /// Remove a node (voter or learner) from the cluster.
    async fn remove_member(node_id: NodeId) -> Result<(), RemoteError>;
    /// The leader's read index: the log index a linearizable read must wait for.
    async fn read_index() -> Result<u64, RemoteError>;
    /// Liveness probe; answers with the responder's node id.
    async fn ping(from: NodeId) -> NodeId;
    /// Asks the receiver to stand for election now (a leader that is stopping hands over to a
    /// caught-up follower this way instead of leaving the cluster to an election timeout).
    async fn elect(from: NodeId) -> bool;
}
