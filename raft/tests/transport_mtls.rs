//! The cluster transport's mutual TLS, in process: a running node refuses a client whose
//! certificate comes from another CA (the refusal shows on the client's first call, as TLS 1.3
//! lets `connect` succeed), a client refuses a server from another CA, and a peer is only
//! accepted under the node id its certificate names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artstore_cluster_config::{ClusterCa, RaftConfig, TlsConfig};
use artstore_raft::transport::{TlsMaterial, Transport};
use artstore_raft::{ClusterNode, RaftNode, RaftNodeOptions};

fn identity(dir: &Path, name: &str, trust: &ClusterCa, issuer: &ClusterCa, node_id: u64) -> TlsMaterial {
    let cert = issuer.issue_node(node_id, &["127.0.0.1".into()]).unwrap();
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("ca.pem"), &trust.cert_pem).unwrap();
    std::fs::write(d.join("node.pem"), &cert.cert_pem).unwrap();
    std::fs::write(d.join("node.key"), &cert.key_pem).unwrap();
    TlsMaterial::load(&TlsConfig { ca_cert: d.join("ca.pem"), cert: d.join("node.pem"), key: d.join("node.key") })
        .unwrap()
}

async fn ping(transport: &Arc<Transport>, target: u64, addr: &str) -> Result<u64, String> {
    let client = transport.client(target, addr).await.map_err(|e| e.to_string())?;
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + Duration::from_secs(3);
    client.ping(ctx, 2).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn only_peers_with_a_certificate_from_the_cluster_ca_get_through() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ClusterCa::generate("ours").unwrap();
    let theirs = ClusterCa::generate("theirs").unwrap();

    // Node 1 of our cluster, running for real.
    let server_tls = identity(dir.path(), "n1", &ours, &ours, 1);
    let server = Transport::bind("127.0.0.1:0".parse().unwrap(), &server_tls).unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let node = RaftNode::start(
        RaftNodeOptions {
            node_id: 1,
            cluster_id: "ours".into(),
            db_path: dir.path().join("db"),
            http_addr: "127.0.0.1:1".into(),
            quic_addr: addr.clone(),
            bootstrap: BTreeMap::from([(1, ClusterNode { http_addr: "127.0.0.1:1".into(), quic_addr: addr.clone() })]),
            raft: RaftConfig::default(),
        },
        server,
    )
    .await
    .unwrap();
    let any = "127.0.0.1:0".parse().unwrap();

    // A peer of our cluster gets an answer from node 1.
    let friend = Transport::bind(any, &identity(dir.path(), "friend", &ours, &ours, 2)).unwrap();
    assert_eq!(ping(&friend, 1, &addr).await, Ok(1));

    // It cannot address node 1 under another node's name: the certificate says node 1.
    let err = ping(&friend, 3, &addr).await.unwrap_err();
    assert!(err.contains("node 3"), "{err}");

    // Trusts our CA but presents a certificate from another CA: node 1 refuses it.
    let impostor = Transport::bind(any, &identity(dir.path(), "impostor", &ours, &theirs, 2)).unwrap();
    assert!(ping(&impostor, 1, &addr).await.is_err(), "node 1 answered a peer with a foreign certificate");

    // Another cluster's node does not accept node 1's certificate either.
    let stranger = Transport::bind(any, &identity(dir.path(), "stranger", &theirs, &theirs, 2)).unwrap();
    let err = ping(&stranger, 1, &addr).await.unwrap_err();
    assert!(err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"), "{err}");

    node.shutdown().await;
}
