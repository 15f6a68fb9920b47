//! Running the ladder: world → data files → one stage and one evaluation per rung → report.
//!
//! Layout of the output folder:
//! - `world/`: the knowledge (`kb.jsonl`, `corpus.txt` at one rendering, `tasks/`, `world.json`),
//!   the world's `tokenizer.json`, shared by every rung, and `index/`, the BM25 index of the
//!   knowledge passages (one per subject) that the retrieval rung reads;
//! - `data/`: the training files the rungs read (`pretrain-r{R}.txt`; `sft-{kind}.jsonl` with
//!   kind `traces`, `reflection`, `tools-fictional2`, `traces-retrieved2-fictional2`, ...) and
//!   the validation text (`val-heldout-qa.txt`, for the loss curve only: never a gradient);
//! - `decontamination.json`: proof that no held-out question or worked answer is in a training file;
//! - `cache/draws-*.json`: the sampled answers of the test-time rungs, shared by the rungs that
//!   sample the same model with the same settings (keyed by a hash of all of them);
//! - `rungs/NN-name/`: `key.txt`, `train/` (checkpoints, metrics), `eval.json` (every graded
//!   answer) and `result.json` (the rung's report row);
//! - `report.json`, `report.md`, `report.html`, rewritten after every rung.
//!
//! A rung is reused when its `result.json` carries the same key: the SHA-256 of its resolved
//! spec, the knowledge, the corpus it trains on, the tokenizer, its parent's key, the
//! evaluation settings and, for a fine-tuning rung, the SHA-256 of its examples file (and of the
//! retrieval index it reads). A rung whose training was killed resumes from its newest checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use model::{engine, Sampling};
use report::{LadderReport, RecallProbe, RungReport, WorldInfo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizer::Tokenizer;
use tools::protocol::TOOL_CALL_END;
use tools::Registry;
use train::config::OptimKind;
use train::eval::{self, qa_text, trace_text, AnswerMode, EvalOptions, EvalReport};
use train::reward::{Labelled as RewardLabelled, RewardConfig};
use train::sft::{self, Example};
use train::testtime;
use train::{checkpoint, PretrainConfig, RunOptions};
use world::{Family, Knowledge, Split, Task};

use crate::fictional::Fictional;
use crate::preset::Preset;
use crate::reflect::Reflection;
use crate::rungs::{rungs, RungSpec, SftData, Stage};
use crate::LadderError;

/// Bumped when the meaning of a rung's result changes (so older results are not reused).
const KEY_VERSION: u32 = 1;

/// How to run the ladder.
#[derive(Clone, Debug)]
pub struct LadderOptions {
    pub preset: String,
    pub seed: u64,
    pub out: PathBuf,
    /// Rerun every rung (and regenerate the world files) instead of reusing finished ones.
    pub fresh: bool,
    pub quiet: bool,
    /// A knowledge base (JSONL triples) to use instead of the generated world.
    pub kb: Option<PathBuf>,
    /// Compute threads (0 = one per core).
    pub threads: usize,
    /// `key=value` changes to the preset (see [`Preset::with_overrides`]).
    pub overrides: Vec<String>,
    /// Stop after the rung of this name (the report holds the rungs up to it).
    pub until: Option<String>,
    /// Run only these rungs (and the rungs they build on); empty = every rung.
    pub only: Vec<String>,
}

/// What `rungs/NN-name/result.json` holds. In the file, `checkpoint` is relative to the rung's
/// folder (a test-time rung's points into its parent's folder), so an output folder can be moved
/// or reached from another working directory.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct RungResult {
    key: String,
    checkpoint: PathBuf,
    report: RungReport,
}

impl RungResult {
    fn read(dir: &Path) -> Option<Self> {
        let mut r: Self = serde_json::from_slice(&std::fs::read(dir.join("result.json")).ok()?).ok()?;
        r.checkpoint = dir.join(&r.checkpoint);
        Some(r)
    }

    fn write(&self, dir: &Path) -> Result<(), LadderError> {
        let rel = relative_to(&self.checkpoint, dir);
        let stored = Self { checkpoint: rel, ..self.clone() };
        let json = serde_json::to_string_pretty(&stored).expect("result serialises");
        checkpoint::write_atomic(&dir.join("result.json"), json.as_bytes())?;
        Ok(())
    }
}

/// `path` relative to folder `base` (with `..` steps where it lies outside `base`, as a test-time
/// rung's checkpoint in its parent rung's folder does); `path` itself when they share no prefix.
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return path.to_path_buf();
    }
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c);
    }
    rel
}

