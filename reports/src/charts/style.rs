//! The one look every memproof chart shares: size, palette, font, and the drawing of one chart into both an SVG
//! (inlined in index.html) and a PNG (for a PR comment or an issue).
//!
//! PNG text needs a font the process can reach: plotters' default font lookup goes through fontconfig, which a bare
//! CI machine lacks ("No such font: sans-serif", docs/measured.md). So DejaVu Sans is compiled into the crate from
//! `reports/assets/` and registered once under the family name every chart uses.

use anyhow::Context as _;
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::{FontStyle, RGBColor, register_font};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Every chart is 960x540 pixels: legible in a PR comment, 16:9 on a screen.
pub const CHART_SIZE: (u32, u32) = (960, 540);

/// The one font family of every chart, registered from the DejaVu Sans compiled into the crate.
pub const FONT: &str = "sans-serif";

/// DejaVu Sans (Bitstream Vera licence, see `reports/assets/DejaVuSans.LICENSE`).
const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Title, axis description and label sizes in pixels.
pub const TITLE_SIZE: u32 = 24;
pub const AXIS_DESCRIPTION_SIZE: u32 = 17;
pub const LABEL_SIZE: u32 = 15;
pub const NOTE_SIZE: u32 = 13;

/// One colour per role, in the order the spec lists its roles (before, after, best, …); colour-blind-safe
/// (Okabe–Ito).
pub const ROLE_PALETTE: [RGBColor; 6] = [
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 114, 178),   // blue
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
];

/// The memory limit and the OOM-kill marks.
pub const LIMIT_COLOUR: RGBColor = RGBColor(200, 0, 0);

/// Phase marks and grid.
pub const MUTED_COLOUR: RGBColor = RGBColor(110, 110, 110);

/// The colour of the `index`-th role.
pub fn role_colour(index: usize) -> RGBColor {
    ROLE_PALETTE[index % ROLE_PALETTE.len()]
}

/// Registers the compiled-in font; every chart calls it before drawing.
pub fn register_chart_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_err() {
            panic!("the DejaVu Sans font compiled into memproof-reports is not a valid font");
        }
    });
}

/// A chart kind: draws itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>;
}

/// A chart on `area` with the title, margin and x-label room every chart has; `y_label_area` is the room the y
/// axis's labels need, which depends on how wide they are.
pub fn titled_chart<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT, TITLE_SIZE))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(y_label_area);
    builder
}

/// The text styles every chart's axes have: the chart font at the description and label sizes.
pub fn with_axis_text<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.axis_desc_style((FONT, AXIS_DESCRIPTION_SIZE))
        .label_style((FONT, LABEL_SIZE))
}

/// Draws a mesh with the axis text of every chart and a linear chart's grid: no fine lines, faint major ones (the
/// bars and the timeline; the growth chart's log axes draw their own).
pub fn draw_linear_mesh<X, Y, DB>(mesh: &mut MeshStyle<'_, '_, X, Y, DB>) -> anyhow::Result<()>
where
    X: Ranged + ValueFormatter<<X as Ranged>::ValueType>,
    Y: Ranged + ValueFormatter<<Y as Ranged>::ValueType>,
    DB: DrawingBackend,
{
    with_axis_text(mesh)
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(plot_error)
}

/// A plotters error as an anyhow error (backend error types are not always `'static`), in words: its `Display`,
/// never a debug dump of nested error enums.
pub fn plot_error<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart failed: {error}")
}

/// A chart written to disk: its SVG text (to inline) and the paths of both files.
#[derive(Debug, Clone)]
pub struct RenderedChart {
    pub svg: String,
    pub svg_path: PathBuf,
    pub png_path: PathBuf,
}

/// Draws `chart` into `{dir}/{stem}.svg` and `{dir}/{stem}.png`.
pub fn render_chart(chart: &impl Chart, dir: &Path, stem: &str) -> anyhow::Result<RenderedChart> {
    register_chart_font();
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        chart.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    let svg_path = dir.join(format!("{stem}.svg"));
    std::fs::write(&svg_path, &svg)
        .with_context(|| format!("{}: cannot write", svg_path.display()))?;
    let png_path = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png_path, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        chart.draw(&root)?;
        root.present()
            .map_err(|error| anyhow::anyhow!("{}: cannot write: {error}", png_path.display()))?;
    }
    Ok(RenderedChart {
        svg,
        svg_path,
        png_path,
    })
}

/// Bytes in MiB, the unit of every memory axis.
pub fn mebibytes(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// How a legend entry draws its sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendMark {
    SolidLine,
    DashedLine,
    Dot,
}

/// One entry of a side legend.
pub struct LegendEntry {
    pub label: String,
    pub colour: RGBAColor,
    pub mark: LegendMark,
}

/// Width in pixels of the legend column at a chart's right, outside the plot so it never hides a line.
pub const SIDE_LEGEND_WIDTH: u32 = 290;

/// Splits a chart's area into the plot (left) and a legend column (right).
pub fn split_for_side_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (width, _) = root.dim_in_pixel();
    root.split_horizontally(width.saturating_sub(SIDE_LEGEND_WIDTH))
}

/// Draws the legend entries top-down in the legend column.
pub fn draw_side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> anyhow::Result<()> {
    let row_height = 24;
    let top = 64;
    for (index, entry) in entries.iter().enumerate() {
        let y = top + index as i32 * row_height;
        let style = entry.colour.stroke_width(2);
        match entry.mark {
            LegendMark::SolidLine => area
                .draw(&PathElement::new(vec![(6, y), (34, y)], style))
                .map_err(plot_error)?,
            LegendMark::DashedLine => area
                .draw(&plotters::element::DashedPathElement::new(
                    vec![(6, y), (34, y)],
                    6,
                    3,
                    style,
                ))
                .map_err(plot_error)?,
            LegendMark::Dot => area
                .draw(&Circle::new((20, y), 6, entry.colour.filled()))
                .map_err(plot_error)?,
        }
        area.draw(&Text::new(
            entry.label.clone(),
            (42, y - 8),
            (FONT, LABEL_SIZE).into_font().color(&BLACK),
        ))
        .map_err(plot_error)?;
    }
    Ok(())
}
