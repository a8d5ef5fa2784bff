//! The timeline overlay: heap (solid) and RSS (dashed) of each role of a scenario on one time axis, phases marked,
//! the memory limit drawn, the moment of an OOM kill marked.
//!
//! It answers the engineer's question "where did the memory go, and when?": seed C's `before` climbs through its
//! read phase until the watchdog kills it at the 512 MiB line, while `after` and `best` level off. The gap between
//! a role's dashed and solid line is memory the process holds beyond its live heap (allocator caches, code,
//! stacks). `compare` draws two runs on the same axes, the old one faded.

use super::style::{
    Chart, FONT, LABEL_SIZE, LIMIT_COLOUR, LegendEntry, LegendMark, NOTE_SIZE, draw_linear_mesh,
    draw_side_legend, mebibytes, plot_error, split_for_side_legend, titled_chart,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use schema::results::{Case, Outcome};

/// One case drawn on the timeline.
pub struct TimelineLine<'a> {
    /// Legend prefix: the role, or `old after` in a comparison.
    pub label: String,
    pub case: &'a Case,
    pub colour: RGBColor,
    /// Drawn lighter: the old run in a comparison.
    pub faded: bool,
}

/// A timeline overlay of several cases.
pub struct TimelineChart<'a> {
    pub title: String,
    pub lines: Vec<TimelineLine<'a>>,
    pub limit_bytes: Option<u64>,
}

/// Most points drawn per line: a 30 s case sampled every 5 ms has 6000, more than the plot has pixel columns, and
/// every one of them would be inlined into index.html.
pub const MAX_POINTS_PER_LINE: usize = 1200;

/// Thins a line to at most about `max_points` by keeping, for each run of consecutive points, its lowest and its
/// highest (in time order), so no peak and no trough disappears from the chart.
pub fn keep_extremes(points: Vec<(f64, f64)>, max_points: usize) -> Vec<(f64, f64)> {
    if points.len() <= max_points || max_points < 4 {
        return points;
    }
    let bucket = points.len().div_ceil(max_points / 2);
    let mut kept = Vec::with_capacity(max_points + 2);
    for chunk in points.chunks(bucket) {
        let lowest = chunk
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("chunk");
        let highest = chunk
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("chunk");
        if lowest.0 <= highest.0 {
            kept.extend([*lowest, *highest]);
        } else {
            kept.extend([*highest, *lowest]);
        }
    }
    kept.dedup();
    kept
}

fn seconds(t_ms: f64) -> f64 {
    t_ms / 1000.0
}

impl TimelineLine<'_> {
    fn style(&self) -> RGBAColor {
        if self.faded {
            self.colour.mix(0.4)
        } else {
            self.colour.mix(1.0)
        }
    }

    fn heap_points(&self) -> Vec<(f64, f64)> {
        let points = self
            .case
            .timeline
            .iter()
            .filter_map(|s| s.heap_bytes.map(|b| (seconds(s.t_ms), mebibytes(b as f64))))
            .collect();
        keep_extremes(points, MAX_POINTS_PER_LINE)
    }

    fn rss_points(&self) -> Vec<(f64, f64)> {
        let points = self
            .case
            .timeline
            .iter()
            .filter_map(|s| s.rss_bytes.map(|b| (seconds(s.t_ms), mebibytes(b as f64))))
            .collect();
        keep_extremes(points, MAX_POINTS_PER_LINE)
    }
}

/// A limit more than this many times the highest line is named in the legend rather than drawn.
const LIMIT_IN_VIEW_FACTOR: f64 = 4.0;

