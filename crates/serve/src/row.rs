//! One generated sequence (a "row" of a batch) as the generation hook sees it: token by token,
//! what is reply text, reasoning, the final answer or a tool call; when the reply ends; what is
//! streamed to the client.
//!
//! In a chat reply the tokens are read with [`crate::prompt::ChatFormat::marker`] (an imported
//! model's tokens are all text but its end ids):
//! - `<|think|>`…`<|/think|>` is reasoning (`reasoning_content`), the rest is `content`;
//!   `<|answer|>`/`<|/answer|>` are dropped from the content, and what they enclose is the
//!   answer a self-consistency vote reads;
//! - `<|tool_call|>name(args)<|/tool_call|>` is a call: run by the server's tools when it has
//!   the tool (the result injected as forced tokens, the call reported in
//!   `ascent.executed_tool_calls`), otherwise returned to the client as an OpenAI `tool_calls`
//!   entry, ending the reply with `finish_reason: "tool_calls"` (one call per reply), when the
//!   request declared `tools` (and `tool_choice` is not `"none"`); else it stays in the content
//!   as text;
//! - the end of the turn ([`crate::prompt::ChatFormat::is_end`]) ends it, not shown.
//!
//! In a text completion every token is text and only the end of the sequence (and the end of the
//! turn, after a chat prompt) ends it. Either way a reply ends at the first `stop` string (cut off, never
//! streamed: text that could be the start of one is held back) or at its own `max_tokens`
//! (sampled and injected tokens together, `finish_reason: "length"`). A row whose client has
//! gone away stops at its next token.

use std::sync::Mutex;

use model::generate::Next;
use tokenizer::Tokenizer;
use tools::Registry;

use crate::engine::{ChoiceOut, ClientCall, Event, Executed, Finish, Request};
use crate::prompt::{self, Marker};

/// Most calls the server runs for one reply; the reply stops at the next one.
pub const MAX_TOOL_CALLS: usize = 16;

/// What the hook needs besides the row.
pub struct Ctx<'a> {
    pub tok: &'a Tokenizer,
    pub format: &'a prompt::ChatFormat,
    pub tools: Option<&'a Registry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Text,
    Think,
    /// Inside a call opened in the given phase.
    Call {
        in_think: bool,
    },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    in_answer: bool,
    content: Vec<u32>,
    reasoning: Vec<u32>,
    answer: Vec<u32>,
    call: Vec<u32>,
    sent_content: usize,
    sent_reasoning: usize,
    tool_calls: Vec<ClientCall>,
    executed: Vec<Executed>,
    sampled: usize,
    injected: usize,
    finish: Option<Finish>,
}

/// One row: a draw of one choice of one request.
pub struct Row {
    pub req: std::sync::Arc<Request>,
    /// Index of the prompt (completions take several), the choice and the draw within it.
    pub prompt: usize,
    pub choice: usize,
    pub draw: usize,
    /// Random stream of this row.
    pub stream: u64,
    /// Tokens this row may take (sampled and injected).
    pub max_new: usize,
    state: Mutex<State>,
}

