//! GRPO: a model that answers some questions right some of the time learns from the verifier's
//! rewards (its sampled accuracy rises toward its pass@k); the loss trains exactly the sampled
//! tokens; a killed run resumes exactly.

use std::path::{Path, PathBuf};

use model::burn::prelude::*;
use model::engine::{self, Backend};
use model::Sampling;
use train::checkpoint;
use train::eval::{self, AnswerMode};
use train::grpo::{advantages, grpo, metrics_path, sample_row, shard_loss, GrpoConfig};
use train::sft::{sft, Example, SftConfig};
use train::testtime::{pass_at_k, sample_tasks};
use train::RunOptions;
use world::{Split, Task, World};

mod common;

use common::{random_checkpoint, small_world, world_tokenizer};

fn quiet() -> RunOptions {
    RunOptions { quiet: true, ..Default::default() }
}

/// A partly trained start: a short fine-tune on gold traces, so that samples are right some of
/// the time.
fn start(w: &World, dir: &Path) -> (PathBuf, Vec<Task>) {
    let tok = world_tokenizer(w);
    let init = random_checkpoint(&dir.join("init"), &tok);
    let tasks: Vec<Task> = w.tasks_in(Split::Train).into_iter().filter(|t| t.hops <= 2).take(16).collect();
    let gold: Vec<Example> =
        tasks.iter().map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Trace), t.trace.clone())).collect();
    let cfg = SftConfig {
        steps: 150,
        batch_size: 8,
        replay_fraction: 0.0,
        warmup_steps: 5,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    (sft(&init, &gold, &[], &cfg, &dir.join("start"), true).unwrap().checkpoint, tasks)
}

/// Mean sampled accuracy (pass@1 at temperature 1, 8 samples per task) and pass@8.
fn sampled(ckpt: &Path, tasks: &[Task], w: &World) -> (f64, f64) {
    let device = engine::device(Backend::Cpu).unwrap();
    let (m, tok, _) = eval::load_for_inference(ckpt, &device).unwrap();
    let (draws, _) = sample_tasks(
        &m,
        &tok,
        tasks,
        AnswerMode::Trace,
        8,
        &Sampling::temperature(1.0, 99),
        16,
        &w.knowledge_index(),
        &device,
    )
    .unwrap();
    let n = draws.len() as f64;
    let p1 =
        draws.iter().map(|d| pass_at_k(d.draws.len(), d.draws.iter().filter(|x| x.correct).count(), 1)).sum::<f64>();
    let p8 =
        draws.iter().map(|d| pass_at_k(d.draws.len(), d.draws.iter().filter(|x| x.correct).count(), 8)).sum::<f64>();
    (p1 / n, p8 / n)
}

fn config() -> GrpoConfig {
    GrpoConfig {
        steps: 60,
        questions: 16,
        group: 8,
        optim: train::config::OptimSection { lr: 1e-3, weight_decay: 0.0, ..Default::default() },
        warmup_steps: 2,
        checkpoint_every: 10,
        batch: 16,
        ..GrpoConfig::default()
    }
}

#[test]
fn grpo_raises_sampled_accuracy_toward_pass_at_k() {
    let w = small_world();
    let dir = tempfile::tempdir().unwrap();
    let (init, tasks) = start(&w, dir.path());
    let (p1_before, pk_before) = sampled(&init, &tasks, &w);
    let out = dir.path().join("grpo");
    let s = grpo(&init, None, &tasks, AnswerMode::Trace, None, &config(), &out, &quiet()).unwrap();
    let (p1_after, pk_after) = sampled(&s.checkpoint, &tasks, &w);
    let acc: Vec<f64> = s.metrics.iter().map(|m| m.accuracy).collect();
    eprintln!(
        "pass@1 {p1_before:.3} -> {p1_after:.3}, pass@8 {pk_before:.3} -> {pk_after:.3}; step accuracy {acc:.2?}"
    );
    eprintln!("last step: {:?}", s.metrics.last().unwrap());
    assert!(p1_before > 0.1 && p1_before < 0.9, "the start must be partly right for the test to mean anything");
    assert!(p1_after > p1_before + 0.1, "sampled accuracy did not rise: {p1_before:.3} -> {p1_after:.3}");
    assert!(s.last_reward > s.first_reward, "reward did not rise: {} -> {}", s.first_reward, s.last_reward);
    assert_eq!(s.metrics.len(), config().steps);
    let kl: Vec<f64> = s.metrics.iter().map(|m| m.kl).collect();
    assert!(kl[0].abs() < 1e-4 && kl[59] > 1e-4, "KL to the reference starts at 0 and grows: {kl:?}");
    assert!(s.metrics.iter().all(|m| m.entropy > 0.0 && m.length > 0.0));
    // The metrics file has every step.
    assert_eq!(std::fs::read_to_string(metrics_path(&out)).unwrap().lines().count(), 60);
}

