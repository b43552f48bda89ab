//! A UDP fault proxy for one ordered pair of nodes.
//!
//! Node `a` dials node `b` through the proxy's address (`quic.dial` in `a`'s config); the proxy
//! forwards `a`'s datagrams to `b` and `b`'s answers back to `a`, applying the faults set for each
//! direction: drop everything (a partition, possibly one-way), drop a fraction, delay with jitter,
//! duplicate, reorder. QUIC stays authenticated end to end; the proxy only sees ciphertext.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;

/// What happens to datagrams going one way over a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LinkFaults {
    /// Drop everything.
    pub drop: bool,
    /// Fraction of datagrams dropped (0–1).
    pub loss: f64,
    /// Added delay, and up to this much random jitter either way (datagrams stay in order).
    pub delay_ms: u64,
    pub jitter_ms: u64,
    /// Fraction sent twice.
    pub duplicate: f64,
    /// Fraction held back 5–30 ms extra, so later datagrams overtake them.
    pub reorder: f64,
}

impl LinkFaults {
    pub fn partitioned() -> Self {
        Self { drop: true, ..Self::default() }
    }

    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Default)]
struct State {
    /// Datagrams from the dialling node towards the dialled one, and back.
    forward: LinkFaults,
    reverse: LinkFaults,
    /// The dialling node's address (where answers go).
    client: Option<SocketAddr>,
}

/// One running proxy; stops when dropped.
pub struct Proxy {
    pub listen: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `None`: drop. Otherwise how many copies to send, after what delay, and whether this one is
/// deliberately reordered.
fn fate(f: &LinkFaults) -> Option<(usize, Duration, bool)> {
    let mut rng = rand::rng();
    if f.drop || (f.loss > 0.0 && rng.random_bool(f.loss.min(1.0))) {
        return None;
    }
    let mut delay = f.delay_ms as i64;
    if f.jitter_ms > 0 {
        delay += rng.random_range(-(f.jitter_ms as i64)..=f.jitter_ms as i64);
    }
    let reordered = f.reorder > 0.0 && rng.random_bool(f.reorder.min(1.0));
    if reordered {
        delay += rng.random_range(5..=30);
    }
    let copies = if f.duplicate > 0.0 && rng.random_bool(f.duplicate.min(1.0)) { 2 } else { 1 };
    Some((copies, Duration::from_millis(delay.max(0) as u64), reordered))
}

/// A link keeps its datagrams in order, as a real one does: jitter varies how long the queue
/// takes, it does not let a later datagram overtake an earlier one. Only the ones `reorder`
/// picked are let out of line.
struct InOrder {
    last: tokio::time::Instant,
}

impl InOrder {
    fn new() -> Self {
        Self { last: tokio::time::Instant::now() }
    }

    fn delay(&mut self, delay: Duration, reordered: bool) -> Duration {
        let now = tokio::time::Instant::now();
        if reordered || delay.is_zero() {
            return delay;
        }
        let at = (now + delay).max(self.last);
        self.last = at;
        at - now
    }
}

async fn send(socket: &Arc<UdpSocket>, data: Vec<u8>, to: SocketAddr, copies: usize, delay: Duration) {
    if delay.is_zero() {
        for _ in 0..copies {
            let _ = socket.send_to(&data, to).await;
        }
        return;
    }
    let socket = socket.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        for _ in 0..copies {
            let _ = socket.send_to(&data, to).await;
        }
    });
}

