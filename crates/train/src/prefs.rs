//! Preference optimisation: learn from pairs of answers to one prompt, one preferred (chosen)
//! over the other (rejected). Two objectives:
//!
//! - **DPO** (Rafailov et al., 2023), against a frozen reference model π_ref (by default the
//!   starting checkpoint). With log-probabilities summed over an answer's trained tokens,
//!   `h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))` and the loss is
//!   `−log σ(β·h)`: the policy moves probability from the rejected answer to the chosen one,
//!   measured relative to where the reference stood, so nothing pulls it further than the
//!   preference needs.
//! - **ORPO** (Hong et al., 2024), with no reference: `P(y) = exp(mean token log-prob of y)`,
//!   `odds(y) = P(y) / (1 − P(y))`, and the loss is the chosen answer's negative log-likelihood
//!   plus `λ · −log σ(log odds(c) − log odds(r))`. Simplification: the likelihood term is the mean
//!   over pairs of each chosen answer's mean token NLL (the paper averages over tokens).
//!
//! **Stepwise DPO** is rounds of DPO where each round's reference is the previous round's result:
//! call [`prefs`] again with `reference` set to the last checkpoint.
//!
//! An answer's trained tokens are those [`Example::tokens`] marks: the answer's own text and the
//! closing `<|eos|>`, never the prompt or a forced range (a tool's result). The reference's
//! log-probabilities are computed once, before the first step. Optimiser AdamW with linear
//! warmup and cosine decay, global-norm clipping. Checkpoints every `checkpoint_every` steps
//! hold the policy, the optimiser state and the step; the pairs of step `s` are drawn from a
//! generator seeded by `(seed, s)`, so a resumed run takes the same steps as one never stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use model::burn::prelude::*;
use model::burn::tensor::activation::log_softmax;
use model::{engine, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokenizer::{Special, Tokenizer};

use crate::checkpoint::{self, TrainState};
use crate::config::{OptimSection, ScheduleKind, ScheduleSection};
use crate::error::TrainError;
use crate::finetune;
use crate::optim::{clip_global_norm, lr_policy, shard_count, sharded_grads};
use crate::pretrain::RunOptions;
use crate::schedule::lr_at;
use crate::sft::Example;

/// Two answers to one prompt, the first preferred.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    /// Byte ranges of `chosen` the runtime injected (tool results): read, never trained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chosen_forced: Vec<(usize, usize)>,
    /// The same for `rejected`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_forced: Vec<(usize, usize)>,
}

impl Pair {
    pub fn new(prompt: impl Into<String>, chosen: impl Into<String>, rejected: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            chosen: chosen.into(),
            rejected: rejected.into(),
            chosen_forced: Vec::new(),
            rejected_forced: Vec::new(),
        }
    }

    /// The two answers as fine-tuning examples (prompt + answer, with their forced ranges).
    pub fn examples(&self) -> [Example; 2] {
        [
            Example {
                prompt: self.prompt.clone(),
                completion: self.chosen.clone(),
                forced: self.chosen_forced.clone(),
                messages: None,
            },
            Example {
                prompt: self.prompt.clone(),
                completion: self.rejected.clone(),
                forced: self.rejected_forced.clone(),
                messages: None,
            },
        ]
    }
}

/// The preference objective and its strength.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Objective {
    /// `−log σ(β·h)` against a frozen reference.
    Dpo { beta: f64 },
    /// Chosen NLL + `λ · −log σ(log odds ratio)`, no reference.
    Orpo { lambda: f64 },
}

impl Objective {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dpo { .. } => "dpo",
            Self::Orpo { .. } => "orpo",
        }
    }
}

/// A preference-optimisation run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PrefConfig {
    pub seed: u64,
    pub objective: Objective,
    /// Optimiser steps.
    pub steps: usize,
    /// Pairs per step.
    pub batch_size: usize,
    /// AdamW; `optim.lr` is the peak rate.
    pub optim: OptimSection,
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    /// Write a checkpoint every this many steps (and at the end); 0 = only at the end.
    pub checkpoint_every: usize,
}

