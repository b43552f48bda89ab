//! Latency summaries and the result table / JSON.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;

use serde::Serialize;

/// Sorted latency samples.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self(samples)
    }

    pub fn count(&self) -> u64 {
        self.0.len() as u64
    }

    /// The `p`th percentile in milliseconds (nearest rank); 0 when there are no samples.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1].as_secs_f64() * 1000.0
    }
}

#[derive(Serialize)]
pub struct Row {
    pub workload: String,
    pub concurrency: usize,
    pub ops: u64,
    pub errors: u64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs `concurrency` workers that each call `op` until `duration` has passed.
pub async fn drive<F, Fut>(concurrency: usize, duration: Duration, op: F) -> anyhow::Result<(Latencies, u64, Duration)>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers = (0..concurrency).map(|w| {
        let op = op.clone();
        tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                if op(w).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        })
    });
    let (mut all, mut errors) = (Vec::new(), 0);
    for r in join_all(workers).await {
        let (lat, e) = r.context("worker panicked")?;
        all.extend(lat);
        errors += e;
    }
    Ok((Latencies::new(all), errors, started.elapsed()))
}

pub fn row(workload: &str, concurrency: usize, (lat, errors, elapsed): (Latencies, u64, Duration)) -> Row {
    Row {
        workload: workload.into(),
        concurrency,
        ops: lat.count(),
        errors,
        ops_per_sec: lat.count() as f64 / elapsed.as_secs_f64(),
        p50_ms: lat.percentile(50.0),
        p99_ms: lat.percentile(99.0),
        max_ms: lat.percentile(100.0),
    }
}

impl Row {
    /// A row that reports a rate (MiB/s and the like) rather than latencies.
    pub fn rate(workload: &str, ops: u64, per_sec: f64) -> Self {
        Row {
            workload: workload.into(),
            concurrency: 1,
            ops,
            errors: 0,
            ops_per_sec: per_sec,
            p50_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
        }
    }
}

pub fn print(rows: &[Row], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
        return;
    }
    println!(
        "{:<12} {:>6} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "workload", "conc", "ops", "errors", "ops/s", "p50 ms", "p99 ms", "max ms"
    );
    for r in rows {
        println!(
            "{:<12} {:>6} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2}",
            r.workload, r.concurrency, r.ops, r.errors, r.ops_per_sec, r.p50_ms, r.p99_ms, r.max_ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.percentile(50.0), 50.0);
        assert_eq!(l.percentile(99.0), 99.0);
        assert_eq!(l.percentile(100.0), 100.0);
        assert_eq!(Latencies::new(vec![]).percentile(99.0), 0.0);
    }
}