/// Empties `dir` when it holds work made under another key (a changed recipe or input), then
/// marks it with `key` (`key.txt`), creating it if needed.
pub(crate) fn claim(dir: &Path, key: &str) -> Result<(), LadderError> {
    let key_path = dir.join("key.txt");
    if dir.exists() && !std::fs::read_to_string(&key_path).is_ok_and(|s| s.trim() == key) {
        std::fs::remove_dir_all(dir).map_err(|e| io_err(dir, "cannot clear stale work", e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create", e))?;
    checkpoint::write_atomic(&key_path, key.as_bytes())?;
    Ok(())
}

pub(crate) fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> LadderError {
    LadderError::Io { path: path.to_path_buf(), message: format!("{what}: {e}") }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything checked before any work: the preset, the output folder, the knowledge base.
pub fn check_inputs(opts: &LadderOptions) -> Result<(Preset, Box<dyn Knowledge>), LadderError> {
    let preset = Preset::named(&opts.preset)?.with_overrides(&opts.overrides)?;
    if let Some(u) = &opts.until {
        if !rungs(&preset, opts.seed).iter().any(|r| &r.name == u) {
            return Err(LadderError::Input(format!("--until {u}: no such rung")));
        }
    }
    let names: Vec<String> = rungs(&preset, opts.seed).into_iter().map(|r| r.name).collect();
    for o in &opts.only {
        if !names.contains(o) {
            return Err(LadderError::Input(format!("--only {o}: no such rung (rungs: {})", names.join(", "))));
        }
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| io_err(&opts.out, "cannot create the output folder", e))?;
    let probe = opts.out.join(".ascent-write-probe");
    std::fs::write(&probe, b"probe").map_err(|e| io_err(&opts.out, "the output folder is not writable", e))?;
    let _ = std::fs::remove_file(&probe);
    let knowledge: Box<dyn Knowledge> = match &opts.kb {
        None => {
            let cfg = world::WorldConfig { seed: opts.seed, people: preset.people, ..Default::default() };
            cfg.validate()?;
            Box::new(world::World::generate(&cfg)?)
        }
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| io_err(path, "cannot read the knowledge base", e))?;
            let cfg = world::KbConfig { seed: opts.seed, ..Default::default() };
            Box::new(
                world::KnowledgeBase::from_jsonl(&text, &cfg)
                    .map_err(|e| LadderError::Input(format!("{}: {e}", path.display())))?,
            )
        }
    };
    Ok((preset, knowledge))
}

/// The rungs to run: those named in `only` and every rung they build on (all when `only` is empty).
fn selected(specs: &[RungSpec], only: &[String]) -> BTreeSet<String> {
    if only.is_empty() {
        return specs.iter().map(|s| s.name.clone()).collect();
    }
    let mut wanted = BTreeSet::new();
    let mut stack: Vec<String> = only.to_vec();
    while let Some(name) = stack.pop() {
        if !wanted.insert(name.clone()) {
            continue;
        }
        // The rung it builds on, and the rung it is compared with by name.
        if let Some(spec) = specs.iter().find(|s| s.name == name) {
            stack.extend(spec.stage.parent().map(str::to_string));
            stack.extend(spec.compare.clone());
        }
    }
    wanted
}

/// A fixed, seeded subset of `tasks`: at most `per_family` of each family (0 = all).
fn subset(tasks: Vec<Task>, per_family: usize, seed: u64) -> Vec<Task> {
    let mut by: BTreeMap<Family, Vec<Task>> = BTreeMap::new();
    for t in tasks {
        by.entry(t.family).or_default().push(t);
    }
    let mut out = Vec::new();
    for (_, mut ts) in by {
        ts.sort_by_key(|t| (sha256_hex(format!("{seed}/{}", t.id).as_bytes()), t.id.clone()));
        if per_family > 0 {
            ts.truncate(per_family);
        }
        out.extend(ts);
    }
    out
}

/// What the world's tokenizer is trained on: the single-rendering corpus and the train tasks in
/// every answer format (direct, trace, tool trace).
fn world_tokenizer_texts(k: &dyn Knowledge) -> Result<Vec<String>, LadderError> {
    let mut texts = k.corpus_documents(1)?;
    for t in k.tasks_in(Split::Train) {
        texts.push(qa_text(&t.question, &t.answer));
        texts.push(trace_text(&t.question, &t.trace));
        texts.push(tools::protocol::segments_text(&tools::trace_to_chat(&t.tool_trace)));
    }
    Ok(texts)
}

/// The world's tokenizer: byte-level BPE over [`world_tokenizer_texts`]. One per world, shared by
/// every rendering count and every rung.
pub fn train_world_tokenizer(k: &dyn Knowledge, vocab: usize) -> Result<Tokenizer, LadderError> {
    train_tokenizer_on(&world_tokenizer_texts(k)?, vocab)
}

fn train_tokenizer_on(texts: &[String], vocab: usize) -> Result<Tokenizer, LadderError> {
    Tokenizer::train(texts.iter(), &tokenizer::TrainConfig { vocab_size: vocab, ..Default::default() })
        .map_err(|e| LadderError::Tokenizer(e.to_string()))
}

/// [`train_world_tokenizer`], reused from `dir/tokenizer.json` when it was made from the same
/// texts (so a change to any trace format makes a new one) and vocabulary.
fn world_tokenizer(k: &dyn Knowledge, vocab: usize, dir: &Path, fresh: bool) -> Result<Tokenizer, LadderError> {
    let path = dir.join("tokenizer.json");
    let key_path = dir.join("tokenizer.key");
    let texts = world_tokenizer_texts(k)?;
    let mut hasher = Sha256::new();
    for t in &texts {
        hasher.update((t.len() as u64).to_le_bytes());
        hasher.update(t.as_bytes());
    }
    let key = format!("texts {:x} vocab {vocab}", hasher.finalize());
    if !fresh && std::fs::read_to_string(&key_path).is_ok_and(|s| s.trim() == key) {
        if let Ok(t) = Tokenizer::load(&path) {
            return Ok(t);
        }
    }
    let tok = train_tokenizer_on(&texts, vocab)?;
    tok.save(&path).map_err(|e| LadderError::Tokenizer(e.to_string()))?;
    checkpoint::write_atomic(&key_path, key.as_bytes())?;
    Ok(tok)
}

fn write_docs(path: &Path, docs: &[String]) -> Result<(), LadderError> {
    let mut text = docs.join("\n\n");
    text.push('\n');
    checkpoint::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Run (or resume) the ladder. `on_rung` is called with each rung's row as soon as it is known.
pub fn run(opts: &LadderOptions, on_rung: &mut dyn FnMut(&RungReport)) -> Result<LadderReport, LadderError> {
    let started = Instant::now();
    let (preset, k) = check_inputs(opts)?;
    if opts.threads > 0 {
        engine::set_threads(opts.threads);
    }
    let out = &opts.out;
    if opts.fresh {
        for d in ["rungs", "data", "world", "cache"] {
            let p = out.join(d);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, "cannot remove the earlier run (--fresh)", e))?;
            }
        }
    }
    let world_dir = out.join("world");
    let data_dir = out.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| io_err(&data_dir, "cannot create", e))?;
    std::fs::create_dir_all(&world_dir).map_err(|e| io_err(&world_dir, "cannot create", e))?;

    // The knowledge and its tokenizer.
    let tok = world_tokenizer(k.as_ref(), preset.vocab, &world_dir, opts.fresh)?;
    let tok_path = world_dir.join("tokenizer.json");
    let tok_sha = sha256_hex(tok.to_json_string().map_err(|e| LadderError::Tokenizer(e.to_string()))?.as_bytes());
    let count = |text: &str| tok.encode(text).len() as u64;
    let summary = k.write_counted(&world_dir, 1, Some(&count))?;
    let knowledge_sha = k.knowledge_sha256();
    let people = k.people_per_split();

    // Training files, the validation text and the evaluation subsets.
    let train_tasks = k.tasks_in(Split::Train);
    let heldout_tasks = k.tasks_in(Split::Heldout);
    let qa: Vec<String> = train_tasks.iter().map(|t| qa_text(&t.question, &t.answer)).collect();
    let mut renderings: Vec<usize> = rungs(&preset, opts.seed).iter().filter_map(|r| r.stage.renderings()).collect();
    renderings.sort_unstable();
    renderings.dedup();
    let mut sources = Vec::new();
    for &r in &renderings {
        let mut docs = k.corpus_documents(r)?;
        docs.extend(qa.iter().cloned());
        let p = data_dir.join(format!("pretrain-r{r}.txt"));
        write_docs(&p, &docs)?;
        sources.push((p.display().to_string(), docs.join("\n\n")));
    }
    // Retrieval: a BM25 index over the knowledge passages, built once per world.
    let specs = rungs(&preset, opts.seed);
    let index = if specs.iter().any(|s| s.retrieve > 0) {
        let dir = world_dir.join("index");
        let passages = knowledge_passages(&k.facts());
        let sha = sha256_hex(passages.join("\n\n").as_bytes());
        Some(
            retrieval::Index::open_or_build(&dir, &passages, &sha)
                .map_err(|e| LadderError::Input(format!("retrieval index {}: {e}", dir.display())))?,
        )
    } else {
        None
    };
    // Fine-tuning data, one file per kind the rungs use.
    let facts = k.facts();
    let reflection = Reflection::new(&facts, opts.seed, 0.5);
    let named: BTreeSet<String> = k.tasks().iter().flat_map(|t| t.people.iter().cloned()).collect();
    let named: Vec<String> = named.into_iter().collect();
    let entities = facts.iter().flat_map(|f| [f.subject.clone(), f.object.clone()]);
    let fictional = Fictional::new(&named, entities, opts.seed);
    let held_questions: BTreeSet<&str> = heldout_tasks.iter().map(|t| t.question.as_str()).collect();
    let mut examples: BTreeMap<(SftData, usize, usize), Vec<Example>> = BTreeMap::new();
    let mut example_shas: BTreeMap<(SftData, usize, usize), String> = BTreeMap::new();
    let mut example_hops: BTreeMap<(SftData, usize, usize), Vec<u32>> = BTreeMap::new();
    for spec in &specs {
        let Some(data) = spec.stage.sft_data() else { continue };
        let data = &data;
        let key = (*data, spec.retrieve, spec.fictional);
        if examples.contains_key(&key) {
            continue;
        }
        let prefixes = match (&index, spec.retrieve) {
            (Some(ix), r) if r > 0 => retrieved_prefixes(ix, &train_tasks, r)?,
            _ => vec![String::new(); train_tasks.len()],
        };
        let (ex, hops) = sft_examples(
            *data,
            &train_tasks,
            &prefixes,
            &reflection,
            fictional.as_ref(),
            spec.fictional,
            &held_questions,
        );
        let mut stem = data.file_stem().to_string();
        if spec.retrieve > 0 {
            stem.push_str(&format!("-retrieved{}", spec.retrieve));
        }
        if spec.fictional > 0 {
            stem.push_str(&format!("-fictional{}", spec.fictional));
        }
        let path = data_dir.join(format!("sft-{stem}.jsonl"));
        let text: String = ex.iter().map(|e| serde_json::to_string(e).expect("example serialises") + "\n").collect();
        checkpoint::write_atomic(&path, text.as_bytes())?;
        example_shas.insert(key, sha256_hex(text.as_bytes()));
        sources.push((path.display().to_string(), text));
        examples.insert(key, ex);
        example_hops.insert(key, hops);
    }
    let val: Vec<String> = heldout_tasks.iter().map(|t| qa_text(&t.question, &t.answer)).collect();
    let val_path = data_dir.join("val-heldout-qa.txt");
    write_docs(&val_path, &val)?;

    let decon = world::decontaminate(&heldout_tasks, &sources);
    checkpoint::write_atomic(
        &out.join("decontamination.json"),
        serde_json::to_string_pretty(&decon).expect("report serialises").as_bytes(),
    )?;
    if !decon.is_clean() {
        return Err(LadderError::Input(format!(
            "{} held-out tasks leak into the training files; see {}",
            decon.hits.len(),
            out.join("decontamination.json").display()
        )));
    }
    let eval_tasks = subset(heldout_tasks.clone(), preset.eval_per_family, opts.seed);
    let probe_tasks = subset(
        train_tasks.iter().filter(|t| t.family == Family::Recall).cloned().collect(),
        preset.eval_per_family,
        opts.seed,
    );
    let kb_index = k.knowledge_index();

    let mut report = LadderReport {
        format: report::FORMAT_VERSION,
        preset: preset.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        world: WorldInfo {
            seed: k.seed(),
            facts: summary.fact_count,
            knowledge_sha256: knowledge_sha.clone(),
            corpus_sha256: summary.corpus_sha256.clone(),
            corpus_tokens: summary.corpus_tokens.unwrap_or(0),
            people: people.clone(),
            source: opts.kb.as_ref().map_or("generated".to_string(), |p| p.display().to_string()),
        },
        setup: Vec::new(),
        rungs: Vec::new(),
        total_seconds: 0.0,
        machine: format!("{} threads, cpu backend", engine::threads()),
    };
    report.setup = setup_lines(&preset, &report.world, &eval_tasks, &probe_tasks, tok.vocab_size());
    report.setup.push(chance_line(&train_tasks, &eval_tasks));

    let wanted = selected(&specs, &opts.only);
    let mut done: BTreeMap<String, RungResult> = BTreeMap::new();
    let mut dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut last_ran: Option<String> = None;
    let rung_root = out.join("rungs");
    for (i, spec) in specs.iter().enumerate() {
        if !wanted.contains(&spec.name) {
            continue;
        }
        let dir = rung_root.join(format!("{i:02}-{}", spec.name));
        let (corpus_renderings, parent) = match (&spec.stage, spec.stage.parent()) {
            (Stage::Pretrain { renderings, .. } | Stage::TunedPretrain { renderings, .. }, _) => (*renderings, None),
            (_, from) => {
                let from = from.expect("a stage that is not pretraining builds on a rung");
                let p = done.get(from).ok_or_else(|| {
                    LadderError::Input(format!(
                        "rung `{}` builds on `{from}`, which does not come before it",
                        spec.name
                    ))
                })?;
                (p.report.renderings, Some(p.clone()))
            }
        };
        let corpus_sha = k.corpus_sha256(corpus_renderings)?;
        let mut key_fields = serde_json::json!({
            "version": KEY_VERSION,
            "spec": spec,
            "knowledge": knowledge_sha,
            "corpus": corpus_sha,
            "tokenizer": tok_sha,
            "parent": parent.as_ref().map(|p| p.key.clone()),
            "eval": [preset.eval_per_family, opts.seed as usize],
        });
        // A fine-tuning rung also depends on the exact examples it trains on, and a retrieval
        // rung on the index it reads.
        if let Some(data) = spec.stage.sft_data() {
            key_fields["data"] = serde_json::json!(example_shas[&(data, spec.retrieve, spec.fictional)]);
        }
        if let (true, Some(ix)) = (spec.retrieve > 0, &index) {
            key_fields["index"] = serde_json::json!(ix.meta().corpus_sha256);
        }
        let key = sha256_hex(serde_json::to_string(&key_fields).expect("key serialises").as_bytes());
        // The inputs of one run of a rung's stage (the rung itself, or a replicate of it at
        // another seed in `dir/seed-N`).
        macro_rules! inputs {
            ($spec:expr, $dir:expr, $key:expr, $corpus_sha:expr, $renderings:expr, $parent:expr) => {
                RungInputs {
                    spec: $spec,
                    preset: &preset,
                    dir: $dir,
                    key: $key,
                    knowledge_sha: &knowledge_sha,
                    corpus_sha: $corpus_sha,
                    renderings: $renderings,
                    parent: $parent,
                    data_dir: &data_dir,
                    val_path: &val_path,
                    tok_path: &tok_path,
                    examples: &examples,
                    example_hops: &example_hops,
                    index: index.as_ref(),
                    k: k.as_ref(),
                    eval_tasks: &eval_tasks,
                    probe_tasks: &probe_tasks,
                    train_tasks: &train_tasks,
                    kb_index: &kb_index,
                    opts,
                }
            };
        }
        // A rung at `seeds` seeds: the mean accuracy of seed 0 (`first`) and of each replicate,
        // run (or reused) in `dir/seed-N` under a key derived from the rung's.
        macro_rules! replicates {
            ($spec:expr, $dir:expr, $first:expr, $corpus_sha:expr, $renderings:expr, $parent:expr, $seeds:expr) => {{
                let first: &RungResult = $first;
                let mut out = vec![first.report.mean_accuracy];
                for i in 1..$seeds as u64 {
                    let stage = replicate_stage($spec, first, i).ok_or_else(|| {
                        LadderError::Input(format!("rung `{}`: its stage cannot be run at several seeds", $spec.name))
                    })?;
                    let rep_spec = RungSpec { stage, seeds: 1, ..$spec.clone() };
                    let rep_dir = $dir.join(format!("seed-{i}"));
                    let rep_key = sha256_hex(format!("{} seed {i}", first.key).as_bytes());
                    let r = match RungResult::read(&rep_dir)
                        .filter(|r| r.key == rep_key && r.checkpoint.join("state.json").is_file())
                    {
                        Some(r) => r,
                        None => run_rung(inputs!(&rep_spec, &rep_dir, &rep_key, $corpus_sha, $renderings, $parent))?,
                    };
                    out.push(r.report.mean_accuracy);
                }
                out
            }};
        }
        let reusable = RungResult::read(&dir).filter(|r| r.key == key && r.checkpoint.join("state.json").is_file());
        let result = match reusable {
            Some(mut r) => {
                r.report.reused = true;
                r
            }
            None => run_rung(inputs!(spec, &dir, &key, &corpus_sha, corpus_renderings, parent.as_ref()))?,
        };
        // The paired comparison with the rung this one changes (named, else its parent, else
        // the rung before it that ran): the same held-out questions, graded both ways.
        let mut result = result;
        let reference =
            spec.compare.clone().or_else(|| spec.stage.parent().map(str::to_string)).or_else(|| last_ran.clone());
        if let Some(r) = reference.as_ref().and_then(|name| dirs.get(name).map(|d| (name, d))) {
            if let Some(v) = paired(&dir, r.1) {
                result
                    .report
                    .extra
                    .insert("vs".into(), serde_json::json!({"rung": r.0, "better": v.0, "worse": v.1, "p_value": v.2}));
            }
        }
        // Several seeds: this rung's and its reference's, at the same seed offsets.
        if spec.seeds > 1 {
            let own = replicates!(spec, &dir, &result, &corpus_sha, corpus_renderings, parent.as_ref(), spec.seeds);
            let mut seeds = report::Seeds {
                seeds: (0..spec.seeds as u64).collect(),
                mean_accuracy: own,
                reference: None,
                reference_mean_accuracy: Vec::new(),
            };
            if let Some((name, r)) = reference.as_ref().and_then(|n| done.get(n).map(|r| (n, r))) {
                let rspec = specs.iter().find(|s| &s.name == name).expect("a rung that ran is a spec");
                let rparent = rspec.stage.parent().and_then(|p| done.get(p));
                let rsha = r.report.corpus_sha256.clone();
                seeds.reference_mean_accuracy =
                    replicates!(rspec, &dirs[name], r, &rsha, r.report.renderings, rparent, spec.seeds);
                seeds.reference = Some(name.clone());
            }
            result.report.seeds = Some(seeds);
        }
        dirs.insert(spec.name.clone(), dir.clone());
        last_ran = Some(spec.name.clone());
        on_rung(&result.report);
        report.rungs.push(result.report.clone());
        report.total_seconds = started.elapsed().as_secs_f64();
        report.write_all(out)?;
        done.insert(spec.name.clone(), result);
        if opts.until.as_deref() == Some(spec.name.as_str()) {
            break;
        }
    }
    Ok(report)
}

