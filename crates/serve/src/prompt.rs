//! Everything that knows the model's chat format, in one place: rendering an OpenAI conversation
//! (with tools, assistant `tool_calls` and `tool` results) into prompt text, which tokens end a
//! reply, which tokens open and close reasoning, answers and tool calls, and how a call the
//! model writes maps to OpenAI's `{"name", "arguments"}` and back.
//!
//! The format is the project's ([`tokenizer::chat`]):
//! ```text
//! <|system|>You answer questions.
//!
//! You can call these tools:
//! - calc(expression): exact arithmetic<|end|>
//! <|user|>What is 2+3?<|end|>
//! <|assistant|><|tool_call|>calc(2+3)<|/tool_call|><|tool_result|> 5<|/tool_result|>
//! The answer is 5.<|end|>
//! ```
//! - `system` and `developer` messages are system turns; the tools a request declares are listed
//!   at the end of the first system turn (one is added when there is none), one line each,
//!   `- name(param, ...): description`. Tools the server runs itself (`--tools`) are not listed:
//!   the project's models learn to call them without a description.
//! - An assistant message is its content, then each of its `tool_calls` as
//!   `<|tool_call|>name(args)<|/tool_call|>` followed by the result from the `tool` message with
//!   that `tool_call_id` as `<|tool_result|> result<|/tool_result|>\n` (the runtime's injection).
//!   An assistant message right after the results continues the same turn (as
//!   `train::sftdata` renders it for training); when the conversation ends with the results the
//!   prompt ends inside the turn, so the model continues its answer.
//! - A call's `arguments` (a JSON object) become the text between the parentheses: the value
//!   alone when there is one, else the values joined by `, ` in the order of the tool's
//!   `required` list (then the other keys in name order). Back the other way,
//!   [`openai_arguments`] splits the text into the tool's parameters.
//!
//! An imported model (a Hugging Face folder or a GGUF file) brings its own Jinja chat template
//! and end-of-sequence ids instead ([`ChatFormat::Template`]): the conversation is rendered by
//! its template (messages in OpenAI's shape, `tool_calls` arguments as objects, and the declared
//! `tools` as the template's `tools`), and a reply ends at one of its end ids. When its
//! vocabulary has them as single tokens, `<think>` … `</think>` is its reasoning
//! (`reasoning_content`, Qwen3 and DeepSeek-R1 distills) and `<tool_call>` … `</tool_call>` a call
//! written as Hermes-style JSON, `{"name": ..., "arguments": {...}}` (Qwen2.5, Qwen3, Hermes),
//! returned to the client as `tool_calls` (the server never runs an imported model's calls);
//! every other token is text. A model without a template takes text completions only. Nothing outside this module renders chat or decides where a
//! reply ends.
//!
//! Message text is tokenised as it is: text that spells a special token (`<|end|>`) becomes that
//! token, as in `ascent chat`.

use std::collections::HashMap;

use serde_json::{json, Value};
use tokenizer::chat::{tool_call_text, tool_result_text};
use tokenizer::{ChatTemplate, Special, Tokenizer};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool call as OpenAI writes it: `arguments` is JSON text.
#[derive(Clone, Debug, PartialEq)]
pub struct CallIn {
    pub id: Option<String>,
    pub name: String,
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// An assistant message's calls.
    pub tool_calls: Vec<CallIn>,
    /// A tool message's answer to this call.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
}

/// A tool a request declares.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// Parameter names: the schema's `required` list in its order, then the other properties.
    pub params: Vec<String>,
    /// The JSON schema of the parameters as declared (for a model's own template).
    pub parameters: Value,
}

/// How the served model's conversations are written and where its replies end.
#[derive(Clone, Debug)]
pub enum ChatFormat {
    /// The project's format over the reserved special tokens (see the module doc).
    Project,
    /// An imported model's chat template, end-of-sequence ids, and the ids of its reasoning
    /// and tool-call markup tokens (`<think>`, `</think>`, `<tool_call>`, `</tool_call>`) that
    /// its vocabulary has.
    Template { template: ChatTemplate, end_ids: Vec<u32>, markup: Vec<(u32, Marker)> },
    /// An imported model without a template: text completions only.
    NoTemplate { end_ids: Vec<u32> },
}

