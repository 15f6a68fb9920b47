//! Evaluation: greedy answers to world tasks, graded by each task's verifier.
//!
//! # The question-answer format
//! One format is shared by every stage that trains on or asks questions, so a model is always
//! asked in the form it was taught:
//! - direct answer: `Question: {q}\nAnswer: {a}` ([`qa_text`]);
//! - reasoning trace: `Question: {q}\n{trace}` where the trace ends `Answer: {a}` ([`trace_text`]).
//!
//! - tool trace: `Question: {q}\n` then tool calls in the chat protocol of the `tools` crate
//!   (`<|tool_call|>CALL<|/tool_call|>` written by the model, `<|tool_result|> R<|/tool_result|>\n`
//!   injected by the runtime), then `Answer: {a}`.
//!
//! A model is prompted with `Question: {q}\nAnswer:` in [`AnswerMode::Direct`] and with
//! `Question: {q}\n` in [`AnswerMode::Trace`] and [`AnswerMode::Tools`] (it then writes its
//! reasoning). The answer is the text after the last `Answer:` up to the end of its line
//! ([`world::extract_answer`]).
//!
//! In [`AnswerMode::Tools`] generation pauses at every `<|/tool_call|>` the model writes: the
//! call between it and the `<|tool_call|>` before it is run by a [`tools::Registry`] and its
//! result is fed back as forced tokens ([`tool_injection`]); at most [`MAX_TOOL_CALLS`] calls
//! are run per answer.
//!
//! Accuracy is reported per family, per hop depth and overall, each with a Wilson 95% interval.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use model::burn::prelude::*;
use std::sync::Arc;

use model::generate::{generate_many, Job, Next};
use model::{weights, ModelConfig, Sampling, Transformer};
use serde::{Deserialize, Serialize};
use tokenizer::{Special, Tokenizer};
use tools::Registry;
use world::{extract_answer, Task};

use crate::checkpoint;
use crate::error::TrainError;

/// The direct-answer training text of a question.
pub fn qa_text(question: &str, answer: &str) -> String {
    format!("Question: {question}\nAnswer: {answer}")
}

/// The reasoning-trace training text of a question (`trace` ends with `Answer: X`).
pub fn trace_text(question: &str, trace: &str) -> String {
    format!("Question: {question}\n{trace}")
}

/// How a model is asked to answer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// The answer straight after the question.
    Direct,
    /// A reasoning trace, then the answer.
    Trace,
    /// Tool calls run by the runtime (their results injected), then the answer.
    Tools,
}

impl AnswerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Trace => "trace",
            Self::Tools => "tools",
        }
    }

    /// Tokens generated at most per answer.
    pub fn default_max_new(self) -> usize {
        match self {
            Self::Direct => 24,
            Self::Trace => 120,
            Self::Tools => 160,
        }
    }
}

impl std::str::FromStr for AnswerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(Self::Direct),
            "trace" => Ok(Self::Trace),
            "tools" => Ok(Self::Tools),
            other => Err(format!("unknown answer mode `{other}` (expected direct, trace or tools)")),
        }
    }
}

/// The prompt for `question` in `mode`.
pub fn prompt(question: &str, mode: AnswerMode) -> String {
    match mode {
        AnswerMode::Direct => format!("Question: {question}\nAnswer:"),
        AnswerMode::Trace | AnswerMode::Tools => format!("Question: {question}\n"),
    }
}

/// Correct out of total, with a Wilson 95% interval.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub ci95: [f64; 2],
}

impl Score {
    pub fn new(correct: usize, n: usize) -> Self {
        let accuracy = if n == 0 { 0.0 } else { correct as f64 / n as f64 };
        Self { n, correct, accuracy, ci95: wilson(correct, n) }
    }
}

/// Wilson score interval at 95% (z = 1.96); `[0, 1]` for no trials.
pub fn wilson(correct: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let z = 1.959_963_984_540_054_f64;
    let (n, p) = (n as f64, correct as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / denom;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// One graded answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Outcome {
    pub id: String,
    pub family: String,
    pub hops: u32,
    pub split: String,
    pub gold: String,
    pub predicted: Option<String>,
    pub correct: bool,
    /// The generated text (after the prompt).
    pub completion: String,
}

/// Scores of one evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EvalReport {
    pub mode: AnswerMode,
    pub overall: Score,
    pub by_family: BTreeMap<String, Score>,
    pub by_hops: BTreeMap<String, Score>,
    pub seconds: f64,
    pub outcomes: Vec<Outcome>,
}