/// The stage of replicate `i` of the rung `spec` whose first run is `first`: the stage at seeds
/// moved by `i`; for tuned pretraining, plain pretraining with the optimiser and rate the first
/// run chose (the tuning is not repeated).
fn replicate_stage(spec: &RungSpec, first: &RungResult, i: u64) -> Option<Stage> {
    match &spec.stage {
        Stage::TunedPretrain { renderings, config, .. } => {
            let chosen = first.report.extra.get("chosen")?;
            let kind: OptimKind = serde_json::from_value(chosen["optimizer"].clone()).ok()?;
            let lr = chosen["lr"].as_f64()?;
            let stage =
                Stage::Pretrain { renderings: *renderings, config: Box::new(chosen_optimizer(config, kind, lr)) };
            stage.reseeded(i)
        }
        other => other.reseeded(i),
    }
}

/// Held-out questions right only in rung folder `dir`, right only in `reference`, and the
/// McNemar p-value of that split; `None` when either `eval.json` is missing or unreadable.
fn paired(dir: &Path, reference: &Path) -> Option<(usize, usize, f64)> {
    let read = |d: &Path| -> Option<BTreeMap<String, bool>> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("eval.json")).ok()?).ok()?;
        v["heldout"]["outcomes"]
            .as_array()?
            .iter()
            .map(|o| Some((o["id"].as_str()?.to_string(), o["correct"].as_bool()?)))
            .collect()
    };
    let (a, b) = (read(dir)?, read(reference)?);
    let better = a.iter().filter(|(id, &ok)| ok && b.get(*id) == Some(&false)).count();
    let worse = a.iter().filter(|(id, &ok)| !ok && b.get(*id) == Some(&true)).count();
    Some((better, worse, testtime::mcnemar(better, worse)))
}

/// Preference pairs from sampled answers to the train questions: per question, up to two pairs,
/// each a right answer whose every step checks against the knowledge (or, failing that, any
/// right answer) chosen over a wrong one. The prompt is the question in `mode`.
fn preference_pairs(tasks: &[Task], draws: &[testtime::Draws], mode: AnswerMode) -> Vec<train::prefs::Pair> {
    let questions: BTreeMap<&str, &str> = tasks.iter().map(|t| (t.id.as_str(), t.question.as_str())).collect();
    let mut out = Vec::new();
    for t in draws {
        let Some(q) = questions.get(t.id.as_str()) else { continue };
        let sound = |d: &&testtime::Draw| d.steps > 0 && d.true_steps == d.steps;
        let mut right: Vec<&testtime::Draw> = t.draws.iter().filter(|d| d.correct).collect();
        right.sort_by_key(|d| !sound(d)); // stable: sound ones first, in draw order
        let wrong: Vec<&testtime::Draw> = t.draws.iter().filter(|d| !d.correct).collect();
        for (c, r) in right.iter().zip(&wrong).take(2) {
            out.push(train::prefs::Pair::new(eval::prompt(q, mode), c.completion.clone(), r.completion.clone()));
        }
    }
    out
}

