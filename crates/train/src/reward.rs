//! Outcome reward model: a scalar head on the policy's transformer, trained on the policy's own
//! verified samples to predict whether an answer is correct, then used to rank best-of-N
//! samples ([`crate::testtime::Strategy::BestOfReward`]).
//!
//! Objective: binary cross-entropy between `σ(score)` and the verifier's verdict (1 = correct),
//! where `score = w·h + b` and `h` is the final hidden state (after the final norm) at the last
//! token of prompt + answer. The two classes are weighted to contribute equally, since a policy
//! is usually right far more often than wrong on its train questions (or the reverse). The
//! transformer starts from the policy checkpoint and is fine-tuned together with the head (zero
//! initialised, so every answer starts at score 0); AdamW with linear warmup and cosine decay,
//! global-norm clipping. Simplification: one score per answer (an outcome reward), not one per
//! step (a process reward).

use std::path::Path;
use std::time::Instant;

use model::burn::module::Module;
use model::burn::optim::GradientsParams;
use model::burn::prelude::*;
use model::{engine, weights, RewardModel, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokenizer::Special;

use crate::checkpoint;
use crate::config::{OptimSection, ScheduleKind, ScheduleSection};
use crate::error::TrainError;
use crate::optim::{clip_global_norm, optimizer};
use crate::schedule::lr_at;

/// How to train a reward model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    pub seed: u64,
    pub steps: usize,
    /// Answers per step.
    pub batch_size: usize,
    /// AdamW; `optim.lr` is the peak rate.
    pub optim: OptimSection,
    pub warmup_steps: usize,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            steps: 300,
            batch_size: 16,
            optim: OptimSection { lr: 1e-3, ..OptimSection::default() },
            warmup_steps: 20,
        }
    }
}

/// One training answer: the tokens of prompt + answer, and the verifier's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    pub tokens: Vec<u32>,
    pub correct: bool,
}

/// Scores of `rows` (token sequences, each at least one token), `batch` at a time, without a
/// gradient graph (on the model's inference copy). Rows longer than the model's context are cut
/// to their last tokens.
pub fn score_all(model: &RewardModel, rows: &[Vec<u32>], batch: usize, device: &Device) -> Vec<f32> {
    score_rows(&model.valid(), rows, batch, device)
}

/// Scores of `rows` with a model on a plain (inference) device.
fn score_rows(model: &RewardModel, rows: &[Vec<u32>], batch: usize, device: &Device) -> Vec<f32> {
    let max_seq = model.body.config().max_seq_len;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch.max(1)) {
        let (x, last) = pad_rows(chunk.iter().map(|r| &r[r.len().saturating_sub(max_seq)..]), device);
        let s = model.forward(x, last).try_into_vec_as::<f32>().unwrap_or_default();
        out.extend(s);
    }
    out
}

/// Rows padded to one length with `<|pad|>`, and each row's last position.
fn pad_rows<'a>(rows: impl Iterator<Item = &'a [u32]>, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let rows: Vec<&[u32]> = rows.collect();
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let pad = Special::Pad.id() as i64;
    let mut x = Vec::with_capacity(rows.len() * t);
    let mut last = Vec::with_capacity(rows.len());
    for r in &rows {
        x.extend(r.iter().map(|&v| v as i64));
        x.extend(std::iter::repeat_n(pad, t - r.len()));
        last.push(r.len().max(1) as i64 - 1);
    }
    let b = rows.len();
    (
        Tensor::<2, Int>::from_data(TensorData::new(x, [b, t]), device),
        Tensor::<2, Int>::from_data(TensorData::new(last, [b, 1]), device),
    )
}

/// Class-weighted binary cross-entropy of `scores` (logits) against `labels` (1 or 0), weights
/// `weights` per row; the weighted mean. Written with `softplus(s) = max(s, 0) + ln(1 + e^-|s|)`
/// so it is finite for any score.
pub fn weighted_bce(scores: Tensor<1>, labels: Tensor<1>, weights: Tensor<1>) -> Tensor<1> {
    let softplus = scores.clone().clamp_min(0.0) + scores.clone().abs().neg().exp().log1p();
    let per = softplus - labels * scores; // -[y ln σ(s) + (1-y) ln(1-σ(s))]
    (per * weights.clone()).sum() / weights.sum().clamp_min(1e-9)
}

