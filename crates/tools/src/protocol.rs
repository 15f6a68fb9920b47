//! The call protocol: call texts, tool-trace lines, and the chat form of a tool trace.
//!
//! A **call** is `name(args)`: the name is everything before the first `(`, the arguments
//! everything between it and the last `)`, which must end the text (so `calc((1 + 2) * 3)`
//! has the arguments `(1 + 2) * 3`). A **trace line** is `call -> result`, cut at the last
//! ` -> ` as `world::verify_trace` cuts it.
//!
//! In **chat form** ([`trace_to_chat`]), which is how a model is trained to use tools and how
//! the runtime drives it, each trace line becomes
//! ```text
//! <|tool_call|>CALL<|/tool_call|><|tool_result|> RESULT<|/tool_result|>
//! ```
//! where the call is written by the model ([`Segment::Sampled`]) and the result is injected by
//! the runtime ([`Segment::Forced`]: a loss must not train on it), and the trace's closing
//! `Answer: X` line is written by the model. This is the layout of `tokenizer::chat`
//! (`tool_call_text`, `tool_result_text`: one newline after each result's closing tag).

/// Opens a tool call; must equal `tokenizer::Special::ToolCall.text()`
/// (crates/tokenizer/src/special.rs), which this crate does not depend on.
pub const TOOL_CALL: &str = "<|tool_call|>";
/// Closes a tool call; must equal `tokenizer::Special::ToolCallEnd.text()`.
pub const TOOL_CALL_END: &str = "<|/tool_call|>";
/// Opens a tool result; must equal `tokenizer::Special::ToolResult.text()`.
pub const TOOL_RESULT: &str = "<|tool_result|>";
/// Closes a tool result; must equal `tokenizer::Special::ToolResultEnd.text()`.
pub const TOOL_RESULT_END: &str = "<|/tool_result|>";

/// What separates a call from its result in a trace line.
pub const ARROW: &str = " -> ";

/// Why a text is not a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// No `(`.
    #[error("`{0}` is not a call: expected `name(arguments)`")]
    NotACall(String),
    /// The text does not end with `)`.
    #[error("call `{0}` does not end with `)`")]
    Unclosed(String),
    /// The name is empty or has characters other than letters, digits and `_`.
    #[error("`{0}` is not a tool name: use letters, digits and `_`")]
    BadName(String),
}

/// A parsed call: borrowed pieces of the call text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call<'a> {
    /// The tool's name (trimmed).
    pub name: &'a str,
    /// Everything between the first `(` and the last `)`, untrimmed.
    pub args: &'a str,
}

/// Parses `name(args)` (surrounding whitespace ignored).
pub fn parse_call(text: &str) -> Result<Call<'_>, ProtocolError> {
    let t = text.trim();
    let Some(open) = t.find('(') else { return Err(ProtocolError::NotACall(t.to_string())) };
    let Some(inner) = t[open + 1..].strip_suffix(')') else { return Err(ProtocolError::Unclosed(t.to_string())) };
    let name = t[..open].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ProtocolError::BadName(name.to_string()));
    }
    Ok(Call { name, args: inner })
}

/// The call text `name(args)`.
pub fn format_call(name: &str, args: &str) -> String {
    format!("{name}({args})")
}

/// A tool-trace line: `call -> result`.
pub fn format_trace_line(call: &str, result: &str) -> String {
    format!("{call}{ARROW}{result}")
}

/// Cuts a tool-trace line into `(call, result)`, both trimmed, at the last ` -> `; `None` if
/// there is no arrow or nothing before it.
pub fn split_trace_line(line: &str) -> Option<(&str, &str)> {
    let (call, result) = line.rsplit_once(ARROW)?;
    let call = call.trim();
    (!call.is_empty()).then_some((call, result.trim()))
}

/// A call as the model writes it: `<|tool_call|>CALL<|/tool_call|>`.
pub fn call_text(call: &str) -> String {
    format!("{TOOL_CALL}{call}{TOOL_CALL_END}")
}

/// A result as the runtime injects it, after one space and with the newline that follows:
/// `<|tool_result|> RESULT<|/tool_result|>\n`.
///
/// The space is there for the model: a byte-level BPE gives a word a different first token
/// after a space (` Lormet`) than after a special token (`Lormet`), and an answer line
/// (`Answer: Lormet`) writes it after a space. With the space, copying a result into the answer
/// repeats its tokens exactly; without it, the first token of every copy must be translated.
/// `tokenizer::chat::tool_result_text` is the same text.
pub fn result_text(result: &str) -> String {
    format!("{TOOL_RESULT} {result}{TOOL_RESULT_END}\n")
}

