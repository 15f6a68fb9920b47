//! Supervised fine-tuning: continue a checkpoint on (prompt, completion) examples.
//!
//! Objective: the mean cross-entropy of the completion tokens (and the end-of-sequence token
//! after them) given the prompt; prompt, padding and forced positions (text the runtime injects,
//! such as tool results: [`Example::forced`]) carry weight 0. A fraction of
//! each batch replays random windows of pretraining text with full weight, so that the new
//! skill does not overwrite the stored knowledge it is meant to use.
//!
//! Optimiser AdamW (fresh state) with linear warmup and cosine decay; global-norm clipping.
//! The result is a checkpoint in the usual format (`checkpoints/step-N/`) whose `config.json`
//! holds `{"stage": "sft", "model": ..., "sft": ...}`. An SFT run is short, so a killed one
//! restarts from its initial checkpoint rather than resuming mid-way.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use model::burn::module::Module;
use model::burn::prelude::*;
use model::{engine, weights, Position, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokenizer::Tokenizer;

use crate::checkpoint::{self, Payload, TrainState};
use crate::config::{OptimSection, ScheduleKind, ScheduleSection};
use crate::error::TrainError;
use crate::optim::{clip_global_norm, lr_policy, optimizer, shard_count, sharded_grads};
use crate::schedule::lr_at;

/// One supervised example: the model sees `prompt` and learns to write `completion`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Example {
    pub prompt: String,
    pub completion: String,
    /// Byte ranges of `completion` that the runtime injects (tool results): the model reads
    /// them but is not trained to write them. Sorted, disjoint, on character boundaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced: Vec<(usize, usize)>,
    /// The conversation a chat example came from (role, content): a tokenizer with its own
    /// chat template (an imported model's) renders it with that template instead of the
    /// project's format that `prompt` and `completion` hold.
    #[serde(skip)]
    pub messages: Option<Vec<(String, String)>>,
}

impl Example {
    pub fn new(prompt: impl Into<String>, completion: impl Into<String>) -> Self {
        Self { prompt: prompt.into(), completion: completion.into(), ..Default::default() }
    }

    /// The example's tokens (prompt, completion, `<|eos|>`) and, per token, whether the model is
    /// trained to write it: completion tokens outside the forced ranges and the final
    /// `<|eos|>`. Each piece of the completion is tokenised on its own, so a forced range
    /// never shares a token with the text around it.
    pub fn tokens(&self, tok: &Tokenizer) -> Result<(Vec<u32>, Vec<bool>), TrainError> {
        let bad = |m: String| TrainError::Data(format!("SFT example with prompt {:?}: {m}", self.prompt));
        if tok.is_foreign() {
            // An imported tokenizer may not tokenise pieces on their own as it does the whole
            // text (a SentencePiece tokenizer prefixes every text it encodes with a space), so the
            // row is encoded whole and each token takes the mark of the piece it starts in.
            let encode = |pieces: &[(&str, bool)]| tok.encode_marked(pieces).map_err(|e| bad(e.to_string()));
            if let Some(messages) = &self.messages {
                // Its chat template's own turn markers end each assistant turn, so no
                // end-of-sequence token is added.
                let template = tok.chat_template().ok_or_else(|| {
                    bad("the model's tokenizer has no chat template to render the conversation with".into())
                })?;
                let segments = crate::sftdata::template_segments(template, messages).map_err(bad)?;
                let pieces: Vec<(&str, bool)> = segments.iter().map(|(t, m)| (t.as_str(), *m)).collect();
                return encode(&pieces);
            }
            let mut pieces = vec![(self.prompt.as_str(), false)];
            let mut at = 0;
            let c = &self.completion;
            for &(a, b) in &self.forced {
                check_range(c, at, a, b).map_err(bad)?;
                pieces.extend([(&c[at..a], true), (&c[a..b], false)]);
                at = b;
            }
            pieces.push((&c[at..], true));
            let (mut ids, mut trained) = encode(&pieces)?;
            ids.push(tok.eos_id());
            trained.push(true);
            return Ok((ids, trained));
        }
        let mut ids = tok.encode(&self.prompt);
        let mut trained = vec![false; ids.len()];
        let mut at = 0;
        let c = &self.completion;
        for &(a, b) in &self.forced {
            check_range(c, at, a, b).map_err(bad)?;
            for (piece, train) in [(&c[at..a], true), (&c[a..b], false)] {
                let p = tok.encode(piece);
                trained.extend(std::iter::repeat_n(train, p.len()));
                ids.extend(p);
            }
            at = b;
        }
        let rest = tok.encode(&c[at..]);
        trained.extend(std::iter::repeat_n(true, rest.len()));
        ids.extend(rest);
        ids.push(tok.eos_id());
        trained.push(true);
        Ok((ids, trained))
    }
}

