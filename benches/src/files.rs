//! File workloads: many small uploads, large streamed uploads and downloads (compared with the
//! machine's limits, see [`crate::limits`]); peak RSS of the nodes afterwards.

use std::time::{Duration, Instant};

use crate::limits::Bound;
use crate::report::{drive, row, Row};

const MIB: f64 = 1024.0 * 1024.0;

/// `n` pseudo-random bytes continuing the xorshift state `x`.
fn xorshift(x: &mut u64, n: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(n + 8);
    while buf.len() < n {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    buf.truncate(n);
    buf
}

fn seed_state(seed: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// `len` pseudo-random bytes, different for every `seed` (so that chunks do not deduplicate).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    xorshift(&mut seed_state(seed), len)
}

/// The same bytes as [`pseudo_random`], produced piece by piece (never held whole).
fn body(len: u64, seed: u64) -> reqwest::Body {
    const PIECE: u64 = 1 << 20;
    let stream = futures::stream::unfold((0u64, seed_state(seed)), move |(sent, mut x)| async move {
        if sent >= len {
            return None;
        }
        let n = PIECE.min(len - sent) as usize;
        let buf = xorshift(&mut x, n);
        Some((Ok::<_, std::io::Error>(buf), (sent + n as u64, x)))
    });
    reqwest::Body::wrap_stream(stream)
}

pub async fn token(url: &str, (id, secret): &(String, String)) -> anyhow::Result<String> {
    Ok(crate::net::sdk([url.to_string()])?.with_credentials(id.clone(), secret.clone()).token().await?)
}

/// `concurrency` workers uploading `size`-byte files for `duration`, spread over the nodes; with
/// the nodes' `pids` (a spawned cluster) the row's usage includes their own CPU time.
pub async fn put(
    workload: &str,
    urls: &[String],
    creds: &(String, String),
    size: u64,
    concurrency: usize,
    duration: Duration,
    pids: &[u32],
) -> anyhow::Result<Row> {
    let token = token(&urls[0], creds).await?;
    let nodes = urls;
    let (http, urls) = (crate::net::http(), std::sync::Arc::new(urls.to_vec()));
    let before = crate::usage::read(&http, nodes, &token, pids).await;
    let probe = (http.clone(), token.clone());
    let seq = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let result = drive(concurrency, duration, move |w| {
        let (http, urls, token) = (http.clone(), urls.clone(), token.clone());
        let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let url = &urls[w % urls.len()];
            http.post(format!("{url}/api/v1/files?name=bench-{w}-{n}.bin"))
                .bearer_auth(&token)
                .body(body(size, (w as u64) << 32 | n))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await?;
    let after = crate::usage::read(&probe.0, nodes, &probe.1, pids).await;
    let mut r = row(workload, concurrency, result).bounded_by(Bound::SyncedWrites);
    r.usage = crate::usage::per_op(&before, &after, r.ops);
    eprintln!("{workload}: {:.1} MiB/s of file data", r.ops_per_sec * size as f64 / MIB);
    Ok(r)
}

/// Peak resident set size (VmHWM) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM:")
}

/// A size field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`, …), in MiB.
pub fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Streams one file of `size` bytes and returns the MiB/s achieved.
pub async fn one_large(url: &str, creds: &(String, String), size: u64) -> anyhow::Result<f64> {
    let token = token(url, creds).await?;
    let started = Instant::now();
    let r = crate::net::http()
        .post(format!("{url}/api/v1/files?name=large.bin"))
        .bearer_auth(&token)
        .body(body(size, 42))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "upload failed: {}", r.text().await.unwrap_or_default());
    Ok(size as f64 / MIB / started.elapsed().as_secs_f64())
}

/// Uploads one `size`-byte file and returns its id and the nodes holding it.
async fn upload_one(url: &str, token: &str, size: u64) -> anyhow::Result<(String, Vec<u64>)> {
    let r = crate::net::http()
        .post(format!("{url}/api/v1/files?name=large.bin"))
        .bearer_auth(token)
        .body(body(size, 7))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "upload failed: {}", r.text().await.unwrap_or_default());
    let info: artstore_client::wire::FileInfo = r.json().await?;
    Ok((info.id, info.replicas))
}

/// Streams a file's content from `url` and discards it; MiB/s.
async fn download_one(url: &str, token: &str, id: &str, size: u64) -> anyhow::Result<f64> {
    use futures::StreamExt;
    let started = Instant::now();
    let r = crate::net::http().get(format!("{url}/api/v1/files/{id}/content")).bearer_auth(token).send().await?;
    anyhow::ensure!(r.status().is_success(), "download failed: {}", r.status());
    let mut got = 0u64;
    let mut stream = r.bytes_stream();
    while let Some(piece) = stream.next().await {
        got += piece?.len() as u64;
    }
    anyhow::ensure!(got == size, "downloaded {got} of {size} bytes");
    Ok(size as f64 / MIB / started.elapsed().as_secs_f64())
}

/// `get-large`: one `size`-byte file downloaded `rounds` times through a node holding a replica
/// and through one holding none (when the replication factor leaves one out).
///
/// With `isolate_last` (a spawned cluster), the last node's elements are made read-only first, so
/// placement leaves it out and it must fetch every chunk from its peers.
pub async fn get_large(
    urls: &[String],
    creds: &(String, String),
    size: u64,
    rounds: usize,
    isolate_last: bool,
) -> anyhow::Result<Vec<Row>> {
    let token = token(&urls[0], creds).await?;
    if isolate_last {
        let client = crate::net::sdk(urls.to_vec())?.with_credentials(creds.0.clone(), creds.1.clone());
        let last = urls.len() as u64;
        for e in client.storage_elements().await?.elements.iter().filter(|e| e.node_id == last && e.mode == "rw") {
            client.set_element_mode(last, &e.name, "ro").await?;
        }
    }
    let mut node_of = Vec::new();
    for url in urls {
        let status: artstore_client::wire::ClusterStatus = crate::net::http()
            .get(format!("{url}/api/v1/cluster/status"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        node_of.push(status.node_id);
    }
    let (id, holders) = upload_one(&urls[0], &token, size).await?;
    let local = urls.iter().zip(&node_of).find(|(_, n)| holders.contains(n)).map(|(u, _)| u.clone());
    let remote = urls.iter().zip(&node_of).find(|(_, n)| !holders.contains(n)).map(|(u, _)| u.clone());
    let mut rows = Vec::new();
    for (name, url) in [("get-large-local", local), ("get-large-remote", remote)] {
        let Some(url) = url else {
            eprintln!("{name}: every node holds a replica; spawn with --replication below the node count");
            continue;
        };
        let mut speeds = Vec::new();
        for _ in 0..rounds {
            speeds.push(download_one(&url, &token, &id, size).await?);
        }
        let mean = speeds.iter().sum::<f64>() / speeds.len() as f64;
        eprintln!("{name}: {mean:.1} MiB/s ({} MiB via {url})", size >> 20);
        rows.push(Row::rate(name, speeds.len() as u64, mean).bounded_by(Bound::VerifiedRead { bytes_per_op: MIB }));
    }
    Ok(rows)
}