/// Trains an outcome reward model on the policy's own verified answers to the train questions
/// (`k / 2` samples each, at least 2), scores every draw of `draws` with it, and returns what
/// to report: the training summary and the AUC of its scores on the held-out draws.
#[allow(clippy::too_many_arguments)]
fn rank_by_reward_model(
    x: &RungInputs,
    policy_checkpoint: &Path,
    model: &model::Transformer,
    tok: &Tokenizer,
    cfg: &RewardConfig,
    k: usize,
    sampling: &model::Sampling,
    draws: &mut [testtime::Draws],
    device: &model::burn::prelude::Device,
) -> Result<serde_json::Value, LadderError> {
    let mode = x.spec.answer_mode;
    let train_sampling = model::Sampling { seed: sampling.seed.wrapping_add(1), ..sampling.clone() };
    let per = (k / 2).max(2);
    let (train_draws, sample_seconds) = testtime::sample_tasks(
        model,
        tok,
        x.train_tasks,
        mode,
        per,
        &train_sampling,
        x.preset.eval_batch,
        x.kb_index,
        device,
    )?;
    let row = |question: &str, completion: &str| {
        let mut ids = tok.encode(&eval::prompt(question, mode));
        ids.extend(tok.encode(completion));
        ids
    };
    let questions: BTreeMap<&str, &str> = x.train_tasks.iter().map(|t| (t.id.as_str(), t.question.as_str())).collect();
    let data: Vec<RewardLabelled> = train_draws
        .iter()
        .flat_map(|t| {
            let q = questions[t.id.as_str()];
            t.draws.iter().map(move |d| RewardLabelled { tokens: row(q, &d.completion), correct: d.correct })
        })
        .collect();
    let positives = data.iter().filter(|d| d.correct).count();
    if positives == 0 || positives == data.len() {
        // Nothing to tell apart: every draw scores the same, so the earliest answer is taken.
        for d in draws.iter_mut().flat_map(|t| t.draws.iter_mut()) {
            d.score = Some(0.0);
        }
        return Ok(serde_json::json!({
            "train_answers": data.len(),
            "train_positive_fraction": positives as f64 / data.len().max(1) as f64,
            "skipped": "the policy's train answers are all of one kind (all correct or all wrong): no reward model to train",
        }));
    }
    let (rm, summary) = train::reward::train_reward_model(policy_checkpoint, &data, cfg)?;
    let asked: BTreeMap<&str, &str> =
        x.eval_tasks.iter().chain(x.probe_tasks).map(|t| (t.id.as_str(), t.question.as_str())).collect();
    let rows: Vec<Vec<u32>> =
        draws.iter().flat_map(|t| t.draws.iter().map(|d| row(asked[t.id.as_str()], &d.completion))).collect();
    let scores = train::reward::score_all(&rm, &rows, x.preset.eval_batch, device);
    let mut it = scores.into_iter();
    let mut held: Vec<(f32, bool)> = Vec::new();
    for t in draws.iter_mut() {
        for d in &mut t.draws {
            d.score = it.next();
            if t.split == "heldout" {
                held.push((d.score.unwrap_or(0.0), d.correct));
            }
        }
    }
    Ok(serde_json::json!({
        "train_answers": summary.examples,
        "train_positive_fraction": summary.positive_fraction,
        "loss_first": summary.first_loss,
        "loss_last": summary.last_loss,
        "heldout_auc": testtime::auc(&held),
        "sample_seconds": sample_seconds,
        "train_seconds": summary.seconds,
    }))
}

/// The fine-tuning examples of `data` for `tasks`, each prompt after its prefix, each followed by
/// `copies` copies about fictional people (when `fictional` can rename the knowledge's people).
/// A copy whose question happens to be one of the `held_out` questions (a shifted year can turn
/// one inverse question into another) is left out. Also the hop count of each example's task
/// (for a curriculum).
fn sft_examples(
    data: SftData,
    tasks: &[Task],
    prefixes: &[String],
    reflection: &Reflection,
    fictional: Option<&Fictional>,
    copies: usize,
    held_out: &BTreeSet<&str>,
) -> (Vec<Example>, Vec<u32>) {
    let mut out = Vec::new();
    let mut hops = Vec::new();
    for (t, pre) in tasks.iter().zip(prefixes) {
        for copy in 0..=copies {
            // Copy 0 is the example itself.
            let (pre, question, trace, tool_trace) = match (copy, fictional) {
                (0, _) => (pre.clone(), t.question.clone(), t.trace.clone(), t.tool_trace.clone()),
                (c, Some(f)) => {
                    let r = f.rename(&t.id, c, &[pre, &t.question, &t.trace, &t.tool_trace]);
                    (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone())
                }
                (_, None) => break,
            };
            if copy > 0 && held_out.contains(question.as_str()) {
                continue;
            }
            hops.push(t.hops);
            out.push(match data {
                SftData::Traces => Example::new(format!("{pre}{}", eval::prompt(&question, AnswerMode::Trace)), trace),
                SftData::ToolTraces => {
                    // A fictional arithmetic copy also spreads its years (differences of every
                    // length); see `Fictional::spread`.
                    let spread = match (copy, fictional) {
                        (1.., Some(f)) if t.family == Family::Arithmetic => f.spread(&t.id, copy, &tool_trace),
                        _ => None,
                    };
                    let tool_trace = spread.unwrap_or(tool_trace);
                    let (completion, forced) = tools::segments_with_forced(&tools::trace_to_chat(&tool_trace));
                    Example {
                        prompt: format!("{pre}{}", eval::prompt(&question, AnswerMode::Tools)),
                        completion,
                        forced,
                        messages: None,
                    }
                }
                SftData::ReflectionTraces => {
                    let (completion, forced) = reflection.rewrite(&t.id, &trace);
                    Example {
                        prompt: format!("{pre}{}", eval::prompt(&question, AnswerMode::Trace)),
                        completion,
                        forced,
                        messages: None,
                    }
                }
            });
        }
    }
    (out, hops)
}

/// The passages the retrieval index holds: one per subject, in the order subjects first appear
/// among the facts, each the subject's facts as canonical sentences (`world::fact_sentence`, the
/// form a gold trace writes them in, full name in every sentence). Proposition-style passages:
/// the same facts as the corpus, in the rendering that is easiest to quote.
fn knowledge_passages(facts: &[world::Fact]) -> Vec<String> {
    let mut order: Vec<&str> = Vec::new();
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for f in facts {
        let e = by.entry(f.subject.as_str()).or_default();
        if e.is_empty() {
            order.push(f.subject.as_str());
        }
        e.push(world::fact_sentence(f));
    }
    order.iter().map(|s| by[s].join(" ")).collect()
}

/// For each task, the top `k` passages retrieved for its question, as the text that goes before
/// its prompt (`retrieval::prompt_with_passages`).
fn retrieved_prefixes(index: &retrieval::Index, tasks: &[Task], k: usize) -> Result<Vec<String>, LadderError> {
    tasks
        .iter()
        .map(|t| {
            let hits = index.search(&t.question, k).map_err(|e| LadderError::Input(format!("retrieval: {e}")))?;
            Ok(retrieval::prompt_with_passages("", &hits))
        })
        .collect()
}

/// `k` sampled answers per task from `model`, the model of the rung whose key is `model_key`
/// (in the rung's answer mode), read from the run's `cache/` when an earlier rung sampled the
/// same model, tasks and sampling; the draws, their seconds, and whether they came from the cache.
#[allow(clippy::too_many_arguments)]
fn cached_draws(
    x: &RungInputs,
    model_key: Option<&str>,
    model: &model::Transformer,
    tok: &Tokenizer,
    tasks: &[Task],
    k: usize,
    sampling: &model::Sampling,
    device: &model::burn::prelude::Device,
) -> Result<(Vec<testtime::Draws>, f64, bool), LadderError> {
    let cache_key = sha256_hex(
        serde_json::to_string(&serde_json::json!({
            "parent": model_key,
            "mode": x.spec.answer_mode,
            "k": k,
            "sampling": sampling,
            "batch": x.preset.eval_batch,
            "tasks": tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        }))
        .expect("cache key serialises")
        .as_bytes(),
    );
    let cache_path = x.opts.out.join("cache").join(format!("draws-{}.json", &cache_key[..16]));
    if let Some((d, s)) =
        std::fs::read(&cache_path).ok().and_then(|b| serde_json::from_slice::<(Vec<testtime::Draws>, f64)>(&b).ok())
    {
        return Ok((d, s, true));
    }
    let fresh = testtime::sample_tasks(
        model,
        tok,
        tasks,
        x.spec.answer_mode,
        k,
        sampling,
        x.preset.eval_batch,
        x.kb_index,
        device,
    )?;
    std::fs::create_dir_all(cache_path.parent().expect("has a parent"))
        .map_err(|e| io_err(&cache_path, "cannot create the cache folder", e))?;
    checkpoint::write_atomic(&cache_path, &serde_json::to_vec(&fresh).expect("draws serialise"))?;
    Ok((fresh.0, fresh.1, false))
}

/// Whether `text` names every one of `people`.
fn mentions_all(text: &str, people: &[String]) -> bool {
    people.iter().all(|p| text.contains(p.as_str()))
}

/// Held-out arithmetic accuracy by the number of digits of the gold answer (`{"1": .., "2": ..}`),
/// or `None` when there is no arithmetic task.
fn arithmetic_by_magnitude(tasks: &[Task], outcomes: &[eval::Outcome]) -> Option<serde_json::Value> {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (t, o) in tasks.iter().zip(outcomes) {
        if t.family != Family::Arithmetic {
            continue;
        }
        let digits = t.answer.trim().trim_start_matches('-').len().to_string();
        let e = by.entry(digits).or_default();
        e.0 += o.correct as usize;
        e.1 += 1;
    }
    (!by.is_empty()).then(|| {
        serde_json::json!(by
            .iter()
            .map(|(d, &(c, n))| (d.clone(), serde_json::json!({"accuracy": c as f64 / n as f64, "n": n})))
            .collect::<BTreeMap<_, _>>())
    })
}

