//! The shared worker driver, the samples it keeps (every operation's latency and completion time,
//! for summaries and the PNG), and the result rows printed as a table or JSON with the machine's
//! limits.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;
use serde::Serialize;

use crate::limits::{Bound, Limits, Share};

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

    /// Every sample, shortest first.
    pub fn samples(&self) -> &[Duration] {
        &self.0
    }
}

/// What a timed run observed, operation by operation.
pub struct Samples {
    /// Latency of every successful operation.
    pub latencies: Latencies,
    /// When each successful operation completed, from the start of the run (empty when the
    /// workload does not time its operations against a clock, like in-process searches).
    pub completions: Vec<Duration>,
    /// Operations that failed (not in the latencies).
    pub errors: u64,
    /// From the start of the run until its last operation completed.
    pub elapsed: Duration,
}

impl Samples {
    /// Latencies alone, for workloads without a timeline.
    pub fn latencies_only(latencies: Latencies) -> Self {
        Samples { latencies, completions: Vec::new(), errors: 0, elapsed: Duration::ZERO }
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
    /// The row's rate as a share of the machine limit that bounds it (absent without one, or
    /// with `--no-limits`).
    pub limit: Option<Share>,
    /// What each operation cost the machine (workloads that measure it).
    pub usage: Option<crate::usage::Usage>,
    /// Which limit bounds this workload, set by the workload that made the row.
    #[serde(skip)]
    pub bound: Option<Bound>,
    /// The samples behind the row, when it was measured per operation (drawn by `--png`).
    #[serde(skip)]
    pub samples: Option<Samples>,
}

/// Runs `concurrency` workers that each call `op` until `duration` has passed; an operation
/// succeeded when `op` returns true.
pub async fn drive<F, Fut>(concurrency: usize, duration: Duration, op: F) -> anyhow::Result<Samples>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..concurrency).map(|w| {
        let op = op.clone();
        tokio::spawn(async move {
            let (mut lat, mut done, mut errors) = (Vec::new(), Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                if op(w).await {
                    let end = Instant::now();
                    lat.push(end - t);
                    done.push(end - started);
                } else {
                    errors += 1;
                }
            }
            (lat, done, errors)
        })
    });
    let (mut latencies, mut completions, mut errors) = (Vec::new(), Vec::new(), 0);
    for r in join_all(workers).await {
        let (lat, done, e) = r.context("worker panicked")?;
        latencies.extend(lat);
        completions.extend(done);
        errors += e;
    }
    Ok(Samples { latencies: Latencies::new(latencies), completions, errors, elapsed: started.elapsed() })
}

/// The row of a driven run: its rate over the run's wall time, with the samples kept.
pub fn row(workload: &str, concurrency: usize, samples: Samples) -> Row {
    let per_sec = samples.latencies.count() as f64 / samples.elapsed.as_secs_f64().max(1e-9);
    let mut r = Row::summary(workload, concurrency, &samples.latencies, samples.errors, per_sec);
    r.samples = Some(samples);
    r
}

impl Row {
    /// A row of latency percentiles with a rate the caller computed.
    pub fn summary(workload: &str, concurrency: usize, lat: &Latencies, errors: u64, ops_per_sec: f64) -> Self {
        Row {
            workload: workload.into(),
            concurrency,
            ops: lat.count(),
            errors,
            ops_per_sec,
            p50_ms: lat.percentile(50.0),
            p99_ms: lat.percentile(99.0),
            max_ms: lat.percentile(100.0),
            limit: None,
            usage: None,
            bound: None,
            samples: None,
        }
    }

    /// A row that reports a rate (MiB/s and the like) rather than latencies.
    pub fn rate(workload: &str, ops: u64, per_sec: f64) -> Self {
        Row { ops, ops_per_sec: per_sec, ..Row::summary(workload, 1, &Latencies::new(Vec::new()), 0, 0.0) }
    }

    /// The machine limit this workload's rate is to be compared with.
    pub fn bounded_by(self, bound: Bound) -> Self {
        Row { bound: Some(bound), ..self }
    }
}

/// What the run printed: the limits measured at its start, then one row per workload.
#[derive(Serialize)]
struct Report<'a> {
    limits: Option<&'a Limits>,
    rows: &'a [Row],
}

/// Sets every row's share of the limit that bounds it.
pub fn compare(rows: &mut [Row], limits: &Limits) {
    for r in rows {
        r.limit = r.bound.map(|b| limits.share(b, r.ops_per_sec));
    }
}

pub fn print(rows: &[Row], limits: Option<&Limits>, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&Report { limits, rows }).unwrap_or_default());
        return;
    }
    if let Some(l) = limits {
        l.print();
        println!();
    }
    println!(
        "{:<16} {:>5} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}  of limit",
        "workload", "conc", "ops", "errors", "ops/s", "p50 ms", "p99 ms", "max ms"
    );
    for r in rows {
        let share = match &r.limit {
            Some(s) => format!("{:.0} % of {}", 100.0 * s.fraction, s.limit),
            None => "–".into(),
        };
        println!(
            "{:<16} {:>5} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2}  {share}",
            r.workload, r.concurrency, r.ops, r.errors, r.ops_per_sec, r.p50_ms, r.p99_ms, r.max_ms
        );
    }
    for r in rows {
        if let Some(u) = &r.usage {
            println!("{} c={}: {u}", r.workload, r.concurrency);
        }
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

    #[tokio::test]
    async fn the_driver_keeps_a_completion_time_for_every_success() {
        let seq = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let s = drive(2, Duration::from_millis(50), move |_| {
            let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                !n.is_multiple_of(3)
            }
        })
        .await
        .unwrap();
        assert!(s.latencies.count() > 0 && s.errors > 0);
        assert_eq!(s.completions.len() as u64, s.latencies.count());
        assert!(s.completions.iter().all(|c| *c <= s.elapsed));
    }
}
