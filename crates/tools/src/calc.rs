//! `calc`: exact integer and rational arithmetic.
//!
//! ```text
//! calc    := sum (cmp sum)?                    cmp: <  >  <=  >=  ==  !=   → yes / no
//! sum     := product (('+' | '-') product)*    left-associative: 8 - 3 - 2 = 3
//! product := unary (('*' | '/' | '%') unary)*  left-associative; % on integers only
//! unary   := ('-' | '+') unary | power         -2^2 = -(2^2) = -4
//! power   := atom (('^' | '**') unary)?        right-associative: 2^3^2 = 2^9; 2^-1 = 1/2
//! atom    := number | '(' sum ')' | 'abs' '(' sum ')'   number: 12, 1.25 (exactly 5/4)
//! ```
//!
//! Whitespace between tokens is ignored. Every value is an exact rational ([`BigRational`]);
//! `/` is exact division (`7 / 2` is `7/2`), `%` is the remainder of truncating division (its
//! sign is that of the dividend, as in Rust and as `world::verify_trace` checks it), and the
//! exponent of a power must be an integer. A comparison is only allowed at the top level, once.
//! A result prints as an integer, or as `p/q` in lowest terms (`-7/2`); a comparison prints as
//! `yes` or `no`, which is how the world's tool traces read: `calc(1948 < 1950) -> yes`,
//! `calc(1975 % 2) -> 1`, `calc(abs(1948 - 1950)) -> 2`.
//!
//! # Limits
//! Input that is too long, nested too deeply, or that would make a number too big is an error,
//! never a panic or a hang ([`CalcLimits`]). Every number, literal or intermediate, is checked
//! against the bit bound; a power is checked *before* it is computed, from the sizes of its base
//! and exponent (`9^9^9^9` fails at once).
//!
//! # Why a hand-written parser
//! The grammar is six rules, and the limits have to be enforced inside it: the depth of nesting
//! as it recurses and the size of every number as it is evaluated. A recursive-descent parser
//! that evaluates as it goes does both in a page, builds no tree, and needs no dependency; a
//! parser generator would first build an unbounded tree and check afterwards.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use serde::{Deserialize, Serialize};

use crate::num::{fits, literal_too_big, pow_exponent};

/// How much `calc` accepts. Each bound turns into an error, never a panic or a hang.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalcLimits {
    /// Longest input in bytes: far more than any arithmetic a trace needs, small enough that
    /// the worst input is evaluated in well under a millisecond.
    pub max_len: usize,
    /// Deepest nesting of parentheses, unary signs and exponents: keeps recursion far from the
    /// stack limit of any thread.
    pub max_depth: usize,
    /// Most bits in the numerator or denominator of any number (about 1233 decimal digits):
    /// exact arithmetic on such numbers takes microseconds.
    pub max_bits: u64,
}

impl Default for CalcLimits {
    fn default() -> Self {
        Self { max_len: 4096, max_depth: 64, max_bits: 4096 }
    }
}

/// Why an expression has no value. Positions are byte offsets into the expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// Nothing but whitespace.
    #[error("empty expression: write e.g. `1948 < 1950` or `(3 + 4) / 2`")]
    Empty,
    /// The input is longer than [`CalcLimits::max_len`].
    #[error("expression is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A token that does not fit the grammar.
    #[error("unexpected {found} at byte {pos}: expected {expected}")]
    Syntax {
        /// Byte offset of the token.
        pos: usize,
        /// What was there (`` `)` ``, `end of input`, ...).
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// Nesting deeper than [`CalcLimits::max_depth`].
    #[error("nesting deeper than {max} levels at byte {pos}")]
    TooDeep {
        /// Byte offset where the limit was passed.
        pos: usize,
        /// The limit.
        max: usize,
    },
    /// A literal or a result with more than [`CalcLimits::max_bits`] bits.
    #[error("number at byte {pos} would have more than {max_bits} bits")]
    TooBig {
        /// Byte offset of the literal or operator.
        pos: usize,
        /// The limit.
        max_bits: u64,
    },
    /// `/` or `%` by zero, or zero to a negative power.
    #[error("division by zero at byte {pos}")]
    DivisionByZero {
        /// Byte offset of the operator.
        pos: usize,
    },
    /// `%` on a non-integer, or a non-integer exponent.
    #[error("{what} must be an integer, at byte {pos}")]
    NotInteger {
        /// Byte offset of the operator.
        pos: usize,
        /// What must be an integer (`operands of %`, `exponent`).
        what: &'static str,
    },
}

