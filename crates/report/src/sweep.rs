//! Two hyper-parameter sweeps, as serde types with markdown and SVG renderings.
//!
//! - [`LrSweep`] (`ascent sweep lr`): final validation loss over a grid of widths and learning
//!   rates, once under standard parameterisation and once under muP. Its point is the drift of the
//!   best learning rate with width ([`LrSweep::drift`]): small under muP, larger under standard
//!   parameterisation, which is what lets a learning rate tuned on a narrow model transfer to a
//!   wide one.
//! - [`ScaleSweep`] (`ascent sweep scale`): models of growing size trained on the same world, with
//!   power-law fits of loss against parameters and FLOPs ([`fit_power_law`],
//!   [`fit_power_law_offset`]) and the bits of knowledge each model stores, set against the
//!   2 bits per parameter capacity reported by Allen-Zhu & Li ("Physics of Language Models 3.3").
//!
//! Each sweep renders as JSON (the record; non-finite numbers written as `null` and read back as
//! NaN), markdown (tables) and one SVG chart, and `write_all` writes all three atomically. As in
//! the rest of the crate, nothing here trains anything: every number comes from the caller.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::chart::{CAPTION_SIZE, FONT, INK, LABEL_SIZE, PALETTE};
use crate::doc::{Block, Inline, Para, Table};
use crate::format::{self, MISSING};
use crate::{markdown, nullable, write, ReportError};

/// Version of the JSON layout of both sweeps, as written by [`LrSweep::to_json`] and
/// [`ScaleSweep::to_json`].
///
/// Like the ladder report's [`crate::FORMAT_VERSION`], adding a field does not change it (readers
/// ignore unknown fields, new fields get `#[serde(default)]`); it is bumped only for a change an
/// older reader would misread.
pub const SWEEP_FORMAT_VERSION: u32 = 1;

/// Bits of knowledge a language model can store per parameter, as reported by Allen-Zhu & Li,
/// "Physics of Language Models: Part 3.3, Knowledge Capacity Scaling Laws" (2024); drawn as the
/// reference line of [`ScaleSweep::to_svg`].
pub const KNOWLEDGE_BITS_PER_PARAM: f64 = 2.0;

/// What can go wrong reading, drawing or writing a sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The text is not JSON, or not a sweep of this kind.
    #[error("not a valid {kind} sweep: {source}; was it written by `ascent sweep {kind}` ({kind}-sweep.json)?")]
    Json {
        /// `"lr"` or `"scale"`.
        kind: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The sweep's `format` is not one this reader understands.
    #[error("{kind} sweep format {found} is not supported by this reader (it reads format {supported}); use the ascent version that wrote it")]
    UnsupportedFormat {
        /// `"lr"` or `"scale"`.
        kind: &'static str,
        /// The `format` field found in the file.
        found: u64,
        /// [`SWEEP_FORMAT_VERSION`].
        supported: u32,
    },
    /// The chart could not be drawn (an error of the SVG backend; the data itself never fails).
    #[error("cannot draw the {kind} sweep chart: {message}")]
    Chart {
        /// `"lr"` or `"scale"`.
        kind: &'static str,
        /// What the backend said.
        message: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] ReportError),
}

// ---------------------------------------------------------------------------------------------
// Learning-rate sweep
// ---------------------------------------------------------------------------------------------

/// One run of the learning-rate sweep: a parameterisation, a width and a learning rate, and the
/// final validation loss it reached.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LrPoint {
    /// `"standard"` or `"mup"` (any other name is shown after these two, by name).
    pub parameterisation: String,
    /// Model width (`d_model`).
    pub width: usize,
    /// Peak learning rate of the run. Points whose rate is not a positive finite number are left
    /// out of [`LrSweep::best`], the tables and the chart.
    #[serde(deserialize_with = "nullable::f64")]
    pub lr: f64,
    /// Final validation loss; NaN or infinite when the run diverged (written as `null`).
    #[serde(deserialize_with = "nullable::f64")]
    pub loss: f64,
    /// Number of model parameters.
    pub params: usize,
}

/// The whole learning-rate sweep: how every run was trained, and its points.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LrSweep {
    /// Layout version, [`SWEEP_FORMAT_VERSION`] when written by this crate.
    pub format: u32,
    /// The width muP's multipliers are relative to (where muP and standard coincide).
    pub base_width: usize,
    /// Optimiser steps of every run.
    pub steps: usize,
    /// Tokens per optimiser step.
    pub tokens_per_step: usize,
    /// Seed of every run (data order and initialisation).
    pub seed: u64,
    /// One point per (parameterisation, width, learning rate) run.
    pub points: Vec<LrPoint>,
    /// Wall time of the whole sweep, in seconds.
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds: f64,
}

/// The best learning rate of one (parameterisation, width) row of an [`LrSweep`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BestLr {
    /// `"standard"`, `"mup"`, ...
    pub parameterisation: String,
    /// Model width.
    pub width: usize,
    /// The grid learning rate with the lowest finite loss.
    #[serde(deserialize_with = "nullable::f64")]
    pub lr: f64,
    /// That loss.
    #[serde(deserialize_with = "nullable::f64")]
    pub loss: f64,
    /// The optimum located between grid points: the vertex of the parabola in log2(lr) through
    /// the best grid point and its two neighbours, clamped to the neighbours' range; equal to `lr`
    /// when it cannot be fitted (best point at the edge of the row, a neighbour diverged, or no
    /// curvature).
    #[serde(deserialize_with = "nullable::f64")]
    pub lr_fit: f64,
    /// True when the best grid point is the smallest or largest learning rate run for this width:
    /// the true optimum may then lie outside the grid and the drift is only a bound.
    pub at_edge: bool,
}

/// One (parameterisation) table of the sweep: the learning rates run, one row per width.
struct LrGrid {
    /// Learning rates run under this parameterisation, ascending.
    lrs: Vec<f64>,
    /// One row per width, ascending.
    rows: Vec<LrRow>,
}

/// One width of an [`LrGrid`]: the loss per learning-rate column.
struct LrRow {
    width: usize,
    params: usize,
    /// Per column of [`LrGrid::lrs`]: `None` when not run, `Some(non-finite)` when diverged.
    losses: Vec<Option<f64>>,
}

/// Sort key of a parameterisation: standard first, then muP, then others by name.
fn parameterisation_key(p: &str) -> (usize, String) {
    let rank = match p {
        "standard" => 0,
        "mup" => 1,
        _ => 2,
    };
    (rank, p.to_string())
}

/// How a parameterisation is named in prose and captions.
fn parameterisation_title(p: &str) -> String {
    match p {
        "standard" => "standard parameterisation".to_string(),
        "mup" => "muP".to_string(),
        other => other.to_string(),
    }
}

/// Keeps the better of two losses for one cell: a finite loss beats a non-finite one, a lower beats a higher.
fn better_loss(current: Option<f64>, new: f64) -> Option<f64> {
    match current {
        None => Some(new),
        Some(c) if !c.is_finite() => Some(if new.is_finite() { new } else { c }),
        Some(c) => Some(if new.is_finite() && new < c { new } else { c }),
    }
}

