//! `catalog-scale`: how the cluster's costs grow with the number of file records in its catalog.
//!
//! The catalog is built by the fastest honest route: one real 4 KiB upload, then well-formed
//! records of further files whose single chunk is that upload's (content-addressed) chunk on the
//! same replicas, committed through Raft in batches by `POST /api/v1/admin/recover`. Every record
//! is a real catalog entry: each node applies it, indexes it for search and writes its sidecar,
//! and its content reads back. Then the run measures, at that size:
//! - bytes on disk per record on each node (Raft database and snapshots, search index,
//!   sidecars, everything else);
//! - `GET /api/v1/files` paging and search latency;
//! - small uploads (4 KiB, 32 at once) and the nodes' resident memory meanwhile;
//! - leader fail-over and the restart of a killed node until it is ready again;
//! - a new node joining: the snapshot it receives, the time until it is ready, and its peak RSS.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use artstore_chaos::LocalCluster;
use artstore_client::wire::{FileInfo, StorageElements};
use artstore_raft::{ChunkRef, FileRecord, Replica, RetentionPolicy};
use sha2::Digest;

use crate::files::status_mib;
use crate::report::{Latencies, Row};

/// What to build and measure.
pub struct Options {
    /// File records in the catalog (the seed upload included).
    pub records: u64,
    /// Records per `recover` request (one Raft entry each), at most 1000.
    pub batch: usize,
    /// Requests in flight while loading.
    pub concurrency: usize,
    /// Leader fail-overs (each followed by the killed node's restart).
    pub failovers: usize,
    /// Requests per paging and search row.
    pub queries: usize,
    /// Also time a fourth node joining through a snapshot.
    pub join: bool,
    /// The nodes' `raft.snapshot_logs_since_last`.
    pub snapshot_every: u64,
}

/// A node's configuration for the run: the nodes' default Raft timing, not the test harness's
/// quick elections (a bulk load keeps both cores busy, as it would a production node), and
/// snapshots every `snapshot_every` entries (the load's entries are 1 000 times larger than usual).
pub fn configure(t: &mut toml::Table, snapshot_every: u64) {
    let raft = t.entry("raft").or_insert_with(|| toml::Value::Table(Default::default()));
    if let Some(r) = raft.as_table_mut() {
        r.remove("heartbeat_ms");
        r.remove("election_timeout_min_ms");
        r.remove("election_timeout_max_ms");
        r.insert("snapshot_logs_since_last".into(), (snapshot_every as i64).into());
        r.insert("logs_kept_after_snapshot".into(), ((snapshot_every / 2) as i64).into());
    }
}

const ENGLISH: &[&str] = &[
    "invoice",
    "contract",
    "report",
    "minutes",
    "budget",
    "policy",
    "audit",
    "letter",
    "memo",
    "drawing",
    "manual",
    "schedule",
    "payroll",
    "tender",
    "appendix",
    "statement",
    "license",
    "survey",
    "permit",
    "order",
];
const RUSSIAN: &[&str] = &[
    "отчёт",
    "договор",
    "счёт",
    "протокол",
    "бюджет",
    "приказ",
    "письмо",
    "справка",
    "акт",
    "смета",
    "чертёж",
    "накладная",
    "заявление",
    "доверенность",
    "выписка",
    "план",
    "реестр",
    "устав",
    "инструкция",
    "опись",
];
const DEPARTMENTS: &[&str] = &["finance", "legal", "hr", "sales", "it", "archive", "plant", "logistics"];
const TYPES: &[&str] = &["application/pdf", "text/plain", "image/tiff", "application/xml"];

/// The `i`th record's metadata: words from both languages, tags, attributes (deterministic).
fn metadata(i: u64) -> (String, String, Vec<String>, String, &'static str) {
    let pick = |list: &'static [&'static str], k: u64| list[(k % list.len() as u64) as usize];
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let name = format!("{}-{}-{i}.pdf", pick(ENGLISH, h >> 7), pick(RUSSIAN, h >> 17));
    let description = format!(
        "{} {} {} {} for {}",
        pick(ENGLISH, h >> 3),
        pick(RUSSIAN, h >> 23),
        pick(ENGLISH, h >> 29),
        pick(RUSSIAN, h >> 37),
        pick(DEPARTMENTS, h >> 41)
    );
    let tags = (0..1 + (h >> 45) % 3).map(|k| pick(DEPARTMENTS, (h >> 47) + k).to_string()).collect();
    let attributes =
        format!(r#"{{"year":{},"dept":"{}","serial":{i}}}"#, 1990 + (h >> 51) % 36, pick(DEPARTMENTS, h >> 55));
    (name, description, tags, attributes, pick(TYPES, h >> 59))
}

