//! Two hyper-parameter sweeps on a generated world (`ascent sweep lr`, `ascent sweep scale`).
//!
//! - [`lr_sweep`]: one world, one tokenizer; for each parameterisation (standard, and muP with
//!   the smallest width as its base), each width and each peak learning rate, a llama-style model
//!   of 2 layers and 4 heads is pretrained for the same number of tokens and its final validation
//!   loss recorded ([`report::sweep::LrSweep`]). Under muP (Yang et al. 2021) the best rate should
//!   stay put as the width grows; under standard parameterisation it usually moves down.
//! - [`scale_sweep`]: a world generated from the sweep's seed; a family of model sizes, each
//!   pretrained on the same corpus for the same number of tokens at one peak learning rate (under
//!   muP with the smallest width as base, by default, so that the rate transfers across widths),
//!   with its parameters, FLOPs, final validation loss and the bits of facts it stores
//!   ([`knowledge_bits`]);
//!   [`report::sweep::ScaleSweep::fit_points`] fits loss against parameters and FLOPs as power laws.
//!
//! Both train on the ladder's data layout: `data/pretrain-rR.txt` (the corpus at R renderings and
//! the train questions as `Question: q\nAnswer: a`) and validate on `data/val-heldout-qa.txt` (the
//! held-out people's questions and answers: never a gradient; checked against the training file by
//! [`world::decontaminate`]). The validation loss is the mean cross-entropy over evenly spaced
//! windows of that text.
//!
//! Layout of the output folder: `world/` (the knowledge, `tokenizer.json`), `data/`, `sweep.json`
//! (the grid and the recipe), one folder per run `runs/<name>/` (`train/` as `train::pretrain`
//! writes it, `result.json`), and the report,
//! `lr-sweep.{json,md,svg}` or `scale-sweep.{json,md,svg}`, rewritten after every finished run so
//! that a killed sweep leaves a valid partial report. A run whose `result.json` carries the same
//! key (the SHA-256 of its training recipe and of everything it reads: knowledge, corpus,
//! validation text, tokenizer) is not run again; a scale run killed mid-training resumes from its
//! newest checkpoint. The learning-rate runs keep their metrics and result, not their weights.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use model::engine;
use report::sweep::{LrPoint, LrSweep, ScalePoint, ScaleSweep, SWEEP_FORMAT_VERSION};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use train::config::{ScheduleKind, ScheduleSection};
use train::eval::qa_text;
use train::{checkpoint, PretrainConfig, RunOptions, TrainError};
use world::{Knowledge, Relation, Split};

use crate::run::{claim, io_err, sha256_hex, train_world_tokenizer};
use crate::LadderError;

/// Bumped when the meaning of a run's result changes (so older results are not reused).
const KEY_VERSION: u32 = 1;

/// Rows per optimiser step and tokens per row of every sweep run (the ladder's `default` preset).
pub const BATCH_SIZE: usize = 16;
pub const SEQ_LEN: usize = 64;
/// Query heads of every sweep model (widths must be multiples of it).
pub const N_HEADS: usize = 4;
/// Blocks of every learning-rate sweep model.
pub const LR_SWEEP_LAYERS: usize = 2;
/// BPE vocabulary of the sweep worlds' tokenizer (the `default` preset's).
pub const VOCAB: usize = 512;
/// Validation batches averaged for the final loss: 8 × 16 windows of 64 tokens.
const EVAL_BATCHES: usize = 8;

/// How to run `ascent sweep lr`.
#[derive(Clone, Debug)]
pub struct LrSweepOptions {
    pub out: PathBuf,
    /// Seed of the world, the weights and the data order (the same for every run).
    pub seed: u64,
    /// Model widths; the smallest is muP's base width.
    pub widths: Vec<usize>,
    /// Peak learning rates (the same grid for both parameterisations).
    pub lrs: Vec<f64>,
    /// Optimiser steps of every run (all runs see the same tokens).
    pub steps: usize,
    /// People in the generated world (half held out) and renderings of the corpus.
    pub people: usize,
    pub renderings: usize,
    /// Compute threads (0 = one per core).
    pub threads: usize,
    /// No progress bar and no per-run lines.
    pub quiet: bool,
}

