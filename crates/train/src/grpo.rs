//! Reinforcement learning with verifiable rewards: GRPO (group relative policy optimisation,
//! Shao et al. 2024, DeepSeekMath).
//!
//! Each step draws `questions` train questions and samples a **group** of `group` answers to
//! each from the current policy π_old (tool calls run and their results injected, as at test
//! time). The **reward** of an answer is 1 when the task's verifier accepts it, plus
//! `format_reward` when it ends in a well-formed `Answer:` line. Within a group the
//! **advantage** of answer `i` is `(r_i − mean(r)) / (std(r) + 1e-4)`; a group whose rewards are
//! all equal teaches nothing (every advantage is 0) and is skipped, its samples not even
//! forwarded. The objective, per sampled token `t` of answer `i`, with
//! `ρ = π(t) / π_old(t)`, is
//!
//! `L = −min(ρ·A_i, clip(ρ, 1 − ε, 1 + ε)·A_i) + β·(π_ref(t)/π(t) − log(π_ref(t)/π(t)) − 1)`
//!
//! (the clipped surrogate of PPO, and the k3 estimator of KL(π ‖ π_ref), which is non-negative
//! and unbiased), averaged over every trained token of the step's kept answers. Only the tokens
//! the model chose are trained: the prompt and injected tool results are masked out. Each batch
//! of samples is used for `updates` optimiser steps (π_old fixed at the policy that sampled it;
//! with one update ρ = 1 in value and the loss is the plain policy gradient plus the KL term).
//!
//! With `dynamic_sampling`, twice as many questions are drawn and the first `questions` groups
//! whose rewards differ are trained on.
//!
//! Simplifications, stated: the loss is a token-level mean over the whole step (as DAPO and
//! Dr. GRPO recommend, so long answers are not down-weighted), rather than GRPO's mean per
//! answer then per group; the reference is frozen for the whole run (no periodic reset).
//!
//! **Resume.** A checkpoint holds the policy, the optimiser state and the step; the reference is
//! the checkpoint named in the config, read again on resume; the step's questions and the seed
//! of its sampler are drawn from a generator keyed by `(seed, step)`, so the sampler's state at
//! any step is a function of the step and a resumed run takes exactly the steps of one never
//! stopped. The metrics of every step are kept in `grpo.jsonl` beside the checkpoints, written
//! atomically with each checkpoint.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use model::burn::prelude::*;
use model::burn::tensor::activation::log_softmax;
use model::generate::{generate_many, Job, Next};
use model::{engine, Sampling, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokenizer::Tokenizer;
use tools::Registry;
use world::Task;

use crate::checkpoint::{self, TrainState};
use crate::config::{OptimSection, ScheduleKind, ScheduleSection};
use crate::error::TrainError;
use crate::eval::{answer_hook, grade, prompts_for, AnswerMode};
use crate::finetune;
use crate::optim::{clip_global_norm, lr_policy, sharded_grads};
use crate::prefs::row_tensors;
use crate::pretrain::RunOptions;
use crate::qa::{qa_done, qa_grade, qa_prompts, QaTask};
use crate::schedule::lr_at;

/// A GRPO run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    pub seed: u64,
    /// Optimiser steps are `steps × updates`; `steps` is the number of sampled batches.
    pub steps: usize,
    /// Questions per step.
    pub questions: usize,
    /// Answers sampled per question (the group).
    pub group: usize,
    /// How answers are sampled (its `seed` is replaced by one drawn per step).
    pub sampling: Sampling,
    /// Tokens generated at most per answer (sampled and injected); `None` = the mode's default.
    pub max_new: Option<usize>,
    /// ε of the clipped ratio.
    pub clip: f64,
    /// β, the weight of the KL penalty to the reference (0 = none; the reference is not loaded).
    pub kl_beta: f64,
    /// Reward added for a well-formed `Answer:` line, right or wrong.
    pub format_reward: f64,
    /// Optimiser steps per sampled batch.
    pub updates: usize,
    /// Dynamic sampling (DAPO, Yu et al. 2025): draw twice `questions` questions and train on
    /// the first `questions` whose groups' rewards differ, so a step is not emptied by questions
    /// the policy always (or never) gets right.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_sampling: bool,
    /// AdamW; `optim.lr` is the peak rate.
    pub optim: OptimSection,
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    /// Write a checkpoint every this many steps (and at the end); 0 = only at the end.
    pub checkpoint_every: usize,
    /// Answers decoded together per thread when sampling.
    pub batch: usize,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            seed: 1337,
            steps: 100,
            questions: 16,
            group: 8,
            sampling: Sampling::temperature(1.0, 0),
            max_new: None,
            clip: 0.2,
            kl_beta: 0.02,
            format_reward: 0.0,
            updates: 1,
            dynamic_sampling: false,
            optim: OptimSection { lr: 2e-4, weight_decay: 0.0, ..OptimSection::default() },
            warmup_steps: 5,
            min_lr_ratio: 0.1,
            checkpoint_every: 25,
            batch: 32,
        }
    }
}