/// The results injected so far in a chat text, in order (each between `<|tool_result|>` and
/// `<|/tool_result|>`, trimmed): what the references `#k` of the next call name. An unclosed
/// result at the end is left out.
pub fn results_in(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(TOOL_RESULT) {
        let body = &rest[open + TOOL_RESULT.len()..];
        let Some(close) = body.find(TOOL_RESULT_END) else { break };
        out.push(body[..close].trim());
        rest = &body[close + TOOL_RESULT_END.len()..];
    }
    out
}

/// A piece of chat text and who produces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Written by the model (trained on; generated at inference).
    Sampled(String),
    /// Injected by the runtime (tool results: never trained on).
    Forced(String),
}

impl Segment {
    /// The text.
    pub fn text(&self) -> &str {
        match self {
            Self::Sampled(t) | Self::Forced(t) => t,
        }
    }

    /// Whether the runtime injects it.
    pub fn is_forced(&self) -> bool {
        matches!(self, Self::Forced(_))
    }
}

/// The segments' texts, concatenated.
pub fn segments_text(segments: &[Segment]) -> String {
    segments.iter().map(Segment::text).collect()
}

/// The segments' texts concatenated, and the byte ranges of the forced ones in that text (sorted
/// and disjoint): an SFT completion and what its loss must skip.
pub fn segments_with_forced(segments: &[Segment]) -> (String, Vec<(usize, usize)>) {
    let mut text = String::new();
    let mut forced = Vec::new();
    for s in segments {
        let start = text.len();
        text.push_str(s.text());
        if s.is_forced() && text.len() > start {
            forced.push((start, text.len()));
        }
    }
    (text, forced)
}

/// A world tool trace (`call -> result` lines, then `Answer: X`) in chat form (module docs).
///
/// Each call line gives a sampled call and a forced result; any other line (the `Answer:` line,
/// or prose) is sampled as it is, followed by a newline unless it is the last line. Adjacent
/// sampled pieces are merged, so segments alternate between sampled and forced.
pub fn trace_to_chat(tool_trace: &str) -> Vec<Segment> {
    fn sampled(out: &mut Vec<Segment>, text: String) {
        match out.last_mut() {
            Some(Segment::Sampled(prev)) => prev.push_str(&text),
            _ => out.push(Segment::Sampled(text)),
        }
    }
    let mut out = Vec::new();
    let lines: Vec<&str> = tool_trace.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        match split_trace_line(line) {
            Some((call, result)) if parse_call(call).is_ok() => {
                sampled(&mut out, call_text(call));
                out.push(Segment::Forced(result_text(result)));
            }
            _ => sampled(&mut out, if last { line.to_string() } else { format!("{line}\n") }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_lines() {
        assert_eq!(parse_call(" calc((1 + 2) * 3) "), Ok(Call { name: "calc", args: "(1 + 2) * 3" }));
        assert_eq!(parse_call("lookup(A, b)").map(|c| c.args), Ok("A, b"));
        assert!(matches!(parse_call("calc 1"), Err(ProtocolError::NotACall(_))));
        assert!(matches!(parse_call("calc(1"), Err(ProtocolError::Unclosed(_))));
        assert!(matches!(parse_call("(1)"), Err(ProtocolError::BadName(_))));
        assert_eq!(split_trace_line("lookup(A, birth_city) -> Lormet"), Some(("lookup(A, birth_city)", "Lormet")));
        assert_eq!(split_trace_line("Answer: x"), None);
        assert_eq!(format_trace_line("calc(1 + 1)", "2"), "calc(1 + 1) -> 2");
    }

    #[test]
    fn forced_ranges_cover_exactly_the_results() {
        let segs = trace_to_chat("lookup(A, birth_year) -> 1950\ncalc(1950 % 2) -> 0\nAnswer: yes");
        let (text, forced) = segments_with_forced(&segs);
        assert_eq!(text, segments_text(&segs));
        let pieces: Vec<&str> = forced.iter().map(|&(a, b)| &text[a..b]).collect();
        assert_eq!(pieces, [result_text("1950"), result_text("0")]);
        assert!(text.ends_with("Answer: yes") && text.starts_with(&call_text("lookup(A, birth_year)")));
        assert_eq!(results_in(&text), ["1950", "0"]);
        assert_eq!(results_in(&format!("{text}{TOOL_RESULT}unclosed")), ["1950", "0"]);
        assert!(results_in("Answer: 3").is_empty());
    }
}
