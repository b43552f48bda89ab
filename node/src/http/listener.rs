//! The HTTP listener: accepts connections and serves the router on each, with the bounds a
//! public endpoint needs (`[limits]`):
//!
//! - headers: at most `max_header_bytes` (checked by the router's first layer), all of them within `header_read_timeout_secs` of the
//!   request starting (so a client trickling a byte at a time is cut off; in HTTP/1 this also
//!   ends a keep-alive connection that sends no next request in that time);
//! - idle: a connection with no request in flight and no bytes moving for `idle_timeout_secs` is
//!   closed, and one whose response stopped moving (a client that no longer reads) is dropped;
//! - connections: at most `max_connections` open, and `max_connections_per_source` per address;
//!   over the cap a new connection is closed at once, before any byte is read.
//!
//! A request body (any route's) that sends nothing for `body_idle_timeout_secs` fails, so a
//! stalled client cannot hold a handler, its buffers and its connection; the request carries a
//! [`BodyStall`] flag so that handlers answer 408 rather than a parse error.
//! With TLS, the handshake must finish within `header_read_timeout_secs`; a client's verified
//! certificate rides on each of its requests as a [`ClientCertificate`] extension.
//! A connection that ends after a reply (not one the node closed while idle or at shutdown)
//! closes lingering: the node reads and discards what the client still sends for up to 2 s and
//! 16 MiB, so a body the node answered without reading (a 401, a 413) does not reset the
//! connection under the client's reply.
//! Shutdown stops accepting, asks every connection to finish its request, and waits.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use artstore_cluster_config::Limits;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tower::ServiceExt;

use super::tls::{client_certificate, ApiTls, ClientCertificate};

/// How long shutdown waits for connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(30);

/// Open connections per source address, and all together.
#[derive(Default)]
struct Census {
    per_source: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
}

/// One admitted connection; leaving the census when dropped.
struct Admitted {
    census: Arc<Census>,
    source: IpAddr,
}

impl Census {
    fn admit(self: &Arc<Self>, source: IpAddr, limits: &Limits) -> Option<Admitted> {
        let mut per = self.per_source.lock().ok()?;
        let mine = per.entry(source).or_default();
        if *mine >= limits.max_connections_per_source || self.total.load(Ordering::Relaxed) >= limits.max_connections {
            if *mine == 0 {
                per.remove(&source);
            }
            return None;
        }
        *mine += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Admitted { census: self.clone(), source })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.census.total.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut per) = self.census.per_source.lock() {
            if let Some(n) = per.get_mut(&self.source) {
                *n -= 1;
                if *n == 0 {
                    per.remove(&self.source);
                }
            }
        }
    }
}

