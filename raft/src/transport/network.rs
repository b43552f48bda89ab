//! openraft's network over the cluster transport: each Raft RPC is one tarpc call on the peer's
//! shared connection, with the deadline openraft asks for.

use std::sync::Arc;
use std::time::Instant;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use super::{observe_rpc, Transport};
use crate::types::{ClusterNode, NodeId, TypeConfig};

/// Creates a [`PeerLink`] per target for openraft.
#[derive(Clone)]
pub struct NetworkFactory {
    transport: Arc<Transport>,
}

impl NetworkFactory {
    pub fn new(transport: Arc<Transport>) -> Self {
        Self { transport }
    }
}

/// openraft's handle on one peer.
pub struct PeerLink {
    transport: Arc<Transport>,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerLink;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> PeerLink {
        PeerLink { transport: self.transport.clone(), target, addr: node.quic_addr.clone() }
    }
}

fn context(option: &RPCOption) -> tarpc::context::Context {
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + option.hard_ttl();
    ctx
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, ClusterNode, RaftError<NodeId, E>>>;

impl PeerLink {
    /// Runs one call: connect (or reuse), call, map errors the way openraft expects.
    async fn call<T, E, F, Fut>(&mut self, rpc: &'static str, f: F) -> RpcResult<T, E>
    where
        E: std::error::Error,
        F: FnOnce(super::ClusterRpcClient) -> Fut,
        Fut: std::future::Future<Output = Result<Result<T, RaftError<NodeId, E>>, tarpc::client::RpcError>>,
    {
        let started = Instant::now();
        let client = match self.transport.client(self.target, &self.addr).await {
            Ok(c) => c,
            Err(e) => {
                observe_rpc(rpc, started, false);
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        };
        let result = f(client).await;
        observe_rpc(rpc, started, matches!(result, Ok(Ok(_))));
        match result {
            Ok(Ok(r)) => {
                self.transport.mark_seen(self.target);
                Ok(r)
            }
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Err(e) => {
                // A call that only ran out of time says nothing about the connection: on a slow
                // link, dropping it would make every next call pay for a new handshake.
                if super::connection_broken(&e) {
                    self.transport.invalidate(self.target);
                }
                Err(RPCError::Network(NetworkError::new(&e)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerLink {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        let ctx = context(&option);
        self.call("append_entries", |c| async move { c.append_entries(ctx, req).await }).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let ctx = context(&option);
        self.call("install_snapshot", |c| async move { c.install_snapshot(ctx, req).await }).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        let ctx = context(&option);
        self.call("vote", |c| async move { c.vote(ctx, req).await }).await
    }
}