impl Default for LrSweepOptions {
    /// The default grid, calibrated to finish within 20 minutes on a 2-core CPU (see README).
    fn default() -> Self {
        Self {
            out: PathBuf::from("runs/sweep-lr"),
            seed: 0,
            widths: vec![32, 64, 128, 256],
            lrs: (-10..=-5).map(|e| 2f64.powi(e)).collect(),
            steps: 150,
            people: 120,
            renderings: 5,
            threads: 0,
            quiet: false,
        }
    }
}

/// How to run `ascent sweep scale`.
#[derive(Clone, Debug)]
pub struct ScaleSweepOptions {
    pub out: PathBuf,
    /// Seed of the world (a fresh sample per seed), the weights and the data order.
    pub seed: u64,
    /// Model sizes as (width, blocks), trained smallest first.
    pub sizes: Vec<(usize, usize)>,
    /// Optimiser steps of every size (all sizes see the same tokens).
    pub steps: usize,
    /// Peak learning rate of every size (warmup-stable-decay).
    pub lr: f64,
    /// muP with the smallest width as its base (so the one learning rate, right for the
    /// smallest model, transfers to the wider ones: what `sweep lr` checks); false = standard
    /// parameterisation at the same rate for every size.
    pub mup: bool,
    /// People in the generated world and renderings of the corpus (at least
    /// [`world::TEMPLATES_PER_RELATION`] = 5: each rendering uses another template of every fact,
    /// so that with 5 the canonical sentence the probe completes is in the corpus, its subject named).
    pub people: usize,
    pub renderings: usize,
    pub threads: usize,
    pub quiet: bool,
}

