//! What every resumable fine-tuning stage (preference optimisation, GRPO) shares: starting from
//! a checkpoint or resuming the newest one in the run folder, refusing to resume under another
//! config, writing checkpoints that hold the policy, the optimiser and the step, the progress
//! bar, and the loss summary.
//!
//! A stage's checkpoint is a [`checkpoint`] folder whose `config.json` names the stage, the
//! model, the stage's config (under the stage's key) and the checkpoints it started from; a
//! resume compares the stored stage config with the one given and refuses any difference, since
//! the steps of a resumed run are only those of an uninterrupted one if every setting agrees.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use model::burn::module::Module;
use model::burn::optim::ModuleOptimizer;
use model::burn::prelude::*;
use model::{engine, weights, Position, Transformer};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checkpoint::{self, Payload, TrainState};
use crate::config::OptimSection;
use crate::error::{io_err, TrainError};
use crate::optim::optimizer;
use crate::pretrain::RunOptions;

/// Loads a checkpoint's model onto `device` (its context widened to `min_len` positions where
/// rotary positions allow).
pub(crate) fn load_model(
    dir: &Path,
    min_len: usize,
    device: &Device,
) -> Result<(Transformer, checkpoint::Loaded), TrainError> {
    let loaded = checkpoint::load(dir)?;
    let (mut mcfg, _) = loaded.model_and_tokenizer()?;
    if mcfg.position != Position::Learned && mcfg.max_seq_len < min_len {
        mcfg.max_seq_len = min_len;
    }
    let blank = Transformer::new(&mcfg, device);
    let model = weights::load_safetensors(blank, &loaded.payload.model_safetensors)
        .map_err(|e| TrainError::Checkpoint { path: dir.join("model.safetensors"), message: e.to_string() })?;
    Ok((model, loaded))
}

/// A stage's policy as it starts: from `init`, or from the newest checkpoint of the run being
/// resumed, with its optimiser state and the step it had reached.
pub(crate) struct Start {
    /// The policy, on the training device.
    pub model: Transformer,
    pub optim: ModuleOptimizer,
    /// Steps already taken (0 for a new run).
    pub step: usize,
    /// Training seconds of the earlier part of a resumed run.
    pub prior_seconds: f64,
    /// Where the policy was read from.
    pub dir: PathBuf,
    pub loaded: checkpoint::Loaded,
}

/// Starts or resumes the stage `key` (the name its config is stored under) in `out_dir`.
/// Without `opts.resume` or `opts.fresh`, an `out_dir` that already holds checkpoints is an
/// error (nothing is overwritten); `opts.fresh` deletes them first.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start<C: Serialize + DeserializeOwned + PartialEq>(
    key: &str,
    cfg: &C,
    init: &Path,
    out_dir: &Path,
    opts: &RunOptions,
    optim: &OptimSection,
    seed: u64,
    min_len: usize,
    train_device: &Device,
) -> Result<Start, TrainError> {
    if opts.fresh && opts.resume {
        return Err(TrainError::Config { field: "--fresh".into(), message: "cannot be combined with --resume".into() });
    }
    let existing = checkpoint::latest(out_dir);
    if existing.is_some() && !opts.resume && !opts.fresh {
        return Err(TrainError::Config {
            field: "out_dir".into(),
            message: format!("`{}` already holds checkpoints; resume that run or choose another", out_dir.display()),
        });
    }
    if opts.fresh {
        let dir = checkpoint::checkpoints_dir(out_dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, "cannot remove (fresh)", e))?;
        }
    }
    let dir = match (&existing, opts.resume) {
        (Some(d), true) => d.clone(),
        _ => init.to_path_buf(),
    };
    let (model, loaded) = engine::with_seed(train_device, seed, || load_model(&dir, min_len, train_device))?;
    let mut optim = optimizer(optim);
    let (mut step, mut prior_seconds) = (0, 0.0);
    if dir != init {
        let saved: serde_json::Value = serde_json::from_str(&loaded.payload.config_json)
            .map_err(|e| TrainError::Checkpoint { path: dir.clone(), message: format!("config.json: {e}") })?;
        let same = saved.get(key).and_then(|p| serde_json::from_value::<C>(p.clone()).ok());
        if same.as_ref() != Some(cfg) {
            return Err(TrainError::Checkpoint {
                path: dir.clone(),
                message: format!("was written by a {key} run with another config; resume with the same one"),
            });
        }
        optim = optim
            .from_bytes(model::burn::tensor::Bytes::from_bytes_vec(loaded.payload.optimizer.clone()))
            .map_err(|e| TrainError::Checkpoint {
                path: dir.join("optimizer.bpk"),
                message: format!("cannot read optimiser state: {e:?}"),
            })?;
        step = loaded.state.step;
        prior_seconds = loaded.state.train_seconds;
    }
    Ok(Start { model, optim, step, prior_seconds, dir, loaded })
}

/// Writes a stage checkpoint of `model` after `step` steps: its weights, `config` as
/// `config.json`, the optimiser state and the tokenizer files of `tokenizer_of`. Keeps the newest `keep` checkpoints.
pub(crate) fn save(
    out_dir: &Path,
    model: &Transformer,
    optim: &ModuleOptimizer,
    config: serde_json::Value,
    tokenizer_of: &Payload,
    state: TrainState,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let bytes =
        optim.into_bytes().map_err(|e| TrainError::Engine(format!("cannot serialise optimiser state: {e:?}")))?;
    let payload = Payload {
        model_safetensors: weights::to_safetensors(&model.valid(), &Default::default()),
        config_json: serde_json::to_string_pretty(&config).expect("config serialises"),
        optimizer: bytes.to_vec(),
        tokenizer_json: tokenizer_of.tokenizer_json.clone(),
        tokenizer_config_json: tokenizer_of.tokenizer_config_json.clone(),
    };
    checkpoint::save(out_dir, &payload, state, keep)
}

/// A progress bar for `steps` steps of stage `name` (hidden when `quiet`), at `at`.
pub(crate) fn progress(name: &str, steps: usize, at: usize, quiet: bool) -> ProgressBar {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(steps as u64) };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {name} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {{msg}}"
        ))
        .expect("valid template"),
    );
    bar.set_position(at as u64);
    bar
}

/// Mean of the first and of the last tenth of `values` (NaN for none).
pub(crate) fn first_last(values: &[f64]) -> (f64, f64) {
    let tenth = (values.len() / 10).max(1).min(values.len());
    let mean = |s: &[f64]| if s.is_empty() { f64::NAN } else { s.iter().sum::<f64>() / s.len() as f64 };
    (mean(&values[..tenth]), mean(&values[values.len() - tenth..]))
}

/// Seconds since `started`, plus `prior` (a resumed run's earlier seconds).
pub(crate) fn seconds_since(started: Instant, prior: f64) -> f64 {
    prior + started.elapsed().as_secs_f64()
}