fn valid_lr(lr: f64) -> bool {
    lr.is_finite() && lr > 0.0
}

/// The vertex (in log2 lr) of the parabola through three points of increasing `x`, clamped to
/// `[x0, x2]`; `None` when the points are not convex.
///
/// With divided differences `d1 = (y1 − y0)/(x1 − x0)`, `d2 = (y2 − y1)/(x2 − x1)` and curvature
/// `c = (d2 − d1)/(x2 − x0)`, the parabola is `y0 + d1 (x − x0) + c (x − x0)(x − x1)` and its
/// vertex is at `(x0 + x1)/2 − d1/(2c)`.
fn parabola_vertex([(x0, y0), (x1, y1), (x2, y2)]: [(f64, f64); 3]) -> Option<f64> {
    let d1 = (y1 - y0) / (x1 - x0);
    let d2 = (y2 - y1) / (x2 - x1);
    let c = (d2 - d1) / (x2 - x0);
    if !(c.is_finite() && c > 0.0) {
        return None;
    }
    let v = (x0 + x1) / 2.0 - d1 / (2.0 * c);
    v.is_finite().then(|| v.clamp(x0, x2))
}

impl LrSweep {
    /// The sweep as pretty-printed JSON with a trailing newline (non-finite numbers as `null`).
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// Parses a sweep written by [`LrSweep::to_json`]; `null` numbers are read as NaN.
    ///
    /// Fails with [`SweepError::UnsupportedFormat`] when `format` is not [`SWEEP_FORMAT_VERSION`].
    pub fn from_json(s: &str) -> Result<Self, SweepError> {
        from_json(s, "lr")
    }

    /// Parameterisations present, in display order (standard, muP, then others by name).
    pub fn parameterisations(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.points {
            if !out.contains(&p.parameterisation) {
                out.push(p.parameterisation.clone());
            }
        }
        out.sort_by_key(|p| parameterisation_key(p));
        out
    }

