//! The OpenAI request bodies this server reads, and how a body becomes one.
//!
//! Supported, `POST /v1/chat/completions`: `model` (optional; must name the served model when
//! given), `messages` (roles `system`, `developer` (a system turn), `user`, `assistant` with
//! optional `tool_calls`, `tool` with `tool_call_id`; `content` a string, `null`, or a list of
//! `{"type": "text", "text"}` parts), `temperature`, `top_p`, `max_tokens` /
//! `max_completion_tokens`, `stop` (a string or a list of up to 4), `n`, `seed`, `stream`,
//! `stream_options.include_usage`, `tools` (`{"type": "function", "function": {"name",
//! "description", "parameters"}}`), `tool_choice` (`"none"` leaves the tools out of the prompt
//! and keeps any call the model still writes as text; any other value is read as `"auto"`: the
//! model decides; a named or `"required"` choice is not enforced), `response_format` of type `text`,
//! and the extensions `top_k`, `min_p` and `ascent` (`{"strategy": "self_consistency" |
//! "best_of_n", "samples": N}`).
//! `POST /v1/completions`: `prompt` (a string, a list of strings, a list of token ids or a list
//! of such lists), the same sampling fields, `stream`, `n`, `stop`, `seed`, `ascent`.
//!
//! Not supported, answered with a 400 naming the field when asked for: `logprobs` /
//! `top_logprobs` (chat) and `logprobs` (completions), `echo`, `best_of` > 1, `suffix`,
//! `response_format` other than text (JSON mode), image or audio content parts. Accepted and
//! ignored: `presence_penalty`, `frequency_penalty`, `logit_bias`, `user`,
//! `parallel_tool_calls`, `store`, `metadata` and any other field not named here (OpenAI clients
//! send many). A named field of the wrong type is a 400 whose `param` is the field's path
//! (`temperature`, `messages[0].content`).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// A body parsed into `T`: malformed JSON and wrongly typed fields are 400s, the latter naming
/// the field.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let param = if path == "." { String::new() } else { path };
                let at = if param.is_empty() { String::new() } else { format!("`{param}`: ") };
                ApiError::invalid(param, format!("invalid request: {at}{inner}"))
            }
            _ => ApiError::malformed(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end().map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The request's `tools` as the JSON text it sent (keys in the order written, which a model's
/// own chat template shows it as transformers would); `None` when there are none.
pub fn tools_json(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Tools<'a> {
        #[serde(borrow, default)]
        tools: Option<&'a serde_json::value::RawValue>,
    }
    let t: Tools = serde_json::from_slice(body).ok()?;
    t.tools.map(|r| r.get().to_string()).filter(|t| t.trim() != "null")
}

/// `stop`: one string or a list.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// The `ascent` extension field.
#[derive(Deserialize, Clone, Debug, Default)]
pub struct AscentExt {
    /// `none` (default), `self_consistency` or `best_of_n`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// Draws per choice for a strategy.
    #[serde(default)]
    pub samples: Option<u64>,
}

/// Message content: a string or a list of parts.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize, Clone, Debug)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text (OpenAI); an object is accepted too.
    #[serde(default)]
    pub arguments: Option<Value>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct ToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub function: FunctionCall,
}

#[derive(Deserialize, Clone, Debug)]
pub struct InMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct ToolDef {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDef,
}

#[derive(Deserialize, Clone, Debug)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
}

/// `POST /v1/chat/completions`.
#[derive(Deserialize, Clone, Debug)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub min_p: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub seed: Option<serde_json::Number>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub tools: Option<Vec<ToolDef>>,
    /// More variables for an imported model's chat template (vLLM's extension), e.g.
    /// `{"enable_thinking": false}` for Qwen3; the project's own format takes none.
    #[serde(default)]
    pub chat_template_kwargs: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub logprobs: Option<bool>,
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub ascent: Option<AscentExt>,
}

/// `prompt` of a completion request.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum PromptField {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// `POST /v1/completions`.
#[derive(Deserialize, Clone, Debug)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub prompt: PromptField,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub min_p: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub seed: Option<serde_json::Number>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub best_of: Option<u64>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub ascent: Option<AscentExt>,
}

