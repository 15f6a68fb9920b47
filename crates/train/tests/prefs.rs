//! Preference optimisation learns the preference: DPO and ORPO raise the chosen-minus-rejected
//! margin on held-out pairs, where plain SFT on the chosen answers raises the rejected answers'
//! probability too. The loss reads exactly the trained tokens, and a killed run resumes exactly.

use std::collections::BTreeMap;
use std::path::Path;

use model::burn::prelude::*;
use model::burn::tensor::activation::log_softmax;
use model::engine::{self, Backend};
use model::{weights, Transformer};
use tokenizer::Tokenizer;
use train::checkpoint;
use train::eval::{self, AnswerMode};
use train::prefs::{margins, pair_rows, prefs, row_logps, Objective, Pair, PrefConfig};
use train::sft::{sft, Example, SftConfig};
use train::RunOptions;
use world::{Family, Split, World};

mod common;

use common::{random_checkpoint, small_world, world_tokenizer};

/// Pairs for the recall questions of `split`: the right answer over the answer of a question
/// about another relation (a year for a city question, a university for a year question, ...).
/// Which answer has the question's type can be learned from train people and carries over to
/// held-out ones; which city a held-out person was born in cannot.
fn pairs(w: &World, split: Split) -> Vec<Pair> {
    let tasks: Vec<_> = w.tasks_in(split).into_iter().filter(|t| t.family == Family::Recall).collect();
    let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &tasks {
        by_kind.entry(t.id.split('/').nth(1).unwrap().to_string()).or_default().push(t.answer.clone());
    }
    let kinds: Vec<&String> = by_kind.keys().collect();
    tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let kind = t.id.split('/').nth(1).unwrap();
            let k = kinds.iter().position(|k| *k == kind).unwrap();
            let other = &by_kind[kinds[(k + 1 + i % (kinds.len() - 1)) % kinds.len()]];
            Pair::new(
                eval::prompt(&t.question, AnswerMode::Direct),
                format!(" {}", t.answer),
                format!(" {}", other[i % other.len()]),
            )
        })
        .collect()
}

fn load(dir: &Path) -> (Transformer, Tokenizer) {
    let device = engine::device(Backend::Cpu).unwrap();
    let loaded = checkpoint::load(dir).unwrap();
    let (cfg, tok) = loaded.model_and_tokenizer().unwrap();
    let m = weights::load_safetensors(Transformer::new(&cfg, &device), &loaded.payload.model_safetensors).unwrap();
    (m, tok)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean margin and mean rejected log-probability of `pairs` under the checkpoint `dir`.
fn measure(dir: &Path, pairs: &[Pair]) -> (f64, f64) {
    let device = engine::device(Backend::Cpu).unwrap();
    let (m, tok) = load(dir);
    let margin = mean(&margins(&m, &tok, pairs, &device).unwrap());
    let rows: Vec<_> = pair_rows(pairs, &tok).unwrap().into_iter().map(|[_, r]| r).collect();
    (margin, mean(&row_logps(&m, &rows, 16, &device)))
}

fn quiet() -> RunOptions {
    RunOptions { quiet: true, ..Default::default() }
}

#[test]
fn dpo_and_orpo_raise_the_margin_on_held_out_pairs_and_sft_raises_the_rejected_too() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    let (train, test) = (pairs(&w, Split::Train), pairs(&w, Split::Heldout));
    assert!(train.len() >= 30 && test.len() >= 20, "{} / {}", train.len(), test.len());
    let (m0, r0) = measure(&init, &test);

    let base = PrefConfig { steps: 80, batch_size: 8, warmup_steps: 5, checkpoint_every: 0, ..Default::default() };
    let mut after = BTreeMap::new();
    for objective in [Objective::Dpo { beta: 0.1 }, Objective::Orpo { lambda: 1.0 }] {
        let cfg = PrefConfig {
            objective,
            optim: train::config::OptimSection { lr: 2e-3, ..base.optim.clone() },
            ..base.clone()
        };
        let s = prefs(&init, None, &train, &cfg, &dir.path().join(objective.name()), &quiet()).unwrap();
        assert!(s.last_loss < s.first_loss, "{}: loss {} -> {}", s.objective, s.first_loss, s.last_loss);
        after.insert(objective.name(), measure(&s.checkpoint, &test));
    }
    // SFT on the chosen answers alone, the same number of rows.
    let examples: Vec<Example> = train.iter().map(|p| p.examples()[0].clone()).collect();
    let cfg = SftConfig { steps: 80, batch_size: 8, replay_fraction: 0.0, warmup_steps: 5, ..SftConfig::default() };
    let s = sft(&init, &examples, &[], &cfg, &dir.path().join("sft"), true).unwrap();
    let (m_sft, r_sft) = measure(&s.checkpoint, &test);

    let (m_dpo, _) = after["dpo"];
    let (m_orpo, _) = after["orpo"];
    eprintln!("held-out margin: start {m0:.2}, dpo {m_dpo:.2}, orpo {m_orpo:.2}, sft {m_sft:.2}; rejected log-prob: start {r0:.2}, sft {r_sft:.2}");
    assert!(m_dpo > m0 + 2.0, "DPO margin {m0} -> {m_dpo}");
    assert!(m_orpo > m0 + 2.0, "ORPO margin {m0} -> {m_orpo}");
    // SFT raises the probability of the answers it was never shown, the rejected ones included.
    assert!(r_sft > r0 + 1.0, "SFT rejected log-prob {r0} -> {r_sft}");
}

