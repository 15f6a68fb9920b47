//! A model imported from Hugging Face (the tiny Qwen2 folder that crates/interop's tests keep)
//! served as it is: its chat template renders the conversation, its `<|im_end|>` ends the
//! reply, and its own vocabulary (where ids 0..14 are ordinary text) is never read as the
//! project's special tokens.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::json;
use tokenizer::{Message, Role};

fn qwen2() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/tests/golden/qwen2")
}

#[test]
fn an_imported_model_chats_with_its_own_template_and_end_id() {
    let device = model::engine::device(model::engine::Backend::Cpu).expect("cpu");
    let (m, tok, _) = train::eval::load_for_inference(&qwen2(), &device).expect("load the golden Qwen2 folder");
    let server = start(&qwen2(), &[]);
    let url = server.url();
    let a = agent();
    let question = "Where was Ilona born?";
    let body = json!({"messages": [{"role": "user", "content": question}], "max_tokens": 8, "temperature": 0});
    let (status, v) = post(&a, &format!("{url}/v1/chat/completions"), &body);
    assert_eq!(status, 200, "{v}");
    let choice = &check_chat_completion(&v, server.model_name())[0];
    let prompt = tok.render_chat(&[Message::new(Role::User, question)], true).expect("template");
    assert_eq!(
        v["usage"]["prompt_tokens"].as_u64(),
        Some(tok.encode(&prompt).len() as u64),
        "rendered by its template"
    );
    let content = choice["message"]["content"].as_str().expect("content");
    // The same greedy reply as `ascent generate` gives (train::infer, which ends at the model's
    // own end ids).
    let opts = train::infer::CompleteOptions { max_new: 8, ..Default::default() };
    let want = train::infer::complete(&m, &tok, &prompt, &opts, &|_, _| {}, &device).expect("complete");
    assert_eq!(content, want[0].text);
    let finish = if want[0].finish == model::generate::Finish::Stop { "stop" } else { "length" };
    assert_eq!(choice["finish_reason"], finish);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let s = post_stream(&a, &format!("{url}/v1/chat/completions"), &streamed);
    check_chat_chunks(&s, server.model_name(), 1);
    assert_eq!(streamed_content(&s.events, 0), content, "greedy: the same reply streamed");

    let (status, v) =
        post(&a, &format!("{url}/v1/completions"), &json!({"prompt": "Ilona was born in", "max_tokens": 6}));
    assert_eq!(status, 200, "{v}");
    assert!(v["choices"][0]["text"].is_string());
    server.stop().expect("stop");
}

/// An imported model whose vocabulary has `<think>`, `</think>`, `<tool_call>`, `</tool_call>`
/// (as Qwen2.5 and Qwen3 do): the tiny Qwen2 folder with those four tokens added at its unused
/// ids, fine-tuned to think and then call `lookup` in Hermes-style JSON. Its reasoning comes
/// back as `reasoning_content` and its call as OpenAI `tool_calls`, whole and streamed; without
/// tools in the request the call stays text.
#[test]
fn an_imported_models_thinking_and_hermes_tool_calls_are_parsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("qwen2-markup");
    std::fs::create_dir_all(&folder).expect("mkdir");
    for f in std::fs::read_dir(qwen2()).expect("golden folder") {
        let f = f.expect("entry");
        std::fs::copy(f.path(), folder.join(f.file_name())).expect("copy");
    }
    let tok_path = folder.join("tokenizer.json");
    let mut tok_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tok_path).expect("read")).expect("json");
    let first_free = 300; // the golden vocabulary is 300 tokens, the model's 304
    for (i, t) in ["<think>", "</think>", "<tool_call>", "</tool_call>"].iter().enumerate() {
        tok_json["added_tokens"].as_array_mut().expect("added_tokens").push(json!({
            "id": first_free + i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": false}));
    }
    std::fs::write(&tok_path, tok_json.to_string()).expect("write");
    // A longer context than the golden 64 positions, for a reply of about a hundred of this
    // tiny vocabulary's tokens (rotary positions need no weights).
    let cfg_path = folder.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("read")).expect("json");
    config["max_position_embeddings"] = json!(256);
    std::fs::write(&cfg_path, config.to_string()).expect("write");

    const THOUGHT: &str = "Ilona is in the records.";
    let reply = format!(
        "<think>\n{THOUGHT}\n</think>\n\n<tool_call>\n{{\"name\": \"lookup\", \"arguments\": {{\"name\": \"Ilona\"}}}}\n</tool_call>"
    );
    let example = train::sft::Example {
        messages: Some(vec![
            ("user".to_string(), "Where was Ilona born?".to_string()),
            ("assistant".to_string(), reply.clone()),
        ]),
        ..Default::default()
    };
    let cfg = train::sft::SftConfig {
        steps: 80,
        batch_size: 1,
        warmup_steps: 2,
        replay_fraction: 0.0,
        optim: train::config::OptimSection { lr: 3e-3, ..Default::default() },
        ..Default::default()
    };
    let ckpt = train::sft::sft(&folder, &[example], &[], &cfg, &dir.path().join("sft"), true).expect("sft").checkpoint;

    let server = start(&ckpt, &[]);
    let url = format!("{}/v1/chat/completions", server.url());
    let a = agent();
    let tools = json!([{"type": "function", "function": {"name": "lookup", "description": "Facts about a person",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}]);
    let body = json!({"messages": [{"role": "user", "content": "Where was Ilona born?"}], "temperature": 0,
                      "max_tokens": 160, "tools": tools});
    let (status, v) = post(&a, &url, &body);
    assert_eq!(status, 200, "{v}");
    let choice = &check_chat_completion(&v, server.model_name())[0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{v}");
    assert_eq!(choice["message"]["reasoning_content"].as_str().map(str::trim), Some(THOUGHT), "{v}");
    assert!(choice["message"]["content"].is_null(), "only layout between the reasoning and the call: {v}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "lookup", "{v}");
    let args: serde_json::Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments text")).expect("JSON");
    assert_eq!(args, json!({"name": "Ilona"}));

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let s = post_stream(&a, &url, &streamed);
    check_chat_chunks(&s, server.model_name(), 1);
    let reasoning: String =
        s.events.iter().filter_map(|e| e["choices"][0]["delta"]["reasoning_content"].as_str()).collect();
    assert_eq!(reasoning.trim(), THOUGHT);
    assert_eq!(streamed_content(&s.events, 0), "", "nothing but the call after the reasoning");
    let calls: Vec<&serde_json::Value> =
        s.events.iter().filter_map(|e| e["choices"][0]["delta"].get("tool_calls")).collect();
    assert_eq!(calls.len(), 1, "one tool_calls delta");
    assert_eq!(calls[0][0]["function"]["name"], "lookup");

    // No tools declared: the call is text, markup included.
    let mut plain = body.clone();
    plain.as_object_mut().expect("object").remove("tools");
    let (status, v) = post(&a, &url, &plain);
    assert_eq!(status, 200, "{v}");
    let choice = &check_chat_completion(&v, server.model_name())[0];
    assert_eq!(choice["finish_reason"], "stop", "{v}");
    let content = choice["message"]["content"].as_str().expect("content");
    assert!(content.starts_with("<tool_call>") && content.contains("\"lookup\""), "{content:?}");
    server.stop().expect("stop");
}
