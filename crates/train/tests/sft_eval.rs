//! Fine-tuning and evaluation end to end: SFT teaches a model answers it could not give before,
//! greedy evaluation grades them with the tasks' verifiers, and the prompt format tokenises as
//! a prefix of the training text.

use model::engine::{self, Backend};
use train::eval::{self, qa_text, trace_text, AnswerMode, EvalOptions};
use train::sft::{sft, Example, SftConfig};
use train::testtime;
use world::Split;

mod common;

use common::{random_checkpoint, small_world, world_tokenizer};

#[test]
fn prompts_tokenise_as_a_prefix_of_the_training_text() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    for t in w.tasks().iter().take(200) {
        let full = tok.encode(&qa_text(&t.question, &t.answer));
        let p = tok.encode(&eval::prompt(&t.question, AnswerMode::Direct));
        assert_eq!(&full[..p.len()], &p[..], "direct prompt of {}", t.id);
        let full = tok.encode(&trace_text(&t.question, &t.trace));
        let p = tok.encode(&eval::prompt(&t.question, AnswerMode::Trace));
        assert_eq!(&full[..p.len()], &p[..], "trace prompt of {}", t.id);
    }
}

#[test]
fn sft_teaches_traces_that_evaluation_grades_correct() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    // A handful of train tasks, learned by heart: the test is that SFT fits its examples and that
    // evaluation reads the answers off the traces, not that anything generalises.
    let tasks: Vec<world::Task> = w.tasks_in(Split::Train).into_iter().filter(|t| t.hops <= 2).take(12).collect();
    let examples: Vec<Example> =
        tasks.iter().map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Trace), t.trace.clone())).collect();
    let device = engine::device(Backend::Cpu).unwrap();
    let opts = EvalOptions { mode: AnswerMode::Trace, batch: 8, max_new: Some(80), ..Default::default() };
    let (before, _, _) = eval::load_for_inference(&init, &device).unwrap();
    let r0 = eval::evaluate(&before, &tok, &tasks, &opts, &device).unwrap();

    let cfg = SftConfig {
        steps: 150,
        batch_size: 8,
        replay_fraction: 0.0,
        warmup_steps: 5,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    let s = sft(&init, &examples, &[], &cfg, &dir.path().join("sft"), true).unwrap();
    assert!(s.last_loss < 0.2 * s.first_loss, "SFT loss fell only from {} to {}", s.first_loss, s.last_loss);
    let (after, _, _) = eval::load_for_inference(&s.checkpoint, &device).unwrap();
    let r1 = eval::evaluate(&after, &tok, &tasks, &opts, &device).unwrap();
    assert!(r0.overall.accuracy <= 0.1, "an untrained model scored {}", r0.overall.accuracy);
    assert!(
        r1.overall.accuracy >= 0.75,
        "after SFT only {} of the memorised tasks\n{:#?}",
        r1.overall.accuracy,
        r1.outcomes
    );
    // The grading is by verifier: every outcome marked correct has the gold answer.
    for o in &r1.outcomes {
        if o.correct {
            assert!(world::normalize_name(o.predicted.as_deref().unwrap()) == world::normalize_name(&o.gold), "{o:?}");
        }
    }
    // The table lists every family present and the total.
    let table = r1.table();
    assert!(table.contains("all") && table.contains("recall"), "{table}");

    // Test-time sampling: reproducible draws, graded and checked step by step.
    let kb = w.knowledge_index();
    let sampling = model::Sampling::temperature(1.0, 3);
    let draw =
        || testtime::sample_tasks(&after, &tok, &tasks, AnswerMode::Trace, 6, &sampling, 8, &kb, &device).unwrap().0;
    let d = draw();
    assert_eq!(d, draw(), "seeded draws repeat exactly");
    assert!(d.iter().all(|t| t.draws.len() == 6));
    let (p1, p6) = (testtime::mean_pass_at_k(&d, 1), testtime::mean_pass_at_k(&d, 6));
    let maj = testtime::report(&d, 6, testtime::Strategy::Majority, AnswerMode::Trace, 0.0).overall.accuracy;
    let best = testtime::report(&d, 6, testtime::Strategy::BestOfVerifier, AnswerMode::Trace, 0.0).overall.accuracy;
    assert!(p1 > 0.3, "samples of a model that learned its traces are mostly right: pass@1 {p1}");
    assert!(p6 >= p1 && p6 >= maj && p6 >= best, "pass@6 {p6} bounds pass@1 {p1}, maj@6 {maj}, best-of-6 {best}");
    assert!(maj + 0.05 >= p1, "majority vote {maj} fell below a single sample {p1}");
    // A draw the verifier grades right whose every step is a true fact is the common case.
    let sound = d.iter().flat_map(|t| &t.draws).filter(|x| x.correct && x.steps > 0 && x.true_steps == x.steps).count();
    let right = d.iter().flat_map(|t| &t.draws).filter(|x| x.correct).count();
    assert!(sound * 2 >= right, "{sound} of {right} correct draws have all steps true");
}