/// That forced range `a..b` of `completion` comes after `at`, in order, on character boundaries.
fn check_range(completion: &str, at: usize, a: usize, b: usize) -> Result<(), String> {
    if a < at || b < a || b > completion.len() || !completion.is_char_boundary(a) || !completion.is_char_boundary(b) {
        return Err(format!("forced range {a}..{b} is not a sorted, disjoint range of the completion"));
    }
    Ok(())
}

/// The fine-tuning recipe.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    pub seed: u64,
    /// Optimiser steps.
    pub steps: usize,
    /// Rows per step (examples + replay windows).
    pub batch_size: usize,
    /// Fraction of each batch's rows that replay pretraining text.
    pub replay_fraction: f64,
    /// AdamW; `optim.lr` is the peak rate.
    pub optim: OptimSection,
    /// Linear warmup steps, then cosine decay to `min_lr_ratio · lr`.
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    /// Pack several examples into each example row (as many as fit, drawn at random), each
    /// attending only to itself ([`model::Transformer::forward_packed`]), instead of one
    /// example per row padded to the longest. (Left out of the written config when off, so
    /// configs written before it existed read and hash the same.)
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pack: bool,
    /// Draw examples from a growing prefix of the list (the caller orders it from easy to
    /// hard); none = uniformly from all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curriculum: Option<Curriculum>,
}

/// A competence curriculum (Platanios et al. 2019): at step `s` of `S`, examples are drawn
/// uniformly from the first `⌈n·c(s)⌉` of the `n` in the list, with competence
/// `c(s) = min(1, start + (1 − start)·s / (ramp·S))`: a `start` share at first, all of them
/// from `ramp·S` steps on. Ordering the examples (by hops, say) is the caller's part.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Curriculum {
    /// Share of the examples available at the first step, in (0, 1].
    pub start: f64,
    /// Share of the steps after which every example is available, in (0, 1].
    pub ramp: f64,
}

impl Curriculum {
    /// How many of `n` examples step `step` of `steps` may draw from (at least 1).
    pub fn available(&self, n: usize, step: usize, steps: usize) -> usize {
        let progress = step as f64 / (self.ramp * steps as f64).max(1.0);
        let c = (self.start + (1.0 - self.start) * progress).min(1.0);
        ((n as f64 * c).ceil() as usize).clamp(1, n)
    }
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            seed: 1337,
            steps: 200,
            batch_size: 16,
            replay_fraction: 0.25,
            optim: OptimSection { lr: 1e-3, ..OptimSection::default() },
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            pack: false,
            curriculum: None,
        }
    }
}

/// Draws that may not fit the rest of a packed row before the row is closed.
const PACK_MISSES: usize = 4;

/// One training row: inputs, targets, weights, and each position's document (for packing).
struct RowBuf {
    x: Vec<i64>,
    y: Vec<i64>,
    w: Vec<f32>,
    doc: Vec<u32>,
}

impl RowBuf {
    fn with_capacity(seq: usize) -> Self {
        Self {
            x: Vec::with_capacity(seq),
            y: Vec::with_capacity(seq),
            w: Vec::with_capacity(seq),
            doc: Vec::with_capacity(seq),
        }
    }