impl Row {
    pub fn new(req: std::sync::Arc<Request>, prompt: usize, choice: usize, draw: usize, stream: u64) -> Self {
        let max_new = req.max_new[prompt];
        let state = State {
            phase: Phase::Text,
            in_answer: false,
            content: Vec::new(),
            reasoning: Vec::new(),
            answer: Vec::new(),
            call: Vec::new(),
            sent_content: 0,
            sent_reasoning: 0,
            tool_calls: Vec::new(),
            executed: Vec::new(),
            sampled: 0,
            injected: 0,
            finish: None,
        };
        Self { req, prompt, choice, draw, stream, max_new, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this row streams its text as it grows (a strategy shows only the chosen draw).
    fn streams(&self) -> bool {
        self.req.stream && self.req.strategy.is_none()
    }

    /// The hook: `tokens` and `forced` are everything this row generated so far.
    pub fn on_token(&self, ctx: &Ctx, tokens: &[u32], forced: &[bool]) -> Next {
        let mut st = self.lock();
        if st.finish.is_some() {
            return Next::Stop;
        }
        if self.req.cancelled() {
            return self.finish(ctx, &mut st, Finish::Cancelled, tokens, forced);
        }
        let (Some(&token), Some(&was_forced)) = (tokens.last(), forced.last()) else { return Next::Continue };
        let mut next = Next::Continue;
        if was_forced {
            st.injected += 1;
        } else {
            st.sampled += 1;
            if self.req.chat {
                match self.chat_token(ctx, &mut st, token) {
                    Ok(n) => next = n,
                    Err(finish) => return self.finish(ctx, &mut st, finish, tokens, forced),
                }
            } else if ctx.format.ends_text(token) || self.req.chat_prompt[self.prompt] && ctx.format.is_end(token) {
                return self.finish(ctx, &mut st, Finish::Stop, tokens, forced);
            } else {
                st.content.push(token);
            }
        }
        if !self.req.stop.is_empty() || self.streams() {
            let text = ctx.tok.decode(&st.content);
            if cut_at_stop(&text, &self.req.stop).is_some() {
                return self.finish(ctx, &mut st, Finish::Stop, tokens, forced);
            }
            if self.streams() {
                let keep = held_back(&text, &self.req.stop);
                self.send_delta(ctx, &mut st, &text[..text.len() - keep], false);
            }
        }
        if tokens.len() >= self.max_new {
            return self.finish(ctx, &mut st, Finish::Length, tokens, forced);
        }
        next
    }

    /// A sampled token of a chat reply: what to do next, or why the reply ends.
    fn chat_token(&self, ctx: &Ctx, st: &mut State, token: u32) -> Result<Next, Finish> {
        let m = ctx.format.marker(token);
        match (st.phase, m) {
            (_, Marker::End) => return Err(Finish::Stop),
            (Phase::Call { in_think }, Marker::CallClose) => {
                st.phase = if in_think { Phase::Think } else { Phase::Text };
                return self.call(ctx, st);
            }
            (Phase::Call { .. }, _) => st.call.push(token),
            (_, Marker::ThinkOpen) => st.phase = Phase::Think,
            (Phase::Think, Marker::ThinkClose) => st.phase = Phase::Text,
            (_, Marker::AnswerOpen) => st.in_answer = true,
            (_, Marker::AnswerClose) => st.in_answer = false,
            (p, Marker::CallOpen) => {
                st.call.clear();
                st.phase = Phase::Call { in_think: p == Phase::Think };
            }
            (_, Marker::CallClose | Marker::ThinkClose | Marker::Hidden) => {}
            (Phase::Think, Marker::Text) => st.reasoning.push(token),
            (Phase::Text, Marker::Text) => {
                st.content.push(token);
                if st.in_answer {
                    st.answer.push(token);
                }
            }
        }
        Ok(Next::Continue)
    }

    /// The model closed a call: run it here, or hand it to the client.
    fn call(&self, ctx: &Ctx, st: &mut State) -> Result<Next, Finish> {
        let text = ctx.tok.decode(&st.call);
        if !ctx.format.project_calls() {
            // An imported model's Hermes-style call: the client runs it.
            if let (Some((name, arguments)), true) = (prompt::hermes_call(&text), self.req.client_calls) {
                st.tool_calls.push(ClientCall { id: crate::engine::new_id("call_"), name, arguments });
                return Err(Finish::ToolCalls);
            }
            return Ok(self.call_as_text(ctx, st));
        }
        let parsed = tools::parse_call(&text).ok().map(|c| (c.name.to_string(), c.args.to_string()));
        let declared = |name: &str| self.req.client_tools.iter().find(|t| t.name == name);
        let run_here = match (&parsed, ctx.tools) {
            (_, None) => false,
            (Some((name, _)), Some(reg)) => reg.get(name).is_some() || declared(name).is_none(),
            (None, Some(_)) => true, // a malformed call: the model is told what is wrong
        };
        if let (true, Some(reg)) = (run_here, ctx.tools) {
            if st.executed.len() >= MAX_TOOL_CALLS {
                return Err(Finish::Stop);
            }
            let earlier: Vec<&str> = st.executed.iter().map(|e| e.result.as_str()).collect();
            let result = reg.call_text_after(&text, &earlier);
            let (name, args) = parsed.unwrap_or_default();
            let call = Executed {
                arguments: prompt::openai_arguments(&name, &args, declared(&name)),
                name,
                call: text,
                result: result.clone(),
            };
            if self.streams() {
                self.req.send(Event::Executed { choice: self.choice, call: call.clone() });
            }
            st.executed.push(call);
            return Ok(Next::Inject(ctx.tok.encode(&prompt::result_text(&result))));
        }
        match parsed {
            Some((name, args)) if self.req.client_calls => {
                let arguments = prompt::openai_arguments(&name, &args, declared(&name));
                st.tool_calls.push(ClientCall { id: crate::engine::new_id("call_"), name, arguments });
                Err(Finish::ToolCalls)
            }
            // Not a call, or no tools to call.
            _ => Ok(self.call_as_text(ctx, st)),
        }
    }

    /// Keeps the call the model wrote as text, its markup included.
    fn call_as_text(&self, ctx: &Ctx, st: &mut State) -> Next {
        let (open, close) = ctx.format.call_marks();
        st.content.extend(open);
        st.content.extend(st.call.clone());
        st.content.extend(close);
        Next::Continue
    }

    /// Streams the text grown past what was sent (`final_` sends everything, else a trailing
    /// partial character is held back).
    fn send_delta(&self, ctx: &Ctx, st: &mut State, content: &str, final_: bool) {
        let content = visible(ctx, st, content);
        let reasoning = ctx.tok.decode(&st.reasoning);
        let upto = |s: &str| if final_ { s.len() } else { s.len() - partial_char(s) };
        let c_end = upto(content);
        let r_end = upto(&reasoning);
        let c = content.get(st.sent_content..c_end).unwrap_or("");
        let r = reasoning.get(st.sent_reasoning..r_end).unwrap_or("");
        if c.is_empty() && r.is_empty() {
            return;
        }
        self.req.send(Event::Delta { choice: self.choice, content: c.to_string(), reasoning: r.to_string() });
        st.sent_content = st.sent_content.max(c_end);
        st.sent_reasoning = st.sent_reasoning.max(r_end);
    }

    /// Ends the row: final texts, the last delta, and the request's bookkeeping.
    fn finish(&self, ctx: &Ctx, st: &mut State, finish: Finish, tokens: &[u32], forced: &[bool]) -> Next {
        st.finish = Some(finish);
        let text = ctx.tok.decode(&st.content);
        let content = cut_at_stop(&text, &self.req.stop).unwrap_or(&text).to_string();
        let content = match visible(ctx, st, &content) {
            // What an imported model writes between its reasoning and its calls is layout.
            c if finish == Finish::ToolCalls && !ctx.format.project_calls() && c.trim().is_empty() => String::new(),
            c => c.to_string(),
        };
        if self.streams() && finish != Finish::Cancelled {
            self.send_delta(ctx, st, &content, true);
        }
        let out = ChoiceOut {
            index: self.choice,
            reasoning: ctx.tok.decode(&st.reasoning),
            answer: ctx.tok.decode(&st.answer),
            content,
            tool_calls: std::mem::take(&mut st.tool_calls),
            executed: std::mem::take(&mut st.executed),
            finish,
            sampled: st.sampled,
            injected: st.injected,
            tokens: tokens.to_vec(),
            forced: forced.to_vec(),
            strategy: None,
        };
        if self.streams() && finish != Finish::Cancelled {
            self.req.send(Event::Finished(Box::new(out.clone())));
        }
        self.req.row_done(self.choice, self.draw, out);
        Next::Stop
    }

    /// Called after generation: a row the hook did not end (the batch ran out of steps) ends now.
    pub fn ensure_finished(&self, ctx: &Ctx, tokens: &[u32], forced: &[bool]) {
        let mut st = self.lock();
        if st.finish.is_none() {
            self.finish(ctx, &mut st, Finish::Length, tokens, forced);
        }
    }
}

/// The content as shown: an imported model's reply after a reasoning block starts after the
/// newlines that close it (`</think>\n\n`).
fn visible<'t>(ctx: &Ctx, st: &State, content: &'t str) -> &'t str {
    if !ctx.format.project_calls() && !st.reasoning.is_empty() {
        content.trim_start_matches('\n')
    } else {
        content
    }
}