/// The value of an expression: a number, or the truth of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CalcValue {
    /// An exact rational (an integer when its denominator is 1).
    Number(BigRational),
    /// The result of a top-level comparison.
    Bool(bool),
}

impl fmt::Display for CalcValue {
    /// An integer as itself, another rational as `p/q` in lowest terms, a truth as `yes`/`no`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(r) if r.is_integer() => write!(f, "{}", r.numer()),
            Self::Number(r) => write!(f, "{}/{}", r.numer(), r.denom()),
            Self::Bool(b) => f.write_str(if *b { "yes" } else { "no" }),
        }
    }
}

/// Evaluates `expr` under the default [`CalcLimits`] and prints the value (see the module docs).
pub fn calc(expr: &str) -> Result<String, CalcError> {
    eval(expr, &CalcLimits::default()).map(|v| v.to_string())
}

/// Evaluates `expr` under `limits`.
pub fn eval(expr: &str, limits: &CalcLimits) -> Result<CalcValue, CalcError> {
    if expr.len() > limits.max_len {
        return Err(CalcError::TooLong { len: expr.len(), max: limits.max_len });
    }
    let tokens = lex(expr, limits.max_bits)?;
    if tokens.len() == 1 {
        return Err(CalcError::Empty);
    }
    let mut p = Parser { tokens, at: 0, depth: 0, limits };
    let lhs = p.sum()?;
    let value = match *p.peek() {
        Tok::Cmp(op) => {
            p.at += 1;
            let rhs = p.sum()?;
            CalcValue::Bool(op.holds(lhs.cmp(&rhs)))
        }
        _ => CalcValue::Number(lhs),
    };
    match p.peek() {
        Tok::End => Ok(value),
        _ => Err(p.unexpected("an operator or the end of the expression")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Self::Lt => ord.is_lt(),
            Self::Gt => ord.is_gt(),
            Self::Le => ord.is_le(),
            Self::Ge => ord.is_ge(),
            Self::Eq => ord.is_eq(),
            Self::Ne => ord.is_ne(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Num(BigRational),
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Pow,
    Abs,
    LParen,
    RParen,
    Cmp(CmpOp),
    End,
}

/// The tokens of `s` with their byte offsets, ending with [`Tok::End`].
fn lex(s: &str, max_bits: u64) -> Result<Vec<(Tok, usize)>, CalcError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let int_end = i;
            let mut frac = "";
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                let f = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                frac = &s[f..i];
            }
            let int = &s[start..int_end];
            let num = (!literal_too_big(int, frac, max_bits))
                .then(|| decimal(int, frac))
                .flatten()
                .filter(|r| fits(r.numer(), max_bits) && fits(r.denom(), max_bits));
            let num = num.ok_or(CalcError::TooBig { pos: start, max_bits })?;
            out.push((Tok::Num(num), start));
            continue;
        }
        if c.is_ascii_alphabetic() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            match &s[start..i] {
                "abs" => out.push((Tok::Abs, start)),
                word => {
                    return Err(CalcError::Syntax {
                        pos: start,
                        found: format!("`{word}`"),
                        expected: "a number, an operator, a parenthesis or `abs(...)` (the only function)",
                    })
                }
            }
            continue;
        }
        let two = b.get(i + 1).copied();
        let (tok, len) = match (c, two) {
            (b'*', Some(b'*')) => (Tok::Pow, 2),
            (b'<', Some(b'=')) => (Tok::Cmp(CmpOp::Le), 2),
            (b'>', Some(b'=')) => (Tok::Cmp(CmpOp::Ge), 2),
            (b'=', Some(b'=')) => (Tok::Cmp(CmpOp::Eq), 2),
            (b'!', Some(b'=')) => (Tok::Cmp(CmpOp::Ne), 2),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'^', _) => (Tok::Pow, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            (b'>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(CalcError::Syntax {
                    pos: i,
                    found: format!("character `{}`", ch.escape_debug()),
                    expected: "a number, an operator (+ - * / % ^ ** < > <= >= == !=) or a parenthesis",
                });
            }
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::End, b.len()));
    Ok(out)
}

