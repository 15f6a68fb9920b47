//! Pretraining end to end on the built-in corpus: it learns, it resumes exactly, and it refuses
//! bad checkpoints and configs without touching existing data.

use std::path::Path;

use train::{pretrain, PretrainConfig, RunOptions};

fn tiny(out: &Path, preset: &str, steps: usize) -> PretrainConfig {
    let text = format!(
        r#"
        seed = 7
        out_dir = "{}"
        threads = 2
        [model]
        preset = "{preset}"
        d_model = 48
        n_layers = 2
        n_heads = 4
        [data]
        vocab_size = 320
        [optim]
        lr = 4e-3
        [schedule]
        warmup_steps = 5
        [train]
        steps = {steps}
        batch_size = 8
        seq_len = 48
        eval_every = 0
        eval_batches = 4
        checkpoint_every = 0
        log_every = 5
        "#,
        out.display()
    );
    PretrainConfig::from_toml(&text).unwrap()
}

fn quiet() -> RunOptions {
    RunOptions { quiet: true, ..Default::default() }
}

#[test]
fn both_presets_lower_validation_loss_well_below_the_start() {
    for preset in ["llama", "gpt2"] {
        let dir = tempfile::tempdir().unwrap();
        let s = pretrain(&tiny(dir.path(), preset, 120), &quiet()).unwrap();
        let (first, last) = (s.val_losses.first().unwrap().1, s.val_losses.last().unwrap().1);
        // Untrained ≈ ln(320) ≈ 5.8; the built-in corpus is highly regular.
        assert!(first > 5.0, "{preset}: initial validation loss {first} should be near ln(vocab)");
        assert!(last < 0.55 * first, "{preset}: validation loss only fell from {first} to {last}");
        let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        assert!(metrics.lines().count() >= 120 / 5, "metrics.jsonl has a line per logged step");
        assert!(dir.path().join("checkpoints/step-000120/model.safetensors").is_file());
    }
}

#[test]
fn a_killed_run_resumes_with_identical_losses() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut cfg_a = tiny(a.path(), "llama", 16);
    cfg_a.train.checkpoint_every = 6;
    cfg_a.train.grad_accum = 2;
    let mut cfg_b = cfg_a.clone();
    cfg_b.out_dir = b.path().to_path_buf();

    let full = pretrain(&cfg_a, &quiet()).unwrap();
    // "Killed" after step 9: the last checkpoint is step 6, so steps 7..9 are lost and redone.
    let first = pretrain(&cfg_b, &RunOptions { stop_after: Some(9), ..quiet() }).unwrap();
    assert_eq!(first.steps_done, 9);
    let resumed = pretrain(&cfg_b, &RunOptions { resume: true, ..quiet() }).unwrap();
    assert_eq!(resumed.start_step, 6);
    assert_eq!(resumed.steps_done, 16);
    // The run's time carries the time of the process that wrote the checkpoint it resumed.
    assert!(resumed.total_seconds > resumed.seconds, "{} vs {}", resumed.total_seconds, resumed.seconds);
    assert!(first.total_seconds == first.seconds);
    for (step, loss) in &resumed.train_losses {
        let (_, want) = full.train_losses.iter().find(|(s, _)| s == step).unwrap();
        assert_eq!(loss.to_bits(), want.to_bits(), "step {step}: resumed loss {loss} vs uninterrupted {want}");
    }
    assert_eq!(resumed.val_losses.last().unwrap().1.to_bits(), full.val_losses.last().unwrap().1.to_bits());
    // metrics.jsonl: the lost steps 7..9 were dropped, not duplicated.
    let steps: Vec<u64> = std::fs::read_to_string(b.path().join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"train\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![5, 10, 15, 16]);
}

