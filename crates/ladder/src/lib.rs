//! The ascent ladder: a fixed body of knowledge, a model trained on it, then one lever per rung,
//! each re-measured on held-out questions.
//!
//! - [`preset`]: the sizes and budgets of `smoke`, `default` and `large`.
//! - [`rungs`]: the rungs as data (name, lever, stage, answer mode); add a rung there.
//! - [`fictional`]: copies of train examples about fictional people (for the rungs that must
//!   learn to read the context: tools, retrieval).
//! - [`reflect`]: the self-reflection fine-tuning data (a wrong fact line, retracted, rewritten).
//! - [`run`]: the runner: world and data files, decontamination, each rung's stage and
//!   evaluation, reuse of finished rungs, the report (via the `report` crate).
//! - [`sweep`]: the learning-rate sweep (muP against standard parameterisation across widths)
//!   and the scale sweep (loss against parameters and FLOPs, knowledge bits per parameter).
//!
//! Invariant: every rung trains on the same facts (the knowledge hash is checked into every
//! rung's row); only the rendering of the corpus changes, on the rungs whose lever it is.

pub mod fictional;
pub mod preset;
pub mod reflect;
pub mod run;
pub mod rungs;
pub mod sweep;

use std::path::PathBuf;

pub use preset::{Preset, PRESETS};
pub use run::{check_inputs, run, train_world_tokenizer, LadderOptions};
pub use sweep::{lr_sweep, scale_sweep, LrSweepOptions, ScaleSweepOptions};

/// What can stop a ladder run; each names what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    #[error("{0}")]
    Input(String),
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error(transparent)]
    Train(#[from] train::TrainError),
    #[error(transparent)]
    World(#[from] world::WorldError),
    #[error(transparent)]
    Report(#[from] report::ReportError),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("engine: {0}")]
    Engine(String),
}
