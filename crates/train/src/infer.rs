//! Text in, text out: completions of a prompt and chat turns, over [`model::generate`].
//!
//! Used by `ascent generate` and `ascent chat`. A completion ends at `<|eos|>`, at `<|end|>`
//! when the prompt is a chat prompt (an imported model: at any of its end-of-sequence ids), at
//! the first stop string, or after `max_new` tokens.

use std::sync::Mutex;

use model::burn::prelude::Device;
use model::generate::{generate_many, Finish, Job, Next};
use model::{Sampling, Transformer};
use serde::Serialize;
use tokenizer::{chat, Message, Role, Special, Tokenizer};

use crate::error::TrainError;

/// How to complete.
#[derive(Clone, Debug)]
pub struct CompleteOptions {
    pub sampling: Sampling,
    /// Tokens generated at most per completion (cut to what the context leaves).
    pub max_new: usize,
    /// Completions per prompt (random streams 0..n).
    pub n: usize,
    /// Completions decoded together per thread.
    pub batch: usize,
    /// Stop when the text contains one of these (the stop string is cut off).
    pub stop: Vec<String>,
}

impl Default for CompleteOptions {
    fn default() -> Self {
        Self { sampling: Sampling::greedy(), max_new: 64, n: 1, batch: 16, stop: Vec::new() }
    }
}

/// One completion.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tokens: Vec<u32>,
    /// Tokens the model chose (all of them here: nothing is injected).
    pub sampled: usize,
    pub finish: Finish,
}

/// The token budget left after `prompt` in the model's context.
fn budget(model: &Transformer, prompt_len: usize, want: usize) -> Result<usize, TrainError> {
    let max_seq = model.config().max_seq_len;
    if prompt_len == 0 {
        return Err(TrainError::Data("the prompt is empty".into()));
    }
    if prompt_len >= max_seq {
        return Err(TrainError::Data(format!(
            "the prompt has {prompt_len} tokens; the model's context holds {max_seq}"
        )));
    }
    Ok(want.min(max_seq - prompt_len))
}

/// Text before the first stop string, or `None` if none occurs.
fn cut_at_stop<'a>(text: &'a str, stop: &[String]) -> Option<&'a str> {
    stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min().map(|p| &text[..p])
}

/// `opts.n` completions of `prompt`. `on_token(i, text_so_far)` is called as completion `i`
/// grows (for streaming; called from worker threads).
pub fn complete(
    model: &Transformer,
    tok: &Tokenizer,
    prompt: &str,
    opts: &CompleteOptions,
    on_token: &(dyn Fn(usize, &str) + Sync),
    device: &Device,
) -> Result<Vec<Completion>, TrainError> {
    let ids = tok.encode_prompt(prompt);
    let max_new = budget(model, ids.len(), opts.max_new)?;
    // An ascent model ends a sequence with <|eos|> and, after a chat prompt, a turn with
    // <|end|>; an imported model at any of its end-of-sequence ids.
    let chat_prompt = !tok.is_foreign() && prompt.ends_with(Special::Assistant.text());
    let end_ids = tok.end_ids();
    let ends = |last: Option<u32>| match last {
        Some(l) if tok.is_foreign() => end_ids.contains(&l),
        _ => last == Some(Special::Eos.id()) || chat_prompt && chat::ends_turn(last),
    };
    let hook = |i: usize, tokens: &[u32], _: &[bool]| {
        if ends(tokens.last().copied()) {
            return Next::Stop;
        }
        let text = tok.decode(tokens);
        on_token(i, &text);
        if cut_at_stop(&text, &opts.stop).is_some() {
            Next::Stop
        } else {
            Next::Continue
        }
    };
    let jobs: Vec<Job> = (0..opts.n.max(1)).map(|i| Job { prompt: ids.clone(), stream: i as u64 }).collect();
    let gens =
        generate_many(model, &jobs, max_new, opts.batch, &opts.sampling, &hook, device).map_err(TrainError::Engine)?;
    Ok(gens
        .into_iter()
        .map(|g| {
            let mut tokens = g.tokens.clone();
            if ends(tokens.last().copied()) {
                tokens.pop();
            }
            let text = tok.decode(&tokens);
            let text = cut_at_stop(&text, &opts.stop).map(str::to_string).unwrap_or(text);
            Completion { text, sampled: g.sampled_count(), tokens, finish: g.finish }
        })
        .collect())
}

/// A conversation kept across turns (`ascent chat`).
pub struct ChatSession {
    pub messages: Vec<Message>,
}

impl ChatSession {
    pub fn new(system: Option<&str>) -> Self {
        Self { messages: system.map(|s| vec![Message::new(Role::System, s)]).unwrap_or_default() }
    }

    /// Adds the user's turn, generates the assistant's (streamed through `on_text` with the
    /// text so far) and keeps it in the conversation.
    pub fn reply(
        &mut self,
        model: &Transformer,
        tok: &Tokenizer,
        user: &str,
        opts: &CompleteOptions,
        on_text: &(dyn Fn(&str) + Sync),
        device: &Device,
    ) -> Result<Completion, TrainError> {
        self.messages.push(Message::new(Role::User, user));
        let prompt = tok.render_chat(&self.messages, true).map_err(|e| TrainError::Data(e.to_string()))?;
        let once = CompleteOptions { n: 1, ..opts.clone() };
        let shown = Mutex::new(());
        let r = complete(
            model,
            tok,
            &prompt,
            &once,
            &|_, text| {
                let _g = shown.lock();
                on_text(text)
            },
            device,
        );
        match r {
            Ok(mut c) => {
                let c = c.remove(0);
                self.messages.push(Message::new(Role::Assistant, c.text.clone()));
                Ok(c)
            }
            Err(e) => {
                self.messages.pop();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_cut_at_the_earliest() {
        let stop = vec!["\n".to_string(), "Answer".to_string()];
        assert_eq!(cut_at_stop("abc Answer: x\n", &stop), Some("abc "));
        assert_eq!(cut_at_stop("abc", &stop), None);
        assert_eq!(cut_at_stop("abc", &[String::new()]), None);
    }
}
