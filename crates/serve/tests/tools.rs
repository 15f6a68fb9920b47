//! Tool calls end to end, with a model trained in this test: a tiny model fine-tuned (the
//! project's SFT, a few seconds: `common::trained_checkpoint`) on a conversation where the
//! assistant calls `calc(2+3)`, reads the injected result and answers, and on a greeting
//! whose reply starts with a `<|think|>` span. Served without `--tools`, its call comes
//! back as OpenAI `tool_calls` (whole and streamed), and sending the call and a `tool` result
//! back continues the answer; served with `--tools`, the server runs the call, injects `5` and
//! reports it in `ascent.executed_tool_calls`.

mod common;

use common::*;
use serde_json::{json, Value};

fn calc_tool() -> Value {
    json!({"type": "function", "function": {"name": "calc", "description": "exact arithmetic",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}}})
}

fn trained() -> &'static std::path::Path {
    trained_checkpoint()
}

fn question(extra: Value) -> Value {
    let mut b = json!({"messages": [{"role": "user", "content": QUESTION}], "tools": [calc_tool()],
                       "temperature": 0, "max_tokens": 48});
    for (k, v) in extra.as_object().expect("object").clone() {
        b[k] = v;
    }
    b
}

#[test]
fn a_trained_call_comes_back_as_openai_tool_calls_and_round_trips() {
    let server = start(trained(), &[]);
    let url = format!("{}/v1/chat/completions", server.url());
    let a = agent();
    let (status, v) = post(&a, &url, &question(json!({})));
    assert_eq!(status, 200, "{v}");
    let choice = &check_chat_completion(&v, server.model_name())[0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{v}");
    assert!(choice["message"]["content"].is_null(), "{v}");
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().is_some_and(|id| id.starts_with("call_")), "{call}");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "calc");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments is a JSON string"))
        .expect("JSON");
    assert_eq!(args, json!({"expression": "2+3"}));
    assert_eq!(v["usage"]["prompt_tokens"].as_u64(), Some(tokenizer().encode(&question_prompt()).len() as u64));

    let s = post_stream(&a, &url, &question(json!({"stream": true})));
    check_chat_chunks(&s, server.model_name(), 1);
    let streamed: Vec<&Value> = s.events.iter().filter_map(|e| e["choices"][0]["delta"].get("tool_calls")).collect();
    assert_eq!(streamed.len(), 1, "one tool_calls delta");
    assert_eq!(streamed[0][0]["index"], 0);
    assert_eq!(streamed[0][0]["function"]["name"], "calc");
    assert_eq!(streamed[0][0]["type"], "function");

    // The client runs the call and sends the result back: rendered as the runtime would inject
    // it, the model continues its answer.
    let mut back = question(json!({}));
    back["messages"] = json!([
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "5"},
    ]);
    let (status, v) = post(&a, &url, &back);
    assert_eq!(status, 200, "{v}");
    let want_prompt = format!("{}{CALL}{RESULT}", question_prompt());
    assert_eq!(v["usage"]["prompt_tokens"].as_u64(), Some(tokenizer().encode(&want_prompt).len() as u64), "{v}");
    let choice = &check_chat_completion(&v, server.model_name())[0];
    assert_eq!(choice["finish_reason"], "stop", "{v}");
    assert_eq!(choice["message"]["content"], ANSWER, "{v}");
    server.stop().expect("stop");
}

#[test]
fn reasoning_is_returned_apart_from_the_content() {
    let server = start(trained(), &[]);
    let url = format!("{}/v1/chat/completions", server.url());
    let body = json!({"messages": [{"role": "user", "content": GREETING}], "temperature": 0, "max_tokens": 48});
    let (status, v) = post(&agent(), &url, &body);
    assert_eq!(status, 200, "{v}");
    let choice = &check_chat_completion(&v, server.model_name())[0];
    assert_eq!(choice["message"]["reasoning_content"], THOUGHT, "{v}");
    assert_eq!(choice["message"]["content"], REPLY, "{v}");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let s = post_stream(&agent(), &url, &streamed);
    check_chat_chunks(&s, server.model_name(), 1);
    let reasoning: String =
        s.events.iter().filter_map(|e| e["choices"][0]["delta"]["reasoning_content"].as_str()).collect();
    assert_eq!(reasoning, THOUGHT);
    assert_eq!(streamed_content(&s.events, 0), REPLY);
    server.stop().expect("stop");
}

#[test]
fn with_server_tools_the_call_runs_and_its_result_is_injected() {
    let server = start(trained(), &["--tools"]);
    let url = format!("{}/v1/chat/completions", server.url());
    let a = agent();
    let (status, v) = post(&a, &url, &question(json!({})));
    assert_eq!(status, 200, "{v}");
    let choice = &check_chat_completion(&v, server.model_name())[0];
    assert_eq!(choice["finish_reason"], "stop", "{v}");
    assert!(choice["message"].get("tool_calls").is_none(), "{v}");
    let ran = &choice["ascent"]["executed_tool_calls"];
    assert_eq!(ran.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(ran[0]["name"], "calc");
    assert_eq!(ran[0]["call"], "calc(2+3)");
    assert_eq!(ran[0]["result"], "5", "the model read 5");
    assert_eq!(choice["message"]["content"], ANSWER, "{v}");
    assert!(v["usage"]["completion_tokens"].as_u64().is_some_and(|c| c > 0));

    let s = post_stream(&a, &url, &question(json!({"stream": true})));
    check_chat_chunks(&s, server.model_name(), 1);
    let ran: Vec<&Value> =
        s.events.iter().filter_map(|e| e["choices"][0]["ascent"].get("executed_tool_call")).collect();
    assert_eq!(ran.len(), 1, "{:?}", s.events);
    assert_eq!(ran[0]["result"], "5");
    assert_eq!(streamed_content(&s.events, 0), ANSWER);
    server.stop().expect("stop");
}
