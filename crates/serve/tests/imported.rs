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
