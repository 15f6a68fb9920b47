//! The protocol's tag strings are the tokenizer's reserved special tokens (this crate keeps its
//! own copies so that it does not depend on the tokenizer), and its chat form is the tokenizer's.

use tokenizer::{chat, Special};
use tools::protocol;

#[test]
fn tags_are_the_reserved_special_tokens() {
    assert_eq!(protocol::TOOL_CALL, Special::ToolCall.text());
    assert_eq!(protocol::TOOL_CALL_END, Special::ToolCallEnd.text());
    assert_eq!(protocol::TOOL_RESULT, Special::ToolResult.text());
    assert_eq!(protocol::TOOL_RESULT_END, Special::ToolResultEnd.text());
    for call in ["calc(1948 < 1950)", "lookup(Ilona Varsk, birth_city)"] {
        assert_eq!(protocol::call_text(call), chat::tool_call_text(call));
    }
    assert_eq!(protocol::result_text("Lormet"), chat::tool_result_text("Lormet"));
}
