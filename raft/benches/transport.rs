//! The cluster transport's ceiling for chunk reads: one node asks another for 4 MiB chunk bodies
//! over the real QUIC endpoint (mutual TLS, the node's transport settings), a few requests in
//! flight, the way a download through a node without a replica does. Both endpoints run in this
//! process on one runtime, so the figures include both sides' CPU, as on a one-machine cluster.
//!
//! Cases: the body read whole and then hashed (SHA-256) off the reactor, as the reader verifies
//! it; hashed piece by piece as it arrives; and not hashed at all (the transport alone).
//! For comparison, the same requests over TLS 1.3 on TCP (rustls, one connection per request in
//! flight, hashed after receipt): what a bulk path beside QUIC would give on this machine.
//! Reported: MiB/s and the process's CPU time per MiB.
//!
//! `cargo bench -p artstore-raft --bench transport`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use artstore_cluster_config::{ClusterCa, TlsConfig};
use artstore_raft::transport::{TlsMaterial, Transport, STREAM_STORAGE};
use bytes::Bytes;
use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_time;

const CHUNK: usize = 4 << 20;
const CHUNKS: usize = 96;

fn identity(dir: &std::path::Path, ca: &ClusterCa, node_id: u64) -> TlsMaterial {
    let cert = ca.issue_node(node_id, &["127.0.0.1".into()]).expect("a node certificate");
    let d = dir.join(format!("n{node_id}"));
    std::fs::create_dir_all(&d).expect("a folder for the node's identity");
    std::fs::write(d.join("ca.pem"), &ca.cert_pem).expect("ca.pem written");
    std::fs::write(d.join("node.pem"), &cert.cert_pem).expect("node.pem written");
    std::fs::write(d.join("node.key"), &cert.key_pem).expect("node.key written");
    TlsMaterial::load(&TlsConfig { ca_cert: d.join("ca.pem"), cert: d.join("node.pem"), key: d.join("node.key") })
        .expect("the identity loads")
}

#[derive(Clone, Copy)]
enum Verify {
    /// Read the whole body, then hash it on the blocking pool.
    AfterReceipt,
    /// Hash each piece as it arrives.
    OnArrival,
    /// Do not hash.
    Not,
}

async fn fetch(client: &Transport, server: SocketAddr, verify: Verify) -> usize {
    let (mut send, mut recv) =
        client.open_stream(1, &server.to_string(), STREAM_STORAGE).await.expect("a stream to the server");
    send.write_all(&(CHUNK as u64).to_be_bytes()).await.expect("the request is sent");
    send.finish().expect("the request stream is finished");
    match verify {
        Verify::AfterReceipt => {
            let mut buf = vec![0; CHUNK];
            recv.read_exact(&mut buf).await.expect("the body arrives");
            let digest = tokio::task::spawn_blocking(move || Sha256::digest(&buf)).await.expect("hashed");
            digest[0] as usize + CHUNK
        }
        Verify::OnArrival | Verify::Not => {
            let (mut hasher, mut got) = (Sha256::new(), Vec::with_capacity(CHUNK));
            while let Some(piece) = recv.read_chunk(CHUNK, true).await.expect("the body arrives") {
                if matches!(verify, Verify::OnArrival) {
                    hasher.update(&piece.bytes);
                }
                got.extend_from_slice(&piece.bytes);
            }
            hasher.finalize()[0] as usize + got.len()
        }
    }
}

/// A TLS-over-TCP server answering each request (the body's size, 8 bytes) with that many bytes.
async fn tcp_server(dir: &std::path::Path, body: Bytes) -> SocketAddr {
    let chain = CertificateDer::pem_file_iter(dir.join("n1/node.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("n1/node.key")).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut size = [0u8; 8];
                while tls.read_exact(&mut size).await.is_ok() {
                    let size = (u64::from_be_bytes(size) as usize).min(body.len());
                    if tls.write_all(&body[..size]).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Fetches `count` chunks one after another on one TLS-over-TCP connection, each hashed after
/// receipt.
async fn tcp_fetch(dir: &std::path::Path, server: SocketAddr, count: usize) -> usize {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(dir.join("n1/ca.pem")).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server).await.unwrap();
    let name = ServerName::try_from(artstore_cluster_config::node_server_name(1)).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let mut total = 0;
    for _ in 0..count {
        tls.write_all(&(CHUNK as u64).to_be_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        let mut buf = vec![0; CHUNK];
        tls.read_exact(&mut buf).await.unwrap();
        let digest = tokio::task::spawn_blocking(move || Sha256::digest(&buf)).await.expect("hashed");
        total += digest[0] as usize + CHUNK;
    }
    total
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let ca = ClusterCa::generate("transport-bench").expect("a cluster CA");
        let server = Transport::bind("127.0.0.1:0".parse().unwrap(), &identity(dir.path(), &ca, 1)).expect("bound");
        let body = Bytes::from(vec![7u8; CHUNK]);
        server.register(
            STREAM_STORAGE,
            Arc::new(move |mut send: quinn::SendStream, mut recv: quinn::RecvStream| {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut size = [0u8; 8];
                    if recv.read_exact(&mut size).await.is_err() {
                        return;
                    }
                    let size = (u64::from_be_bytes(size) as usize).min(body.len());
                    let _ = send.write_chunk(body.slice(..size)).await;
                    let _ = send.finish();
                    let _ = send.stopped().await;
                });
            }),
        );
        server.serve();
        let addr = server.local_addr().expect("a local address");
        let client = Transport::bind("127.0.0.1:0".parse().unwrap(), &identity(dir.path(), &ca, 2)).expect("bound");
        client.serve();
        // Warm up the connection and its congestion window.
        for _ in 0..8 {
            fetch(&client, addr, Verify::Not).await;
        }
        println!("{:<28} {:>9} {:>10} {:>14}", "case", "in flight", "MiB/s", "CPU ms/MiB");
        for (name, verify) in [
            ("hash after receipt", Verify::AfterReceipt),
            ("hash on arrival", Verify::OnArrival),
            ("no hash", Verify::Not),
        ] {
            for in_flight in [1, 3, 6] {
                let (cpu0, t0) = (cpu_time(), Instant::now());
                let total: usize = futures::stream::iter(0..CHUNKS)
                    .map(|_| fetch(&client, addr, verify))
                    .buffer_unordered(in_flight)
                    .fold(0, |a, b| async move { a + b })
                    .await;
                let (wall, cpu) = (t0.elapsed(), cpu_time().saturating_sub(cpu0));
                let mib = total as f64 / f64::from(1 << 20);
                println!(
                    "{name:<28} {in_flight:>9} {:>10.0} {:>14.2}",
                    mib / wall.as_secs_f64(),
                    cpu.as_secs_f64() * 1e3 / mib
                );
            }
        }
        let tcp = tcp_server(dir.path(), Bytes::from(vec![7u8; CHUNK])).await;
        for in_flight in [1, 3, 6] {
            let (cpu0, t0) = (cpu_time(), Instant::now());
            let total: usize =
                futures::future::join_all((0..in_flight).map(|_| tcp_fetch(dir.path(), tcp, CHUNKS / in_flight)))
                    .await
                    .into_iter()
                    .sum();
            let (wall, cpu) = (t0.elapsed(), cpu_time().saturating_sub(cpu0));
            let mib = total as f64 / f64::from(1 << 20);
            println!(
                "{:<28} {in_flight:>9} {:>10.0} {:>14.2}",
                "TLS over TCP, hash after",
                mib / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e3 / mib
            );
        }
    });
}