impl GrpoConfig {
    pub fn check(&self) -> Result<(), TrainError> {
        crate::optim::first_order(&self.optim, "grpo")?;
        let bad = |field: &str, message: String| TrainError::Config { field: field.into(), message };
        if self.steps == 0 || self.questions == 0 || self.updates == 0 {
            return Err(bad("grpo.steps/questions/updates", "must be at least 1".into()));
        }
        if self.group < 2 {
            return Err(bad("grpo.group", format!("a group needs at least 2 answers to compare, got {}", self.group)));
        }
        self.sampling.validate().map_err(|m| bad("grpo.sampling", m))?;
        if self.sampling.is_greedy() {
            return Err(bad(
                "grpo.sampling.temperature",
                "must be above 0: greedy answers in a group are all alike".into(),
            ));
        }
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return Err(bad("grpo.clip", format!("must be positive, got {}", self.clip)));
        }
        if !(self.kl_beta.is_finite() && self.kl_beta >= 0.0) {
            return Err(bad("grpo.kl_beta", format!("must be non-negative, got {}", self.kl_beta)));
        }
        if !self.format_reward.is_finite() {
            return Err(bad("grpo.format_reward", "must be a number".into()));
        }
        if !(self.optim.lr.is_finite() && self.optim.lr > 0.0) {
            return Err(bad("grpo.optim.lr", format!("must be positive, got {}", self.optim.lr)));
        }
        if self.warmup_steps >= self.steps * self.updates {
            return Err(bad("grpo.warmup_steps", "must be below steps × updates".into()));
        }
        Ok(())
    }
}

/// What one step measured (one line of `grpo.jsonl`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StepMetrics {
    pub step: usize,
    /// Mean reward and accuracy (verifier accepted) over all the step's samples.
    pub reward: f64,
    pub accuracy: f64,
    /// Fraction of samples with a well-formed answer line.
    pub formatted: f64,
    /// Groups skipped because their rewards were all equal, of the questions drawn.
    pub skipped_groups: usize,
    /// Samples trained on, and their sampled (trained) tokens.
    pub trained_samples: usize,
    pub trained_tokens: usize,
    /// Mean tokens the model chose per sample.
    pub length: f64,
    /// Mean k3 estimate of KL(π_old ‖ π_ref) per trained token (0 without a reference).
    pub kl: f64,
    /// Mean entropy (nats) of π_old's next-token distribution over the trained tokens.
    pub entropy: f64,
    /// Fraction of trained tokens whose ratio was clipped, over the step's updates.
    pub clip_fraction: f64,
    /// Mean loss over the step's updates (0 when every group was skipped).
    pub loss: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// What a run reports.
