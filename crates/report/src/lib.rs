//! The ladder report: what `ascent ladder` measured, as one serde type, and its three renderings.
//!
//! A [`LadderReport`] holds the world the ladder was trained on (seed, fact count, knowledge and
//! corpus hashes), one [`RungReport`] per rung (held-out accuracy per task family with 95% Wilson
//! intervals, the recall probe, compute spent, the hashes seen on that rung) and the run's totals.
//! It renders as
//! - JSON ([`LadderReport::to_json`], [`LadderReport::from_json`]): the machine-readable record;
//!   field names are stable, unknown fields are ignored on reading, so an older reader survives a
//!   newer report that only added fields;
//! - markdown ([`LadderReport::to_markdown`]): tables for a terminal or a pull request;
//! - HTML ([`LadderReport::to_html`]): one self-contained file (inline CSS, inline SVG charts drawn
//!   with `plotters`' SVG backend, no script, no external asset) with the same content.
//!
//! [`LadderReport::write_all`] writes all three atomically. The crate does no training and knows
//! nothing of the tensor engine: every number in a report comes from its caller.

#![warn(missing_docs)]

mod chart;
mod doc;
mod format;
mod html;
mod markdown;
pub mod sweep;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the JSON layout written by [`LadderReport::to_json`].
///
/// Adding a field does not change it (readers ignore unknown fields and new fields get
/// `#[serde(default)]`); it is bumped only for a change an older reader would misread.
pub const FORMAT_VERSION: u32 = 1;

/// Task families in display order; a family not listed here is shown after these, by name.
pub const FAMILY_ORDER: [&str; 7] = ["recall", "two_hop", "three_hop", "compare", "arithmetic", "parity", "inverse"];

/// The whole ladder run: the world, one entry per rung, and the totals.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LadderReport {
    /// Layout version, [`FORMAT_VERSION`] when written by this crate.
    pub format: u32,
    /// Preset the ladder ran with: `"smoke"`, `"default"` or `"large"`.
    pub preset: String,
    /// Version of ascent that produced the report.
    pub version: String,
    /// The fixed body of knowledge every rung trains on.
    pub world: WorldInfo,
    /// Human-readable lines describing the run (world size, model sizes, budget), shown under "Setup".
    pub setup: Vec<String>,
    /// The rungs, in the order they were climbed.
    pub rungs: Vec<RungReport>,
    /// Wall time of the whole run, in seconds.
    #[serde(deserialize_with = "nullable::f64")]
    pub total_seconds: f64,
    /// Where it ran, e.g. `"2 threads, cpu backend"`.
    pub machine: String,
}

/// The generated (or imported) world: its identity and size.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WorldInfo {
    /// Seed the world was generated from.
    pub seed: u64,
    /// Number of facts (triples) in the knowledge base.
    pub facts: usize,
    /// SHA-256 (hex) of the knowledge base; the same on every rung.
    pub knowledge_sha256: String,
    /// SHA-256 (hex) of the single-rendering corpus.
    pub corpus_sha256: String,
    /// Tokens in the single-rendering corpus under the world's tokenizer.
    pub corpus_tokens: u64,
    /// People per split (`"train"`, `"heldout"`) -> count.
    pub people: BTreeMap<String, usize>,
    /// `"generated"`, or the path of the imported knowledge base.
    pub source: String,
}

/// One rung of the ladder: the lever it adds and what was measured after adding it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RungReport {
    /// Rung name: `"baseline"`, `"augmentation"`, `"architecture"`, `"schedule"`, `"cot-sft"`, ...
    pub name: String,
    /// One line: what this rung changes relative to the one before.
    pub lever: String,
    /// SHA-256 (hex) of the knowledge base this rung trained on.
    pub knowledge_sha256: String,
    /// SHA-256 (hex) of the corpus text this rung trained on.
    pub corpus_sha256: String,
    /// Number of renderings of each fact in this rung's corpus.
    pub renderings: usize,
    /// Architecture summary line.
    pub model: String,
    /// Number of model parameters.
    pub params: usize,
    /// How answers were produced: `"direct"` or `"trace"`.
    pub answer_mode: String,
    /// Family -> fraction of held-out tasks answered correctly (0..=1).
    #[serde(deserialize_with = "nullable::map")]
    pub accuracy: BTreeMap<String, f64>,
    /// Family -> 95% Wilson interval `[low, high]` of that fraction (see [`wilson_interval`]).
    #[serde(deserialize_with = "nullable::map_pair")]
    pub accuracy_ci95: BTreeMap<String, [f64; 2]>,
    /// Family -> number of held-out tasks scored.
    pub tasks: BTreeMap<String, usize>,
    /// Number of hops (`"1"`, `"2"`, `"3"`, ...) -> fraction correct.
    #[serde(deserialize_with = "nullable::map")]
    pub accuracy_by_hops: BTreeMap<String, f64>,
    /// Unweighted mean of `accuracy` over families.
    #[serde(deserialize_with = "nullable::f64")]
    pub mean_accuracy: f64,
    /// Recall of stored facts, for train and held-out people.
    pub recall_probe: RecallProbe,
    /// Tokens trained on in this rung's own stage.
    pub train_tokens: u64,
    /// Training FLOPs of this rung's own stage.
    #[serde(deserialize_with = "nullable::f64")]
    pub flops: f64,
    /// Wall time of this rung (train + eval), in seconds.
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds: f64,
    /// True when a finished earlier result was reused instead of re-running the rung.
    pub reused: bool,
    /// Fields later rungs add; absent in older reports.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// A rung trained at several seeds: its mean accuracy at each, and its reference rung's at
    /// the same seeds. The other fields are seed 0's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Seeds>,
}

