//! The OpenAI-compatible API over a real socket, against a tiny random-weight model: response
//! shapes (whole and streamed), completions, models, health, `n`, `stop`, `seed`, test-time
//! strategies, every error status with OpenAI's error body, and a client that disconnects
//! mid-stream. After each failure the server is asked a normal request, which must succeed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use serve::Server;

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
}

/// One server for the whole file (tests run in parallel against it).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let ckpt = random_checkpoint(dir.path());
        let server = start(&ckpt, &["--max-body-bytes", "16384", "--max-tokens-limit", "64", "--max-batch", "8"]);
        Fixture { _dir: dir, server }
    })
}

fn url(path: &str) -> String {
    format!("{}{path}", fixture().server.url())
}

fn model() -> String {
    fixture().server.model_name().to_string()
}

fn chat_body(extra: Value) -> Value {
    let mut b = json!({
        "model": model(),
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, who are you?"}],
        "max_tokens": 12,
        "temperature": 0,
    });
    for (k, v) in extra.as_object().expect("object").clone() {
        b[k] = v;
    }
    b
}

/// A normal request succeeds (the server goes on serving).
fn still_serving() {
    let (status, v) = post(&agent(), &url("/v1/chat/completions"), &chat_body(json!({})));
    assert_eq!(status, 200, "{v}");
    check_chat_completion(&v, &model());
}

#[test]
fn models_health_and_page() {
    let a = agent();
    let (s, body) = get(&a, &url("/v1/models"));
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], model());
    assert_eq!(v["data"][0]["object"], "model");
    assert!(v["data"][0]["created"].is_u64() && v["data"][0]["owned_by"].is_string());
    let (s, body) = get(&a, &url(&format!("/v1/models/{}", model())));
    assert_eq!(s, 200, "{body}");
    let (s, body) = get(&a, &url("/health"));
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).expect("json")["status"], "ok");
    let (s, body) = get(&a, &url("/"));
    assert_eq!(s, 200);
    assert!(body.contains("<script src=\"/app.js\">"), "{body}");
    let r = a.get(&url("/app.js")).call().expect("GET");
    assert!(r.headers()["content-type"].to_str().unwrap_or("").starts_with("text/javascript"));
}

#[test]
fn chat_whole_and_streamed_agree_and_parse_as_openai() {
    let a = agent();
    let sampled = json!({"temperature": 1.0, "seed": 11});
    let (status, v) = post(&a, &url("/v1/chat/completions"), &chat_body(sampled.clone()));
    assert_eq!(status, 200, "{v}");
    let choices = check_chat_completion(&v, &model());
    assert_eq!(choices.len(), 1);
    assert!(v["usage"]["completion_tokens"].as_u64().is_some_and(|c| (1..=12).contains(&c)), "{v}");
    let whole = choices[0]["message"]["content"].as_str().unwrap_or("").to_string();
    assert!(!whole.is_empty(), "{v}");

    let mut streamed = chat_body(sampled);
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let s = post_stream(&a, &url("/v1/chat/completions"), &streamed);
    check_chat_chunks(&s, &model(), 1);
    assert_eq!(s.events[0]["choices"][0]["delta"]["role"], "assistant");
    let last = s.events.last().expect("events");
    assert_eq!(last["choices"], json!([]), "usage chunk last: {last}");
    check_usage(&last["usage"]);
    assert_eq!(last["usage"], v["usage"], "same prompt, same seed, same counts");
    assert_eq!(streamed_content(&s.events, 0), whole, "same seed: the streamed text equals the whole reply");
}