#[test]
fn a_killed_grpo_run_resumes_exactly() {
    let w = small_world();
    let dir = tempfile::tempdir().unwrap();
    let (init, tasks) = start(&w, dir.path());
    let cfg = GrpoConfig { steps: 4, questions: 8, checkpoint_every: 2, updates: 2, ..config() };
    let whole = grpo(&init, None, &tasks, AnswerMode::Trace, None, &cfg, &dir.path().join("whole"), &quiet()).unwrap();
    let out = dir.path().join("cut");
    let cut =
        grpo(&init, None, &tasks, AnswerMode::Trace, None, &cfg, &out, &RunOptions { stop_after: Some(3), ..quiet() })
            .unwrap();
    assert!(cut.checkpoint.ends_with("step-000003"), "{}", cut.checkpoint.display());
    let again = grpo(&init, None, &tasks, AnswerMode::Trace, None, &cfg, &out, &quiet());
    assert!(again.is_err(), "a second run into the same folder must say resume");
    let resumed =
        grpo(&init, None, &tasks, AnswerMode::Trace, None, &cfg, &out, &RunOptions { resume: true, ..quiet() })
            .unwrap();
    assert_eq!(resumed.resumed_from, 3);
    let strip = |m: &train::grpo::StepMetrics| (m.step, m.reward, m.loss, m.kl, m.clip_fraction);
    assert_eq!(
        whole.metrics.iter().map(strip).collect::<Vec<_>>(),
        resumed.metrics.iter().map(strip).collect::<Vec<_>>(),
        "the resumed steps are the same steps"
    );
    assert!(whole.metrics.iter().any(|m| m.clip_fraction > 0.0), "two updates per batch clip some ratios");
    let a = checkpoint::load(&whole.checkpoint).unwrap().payload.model_safetensors;
    let b = checkpoint::load(&resumed.checkpoint).unwrap().payload.model_safetensors;
    assert!(a == b, "the resumed run ends with the same weights");
    let other = GrpoConfig { kl_beta: 0.5, ..cfg };
    let e = grpo(&init, None, &tasks, AnswerMode::Trace, None, &other, &out, &RunOptions { resume: true, ..quiet() })
        .unwrap_err();
    assert!(e.to_string().contains("another config"), "{e}");
}

#[test]
fn advantages_are_normalised_within_groups_and_flat_groups_are_skipped() {
    let (kept, skipped) = advantages(&[1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 1.5, 1.5], 4);
    assert_eq!(skipped, 1, "the all-ones group teaches nothing");
    let idx: Vec<usize> = kept.iter().map(|k| k.0).collect();
    assert_eq!(idx, vec![0, 1, 2, 3, 8, 9, 10, 11]);
    // Group 1: mean 0.25, std √0.1875.
    let s = 0.1875f64.sqrt() + 1e-4;
    assert!((kept[0].1 as f64 - 0.75 / s).abs() < 1e-5 && (kept[1].1 as f64 + 0.25 / s).abs() < 1e-5);
    // Group 3: ±1 (std 0.5).
    assert!((kept[4].1 as f64 + 0.5 / 0.5001).abs() < 1e-5 && (kept[7].1 as f64 - 0.5 / 0.5001).abs() < 1e-5);
    assert!(kept.iter().map(|k| k.1 as f64).sum::<f64>().abs() < 1e-5, "advantages sum to zero");
}

