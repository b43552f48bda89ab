//! The report of a run: a table on the terminal, JSON, and a PNG timeline per scenario
//! (acknowledged uploads per half second in blue, fault windows shaded red; no text, so no fonts
//! are needed — the JSON and the table carry the numbers).

use std::path::Path;

use plotters::prelude::*;

use crate::history::{Kind, Outcome};
use crate::scenario::ScenarioReport;

pub fn print_table(reports: &[ScenarioReport]) {
    println!(
        "{:<28} {:>6} {:>6} {:>6} {:>6} {:>5} {:>5} {:>9} {:>9} {:>9}",
        "scenario", "ops", "acked", "failed", "indet", "lost", "viol", "gap ms", "put p99", "read p99"
    );
    for r in reports {
        println!(
            "{:<28} {:>6} {:>6} {:>6} {:>6} {:>5} {:>5} {:>9.0} {:>9.1} {:>9.1}",
            r.scenario,
            r.operations,
            r.acknowledged,
            r.failed,
            r.indeterminate,
            r.lost,
            r.violations,
            r.longest_write_gap_ms,
            r.upload_p99_ms,
            r.read_p99_ms
        );
    }
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
    let buckets = (end / BUCKET_MS).ceil() as usize + 1;
    let mut acked = vec![0u32; buckets];
    for o in ops.iter().filter(|o| o.kind == Kind::Upload && o.outcome == Outcome::Ok) {
        acked[(o.complete_ms / BUCKET_MS) as usize] += 1;
    }
    let top = acked.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let root = BitMapBackend::new(path, (1000, 300)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root).margin(10).build_cartesian_2d(0.0..end, 0.0..top)?;
    for f in r.history.faults() {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(f.start_ms, 0.0), (f.end_ms.max(f.start_ms + 50.0), top)],
            RED.mix(0.2).filled(),
        )))?;
    }
    for i in 1..10 {
        let y = top * i as f64 / 10.0;
        chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, y), (end, y)], BLACK.mix(0.08))))?;
    }
    chart.draw_series(AreaSeries::new(
        acked.iter().enumerate().map(|(i, n)| (i as f64 * BUCKET_MS, *n as f64)),
        0.0,
        BLUE.mix(0.3),
    ))?;
    chart.draw_series(LineSeries::new(
        acked.iter().enumerate().map(|(i, n)| (i as f64 * BUCKET_MS, *n as f64)),
        BLUE.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}
