//! Concurrent clients over plain HTTP: uploads of known content, linearizable reads of what was
//! just acknowledged, downloads, consistent searches and metadata updates, each recorded in the
//! [`History`] with an outcome that tells "definitely not" apart from "maybe".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::history::{History, Kind, Op, Outcome};

/// An acknowledged upload.
#[derive(Debug, Clone)]
pub struct Acked {
    pub id: String,
    pub name: String,
    pub sha256: String,
    /// Unique word in its description (for search).
    pub token: String,
    pub acked_ms: f64,
}

/// What the workers share.
pub struct Workload {
    pub history: Arc<History>,
    /// Node id → base URL of the nodes clients may use (scenarios change it with membership).
    pub nodes: Mutex<BTreeMap<u64, String>>,
    pub acked: Mutex<Vec<Acked>>,
    pub token: String,
    stop: AtomicBool,
    seq: AtomicU64,
    http: reqwest::Client,
    run: String,
}

/// The body of an upload, derived from its name so that it can be checked later.
pub fn body_of(name: &str) -> Vec<u8> {
    let seed = Sha256::digest(name.as_bytes());
    let mut x = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default()) | 1;
    let len = 256 + (x % (24 * 1024)) as usize;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// How a failed request is classified for an operation that writes.
fn write_error(e: &reqwest::Error) -> (Outcome, Option<String>) {
    if e.is_connect() {
        (Outcome::Fail, Some(format!("connect: {e}")))
    } else {
        (Outcome::Indeterminate, Some(e.to_string()))
    }
}

impl Workload {
    pub fn new(history: Arc<History>, nodes: BTreeMap<u64, String>, token: String, run: &str) -> Arc<Self> {
        Arc::new(Self {
            history,
            nodes: Mutex::new(nodes),
            acked: Mutex::default(),
            token,
            stop: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("HTTP client"),
            run: run.to_string(),
        })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn set_nodes(&self, nodes: BTreeMap<u64, String>) {
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = nodes;
    }

    fn pick_node(&self, not: Option<u64>) -> Option<(u64, String)> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let choices: Vec<(u64, String)> =
            nodes.iter().filter(|(n, _)| Some(**n) != not).map(|(n, u)| (*n, u.clone())).collect();
        if choices.is_empty() {
            return None;
        }
        Some(choices[rand::rng().random_range(0..choices.len())].clone())
    }

    fn pick_acked(&self) -> Option<Acked> {
        let acked = self.acked.lock().unwrap_or_else(|p| p.into_inner());
        if acked.is_empty() {
            return None;
        }
        Some(acked[rand::rng().random_range(0..acked.len())].clone())
    }

