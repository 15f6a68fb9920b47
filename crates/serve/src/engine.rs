//! Requests inside the engine and what comes out of them: a [`Spec`] (what a handler asks
//! for, validated), the [`Request`] that collects its rows' results, the [`Event`]s its handler
//! receives (text deltas, calls the server ran, finished choices, the answer or a failure), and
//! the answer's parts ([`ChoiceOut`], [`Usage`]). The scheduler that generates them is
//! [`crate::scheduler`].
//!
//! A request is answered when its last row ends ([`Request::row_done`]), or, under a test-time
//! strategy, after its batch, when all its draws are in ([`Request::answer_strategy`]). One
//! line is logged per answered request: id, prompt and completion tokens, milliseconds, finish
//! reasons, and whether the client had gone.

use std::sync::Mutex;
use std::time::Instant;

use model::burn::prelude::Device;
use model::{Sampling, Transformer};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::prompt::ToolSpec;
use crate::strategy::{self, Strategy};

/// Why a choice ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
    /// The client went away.
    Cancelled,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::Cancelled => "cancelled",
        }
    }
}

/// A call the model made that the client is to run.
#[derive(Clone, Debug, Serialize)]
pub struct ClientCall {
    pub id: String,
    pub name: String,
    /// JSON text.
    pub arguments: String,
}

/// A call the server ran, and its result (what the model saw).
#[derive(Clone, Debug, Serialize)]
pub struct Executed {
    pub name: String,
    pub arguments: String,
    /// The call as the model wrote it, `name(args)`.
    pub call: String,
    pub result: String,
}