impl Default for PrefConfig {
    fn default() -> Self {
        Self {
            seed: 1337,
            objective: Objective::Dpo { beta: 0.1 },
            steps: 200,
            batch_size: 8,
            optim: OptimSection { lr: 5e-4, weight_decay: 0.0, ..OptimSection::default() },
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            checkpoint_every: 50,
        }
    }
}

impl PrefConfig {
    pub fn check(&self) -> Result<(), TrainError> {
        crate::optim::first_order(&self.optim, "prefs")?;
        let bad = |field: &str, message: String| TrainError::Config { field: field.into(), message };
        if self.steps == 0 || self.batch_size == 0 {
            return Err(bad("prefs.steps/batch_size", "must be at least 1".into()));
        }
        if !(self.optim.lr.is_finite() && self.optim.lr > 0.0) {
            return Err(bad("prefs.optim.lr", format!("must be positive, got {}", self.optim.lr)));
        }
        if self.warmup_steps >= self.steps {
            return Err(bad("prefs.warmup_steps", format!("must be below prefs.steps = {}", self.steps)));
        }
        match self.objective {
            Objective::Dpo { beta } if !(beta.is_finite() && beta > 0.0) => {
                Err(bad("prefs.objective.beta", format!("must be positive, got {beta}")))
            }
            Objective::Orpo { lambda } if !(lambda.is_finite() && lambda >= 0.0) => {
                Err(bad("prefs.objective.lambda", format!("must be non-negative, got {lambda}")))
            }
            _ => Ok(()),
        }
    }
}

/// What a run reports.
#[derive(Serialize, Clone, Debug)]
pub struct PrefSummary {
    pub objective: String,
    pub steps: usize,
    pub pairs: usize,
    /// Mean loss of the first and last tenth of the steps (of this process's steps, on resume).
    pub first_loss: f64,
    pub last_loss: f64,
    pub losses: Vec<f64>,
    /// Step the run started from (0, or the resumed checkpoint's).
    pub resumed_from: usize,
    pub seconds: f64,
    pub checkpoint: PathBuf,
}

/// Token rows of examples: ids and trained marks.
type Row = (Vec<u32>, Vec<bool>);

/// Inputs, targets and 0/1 weights of `rows`, padded to one length (at most `max_seq`
/// predictions per row; a longer row keeps its first ones).
fn batch_tensors(rows: &[&Row], max_seq: usize, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
    let t = rows.iter().map(|(ids, _)| ids.len().saturating_sub(1)).max().unwrap_or(1).clamp(1, max_seq);
    row_tensors(rows, t, device)
}

