//! The interpreter of `run` programs: a tree walk with fuel, bounded numbers, counted memory and
//! bounded output (limits in [`RunLimits`]).
//!
//! Variables live in one stack; each block remembers where its variables start and drops them
//! when it ends. Errors abandon the whole run, so nothing needs unwinding.

use std::fmt;

use num_bigint::{BigInt, Sign};
use num_traits::{One, Signed, Zero};

use super::parse::{ArithOp, CmpOp, Expr, Pos, Stmt};
use super::{RunError, RunLimits};
use crate::num::{fits, pow_exponent};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Int(BigInt),
    Bool(bool),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Bool(_) => "a boolean",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Bytes a live variable is charged: its name, its value and a fixed 16 for bookkeeping.
fn var_size(name: &str, v: &Value) -> usize {
    let value = match v {
        Value::Int(n) => usize::try_from(n.bits().div_ceil(8)).unwrap_or(usize::MAX),
        Value::Bool(_) => 1,
    };
    16usize.saturating_add(name.len()).saturating_add(value)
}

fn type_error(pos: Pos, message: String) -> RunError {
    RunError::Type { pos, message }
}

fn int(v: Value, pos: Pos, what: &str) -> Result<BigInt, RunError> {
    match v {
        Value::Int(n) => Ok(n),
        other => Err(type_error(pos, format!("{what} needs an integer, found {}", other.type_name()))),
    }
}

fn boolean(v: Value, pos: Pos, what: &str) -> Result<bool, RunError> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(type_error(pos, format!("{what} needs a boolean, found {}", other.type_name()))),
    }
}

/// Runs a parsed program; the result is described in the module docs of `run`.
pub(super) fn execute(program: &[Stmt], limits: &RunLimits) -> Result<String, RunError> {
    let mut m = Machine { limits, steps: 0, vars: Vec::new(), memory: 0, out: String::new() };
    let mut last = None;
    for stmt in program {
        last = m.exec(stmt)?;
    }
    if m.out.is_empty() {
        return Ok(last.map(|v| v.to_string()).unwrap_or_default());
    }
    m.out.pop(); // the newline after the last print
    Ok(m.out)
}

struct Machine<'l> {
    limits: &'l RunLimits,
    steps: u64,
    /// Live variables, innermost last.
    vars: Vec<(String, Value)>,
    /// Bytes charged for `vars` ([`var_size`]).
    memory: usize,
    out: String,
}