#[test]
fn truncated_corrupt_or_mismatched_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(dir.path(), "llama", 4);
    cfg.schedule.warmup_steps = 1;
    pretrain(&cfg, &quiet()).unwrap();
    let ck = dir.path().join("checkpoints/step-000004");

    // Starting afresh over an existing run is refused (nothing is overwritten).
    let e = pretrain(&cfg, &quiet()).unwrap_err().to_string();
    assert!(e.contains("--resume"), "{e}");

    // A different architecture.
    let mut wider = cfg.clone();
    wider.model.d_model = 64;
    let e = pretrain(&wider, &RunOptions { resume: true, ..quiet() }).unwrap_err().to_string();
    assert!(e.contains("another architecture"), "{e}");

    // A truncated weights file.
    let w = ck.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() - 100]).unwrap();
    let e = pretrain(&cfg, &RunOptions { resume: true, ..quiet() }).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("truncated"), "{e}");
    std::fs::write(&w, &bytes).unwrap();

    // A corrupted byte in the optimiser state.
    let o = ck.join("optimizer.bpk");
    let mut ob = std::fs::read(&o).unwrap();
    let mid = ob.len() / 2;
    ob[mid] ^= 0xff;
    std::fs::write(&o, &ob).unwrap();
    let e = pretrain(&cfg, &RunOptions { resume: true, ..quiet() }).unwrap_err().to_string();
    assert!(e.contains("optimizer.bpk") && e.contains("SHA-256"), "{e}");

    // A truncated state.json.
    std::fs::write(ck.join("state.json"), "{\"format_version\": 1, \"st").unwrap();
    let e = pretrain(&cfg, &RunOptions { resume: true, ..quiet() }).unwrap_err().to_string();
    assert!(e.contains("state.json"), "{e}");
    // None of this deleted the checkpoint's files.
    assert!(w.is_file() && o.is_file());

    // --fresh starts over explicitly.
    let s = pretrain(&cfg, &RunOptions { fresh: true, ..quiet() }).unwrap();
    assert_eq!((s.start_step, s.steps_done), (0, 4));
}

#[test]
fn a_missing_config_file_is_named() {
    let e = PretrainConfig::from_file(Path::new("/no/such/recipe.toml")).unwrap_err().to_string();
    assert!(e.contains("/no/such/recipe.toml"), "{e}");
}

#[test]
fn mixtures_of_experts_and_latent_attention_pretrain_and_log_their_routing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(dir.path(), "llama", 80);
    cfg.model.moe = Some(model::MoeConfig {
        experts: 4,
        top_k: 2,
        d_expert: 0,
        shared_expert: true,
        normalize_gates: false,
        aux_loss_coef: 0.01,
        bias_update_rate: 0.01,
        capacity_factor: 1.25,
    });
    cfg.model.mla = Some(model::MlaConfig { kv_rank: 16, rope_dim: 8 });
    let s = pretrain(&cfg, &quiet()).unwrap();
    let (first, last) = (s.val_losses.first().unwrap().1, s.val_losses.last().unwrap().1);
    assert!(last < 0.6 * first, "validation loss only fell from {first} to {last}");
    assert!(s.model.param_count().active < s.model.param_count().total);
    // Every train line of metrics.jsonl carries the window's routing.
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let train: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["kind"] == "train")
        .collect();
    assert_eq!(train.len(), 80 / 5);
    for v in &train {
        let m = &v["moe"];
        let (load, dropped, aux) =
            (m["max_over_mean"].as_f64().unwrap(), m["dropped"].as_f64().unwrap(), m["aux"].as_f64().unwrap());
        assert!((1.0..=4.0).contains(&load) && (0.0..0.5).contains(&dropped) && aux >= 0.99, "{m}");
    }
    // The balancing biases moved and were checkpointed with the weights.
    let device = model::engine::device(model::engine::Backend::Cpu).unwrap();
    let (m, _, _) = train::eval::load_for_inference(&dir.path().join("checkpoints/step-000080"), &device).unwrap();
    let bias = m.layers[0].moe.as_ref().unwrap().score_bias.as_ref().unwrap().val();
    let moved = bias.try_into_vec_as::<f32>().unwrap().iter().any(|&b| b != 0.0);
    assert!(moved, "the auxiliary-loss-free bias stayed at zero");
}
