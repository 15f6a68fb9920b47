//! What the server tests share: a tokenizer trained on a few chat texts, a tiny random-weight
//! model saved as a checkpoint (a real model: it generates real tokens), servers started on
//! an ephemeral loopback port, and a small HTTP client (ureq) with a server-sent-events reader.
#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use model::engine::{self, Backend};
use model::{weights, ModelConfig, Transformer};
use serde_json::Value;
use serve::prompt::{self, ChatMessage, Role, ToolSpec};
use serve::{ServeArgs, Server};
use tokenizer::Tokenizer;
use train::checkpoint::{self, Payload, TrainState};
use train::data::SamplerState;
use train::sft::{Example, SftConfig};

/// The conversations [`trained_checkpoint`] learns: a question answered with a tool call...
pub const QUESTION: &str = "What is 2+3?";
pub const CALL: &str = "<|tool_call|>calc(2+3)<|/tool_call|>";
pub const RESULT: &str = "<|tool_result|> 5<|/tool_result|>\n";
pub const ANSWER: &str = "The answer is 5.";
/// ... and a greeting answered after a reasoning span.
pub const GREETING: &str = "Hello, who are you?";
pub const THOUGHT: &str = "A greeting: say who I am.";
pub const REPLY: &str = "I am a small model trained by ascent.";

/// Texts the test tokenizer is trained on: chat turns, tool calls, plain sentences.
fn tokenizer_texts() -> Vec<String> {
    let mut texts = vec![
        "<|system|>You can call these tools:\n- calc(expression): exact arithmetic<|end|>\n".to_string(),
        format!("<|user|>{QUESTION}<|end|>\n<|assistant|>{CALL}{RESULT}{ANSWER}<|end|>\n"),
        format!("<|user|>{GREETING}<|end|>\n<|assistant|><|think|>{THOUGHT}<|/think|>{REPLY}<|end|>\n"),
        "Question: Where was Ilona Varsk born?\nAnswer: Lormet".to_string(),
    ];
    for i in 0..40 {
        texts.push(format!(
            "The number {i} plus {} is {}. Tell me a story about the river and the hills.",
            i + 1,
            2 * i + 1
        ));
    }
    texts
}

/// The tokenizer of every test model (trained once per test binary).
pub fn tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        Tokenizer::train(tokenizer_texts().iter(), &tokenizer::TrainConfig { vocab_size: 360, ..Default::default() })
            .expect("train the test tokenizer")
    })
}

/// Context of the tiny test model.
pub const CONTEXT: usize = 256;

/// A random-weight model (width 64, 2 layers, context [`CONTEXT`]) saved as a checkpoint under `dir`.
pub fn random_checkpoint(dir: &Path) -> PathBuf {
    let tok = tokenizer();
    let cfg = ModelConfig::llama(tok.vocab_size(), 64, 2, 4, CONTEXT);
    let device = engine::device(Backend::Cpu).expect("cpu device");
    let m = Transformer::seeded(&cfg, &device, 3);
    let payload = Payload {
        model_safetensors: weights::to_safetensors(&m, &Default::default()),
        config_json: serde_json::json!({ "model": cfg }).to_string(),
        optimizer: Vec::new(),
        tokenizer_json: tok.to_json_string().expect("tokenizer json"),
        tokenizer_config_json: tok.config_json().map(str::to_string),
    };
    let state = TrainState {
        format_version: checkpoint::FORMAT_VERSION,
        step: 0,
        tokens_seen: 0,
        sampler: SamplerState { seed: 0, word_pos: 0 },
        val_loss: None,
        train_seconds: 0.0,
        files: Default::default(),
    };
    checkpoint::save(dir, &payload, state, 1).expect("save the test checkpoint")
}

/// The calc tool as a request declares it (and as the prompt lists it).
pub fn calc_spec() -> ToolSpec {
    ToolSpec {
        name: "calc".into(),
        description: "exact arithmetic".into(),
        params: vec!["expression".into()],
        ..Default::default()
    }
}

/// The prompt the server renders for [`QUESTION`] with the calc tool declared.
pub fn question_prompt() -> String {
    prompt::render(&[ChatMessage::new(Role::User, QUESTION)], &[calc_spec()]).expect("render")
}

/// A tiny model fine-tuned with the project's SFT on the two conversations above (once per
/// test binary, a few seconds): the tool call's result is a forced range, as the runtime
/// injects it.
pub fn trained_checkpoint() -> &'static Path {
    static CKPT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &CKPT
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let init = random_checkpoint(&dir.path().join("init"));
            let mut tool = Example::new(question_prompt(), format!("{CALL}{RESULT}{ANSWER}<|end|>"));
            tool.forced = vec![(CALL.len(), CALL.len() + RESULT.len())];
            let greeting_prompt = prompt::render(&[ChatMessage::new(Role::User, GREETING)], &[]).expect("render");
            let greeting = Example::new(greeting_prompt, format!("<|think|>{THOUGHT}<|/think|>{REPLY}<|end|>"));
            let cfg = SftConfig {
                steps: 150,
                batch_size: 4,
                replay_fraction: 0.0,
                warmup_steps: 5,
                optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
                ..Default::default()
            };
            let started = Instant::now();
            let s = train::sft::sft(&init, &[tool, greeting], &[], &cfg, &dir.path().join("sft"), true).expect("sft");
            println!(
                "fine-tuned in {:.1}s: loss {:.3} -> {:.3}",
                started.elapsed().as_secs_f64(),
                s.first_loss,
                s.last_loss
            );
            (dir, s.checkpoint)
        })
        .1
}