/// The sampling and length fields both endpoints share, before validation.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub min_p: Option<f32>,
    /// The field's name and value.
    pub max_tokens: Option<(&'static str, u64)>,
    pub n: Option<u64>,
    pub stop: Option<Stop>,
    pub seed: Option<serde_json::Number>,
    pub stream: bool,
    pub include_usage: bool,
    pub ascent: Option<AscentExt>,
}

impl ChatRequest {
    /// Refuses what this server does not do, and hands out the shared knobs.
    pub fn knobs(&self) -> Result<Knobs, ApiError> {
        if self.logprobs == Some(true) || self.top_logprobs.is_some_and(|k| k > 0) {
            return Err(ApiError::invalid("logprobs", "logprobs are not supported by this server"));
        }
        if let Some(f) = self.response_format.as_ref().filter(|f| f.kind != "text") {
            return Err(ApiError::invalid(
                "response_format",
                format!("response_format `{}` is not supported (only `text`)", f.kind),
            ));
        }
        let max_tokens = match (self.max_completion_tokens, self.max_tokens) {
            (Some(m), _) => Some(("max_completion_tokens", m)),
            (None, Some(m)) => Some(("max_tokens", m)),
            _ => None,
        };
        Ok(Knobs {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: self.min_p,
            max_tokens,
            n: self.n,
            stop: self.stop.clone(),
            seed: self.seed.clone(),
            stream: self.stream.unwrap_or(false),
            include_usage: self.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false),
            ascent: self.ascent.clone(),
        })
    }
}

impl CompletionRequest {
    /// Refuses what this server does not do, and hands out the shared knobs.
    pub fn knobs(&self) -> Result<Knobs, ApiError> {
        if self.logprobs.is_some_and(|k| k > 0) {
            return Err(ApiError::invalid("logprobs", "logprobs are not supported by this server"));
        }
        if self.echo == Some(true) {
            return Err(ApiError::invalid("echo", "echo is not supported by this server"));
        }
        if self.best_of.is_some_and(|b| b > 1) {
            return Err(ApiError::invalid(
                "best_of",
                "best_of is not supported; use \"ascent\": {\"strategy\": \"best_of_n\", \"samples\": N}",
            ));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::invalid("suffix", "suffix (insertion) is not supported by this server"));
        }
        Ok(Knobs {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: self.min_p,
            max_tokens: self.max_tokens.map(|m| ("max_tokens", m)),
            n: self.n,
            stop: self.stop.clone(),
            seed: self.seed.clone(),
            stream: self.stream.unwrap_or(false),
            include_usage: self.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false),
            ascent: self.ascent.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_name_the_field_and_extra_fields_pass() {
        let e = parse::<ChatRequest>(br#"{"messages": [], "temperature": "hot"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"), "{e:?}");
        let e = parse::<ChatRequest>(br#"{"messages": 3}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"), "{e:?}");
        let e = parse::<ChatRequest>(br#"{"messages": [{"role": "user", "content": 5}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].content"), "{e:?}");
        let e = parse::<ChatRequest>(br#"{"messages": [}"#).unwrap_err();
        assert_eq!(e.code, Some("invalid_json"));
        let e = parse::<ChatRequest>(br#"{"messages": []} trailing"#).unwrap_err();
        assert_eq!(e.code, Some("invalid_json"));
        let ok = parse::<ChatRequest>(br#"{"messages": [], "frequency_penalty": 0, "user": "x", "temperature": null}"#);
        assert!(ok.is_ok());
        let e = parse::<ChatRequest>(br#"{}"#).unwrap_err();
        assert!(e.message.contains("messages"), "{e:?}");
        let e = parse::<ChatRequest>(br#"{"messages": [], "chat_template_kwargs": 3}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("chat_template_kwargs"), "{e:?}");
    }

    #[test]
    fn tools_keep_the_text_the_request_sent() {
        let body = br#"{"messages": [], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]}"#;
        assert_eq!(
            tools_json(body).as_deref(),
            Some(
                r#"[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]"#
            )
        );
        assert_eq!(tools_json(br#"{"messages": []}"#), None);
        assert_eq!(tools_json(br#"{"messages": [], "tools": null}"#), None);
    }
}