impl EvalReport {
    /// A plain-text table: family, n, accuracy, 95% interval.
    pub fn table(&self) -> String {
        let mut s = format!("{:<12} {:>6} {:>9}  {}\n", "family", "n", "accuracy", "95% CI");
        let row = |name: &str, sc: &Score| {
            format!(
                "{:<12} {:>6} {:>8.1}%  [{:.1}, {:.1}]\n",
                name,
                sc.n,
                100.0 * sc.accuracy,
                100.0 * sc.ci95[0],
                100.0 * sc.ci95[1]
            )
        };
        for f in world::Family::ALL {
            if let Some(sc) = self.by_family.get(f.as_str()) {
                s.push_str(&row(f.as_str(), sc));
            }
        }
        for (h, sc) in &self.by_hops {
            s.push_str(&row(&format!("hops={h}"), sc));
        }
        s.push_str(&row("all", &self.overall));
        s
    }
}

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub mode: AnswerMode,
    /// Prompts decoded together (per thread).
    pub batch: usize,
    /// Tokens generated at most per answer (sampled and injected); `None` = the mode's default.
    pub max_new: Option<usize>,
    /// The tools a [`AnswerMode::Tools`] answer may call (required in that mode, unused in the
    /// others).
    pub tools: Option<Arc<Registry>>,
    /// Text put before each task's prompt (retrieved passages), in the order of the tasks; `None`
    /// = none.
    pub prefixes: Option<Arc<Vec<String>>>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { mode: AnswerMode::Direct, batch: 32, max_new: None, tools: None, prefixes: None }
    }
}

/// Most tool calls run for one answer; the answer stops at the next one.
pub const MAX_TOOL_CALLS: usize = 16;

/// The tokens to inject after a sequence's latest token, if that token is a `<|/tool_call|>` the
/// model wrote: the result of the call since the `<|tool_call|>` before it, run by `registry`
/// with the results injected earlier in the sequence as the ones its references `#k` name
/// ([`Registry::call_text_after`]), as `<|tool_result|> R<|/tool_result|>\n` (an unopened or
/// malformed call gives an `error: ...` result, never a panic).
pub fn tool_injection(tok: &Tokenizer, registry: &Registry, tokens: &[u32], forced: &[bool]) -> Option<Vec<u32>> {
    let (&last, before) = tokens.split_last()?;
    if last != Special::ToolCallEnd.id() || forced.last() == Some(&true) {
        return None;
    }
    let result = match before.iter().rposition(|&t| t == Special::ToolCall.id()) {
        Some(open) => {
            let earlier_text = tok.decode(&before[..open]);
            let earlier = tools::results_in(&earlier_text);
            registry.call_text_after(&tok.decode(&before[open + 1..]), &earlier)
        }
        None => tools::error_text("a call must start with <|tool_call|>"),
    };
    Some(tok.encode(&tools::protocol::result_text(&result)))
}

/// The generation hook of answers in `mode`: run tool calls (in [`AnswerMode::Tools`], with
/// `registry`) and stop when [`answer_done`] says so or after [`MAX_TOOL_CALLS`] calls.
pub(crate) fn answer_hook<'a>(
    tok: &'a Tokenizer,
    mode: AnswerMode,
    registry: Option<&'a Registry>,
) -> impl Fn(usize, &[u32], &[bool]) -> Next + Sync + 'a {
    move |_, tokens, forced| {
        if let (AnswerMode::Tools, Some(reg)) = (mode, registry) {
            if let Some(inject) = tool_injection(tok, reg, tokens, forced) {
                let calls = tokens.iter().zip(forced).filter(|&(&t, &f)| t == Special::ToolCallEnd.id() && !f).count();
                return if calls > MAX_TOOL_CALLS { Next::Stop } else { Next::Inject(inject) };
            }
        }
        if answer_done(tok, mode, tokens) {
            Next::Stop
        } else {
            Next::Continue
        }
    }
}

/// Whether a completion is finished: end of sequence, or a complete `Answer: ...` line.
pub(crate) fn answered(text: &str) -> bool {
    text.rfind("Answer:").is_some_and(|p| text[p..].contains('\n'))
}