#[test]
fn the_loss_reads_exactly_the_trained_tokens() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    let (m, _) = load(&init);
    let device = engine::device(Backend::Cpu).unwrap();
    let call = "<|tool_call|>lookup(Ilona Varsk, birth_city)<|/tool_call|>";
    let result = tools::protocol::result_text("Lormet");
    let mut p =
        Pair::new("Question: Where was Ilona Varsk born?\n", format!("{call}{result}Answer: Lormet"), "Answer: Dravia");
    p.chosen_forced = vec![(call.len(), call.len() + result.len())];
    let rows = pair_rows(std::slice::from_ref(&p), &tok).unwrap();
    let got = row_logps(&m, &[rows[0][0].clone(), rows[0][1].clone()], 2, &device);
    // By hand: log-softmax of the full sequence, summed where the next token is trained.
    for (k, (ids, trained)) in rows[0].iter().enumerate() {
        let n = ids.len() - 1;
        let x = Tensor::<2, Int>::from_data(
            TensorData::new(ids[..n].iter().map(|&v| v as i64).collect::<Vec<_>>(), [1, n]),
            &device,
        );
        let logp = log_softmax(m.forward(x), 2).try_into_vec_as::<f32>().unwrap();
        let v = tok.vocab_size();
        let want: f64 = (0..n).filter(|&j| trained[j + 1]).map(|j| logp[j * v + ids[j + 1] as usize] as f64).sum();
        assert!((got[k] - want).abs() < 1e-3, "row {k}: {} vs {want}", got[k]);
        // Nothing of the prompt, and nothing of the injected result, is trained.
        let n_prompt = tok.encode(&p.prompt).len();
        assert!(trained[..n_prompt].iter().all(|t| !t));
        if k == 0 {
            let forced = tok.encode(&result).len();
            let n_call = tok.encode(call).len();
            assert!(trained[n_prompt + n_call..n_prompt + n_call + forced].iter().all(|t| !t));
            assert!(trained[n_prompt..n_prompt + n_call].iter().all(|t| *t));
        }
    }
}

#[test]
fn a_killed_dpo_run_resumes_exactly() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    let train = pairs(&w, Split::Train);
    let cfg = PrefConfig { steps: 12, batch_size: 4, warmup_steps: 2, checkpoint_every: 4, ..Default::default() };
    let whole = prefs(&init, None, &train, &cfg, &dir.path().join("whole"), &quiet()).unwrap();
    // Killed after step 6: the newest checkpoint is step 6's; resume from it.
    let out = dir.path().join("killed");
    let cut = prefs(&init, None, &train, &cfg, &out, &RunOptions { stop_after: Some(6), ..quiet() }).unwrap();
    assert!(cut.checkpoint.ends_with("step-000006"), "{}", cut.checkpoint.display());
    let again = prefs(&init, None, &train, &cfg, &out, &quiet());
    assert!(again.is_err(), "a second run into the same folder must say resume");
    let resumed = prefs(&init, None, &train, &cfg, &out, &RunOptions { resume: true, ..quiet() }).unwrap();
    assert_eq!(resumed.resumed_from, 6);
    assert_eq!(whole.losses[6..], resumed.losses[..], "the resumed steps are the same steps");
    let a = checkpoint::load(&whole.checkpoint).unwrap().payload.model_safetensors;
    let b = checkpoint::load(&resumed.checkpoint).unwrap().payload.model_safetensors;
    assert!(a == b, "the resumed run ends with the same weights");
    // Another config is refused on resume.
    let other = PrefConfig { objective: Objective::Dpo { beta: 0.5 }, ..cfg };
    let e = prefs(&init, None, &train, &other, &out, &RunOptions { resume: true, ..quiet() }).unwrap_err();
    assert!(e.to_string().contains("another config"), "{e}");
}

#[test]
fn stepwise_dpo_takes_the_previous_round_as_its_reference_and_raises_the_margin_again() {
    let w = small_world();
    let tok = world_tokenizer(&w);
    let dir = tempfile::tempdir().unwrap();
    let init = random_checkpoint(&dir.path().join("init"), &tok);
    let (train, test) = (pairs(&w, Split::Train), pairs(&w, Split::Heldout));
    let cfg = PrefConfig {
        steps: 40,
        batch_size: 8,
        warmup_steps: 2,
        checkpoint_every: 0,
        optim: train::config::OptimSection { lr: 2e-3, weight_decay: 0.0, ..Default::default() },
        ..Default::default()
    };
    let (m0, _) = measure(&init, &test);
    let r1 = prefs(&init, None, &train, &cfg, &dir.path().join("round-1"), &quiet()).unwrap();
    let (m1, _) = measure(&r1.checkpoint, &test);
    // Round 2: the round-1 model is both the start and the reference, so its first steps start
    // at h = 0, a loss of ln 2; against the original reference it would start far lower.
    let r2 = prefs(&r1.checkpoint, Some(&r1.checkpoint), &train, &cfg, &dir.path().join("round-2"), &quiet()).unwrap();
    let (m2, _) = measure(&r2.checkpoint, &test);
    let against_init =
        prefs(&r1.checkpoint, Some(&init), &train, &cfg, &dir.path().join("init-ref"), &quiet()).unwrap();
    eprintln!(
        "held-out margin: {m0:.2} -> {m1:.2} -> {m2:.2}; round-2 first loss {:.3} (init reference {:.3})",
        r2.losses[0], against_init.losses[0]
    );
    assert!((r2.losses[0] - std::f64::consts::LN_2).abs() < 1e-3, "round 2 starts at ln 2: {}", r2.losses[0]);
    assert!(against_init.losses[0] < std::f64::consts::LN_2 - 0.05);
    assert!(m1 > m0 + 1.0 && m2 > m1 + 0.5, "margins {m0} -> {m1} -> {m2}");
}