    /// Starts `workers` clients; they run until [`Workload::stop`].
    pub fn spawn(self: &Arc<Self>, workers: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..workers)
            .map(|w| {
                let this = self.clone();
                tokio::spawn(async move {
                    while !this.stop.load(Ordering::Relaxed) {
                        let roll = rand::rng().random_range(0..100);
                        match roll {
                            0..55 => this.upload(w).await,
                            55..75 => this.download(w).await,
                            75..88 => this.update(w).await,
                            _ => this.search(w).await,
                        }
                        tokio::time::sleep(Duration::from_millis(15)).await;
                    }
                })
            })
            .collect()
    }

    fn op(&self, worker: usize, kind: Kind, node: u64, invoke_ms: f64) -> Op {
        Op {
            worker,
            kind,
            node,
            invoke_ms,
            complete_ms: self.history.now_ms(),
            outcome: Outcome::Indeterminate,
            name: None,
            file_id: None,
            sha256: None,
            detail: None,
            violation: None,
        }
    }

    async fn upload(&self, w: usize) {
        let Some((node, url)) = self.pick_node(None) else { return };
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-w{w}-{n}.bin", self.run);
        let token = format!("tok{}x{w}x{n}", self.run.replace('-', ""));
        let body = body_of(&name);
        let digest = sha(&body);
        let invoke = self.history.now_ms();
        let resp = self
            .http
            .post(format!("{url}/api/v1/files"))
            .query(&[("name", name.as_str()), ("description", token.as_str())])
            .bearer_auth(&self.token)
            .header("X-Checksum-SHA256", &digest)
            .body(body)
            .send()
            .await;
        let mut op = self.op(w, Kind::Upload, node, invoke);
        op.name = Some(name.clone());
        op.sha256 = Some(digest.clone());
        match resp {
            Err(e) => (op.outcome, op.detail) = write_error(&e),
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                op.complete_ms = self.history.now_ms();
                if status == 201 {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    op.outcome = Outcome::Ok;
                    op.file_id = Some(id.clone());
                    self.acked.lock().unwrap_or_else(|p| p.into_inner()).push(Acked {
                        id: id.clone(),
                        name,
                        sha256: digest.clone(),
                        token,
                        acked_ms: op.complete_ms,
                    });
                    self.history.record(op);
                    self.read_after_write(w, node, &id, &digest).await;
                    return;
                }
                let code = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(String::from))
                    .unwrap_or_default();
                // Refusals before anything is committed: client errors, and a write quorum of
                // chunk replicas that could not be reached.
                op.outcome = if (400..500).contains(&status) || status == 507 || code == "replication_failed" {
                    Outcome::Fail
                } else {
                    Outcome::Indeterminate
                };
                op.detail = Some(format!("{status} {code}"));
            }
        }
        self.history.record(op);
    }

    /// Right after an acknowledgement, another node must know the file (linearizable read).
    async fn read_after_write(&self, w: usize, acked_by: u64, id: &str, digest: &str) {
        let Some((node, url)) = self.pick_node(Some(acked_by)) else { return };
        let invoke = self.history.now_ms();
        let resp = self.http.get(format!("{url}/api/v1/files/{id}")).bearer_auth(&self.token).send().await;
        let mut op = self.op(w, Kind::ReadAfterWrite, node, invoke);
        op.file_id = Some(id.to_string());
        match resp {
            Ok(r) if r.status().as_u16() == 200 => {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                op.outcome = Outcome::Ok;
                if v["sha256"].as_str() != Some(digest) {
                    op.violation = Some(format!("read-after-write: node {node} returned another sha256"));
                }
            }
            Ok(r) if r.status().as_u16() == 404 => {
                op.outcome = Outcome::Ok;
                op.violation =
                    Some(format!("read-after-write: node {node} did not find the upload node {acked_by} acknowledged"));
            }
            Ok(r) => op.detail = Some(r.status().to_string()),
            Err(e) => op.detail = Some(e.to_string()),
        }
        op.complete_ms = self.history.now_ms();
        self.history.record(op);
    }

    async fn download(&self, w: usize) {
        let (Some(file), Some((node, url))) = (self.pick_acked(), self.pick_node(None)) else { return };
        let invoke = self.history.now_ms();
        let resp =
            self.http.get(format!("{url}/api/v1/files/{}/content", file.id)).bearer_auth(&self.token).send().await;
        let mut op = self.op(w, Kind::Download, node, invoke);
        op.file_id = Some(file.id.clone());
        match resp {
            Ok(r) if r.status().as_u16() == 200 => match r.bytes().await {
                Ok(b) => {
                    op.outcome = Outcome::Ok;
                    if sha(&b) != file.sha256 {
                        op.violation = Some(format!("download from node {node} returned the wrong bytes"));
                    }
                }
                Err(e) => op.detail = Some(e.to_string()),
            },
            Ok(r) if r.status().as_u16() == 404 => {
                op.outcome = Outcome::Ok;
                op.violation = Some(format!("node {node} does not know an acknowledged upload"));
            }
            Ok(r) => op.detail = Some(r.status().to_string()),
            Err(e) => op.detail = Some(e.to_string()),
        }
        op.complete_ms = self.history.now_ms();
        self.history.record(op);
    }

    async fn update(&self, w: usize) {
        let (Some(file), Some((node, url))) = (self.pick_acked(), self.pick_node(None)) else { return };
        let invoke = self.history.now_ms();
        let body = serde_json::json!({"description": format!("{} updated at {invoke:.0}", file.token)});
        let resp = self
            .http
            .patch(format!("{url}/api/v1/files/{}", file.id))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await;
        let mut op = self.op(w, Kind::Update, node, invoke);
        op.file_id = Some(file.id.clone());
        match resp {
            Ok(r) if r.status().is_success() => op.outcome = Outcome::Ok,
            Ok(r) if r.status().as_u16() == 404 => {
                op.outcome = Outcome::Ok;
                op.violation = Some(format!("update through node {node}: acknowledged file not found"));
            }
            Ok(r) if r.status().is_client_error() => {
                op.outcome = Outcome::Fail;
                op.detail = Some(r.status().to_string());
            }
            Ok(r) => op.detail = Some(r.status().to_string()),
            Err(e) => (op.outcome, op.detail) = write_error(&e),
        }
        op.complete_ms = self.history.now_ms();
        self.history.record(op);
    }

    /// A consistent search must find a file acknowledged before the search began.
    async fn search(&self, w: usize) {
        let (Some(file), Some((node, url))) = (self.pick_acked(), self.pick_node(None)) else { return };
        let invoke = self.history.now_ms();
        let resp = self
            .http
            .get(format!("{url}/api/v1/search"))
            .query(&[("q", file.token.as_str()), ("consistent", "true")])
            .bearer_auth(&self.token)
            .send()
            .await;
        let mut op = self.op(w, Kind::Search, node, invoke);
        op.file_id = Some(file.id.clone());
        match resp {
            Ok(r) if r.status().as_u16() == 200 => {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                op.outcome = Outcome::Ok;
                let found = v["hits"].as_array().is_some_and(|h| h.iter().any(|x| x["id"] == file.id.as_str()));
                if !found && file.acked_ms < invoke {
                    op.violation = Some(format!("consistent search on node {node} missed an acknowledged upload"));
                }
            }
            Ok(r) => op.detail = Some(r.status().to_string()),
            Err(e) => op.detail = Some(e.to_string()),
        }
        op.complete_ms = self.history.now_ms();
        self.history.record(op);
    }
}
