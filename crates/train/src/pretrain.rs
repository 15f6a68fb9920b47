//! Pretraining: next-token prediction on a token stream.
//!
//! Objective: minimise the mean cross-entropy of each token given the ones before it, over
//! random windows of the training stream; report the same loss on evenly spaced windows of a
//! held-out stream. Optimiser AdamW with a scheduled learning rate, global-norm clipping and
//! gradient accumulation (micro-batch losses are divided by the number of micro-batches, so the
//! summed gradient is that of the mean loss over the effective batch).
//!
//! A run writes to `out_dir`: `tokenizer.json`, `metrics.jsonl` (one JSON object per logged
//! step or evaluation) and `checkpoints/step-N/`. `resume` continues from the newest checkpoint
//! with the same weights, optimiser state, sampler state and schedule position, so the losses
//! after a resume are those of an uninterrupted run.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use model::burn::module::Module;
use model::burn::optim::GradientsAccumulator;
use model::burn::prelude::*;
use model::{engine, weights, ModelConfig, RouterStats, Transformer};
use serde::{Deserialize, Serialize};
use tokenizer::Tokenizer;

use crate::checkpoint::{self, Payload, TrainState};
use crate::config::OptimKind;
use crate::config::{PretrainConfig, Resolved};
use crate::corpus;
use crate::data::{eval_batch, Sampler, TokenData};
use crate::error::{io_err, TrainError};
use crate::optim::{clip_global_norm, gnb_grads, lr_policy, optimizer, shard_count, sharded_grads, sophia};
use crate::schedule::lr_at;

/// Number of documents in the built-in corpus.
pub const BUILTIN_DOCS: usize = 4000;

/// Checkpoints kept on disk (the newest ones).
const KEEP_CHECKPOINTS: usize = 2;

/// How a run is driven (not part of the recipe, so not in the config file).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from the newest checkpoint in `out_dir`.
    pub resume: bool,
    /// Delete an earlier run's checkpoints and metrics in `out_dir` and start over.
    pub fresh: bool,
    /// Stop after this many completed steps, as if killed (checkpoints due by then are written).
    pub stop_after: Option<usize>,
    /// No progress bar.
    pub quiet: bool,
}

/// One line of `metrics.jsonl`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Metric {
    pub step: usize,
    pub kind: String,
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    /// Mixture of experts, train lines: the routing since the previous line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeMetric>,
}

/// Router statistics of a mixture-of-experts model over a logging window.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct MoeMetric {
    /// Busiest expert's load over the mean load, averaged over layers (1 = balanced).
    pub max_over_mean: f64,
    /// Fraction of expert assignments dropped for capacity.
    pub dropped: f64,
    /// Mean balancing loss (1 = balanced).
    pub aux: f64,
}

impl MoeMetric {
    fn of(s: &RouterStats) -> Option<Self> {
        (!s.is_empty()).then(|| Self {
            max_over_mean: s.max_over_mean(),
            dropped: s.dropped_fraction(),
            aux: s.aux_mean(),
        })
    }
}

/// What a finished (or stopped) run reports.
#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    pub model: ModelConfig,
    pub params: usize,
    pub start_step: usize,
    pub steps_done: usize,
    /// Training loss of every step run in this process, as (step, loss); step is 1-based.
    pub train_losses: Vec<(usize, f64)>,
    /// (step, validation loss) for every evaluation in this process.
    pub val_losses: Vec<(usize, f64)>,
    pub tokens_seen: u64,
    /// Wall time of this process's training.
    pub seconds: f64,
    /// Wall time of the whole run: the resumed checkpoint's time plus this process's.
    pub total_seconds: f64,
    pub tokens_per_s: f64,
    pub flops: f64,
    pub last_checkpoint: Option<std::path::PathBuf>,
    /// Mixture of experts: the routing of the last logging window.
    pub moe: Option<MoeMetric>,
}

fn documents(cfg: &PretrainConfig) -> Result<Vec<String>, TrainError> {
    if cfg.data.corpus == "builtin" {
        Ok(corpus::builtin(0, BUILTIN_DOCS))
    } else {
        corpus::from_file(Path::new(&cfg.data.corpus))
    }
}

fn tok_err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Tokenizer(e.to_string())
}

/// Validation loss of `model` (no autodiff) over the fixed evaluation windows.
pub fn validation_loss(
    model: &Transformer,
    val: &[u32],
    batches: usize,
    batch: usize,
    seq: usize,
    device: &Device,
) -> f64 {
    let mut total = 0.0;
    for i in 0..batches {
        let (x, y) = eval_batch(val, i, batches, batch, seq, device);
        total += model.cross_entropy(x, y, None).into_scalar::<f32>() as f64;
    }
    total / batches as f64
}

