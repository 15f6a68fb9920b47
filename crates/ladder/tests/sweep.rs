//! The two sweeps at a tiny size: the report files exist and parse with one point per run, a
//! second invocation reruns nothing, a diverging learning rate is recorded as a non-finite point
//! without stopping the sweep, muP at its base width is standard parameterisation, and the
//! knowledge-bit estimator and its probe prompts on hand-checked cases.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use ladder::sweep::{
    fact_bits, knowledge_bits, lr_run_name, probe_prompt, LrRun, ProbedFact, ScaleRun, BATCH_SIZE, SEQ_LEN, VOCAB,
};
use ladder::{lr_sweep, scale_sweep, LadderError, LrSweepOptions, ScaleSweepOptions};
use report::sweep::{LrSweep, ScaleSweep};

/// Modification time of every `runs/*/result.json` under `out`, by run name.
fn result_mtimes(out: &Path) -> BTreeMap<String, SystemTime> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(out.join("runs")).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::metadata(e.path().join("result.json")).unwrap();
        m.insert(e.file_name().to_string_lossy().into_owned(), meta.modified().unwrap());
    }
    m
}

fn lr_opts(out: &Path) -> LrSweepOptions {
    LrSweepOptions {
        out: out.to_path_buf(),
        seed: 3,
        widths: vec![32, 16],
        // 10.0 is absurd: AdamW moves every weight by about 10 per step.
        lrs: vec![4e-3, 10.0],
        steps: 6,
        people: 24,
        renderings: 2,
        threads: 0,
        quiet: true,
    }
}

#[test]
fn lr_sweep_records_every_run_marks_divergence_and_reuses_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let sweep = lr_sweep(&lr_opts(out)).unwrap();
    // 2 parameterisations × 2 widths × 2 rates, smallest width first; muP's base is the smallest.
    assert_eq!(sweep.points.len(), 8);
    assert_eq!(sweep.base_width, 16);
    assert_eq!(sweep.widths(), vec![16, 32]);
    assert_eq!((sweep.steps, sweep.tokens_per_step), (6, BATCH_SIZE * SEQ_LEN));
    for p in &sweep.points {
        if p.lr == 10.0 {
            assert!(
                !p.loss.is_finite(),
                "{} width {} at lr 10 should have diverged: {}",
                p.parameterisation,
                p.width,
                p.loss
            );
            let run: LrRun = serde_json::from_slice(
                &std::fs::read(
                    out.join("runs").join(lr_run_name(&p.parameterisation, p.width, p.lr)).join("result.json"),
                )
                .unwrap(),
            )
            .unwrap();
            assert!(run.diverged.is_some());
        } else {
            assert!(p.loss.is_finite() && p.loss < (VOCAB as f64).ln(), "{p:?}");
        }
        assert!(p.params > 0);
    }
    // At its base width muP is standard parameterisation: same initialisation, rates and logits.
    let at = |param: &str, w: usize| {
        sweep.points.iter().find(|p| p.parameterisation == param && p.width == w && p.lr == 4e-3).unwrap().loss
    };
    assert!((at("mup", 16) - at("standard", 16)).abs() < 1e-5, "{} vs {}", at("mup", 16), at("standard", 16));
    // The files: JSON that parses back to the same sweep, markdown and SVG.
    let read = LrSweep::from_json(&std::fs::read_to_string(out.join("lr-sweep.json")).unwrap()).unwrap();
    assert_eq!(read.points.len(), 8);
    assert!(std::fs::read_to_string(out.join("lr-sweep.md")).unwrap().contains("div"));
    assert!(std::fs::read_to_string(out.join("lr-sweep.svg")).unwrap().starts_with("<svg"));
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(
        (info["mup_base_width"].as_u64(), info["first_recipe"]["model"]["d_model"].as_u64()),
        (Some(16), Some(16))
    );
    // Weights are dropped, metrics kept.
    let one = out.join("runs").join(lr_run_name("mup", 32, 4e-3)).join("train");
    assert!(one.join("metrics.jsonl").is_file() && !one.join("checkpoints").exists());

    // A second invocation trains nothing: every result file is left as it was.
    let before = result_mtimes(out);
    assert_eq!(before.len(), 8);
    let again = lr_sweep(&lr_opts(out)).unwrap();
    assert_eq!(result_mtimes(out), before);
    let losses = |s: &LrSweep| s.points.iter().map(|p| p.loss.to_bits()).collect::<Vec<_>>();
    assert_eq!(losses(&again), losses(&sweep));
}

