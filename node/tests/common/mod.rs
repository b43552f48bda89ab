//! Shared set-up for the node's integration tests: real `artstore` processes via the harness.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use artstore_chaos::LocalCluster;

pub const READY: Duration = Duration::from_secs(30);

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_artstore"))
}

/// Sets a value in a node's config table, creating the section if needed.
pub fn set(table: &mut toml::Table, section: &str, key: &str, value: impl Into<toml::Value>) {
    let sec = table.entry(section).or_insert_with(|| toml::Value::Table(Default::default()));
    if let Some(t) = sec.as_table_mut() {
        t.insert(key.into(), value.into());
    }
}

/// Starts an `n`-node cluster, waits until every node is ready and agrees on a leader.
pub async fn started_cluster(n: u64, configure: impl Fn(&mut toml::Table)) -> (LocalCluster, u64) {
    running(LocalCluster::init(&bin(), n, configure).expect("cluster init")).await
}

/// [`started_cluster`] with the API over HTTPS (`tls`) or plain HTTP, whatever the environment says.
pub async fn started_cluster_with(n: u64, tls: bool, configure: impl Fn(&mut toml::Table)) -> (LocalCluster, u64) {
    running(LocalCluster::init_with(&bin(), n, tls, configure).expect("cluster init")).await
}

async fn running(mut c: LocalCluster) -> (LocalCluster, u64) {
    c.start_all().expect("start nodes");
    for id in c.node_ids() {
        c.wait_ready(id, READY).await.expect("node ready");
    }
    let leader = c.wait_leader(&c.node_ids(), READY).await.expect("leader elected");
    (c, leader)
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chunk file named `sha256` in any element of the node in `dir`, if the node holds it.
pub fn chunk_file(dir: &Path, sha256: &str) -> Option<PathBuf> {
    let elements = dir.join("data").join("elements");
    std::fs::read_dir(elements)
        .ok()?
        .flatten()
        .map(|e| e.path().join("chunks").join(&sha256[..2]).join(sha256))
        .find(|p| p.exists())
}

/// Creates account `client_id` with `roles` through node 1 and returns its secret and a token.
pub async fn account_token(c: &LocalCluster, client_id: &str, roles: &[&str]) -> (String, String) {
    let created = c
        .client(1)
        .create_account(&artstore_client::wire::CreateServiceAccount {
            client_id: Some(client_id.into()),
            name: client_id.into(),
            description: String::new(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            client_secret: None,
            require_client_cert: false,
        })
        .await
        .expect("account created");
    let v: serde_json::Value = c
        .http()
        .post(format!("{}/api/v1/auth/token", c.url(1)))
        .basic_auth(client_id, Some(&created.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token endpoint answers")
        .json()
        .await
        .expect("token JSON");
    let token = v["access_token"].as_str().unwrap_or_else(|| panic!("no token for {client_id}: {v}")).to_string();
    (created.client_secret, token)
}