/// A server over `model` on 127.0.0.1, port 0, with extra flags.
pub fn start(model: &Path, extra: &[&str]) -> Server {
    let mut flags = vec!["--model".to_string(), model.display().to_string(), "--port".into(), "0".into()];
    flags.extend(extra.iter().map(|s| s.to_string()));
    let args = ServeArgs::from_flags(flags).expect("flags");
    Server::start(&args).expect("start the server")
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// `POST url` with a raw body: status and body text.
pub fn post_raw(agent: &ureq::Agent, url: &str, body: &str) -> (u16, String) {
    let mut r = agent.post(url).header("content-type", "application/json").send(body).expect("POST");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().expect("body"))
}

/// `POST url` with JSON: status and parsed JSON body.
pub fn post(agent: &ureq::Agent, url: &str, body: &Value) -> (u16, Value) {
    let (status, text) = post_raw(agent, url, &body.to_string());
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"));
    (status, v)
}

pub fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut r = agent.get(url).call().expect("GET");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().expect("body"))
}

/// A streamed response: the JSON of each `data:` event, whether `[DONE]` ended it, and the
/// time from sending to the first event carrying text.
pub struct Streamed {
    pub status: u16,
    pub content_type: String,
    pub events: Vec<Value>,
    pub done: bool,
    pub first_text: Option<Duration>,
}

pub fn post_stream(agent: &ureq::Agent, url: &str, body: &Value) -> Streamed {
    let started = Instant::now();
    let r = agent.post(url).header("content-type", "application/json").send(body.to_string()).expect("POST");
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let reader = BufReader::new(r.into_body().into_reader());
    let (mut events, mut done, mut first_text) = (Vec::new(), false, None);
    for line in reader.lines() {
        let line = line.expect("read the stream");
        let Some(data) = line.strip_prefix("data: ") else {
            assert!(line.is_empty(), "unexpected SSE line {line:?}");
            continue;
        };
        assert!(!done, "data after [DONE]");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("event is not JSON ({e}): {data}"));
        let has_text = v["choices"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["delta"]["content"].as_str().is_some_and(|s| !s.is_empty())
                    || c["text"].as_str().is_some_and(|s| !s.is_empty())
            })
        });
        if has_text && first_text.is_none() {
            first_text = Some(started.elapsed());
        }
        events.push(v);
    }
    Streamed { status, content_type, events, done, first_text }
}

/// The text of choice `i` of a streamed chat response, put back together from its deltas.
pub fn streamed_content(events: &[Value], i: u64) -> String {
    let mut s = String::new();
    for e in events {
        for c in e["choices"].as_array().into_iter().flatten() {
            if c["index"] == i {
                s.push_str(c["delta"]["content"].as_str().or(c["text"].as_str()).unwrap_or(""));
            }
        }
    }
    s
}

/// Checks the OpenAI shape of a non-streamed chat completion; returns its choices.
pub fn check_chat_completion(v: &Value, model: &str) -> Vec<Value> {
    assert!(v["id"].as_str().is_some_and(|s| s.starts_with("chatcmpl-")), "id: {v}");
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert!(v["created"].as_u64().is_some_and(|t| t > 1_600_000_000), "created: {v}");
    assert_eq!(v["model"], model, "{v}");
    let choices = v["choices"].as_array().expect("choices").clone();
    assert!(!choices.is_empty());
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i as u64, "{c}");
        assert_eq!(c["message"]["role"], "assistant", "{c}");
        assert!(c["message"]["content"].is_string() || c["message"]["tool_calls"].is_array(), "{c}");
        let finish = c["finish_reason"].as_str().expect("finish_reason");
        assert!(["stop", "length", "tool_calls"].contains(&finish), "{c}");
    }
    check_usage(&v["usage"]);
    choices
}

pub fn check_usage(u: &Value) {
    let p = u["prompt_tokens"].as_u64().expect("usage.prompt_tokens");
    let c = u["completion_tokens"].as_u64().expect("usage.completion_tokens");
    assert_eq!(u["total_tokens"].as_u64(), Some(p + c), "{u}");
    assert!(p > 0, "{u}");
}

/// Checks the OpenAI shape of every chunk of a streamed chat completion.
pub fn check_chat_chunks(s: &Streamed, model: &str, choices: usize) {
    assert_eq!(s.status, 200);
    assert!(s.content_type.starts_with("text/event-stream"), "{}", s.content_type);
    assert!(s.done, "the stream must end with [DONE]");
    let id = s.events[0]["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("chatcmpl-"));
    let mut finished = vec![false; choices];
    for e in &s.events {
        assert_eq!(e["id"], id.as_str(), "one id per stream: {e}");
        assert_eq!(e["object"], "chat.completion.chunk", "{e}");
        assert!(e["created"].as_u64().is_some(), "{e}");
        assert_eq!(e["model"], model);
        for c in e["choices"].as_array().expect("choices") {
            let i = c["index"].as_u64().expect("index") as usize;
            assert!(c["delta"].is_object(), "{c}");
            assert!(c.get("finish_reason").is_some(), "finish_reason present (null until the end): {c}");
            if let Some(f) = c["finish_reason"].as_str() {
                assert!(["stop", "length", "tool_calls"].contains(&f), "{c}");
                assert!(!finished[i], "two finish chunks for choice {i}");
                finished[i] = true;
            }
        }
    }
    assert!(finished.iter().all(|&f| f), "every choice finishes: {finished:?}");
}

/// Checks an OpenAI error body and returns its message.
pub fn check_error(v: &Value) -> String {
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "param and code present (maybe null): {v}");
    e["message"].as_str().unwrap_or_default().to_string()
}
