//! The `ascent` binary: bad input fails before any work, naming what and where.

use std::process::Command;

fn ascent(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ascent")).args(args).output().expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn bad_configs_fail_before_work_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[train]\nstepz = 10\n", "stepz"),
        ("[model]\nd_model = 100\nn_heads = 3\n", "model.n_heads"),
        ("[model]\nn_heads = 4\nn_kv_heads = 3\n", "model.n_kv_heads"),
        ("[data]\ncorpus = \"/no/such/corpus.txt\"\n", "data.corpus"),
        ("[optim]\nlr = -1.0\n", "optim.lr"),
        ("seed = \"seven\"\n", "seed"),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out_dir = dir.path().join(format!("run{i}"));
        let (ok, msg) = ascent(&["pretrain", "--config", path.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
        assert!(!ok, "{text} should fail");
        assert!(msg.contains(field), "error for {text:?} should name {field}: {msg}");
        assert!(!out_dir.join("checkpoints").exists(), "no work may start on a bad config");
    }
    let (ok, msg) = ascent(&["pretrain", "--config", "/no/such/recipe.toml"]);
    assert!(!ok && msg.contains("/no/such/recipe.toml"), "{msg}");
}

#[test]
fn print_config_and_info() {
    let (ok, toml) = ascent(&["pretrain", "--print-config"]);
    assert!(ok && toml.contains("[model]") && toml.contains("preset = \"llama\""), "{toml}");
    for preset in ["llama", "gpt2"] {
        let (ok, msg) = ascent(&["info", "--preset", preset]);
        assert!(ok && msg.contains("parameters:") && msg.contains("FLOPs per token"), "{msg}");
    }
}

#[test]
fn world_is_written_and_identical_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let (ok, msg) = ascent(&["world", "--seed", "3", "--people", "40", "--out", out.to_str().unwrap()]);
        assert!(ok && msg.contains(": 0 hits"), "{msg}");
    }
    for f in
        ["corpus.txt", "kb.jsonl", "tasks/train.jsonl", "tasks/heldout.jsonl", "world.json", "decontamination.json"]
    {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn ladder_and_eval_refuse_bad_input_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ladder");
    let (ok, msg) = ascent(&["ladder", "--preset", "enormous", "--out", out.to_str().unwrap()]);
    assert!(!ok && msg.contains("enormous") && msg.contains("smoke, default, large"), "{msg}");
    assert!(!out.join("rungs").exists() && !out.join("world").exists(), "no work may start");
    let (ok, msg) = ascent(&["ladder", "--preset", "smoke", "--until", "nope", "--out", out.to_str().unwrap()]);
    assert!(!ok && msg.contains("--until nope"), "{msg}");
    let tasks = dir.path().join("tasks.jsonl");
    std::fs::write(&tasks, "").unwrap();
    let (ok, msg) = ascent(&["eval", "--checkpoint", "/no/such/run", "--tasks", tasks.to_str().unwrap()]);
    assert!(!ok && msg.contains("no tasks"), "{msg}");
    std::fs::write(&tasks, "{\"id\":\"x\"}\n").unwrap();
    let (ok, msg) = ascent(&["eval", "--checkpoint", "/no/such/run", "--tasks", tasks.to_str().unwrap()]);
    assert!(!ok && msg.contains(":1:"), "{msg}");
    let (ok, msg) =
        ascent(&["eval", "--checkpoint", "/no/such/run", "--tasks", tasks.to_str().unwrap(), "--mode", "x"]);
    assert!(!ok && msg.contains("unknown answer mode"), "{msg}");
}

/// Imported models on the command line: a Hugging Face folder generates; exported as GGUF (Q8_0)
/// and as a Hugging Face folder, each reads back and generates the same greedy tokens as before
/// (Q8_0 only where its rounding allows: the F32 folder exactly).
#[test]
fn import_export_and_generate_from_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/tests/golden/qwen2");
    let gen = |model: &str| {
        let (ok, out) = ascent(&[
            "generate",
            "--checkpoint",
            model,
            "--prompt",
            "Where was Ilona born?",
            "--chat",
            "--max-new",
            "6",
            "--json",
        ]);
        assert!(ok, "{out}");
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        v["tokens"].clone()
    };
    let base = gen(golden.to_str().unwrap());
    assert!(base.as_array().is_some_and(|t| !t.is_empty()));

    let hf = dir.path().join("hf");
    let (ok, out) = ascent(&["export", "--checkpoint", golden.to_str().unwrap(), "--out", hf.to_str().unwrap()]);
    assert!(ok && out.contains("wrote"), "{out}");
    assert_eq!(gen(hf.to_str().unwrap()), base, "a Hugging Face export generates as the original");
    let (ok, out) = ascent(&["export", "--checkpoint", golden.to_str().unwrap(), "--out", hf.to_str().unwrap()]);
    assert!(!ok && out.contains("already exists"), "{out}");

    let gg = dir.path().join("m.gguf");
    let (ok, out) = ascent(&[
        "export",
        "--checkpoint",
        golden.to_str().unwrap(),
        "--out",
        gg.to_str().unwrap(),
        "--format",
        "gguf",
    ]);
    assert!(ok && out.contains("Q8_0"), "{out}");
    assert!(gen(gg.to_str().unwrap()).as_array().is_some_and(|t| !t.is_empty()));
    let (ok, out) = ascent(&[
        "export",
        "--checkpoint",
        golden.to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
        "--format",
        "gguf",
        "--quant",
        "q3_k",
    ]);
    assert!(!ok && out.contains("--quant"), "{out}");
}