struct RungInputs<'a> {
    spec: &'a RungSpec,
    preset: &'a Preset,
    dir: &'a Path,
    key: &'a str,
    knowledge_sha: &'a str,
    corpus_sha: &'a str,
    renderings: usize,
    parent: Option<&'a RungResult>,
    data_dir: &'a Path,
    val_path: &'a Path,
    tok_path: &'a Path,
    examples: &'a BTreeMap<(SftData, usize, usize), Vec<Example>>,
    /// The hop count of each example's task, in the same order.
    example_hops: &'a BTreeMap<(SftData, usize, usize), Vec<u32>>,
    index: Option<&'a retrieval::Index>,
    k: &'a dyn Knowledge,
    eval_tasks: &'a [Task],
    probe_tasks: &'a [Task],
    train_tasks: &'a [Task],
    kb_index: &'a world::KnowledgeIndex,
    opts: &'a LadderOptions,
}

/// Pretrain `config` on the rung's corpus (`renderings`), validation text and tokenizer into
/// `out` (resumed if a checkpoint is there); the summary and the last checkpoint.
fn pretrain_on_corpus(
    x: &RungInputs,
    renderings: usize,
    config: &PretrainConfig,
    out: &Path,
) -> Result<(train::pretrain::Summary, PathBuf), LadderError> {
    let mut cfg = config.clone();
    cfg.out_dir = out.to_path_buf();
    cfg.data.corpus = x.data_dir.join(format!("pretrain-r{renderings}.txt")).display().to_string();
    cfg.data.val_corpus = x.val_path.display().to_string();
    cfg.data.tokenizer = x.tok_path.display().to_string();
    cfg.threads = x.opts.threads;
    let resume = checkpoint::latest(out).is_some();
    if resume {
        tracing::info!("rung {}: resuming from {}", x.spec.name, out.display());
    }
    let s = train::pretrain(&cfg, &RunOptions { resume, fresh: false, stop_after: None, quiet: x.opts.quiet })?;
    let ckpt = checkpoint::latest(out)
        .ok_or_else(|| LadderError::Input(format!("rung {} wrote no checkpoint in {}", x.spec.name, out.display())))?;
    Ok((s, ckpt))
}

/// What a pretraining rung reports besides accuracy: validation loss at the start and the end,
/// and a mixture of experts' routing.
fn pretrain_extras(s: &train::pretrain::Summary, extra: &mut BTreeMap<String, serde_json::Value>) {
    if let Some((_, v)) = s.val_losses.last() {
        extra.insert("val_loss_heldout_qa".into(), serde_json::json!(v));
    }
    if let Some((_, v)) = s.val_losses.first() {
        extra.insert("val_loss_heldout_qa_start".into(), serde_json::json!(v));
    }
    let p = s.model.param_count();
    if p.active != p.total {
        extra.insert("active_params".into(), serde_json::json!(p.active));
    }
    if let Some(m) = &s.moe {
        extra.insert("routing".into(), serde_json::json!(m));
    }
}

/// The final validation loss of a proxy run of `config` in `out` (reused when finished there);
/// infinity when its training loss became non-finite (recorded in `out/diverged.txt`).
fn proxy_loss(x: &RungInputs, renderings: usize, config: &PretrainConfig, out: &Path) -> Result<f64, LadderError> {
    let marker = out.join("diverged.txt");
    if marker.is_file() {
        return Ok(f64::INFINITY);
    }
    match pretrain_on_corpus(x, renderings, config, out) {
        Ok((_, ckpt)) => Ok(checkpoint::read_state(&ckpt)?.val_loss.unwrap_or(f64::INFINITY)),
        Err(LadderError::Train(train::TrainError::Diverged(m))) => {
            checkpoint::write_atomic(&marker, m.as_bytes())?;
            Ok(f64::INFINITY)
        }
        Err(e) => Err(e),
    }
}

/// `config` with optimiser `kind` at peak rate `lr`.
fn chosen_optimizer(config: &PretrainConfig, kind: OptimKind, lr: f64) -> PretrainConfig {
    let mut c = config.clone();
    c.optim.kind = kind;
    c.optim.lr = lr;
    c
}

