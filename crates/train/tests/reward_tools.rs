//! The outcome reward model learns to tell correct answers from wrong ones; tool calls are run
//! and their results injected at answer time; a model fine-tuned on tool traces answers by
//! calling tools.

use std::sync::Arc;

use model::engine::{self, Backend};
use tokenizer::Special;
use train::eval::{self, tool_injection, AnswerMode, EvalOptions};
use train::reward::{score_all, train_reward_model, Labelled, RewardConfig};
use train::sft::{sft, Example, SftConfig};
use train::testtime::auc;
use world::Split;

mod common;

use common::{random_checkpoint, small_world, world_tokenizer};

#[test]
fn reward_model_learns_to_rank_correct_answers_first() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    // Worked answers of every length whose label is written in their last token: "Answer: yes"
    // is right, "Answer: no" wrong. Rows are padded to the longest in a batch, so a model that
    // read the wrong position (a pad, the first token) or learnt with the wrong sign would fail.
    let rows = |split: Split| -> Vec<Labelled> {
        w.tasks_in(split)
            .iter()
            .step_by(2)
            .enumerate()
            .map(|(i, t)| {
                let body = t.trace.rsplit_once("Answer:").map_or("", |(b, _)| b);
                let correct = i % 2 == 0;
                let text = format!("{body}Answer: {}", if correct { "yes" } else { "no" });
                Labelled { tokens: tok.encode(&eval::trace_text(&t.question, &text)), correct }
            })
            .collect()
    };
    let (train, test) = (rows(Split::Train), rows(Split::Heldout));
    assert!(train.len() >= 40 && test.len() >= 40, "{} / {}", train.len(), test.len());
    let cfg = RewardConfig { steps: 60, batch_size: 8, warmup_steps: 5, ..RewardConfig::default() };
    let (rm, summary) = train_reward_model(&init, &train, &cfg).unwrap();
    assert!(summary.last_loss < 0.5 * summary.first_loss, "{summary:?}");
    let device = engine::device(Backend::Cpu).unwrap();
    let scores = score_all(&rm, &test.iter().map(|r| r.tokens.clone()).collect::<Vec<_>>(), 4, &device);
    let scored: Vec<(f32, bool)> = scores.iter().copied().zip(test.iter().map(|r| r.correct)).collect();
    let a = auc(&scored).unwrap();
    assert!(a > 0.9, "held-out AUC {a}");
    // Batching and padding do not change a score.
    let one = score_all(&rm, &[test[0].tokens.clone()], 1, &device);
    assert!((one[0] - scores[0]).abs() < 1e-4, "{} vs {}", one[0], scores[0]);

    // Answers of one kind only are refused, with the counts.
    let e = train_reward_model(&init, &train[..1], &cfg).unwrap_err().to_string();
    assert!(e.contains("both kinds"), "{e}");
}

#[test]
fn tool_calls_are_run_and_their_results_injected() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let reg = tools::Registry::standard(&w.facts());
    let ids = tok.encode("<|tool_call|>calc(2 + 3)<|/tool_call|>");
    let forced = vec![false; ids.len()];
    let got = tool_injection(&tok, &reg, &ids, &forced).unwrap();
    assert_eq!(tok.decode(&got), "<|tool_result|> 5<|/tool_result|>\n");
    // Not after any other token, nor after an injected closing tag.
    assert_eq!(tool_injection(&tok, &reg, &ids[..ids.len() - 1], &forced[..ids.len() - 1]), None);
    let mut injected = forced.clone();
    *injected.last_mut().unwrap() = true;
    assert_eq!(tool_injection(&tok, &reg, &ids, &injected), None);
    // A call without its opening tag, or a hostile one, gets an error result, not a panic.
    let bare = [tok.encode("calc(1)"), vec![Special::ToolCallEnd.id()]].concat();
    let r = tok.decode(&tool_injection(&tok, &reg, &bare, &vec![false; bare.len()]).unwrap());
    assert!(r.contains("error:"), "{r}");
    let deep = format!("<|tool_call|>calc({}1{})<|/tool_call|>", "(".repeat(5000), ")".repeat(5000));
    let ids = tok.encode(&deep);
    let r = tok.decode(&tool_injection(&tok, &reg, &ids, &vec![false; ids.len()]).unwrap());
    assert!(r.contains("error:"), "{r}");
    // References name the results injected earlier in the same sequence.
    let text = "<|tool_call|>calc(1948)<|/tool_call|><|tool_result|> 1948<|/tool_result|>\n\
                <|tool_call|>calc(1950)<|/tool_call|><|tool_result|> 1950<|/tool_result|>\n\
                <|tool_call|>calc(abs(#2 - #1))<|/tool_call|>";
    let ids = tok.encode(text);
    assert_eq!(
        tok.decode(&tool_injection(&tok, &reg, &ids, &vec![false; ids.len()]).unwrap()),
        "<|tool_result|> 2<|/tool_result|>\n"
    );
    let ids = tok.encode("<|tool_call|>calc(#1 + 1)<|/tool_call|>");
    let r = tok.decode(&tool_injection(&tok, &reg, &ids, &vec![false; ids.len()]).unwrap());
    assert!(r.contains("error: `#1` names no earlier result"), "{r}");
}

#[test]
fn a_model_fine_tuned_on_tool_traces_answers_by_calling_tools() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    // A few compare questions learned by heart: the model learns to write the calls; the years
    // and the comparison come from the tools.
    let tasks: Vec<world::Task> =
        w.tasks_in(Split::Train).into_iter().filter(|t| t.family == world::Family::Compare).take(6).collect();
    let examples: Vec<Example> = tasks
        .iter()
        .map(|t| {
            let (completion, forced) = tools::segments_with_forced(&tools::trace_to_chat(&t.tool_trace));
            Example { prompt: eval::prompt(&t.question, AnswerMode::Tools), completion, forced, messages: None }
        })
        .collect();
    let cfg = SftConfig {
        steps: 150,
        batch_size: 6,
        replay_fraction: 0.0,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    let s = sft(&init, &examples, &[], &cfg, &dir.path().join("sft"), true).unwrap();
    let device = engine::device(Backend::Cpu).unwrap();
    let (m, tok, _) = eval::load_for_inference(&s.checkpoint, &device).unwrap();
    let registry = Arc::new(tools::Registry::standard(&w.facts()));
    let opts = EvalOptions { mode: AnswerMode::Tools, batch: 6, tools: Some(registry), ..Default::default() };
    let r = eval::evaluate(&m, &tok, &tasks, &opts, &device).unwrap();
    assert!(r.overall.accuracy >= 5.0 / 6.0, "{}", r.table());
    for o in &r.outcomes {
        // Every answer called tools and read their true results (injected, not written).
        let check =
            world::verify_trace(&w.knowledge_index(), &tools_lines(&o.completion), world::Verifier::Name, &o.gold);
        assert!(check.steps >= 3 && check.correct_steps == check.steps, "{}: {check:?}", o.completion);
    }
    // Without a registry, tools mode is refused.
    let opts = EvalOptions { mode: AnswerMode::Tools, batch: 6, ..Default::default() };
    assert!(eval::evaluate(&m, &tok, &tasks, &opts, &device).is_err());
}

/// A chat-form tool answer back in trace-line form (`call -> result` lines, then the rest), so
/// the world's step checker can read it.
fn tools_lines(completion: &str) -> String {
    completion
        .replace("<|tool_call|>", "")
        .replace("<|/tool_call|><|tool_result|> ", " -> ")
        .replace("<|/tool_result|>", "")
}