#[test]
fn completions_of_strings_and_lists() {
    let a = agent();
    let (status, v) = post(
        &a,
        &url("/v1/completions"),
        &json!({"model": model(), "prompt": "The number 3 plus", "max_tokens": 8, "temperature": 0}),
    );
    assert_eq!(status, 200, "{v}");
    assert!(v["id"].as_str().is_some_and(|s| s.starts_with("cmpl-")));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["index"], 0);
    assert!(v["choices"][0]["text"].is_string());
    assert!(v["choices"][0]["finish_reason"].is_string());
    check_usage(&v["usage"]);
    let text0 = v["choices"][0]["text"].as_str().unwrap_or("").to_string();

    let body = json!({"prompt": ["The number 3 plus", "Tell me a story"], "n": 2, "max_tokens": 6, "temperature": 0.9, "seed": 5});
    let (status, v) = post(&a, &url("/v1/completions"), &body);
    assert_eq!(status, 200, "{v}");
    let idx: Vec<u64> =
        v["choices"].as_array().expect("choices").iter().map(|c| c["index"].as_u64().unwrap_or(99)).collect();
    assert_eq!(idx, vec![0, 1, 2, 3]);

    let s = post_stream(
        &a,
        &url("/v1/completions"),
        &json!({"prompt": "The number 3 plus", "max_tokens": 8, "temperature": 0, "stream": true}),
    );
    assert_eq!(s.status, 200);
    assert!(s.done);
    assert!(s.events.iter().all(|e| e["object"] == "text_completion"));
    assert_eq!(streamed_content(&s.events, 0), text0);
    let (status, v) = post(&a, &url("/v1/completions"), &json!({"prompt": [1, 2, 3], "max_tokens": 4}));
    assert_eq!(status, 200, "token-id prompts: {v}");
}

#[test]
fn n_choices() {
    let (status, v) =
        post(&agent(), &url("/v1/chat/completions"), &chat_body(json!({"n": 3, "temperature": 1.0, "seed": 1})));
    assert_eq!(status, 200, "{v}");
    assert_eq!(check_chat_completion(&v, &model()).len(), 3);
    let s = post_stream(
        &agent(),
        &url("/v1/chat/completions"),
        &chat_body(json!({"n": 2, "temperature": 1.0, "stream": true})),
    );
    check_chat_chunks(&s, &model(), 2);
}

#[test]
fn stop_strings_cut_whole_and_streamed_replies() {
    let a = agent();
    let body = json!({"prompt": "Tell me a story about", "max_tokens": 40, "temperature": 0});
    let (_, v) = post(&a, &url("/v1/completions"), &body);
    let full = v["choices"][0]["text"].as_str().expect("text").to_string();
    let chars: Vec<(usize, char)> = full.char_indices().collect();
    assert!(chars.len() >= 8, "a 40-token greedy completion has some text: {full:?}");
    let (at, _) = chars[chars.len() / 2];
    let stop: String = full[at..].chars().take(2).collect();
    let want = &full[..full.find(&stop).expect("stop occurs")];
    let mut with_stop = body.clone();
    with_stop["stop"] = json!([stop, "never-appears"]);
    let (status, v) = post(&a, &url("/v1/completions"), &with_stop);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["text"], want, "cut before the stop string {stop:?}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    with_stop["stream"] = json!(true);
    with_stop["stop"] = json!(stop); // a single string works too
    let s = post_stream(&a, &url("/v1/completions"), &with_stop);
    assert_eq!(streamed_content(&s.events, 0), want, "the stop string is never streamed");
}

#[test]
fn seeds_reproduce_and_differ() {
    let a = agent();
    let body = |seed: u64| chat_body(json!({"temperature": 1.0, "seed": seed, "max_tokens": 16}));
    let reply = |v: &Value| v["choices"][0]["message"]["content"].as_str().unwrap_or("").to_string();
    let (_, first) = post(&a, &url("/v1/chat/completions"), &body(42));
    let (_, again) = post(&a, &url("/v1/chat/completions"), &body(42));
    assert_eq!(reply(&first), reply(&again));
    // The same seed while other requests share the batch.
    let others: Vec<_> = (0..3)
        .map(|i| std::thread::spawn(move || post(&agent(), &url("/v1/chat/completions"), &body(100 + i)).1))
        .collect();
    let (_, busy) = post(&a, &url("/v1/chat/completions"), &body(42));
    let other_replies: Vec<String> = others.into_iter().map(|t| reply(&t.join().expect("thread"))).collect();
    assert_eq!(reply(&first), reply(&busy), "a seeded reply does not depend on its batch");
    let (_, other) = post(&a, &url("/v1/chat/completions"), &body(43));
    assert_ne!(reply(&first), reply(&other), "different seeds differ");
    assert!(other_replies.iter().any(|r| r != &reply(&first)));
}

