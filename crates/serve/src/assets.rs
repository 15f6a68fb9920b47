//! The web chat page, embedded in the binary (plain HTML, CSS and JavaScript under
//! `crates/serve/assets/`, no build step and nothing fetched from elsewhere).
//!
//! The page talks to `POST /v1/chat/completions` with `stream: true`, reads the server-sent
//! events with `fetch` and a `ReadableStream` reader, and shows tokens as they arrive; reasoning
//! (`reasoning_content`) and tool calls (the client's `tool_calls` and the server's
//! `ascent.executed_tool_call`) sit in collapsible sections. Settings: temperature, max tokens,
//! test-time strategy and its number of samples, and a system message.

pub const INDEX_HTML: &str = include_str!("../assets/index.html");
pub const APP_JS: &str = include_str!("../assets/app.js");
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