#[derive(Serialize, Clone, Debug)]
pub struct GrpoSummary {
    pub steps: usize,
    /// Mean reward and accuracy of the first and last tenth of the run's steps.
    pub first_reward: f64,
    pub last_reward: f64,
    pub first_accuracy: f64,
    pub last_accuracy: f64,
    /// Every step so far (those before a resume included).
    pub metrics: Vec<StepMetrics>,
    pub resumed_from: usize,
    pub seconds: f64,
    pub checkpoint: PathBuf,
}

/// The file of per-step metrics in a run folder.
pub fn metrics_path(out_dir: &Path) -> PathBuf {
    out_dir.join("grpo.jsonl")
}

/// Token rows: ids (prompt + answer) and trained marks.
type Row = (Vec<u32>, Vec<bool>);

/// Per token: the log-probability of the target, `(B, T)`, and (when asked) the entropy of the
/// distribution it was drawn from.
fn token_logps(
    model: &Transformer,
    x: Tensor<2, Int>,
    y: Tensor<2, Int>,
    entropy: bool,
) -> (Tensor<2>, Option<Tensor<2>>) {
    let [b, t] = x.dims();
    let logp = log_softmax(model.forward(x), 2);
    let h = entropy.then(|| (logp.clone().exp() * logp.clone()).sum_dim(2).reshape([b, t]).neg());
    (logp.gather(2, y.reshape([b, t, 1])).reshape([b, t]), h)
}

/// No-gradient per-token log-probabilities (and entropies) of `rows` under `model`, each row
/// at `t` positions, row-major.
fn frozen_logps(model: &Transformer, rows: &[&Row], t: usize, entropy: bool, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let (mut lp, mut ent) = (Vec::with_capacity(rows.len() * t), Vec::new());
    for chunk in rows.chunks(16) {
        let (x, y, _) = row_tensors(chunk, t, device);
        let (l, h) = token_logps(model, x, y, entropy);
        lp.extend(l.try_into_vec_as::<f32>().expect("f32 log-probabilities"));
        if let Some(h) = h {
            ent.extend(h.try_into_vec_as::<f32>().expect("f32 entropies"));
        }
    }
    (lp, ent)
}

/// The loss of one shard (all `(B, T)`: the policy's token log-probabilities, π_old's, π_ref's,
/// the advantages and the trained weights): clipped surrogate plus β·k3, summed over its trained tokens and
/// divided by `total` (the step's trained tokens). Also the number of clipped trained tokens.
#[allow(clippy::too_many_arguments)]
pub fn shard_loss(
    logp: Tensor<2>,
    old: Tensor<2>,
    reference: Option<Tensor<2>>,
    adv: Tensor<2>,
    w: Tensor<2>,
    clip: f64,
    beta: f64,
    total: f64,
) -> (Tensor<1>, Tensor<1>) {
    let ratio = (logp.clone() - old).exp();
    let unclipped = ratio.clone() * adv.clone();
    let clipped = ratio.clone().clamp(1.0 - clip, 1.0 + clip) * adv;
    let mut per_token = unclipped.min_pair(clipped).neg();
    if let Some(r) = reference {
        let d = r - logp;
        per_token = per_token + (d.clone().exp() - d).sub_scalar(1.0).mul_scalar(beta);
    }
    let n_clipped = (ratio.detach().sub_scalar(1.0).abs().greater_elem(clip).float() * w.clone()).sum();
    ((per_token * w).sum().div_scalar(total), n_clipped)
}

/// One sampled answer, graded.
struct Sample {
    row: Row,
    reward: f64,
    correct: bool,
    formatted: bool,
    sampled: usize,
}

/// The training row of a sampled answer: the prompt then the generated tokens, trained where
/// the model chose the token (never the prompt, never an injected tool result).
pub fn sample_row(prompt: &[u32], generated: &[u32], forced: &[bool]) -> (Vec<u32>, Vec<bool>) {
    let mut ids = prompt.to_vec();
    ids.extend(generated);
    let mut trained = vec![false; prompt.len()];
    trained.extend(forced.iter().map(|f| !f));
    (ids, trained)
}