#[test]
fn packed_sft_fits_several_examples_per_row_and_learns() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    // Short direct answers and long traces: one example per row pads most of each row.
    let tasks: Vec<world::Task> = w.tasks_in(Split::Train).into_iter().take(40).collect();
    let mut examples: Vec<Example> = tasks
        .iter()
        .map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Direct), format!(" {}", t.answer)))
        .collect();
    examples.extend(
        tasks.iter().take(4).map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Trace), t.trace.clone())),
    );
    let cfg = |pack| SftConfig {
        steps: 60,
        batch_size: 8,
        replay_fraction: 0.0,
        warmup_steps: 5,
        pack,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    let plain = sft(&init, &examples, &[], &cfg(false), &dir.path().join("plain"), true).unwrap();
    let packed = sft(&init, &examples, &[], &cfg(true), &dir.path().join("packed"), true).unwrap();
    assert_eq!(plain.examples_seen, 60 * 8);
    assert!(2 * packed.examples_seen >= 3 * plain.examples_seen, "{} examples packed", packed.examples_seen);
    assert_eq!(packed.tokens, plain.tokens, "the same rows of the same length");
    assert!(packed.last_loss < 0.5 * packed.first_loss, "{} -> {}", packed.first_loss, packed.last_loss);
    // Seeing more examples per step, it fits them better in the same steps.
    let device = engine::device(Backend::Cpu).unwrap();
    let mean_nll = |dir: &std::path::Path| {
        let (m, _, _) = eval::load_for_inference(dir, &device).unwrap();
        let rows: Vec<_> = examples.iter().map(|e| e.tokens(&tok).unwrap()).collect();
        let n: usize = rows.iter().map(|(_, t)| t.iter().filter(|x| **x).count()).sum();
        -train::prefs::row_logps(&m, &rows, 16, &device).iter().sum::<f64>() / n as f64
    };
    let (a, b) = (mean_nll(&plain.checkpoint), mean_nll(&packed.checkpoint));
    assert!(b < a, "per-token NLL on the examples: packed {b}, one per row {a}");
}

