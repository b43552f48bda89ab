//! The report of a run: a table on the terminal, JSON, and a PNG timeline per scenario
//! (acknowledged uploads per half second in blue, fault windows shaded red; no text, so no fonts
//! are needed — the JSON and the table carry the numbers).

use std::path::Path;

use plotters::prelude::*;

use crate::chart::{per_bucket, Timeline};
use crate::history::{Kind, Outcome};
use crate::scenario::ScenarioReport;

pub fn print_table(reports: &[ScenarioReport]) {
    println!(
        "{:<28} {:>6} {:>6} {:>6} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "scenario",
        "ops",
        "acked",
        "failed",
        "indet",
        "lost",
        "viol",
        "gap ms",
        "fault gap",
        "fault p50",
        "fault p99",
        "calm gap",
        "calm p99",
        "terms"
    );
    for r in reports {
        println!(
            "{:<28} {:>6} {:>6} {:>6} {:>6} {:>5} {:>5} {:>8.0} {:>9.0} {:>9.0} {:>9.0} {:>8.0} {:>8.0} {:>6}",
            r.scenario,
            r.operations,
            r.acknowledged,
            r.failed,
            r.indeterminate,
            r.lost,
            r.violations,
            r.longest_write_gap_ms,
            r.fault.write_gap_ms,
            r.fault.upload_p50_ms,
            r.fault.upload_p99_ms,
            r.calm.write_gap_ms,
            r.calm.upload_p99_ms,
            r.term_changes
        );
    }
}

/// Every scenario's availability promise ([`crate::scenario::Scenario::bounds`]) that its run
/// broke, as readable lines.
pub fn broken_bounds(reports: &[ScenarioReport]) -> Vec<String> {
    let mut out = Vec::new();
    for r in reports {
        let Some(s) = crate::scenario::Scenario::parse(&r.scenario) else { continue };
        let (gap, p99) = s.bounds();
        if let Some(g) = gap.filter(|g| r.fault.write_gap_ms > *g) {
            out.push(format!(
                "{}: {:.0} ms without an acknowledged upload during the fault (bound {g:.0})",
                r.scenario, r.fault.write_gap_ms
            ));
        }
        if let Some(p) = p99.filter(|p| r.fault.upload_p99_ms > *p) {
            out.push(format!(
                "{}: upload p99 {:.0} ms during the fault (bound {p:.0})",
                r.scenario, r.fault.upload_p99_ms
            ));
        }
    }
    out
}

pub fn write_json(reports: &[ScenarioReport], path: &Path) -> std::io::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(reports).map_err(std::io::Error::other)?)
}

/// Throughput of acknowledged uploads over time with the fault windows; problems drawing are
/// reported on stderr and otherwise ignored (the report does not depend on the picture).
pub fn timeline_png(r: &ScenarioReport, path: &Path) {
    if let Err(e) = draw(r, path) {
        eprintln!("timeline {}: {e}", path.display());
    }
}

fn draw(r: &ScenarioReport, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    const BUCKET_MS: f64 = 500.0;
    let ops = r.history.ops();
    let end = ops.iter().map(|o| o.complete_ms).fold(1.0, f64::max);
    let acked = per_bucket(
        ops.iter().filter(|o| o.kind == Kind::Upload && o.outcome == Outcome::Ok).map(|o| o.complete_ms),
        BUCKET_MS,
        end,
    );
    let faults: Vec<(f64, f64)> =
        r.history.faults().iter().map(|f| (f.start_ms, f.end_ms.max(f.start_ms + 50.0))).collect();
    let root = BitMapBackend::new(path, (1000, 300)).into_drawing_area();
    root.fill(&WHITE)?;
    Timeline { values: &acked, bucket: BUCKET_MS, end, shaded: &faults, reference: None }.draw(&root)?;
    root.present()?;
    Ok(())
}