#[test]
fn scale_sweep_measures_each_size_fits_and_reuses_finished_models() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let opts = ScaleSweepOptions {
        out: out.to_path_buf(),
        seed: 5,
        sizes: vec![(32, 1), (16, 1), (24, 1)],
        steps: 8,
        lr: 4e-3,
        mup: true,
        people: 24,
        renderings: 5,
        threads: 0,
        quiet: true,
    };
    let sweep = scale_sweep(&opts).unwrap();
    let names: Vec<&str> = sweep.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["d16-l1", "d24-l1", "d32-l1"]);
    for w in sweep.points.windows(2) {
        assert!(w[0].params < w[1].params && w[0].flops < w[1].flops);
    }
    for p in &sweep.points {
        assert_eq!(p.tokens, (8 * BATCH_SIZE * SEQ_LEN) as u64);
        assert!(p.total_params > p.params && p.loss.is_finite() && p.seconds > 0.0, "{p:?}");
        // Bits are summed from the probe of every person fact and bounded by what there is.
        let run: ScaleRun =
            serde_json::from_slice(&std::fs::read(out.join("runs").join(&p.name).join("result.json")).unwrap())
                .unwrap();
        let facts: usize = run.knowledge.values().map(|r| r.facts).sum();
        assert_eq!(facts, 24 * 6);
        let max: f64 = run.knowledge.values().map(|r| r.max_bits).sum();
        assert!(p.knowledge_bits >= 0.0 && p.knowledge_bits <= max, "{} of {max}", p.knowledge_bits);
    }
    assert!(sweep.fits.iter().any(|f| f.x == "params") && sweep.fits.iter().any(|f| f.x == "flops"));
    let read = ScaleSweep::from_json(&std::fs::read_to_string(out.join("scale-sweep.json")).unwrap()).unwrap();
    assert_eq!(read.points.len(), 3);
    assert!(std::fs::read_to_string(out.join("scale-sweep.svg")).unwrap().starts_with("<svg"));
    assert!(out.join("scale-sweep.md").is_file());

    let before = result_mtimes(out);
    let again = scale_sweep(&opts).unwrap();
    assert_eq!(result_mtimes(out), before);
    assert_eq!(again.points, sweep.points);
}

#[test]
fn bad_options_fail_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let err = lr_sweep(&LrSweepOptions { widths: vec![30], ..lr_opts(&out) }).unwrap_err();
    assert!(matches!(&err, LadderError::Input(m) if m.contains("--widths")), "{err}");
    let err = lr_sweep(&LrSweepOptions { lrs: vec![-1.0], ..lr_opts(&out) }).unwrap_err();
    assert!(matches!(&err, LadderError::Input(m) if m.contains("--lrs")), "{err}");
    let scale = ScaleSweepOptions { out: out.clone(), sizes: vec![(32, 1), (64, 1)], ..ScaleSweepOptions::default() };
    let err = scale_sweep(&scale).unwrap_err();
    assert!(matches!(&err, LadderError::Input(m) if m.contains("at least 3 sizes")), "{err}");
    let err = scale_sweep(&ScaleSweepOptions {
        renderings: 2,
        ..ScaleSweepOptions { out: out.clone(), ..Default::default() }
    })
    .unwrap_err();
    assert!(matches!(&err, LadderError::Input(m) if m.contains("renderings 2")), "{err}");
    assert!(!out.exists());
}

#[test]
fn fact_bits_run_from_chance_to_the_whole_fact() {
    let ln = |p: f64| p.ln();
    // Knowing only which objects are possible stores nothing; certainty stores log2 |V|.
    assert!(fact_bits(ln(1.0 / 8.0), 8).abs() < 1e-12);
    assert!((fact_bits(0.0, 8) - 3.0).abs() < 1e-12);
    assert!((fact_bits(ln(0.5), 8) - 2.0).abs() < 1e-12);
    assert!((fact_bits(ln(1.0 / 3.0), 100) - (100f64 / 3.0).log2()).abs() < 1e-12);
    // Worse than chance is 0, not negative; a broken score is 0; one possible object holds nothing.
    assert_eq!(fact_bits(ln(1e-9), 8), 0.0);
    assert_eq!(fact_bits(f64::NEG_INFINITY, 8), 0.0);
    assert_eq!(fact_bits(f64::NAN, 8), 0.0);
    assert_eq!(fact_bits(0.0, 1), 0.0);

    // |V| per relation is counted from the facts: 4 objects for "a", 2 for "b".
    let f = |r: &str, o: &str, p: f64| ProbedFact { relation: r.into(), object: o.into(), log_prob: p.ln() };
    let facts =
        [f("a", "w", 1.0), f("a", "x", 0.25), f("a", "y", 0.5), f("a", "z", 0.01), f("b", "u", 1.0), f("b", "v", 0.5)];
    let bits = knowledge_bits(&facts);
    assert_eq!((bits["a"].facts, bits["a"].objects, bits["b"].objects), (4, 4, 2));
    assert!((bits["a"].bits - (2.0 + 0.0 + 1.0 + 0.0)).abs() < 1e-12);
    assert!((bits["a"].max_bits - 8.0).abs() < 1e-12);
    assert!((bits["b"].bits - 1.0).abs() < 1e-12 && (bits["b"].max_bits - 2.0).abs() < 1e-12);
}

#[test]
fn probe_prompts_are_the_canonical_fact_sentences_cut_before_the_object() {
    assert_eq!(
        probe_prompt("Ann Lee", "birth_year", "1987"),
        Some(("Ann Lee was born in the year".to_string(), " 1987.".to_string()))
    );
    assert_eq!(probe_prompt("Hovor", "country", "Elbia"), None);
    let w = world::World::generate(&world::WorldConfig { seed: 2, people: 24, ..Default::default() }).unwrap();
    let corpus = w.corpus(5).unwrap();
    let mut probed = 0;
    for fact in w.facts() {
        if let Some((prompt, continuation)) = probe_prompt(&fact.subject, &fact.relation, &fact.object) {
            let sentence = format!("{prompt}{continuation}");
            assert_eq!(sentence, world::fact_sentence(&fact));
            assert!(corpus.contains(&sentence), "the probed sentence `{sentence}` is not in the corpus");
            probed += 1;
        }
    }
    assert_eq!(probed, 24 * 6);
}
