//! The HTML report's two SVG charts, drawn with `plotters`' SVG backend.
//!
//! Only the `svg_backend` feature is used: the backend writes text as SVG `<text>` elements (the
//! viewer's browser picks the font) and plotters lays text out with its built-in width estimate,
//! so no font file, font-kit, fontconfig or freetype is needed at build or run time. Category
//! labels (families, rungs) and the legends are placed by hand at positions mapped from the
//! chart's coordinates, which keeps them exactly under their bars whatever plotters' tick logic does.

use std::error::Error;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::LadderReport;

type Drawn<T> = Result<T, Box<dyn Error>>;

/// One colour per rung (Tableau 10), reused cyclically past ten rungs.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];
pub(crate) const INK: RGBColor = RGBColor(0x1b, 0x1f, 0x24);
pub(crate) const FONT: &str = "sans-serif";
/// Plotters writes `font-size` as this over 1.24: 15 gives about 12 px.
pub(crate) const LABEL_SIZE: f64 = 15.0;
pub(crate) const CAPTION_SIZE: f64 = 19.0;
const HEIGHT: u32 = 340;

fn label(h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&INK).pos(Pos::new(h, v))
}

/// Width in pixels of a legend whose longest entry has `chars` characters, swatch included.
fn legend_width(chars: usize) -> u32 {
    (36 + 7 * chars as u32).max(110)
}

/// Draws a legend (swatch + name per entry) from the top left of `area`.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    entries: &[(String, RGBColor)],
) -> Drawn<()>
where
    DB::ErrorType: 'static,
{
    let top = 34;
    area.draw(&Text::new(title.to_string(), (8, top - 20), label(HPos::Left, VPos::Center).color(&INK)))?;
    for (i, (name, color)) in entries.iter().enumerate() {
        let y = top + 22 * i as i32;
        area.draw(&Rectangle::new([(8, y - 6), (20, y + 6)], color.filled()))?;
        area.draw(&Text::new(name.clone(), (26, y), label(HPos::Left, VPos::Center)))?;
    }
    Ok(())
}

/// Grouped bars: x = task family, one bar per rung, y = held-out accuracy (%), whiskers = 95% CI.
pub(crate) fn accuracy_bars(report: &LadderReport) -> Result<String, String> {
    draw_accuracy_bars(report).map_err(|e| e.to_string())
}

fn draw_accuracy_bars(report: &LadderReport) -> Drawn<String> {
    let families = report.families();
    if families.is_empty() {
        return Err("no task family was scored".into());
    }
    let rungs = &report.rungs;
    let (n_families, n_rungs) = (families.len(), rungs.len().max(1));
    let group_px = (n_rungs as u32 * 14 + 24).max(90);
    let plot_w = (n_families as u32 * group_px + 76).max(420);
    let legend_w = legend_width(rungs.iter().map(|g| g.name.chars().count()).max().unwrap_or(0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (plot_w + legend_w, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(plot_w);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(10)
            .caption("Held-out accuracy by task family", (FONT, CAPTION_SIZE).into_font().color(&INK))
            .x_label_area_size(26)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..n_families as f64, 0f64..100f64)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .label_style((FONT, LABEL_SIZE).into_font().color(&INK))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xe3, 0xe7, 0xeb))
            .axis_style(INK)
            .draw()?;

        // Each family owns [i, i + 1): bars fill the middle 80%, one slot of width `bar` per rung.
        let bar = 0.8 / n_rungs as f64;
        for (j, rung) in rungs.iter().enumerate() {
            let color = PALETTE[j % PALETTE.len()];
            let at = |i: usize| i as f64 + 0.1 + bar * j as f64;
            let bars = families.iter().enumerate().filter_map(|(i, f)| {
                let a = rung.accuracy.get(f).copied().filter(|a| a.is_finite())?;
                Some(Rectangle::new([(at(i), 0.0), (at(i) + bar, (a * 100.0).clamp(0.0, 100.0))], color.filled()))
            });
            chart.draw_series(bars)?;
            let whiskers = families.iter().enumerate().filter_map(|(i, f)| {
                rung.accuracy.get(f)?;
                let [lo, hi] = *rung.accuracy_ci95.get(f)?;
                if !(lo.is_finite() && hi.is_finite()) {
                    return None;
                }
                let (lo, hi) = ((lo * 100.0).clamp(0.0, 100.0), (hi * 100.0).clamp(0.0, 100.0));
                let (x, cap) = (at(i) + bar / 2.0, bar * 0.25);
                Some(vec![
                    PathElement::new(vec![(x, lo), (x, hi)], INK.stroke_width(1)),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], INK.stroke_width(1)),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], INK.stroke_width(1)),
                ])
            });
            chart.draw_series(whiskers.flatten())?;
        }
        for (i, f) in families.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(f.clone(), (x, y + 7), label(HPos::Center, VPos::Top)))?;
        }
        let entries: Vec<(String, RGBColor)> =
            rungs.iter().enumerate().map(|(j, g)| (g.name.clone(), PALETTE[j % PALETTE.len()])).collect();
        legend(&legend_area, "rungs", &entries)?;
        root.present()?;
    }
    Ok(svg)
}

