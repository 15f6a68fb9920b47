//! Tools a model calls while it answers, and the protocol it calls them with.
//!
//! - [`calc`](mod@calc): exact integer and rational arithmetic, and one comparison answered `yes`/`no`:
//!   `calc(1948 < 1950) -> yes`, `calc(7 / 2) -> 7/2`, `calc(abs(1948 - 1950)) -> 2`.
//! - [`run`](mod@run): a small sandboxed language (integers, booleans, `let`, `if`, `while`, `print`)
//!   with fuel, memory, output and depth limits.
//! - [`kb`]: `lookup(entity, relation)` and `find(relation=object, ...)` over a list of
//!   `world::Fact`s, answering exactly as the world's tool traces do.
//! - [`Tool`] and [`Registry`]: tools by name, each answering with text; errors are the text
//!   `error: ...`, so the model sees them. A call's arguments may name the result of an earlier
//!   call of the same answer as `#k` ([`world::refs`], [`Registry::call_text_after`]).
//! - [`protocol`]: call texts `name(args)`, trace lines `call -> result`, and a world tool
//!   trace in chat form ([`trace_to_chat`]): model-written calls and runtime-injected results
//!   between the reserved `<|tool_call|>` / `<|tool_result|>` tokens.
//!
//! Nothing here panics, hangs or overflows the stack on what a model writes: every input is
//! bounded ([`CalcLimits`], [`RunLimits`]) and every failure is a value. The crate has no tensor
//! engine and no IO; it depends on `world` only for its facts, name normalisation and references.

pub mod calc;
pub mod kb;
mod num;
pub mod protocol;
mod registry;
pub mod run;

pub use calc::{calc, CalcError, CalcLimits, CalcValue};
pub use kb::{KbError, KnowledgeMap};
pub use protocol::{
    parse_call, results_in, segments_with_forced, split_trace_line, trace_to_chat, Call, ProtocolError, Segment,
};
pub use registry::{error_text, CalcTool, FindTool, LookupTool, Registry, RunTool, Tool, NO_OUTPUT};
pub use run::{run, run_with, RunError, RunLimits};