/// Inputs, targets and trained weights of `rows`, each padded or cut to `t` predictions
/// (`ids[j]` predicts `ids[j + 1]`, weighted 1 where `trained[j + 1]`).
pub(crate) fn row_tensors(rows: &[&Row], t: usize, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
    let pad = Special::Pad.id() as i64;
    let (mut x, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for (ids, trained) in rows {
        for j in 0..t {
            x.push(ids.get(j).map_or(pad, |&v| v as i64));
            y.push(ids.get(j + 1).map_or(pad, |&v| v as i64));
            w.push(if trained.get(j + 1).copied().unwrap_or(false) { 1.0f32 } else { 0.0 });
        }
    }
    let shape = [rows.len(), t];
    (
        Tensor::from_data(TensorData::new(x, shape), device),
        Tensor::from_data(TensorData::new(y, shape), device),
        Tensor::from_data(TensorData::new(w, shape), device),
    )
}

/// Per row: the summed log-probability of its trained tokens and how many there are. `(B)` each.
pub fn sequence_logps(
    model: &Transformer,
    x: Tensor<2, Int>,
    y: Tensor<2, Int>,
    w: Tensor<2>,
) -> (Tensor<1>, Tensor<1>) {
    let [b, t] = x.dims();
    let logp = log_softmax(model.forward(x), 2); // (B, T, V)
    let tok = logp.gather(2, y.reshape([b, t, 1])).reshape([b, t]);
    let sum = (tok * w.clone()).sum_dim(1).reshape([b]);
    (sum, w.sum_dim(1).reshape([b]))
}

/// `ln(1 + e^z)`, finite for every `z`.
fn softplus(z: Tensor<1>) -> Tensor<1> {
    z.clone().clamp_min(0.0) + z.abs().neg().exp().log1p()
}

/// The loss of one micro-batch of `n` pairs: `logp, count` of its `2n` rows (chosen rows first),
/// and for DPO the reference's summed log-probabilities of the same rows.
fn pair_loss(
    objective: Objective,
    logp: Tensor<1>,
    count: Tensor<1>,
    reference: Option<Tensor<1>>,
    n: usize,
) -> Tensor<1> {
    match objective {
        Objective::Dpo { beta } => {
            let rel = match reference {
                Some(r) => logp - r,
                None => logp,
            };
            let h = rel.clone().narrow(0, 0, n) - rel.narrow(0, n, n);
            softplus(h.mul_scalar(-beta)).mean()
        }
        Objective::Orpo { lambda } => {
            // Mean token log-probability; below 0 by a hair so that 1 − P stays positive.
            let mean = (logp / count.clamp_min(1.0)).clamp_max(-1e-6);
            let log_odds = mean.clone() - mean.clone().exp().neg().log1p();
            let ratio = log_odds.clone().narrow(0, 0, n) - log_odds.narrow(0, n, n);
            let nll = mean.narrow(0, 0, n).neg().mean();
            nll + softplus(ratio.neg()).mean().mul_scalar(lambda)
        }
    }
}

/// Summed log-probabilities of `rows`' trained tokens under `model` (no gradient), `batch` rows
/// at a time.
pub fn row_logps(model: &Transformer, rows: &[Row], batch: usize, device: &Device) -> Vec<f64> {
    let max_seq = model.config().max_seq_len;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch.max(1)) {
        let refs: Vec<&Row> = chunk.iter().collect();
        let (x, y, w) = batch_tensors(&refs, max_seq, device);
        let (sum, _) = sequence_logps(model, x, y, w);
        out.extend(sum.try_into_vec_as::<f32>().unwrap_or_default().into_iter().map(f64::from));
    }
    out
}

/// The tokens of each pair's chosen and rejected answers.
pub fn pair_rows(pairs: &[Pair], tok: &Tokenizer) -> Result<Vec<[Row; 2]>, TrainError> {
    pairs
        .iter()
        .map(|p| {
            let [c, r] = p.examples();
            Ok([c.tokens(tok)?, r.tokens(tok)?])
        })
        .collect()
}

/// `log π(chosen) − log π(rejected)` per pair under `model` (an inference model, on `device`).
pub fn margins(model: &Transformer, tok: &Tokenizer, pairs: &[Pair], device: &Device) -> Result<Vec<f64>, TrainError> {
    let rows: Vec<Row> = pair_rows(pairs, tok)?.into_iter().flatten().collect();
    let lp = row_logps(model, &rows, 32, device);
    Ok(lp.chunks(2).map(|c| c[0] - c[1]).collect())
}