    /// Widths present under any parameterisation, ascending.
    pub fn widths(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.points.iter().map(|p| p.width).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The table of one parameterisation. Repeated runs of one cell keep the lowest finite loss.
    fn grid(&self, parameterisation: &str) -> LrGrid {
        let points: Vec<&LrPoint> =
            self.points.iter().filter(|p| p.parameterisation == parameterisation && valid_lr(p.lr)).collect();
        let mut lrs: Vec<f64> = points.iter().map(|p| p.lr).collect();
        lrs.sort_by(f64::total_cmp);
        lrs.dedup();
        let mut rows: BTreeMap<usize, LrRow> = BTreeMap::new();
        for p in points {
            let row = rows.entry(p.width).or_insert_with(|| LrRow {
                width: p.width,
                params: p.params,
                losses: vec![None; lrs.len()],
            });
            if let Ok(j) = lrs.binary_search_by(|lr| lr.total_cmp(&p.lr)) {
                row.losses[j] = better_loss(row.losses[j], p.loss);
            }
        }
        LrGrid { lrs, rows: rows.into_values().collect() }
    }

    /// Per (parameterisation, width), the learning rate with the lowest finite loss, refined by a
    /// parabola in log2(lr) (see [`BestLr::lr_fit`]). A width whose every run diverged has no
    /// entry. Order: parameterisations as [`LrSweep::parameterisations`], widths ascending.
    pub fn best(&self) -> Vec<BestLr> {
        let mut out = Vec::new();
        for parameterisation in self.parameterisations() {
            let grid = self.grid(&parameterisation);
            for row in &grid.rows {
                // The runs of this width, by learning rate: neighbours are adjacent runs, not grid columns.
                let run: Vec<(f64, f64)> =
                    grid.lrs.iter().zip(&row.losses).filter_map(|(&lr, loss)| loss.map(|l| (lr, l))).collect();
                let mut best: Option<usize> = None;
                for (i, &(_, loss)) in run.iter().enumerate() {
                    if loss.is_finite() && best.is_none_or(|b| loss < run[b].1) {
                        best = Some(i);
                    }
                }
                let Some(i) = best else { continue };
                let (lr, loss) = run[i];
                let at_edge = i == 0 || i + 1 == run.len();
                let lr_fit = if at_edge {
                    lr
                } else {
                    let at = |k: usize| (run[k].0.log2(), run[k].1);
                    let three = [at(i - 1), at(i), at(i + 1)];
                    if three.iter().all(|(_, y)| y.is_finite()) {
                        parabola_vertex(three).map_or(lr, f64::exp2)
                    } else {
                        lr
                    }
                };
                out.push(BestLr {
                    parameterisation: parameterisation.clone(),
                    width: row.width,
                    lr,
                    loss,
                    lr_fit,
                    at_edge,
                });
            }
        }
        out
    }

    /// Per parameterisation, how far the best learning rate moves across widths: the spread
    /// (max − min) of log2([`BestLr::lr_fit`]) over the widths that have one, in octaves (0 with a
    /// single width). Small under muP, larger under standard parameterisation.
    pub fn drift(&self) -> Vec<(String, f64)> {
        drift_of(&self.best())
    }

    /// The sweep as markdown: one table per parameterisation (rows = widths, columns = learning
    /// rates, cells = final loss, the best of each row in bold, `div` where the run diverged),
    /// then the best learning rates and the drift.
    pub fn to_markdown(&self) -> String {
        let best = self.best();
        let drift = drift_of(&best);
        let mut out = Vec::new();
        out.push(Block::Title("ascent learning-rate sweep: muP against standard parameterisation".into()));
        out.push(Block::P(text(format!(
            "base width {} · {} steps of {} tokens · seed {} · {} runs · wall time {} s · sweep format {}",
            self.base_width,
            self.steps,
            self.tokens_per_step,
            self.seed,
            self.points.len(),
            format::seconds(self.seconds),
            self.format
        ))));
        out.push(Block::P(text(
            "Final validation loss per width (rows) and peak learning rate (columns); the best of each row in \
             bold, div where the run diverged. Under muP the best learning rate should stay put as the width \
             grows; under standard parameterisation it moves. The chart is in lr-sweep.svg.",
        )));
        let invalid = self.points.iter().filter(|p| !valid_lr(p.lr)).count();
        if invalid > 0 {
            out.push(Block::P(text(format!(
                "{invalid} runs with a learning rate that is not a positive number are left out."
            ))));
        }
        for parameterisation in self.parameterisations() {
            let grid = self.grid(&parameterisation);
            out.push(Block::Heading(parameterisation_title(&parameterisation)));
            let mut head = vec!["width".to_string(), "params".to_string()];
            head.extend(grid.lrs.iter().map(|&lr| sci(lr, 3)));
            let rows = grid
                .rows
                .iter()
                .map(|row| {
                    let best = best.iter().find(|b| b.parameterisation == parameterisation && b.width == row.width);
                    let mut cells = vec![text(row.width.to_string()), text(format::human_count(row.params as u64))];
                    for (&lr, loss) in grid.lrs.iter().zip(&row.losses) {
                        cells.push(match loss {
                            None => text(MISSING),
                            Some(l) if !l.is_finite() => text("div"),
                            Some(l) if best.is_some_and(|b| b.lr == lr) => {
                                Para(vec![Inline::Strong(format!("{l:.3}"))])
                            }
                            Some(l) => text(format!("{l:.3}")),
                        });
                    }
                    cells
                })
                .collect();
            out.push(Block::Table(Table { name: "lr-sweep", numeric: vec![true; head.len()], head, rows }));
        }
        out.push(Block::Heading("Best learning rates".into()));
        if best.is_empty() {
            out.push(Block::P(text("No run reached a finite loss.")));
        } else {
            out.push(Block::List(
                best.iter()
                    .map(|b| {
                        let mut line = format!(
                            "{}, width {}: lr {} (2^{:.1}), loss {:.3}; refined by a parabola in log2(lr): {} (2^{:.2})",
                            parameterisation_title(&b.parameterisation),
                            b.width,
                            sci(b.lr, 3),
                            b.lr.log2(),
                            b.loss,
                            sci(b.lr_fit, 3),
                            b.lr_fit.log2()
                        );
                        if b.at_edge {
                            line.push_str(" (at the edge of the grid: the optimum may lie beyond it)");
                        }
                        text(line)
                    })
                    .collect(),
            ));
        }
        out.push(Block::Heading("Drift of the best learning rate with width".into()));
        if drift.is_empty() {
            out.push(Block::P(text("No drift: no parameterisation has a finite loss.")));
        } else {
            let mut lines: Vec<Para> = drift
                .iter()
                .map(|(p, octaves)| {
                    let widths: Vec<usize> =
                        best.iter().filter(|b| &b.parameterisation == p).map(|b| b.width).collect();
                    let range = match (widths.first(), widths.last()) {
                        (Some(lo), Some(hi)) if lo != hi => format!("widths {lo}–{hi}"),
                        (Some(w), _) => format!("a single width ({w})"),
                        _ => "no width".to_string(),
                    };
                    text(format!("{}: {octaves:.2} octaves across {range}", parameterisation_title(p)))
                })
                .collect();
            let of = |name: &str| drift.iter().find(|(p, _)| p == name).map(|(_, d)| *d);
            if let (Some(sp), Some(mup)) = (of("standard"), of("mup")) {
                let verdict = if mup < sp {
                    format!("muP's optimum moves {:.2} octaves less than standard parameterisation's", sp - mup)
                } else {
                    format!(
                        "muP's optimum does not move less than standard parameterisation's ({:.2} octaves more)",
                        mup - sp
                    )
                };
                lines.push(text(verdict));
            }
            out.push(Block::List(lines));
        }
        markdown::render(&out)
    }

    /// The sweep as one SVG chart: one panel per parameterisation side by side (standard | muP),
    /// x = learning rate on a log2 axis, y = final loss (clipped to at most 3 above the lowest
    /// loss; diverged runs drawn as × and runs above the clip as ▲ on the top edge), one line per
    /// width coloured from light (narrow) to dark (wide), the best point of each width ringed.
    pub fn to_svg(&self) -> Result<String, SweepError> {
        draw_lr(self).map_err(|e| SweepError::Chart { kind: "lr", message: e.to_string() })
    }

    /// Writes `lr-sweep.json`, `lr-sweep.md` and `lr-sweep.svg` into `dir` (created if missing),
    /// each atomically (temporary file, flush, rename), so a reader never sees a half-written file.
    pub fn write_all(&self, dir: &Path) -> Result<(), SweepError> {
        let svg = self.to_svg()?;
        write_three(dir, "lr-sweep", &self.to_json(), &self.to_markdown(), &svg)
    }
}

/// [`LrSweep::drift`] from its best points.
fn drift_of(best: &[BestLr]) -> Vec<(String, f64)> {
    // (parameterisation, lowest, highest) log2 of the refined optimum.
    let mut spans: Vec<(String, f64, f64)> = Vec::new();
    for b in best {
        let octave = b.lr_fit.log2();
        if !octave.is_finite() {
            continue;
        }
        match spans.iter_mut().find(|(p, _, _)| *p == b.parameterisation) {
            Some((_, lo, hi)) => (*lo, *hi) = (lo.min(octave), hi.max(octave)),
            None => spans.push((b.parameterisation.clone(), octave, octave)),
        }
    }
    spans.into_iter().map(|(p, lo, hi)| (p, hi - lo)).collect()
}

// ---------------------------------------------------------------------------------------------
// Scale sweep
// ---------------------------------------------------------------------------------------------

/// One model of the scale sweep and what it reached.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScalePoint {
    /// Short name of the model, e.g. `"d128-l4"`.
    pub name: String,
    /// Model width.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Non-embedding parameters (the `N` of the scaling law).
    pub params: usize,
    /// All parameters, embeddings included (the denominator of bits per parameter).
    pub total_params: usize,
    /// Tokens trained on.
    pub tokens: u64,
    /// Training FLOPs.
    #[serde(deserialize_with = "nullable::f64")]
    pub flops: f64,
    /// Final validation loss.
    #[serde(deserialize_with = "nullable::f64")]
    pub loss: f64,
    /// Bits of facts the model stores (from its recall of the world's facts).
    #[serde(deserialize_with = "nullable::f64")]
    pub knowledge_bits: f64,
    /// Wall time of this model (train + eval), in seconds.
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds: f64,
}

/// A power law `loss = offset + a · x^(−α)` fitted to a sweep (`offset` is 0 for the plain form).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PowerLawFit {
    /// What `x` is: `"params"` (non-embedding parameters) or `"flops"` (training FLOPs).
    pub x: String,
    /// The irreducible loss the law saturates at; 0 for the plain power law. Absent in older files.
    #[serde(default, deserialize_with = "nullable::f64")]
    pub offset: f64,
    /// `a`.
    #[serde(deserialize_with = "nullable::f64")]
    pub coefficient: f64,
    /// `α`.
    #[serde(deserialize_with = "nullable::f64")]
    pub exponent: f64,
    /// Standard error of `α` from the residuals of the log-log fit (n − 2 degrees of freedom).
    #[serde(deserialize_with = "nullable::f64")]
    pub exponent_stderr: f64,
    /// R² in log space: of `ln(loss)` against `ln(prediction)`, so plain and offset fits compare.
    #[serde(deserialize_with = "nullable::f64")]
    pub r2: f64,
    /// Root mean square of `ln(loss) − ln(prediction)`.
    #[serde(deserialize_with = "nullable::f64")]
    pub rmse_log: f64,
    /// Number of points fitted.
    pub points: usize,
}

impl PowerLawFit {
    /// The law's loss at `x`: `offset + a · x^(−α)`.
    pub fn predict(&self, x: f64) -> f64 {
        self.offset + self.coefficient * x.powf(-self.exponent)
    }

    /// Sum of squared residuals `Σ (y − predict(x))²` in linear space over the pairs with a finite
    /// positive `x` and a finite `y` (the quantity [`fit_power_law_offset`] minimises).
    pub fn residual_sum_of_squares(&self, x: &[f64], y: &[f64]) -> f64 {
        x.iter()
            .zip(y)
            .filter(|(x, y)| x.is_finite() && **x > 0.0 && y.is_finite())
            .map(|(&x, &y)| (y - self.predict(x)).powi(2))
            .sum()
    }

