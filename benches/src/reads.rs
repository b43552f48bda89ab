//! Read-side and mixed workloads against a cluster: `get-small` (whole 4 KiB files), `get-range`
//! (64 KiB ranges of one large file), `search` (queries over files with words in their
//! descriptions) and `mixed` (uploads, downloads and searches in a given ratio). Each first
//! uploads the files it needs, then runs `concurrency` workers for the given time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::files::pseudo_random;
use crate::limits::Bound;
use crate::report::{drive, row, Row};

/// Bytes of one `get-range` read.
const RANGE: u64 = 64 * 1024;

const WORDS: &[&str] = &["annual", "report", "invoice", "contract", "договор", "отчёт", "scan", "letter", "budget"];

/// One operation a worker can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Range,
    Search,
}

struct Setup {
    http: reqwest::Client,
    token: String,
    urls: Vec<String>,
    ids: Vec<String>,
    large: Option<(String, u64)>,
}

async fn upload(s: &Setup, name: &str, body: Vec<u8>, description: &str) -> anyhow::Result<String> {
    let r = s
        .http
        .post(format!("{}/api/v1/files", s.urls[0]))
        .query(&[("name", name), ("description", description)])
        .bearer_auth(&s.token)
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "upload failed: {}", r.status());
    let v: serde_json::Value = r.json().await?;
    Ok(v["id"].as_str().unwrap_or_default().to_string())
}

async fn prepare(urls: &[String], token: String, files: usize, large_mib: u64) -> anyhow::Result<Setup> {
    let mut s = Setup { http: crate::net::http(), token, urls: urls.to_vec(), ids: Vec::new(), large: None };
    for i in 0..files {
        let words = format!("{} {}", WORDS[i % WORDS.len()], WORDS[(i * 7 + 3) % WORDS.len()]);
        let id = upload(&s, &format!("bench-read-{i}.bin"), pseudo_random(4096, i as u64 + 1), &words).await?;
        s.ids.push(id);
    }
    if large_mib > 0 {
        let size = large_mib << 20;
        let id = upload(&s, "bench-range.bin", pseudo_random(size as usize, 99), "large").await?;
        s.large = Some((id, size));
    }
    Ok(s)
}

async fn one(s: &Setup, op: Op, w: usize, n: u64) -> bool {
    let url = &s.urls[(w + n as usize) % s.urls.len()];
    let pick = ((w as u64).wrapping_mul(7919) + n * 104_729) as usize;
    let r = match op {
        Op::Put => {
            s.http
                .post(format!("{url}/api/v1/files?name=bench-mixed-{w}-{n}.bin"))
                .bearer_auth(&s.token)
                .body(pseudo_random(4096, (w as u64) << 32 | n))
                .send()
                .await
        }
        Op::Get => {
            let id = &s.ids[pick % s.ids.len()];
            s.http.get(format!("{url}/api/v1/files/{id}/content")).bearer_auth(&s.token).send().await
        }
        Op::Range => {
            let Some((id, size)) = &s.large else { return false };
            let start = (pick as u64 * RANGE) % size.saturating_sub(RANGE).max(1);
            s.http
                .get(format!("{url}/api/v1/files/{id}/content"))
                .header("Range", format!("bytes={start}-{}", start + RANGE - 1))
                .bearer_auth(&s.token)
                .send()
                .await
        }
        Op::Search => {
            let q = WORDS[pick % WORDS.len()];
            s.http.get(format!("{url}/api/v1/search")).query(&[("q", q)]).bearer_auth(&s.token).send().await
        }
    };
    match r {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// Uploads what the mix needs, then runs `concurrency` workers for `duration`, each picking its
/// next operation by the weights in `mix`.
pub async fn run(
    name: &str,
    urls: &[String],
    token: String,
    mix: &[(Op, u32)],
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let needs = |op| mix.iter().any(|(o, w)| *o == op && *w > 0);
    let files = if needs(Op::Get) || needs(Op::Search) { 500 } else { 0 };
    let large = if needs(Op::Range) { 64 } else { 0 };
    let setup = Arc::new(prepare(urls, token, files, large).await?);
    // Range reads alone are bound by reading and re-hashing; mixes have no single limit.
    let bound = mix
        .iter()
        .all(|(o, w)| *o == Op::Range || *w == 0)
        .then_some(Bound::VerifiedRead { bytes_per_op: RANGE as f64 });
    let total: u32 = mix.iter().map(|(_, w)| w).sum::<u32>().max(1);
    let mix = Arc::new(mix.to_vec());
    let seq = Arc::new(AtomicU64::new(0));
    let result = drive(concurrency, duration, move |w| {
        let (setup, mix) = (setup.clone(), mix.clone());
        let n = seq.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut roll = ((w as u64 * 31 + n * 17) % total as u64) as u32;
            let mut op = Op::Get;
            for (o, weight) in mix.iter() {
                if roll < *weight {
                    op = *o;
                    break;
                }
                roll -= weight;
            }
            one(&setup, op, w, n).await
        }
    })
    .await?;
    Ok(Row { bound, ..row(name, concurrency, result) })
}

/// `put:get:search` weights, e.g. `60:30:10`.
pub fn parse_mix(s: &str) -> anyhow::Result<Vec<(Op, u32)>> {
    let parts: Vec<u32> = s.split(':').map(|p| p.trim().parse::<u32>()).collect::<Result<_, _>>()?;
    anyhow::ensure!(parts.len() == 3 && parts.iter().sum::<u32>() > 0, "--mix: expected put:get:search, e.g. 60:30:10");
    Ok(vec![(Op::Put, parts[0]), (Op::Get, parts[1]), (Op::Search, parts[2])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_refuses_nonsense() {
        assert_eq!(parse_mix("60:30:10").unwrap(), vec![(Op::Put, 60), (Op::Get, 30), (Op::Search, 10)]);
        assert!(parse_mix("1:2").is_err());
        assert!(parse_mix("0:0:0").is_err());
        assert!(parse_mix("a:b:c").is_err());
    }
}