/// What a reward-model run reports.
#[derive(Serialize, Clone, Debug)]
pub struct RewardSummary {
    pub steps: usize,
    pub examples: usize,
    /// Fraction of training answers labelled correct.
    pub positive_fraction: f64,
    /// Mean loss of the first and last tenth of the steps.
    pub first_loss: f64,
    pub last_loss: f64,
    pub seconds: f64,
}

/// Trains a reward model from the policy checkpoint `init` on `data`.
pub fn train_reward_model(
    init: &Path,
    data: &[Labelled],
    cfg: &RewardConfig,
) -> Result<(RewardModel, RewardSummary), TrainError> {
    crate::optim::first_order(&cfg.optim, "reward")?;
    if cfg.steps == 0 || cfg.batch_size == 0 {
        return Err(TrainError::Config {
            field: "reward.steps/batch_size".into(),
            message: "must be at least 1".into(),
        });
    }
    let positives = data.iter().filter(|d| d.correct).count();
    if data.iter().any(|d| d.tokens.is_empty()) || positives == 0 || positives == data.len() {
        return Err(TrainError::Data(format!(
            "a reward model needs non-empty answers of both kinds; got {positives} correct of {}",
            data.len()
        )));
    }
    let device = engine::device(engine::Backend::Cpu).map_err(TrainError::Engine)?;
    let train_device = engine::training_device(&device);
    let loaded = checkpoint::load(init)?;
    let (mut mcfg, _) = loaded.model_and_tokenizer()?;
    let longest = data.iter().map(|d| d.tokens.len()).max().unwrap_or(1);
    if mcfg.position != model::Position::Learned && mcfg.max_seq_len < longest {
        mcfg.max_seq_len = longest;
    }
    let blank = engine::with_seed(&train_device, cfg.seed, || Transformer::new(&mcfg, &train_device));
    let body = weights::load_safetensors(blank, &loaded.payload.model_safetensors)
        .map_err(|e| TrainError::Checkpoint { path: init.join("model.safetensors"), message: e.to_string() })?;
    let mut rm = RewardModel::new(body, &train_device);
    let n = data.len() as f64;
    let (w_pos, w_neg) = (n / (2.0 * positives as f64), n / (2.0 * (data.len() - positives) as f64));

    let schedule = ScheduleSection {
        kind: ScheduleKind::Cosine,
        warmup_steps: cfg.warmup_steps,
        min_lr_ratio: 0.1,
        decay_fraction: 0.2,
    };
    let mut optim = optimizer(&cfg.optim);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0e3d);
    let started = Instant::now();
    let mut losses = Vec::with_capacity(cfg.steps);
    let max_seq = mcfg.max_seq_len;
    for step in 0..cfg.steps {
        let picks: Vec<&Labelled> = (0..cfg.batch_size).map(|_| &data[rng.random_range(0..data.len())]).collect();
        let (x, last) =
            pad_rows(picks.iter().map(|d| &d.tokens[d.tokens.len().saturating_sub(max_seq)..]), &train_device);
        let labels: Vec<f32> = picks.iter().map(|d| d.correct as u8 as f32).collect();
        let w: Vec<f32> = picks.iter().map(|d| if d.correct { w_pos } else { w_neg } as f32).collect();
        let labels = Tensor::<1>::from_floats(labels.as_slice(), &train_device);
        let w = Tensor::<1>::from_floats(w.as_slice(), &train_device);
        let loss = weighted_bce(rm.forward(x, last), labels, w);
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(TrainError::Data(format!("reward-model loss became {value} at step {}", step + 1)));
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &rm);
        clip_global_norm(&rm, &mut grads, cfg.optim.grad_clip);
        rm = optim.step(lr_at(&schedule, cfg.optim.lr, step, cfg.steps), rm, grads);
        losses.push(value);
    }
    let tenth = (cfg.steps / 10).max(1);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let summary = RewardSummary {
        steps: cfg.steps,
        examples: data.len(),
        positive_fraction: positives as f64 / n,
        first_loss: mean(&losses[..tenth]),
        last_loss: mean(&losses[losses.len() - tenth..]),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((rm, summary))
}