impl ChatFormat {
    /// The format of the model whose tokenizer is `tok`.
    pub fn of(tok: &Tokenizer) -> Self {
        match (tok.is_foreign(), tok.chat_template()) {
            (false, _) => ChatFormat::Project,
            (true, Some(t)) => {
                let markup =
                    IMPORTED_MARKUP.iter().filter_map(|&(text, m)| Some((tok.token_to_id(text)?, m))).collect();
                ChatFormat::Template { template: t.clone(), end_ids: tok.end_ids(), markup }
            }
            (true, None) => ChatFormat::NoTemplate { end_ids: tok.end_ids() },
        }
    }

    /// The prompt for the assistant's next reply to `messages`, with `tools` declared
    /// (`tools_json`: the same as the request wrote them, which a model's own template shows)
    /// and, for a model's own template, more template variables (`chat_template_kwargs`).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
        tools_json: Option<&str>,
        kwargs: Option<&serde_json::Map<String, Value>>,
    ) -> Result<String, RenderError> {
        match self {
            ChatFormat::Project => render(messages, tools),
            ChatFormat::Template { template, .. } => render_template(template, messages, tools, tools_json, kwargs),
            ChatFormat::NoTemplate { .. } => Err(RenderError {
                index: 0,
                message: "this model has no chat template: use POST /v1/completions".into(),
            }),
        }
    }

    /// Whether a chat reply ends at `token`.
    pub fn is_end(&self, token: u32) -> bool {
        match self {
            ChatFormat::Project => is_end(token),
            ChatFormat::Template { end_ids, .. } | ChatFormat::NoTemplate { end_ids } => end_ids.contains(&token),
        }
    }

    /// What `token` means in a chat reply.
    pub fn marker(&self, token: u32) -> Marker {
        match self {
            ChatFormat::Project => marker(token),
            _ if self.is_end(token) => Marker::End,
            ChatFormat::Template { markup, .. } => {
                markup.iter().find(|(id, _)| *id == token).map_or(Marker::Text, |&(_, m)| m)
            }
            ChatFormat::NoTemplate { .. } => Marker::Text,
        }
    }

    /// Whether the model's calls are written in the project's syntax (`name(args)`) rather
    /// than as Hermes-style JSON.
    pub fn project_calls(&self) -> bool {
        matches!(self, ChatFormat::Project)
    }

    /// The tokens that open and close a call, to put a call back as text.
    pub fn call_marks(&self) -> (Option<u32>, Option<u32>) {
        match self {
            ChatFormat::Template { markup, .. } => {
                let find = |want: Marker| markup.iter().find(|(_, m)| *m == want).map(|&(id, _)| id);
                (find(Marker::CallOpen), find(Marker::CallClose))
            }
            _ => (Some(Special::ToolCall.id()), Some(Special::ToolCallEnd.id())),
        }
    }

    /// Whether a text completion ends at `token` (the end of the sequence).
    pub fn ends_text(&self, token: u32) -> bool {
        match self {
            ChatFormat::Project => token == Special::Eos.id(),
            ChatFormat::Template { end_ids, .. } | ChatFormat::NoTemplate { end_ids } => end_ids.contains(&token),
        }
    }

    /// Whether a completion prompt ends with the assistant's header, so that the end of the turn
    /// ends the completion too (the project's format; an imported model's end ids already do).
    pub fn is_chat_prompt(&self, prompt: &[u32]) -> bool {
        matches!(self, ChatFormat::Project) && prompt.last() == Some(&Special::Assistant.id())
    }
}

/// Reasoning and tool-call markup of imported models, read when the vocabulary has the token.
const IMPORTED_MARKUP: [(&str, Marker); 4] = [
    ("<think>", Marker::ThinkOpen),
    ("</think>", Marker::ThinkClose),
    ("<tool_call>", Marker::CallOpen),
    ("</tool_call>", Marker::CallClose),
];