#[test]
fn a_curriculum_teaches_the_front_of_the_list_first() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    let tasks: Vec<world::Task> = w.tasks_in(Split::Train).into_iter().take(40).collect();
    let examples: Vec<Example> = tasks
        .iter()
        .map(|t| Example::new(eval::prompt(&t.question, AnswerMode::Direct), format!(" {}", t.answer)))
        .collect();
    let cfg = |curriculum| SftConfig {
        steps: 40,
        batch_size: 8,
        replay_fraction: 0.0,
        warmup_steps: 2,
        curriculum,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..SftConfig::default()
    };
    let ramp = Some(train::sft::Curriculum { start: 0.25, ramp: 1.0 });
    let plain = sft(&init, &examples, &[], &cfg(None), &dir.path().join("plain"), true).unwrap();
    let ordered = sft(&init, &examples, &[], &cfg(ramp), &dir.path().join("ordered"), true).unwrap();
    let device = engine::device(Backend::Cpu).unwrap();
    // Mean per-token NLL of the first and the last ten examples.
    let nll = |dir: &std::path::Path, part: &[Example]| {
        let (m, _, _) = eval::load_for_inference(dir, &device).unwrap();
        let rows: Vec<_> = part.iter().map(|e| e.tokens(&tok).unwrap()).collect();
        let n: usize = rows.iter().map(|(_, t)| t.iter().filter(|x| **x).count()).sum();
        -train::prefs::row_logps(&m, &rows, 16, &device).iter().sum::<f64>() / n as f64
    };
    let gap = |dir: &std::path::Path| nll(dir, &examples[30..]) - nll(dir, &examples[..10]);
    let (g_plain, g_ordered) = (gap(&plain.checkpoint), gap(&ordered.checkpoint));
    eprintln!("last-ten minus first-ten NLL: uniform {g_plain:.3}, curriculum {g_ordered:.3}");
    assert!(g_ordered > g_plain + 0.3, "the curriculum's front was not learned first: {g_ordered} vs {g_plain}");
}

#[test]
fn forced_ranges_are_read_but_not_trained() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let call = "<|tool_call|>lookup(Ilona Varsk, birth_city)<|/tool_call|>";
    let result = "<|tool_result|> Lormet<|/tool_result|>\n";
    let completion = format!("{call}{result}Answer: Lormet");
    let e = Example {
        forced: vec![(call.len(), call.len() + result.len())],
        ..Example::new("Question: Where was Ilona Varsk born?\n", completion.clone())
    };
    let (ids, trained) = e.tokens(&tok).unwrap();
    assert_eq!(ids.len(), trained.len());
    let n_prompt = tok.encode(&e.prompt).len();
    assert!(trained[..n_prompt].iter().all(|t| !t), "prompt tokens are not trained");
    let untrained: Vec<u32> =
        ids[n_prompt..].iter().zip(&trained[n_prompt..]).filter(|(_, t)| !**t).map(|(i, _)| *i).collect();
    assert_eq!(tok.decode(&untrained), result, "exactly the forced text is untrained");
    assert_eq!(tok.decode(&ids[n_prompt..ids.len() - 1]), completion);
    assert_eq!(*trained.last().unwrap(), true, "the closing <|eos|> is trained");
    // Without forced ranges every completion token is trained, tokenised as one text.
    let plain = Example::new(e.prompt.clone(), completion.clone());
    let (ids, trained) = plain.tokens(&tok).unwrap();
    assert_eq!(ids[n_prompt..ids.len() - 1], tok.encode(&completion)[..]);
    assert!(trained[n_prompt..].iter().all(|t| *t));
    // Ranges out of order or off the text are refused, naming the example.
    for bad in [vec![(5, 3)], vec![(0, completion.len() + 1)], vec![(4, 6), (2, 3)]] {
        let e = Example { forced: bad, ..plain.clone() };
        let msg = e.tokens(&tok).unwrap_err().to_string();
        assert!(msg.contains("forced range") && msg.contains("Ilona Varsk"), "{msg}");
    }
}

#[test]
fn load_for_inference_refuses_what_is_not_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let device = engine::device(Backend::Cpu).unwrap();
    let e = eval::load_for_inference(dir.path(), &device).err().expect("an empty folder is refused").to_string();
    assert!(e.contains("neither a checkpoint"), "{e}");
    let bad = dir.path().join("tasks.jsonl");
    std::fs::write(&bad, "{\"id\": 1}\n").unwrap();
    let e = eval::read_tasks(&bad).unwrap_err().to_string();
    assert!(e.contains(":1:"), "the bad line is named: {e}");
}
