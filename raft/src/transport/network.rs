//! openraft's network over the cluster transport: each Raft RPC is one tarpc call on the peer's
//! shared connection, with the deadline openraft asks for.
//!
//! An AppendEntries call carries at most [`APPEND_BUDGET`] bytes of entries (a single larger entry
//! still goes alone): openraft bounds a call by its number of entries only, and a follower that is
//! behind by a few hundred large entries (bulk catalog writes) would otherwise be sent one message
//! of hundreds of MiB, which cannot arrive within the call's deadline (one heartbeat interval) nor
//! fit a transport frame, and is then re-sent for ever while the leader's memory grows.

use std::sync::Arc;
use std::time::Instant;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
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

/// Bytes of log entries one AppendEntries call carries at most (see [`crate::types::REPLICATION_BUDGET`]).
pub const APPEND_BUDGET: u64 = crate::types::REPLICATION_BUDGET;

/// When `entries` (more than one) are over `budget` bytes as the transport encodes them: how many
/// of the first ones fit (at least one), for openraft to send that many instead.
pub fn entries_within<T: serde::Serialize>(entries: &[T], budget: u64) -> Option<u64> {
    if entries.len() < 2 {
        return None;
    }
    let mut total = 0u64;
    for (i, e) in entries.iter().enumerate() {
        total = total.saturating_add(bincode::serialized_size(e).unwrap_or(u64::MAX));
        if total > budget {
            return Some((i as u64).max(1));
        }
    }
    None
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
        if let Some(fit) = entries_within(&req.entries, APPEND_BUDGET) {
            metrics::counter!("artstore_raft_append_entries_split_total").increment(1);
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(fit)));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_over_the_budget_is_cut_to_the_entries_that_fit() {
        let entry = vec![7u8; 1000]; // 1008 bytes encoded (a length, then the bytes)
        assert_eq!(entries_within(&vec![entry.clone(); 10], 100_000), None, "within the budget");
        assert_eq!(entries_within(&vec![entry.clone(); 10], 5_000), Some(4));
        assert_eq!(entries_within(&vec![entry.clone(); 10], 1_008 * 3), Some(3), "exactly three fit");
        // A first entry larger than the budget goes alone; a lone one is never refused.
        assert_eq!(entries_within(&vec![entry.clone(); 10], 10), Some(1));
        assert_eq!(entries_within(&[entry], 10), None);
        assert_eq!(entries_within::<u8>(&[], 10), None);
    }
}
