//! The growth chart: peak heap against input size on log-log axes, one colour per role, with the fitted exponent
//! in the legend.
//!
//! On log-log axes a power law is a straight line whose slope is its exponent: a role whose peak does not depend on
//! the size lies flat (slope 0), one that holds the whole input rises at slope 1 (seed C's merged fix still
//! collected every event of a log of hundreds of MB). The dashed line is the least-squares fit the growth verdicts
//! judge.

use super::style::{
    Chart, LegendEntry, LegendMark, draw_side_legend, mebibytes, plot_error, split_for_side_legend,
    titled_chart, with_axis_text,
};
use crate::judge::growth_fit::{PowerLawFit, fit_power_law};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One role's points: (size, peak heap bytes) of its cases that ended ok.
pub struct GrowthSeries {
    pub role: String,
    pub colour: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// A growth chart of one scenario's sweep.
pub struct GrowthChart {
    pub title: String,
    /// What the size counts and in which unit, e.g. `log_bytes` / `bytes`.
    pub size_name: String,
    pub size_unit: String,
    pub series: Vec<GrowthSeries>,
}

impl GrowthSeries {
    /// The fit the growth verdicts use, or `None` below three sizes.
    pub fn fit(&self) -> Option<PowerLawFit> {
        fit_power_law(&self.points)
    }
}

impl GrowthChart {
    /// Sizes in bytes are drawn in MiB; other units as they are.
    fn x_value(&self, size: f64) -> f64 {
        if self.size_unit == "bytes" {
            mebibytes(size)
        } else {
            size
        }
    }

    fn x_description(&self) -> String {
        let unit = if self.size_unit == "bytes" {
            "MiB"
        } else {
            &self.size_unit
        };
        if unit == self.size_name {
            // `messages` counted in `messages`: the word once.
            format!("{unit} (log scale)")
        } else {
            format!("{} ({unit}, log scale)", self.size_name)
        }
    }
}

fn padded_log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(low, high), v| {
            (low.min(v), high.max(v))
        });
    if !low.is_finite() {
        return 0.1..10.0;
    }
    let (low, high) = if high / low < 4.0 {
        let middle = (low * high).sqrt();
        (middle / 2.5, middle * 2.5)
    } else {
        (low, high)
    };
    low / 1.4..high * 1.4
}

impl Chart for GrowthChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let x_range = padded_log_range(
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|(size, _)| self.x_value(*size))),
        );
        let y_range = padded_log_range(
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|(_, bytes)| mebibytes(*bytes))),
        );
        // Ticks at the sweep's own sizes, and at 1-2-5 steps of MiB: a log axis's default ticks are the powers of
        // ten, of which a sweep over 16..64 MiB has none.
        let mut x_ticks: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|(size, _)| self.x_value(*size)))
            .filter(|x| *x > 0.0)
            .collect();
        x_ticks.sort_by(f64::total_cmp);
        x_ticks.dedup();
        let y_ticks = log_ticks(&y_range);
        let (plot_area, legend_area) = split_for_side_legend(root);
        let mut legend = Vec::new();
        let mut chart = titled_chart(&plot_area, &self.title, 80)
            .build_cartesian_2d(
                x_range.clone().log_scale().with_key_points(x_ticks),
                y_range.log_scale().with_key_points(y_ticks),
            )
            .map_err(plot_error)?;
        with_axis_text(
            chart
                .configure_mesh()
                .x_desc(self.x_description())
                .y_desc("peak heap (MiB, log scale)"),
        )
        .x_label_formatter(&|v| format_axis_number(*v))
        .y_label_formatter(&|v| format_axis_number(*v))
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.1))
        .draw()
        .map_err(plot_error)?;
        for series in &self.series {
            let colour = series.colour;
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter(|(size, bytes)| *size > 0.0 && *bytes > 0.0)
                .map(|(size, bytes)| (self.x_value(*size), mebibytes(*bytes)))
                .collect();
            let legend_text = match series.fit() {
                Some(fit) => format!(
                    "{}: exponent {:.3}, R² {:.3}",
                    series.role, fit.exponent, fit.r_squared
                ),
                None => format!("{}: no fit ({} sizes)", series.role, points.len()),
            };
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|point| Circle::new(*point, 6, colour.filled())),
                )
                .map_err(plot_error)?;
            legend.push(LegendEntry {
                label: legend_text,
                colour: colour.mix(1.0),
                mark: LegendMark::Dot,
            });
            if let Some(fit) = series.fit() {
                let sizes: Vec<f64> = series.points.iter().map(|(size, _)| *size).collect();
                let low = sizes.iter().copied().fold(f64::INFINITY, f64::min);
                let high = sizes.iter().copied().fold(0.0, f64::max);
                let steps = 24;
                let fitted = (0..=steps).map(|step| {
                    let size = low * (high / low).powf(step as f64 / steps as f64);
                    (self.x_value(size), mebibytes(fit.predict(size)))
                });
                chart
                    .draw_series(DashedLineSeries::new(
                        fitted.collect::<Vec<_>>(),
                        8,
                        5,
                        colour.stroke_width(2),
                    ))
                    .map_err(plot_error)?;
            }
        }
        draw_side_legend(&legend_area, &legend)?;
        Ok(())
    }
}

/// Tick values at 1-2-5 steps (or finer, when the range is short) within `range`.
fn log_ticks(range: &std::ops::Range<f64>) -> Vec<f64> {
    let ticks_with = |mantissas: &[f64]| -> Vec<f64> {
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(range.start.log10().floor());
        while decade <= range.end {
            for mantissa in mantissas {
                let tick = decade * mantissa;
                if tick >= range.start && tick <= range.end {
                    ticks.push(tick);
                }
            }
            decade *= 10.0;
        }
        ticks
    };
    let coarse = ticks_with(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 4 {
        coarse
    } else {
        ticks_with(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0])
    }
}

/// Axis numbers without noise: `0.5`, `2`, `1000`.
fn format_axis_number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}").trim_end_matches(".0").to_string()
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(size_name: &str, size_unit: &str) -> GrowthChart {
        GrowthChart {
            title: String::new(),
            size_name: size_name.into(),
            size_unit: size_unit.into(),
            series: Vec::new(),
        }
    }

    #[test]
    fn the_axis_names_the_size_and_its_unit_once_each() {
        assert_eq!(
            chart("messages", "messages").x_description(),
            "messages (log scale)"
        );
        assert_eq!(
            chart("concurrency", "inits").x_description(),
            "concurrency (inits, log scale)"
        );
        assert_eq!(
            chart("log_bytes", "bytes").x_description(),
            "log_bytes (MiB, log scale)"
        );
    }
}