/// A Hermes-style call (`{"name": "lookup", "arguments": {"name": "Ilona"}}`, the arguments an
/// object or JSON text) as OpenAI's name and arguments text; `None` when it is not one.
pub fn hermes_call(text: &str) -> Option<(String, String)> {
    let v: Value = serde_json::from_str(text.trim()).ok()?;
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(args @ Value::Object(_)) => args.to_string(),
        Some(_) => return None,
    };
    Some((name, arguments))
}

/// `messages` through an imported model's template, in OpenAI's shape.
fn render_template(
    template: &ChatTemplate,
    messages: &[ChatMessage],
    tools: &[ToolSpec],
    tools_json: Option<&str>,
    kwargs: Option<&serde_json::Map<String, Value>>,
) -> Result<String, RenderError> {
    let values: Vec<Value> = messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
            };
            let mut v = json!({ "role": role, "content": m.content });
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        // Templates read the arguments as a mapping (transformers' convention).
                        let args =
                            serde_json::from_str::<Value>(&c.arguments).unwrap_or(Value::String(c.arguments.clone()));
                        json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": args } })
                    })
                    .collect();
                v["tool_calls"] = Value::Array(calls);
            }
            if let Some(id) = &m.tool_call_id {
                v["tool_call_id"] = json!(id);
            }
            v
        })
        .collect();
    let tools: Vec<Value> = tools
        .iter()
        .map(|t| json!({ "type": "function", "function": { "name": t.name, "description": t.description, "parameters": t.parameters } }))
        .collect();
    let built = (!tools.is_empty()).then(|| Value::Array(tools).to_string());
    let tools_json = tools_json.or(built.as_deref());
    template.render_with_tools_json(&values, tools_json, kwargs, true).map_err(|e| RenderError {
        index: messages.len().saturating_sub(1),
        message: format!("the model's chat template: {e}"),
    })
}

/// Why a conversation cannot be rendered: the message at fault and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("messages[{index}]: {message}")]
pub struct RenderError {
    pub index: usize,
    pub message: String,
}

/// The prompt for the assistant's next reply to `messages`, with `tools` listed, in the
/// project's format.
pub fn render(messages: &[ChatMessage], tools: &[ToolSpec]) -> Result<String, RenderError> {
    let err = |index: usize, message: &str| RenderError { index, message: message.to_string() };
    if messages.is_empty() {
        return Err(err(0, "a conversation needs at least one message"));
    }
    let preamble = tools_preamble(tools);
    let mut out = String::new();
    if !preamble.is_empty() && messages[0].role != Role::System {
        push_turn(&mut out, Special::System, preamble.trim_start());
    }
    let mut open = false; // inside an assistant turn that tool results left open
    let mut i = 0;
    while i < messages.len() {
        let m = &messages[i];
        match m.role {
            Role::System | Role::User => {
                let text = if i == 0 && m.role == Role::System {
                    format!("{}{preamble}", m.content)
                } else {
                    m.content.clone()
                };
                let special = if m.role == Role::System { Special::System } else { Special::User };
                push_turn(&mut out, special, &text);
                i += 1;
            }
            Role::Tool => {
                return Err(err(i, "a tool message must follow an assistant message whose tool_calls it answers"))
            }
            Role::Assistant => {
                if !open {
                    out.push_str(Special::Assistant.text());
                }
                out.push_str(&m.content);
                // The tool messages answering this message's calls.
                let first_result = i + 1;
                let mut end = first_result;
                while end < messages.len() && messages[end].role == Role::Tool {
                    end += 1;
                }
                let results = &messages[first_result..end];
                if m.tool_calls.is_empty() && !results.is_empty() {
                    return Err(err(first_result, "a tool message must follow an assistant message with tool_calls"));
                }
                let by_id: HashMap<&str, usize> =
                    results.iter().enumerate().filter_map(|(k, r)| Some((r.tool_call_id.as_deref()?, k))).collect();
                let mut used = vec![false; results.len()];
                for (c, call) in m.tool_calls.iter().enumerate() {
                    let spec = tools.iter().find(|t| t.name == call.name);
                    out.push_str(&tool_call_text(&format!("{}({})", call.name, call_args_text(&call.arguments, spec))));
                    let k = call.id.as_deref().and_then(|id| by_id.get(id).copied()).or_else(|| {
                        // No id to match by: the results answer the calls in order.
                        (results.get(c).is_some_and(|r| r.tool_call_id.is_none()) && !used[c]).then_some(c)
                    });
                    let Some(k) = k else {
                        return Err(err(
                            i,
                            &format!("tool call {c} (`{}`) has no tool message with its result", call.name),
                        ));
                    };
                    used[k] = true;
                    out.push_str(&tool_result_text(&results[k].content));
                }
                if let Some(k) = used.iter().position(|u| !u) {
                    return Err(err(
                        first_result + k,
                        "this tool message answers no tool call of the assistant message before it",
                    ));
                }
                i = end;
                let continues = !m.tool_calls.is_empty() && messages.get(end).is_none_or(|n| n.role == Role::Assistant);
                if continues {
                    open = true;
                } else {
                    out.push_str(Special::End.text());
                    out.push('\n');
                    open = false;
                }
            }
        }
    }
    if !open {
        out.push_str(Special::Assistant.text());
    }
    Ok(out)
}

