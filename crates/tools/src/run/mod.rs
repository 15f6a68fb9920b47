//! `run`: a small sandboxed language for the model to compute with.
//!
//! ```text
//! let x = 3; let s = 0;
//! while x > 0 { s = s + x; x = x - 1; }
//! print(s)                                   → 6
//! ```
//!
//! # Language
//! ```text
//! program := stmt*
//! stmt    := 'let' NAME '=' expr ';'         declare in the current block (or overwrite there)
//!          | NAME '=' expr ';'               assign to a declared variable
//!          | 'while' expr block             the condition must be a boolean
//!          | 'if' expr block ('else' (block | if-stmt))?
//!          | 'print' '(' expr ')' ';'
//!          | expr ';'
//! block   := '{' stmt* '}'                  variables declared inside end with the block
//! expr    := and ('or' and)*                 short-circuit
//! and     := not ('and' not)*                short-circuit
//! not     := 'not' not | cmp
//! cmp     := sum (('<' | '>' | '<=' | '>=' | '==' | '!=') sum)?
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/' | '%') unary)*
//! unary   := '-' unary | power
//! power   := atom (('^' | '**') unary)?      right-associative, exponent >= 0
//! atom    := INTEGER | 'true' | 'false' | NAME | '(' expr ')'
//! ```
//! A `;` may be left out before `}` and at the end of the program. Values are integers
//! ([`num_bigint::BigInt`]) and booleans; there is no implicit conversion between them. `/` and
//! `%` truncate toward zero (as in Rust, and as `calc`'s `%`). `==` and `!=` compare two values
//! of one type, the orderings two integers.
//!
//! # Result
//! Each `print` writes its value and a newline; the result is everything printed, without the
//! last newline. If nothing was printed and the program's last statement is an expression, the
//! result is its value (`let x = 6; x * 7` gives `42`); otherwise it is empty.
//!
//! # Sandbox
//! There is nothing to reach outside the program: `print` is the only builtin, and there are no
//! strings, files, processes, network, clock or randomness. Every resource is bounded by
//! [`RunLimits`] and running out is an error ([`RunError`]), never a panic, a hang or a stack
//! overflow:
//! - source length and nesting depth are checked by the parser; the syntax tree is only as deep
//!   as the nesting (chains like `a + b + c` are flat lists), so evaluating and dropping it
//!   recurses at most a bounded number of frames per level;
//! - every statement executed and every expression node evaluated costs one step of fuel;
//! - every number has at most `max_bits` bits, powers checked before they are computed;
//! - live variables are counted, and so is the size of their names and values;
//! - output is bounded in bytes.
//!
//! Why hand-written: the grammar is small, the depth limit has to be enforced while parsing
//! (100 000 `(` must fail before the stack does), and the tree has to be shaped so evaluation
//! is bounded too; no parser library gives both without as much glue as the parser itself.

mod eval;
mod parse;

use serde::{Deserialize, Serialize};

/// What a program may use. Each bound turns into an error, never a panic or a hang.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunLimits {
    /// Longest source in bytes: room for a loop or two, as a model would write in one call.
    pub max_len: usize,
    /// Deepest nesting of blocks, parentheses and unary operators: keeps recursion (parse,
    /// evaluation, drop) far from the stack limit of any thread.
    pub max_depth: usize,
    /// Steps of fuel: each statement executed and each expression node evaluated costs one.
    /// 100 000 steps run in milliseconds, and are plenty for the loops a trace needs.
    pub max_steps: u64,
    /// Most bits in any integer (about 1233 decimal digits), as in `calc`.
    pub max_bits: u64,
    /// Most live variables at once.
    pub max_vars: usize,
    /// Most bytes held by live variables: each costs its name, its value's bytes and 16 bytes.
    pub max_memory: usize,
    /// Most bytes of output: a tool result is read by a model with a short context.
    pub max_output: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_len: 4096,
            max_depth: 64,
            max_steps: 100_000,
            max_bits: 4096,
            max_vars: 256,
            max_memory: 64 * 1024,
            max_output: 4096,
        }
    }
}

/// Why a program did not finish. Positions are byte offsets into the source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// Nothing but whitespace.
    #[error("empty program: write e.g. `let x = 3; print(x * x)`")]
    Empty,
    /// The source is longer than [`RunLimits::max_len`].
    #[error("program is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// Length of the source in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Text that does not fit the grammar.
    #[error("unexpected {found} at byte {pos}: expected {expected}")]
    Syntax {
        /// Byte offset.
        pos: usize,
        /// What was there.
        found: String,
        /// What the grammar allows there.
        expected: String,
    },
    /// Nesting deeper than [`RunLimits::max_depth`].
    #[error("nesting deeper than {max} levels at byte {pos}")]
    TooDeep {
        /// Byte offset where the limit was passed.
        pos: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`RunLimits::max_steps`] steps.
    #[error("ran out of steps: the limit is {max} (an endless loop?)")]
    OutOfSteps {
        /// The limit.
        max: u64,
    },
    /// A literal or result with more than [`RunLimits::max_bits`] bits.
    #[error("number at byte {pos} would have more than {max_bits} bits")]
    TooBig {
        /// Byte offset of the literal or operator.
        pos: usize,
        /// The limit.
        max_bits: u64,
    },
    /// More than [`RunLimits::max_vars`] live variables.
    #[error("more than {max} variables at byte {pos}")]
    TooManyVariables {
        /// Byte offset of the declaration.
        pos: usize,
        /// The limit.
        max: usize,
    },
    /// Live variables hold more than [`RunLimits::max_memory`] bytes.
    #[error("variables would hold more than {max} bytes, at byte {pos}")]
    OutOfMemory {
        /// Byte offset of the declaration or assignment.
        pos: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`RunLimits::max_output`] bytes printed.
    #[error("output longer than {max} bytes, at byte {pos}")]
    OutputTooLong {
        /// Byte offset of the `print`.
        pos: usize,
        /// The limit.
        max: usize,
    },
    /// `/` or `%` by zero.
    #[error("division by zero at byte {pos}")]
    DivisionByZero {
        /// Byte offset of the operator.
        pos: usize,
    },
    /// A negative exponent (integers only).
    #[error("negative exponent at byte {pos}")]
    NegativeExponent {
        /// Byte offset of the operator.
        pos: usize,
    },
    /// An operation on a value of the wrong type.
    #[error("{message} at byte {pos}")]
    Type {
        /// Byte offset of the operator or condition.
        pos: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// A name that is not a live variable.
    #[error("unknown variable `{name}` at byte {pos} (declare it with `let {name} = ...;`)")]
    UnknownVariable {
        /// The name.
        name: String,
        /// Byte offset of the name.
        pos: usize,
    },
}

/// Runs `source` under the default [`RunLimits`]; the result is described in the module docs.
pub fn run(source: &str) -> Result<String, RunError> {
    run_with(source, &RunLimits::default())
}

/// Runs `source` under `limits`.
pub fn run_with(source: &str, limits: &RunLimits) -> Result<String, RunError> {
    if source.len() > limits.max_len {
        return Err(RunError::TooLong { len: source.len(), max: limits.max_len });
    }
    let program = parse::parse(source, limits)?;
    if program.is_empty() {
        return Err(RunError::Empty);
    }
    eval::execute(&program, limits)
}