/// Mean held-out accuracy per rung with the recall probe (train and held-out people) beside it.
pub(crate) fn mean_and_recall(report: &LadderReport) -> Result<String, String> {
    draw_mean_and_recall(report).map_err(|e| e.to_string())
}

fn draw_mean_and_recall(report: &LadderReport) -> Drawn<String> {
    let rungs = &report.rungs;
    let n = rungs.len();
    if n == 0 {
        return Err("no rungs".into());
    }
    let slot_px = rungs.iter().map(|g| 7 * g.name.chars().count() as u32 + 16).max().unwrap_or(0).max(80);
    let plot_w = (n as u32 * slot_px + 76).max(420);
    let series: [(&str, RGBColor, Vec<f64>); 3] = [
        ("mean accuracy", RGBColor(0x1f, 0x4e, 0x9c), rungs.iter().map(|g| g.mean_accuracy).collect()),
        ("recall probe, train", RGBColor(0x2e, 0x8b, 0x57), rungs.iter().map(|g| g.recall_probe.train).collect()),
        ("recall probe, held-out", RGBColor(0xd9, 0x6c, 0x06), rungs.iter().map(|g| g.recall_probe.heldout).collect()),
    ];
    let legend_w = legend_width(series.iter().map(|s| s.0.len()).max().unwrap_or(0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (plot_w + legend_w, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(plot_w);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(10)
            .caption("Mean accuracy and recall probe per rung", (FONT, CAPTION_SIZE).into_font().color(&INK))
            .x_label_area_size(26)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..105f64)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(6)
            .y_label_formatter(&|v| if *v <= 100.0 { format!("{v:.0}%") } else { String::new() })
            .label_style((FONT, LABEL_SIZE).into_font().color(&INK))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xe3, 0xe7, 0xeb))
            .axis_style(INK)
            .draw()?;

        for (k, (_, color, values)) in series.iter().enumerate() {
            let points: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(j, &v)| (j as f64, (v * 100.0).clamp(0.0, 100.0)))
                .collect();
            let style = color.stroke_width(if k == 0 { 3 } else { 2 });
            chart.draw_series(std::iter::once(PathElement::new(points.clone(), style)))?;
            match k {
                0 => chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))?,
                1 => chart.draw_series(points.iter().map(|&p| TriangleMarker::new(p, 6, color.filled())))?,
                _ => chart.draw_series(points.iter().map(|&p| Cross::new(p, 5, color.stroke_width(2))))?,
            };
        }
        // The mean's value above each of its points.
        for (j, g) in rungs.iter().enumerate() {
            if g.mean_accuracy.is_finite() {
                let (x, y) = chart.backend_coord(&(j as f64, (g.mean_accuracy * 100.0).clamp(0.0, 100.0)));
                let text = format!("{:.1}", g.mean_accuracy * 100.0);
                root.draw(&Text::new(text, (x, y - 9), label(HPos::Center, VPos::Bottom)))?;
            }
            let (x, y) = chart.backend_coord(&(j as f64, 0.0));
            root.draw(&Text::new(g.name.clone(), (x, y + 7), label(HPos::Center, VPos::Top)))?;
        }
        let entries: Vec<(String, RGBColor)> =
            series.iter().map(|(name, color, _)| (name.to_string(), *color)).collect();
        legend(&legend_area, "series", &entries)?;
        root.present()?;
    }
    Ok(svg)
}