impl Proxy {
    /// Listens on `host` (any free port) and forwards to `upstream`.
    pub async fn start(host: &str, upstream: SocketAddr) -> std::io::Result<Self> {
        let front = Arc::new(UdpSocket::bind(format!("{host}:0")).await?);
        let back = Arc::new(UdpSocket::bind(format!("{host}:0")).await?);
        let listen = front.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut a = vec![0u8; 65536];
            let mut b = vec![0u8; 65536];
            let (mut forward_order, mut reverse_order) = (InOrder::new(), InOrder::new());
            loop {
                tokio::select! {
                    r = front.recv_from(&mut a) => {
                        let Ok((n, from)) = r else { continue };
                        let faults = {
                            let mut s = st.lock().unwrap_or_else(|p| p.into_inner());
                            s.client = Some(from);
                            s.forward
                        };
                        if let Some((copies, delay, reordered)) = fate(&faults) {
                            let delay = forward_order.delay(delay, reordered);
                            send(&back, a[..n].to_vec(), upstream, copies, delay).await;
                        }
                    }
                    r = back.recv_from(&mut b) => {
                        let Ok((n, _)) = r else { continue };
                        let (faults, client) = {
                            let s = st.lock().unwrap_or_else(|p| p.into_inner());
                            (s.reverse, s.client)
                        };
                        if let (Some(client), Some((copies, delay, reordered))) = (client, fate(&faults)) {
                            let delay = reverse_order.delay(delay, reordered);
                            send(&front, b[..n].to_vec(), client, copies, delay).await;
                        }
                    }
                }
            }
        });
        Ok(Self { listen, state, task })
    }

    /// Faults for datagrams from the dialling node (`forward`) and towards it (`reverse`).
    pub fn set(&self, forward: LinkFaults, reverse: LinkFaults) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.forward = forward;
        s.reverse = reverse;
    }

    fn set_direction(&self, forward: Option<LinkFaults>, reverse: Option<LinkFaults>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = forward {
            s.forward = f;
        }
        if let Some(r) = reverse {
            s.reverse = r;
        }
    }
}

/// Proxies for every ordered pair of a set of node ids, and faults by link.
pub struct Network {
    proxies: std::collections::BTreeMap<(u64, u64), Proxy>,
}

impl Network {
    /// One proxy per ordered pair of `nodes` (id → its QUIC address), listening on `host`.
    pub async fn start(host: &str, nodes: &[(u64, String)]) -> std::io::Result<Self> {
        let mut proxies = std::collections::BTreeMap::new();
        for (a, _) in nodes {
            for (b, addr) in nodes {
                if a != b {
                    let upstream: SocketAddr =
                        addr.parse().map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
                    proxies.insert((*a, *b), Proxy::start(host, upstream).await?);
                }
            }
        }
        Ok(Self { proxies })
    }

    /// The `quic.dial` table for node `from`: every peer through its proxy.
    pub fn dial_table(&self, from: u64) -> toml::Table {
        self.proxies
            .iter()
            .filter(|((a, _), _)| *a == from)
            .map(|((_, b), p)| (b.to_string(), toml::Value::String(p.listen.to_string())))
            .collect()
    }

    /// Faults for everything node `from` sends to node `to` (both QUIC connections between them).
    pub fn set_link(&self, from: u64, to: u64, faults: LinkFaults) {
        if let Some(p) = self.proxies.get(&(from, to)) {
            p.set_direction(Some(faults), None);
        }
        if let Some(p) = self.proxies.get(&(to, from)) {
            p.set_direction(None, Some(faults));
        }
    }

    /// Cuts every link between different groups, both ways.
    pub fn partition(&self, groups: &[Vec<u64>]) {
        let group_of = |n: u64| groups.iter().position(|g| g.contains(&n));
        for (a, b) in self.proxies.keys() {
            if group_of(*a) != group_of(*b) {
                self.set_link(*a, *b, LinkFaults::partitioned());
            }
        }
    }

    /// The same faults on every link.
    pub fn all_links(&self, faults: LinkFaults) {
        for p in self.proxies.values() {
            p.set(faults, faults);
        }
    }

    pub fn heal(&self) {
        self.all_links(LinkFaults::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forwards_both_ways_and_drops_one_way_on_request() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy::start("127.0.0.1", server.local_addr().unwrap()).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0u8; 16];

        client.send_to(b"ping", proxy.listen).await.unwrap();
        let (n, via) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        server.send_to(b"pong", via).await.unwrap();
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"pong");

        // One-way: answers are dropped, requests still arrive.
        proxy.set(LinkFaults::default(), LinkFaults::partitioned());
        client.send_to(b"ping", proxy.listen).await.unwrap();
        let (_, via) = server.recv_from(&mut buf).await.unwrap();
        server.send_to(b"pong", via).await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), client.recv_from(&mut buf)).await;
        assert!(got.is_err(), "the answer was dropped");

        // Delay: arrives, but not before it is due.
        proxy.set(LinkFaults { delay_ms: 100, ..Default::default() }, LinkFaults::default());
        let t = std::time::Instant::now();
        client.send_to(b"late", proxy.listen).await.unwrap();
        let (n, _) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"late");
        assert!(t.elapsed() >= Duration::from_millis(95));
    }
}