/// Trains the model of checkpoint `init` on `pairs` with `cfg.objective` and writes
/// `out_dir/checkpoints/step-N`. DPO's reference is `reference` (default: `init`); ORPO uses
/// none. With `opts.resume`, continues from the newest checkpoint in `out_dir`, which must have
/// been written by a run of the same config; `opts.stop_after` stops early as if killed.
pub fn prefs(
    init: &Path,
    reference: Option<&Path>,
    pairs: &[Pair],
    cfg: &PrefConfig,
    out_dir: &Path,
    opts: &RunOptions,
) -> Result<PrefSummary, TrainError> {
    cfg.check()?;
    if pairs.is_empty() {
        return Err(TrainError::Data("preference optimisation needs at least one pair".into()));
    }
    let device = engine::device(engine::Backend::Cpu).map_err(TrainError::Engine)?;
    let train_device = engine::training_device(&device);
    let tok = checkpoint::load(init)?.model_and_tokenizer()?.1;
    let rows = pair_rows(pairs, &tok)?;
    let longest = rows.iter().flatten().map(|(ids, _)| ids.len()).max().unwrap_or(2);

    // The reference's log-probabilities, once.
    let ref_logps: Option<Vec<f64>> = match cfg.objective {
        Objective::Dpo { .. } => {
            let (r, _) = finetune::load_model(reference.unwrap_or(init), longest, &device)?;
            let flat: Vec<Row> = rows.iter().flatten().cloned().collect();
            Some(row_logps(&r, &flat, 16, &device))
        }
        Objective::Orpo { .. } => None,
    };

    // The policy: from the newest checkpoint on resume, else from `init`.
    let finetune::Start { mut model, mut optim, step: start, prior_seconds, dir: start_dir, loaded } =
        finetune::start("prefs", cfg, init, out_dir, opts, &cfg.optim, cfg.seed, longest, &train_device)?;
    let mcfg = model.config().clone();
    let schedule = ScheduleSection {
        kind: ScheduleKind::Cosine,
        warmup_steps: cfg.warmup_steps,
        min_lr_ratio: cfg.min_lr_ratio,
        decay_fraction: 0.2,
    };
    let shards = shard_count(cfg.batch_size, rayon::current_num_threads());
    let per = cfg.batch_size / shards;
    let bar = finetune::progress(cfg.objective.name(), cfg.steps, start, opts.quiet);
    let started = Instant::now();
    let mut losses = Vec::new();
    let config = serde_json::json!({
        "stage": cfg.objective.name(),
        "model": mcfg,
        "prefs": cfg,
        "init": init.display().to_string(),
        "reference": reference.unwrap_or(init).display().to_string(),
    });
    let mut last = None;
    for step in start..cfg.steps {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let picks: Vec<usize> = (0..cfg.batch_size).map(|_| rng.random_range(0..rows.len())).collect();
        // Each shard: its pairs' chosen rows, then their rejected rows.
        let shard_data: Vec<_> = picks
            .chunks(per)
            .map(|ps| {
                let shard_rows: Vec<&Row> =
                    ps.iter().map(|&i| &rows[i][0]).chain(ps.iter().map(|&i| &rows[i][1])).collect();
                let (x, y, w) = batch_tensors(&shard_rows, mcfg.max_seq_len, &train_device);
                let r = ref_logps.as_ref().map(|lp| {
                    let v: Vec<f32> =
                        ps.iter().map(|&i| lp[2 * i] as f32).chain(ps.iter().map(|&i| lp[2 * i + 1] as f32)).collect();
                    Tensor::<1>::from_floats(v.as_slice(), &train_device)
                });
                (x, y, w, r)
            })
            .collect();
        let (mut grads, shard_losses) = sharded_grads(&model, shards, 1.0, |i, m| {
            let (x, y, w, r) = &shard_data[i];
            let (logp, count) = sequence_logps(m, x.clone(), y.clone(), w.clone());
            pair_loss(cfg.objective, logp, count, r.clone(), per)
        });
        clip_global_norm(&model, &mut grads, cfg.optim.grad_clip);
        let lr = lr_policy(model.config(), lr_at(&schedule, cfg.optim.lr, step, cfg.steps));
        model = optim.step(lr, model, grads);
        let loss = shard_losses.iter().sum::<f64>() / shards as f64;
        if !loss.is_finite() {
            return Err(TrainError::Data(format!(
                "{} loss became {loss} at step {}; lower prefs.optim.lr",
                cfg.objective.name(),
                step + 1
            )));
        }
        losses.push(loss);
        bar.set_position(step as u64 + 1);
        bar.set_message(format!("loss {loss:.4}"));
        let done = step + 1;
        let due = done == cfg.steps || (cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0);
        let stop = opts.stop_after.is_some_and(|k| done >= k);
        if due || stop {
            let state =
                TrainState::at(done, 0, cfg.seed, done as u128, finetune::seconds_since(started, prior_seconds));
            last = Some(finetune::save(out_dir, &model, &optim, config.clone(), &loaded.payload, state, 2)?);
        }
        if stop {
            break;
        }
    }
    bar.finish_and_clear();
    let checkpoint = match last {
        Some(d) => d,
        None => start_dir.clone(),
    };
    let (first_loss, last_loss) = finetune::first_last(&losses);
    Ok(PrefSummary {
        objective: cfg.objective.name().into(),
        steps: cfg.steps,
        pairs: pairs.len(),
        first_loss,
        last_loss,
        losses,
        resumed_from: start,
        seconds: finetune::seconds_since(started, prior_seconds),
        checkpoint,
    })
}