#[test]
fn the_loss_is_the_clipped_surrogate_plus_k3_over_sampled_tokens_only() {
    // A row: prompt of 3 tokens, then two sampled, two injected (a tool result), one sampled.
    let (ids, trained) = sample_row(&[5, 6, 7], &[8, 9, 10, 11, 12], &[false, false, true, true, false]);
    assert_eq!(ids, vec![5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(trained, vec![false, false, false, true, true, false, false, true]);

    let device = engine::training_device(&engine::device(Backend::Cpu).unwrap());
    let t = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &device);
    // Predictions j = 0..7 target ids[j + 1]; weights are trained[j + 1].
    let w: Vec<f32> = trained[1..].iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    let logp_v = [-1.0f32, -2.0, -0.5, -0.7, -3.0, -0.1, -0.2];
    let old_v = [-1.1f32, -2.0, -0.9, -0.6, -1.0, -0.1, -0.5];
    let ref_v = [-1.0f32, -1.0, -0.6, -0.8, -2.0, -2.0, -0.4];
    let (adv, clip, beta, total) = (-0.8f32, 0.2, 0.05, 3.0);
    let logp = t(&logp_v).require_grad();
    let (loss, n_clipped) =
        shard_loss(logp.clone(), t(&old_v), Some(t(&ref_v)), t(&[adv; 7]), t(&w), clip, beta, total);
    let mut want = 0.0f64;
    let mut want_clipped = 0.0;
    for j in 0..7 {
        if w[j] == 0.0 {
            continue;
        }
        let ratio = ((logp_v[j] - old_v[j]) as f64).exp();
        let a = adv as f64;
        let surrogate = (ratio * a).min(ratio.clamp(1.0 - clip, 1.0 + clip) * a);
        let d = (ref_v[j] - logp_v[j]) as f64;
        want += -surrogate + beta * (d.exp() - d - 1.0);
        want_clipped += f64::from(u8::from((ratio - 1.0).abs() > clip));
    }
    want /= total;
    let got = loss.clone().into_scalar::<f32>() as f64;
    assert!((got - want).abs() < 1e-5, "loss {got} vs hand {want}");
    assert_eq!(n_clipped.into_scalar::<f32>() as f64, want_clipped);
    // No gradient reaches the prompt or the injected tokens.
    let grads = loss.backward();
    let g: Vec<f32> = logp.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
    for j in 0..7 {
        assert_eq!(g[j] == 0.0, w[j] == 0.0, "position {j}: gradient {} with weight {}", g[j], w[j]);
    }
}

/// GRPO on question/answer tasks of your own (`{"question", "answer", "verifier"}` lines, here
/// the world's one-fact questions written as such a file, asked as `ascent eval` asks them):
/// the verifiers' verdicts raise the sampled accuracy (each step samples 8 answers to each of
/// the 16 questions).
#[test]
fn grpo_on_your_own_question_answer_tasks_raises_accuracy() {
    use train::qa::{evaluate_qa, read_qa_tasks, QaVerifier};
    let w = small_world();
    let dir = tempfile::tempdir().unwrap();
    let tok = world_tokenizer(&w);
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    let picked: Vec<Task> = w.tasks_in(Split::Train).into_iter().filter(|t| t.hops <= 1).take(16).collect();
    let file = dir.path().join("qa.jsonl");
    let lines: Vec<String> = picked
        .iter()
        .map(|t| {
            serde_json::json!({"question": t.question, "answer": t.answer, "verifier": t.verifier.as_str()}).to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let tasks = read_qa_tasks(&file, QaVerifier::Numeric).unwrap();
    assert!(tasks.iter().any(|t| t.verifier == QaVerifier::Name), "the file's own verifiers are used");
    // A partly trained start: a short fine-tune on the direct answers.
    let gold: Vec<Example> = picked
        .iter()
        .map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Direct), format!(" {}", t.answer)))
        .collect();
    let cfg = SftConfig {
        steps: 120,
        batch_size: 8,
        replay_fraction: 0.0,
        warmup_steps: 5,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    let start = sft(&init, &gold, &[], &cfg, &dir.path().join("start"), true).unwrap().checkpoint;
    let device = engine::device(Backend::Cpu).unwrap();
    let greedy = |ckpt: &Path| {
        let (m, tok, _) = eval::load_for_inference(ckpt, &device).unwrap();
        evaluate_qa(&m, &tok, &tasks, 16, &device).unwrap().accuracy
    };
    let before = greedy(&start);
    let cfg = GrpoConfig { steps: 30, max_new: Some(12), sampling: Sampling::temperature(0.7, 0), ..config() };
    let s = train::grpo::grpo_qa(&start, None, &tasks, &cfg, &dir.path().join("grpo"), &quiet()).unwrap();
    let after = greedy(&s.checkpoint);
    let acc: Vec<f64> = s.metrics.iter().map(|m| m.accuracy).collect();
    eprintln!("greedy accuracy {before:.3} -> {after:.3}; step accuracy {acc:.2?}");
    let mean = |a: &[f64]| a.iter().sum::<f64>() / a.len() as f64;
    let (first, last) = (mean(&acc[..5]), mean(&acc[acc.len() - 5..]));
    assert!(first > 0.1 && first < 0.8, "the start must be partly right for the test to mean anything: {first:.3}");
    assert!(last > first + 0.1, "sampled accuracy did not rise: {first:.3} -> {last:.3} ({acc:.2?})");
    assert!(after + 0.07 >= before, "greedy accuracy fell: {before:.3} -> {after:.3}");
}
