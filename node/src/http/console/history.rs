//! The dashboard's charts: a worker samples this node's request counters and the cluster's
//! capacity every few seconds into a short ring, so a chart has the last minutes to show the
//! moment the page opens. Memory is fixed: [`KEEP`] samples of a few numbers each.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artstore_actors::worker::{Next, Stop, Worker};
use serde::Serialize;

use crate::http::AppState;

/// How often a sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples kept: ten minutes.
pub const KEEP: usize = 120;

/// Counters at one instant (totals; the chart takes differences).
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    pub uploads: f64,
    pub downloads: f64,
    pub errors: f64,
    pub used_bytes: u64,
    pub capacity_bytes: u64,
}

/// The answer of `/console/live.json`.
#[derive(Serialize)]
pub struct Samples {
    pub interval_ms: u64,
    pub samples: Vec<Sample>,
}

impl Sample {
    /// This node's counters from its own metrics, and the catalog's capacity of every element.
    fn take(s: &AppState) -> Self {
        let text = s.metrics.render();
        let uploads = sum_metric(&text, "artstore_ingest_files_total", |_| true);
        let downloads = sum_metric(&text, "artstore_http_requests_total", |labels| {
            label(labels, "route").is_some_and(|r| r.ends_with("/content"))
                && label(labels, "status").is_some_and(|s| s == "200" || s == "206")
        });
        let errors = sum_metric(&text, "artstore_http_requests_total", |labels| {
            label(labels, "status").and_then(|s| s.parse::<u16>().ok()).is_some_and(|s| s >= 400)
        });
        let (used_bytes, capacity_bytes) = s
            .storage
            .elements()
            .map(|es| es.iter().fold((0, 0), |(u, c), e| (u + e.used_bytes, c + e.capacity_bytes)))
            .unwrap_or((0, 0));
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Sample { at_ms, uploads, downloads, errors, used_bytes, capacity_bytes }
    }
}

/// The ring of recent samples, shared by the sampler and the console.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    fn push(&self, sample: Sample) {
        if let Ok(mut s) = self.samples.lock() {
            if s.len() == KEEP {
                s.pop_front();
            }
            s.push_back(sample);
        }
    }
}

/// The worker that fills [`History`].
pub struct Sampler {
    pub history: Arc<History>,
    pub state: AppState,
}

impl Worker for Sampler {
    fn name(&self) -> &'static str {
        "console-history"
    }

    async fn step(&mut self, _stop: &Stop) -> Result<Next, String> {
        self.history.push(Sample::take(&self.state));
        Ok(Next::After(SAMPLE_EVERY))
    }
}

/// The sum of every series of counter `name` in Prometheus text whose labels pass `keep`.
fn sum_metric(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            keep(labels).then(|| value.trim().parse::<f64>().ok()).flatten()
        })
        // A float sum of nothing is -0.0; a counter never seen is 0.
        .fold(0.0, |a, b| a + b)
}

/// The value of label `key` in `a="x",key="y"`.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split("\",").find_map(|pair| {
        let (k, v) = pair.split_once("=\"")?;
        (k.trim_start_matches(',') == key).then(|| v.trim_end_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_by_label() {
        let text = "# TYPE artstore_http_requests_total counter\n\
            artstore_http_requests_total{method=\"GET\",route=\"/api/v1/files/{id}/content\",status=\"200\"} 3\n\
            artstore_http_requests_total{method=\"GET\",route=\"/api/v1/files/{id}/content\",status=\"206\"} 2\n\
            artstore_http_requests_total{method=\"GET\",route=\"/api/v1/search\",status=\"400\"} 5\n\
            artstore_http_requests_total_other 9\n\
            artstore_ingest_files_total 7\n";
        let downloads = sum_metric(text, "artstore_http_requests_total", |l| {
            label(l, "route").is_some_and(|r| r.ends_with("/content"))
        });
        assert_eq!(downloads, 5.0);
        let errors = sum_metric(text, "artstore_http_requests_total", |l| label(l, "status") == Some("400"));
        assert_eq!(errors, 5.0);
        assert_eq!(sum_metric(text, "artstore_ingest_files_total", |_| true), 7.0);
    }

    #[test]
    fn the_ring_keeps_the_newest() {
        let h = History::default();
        for i in 0..(KEEP as u64 + 5) {
            h.push(Sample { at_ms: i, uploads: 0.0, downloads: 0.0, errors: 0.0, used_bytes: 0, capacity_bytes: 0 });
        }
        let s = h.samples();
        assert_eq!(s.len(), KEEP);
        assert_eq!(s[0].at_ms, 5);
    }
}