/// A connection's activity: when bytes last moved, and how many requests are in flight.
struct Activity {
    started: Instant,
    /// Milliseconds after `started` that bytes last moved.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self { started: Instant::now(), last_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }
    fn quiet_for(&self) -> Duration {
        Duration::from_millis(self.now_ms().saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// The connection (a TCP socket, or TLS over one), noting every read and write that moves bytes.
/// When hyper lets go of it, the socket is handed back for a lingering close.
struct Watched<S> {
    inner: Option<S>,
    activity: Arc<Activity>,
    handback: Option<oneshot::Sender<S>>,
}

impl<S: Unpin> Watched<S> {
    fn new(inner: S, activity: Arc<Activity>) -> (Self, oneshot::Receiver<S>) {
        let (handback, handed_back) = oneshot::channel();
        (Self { inner: Some(inner), activity, handback: Some(handback) }, handed_back)
    }

    fn io(&mut self) -> std::io::Result<Pin<&mut S>> {
        self.inner.as_mut().map(Pin::new).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }

    /// Notes that bytes moved when a read or write `moved` some.
    fn note<T>(&self, r: Poll<std::io::Result<T>>, moved: bool) -> Poll<std::io::Result<T>> {
        if moved {
            self.activity.touch();
        }
        r
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        if let (Some(inner), Some(handback)) = (self.inner.take(), self.handback.take()) {
            let _ = handback.send(inner);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = match self.io() {
            Ok(io) => io.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        self.note(r, buf.filled().len() > before)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = match self.io() {
            Ok(io) => io.poll_write(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        let moved = matches!(r, Poll::Ready(Ok(n)) if n > 0);
        self.note(r, moved)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = match self.io() {
            Ok(io) => io.poll_write_vectored(cx, bufs),
            Err(e) => return Poll::Ready(Err(e)),
        };
        let moved = matches!(r, Poll::Ready(Ok(n)) if n > 0);
        self.note(r, moved)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// How long, and for how many bytes, a closing connection goes on reading what its client still
/// sends (see [`linger`]).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 << 20;

/// Closes a connection the way a client can read its last reply: sends the end of the stream
/// (TLS close_notify, then FIN), then reads and discards what the client still sends until it
/// closes too, for at most [`LINGER`] and [`LINGER_BYTES`]. A socket closed with unread bytes
/// (a request body the node answered before reading, say a 401 or 413) is reset, and the reset
/// makes the client fail its send and, in TLS, lose the reply.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(LINGER, async {
        // Hyper has usually shut the stream down already; a second shutdown only flushes.
        let _ = stream.shutdown().await;
        let mut buf = vec![0u8; 16 << 10];
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
}

/// Counts a request in flight until its response future is done.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        a.touch();
        Self(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Set on a request whose body stopped arriving for longer than the body idle timeout.
#[derive(Clone, Default)]
pub struct BodyStall(pub Arc<std::sync::atomic::AtomicBool>);

impl BodyStall {
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `body`, failing (and raising the returned flag) once nothing arrived for `idle`.
fn stall_guarded(body: axum::body::Body, idle: Duration) -> (axum::body::Body, BodyStall) {
    use futures::StreamExt;
    let stall = BodyStall::default();
    let flag = stall.0.clone();
    let guarded = futures::stream::unfold((body.into_data_stream(), false), move |(mut body, done)| {
        let flag = flag.clone();
        async move {
            if done {
                return None;
            }
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(item)) => Some((item, (body, false))),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, Ordering::Relaxed);
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body stalled");
                    Some((Err(axum::Error::new(e)), (body, true)))
                }
            }
        }
    });
    (axum::body::Body::from_stream(guarded), stall)
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` resolves, then drains open
/// connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Arc<Limits>,
    tls: Option<Arc<ApiTls>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let census = Arc::new(Census::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(admitted) = census.admit(peer.ip(), &limits) else {
            metrics::counter!("artstore_http_connections_refused_total").increment(1);
            tracing::debug!(%peer, "connection cap reached; closing the new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let serving =
            Serving { peer, app: app.clone(), limits: limits.clone(), stop: stop_rx.clone(), _admitted: admitted };
        connections.spawn(handshake(stream, tls.clone(), serving));
        // Reap finished connection tasks as we go.
        while connections.try_join_next().is_some() {}
    }
    let open = connections.len();
    tracing::info!(open, "HTTP listener closed; letting open requests finish");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(left = connections.len(), "requests still open after {} s; closing them", DRAIN.as_secs());
        connections.abort_all();
    }
    Ok(())
}

/// What a connection task needs besides its socket.
struct Serving {
    peer: SocketAddr,
    app: Router,
    limits: Arc<Limits>,
    stop: watch::Receiver<bool>,
    _admitted: Admitted,
}

/// Completes the TLS handshake (within the header read timeout, so a client that opens a socket
/// and says nothing holds it no longer than one that sends no request), then serves.
async fn handshake(stream: TcpStream, tls: Option<Arc<ApiTls>>, serving: Serving) {
    let Some(tls) = tls else {
        return connection(stream, None, serving).await;
    };
    let limit = Duration::from_secs(serving.limits.header_read_timeout_secs);
    let failed = |why: &'static str| {
        metrics::counter!("artstore_http_tls_handshake_failures_total", "reason" => why).increment(1);
    };
    match tokio::time::timeout(limit, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => {
            let cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| client_certificate(c));
            connection(stream, cert, serving).await
        }
        Ok(Err(e)) => {
            failed("refused");
            tracing::debug!(peer = %serving.peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            failed("timeout");
            tracing::debug!(peer = %serving.peer, "TLS handshake did not finish in {} s", limit.as_secs());
        }
    }
}

async fn connection<S>(stream: S, cert: Option<ClientCertificate>, serving: Serving)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Serving { peer, app, limits, mut stop, _admitted } = serving;
    let activity = Arc::new(Activity::new());
    let (watched, mut handed_back) = Watched::new(stream, activity.clone());
    let io = TokioIo::new(watched);
    let per_request = activity.clone();
    let body_idle = Duration::from_secs(limits.body_idle_timeout_secs);
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        if let Some(c) = &cert {
            parts.extensions.insert(c.clone());
        }
        let (body, stall) = stall_guarded(axum::body::Body::new(body), body_idle);
        parts.extensions.insert(stall);
        let req = hyper::Request::from_parts(parts, body);
        let guard = InFlight::new(&per_request);
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await;
            drop(guard);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        // The configured limit is enforced by the router, with a JSON 431 naming it; hyper's own
        // refusal (a bare 431, it cannot carry our body) only backs it up for far larger heads.
        .max_header_size(limits.max_header_bytes.saturating_mul(16).max(256 * 1024));
    let mut conn = Box::pin(builder.serve_connection(io, service).with_upgrades());
    let idle = Duration::from_secs(limits.idle_timeout_secs);
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle));
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                }
                break;
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                let quiet = activity.quiet_for();
                let busy = activity.in_flight.load(Ordering::Relaxed) > 0;
                if !busy && quiet >= idle && !closing {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                } else if quiet >= idle * 2 && (closing || !busy) {
                    // Asked to close and still nothing moves (a client that stopped reading).
                    tracing::debug!(%peer, "dropping a connection on which nothing moved for {} s", quiet.as_secs());
                    return;
                }
            }
        }
    }
    // Hyper is done with the socket: dropping the connection hands it back (unless an upgrade
    // took it). When hyper ended the connection itself (a reply sent before the request's body
    // was read, say), it closes lingering; one the node closed while idle, or at shutdown, has
    // nothing in flight to lose and closes at once. It counts against the caps meanwhile.
    drop(conn);
    if let (false, Ok(stream)) = (closing, handed_back.try_recv()) {
        linger(stream).await;
    }
}