/// One finished choice (or one draw of it).
#[derive(Clone, Debug)]
pub struct ChoiceOut {
    pub index: usize,
    pub content: String,
    pub reasoning: String,
    /// The text inside `<|answer|>`…`<|/answer|>`, if the model wrote one.
    pub answer: String,
    pub tool_calls: Vec<ClientCall>,
    pub executed: Vec<Executed>,
    pub finish: Finish,
    pub sampled: usize,
    pub injected: usize,
    pub tokens: Vec<u32>,
    pub forced: Vec<bool>,
    /// How a strategy chose this draw.
    pub strategy: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// What the engine tells a request's handler.
#[derive(Debug)]
pub enum Event {
    /// New text of a choice.
    Delta {
        choice: usize,
        content: String,
        reasoning: String,
    },
    /// The server ran a call for a choice.
    Executed {
        choice: usize,
        call: Executed,
    },
    /// A streamed choice ended.
    Finished(Box<ChoiceOut>),
    /// Every choice, in order, and the token counts.
    Done {
        choices: Vec<ChoiceOut>,
        usage: Usage,
    },
    Failed(ApiError),
}

/// What a handler asks for; validated before it gets here.
pub struct Spec {
    pub id: String,
    /// A chat reply (reasoning, tool calls) rather than a text completion.
    pub chat: bool,
    pub prompts: Vec<Vec<u32>>,
    /// Per prompt: whether it ends with the assistant's header (a completion of a chat prompt).
    pub chat_prompt: Vec<bool>,
    /// Per prompt: tokens each of its rows may take.
    pub max_new: Vec<usize>,
    pub n: usize,
    pub strategy: Option<Strategy>,
    /// Draws per choice (1 without a strategy).
    pub draws: usize,
    /// Sampling settings (the seed is applied through the rows' streams).
    pub sampling: Sampling,
    pub seed: u64,
    pub stop: Vec<String>,
    pub client_tools: Vec<ToolSpec>,
    /// Calls the server does not run go back to the client as `tool_calls` (the request
    /// declared tools and did not say `tool_choice: "none"`).
    pub client_calls: bool,
    pub stream: bool,
    /// Streamed: end with a usage chunk.
    pub include_usage: bool,
}

struct Progress {
    /// `[choice][draw]`.
    results: Vec<Vec<Option<ChoiceOut>>>,
    left: usize,
    answered: bool,
}

/// A request inside the engine.
pub struct Request {
    spec: Spec,
    events: UnboundedSender<Event>,
    /// The admission slot, given back as the answer is sent (before the batch ends).
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    started: Instant,
    progress: Mutex<Progress>,
}

impl std::ops::Deref for Request {
    type Target = Spec;
    fn deref(&self) -> &Spec {
        &self.spec
    }
}

impl Request {
    pub fn new(spec: Spec, events: UnboundedSender<Event>, permit: Option<OwnedSemaphorePermit>) -> Self {
        let choices = spec.prompts.len() * spec.n;
        let progress =
            Progress { results: vec![vec![None; spec.draws]; choices], left: choices * spec.draws, answered: false };
        Self { spec, events, permit: Mutex::new(permit), started: Instant::now(), progress: Mutex::new(progress) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rows this request adds to a batch.
    pub fn rows(&self) -> usize {
        self.prompts.len() * self.n * self.draws
    }

    /// The client is gone.
    pub fn cancelled(&self) -> bool {
        self.events.is_closed()
    }

    pub fn send(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Gives the admission slot back.
    fn release(&self) {
        self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Records a finished row; answers the request when it was the last one (strategies are
    /// answered by [`Request::answer_strategy`] after their batch).
    pub fn row_done(&self, choice: usize, draw: usize, out: ChoiceOut) {
        let mut guard = self.lock();
        let p = &mut *guard;
        if let Some(slot) = p.results.get_mut(choice).and_then(|c| c.get_mut(draw)) {
            if slot.is_none() {
                p.left -= 1;
            }
            *slot = Some(out);
        }
        if p.left == 0 && self.strategy.is_none() && !p.answered {
            p.answered = true;
            let choices: Vec<ChoiceOut> = p.results.iter_mut().filter_map(|d| d[0].take()).collect();
            drop(guard);
            self.answer(choices);
        }
    }

    fn usage(&self, completion_tokens: usize) -> Usage {
        let prompt_tokens = self.prompts.iter().map(Vec::len).sum();
        Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }

    fn answer(&self, choices: Vec<ChoiceOut>) {
        self.answer_counting(choices, None)
    }

    fn answer_counting(&self, choices: Vec<ChoiceOut>, draws_sampled: Option<usize>) {
        let sampled = draws_sampled.unwrap_or_else(|| choices.iter().map(|c| c.sampled).sum());
        let usage = self.usage(sampled);
        let finish: Vec<&str> = choices.iter().map(|c| c.finish.as_str()).collect();
        tracing::info!(
            id = %self.id,
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            ms = self.started.elapsed().as_millis() as u64,
            finish = ?finish,
            cancelled = self.cancelled(),
            "request"
        );
        self.release();
        self.send(Event::Done { choices, usage });
    }

    /// Fails the request unless it was answered.
    pub fn fail(&self, e: ApiError) {
        let mut p = self.lock();
        if !p.answered {
            p.answered = true;
            drop(p);
            tracing::error!(id = %self.id, "{}", e.message);
            self.release();
            self.send(Event::Failed(e));
        }
    }

    /// Chooses one draw per choice by the request's strategy and answers.
    pub(crate) fn answer_strategy(&self, model: &Transformer, device: &Device) {
        let Some(strategy) = self.strategy else { return };
        let mut p = self.lock();
        if p.answered || p.left > 0 {
            return;
        }
        p.answered = true;
        let results = std::mem::take(&mut p.results);
        drop(p);
        let mut sampled = 0;
        let mut choices = Vec::new();
        for (c, draws) in results.into_iter().enumerate() {
            let draws: Vec<ChoiceOut> = draws.into_iter().flatten().collect();
            sampled += draws.iter().map(|d| d.sampled).sum::<usize>();
            let prompt = &self.prompts[c / self.n];
            match strategy::choose(strategy, draws, |d| strategy::mean_logprob(model, device, prompt, d)) {
                Ok(chosen) => choices.push(chosen),
                Err(e) => {
                    self.release();
                    return self.send(Event::Failed(ApiError::internal(e)));
                }
            }
        }
        self.answer_counting(choices, Some(sampled));
    }
}

/// An id like `chatcmpl-3f9a…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}