#[test]
fn strategies_choose_one_of_their_draws() {
    let a = agent();
    for strategy in ["self_consistency", "best_of_n"] {
        let body = chat_body(json!({"temperature": 0.8, "seed": 3, "ascent": {"strategy": strategy, "samples": 4}}));
        let (status, v) = post(&a, &url("/v1/chat/completions"), &body);
        assert_eq!(status, 200, "{v}");
        check_chat_completion(&v, &model());
        let info = &v["choices"][0]["ascent"]["strategy"];
        assert_eq!(info["strategy"], strategy, "{v}");
        assert_eq!(info["samples"], 4);
        assert!(info["chosen"].as_u64().is_some_and(|c| c < 4));
        assert_eq!(info["answers"].as_array().map(Vec::len), Some(4));
        if strategy == "best_of_n" {
            assert_eq!(info["scores"].as_array().map(Vec::len), Some(4), "{info}");
        }
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let s = post_stream(&a, &url("/v1/chat/completions"), &streamed);
        check_chat_chunks(&s, &model(), 1);
        assert_eq!(
            streamed_content(&s.events, 0),
            v["choices"][0]["message"]["content"].as_str().unwrap_or(""),
            "same seed, same choice"
        );
    }
    let (status, v) = post(&a, &url("/v1/chat/completions"), &chat_body(json!({"ascent": {"strategy": "best_of_n"}})));
    assert_eq!(status, 400, "greedy draws cannot be a strategy: {v}");
    assert_eq!(v["error"]["param"], "temperature");
}