/// A record of one more file with the seed's content: its own id, name and metadata.
fn record(seed: &FileRecord, i: u64) -> FileRecord {
    let (name, description, tags, attributes_json, content_type) = metadata(i);
    let now = artstore_raft::now_ms();
    FileRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        content_type: content_type.to_string(),
        description,
        tags,
        attributes_json,
        created_at: now,
        updated_at: now,
        ..seed.clone()
    }
}

/// The seed upload's record as the catalog holds it: its chunk on the replicas' writable
/// elements (a spawned node has one).
async fn seed(url: &str, http: &reqwest::Client, token: &str) -> anyhow::Result<FileRecord> {
    let body = crate::files::pseudo_random(4096, 0x5EED);
    let r = http
        .post(format!("{url}/api/v1/files?name=seed.bin"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await?;
    ensure!(r.status().is_success(), "seed upload: {}", r.text().await.unwrap_or_default());
    let info: FileInfo = r.json().await?;
    ensure!(info.chunks == 1, "the seed has {} chunks; one was expected", info.chunks);
    let elements: StorageElements =
        http.get(format!("{url}/api/v1/storage-elements")).bearer_auth(token).send().await?.json().await?;
    let mut replicas = Vec::new();
    for node_id in &info.replicas {
        let mut writable: Vec<_> =
            elements.elements.iter().filter(|e| e.node_id == *node_id && e.mode == "rw").collect();
        ensure!(writable.len() == 1, "node {node_id} has {} writable elements; the run needs one", writable.len());
        replicas.push(Replica { node_id: *node_id, element: writable.remove(0).name.clone() });
    }
    let sha256 = hex::encode(sha2::Sha256::digest(&body));
    ensure!(sha256 == info.sha256, "the seed's digest differs from what the node reported");
    Ok(FileRecord {
        id: info.id,
        name: info.name,
        content_type: info.content_type,
        size: info.size,
        sha256: sha256.clone(),
        chunk_size: 4 << 20,
        chunks: vec![ChunkRef { sha256, size: info.size, compressed: false, replicas, missing: Vec::new() }],
        policy: RetentionPolicy::Permanent,
        created_by: info.created_by,
        version: 1,
        ..FileRecord::default()
    })
}

/// Commits `total` records in batches through the nodes in turn, with progress every 10 s.
async fn load(urls: &[String], token: &str, seed: &FileRecord, o: &Options, pids: &[u32]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(1));
    let done = Arc::new(AtomicU64::new(1));
    let total = o.records;
    let workers = (0..o.concurrency).map(|w| {
        let (next, done, seed, token) = (next.clone(), done.clone(), seed.clone(), token.to_string());
        let url = urls[w % urls.len()].clone();
        let batch = o.batch as u64;
        tokio::spawn(async move {
            let http = crate::net::http();
            loop {
                let from = next.fetch_add(batch, Ordering::Relaxed);
                if from >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let files: Vec<FileRecord> = (from..(from + batch).min(total)).map(|i| record(&seed, i)).collect();
                let n = files.len() as u64;
                // Overwrite: a request retried after a timeout whose first try committed replays.
                let body = serde_json::json!({ "files": files, "overwrite": true });
                // A 503 (no leader in time) is retried as a client would, a few times.
                for attempt in 1.. {
                    let r =
                        http.post(format!("{url}/api/v1/admin/recover")).bearer_auth(&token).json(&body).send().await?;
                    let status = r.status();
                    if status.is_success() {
                        break;
                    }
                    let text = r.text().await.unwrap_or_default();
                    if status != reqwest::StatusCode::SERVICE_UNAVAILABLE || attempt == 5 {
                        bail!("recover through {url}: {status} {text}");
                    }
                    eprintln!("  retrying a batch after {status} (attempt {attempt}): {text}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                done.fetch_add(n, Ordering::Relaxed);
            }
        })
    });
    let workers = futures::future::join_all(workers);
    tokio::pin!(workers);
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            results = &mut workers => {
                for r in results {
                    r??;
                }
                return Ok(started.elapsed());
            }
            _ = tick.tick() => {
                let n = done.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                let rss: Vec<String> = pids.iter().map(|p| format!("{:.0}", status_mib(*p, "VmRSS:").unwrap_or(0.0))).collect();
                eprintln!(
                    "  loaded {n} of {total} records in {secs:.0} s ({:.0}/s); nodes' RSS {} MiB",
                    n as f64 / secs,
                    rss.join(" / ")
                );
            }
        }
    }
}

/// A metric's value summed over its label sets, from a node's `/metrics`.
async fn metric_sum(http: &reqwest::Client, url: &str, token: &str, name: &str) -> Option<f64> {
    let text = http.get(format!("{url}/metrics")).bearer_auth(token).send().await.ok()?.text().await.ok()?;
    let values: Vec<f64> = crate::usage::samples(&text, name).map(|(_, v)| v).collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Waits until every node has applied the leader's commit index and its search indexer and
/// sidecar keeper have caught up; returns how long that took.
async fn settle(cluster: &LocalCluster, ids: &[u64], token: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let http = crate::net::http();
    // One client per node for the whole wait: each new client would issue a token, and every
    // token is an audited Raft entry that would keep the nodes from settling.
    let clients: Vec<_> = ids.iter().map(|id| (*id, cluster.url(*id), cluster.client(*id))).collect();
    let mut last_report = Instant::now();
    loop {
        let mut behind = Vec::new();
        let mut applied = Vec::new();
        let mut commit = 0;
        for (id, _, client) in &clients {
            let status = client.cluster_status().await.ok();
            if status.as_ref().is_some_and(|s| s.leader_id == Some(*id)) {
                commit = status.as_ref().map_or(0, |s| s.commit_index);
            }
            applied.push(status.map_or(0, |s| s.applied_index));
        }
        for ((id, url, _), applied) in clients.iter().zip(applied) {
            let lag = metric_sum(&http, url, token, "artstore_change_feed_lag_entries").await.unwrap_or(f64::MAX);
            let index_lag =
                metric_sum(&http, url, token, "artstore_search_index_lag_entries").await.unwrap_or(f64::MAX);
            if commit == 0 || applied < commit || lag > 0.0 || index_lag > 0.0 {
                behind.push(format!("node {id}: applied {applied}/{commit}, feed lag {lag}, index lag {index_lag}"));
            }
        }
        if behind.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("not settled after 30 minutes: {}", behind.join("; "));
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("  settling: {}", behind.join("; "));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Bytes allocated on disk under `dir`, by part: `raft` (database and snapshot files), `search`
/// (the index), `sidecars` (`*.attr.json`), `other` (chunks, certificates, logs).
fn disk_usage(dir: &Path) -> BTreeMap<&'static str, u64> {
    use std::os::unix::fs::MetadataExt;
    let mut parts = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let path = e.path();
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let text = path.to_string_lossy();
            let part = if text.ends_with(".attr.json") {
                "sidecars"
            } else if path.components().any(|c| c.as_os_str() == "raft") {
                "raft"
            } else if path.components().any(|c| c.as_os_str().to_string_lossy().contains("index")) {
                "search"
            } else {
                "other"
            };
            *parts.entry(part).or_default() += meta.blocks() * 512;
        }
    }
    parts
}

/// Size of the newest snapshot image of a node (in its Raft folder's snapshot images).
fn newest_snapshot(node_dir: &Path) -> Option<u64> {
    let dir = node_dir.join("data").join("raft").join(artstore_raft::store::SNAPSHOTS_DIR);
    let images = std::fs::read_dir(dir).ok()?.flatten().filter_map(|e| {
        let meta = e.metadata().ok()?;
        e.path().extension().is_some_and(|x| x == "img").then_some((meta.modified().ok()?, meta.len()))
    });
    images.max_by_key(|(at, _)| *at).map(|(_, len)| len)
}

/// `count` timed requests of `path` (with a bearer token) over the nodes in turn.
async fn timed_gets(urls: &[String], token: &str, paths: &[String], count: usize) -> anyhow::Result<Latencies> {
    let http = crate::net::http();
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let (url, path) = (&urls[i % urls.len()], &paths[i % paths.len()]);
        let t = Instant::now();
        let r = http.get(format!("{url}{path}")).bearer_auth(token).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        ensure!(status.is_success(), "GET {path}: {status} {}", String::from_utf8_lossy(&body));
        samples.push(t.elapsed());
    }
    Ok(Latencies::new(samples))
}

