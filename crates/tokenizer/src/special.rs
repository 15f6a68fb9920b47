//! The reserved special tokens and their fixed ids.

use std::fmt;

/// A reserved special token. Its id is fixed (`0..Special::COUNT`, in declaration order) in every
/// ascent tokenizer, so code can refer to e.g. [`Special::Eos`] without looking anything up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Special {
    /// `<|pad|>`: padding.
    Pad = 0,
    /// `<|bos|>`: beginning of sequence.
    Bos = 1,
    /// `<|eos|>`: end of sequence.
    Eos = 2,
    /// `<|system|>`: starts a system turn.
    System = 3,
    /// `<|user|>`: starts a user turn.
    User = 4,
    /// `<|assistant|>`: starts an assistant turn.
    Assistant = 5,
    /// `<|end|>`: end of a turn.
    End = 6,
    /// `<|think|>`: opens a reasoning span.
    Think = 7,
    /// `<|/think|>`: closes a reasoning span.
    ThinkEnd = 8,
    /// `<|tool_call|>`: opens a tool call.
    ToolCall = 9,
    /// `<|/tool_call|>`: closes a tool call.
    ToolCallEnd = 10,
    /// `<|tool_result|>`: opens a tool result.
    ToolResult = 11,
    /// `<|/tool_result|>`: closes a tool result.
    ToolResultEnd = 12,
    /// `<|answer|>`: opens the final answer.
    Answer = 13,
    /// `<|/answer|>`: closes the final answer.
    AnswerEnd = 14,
}

impl Special {
    /// Number of reserved special tokens; they occupy ids `0..COUNT`.
    pub const COUNT: usize = 15;

    /// Every special token, in id order (`ALL[i].id() == i`).
    pub const ALL: [Special; Special::COUNT] = [
        Special::Pad,
        Special::Bos,
        Special::Eos,
        Special::System,
        Special::User,
        Special::Assistant,
        Special::End,
        Special::Think,
        Special::ThinkEnd,
        Special::ToolCall,
        Special::ToolCallEnd,
        Special::ToolResult,
        Special::ToolResultEnd,
        Special::Answer,
        Special::AnswerEnd,
    ];

    /// The literal text of the token, e.g. `"<|eos|>"`.
    pub const fn text(self) -> &'static str {
        match self {
            Special::Pad => "<|pad|>",
            Special::Bos => "<|bos|>",
            Special::Eos => "<|eos|>",
            Special::System => "<|system|>",
            Special::User => "<|user|>",
            Special::Assistant => "<|assistant|>",
            Special::End => "<|end|>",
            Special::Think => "<|think|>",
            Special::ThinkEnd => "<|/think|>",
            Special::ToolCall => "<|tool_call|>",
            Special::ToolCallEnd => "<|/tool_call|>",
            Special::ToolResult => "<|tool_result|>",
            Special::ToolResultEnd => "<|/tool_result|>",
            Special::Answer => "<|answer|>",
            Special::AnswerEnd => "<|/answer|>",
        }
    }

    /// The fixed token id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The special token with this id, if the id is reserved.
    pub fn from_id(id: u32) -> Option<Special> {
        Special::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The special token whose literal text is exactly `text`.
    pub fn from_text(text: &str) -> Option<Special> {
        Special::ALL.iter().copied().find(|s| s.text() == text)
    }
}

impl fmt::Display for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positions_in_all() {
        for (i, s) in Special::ALL.iter().enumerate() {
            assert_eq!(s.id() as usize, i);
            assert_eq!(Special::from_id(s.id()), Some(*s));
            assert_eq!(Special::from_text(s.text()), Some(*s));
        }
        assert_eq!(Special::from_id(Special::COUNT as u32), None);
        assert_eq!(Special::from_text("<|nope|>"), None);
    }
}