    /// Appends the predictions of one example (`ids[j]` predicts `ids[j + 1]`, counted where the
    /// model is to write that token), at most `room` of them, as document `doc`.
    fn push_example(&mut self, ids: &[u32], trained: &[bool], room: usize, doc: u32) {
        for j in 0..ids.len().saturating_sub(1).min(room) {
            self.x.push(ids[j] as i64);
            self.y.push(ids[j + 1] as i64);
            self.w.push(if trained[j + 1] { 1.0 } else { 0.0 });
            self.doc.push(doc);
        }
    }

    /// Pads to `seq` positions (weight 0, a document of their own).
    fn pad_to(&mut self, seq: usize, pad: u32) {
        while self.x.len() < seq {
            self.x.push(pad as i64);
            self.y.push(pad as i64);
            self.w.push(0.0);
            self.doc.push(u32::MAX);
        }
    }
}

impl SftConfig {
    pub fn check(&self) -> Result<(), TrainError> {
        crate::optim::first_order(&self.optim, "sft")?;
        let bad = |field: &str, message: String| TrainError::Config { field: field.into(), message };
        if self.steps == 0 || self.batch_size == 0 {
            return Err(bad("sft.steps/batch_size", "must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.replay_fraction) {
            return Err(bad("sft.replay_fraction", format!("must be in [0, 1), got {}", self.replay_fraction)));
        }
        if !(self.optim.lr.is_finite() && self.optim.lr > 0.0) {
            return Err(bad("sft.optim.lr", format!("must be positive, got {}", self.optim.lr)));
        }
        if self.warmup_steps >= self.steps {
            return Err(bad("sft.warmup_steps", format!("must be below sft.steps = {}", self.steps)));
        }
        if let Some(c) = self.curriculum {
            let share = |v: f64| v > 0.0 && v <= 1.0;
            if !(share(c.start) && share(c.ramp)) {
                return Err(bad(
                    "sft.curriculum",
                    format!("start and ramp must be in (0, 1], got {} and {}", c.start, c.ramp),
                ));
            }
        }
        Ok(())
    }
}

/// What an SFT run reports.
#[derive(Serialize, Clone, Debug)]
pub struct SftSummary {
    pub steps: usize,
    /// Token positions processed (rows × sequence length × steps).
    pub tokens: u64,
    /// Examples drawn into rows over the run (several per row when packing).
    pub examples_seen: usize,
    pub flops: f64,
    pub seconds: f64,
    /// Mean loss of the first and last tenth of the steps.
    pub first_loss: f64,
    pub last_loss: f64,
    pub losses: Vec<f64>,
    pub checkpoint: PathBuf,
}

/// Fine-tune the model of checkpoint `init` on `examples` (with `replay` documents mixed in) and
/// write the result to `out_dir/checkpoints/step-N`.
pub fn sft(
    init: &Path,
    examples: &[Example],
    replay: &[String],
    cfg: &SftConfig,
    out_dir: &Path,
    quiet: bool,
) -> Result<SftSummary, TrainError> {
    cfg.check()?;
    if examples.is_empty() {
        return Err(TrainError::Data("SFT needs at least one example".into()));
    }
    let device = engine::device(engine::Backend::Cpu).map_err(TrainError::Engine)?;
    let train_device = engine::training_device(&device);
    let loaded = checkpoint::load(init)?;
    let (mut mcfg, tok) = loaded.model_and_tokenizer()?;
    // Rows: prompt + completion + <eos> with their trained marks, all padded to one length T + 1.
    let rows: Vec<(Vec<u32>, Vec<bool>)> = examples.iter().map(|e| e.tokens(&tok)).collect::<Result<_, _>>()?;
    let (pad, eos) = (tok.pad_id(), tok.eos_id());
    let longest = rows.iter().map(|(r, _)| r.len()).max().unwrap_or(2);
    // Rotary positions have no table, so a model pretrained on short windows is fine-tuned (and
    // later asked) at the length its examples need; learned positions stay bounded by their table.
    if mcfg.position != Position::Learned && mcfg.max_seq_len < longest {
        mcfg.max_seq_len = longest;
    }
    let seq = (longest - 1).min(mcfg.max_seq_len);
    let blank = engine::with_seed(&train_device, cfg.seed, || Transformer::new(&mcfg, &train_device));
    let mut model = weights::load_safetensors(blank, &loaded.payload.model_safetensors)
        .map_err(|e| TrainError::Checkpoint { path: init.join("model.safetensors"), message: e.to_string() })?;
    let mut stream = Vec::new();
    for d in replay {
        stream.extend(tok.encode(d));
        stream.push(eos);
    }
    let n_replay =
        if stream.len() > seq + 1 { (cfg.batch_size as f64 * cfg.replay_fraction).round() as usize } else { 0 };
    let n_sft = cfg.batch_size - n_replay;
    if n_sft == 0 {
        return Err(TrainError::Config {
            field: "sft.replay_fraction".into(),
            message: "leaves no example rows in a batch".into(),
        });
    }

    let schedule = ScheduleSection {
        kind: ScheduleKind::Cosine,
        warmup_steps: cfg.warmup_steps,
        min_lr_ratio: cfg.min_lr_ratio,
        decay_fraction: 0.2,
    };
    let mut optim = optimizer(&cfg.optim);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5f7);
    let shards = shard_count(cfg.batch_size, rayon::current_num_threads());
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(cfg.steps as u64) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} sft [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let started = Instant::now();
    let mut losses = Vec::with_capacity(cfg.steps);
    let mut examples_seen = 0usize;
    for step in 0..cfg.steps {
        let available = cfg.curriculum.map_or(rows.len(), |c| c.available(rows.len(), step, cfg.steps));
        let mut batch: Vec<RowBuf> = Vec::with_capacity(cfg.batch_size);
        for _ in 0..n_sft {
            let mut row = RowBuf::with_capacity(seq);
            let mut doc = 0u32;
            let mut misses = 0;
            loop {
                let (ids, trained) = &rows[rng.random_range(0..available)];
                let need = ids.len().saturating_sub(1).min(seq);
                if doc > 0 && row.x.len() + need > seq {
                    // Too long for what is left: draw again, a few times, before closing the row.
                    misses += 1;
                    if misses > PACK_MISSES {
                        break;
                    }
                    continue;
                }
                row.push_example(ids, trained, seq - row.x.len(), doc);
                examples_seen += 1;
                doc += 1;
                if !cfg.pack || row.x.len() >= seq {
                    break;
                }
            }
            row.pad_to(seq, pad);
            batch.push(row);
        }
        for _ in 0..n_replay {
            let s = rng.random_range(0..stream.len() - seq - 1);
            batch.push(RowBuf {
                x: stream[s..s + seq].iter().map(|&t| t as i64).collect(),
                y: stream[s + 1..s + seq + 1].iter().map(|&t| t as i64).collect(),
                w: vec![1.0; seq],
                doc: vec![0; seq],
            });
        }
        // Shards take contiguous rows: deal example and replay rows evenly across them.
        let batch = interleave(batch, shards);
        let shape = [cfg.batch_size, seq];
        let flat = |f: fn(&RowBuf) -> &[i64]| batch.iter().flat_map(|r| f(r).iter().copied()).collect::<Vec<i64>>();
        let x = Tensor::<2, Int>::from_data(TensorData::new(flat(|r| &r.x), shape), &train_device);
        let y = Tensor::<2, Int>::from_data(TensorData::new(flat(|r| &r.y), shape), &train_device);
        let w: Vec<f32> = batch.iter().flat_map(|r| r.w.iter().copied()).collect();
        let w = Tensor::<2>::from_data(TensorData::new(w, shape), &train_device);
        let docs: Vec<Vec<u32>> = batch.into_iter().map(|r| r.doc).collect();
        let per = cfg.batch_size / shards;
        let (mut grads, shard_losses) = sharded_grads(&model, shards, 1.0, |i, m| {
            let (x, y, w) = (
                x.clone().narrow(0, i * per, per),
                y.clone().narrow(0, i * per, per),
                w.clone().narrow(0, i * per, per),
            );
            if cfg.pack {
                m.loss_packed(x, y, w, &docs[i * per..(i + 1) * per])
            } else {
                m.loss(x, y, Some(w))
            }
        });
        clip_global_norm(&model, &mut grads, cfg.optim.grad_clip);
        let lr = lr_at(&schedule, cfg.optim.lr, step, cfg.steps);
        model = optim.step(lr_policy(model.config(), lr), model, grads);
        let loss = shard_losses.iter().sum::<f64>() / shards as f64;
        if !loss.is_finite() {
            return Err(TrainError::Data(format!("SFT loss became {loss} at step {}; lower sft.optim.lr", step + 1)));
        }
        losses.push(loss);
        bar.set_position(step as u64 + 1);
        bar.set_message(format!("loss {loss:.4}"));
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    let optimizer =
        optim.into_bytes().map_err(|e| TrainError::Engine(format!("cannot serialise optimiser state: {e:?}")))?;
    let tokens = (cfg.steps * cfg.batch_size * seq) as u64;
    let config_json = serde_json::to_string_pretty(&serde_json::json!({
        "stage": "sft",
        "model": mcfg,
        "sft": cfg,
        "init": init.display().to_string(),
    }))
    .expect("config serialises");
    let payload = Payload {
        model_safetensors: weights::to_safetensors(&model.valid(), &Default::default()),
        config_json,
        optimizer: optimizer.to_vec(),
        tokenizer_json: loaded.payload.tokenizer_json.clone(),
        tokenizer_config_json: loaded.payload.tokenizer_config_json.clone(),
    };
    let state = TrainState::at(cfg.steps, tokens, cfg.seed, 0, started.elapsed().as_secs_f64());
    let dir = checkpoint::save(out_dir, &payload, state, 1)?;
    let tenth = (cfg.steps / 10).max(1);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    Ok(SftSummary {
        steps: cfg.steps,
        tokens,
        examples_seen,
        flops: mcfg.train_flops_per_token(seq) as f64 * tokens as f64,
        seconds,
        first_loss: mean(&losses[..tenth]),
        last_loss: mean(&losses[losses.len() - tenth..]),
        losses,
        checkpoint: dir,
    })
}

/// Reorders rows (first `n_sft` example rows, then the replay rows) so that every shard of
/// contiguous rows gets its share of both kinds: rows are dealt round-robin to the shards, and
/// the shards laid out one after another.
fn interleave<T>(rows: Vec<T>, shards: usize) -> Vec<T> {
    let mut per_shard: Vec<Vec<T>> = (0..shards).map(|_| Vec::new()).collect();
    for (k, r) in rows.into_iter().enumerate() {
        per_shard[k % shards].push(r);
    }
    per_shard.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curriculum_widens_from_its_start_share_to_every_example() {
        let c = Curriculum { start: 0.25, ramp: 0.5 };
        // 100 examples over 200 steps: 25 at first, all from step 100 on, linear between.
        assert_eq!(c.available(100, 0, 200), 25);
        assert_eq!(c.available(100, 50, 200), 63); // 0.25 + 0.75 · 0.5 = 0.625 → 62.5 → 63
        assert_eq!(c.available(100, 100, 200), 100);
        assert_eq!(c.available(100, 199, 200), 100);
        assert_eq!(Curriculum { start: 0.01, ramp: 1.0 }.available(10, 0, 5), 1, "at least one");
        let bad = SftConfig { curriculum: Some(Curriculum { start: 0.0, ramp: 0.5 }), ..SftConfig::default() };
        assert!(bad.check().unwrap_err().to_string().contains("sft.curriculum"));
    }
}
