//! Checks a run's history against ArtStore's promises once every fault has healed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::history::{Kind, Op, Outcome};

/// Which nodes said they were leader in which term (sampled during the run).
#[derive(Default)]
pub struct LeaderSamples {
    pub by_term: Mutex<BTreeMap<u64, BTreeSet<u64>>>,
}

impl LeaderSamples {
    /// How many terms had a leader, as sampled.
    pub fn terms_seen(&self) -> u64 {
        self.by_term.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }

    /// Polls every node's status until `stop` is set.
    pub fn spawn(
        self: &Arc<Self>,
        nodes: Arc<dyn Fn() -> BTreeMap<u64, String> + Send + Sync>,
        token: String,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_millis(400)).build().expect("HTTP client");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (id, url) in nodes() {
                    let Ok(r) = http.get(format!("{url}/api/v1/cluster/status")).bearer_auth(&token).send().await
                    else {
                        continue;
                    };
                    let Ok(v) = r.json::<serde_json::Value>().await else { continue };
                    if v["state"] == "Leader" {
                        if let Some(term) = v["term"].as_u64() {
                            this.by_term.lock().unwrap_or_else(|p| p.into_inner()).entry(term).or_default().insert(id);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
}

/// The verdict on one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Acknowledged uploads not readable (with the right SHA-256) on some node after healing.
    pub lost: Vec<String>,
    /// Files no client uploaded.
    pub phantoms: Vec<String>,
    /// Uploads refused before commit that are in the catalog anyway.
    pub failed_but_committed: Vec<String>,
    /// Terms with more than one leader.
    pub split_brain: Vec<String>,
    /// Catalogs that differ at the same log position.
    pub divergence: Vec<String>,
    /// Broken promises seen while the workload ran (stale reads, wrong bytes).
    pub online: Vec<String>,
}

impl Verdict {
    pub fn violations(&self) -> usize {
        self.lost.len()
            + self.phantoms.len()
            + self.failed_but_committed.len()
            + self.split_brain.len()
            + self.divergence.len()
            + self.online.len()
    }
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Runs every check against `nodes` (id → URL), all of which must be up and healed.
pub async fn check(
    ops: &[Op],
    leaders: &LeaderSamples,
    nodes: &BTreeMap<u64, String>,
    admin: &artstore_client::Client,
    token: &str,
) -> Verdict {
    let mut v = Verdict::default();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("HTTP client");

    v.online = ops.iter().filter_map(|o| o.violation.clone()).collect();
    v.online.sort();
    v.online.dedup();

    for (term, who) in leaders.by_term.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if who.len() > 1 {
            v.split_brain.push(format!("term {term}: leaders {who:?}"));
        }
    }

    // Every acknowledged upload: metadata on every node, and its bytes.
    let acked: Vec<&Op> = ops.iter().filter(|o| o.kind == Kind::Upload && o.outcome == Outcome::Ok).collect();
    let urls: Vec<(&u64, &String)> = nodes.iter().collect();
    for (i, op) in acked.iter().enumerate() {
        let (Some(id), Some(want)) = (&op.file_id, &op.sha256) else { continue };
        for (node, url) in &urls {
            let got = get_json(&http, &format!("{url}/api/v1/files/{id}"), token).await;
            match got {
                Ok(Some(f)) if f["sha256"].as_str() == Some(want.as_str()) => {}
                Ok(Some(_)) => v.lost.push(format!("{id}: node {node} has it with another sha256")),
                Ok(None) => {
                    v.lost.push(format!("{id} ({}): node {node} does not have it", op.name.clone().unwrap_or_default()))
                }
                Err(e) => v.lost.push(format!("{id}: node {node} could not answer: {e}")),
            }
        }
        let (node, url) = urls[i % urls.len()];
        match download(&http, &format!("{url}/api/v1/files/{id}/content"), token).await {
            Ok(bytes) if sha(&bytes) == *want => {}
            Ok(_) => v.lost.push(format!("{id}: node {node} serves the wrong bytes")),
            Err(e) => v.lost.push(format!("{id}: download from node {node} failed: {e}")),
        }
    }

    // Everything in the catalog was written by a client, and not by one that was refused.
    let by_name: HashMap<&str, &Op> =
        ops.iter().filter(|o| o.kind == Kind::Upload).filter_map(|o| o.name.as_deref().map(|n| (n, o))).collect();
    if let Some((_, url)) = urls.first() {
        let mut after = String::new();
        loop {
            let page = get_json(&http, &format!("{url}/api/v1/files?limit=1000&after={after}"), token).await;
            let Ok(Some(page)) = page else {
                v.divergence.push(format!("listing files failed: {page:?}"));
                break;
            };
            for f in page["files"].as_array().into_iter().flatten() {
                let name = f["name"].as_str().unwrap_or_default();
                let id = f["id"].as_str().unwrap_or_default();
                match by_name.get(name) {
                    None => v.phantoms.push(format!("{id} ({name})")),
                    Some(op) if op.outcome == Outcome::Fail => {
                        v.failed_but_committed.push(format!("{id} ({name}): {}", op.detail.clone().unwrap_or_default()))
                    }
                    Some(_) => {}
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => after = c.to_string(),
                None => break,
            }
        }
    }

    // The same catalog everywhere, compared at one log position.
    match digests(admin, nodes).await {
        Ok(d) => {
            let distinct: BTreeSet<&String> = d.values().collect();
            if distinct.len() > 1 {
                v.divergence.push(format!("catalog digests differ: {d:?}"));
            }
        }
        Err(e) => v.divergence.push(format!("catalog digests unavailable: {e}")),
    }
    v
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Result<Option<serde_json::Value>, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match http.get(url).bearer_auth(token).send().await {
            Ok(r) if r.status().as_u16() == 404 => return Ok(None),
            Ok(r) if r.status().is_success() => return r.json().await.map(Some).map_err(|e| e.to_string()),
            Ok(r) => r.status().to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn download(http: &reqwest::Client, url: &str, token: &str) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match http.get(url).bearer_auth(token).send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => return Ok(b.to_vec()),
                Err(e) => e.to_string(),
            },
            Ok(r) => r.status().to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Appends a digest entry and collects every node's digest at it.
async fn digests(
    admin: &artstore_client::Client,
    nodes: &BTreeMap<u64, String>,
) -> Result<BTreeMap<u64, String>, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let index = loop {
        match admin.take_digest().await {
            Ok(i) => break i,
            Err(e) if Instant::now() > deadline => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let mut out = BTreeMap::new();
    for id in nodes.keys() {
        let c = admin.with_urls([nodes[id].clone()]).map_err(|e| e.to_string())?;
        let d = loop {
            match c.digest_at(index).await {
                Ok(d) => break d,
                Err(e) if Instant::now() > deadline => return Err(format!("node {id}: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        out.insert(*id, d.digest.unwrap_or_default());
    }
    Ok(out)
}