/// Group-normalised advantages of `rewards` (consecutive groups of `group`):
/// `(index, (r − mean) / (std + 1e-4))` for every answer of a group whose rewards differ, and
/// the number of groups skipped because theirs were all equal.
pub fn advantages(rewards: &[f64], group: usize) -> (Vec<(usize, f32)>, usize) {
    let mut kept = Vec::new();
    let mut skipped = 0;
    for (q, g) in rewards.chunks(group.max(1)).enumerate() {
        let n = g.len() as f64;
        let mean = g.iter().sum::<f64>() / n;
        let std = (g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        if std < 1e-9 {
            skipped += 1;
            continue;
        }
        kept.extend(g.iter().enumerate().map(|(j, r)| (q * group + j, ((r - mean) / (std + 1e-4)) as f32)));
    }
    (kept, skipped)
}

/// The seed of step `step`'s generator.
fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6770)
}

/// What GRPO asks and how it rewards: the world's tasks answered in a mode and graded by their
/// verifiers, or question/answer tasks of your own ([`crate::qa`]) asked as `ascent eval` asks
/// them and graded by their named verifiers.
#[derive(Clone, Copy, Debug)]
pub enum Questions<'a> {
    World(&'a [Task]),
    Qa(&'a [QaTask]),
}

impl Questions<'_> {
    fn len(&self) -> usize {
        match self {
            Self::World(t) => t.len(),
            Self::Qa(t) => t.len(),
        }
    }
}

/// Trains the model of checkpoint `init` with GRPO on `tasks` answered in `mode` (`tools` is the
/// registry of [`AnswerMode::Tools`]) and writes `out_dir/checkpoints/step-N`. The KL reference
/// is `reference` (default: `init`). With `opts.resume`, continues from the newest checkpoint in
/// `out_dir`, which must have been written by a run of the same config; `opts.stop_after` stops
/// early as if killed.
#[allow(clippy::too_many_arguments)]
pub fn grpo(
    init: &Path,
    reference: Option<&Path>,
    tasks: &[Task],
    mode: AnswerMode,
    tools: Option<Arc<Registry>>,
    cfg: &GrpoConfig,
    out_dir: &Path,
    opts: &RunOptions,
) -> Result<GrpoSummary, TrainError> {
    run(init, reference, Questions::World(tasks), mode, tools, cfg, out_dir, opts)
}

/// GRPO on question/answer tasks of your own: the reward is their verifier's verdict (plus
/// `format_reward` when it can read an answer at all). Otherwise as [`grpo`].
pub fn grpo_qa(
    init: &Path,
    reference: Option<&Path>,
    tasks: &[QaTask],
    cfg: &GrpoConfig,
    out_dir: &Path,
    opts: &RunOptions,
) -> Result<GrpoSummary, TrainError> {
    run(init, reference, Questions::Qa(tasks), AnswerMode::Direct, None, cfg, out_dir, opts)
}

/// Tokens an answer to a question/answer task may take when the recipe leaves `max_new` unset.
pub const QA_MAX_NEW: usize = 128;