/// Cursors at several depths of the listing, so paging is timed near the start and deep in.
async fn list_cursors(url: &str, token: &str, records: u64) -> anyhow::Result<Vec<String>> {
    let http = crate::net::http();
    let mut cursors = vec![String::new()];
    let mut after = String::new();
    // Walk with the largest page; a page costs the same wherever it starts.
    let stride = (records / 8).max(1000);
    let mut walked = 0u64;
    while cursors.len() < 8 {
        let r: serde_json::Value = http
            .get(format!("{url}/api/v1/files?limit=1000&after={after}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let Some(next) = r["next_cursor"].as_str() else { break };
        after = next.to_string();
        walked += 1000;
        if walked % stride < 1000 {
            cursors.push(after.clone());
        }
    }
    Ok(cursors)
}

fn rss_line(cluster: &LocalCluster, ids: &[u64]) -> String {
    ids.iter()
        .map(|id| {
            let (now, peak) =
                cluster.pid(*id).map(|p| (status_mib(p, "VmRSS:"), status_mib(p, "VmHWM:"))).unwrap_or_default();
            format!("node {id} {:.0} MiB (peak {:.0})", now.unwrap_or(0.0), peak.unwrap_or(0.0))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the catalog on a spawned cluster and measures it (see the module comment).
pub async fn run(cluster: &mut LocalCluster, o: &Options) -> anyhow::Result<Vec<Row>> {
    ensure!((1..=1000).contains(&o.batch), "--batch must be 1 to 1000");
    let ids = cluster.node_ids();
    let urls: Vec<String> = ids.iter().map(|i| cluster.url(*i)).collect();
    let token = crate::files::token(&urls[0], &cluster.admin_credentials()).await?;
    let http = crate::net::http();
    let seed = seed(&urls[0], &http, &token).await?;
    let mut rows = Vec::new();

    eprintln!("loading {} records, {} per Raft entry, {} requests in flight…", o.records, o.batch, o.concurrency);
    let pids: Vec<u32> = ids.iter().filter_map(|i| cluster.pid(*i)).collect();
    let took = load(&urls, &token, &seed, o, &pids).await?;
    let rate = (o.records - 1) as f64 / took.as_secs_f64();
    eprintln!("loaded in {:.1} s ({rate:.0} records/s); waiting for indexes and sidecars…", took.as_secs_f64());
    rows.push(Row::rate("scale-load", o.records - 1, rate));
    let settled = settle(cluster, &ids, &token).await?;
    eprintln!("every node caught up {:.1} s after the last commit", settled.as_secs_f64());
    eprintln!("RSS after loading: {}", rss_line(cluster, &ids));

    // A loaded record reads back through every node: the records are real.
    let listed: serde_json::Value =
        http.get(format!("{}/api/v1/files?limit=2", urls[0])).bearer_auth(&token).send().await?.json().await?;
    let some_id = listed["files"][1]["id"].as_str().context("the listing has no second file")?.to_string();
    for url in &urls {
        let body = http.get(format!("{url}/api/v1/files/{some_id}/content")).bearer_auth(&token).send().await?;
        let bytes = body.bytes().await?;
        ensure!(hex::encode(sha2::Sha256::digest(&bytes)) == seed.sha256, "{some_id} read back wrong through {url}");
    }

    for id in &ids {
        let parts = disk_usage(&cluster.node(*id).dir);
        let total: u64 = parts.values().sum();
        let per: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {:.0}", *v as f64 / o.records as f64)).collect();
        eprintln!(
            "node {id}: {:.1} MiB on disk, {:.0} bytes per record ({}); newest snapshot {:.1} MiB",
            total as f64 / 1048576.0,
            total as f64 / o.records as f64,
            per.join(", "),
            newest_snapshot(&cluster.node(*id).dir).unwrap_or(0) as f64 / 1048576.0
        );
    }

    let cursors = list_cursors(&urls[0], &token, o.records).await?;
    let pages: Vec<String> = cursors.iter().map(|c| format!("/api/v1/files?limit=100&after={c}")).collect();
    let lat = timed_gets(&urls, &token, &pages, o.queries).await?;
    rows.push(Row::summary("scale-list-page", 1, &lat, 0, 0.0));
    for (name, query) in [
        ("scale-search-word", "q=invoice&limit=20"),
        ("scale-search-russian", "q=%D0%BE%D1%82%D1%87%D1%91%D1%82%D1%8B&limit=20"),
        ("scale-search-rare", "q=name:123457&limit=20"),
        ("scale-search-filter", "q=budget&tag=legal&sort=created_at&order=desc&limit=20"),
    ] {
        let lat = timed_gets(&urls, &token, &[format!("/api/v1/search?{query}")], o.queries).await?;
        rows.push(Row::summary(name, 1, &lat, 0, 0.0));
    }

    // Small uploads at this size, with every node's resident memory sampled meanwhile.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (sampling, pids) = (sampling.clone(), pids.clone());
        tokio::spawn(async move {
            let mut peak = vec![0f64; pids.len()];
            while sampling.load(Ordering::Relaxed) {
                for (p, pid) in peak.iter_mut().zip(&pids) {
                    *p = p.max(status_mib(*pid, "VmRSS:").unwrap_or(0.0));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let creds = cluster.admin_credentials();
    let put = crate::files::put("scale-put-small", &urls, &creds, 4096, 32, Duration::from_secs(10), &pids).await?;
    sampling.store(false, Ordering::Relaxed);
    let peak: Vec<String> = sampler.await?.iter().map(|m| format!("{m:.0}")).collect();
    eprintln!("put-small c=32 at this size: nodes' highest RSS meanwhile {} MiB", peak.join(" / "));
    rows.push(put);

    let (mut failovers, mut restarts) = (Vec::new(), Vec::new());
    for round in 0..o.failovers {
        let (leader, took) = crate::kill_leader_until_commit(cluster, &ids, "bench.scale", round).await?;
        failovers.push(took);
        let started = Instant::now();
        cluster.start(leader)?;
        cluster.wait_ready(leader, Duration::from_secs(600)).await?;
        restarts.push(started.elapsed());
        eprintln!(
            "round {round}: leader {leader} killed, a write committed after {:.2} s; restarted and ready in {:.2} s",
            took.as_secs_f64(),
            restarts[round].as_secs_f64()
        );
    }
    if o.failovers > 0 {
        rows.push(Row::summary("scale-failover", 1, &Latencies::new(failovers), 0, 0.0));
        rows.push(Row::summary("scale-restart", 1, &Latencies::new(restarts), 0, 0.0));
    }

    if o.join {
        join(cluster, &ids, &token, o.snapshot_every, &mut rows).await?;
    }
    Ok(rows)
}

/// A fourth node joins through a follower; it needs the leader's snapshot to catch up.
async fn join(
    cluster: &mut LocalCluster,
    ids: &[u64],
    token: &str,
    snapshot_every: u64,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let leader = cluster.wait_leader(ids, Duration::from_secs(60)).await?;
    let via = ids.iter().copied().find(|i| *i != leader).unwrap_or(leader);
    let new = ids.iter().max().copied().unwrap_or(0) + 1;
    cluster.add_node(new, |t| configure(t, snapshot_every))?;
    cluster.start(new)?;
    let snapshot = newest_snapshot(&cluster.node(leader).dir).unwrap_or(0);
    let (url, config) = (cluster.url(via), cluster.config_path(new).to_string_lossy().into_owned());
    let creds = cluster.root().join("admin-credentials.json").to_string_lossy().into_owned();
    let started = Instant::now();
    cluster.run_cli(&["cluster", "join", "--url", &url, "--credentials", &creds, "--config", &config])?;
    let joined = started.elapsed();
    cluster.wait_ready(new, Duration::from_secs(1800)).await?;
    let ready = started.elapsed();
    let mut all = ids.to_vec();
    all.push(new);
    settle(cluster, &all, token).await?;
    let indexed = started.elapsed();
    let peak = cluster.pid(new).and_then(|p| status_mib(p, "VmHWM:")).unwrap_or(0.0);
    eprintln!(
        "node {new} joined through node {via}: the leader's newest snapshot {:.1} MiB; the join answered after \
         {:.1} s, the node was ready after {:.1} s and had its search index and sidecars after {:.1} s; its peak \
         RSS {peak:.0} MiB",
        snapshot as f64 / 1048576.0,
        joined.as_secs_f64(),
        ready.as_secs_f64(),
        indexed.as_secs_f64()
    );
    eprintln!("RSS after the join: {}", rss_line(cluster, &all));
    rows.push(Row::summary("scale-join-ready", 1, &Latencies::new(vec![ready]), 0, 0.0));
    rows.push(Row::summary("scale-join-indexed", 1, &Latencies::new(vec![indexed]), 0, 0.0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_differ_but_share_the_seed_content() {
        let seed = FileRecord { sha256: "ab".into(), size: 4096, ..FileRecord::default() };
        let (a, b) = (record(&seed, 1), record(&seed, 2));
        assert_ne!(a.id, b.id);
        assert_ne!(a.name, b.name);
        assert_eq!((a.sha256.as_str(), a.size), ("ab", 4096));
        assert!(serde_json::from_str::<serde_json::Value>(&a.attributes_json).unwrap().is_object());
    }
}
