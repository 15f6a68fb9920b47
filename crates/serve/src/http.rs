//! The HTTP surface (axum): routes, admission, and turning engine events into OpenAI responses,
//! whole or as server-sent events (`data: {chunk}\n\n` … `data: [DONE]\n\n`).
//!
//! Routes: `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`,
//! `GET /v1/models/{id}`, `GET /health`, and the chat page (`GET /`, `/app.js`, `/style.css`).
//! Any other path is a 404 and a known path with another method a 405, both in OpenAI's error
//! shape. Bodies over `--max-body-bytes` are a 413; more than `--max-concurrent` requests queued
//! or generating at once, a 503 with `Retry-After: 1`.
//!
//! Extensions in responses: each choice may carry `ascent` with `executed_tool_calls` (calls
//! the server ran: name, OpenAI arguments, the call text and the result the model read) and
//! `strategy` (see [`crate::strategy`]); streamed, a call the server ran arrives as a chunk whose
//! choice has `ascent.executed_tool_call`. Reasoning is `message.reasoning_content` (streamed as
//! `delta.reasoning_content`). Streamed usage comes as a last chunk with no choices when
//! `stream_options.include_usage` is true, as in OpenAI.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokenizer::Tokenizer;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::sync::Semaphore;

use crate::engine::{ChoiceOut, Event, Request, Spec, Usage};
use crate::error::ApiError;
use crate::plan::{self, Limits};
use crate::prompt::ChatFormat;
use crate::scheduler::Engine;

/// What every handler shares.
pub struct AppState {
    pub engine: Engine,
    pub tok: Arc<Tokenizer>,
    pub format: Arc<ChatFormat>,
    pub limits: Limits,
    pub model_name: String,
    pub created: u64,
    pub permits: Arc<Semaphore>,
    pub max_concurrent: usize,
    pub max_body_bytes: usize,
    /// Names of the tools the server runs itself.
    pub server_tools: Vec<String>,
}

type Shared = State<Arc<AppState>>;

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/", get(|| async { Html(crate::assets::INDEX_HTML) }))
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], crate::assets::APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], crate::assets::STYLE_CSS) }),
        )
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model_by_id))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .fallback(|method: Method, uri: Uri| async move { ApiError::unknown_route(method.as_str(), uri.path()) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::method_not_allowed(method.as_str(), uri.path())
        })
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn health(State(s): Shared) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "model": s.model_name,
        "queued": s.engine.queued(),
        "running_batches": s.engine.running(),
        "in_flight": s.max_concurrent - s.permits.available_permits(),
        "tools": s.server_tools,
    }))
}

fn model_card(s: &AppState) -> Value {
    json!({ "id": s.model_name, "object": "model", "created": s.created, "owned_by": "ascent",
            "context_length": s.limits.context })
}

async fn models(State(s): Shared) -> Json<Value> {
    Json(json!({ "object": "list", "data": [model_card(&s)] }))
}

async fn model_by_id(State(s): Shared, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    plan::check_model(Some(&id), &s.model_name)?;
    Ok(Json(model_card(&s)))
}

fn body_bytes(s: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(s.max_body_bytes),
        _ => ApiError::malformed(format!("cannot read the body: {}", r.body_text())),
    })
}

async fn chat(State(s): Shared, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = body_bytes(&s, body)?;
    let req: crate::api::ChatRequest = crate::api::parse(&body)?;
    plan::check_model(req.model.as_deref(), &s.model_name)?;
    let tools_json = crate::api::tools_json(&body);
    let spec = plan::chat(req, tools_json.as_deref(), &s.tok, &s.format, &s.limits)?;
    submit(s, spec, Kind::Chat).await
}

async fn completions(State(s): Shared, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = body_bytes(&s, body)?;
    let req: crate::api::CompletionRequest = crate::api::parse(&body)?;
    plan::check_model(req.model.as_deref(), &s.model_name)?;
    let spec = plan::completion(req, &s.tok, &s.format, &s.limits)?;
    submit(s, spec, Kind::Text).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Chat,
    Text,
}

/// What a response needs to know about its request.
#[derive(Clone)]
pub(crate) struct Head {
    pub kind: Kind,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub choices: usize,
    pub include_usage: bool,
}

async fn submit(s: Arc<AppState>, spec: Spec, kind: Kind) -> Result<Response, ApiError> {
    let permit = Arc::clone(&s.permits).try_acquire_owned().map_err(|_| ApiError::overloaded(s.max_concurrent))?;
    let stream = spec.stream;
    let head = Head {
        kind,
        id: spec.id.clone(),
        created: now(),
        model: s.model_name.clone(),
        choices: spec.prompts.len() * spec.n,
        include_usage: spec.include_usage,
    };
    let (tx, rx) = unbounded_channel();
    s.engine.submit(Arc::new(Request::new(spec, tx, Some(permit))))?;
    if stream {
        Ok(crate::sse::respond(head, rx))
    } else {
        Ok(whole(head, rx).await)
    }
}

/// Waits for the answer and returns it as one JSON body. (A client that goes away drops this
/// future, and with it `rx`: the engine then stops the request's rows.)
async fn whole(head: Head, mut rx: UnboundedReceiver<Event>) -> Response {
    loop {
        match rx.recv().await {
            Some(Event::Done { choices, usage }) => return Json(complete_body(&head, &choices, usage)).into_response(),
            Some(Event::Failed(e)) => return e.into_response(),
            Some(_) => {}
            None => return ApiError::internal("the generation engine dropped the request").into_response(),
        }
    }
}

pub(crate) fn ascent_ext(c: &ChoiceOut) -> Option<Value> {
    let mut m = serde_json::Map::new();
    if !c.executed.is_empty() {
        m.insert("executed_tool_calls".into(), json!(c.executed));
    }
    if let Some(s) = &c.strategy {
        m.insert("strategy".into(), s.clone());
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

pub(crate) fn tool_calls_json(c: &ChoiceOut) -> Value {
    Value::Array(
        c.tool_calls
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({ "index": i, "id": t.id, "type": "function", "function": { "name": t.name, "arguments": t.arguments } })
            })
            .collect(),
    )
}

fn complete_body(h: &Head, choices: &[ChoiceOut], usage: Usage) -> Value {
    let choices: Vec<Value> = choices
        .iter()
        .map(|c| {
            let mut v = match h.kind {
                Kind::Chat => {
                    let mut msg = json!({ "role": "assistant", "content": c.content });
                    if !c.tool_calls.is_empty() {
                        msg["tool_calls"] = tool_calls_json(c);
                        if c.content.is_empty() {
                            msg["content"] = Value::Null;
                        }
                    }
                    if !c.reasoning.is_empty() {
                        msg["reasoning_content"] = json!(c.reasoning);
                    }
                    json!({ "index": c.index, "message": msg, "logprobs": null, "finish_reason": c.finish.as_str() })
                }
                Kind::Text => {
                    json!({ "index": c.index, "text": c.content, "logprobs": null, "finish_reason": c.finish.as_str() })
                }
            };
            if let Some(ext) = ascent_ext(c) {
                v["ascent"] = ext;
            }
            v
        })
        .collect();
    let object = if h.kind == Kind::Chat { "chat.completion" } else { "text_completion" };
    json!({ "id": h.id, "object": object, "created": h.created, "model": h.model, "choices": choices, "usage": usage })
}
