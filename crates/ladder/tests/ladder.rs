//! The ladder end to end on the `smoke` preset: every rung runs and reports, the knowledge hash
//! never changes, the corpus hash changes only where rendering is the lever, a rerun reuses
//! finished rungs, and bad input fails before any work.

use std::path::Path;

use ladder::{run, LadderOptions};
use report::LadderReport;

fn opts(out: &Path) -> LadderOptions {
    LadderOptions {
        preset: "smoke".into(),
        seed: 1,
        out: out.to_path_buf(),
        fresh: false,
        quiet: true,
        kb: None,
        threads: 0,
        overrides: Vec::new(),
        until: None,
        only: Vec::new(),
    }
}

#[test]
fn smoke_ladder_reports_every_rung_and_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let r = run(&opts(dir.path()), &mut |row| seen.push(row.name.clone())).unwrap();
    let names: Vec<&str> = r.rungs.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "baseline",
            "augmentation",
            "architecture",
            "schedule",
            "optimizer",
            "moe",
            "scale",
            "cot-sft",
            "curriculum",
            "self-consistency",
            "best-of-n",
            "best-of-n-rm",
            "rft",
            "dpo",
            "grpo",
            "distill",
            "reflection",
            "tools",
            "retrieval"
        ]
    );
    assert_eq!(seen, names);

    // The knowledge is identical on every rung; the corpus changes only with the rendering.
    for rung in &r.rungs {
        assert_eq!(rung.knowledge_sha256, r.world.knowledge_sha256, "{}", rung.name);
        // Test-time rungs train nothing; so does a preference rung with no pairs (the smoke
        // model's samples are all wrong).
        let trains = !rung.extra.contains_key("samples")
            && !rung.extra.contains_key("not_trained")
            && rung.extra.get("examples_trained").is_none_or(|n| n.as_u64() != Some(0));
        assert!(!trains || rung.train_tokens > 0 && rung.flops > 0.0, "{}", rung.name);
        assert!(rung.seconds > 0.0, "{}", rung.name);
        for f in ["recall", "two_hop", "three_hop", "compare", "arithmetic", "parity", "inverse"] {
            let a = rung.accuracy.get(f).copied().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&a), "{}: {f} accuracy {a}", rung.name);
        }
        assert!(!rung.reused);
    }
    assert_eq!(r.rungs[0].corpus_sha256, r.world.corpus_sha256, "the baseline trains on one rendering");
    assert_ne!(r.rungs[1].corpus_sha256, r.rungs[0].corpus_sha256, "augmentation changes the rendering");
    for i in 2..r.rungs.len() {
        assert_eq!(r.rungs[i].corpus_sha256, r.rungs[1].corpus_sha256, "{} keeps the rendering", r.rungs[i].name);
    }
    assert_eq!(r.rungs[7].answer_mode, "trace");
    assert!(r.rungs[11].extra.contains_key("reward_model"), "{:?}", r.rungs[11].extra);
    // The test-time rungs sample once and share the draws.
    assert!(!r.rungs[9].extra.contains_key("draws_from_cache"));
    assert_eq!(r.rungs[10].extra["draws_from_cache"], true);
    assert_eq!(r.rungs[11].extra["draws_from_cache"], true);
    assert_eq!(r.rungs[10].extra["pass_at_4"], r.rungs[9].extra["pass_at_4"]);
    assert!(r.rungs[7].extra.contains_key("trace_all_steps_true"));
    // The test-time rungs train nothing and account for the tokens they generate.
    for rung in &r.rungs[9..12] {
        assert_eq!(rung.train_tokens, 0, "{}", rung.name);
        let per_q = rung.extra["tokens_per_question"].as_f64().unwrap();
        assert!(per_q > 4.0 * 1.0, "{}: {per_q} tokens per question for 4 samples", rung.name);
        let (p1, pk) = (rung.extra["pass_at_1"].as_f64().unwrap(), rung.extra["pass_at_4"].as_f64().unwrap());
        assert!(p1 <= pk + 1e-12, "{}: pass@1 {p1} > pass@4 {pk}", rung.name);
    }
    // The tools rung answers in tools mode (that a fine-tuned model calls tools is tested in
    // crates/train/tests/reward_tools.rs; the smoke model is too small to learn it); the
    // retrieval rung reports how often its passages name the people asked about, and its index
    // is on disk.
    let rft = &r.rungs[12];
    assert!(rft.extra.contains_key("yield_per_round"), "{:?}", rft.extra);
    let dpo = &r.rungs[13];
    assert!(dpo.extra.contains_key("pairs") && dpo.extra.contains_key("train_samples_correct"), "{:?}", dpo.extra);
    let grpo = &r.rungs[14];
    let (p1, pk) = (grpo.extra["pass_at_1"].as_f64().unwrap(), grpo.extra["pass_at_4"].as_f64().unwrap());
    assert!(p1 <= pk + 1e-12 && grpo.extra.contains_key("start_pass_at_4"), "{:?}", grpo.extra);
    assert_eq!(grpo.extra["start_pass_at_4"], r.rungs[9].extra["pass_at_4"], "the same draws as self-consistency");
    assert!(grpo.extra["train_questions"]["n"].as_u64().unwrap() > 0, "{:?}", grpo.extra);
    let distill = &r.rungs[15];
    let ratio = distill.extra["param_ratio"].as_f64().unwrap();
    assert!(ratio <= 0.5 && distill.params * 2 <= r.rungs[7].params, "student/teacher parameters {ratio}");
    assert!(distill.extra["student_sft_gold"]["all"].is_number(), "{:?}", distill.extra);
    assert!(dir.path().join("rungs/15-distill/student-sft").is_dir());
    let tools = &r.rungs[17];
    assert_eq!(tools.answer_mode, "tools");
    assert!(tools.extra.contains_key("tool_calls_per_question"), "{:?}", tools.extra);
    assert!(tools.extra.contains_key("arithmetic_by_answer_digits"));
    let rag = &r.rungs[18];
    let found = rag.extra["retrieved_all_people"].as_f64().unwrap();
    assert!(found > 0.5, "retrieval found every person asked about in only {found} of questions");
    assert!(dir.path().join("world/index/meta.json").is_file());
    let text = std::fs::read_to_string(dir.path().join("data/sft-reflection.jsonl")).unwrap();
    assert!(text.contains(train::eval::RETRACTION) && text.contains("\"forced\""));
    let text = std::fs::read_to_string(dir.path().join("data/sft-tools-fictional2.jsonl")).unwrap();
    assert!(text.contains("<|tool_result|>") && text.contains("\"forced\""));

    // The levers compared with `schedule` and `cot-sft` at two seeds (the smoke preset's).
    let optimizer = &r.rungs[4];
    assert_eq!(optimizer.extra["proxy"].as_array().map(Vec::len), Some(4 * 2), "{:?}", optimizer.extra);
    let chosen = optimizer.extra["chosen"]["optimizer"].as_str().unwrap();
    assert!(["lion", "muon", "sophia"].contains(&chosen), "{chosen}");
    assert!(optimizer.model.contains(chosen), "{}", optimizer.model);
    let moe = &r.rungs[5];
    assert!(moe.extra["active_params"].as_u64().unwrap() < moe.params as u64, "{:?}", moe.extra);
    assert!(moe.extra["routing"]["max_over_mean"].as_f64().unwrap() >= 1.0, "{:?}", moe.extra);
    assert!(r.rungs[6].params > r.rungs[3].params, "scale is a larger model");
    for (i, reference) in [(4, "schedule"), (5, "schedule"), (6, "schedule"), (8, "cot-sft")] {
        let g = &r.rungs[i];
        let s = g.seeds.as_ref().unwrap_or_else(|| panic!("{} has no seeds", g.name));
        assert_eq!(s.seeds, [0, 1], "{}", g.name);
        assert_eq!(s.mean_accuracy.len(), 2, "{}", g.name);
        assert_eq!(s.mean_accuracy[0], g.mean_accuracy, "{}: seed 0 is the rung itself", g.name);
        assert_eq!(s.reference.as_deref(), Some(reference), "{}", g.name);
        assert_eq!(s.reference_mean_accuracy.len(), 2, "{}", g.name);
        assert_eq!(g.extra["vs"]["rung"], reference, "{}", g.name);
    }
    // The reference's replicate is trained once and shared by the rungs compared with it.
    let sched = r.rungs[4].seeds.as_ref().unwrap().reference_mean_accuracy.clone();
    assert_eq!(r.rungs[5].seeds.as_ref().unwrap().reference_mean_accuracy, sched);
    for d in [
        "rungs/03-schedule/seed-1",
        "rungs/04-optimizer/seed-1",
        "rungs/07-cot-sft/seed-1",
        "rungs/08-curriculum/seed-1",
    ] {
        assert!(dir.path().join(d).join("result.json").is_file(), "{d}");
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("Over seeds") && md.contains("compared with"), "the report shows the seeds");

    // Files: the report in three forms, the world, the decontamination proof.
    for f in
        ["report.json", "report.md", "report.html", "world/kb.jsonl", "world/tokenizer.json", "decontamination.json"]
    {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    assert_eq!(LadderReport::from_json(&json).unwrap(), r);
    let decon: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("decontamination.json")).unwrap()).unwrap();
    assert_eq!(decon["hits"].as_array().map(Vec::len), Some(0));
    let kb = std::fs::read(dir.path().join("world/kb.jsonl")).unwrap();
    assert_eq!(world::sha256_hex(&kb), r.world.knowledge_sha256);

    // A rerun reuses every rung with the same numbers.
    let again = run(&opts(dir.path()), &mut |_| {}).unwrap();
    assert!(again.rungs.iter().all(|x| x.reused), "every finished rung is reused");
    for (a, b) in r.rungs.iter().zip(&again.rungs) {
        assert_eq!(a.accuracy, b.accuracy, "{}", a.name);
    }

    // The output folder can move: checkpoints are found relative to each rung.
    let moved = dir.path().join("moved");
    std::fs::create_dir(&moved).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p != moved {
            std::fs::rename(&p, moved.join(p.file_name().unwrap())).unwrap();
        }
    }
    let after_move = run(&opts(&moved), &mut |_| {}).unwrap();
    assert!(after_move.rungs.iter().all(|x| x.reused), "a moved output folder is still reused");
    for entry in std::fs::read_dir(&moved).unwrap() {
        let p = entry.unwrap().path();
        std::fs::rename(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }

    // A changed rung reruns, with those after it (the SFT rung builds on `schedule`); earlier
    // rungs are still reused.
    let mut o = opts(dir.path());
    o.overrides = vec!["tuned_lr=0.005".into()];
    let changed = run(&o, &mut |_| {}).unwrap();
    let reused: Vec<bool> = changed.rungs.iter().map(|x| x.reused).collect();
    assert_eq!(reused, [[true; 3].as_slice(), &[false; 16]].concat());

    // A curriculum for the reasoning fine-tune (examples from fewer hops to more) reruns that
    // rung only.
    let mut o = opts(dir.path());
    o.overrides = vec![r#"sft.curriculum={"start":0.5,"ramp":0.5}"#.into()];
    o.only = vec!["cot-sft".into()];
    let c = run(&o, &mut |_| {}).unwrap();
    assert_eq!(c.rungs.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["schedule", "cot-sft"]);
    assert!(run(&o, &mut |_| {}).unwrap().rungs.iter().all(|x| x.reused));
    o.overrides.clear();
    let plain = run(&o, &mut |_| {}).unwrap();
    assert_eq!(plain.rungs.iter().map(|x| x.reused).collect::<Vec<_>>(), [true, false], "the curriculum is in the key");

    // `only` runs the named rungs and what they build on, nothing else.
    let mut o = opts(dir.path());
    o.only = vec!["best-of-n".into()];
    let only: Vec<String> = run(&o, &mut |_| {}).unwrap().rungs.into_iter().map(|x| x.name).collect();
    assert_eq!(only, ["schedule", "cot-sft", "best-of-n"]);
}

#[test]
fn bad_input_fails_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(&dir.path().join("a"));
    o.preset = "huge".into();
    let e = run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("huge") && e.contains("smoke"), "{e}");
    assert!(!dir.path().join("a/rungs").exists());

    let mut o = opts(&dir.path().join("b"));
    o.overrides = vec!["stepz=3".into()];
    let e = run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("stepz"), "{e}");
    o.overrides = vec!["grpo.stepz=3".into()];
    let e = run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("stepz"), "{e}");
    // An option left out of the written preset at its default can still be set.
    let p = ladder::Preset::named("smoke").unwrap().with_overrides(&["grpo.dynamic_sampling=true".into()]).unwrap();
    assert!(p.grpo.dynamic_sampling);

    let mut o = opts(&dir.path().join("b2"));
    o.only = vec!["nope".into()];
    let e = run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("--only nope") && e.contains("baseline"), "{e}");

    let kb = dir.path().join("kb.jsonl");
    std::fs::write(&kb, "{\"subject\": \"A\", \"relation\": \"r\", \"object\": \"B\"}\nnot json\n").unwrap();
    let mut o = opts(&dir.path().join("c"));
    o.kb = Some(kb.clone());
    let e = run(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("kb.jsonl"), "{e}");
    assert!(!dir.path().join("c/rungs").exists());

    // An output path that cannot be a folder.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let e = run(&opts(&file.join("out")), &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("output folder"), "{e}");
}