fn finite_or_null(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

/// Train (or resume) one rung's stage, evaluate it and write its `result.json`.
fn run_rung(x: RungInputs) -> Result<RungResult, LadderError> {
    let started = Instant::now();
    let dir = x.dir;
    claim(dir, x.key)?;
    let train_dir = dir.join("train");
    let mut extra: BTreeMap<String, serde_json::Value> = BTreeMap::new();

    let (ckpt, train_tokens, flops, model_line, params, earlier_seconds) = match &x.spec.stage {
        Stage::Pretrain { renderings, config } => {
            let (s, ckpt) = pretrain_on_corpus(&x, *renderings, config, &train_dir)?;
            pretrain_extras(&s, &mut extra);
            let flops = s.model.train_flops_per_token(config.train.seq_len) as f64 * s.tokens_seen as f64;
            (ckpt, s.tokens_seen, flops, s.model.summary(), s.params, s.total_seconds - s.seconds)
        }
        Stage::TunedPretrain { renderings, config, candidates, lr_factors, proxy_steps } => {
            // Proxy runs: every candidate (and AdamW) at each rate, for `proxy_steps`.
            let scale = config.optim.lr / OptimKind::Adamw.default_lr();
            let mut proxies = Vec::new();
            let mut best: Option<(OptimKind, f64, f64)> = None;
            for &kind in std::iter::once(&OptimKind::Adamw).chain(candidates) {
                for f in lr_factors {
                    let lr = kind.default_lr() * scale * f;
                    let mut c = (**config).clone();
                    c.optim.kind = kind;
                    c.optim.lr = lr;
                    c.train.steps = *proxy_steps;
                    c.schedule.warmup_steps = c.schedule.warmup_steps.min(proxy_steps / 4);
                    c.train.eval_every = *proxy_steps;
                    c.train.checkpoint_every = *proxy_steps;
                    c.train.log_every = (proxy_steps / 10).max(1);
                    let out = dir.join("proxy").join(format!("{}-{lr:.3e}", kind.name()));
                    let val = proxy_loss(&x, *renderings, &c, &out)?;
                    proxies
                        .push(serde_json::json!({"optimizer": kind.name(), "lr": lr, "val_loss": finite_or_null(val)}));
                    if kind != OptimKind::Adamw && best.is_none_or(|(_, _, v)| val < v) {
                        best = Some((kind, lr, val));
                    }
                }
            }
            let (kind, lr, val) = best.ok_or_else(|| {
                LadderError::Input(format!("rung {}: no optimiser candidate trained without diverging", x.spec.name))
            })?;
            extra.insert("proxy".into(), serde_json::json!(proxies));
            extra.insert(
                "chosen".into(),
                serde_json::json!({"optimizer": kind.name(), "lr": lr, "proxy_val_loss": val}),
            );
            let cfg = chosen_optimizer(config, kind, lr);
            let (s, ckpt) = pretrain_on_corpus(&x, *renderings, &cfg, &train_dir)?;
            pretrain_extras(&s, &mut extra);
            let flops = s.model.train_flops_per_token(cfg.train.seq_len) as f64 * s.tokens_seen as f64;
            let line = format!("{} | {} at lr {lr:.2e}", s.model.summary(), kind.name());
            (ckpt, s.tokens_seen, flops, line, s.params, s.total_seconds - s.seconds)
        }
        Stage::Sft { config, data, .. } => {
            let parent = x.parent.expect("an SFT rung has a parent");
            let replay = x.k.corpus_documents(x.renderings)?;
            let key = (*data, x.spec.retrieve, x.spec.fictional);
            // With a curriculum, the examples go from fewer hops to more (stable within a count).
            let ordered: Vec<Example>;
            let examples = match config.curriculum {
                Some(_) => {
                    let hops = &x.example_hops[&key];
                    let mut idx: Vec<usize> = (0..hops.len()).collect();
                    idx.sort_by_key(|&i| hops[i]);
                    ordered = idx.into_iter().map(|i| x.examples[&key][i].clone()).collect();
                    &ordered
                }
                None => &x.examples[&key],
            };
            if train_dir.exists() {
                std::fs::remove_dir_all(&train_dir).map_err(|e| io_err(&train_dir, "cannot clear", e))?;
            }
            let s = sft::sft(&parent.checkpoint, examples, &replay, config, &train_dir, x.opts.quiet)?;
            extra.insert("sft_loss_first".into(), serde_json::json!(s.first_loss));
            extra.insert("sft_loss_last".into(), serde_json::json!(s.last_loss));
            extra.insert("sft_examples".into(), serde_json::json!(examples.len()));
            (s.checkpoint, s.tokens, s.flops, parent.report.model.clone(), parent.report.params, 0.0)
        }
        Stage::TestTime { .. } => {
            let parent = x.parent.expect("a test-time rung has a parent");
            (parent.checkpoint.clone(), 0, 0.0, parent.report.model.clone(), parent.report.params, 0.0)
        }
        Stage::Rft { config, .. } => {
            let parent = x.parent.expect("a rejection-sampling rung has a parent");
            let replay = x.k.corpus_documents(x.renderings)?;
            let (ckpt, yields) = train::rft::rft(
                &parent.checkpoint,
                x.train_tasks,
                x.spec.answer_mode,
                x.kb_index,
                &replay,
                config,
                &train_dir,
                x.opts.quiet,
            )?;
            extra.insert("yield_per_round".into(), serde_json::json!(yields));
            let trained: usize = yields.iter().map(|y| y.trained_on).sum();
            extra.insert("examples_trained".into(), serde_json::json!(trained));
            let tokens: u64 = yields.iter().map(|y| y.trained_tokens).sum();
            let flops = 6.0 * parent.report.params as f64 * tokens as f64;
            (ckpt, tokens, flops, parent.report.model.clone(), parent.report.params, 0.0)
        }
        Stage::Distill { student, sft: sft_cfg, distill, samples, sampling, per_question, .. } => {
            let teacher = x.parent.expect("a distillation rung has a teacher");
            // The student, pretrained on the teacher's corpus (resumed if the rung was stopped).
            let (ps, student_ckpt) = pretrain_on_corpus(&x, x.renderings, student, &dir.join("student"))?;
            if ps.params * 2 > teacher.report.params {
                return Err(LadderError::Input(format!(
                    "rung {}: the student has {} parameters, more than half the teacher's {}; lower student_width",
                    x.spec.name, ps.params, teacher.report.params
                )));
            }
            let replay = x.k.corpus_documents(x.renderings)?;
            let gold = &x.examples[&(SftData::Traces, 0, 0)];
            let device = engine::device(engine::Backend::Cpu).map_err(LadderError::Engine)?;

            let opts = EvalOptions { mode: AnswerMode::Trace, batch: x.preset.eval_batch, ..Default::default() };
            // A student fine-tuned on `data` in `name/`, and its held-out scores.
            let student_sft = |name: &str, data: &[Example]| -> Result<serde_json::Value, LadderError> {
                let out = dir.join(name);
                if out.exists() {
                    std::fs::remove_dir_all(&out).map_err(|e| io_err(&out, "cannot clear", e))?;
                }
                let s = sft::sft(&student_ckpt, data, &replay, sft_cfg, &out, x.opts.quiet)?;
                let (m, t, _) = eval::load_for_inference(&s.checkpoint, &device)?;
                let r = eval::evaluate(&m, &t, x.eval_tasks, &opts, &device)?;
                Ok(serde_json::json!({
                    "all": r.overall.accuracy,
                    "examples": data.len(),
                    "by_family": r.by_family.iter().map(|(f, s)| (f.clone(), s.accuracy)).collect::<BTreeMap<_, _>>(),
                }))
            };
            // The reference point: the same student fine-tuned on the gold traces.
            extra.insert("student_sft_gold".into(), student_sft("student-sft", gold)?);

            // The teacher's verified answers to the train questions.
            let (tm, ttok, _) = eval::load_for_inference(&teacher.checkpoint, &device)?;
            let (draws, _) = testtime::sample_tasks(
                &tm,
                &ttok,
                x.train_tasks,
                AnswerMode::Trace,
                *samples,
                sampling,
                x.preset.eval_batch,
                x.kb_index,
                &device,
            )?;
            let mut taught = Vec::new();
            for (t, d) in x.train_tasks.iter().zip(&draws) {
                let mut kept = BTreeSet::new();
                for a in d.draws.iter().filter(|a| a.correct && a.steps > 0 && a.true_steps == a.steps) {
                    if kept.len() < *per_question && kept.insert(a.completion.as_str()) {
                        taught.push(Example::new(eval::prompt(&t.question, AnswerMode::Trace), a.completion.clone()));
                    }
                }
            }
            extra.insert("teacher_samples_kept".into(), serde_json::json!(taught.len()));
            // Sequence-level distillation: the student fine-tuned on the teacher's answers alone.
            if !taught.is_empty() {
                extra.insert("student_sequence_level".into(), student_sft("student-seq", &taught)?);
            }
            // Logit distillation (the rung's model) on the gold traces and the teacher's answers.
            let gold_texts: BTreeSet<(&str, &str)> =
                gold.iter().map(|e| (e.prompt.as_str(), e.completion.as_str())).collect();
            let mut examples = gold.clone();
            examples.extend(
                taught.iter().filter(|e| !gold_texts.contains(&(e.prompt.as_str(), e.completion.as_str()))).cloned(),
            );
            if train_dir.exists() {
                std::fs::remove_dir_all(&train_dir).map_err(|e| io_err(&train_dir, "cannot clear", e))?;
            }
            let ds =
                train::distill::distill(&teacher.checkpoint, &student_ckpt, &examples, &replay, distill, &train_dir)?;
            extra.insert("distill_loss_first".into(), serde_json::json!(ds.first_loss));
            extra.insert("distill_loss_last".into(), serde_json::json!(ds.last_loss));
            extra.insert("teacher".into(), serde_json::json!(teacher.report.name));
            extra.insert("teacher_params".into(), serde_json::json!(teacher.report.params));
            extra.insert("param_ratio".into(), serde_json::json!(ps.params as f64 / teacher.report.params as f64));
            if let Some((_, v)) = ps.val_losses.last() {
                extra.insert("student_val_loss_heldout_qa".into(), serde_json::json!(v));
            }
            // Compute: the student's pretraining and the distillation (student forward and
            // backward, teacher forward) over the rows it saw.
            let mean_row = examples.iter().map(|e| e.tokens(&ttok).map_or(0, |r| r.0.len())).sum::<usize>() as f64
                / examples.len() as f64;
            let tokens = (distill.steps * distill.batch_size) as f64 * mean_row;
            let flops = ps.model.train_flops_per_token(student.train.seq_len) as f64 * ps.tokens_seen as f64
                + (6.0 * ps.params as f64 + 2.0 * teacher.report.params as f64) * tokens;
            (ds.checkpoint, ps.tokens_seen + tokens as u64, flops, ps.model.summary(), ps.params, 0.0)
        }
        Stage::Grpo { config, .. } => {
            let parent = x.parent.expect("a GRPO rung has a parent");
            let resume = checkpoint::latest(&train_dir).is_some();
            let s = train::grpo::grpo(
                &parent.checkpoint,
                None,
                x.train_tasks,
                x.spec.answer_mode,
                None,
                config,
                &train_dir,
                &RunOptions { resume, quiet: x.opts.quiet, ..Default::default() },
            )?;
            let m = &s.metrics;
            let sum = |f: fn(&train::grpo::StepMetrics) -> f64| m.iter().map(f).sum::<f64>();
            let trained = sum(|m| m.trained_tokens as f64);
            let drawn = config.questions * if config.dynamic_sampling { 2 } else { 1 };
            let sampled = sum(|m| m.length) * (drawn * config.group) as f64;
            extra.insert("reward_first".into(), serde_json::json!(s.first_reward));
            extra.insert("reward_last".into(), serde_json::json!(s.last_reward));
            extra.insert("train_accuracy_first".into(), serde_json::json!(s.first_accuracy));
            extra.insert("train_accuracy_last".into(), serde_json::json!(s.last_accuracy));
            extra.insert("kl_last".into(), serde_json::json!(m.last().map(|m| m.kl)));
            extra.insert("entropy_first".into(), serde_json::json!(m.first().map(|m| m.entropy)));
            extra.insert("entropy_last".into(), serde_json::json!(m.last().map(|m| m.entropy)));
            extra.insert(
                "skipped_group_fraction".into(),
                serde_json::json!(sum(|m| m.skipped_groups as f64) / (m.len().max(1) * drawn) as f64),
            );
            extra.insert("sampled_tokens".into(), serde_json::json!(sampled));
            if trained == 0.0 {
                extra.insert(
                    "not_trained".into(),
                    serde_json::json!("every group's answers were all right or all wrong: no advantage, no update"),
                );
            }
            // Training compute: forward and backward over the trained tokens per update, plus
            // generating the samples (and π_old's and π_ref's forwards over the trained rows).
            let p = parent.report.params as f64;
            let flops = 6.0 * p * trained * config.updates as f64 + 2.0 * p * (sampled + 2.0 * trained);
            (s.checkpoint, trained as u64, flops, parent.report.model.clone(), parent.report.params, 0.0)
        }
        Stage::Prefs { samples, sampling, config, epochs, rounds, .. } => {
            let parent = x.parent.expect("a preference rung has a parent");
            let device = engine::device(engine::Backend::Cpu).map_err(LadderError::Engine)?;
            let mode = x.spec.answer_mode;
            // Each round samples the current model for pairs and optimises it against itself as
            // the reference (one round: plain DPO from the parent).
            let mut current = parent.checkpoint.clone();
            let (mut tokens, mut per_round) = (0u64, Vec::new());
            for round in 0..*rounds {
                let (policy, tok, _) = eval::load_for_inference(&current, &device)?;
                let round_sampling =
                    Sampling { seed: sampling.seed.wrapping_add(round as u64 * 7919), ..sampling.clone() };
                let (draws, sample_seconds) = testtime::sample_tasks(
                    &policy,
                    &tok,
                    x.train_tasks,
                    mode,
                    *samples,
                    &round_sampling,
                    x.preset.eval_batch,
                    x.kb_index,
                    &device,
                )?;
                let pairs = preference_pairs(x.train_tasks, &draws, mode);
                let right = draws.iter().flat_map(|t| &t.draws).filter(|d| d.correct).count();
                let all = draws.iter().map(|t| t.draws.len()).sum::<usize>().max(1);
                let mut info = serde_json::json!({
                    "pairs": pairs.len(),
                    "sample_seconds": sample_seconds,
                    "train_samples_correct": right as f64 / all as f64,
                });
                if pairs.is_empty() {
                    // Nothing to prefer (every sample right, or every one wrong): this round's
                    // model is the last one's, and the report says so.
                    tracing::warn!(
                        "rung {}: no train question had both a right and a wrong sample; round {} not trained",
                        x.spec.name,
                        round + 1
                    );
                    info["not_trained"] =
                        serde_json::json!("no train question had both a right and a wrong sampled answer");
                    per_round.push(info);
                    break;
                }
                let mut config = config.clone();
                if *epochs > 0.0 {
                    config.steps = ((epochs * pairs.len() as f64) / config.batch_size as f64).ceil().max(2.0) as usize;
                    config.warmup_steps = config.warmup_steps.min(config.steps / 10);
                }
                let out = if *rounds == 1 { train_dir.clone() } else { train_dir.join(format!("round-{}", round + 1)) };
                let resume = checkpoint::latest(&out).is_some();
                let s = train::prefs::prefs(
                    &current,
                    Some(&current),
                    &pairs,
                    &config,
                    &out,
                    &RunOptions { resume, quiet: x.opts.quiet, ..Default::default() },
                )?;
                info["steps"] = serde_json::json!(config.steps);
                info["loss_first"] = serde_json::json!(s.first_loss);
                info["loss_last"] = serde_json::json!(s.last_loss);
                per_round.push(info);
                // Tokens: both answers of every pair drawn, each with its prompt.
                let mean_row = pairs
                    .iter()
                    .map(|p| {
                        let prompt = tok.encode(&p.prompt).len();
                        2 * prompt + tok.encode(&p.chosen).len() + tok.encode(&p.rejected).len()
                    })
                    .sum::<usize>() as f64
                    / pairs.len() as f64;
                tokens += (config.steps as f64 * config.batch_size as f64 * mean_row) as u64;
                current = s.checkpoint;
            }
            // The first round's figures at the top level (as a one-round rung reports them).
            if let Some(serde_json::Value::Object(first)) = per_round.first() {
                for (k, v) in first {
                    extra.insert(k.clone(), v.clone());
                }
            }
            if *rounds > 1 {
                extra.insert("rounds".into(), serde_json::json!(per_round));
            }
            let flops = 6.0 * parent.report.params as f64 * tokens as f64;
            (current, tokens, flops, parent.report.model.clone(), parent.report.params, 0.0)
        }
    };

    // Evaluation: held-out tasks and the recall probe on train people, in one pass.
    let device = engine::device(engine::Backend::Cpu).map_err(LadderError::Engine)?;
    let (model, tok, _) = eval::load_for_inference(&ckpt, &device)?;
    let mut tasks = x.eval_tasks.to_vec();
    tasks.extend(x.probe_tasks.iter().cloned());
    let (held, probe) = match &x.spec.stage {
        Stage::TestTime { strategy, k, sampling, reward, .. } => {
            // Test-time rungs over the same model, tasks and sampling share their draws: the first
            // samples them, the others read them from `cache/`.
            let parent_key = x.parent.map(|p| p.key.as_str());
            let (mut draws, seconds, from_cache) =
                cached_draws(&x, parent_key, &model, &tok, &tasks, *k, sampling, &device)?;
            if from_cache {
                extra.insert("draws_from_cache".into(), serde_json::json!(true));
            }
            if *strategy == testtime::Strategy::BestOfReward {
                let cfg = reward.as_ref().ok_or_else(|| {
                    LadderError::Input(format!(
                        "rung {}: best-of-n by a reward model needs a reward recipe",
                        x.spec.name
                    ))
                })?;
                let parent = x.parent.expect("a test-time rung has a parent");
                let info =
                    rank_by_reward_model(&x, &parent.checkpoint, &model, &tok, cfg, *k, sampling, &mut draws, &device)?;
                extra.insert("reward_model".into(), info);
            }
            let (held_draws, probe_draws): (Vec<_>, Vec<_>) = draws.into_iter().partition(|d| d.split == "heldout");
            let held = testtime::report(&held_draws, *k, *strategy, x.spec.answer_mode, seconds);
            let probe = testtime::report(&probe_draws, *k, *strategy, x.spec.answer_mode, 0.0);
            let per_question = testtime::tokens_per_task(&held_draws, *k);
            let flops_per_token = model.config().forward_flops_per_token(x.preset.seq_len) as f64;
            extra.insert("samples".into(), serde_json::json!(k));
            extra.insert("pass_at_1".into(), serde_json::json!(testtime::mean_pass_at_k(&held_draws, 1)));
            extra.insert(format!("pass_at_{k}"), serde_json::json!(testtime::mean_pass_at_k(&held_draws, *k)));
            extra.insert(
                format!("maj_at_{k}"),
                serde_json::json!(
                    testtime::report(&held_draws, *k, testtime::Strategy::Majority, x.spec.answer_mode, 0.0)
                        .overall
                        .accuracy
                ),
            );
            extra.insert("tokens_per_question".into(), serde_json::json!(per_question));
            extra.insert(
                "inference_flops".into(),
                serde_json::json!(per_question * held_draws.len() as f64 * flops_per_token),
            );
            extra.insert("eval_seconds".into(), serde_json::json!(seconds));
            (held, probe)
        }
        _ => {
            let tools = (x.spec.answer_mode == AnswerMode::Tools).then(|| Arc::new(Registry::standard(&x.k.facts())));
            let prefixes = match (x.index, x.spec.retrieve) {
                (Some(ix), r) if r > 0 => {
                    let p = retrieved_prefixes(ix, &tasks, r)?;
                    let held = &p[..x.eval_tasks.len()];
                    let found = x.eval_tasks.iter().zip(held).filter(|(t, p)| mentions_all(p, &t.people)).count();
                    extra.insert(
                        "retrieved_all_people".into(),
                        serde_json::json!(found as f64 / held.len().max(1) as f64),
                    );
                    Some(Arc::new(p))
                }
                _ => None,
            };
            let opts =
                EvalOptions { mode: x.spec.answer_mode, batch: x.preset.eval_batch, max_new: None, tools, prefixes };
            let all = eval::evaluate(&model, &tok, &tasks, &opts, &device)?;
            let (held, probe): (Vec<_>, Vec<_>) = all.outcomes.iter().cloned().partition(|o| o.split == "heldout");
            extra.insert("eval_seconds".into(), serde_json::json!(all.seconds));
            (eval::summarise(opts.mode, held, all.seconds), eval::summarise(opts.mode, probe, 0.0))
        }
    };
    if let (Stage::Grpo { k, sampling, .. }, Some(parent)) = (&x.spec.stage, x.parent) {
        // Sampled pass@1 and pass@k on the held-out questions, before (the parent's model, the
        // same draws the test-time rungs use) and after.
        let (start_model, _, _) = eval::load_for_inference(&parent.checkpoint, &device)?;
        let (before, _, _) = cached_draws(&x, Some(&parent.key), &start_model, &tok, &tasks, *k, sampling, &device)?;
        let before: Vec<_> = before.into_iter().filter(|d| d.split == "heldout").collect();
        let (after, seconds, _) = cached_draws(&x, Some(x.key), &model, &tok, x.eval_tasks, *k, sampling, &device)?;
        extra.insert("start_pass_at_1".into(), serde_json::json!(testtime::mean_pass_at_k(&before, 1)));
        extra.insert(format!("start_pass_at_{k}"), serde_json::json!(testtime::mean_pass_at_k(&before, *k)));
        extra.insert("pass_at_1".into(), serde_json::json!(testtime::mean_pass_at_k(&after, 1)));
        extra.insert(format!("pass_at_{k}"), serde_json::json!(testtime::mean_pass_at_k(&after, *k)));
        extra.insert("heldout_samples".into(), serde_json::json!(k));
        // The same on a quarter of the train questions (the distribution GRPO trained on).
        let train_part: Vec<Task> = x.train_tasks.iter().step_by(4).cloned().collect();
        let (tb, s1, _) = cached_draws(&x, Some(&parent.key), &start_model, &tok, &train_part, *k, sampling, &device)?;
        let (ta, s2, _) = cached_draws(&x, Some(x.key), &model, &tok, &train_part, *k, sampling, &device)?;
        extra.insert(
            "train_questions".into(),
            serde_json::json!({
                "n": train_part.len(),
                "start_pass_at_1": testtime::mean_pass_at_k(&tb, 1),
                format!("start_pass_at_{k}"): testtime::mean_pass_at_k(&tb, *k),
                "pass_at_1": testtime::mean_pass_at_k(&ta, 1),
                format!("pass_at_{k}"): testtime::mean_pass_at_k(&ta, *k),
            }),
        );
        extra.insert("pass_at_k_seconds".into(), serde_json::json!(seconds + s1 + s2));
    }
    if x.spec.answer_mode == AnswerMode::Tools {
        let calls: Vec<usize> = held.outcomes.iter().map(|o| o.completion.matches(TOOL_CALL_END).count()).collect();
        let errors: usize = held
            .outcomes
            .iter()
            .map(|o| tools::results_in(&o.completion).iter().filter(|r| r.starts_with("error:")).count())
            .sum();
        let total: usize = calls.iter().sum();
        extra.insert("tool_calls_per_question".into(), serde_json::json!(total as f64 / calls.len().max(1) as f64));
        extra.insert("tool_error_fraction".into(), serde_json::json!(errors as f64 / total.max(1) as f64));
    }
    if let Some(by) = arithmetic_by_magnitude(x.eval_tasks, &held.outcomes) {
        extra.insert("arithmetic_by_answer_digits".into(), by);
    }
    if x.spec.answer_mode == AnswerMode::Trace {
        let (mut sound, mut n) = (0usize, 0usize);
        let (mut revisions, mut revised_wrong) = (0usize, 0usize);
        for (t, o) in x.eval_tasks.iter().zip(&held.outcomes) {
            n += 1;
            let kept = eval::without_retractions(&o.completion);
            sound += world::verify_trace(x.kb_index, &kept, t.verifier, &t.answer).all_correct() as usize;
            // Each retraction, and whether the line it retracts is indeed not a true fact.
            let lines: Vec<&str> = o.completion.split('\n').collect();
            for (i, l) in lines.iter().enumerate().skip(1) {
                if l.trim() == eval::RETRACTION {
                    revisions += 1;
                    let c = world::verify_trace(x.kb_index, lines[i - 1], t.verifier, &t.answer);
                    revised_wrong += (c.steps > c.correct_steps) as usize;
                }
            }
        }
        extra.insert("trace_all_steps_true".into(), serde_json::json!(sound as f64 / n.max(1) as f64));
        if revisions > 0 {
            extra.insert("revisions_per_question".into(), serde_json::json!(revisions as f64 / n.max(1) as f64));
            extra.insert("revisions_of_wrong_lines".into(), serde_json::json!(revised_wrong as f64 / revisions as f64));
        }
    }
    checkpoint::write_atomic(
        &dir.join("eval.json"),
        serde_json::to_string_pretty(&serde_json::json!({"heldout": held, "recall_probe_train": probe}))
            .expect("eval serialises")
            .as_bytes(),
    )?;
    let report = rung_report(x.spec, x.knowledge_sha, x.corpus_sha, x.renderings, model_line, params, &held, &probe);
    // A resumed rung counts the training time of the processes before this one too.
    let seconds = earlier_seconds + started.elapsed().as_secs_f64();
    let report = RungReport { train_tokens, flops, seconds, extra, ..report };
    let result = RungResult { key: x.key.to_string(), checkpoint: ckpt, report };
    result.write(dir)?;
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
fn rung_report(
    spec: &RungSpec,
    knowledge_sha: &str,
    corpus_sha: &str,
    renderings: usize,
    model: String,
    params: usize,
    held: &EvalReport,
    probe: &EvalReport,
) -> RungReport {
    let accuracy: BTreeMap<String, f64> = held.by_family.iter().map(|(f, s)| (f.clone(), s.accuracy)).collect();
    let mean = accuracy.values().sum::<f64>() / accuracy.len().max(1) as f64;
    RungReport {
        name: spec.name.clone(),
        lever: spec.lever.clone(),
        knowledge_sha256: knowledge_sha.to_string(),
        corpus_sha256: corpus_sha.to_string(),
        renderings,
        model,
        params,
        answer_mode: spec.answer_mode.as_str().to_string(),
        accuracy_ci95: held.by_family.iter().map(|(f, s)| (f.clone(), s.ci95)).collect(),
        tasks: held.by_family.iter().map(|(f, s)| (f.clone(), s.n)).collect(),
        accuracy_by_hops: held.by_hops.iter().map(|(h, s)| (h.clone(), s.accuracy)).collect(),
        mean_accuracy: mean,
        recall_probe: RecallProbe {
            train: probe.by_family.get("recall").map_or(0.0, |s| s.accuracy),
            heldout: held.by_family.get("recall").map_or(0.0, |s| s.accuracy),
        },
        accuracy,
        train_tokens: 0,
        flops: 0.0,
        seconds: 0.0,
        reused: false,
        extra: BTreeMap::new(),
        seeds: None,
    }
}

/// The accuracy per family of always giving the most common train answer of the question's kind
/// (its id up to the second `/`, e.g. `recall/birth_city`): what a model that ignores the person
/// asked about would score.
fn chance_line(train: &[Task], eval: &[Task]) -> String {
    let kind = |t: &Task| t.id.split('/').take(2).collect::<Vec<_>>().join("/");
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for t in train {
        *counts.entry(kind(t)).or_default().entry(t.answer.clone()).or_default() += 1;
    }
    let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for t in eval {
        let common = counts.get(&kind(t)).and_then(|c| c.iter().max_by_key(|&(a, n)| (*n, std::cmp::Reverse(a))));
        let e = by.entry(t.family.as_str()).or_default();
        e.0 += common.is_some_and(|(a, _)| t.verifier.check(&t.answer, a)) as usize;
        e.1 += 1;
    }
    let parts: Vec<String> =
        by.iter().map(|(f, &(c, n))| format!("{f} {:.1}%", 100.0 * c as f64 / n.max(1) as f64)).collect();
    format!("Chance (always the most common train answer of the question's kind): {}.", parts.join(", "))
}

fn setup_lines(p: &Preset, w: &WorldInfo, eval: &[Task], probe: &[Task], vocab: usize) -> Vec<String> {
    let tokens = p.steps * p.batch_size * p.seq_len;
    let mut lines = vec![
        format!(
            "World: {} people ({} train / {} held-out), {} facts, {} corpus tokens at one rendering; \
             {} renderings on the augmented rungs; BPE vocabulary {vocab}.",
            w.people.values().sum::<usize>(),
            w.people.get("train").copied().unwrap_or(0),
            w.people.get("heldout").copied().unwrap_or(0),
            w.facts,
            w.corpus_tokens,
            p.renderings
        ),
        format!(
            "Model: width {}, {} layers, {} heads (gpt2 and llama presets at matched parameter counts).",
            p.d_model, p.n_layers, p.n_heads
        ),
        format!(
            "Pretraining per rung: {} steps × {} rows × {} tokens = {:.2}M tokens; baseline lr {:.0e} constant, \
             tuned lr {:.0e} with warmup-stable-decay; {} warmup steps.",
            p.steps,
            p.batch_size,
            p.seq_len,
            tokens as f64 / 1e6,
            p.lr,
            p.tuned_lr,
            p.warmup_steps
        ),
        format!(
            "Reasoning fine-tune: {} steps × {} rows, {:.0}% replayed corpus, lr {:.0e}.",
            p.sft.steps,
            p.sft.batch_size,
            100.0 * p.sft.replay_fraction,
            p.sft.optim.lr
        ),
        format!(
            "Tool fine-tune: {} steps, {} fictional-people copies of each example; retrieval puts the top {} \
             passages before each question, {} fictional copies.",
            p.tool_sft.steps, p.tool_fictional, p.retrieve, p.fictional
        ),
        format!(
            "Test-time rungs: {} sampled traces per question at temperature {} from the cot-sft model.",
            p.samples, p.sample_temperature
        ),
        format!(
            "Evaluation: greedy decoding (sampled on the test-time rungs); {} held-out tasks ({}), recall probe on {} train-people recall tasks.",
            eval.len(),
            if p.eval_per_family == 0 {
                "every held-out task".to_string()
            } else {
                format!("at most {} per family, a fixed seeded subset", p.eval_per_family)
            },
            probe.len()
        ),
    ];
    lines.push(
        "Direct-answer QA about train people is mixed into pretraining; held-out people appear only in the corpus."
            .into(),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_relative_to_a_rung_folder() {
        let rung = Path::new("out/rungs/05-self-consistency");
        assert_eq!(relative_to(Path::new("out/rungs/05-self-consistency/train/x"), rung), Path::new("train/x"));
        assert_eq!(relative_to(Path::new("out/rungs/04-cot-sft/train/x"), rung), Path::new("../04-cot-sft/train/x"));
        assert_eq!(relative_to(Path::new("/elsewhere/x"), Path::new("out/r")), Path::new("/elsewhere/x"));
    }

    #[test]
    fn preference_pairs_put_a_sound_right_answer_over_a_wrong_one() {
        let w = world::World::generate(&world::WorldConfig { seed: 3, people: 8, ..Default::default() }).unwrap();
        let tasks: Vec<Task> = w.tasks_in(Split::Train).into_iter().take(3).collect();
        let draw = |text: &str, correct: bool, steps: usize, true_steps: usize| testtime::Draw {
            completion: text.into(),
            predicted: None,
            correct,
            tokens: 1,
            steps,
            true_steps,
            grounded: true,
            score: None,
        };
        let draws_of = |i: usize, d: Vec<testtime::Draw>| testtime::Draws {
            id: tasks[i].id.clone(),
            family: String::new(),
            hops: 1,
            split: "train".into(),
            gold: tasks[i].answer.clone(),
            draws: d,
        };
        let draws = vec![
            // Right (one with a false step), right and sound, wrong, wrong, wrong: two pairs, the
            // sound right answer first.
            draws_of(
                0,
                vec![
                    draw("r1", true, 2, 1),
                    draw("r2", true, 2, 2),
                    draw("w1", false, 2, 0),
                    draw("w2", false, 2, 2),
                    draw("w3", false, 1, 0),
                ],
            ),
            // All right: nothing to prefer.
            draws_of(1, vec![draw("r", true, 1, 1), draw("r", true, 1, 1)]),
            // One of each.
            draws_of(2, vec![draw("w", false, 1, 0), draw("r", true, 1, 1)]),
        ];
        let pairs = preference_pairs(&tasks, &draws, AnswerMode::Trace);
        let got: Vec<(&str, &str)> = pairs.iter().map(|p| (p.chosen.as_str(), p.rejected.as_str())).collect();
        assert_eq!(got, [("r2", "w1"), ("r1", "w2"), ("r", "w")]);
        assert_eq!(pairs[0].prompt, eval::prompt(&tasks[0].question, AnswerMode::Trace));
        assert_eq!(pairs[2].prompt, eval::prompt(&tasks[2].question, AnswerMode::Trace));
    }
}