#[allow(clippy::too_many_arguments)]
fn run(
    init: &Path,
    reference: Option<&Path>,
    tasks: Questions<'_>,
    mode: AnswerMode,
    tools: Option<Arc<Registry>>,
    cfg: &GrpoConfig,
    out_dir: &Path,
    opts: &RunOptions,
) -> Result<GrpoSummary, TrainError> {
    cfg.check()?;
    if tasks.len() == 0 {
        return Err(TrainError::Data("GRPO needs at least one question".into()));
    }
    if mode == AnswerMode::Tools && tools.is_none() {
        return Err(TrainError::Config {
            field: "grpo.mode".into(),
            message: "tools mode needs a tool registry".into(),
        });
    }
    let device = engine::device(engine::Backend::Cpu).map_err(TrainError::Engine)?;
    let train_device = engine::training_device(&device);
    let init_loaded = checkpoint::load(init)?;
    let tok: Tokenizer = init_loaded.model_and_tokenizer()?.1;
    let reference_dir = reference.unwrap_or(init);
    let ref_model = if cfg.kl_beta > 0.0 {
        let (m, loaded) = finetune::load_model(reference_dir, 0, &device)?;
        if loaded.payload.tokenizer_json != init_loaded.payload.tokenizer_json {
            return Err(TrainError::Tokenizer(format!(
                "the reference {} has another tokenizer than {}",
                reference_dir.display(),
                init.display()
            )));
        }
        Some(m)
    } else {
        None
    };
    let finetune::Start { mut model, mut optim, step: start, prior_seconds, dir: start_dir, loaded } =
        finetune::start("grpo", cfg, init, out_dir, opts, &cfg.optim, cfg.seed, 0, &train_device)?;
    let mcfg = model.config().clone();
    let mut metrics: Vec<StepMetrics> = if start > 0 { read_metrics(out_dir, start)? } else { Vec::new() };
    let schedule = ScheduleSection {
        kind: ScheduleKind::Cosine,
        warmup_steps: cfg.warmup_steps,
        min_lr_ratio: cfg.min_lr_ratio,
        decay_fraction: 0.2,
    };
    let total_updates = cfg.steps * cfg.updates;
    let mut config = serde_json::json!({
        "stage": "grpo",
        "model": mcfg,
        "grpo": cfg,
        "mode": mode,
        "init": init.display().to_string(),
        "reference": reference_dir.display().to_string(),
    });
    if let Questions::Qa(_) = tasks {
        config["questions"] = "qa".into();
    }
    let world_hook = answer_hook(&tok, mode, tools.as_deref());
    let hook = |i: usize, ids: &[u32], forced: &[bool]| match tasks {
        Questions::World(_) => world_hook(i, ids, forced),
        Questions::Qa(_) if qa_done(&tok, ids) => Next::Stop,
        Questions::Qa(_) => Next::Continue,
    };
    let bar = finetune::progress("grpo", cfg.steps, start, opts.quiet);
    let started = Instant::now();
    let mut last = None;
    for step in start..cfg.steps {
        let step_started = Instant::now();
        // The step's questions and sampler seed.
        let mut rng = step_rng(cfg.seed, step);
        let draw = if cfg.dynamic_sampling { 2 * cfg.questions } else { cfg.questions };
        let picked: Vec<usize> = rand::seq::index::sample(&mut rng, tasks.len(), draw.min(tasks.len())).into_vec();
        let sampling = Sampling { seed: rng.random(), ..cfg.sampling.clone() };

        // A group of answers per question from π_old.
        let policy = model.valid();
        let (prompts, max_new) = match tasks {
            Questions::World(all) => {
                let picked: Vec<Task> = picked.iter().map(|&i| all[i].clone()).collect();
                prompts_for(&policy, &tok, &picked, mode, cfg.max_new, None)?
            }
            Questions::Qa(all) => {
                qa_prompts(&policy, &tok, picked.iter().map(|&i| &all[i]), cfg.max_new.unwrap_or(QA_MAX_NEW))?
            }
        };
        let jobs: Vec<Job> = prompts
            .iter()
            .enumerate()
            .flat_map(|(q, p)| {
                (0..cfg.group).map(move |j| Job { prompt: p.clone(), stream: (q * cfg.group + j) as u64 })
            })
            .collect();
        let gens =
            generate_many(&policy, &jobs, max_new, cfg.batch, &sampling, &hook, &device).map_err(TrainError::Engine)?;
        let mut samples = Vec::with_capacity(gens.len());
        for (j, g) in gens.iter().enumerate() {
            let q = j / cfg.group;
            let (_, predicted, correct) = match tasks {
                Questions::World(all) => grade(&tok, &all[picked[q]], mode, &g.tokens),
                Questions::Qa(all) => qa_grade(&tok, &all[picked[q]], &g.tokens),
            };
            let formatted = predicted.is_some();
            samples.push(Sample {
                row: sample_row(&prompts[q], &g.tokens, &g.forced),
                reward: f64::from(u8::from(correct)) + if formatted { cfg.format_reward } else { 0.0 },
                correct,
                formatted,
                sampled: g.sampled_count(),
            });
        }

        // Group-normalised advantages; groups with one reward are skipped.
        let rewards: Vec<f64> = samples.iter().map(|s| s.reward).collect();
        let (mut kept, skipped) = advantages(&rewards, cfg.group);
        // Each informative group keeps all its answers: the first `questions` groups are kept.
        kept.truncate(cfg.questions * cfg.group);
        let rows: Vec<&Row> = kept.iter().map(|&(i, _)| &samples[i].row).collect();
        // Trained tokens: those predicted within the context (a row keeps its first `max_seq`).
        let trained_tokens: usize =
            rows.iter().map(|(_, tr)| tr.iter().skip(1).take(mcfg.max_seq_len).filter(|&&b| b).count()).sum();
        let (mut kl, mut entropy, mut clip_fraction, mut loss_sum) = (0.0, 0.0, 0.0, 0.0);
        let lr_first = lr_at(&schedule, cfg.optim.lr, step * cfg.updates, total_updates);
        if !rows.is_empty() && trained_tokens > 0 {
            let t = rows.iter().map(|(ids, _)| ids.len() - 1).max().unwrap_or(1).min(mcfg.max_seq_len);
            let (old, ent) = frozen_logps(&policy, &rows, t, true, &device);
            let refs = ref_model.as_ref().map(|r| frozen_logps(r, &rows, t, false, &device).0);
            let (_, _, w_all) = row_tensors(&rows, t, &device);
            let w_all: Vec<f32> = w_all.try_into_vec_as::<f32>().expect("f32 log-probabilities");
            let total = trained_tokens as f64;
            entropy = ent.iter().zip(&w_all).map(|(h, w)| f64::from(h * w)).sum::<f64>() / total;
            if let Some(r) = &refs {
                kl = r
                    .iter()
                    .zip(&old)
                    .zip(&w_all)
                    .map(|((r, o), w)| {
                        let d = f64::from(r - o);
                        f64::from(*w) * (d.exp() - d - 1.0)
                    })
                    .sum::<f64>()
                    / total;
            }
            // Shards of contiguous rows, one per compute thread.
            let shards = rayon::current_num_threads().clamp(1, rows.len());
            let per = rows.len().div_ceil(shards);
            let shards = rows.len().div_ceil(per);
            let shard_data: Vec<_> = (0..shards)
                .map(|s| {
                    let range = s * per..((s + 1) * per).min(rows.len());
                    let (x, y, w) = row_tensors(&rows[range.clone()], t, &train_device);
                    let b = range.len();
                    let slice = |v: &[f32]| {
                        Tensor::<2>::from_data(
                            TensorData::new(v[range.start * t..range.end * t].to_vec(), [b, t]),
                            &train_device,
                        )
                    };
                    let adv: Vec<f32> =
                        kept[range.clone()].iter().flat_map(|&(_, a)| std::iter::repeat_n(a, t)).collect();
                    let adv = Tensor::<2>::from_data(TensorData::new(adv, [b, t]), &train_device);
                    (x, y, w, slice(&old), refs.as_deref().map(slice), adv)
                })
                .collect();
            let clipped_tokens = Mutex::new(0.0f64);
            for u in 0..cfg.updates {
                let (mut grads, shard_losses) = sharded_grads(&model, shards, shards as f32, |i, m| {
                    let (x, y, w, old, r, adv) = &shard_data[i];
                    let (logp, _) = token_logps(m, x.clone(), y.clone(), false);
                    let (loss, n_clipped) =
                        shard_loss(logp, old.clone(), r.clone(), adv.clone(), w.clone(), cfg.clip, cfg.kl_beta, total);
                    *clipped_tokens.lock().expect("not poisoned") += n_clipped.into_scalar::<f32>() as f64;
                    loss
                });
                clip_global_norm(&model, &mut grads, cfg.optim.grad_clip);
                let lr = lr_at(&schedule, cfg.optim.lr, step * cfg.updates + u, total_updates);
                model = optim.step(lr_policy(model.config(), lr), model, grads);
                let loss: f64 = shard_losses.iter().sum();
                if !loss.is_finite() {
                    return Err(TrainError::Data(format!(
                        "GRPO loss became {loss} at step {}; lower grpo.optim.lr",
                        step + 1
                    )));
                }
                loss_sum += loss;
            }
            clip_fraction = *clipped_tokens.lock().expect("not poisoned") / (total * cfg.updates as f64);
        }
        let n = samples.len() as f64;
        let m = StepMetrics {
            step: step + 1,
            reward: samples.iter().map(|s| s.reward).sum::<f64>() / n,
            accuracy: samples.iter().filter(|s| s.correct).count() as f64 / n,
            formatted: samples.iter().filter(|s| s.formatted).count() as f64 / n,
            skipped_groups: skipped,
            trained_samples: rows.len(),
            trained_tokens,
            length: samples.iter().map(|s| s.sampled as f64).sum::<f64>() / n,
            kl,
            entropy,
            clip_fraction,
            loss: loss_sum / cfg.updates as f64,
            lr: lr_first,
            seconds: step_started.elapsed().as_secs_f64(),
        };
        bar.set_position(step as u64 + 1);
        bar.set_message(format!("reward {:.3} acc {:.3} kl {:.4}", m.reward, m.accuracy, m.kl));
        metrics.push(m);
        let done = step + 1;
        let due = done == cfg.steps || (cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0);
        let stop = opts.stop_after.is_some_and(|k| done >= k);
        if due || stop {
            let seconds = finetune::seconds_since(started, prior_seconds);
            let state = TrainState::at(done, 0, cfg.seed, done as u128, seconds);
            let ckpt = finetune::save(out_dir, &model, &optim, config.clone(), &loaded.payload, state, 2)?;
            write_metrics(out_dir, &metrics)?;
            last = Some(ckpt);
        }
        if stop {
            break;
        }
    }
    bar.finish_and_clear();
    let ran = &metrics[start.min(metrics.len())..];
    let (first_reward, last_reward) = finetune::first_last(&ran.iter().map(|m| m.reward).collect::<Vec<_>>());
    let (first_accuracy, last_accuracy) = finetune::first_last(&ran.iter().map(|m| m.accuracy).collect::<Vec<_>>());
    Ok(GrpoSummary {
        steps: cfg.steps,
        first_reward,
        last_reward,
        first_accuracy,
        last_accuracy,
        metrics,
        resumed_from: start,
        seconds: finetune::seconds_since(started, prior_seconds),
        checkpoint: last.unwrap_or(start_dir),
    })
}

/// Writes every step's metrics to `grpo.jsonl`, atomically.
fn write_metrics(out_dir: &Path, metrics: &[StepMetrics]) -> Result<(), TrainError> {
    let mut text = String::new();
    for m in metrics {
        text.push_str(&serde_json::to_string(m).expect("metrics serialise"));
        text.push('\n');
    }
    checkpoint::write_atomic(&metrics_path(out_dir), text.as_bytes())
}

/// The metrics of steps `1..=upto` of an earlier run in `out_dir`.
fn read_metrics(out_dir: &Path, upto: usize) -> Result<Vec<StepMetrics>, TrainError> {
    let path = metrics_path(out_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(crate::error::io_err(&path, "cannot read", e)),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let m: StepMetrics =
            serde_json::from_str(line).map_err(|e| TrainError::Data(format!("{}:{}: {e}", path.display(), i + 1)))?;
        if m.step <= upto {
            out.push(m);
        }
    }
    Ok(out)
}
