//! Test-time compute: several sampled answers per question, combined into one.
//!
//! [`sample_tasks`] draws `k` answers per task (each from its own random stream, so the draws
//! are reproducible and independent of batching), grades each with the task's verifier and
//! checks its reasoning step by step against the knowledge base. The strategies then pick one
//! answer per task from the draws, without looking at the gold answer:
//! - **greedy**: the single greedy answer (evaluated by [`crate::eval::evaluate`]);
//! - **self-consistency** ([`Strategy::Majority`]): the most common well-formed answer
//!   (Wang et al. 2022); ties go to the answer drawn first;
//! - **best-of-N by a verifier** ([`Strategy::BestOfVerifier`]): a process verifier that knows
//!   the knowledge base, never the answer. It prefers a draw that is *grounded* (its first step
//!   names a person the question names: a trace about somebody else can be all true facts and
//!   still wrong) and whose steps are all true facts or correct computations, then the higher
//!   fraction of true steps, then the answer with more votes, then draw order;
//! - **best-of-N by a reward model** ([`Strategy::BestOfReward`]): the draw with the highest
//!   score of a trained outcome reward model ([`crate::reward`]), scores filled in by the caller
//!   ([`Draw::score`]); ties go to the earlier draw.
//!
//! Metrics: `pass@k` with the unbiased estimator of Chen et al. 2021
//! (`1 − C(n−c, k) / C(n, k)` for `c` correct of `n` draws), and `maj@k`, the accuracy of the
//! majority answer. Compute is accounted as tokens generated per question.

use std::collections::BTreeMap;
use std::time::Instant;

use model::burn::prelude::Device;
use model::generate::{generate_many, Job};
use model::{Sampling, Transformer};
use serde::{Deserialize, Serialize};
use tokenizer::Tokenizer;
use world::{normalize_name, KnowledgeIndex, Task};

use crate::error::TrainError;
use crate::eval::{answer_hook, answer_prefix, grade, prompts_for, summarise, AnswerMode, EvalReport, Outcome};

/// One sampled answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Draw {
    pub completion: String,
    pub predicted: Option<String>,
    pub correct: bool,
    /// Tokens the model generated for this draw.
    pub tokens: usize,
    /// Steps of the trace, and how many are true against the knowledge base.
    pub steps: usize,
    pub true_steps: usize,
    /// The first step names a person the question names (true when the question names none).
    #[serde(default)]
    pub grounded: bool,
    /// A reward model's score, where one was asked ([`Strategy::BestOfReward`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// The draws for one task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Draws {
    pub id: String,
    pub family: String,
    pub hops: u32,
    pub split: String,
    pub gold: String,
    pub draws: Vec<Draw>,
}

/// How to choose one answer from the draws.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Majority,
    BestOfVerifier,
    BestOfReward,
}

/// `k` sampled answers to every task, graded, and checked step by step against `kb`.
#[allow(clippy::too_many_arguments)]
pub fn sample_tasks(
    model: &Transformer,
    tok: &Tokenizer,
    tasks: &[Task],
    mode: AnswerMode,
    k: usize,
    sampling: &Sampling,
    batch: usize,
    kb: &KnowledgeIndex,
    device: &Device,
) -> Result<(Vec<Draws>, f64), TrainError> {
    sample_tasks_after(model, tok, tasks, None, mode, k, sampling, batch, kb, device)
}

/// [`sample_tasks`] with a text put before each task's prompt (`prefixes`, in task order; a
/// hint, retrieved passages), which the completions do not include.
#[allow(clippy::too_many_arguments)]
pub fn sample_tasks_after(
    model: &Transformer,
    tok: &Tokenizer,
    tasks: &[Task],
    prefixes: Option<&[String]>,
    mode: AnswerMode,
    k: usize,
    sampling: &Sampling,
    batch: usize,
    kb: &KnowledgeIndex,
    device: &Device,
) -> Result<(Vec<Draws>, f64), TrainError> {
    let started = Instant::now();
    let k = k.max(1);
    if mode == AnswerMode::Tools {
        return Err(TrainError::Config {
            field: "answer_mode".into(),
            message: "sampled test-time strategies run in direct or trace mode".into(),
        });
    }
    let (prompts, max_new) = prompts_for(model, tok, tasks, mode, None, prefixes)?;
    let jobs: Vec<Job> = prompts
        .iter()
        .enumerate()
        .flat_map(|(t, p)| (0..k).map(move |j| Job { prompt: p.clone(), stream: (t * k + j) as u64 }))
        .collect();
    let prefix = answer_prefix(mode);
    let hook = answer_hook(tok, mode, None);
    let gens = generate_many(model, &jobs, max_new, batch, sampling, &hook, device).map_err(TrainError::Engine)?;
    let mut out = Vec::with_capacity(tasks.len());
    for (t, chunk) in tasks.iter().zip(gens.chunks(k)) {
        let draws = chunk
            .iter()
            .map(|g| {
                let (completion, predicted, correct) = grade(tok, t, mode, &g.tokens);
                let check = t.check_trace(kb, &format!("{prefix}{completion}"));
                let asked: Vec<&String> = t.people.iter().filter(|p| t.question.contains(p.as_str())).collect();
                let first = completion.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
                let grounded = asked.is_empty() || asked.iter().any(|p| first.contains(p.as_str()));
                Draw {
                    grounded,
                    completion,
                    predicted,
                    correct,
                    tokens: g.sampled_count(),
                    steps: check.steps,
                    true_steps: check.correct_steps,
                    score: None,
                }
            })
            .collect();
        out.push(Draws {
            id: t.id.clone(),
            family: t.family.as_str().to_string(),
            hops: t.hops,
            split: t.split.as_str().to_string(),
            gold: t.answer.clone(),
            draws,
        });
    }
    Ok((out, started.elapsed().as_secs_f64()))
}

