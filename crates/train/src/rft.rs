//! Rejection-sampling fine-tuning (STaR, Zelikman et al. 2022; ReST / RFT): the model teaches
//! itself from its own verified answers.
//!
//! Each round samples `samples` answers per train question from the current model, keeps those
//! the verifier accepts (and, with `all_steps`, whose every step checks against the knowledge
//! base), at most `per_question` distinct ones per question, and fine-tunes the current model on
//! them ([`crate::sft::sft`], replaying the corpus). The **yield** of a round is the fraction of
//! its samples kept. After the last round the final model is sampled once more, so the report
//! has one yield per model: the starting one and one after each round.
//!
//! **Rationalisation** (STaR's second pass, optional): for each question none of whose samples
//! was kept, the model is sampled again with the answer given as a hint before the question
//! ([`hint`]); the answers that then verify are kept as if written without the hint (the
//! fine-tuning prompt is the plain question), so the model learns to reach answers it could not
//! find alone.
//!
//! Simplification: each round fine-tunes the previous round's model rather than restarting
//! from the base model as STaR does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use model::engine;
use model::Sampling;
use serde::{Deserialize, Serialize};
use world::{KnowledgeIndex, Task};

use crate::error::TrainError;
use crate::eval::{self, AnswerMode};
use crate::sft::{sft, Example, SftConfig};
use crate::testtime;

/// How to run rejection-sampling rounds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RftConfig {
    pub rounds: usize,
    /// Answers sampled per question per round.
    pub samples: usize,
    pub sampling: Sampling,
    /// Keep only answers whose every step is true (not just the final answer).
    pub all_steps: bool,
    /// Most distinct kept answers per question per round.
    pub per_question: usize,
    /// The fine-tune of each round (its seed moves with the round).
    pub sft: SftConfig,
    /// Prompts decoded together per thread when sampling.
    pub batch: usize,
    /// Sample the questions with no kept answer again with the answer as a hint (STaR's
    /// rationalisation); what verifies is kept under the plain question.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rationalize: bool,
}

/// The hint put before a question when rationalising: the answer, stated.
pub fn hint(answer: &str) -> String {
    format!("Hint: the answer is {answer}.\n")
}

/// One model's yield: the starting model (`round` 0) or the model after round `round`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RoundYield {
    pub round: usize,
    pub samples: usize,
    /// Samples the verifier accepted (and, with `all_steps`, whose steps all check).
    pub kept: usize,
    pub yield_fraction: f64,
    /// Questions with at least one kept answer.
    pub questions_solved: f64,
    /// Of the questions with none, how many a rationalised answer (sampled with the answer as a
    /// hint) was kept for.
    #[serde(default)]
    pub rationalized: usize,
    /// Examples the round fine-tuned on (0 for the last measurement), and the token positions
    /// of that fine-tune.
    pub trained_on: usize,
    pub trained_tokens: u64,
    pub seconds: f64,
}

/// Runs `cfg.rounds` rounds from checkpoint `init` on `tasks` (answered in `mode`), writing round
/// `r`'s model to `out_dir/round-r`. Returns the final checkpoint and the yield of every model.
#[allow(clippy::too_many_arguments)]
pub fn rft(
    init: &Path,
    tasks: &[Task],
    mode: AnswerMode,
    kb: &KnowledgeIndex,
    replay: &[String],
    cfg: &RftConfig,
    out_dir: &Path,
    quiet: bool,
) -> Result<(PathBuf, Vec<RoundYield>), TrainError> {
    if cfg.samples == 0 || cfg.per_question == 0 {
        return Err(TrainError::Config {
            field: "rft.samples/per_question".into(),
            message: "must be at least 1".into(),
        });
    }
    if tasks.is_empty() {
        return Err(TrainError::Data("rejection sampling needs at least one question".into()));
    }
    let device = engine::device(engine::Backend::Cpu).map_err(TrainError::Engine)?;
    let mut current = init.to_path_buf();
    let mut out = Vec::with_capacity(cfg.rounds + 1);
    for round in 0..=cfg.rounds {
        let started = Instant::now();
        let (model, tok, _) = eval::load_for_inference(&current, &device)?;
        let sampling = Sampling { seed: cfg.sampling.seed.wrapping_add(round as u64 * 7919), ..cfg.sampling.clone() };
        let (draws, _) =
            testtime::sample_tasks(&model, &tok, tasks, mode, cfg.samples, &sampling, cfg.batch, kb, &device)?;
        let keep = |x: &testtime::Draw| x.correct && (!cfg.all_steps || (x.steps > 0 && x.true_steps == x.steps));
        let mut examples = Vec::new();
        let (mut kept, mut solved, mut total) = (0usize, 0usize, 0usize);
        for (t, d) in tasks.iter().zip(&draws) {
            let good: Vec<&testtime::Draw> = d.draws.iter().filter(|x| keep(x)).collect();
            total += d.draws.len();
            kept += good.len();
            solved += usize::from(!good.is_empty());
            let mut seen = BTreeSet::new();
            for g in good {
                if seen.len() < cfg.per_question && seen.insert(g.completion.as_str()) {
                    examples.push(Example::new(eval::prompt(&t.question, mode), g.completion.clone()));
                }
            }
        }
        let last = round == cfg.rounds;
        let mut rationalized = 0;
        if cfg.rationalize && !last {
            let failed: Vec<Task> = tasks
                .iter()
                .zip(&draws)
                .filter(|(_, d)| !d.draws.iter().any(|x| keep(x)))
                .map(|(t, _)| t.clone())
                .collect();
            if !failed.is_empty() {
                let hints: Vec<String> = failed.iter().map(|t| hint(&t.answer)).collect();
                let (again, _) = testtime::sample_tasks_after(
                    &model,
                    &tok,
                    &failed,
                    Some(&hints),
                    mode,
                    cfg.samples,
                    &sampling,
                    cfg.batch,
                    kb,
                    &device,
                )?;
                for (t, d) in failed.iter().zip(&again) {
                    let mut seen = BTreeSet::new();
                    for g in d.draws.iter().filter(|x| keep(x)) {
                        if seen.len() < cfg.per_question && seen.insert(g.completion.as_str()) {
                            examples.push(Example::new(eval::prompt(&t.question, mode), g.completion.clone()));
                        }
                    }
                    rationalized += usize::from(!seen.is_empty());
                }
            }
        }
        let trained_on = if last { 0 } else { examples.len() };
        let mut trained_tokens = 0;
        if !last && !examples.is_empty() {
            let sft_cfg = SftConfig { seed: cfg.sft.seed.wrapping_add(round as u64), ..cfg.sft.clone() };
            let dir = out_dir.join(format!("round-{}", round + 1));
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| crate::error::io_err(&dir, "cannot clear", e))?;
            }
            let s = sft(&current, &examples, replay, &sft_cfg, &dir, quiet)?;
            trained_tokens = s.tokens;
            current = s.checkpoint;
        }
        out.push(RoundYield {
            round,
            samples: total,
            kept,
            yield_fraction: kept as f64 / total.max(1) as f64,
            questions_solved: solved as f64 / tasks.len() as f64,
            rationalized,
            trained_on,
            trained_tokens,
            seconds: started.elapsed().as_secs_f64(),
        });
        if !last && examples.is_empty() {
            // Nothing verified: later rounds would sample the same model again.
            break;
        }
    }
    Ok((current, out))
}