impl Machine<'_> {
    fn tick(&mut self) -> Result<(), RunError> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(RunError::OutOfSteps { max: self.limits.max_steps });
        }
        Ok(())
    }

    fn bounded(&self, n: BigInt, pos: Pos) -> Result<BigInt, RunError> {
        if fits(&n, self.limits.max_bits) {
            Ok(n)
        } else {
            Err(RunError::TooBig { pos, max_bits: self.limits.max_bits })
        }
    }

    /// Replaces the memory charge `old` by `new`, failing past the limit.
    fn charge(&mut self, old: usize, new: usize, pos: Pos) -> Result<(), RunError> {
        let memory = self.memory - old + new;
        if memory > self.limits.max_memory {
            return Err(RunError::OutOfMemory { pos, max: self.limits.max_memory });
        }
        self.memory = memory;
        Ok(())
    }

    /// Runs a block: its variables start at the current end of the stack and end with it.
    fn block(&mut self, body: &[Stmt]) -> Result<(), RunError> {
        let scope = self.vars.len();
        for stmt in body {
            self.exec_in(stmt, scope)?;
        }
        let dropped: usize = self.vars[scope..].iter().map(|(n, v)| var_size(n, v)).sum();
        self.memory -= dropped;
        self.vars.truncate(scope);
        Ok(())
    }

    /// A top-level statement; the value of an expression statement is returned.
    fn exec(&mut self, stmt: &Stmt) -> Result<Option<Value>, RunError> {
        self.exec_in(stmt, 0)
    }

    /// A statement in the block whose variables start at `scope`.
    fn exec_in(&mut self, stmt: &Stmt, scope: usize) -> Result<Option<Value>, RunError> {
        self.tick()?;
        match stmt {
            Stmt::Let { name, value, pos } => {
                let v = self.eval(value)?;
                let new = var_size(name, &v);
                if let Some(i) = self.vars[scope..].iter().position(|(n, _)| n == name) {
                    let slot = scope + i;
                    let old = var_size(name, &self.vars[slot].1);
                    self.charge(old, new, *pos)?;
                    self.vars[slot].1 = v;
                } else {
                    if self.vars.len() >= self.limits.max_vars {
                        return Err(RunError::TooManyVariables { pos: *pos, max: self.limits.max_vars });
                    }
                    self.charge(0, new, *pos)?;
                    self.vars.push((name.clone(), v));
                }
            }
            Stmt::Assign { name, value, pos } => {
                let v = self.eval(value)?;
                let Some(slot) = self.vars.iter().rposition(|(n, _)| n == name) else {
                    return Err(RunError::UnknownVariable { name: name.clone(), pos: *pos });
                };
                let old = var_size(name, &self.vars[slot].1);
                self.charge(old, var_size(name, &v), *pos)?;
                self.vars[slot].1 = v;
            }
            Stmt::While { cond, body, pos } => {
                while boolean(self.eval(cond)?, *pos, "the condition of `while`")? {
                    self.block(body)?;
                }
            }
            Stmt::If { cond, then, otherwise, pos } => {
                if boolean(self.eval(cond)?, *pos, "the condition of `if`")? {
                    self.block(then)?;
                } else {
                    self.block(otherwise)?;
                }
            }
            Stmt::Print { value, pos } => {
                let text = self.eval(value)?.to_string();
                if self.out.len() + text.len() + 1 > self.limits.max_output {
                    return Err(RunError::OutputTooLong { pos: *pos, max: self.limits.max_output });
                }
                self.out.push_str(&text);
                self.out.push('\n');
            }
            Stmt::Expr(e) => return Ok(Some(self.eval(e)?)),
        }
        Ok(None)
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, RunError> {
        self.tick()?;
        match e {
            Expr::Int(n) => Ok(Value::Int(n.clone())),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::Var { name, pos } => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => Ok(v.clone()),
                None => Err(RunError::UnknownVariable { name: name.clone(), pos: *pos }),
            },
            Expr::Neg { operand, pos } => Ok(Value::Int(-int(self.eval(operand)?, *pos, "`-`")?)),
            Expr::Not { operand, pos } => Ok(Value::Bool(!boolean(self.eval(operand)?, *pos, "`not`")?)),
            Expr::Pow { base, exp, pos } => {
                let b = int(self.eval(base)?, *pos, "`^`")?;
                let e = int(self.eval(exp)?, *pos, "`^`")?;
                let n = self.power(&b, &e, *pos)?;
                Ok(Value::Int(self.bounded(n, *pos)?))
            }
            Expr::Arith { first, rest } => {
                let first_pos = rest.first().map_or(0, |(_, p, _)| *p);
                let mut acc = int(self.eval(first)?, first_pos, "arithmetic")?;
                for (op, pos, operand) in rest {
                    let rhs = int(self.eval(operand)?, *pos, "arithmetic")?;
                    let n = match op {
                        ArithOp::Add => acc + rhs,
                        ArithOp::Sub => acc - rhs,
                        ArithOp::Mul => acc * rhs,
                        _ if rhs.is_zero() => return Err(RunError::DivisionByZero { pos: *pos }),
                        ArithOp::Div => acc / rhs,
                        ArithOp::Rem => acc % rhs,
                    };
                    acc = self.bounded(n, *pos)?;
                }
                Ok(Value::Int(acc))
            }
            Expr::Cmp { lhs, op, rhs, pos } => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                let truth = match (op, &a, &b) {
                    (CmpOp::Eq, _, _) | (CmpOp::Ne, _, _) if a.type_name() != b.type_name() => {
                        return Err(type_error(
                            *pos,
                            format!("comparing {} with {}, which never match", a.type_name(), b.type_name()),
                        ))
                    }
                    (CmpOp::Eq, _, _) => a == b,
                    (CmpOp::Ne, _, _) => a != b,
                    (_, Value::Int(x), Value::Int(y)) => match op {
                        CmpOp::Lt => x < y,
                        CmpOp::Gt => x > y,
                        CmpOp::Le => x <= y,
                        _ => x >= y,
                    },
                    _ => return Err(type_error(*pos, "an ordering (`<`, `>`, `<=`, `>=`) needs two integers".into())),
                };
                Ok(Value::Bool(truth))
            }
            Expr::Logic { is_and, first, rest } => {
                let what = if *is_and { "`and`" } else { "`or`" };
                let first_pos = rest.first().map_or(0, |(p, _)| *p);
                let mut v = boolean(self.eval(first)?, first_pos, what)?;
                for (pos, operand) in rest {
                    if v != *is_and {
                        break; // false and ..., true or ...
                    }
                    v = boolean(self.eval(operand)?, *pos, what)?;
                }
                Ok(Value::Bool(v))
            }
        }
    }

    /// `b^e` for `e >= 0`, refused before any work when it could not fit.
    fn power(&self, b: &BigInt, e: &BigInt, pos: Pos) -> Result<BigInt, RunError> {
        let max_bits = self.limits.max_bits;
        if e.is_negative() {
            return Err(RunError::NegativeExponent { pos });
        }
        if b.is_zero() {
            return Ok(if e.is_zero() { BigInt::one() } else { BigInt::zero() });
        }
        if b.abs().is_one() {
            let odd = e.bit(0);
            return Ok(if b.sign() == Sign::Minus && odd { -BigInt::one() } else { BigInt::one() });
        }
        let exp = pow_exponent(b.bits(), e, max_bits).ok_or(RunError::TooBig { pos, max_bits })?;
        Ok(b.pow(exp))
    }
}