fn append_metric(path: &Path, m: &Metric) -> Result<(), TrainError> {
    let mut f =
        OpenOptions::new().create(true).append(true).open(path).map_err(|e| io_err(path, "cannot open metrics", e))?;
    let line = serde_json::to_string(m).expect("metric serialises");
    writeln!(f, "{line}").map_err(|e| io_err(path, "cannot append metrics", e))
}

/// Drop metric lines past `step` (written by a run that was killed after its last checkpoint).
fn truncate_metrics(path: &Path, step: usize) -> Result<(), TrainError> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: Vec<&str> =
        text.lines().filter(|l| serde_json::from_str::<Metric>(l).map(|m| m.step <= step).unwrap_or(false)).collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    checkpoint::write_atomic(path, out.as_bytes())
}

/// Run (or resume) pretraining as `cfg` says.
pub fn pretrain(cfg: &PretrainConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    cfg.check()?;
    let out = cfg.out_dir.clone();
    std::fs::create_dir_all(&out).map_err(|e| io_err(&out, "cannot create out_dir", e))?;
    if opts.fresh && opts.resume {
        return Err(TrainError::Config { field: "--fresh".into(), message: "cannot be combined with --resume".into() });
    }
    if opts.fresh {
        for p in [checkpoint::checkpoints_dir(&out), out.join("metrics.jsonl")] {
            let removed = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            if let Err(e) = removed {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(io_err(&p, "cannot remove the earlier run (--fresh)", e));
                }
            }
        }
    }
    let existing = checkpoint::latest(&out);
    if existing.is_some() && !opts.resume {
        return Err(TrainError::Config {
            field: "out_dir".into(),
            message: format!(
                "`{}` already holds checkpoints; pass --resume to continue that run, or choose another out_dir",
                out.display()
            ),
        });
    }
    let loaded = match (&existing, opts.resume) {
        (Some(dir), true) => Some(checkpoint::load(dir)?),
        _ => None,
    };

    // Tokenizer: from the checkpoint, from a file, or trained on the corpus.
    let docs = documents(cfg)?;
    let tok = match &loaded {
        Some(l) => Tokenizer::from_parts(
            l.payload.tokenizer_json.as_bytes(),
            l.payload.tokenizer_config_json.as_deref(),
            "the checkpoint's tokenizer.json",
        )
        .map_err(tok_err)?,
        None if !cfg.data.tokenizer.is_empty() => Tokenizer::load(Path::new(&cfg.data.tokenizer)).map_err(tok_err)?,
        None => {
            let tcfg = tokenizer::TrainConfig { vocab_size: cfg.data.vocab_size, ..Default::default() };
            Tokenizer::train(docs.iter(), &tcfg).map_err(tok_err)?
        }
    };
    let tok_json = tok.to_json_string().map_err(tok_err)?;
    checkpoint::write_atomic(&out.join("tokenizer.json"), tok_json.as_bytes())?;
    let resolved = cfg.resolve(tok.vocab_size())?;
    if let Some(l) = &loaded {
        let saved: Resolved = serde_json::from_str(&l.payload.config_json).map_err(|e| TrainError::Checkpoint {
            path: l.dir.clone(),
            message: format!("config.json is not a pretraining config: {e}"),
        })?;
        if saved.model != resolved.model {
            return Err(TrainError::Checkpoint {
                path: l.dir.clone(),
                message: format!(
                    "was written for another architecture:\n  checkpoint: {}\n  config:     {}\nresume with the config the run started with",
                    saved.model.summary(),
                    resolved.model.summary()
                ),
            });
        }
        let (a, b) = (&saved.raw.train, &resolved.raw.train);
        if (a.batch_size, a.seq_len, a.grad_accum) != (b.batch_size, b.seq_len, b.grad_accum)
            || saved.raw.seed != resolved.raw.seed
        {
            return Err(TrainError::Checkpoint {
                path: l.dir.clone(),
                message:
                    "was written with another seed, batch_size, seq_len or grad_accum; an exact resume needs the same"
                        .into(),
            });
        }
    }
    let mcfg = resolved.model.clone();
    let t = &cfg.train;
    let data = if cfg.data.val_corpus.is_empty() {
        TokenData::build(&docs, &tok, cfg.data.val_fraction, cfg.seed, t.seq_len)?
    } else {
        let val = corpus::from_file(Path::new(&cfg.data.val_corpus))?;
        TokenData::build_split(&docs, &val, &tok, t.seq_len)?
    };

    // Engine.
    let backend: engine::Backend = cfg.backend.parse().map_err(TrainError::Engine)?;
    if cfg.threads > 0 {
        engine::set_threads(cfg.threads);
    }
    let device = engine::device(backend).map_err(TrainError::Engine)?;
    // Micro-batches run one per compute thread where the batch divides evenly; the split only
    // changes floating-point summation order (see `optim::sharded_grads`).
    let shards = shard_count(t.batch_size, rayon::current_num_threads());
    let train_device = engine::training_device(&device);
    let mut model = engine::with_seed(&device, cfg.seed, || Transformer::new(&mcfg, &train_device));
    // Sophia's Hessian estimate is refreshed by this loop through a handle.
    let (mut optim, hessian) = match cfg.optim.kind {
        OptimKind::Sophia => {
            let (o, h) = sophia(&cfg.optim);
            (o, Some(h))
        }
        _ => (optimizer(&cfg.optim), None),
    };
    let mut sampler = Sampler::new(cfg.seed);
    let (mut step, mut tokens_seen, mut prior_seconds) = (0usize, 0u64, 0.0f64);
    if let Some(l) = &loaded {
        model = weights::load_safetensors(model, &l.payload.model_safetensors)
            .map_err(|e| TrainError::Checkpoint { path: l.dir.join("model.safetensors"), message: e.to_string() })?;
        optim =
            optim.from_bytes(model::burn::tensor::Bytes::from_bytes_vec(l.payload.optimizer.clone())).map_err(|e| {
                TrainError::Checkpoint {
                    path: l.dir.join("optimizer.bpk"),
                    message: format!("cannot read optimiser state: {e:?}"),
                }
            })?;
        sampler = Sampler::restore(l.state.sampler);
        step = l.state.step;
        tokens_seen = l.state.tokens_seen;
        prior_seconds = l.state.train_seconds;
    }
    let metrics_path = out.join("metrics.jsonl");
    if loaded.is_some() {
        truncate_metrics(&metrics_path, step)?;
    } else {
        checkpoint::write_atomic(&metrics_path, b"")?;
    }

    let params = mcfg.param_count().total;
    let tokens_per_step = (t.batch_size * t.seq_len * t.grad_accum) as u64;
    let flops_per_step = mcfg.train_flops_per_token(t.seq_len) as f64 * tokens_per_step as f64;
    tracing::info!(
        "model: {} | data: {} train / {} val tokens | {} steps × {} tokens",
        mcfg.summary(),
        data.train.len(),
        data.val.len(),
        t.steps,
        tokens_per_step
    );
    let bar = if opts.quiet { ProgressBar::hidden() } else { ProgressBar::new(t.steps as u64) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    bar.set_position(step as u64);

    let start_step = step;
    let started = Instant::now();
    let mut summary = Summary {
        model: mcfg.clone(),
        params,
        start_step,
        steps_done: step,
        train_losses: Vec::new(),
        val_losses: Vec::new(),
        tokens_seen,
        seconds: 0.0,
        total_seconds: 0.0,
        tokens_per_s: 0.0,
        flops: 0.0,
        last_checkpoint: None,
        moe: None,
    };
    let mut last_val: Option<f64> = loaded.as_ref().and_then(|l| l.state.val_loss);
    let mut window_started = Instant::now();
    let mut window_tokens = 0u64;
    let mut window_routing = RouterStats::default();

    if step == 0 {
        // The starting point, so every run's curve begins at the untrained loss.
        let v = validation_loss(&model.valid(), &data.val, t.eval_batches, t.batch_size, t.seq_len, &device);
        summary.val_losses.push((0, v));
        append_metric(
            &metrics_path,
            &Metric {
                step: 0,
                kind: "val".into(),
                loss: v,
                lr: None,
                grad_norm: None,
                tokens: 0,
                tokens_per_s: 0.0,
                elapsed_s: 0.0,
                moe: None,
            },
        )?;
    }
    while step < t.steps {
        let lr = lr_at(&cfg.schedule, cfg.optim.lr, step, t.steps);
        // grad_accum micro-batches, each split row-wise into `shards` run side by side.
        let mut acc = GradientsAccumulator::<Transformer>::new();
        let mut loss_sum = 0.0;
        let mut first_x = None;
        for _ in 0..t.grad_accum {
            let (x, y) = sampler.batch(&data.train, t.batch_size, t.seq_len, &train_device);
            if first_x.is_none() {
                first_x = Some(x.clone());
            }
            let rows = t.batch_size / shards;
            let (g, losses) = sharded_grads(&model, shards, 1.0 / t.grad_accum as f32, |i, m| {
                m.loss(x.clone().narrow(0, i * rows, rows), y.clone().narrow(0, i * rows, rows), None)
            });
            loss_sum += losses.iter().sum::<f64>() / shards as f64;
            acc.accumulate(&model, g);
        }
        let mut grads = acc.grads();
        let grad_norm = clip_global_norm(&model, &mut grads, cfg.optim.grad_clip);
        if let (Some(h), Some(x)) = (&hessian, first_x) {
            if step % cfg.optim.sophia_every.max(1) == 0 {
                // Gauss–Newton–Bartlett estimate on this step's first micro-batch.
                let (g, n) = gnb_grads(&model, x, cfg.seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                model = h.update(&mut optim, model, g, n);
            }
        }
        model = optim.step(lr_policy(model.config(), lr), model, grads);
        // Mixture of experts: this step's routing moves the balancing biases (if on) and is
        // logged with the window.
        let routed = model.router_stats();
        model = model.update_router_bias(&routed);
        window_routing.merge(&routed);
        step += 1;
        tokens_seen += tokens_per_step;
        window_tokens += tokens_per_step;
        let loss = loss_sum / t.grad_accum as f64;
        if !loss.is_finite() {
            return Err(TrainError::Diverged(format!(
                "training loss became {loss} at step {step}; lower optim.lr or enable optim.grad_clip"
            )));
        }
        summary.train_losses.push((step, loss));
        bar.set_position(step as u64);

        if step % t.log_every == 0 || step == t.steps {
            let dt = window_started.elapsed().as_secs_f64().max(1e-9);
            let tps = window_tokens as f64 / dt;
            bar.set_message(format!("loss {loss:.4} lr {lr:.2e} {tps:.0} tok/s"));
            append_metric(
                &metrics_path,
                &Metric {
                    step,
                    kind: "train".into(),
                    loss,
                    lr: Some(lr),
                    grad_norm: Some(grad_norm),
                    tokens: tokens_seen,
                    tokens_per_s: tps,
                    elapsed_s: started.elapsed().as_secs_f64(),
                    moe: MoeMetric::of(&window_routing),
                },
            )?;
            summary.moe = MoeMetric::of(&window_routing).or(summary.moe);
            window_routing = RouterStats::default();
            window_started = Instant::now();
            window_tokens = 0;
        }
        let eval_due = (t.eval_every > 0 && step % t.eval_every == 0) || step == t.steps;
        if eval_due {
            let valid = model.valid();
            let v = validation_loss(&valid, &data.val, t.eval_batches, t.batch_size, t.seq_len, &device);
            last_val = Some(v);
            summary.val_losses.push((step, v));
            bar.println(format!("step {step:>6}  train loss {loss:.4}  val loss {v:.4}"));
            append_metric(
                &metrics_path,
                &Metric {
                    step,
                    kind: "val".into(),
                    loss: v,
                    lr: None,
                    grad_norm: None,
                    tokens: tokens_seen,
                    tokens_per_s: 0.0,
                    elapsed_s: started.elapsed().as_secs_f64(),
                    moe: None,
                },
            )?;
        }
        let ckpt_due = (t.checkpoint_every > 0 && step % t.checkpoint_every == 0) || step == t.steps;
        if ckpt_due {
            let optimizer = optim
                .into_bytes()
                .map_err(|e| TrainError::Engine(format!("cannot serialise optimiser state: {e:?}")))?;
            let payload = Payload {
                model_safetensors: weights::to_safetensors(&model.valid(), &Default::default()),
                config_json: serde_json::to_string_pretty(&resolved).expect("config serialises"),
                optimizer: optimizer.to_vec(),
                tokenizer_json: tok_json.clone(),
                tokenizer_config_json: tok.config_json().map(str::to_string),
            };
            let state = TrainState {
                format_version: checkpoint::FORMAT_VERSION,
                step,
                tokens_seen,
                sampler: sampler.state(),
                val_loss: last_val,
                train_seconds: prior_seconds + started.elapsed().as_secs_f64(),
                files: Default::default(),
            };
            summary.last_checkpoint = Some(checkpoint::save(&out, &payload, state, KEEP_CHECKPOINTS)?);
        }
        if opts.stop_after.is_some_and(|k| step >= k) {
            break;
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let run_tokens = (step - start_step) as u64 * tokens_per_step;
    summary.steps_done = step;
    summary.tokens_seen = tokens_seen;
    summary.seconds = seconds;
    summary.total_seconds = prior_seconds + seconds;
    summary.tokens_per_s = run_tokens as f64 / seconds.max(1e-9);
    summary.flops = flops_per_step * (step - start_step) as f64;
    Ok(summary)
}
