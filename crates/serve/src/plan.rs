//! From a parsed request to what the engine runs ([`Spec`]): messages rendered and tokenised,
//! every value checked against the server's limits and the model's context, defaults filled in.
//!
//! Defaults follow OpenAI where it has one: `temperature` 1, `top_p` 1, `n` 1; `max_tokens`
//! defaults to `--default-max-tokens`. `max_tokens` above `--max-tokens-limit` is refused; a
//! `max_tokens` that does not fit after the prompt in the model's context is cut to what does
//! (the reply then ends with `finish_reason: "length"`), while a prompt that leaves no room at
//! all, or is longer than `--max-prompt-tokens`, is refused (400, `context_length_exceeded`).

use tokenizer::Tokenizer;

use crate::api::{ChatRequest, CompletionRequest, Content, Knobs, PromptField};
use crate::engine::{new_id, Spec};
use crate::error::ApiError;
use crate::prompt::{CallIn, ChatFormat, ChatMessage, Role, ToolSpec};
use crate::strategy::Strategy;

/// Most stop strings a request may give (OpenAI's limit).
pub const MAX_STOP: usize = 4;
/// Draws per choice of a strategy when `samples` is not given.
pub const DEFAULT_SAMPLES: usize = 8;

/// What requests are checked against.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The model's context (`max_seq_len`).
    pub context: usize,
    /// Longest prompt in tokens (at most the context).
    pub max_prompt_tokens: usize,
    /// Largest `max_tokens`.
    pub max_tokens_limit: usize,
    /// `max_tokens` when a request gives none.
    pub default_max_tokens: usize,
    /// Most rows one request may add to a batch (`n` × samples × prompts): `--max-batch`.
    pub max_rows: usize,
}

/// Checks `model` against the served one.
pub fn check_model(asked: Option<&str>, served: &str) -> Result<(), ApiError> {
    match asked {
        Some(m) if !m.is_empty() && m != served => Err(ApiError::unknown_model(m, served)),
        _ => Ok(()),
    }
}

/// The spec of a chat request.
/// `tools_json` is the request's `tools` as it sent them (for a model's own chat template).
pub fn chat(
    req: ChatRequest,
    tools_json: Option<&str>,
    tok: &Tokenizer,
    format: &ChatFormat,
    limits: &Limits,
) -> Result<Spec, ApiError> {
    let knobs = req.knobs()?;
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].role"),
                    format!("unknown role `{other}` (system, developer, user, assistant or tool)"),
                ))
            }
        };
        let content = match &m.content {
            None => String::new(),
            Some(Content::Text(s)) => s.clone(),
            Some(Content::Parts(parts)) => {
                let mut s = String::new();
                for (j, p) in parts.iter().enumerate() {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => s.push_str(t),
                        ("text", None) => {
                            return Err(ApiError::invalid(
                                format!("messages[{i}].content[{j}].text"),
                                "a text part needs `text`",
                            ))
                        }
                        (other, _) => {
                            return Err(ApiError::invalid(
                                format!("messages[{i}].content[{j}].type"),
                                format!("content parts of type `{other}` are not supported (only `text`)"),
                            ))
                        }
                    }
                }
                s
            }
        };
        let tool_calls = m
            .tool_calls
            .iter()
            .flatten()
            .map(|c| CallIn {
                id: c.id.clone(),
                name: c.function.name.clone(),
                arguments: match &c.function.arguments {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => "{}".into(),
                },
            })
            .collect();
        messages.push(ChatMessage { role, content, tool_calls, tool_call_id: m.tool_call_id.clone() });
    }
    let mut tools = Vec::new();
    for (i, t) in req.tools.iter().flatten().enumerate() {
        if t.kind != "function" {
            return Err(ApiError::invalid(
                format!("tools[{i}].type"),
                format!("tool type `{}` is not supported (only `function`)", t.kind),
            ));
        }
        tools.push(tool_spec(&t.function));
    }
    let none = req.tool_choice.as_ref().and_then(|c| c.as_str()) == Some("none");
    let listed = if none { &[][..] } else { &tools[..] };
    let text = format
        .render(&messages, listed, tools_json.filter(|_| !listed.is_empty()), req.chat_template_kwargs.as_ref())
        .map_err(|e| ApiError::invalid(format!("messages[{}]", e.index), e.to_string()))?;
    let ids = tok.encode_prompt(&text);
    let mut spec = common(&knobs, vec![ids], limits, "messages")?;
    spec.chat = true;
    spec.chat_prompt = vec![true];
    spec.client_calls = !none && !tools.is_empty();
    spec.client_tools = tools;
    spec.id = new_id("chatcmpl-");
    Ok(spec)
}

