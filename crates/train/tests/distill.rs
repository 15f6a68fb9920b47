//! Logit distillation brings a smaller student's distributions toward the teacher's, on
//! examples it was not trained on as well as those it was.

use model::engine::{self, Backend};
use model::ModelConfig;
use train::distill::{distill, mean_kl, DistillConfig};
use train::eval::{self, AnswerMode};
use train::sft::{sft, Example, SftConfig};
use world::Split;

mod common;

use common::{random_checkpoint, random_checkpoint_of, small_world, world_tokenizer};

#[test]
fn distillation_brings_the_students_kl_to_the_teacher_down() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let traces = |split: Split, n: usize| -> Vec<Example> {
        w.tasks_in(split)
            .into_iter()
            .take(n)
            .map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Trace), t.trace.clone()))
            .collect()
    };
    let (train, test) = (traces(Split::Train, 24), traces(Split::Heldout, 16));
    // A teacher that has learned the trace format; a student with a quarter of its width.
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    let cfg = SftConfig {
        steps: 100,
        batch_size: 8,
        replay_fraction: 0.0,
        warmup_steps: 5,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    let teacher = sft(&init, &train, &[], &cfg, &dir.path().join("teacher"), true).unwrap().checkpoint;
    let small = ModelConfig::llama(tok.vocab_size(), 32, 1, 2, 192);
    let student = random_checkpoint_of(&dir.path().join("student"), &tok, small);

    let device = engine::device(Backend::Cpu).unwrap();
    let kl = |student_dir: &std::path::Path, examples: &[Example]| {
        let (t, _, _) = eval::load_for_inference(&teacher, &device).unwrap();
        let (s, _, _) = eval::load_for_inference(student_dir, &device).unwrap();
        let rows: Vec<_> = examples.iter().map(|e| e.tokens(&tok).unwrap()).collect();
        mean_kl(&t, &s, &rows, 2.0, &device)
    };
    let (before_train, before_test) = (kl(&student, &train), kl(&student, &test));
    let dcfg = DistillConfig {
        steps: 80,
        batch_size: 8,
        temperature: 2.0,
        warmup_steps: 5,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..DistillConfig::default()
    };
    let s = distill(&teacher, &student, &train, &[], &dcfg, &dir.path().join("distilled")).unwrap();
    assert!(s.last_loss < s.first_loss, "{s:?}");
    let (after_train, after_test) = (kl(&s.checkpoint, &train), kl(&s.checkpoint, &test));
    eprintln!("KL(teacher || student): train {before_train:.3} -> {after_train:.3}, held-out {before_test:.3} -> {after_test:.3}");
    assert!(after_train < 0.5 * before_train, "train KL {before_train} -> {after_train}");
    assert!(after_test < 0.7 * before_test, "held-out KL {before_test} -> {after_test}");
    // The student has at most half the teacher's parameters; a student with another tokenizer
    // is refused.
    let p = |d: &std::path::Path| checkpoint_params(d);
    assert!(2 * p(&s.checkpoint) <= p(&teacher));
    let texts = w.corpus_documents(1).unwrap();
    let other =
        tokenizer::Tokenizer::train(texts.iter(), &tokenizer::TrainConfig { vocab_size: 300, ..Default::default() })
            .unwrap();
    let stranger = random_checkpoint_of(&dir.path().join("stranger"), &other, ModelConfig::llama(300, 32, 1, 2, 192));
    let e = distill(&teacher, &stranger, &train, &[], &dcfg, &dir.path().join("x")).unwrap_err().to_string();
    assert!(e.contains("different tokenizers"), "{e}");
}

fn checkpoint_params(dir: &std::path::Path) -> usize {
    let l = train::checkpoint::load(dir).unwrap();
    l.model_and_tokenizer().unwrap().0.param_count().total
}
