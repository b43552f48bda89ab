//! The server side of [`ClusterRpc`]: hands Raft RPCs to openraft and runs forwarded requests
//! with this node acting as leader (never forwarding again, so requests cannot loop).

use futures::StreamExt;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};

use super::{Local, RaftNode};
use crate::transport::{rpc_transport, ClusterRpc, RemoteError, RpcStreamHandler};
use crate::types::{ClusterNode, Command, CommandResult, NodeId, TypeConfig};
use crate::Error;

/// The transport's handler for RPC streams: one tarpc channel per stream, each request on its own task.
pub(crate) fn handler(node: RaftNode) -> RpcStreamHandler {
    std::sync::Arc::new(move |send, recv| {
        let service = ClusterService { node: node.clone() };
        tokio::spawn(BaseChannel::with_defaults(rpc_transport(send, recv)).execute(service.serve()).for_each(
            |response| async move {
                tokio::spawn(response);
            },
        ));
    })
}

#[derive(Clone)]
pub(crate) struct ClusterService {
    pub(crate) node: RaftNode,
}

fn remote<T>(r: Result<Local<T>, Error>) -> Result<T, RemoteError> {
    match r {
        Ok(Local::Done(t)) => Ok(t),
        Ok(Local::NotLeader(l)) => Err(RemoteError::NotLeader { leader: l.map(|(id, _)| id) }),
        Err(Error::Rejected(m)) => Err(RemoteError::Rejected(m)),
        Err(e) => Err(RemoteError::Unavailable(e.to_string())),
    }
}

impl ClusterRpc for ClusterService {
    async fn append_entries(
        self,
        _: Context,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.node.raft().append_entries(req).await
    }

    async fn vote(self, _: Context, req: VoteRequest<NodeId>) -> Result<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.node.raft().vote(req).await
    }

    async fn install_snapshot(
        self,
        _: Context,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.node.raft().install_snapshot(req).await
    }

    async fn propose(self, _: Context, command: Command) -> Result<CommandResult, RemoteError> {
        remote(self.node.propose_local(command).await)
    }

    async fn add_member(
        self,
        _: Context,
        node_id: NodeId,
        node: ClusterNode,
        catch_up_ms: u64,
    ) -> Result<(), RemoteError> {
        remote(self.node.add_member_local(node_id, node, std::time::Duration::from_millis(catch_up_ms)).await)
    }

    async fn remove_member(self, _: Context, node_id: NodeId) -> Result<(), RemoteError> {
        remote(self.node.remove_member_local(node_id).await)
    }

    async fn read_index(self, _: Context) -> Result<u64, RemoteError> {
        remote(self.node.read_index_local().await)
    }

    async fn ping(self, _: Context, from: NodeId) -> NodeId {
        self.node.inner.transport.mark_seen(from);
        self.node.id()
    }

    async fn elect(self, _: Context, from: NodeId) -> bool {
        tracing::info!(from, "the stopping leader hands over: standing for election");
        self.node.inner.raft.trigger().elect().await.is_ok()
    }
}