/// `int.frac` as an exact rational; `None` only if the digits are not digits.
fn decimal(int: &str, frac: &str) -> Option<BigRational> {
    let frac = frac.trim_end_matches('0');
    let digits = format!("{int}{frac}");
    let n: BigInt = digits.parse().ok()?;
    let scale = u32::try_from(frac.len()).ok()?;
    Some(BigRational::new(n, num_traits::pow(BigInt::from(10), scale as usize)))
}

struct Parser<'l> {
    tokens: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
    limits: &'l CalcLimits,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        // The token list always ends with `End`, and `at` never moves past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)].0
    }

    fn pos(&self) -> usize {
        self.tokens[self.at.min(self.tokens.len() - 1)].1
    }

    fn unexpected(&self, expected: &'static str) -> CalcError {
        let found = match self.peek() {
            Tok::End => "end of input",
            Tok::Num(_) => "number",
            Tok::Plus => "`+`",
            Tok::Minus => "`-`",
            Tok::Star => "`*`",
            Tok::Slash => "`/`",
            Tok::Percent => "`%`",
            Tok::Pow => "`^`",
            Tok::LParen => "`(`",
            Tok::Abs => "`abs`",
            Tok::RParen => "`)`",
            Tok::Cmp(_) => "comparison",
        };
        CalcError::Syntax { pos: self.pos(), found: found.to_string(), expected }
    }

    fn check(&self, r: BigRational, pos: usize) -> Result<BigRational, CalcError> {
        let max_bits = self.limits.max_bits;
        if fits(r.numer(), max_bits) && fits(r.denom(), max_bits) {
            Ok(r)
        } else {
            Err(CalcError::TooBig { pos, max_bits })
        }
    }

    fn sum(&mut self) -> Result<BigRational, CalcError> {
        let mut acc = self.product()?;
        loop {
            let op = self.peek().clone();
            if !matches!(op, Tok::Plus | Tok::Minus) {
                return Ok(acc);
            }
            let pos = self.pos();
            self.at += 1;
            let rhs = self.product()?;
            acc = self.check(if op == Tok::Plus { acc + rhs } else { acc - rhs }, pos)?;
        }
    }

    fn product(&mut self) -> Result<BigRational, CalcError> {
        let mut acc = self.unary()?;
        loop {
            let op = self.peek().clone();
            if !matches!(op, Tok::Star | Tok::Slash | Tok::Percent) {
                return Ok(acc);
            }
            let pos = self.pos();
            self.at += 1;
            let rhs = self.unary()?;
            let value = match op {
                Tok::Star => acc * rhs,
                _ if rhs.is_zero() => return Err(CalcError::DivisionByZero { pos }),
                Tok::Slash => acc / rhs,
                _ => {
                    if !acc.is_integer() || !rhs.is_integer() {
                        return Err(CalcError::NotInteger { pos, what: "both operands of %" });
                    }
                    BigRational::from_integer(acc.numer() % rhs.numer())
                }
            };
            acc = self.check(value, pos)?;
        }
    }

    /// One level deeper at the current token (`(`, a sign, `^`); fails past the limit. Paired
    /// with `self.depth -= 1` on success.
    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(CalcError::TooDeep { pos: self.pos(), max: self.limits.max_depth });
        }
        self.at += 1;
        Ok(())
    }

    fn unary(&mut self) -> Result<BigRational, CalcError> {
        let negate = match self.peek() {
            Tok::Minus => true,
            Tok::Plus => false,
            _ => return self.power(),
        };
        self.enter()?;
        let value = self.unary()?;
        self.depth -= 1;
        Ok(if negate { -value } else { value })
    }

    fn power(&mut self) -> Result<BigRational, CalcError> {
        let base = self.atom()?;
        if *self.peek() != Tok::Pow {
            return Ok(base);
        }
        let pos = self.pos();
        self.enter()?;
        let exp = self.unary()?;
        self.depth -= 1;
        if !exp.is_integer() {
            return Err(CalcError::NotInteger { pos, what: "the exponent" });
        }
        let value = power(&base, exp.numer(), pos, self.limits.max_bits)?;
        self.check(value, pos)
    }

    fn atom(&mut self) -> Result<BigRational, CalcError> {
        match self.peek().clone() {
            Tok::Num(n) => {
                self.at += 1;
                Ok(n)
            }
            Tok::Abs => {
                self.at += 1;
                if *self.peek() != Tok::LParen {
                    return Err(self.unexpected("`(` after `abs`"));
                }
                self.atom().map(|v| v.abs())
            }
            Tok::LParen => {
                self.enter()?;
                let v = self.sum()?;
                if *self.peek() != Tok::RParen {
                    return Err(self.unexpected("`)` or an operator (a comparison only at the top level)"));
                }
                self.at += 1;
                self.depth -= 1;
                Ok(v)
            }
            _ => Err(self.unexpected("a number, `(` or `abs(`")),
        }
    }
}