    /// The law as one line, e.g. `loss ≈ 5.000 · N^−0.300 (α = 0.300 ± 0.012, R² = 0.9981, 6 points)`.
    pub fn equation(&self) -> String {
        let symbol = match self.x.as_str() {
            "params" => "N",
            "flops" => "C",
            other => other,
        };
        let offset = if self.offset != 0.0 { format!("{} + ", sig(self.offset, 4)) } else { String::new() };
        // A loss that grows with x has a negative α: show x^0.100, not x^−-0.100.
        let power =
            if self.exponent < 0.0 { format!("{:.3}", -self.exponent) } else { format!("−{:.3}", self.exponent) };
        format!(
            "loss ≈ {offset}{} · {symbol}^{power} (α = {:.3} ± {:.3}, R² = {:.4}, {} points)",
            sig(self.coefficient, 4),
            self.exponent,
            self.exponent_stderr,
            self.r2,
            self.points
        )
    }
}

/// The pairs with finite positive `x` and `y`; `None` when the slices differ in length.
fn positive_pairs(x: &[f64], y: &[f64]) -> Option<Vec<(f64, f64)>> {
    (x.len() == y.len()).then(|| {
        x.iter()
            .zip(y)
            .filter(|(x, y)| x.is_finite() && y.is_finite() && **x > 0.0 && **y > 0.0)
            .map(|(&x, &y)| (x, y))
            .collect()
    })
}

/// Ordinary least squares of `v` on `u`.
struct Ols {
    intercept: f64,
    slope: f64,
    slope_stderr: f64,
}

/// Fits `v = intercept + slope · u`; `None` with fewer than 3 points or no spread in `u`.
///
/// `slope = Sᵤᵥ / Sᵤᵤ` with `Sᵤᵥ = Σ (u − ū)(v − v̄)` and `Sᵤᵤ = Σ (u − ū)²`; the standard error
/// of the slope is `sqrt(s² / Sᵤᵤ)` with `s² = Σ e² / (n − 2)` the residual variance.
fn ols(uv: &[(f64, f64)]) -> Option<Ols> {
    let n = uv.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let (mu, mv) = (uv.iter().map(|p| p.0).sum::<f64>() / nf, uv.iter().map(|p| p.1).sum::<f64>() / nf);
    let suu: f64 = uv.iter().map(|(u, _)| (u - mu).powi(2)).sum();
    let suv: f64 = uv.iter().map(|(u, v)| (u - mu) * (v - mv)).sum();
    if !(suu.is_finite() && suu > 0.0) {
        return None;
    }
    let slope = suv / suu;
    let intercept = mv - slope * mu;
    let sse: f64 = uv.iter().map(|(u, v)| (v - intercept - slope * u).powi(2)).sum();
    let slope_stderr = (sse / (nf - 2.0) / suu).sqrt();
    (slope.is_finite() && intercept.is_finite()).then_some(Ols { intercept, slope, slope_stderr })
}

/// Builds the fit of `loss = offset + exp(ols.intercept) · x^(ols.slope)` with its log-space quality.
fn power_law_from(pairs: &[(f64, f64)], name: &str, offset: f64, ols: &Ols) -> PowerLawFit {
    let mut fit = PowerLawFit {
        x: name.to_string(),
        offset,
        coefficient: ols.intercept.exp(),
        exponent: -ols.slope,
        exponent_stderr: ols.slope_stderr,
        r2: f64::NAN,
        rmse_log: f64::NAN,
        points: pairs.len(),
    };
    let n = pairs.len() as f64;
    let mean = pairs.iter().map(|(_, y)| y.ln()).sum::<f64>() / n;
    let ss_res: f64 = pairs.iter().map(|&(x, y)| (y.ln() - fit.predict(x).ln()).powi(2)).sum();
    let ss_tot: f64 = pairs.iter().map(|(_, y)| (y.ln() - mean).powi(2)).sum();
    fit.r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    };
    fit.rmse_log = (ss_res / n).sqrt();
    fit
}

/// Fits `y = a · x^(−α)` by ordinary least squares of `ln y` on `ln x`.
///
/// With `u = ln x` and `v = ln y`: `slope = Σ (u − ū)(v − v̄) / Σ (u − ū)²`, `ln a = v̄ − slope · ū`
/// and `α = −slope`. The standard error of `α` is `sqrt(s² / Σ (u − ū)²)` with
/// `s² = Σ e² / (n − 2)` the variance of the log residuals `e = v − ln a − slope · u`; `r2` is
/// `1 − Σ e² / Σ (v − v̄)²` and `rmse_log` is `sqrt(Σ e² / n)`.
///
/// Only pairs with finite positive `x` and `y` are used; `None` when fewer than 3 remain, when all
/// `x` are equal, or when the slices differ in length. `name` becomes [`PowerLawFit::x`].
pub fn fit_power_law(x: &[f64], y: &[f64], name: &str) -> Option<PowerLawFit> {
    let pairs = positive_pairs(x, y)?;
    let uv: Vec<(f64, f64)> = pairs.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
    let fit = ols(&uv)?;
    Some(power_law_from(&pairs, name, 0.0, &fit))
}

/// Offsets tried by [`fit_power_law_offset`]'s grid.
const OFFSET_GRID: usize = 200;

/// Fits the saturating form `y = offset + a · x^(−α)`.
///
/// The offset is searched over a grid of 200 values evenly spread on `[0, 0.99 · min y]`; for each,
/// `a` and `α` come from the log-log least squares of `y − offset` on `x` (as [`fit_power_law`]),
/// and the offset whose law has the lowest residual sum of squares in linear space,
/// `Σ (y − offset − a · x^(−α))²`, is kept. A golden-section search between the best grid value's
/// neighbours then refines it (kept only if it lowers the residual further).
///
/// `exponent_stderr` is that of the log-log fit at the chosen offset: it ignores the uncertainty
/// of the offset itself, so it understates the true uncertainty of `α`. `r2` and `rmse_log`
/// compare `ln y` with `ln` of the prediction, as for the plain fit.
///
/// Only pairs with finite positive `x` and `y` are used; `None` with fewer than 4 of them, when
/// all `x` are equal, or when the slices differ in length.
pub fn fit_power_law_offset(x: &[f64], y: &[f64], name: &str) -> Option<PowerLawFit> {
    let pairs = positive_pairs(x, y)?;
    if pairs.len() < 4 {
        return None;
    }
    let min_y = pairs.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let top = 0.99 * min_y;
    let at = |offset: f64| -> Option<(f64, Ols)> {
        let uv: Vec<(f64, f64)> = pairs.iter().map(|(x, y)| (x.ln(), (y - offset).ln())).collect();
        let fit = ols(&uv)?;
        let (a, slope) = (fit.intercept.exp(), fit.slope);
        let rss: f64 = pairs.iter().map(|(x, y)| (y - offset - a * x.powf(slope)).powi(2)).sum();
        rss.is_finite().then_some((rss, fit))
    };
    let step = top / (OFFSET_GRID - 1) as f64;
    let mut best: Option<(usize, f64)> = None;
    for k in 0..OFFSET_GRID {
        if let Some((rss, _)) = at(step * k as f64) {
            if best.is_none_or(|(_, b)| rss < b) {
                best = Some((k, rss));
            }
        }
    }
    let (k, best_rss) = best?;
    let mut offset = step * k as f64;
    // Golden-section refinement on [offset − step, offset + step] ∩ [0, top].
    let (mut lo, mut hi) = ((offset - step).max(0.0), (offset + step).min(top));
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let rss_at = |c: f64| at(c).map_or(f64::INFINITY, |(r, _)| r);
    let (mut c1, mut c2) = (hi - ratio * (hi - lo), lo + ratio * (hi - lo));
    let (mut r1, mut r2) = (rss_at(c1), rss_at(c2));
    for _ in 0..80 {
        if r1 <= r2 {
            hi = c2;
            (c2, r2) = (c1, r1);
            c1 = hi - ratio * (hi - lo);
            r1 = rss_at(c1);
        } else {
            lo = c1;
            (c1, r1) = (c2, r2);
            c2 = lo + ratio * (hi - lo);
            r2 = rss_at(c2);
        }
    }
    let (refined, refined_rss) = if r1 <= r2 { (c1, r1) } else { (c2, r2) };
    if refined_rss < best_rss {
        offset = refined;
    }
    let (_, fit) = at(offset)?;
    Some(power_law_from(&pairs, name, offset, &fit))
}