/// Votes per normalised answer among `draws`, with the index of the first draw giving it.
fn votes(draws: &[Draw]) -> BTreeMap<String, (usize, usize)> {
    let mut v: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, d) in draws.iter().enumerate() {
        if let Some(p) = &d.predicted {
            let e = v.entry(normalize_name(p)).or_insert((0, i));
            e.0 += 1;
        }
    }
    v
}

/// The index of the draw chosen by `strategy` (`None` when no draw has an answer).
pub fn choose(draws: &[Draw], strategy: Strategy) -> Option<usize> {
    let v = votes(draws);
    match strategy {
        Strategy::Majority => v.values().max_by_key(|(n, first)| (*n, std::cmp::Reverse(*first))).map(|&(_, i)| i),
        Strategy::BestOfVerifier => draws
            .iter()
            .enumerate()
            .filter(|(_, d)| d.predicted.is_some())
            .max_by(|(i, a), (j, b)| {
                let key = |d: &Draw| {
                    let all = d.grounded && d.steps > 0 && d.true_steps == d.steps;
                    let frac = if d.steps == 0 { 0.0 } else { d.true_steps as f64 / d.steps as f64 };
                    let n = d.predicted.as_ref().map_or(0, |p| v.get(&normalize_name(p)).map_or(0, |x| x.0));
                    (all, d.grounded, frac, n)
                };
                let (ka, kb) = (key(a), key(b));
                // The earlier draw wins a full tie.
                ka.0.cmp(&kb.0).then(ka.1.cmp(&kb.1)).then(ka.2.total_cmp(&kb.2)).then(ka.3.cmp(&kb.3)).then(j.cmp(i))
            })
            .map(|(i, _)| i),
        Strategy::BestOfReward => draws
            .iter()
            .enumerate()
            .filter(|(_, d)| d.predicted.is_some())
            .max_by(|(i, a), (j, b)| {
                let s = |d: &Draw| d.score.unwrap_or(f32::NEG_INFINITY);
                s(a).total_cmp(&s(b)).then(j.cmp(i))
            })
            .map(|(i, _)| i),
    }
}

/// The report of a strategy over the first `k` draws of each task, in the usual eval format;
/// the chosen draw is each task's outcome.
pub fn report(all: &[Draws], k: usize, strategy: Strategy, mode: AnswerMode, seconds: f64) -> EvalReport {
    let outcomes = all
        .iter()
        .map(|t| {
            let draws = &t.draws[..k.min(t.draws.len())];
            let chosen = choose(draws, strategy).map(|i| &draws[i]);
            Outcome {
                id: t.id.clone(),
                family: t.family.clone(),
                hops: t.hops,
                split: t.split.clone(),
                gold: t.gold.clone(),
                predicted: chosen.and_then(|d| d.predicted.clone()),
                correct: chosen.is_some_and(|d| d.correct),
                completion: chosen.map(|d| d.completion.clone()).unwrap_or_default(),
            }
        })
        .collect();
    summarise(mode, outcomes, seconds)
}

