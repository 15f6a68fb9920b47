//! Logit distillation (Hinton et al., 2015): a student learns a teacher's next-token
//! distributions, not just the teacher's chosen tokens.
//!
//! Objective, at every trained position of an example (its completion, as [`Example::tokens`]
//! marks it): the forward KL divergence from the teacher to the student at temperature `τ`,
//! `τ² · Σ_v p_T(v) (log p_T(v) − log p_S(v))` with `p = softmax(logits / τ)`, averaged over
//! positions. The `τ²` keeps gradient sizes comparable across temperatures. The teacher's
//! probabilities are computed batch by batch on the inference device, without a graph. Teacher
//! and student share the tokenizer; their sizes may differ. With `replay_fraction > 0`, that
//! share of each batch's rows are windows of pretraining text, every position distilled (the
//! teacher's distributions over the corpus, which keep the student's knowledge where the
//! examples alone would wear it away, as replay does in [`crate::sft`]). Sequence-level
//! distillation (the student fine-tuned on the teacher's verified samples) is
//! [`crate::sft::sft`] on those samples.

use std::path::{Path, PathBuf};
use std::time::Instant;

use model::burn::module::Module;
use model::burn::prelude::*;
use model::burn::tensor::activation::log_softmax;
use model::{engine, weights, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokenizer::Special;

use crate::checkpoint::{self, Payload, TrainState};
use crate::config::{OptimSection, ScheduleKind, ScheduleSection};
use crate::error::TrainError;
use crate::finetune::load_model;
use crate::optim::{clip_global_norm, lr_policy, optimizer};
use crate::schedule::lr_at;
use crate::sft::Example;

/// A logit-distillation run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    pub seed: u64,
    pub steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Softmax temperature of both distributions.
    pub temperature: f64,
    pub optim: OptimSection,
    pub warmup_steps: usize,
    /// Fraction of each batch's rows that are windows of the replayed text (0 = none).
    pub replay_fraction: f64,
}

impl Default for DistillConfig {
    fn default() -> Self {
        Self {
            seed: 1337,
            steps: 300,
            batch_size: 16,
            temperature: 2.0,
            optim: OptimSection { lr: 1e-3, ..OptimSection::default() },
            warmup_steps: 10,
            replay_fraction: 0.0,
        }
    }
}

/// What a run reports.
#[derive(Serialize, Clone, Debug)]
pub struct DistillSummary {
    pub steps: usize,
    /// Mean loss of the first and last tenth of the steps.
    pub first_loss: f64,
    pub last_loss: f64,
    pub seconds: f64,
    pub checkpoint: PathBuf,
}

/// Inputs, targets' positions and 0/1 weights of token rows, padded to one length.
fn rows_to_tensors(rows: &[&(Vec<u32>, Vec<bool>)], max_seq: usize, device: &Device) -> (Tensor<2, Int>, Tensor<2>) {
    let t = rows.iter().map(|(ids, _)| ids.len().saturating_sub(1)).max().unwrap_or(1).clamp(1, max_seq);
    let pad = Special::Pad.id() as i64;
    let (mut x, mut w) = (Vec::new(), Vec::new());
    for (ids, trained) in rows {
        for j in 0..t {
            x.push(ids.get(j).map_or(pad, |&v| v as i64));
            w.push(if trained.get(j + 1).copied().unwrap_or(false) { 1.0f32 } else { 0.0 });
        }
    }
    let shape = [rows.len(), t];
    (Tensor::from_data(TensorData::new(x, shape), device), Tensor::from_data(TensorData::new(w, shape), device))
}

/// `τ² · KL(p_T ‖ p_S)` per position at temperature `τ`, weighted mean over positions.
/// `teacher_logp` and the student's logits are `(B, T, V)`; `w` is `(B, T)`.
pub fn kl_loss(student_logits: Tensor<3>, teacher_logp: Tensor<3>, w: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [b, t, _] = student_logits.dims();
    let s = log_softmax(student_logits / temperature, 2);
    let per = (teacher_logp.clone().exp() * (teacher_logp - s)).sum_dim(2).reshape([b, t]); // (B, T)
    (per * w.clone()).sum().mul_scalar(temperature * temperature) / w.sum().clamp_min(1e-9)
}

/// The teacher's log-probabilities at temperature `τ` for the rows `x`, as values on `device`.
fn teacher_logp(teacher: &Transformer, x: Tensor<2, Int>, temperature: f64, device: &Device) -> Tensor<3> {
    let dims = x.dims();
    let lp = log_softmax(teacher.forward(x) / temperature, 2);
    let v = lp.dims()[2];
    let data = lp.try_into_vec_as::<f32>().unwrap_or_default();
    Tensor::<1>::from_floats(data.as_slice(), device).reshape([dims[0], dims[1], v])
}

/// Mean `τ² · KL(teacher ‖ student)` over the trained positions of `examples` (no gradient).
pub fn mean_kl(
    teacher: &Transformer,
    student: &Transformer,
    rows: &[(Vec<u32>, Vec<bool>)],
    temperature: f64,
    device: &Device,
) -> f64 {
    let max_seq = teacher.config().max_seq_len.min(student.config().max_seq_len);
    let (mut total, mut weight) = (0.0, 0.0);
    for chunk in rows.chunks(16) {
        let refs: Vec<_> = chunk.iter().collect();
        let (x, w) = rows_to_tensors(&refs, max_seq, device);
        let n = w.clone().sum().into_scalar::<f32>() as f64;
        let t = teacher_logp(teacher, x.clone(), temperature, device);
        let l = kl_loss(student.forward(x), t, w, temperature).into_scalar::<f32>() as f64;
        total += l * n;
        weight += n;
    }
    total / weight.max(1e-9)
}