impl Default for ScaleSweepOptions {
    /// The default family, calibrated to finish within 20 minutes on a 2-core CPU (see README).
    fn default() -> Self {
        Self {
            out: PathBuf::from("runs/sweep-scale"),
            seed: 0,
            sizes: vec![(32, 1), (48, 1), (64, 2), (96, 2), (128, 2), (192, 3)],
            steps: 1800,
            lr: 1e-2,
            mup: true,
            people: 200,
            renderings: 5,
            threads: 0,
            quiet: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world and data files both sweeps train on
// ---------------------------------------------------------------------------------------------

/// The generated world of a sweep and the files its runs read.
struct SweepData {
    world: world::World,
    corpus: PathBuf,
    val: PathBuf,
    tokenizer: PathBuf,
    vocab: usize,
    /// SHA-256 over the knowledge, the corpus and validation files and the tokenizer.
    inputs_sha: String,
}

/// Generates the world of `seed`, trains its tokenizer and writes `world/` and `data/` under `out`.
fn prepare(out: &Path, seed: u64, people: usize, renderings: usize) -> Result<SweepData, LadderError> {
    if renderings == 0 {
        return Err(LadderError::Input("--renderings must be at least 1".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| io_err(out, "cannot create the output folder", e))?;
    let cfg = world::WorldConfig { seed, people, ..Default::default() };
    cfg.validate()?;
    let w = world::World::generate(&cfg)?;
    let world_dir = out.join("world");
    let data_dir = out.join("data");

    let tok = train_world_tokenizer(&w, VOCAB)?;
    let tok_json = tok.to_json_string().map_err(|e| LadderError::Tokenizer(e.to_string()))?;
    let tokenizer = world_dir.join("tokenizer.json");
    checkpoint::write_atomic(&tokenizer, tok_json.as_bytes())?;
    let count = |text: &str| tok.encode(text).len() as u64;
    w.write_counted(&world_dir, 1, Some(&count))?;

    let train_tasks = w.tasks_in(Split::Train);
    let heldout = w.tasks_in(Split::Heldout);
    let mut docs = w.corpus_documents(renderings)?;
    docs.extend(train_tasks.iter().map(|t| qa_text(&t.question, &t.answer)));
    let val_docs: Vec<String> = heldout.iter().map(|t| qa_text(&t.question, &t.answer)).collect();
    let join = |docs: &[String]| docs.join("\n\n") + "\n";
    let (corpus_text, val_text) = (join(&docs), join(&val_docs));
    let corpus = data_dir.join(format!("pretrain-r{renderings}.txt"));
    let val = data_dir.join("val-heldout-qa.txt");
    checkpoint::write_atomic(&corpus, corpus_text.as_bytes())?;
    checkpoint::write_atomic(&val, val_text.as_bytes())?;

    let decon = world::decontaminate(&heldout, &[(corpus.display().to_string(), corpus_text.clone())]);
    if !decon.is_clean() {
        let path = out.join("decontamination.json");
        checkpoint::write_atomic(&path, serde_json::to_string_pretty(&decon).expect("report serialises").as_bytes())?;
        return Err(LadderError::Input(format!(
            "{} held-out tasks leak into the training file; see {}",
            decon.hits.len(),
            path.display()
        )));
    }
    let inputs_sha = sha256_hex(
        [
            w.knowledge_sha256(),
            sha256_hex(corpus_text.as_bytes()),
            sha256_hex(val_text.as_bytes()),
            sha256_hex(tok_json.as_bytes()),
        ]
        .join(" ")
        .as_bytes(),
    );
    Ok(SweepData { world: w, corpus, val, tokenizer, vocab: tok.vocab_size(), inputs_sha })
}

/// The pretraining recipe every sweep run shares: llama at `width` × `layers`, AdamW, a
/// warmup-stable-decay schedule (10% warmup, linear decay to 0 over the last 20%), batches of
/// 16 × 64 tokens, validation only at the start and the end.
fn recipe(data: &SweepData, seed: u64, width: usize, layers: usize, lr: f64, steps: usize) -> PretrainConfig {
    let mut c = PretrainConfig { seed, ..PretrainConfig::default() };
    c.model.preset = "llama".into();
    c.model.d_model = width;
    c.model.n_layers = layers;
    c.model.n_heads = N_HEADS;
    c.data.vocab_size = VOCAB;
    c.data.corpus = data.corpus.display().to_string();
    c.data.val_corpus = data.val.display().to_string();
    c.data.tokenizer = data.tokenizer.display().to_string();
    c.optim.lr = lr;
    c.schedule = ScheduleSection {
        kind: ScheduleKind::Wsd,
        warmup_steps: (steps / 10).max(1).min(steps - 1),
        min_lr_ratio: 0.0,
        decay_fraction: 0.2,
    };
    c.train.steps = steps;
    c.train.batch_size = BATCH_SIZE;
    c.train.seq_len = SEQ_LEN;
    c.train.eval_every = 0;
    c.train.eval_batches = EVAL_BATCHES;
    c.train.checkpoint_every = 0;
    c.train.log_every = (steps / 20).max(1);
    c
}

/// A run's recipe without the paths and the thread count, which do not change its result.
fn portable(cfg: &PretrainConfig) -> PretrainConfig {
    let mut c = cfg.clone();
    c.out_dir = PathBuf::new();
    c.threads = 0;
    c.data.corpus.clear();
    c.data.val_corpus.clear();
    c.data.tokenizer.clear();
    c
}

/// The reuse key of a run: its [`portable`] recipe and the SHA-256 of everything it reads.
fn run_key(cfg: &PretrainConfig, data: &SweepData) -> String {
    let fields = serde_json::json!({ "version": KEY_VERSION, "recipe": portable(cfg), "inputs": data.inputs_sha });
    sha256_hex(serde_json::to_string(&fields).expect("key serialises").as_bytes())
}

/// Writes `out/sweep.json`: what the report files do not record (the world's size, the grid, the
/// recipe of the first run, of which the others differ only in width, depth, rate and
/// parameterisation).
fn write_sweep_info(out: &Path, mut info: serde_json::Value, first: &PretrainConfig) -> Result<(), LadderError> {
    info["batch_size"] = BATCH_SIZE.into();
    info["seq_len"] = SEQ_LEN.into();
    info["first_recipe"] = serde_json::to_value(portable(first)).expect("recipe serialises");
    let json = serde_json::to_string_pretty(&info).expect("info serialises");
    checkpoint::write_atomic(&out.join("sweep.json"), json.as_bytes())?;
    Ok(())
}

/// The result in `dir/result.json` if it was written under `key`.
fn finished<T: DeserializeOwned + HasKey>(dir: &Path, key: &str) -> Option<T> {
    let r: T = serde_json::from_slice(&std::fs::read(dir.join("result.json")).ok()?).ok()?;
    (r.key() == key).then_some(r)
}

trait HasKey {
    fn key(&self) -> &str;
}

fn write_result<T: Serialize>(dir: &Path, r: &T) -> Result<(), LadderError> {
    let json = serde_json::to_string_pretty(r).expect("result serialises");
    checkpoint::write_atomic(&dir.join("result.json"), json.as_bytes())?;
    Ok(())
}

/// How a pretraining run ended.
enum Trained {
    /// Finished: final validation loss and the summary.
    Done { val_loss: f64, summary: Box<train::Summary> },
    /// The training loss became non-finite at some step (the message says which).
    Diverged(String),
}

/// Runs (or resumes, or finishes) the pretraining of `cfg`; a training loss that becomes
/// non-finite is returned as [`Trained::Diverged`], every other error as an error.
fn pretrain_run(cfg: &PretrainConfig) -> Result<Trained, LadderError> {
    let resume = checkpoint::latest(&cfg.out_dir).is_some();
    let opts = RunOptions { resume, fresh: !resume, stop_after: None, quiet: true };
    match train::pretrain(cfg, &opts) {
        Ok(s) => {
            // A run whose final checkpoint was already written evaluates nothing when resumed:
            // its final loss is in that checkpoint's state.
            let val_loss = match s.val_losses.last() {
                Some(&(step, v)) if step == cfg.train.steps => v,
                _ => {
                    let dir = checkpoint::latest(&cfg.out_dir).ok_or_else(|| {
                        LadderError::Input(format!("{}: the run wrote no checkpoint", cfg.out_dir.display()))
                    })?;
                    checkpoint::read_state(&dir)?.val_loss.unwrap_or(f64::NAN)
                }
            };
            Ok(Trained::Done { val_loss, summary: Box::new(s) })
        }
        Err(TrainError::Diverged(m)) => Ok(Trained::Diverged(m)),
        Err(e) => Err(e.into()),
    }
}

fn progress(quiet: bool, len: u64) -> ProgressBar {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(len) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent}% eta {eta} {msg}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// Prints one finished run's line above the progress bar, or as a log line when the bar is not
/// drawn (stderr is not a terminal), so a sweep's log keeps one line per run; nothing when quiet.
fn report_line(bar: &ProgressBar, quiet: bool, line: String) {
    if quiet {
        return;
    }
    if bar.is_hidden() {
        tracing::info!("{line}");
    } else {
        bar.println(line);
    }
}

// ---------------------------------------------------------------------------------------------
// Learning-rate sweep
// ---------------------------------------------------------------------------------------------

/// What `runs/<name>/result.json` of a learning-rate run holds.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct LrRun {
    pub key: String,
    pub point: LrPoint,
    /// The final validation loss as measured (`None` when training stopped on a non-finite loss).
    pub val_loss: Option<f64>,
    /// Why the run counts as diverged, if it does.
    pub diverged: Option<String>,
    /// Wall time of the run.
    pub seconds: f64,
}

impl HasKey for LrRun {
    fn key(&self) -> &str {
        &self.key
    }
}

/// The run folder name of one learning-rate run, e.g. `mup-w128-lr3.90625e-3`.
pub fn lr_run_name(parameterisation: &str, width: usize, lr: f64) -> String {
    format!("{parameterisation}-w{width}-lr{lr:e}")
}

/// Whether a final validation loss counts as diverged: not finite, or above `ln V` (worse than
/// predicting every token uniformly, where no trained model should end).
pub fn diverged_loss(loss: f64, vocab: usize) -> bool {
    !loss.is_finite() || loss > (vocab as f64).ln()
}

fn check_lr_options(o: &LrSweepOptions) -> Result<(Vec<usize>, Vec<f64>), LadderError> {
    let bad = |m: String| Err(LadderError::Input(m));
    let widths: Vec<usize> = o.widths.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if widths.is_empty() {
        return bad("--widths: give at least one width".into());
    }
    if let Some(w) = widths.iter().find(|&&w| w == 0 || w % N_HEADS != 0) {
        return bad(format!("--widths: {w} is not a positive multiple of the {N_HEADS} heads"));
    }
    let mut lrs = o.lrs.clone();
    if let Some(lr) = lrs.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
        return bad(format!("--lrs: {lr} is not a positive learning rate"));
    }
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    if lrs.is_empty() {
        return bad("--lrs: give at least one learning rate".into());
    }
    if o.steps < 2 {
        return bad(format!("--steps: {} is too few (at least 2: a warmup step and a trained one)", o.steps));
    }
    Ok((widths, lrs))
}

/// Runs (or resumes) the learning-rate sweep and writes `lr-sweep.{json,md,svg}` into `opts.out`
/// after every finished run. A run whose training loss becomes non-finite, or whose final loss is
/// above `ln V` ([`diverged_loss`]), is recorded with a NaN loss; the sweep goes on.
pub fn lr_sweep(opts: &LrSweepOptions) -> Result<LrSweep, LadderError> {
    let started = Instant::now();
    let (widths, lrs) = check_lr_options(opts)?;
    engine::set_threads(opts.threads);
    let data = prepare(&opts.out, opts.seed, opts.people, opts.renderings)?;
    let base = widths[0];
    let mut sweep = LrSweep {
        format: SWEEP_FORMAT_VERSION,
        base_width: base,
        steps: opts.steps,
        tokens_per_step: BATCH_SIZE * SEQ_LEN,
        seed: opts.seed,
        points: Vec::new(),
        seconds: 0.0,
    };
    // Every run, widest last so a partial report has whole widths; its cost for the progress bar.
    let mut plan = Vec::new();
    for &w in &widths {
        for p in ["standard", "mup"] {
            for &lr in &lrs {
                let mut cfg = recipe(&data, opts.seed, w, LR_SWEEP_LAYERS, lr, opts.steps);
                cfg.model.mup_base_width = (p == "mup").then_some(base);
                cfg.threads = opts.threads;
                let model = cfg.model_config(data.vocab).map_err(LadderError::Train)?;
                plan.push((p, w, lr, cfg, model));
            }
        }
    }
    let info = serde_json::json!({
        "sweep": "lr", "seed": opts.seed, "people": opts.people, "renderings": opts.renderings,
        "widths": widths, "lrs": lrs, "steps": opts.steps, "layers": LR_SWEEP_LAYERS, "mup_base_width": base,
    });
    write_sweep_info(&opts.out, info, &plan[0].3)?;
    let cost = |m: &model::ModelConfig| m.train_flops_per_token(SEQ_LEN) / 1000 + 1;
    let bar = progress(opts.quiet, plan.iter().map(|(.., m)| cost(m)).sum());
    let mut reused_seconds = 0.0;
    for (i, (p, w, lr, mut cfg, model)) in plan.into_iter().enumerate() {
        let name = lr_run_name(p, w, lr);
        let dir = opts.out.join("runs").join(&name);
        cfg.out_dir = dir.join("train");
        let key = run_key(&cfg, &data);
        let (run, reused) = match finished::<LrRun>(&dir, &key) {
            Some(r) => (r, true),
            None => {
                bar.set_message(format!("run {}/{} {name}", i + 1, lrs.len() * widths.len() * 2));
                claim(&dir, &key)?;
                let t0 = Instant::now();
                let trained = pretrain_run(&cfg)?;
                let params = model.param_count().total;
                let (val_loss, diverged) = match trained {
                    Trained::Done { val_loss, .. } if diverged_loss(val_loss, data.vocab) => (
                        Some(val_loss),
                        Some(format!(
                            "final validation loss {val_loss} is not below ln V = {:.3}",
                            (data.vocab as f64).ln()
                        )),
                    ),
                    Trained::Done { val_loss, .. } => (Some(val_loss), None),
                    Trained::Diverged(m) => (None, Some(m)),
                };
                let loss = if diverged.is_some() { f64::NAN } else { val_loss.unwrap_or(f64::NAN) };
                let run = LrRun {
                    key: key.clone(),
                    point: LrPoint { parameterisation: p.to_string(), width: w, lr, loss, params },
                    val_loss: val_loss.filter(|v| v.is_finite()),
                    diverged,
                    seconds: t0.elapsed().as_secs_f64(),
                };
                write_result(&dir, &run)?;
                // The weights of a sweep run are not worth their disk space; the metrics stay.
                let ckpts = checkpoint::checkpoints_dir(&cfg.out_dir);
                if ckpts.exists() {
                    std::fs::remove_dir_all(&ckpts).map_err(|e| io_err(&ckpts, "cannot remove", e))?;
                }
                (run, false)
            }
        };
        if reused {
            reused_seconds += run.seconds;
        }
        let loss = match &run.diverged {
            Some(_) => "diverged".to_string(),
            None => format!("{:.4}", run.point.loss),
        };
        report_line(
            &bar,
            opts.quiet,
            format!(
                "{:<8} width {:>4}  lr {:<9} (2^{:.1})  val loss {loss:<8} {:>5.1}s{}",
                p,
                w,
                format!("{lr:.3e}"),
                lr.log2(),
                run.seconds,
                if reused { " (reused)" } else { "" }
            ),
        );
        bar.inc(cost(&model));
        sweep.points.push(run.point);
        sweep.seconds = started.elapsed().as_secs_f64() + reused_seconds;
        sweep.write_all(&opts.out).map_err(|e| LadderError::Input(format!("writing the lr sweep: {e}")))?;
    }
    bar.finish_and_clear();
    Ok(sweep)
}

// ---------------------------------------------------------------------------------------------
// Knowledge bits
// ---------------------------------------------------------------------------------------------

/// Bits of one fact a model stores, from its log-probability (natural log) of the fact's object
/// and the number of distinct objects the relation has in the world:
/// `clamp(log2 |V| − (−log2 p), 0, log2 |V|)`.
///
/// A model that only knows which objects the relation can take (`p = 1/|V|`) stores 0 bits of the
/// fact; one certain of it (`p = 1`) stores `log2 |V|`, all there is to store. A confidently wrong
/// model (`p < 1/|V|`) counts 0, not negative; a non-finite log-probability counts 0.
pub fn fact_bits(log_prob: f64, objects: usize) -> f64 {
    if objects <= 1 || log_prob.is_nan() {
        return 0.0;
    }
    let cap = (objects as f64).log2();
    (cap + log_prob / std::f64::consts::LN_2).clamp(0.0, cap)
}

/// One probed fact: its relation, its object and the model's log-probability (natural log) of
/// the object after the fact's canonical prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbedFact {
    pub relation: String,
    pub object: String,
    pub log_prob: f64,
}

/// Knowledge stored in one relation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RelationBits {
    /// Facts probed.
    pub facts: usize,
    /// Distinct objects of the relation (`|V|`).
    pub objects: usize,
    /// Bits stored, summed over the facts.
    pub bits: f64,
    /// The most there is to store: `facts · log2 |V|`.
    pub max_bits: f64,
}

/// Bits stored per relation, [`fact_bits`] summed over `facts`, with `|V|` of each relation the
/// number of distinct objects among `facts` (so `facts` should be all the facts of a relation).
///
/// This is a lower-bound style estimate in the spirit of Allen-Zhu & Li, "Physics of Language
/// Models 3.3" (2024), whose estimator differs: they lower-bound the bits a model's *loss* on the
/// random attributes implies, summed over the whole dataset (names' own entropy included, losses
/// averaged, not clamped per fact); here each fact is scored alone, only its object (the names are
/// not counted), clamped to `[0, log2 |V|]` so a confidently wrong answer costs nothing rather
/// than cancelling other facts, with `|V|` the objects seen in the world rather than the
/// generator's range. The objects of the generated world are drawn uniformly per relation, so
/// `log2 |V|` is close to their entropy.
pub fn knowledge_bits(facts: &[ProbedFact]) -> BTreeMap<String, RelationBits> {
    let mut objects: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in facts {
        objects.entry(&f.relation).or_default().insert(&f.object);
    }
    let mut out: BTreeMap<String, RelationBits> = BTreeMap::new();
    for f in facts {
        let v = objects[f.relation.as_str()].len();
        let r =
            out.entry(f.relation.clone()).or_insert(RelationBits { facts: 0, objects: v, bits: 0.0, max_bits: 0.0 });
        r.facts += 1;
        r.bits += fact_bits(f.log_prob, v);
        r.max_bits += if v > 1 { (v as f64).log2() } else { 0.0 };
    }
    out
}

/// The canonical prompt of a person fact and its continuation: template 0 of the relation
/// ([`world::templates`], `{s}<middle>{o}.`) cut before the object, e.g. `("Ann Lee was born in
/// the year", " 1987.")`. The closing period is part of the continuation so the object is scored
/// whole (a name that is a prefix of another is not credited). `None` for a relation that is not a
/// person relation of the generated world.
pub fn probe_prompt(subject: &str, relation: &str, object: &str) -> Option<(String, String)> {
    let r = Relation::parse(relation).filter(|r| Relation::PERSON.contains(r))?;
    let template = world::templates(r)[0];
    let (before, after) = template.split_once("{o}")?;
    let before = world::render(before, subject, "");
    let prompt = before.trim_end().to_string();
    let continuation = format!("{}{object}{after}", &before[prompt.len()..]);
    Some((prompt, continuation))
}

/// The log-probability of every person fact of `k` under the model of checkpoint `ckpt`: the
/// object (and the closing period) after `<|eos|>` and the fact's canonical prompt
/// ([`probe_prompt`]), as a document starts in pretraining.
pub fn probe_facts(ckpt: &Path, k: &dyn Knowledge) -> Result<Vec<ProbedFact>, LadderError> {
    let device = engine::device(engine::Backend::Cpu).map_err(LadderError::Engine)?;
    let (m, tok, _) = train::eval::load_for_inference(ckpt, &device)?;
    let eos = tokenizer::Special::Eos.id();
    let mut facts = Vec::new();
    let mut rows: Vec<(Vec<u32>, Vec<bool>)> = Vec::new();
    for f in k.facts() {
        let Some((prompt, continuation)) = probe_prompt(&f.subject, &f.relation, &f.object) else { continue };
        let mut ids = vec![eos];
        ids.extend(tok.encode(&prompt));
        let scored = tok.encode(&continuation);
        let mut trained = vec![false; ids.len()];
        trained.extend(std::iter::repeat_n(true, scored.len()));
        ids.extend(scored);
        rows.push((ids, trained));
        facts.push(ProbedFact { relation: f.relation, object: f.object, log_prob: f64::NAN });
    }
    let logps = train::prefs::row_logps(&m, &rows, 64, &device);
    for (f, lp) in facts.iter_mut().zip(logps) {
        f.log_prob = lp;
    }
    Ok(facts)
}

// ---------------------------------------------------------------------------------------------
// Scale sweep
// ---------------------------------------------------------------------------------------------

/// What `runs/<name>/result.json` of a scale run holds.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ScaleRun {
    pub key: String,
    pub point: ScalePoint,
    /// The knowledge probe per relation.
    pub knowledge: BTreeMap<String, RelationBits>,
    /// Why the run diverged (its loss and bits are then NaN and 0), if it did.
    pub diverged: Option<String>,
}

