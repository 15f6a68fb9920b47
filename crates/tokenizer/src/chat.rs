//! The chat template: conversations rendered over the reserved special tokens.
//!
//! ```text
//! <|system|>You answer questions.<|end|>
//! <|user|>Where was Ilona Varsk born?<|end|>
//! <|assistant|><|tool_call|>lookup(Ilona Varsk, birth_city)<|/tool_call|><|tool_result|> Lormet<|/tool_result|>
//! Answer: Lormet<|end|>
//! ```
//!
//! Each turn is the role's token, the content, `<|end|>` and a newline. A prompt for the model's
//! reply ends with `<|assistant|>` (the generation prompt); the reply ends at `<|end|>` (or
//! `<|eos|>`). Inside an assistant turn, a tool call is `<|tool_call|>name(args)<|/tool_call|>`,
//! written by the model, followed by `<|tool_result|> result<|/tool_result|>`, injected by the
//! runtime (forced tokens; the space makes a copied result tokenise as it does in the text after
//! it, `Answer: result`). The format is one function, so training data and prompts cannot
//! drift apart.

use serde::{Deserialize, Serialize};

use crate::Special;

/// Who speaks a turn.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn token(self) -> Special {
        match self {
            Role::System => Special::System,
            Role::User => Special::User,
            Role::Assistant => Special::Assistant,
        }
    }
}

/// One turn of a conversation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

/// The conversation as text; with `generation_prompt`, followed by `<|assistant|>` so the model
/// writes the next assistant turn.
pub fn render_chat(messages: &[Message], generation_prompt: bool) -> String {
    let mut s = String::new();
    for m in messages {
        s.push_str(m.role.token().text());
        s.push_str(&m.content);
        s.push_str(Special::End.text());
        s.push('\n');
    }
    if generation_prompt {
        s.push_str(Special::Assistant.text());
    }
    s
}

/// A tool call as written by the model.
pub fn tool_call_text(call: &str) -> String {
    format!("{}{call}{}", Special::ToolCall.text(), Special::ToolCallEnd.text())
}

/// A tool result as injected by the runtime: after one space, with the newline that follows it.
pub fn tool_result_text(result: &str) -> String {
    format!("{} {result}{}\n", Special::ToolResult.text(), Special::ToolResultEnd.text())
}

/// Whether a generated reply has ended (its last token closes the turn or the sequence).
pub fn ends_turn(last: Option<u32>) -> bool {
    last == Some(Special::End.id()) || last == Some(Special::Eos.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_turns_and_the_generation_prompt() {
        let msgs = [Message::new(Role::System, "Be brief."), Message::new(Role::User, "Hi?")];
        assert_eq!(render_chat(&msgs, true), "<|system|>Be brief.<|end|>\n<|user|>Hi?<|end|>\n<|assistant|>");
        assert_eq!(render_chat(&msgs[1..], false), "<|user|>Hi?<|end|>\n");
        assert_eq!(tool_call_text("calc(1 + 2)"), "<|tool_call|>calc(1 + 2)<|/tool_call|>");
        assert_eq!(tool_result_text("3"), "<|tool_result|> 3<|/tool_result|>\n");
        assert!(ends_turn(Some(Special::End.id())) && !ends_turn(Some(100)) && !ends_turn(None));
    }
}
