//! Streamed responses: engine events as OpenAI chunks over server-sent events.
//!
//! A chat stream opens each choice with a `{"role": "assistant", "content": ""}` delta, then
//! sends `content` / `reasoning_content` deltas as tokens arrive, a `tool_calls` delta when the
//! model called a tool for the client, and a chunk with the choice's `finish_reason`. Then,
//! with `stream_options.include_usage`, a chunk with `choices: []` and `usage`, and finally
//! `data: [DONE]`. A completion stream sends `text` pieces the same way. An error after the
//! stream has started is sent as a `data: {"error": {...}}` event before `[DONE]`.
//!
//! A task pumps events into the response body. When the client goes away the body is dropped;
//! the task notices at once (it waits on the body's channel closing as well as on the engine)
//! and drops the engine's channel, which stops the request's rows at their next token.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver};

use crate::engine::{ChoiceOut, Event};
use crate::error::ApiError;
use crate::http::{ascent_ext, tool_calls_json, Head, Kind};

/// The streaming response for a submitted request.
pub(crate) fn respond(head: Head, rx: UnboundedReceiver<Event>) -> Response {
    let (btx, brx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(pump(head, rx, btx));
    let body =
        futures_util::stream::unfold(brx, |mut r| async move { r.recv().await.map(|b| (Ok::<_, Infallible>(b), r)) });
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(body))
        .into_response()
}

async fn pump(head: Head, mut rx: UnboundedReceiver<Event>, out: mpsc::Sender<Bytes>) {
    let mut w = Writer { finished: vec![false; head.choices], head };
    for frame in w.start() {
        if out.send(frame).await.is_err() {
            return;
        }
    }
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = out.closed() => {
                tracing::info!(id = %w.head.id, "client disconnected mid-stream");
                return;
            }
        };
        let (frames, end) = match event {
            Some(e) => w.frames(e),
            None => (w.error(&ApiError::internal("the generation engine dropped the request")), true),
        };
        for frame in frames {
            if out.send(frame).await.is_err() {
                return;
            }
        }
        if end {
            return;
        }
    }
}

struct Writer {
    head: Head,
    /// Choices whose finish chunk was sent.
    finished: Vec<bool>,
}

fn data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

impl Writer {
    fn chunk(&self, choices: Vec<Value>) -> Bytes {
        let object = if self.head.kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" };
        data(&json!({ "id": self.head.id, "object": object, "created": self.head.created, "model": self.head.model,
                      "choices": choices }))
    }

    /// One choice of a chunk: a chat delta, or a completion's text.
    fn choice(&self, index: usize, delta: Value, finish: Option<&str>) -> Value {
        match self.head.kind {
            Kind::Chat => json!({ "index": index, "delta": delta, "logprobs": null, "finish_reason": finish }),
            Kind::Text => {
                let text = delta.get("content").cloned().unwrap_or(json!(""));
                json!({ "index": index, "text": text, "logprobs": null, "finish_reason": finish })
            }
        }
    }

    fn start(&self) -> Vec<Bytes> {
        if self.head.kind == Kind::Text {
            return Vec::new();
        }
        (0..self.head.choices)
            .map(|i| self.chunk(vec![self.choice(i, json!({ "role": "assistant", "content": "" }), None)]))
            .collect()
    }

    fn text_delta(content: &str, reasoning: &str) -> Value {
        let mut d = serde_json::Map::new();
        if !content.is_empty() {
            d.insert("content".into(), json!(content));
        }
        if !reasoning.is_empty() {
            d.insert("reasoning_content".into(), json!(reasoning));
        }
        Value::Object(d)
    }

    /// The end of a choice: its tool calls, then its finish reason.
    fn finish(&mut self, c: &ChoiceOut) -> Vec<Bytes> {
        let mut frames = Vec::new();
        if let Some(f) = self.finished.get_mut(c.index) {
            *f = true;
        }
        if !c.tool_calls.is_empty() && self.head.kind == Kind::Chat {
            frames.push(self.chunk(vec![self.choice(c.index, json!({ "tool_calls": tool_calls_json(c) }), None)]));
        }
        frames.push(self.chunk(vec![self.choice(c.index, json!({}), Some(c.finish.as_str()))]));
        frames
    }

    fn error(&self, e: &ApiError) -> Vec<Bytes> {
        vec![data(&e.body()), Bytes::from_static(b"data: [DONE]\n\n")]
    }

    /// The frames for one event, and whether the stream ends with them.
    fn frames(&mut self, e: Event) -> (Vec<Bytes>, bool) {
        match e {
            Event::Delta { choice, content, reasoning } => {
                (vec![self.chunk(vec![self.choice(choice, Self::text_delta(&content, &reasoning), None)])], false)
            }
            Event::Executed { choice, call } => {
                let mut c = self.choice(choice, json!({}), None);
                c["ascent"] = json!({ "executed_tool_call": call });
                (vec![self.chunk(vec![c])], false)
            }
            Event::Finished(c) => (self.finish(&c), false),
            Event::Done { choices, usage } => {
                let mut frames = Vec::new();
                for c in &choices {
                    if self.finished.get(c.index).copied().unwrap_or(true) {
                        continue;
                    }
                    // Not streamed as it grew (a strategy's chosen draw): all of it at once.
                    let mut v = self.choice(c.index, Self::text_delta(&c.content, &c.reasoning), None);
                    if let Some(ext) = ascent_ext(c) {
                        v["ascent"] = ext;
                    }
                    frames.push(self.chunk(vec![v]));
                    frames.extend(self.finish(c));
                }
                if self.head.include_usage {
                    let object = if self.head.kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" };
                    frames.push(data(&json!({ "id": self.head.id, "object": object, "created": self.head.created,
                                              "model": self.head.model, "choices": [], "usage": usage })));
                }
                frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
                (frames, true)
            }
            Event::Failed(e) => (self.error(&e), true),
        }
    }
}
