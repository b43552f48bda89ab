//! The history of a run: every client operation with its invoke and complete times (ms since the
//! run started), the node it went to and its outcome, written as JSONL.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Upload,
    /// Linearizable metadata read on another node right after an acknowledged upload.
    ReadAfterWrite,
    Download,
    Search,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged.
    Ok,
    /// Definitely did not happen (refused before anything was committed).
    Fail,
    /// Unknown: it may or may not have taken effect (timeout, connection lost, 5xx).
    Indeterminate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    pub worker: usize,
    pub kind: Kind,
    pub node: u64,
    pub invoke_ms: f64,
    pub complete_ms: f64,
    pub outcome: Outcome,
    /// Upload name (unique per upload) and the file it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A promise this operation saw broken (checked online, e.g. a stale read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<String>,
}

/// A fault and when it was in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultWindow {
    pub what: String,
    pub start_ms: f64,
    pub end_ms: f64,
}

pub struct History {
    started: Instant,
    ops: Mutex<Vec<Op>>,
    faults: Mutex<Vec<FaultWindow>>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("ops", &self.ops().len()).finish()
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self { started: Instant::now(), ops: Mutex::default(), faults: Mutex::default() }
    }

    pub fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    pub fn record(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }

    pub fn fault(&self, what: impl Into<String>, start_ms: f64) {
        let end_ms = self.now_ms();
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).push(FaultWindow { what: what.into(), start_ms, end_ms });
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn faults(&self) -> Vec<FaultWindow> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One JSON object per line: every operation, then every fault window.
    pub fn write_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for op in self.ops() {
            writeln!(out, "{}", serde_json::to_string(&op).map_err(std::io::Error::other)?)?;
        }
        for f in self.faults() {
            let v = serde_json::json!({"fault": f.what, "start_ms": f.start_ms, "end_ms": f.end_ms});
            writeln!(out, "{v}")?;
        }
        out.flush()
    }
}