impl HasKey for ScaleRun {
    fn key(&self) -> &str {
        &self.key
    }
}

fn check_scale_options(o: &ScaleSweepOptions) -> Result<Vec<(usize, usize)>, LadderError> {
    let bad = |m: String| Err(LadderError::Input(m));
    let mut sizes = o.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() < 3 {
        return bad(format!("--sizes: a power law needs at least 3 sizes, got {}", sizes.len()));
    }
    if let Some((w, l)) = sizes.iter().find(|(w, l)| *w == 0 || w % N_HEADS != 0 || *l == 0) {
        return bad(format!(
            "--sizes: {w}x{l} needs a positive width that is a multiple of the {N_HEADS} heads and at least 1 block"
        ));
    }
    if o.steps < 2 {
        return bad(format!("--steps: {} is too few (at least 2)", o.steps));
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return bad(format!("--lr: {} is not a positive learning rate", o.lr));
    }
    if o.renderings < world::TEMPLATES_PER_RELATION {
        return bad(format!(
            "renderings {}: the knowledge probe needs at least {} (so that every fact's canonical sentence, which the \
             probe completes, is in the corpus with its subject named)",
            o.renderings,
            world::TEMPLATES_PER_RELATION
        ));
    }
    Ok(sizes)
}

/// Runs (or resumes) the scale sweep and writes `scale-sweep.{json,md,svg}` into `opts.out` after
/// every finished model (the fits need 3 finished models, 4 for the saturating form).
pub fn scale_sweep(opts: &ScaleSweepOptions) -> Result<ScaleSweep, LadderError> {
    let started = Instant::now();
    let sizes = check_scale_options(opts)?;
    engine::set_threads(opts.threads);
    let data = prepare(&opts.out, opts.seed, opts.people, opts.renderings)?;
    let mut sweep = ScaleSweep {
        format: SWEEP_FORMAT_VERSION,
        seed: opts.seed,
        points: Vec::new(),
        fits: Vec::new(),
        seconds: 0.0,
    };
    let mut plan = Vec::new();
    for &(w, l) in &sizes {
        let mut cfg = recipe(&data, opts.seed, w, l, opts.lr, opts.steps);
        cfg.model.mup_base_width = opts.mup.then_some(sizes[0].0);
        // Checkpoints along the way, so a killed run resumes.
        cfg.train.checkpoint_every = (opts.steps / 4).max(1);
        cfg.threads = opts.threads;
        let model = cfg.model_config(data.vocab).map_err(LadderError::Train)?;
        plan.push((w, l, cfg, model));
    }
    let info = serde_json::json!({
        "sweep": "scale", "seed": opts.seed, "people": opts.people, "renderings": opts.renderings,
        "sizes": sizes, "steps": opts.steps, "lr": opts.lr, "mup_base_width": opts.mup.then_some(sizes[0].0),
    });
    write_sweep_info(&opts.out, info, &plan[0].2)?;
    let cost = |m: &model::ModelConfig| m.train_flops_per_token(SEQ_LEN) / 1000 + 1;
    let bar = progress(opts.quiet, plan.iter().map(|(.., m)| cost(m)).sum());
    let mut reused_seconds = 0.0;
    let n = plan.len();
    for (i, (w, l, mut cfg, model)) in plan.into_iter().enumerate() {
        let name = format!("d{w}-l{l}");
        let dir = opts.out.join("runs").join(&name);
        cfg.out_dir = dir.join("train");
        let key = run_key(&cfg, &data);
        let (run, reused) = match finished::<ScaleRun>(&dir, &key) {
            Some(r) => (r, true),
            None => {
                bar.set_message(format!("model {}/{n} {name}: {}", i + 1, model.summary()));
                claim(&dir, &key)?;
                let t0 = Instant::now();
                let params = model.param_count();
                let tokens = (opts.steps * BATCH_SIZE * SEQ_LEN) as u64;
                let flops = model.train_flops_per_token(SEQ_LEN) as f64 * tokens as f64;
                let (loss, knowledge, diverged, earlier) = match pretrain_run(&cfg)? {
                    Trained::Done { val_loss, summary } => {
                        let ckpt = checkpoint::latest(&cfg.out_dir)
                            .ok_or_else(|| LadderError::Input(format!("{name}: the run wrote no checkpoint")))?;
                        let probed = probe_facts(&ckpt, &data.world)?;
                        // Time spent before a resume, as recorded in the checkpoint.
                        let earlier = summary.total_seconds - summary.seconds;
                        (val_loss, knowledge_bits(&probed), None, earlier)
                    }
                    Trained::Diverged(m) => (f64::NAN, BTreeMap::new(), Some(m), 0.0),
                };
                let point = ScalePoint {
                    name: name.clone(),
                    d_model: w,
                    n_layers: l,
                    params: params.non_embedding,
                    total_params: params.total,
                    tokens,
                    flops,
                    loss,
                    knowledge_bits: knowledge.values().map(|r| r.bits).sum(),
                    seconds: earlier + t0.elapsed().as_secs_f64(),
                };
                let run = ScaleRun { key: key.clone(), point, knowledge, diverged };
                write_result(&dir, &run)?;
                (run, false)
            }
        };
        if reused {
            reused_seconds += run.point.seconds;
        }
        let p = &run.point;
        let max_bits: f64 = run.knowledge.values().map(|r| r.max_bits).sum();
        report_line(&bar, opts.quiet, format!(
            "{:<8} {:>8} params ({:>8} total)  val loss {:.4}  knowledge {:>7.0} of {:.0} bits ({:.4} bits/param)  {:>6.1}s{}",
            p.name,
            p.params,
            p.total_params,
            p.loss,
            p.knowledge_bits,
            max_bits,
            p.knowledge_bits / p.total_params as f64,
            p.seconds,
            if reused { " (reused)" } else { "" }
        ));
        bar.inc(cost(&model));
        sweep.points.push(run.point);
        sweep.fits = ScaleSweep::fit_points(&sweep.points);
        sweep.seconds = started.elapsed().as_secs_f64() + reused_seconds;
        sweep.write_all(&opts.out).map_err(|e| LadderError::Input(format!("writing the scale sweep: {e}")))?;
    }
    bar.finish_and_clear();
    Ok(sweep)
}
