//! The node's QUIC endpoint: serves incoming streams and keeps one connection and one tarpc client
//! per peer, re-dialling after a failure. A peer advertised by DNS name is looked up at each dial.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tarpc::tokio_serde::formats::Bincode;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::rpc::ClusterRpcClient;
use super::tls::TlsMaterial;
use super::{OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION, STREAM_RPC};
use crate::types::NodeId;
use crate::Error;

/// How long after a failed dial new calls to that peer fail at once.
const REDIAL_BACKOFF: Duration = Duration::from_millis(500);
/// A handshake not done in this long is given up (and retried after [`REDIAL_BACKOFF`]): one begun
/// while the peer was down must not keep a restarted peer unreachable for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(1500);

/// UDP socket buffers asked for (each way). The kernel's default (about 208 KiB) overflows when a
/// peer streams chunks at hundreds of MiB/s: on loopback 1.1 % of datagrams were dropped while one
/// node read 256 MiB from another, and every drop halves the congestion window. The kernel caps
/// the request at `net.core.rmem_max` / `wmem_max`; a smaller buffer is logged at start-up.
const UDP_BUFFER: usize = 8 * 1024 * 1024;

/// Largest tarpc frame (a snapshot chunk or a large append batch fits well within it).
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Serves one incoming stream of a given tag (spawns whatever it needs and returns at once).
pub type RpcStreamHandler = Arc<dyn Fn(quinn::SendStream, quinn::RecvStream) + Send + Sync>;

type Handlers = Arc<std::sync::RwLock<HashMap<u8, RpcStreamHandler>>>;

type PeerSlot = Arc<tokio::sync::Mutex<Option<(quinn::Connection, Arc<[ClusterRpcClient]>)>>>;

/// RPC streams per peer connection, used in turn. One lost packet stalls a QUIC stream until it
/// is sent again: with one stream, every call to that peer (log appends, forwarded proposals,
/// pings) would wait behind it on a lossy link.
const RPC_STREAMS: usize = 4;

/// Picks the next of a connection's RPC streams.
fn next_stream(clients: &[ClusterRpcClient]) -> ClusterRpcClient {
    static TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let i = TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % clients.len().max(1);
    clients[i].clone()
}

/// When a peer last answered, and its recent round trip.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Instant,
    rtt: Duration,
}

/// The QUIC endpoint plus per-peer connection state; shared as `Arc<Transport>`.
pub struct Transport {
    endpoint: quinn::Endpoint,
    peers: Mutex<HashMap<NodeId, PeerSlot>>,
    last_seen: Mutex<HashMap<NodeId, Seen>>,
    /// Peers whose last dial failed, and when: a failure streak is logged once, and for
    /// [`REDIAL_BACKOFF`] after a failure callers fail fast instead of queueing behind new
    /// handshakes that would time out too.
    failing: Mutex<HashMap<NodeId, Instant>>,
    /// Who serves each stream tag.
    handlers: Handlers,
    /// Addresses to dial instead of what the membership says (a relay, NAT, or a fault proxy).
    dial_overrides: Mutex<HashMap<NodeId, String>>,
}

fn framed<S: tokio::io::AsyncRead + tokio::io::AsyncWrite>(io: S) -> Framed<S, LengthDelimitedCodec> {
    Framed::new(io, LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME).new_codec())
}

