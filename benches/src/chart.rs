//! `--png`: one band per result row that was measured per operation, top to bottom in the order
//! of the table. On the left, the latency histogram: log-scaled buckets, ten per decade from
//! 10 µs to 10 s, faint vertical lines at each decade and a darker one at 1 ms, the p50 in green
//! and the p99 in red. On the right, throughput over time: successful operations per second in
//! each half second of the run, with the row's mean rate as a black line.
//!
//! No text is drawn, so no fonts are needed; the table and JSON carry the numbers. Rows that only
//! report a rate (large transfers) have no band.

use std::path::Path;
use std::time::Duration;

use artstore_chaos::chart::{per_bucket, Timeline};
use plotters::prelude::*;

use crate::report::{Row, Samples};

/// Histogram buckets per decade of latency.
const PER_DECADE: usize = 10;
/// Decades from the first bucket's lower edge, 10 µs, to the last one's upper edge, 10 s.
const DECADES: usize = 6;
const BUCKETS: usize = PER_DECADE * DECADES;
const FLOOR_NS: f64 = 10_000.0;
/// The throughput timeline's bucket.
const STEP: Duration = Duration::from_millis(500);
const WIDTH: u32 = 1200;
const BAND: u32 = 140;

/// Lower edges of the histogram buckets in nanoseconds, and the upper edge of the last one.
fn edges() -> Vec<u128> {
    (0..=BUCKETS).map(|i| (FLOOR_NS * 10f64.powf(i as f64 / PER_DECADE as f64)).round() as u128).collect()
}

/// Operations per latency bucket; anything under 10 µs counts in the first bucket, anything
/// from 10 s up in the last.
pub fn histogram(latencies: &[Duration]) -> Vec<u64> {
    let edges = edges();
    let mut counts = vec![0u64; BUCKETS];
    for d in latencies {
        let i = edges.partition_point(|e| *e <= d.as_nanos()).saturating_sub(1);
        counts[i.min(BUCKETS - 1)] += 1;
    }
    counts
}

/// Where a latency sits on the histogram's x axis (in buckets from 10 µs), clamped to the axis.
fn position(ms: f64) -> f64 {
    ((ms * 1e6 / FLOOR_NS).max(1.0).log10() * PER_DECADE as f64).min(BUCKETS as f64)
}

/// Successful operations per second in each whole `STEP` of the run. The remainder after the
/// last whole step (workers finishing their last operations) joins that step, so that a few
/// stragglers over a sliver of time do not draw a spike.
pub fn throughput(completions: &[Duration], elapsed: Duration) -> Vec<f64> {
    let (step, end) = (STEP.as_secs_f64(), elapsed.as_secs_f64());
    let whole = ((end / step).floor() as usize).max(1);
    let mut counts = per_bucket(completions.iter().map(Duration::as_secs_f64), step, end);
    let spill: f64 = counts.drain(whole.min(counts.len())..).sum();
    if let Some(last) = counts.last_mut() {
        *last += spill;
    }
    let n = counts.len();
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| c / if i + 1 == n { end - i as f64 * step } else { step }.max(1e-3))
        .collect()
}

/// Draws every row with samples; returns how many were drawn (nothing is written when none).
pub fn write_png(rows: &[Row], path: &Path) -> anyhow::Result<usize> {
    let drawn: Vec<(&Row, &Samples)> = rows.iter().filter_map(|r| Some((r, r.samples.as_ref()?))).collect();
    if drawn.is_empty() {
        return Ok(0);
    }
    let root = BitMapBackend::new(path, (WIDTH, BAND * drawn.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    for (band, (row, samples)) in root.split_evenly((drawn.len(), 1)).iter().zip(&drawn) {
        band.draw(&PathElement::new(vec![(0, 0), (WIDTH as i32, 0)], BLACK.mix(0.3))).map_err(draw_err)?;
        let (left, right) = band.split_horizontally(WIDTH * 2 / 5);
        draw_histogram(&left, row, samples).map_err(draw_err)?;
        if !samples.completions.is_empty() {
            let values = throughput(&samples.completions, samples.elapsed);
            let end = samples.elapsed.as_secs_f64();
            Timeline {
                values: &values,
                bucket: STEP.as_secs_f64(),
                end,
                shaded: &[],
                reference: Some(row.ops_per_sec),
            }
            .draw(&right)
            .map_err(draw_err)?;
        }
    }
    root.present().map_err(draw_err)?;
    Ok(drawn.len())
}

fn draw_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the PNG: {e}")
}

fn draw_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    row: &Row,
    samples: &Samples,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let counts = histogram(samples.latencies.samples());
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area).margin(10).build_cartesian_2d(0.0..BUCKETS as f64, 0.0..top)?;
    for decade in 0..=DECADES {
        let x = (decade * PER_DECADE) as f64;
        // 1 ms is two decades above 10 µs.
        let shade = if decade == 2 { BLACK.mix(0.45) } else { BLACK.mix(0.12) };
        chart.draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, top)], shade)))?;
    }
    chart.draw_series(
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, *n as f64)], BLUE.mix(0.6).filled())),
    )?;
    for (ms, colour) in [(row.p50_ms, GREEN), (row.p99_ms, RED)] {
        let x = position(ms);
        chart.draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, top)], colour.stroke_width(2))))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_log_buckets_with_decades_on_edges() {
        let us = Duration::from_micros;
        let h = histogram(&[
            us(1),
            us(10),
            us(12),
            Duration::from_millis(1),
            us(999),
            Duration::from_secs(10),
            Duration::from_secs(99),
        ]);
        assert_eq!(h.len(), 60);
        assert_eq!(h[0], 3, "below 10 µs and 10-12.6 µs share the first bucket");
        assert_eq!(h[20], 1, "1 ms starts the third decade");
        assert_eq!(h[19], 1, "999 µs is just under it");
        assert_eq!(h[59], 2, "10 s and beyond in the last bucket");
        assert_eq!(h.iter().sum::<u64>(), 7);
    }

    #[test]
    fn percentile_markers_sit_where_their_bucket_is() {
        assert_eq!(position(1.0), 20.0);
        assert_eq!(position(0.001), 0.0);
        assert_eq!(position(1e9), 60.0);
    }

    #[test]
    fn throughput_is_per_second_and_a_short_remainder_joins_the_last_step() {
        let ms = Duration::from_millis;
        // 1.25 s: a step of 0.5 s, then 0.5 + 0.25 s.
        let done = [ms(100), ms(200), ms(600), ms(1100), ms(1250)];
        assert_eq!(throughput(&done, ms(1250)), vec![4.0, 4.0]);
        assert_eq!(throughput(&[ms(1000)], ms(1000)), vec![0.0, 2.0]);
        assert_eq!(throughput(&[ms(100)], ms(250)), vec![4.0]);
        assert_eq!(throughput(&[], Duration::ZERO), vec![0.0]);
    }
}