fn push_turn(out: &mut String, role: Special, content: &str) {
    out.push_str(role.text());
    out.push_str(content);
    out.push_str(Special::End.text());
    out.push('\n');
}

/// The list of tools appended to the system turn (empty without tools).
fn tools_preamble(tools: &[ToolSpec]) -> String {
    if tools.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n\nYou can call these tools:");
    for t in tools {
        s.push_str(&format!("\n- {}({})", t.name, t.params.join(", ")));
        if !t.description.is_empty() {
            s.push_str(": ");
            s.push_str(&t.description);
        }
    }
    s
}

/// Whether a reply ends at this token: the end of the turn or of the sequence, or the start of
/// a turn of somebody else (a model that writes one has finished its own).
pub fn is_end(token: u32) -> bool {
    [Special::End, Special::Eos, Special::User, Special::System].iter().any(|s| s.id() == token)
}

/// What a token the model writes means for the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Ends the reply.
    End,
    ThinkOpen,
    ThinkClose,
    AnswerOpen,
    AnswerClose,
    CallOpen,
    CallClose,
    /// Another special token: not shown.
    Hidden,
    /// Ordinary text.
    Text,
}

/// The meaning of `token` in a reply.
pub fn marker(token: u32) -> Marker {
    if is_end(token) {
        return Marker::End;
    }
    match Special::from_id(token) {
        None => Marker::Text,
        Some(Special::Think) => Marker::ThinkOpen,
        Some(Special::ThinkEnd) => Marker::ThinkClose,
        Some(Special::Answer) => Marker::AnswerOpen,
        Some(Special::AnswerEnd) => Marker::AnswerClose,
        Some(Special::ToolCall) => Marker::CallOpen,
        Some(Special::ToolCallEnd) => Marker::CallClose,
        Some(_) => Marker::Hidden,
    }
}

/// Whether a completion prompt is a chat prompt (ends with the assistant's header), so that the
/// end of the turn ends it too.
pub fn is_chat_prompt(prompt: &str) -> bool {
    prompt.ends_with(Special::Assistant.text())
}

/// The result of a call as the runtime injects it.
pub fn result_text(result: &str) -> String {
    tool_result_text(result)
}

/// The text between a call's parentheses for OpenAI `arguments` (JSON text; anything that is
/// not JSON is taken as the text itself).
pub fn call_args_text(arguments: &str, spec: Option<&ToolSpec>) -> String {
    let value_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) if map.len() == 1 => map.values().next().map(value_text).unwrap_or_default(),
        Ok(Value::Object(map)) => {
            let order = spec.map(|s| s.params.as_slice()).unwrap_or(&[]);
            let mut keys: Vec<&String> = order.iter().filter(|p| map.contains_key(*p)).collect();
            keys.extend(map.keys().filter(|k| !order.contains(k)));
            keys.iter().filter_map(|k| map.get(*k)).map(value_text).collect::<Vec<_>>().join(", ")
        }
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => arguments.to_string(),
    }
}