/// The area under the ROC curve of `scores` for telling correct (`true`) from incorrect answers:
/// the probability that a random correct answer outscores a random incorrect one (ties count
/// half). `None` when either kind is missing.
pub fn auc(scored: &[(f32, bool)]) -> Option<f64> {
    let pos: Vec<f32> = scored.iter().filter(|x| x.1).map(|x| x.0).collect();
    let neg: Vec<f32> = scored.iter().filter(|x| !x.1).map(|x| x.0).collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for &p in &pos {
        for &n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

/// Exact two-sided McNemar test of two strategies graded on the same questions: `better` = right
/// only under the second, `worse` = right only under the first. The p-value of so uneven a split
/// of the discordant questions if neither strategy were better (binomial, p = ½); 1 when there
/// is no discordant question.
pub fn mcnemar(better: usize, worse: usize) -> f64 {
    let n = better + worse;
    if n == 0 {
        return 1.0;
    }
    let k = better.min(worse);
    // ln P(X = i) for X ~ Binomial(n, ½), built up term by term (stable for any n).
    let mut ln_p = -(n as f64) * std::f64::consts::LN_2;
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_p += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += ln_p.exp();
    }
    (2.0 * tail).min(1.0)
}

/// Unbiased pass@k for `c` correct out of `n` draws: `1 − C(n−c, k) / C(n, k)`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(k >= 1 && k <= n && c <= n, "pass@k needs 1 ≤ k ≤ n and c ≤ n (n {n}, c {c}, k {k})");
    if n - c < k {
        return 1.0;
    }
    // C(n−c, k) / C(n, k) = ∏_{i=n−c+1}^{n} (1 − k / i)
    1.0 - ((n - c + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product::<f64>()
}

/// Mean pass@k over tasks (each with at least `k` draws).
pub fn mean_pass_at_k(all: &[Draws], k: usize) -> f64 {
    if all.is_empty() {
        return 0.0;
    }
    all.iter().map(|t| pass_at_k(t.draws.len(), t.draws.iter().filter(|d| d.correct).count(), k)).sum::<f64>()
        / all.len() as f64
}

/// Mean tokens generated per task over the first `k` draws.
pub fn tokens_per_task(all: &[Draws], k: usize) -> f64 {
    if all.is_empty() {
        return 0.0;
    }
    all.iter().map(|t| t.draws.iter().take(k).map(|d| d.tokens).sum::<usize>() as f64).sum::<f64>() / all.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(p: Option<&str>, correct: bool, steps: usize, true_steps: usize) -> Draw {
        Draw {
            completion: String::new(),
            predicted: p.map(str::to_string),
            correct,
            tokens: 5,
            steps,
            true_steps,
            grounded: true,
            score: None,
        }
    }

    #[test]
    fn mcnemar_matches_the_binomial_tail() {
        // 50 vs 34 discordant: 2 · P(X ≤ 34), X ~ B(84, ½) = 0.1011 (scipy.stats.binomtest).
        assert!((mcnemar(50, 34) - 0.10114).abs() < 1e-4, "{}", mcnemar(50, 34));
        assert_eq!(mcnemar(0, 0), 1.0);
        assert_eq!(mcnemar(3, 3), 1.0);
        assert!((mcnemar(5, 0) - 0.0625).abs() < 1e-12);
        assert!(mcnemar(2000, 1000) < 1e-30);
    }

    #[test]
    fn pass_at_k_matches_the_definition() {
        assert_eq!(pass_at_k(10, 0, 3), 0.0);
        assert_eq!(pass_at_k(10, 10, 1), 1.0);
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        // 1 − C(2,2)/C(4,2) = 1 − 1/6
        assert!((pass_at_k(4, 2, 2) - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 3, 2), 1.0);
    }

    #[test]
    fn majority_counts_normalised_answers_and_breaks_ties_by_order() {
        let d = [draw(Some("Lormet"), true, 1, 1), draw(Some("Ekre"), false, 1, 1), draw(Some(" ekre."), false, 1, 1)];
        assert_eq!(choose(&d, Strategy::Majority), Some(1));
        let tie = [draw(Some("B"), false, 1, 1), draw(Some("A"), true, 1, 1)];
        assert_eq!(choose(&tie, Strategy::Majority), Some(0));
        assert_eq!(choose(&[draw(None, false, 0, 0)], Strategy::Majority), None);
    }

    #[test]
    fn the_verifier_prefers_a_trace_whose_steps_are_all_true() {
        let d = [
            draw(Some("Ekre"), false, 2, 1),
            draw(Some("Ekre"), false, 2, 1),
            draw(Some("Lormet"), true, 2, 2),
            draw(None, false, 2, 2),
        ];
        assert_eq!(choose(&d, Strategy::BestOfVerifier), Some(2));
        assert_eq!(choose(&d, Strategy::Majority), Some(0));
        // A trace of true facts about somebody the question does not name loses to a grounded one.
        let mut stray = draw(Some("Ekre"), false, 2, 2);
        stray.grounded = false;
        let d = [stray, draw(Some("Lormet"), true, 2, 1)];
        assert_eq!(choose(&d, Strategy::BestOfVerifier), Some(1));
    }
}