/// Status, error body and the field it names.
fn expect_error(status: u16, text: &str, want_status: u16, want_param: Option<&str>) -> Value {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    assert_eq!(status, want_status, "{v}");
    check_error(&v);
    if let Some(p) = want_param {
        assert_eq!(v["error"]["param"], p, "{v}");
    }
    v
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_goes_on() {
    let a = agent();
    let chat = url("/v1/chat/completions");
    let (s, t) = post_raw(&a, &chat, r#"{"messages": [{"role": "user", "content": "hi"}"#);
    let v = expect_error(s, &t, 400, None);
    assert_eq!(v["error"]["code"], "invalid_json");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    still_serving();

    let (s, t) = post_raw(&a, &chat, &chat_body(json!({"temperature": "hot"})).to_string());
    expect_error(s, &t, 400, Some("temperature"));
    let (s, t) = post_raw(&a, &chat, r#"{"messages": 3}"#);
    expect_error(s, &t, 400, Some("messages"));
    let (s, t) = post_raw(&a, &chat, r#"{"messages": [{"role": "user", "content": 5}]}"#);
    expect_error(s, &t, 400, Some("messages[0].content"));
    let (s, t) = post_raw(&a, &chat, &chat_body(json!({"temperature": 7})).to_string());
    expect_error(s, &t, 400, Some("temperature"));
    let (s, t) = post_raw(&a, &chat, &chat_body(json!({"n": 0})).to_string());
    expect_error(s, &t, 400, Some("n"));
    let (s, t) = post_raw(&a, &chat, &json!({"messages": [{"role": "wizard", "content": "x"}]}).to_string());
    expect_error(s, &t, 400, Some("messages[0].role"));
    still_serving();

    let (s, t) = post_raw(&a, &chat, &chat_body(json!({"max_tokens": 65})).to_string());
    expect_error(s, &t, 400, Some("max_tokens"));
    let (s, t) = post_raw(&a, &chat, &chat_body(json!({"max_completion_tokens": 1000})).to_string());
    expect_error(s, &t, 400, Some("max_completion_tokens"));
    let long = "Tell me a story about the river and the hills. ".repeat(60); // ≈ 2,800 bytes, far over 256 tokens
    let (s, t) = post_raw(&a, &chat, &json!({"messages": [{"role": "user", "content": long}]}).to_string());
    let v = expect_error(s, &t, 400, Some("messages"));
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    let huge = "x".repeat(20_000);
    let (s, t) = post_raw(&a, &chat, &json!({"messages": [{"role": "user", "content": huge}]}).to_string());
    let v = expect_error(s, &t, 413, None);
    assert_eq!(v["error"]["code"], "request_too_large");
    still_serving();

    let (s, t) = post_raw(&a, &chat, &chat_body(json!({"model": "gpt-4o"})).to_string());
    let v = expect_error(s, &t, 404, Some("model"));
    assert_eq!(v["error"]["code"], "model_not_found");
    let (s, t) = get(&a, &url("/v1/nothing-here"));
    expect_error(s, &t, 404, None);
    let (s, t) = get(&a, &chat);
    expect_error(s, &t, 405, None);
    let (s, t) = post_raw(&a, &url("/v1/completions"), &json!({"prompt": "x", "logprobs": 3}).to_string());
    expect_error(s, &t, 400, Some("logprobs"));
    let (s, t) = post_raw(&a, &url("/v1/completions"), &json!({"prompt": [1_000_000]}).to_string());
    expect_error(s, &t, 400, Some("prompt"));
    still_serving();
}

#[test]
fn a_client_leaving_mid_stream_does_not_break_the_server() {
    let addr = fixture().server.addr();
    for _ in 0..3 {
        let mut sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let body = chat_body(json!({"stream": true, "max_tokens": 64, "temperature": 1.0})).to_string();
        let req = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(req.as_bytes()).expect("send");
        let (mut seen, mut buf) = (String::new(), [0u8; 512]);
        while seen.matches("data: ").count() < 3 {
            let n = sock.read(&mut buf).expect("read");
            assert!(n > 0, "the stream ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
        drop(sock); // gone mid-stream
    }
    still_serving();
    // Nothing stays in flight once the abandoned rows are stopped.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, h) = get(&agent(), &url("/health"));
        let h: Value = serde_json::from_str(&h).expect("json");
        if h["queued"] == 0 && h["running_batches"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "requests still in flight: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn overload_is_a_503_and_passes() {
    // A server that takes one request at a time: a long one holds it while a second arrives.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&random_checkpoint(dir.path()), &["--max-concurrent", "1", "--max-batch", "16"]);
    let url = format!("{}/v1/chat/completions", server.url());
    // A text completion ends only at <|eos|>: sixteen rows of up to 240 tokens keep the slot busy.
    let long = json!({"prompt": "Tell me a story", "temperature": 1.0, "max_tokens": 240, "n": 16});
    let short = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
    let first = {
        let url = format!("{}/v1/completions", server.url());
        std::thread::spawn(move || post(&agent(), &url, &long))
    };
    // Once the long request holds the slot, the next one is turned away.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, h) = get(&agent(), &format!("{}/health", server.url()));
        let h: Value = serde_json::from_str(&h).expect("json");
        if h["in_flight"] == 1 {
            break;
        }
        assert!(!first.is_finished() && Instant::now() < deadline, "the long request was never seen in flight");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (status, v) = post(&agent(), &url, &short);
    assert_eq!(status, 503, "{v}");
    check_error(&v);
    assert_eq!(v["error"]["code"], "overloaded");
    let (status, v) = first.join().expect("thread");
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(&agent(), &url, &short);
    assert_eq!(status, 200, "served again once the load is gone: {v}");
    server.stop().expect("stop");
}

#[test]
fn bad_settings_fail_at_start_with_the_flag_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = random_checkpoint(dir.path());
    let model = ckpt.display().to_string();
    let start_err = |flags: &[&str]| {
        let mut all = vec!["--model", model.as_str(), "--port", "0"];
        all.extend(flags);
        match Server::start(&serve::ServeArgs::from_flags(all).expect("flags")) {
            Ok(_) => panic!("{flags:?} should not start"),
            Err(e) => e.to_string(),
        }
    };
    assert!(start_err(&["--max-batch", "0"]).contains("--max-batch"));
    assert!(start_err(&["--kb", "kb.jsonl"]).contains("--tools"));
    let e = start_err(&["--tools", "--kb", "/nonexistent/kb.jsonl"]);
    assert!(e.contains("/nonexistent/kb.jsonl"), "{e}");
    let e = match Server::start(&serve::ServeArgs::from_flags(["--model", "/nonexistent/run"]).expect("flags")) {
        Ok(_) => panic!("a missing model should not start"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("/nonexistent/run"), "{e}");
    assert!(serve::ServeArgs::from_flags(["--port", "1"]).is_err(), "--model is required");
}