/// The prompts of `tasks` in `mode` (each after its prefix, if any), and the tokens each answer
/// may take: `max_new` (or the mode's default) where it fits the context, else what the longest
/// prompt leaves. A prompt that does not fit at all is an error.
pub(crate) fn prompts_for(
    model: &Transformer,
    tok: &Tokenizer,
    tasks: &[Task],
    mode: AnswerMode,
    max_new: Option<usize>,
    prefixes: Option<&[String]>,
) -> Result<(Vec<Vec<u32>>, usize), TrainError> {
    let max_seq = model.config().max_seq_len;
    if let Some(p) = prefixes.filter(|p| p.len() != tasks.len()) {
        return Err(TrainError::Data(format!("{} prompt prefixes for {} tasks", p.len(), tasks.len())));
    }
    let prompts: Vec<Vec<u32>> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let pre = prefixes.map_or("", |p| p[i].as_str());
            tok.encode_prompt(&format!("{pre}{}", prompt(&t.question, mode)))
        })
        .collect();
    let max_new = answer_budget(&prompts, max_seq, max_new.unwrap_or(mode.default_max_new()))?;
    Ok((prompts, max_new))
}

/// The tokens each answer to `prompts` may take in a context of `max_seq`: `max_new`, or what
/// the longest prompt leaves; an error when a prompt does not fit at all.
pub(crate) fn answer_budget(prompts: &[Vec<u32>], max_seq: usize, max_new: usize) -> Result<usize, TrainError> {
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if longest >= max_seq {
        return Err(TrainError::Data(format!(
            "a prompt of {longest} tokens does not fit the model's context of {max_seq}"
        )));
    }
    Ok(max_new.min(max_seq - longest))
}

/// What the prompt of `mode` ends with that the answer's text continues (the completion is
/// read after it).
pub(crate) fn answer_prefix(mode: AnswerMode) -> &'static str {
    if mode == AnswerMode::Direct {
        "Answer:"
    } else {
        ""
    }
}

/// The line a reasoning trace uses to retract the fact line just before it (self-reflection:
/// the model checks what it wrote and, where it finds it wrong, says so and writes the line again).
pub const RETRACTION: &str = "Wait, that is wrong.";

/// Most retractions one answer may make; the answer stops at the next one.
pub const MAX_REVISIONS: usize = 2;

/// `text` without its retracted lines: every [`RETRACTION`] line and the line before it.
pub fn without_retractions(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.trim() == RETRACTION {
            kept.pop();
        } else {
            kept.push(line);
        }
    }
    kept.join("\n")
}

/// Whether an answer being generated in `mode` is complete: end of sequence, a complete
/// `Answer: ...` line, or more than [`MAX_REVISIONS`] retractions.
pub(crate) fn answer_done(tok: &Tokenizer, mode: AnswerMode, ids: &[u32]) -> bool {
    if ids.last().is_some_and(|&l| tok.is_eos(l)) {
        return true;
    }
    let text = format!("{}{}", answer_prefix(mode), tok.decode(ids));
    answered(&text) || text.matches(RETRACTION).count() > MAX_REVISIONS
}

/// Grades the tokens generated for `task` in `mode`: the completion (up to `<|eos|>`), the
/// answer read from it (after the prompt's `Answer:` in direct mode) and the verifier's verdict.
pub(crate) fn grade(tok: &Tokenizer, task: &Task, mode: AnswerMode, ids: &[u32]) -> (String, Option<String>, bool) {
    let ids: Vec<u32> = ids.iter().copied().take_while(|&i| !tok.is_eos(i)).collect();
    let completion = tok.decode(&ids);
    let predicted = extract_answer(&format!("{}{completion}", answer_prefix(mode)));
    let correct = predicted.as_deref().is_some_and(|p| task.verifier.check(&task.answer, p));
    (completion, predicted, correct)
}

/// Answer `tasks` greedily with `model` and grade each with its verifier.
pub fn evaluate(
    model: &Transformer,
    tok: &Tokenizer,
    tasks: &[Task],
    opts: &EvalOptions,
    device: &Device,
) -> Result<EvalReport, TrainError> {
    let started = Instant::now();
    let mode = opts.mode;
    if mode == AnswerMode::Tools && opts.tools.is_none() {
        return Err(TrainError::Config {
            field: "eval.tools".into(),
            message: "tools mode needs a tool registry".into(),
        });
    }
    let (prompts, max_new) =
        prompts_for(model, tok, tasks, mode, opts.max_new, opts.prefixes.as_deref().map(Vec::as_slice))?;
    let hook = answer_hook(tok, mode, opts.tools.as_deref());
    let generated =
        generate_many(model, &Job::numbered(&prompts), max_new, opts.batch, &Sampling::greedy(), &hook, device)
            .map_err(TrainError::Engine)?;
    let generated: Vec<Vec<u32>> = generated.into_iter().map(|g| g.tokens).collect();

    let mut outcomes = Vec::with_capacity(tasks.len());
    for (t, ids) in tasks.iter().zip(&generated) {
        let (completion, predicted, correct) = grade(tok, t, mode, ids);
        outcomes.push(Outcome {
            id: t.id.clone(),
            family: t.family.as_str().to_string(),
            hops: t.hops,
            split: t.split.as_str().to_string(),
            gold: t.answer.clone(),
            predicted,
            correct,
            completion,
        });
    }
    Ok(summarise(mode, outcomes, started.elapsed().as_secs_f64()))
}