/// The whole scale sweep: its models and the power laws fitted to them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScaleSweep {
    /// Layout version, [`SWEEP_FORMAT_VERSION`] when written by this crate.
    pub format: u32,
    /// Seed of every run.
    pub seed: u64,
    /// One point per model, usually smallest first.
    pub points: Vec<ScalePoint>,
    /// Power laws fitted to the points (see [`ScaleSweep::fit_points`]).
    pub fits: Vec<PowerLawFit>,
    /// Wall time of the whole sweep, in seconds.
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds: f64,
}

impl ScaleSweep {
    /// The fits a sweep reports: for loss against non-embedding parameters (`"params"`) and
    /// against training FLOPs (`"flops"`), the plain power law, plus the saturating form when it
    /// fits better, i.e. when its residual variance per degree of freedom, `RSS / (n − 3)`, is
    /// lower than the plain law's `RSS / (n − 2)` (both in linear space) and its offset is positive.
    pub fn fit_points(points: &[ScalePoint]) -> Vec<PowerLawFit> {
        let loss: Vec<f64> = points.iter().map(|p| p.loss).collect();
        let params: Vec<f64> = points.iter().map(|p| p.params as f64).collect();
        let flops: Vec<f64> = points.iter().map(|p| p.flops).collect();
        let mut out = Vec::new();
        for (name, x) in [("params", &params), ("flops", &flops)] {
            let Some(plain) = fit_power_law(x, &loss, name) else { continue };
            let plain_var = plain.residual_sum_of_squares(x, &loss) / (plain.points as f64 - 2.0);
            let offset = fit_power_law_offset(x, &loss, name).filter(|f| {
                f.offset > 0.0 && f.residual_sum_of_squares(x, &loss) / (f.points as f64 - 3.0) < plain_var
            });
            out.push(plain);
            out.extend(offset);
        }
        out
    }

    /// The sweep as pretty-printed JSON with a trailing newline (non-finite numbers as `null`).
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// Parses a sweep written by [`ScaleSweep::to_json`]; `null` numbers are read as NaN.
    ///
    /// Fails with [`SweepError::UnsupportedFormat`] when `format` is not [`SWEEP_FORMAT_VERSION`].
    pub fn from_json(s: &str) -> Result<Self, SweepError> {
        from_json(s, "scale")
    }

    /// Knowledge stored per parameter, `knowledge_bits / total_params`, per point (by name; NaN
    /// when `total_params` is 0). Compare with [`KNOWLEDGE_BITS_PER_PARAM`].
    pub fn bits_per_param(&self) -> Vec<(String, f64)> {
        self.points
            .iter()
            .map(|p| {
                let per = if p.total_params == 0 { f64::NAN } else { p.knowledge_bits / p.total_params as f64 };
                (p.name.clone(), per)
            })
            .collect()
    }

    /// The sweep as markdown: a table of the models, then each fit as one line
    /// (`loss ≈ a · N^−α (α = … ± …, R² = …)`), then a note on knowledge capacity.
    pub fn to_markdown(&self) -> String {
        let mut out = Vec::new();
        out.push(Block::Title("ascent scale sweep: scaling law and knowledge capacity".into()));
        out.push(Block::P(text(format!(
            "{} models · seed {} · wall time {} s · sweep format {}",
            self.points.len(),
            self.seed,
            format::seconds(self.seconds),
            self.format
        ))));
        out.push(Block::Heading("Models".into()));
        let head: Vec<String> = [
            "model",
            "width",
            "layers",
            "params",
            "total params",
            "tokens",
            "FLOPs",
            "loss",
            "knowledge bits",
            "bits/param",
            "seconds",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut numeric = vec![true; head.len()];
        numeric[0] = false;
        let per_param = self.bits_per_param();
        let rows = self
            .points
            .iter()
            .zip(&per_param)
            .map(|(p, (_, bpp))| {
                vec![
                    Para(vec![Inline::Code(p.name.clone())]),
                    text(p.d_model.to_string()),
                    text(p.n_layers.to_string()),
                    text(format::human_count(p.params as u64)),
                    text(format::human_count(p.total_params as u64)),
                    text(format::human_count(p.tokens)),
                    text(format::flops(p.flops)),
                    text(fixed(p.loss, 3)),
                    text(bits(p.knowledge_bits)),
                    text(fixed(*bpp, 3)),
                    text(format::seconds(p.seconds)),
                ]
            })
            .collect();
        out.push(Block::Table(Table { name: "scale-sweep", head, numeric, rows }));
        out.push(Block::Heading("Power-law fits".into()));
        if self.fits.is_empty() {
            out.push(Block::P(text("No fit: fewer than three models with a finite positive loss.")));
        } else {
            out.push(Block::List(self.fits.iter().map(|f| text(f.equation())).collect()));
            out.push(Block::P(text(
                "N: non-embedding parameters; C: training FLOPs. ± is one standard error of α from the log-log \
                 residuals (for the saturating form it ignores the offset's own uncertainty).",
            )));
        }
        out.push(Block::Heading("Knowledge capacity".into()));
        out.push(Block::P(text(format!(
            "Allen-Zhu & Li (Physics of Language Models 3.3) report that language models store about {} bits \
             of knowledge per parameter once each fact has been seen often enough; bits/param above divides the \
             stored bits by all parameters, embeddings included. The chart is in scale-sweep.svg.",
            KNOWLEDGE_BITS_PER_PARAM
        ))));
        markdown::render(&out)
    }

    /// The sweep as one SVG chart of two panels: (left) loss against non-embedding parameters on
    /// log-log axes, with the points and the fitted laws across their range, the equations in the
    /// legend; (right) knowledge bits against total parameters on log-log axes (so the reference is
    /// straight), with the 2 bits per parameter line of Allen-Zhu & Li. A model that stored no bits
    /// is drawn as × on the bottom edge.
    pub fn to_svg(&self) -> Result<String, SweepError> {
        draw_scale(self).map_err(|e| SweepError::Chart { kind: "scale", message: e.to_string() })
    }

    /// Writes `scale-sweep.json`, `scale-sweep.md` and `scale-sweep.svg` into `dir` (created if
    /// missing), each atomically (temporary file, flush, rename).
    pub fn write_all(&self, dir: &Path) -> Result<(), SweepError> {
        let svg = self.to_svg()?;
        write_three(dir, "scale-sweep", &self.to_json(), &self.to_markdown(), &svg)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers: JSON, files, number formatting
// ---------------------------------------------------------------------------------------------

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain types cannot fail: no maps with non-string keys, no custom Serialize.
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn from_json<T: DeserializeOwned>(s: &str, kind: &'static str) -> Result<T, SweepError> {
    let value: serde_json::Value = serde_json::from_str(s).map_err(|source| SweepError::Json { kind, source })?;
    if let Some(found) = value.get("format").and_then(serde_json::Value::as_u64) {
        if found != u64::from(SWEEP_FORMAT_VERSION) {
            return Err(SweepError::UnsupportedFormat { kind, found, supported: SWEEP_FORMAT_VERSION });
        }
    }
    serde_json::from_value(value).map_err(|source| SweepError::Json { kind, source })
}

fn write_three(dir: &Path, stem: &str, json: &str, md: &str, svg: &str) -> Result<(), SweepError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    write::atomic(&dir.join(format!("{stem}.json")), json.as_bytes())?;
    write::atomic(&dir.join(format!("{stem}.md")), md.as_bytes())?;
    write::atomic(&dir.join(format!("{stem}.svg")), svg.as_bytes())?;
    Ok(())
}

fn text(s: impl Into<String>) -> Para {
    Para(vec![Inline::Text(s.into())])
}

/// `v` with `decimals` decimals, or "n/a" when not finite.
fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".to_string()
    }
}

