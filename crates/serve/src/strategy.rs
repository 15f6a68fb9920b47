//! Test-time strategies per request (`"ascent": {"strategy": ..., "samples": N}`): N draws per
//! choice, sampled in the same batch, and one of them returned.
//!
//! - `self_consistency` (Wang et al. 2022): each draw's final answer is read the way the
//!   project reads answers: the text inside `<|answer|>`…`<|/answer|>` when the model wrote one,
//!   else the rest of the line after the last `Answer:` ([`world::extract_answer`]), else the
//!   draw's last non-empty line. Answers are compared after [`world::normalize_name`] and the
//!   most common wins, ties to the earlier draw (`train::testtime::choose`,
//!   `Strategy::Majority`); the first draw giving it is returned. A draw that ended in a tool
//!   call for the client has no answer.
//! - `best_of_n`: no verifier applies to free-form chat (the project's process verifier needs a
//!   world task and its knowledge base), so draws are ranked by the model's own mean
//!   log-probability of the tokens it chose (injected tool results excluded), computed in one
//!   extra forward pass per draw; the highest wins, ties to the earlier draw. This favours
//!   confident, often shorter, answers; it is not a correctness check.
//!
//! The choice carries `ascent.strategy` with the strategy, the number of draws, the chosen draw
//! and every draw's answer (and score for best-of-N). Streaming requests get the chosen draw as
//! one delta after all draws are done.

use model::burn::prelude::*;
use model::Transformer;
use serde_json::json;
use train::testtime::{self, Draw};

use crate::engine::{ChoiceOut, Finish};

/// A per-request test-time strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    SelfConsistency,
    BestOfN,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Option<Strategy>> {
        match s {
            "none" | "" => Some(None),
            "self_consistency" | "majority" => Some(Some(Strategy::SelfConsistency)),
            "best_of_n" => Some(Some(Strategy::BestOfN)),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::SelfConsistency => "self_consistency",
            Strategy::BestOfN => "best_of_n",
        }
    }
}

/// The final answer of a draw (see the module doc), `None` when it has none.
pub fn final_answer(d: &ChoiceOut) -> Option<String> {
    if d.finish == Finish::ToolCalls {
        return None;
    }
    let inside = d.answer.trim();
    if !inside.is_empty() {
        return Some(inside.to_string());
    }
    world::extract_answer(&d.content)
        .or_else(|| d.content.lines().map(str::trim).rfind(|l| !l.is_empty()).map(str::to_string))
}

/// One draw of `draws` chosen by `strategy`, carrying how; `score(draw)` is the best-of-N
/// score (asked only for that strategy).
pub fn choose(
    strategy: Strategy,
    mut draws: Vec<ChoiceOut>,
    score: impl Fn(&ChoiceOut) -> Result<f32, String>,
) -> Result<ChoiceOut, String> {
    if draws.is_empty() {
        return Err("a strategy got no draws".into());
    }
    let answers: Vec<Option<String>> = draws.iter().map(final_answer).collect();
    let (chosen, scores) = match strategy {
        Strategy::SelfConsistency => {
            let as_draws: Vec<Draw> = draws
                .iter()
                .zip(&answers)
                .map(|(d, a)| Draw {
                    completion: d.content.clone(),
                    predicted: a.clone(),
                    correct: false,
                    tokens: d.sampled,
                    steps: 0,
                    true_steps: 0,
                    grounded: true,
                    score: None,
                })
                .collect();
            (testtime::choose(&as_draws, testtime::Strategy::Majority).unwrap_or(0), None)
        }
        Strategy::BestOfN => {
            let scores: Vec<f32> = draws.iter().map(&score).collect::<Result<_, _>>()?;
            let best = scores
                .iter()
                .enumerate()
                .max_by(|(i, a), (j, b)| a.total_cmp(b).then(j.cmp(i)))
                .map(|(i, _)| i)
                .unwrap_or(0);
            (best, Some(scores))
        }
    };
    let info = json!({
        "strategy": strategy.as_str(),
        "samples": draws.len(),
        "chosen": chosen,
        "answers": answers,
        "scores": scores,
        "score": if strategy == Strategy::BestOfN { "mean log-probability of the sampled tokens" } else { "majority of final answers" },
    });
    let mut out = draws.swap_remove(chosen);
    out.strategy = Some(info);
    Ok(out)
}

/// The mean log-probability the model gives the tokens it chose in `draw` after `prompt`
/// (one forward pass over prompt and draw; injected tokens are read, not scored). A draw with
/// no sampled token scores −∞.
pub fn mean_logprob(model: &Transformer, device: &Device, prompt: &[u32], draw: &ChoiceOut) -> Result<f32, String> {
    let cap = model.config().max_seq_len;
    let seq: Vec<u32> = prompt.iter().chain(&draw.tokens).copied().take(cap).collect();
    let t = seq.len();
    let v = model.config().vocab_size;
    if t < 2 || draw.sampled == 0 {
        return Ok(f32::NEG_INFINITY);
    }
    let ids: Vec<i64> = seq.iter().map(|&x| x as i64).collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, t]), device);
    let logits = model.forward(input); // (1, T, V)
    let logits = logits.try_into_vec_as::<f32>().map_err(|e| format!("reading logits: {e:?}"))?;
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (k, (&token, &forced)) in draw.tokens.iter().zip(&draw.forced).enumerate() {
        let pos = prompt.len() + k; // position of `token` in `seq`
        if forced || pos >= t {
            continue;
        }
        let row = &logits[(pos - 1) * v..pos * v];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        sum += row[token as usize] as f64 - lse;
        n += 1;
    }
    Ok(if n == 0 { f32::NEG_INFINITY } else { (sum / n as f64) as f32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(content: &str, answer: &str) -> ChoiceOut {
        ChoiceOut {
            index: 0,
            content: content.into(),
            reasoning: String::new(),
            answer: answer.into(),
            tool_calls: Vec::new(),
            executed: Vec::new(),
            finish: Finish::Stop,
            sampled: 3,
            injected: 0,
            tokens: Vec::new(),
            forced: Vec::new(),
            strategy: None,
        }
    }

    #[test]
    fn answers_are_read_like_the_project_reads_them() {
        assert_eq!(final_answer(&draw("x", " Lormet ")).as_deref(), Some("Lormet"));
        assert_eq!(final_answer(&draw("A was born in X.\nAnswer: 1948\n", "")).as_deref(), Some("1948"));
        assert_eq!(final_answer(&draw("first\nlast line\n\n", "")).as_deref(), Some("last line"));
        assert_eq!(final_answer(&draw("", "")), None);
    }

    #[test]
    fn majority_and_best_score_win() {
        let draws =
            vec![draw("Answer: 7", ""), draw("Answer: 5", ""), draw("Answer: five", ""), draw("Answer: 5.", "")];
        let c = choose(Strategy::SelfConsistency, draws.clone(), |_| Ok(0.0)).unwrap();
        assert_eq!(c.content, "Answer: 5");
        assert_eq!(c.strategy.as_ref().unwrap()["chosen"], 1);
        let c = choose(Strategy::BestOfN, draws, |d| Ok(if d.content.contains("five") { -0.1 } else { -1.0 })).unwrap();
        assert_eq!(c.content, "Answer: five");
    }
}