/// Group graded outcomes into scores.
pub fn summarise(mode: AnswerMode, outcomes: Vec<Outcome>, seconds: f64) -> EvalReport {
    let mut fam: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut hops: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for o in &outcomes {
        for (map, key) in [(&mut fam, o.family.clone()), (&mut hops, o.hops.to_string())] {
            let e = map.entry(key).or_default();
            e.0 += o.correct as usize;
            e.1 += 1;
        }
    }
    let scores = |m: BTreeMap<String, (usize, usize)>| m.into_iter().map(|(k, (c, n))| (k, Score::new(c, n))).collect();
    let correct = outcomes.iter().filter(|o| o.correct).count();
    EvalReport {
        mode,
        overall: Score::new(correct, outcomes.len()),
        by_family: scores(fam),
        by_hops: scores(hops),
        seconds,
        outcomes,
    }
}

/// A model for inference, read from a checkpoint folder (`.../checkpoints/step-N`), a run
/// folder (its newest checkpoint), a Hugging Face folder or a GGUF file, with its tokenizer.
pub fn load_for_inference(path: &Path, device: &Device) -> Result<(Transformer, Tokenizer, ModelConfig), TrainError> {
    if !path.join("state.json").is_file() && interop::is_importable(path) {
        let imported = interop::import(path, device)
            .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })?;
        let origin = format!("{} (tokenizer)", path.display());
        let tok = Tokenizer::foreign(imported.tokenizer_json.as_bytes(), &imported.tokenizer_config_json, &origin)
            .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })?;
        let cfg = imported.model.config().clone();
        return Ok((imported.model, tok, cfg));
    }
    let dir = if path.join("state.json").is_file() {
        path.to_path_buf()
    } else {
        checkpoint::latest(path).ok_or_else(|| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: "is neither a checkpoint folder (no state.json), a run folder with checkpoints/, a Hugging Face folder (config.json) nor a GGUF file".into(),
        })?
    };
    let loaded = checkpoint::load(&dir)?;
    let (mcfg, tok) = loaded.model_and_tokenizer()?;
    let blank = model::engine::with_seed(device, 0, || Transformer::new(&mcfg, device));
    let model = weights::load_safetensors(blank, &loaded.payload.model_safetensors)
        .map_err(|e| TrainError::Checkpoint { path: dir.join("model.safetensors"), message: e.to_string() })?;
    Ok((model, tok, mcfg))
}

/// Tasks from a JSONL file (one [`Task`] per line, as `ascent world` writes them); a bad line is
/// named by number.
pub fn read_tasks(path: &Path) -> Result<Vec<Task>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::error::io_err(path, "cannot read tasks", e))?;
    let mut tasks = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let t: Task = serde_json::from_str(line)
            .map_err(|e| TrainError::Data(format!("{}:{}: not a task: {e}", path.display(), i + 1)))?;
        tasks.push(t);
    }
    if tasks.is_empty() {
        return Err(TrainError::Data(format!("{}: no tasks", path.display())));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 50/100: 0.404 .. 0.596; 0/10: 0 .. 0.278; 10/10: 0.722 .. 1.
        let w = wilson(50, 100);
        assert!((w[0] - 0.4038).abs() < 1e-3 && (w[1] - 0.5962).abs() < 1e-3, "{w:?}");
        let w = wilson(0, 10);
        assert!(w[0] == 0.0 && (w[1] - 0.2775).abs() < 1e-3, "{w:?}");
        let w = wilson(10, 10);
        assert!((w[0] - 0.7225).abs() < 1e-3 && (w[1] - 1.0).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn retracted_lines_are_dropped() {
        let t = format!("A was born in X.\n{RETRACTION}\nA was born in Y.\nAnswer: Y");
        assert_eq!(without_retractions(&t), "A was born in Y.\nAnswer: Y");
        assert_eq!(without_retractions("A.\nAnswer: B"), "A.\nAnswer: B");
    }

    #[test]
    fn answered_needs_a_complete_answer_line() {
        assert!(!answered("Ilona Varsk was born in Lormet."));
        assert!(!answered("Lormet is in Neruland.\nAnswer: Neru"));
        assert!(answered("Lormet is in Neruland.\nAnswer: Neruland\n"));
        assert!(answered("Answer: 1972\nQuestion"));
    }
}