/// The endpoint's UDP socket, bound to `addr`, with [`UDP_BUFFER`] asked for each way.
fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    type Set = fn(&Socket, usize) -> std::io::Result<()>;
    type Get = fn(&Socket) -> std::io::Result<usize>;
    let ways: [(&str, Set, Get); 2] = [
        ("receive", Socket::set_recv_buffer_size, Socket::recv_buffer_size),
        ("send", Socket::set_send_buffer_size, Socket::send_buffer_size),
    ];
    for (way, set, get) in ways {
        // A refusal leaves the default: the node still works, with more drops under load.
        let _ = set(&socket, UDP_BUFFER);
        let got = get(&socket).unwrap_or(0);
        metrics::gauge!("artstore_transport_udp_buffer_bytes", "way" => way).set(got as f64);
        if got < UDP_BUFFER {
            let sysctl = if way == "receive" { "net.core.rmem_max" } else { "net.core.wmem_max" };
            tracing::warn!(
                way,
                bytes = got,
                wanted = UDP_BUFFER,
                "the QUIC socket's {way} buffer is smaller than asked; fast chunk transfers may drop packets: raise \
                 {sysctl} to at least {}",
                UDP_BUFFER / 2
            );
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl Transport {
    /// Binds the UDP socket. Fails (naming `quic.listen`) if the address is in use.
    pub fn bind(addr: SocketAddr, tls: &TlsMaterial) -> Result<Arc<Self>, Error> {
        let bind_err = |e: std::io::Error| Error::Transport(format!("quic.listen: cannot bind {addr}: {e}"));
        let socket = udp_socket(addr).map_err(bind_err)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| Error::Transport("quic.listen: no async runtime to run on".into()))?;
        let mut endpoint =
            quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(tls.server_config()?), socket, runtime)
                .map_err(bind_err)?;
        endpoint.set_default_client_config(tls.client_config()?);
        Ok(Arc::new(Self {
            endpoint,
            peers: Mutex::default(),
            last_seen: Mutex::default(),
            failing: Mutex::default(),
            handlers: Handlers::default(),
            dial_overrides: Mutex::default(),
        }))
    }

    /// Dials `node` at `addr` instead of the address the membership advertises (`quic.dial`).
    pub fn set_dial_override(&self, node: NodeId, addr: String) {
        if let Ok(mut o) = self.dial_overrides.lock() {
            o.insert(node, addr);
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }

    /// Accepts connections and serves every RPC stream with `service`, until the endpoint closes.
    /// Sets who serves incoming streams with `tag` (e.g. [`STREAM_RPC`]).
    pub fn register(&self, tag: u8, handler: RpcStreamHandler) {
        if let Ok(mut h) = self.handlers.write() {
            h.insert(tag, handler);
        }
    }

    /// Accepts connections and hands each stream to the handler registered for its tag.
    pub fn serve(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let endpoint = self.endpoint.clone();
        let handlers = self.handlers.clone();
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let handler = handlers.clone();
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    let conn = match incoming.await {
                        Ok(c) => c,
                        Err(e) => {
                            // In TLS 1.3 this is where a peer without a cluster certificate ends up.
                            tracing::warn!(%remote, error = %e, "refused cluster connection");
                            metrics::counter!("artstore_transport_refused_connections_total").increment(1);
                            return;
                        }
                    };
                    let verified = conn.peer_identity().and_then(|id| {
                        id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok().filter(|c| !c.is_empty())
                    });
                    if verified.is_none() {
                        tracing::warn!(%remote, "refused cluster connection: no client certificate");
                        conn.close(1u32.into(), b"client certificate required");
                        return;
                    }
                    serve_connection(conn, handler).await;
                });
            }
        })
    }

    /// Opens a new stream of kind `tag` to `target` on the shared connection (dialling if needed).
    pub async fn open_stream(
        &self,
        target: NodeId,
        addr: &str,
        tag: u8,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), Error> {
        let conn = self.connection(target, addr).await?;
        let (mut send, recv) = match conn.open_bi().await {
            Ok(s) => s,
            Err(e) => {
                self.invalidate(target);
                return Err(Error::Transport(format!("node {target} at {addr}: {e}")));
            }
        };
        send.write_all(&stream_header(tag))
            .await
            .map_err(|e| Error::Transport(format!("node {target} at {addr}: {e}")))?;
        Ok((send, recv))
    }

    async fn connection(&self, target: NodeId, addr: &str) -> Result<quinn::Connection, Error> {
        self.client(target, addr).await?;
        let slot = self.peers.lock().ok().and_then(|p| p.get(&target).cloned());
        let guard = match &slot {
            Some(s) => s.lock().await,
            None => return Err(Error::Transport(format!("no connection to node {target}"))),
        };
        guard
            .as_ref()
            .map(|(c, _)| c.clone())
            .ok_or_else(|| Error::Transport(format!("no connection to node {target}")))
    }

    /// A tarpc client for `target`, dialling `addr` if there is no live connection yet.
    pub async fn client(&self, target: NodeId, addr: &str) -> Result<ClusterRpcClient, Error> {
        let slot = self
            .peers
            .lock()
            .map_err(|_| Error::Transport("peer table poisoned".into()))?
            .entry(target)
            .or_default()
            .clone();
        let recently_failed = || {
            self.failing
                .lock()
                .ok()
                .and_then(|f| f.get(&target).copied())
                .is_some_and(|at| at.elapsed() < REDIAL_BACKOFF)
        };
        if recently_failed() {
            return Err(Error::Transport(format!("node {target} at {addr} is unreachable (retrying shortly)")));
        }
        let mut guard = slot.lock().await;
        if let Some((conn, clients)) = guard.as_ref() {
            if conn.close_reason().is_none() {
                return Ok(next_stream(clients));
            }
        }
        // Someone else's dial failed while we waited for the slot.
        if recently_failed() {
            return Err(Error::Transport(format!("node {target} at {addr} is unreachable (retrying shortly)")));
        }
        let result = self.dial(target, addr).await;
        let newly_failing = match &result {
            Ok(_) => {
                if self.failing.lock().is_ok_and(|mut f| f.remove(&target).is_some()) {
                    tracing::info!(target, %addr, "connected to peer again");
                }
                false
            }
            Err(_) => self.failing.lock().is_ok_and(|mut f| f.insert(target, Instant::now()).is_none()),
        };
        if let Err(e) = &result {
            if newly_failing {
                // Includes the refusal of a peer whose certificate is not from our cluster CA.
                tracing::warn!(target, %addr, error = %e, "cannot connect to peer");
            }
        }
        let (conn, clients) = result?;
        let client = next_stream(&clients);
        *guard = Some((conn, clients));
        Ok(client)
    }

    async fn dial(&self, target: NodeId, addr: &str) -> Result<(quinn::Connection, Arc<[ClusterRpcClient]>), Error> {
        let overridden = self.dial_overrides.lock().ok().and_then(|o| o.get(&target).cloned());
        let addr = overridden.as_deref().unwrap_or(addr);
        let sock = self.resolve(target, addr).await?;
        let server_name = artstore_cluster_config::node_server_name(target);
        let connecting = self
            .endpoint
            .connect(sock, &server_name)
            .map_err(|e| Error::Transport(format!("cannot dial node {target} at {addr}: {e}")))?;
        let setup = async {
            let conn = connecting.await.map_err(|e| Error::Transport(format!("node {target} at {addr}: {e}")))?;
            let clients = Self::rpc_clients(&conn, target, addr).await?;
            Ok::<_, Error>((conn, clients))
        };
        // The handshake and the streams' setup together: a peer that stalls after the handshake
        // must not keep callers waiting on this peer's slot.
        tokio::time::timeout(HANDSHAKE_TIMEOUT, setup)
            .await
            .map_err(|_| Error::Transport(format!("node {target} at {addr}: handshake timed out")))?
    }

    /// The socket address of `addr`: `IP:port` as it is, `dns-name:port` looked up on every dial
    /// (a restarted pod or container comes back under its name with a new address), preferring
    /// the address family the endpoint is bound to.
    async fn resolve(&self, target: NodeId, addr: &str) -> Result<SocketAddr, Error> {
        if let Ok(sock) = addr.parse::<SocketAddr>() {
            return Ok(sock);
        }
        let unresolved = |why: String| Error::Transport(format!("cannot resolve {addr:?} of node {target}: {why}"));
        let found: Vec<SocketAddr> = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio::net::lookup_host(addr))
            .await
            .map_err(|_| unresolved("the lookup timed out".into()))?
            .map_err(|e| unresolved(e.to_string()))?
            .collect();
        let local_v4 = self.endpoint.local_addr().map(|a| a.is_ipv4()).unwrap_or(true);
        found
            .iter()
            .find(|a| a.is_ipv4() == local_v4)
            .or(found.first())
            .copied()
            .ok_or_else(|| unresolved("no address".into()))
    }

    /// Opens [`RPC_STREAMS`] tarpc streams on `conn`.
    async fn rpc_clients(
        conn: &quinn::Connection,
        target: NodeId,
        addr: &str,
    ) -> Result<Arc<[ClusterRpcClient]>, Error> {
        let mut clients = Vec::with_capacity(RPC_STREAMS);
        for _ in 0..RPC_STREAMS {
            let (mut send, recv) =
                conn.open_bi().await.map_err(|e| Error::Transport(format!("node {target} at {addr}: {e}")))?;
            // The header also makes the (lazily opened) stream visible to the peer.
            send.write_all(&stream_header(STREAM_RPC))
                .await
                .map_err(|e| Error::Transport(format!("node {target} at {addr}: {e}")))?;
            let transport = rpc_transport(send, recv);
            clients.push(ClusterRpcClient::new(tarpc::client::Config::default(), transport).spawn());
        }
        Ok(clients.into())
    }

    /// Forgets the connection to `target` after a failed call, so the next call re-dials. When the
    /// connection was closed by the peer (e.g. it refused our certificate) the reason is logged.
    pub fn invalidate(&self, target: NodeId) {
        let slot = self.peers.lock().ok().and_then(|p| p.get(&target).cloned());
        if let Some(slot) = slot {
            if let Ok(mut guard) = slot.try_lock() {
                if let Some((conn, _)) = guard.take() {
                    match conn.close_reason() {
                        Some(quinn::ConnectionError::ApplicationClosed(c))
                            if c.error_code == VERSION_REFUSED.into() =>
                        {
                            tracing::warn!(
                                target,
                                ours = PROTOCOL_VERSION,
                                reason = %String::from_utf8_lossy(&c.reason),
                                "the peer refused this node's cluster protocol version"
                            );
                        }
                        Some(reason) => tracing::debug!(target, %reason, "connection to peer closed"),
                        None => {}
                    }
                }
            }
        }
    }

    /// Notes that `node` answered just now.
    pub fn mark_seen(&self, node: NodeId) {
        if let Ok(mut m) = self.last_seen.lock() {
            m.entry(node).or_insert(Seen { at: Instant::now(), rtt: Duration::ZERO }).at = Instant::now();
        }
    }

    /// Records an answer to a liveness ping that took `rtt` (kept as a moving average).
    pub fn mark_answered(&self, node: NodeId, rtt: Duration) {
        if let Ok(mut m) = self.last_seen.lock() {
            let seen = m.entry(node).or_insert(Seen { at: Instant::now(), rtt });
            seen.at = Instant::now();
            seen.rtt = (seen.rtt * 3 + rtt) / 4;
        }
    }

    /// Whether `node` answered within `within`, stretched by twice its recent round trip (so a
    /// peer behind a slow or lossy link is not taken for dead while its answers are on the way).
    pub fn seen_within(&self, node: NodeId, within: Duration) -> bool {
        self.last_seen
            .lock()
            .ok()
            .and_then(|m| m.get(&node).map(|s| s.at.elapsed() <= within + s.rtt * 2))
            .unwrap_or(false)
    }

    /// Closes every connection and stops accepting.
    pub async fn close(&self) {
        self.endpoint.close(0u32.into(), b"node shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

async fn serve_connection(conn: quinn::Connection, handlers: Handlers) {
    loop {
        let (send, mut recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let handlers = handlers.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            if recv.read_exact(&mut first).await.is_err() {
                return;
            }
            let version = if first[0] & VERSIONED == 0 {
                None
            } else {
                let mut v = [0u8; 2];
                if recv.read_exact(&mut v).await.is_err() {
                    return;
                }
                Some(u16::from_be_bytes(v))
            };
            if let Err(reason) = check_version(version) {
                tracing::warn!(
                    remote = %conn.remote_address(),
                    theirs = version.unwrap_or(0),
                    ours = PROTOCOL_VERSION,
                    "refused a peer of another cluster protocol version: {reason}"
                );
                metrics::counter!("artstore_transport_refused_connections_total").increment(1);
                conn.close(VERSION_REFUSED.into(), reason.as_bytes());
                return;
            }
            let tag = first[0] & !VERSIONED;
            let handler = handlers.read().ok().and_then(|h| h.get(&tag).cloned());
            match handler {
                Some(h) => h(send, recv),
                None => tracing::warn!(tag, "no handler for this cluster stream type (yet)"),
            }
        });
    }
}

/// Set in a stream's tag byte when a protocol version follows it (streams of releases before
/// versions had bare tags).
const VERSIONED: u8 = 0x80;

/// The application close code of a connection refused for its protocol version.
const VERSION_REFUSED: u32 = 0x5652;

/// A stream's first bytes: its tag (marked versioned) and this node's protocol version.
fn stream_header(tag: u8) -> [u8; 3] {
    let [hi, lo] = PROTOCOL_VERSION.to_be_bytes();
    [tag | VERSIONED, hi, lo]
}

/// Whether a stream of `version` (`None`: from before streams carried one) can be served; if
/// not, the reason, naming both versions.
fn check_version(version: Option<u16>) -> Result<(), String> {
    match version {
        Some(v) if (OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v) => Ok(()),
        Some(v) => Err(format!(
            "the peer speaks cluster protocol v{v}; this node speaks v{OLDEST_PROTOCOL_VERSION} to v{PROTOCOL_VERSION}: \
             upgrade the older nodes one at a time"
        )),
        None => Err(format!(
            "the peer runs a release from before cluster protocol versions; this node speaks \
             v{OLDEST_PROTOCOL_VERSION} to v{PROTOCOL_VERSION}: upgrade it"
        )),
    }
}

/// Builds the tarpc transport (length-delimited bincode frames) over one QUIC stream.
pub fn rpc_transport<Item, SinkItem>(
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) -> tarpc::serde_transport::Transport<
    tokio::io::Join<quinn::RecvStream, quinn::SendStream>,
    Item,
    SinkItem,
    Bincode<Item, SinkItem>,
>
where
    Item: for<'de> serde::Deserialize<'de>,
    SinkItem: serde::Serialize,
{
    tarpc::serde_transport::new(framed(tokio::io::join(recv, send)), Bincode::default())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use artstore_cluster_config::{ClusterCa, TlsConfig};

    use super::*;

    /// The kernel grants a socket buffer up to its `*_mem_max` sysctl, doubled for bookkeeping.
    fn kernel_cap(sysctl: &str) -> Option<usize> {
        std::fs::read_to_string(format!("/proc/sys/net/core/{sysctl}"))
            .ok()?
            .trim()
            .parse::<usize>()
            .ok()
            .map(|m| m * 2)
    }

    #[test]
    fn the_quic_socket_asks_for_large_buffers() {
        let socket = udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let socket = socket2::Socket::from(socket);
        for (got, sysctl) in
            [(socket.recv_buffer_size().unwrap(), "rmem_max"), (socket.send_buffer_size().unwrap(), "wmem_max")]
        {
            let Some(cap) = kernel_cap(sysctl) else {
                eprintln!("skipped: /proc/sys/net/core/{sysctl} is not readable here");
                return;
            };
            assert!(got >= UDP_BUFFER.min(cap), "{sysctl}: got {got} bytes, the kernel allows {cap}");
            assert!(got > 2 * 212_992 || cap <= 2 * 212_992, "{sysctl}: still the default size ({got})");
        }
    }

    fn identity(dir: &Path, ca: &ClusterCa, node_id: u64) -> TlsMaterial {
        let cert = ca.issue_node(node_id, &["127.0.0.1".into()]).unwrap();
        let d = dir.join(format!("n{node_id}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ca.pem"), &ca.cert_pem).unwrap();
        std::fs::write(d.join("node.pem"), &cert.cert_pem).unwrap();
        std::fs::write(d.join("node.key"), &cert.key_pem).unwrap();
        TlsMaterial::load(&TlsConfig { ca_cert: d.join("ca.pem"), cert: d.join("node.pem"), key: d.join("node.key") })
            .unwrap()
    }

    /// Opens a stream to `server` that starts with `header`, as a peer of another release would,
    /// and returns why the connection was closed (or `None` if the stream was served).
    async fn open_with(tls: &TlsMaterial, server: SocketAddr, header: &[u8]) -> Option<String> {
        let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        client.set_default_client_config(tls.client_config().unwrap());
        let conn = client.connect(server, &artstore_cluster_config::node_server_name(1)).unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(header).await.unwrap();
        let mut answer = [0u8; 2];
        let read = tokio::time::timeout(Duration::from_secs(5), recv.read_exact(&mut answer)).await.unwrap();
        match (read, conn.close_reason()) {
            (Ok(()), _) => None,
            (Err(_), Some(quinn::ConnectionError::ApplicationClosed(c))) => {
                assert_eq!(c.error_code, VERSION_REFUSED.into());
                Some(String::from_utf8_lossy(&c.reason).into_owned())
            }
            (Err(e), other) => panic!("the stream failed without a version refusal: {e} ({other:?})"),
        }
    }

    #[tokio::test]
    async fn peers_of_another_protocol_version_are_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::generate("versions").unwrap();
        let server = Transport::bind("127.0.0.1:0".parse().unwrap(), &identity(dir.path(), &ca, 1)).unwrap();
        // A stream of the current version is served: this handler answers two bytes.
        server.register(
            STREAM_RPC,
            Arc::new(|mut send: quinn::SendStream, _recv| {
                tokio::spawn(async move {
                    let _ = send.write_all(b"ok").await;
                    let _ = send.finish();
                    let _ = send.stopped().await;
                });
            }),
        );
        server.serve();
        let addr = server.local_addr().unwrap();
        let peer = identity(dir.path(), &ca, 2);

        assert_eq!(open_with(&peer, addr, &stream_header(STREAM_RPC)).await, None);
        let old = open_with(&peer, addr, &[STREAM_RPC]).await.expect("an unversioned stream is refused");
        assert!(old.contains("before cluster protocol versions") && old.contains("v1"), "{old}");
        let newer = PROTOCOL_VERSION + 7;
        let [hi, lo] = newer.to_be_bytes();
        let refused =
            open_with(&peer, addr, &[STREAM_RPC | VERSIONED, hi, lo]).await.expect("a newer version is refused");
        assert!(
            refused.contains(&format!("v{newer}")) && refused.contains(&format!("v{PROTOCOL_VERSION}")),
            "{refused}"
        );
        server.close().await;
    }
}