/// `base^exp`, refused before any work when the result could not fit in `max_bits`.
fn power(base: &BigRational, exp: &BigInt, pos: usize, max_bits: u64) -> Result<BigRational, CalcError> {
    if base.is_zero() {
        return match exp.sign() {
            num_bigint::Sign::Minus => Err(CalcError::DivisionByZero { pos }),
            num_bigint::Sign::NoSign => Ok(BigRational::one()),
            num_bigint::Sign::Plus => Ok(BigRational::zero()),
        };
    }
    if base.denom().is_one() && base.numer().abs().is_one() {
        // ±1: the sign follows the parity of the exponent, whatever its size.
        let odd = exp.bit(0);
        return Ok(if base.is_negative() && odd { -BigRational::one() } else { BigRational::one() });
    }
    let bits = base.numer().bits().max(base.denom().bits());
    let e = pow_exponent(bits, exp, max_bits).ok_or(CalcError::TooBig { pos, max_bits })?;
    let (n, d) = (base.numer().pow(e), base.denom().pow(e));
    // Coprime numerator and denominator stay coprime under powers; `new` also fixes the sign.
    Ok(if exp.is_negative() { BigRational::new(d, n) } else { BigRational::new(n, d) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_forms() {
        assert_eq!(calc("1948 < 1950").as_deref(), Ok("yes"));
        assert_eq!(calc("1975 % 2").as_deref(), Ok("1"));
        assert_eq!(calc("1990 - 1955").as_deref(), Ok("35"));
        assert_eq!(calc("abs(1948 - 1950)").as_deref(), Ok("2"));
        assert_eq!(calc("abs(1950 - 1948)").as_deref(), Ok("2"));
        assert_eq!(calc("abs(-7/2) * 2 + abs (1)").as_deref(), Ok("8"));
        assert_eq!(calc("-abs(2 - 5)^2").as_deref(), Ok("-9"));
    }

    #[test]
    fn errors_carry_positions() {
        assert_eq!(calc("1 / 0"), Err(CalcError::DivisionByZero { pos: 2 }));
        assert!(matches!(calc("1 + x"), Err(CalcError::Syntax { pos: 4, .. })));
        assert!(matches!(calc("(1 < 2)"), Err(CalcError::Syntax { pos: 3, .. })));
        assert!(matches!(calc("abs 2"), Err(CalcError::Syntax { pos: 4, .. })));
        assert!(matches!(calc("2 + sqrt(4)"), Err(CalcError::Syntax { pos: 4, .. })));
        assert!(matches!(calc("abs(1 < 2)"), Err(CalcError::Syntax { pos: 6, .. })));
    }
}