/// Replicates of a rung and of the rung it is compared with, at the same seed offsets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Seeds {
    /// Seed offsets (0 = the rung's own run).
    pub seeds: Vec<u64>,
    /// This rung's mean accuracy (unweighted over families) at each seed.
    #[serde(deserialize_with = "nullable::vec")]
    pub mean_accuracy: Vec<f64>,
    /// The rung compared with, if any.
    pub reference: Option<String>,
    /// Its mean accuracy at the same seeds (empty without a reference).
    #[serde(deserialize_with = "nullable::vec")]
    pub reference_mean_accuracy: Vec<f64>,
}

/// A rung against the rung it is compared with, over seeds ([`Seeds::verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Better at every level of noise the seeds show (paired t-test, 5%).
    Better,
    /// Worse, likewise.
    Worse,
    /// Not distinguishable from seed-to-seed variation.
    WithinNoise,
}

impl Verdict {
    /// As the report prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better (paired t, 5%)",
            Verdict::Worse => "worse (paired t, 5%)",
            Verdict::WithinNoise => "within seed noise",
        }
    }
}

/// Mean and sample standard deviation (n − 1; 0 for one value) of `xs`.
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

impl Seeds {
    /// This rung's mean and standard deviation over seeds.
    pub fn own(&self) -> (f64, f64) {
        mean_sd(&self.mean_accuracy)
    }

    /// The reference rung's mean and standard deviation over the same seeds.
    pub fn reference(&self) -> Option<(f64, f64)> {
        (!self.reference_mean_accuracy.is_empty()).then(|| mean_sd(&self.reference_mean_accuracy))
    }

    /// Whether the paired difference is distinguishable from seed noise: a two-sided paired
    /// t-test at 5% (Student's t with n − 1 degrees of freedom). `None` without a reference or
    /// with fewer than two seeds.
    pub fn verdict(&self) -> Option<Verdict> {
        let (d, sd) = self.difference()?;
        let n = self.mean_accuracy.len();
        if n < 2 || !d.is_finite() || !sd.is_finite() {
            return None;
        }
        // Two-sided 5% critical values of Student's t for 1..=10 degrees of freedom.
        const T: [f64; 10] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
        let critical = T.get(n - 2).copied().unwrap_or(1.96);
        let t = if sd > 0.0 {
            d / (sd / (n as f64).sqrt())
        } else if d == 0.0 {
            0.0
        } else {
            d.signum() * f64::INFINITY
        };
        Some(if t.abs() < critical {
            Verdict::WithinNoise
        } else if t > 0.0 {
            Verdict::Better
        } else {
            Verdict::Worse
        })
    }

    /// The paired difference (this − reference, seed by seed): mean and standard deviation.
    pub fn difference(&self) -> Option<(f64, f64)> {
        if self.reference_mean_accuracy.len() != self.mean_accuracy.len() || self.mean_accuracy.is_empty() {
            return None;
        }
        let d: Vec<f64> = self.mean_accuracy.iter().zip(&self.reference_mean_accuracy).map(|(a, b)| a - b).collect();
        Some(mean_sd(&d))
    }
}

/// The recall probe: fraction of stored facts recalled, by split of the people they are about.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RecallProbe {
    /// Fraction recalled about train people.
    #[serde(deserialize_with = "nullable::f64")]
    pub train: f64,
    /// Fraction recalled about held-out people.
    #[serde(deserialize_with = "nullable::f64")]
    pub heldout: f64,
}

