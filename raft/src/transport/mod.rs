//! The cluster transport: one QUIC endpoint per node with mutual TLS under the cluster CA.
//!
//! Every stream starts with a header of three bytes: a tag naming what it carries ([`STREAM_RPC`]
//! for a tarpc channel; chunk streams get their own tag) with its high bit set, and the cluster
//! protocol version ([`PROTOCOL_VERSION`], big-endian `u16`) of the node that opened it. A node
//! serves only streams of a version it speaks: any other version, or a stream from a release
//! before streams carried one, is refused, the connection closed with a reason naming both
//! versions (which the dialling node logs), and the refusal logged on both sides. During a
//! rolling upgrade, a release that changes the protocol speaks the old version too until every
//! node runs it. Peers are dialled by the server name in their
//! certificate (`node<ID>.artstore.internal`), so a certificate for one node cannot impersonate
//! another, and a peer without a certificate from the cluster CA is refused in both directions.

mod endpoint;
mod network;
mod rpc;
mod tls;

pub use endpoint::{rpc_transport, RpcStreamHandler, Transport};
pub use network::NetworkFactory;
pub use rpc::{ClusterRpc, ClusterRpcClient, RemoteError};
pub use tls::TlsMaterial;

/// The cluster protocol this node speaks: the tarpc service, the Raft entries and snapshots it
/// carries, and the storage protocol. Raised whenever one of them changes incompatibly.
pub const PROTOCOL_VERSION: u16 = 1;
/// The oldest cluster protocol version this node still serves.
pub const OLDEST_PROTOCOL_VERSION: u16 = 1;

/// Tag byte of a stream that carries a tarpc [`ClusterRpc`] channel.
pub const STREAM_RPC: u8 = 1;
/// Tag byte of a stream of the storage protocol (chunk bodies, sidecars).
pub const STREAM_STORAGE: u8 = 2;

/// Records the outcome and latency of one outgoing RPC.
pub(crate) fn observe_rpc(rpc: &'static str, started: std::time::Instant, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!("artstore_rpc_requests_total", "rpc" => rpc, "outcome" => outcome).increment(1);
    metrics::histogram!("artstore_rpc_duration_seconds", "rpc" => rpc).record(started.elapsed().as_secs_f64());
}

/// Whether an RPC failure means the connection under it is gone (so it should be dropped and
/// dialled again), as opposed to a call that ran out of time or a refusal by the peer.
pub(crate) fn connection_broken(e: &tarpc::client::RpcError) -> bool {
    use tarpc::client::RpcError as E;
    matches!(e, E::Shutdown | E::Send(_) | E::Channel(_))
}
