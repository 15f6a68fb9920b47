//! Rejection-sampling fine-tuning: a model that answers some questions right teaches itself
//! from its verified answers, and the yield (the fraction of samples the verifier accepts) rises
//! round by round.

use model::Sampling;
use train::eval::{self, AnswerMode};
use train::rft::{rft, RftConfig};
use train::sft::{sft, Example, SftConfig};
use world::Split;

mod common;

use common::{random_checkpoint, small_world, world_tokenizer};

#[test]
fn rft_yield_rises_over_rounds() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    // A partly trained start: a short fine-tune on the gold traces, so that samples are right
    // some of the time.
    let tasks: Vec<world::Task> = w.tasks_in(Split::Train).into_iter().filter(|t| t.hops <= 2).take(16).collect();
    let gold: Vec<Example> =
        tasks.iter().map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Trace), t.trace.clone())).collect();
    let sft_cfg = SftConfig {
        steps: 100,
        batch_size: 8,
        replay_fraction: 0.0,
        warmup_steps: 5,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    let start = sft(&init, &gold, &[], &sft_cfg, &dir.path().join("start"), true).unwrap().checkpoint;
    let cfg = RftConfig {
        rounds: 2,
        samples: 4,
        sampling: Sampling::temperature(0.7, 3),
        all_steps: false,
        per_question: 2,
        sft: SftConfig { steps: 40, ..sft_cfg },
        batch: 8,
        rationalize: false,
    };
    let (last, yields) =
        rft(&start, &tasks, AnswerMode::Trace, &w.knowledge_index(), &[], &cfg, &dir.path().join("rft"), true).unwrap();
    let y: Vec<f64> = yields.iter().map(|r| r.yield_fraction).collect();
    eprintln!("yield per model: {y:?}");
    assert_eq!(yields.len(), 3, "{yields:?}");
    assert!(y[0] > 0.02 && y[0] < 0.9, "the start must be partly right for the test to mean anything: {y:?}");
    assert!(y[2] > y[0] + 0.1, "yield did not rise: {y:?}");
    assert!(yields[0].trained_on > 0 && yields[2].trained_on == 0);
    // Rationalisation: the same first samples, then the questions with none kept asked again with
    // the answer as a hint; what verifies is trained on under the plain question.
    let cfg_r = RftConfig { rounds: 1, rationalize: true, ..cfg.clone() };
    let (_, with) =
        rft(&start, &tasks, AnswerMode::Trace, &w.knowledge_index(), &[], &cfg_r, &dir.path().join("star"), true)
            .unwrap();
    eprintln!(
        "rationalised: {} of {} questions with no kept answer",
        with[0].rationalized,
        (16.0 * (1.0 - with[0].questions_solved)).round()
    );
    assert_eq!((with[0].kept, with[0].samples), (yields[0].kept, yields[0].samples), "the same first pass");
    assert!(with[0].rationalized as f64 <= (16.0 * (1.0 - with[0].questions_solved)).round());
    assert!(with[0].trained_on >= yields[0].trained_on + with[0].rationalized, "{with:?}");
    assert!(last.ends_with("step-000040") && last.starts_with(dir.path().join("rft/round-2")), "{}", last.display());
}
