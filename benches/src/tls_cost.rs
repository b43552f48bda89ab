//! `tls-cost`: what HTTPS costs on the API path. A plain-HTTP and an HTTPS 3-node cluster run side
//! by side; every round runs the same workloads on both, in alternating order (so that warm-up and
//! drift favour neither), and each row is the median over the rounds of one scheme, followed by
//! the HTTPS ÷ HTTP ratio of its rate and p99.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::report::Row;
use crate::{auth, files, spawn};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// Per (workload, scheme): every round's row.
type Measured = BTreeMap<(String, &'static str), Vec<Row>>;

async fn one_round(urls: &[String], creds: &(String, String), seconds: u64, size: u64) -> anyhow::Result<Vec<Row>> {
    let d = Duration::from_secs(seconds);
    let mut rows = vec![
        files::put("put-small c=1", urls, creds, 4096, 1, d, &[]).await?,
        files::put("put-small c=32", urls, creds, 4096, 32, d, &[]).await?,
    ];
    rows.extend(files::get_large(urls, creds, size, 1, true).await?);
    // `overhead` alternates an unauthenticated and a bearer-token request internally.
    rows.extend(auth::overhead(urls, creds, 16, d * 2).await?);
    Ok(rows)
}

pub async fn run(bin: Option<PathBuf>, seconds: u64, size: u64, rounds: usize) -> anyhow::Result<Vec<Row>> {
    let plain = spawn(bin.clone(), 3, None, false).await?;
    let tls = spawn(bin, 3, None, true).await?;
    let clusters = [("http", &plain), ("https", &tls)];
    let mut measured = Measured::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (scheme, c) = clusters[i];
            let urls: Vec<String> = c.node_ids().into_iter().map(|n| c.url(n)).collect();
            eprintln!("round {}: {scheme}", round + 1);
            for r in one_round(&urls, &c.admin_credentials(), seconds, size).await? {
                measured.entry((r.workload.clone(), scheme)).or_default().push(r);
            }
        }
    }
    let mut out = Vec::new();
    let mut table = String::from("\nHTTPS ÷ HTTP (medians of the rounds):\n");
    let workloads: Vec<String> =
        measured.keys().map(|(w, _)| w.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for w in workloads {
        let mut per_scheme = Vec::new();
        for scheme in ["http", "https"] {
            let rows = measured.remove(&(w.clone(), scheme)).unwrap_or_default();
            let rate = median(rows.iter().map(|r| r.ops_per_sec).collect());
            let p50 = median(rows.iter().map(|r| r.p50_ms).collect());
            let p99 = median(rows.iter().map(|r| r.p99_ms).collect());
            let errors = rows.iter().map(|r| r.errors).sum();
            let concurrency = rows.first().map(|r| r.concurrency).unwrap_or(1);
            let ops = rows.iter().map(|r| r.ops).sum();
            let mut row = Row::rate(&format!("{w} {scheme}"), ops, rate);
            (row.p50_ms, row.p99_ms, row.errors, row.concurrency) = (p50, p99, errors, concurrency);
            per_scheme.push((rate, p99));
            out.push(row);
        }
        let (http, https) = (per_scheme[0], per_scheme[1]);
        let ratio = |a: f64, b: f64| if a > 0.0 { b / a } else { 0.0 };
        table.push_str(&format!(
            "  {w:<20} rate {:>10.1} → {:>10.1}  ({:.3}×)   p99 {:>8.2} → {:>8.2} ms  ({:.3}×)\n",
            http.0,
            https.0,
            ratio(http.0, https.0),
            http.1,
            https.1,
            ratio(http.1, https.1)
        ));
    }
    eprintln!("{table}");
    Ok(out)
}