/// What can go wrong reading or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The text is not JSON, or not a ladder report.
    #[error("not a valid ladder report: {0}; was it written by `ascent ladder` (report.json)?")]
    Json(#[from] serde_json::Error),
    /// The report's `format` is not one this reader understands.
    #[error("ladder report format {found} is not supported by this reader (it reads format {supported}); use the ascent version that wrote it")]
    UnsupportedFormat {
        /// The `format` field found in the report.
        found: u64,
        /// [`FORMAT_VERSION`].
        supported: u32,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}; check that the folder exists and is writable")]
    Io {
        /// The file (or folder) involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LadderReport {
    /// The report as pretty-printed JSON with a trailing newline.
    ///
    /// Non-finite numbers (NaN, infinity) are written as `null` and read back as NaN.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail: map keys are strings, no custom Serialize.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }

    /// Parses a report written by [`LadderReport::to_json`] (this or any later version that only
    /// added fields: unknown fields are ignored).
    ///
    /// Fails with [`ReportError::UnsupportedFormat`] when `format` is not [`FORMAT_VERSION`].
    pub fn from_json(s: &str) -> Result<Self, ReportError> {
        let value: serde_json::Value = serde_json::from_str(s)?;
        if let Some(found) = value.get("format").and_then(serde_json::Value::as_u64) {
            if found != u64::from(FORMAT_VERSION) {
                return Err(ReportError::UnsupportedFormat { found, supported: FORMAT_VERSION });
            }
        }
        Ok(serde_json::from_value(value)?)
    }

    /// The report as markdown: world, setup, accuracy table, hashes, models, per-hop accuracy.
    pub fn to_markdown(&self) -> String {
        markdown::render(&doc::document(self))
    }

    /// The report as one self-contained HTML page: the markdown's content plus two inline SVG
    /// charts (accuracy per family and rung with 95% whiskers; mean accuracy and recall probe per rung).
    pub fn to_html(&self) -> String {
        html::render(self, &doc::document(self))
    }

    /// Writes `report.json`, `report.md` and `report.html` into `dir` (created if missing).
    ///
    /// Each file is written to a temporary name in `dir`, flushed to disk and renamed over the
    /// final name, so a reader never sees a half-written file; on failure no temporary file is left.
    pub fn write_all(&self, dir: &Path) -> Result<(), ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
        write::atomic(&dir.join("report.json"), self.to_json().as_bytes())?;
        write::atomic(&dir.join("report.md"), self.to_markdown().as_bytes())?;
        write::atomic(&dir.join("report.html"), self.to_html().as_bytes())?;
        Ok(())
    }

    /// Families present on any rung, in display order: [`FAMILY_ORDER`] first, then others by name.
    pub fn families(&self) -> Vec<String> {
        let mut present: Vec<String> = Vec::new();
        for rung in &self.rungs {
            for family in rung.accuracy.keys().chain(rung.tasks.keys()).chain(rung.accuracy_ci95.keys()) {
                if !present.contains(family) {
                    present.push(family.clone());
                }
            }
        }
        present.sort_by_key(|f| (FAMILY_ORDER.iter().position(|k| k == f).unwrap_or(FAMILY_ORDER.len()), f.clone()));
        present
    }
}

/// The 95% Wilson score interval `[low, high]` for `successes` out of `n` trials (`[0, 1]` when `n` is 0).
pub fn wilson_interval(successes: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let z = 1.959_963_984_540_054_f64;
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    // At p = 0 or 1 the bound is exactly 0 or 1; rounding would leave it a hair inside.
    let lo = if successes == 0 { 0.0 } else { (centre - half).max(0.0) };
    let hi = if successes >= n { 1.0 } else { (centre + half).min(1.0) };
    [lo, hi]
}

/// Readers that accept `null` for a float (serde_json writes NaN and infinity as `null`) and give NaN.
mod nullable {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer};

    fn or_nan(v: Option<f64>) -> f64 {
        v.unwrap_or(f64::NAN)
    }

    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(or_nan(Option::<f64>::deserialize(d)?))
    }

    pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<f64>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }

    pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let raw = BTreeMap::<String, Option<f64>>::deserialize(d)?;
        Ok(raw.into_iter().map(|(k, v)| (k, or_nan(v))).collect())
    }

    pub fn map_pair<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, [f64; 2]>, D::Error> {
        let raw = BTreeMap::<String, [Option<f64>; 2]>::deserialize(d)?;
        Ok(raw.into_iter().map(|(k, [lo, hi])| (k, [or_nan(lo), or_nan(hi)])).collect())
    }
}