/// Parameter names of the project's own tools, for calls the model makes to them.
fn known_params(name: &str) -> &'static [&'static str] {
    match name {
        "calc" => &["expression"],
        "run" => &["program"],
        "lookup" => &["entity", "relation"],
        "find" => &["conditions"],
        _ => &[],
    }
}

/// OpenAI `arguments` (JSON object text) for the text `args` of a call to a tool with
/// parameters `spec` (or, for the project's tools, their known parameters): one parameter takes
/// the whole text; several take its comma-separated parts when the counts match; otherwise the
/// text goes under `"input"`.
pub fn openai_arguments(name: &str, args: &str, spec: Option<&ToolSpec>) -> String {
    let params: Vec<String> = match spec {
        Some(s) if !s.params.is_empty() => s.params.clone(),
        _ => known_params(name).iter().map(|p| p.to_string()).collect(),
    };
    let mut map = serde_json::Map::new();
    let parts: Vec<&str> = args.splitn(params.len().max(1), ',').map(str::trim).collect();
    if params.len() == 1 {
        map.insert(params[0].clone(), Value::String(args.trim().to_string()));
    } else if params.len() > 1 && parts.len() == params.len() {
        for (p, v) in params.iter().zip(parts) {
            map.insert(p.clone(), Value::String(v.to_string()));
        }
    } else {
        map.insert("input".into(), Value::String(args.trim().to_string()));
    }
    Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str, args: &str) -> CallIn {
        CallIn { id: Some(id.into()), name: name.into(), arguments: args.into() }
    }

    fn tool(id: &str, content: &str) -> ChatMessage {
        ChatMessage { tool_call_id: Some(id.into()), ..ChatMessage::new(Role::Tool, content) }
    }

    #[test]
    fn plain_conversation_matches_the_project_template() {
        let msgs = [ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "Hi?")];
        let want = tokenizer::render_chat(
            &[
                tokenizer::Message::new(tokenizer::Role::System, "Be brief."),
                tokenizer::Message::new(tokenizer::Role::User, "Hi?"),
            ],
            true,
        );
        assert_eq!(render(&msgs, &[]).unwrap(), want);
    }

    #[test]
    fn tool_calls_and_results_render_inside_the_assistant_turn() {
        let spec = ToolSpec {
            name: "calc".into(),
            description: "arithmetic".into(),
            params: vec!["expression".into()],
            ..Default::default()
        };
        let mut a = ChatMessage::new(Role::Assistant, "");
        a.tool_calls = vec![call("c1", "calc", r#"{"expression": "2+3"}"#)];
        let msgs = [ChatMessage::new(Role::User, "What is 2+3?"), a, tool("c1", "5")];
        let got = render(&msgs, std::slice::from_ref(&spec)).unwrap();
        assert_eq!(
            got,
            "<|system|>You can call these tools:\n- calc(expression): arithmetic<|end|>\n<|user|>What is 2+3?<|end|>\n\
             <|assistant|><|tool_call|>calc(2+3)<|/tool_call|><|tool_result|> 5<|/tool_result|>\n"
        );
        // The reply after the results continues the turn; a new question opens a new one.
        let mut more = msgs.to_vec();
        more.push(ChatMessage::new(Role::Assistant, "It is 5."));
        more.push(ChatMessage::new(Role::User, "Thanks"));
        let got = render(&more, &[]).unwrap();
        assert!(got.ends_with("<|/tool_result|>\nIt is 5.<|end|>\n<|user|>Thanks<|end|>\n<|assistant|>"), "{got}");
    }

    #[test]
    fn results_match_calls_by_id_and_mistakes_are_named() {
        let mut a = ChatMessage::new(Role::Assistant, "");
        a.tool_calls = vec![call("a", "calc", r#"{"e":"1+1"}"#), call("b", "calc", r#"{"e":"2+2"}"#)];
        let msgs = [ChatMessage::new(Role::User, "q"), a.clone(), tool("b", "4"), tool("a", "2")];
        let got = render(&msgs, &[]).unwrap();
        assert!(
            got.contains("calc(1+1)<|/tool_call|><|tool_result|> 2<|/tool_result|>\n<|tool_call|>calc(2+2)"),
            "{got}"
        );
        let missing = [ChatMessage::new(Role::User, "q"), a.clone(), tool("a", "2")];
        assert_eq!(render(&missing, &[]).unwrap_err().index, 1);
        let stray = [ChatMessage::new(Role::User, "q"), tool("x", "1")];
        assert_eq!(render(&stray, &[]).unwrap_err().index, 1);
        assert!(render(&[], &[]).is_err());
    }

    #[test]
    fn arguments_map_both_ways() {
        let spec = ToolSpec {
            name: "lookup".into(),
            description: String::new(),
            params: vec!["entity".into(), "relation".into()],
            ..Default::default()
        };
        assert_eq!(
            call_args_text(r#"{"relation":"birth_city","entity":"Ilona Varsk"}"#, Some(&spec)),
            "Ilona Varsk, birth_city"
        );
        assert_eq!(call_args_text(r#"{"expression": "2+3"}"#, None), "2+3");
        assert_eq!(call_args_text("not json", None), "not json");
        let back: Value =
            serde_json::from_str(&openai_arguments("lookup", "Ilona Varsk, birth_city", Some(&spec))).unwrap();
        assert_eq!(back, serde_json::json!({"entity": "Ilona Varsk", "relation": "birth_city"}));
        let calc: Value = serde_json::from_str(&openai_arguments("calc", "2+3", None)).unwrap();
        assert_eq!(calc, serde_json::json!({"expression": "2+3"}));
        let other: Value = serde_json::from_str(&openai_arguments("mystery", "a, b", None)).unwrap();
        assert_eq!(other, serde_json::json!({"input": "a, b"}));
    }

    #[test]
    fn an_imported_vocabulary_has_no_project_specials() {
        let f = ChatFormat::NoTemplate { end_ids: vec![2] };
        assert_eq!(f.marker(Special::Think.id()), Marker::Text);
        assert_eq!(f.marker(Special::End.id()), Marker::Text);
        assert_eq!(f.marker(2), Marker::End);
        assert!(f.is_end(2) && f.ends_text(2) && !f.is_end(Special::End.id()));
        assert!(!f.is_chat_prompt(&[1, Special::Assistant.id()]));
        assert!(ChatFormat::Project.is_chat_prompt(&[1, Special::Assistant.id()]));
        assert!(
            f.render(&[ChatMessage::new(Role::User, "hi")], &[], None, None).is_err(),
            "no template: completions only"
        );
    }

    #[test]
    fn a_template_gets_the_tools_as_sent_and_the_extra_variables() {
        let source = "{{ messages[0].content }}|{{ tools | tojson }}|{{ flag }}|{{ add_generation_prompt }}";
        let template = ChatTemplate::new(source, None, None).expect("template");
        let f = ChatFormat::Template { template, end_ids: vec![2], markup: Vec::new() };
        let kwargs: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"flag": "on", "add_generation_prompt": false}"#).expect("json");
        let tools = r#"[{"type": "function", "function": {"name": "f"}}]"#;
        let got = f.render(&[ChatMessage::new(Role::User, "hi")], &[], Some(tools), Some(&kwargs)).expect("render");
        assert_eq!(
            got,
            format!("hi|{tools}|on|True"),
            "the fixed variables win (a boolean prints as Jinja2 prints it)"
        );
    }

    #[test]
    fn markers() {
        assert_eq!(marker(Special::End.id()), Marker::End);
        assert_eq!(marker(Special::Eos.id()), Marker::End);
        assert_eq!(marker(Special::Think.id()), Marker::ThinkOpen);
        assert_eq!(marker(Special::ToolCallEnd.id()), Marker::CallClose);
        assert_eq!(marker(Special::Pad.id()), Marker::Hidden);
        assert_eq!(marker(500), Marker::Text);
    }
}
