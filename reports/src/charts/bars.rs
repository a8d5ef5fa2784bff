//! The bar chart: peak heap and peak RSS of each role of a scenario, side by side, at one size.
//!
//! The quickest answer to "how much did the fix save?": seed B's `before` pinned about 36x the compressed binary
//! across its 12 inits in flight; the bars show each role's peak heap (solid) next to its peak RSS (light), the
//! kernel's high-water mark, which also counts what the allocator kept after frees.

use super::style::{Chart, FONT, NOTE_SIZE, draw_linear_mesh, mebibytes, plot_error, titled_chart};
use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// One role's bars; a figure that is `null` (a killed case has no heap total) draws no bar and says so.
pub struct RoleBars {
    pub role: String,
    pub colour: RGBColor,
    pub peak_heap_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    /// Added under the role name, e.g. `oom-killed`.
    pub note: Option<String>,
}

/// Peak heap and RSS per role.
pub struct BarsChart {
    pub title: String,
    pub roles: Vec<RoleBars>,
}

impl Chart for BarsChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let max_mebibytes = self
            .roles
            .iter()
            .flat_map(|r| [r.peak_heap_bytes, r.peak_rss_bytes])
            .flatten()
            .map(|b| mebibytes(b as f64))
            .fold(1.0, f64::max);
        let n_bars = (self.roles.len() * 2) as u32;
        let labels: Vec<String> = self
            .roles
            .iter()
            .flat_map(|r| {
                let note = r
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                [format!("{} heap{note}", r.role), format!("{} RSS", r.role)]
            })
            .collect();
        let mut chart = titled_chart(root, &self.title, 76)
            .build_cartesian_2d(
                (0u32..n_bars - 1).into_segmented(),
                0f64..max_mebibytes * 1.18,
            )
            .map_err(plot_error)?;
        draw_linear_mesh(
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n_bars as usize)
                .x_label_formatter(&|value| match value {
                    SegmentValue::CenterOf(index) => {
                        labels.get(*index as usize).cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                })
                .y_label_formatter(&|v| format!("{v:.0}"))
                .y_desc("peak memory (MiB)")
                .x_desc("role: peak heap (solid) and peak RSS (light)"),
        )?;
        for (index, role) in self.roles.iter().enumerate() {
            for (offset, bytes, fill) in [
                (0u32, role.peak_heap_bytes, role.colour.filled()),
                (1u32, role.peak_rss_bytes, role.colour.mix(0.35).filled()),
            ] {
                let bar = index as u32 * 2 + offset;
                let label_style = (FONT, NOTE_SIZE).into_font().color(&BLACK);
                match bytes {
                    Some(bytes) => {
                        let height = mebibytes(bytes as f64);
                        let mut rectangle = Rectangle::new(
                            [
                                (SegmentValue::Exact(bar), 0.0),
                                (SegmentValue::Exact(bar + 1), height),
                            ],
                            fill,
                        );
                        rectangle.set_margin(0, 0, 10, 10);
                        chart.draw_series([rectangle]).map_err(plot_error)?;
                        chart
                            .draw_series([Text::new(
                                schema::units::format_bytes(bytes as f64),
                                (SegmentValue::CenterOf(bar), height + max_mebibytes * 0.02),
                                label_style.pos(plotters::style::text_anchor::Pos::new(
                                    plotters::style::text_anchor::HPos::Center,
                                    plotters::style::text_anchor::VPos::Bottom,
                                )),
                            )])
                            .map_err(plot_error)?;
                    }
                    None => {
                        chart
                            .draw_series([Text::new(
                                "not measured".to_string(),
                                (SegmentValue::CenterOf(bar), max_mebibytes * 0.04),
                                label_style.pos(plotters::style::text_anchor::Pos::new(
                                    plotters::style::text_anchor::HPos::Center,
                                    plotters::style::text_anchor::VPos::Bottom,
                                )),
                            )])
                            .map_err(plot_error)?;
                    }
                }
            }
        }
        Ok(())
    }
}