/// Bits as a short count (`123456.7` -> `123k`), or "n/a".
fn bits(v: f64) -> String {
    if v.is_finite() && v >= 0.0 {
        format::human_count(v.round() as u64)
    } else {
        "n/a".to_string()
    }
}

/// Scientific notation with `digits` significant digits and no trailing zeros: `0.00390625` -> `3.91e-3`, `0.001` -> `1e-3`.
fn sci(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let s = format!("{v:.*e}", digits.saturating_sub(1));
    match s.split_once('e') {
        Some((mantissa, exp)) if mantissa.contains('.') => {
            format!("{}e{exp}", mantissa.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s,
    }
}

/// `v` with `digits` significant digits, in plain notation between 0.001 and 100000, else scientific.
fn sig(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if (-3..5).contains(&magnitude) {
        let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        sci(v, digits)
    }
}

// ---------------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------------

type Drawn<T> = Result<T, Box<dyn Error>>;

const PANEL_WIDTH: u32 = 440;
const PANEL_HEIGHT: u32 = 380;
const GRID: RGBColor = RGBColor(0xe3, 0xe7, 0xeb);
const MUTED: RGBColor = RGBColor(0x57, 0x60, 0x6a);

fn label(h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&INK).pos(Pos::new(h, v))
}

fn caption_font() -> TextStyle<'static> {
    TextStyle::from((FONT, CAPTION_SIZE).into_font()).color(&INK)
}

/// A sequential palette (part of viridis, without its pale yellow end): `t = 0` is light green,
/// `t = 1` dark purple, so wider models are drawn darker.
fn sequential(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 4] = [(0x5e, 0xc9, 0x62), (0x21, 0x91, 0x8c), (0x3b, 0x52, 0x8b), (0x44, 0x01, 0x54)];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let at = t * (STOPS.len() - 1) as f64;
    let i = (at.floor() as usize).min(STOPS.len() - 2);
    let f = at - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Colour of the `i`-th of `n` widths (ascending).
fn width_colour(i: usize, n: usize) -> RGBColor {
    sequential(if n <= 1 { 1.0 } else { i as f64 / (n - 1) as f64 })
}

/// A legend entry's marker.
#[derive(Clone, Copy)]
enum Swatch {
    Block(RGBColor),
    Line(RGBColor),
    Dashed(RGBColor),
    Dot(RGBColor),
    Ring,
    Cross,
    Triangle,
}

/// Draws legend entries top to bottom from `(x, y)` in `area`'s pixels, 22 px apart.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    entries: &[(String, Swatch)],
) -> Drawn<()>
where
    DB::ErrorType: 'static,
{
    for (i, (name, swatch)) in entries.iter().enumerate() {
        let cy = y + 22 * i as i32;
        let (l, r) = (x, x + 18);
        match *swatch {
            Swatch::Block(c) => area.draw(&Rectangle::new([(l + 3, cy - 6), (r - 3, cy + 6)], c.filled()))?,
            Swatch::Line(c) => area.draw(&PathElement::new(vec![(l, cy), (r, cy)], c.stroke_width(2)))?,
            Swatch::Dashed(c) => area.draw(&DashedPathElement::new(vec![(l, cy), (r, cy)], 5, 3, c.stroke_width(2)))?,
            Swatch::Dot(c) => area.draw(&Circle::new((l + 9, cy), 4, c.filled()))?,
            Swatch::Ring => area.draw(&Circle::new((l + 9, cy), 6, INK.stroke_width(2)))?,
            Swatch::Cross => area.draw(&Cross::new((l + 9, cy), 5, INK.stroke_width(2)))?,
            Swatch::Triangle => area.draw(&TriangleMarker::new((l + 9, cy), 6, INK.filled()))?,
        }
        area.draw(&Text::new(name.clone(), (r + 6, cy), label(HPos::Left, VPos::Center)))?;
    }
    Ok(())
}

/// "Nice" tick values in `[lo, hi]` (both positive) for a log axis: powers of ten when the range
/// spans several decades, else 1-2-5 or denser mantissas, whichever first gives at least 3 ticks
/// (at most about 10).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const MANTISSAS: [&[f64]; 5] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0],
        &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        &[1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0, 2.2, 2.5, 2.8, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0],
    ];
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut chosen = Vec::new();
    for mantissas in MANTISSAS {
        let ticks: Vec<f64> = (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|t| *t >= lo * (1.0 - 1e-9) && *t <= hi * (1.0 + 1e-9))
            .collect();
        let enough = ticks.len() >= 3;
        if ticks.len() > 10 && !chosen.is_empty() {
            break;
        }
        chosen = ticks;
        if enough {
            break;
        }
    }
    chosen
}

/// A tick value as a short label: counts with a metric suffix (`2e5` -> `200k`, `1e6` -> `1M`), small numbers plainly.
fn tick_label(v: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")];
    if let Some((scale, suffix)) = UNITS.iter().find(|(scale, _)| v >= scale * 0.9995) {
        let s = format!("{:.2}", v / scale);
        format!("{}{suffix}", s.trim_end_matches('0').trim_end_matches('.'))
    } else if v >= 1.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        sci(v, 2)
    }
}