/// A tool's name, description and parameters in order (`required` first).
fn tool_spec(f: &crate::api::FunctionDef) -> ToolSpec {
    let params = f.parameters.as_ref();
    let mut names: Vec<String> = params
        .and_then(|p| p.get("required"))
        .and_then(|r| r.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if let Some(props) = params.and_then(|p| p.get("properties")).and_then(|p| p.as_object()) {
        for k in props.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    ToolSpec {
        name: f.name.clone(),
        description: f.description.clone().unwrap_or_default(),
        params: names,
        parameters: params.cloned().unwrap_or(serde_json::Value::Null),
    }
}

/// The spec of a completion request.
pub fn completion(
    req: CompletionRequest,
    tok: &Tokenizer,
    format: &ChatFormat,
    limits: &Limits,
) -> Result<Spec, ApiError> {
    let knobs = req.knobs()?;
    let vocab = tok.vocab_size() as u32;
    let check_ids = |ids: Vec<u32>| match ids.iter().find(|&&t| t >= vocab) {
        Some(bad) => Err(ApiError::invalid("prompt", format!("token id {bad} is outside the vocabulary of {vocab}"))),
        None => Ok(ids),
    };
    let prompts: Vec<Vec<u32>> = match req.prompt {
        PromptField::Text(s) => vec![tok.encode_prompt(&s)],
        PromptField::Texts(v) => v.iter().map(|s| tok.encode_prompt(s)).collect(),
        PromptField::Tokens(ids) => vec![check_ids(ids)?],
        PromptField::TokenLists(v) => v.into_iter().map(check_ids).collect::<Result<_, _>>()?,
    };
    if prompts.is_empty() {
        return Err(ApiError::invalid("prompt", "the prompt list is empty"));
    }
    let chat_prompt = prompts.iter().map(|p| format.is_chat_prompt(p)).collect();
    let mut spec = common(&knobs, prompts, limits, "prompt")?;
    spec.chat_prompt = chat_prompt;
    spec.id = new_id("cmpl-");
    Ok(spec)
}

/// Checks the shared knobs and the prompts' lengths.
fn common(k: &Knobs, prompts: Vec<Vec<u32>>, limits: &Limits, prompt_param: &str) -> Result<Spec, ApiError> {
    let bad = |p: &str, m: String| Err(ApiError::invalid(p, m));
    let temperature = k.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && (0.0..=2.0).contains(&temperature)) {
        return bad("temperature", format!("temperature must be between 0 and 2, got {temperature}"));
    }
    let top_p = k.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return bad("top_p", format!("top_p must be in (0, 1], got {top_p}"));
    }
    let min_p = k.min_p.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&min_p) {
        return bad("min_p", format!("min_p must be in [0, 1], got {min_p}"));
    }
    let n = k.n.unwrap_or(1);
    if n == 0 || n as usize > limits.max_rows {
        return bad("n", format!("n must be between 1 and {} (--max-batch), got {n}", limits.max_rows));
    }
    let n = n as usize;
    let ext = k.ascent.clone().unwrap_or_default();
    let strategy = match Strategy::parse(ext.strategy.as_deref().unwrap_or("none")) {
        Some(s) => s,
        None => {
            return bad(
                "ascent.strategy",
                format!(
                    "unknown strategy `{}` (none, self_consistency or best_of_n)",
                    ext.strategy.unwrap_or_default()
                ),
            )
        }
    };
    let draws = match (strategy, ext.samples) {
        (None, _) => 1,
        (Some(_), None) => DEFAULT_SAMPLES,
        (Some(_), Some(s)) if s >= 1 => s as usize,
        (Some(_), Some(s)) => return bad("ascent.samples", format!("samples must be at least 1, got {s}")),
    };
    if strategy.is_some() && temperature == 0.0 {
        return bad("temperature", "a sampling strategy needs temperature > 0 (greedy draws are all the same)".into());
    }
    let rows = prompts.len().saturating_mul(n).saturating_mul(draws);
    if rows > limits.max_rows {
        let p = if draws > 1 { "ascent.samples" } else { "n" };
        return bad(p, format!("this request needs {rows} generated sequences (prompts × n × samples); the server's limit is {} (--max-batch)", limits.max_rows));
    }
    let (mt_param, max_tokens) = match k.max_tokens {
        Some((p, m)) => (p, m),
        None => ("max_tokens", limits.default_max_tokens as u64),
    };
    if max_tokens == 0 || max_tokens > limits.max_tokens_limit as u64 {
        return bad(
            mt_param,
            format!(
                "{mt_param} must be between 1 and {} (--max-tokens-limit), got {max_tokens}",
                limits.max_tokens_limit
            ),
        );
    }
    let stop: Vec<String> =
        k.stop.clone().map(|s| s.into_vec()).unwrap_or_default().into_iter().filter(|s| !s.is_empty()).collect();
    if stop.len() > MAX_STOP {
        return bad("stop", format!("at most {MAX_STOP} stop strings, got {}", stop.len()));
    }
    let seed = match &k.seed {
        None => rand::random::<u64>(),
        Some(num) => match (num.as_u64(), num.as_i64()) {
            (Some(u), _) => u,
            (None, Some(i)) => i as u64,
            _ => return bad("seed", format!("seed must be an integer, got {num}")),
        },
    };
    let mut max_new = Vec::with_capacity(prompts.len());
    for p in &prompts {
        if p.is_empty() {
            return bad(prompt_param, "the prompt is empty".into());
        }
        let limit = limits.max_prompt_tokens.min(limits.context.saturating_sub(1));
        if p.len() > limit {
            return Err(ApiError::context_length(
                format!(
                    "the prompt has {} tokens; this server takes at most {limit} (the model's context is {} tokens, and at least one is left for the reply)",
                    p.len(),
                    limits.context
                ),
                prompt_param,
            ));
        }
        max_new.push((max_tokens as usize).min(limits.context - p.len()));
    }
    Ok(Spec {
        id: String::new(),
        chat: false,
        chat_prompt: Vec::new(),
        prompts,
        max_new,
        n,
        strategy,
        draws,
        sampling: model::Sampling { temperature, top_k: k.top_k.unwrap_or(0) as usize, top_p, min_p, seed: 0 },
        seed,
        stop,
        client_tools: Vec::new(),
        client_calls: false,
        stream: k.stream,
        include_usage: k.include_usage,
    })
}