/// Text before the first stop string, or `None` if none occurs.
pub fn cut_at_stop<'a>(text: &'a str, stop: &[String]) -> Option<&'a str> {
    stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min().map(|p| &text[..p])
}

/// Bytes at the end of `text` not to stream yet: the longest tail that begins a stop string,
/// and a trailing partial character.
fn held_back(text: &str, stop: &[String]) -> usize {
    let mut keep = partial_char(text);
    for s in stop {
        for (i, _) in s.char_indices().skip(1) {
            if text.ends_with(&s[..i]) {
                keep = keep.max(i);
            }
        }
    }
    keep
}

/// Length of the trailing replacement characters of a partial UTF-8 sequence being decoded:
/// one for a byte-level decoder, one per byte token (at most three: a character has four bytes)
/// for a byte-fallback one (SentencePiece's `<0xNN>` tokens).
fn partial_char(text: &str) -> usize {
    let n = text.chars().rev().take(3).take_while(|&c| c == '\u{FFFD}').count();
    n * '\u{FFFD}'.len_utf8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_cut_and_their_starts_held_back() {
        let stop = vec!["END".to_string(), "\n\n".to_string()];
        assert_eq!(cut_at_stop("abc END x", &stop), Some("abc "));
        assert_eq!(cut_at_stop("abc", &stop), None);
        assert_eq!(held_back("abc EN", &stop), 2);
        assert_eq!(held_back("abc\n", &stop), 1);
        assert_eq!(held_back("abc", &stop), 0);
        assert_eq!(held_back("ab\u{FFFD}", &[]), 3);
        assert_eq!(held_back("ab\u{FFFD}\u{FFFD}", &[]), 6);
        assert_eq!(held_back("\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}", &[]), 9);
    }
}