/// A range of log10 values padded by `pad` of its span (or ±`floor` when it is a single value).
fn padded((lo, hi): (f64, f64), pad: f64, floor: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span < 1e-9 {
        (lo - floor, hi + floor)
    } else {
        (lo - pad * span, hi + pad * span)
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn draw_lr(sweep: &LrSweep) -> Drawn<String> {
    let mut panels = sweep.parameterisations();
    for required in ["standard", "mup"] {
        if !panels.iter().any(|p| p == required) {
            panels.push(required.to_string());
        }
    }
    panels.sort_by_key(|p| parameterisation_key(p));
    let widths = sweep.widths();
    let best = sweep.best();
    let drift = drift_of(&best);

    let valid: Vec<&LrPoint> = sweep.points.iter().filter(|p| valid_lr(p.lr)).collect();
    let (x0, x1) = match min_max(valid.iter().map(|p| p.lr.log2())) {
        Some(range) => {
            let (lo, hi) = padded(range, 0.06, 1.0);
            (lo.min(range.0 - 0.3), hi.max(range.1 + 0.3))
        }
        None => (-10.0, -2.0),
    };
    // Clip: from the lowest loss to at most 3 above it; runs above are drawn on the top edge.
    let (lo, hi) = match min_max(valid.iter().map(|p| p.loss)) {
        Some((lo, hi)) => (lo, hi.min(lo + 3.0)),
        None => (0.0, 1.0),
    };
    let hi = if hi - lo < 1e-6 { lo + 0.1 } else { hi };
    let span = hi - lo;
    let (y0, edge, y1) = (lo - 0.06 * span, hi + 0.05 * span, hi + 0.1 * span);

    let legend_entries: Vec<(String, Swatch)> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| (format!("width {w}"), Swatch::Block(width_colour(i, widths.len()))))
        .chain([
            ("best lr".to_string(), Swatch::Ring),
            ("diverged".to_string(), Swatch::Cross),
            ("above the scale".to_string(), Swatch::Triangle),
        ])
        .collect();
    let legend_w = legend_entries.iter().map(|(s, _)| 7 * s.chars().count() as u32 + 44).max().unwrap_or(0).max(120);
    let height = PANEL_HEIGHT.max(60 + 22 * legend_entries.len() as u32);
    let n = panels.len() as u32;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PANEL_WIDTH * n + legend_w, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (panels_area, legend_area) = root.split_horizontally(PANEL_WIDTH * n);
        for (parameterisation, area) in panels.iter().zip(panels_area.split_evenly((1, panels.len()))) {
            let title = match drift.iter().find(|(p, _)| p == parameterisation) {
                Some((_, d)) => format!("{} · drift {d:.2} octaves", parameterisation_title(parameterisation)),
                None => parameterisation_title(parameterisation),
            };
            let mut chart = ChartBuilder::on(&area)
                .margin(10)
                .caption(title, caption_font())
                .x_label_area_size(44)
                .y_label_area_size(62)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            let x_fmt = |v: &f64| sci(v.exp2(), 2);
            let y_fmt = |v: &f64| if *v <= hi + 1e-9 { format!("{v:.2}") } else { String::new() };
            chart
                .configure_mesh()
                .x_labels(((x1 - x0).round() as usize + 1).clamp(3, 10))
                .y_labels(7)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .x_desc("peak learning rate (log₂ axis)")
                .y_desc("final validation loss")
                .label_style((FONT, LABEL_SIZE).into_font().color(&INK))
                .axis_desc_style((FONT, LABEL_SIZE).into_font().color(&INK))
                .light_line_style(WHITE)
                .bold_line_style(GRID)
                .axis_style(INK)
                .draw()?;
            // The clip line: everything above it is off the scale.
            chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(x0, hi), (x1, hi)],
                4,
                4,
                GRID.stroke_width(1),
            )))?;

            let grid = sweep.grid(parameterisation);
            if grid.rows.is_empty() {
                let (cx, cy) = chart.backend_coord(&((x0 + x1) / 2.0, (y0 + y1) / 2.0));
                root.draw(&Text::new("no runs", (cx, cy), label(HPos::Center, VPos::Center).color(&MUTED)))?;
                continue;
            }
            for row in &grid.rows {
                let colour = width_colour(widths.iter().position(|w| *w == row.width).unwrap_or(0), widths.len());
                let run: Vec<(f64, f64)> =
                    grid.lrs.iter().zip(&row.losses).filter_map(|(&lr, loss)| loss.map(|l| (lr.log2(), l))).collect();
                // The line breaks at diverged runs: there is no loss to join.
                for piece in run.split(|p| !p.1.is_finite()).filter(|piece| piece.len() >= 2) {
                    let line: Vec<(f64, f64)> = piece.iter().map(|&(x, l)| (x, l.min(edge))).collect();
                    chart.draw_series(std::iter::once(PathElement::new(line, colour.stroke_width(2))))?;
                }
                for &(x, l) in &run {
                    if !l.is_finite() {
                        chart.draw_series(std::iter::once(Cross::new((x, edge), 5, colour.stroke_width(2))))?;
                    } else if l > hi {
                        chart.draw_series(std::iter::once(TriangleMarker::new((x, edge), 5, colour.filled())))?;
                    } else {
                        chart.draw_series(std::iter::once(Circle::new((x, l), 3, colour.filled())))?;
                    }
                }
                if let Some(b) = best.iter().find(|b| &b.parameterisation == parameterisation && b.width == row.width) {
                    chart.draw_series(std::iter::once(Circle::new(
                        (b.lr.log2(), b.loss.min(edge)),
                        7,
                        INK.stroke_width(2),
                    )))?;
                }
            }
        }
        area_title(&legend_area, "widths")?;
        legend(&legend_area, (8, 40), &legend_entries)?;
        root.present()?;
    }
    Ok(svg)
}

fn area_title<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str) -> Drawn<()>
where
    DB::ErrorType: 'static,
{
    area.draw(&Text::new(title.to_string(), (8, 16), label(HPos::Left, VPos::Center)))?;
    Ok(())
}

/// A backend pixel (what `backend_coord` gives) in the pixels of `area`, for drawing on `area`.
fn local<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, (x, y): (i32, i32)) -> (i32, i32) {
    let (bx, by) = area.get_base_pixel();
    (x - bx, y - by)
}

