//! Text-free charts shared by the chaos report and the benchmark load generator: a rate over time
//! drawn as a filled line. No text is drawn, so no font features (and no system font libraries)
//! are needed; the table and JSON beside each picture carry the numbers.

use plotters::coord::Shift;
use plotters::prelude::*;

/// How many of `times` fall in each bucket of width `bucket` from 0, up to the bucket holding
/// `end`; times outside `0..=end` count in the first or last bucket.
pub fn per_bucket(times: impl IntoIterator<Item = f64>, bucket: f64, end: f64) -> Vec<f64> {
    let n = (end / bucket).ceil().max(0.0) as usize + 1;
    let mut counts = vec![0.0; n];
    for t in times {
        counts[((t / bucket).max(0.0) as usize).min(n - 1)] += 1.0;
    }
    counts
}

/// A value per time bucket, drawn blue and filled, over faint lines at each tenth of the height.
pub struct Timeline<'a> {
    /// One value per bucket; bucket `i` is drawn from `i * bucket`, the last one on to `end`.
    pub values: &'a [f64],
    /// Width of a bucket, in the unit of the x axis.
    pub bucket: f64,
    /// Right end of the x axis.
    pub end: f64,
    /// x windows shaded red behind the series (fault windows).
    pub shaded: &'a [(f64, f64)],
    /// A level drawn as a thin black line across (a mean, a target).
    pub reference: Option<f64>,
}

impl Timeline<'_> {
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let highest = self.values.iter().copied().chain(self.reference).fold(1.0, f64::max);
        let (end, top) = (self.end.max(1e-9), highest * 1.1);
        let mut chart = ChartBuilder::on(area).margin(10).build_cartesian_2d(0.0..end, 0.0..top)?;
        for (start, stop) in self.shaded {
            chart.draw_series(std::iter::once(Rectangle::new([(*start, 0.0), (*stop, top)], RED.mix(0.2).filled())))?;
        }
        for i in 1..10 {
            let y = top * i as f64 / 10.0;
            chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, y), (end, y)], BLACK.mix(0.08))))?;
        }
        // The last bucket reaches the end of the axis (it may be shorter or longer than the others).
        let last = self.values.last().map(|v| (end, *v));
        let points = || self.values.iter().enumerate().map(|(i, v)| (i as f64 * self.bucket, *v)).chain(last);
        chart.draw_series(AreaSeries::new(points(), 0.0, BLUE.mix(0.3)))?;
        chart.draw_series(LineSeries::new(points(), BLUE.stroke_width(2)))?;
        if let Some(level) = self.reference {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, level), (end, level)],
                BLACK.stroke_width(1),
            )))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fall_in_their_bucket_and_the_end_has_one() {
        let counts = per_bucket([0.0, 499.0, 500.0, 1000.0, -3.0, 5000.0], 500.0, 1000.0);
        assert_eq!(counts, vec![3.0, 1.0, 2.0]);
    }
}
