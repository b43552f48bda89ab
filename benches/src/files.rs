//! File workloads: many small uploads, and large streamed uploads measured against the disk's
//! own fdatasync write bandwidth; peak RSS of the nodes afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::report::{Latencies, Row};

/// A body of `len` pseudo-random bytes produced piece by piece (never held whole), different
/// for every `seed` so that content-addressed chunks do not deduplicate.
fn body(len: u64, seed: u64) -> reqwest::Body {
    const PIECE: u64 = 1 << 20;
    let stream = futures::stream::unfold(
        (0u64, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        move |(sent, mut x)| async move {
            if sent >= len {
                return None;
            }
            let n = PIECE.min(len - sent) as usize;
            let mut buf = Vec::with_capacity(n + 8);
            while buf.len() < n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.extend_from_slice(&x.to_le_bytes());
            }
            buf.truncate(n);
            Some((Ok::<_, std::io::Error>(buf), (sent + n as u64, x)))
        },
    );
    reqwest::Body::wrap_stream(stream)
}

async fn token(url: &str, (id, secret): &(String, String)) -> anyhow::Result<String> {
    Ok(artstore_client::Client::new([url.to_string()])?.with_credentials(id.clone(), secret.clone()).token().await?)
}

/// `concurrency` workers uploading `size`-byte files for `duration`, spread over the nodes.
pub async fn put(
    workload: &str,
    urls: &[String],
    creds: &(String, String),
    size: u64,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let token = token(&urls[0], creds).await?;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers = (0..concurrency).map(|w| {
        let (http, url, token) = (http.clone(), urls[w % urls.len()].clone(), token.clone());
        tokio::spawn(async move {
            let (mut lat, mut errors, mut n) = (Vec::new(), 0u64, 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = http
                    .post(format!("{url}/api/v1/files?name=bench-{w}-{n}.bin"))
                    .bearer_auth(&token)
                    .body(body(size, (w as u64) << 32 | n))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
                n += 1;
            }
            (lat, errors)
        })
    });
    let (mut all, mut errors) = (Vec::new(), 0);
    for r in futures::future::join_all(workers).await {
        let (l, e) = r?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let lat = Latencies::new(all);
    let ops = lat.count();
    eprintln!("{workload}: {:.1} MiB/s of file data", ops as f64 * size as f64 / elapsed.as_secs_f64() / 1048576.0);
    Ok(Row {
        workload: workload.into(),
        concurrency,
        ops,
        errors,
        ops_per_sec: ops as f64 / elapsed.as_secs_f64(),
        p50_ms: lat.percentile(50.0),
        p99_ms: lat.percentile(99.0),
        max_ms: lat.percentile(100.0),
    })
}

/// Sequential write bandwidth with fdatasync on the disk holding `dir`, in MiB/s (the machine's
/// own limit that replicated uploads are compared against).
pub fn disk_write_mib_s(dir: &Path, mib: usize) -> anyhow::Result<f64> {
    use std::io::Write;
    let path = dir.join(".artstore-bench-dd");
    let block = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    for _ in 0..mib {
        f.write_all(&block)?;
    }
    f.sync_data()?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    Ok(mib as f64 / secs)
}

/// Peak resident set size (VmHWM) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Streams one file of `size` bytes and returns the MiB/s achieved.
pub async fn one_large(url: &str, creds: &(String, String), size: u64) -> anyhow::Result<f64> {
    let token = token(url, creds).await?;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v1/files?name=large.bin"))
        .bearer_auth(&token)
        .body(body(size, 42))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "upload failed: {}", r.text().await.unwrap_or_default());
    Ok(size as f64 / 1048576.0 / started.elapsed().as_secs_f64())
}
