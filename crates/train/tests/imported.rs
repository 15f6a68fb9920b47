//! Imported models (a Hugging Face folder and a GGUF file written by transformers / gguf-py,
//! crates/interop/tests/golden) go through the stages like the project's own checkpoints:
//! completion and chat with their own template and end-of-sequence ids, and supervised
//! fine-tuning that teaches them a reply, saved as a checkpoint that keeps their tokenizer.

use std::path::PathBuf;

use model::engine::{self, Backend};
use tokenizer::{Message, Role};
use train::infer::{complete, ChatSession, CompleteOptions};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/tests/golden").join(name)
}

#[test]
fn hf_folder_and_gguf_file_complete_and_chat() {
    let device = engine::device(Backend::Cpu).unwrap();
    for path in [golden("qwen2"), golden("llama.gguf"), golden("qwen3"), golden("qwen3.gguf")] {
        let (m, tok, cfg) = train::eval::load_for_inference(&path, &device).unwrap();
        assert!(tok.is_foreign());
        assert_eq!(tok.end_ids(), vec![2], "{}: <|im_end|> ends a turn", path.display());
        assert!(tok.vocab_size() <= cfg.vocab_size, "the model's vocabulary covers the tokenizer's ids");
        let prompt = tok.render_chat(&[Message::new(Role::User, "Where was Ilona born?")], true).unwrap();
        assert_eq!(prompt, "<|im_start|>user\nWhere was Ilona born?<|im_end|>\n<|im_start|>assistant\n");
        let opts = CompleteOptions { max_new: 6, n: 2, ..Default::default() };
        let outs = complete(&m, &tok, &prompt, &opts, &|_, _| {}, &device).unwrap();
        assert_eq!(outs.len(), 2);
        assert!(outs.iter().all(|c| !c.tokens.is_empty() && c.tokens.len() <= 6));
        let mut chat = ChatSession::new(Some("Be brief."));
        let c = chat.reply(&m, &tok, "Hello", &CompleteOptions { max_new: 4, ..Default::default() }, &|_| {}, &device);
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(chat.messages.len(), 3);
    }
}

/// SFT from a Hugging Face folder: the model learns to answer one question with one reply, in
/// its own chat format, and the checkpoint it writes keeps the imported tokenizer and template.
#[test]
fn sft_teaches_an_imported_model_and_keeps_its_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chat.jsonl");
    let line = serde_json::json!({"messages": [
        {"role": "user", "content": "Where was Ilona born?"},
        {"role": "assistant", "content": "Lormet, in 1948."}]});
    let sum = serde_json::json!({"messages": [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "2 + 3 = 5\n#### 5"}]});
    std::fs::write(&data, format!("{line}\n{sum}\n")).unwrap();
    // The same question as a GSM8K-style task file, graded by the numeric verifier.
    let tasks_path = dir.path().join("gsm.jsonl");
    std::fs::write(&tasks_path, "{\"question\": \"What is 2 + 3?\", \"answer\": \"2 + 3 = 5\\n#### 5\"}\n").unwrap();
    let tasks = train::qa::read_qa_tasks(&tasks_path, train::qa::QaVerifier::Numeric).unwrap();
    let device = engine::device(Backend::Cpu).unwrap();
    let (m0, tok0, _) = train::eval::load_for_inference(&golden("qwen2"), &device).unwrap();
    let before = train::qa::evaluate_qa(&m0, &tok0, &tasks, 12, &device).unwrap();
    let examples = train::sftdata::examples_from_jsonl(&std::fs::read_to_string(&data).unwrap(), "chat.jsonl").unwrap();
    let cfg = train::sft::SftConfig {
        steps: 40,
        batch_size: 2,
        warmup_steps: 2,
        replay_fraction: 0.0,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..Default::default()
    };
    let out = dir.path().join("sft");
    let s = train::sft::sft(&golden("qwen2"), &examples, &[], &cfg, &out, false).unwrap();
    assert_eq!(examples.len(), 2);
    assert!(s.last_loss < 0.2 * s.first_loss, "loss {} -> {}", s.first_loss, s.last_loss);
    assert!(s.checkpoint.join("tokenizer_config.json").is_file());

    let (m, tok, _) = train::eval::load_for_inference(&s.checkpoint, &device).unwrap();
    assert!(tok.is_foreign() && tok.chat_template().is_some());
    let prompt = tok.render_chat(&[Message::new(Role::User, "Where was Ilona born?")], true).unwrap();
    let out = complete(&m, &tok, &prompt, &CompleteOptions { max_new: 16, ..Default::default() }, &|_, _| {}, &device)
        .unwrap();
    assert_eq!(out[0].text, "Lormet, in 1948.", "greedy reply after fine-tuning");
    assert_eq!(out[0].finish, model::generate::Finish::Stop, "stopped at <|im_end|>");
    let after = train::qa::evaluate_qa(&m, &tok, &tasks, 12, &device).unwrap();
    assert_eq!((before.correct, after.correct), (0, 1), "before: {:?}, after: {:?}", before.items, after.items);
    assert_eq!(after.items[0].predicted.as_deref(), Some("5"));
}

