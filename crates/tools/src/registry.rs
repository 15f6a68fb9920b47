//! The [`Tool`] trait, the standard tools, and the [`Registry`] that calls them by name.
//!
//! A tool takes the text between the call's parentheses and answers with text, always: an error
//! is the text `error: ...` (what went wrong and where), because the model must see it and can
//! recover from it. Nothing here panics on what a model writes.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;

use world::Fact;

use crate::calc::{eval, CalcLimits};
use crate::kb::KnowledgeMap;
use crate::protocol::parse_call;
use crate::run::{run_with, RunLimits};

/// A tool the model can call. `Send + Sync` so one registry serves generation on many threads.
pub trait Tool: Send + Sync {
    /// The name the model calls it by (`calc`).
    fn name(&self) -> &str;
    /// One line for a system prompt: the call form and an example.
    fn describe(&self) -> &str;
    /// The result of a call with these arguments (the text between the parentheses); an error
    /// is returned as `error: ...` text.
    fn call(&self, args: &str) -> String;
}

/// The result text of an error: `error: {e}`.
pub fn error_text(e: impl Display) -> String {
    format!("error: {e}")
}

/// `calc(expression)`: exact arithmetic ([`calc`](mod@crate::calc)).
#[derive(Clone, Debug, Default)]
pub struct CalcTool {
    /// Bounds on the input and on every number.
    pub limits: CalcLimits,
}

impl Tool for CalcTool {
    fn name(&self) -> &str {
        "calc"
    }

    fn describe(&self) -> &str {
        "calc(expression): exact arithmetic on integers and fractions (+ - * / % ^ and parentheses), \
         or one comparison (< > <= >= == !=) answered yes or no; e.g. calc(1975 % 2) -> 1"
    }

    fn call(&self, args: &str) -> String {
        eval(args, &self.limits).map_or_else(error_text, |v| v.to_string())
    }
}

/// `run(program)`: a sandboxed little language ([`run`](mod@crate::run)).
#[derive(Clone, Debug, Default)]
pub struct RunTool {
    /// Bounds on the program's source, steps, memory and output.
    pub limits: RunLimits,
}

/// What `run` answers when a program printed nothing and ended without an expression.
pub const NO_OUTPUT: &str = "(no output: use print(...))";

impl Tool for RunTool {
    fn name(&self) -> &str {
        "run"
    }

    fn describe(&self) -> &str {
        "run(program): integers, booleans, let, =, if/else, while, and/or/not, print(x); \
         e.g. run(let s = 0; let i = 1; while i <= 10 { s = s + i; i = i + 1; } print(s)) -> 55"
    }

    fn call(&self, args: &str) -> String {
        match run_with(args, &self.limits) {
            Ok(out) if out.is_empty() => NO_OUTPUT.to_string(),
            Ok(out) => out,
            Err(e) => error_text(e),
        }
    }
}

/// `lookup(entity, relation)` over a [`KnowledgeMap`].
#[derive(Clone, Debug)]
pub struct LookupTool {
    kb: Arc<KnowledgeMap>,
}

impl LookupTool {
    /// A lookup over `kb` (shared with a [`FindTool`], say).
    pub fn new(kb: Arc<KnowledgeMap>) -> Self {
        Self { kb }
    }
}

impl Tool for LookupTool {
    fn name(&self) -> &str {
        "lookup"
    }

    fn describe(&self) -> &str {
        "lookup(entity, relation): the object of a fact; e.g. lookup(Ilona Varsk, birth_city) -> Lormet"
    }

    fn call(&self, args: &str) -> String {
        self.kb.lookup_call(args).unwrap_or_else(error_text)
    }
}

/// `find(relation=object, ...)` over a [`KnowledgeMap`].
#[derive(Clone, Debug)]
pub struct FindTool {
    kb: Arc<KnowledgeMap>,
}

impl FindTool {
    /// A find over `kb`.
    pub fn new(kb: Arc<KnowledgeMap>) -> Self {
        Self { kb }
    }
}

impl Tool for FindTool {
    fn name(&self) -> &str {
        "find"
    }

    fn describe(&self) -> &str {
        "find(relation=object, ...): every entity with all these facts, sorted; \
         e.g. find(birth_year=1948, birth_city=Lormet) -> Ilona Varsk"
    }

    fn call(&self, args: &str) -> String {
        self.kb.find_call(args).unwrap_or_else(error_text)
    }
}

/// Tools by name.
#[derive(Default)]
pub struct Registry {
    tools: BTreeMap<String, Box<dyn Tool>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("tools", &self.names()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// `calc` and `run` with default limits, and `lookup` and `find` over `facts`.
    pub fn standard(facts: &[Fact]) -> Self {
        let kb = Arc::new(KnowledgeMap::new(facts));
        let mut r = Self::new();
        r.register(CalcTool::default());
        r.register(RunTool::default());
        r.register(LookupTool::new(Arc::clone(&kb)));
        r.register(FindTool::new(kb));
        r
    }

    /// Adds `tool` under its name; returns the tool it replaces, if any.
    pub fn register<T: Tool + 'static>(&mut self, tool: T) -> Option<Box<dyn Tool>> {
        self.tools.insert(tool.name().to_string(), Box::new(tool))
    }

    /// The tools' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tools.keys().map(String::as_str).collect()
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Tool> {
        self.tools.get(name).map(|t| t.as_ref())
    }

    /// One line per tool ([`Tool::describe`]), in name order: for a system prompt.
    pub fn describe(&self) -> String {
        self.tools.values().map(|t| t.describe()).collect::<Vec<_>>().join("\n")
    }

    /// The result of calling `name` with `args`; `error: unknown tool ...` if there is none.
    pub fn call(&self, name: &str, args: &str) -> String {
        match self.tools.get(name) {
            Some(tool) => tool.call(args),
            None => format!("error: unknown tool `{name}` (known: {})", self.names().join(", ")),
        }
    }

    /// The result of a call text `name(args)` ([`parse_call`]) made first in an answer; a
    /// malformed call is an error text. [`Registry::call_text_after`] with no earlier results.
    pub fn call_text(&self, call: &str) -> String {
        self.call_text_after(call, &[])
    }

    /// The result of a call text `name(args)` made after calls that gave `earlier` (in order):
    /// each reference `#k` in the arguments is first replaced by the k-th of them
    /// ([`world::refs`]); a reference to no result or to a failed call is an error text, and so
    /// is a malformed call.
    pub fn call_text_after(&self, call: &str, earlier: &[&str]) -> String {
        let c = match parse_call(call) {
            Ok(c) => c,
            Err(e) => return error_text(e),
        };
        match world::refs::resolve(c.args, earlier) {
            Ok(args) => self.call(c.name, &args),
            Err(e) => error_text(e),
        }
    }
}