/// Distils the teacher checkpoint into the student checkpoint `student_init` on `examples` and
/// writes the student to `out_dir/checkpoints/step-N`. The two must share a tokenizer.
pub fn distill(
    teacher: &Path,
    student_init: &Path,
    examples: &[Example],
    replay: &[String],
    cfg: &DistillConfig,
    out_dir: &Path,
) -> Result<DistillSummary, TrainError> {
    if cfg.steps == 0 || cfg.batch_size == 0 || cfg.warmup_steps >= cfg.steps {
        return Err(TrainError::Config {
            field: "distill.steps/batch_size/warmup_steps".into(),
            message: "steps and batch_size at least 1, warmup_steps below steps".into(),
        });
    }
    if !(cfg.temperature.is_finite() && cfg.temperature > 0.0) {
        return Err(TrainError::Config {
            field: "distill.temperature".into(),
            message: format!("must be positive, got {}", cfg.temperature),
        });
    }
    crate::optim::first_order(&cfg.optim, "distill")?;
    if examples.is_empty() {
        return Err(TrainError::Data("distillation needs at least one example".into()));
    }
    if !(0.0..1.0).contains(&cfg.replay_fraction) {
        return Err(TrainError::Config {
            field: "distill.replay_fraction".into(),
            message: format!("must be in [0, 1), got {}", cfg.replay_fraction),
        });
    }
    let device = engine::device(engine::Backend::Cpu).map_err(TrainError::Engine)?;
    let train_device = engine::training_device(&device);
    let tok = checkpoint::load(student_init)?.model_and_tokenizer()?.1;
    let rows: Vec<(Vec<u32>, Vec<bool>)> = examples.iter().map(|e| e.tokens(&tok)).collect::<Result<_, _>>()?;
    let longest = rows.iter().map(|(r, _)| r.len()).max().unwrap_or(2);
    let (t_model, t_loaded) = load_model(teacher, longest, &device)?;
    let (mut student, s_loaded) =
        engine::with_seed(&train_device, cfg.seed, || load_model(student_init, longest, &train_device))?;
    if t_loaded.payload.tokenizer_json != s_loaded.payload.tokenizer_json {
        return Err(TrainError::Tokenizer(format!(
            "teacher {} and student {} have different tokenizers; distillation compares their distributions token by token",
            teacher.display(),
            student_init.display()
        )));
    }
    let max_seq = t_model.config().max_seq_len.min(student.config().max_seq_len);
    // Replay windows as long as the longest example (within the context), every position trained.
    let window = longest.min(max_seq + 1);
    let mut stream = Vec::new();
    for d in replay {
        stream.extend(tok.encode(d));
        stream.push(tok.eos_id());
    }
    let n_replay = if stream.len() > window + 1 {
        ((cfg.batch_size as f64 * cfg.replay_fraction).round() as usize).min(cfg.batch_size - 1)
    } else {
        0
    };
    let schedule = ScheduleSection {
        kind: ScheduleKind::Cosine,
        warmup_steps: cfg.warmup_steps,
        min_lr_ratio: 0.1,
        decay_fraction: 0.2,
    };
    let mut optim = optimizer(&cfg.optim);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xd157);
    let started = Instant::now();
    let mut losses = Vec::with_capacity(cfg.steps);
    for step in 0..cfg.steps {
        let windows: Vec<(Vec<u32>, Vec<bool>)> = (0..n_replay)
            .map(|_| {
                let s = rng.random_range(0..stream.len() - window);
                (stream[s..s + window].to_vec(), vec![true; window])
            })
            .collect();
        let picks: Vec<_> = (0..cfg.batch_size - n_replay)
            .map(|_| &rows[rng.random_range(0..rows.len())])
            .chain(windows.iter())
            .collect();
        let (x_plain, _) = rows_to_tensors(&picks, max_seq, &device);
        let target = teacher_logp(&t_model, x_plain, cfg.temperature, &train_device);
        let (x, w) = rows_to_tensors(&picks, max_seq, &train_device);
        let loss = kl_loss(student.forward(x), target, w, cfg.temperature);
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(TrainError::Data(format!("distillation loss became {value} at step {}", step + 1)));
        }
        let mut grads = model::burn::optim::GradientsParams::from_grads(loss.backward(), &student);
        clip_global_norm(&student, &mut grads, cfg.optim.grad_clip);
        let lr = lr_policy(student.config(), lr_at(&schedule, cfg.optim.lr, step, cfg.steps));
        student = optim.step(lr, student, grads);
        losses.push(value);
    }
    let seconds = started.elapsed().as_secs_f64();
    let config_json = serde_json::to_string_pretty(&serde_json::json!({
        "stage": "distill",
        "model": student.config(),
        "distill": cfg,
        "teacher": teacher.display().to_string(),
        "init": student_init.display().to_string(),
    }))
    .expect("config serialises");
    let optimizer =
        optim.into_bytes().map_err(|e| TrainError::Engine(format!("cannot serialise optimiser state: {e:?}")))?;
    let payload = Payload {
        model_safetensors: weights::to_safetensors(&student.valid(), &Default::default()),
        config_json,
        optimizer: optimizer.to_vec(),
        tokenizer_json: s_loaded.payload.tokenizer_json.clone(),
        tokenizer_config_json: s_loaded.payload.tokenizer_config_json.clone(),
    };
    let checkpoint = checkpoint::save(out_dir, &payload, TrainState::at(cfg.steps, 0, cfg.seed, 0, seconds), 1)?;
    let tenth = (cfg.steps / 10).max(1);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    Ok(DistillSummary {
        steps: cfg.steps,
        first_loss: mean(&losses[..tenth]),
        last_loss: mean(&losses[losses.len() - tenth..]),
        seconds,
        checkpoint,
    })
}