/// One log-log panel: axes from log10 ranges, hand-placed ticks and grid lines; returns the chart.
fn log_log_panel<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    (x_desc, y_desc): (&str, &str),
    x: (f64, f64),
    y: (f64, f64),
) -> Drawn<
    ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .caption(caption, caption_font())
        .x_label_area_size(44)
        .y_label_area_size(62)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, LABEL_SIZE).into_font().color(&INK))
        .axis_style(INK)
        .draw()?;
    let x_ticks = log_ticks(10f64.powf(x.0), 10f64.powf(x.1));
    let y_ticks = log_ticks(10f64.powf(y.0), 10f64.powf(y.1));
    for t in &x_ticks {
        let u = t.log10();
        chart.draw_series(std::iter::once(PathElement::new(vec![(u, y.0), (u, y.1)], GRID.stroke_width(1))))?;
        let (px, py) = local(area, chart.backend_coord(&(u, y.0)));
        area.draw(&PathElement::new(vec![(px, py), (px, py + 5)], INK.stroke_width(1)))?;
        area.draw(&Text::new(tick_label(*t), (px, py + 8), label(HPos::Center, VPos::Top)))?;
    }
    for t in &y_ticks {
        let v = t.log10();
        chart.draw_series(std::iter::once(PathElement::new(vec![(x.0, v), (x.1, v)], GRID.stroke_width(1))))?;
        let (px, py) = local(area, chart.backend_coord(&(x.0, v)));
        area.draw(&PathElement::new(vec![(px - 5, py), (px, py)], INK.stroke_width(1)))?;
        area.draw(&Text::new(tick_label(*t), (px - 8, py), label(HPos::Right, VPos::Center)))?;
    }
    Ok(chart)
}

/// Samples `f` on `n` points evenly spaced in log10 `x`, keeping the runs inside `y`; returns
/// contiguous pieces in (log10 x, log10 y).
fn log_curve(f: impl Fn(f64) -> f64, x: (f64, f64), y: (f64, f64), n: usize) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for i in 0..n {
        let u = x.0 + (x.1 - x.0) * i as f64 / (n - 1).max(1) as f64;
        let v = f(10f64.powf(u));
        let inside = v.is_finite() && v > 0.0 && (y.0..=y.1).contains(&v.log10());
        match (inside, pieces.last_mut()) {
            (true, Some(piece)) => piece.push((u, v.log10())),
            (false, Some(piece)) if !piece.is_empty() => pieces.push(Vec::new()),
            _ => {}
        }
    }
    pieces.retain(|p| p.len() >= 2);
    pieces
}

fn draw_scale(sweep: &ScaleSweep) -> Drawn<String> {
    let fit_colours = [PALETTE[0], PALETTE[2], PALETTE[1], PALETTE[4]];
    let point_colour = INK;
    let reference_colour = PALETTE[1];

    // Left: loss against non-embedding parameters.
    let loss_points: Vec<(f64, f64)> = sweep
        .points
        .iter()
        .filter(|p| p.params > 0 && p.loss.is_finite() && p.loss > 0.0)
        .map(|p| ((p.params as f64).log10(), p.loss.log10()))
        .collect();
    let param_fits: Vec<&PowerLawFit> = sweep.fits.iter().filter(|f| f.x == "params").collect();
    let lx = padded(min_max(loss_points.iter().map(|p| p.0)).unwrap_or((4.0, 6.0)), 0.08, 0.5);
    let ly = padded(min_max(loss_points.iter().map(|p| p.1)).unwrap_or((0.0, 1.0)), 0.12, 0.05);

    // Right: knowledge bits against total parameters, with the 2 bits per parameter reference.
    let totals: Vec<f64> =
        sweep.points.iter().filter(|p| p.total_params > 0).map(|p| (p.total_params as f64).log10()).collect();
    let rx = padded(min_max(totals.iter().copied()).unwrap_or((4.0, 6.0)), 0.08, 0.5);
    let reference = |n: f64| KNOWLEDGE_BITS_PER_PARAM * n;
    let stored: Vec<f64> = sweep
        .points
        .iter()
        .filter(|p| p.knowledge_bits.is_finite() && p.knowledge_bits > 0.0)
        .map(|p| p.knowledge_bits.log10())
        .collect();
    let ref_ends = [reference(10f64.powf(rx.0)).log10(), reference(10f64.powf(rx.1)).log10()];
    let ry = padded(min_max(stored.iter().copied().chain(ref_ends)).unwrap_or((0.0, 1.0)), 0.08, 0.5);

    let mut left_entries: Vec<(String, Swatch)> = vec![("models".to_string(), Swatch::Dot(point_colour))];
    for (k, f) in param_fits.iter().enumerate() {
        left_entries.push((f.equation(), Swatch::Line(fit_colours[k % fit_colours.len()])));
    }
    let right_entries: Vec<(String, Swatch)> = vec![
        ("models (× : no bits stored)".to_string(), Swatch::Dot(point_colour)),
        (
            format!("{KNOWLEDGE_BITS_PER_PARAM} bits per parameter (Allen-Zhu & Li, Physics of LMs 3.3)"),
            Swatch::Dashed(reference_colour),
        ),
    ];
    let longest = left_entries.iter().chain(&right_entries).map(|(s, _)| s.chars().count()).max().unwrap_or(0) as u32;
    let panel_w = PANEL_WIDTH.max(7 * longest + 48);
    let strip = 16 + 22 * left_entries.len().max(right_entries.len()) as u32;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (2 * panel_w, PANEL_HEIGHT + strip)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(panel_w);

        let (plot, key) = left.split_vertically(PANEL_HEIGHT);
        let mut chart = log_log_panel(
            &plot,
            "Loss against parameters",
            ("non-embedding parameters N (log axis)", "final validation loss (log axis)"),
            lx,
            ly,
        )?;
        if loss_points.is_empty() {
            let (cx, cy) = local(&plot, chart.backend_coord(&((lx.0 + lx.1) / 2.0, (ly.0 + ly.1) / 2.0)));
            plot.draw(&Text::new(
                "no model with a finite loss",
                (cx, cy),
                label(HPos::Center, VPos::Center).color(&MUTED),
            ))?;
        }
        for (k, fit) in param_fits.iter().enumerate() {
            let colour = fit_colours[k % fit_colours.len()];
            for piece in log_curve(|n| fit.predict(n), lx, ly, 48) {
                chart.draw_series(std::iter::once(PathElement::new(piece, colour.stroke_width(2))))?;
            }
        }
        chart.draw_series(loss_points.iter().map(|&p| Circle::new(p, 4, point_colour.filled())))?;
        legend(&key, (12, 12), &left_entries)?;

        let (plot, key) = right.split_vertically(PANEL_HEIGHT);
        let mut chart = log_log_panel(
            &plot,
            "Knowledge stored against parameters",
            ("total parameters (log axis)", "knowledge stored, bits (log axis)"),
            rx,
            ry,
        )?;
        for piece in log_curve(reference, rx, ry, 2) {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                piece,
                6,
                4,
                reference_colour.stroke_width(2),
            )))?;
        }
        for p in sweep.points.iter().filter(|p| p.total_params > 0) {
            let u = (p.total_params as f64).log10();
            if p.knowledge_bits.is_finite() && p.knowledge_bits > 0.0 {
                chart.draw_series(std::iter::once(Circle::new(
                    (u, p.knowledge_bits.log10()),
                    4,
                    point_colour.filled(),
                )))?;
            } else {
                chart.draw_series(std::iter::once(Cross::new((u, ry.0), 5, point_colour.stroke_width(2))))?;
            }
        }
        legend(&key, (12, 12), &right_entries)?;
        root.present()?;
    }
    Ok(svg)
}
