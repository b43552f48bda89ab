//! Token validation as every authenticated request pays it: a real single-node Raft node with
//! the admin actor bootstrapped, then `AdminHandle::validate` on a token it issued (signature,
//! claims, key lookup, and the account-still-active check against the local catalog).
//!
//! `cargo bench -p artstore-actors --bench token_validation`

use std::collections::BTreeMap;
use std::time::Duration;

use artstore_actors::admin::AdminHandle;
use artstore_cluster_config::{AuthConfig, ClusterCa, RaftConfig, TlsConfig};
use artstore_raft::transport::{TlsMaterial, Transport};
use artstore_raft::{ClusterNode, RaftNode, RaftNodeOptions};
use criterion::{criterion_group, criterion_main, Criterion};

fn setup(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (AdminHandle, String) {
    rt.block_on(async {
        let ca = ClusterCa::generate("bench").unwrap();
        let cert = ca.issue_node(1, &["127.0.0.1".into()]).unwrap();
        for (f, c) in [("ca.pem", &ca.cert_pem), ("node.pem", &cert.cert_pem), ("node.key", &cert.key_pem)] {
            std::fs::write(dir.join(f), c).unwrap();
        }
        let tls = TlsMaterial::load(&TlsConfig {
            ca_cert: dir.join("ca.pem"),
            cert: dir.join("node.pem"),
            key: dir.join("node.key"),
        })
        .unwrap();
        let transport = Transport::bind("127.0.0.1:0".parse().unwrap(), &tls).unwrap();
        let quic = transport.local_addr().unwrap().to_string();
        let me = ClusterNode { http_addr: "127.0.0.1:1".into(), quic_addr: quic.clone() };
        let node = RaftNode::start(
            RaftNodeOptions {
                node_id: 1,
                cluster_id: "bench".into(),
                db_path: dir.join("db"),
                http_addr: me.http_addr.clone(),
                quic_addr: quic,
                bootstrap: BTreeMap::from([(1, me)]),
                raft: RaftConfig::default(),
            },
            transport,
        )
        .await
        .unwrap();
        let secret = "Bench-Secret-123";
        let auth = AuthConfig {
            bootstrap_admin_hash: Some(artstore_cluster_config::secret::hash_secret(secret).unwrap()),
            ..Default::default()
        };
        let admin = AdminHandle::new(node.clone(), auth, "bench");
        let workers = artstore_actors::worker::Workers::new();
        workers.start(artstore_actors::worker::LeaderOnly::new(node, admin.workers().0));
        // The workers run for the whole benchmark.
        std::mem::forget(workers);
        for _ in 0..100 {
            if let Ok(t) = admin.issue_token("admin", secret, None, None).await {
                return (admin, t.access_token);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the bench node never bootstrapped");
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (admin, token) = setup(&rt, dir.path());
    rt.block_on(admin.validate(&token, None)).unwrap();
    c.bench_function("validate_token", |b| {
        b.iter(|| rt.block_on(admin.validate(std::hint::black_box(&token), None)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