impl Chart for TimelineChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let mut max_seconds: f64 = 0.1;
        let mut max_mebibytes: f64 = 1.0;
        for line in &self.lines {
            let case = line.case;
            max_seconds = max_seconds.max(seconds(case.wall_ms));
            for sample in &case.timeline {
                max_seconds = max_seconds.max(seconds(sample.t_ms));
                for bytes in [sample.rss_bytes, sample.heap_bytes].into_iter().flatten() {
                    max_mebibytes = max_mebibytes.max(mebibytes(bytes as f64));
                }
            }
        }
        // The limit is drawn when it is near the lines; a limit far above them would flatten every line to the
        // floor, so then the legend names it instead.
        let limit_in_view = self
            .limit_bytes
            .filter(|&limit| mebibytes(limit as f64) <= max_mebibytes * LIMIT_IN_VIEW_FACTOR);
        if let Some(limit) = limit_in_view {
            max_mebibytes = max_mebibytes.max(mebibytes(limit as f64));
        }
        // Headroom above the highest line for the phase names.
        let y_top = max_mebibytes * 1.2;
        let (plot_area, legend_area) = split_for_side_legend(root);
        let mut legend = Vec::new();
        let mut chart = titled_chart(&plot_area, &self.title, 76)
            .build_cartesian_2d(0f64..max_seconds * 1.02, 0f64..y_top)
            .map_err(plot_error)?;
        draw_linear_mesh(
            chart
                .configure_mesh()
                .x_desc("time since the case started (s)")
                .y_desc("memory (MiB)")
                .y_label_formatter(&|v| format_axis_mebibytes(*v)),
        )?;

        if let Some(limit) = limit_in_view {
            let limit = mebibytes(limit as f64);
            chart
                .draw_series(LineSeries::new(
                    [(0.0, limit), (max_seconds * 1.02, limit)],
                    LIMIT_COLOUR.stroke_width(2),
                ))
                .map_err(plot_error)?;
            legend.push(LegendEntry {
                label: format!(
                    "memory limit {}",
                    schema::units::format_bytes(self.limit_bytes.unwrap_or(0) as f64)
                ),
                colour: LIMIT_COLOUR.mix(1.0),
                mark: LegendMark::SolidLine,
            });
        } else if let Some(limit) = self.limit_bytes {
            legend.push(LegendEntry {
                label: format!(
                    "memory limit {} (off the scale)",
                    schema::units::format_bytes(limit as f64)
                ),
                colour: LIMIT_COLOUR.mix(1.0),
                mark: LegendMark::SolidLine,
            });
        }

        // Phase names and kill notes are staggered so that lines marking the same moment do not overprint.
        let mut labelled_lines = 0usize;
        let mut killed_lines = 0i32;
        for line in &self.lines {
            let colour = line.style();
            // Phase marks: a thin vertical line per phase start; a faded (old) line's phases are not named again.
            let stagger = labelled_lines as f64;
            for phase in &line.case.phases {
                let x = seconds(phase.t_ms);
                chart
                    .draw_series(DashedLineSeries::new(
                        [(x, 0.0), (x, y_top * (0.96 - 0.045 * stagger))],
                        3,
                        4,
                        colour.mix(0.5).stroke_width(1),
                    ))
                    .map_err(plot_error)?;
                if !line.faded {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!(" {}", phase.name),
                            (x, y_top * (0.985 - 0.045 * stagger)),
                            (FONT, NOTE_SIZE).into_font().color(&colour),
                        )))
                        .map_err(plot_error)?;
                }
            }
            if !line.faded && !line.case.phases.is_empty() {
                labelled_lines += 1;
            }
            let heap = line.heap_points();
            if !heap.is_empty() {
                chart
                    .draw_series(LineSeries::new(heap, colour.stroke_width(2)))
                    .map_err(plot_error)?;
                legend.push(LegendEntry {
                    label: format!("{} heap", line.label),
                    colour,
                    mark: LegendMark::SolidLine,
                });
            }
            let rss = line.rss_points();
            if !rss.is_empty() {
                chart
                    .draw_series(DashedLineSeries::new(
                        rss.clone(),
                        8,
                        5,
                        colour.stroke_width(2),
                    ))
                    .map_err(plot_error)?;
                legend.push(LegendEntry {
                    label: format!("{} RSS", line.label),
                    colour,
                    mark: LegendMark::DashedLine,
                });
            }
            if line.case.outcome == Outcome::OomKilled {
                let at = rss
                    .last()
                    .copied()
                    .unwrap_or((seconds(line.case.wall_ms), y_top * 0.5));
                chart
                    .draw_series([EmptyElement::at(at)
                        + Cross::new((0, 0), 9, LIMIT_COLOUR.stroke_width(3))
                        + Text::new(
                            format!("{} OOM-killed at {:.2} s", line.label, at.0),
                            // Written on the side of the cross that has room for it.
                            (
                                if at.0 < max_seconds * 0.5 { 14 } else { -220 },
                                14 + 18 * killed_lines,
                            ),
                            (FONT, LABEL_SIZE).into_font().color(&LIMIT_COLOUR),
                        )])
                    .map_err(plot_error)?;
                killed_lines += 1;
            }
        }
        draw_side_legend(&legend_area, &legend)?;
        Ok(())
    }
}

/// `0`, `40`, `2.5`: MiB tick labels without trailing zeros.
fn format_axis_mebibytes(value: f64) -> String {
    if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_peak_the_trough_and_the_order() {
        let mut points: Vec<(f64, f64)> =
            (0..10_000).map(|i| (i as f64, (i % 97) as f64)).collect();
        points[4321].1 = 500.0;
        points[8765].1 = -3.0;
        let kept = keep_extremes(points.clone(), 1200);
        assert!(kept.len() <= 1200, "{}", kept.len());
        assert!(kept.contains(&(4321.0, 500.0)));
        assert!(kept.contains(&(8765.0, -3.0)));
        assert!(
            kept.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "time order"
        );
        assert_eq!(keep_extremes(points[..100].to_vec(), 1200).len(), 100);
    }
}