/// DPO from a GGUF file: the chosen answer's margin over the rejected one rises, with the GGUF's
/// own model as the frozen reference, and the checkpoint keeps the imported tokenizer.
#[test]
fn dpo_from_a_gguf_file_raises_the_margin() {
    use train::prefs::{margins, prefs, Pair, PrefConfig};
    let dir = tempfile::tempdir().unwrap();
    let gguf = golden("qwen2.gguf");
    let pair = |q: &str, good: &str, bad: &str| Pair {
        prompt: format!("<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"),
        chosen: format!("{good}<|im_end|>"),
        rejected: format!("{bad}<|im_end|>"),
        chosen_forced: Vec::new(),
        rejected_forced: Vec::new(),
    };
    let pairs = [pair("Where was Ilona born?", "Lormet", "1948"), pair("When was Ilona born?", "1948", "Lormet")];
    let device = engine::device(Backend::Cpu).unwrap();
    let (m0, tok, _) = train::eval::load_for_inference(&gguf, &device).unwrap();
    let before: f64 = margins(&m0, &tok, &pairs, &device).unwrap().iter().sum();
    let cfg = PrefConfig {
        steps: 12,
        batch_size: 2,
        warmup_steps: 1,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..Default::default()
    };
    let opts = train::pretrain::RunOptions { quiet: true, ..Default::default() };
    let s = prefs(&gguf, None, &pairs, &cfg, &dir.path().join("dpo"), &opts).unwrap();
    assert!(s.checkpoint.join("tokenizer_config.json").is_file());
    let (m1, tok1, _) = train::eval::load_for_inference(&s.checkpoint, &device).unwrap();
    assert!(tok1.is_foreign());
    let after: f64 = margins(&m1, &tok1, &pairs, &device).unwrap().iter().sum();
    assert!(after > before + 2.0, "summed margin {before:.2} -> {after:.2}");
}

/// GRPO and distillation take imported models too: GRPO from a Hugging Face folder on a world's
/// questions, distillation from the Qwen2 folder into the Mistral folder (the same tokenizer);
/// each runs and writes a checkpoint that keeps the imported tokenizer.
#[test]
fn grpo_and_distill_take_imported_models() {
    let dir = tempfile::tempdir().unwrap();
    let w = world::World::generate(&world::WorldConfig { seed: 5, people: 16, ..Default::default() }).unwrap();
    let tasks: Vec<world::Task> = w.tasks_in(world::Split::Train).into_iter().take(8).collect();
    let cfg = train::grpo::GrpoConfig {
        steps: 2,
        questions: 2,
        group: 2,
        max_new: Some(6),
        warmup_steps: 1,
        dynamic_sampling: false,
        ..Default::default()
    };
    let opts = train::pretrain::RunOptions { quiet: true, ..Default::default() };
    let out = dir.path().join("grpo");
    let g = train::grpo::grpo(&golden("qwen2"), None, &tasks, train::eval::AnswerMode::Trace, None, &cfg, &out, &opts)
        .unwrap();
    assert_eq!(g.metrics.len(), 2);
    assert!(train::checkpoint::latest(&out).unwrap().join("tokenizer_config.json").is_file());

    let examples = [train::sft::Example::new("Where was Ilona born?", " Lormet")];
    let dcfg = train::distill::DistillConfig { steps: 3, batch_size: 1, warmup_steps: 1, ..Default::default() };
    let d = train::distill::distill(&golden("qwen2"), &golden("mistral"), &examples, &[], &dcfg, &dir.path().join("d"))
        .unwrap();
    assert!(d.checkpoint.join("tokenizer_config.json").is_file());
}

/// SFT from a SentencePiece GGUF (Llama 2's tokenizer kind and chat format): the conversation is
/// encoded whole, so the reply's first piece is the `▁In` a prompt is followed by at inference
/// (encoding the reply on its own would prefix it with a second space), the prompt starts with
/// one `<s>`, and the taught reply comes back stopping at `</s>`.
#[test]
fn sft_from_a_sentencepiece_gguf_teaches_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = golden("spm.gguf");
    let device = engine::device(Backend::Cpu).unwrap();
    let (_, tok, _) = train::eval::load_for_inference(&gguf, &device).unwrap();
    let messages = vec![
        ("user".to_string(), "Where was Ilona born?".to_string()),
        ("assistant".to_string(), "In Lormet, 1948.".to_string()),
    ];
    let example = train::sft::Example { messages: Some(messages), ..Default::default() };
    let (ids, trained) = example.tokens(&tok).unwrap();
    let prompt = tok.render_chat(&[Message::new(Role::User, "Where was Ilona born?")], true).unwrap();
    assert_eq!(prompt, "<s>[INST] Where was Ilona born? [/INST]");
    let prompt_ids = tok.encode_prompt(&prompt);
    assert_eq!(prompt_ids.iter().filter(|&&i| i == 1).count(), 1, "one <s>");
    let n = prompt_ids.len();
    assert_eq!(&ids[..n], &prompt_ids[..], "the row starts with the prompt as inference encodes it");
    assert!(trained[..n].iter().all(|t| !t) && trained[n..].iter().all(|&t| t), "{trained:?}");
    assert_eq!(tok.id_to_token(ids[n]).as_deref(), Some("\u{2581}In"), "one space before the reply");
    assert_eq!(ids.last(), Some(&2), "the template's </s> ends the turn and is trained");

    let cfg = train::sft::SftConfig {
        steps: 40,
        batch_size: 1,
        warmup_steps: 2,
        replay_fraction: 0.0,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..Default::default()
    };
    let s = train::sft::sft(&gguf, &[example], &[], &cfg, &dir.path().join("sft"), false).unwrap();
    assert!(s.last_loss < 0.2 * s.first_loss, "loss {} -> {}", s.first_loss, s.last_loss);
    let (m, tok, _) = train::eval::load_for_inference(&s.checkpoint, &device).unwrap();
    assert_eq!(tok.bos_prefix(), Some(1), "the checkpoint keeps add_bos_token");
    let out = complete(&m, &tok, &prompt, &CompleteOptions { max_new: 16, ..Default::default() }, &|_, _| {}, &device)
        .unwrap();
    assert_eq!(out[0].text, "In Lormet, 1948.", "greedy reply after fine-tuning");
    assert_eq!(out[0].finish, model::generate::Finish::Stop, "stopped at </s>");
}
