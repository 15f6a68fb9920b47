//! Lexer and recursive-descent parser of `run` programs (grammar in the parent module's docs).
//!
//! The depth counter goes up at every construct that nests (block, `if`, `(`, unary `-`,
//! `not`, exponent) and the parse fails past [`RunLimits::max_depth`]. Chains of one operator
//! level (`a + b - c`, `x and y and z`) become flat lists, not left-nested trees, so the tree's
//! depth is bounded by that counter and evaluating or dropping it cannot overflow the stack.

use num_bigint::BigInt;

use super::{RunError, RunLimits};
use crate::num::{fits, literal_too_big};

/// A byte offset into the source.
pub(super) type Pos = usize;

/// A statement.
#[derive(Debug)]
pub(super) enum Stmt {
    Let { name: String, value: Expr, pos: Pos },
    Assign { name: String, value: Expr, pos: Pos },
    While { cond: Expr, body: Vec<Stmt>, pos: Pos },
    If { cond: Expr, then: Vec<Stmt>, otherwise: Vec<Stmt>, pos: Pos },
    Print { value: Expr, pos: Pos },
    Expr(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
}

/// An expression. Chains of one precedence level are flat (`first`, then `rest`).
#[derive(Debug)]
pub(super) enum Expr {
    Int(BigInt),
    Bool(bool),
    Var {
        name: String,
        pos: Pos,
    },
    Neg {
        operand: Box<Expr>,
        pos: Pos,
    },
    Not {
        operand: Box<Expr>,
        pos: Pos,
    },
    Pow {
        base: Box<Expr>,
        exp: Box<Expr>,
        pos: Pos,
    },
    Arith {
        first: Box<Expr>,
        rest: Vec<(ArithOp, Pos, Expr)>,
    },
    Cmp {
        lhs: Box<Expr>,
        op: CmpOp,
        rhs: Box<Expr>,
        pos: Pos,
    },
    /// `and` (`is_and`) or `or` over two or more operands, short-circuit.
    Logic {
        is_and: bool,
        first: Box<Expr>,
        rest: Vec<(Pos, Expr)>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Let,
    While,
    If,
    Else,
    Print,
    True,
    False,
    And,
    Or,
    Not,
}

impl Kw {
    fn from_word(w: &str) -> Option<Self> {
        Some(match w {
            "let" => Self::Let,
            "while" => Self::While,
            "if" => Self::If,
            "else" => Self::Else,
            "print" => Self::Print,
            "true" => Self::True,
            "false" => Self::False,
            "and" => Self::And,
            "or" => Self::Or,
            "not" => Self::Not,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Int(BigInt),
    Name(String),
    Kw(Kw),
    Arith(ArithOp),
    Cmp(CmpOp),
    Pow,
    Assign,
    Semi,
    LParen,
    RParen,
    LBrace,
    RBrace,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Int(_) => "number".into(),
            Tok::Name(n) => format!("name `{n}`"),
            Tok::Kw(k) => format!("keyword `{}`", format!("{k:?}").to_lowercase()),
            Tok::End => "end of program".into(),
            Tok::Semi => "`;`".into(),
            Tok::Assign => "`=`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            _ => "operator".into(),
        }
    }
}

fn lex(s: &str, max_bits: u64) -> Result<Vec<(Tok, Pos)>, RunError> {
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
            let digits = &s[start..i];
            let n: Option<BigInt> = if literal_too_big(digits, "", max_bits) { None } else { digits.parse().ok() };
            let n = n.filter(|n| fits(n, max_bits)).ok_or(RunError::TooBig { pos: start, max_bits })?;
            out.push((Tok::Int(n), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &s[start..i];
            out.push((Kw::from_word(word).map_or_else(|| Tok::Name(word.to_string()), Tok::Kw), start));
            continue;
        }
        let two = b.get(i + 1).copied();
        let (tok, len) = match (c, two) {
            (b'*', Some(b'*')) => (Tok::Pow, 2),
            (b'<', Some(b'=')) => (Tok::Cmp(CmpOp::Le), 2),
            (b'>', Some(b'=')) => (Tok::Cmp(CmpOp::Ge), 2),
            (b'=', Some(b'=')) => (Tok::Cmp(CmpOp::Eq), 2),
            (b'!', Some(b'=')) => (Tok::Cmp(CmpOp::Ne), 2),
            (b'+', _) => (Tok::Arith(ArithOp::Add), 1),
            (b'-', _) => (Tok::Arith(ArithOp::Sub), 1),
            (b'*', _) => (Tok::Arith(ArithOp::Mul), 1),
            (b'/', _) => (Tok::Arith(ArithOp::Div), 1),
            (b'%', _) => (Tok::Arith(ArithOp::Rem), 1),
            (b'^', _) => (Tok::Pow, 1),
            (b'<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            (b'>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            (b'=', _) => (Tok::Assign, 1),
            (b';', _) => (Tok::Semi, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(RunError::Syntax {
                    pos: i,
                    found: format!("character `{}`", ch.escape_debug()),
                    expected: "a number, a name, a keyword, an operator or a bracket (there are no strings)".into(),
                });
            }
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::End, b.len()));
    Ok(out)
}

/// Parses a whole program.
pub(super) fn parse(source: &str, limits: &RunLimits) -> Result<Vec<Stmt>, RunError> {
    let tokens = lex(source, limits.max_bits)?;
    let mut p = Parser { tokens, at: 0, depth: 0, max_depth: limits.max_depth };
    let program = p.stmts()?;
    match p.peek() {
        Tok::End => Ok(program),
        _ => Err(p.unexpected("a statement")),
    }
}

struct Parser {
    tokens: Vec<(Tok, Pos)>,
    at: usize,
    depth: usize,
    max_depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        // The token list always ends with `End`, and `at` never moves past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)].0
    }

    fn peek2(&self) -> &Tok {
        &self.tokens[(self.at + 1).min(self.tokens.len() - 1)].0
    }

    fn pos(&self) -> Pos {
        self.tokens[self.at.min(self.tokens.len() - 1)].1
    }

    fn bump(&mut self) {
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
    }

    fn unexpected(&self, expected: &str) -> RunError {
        RunError::Syntax { pos: self.pos(), found: self.peek().describe(), expected: expected.to_string() }
    }

    fn expect(&mut self, tok: Tok, expected: &str) -> Result<(), RunError> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    /// One level deeper; fails past the limit. Paired with [`Parser::leave`] on success.
    fn enter(&mut self) -> Result<(), RunError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(RunError::TooDeep { pos: self.pos(), max: self.max_depth });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Statements up to `}` or the end (not consumed); stray `;` are skipped.
    fn stmts(&mut self) -> Result<Vec<Stmt>, RunError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Tok::Semi => self.bump(),
                Tok::RBrace | Tok::End => return Ok(out),
                _ => out.push(self.stmt()?),
            }
        }
    }

    /// `;`, or nothing before `}` or the end.
    fn terminator(&mut self) -> Result<(), RunError> {
        match self.peek() {
            Tok::Semi => {
                self.bump();
                Ok(())
            }
            Tok::RBrace | Tok::End => Ok(()),
            _ => Err(self.unexpected("`;`")),
        }
    }

    fn block(&mut self) -> Result<Vec<Stmt>, RunError> {
        self.enter()?;
        self.expect(Tok::LBrace, "`{`")?;
        let body = self.stmts()?;
        self.expect(Tok::RBrace, "`}`")?;
        self.leave();
        Ok(body)
    }

    fn stmt(&mut self) -> Result<Stmt, RunError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Kw(Kw::Let) => {
                self.bump();
                let Tok::Name(name) = self.peek().clone() else {
                    return Err(self.unexpected("a variable name"));
                };
                self.bump();
                self.expect(Tok::Assign, "`=`")?;
                let value = self.expr()?;
                self.terminator()?;
                Ok(Stmt::Let { name, value, pos })
            }
            Tok::Name(name) if *self.peek2() == Tok::Assign => {
                self.bump();
                self.bump();
                let value = self.expr()?;
                self.terminator()?;
                Ok(Stmt::Assign { name, value, pos })
            }
            Tok::Kw(Kw::While) => {
                self.bump();
                let cond = self.expr()?;
                let body = self.block()?;
                Ok(Stmt::While { cond, body, pos })
            }
            Tok::Kw(Kw::If) => self.if_stmt(),
            Tok::Kw(Kw::Print) => {
                self.bump();
                self.expect(Tok::LParen, "`(` after print")?;
                let value = self.expr()?;
                self.expect(Tok::RParen, "`)`")?;
                self.terminator()?;
                Ok(Stmt::Print { value, pos })
            }
            _ => {
                let e = self.expr()?;
                self.terminator()?;
                Ok(Stmt::Expr(e))
            }
        }
    }

    /// An `if` statement; its blocks count as nesting, and so does each `else if`.
    fn if_stmt(&mut self) -> Result<Stmt, RunError> {
        let pos = self.pos();
        self.expect(Tok::Kw(Kw::If), "`if`")?;
        let cond = self.expr()?;
        let then = self.block()?;
        let mut otherwise = Vec::new();
        if *self.peek() == Tok::Kw(Kw::Else) {
            self.bump();
            otherwise = if *self.peek() == Tok::Kw(Kw::If) {
                self.enter()?;
                let nested = self.if_stmt()?;
                self.leave();
                vec![nested]
            } else {
                self.block()?
            };
        }
        Ok(Stmt::If { cond, then, otherwise, pos })
    }

    pub(super) fn expr(&mut self) -> Result<Expr, RunError> {
        self.logic(false)
    }

    /// `or` chains (`is_and = false`) of `and` chains of `not` operands.
    fn logic(&mut self, is_and: bool) -> Result<Expr, RunError> {
        let keyword = if is_and { Kw::And } else { Kw::Or };
        let operand = |p: &mut Self| if is_and { p.not() } else { p.logic(true) };
        let first = operand(self)?;
        let mut rest = Vec::new();
        while *self.peek() == Tok::Kw(keyword) {
            let pos = self.pos();
            self.bump();
            rest.push((pos, operand(self)?));
        }
        Ok(if rest.is_empty() { first } else { Expr::Logic { is_and, first: Box::new(first), rest } })
    }

    fn not(&mut self) -> Result<Expr, RunError> {
        if *self.peek() != Tok::Kw(Kw::Not) {
            return self.cmp();
        }
        let pos = self.pos();
        self.enter()?;
        self.bump();
        let operand = self.not()?;
        self.leave();
        Ok(Expr::Not { operand: Box::new(operand), pos })
    }

    fn cmp(&mut self) -> Result<Expr, RunError> {
        let lhs = self.arith(false)?;
        let Tok::Cmp(op) = *self.peek() else { return Ok(lhs) };
        let pos = self.pos();
        self.bump();
        let rhs = self.arith(false)?;
        Ok(Expr::Cmp { lhs: Box::new(lhs), op, rhs: Box::new(rhs), pos })
    }

    /// Sums (`product = false`) of products of unary operands.
    fn arith(&mut self, product: bool) -> Result<Expr, RunError> {
        let first = if product { self.unary()? } else { self.arith(true)? };
        let mut rest = Vec::new();
        loop {
            let op = match *self.peek() {
                Tok::Arith(op @ (ArithOp::Add | ArithOp::Sub)) if !product => op,
                Tok::Arith(op @ (ArithOp::Mul | ArithOp::Div | ArithOp::Rem)) if product => op,
                _ => break,
            };
            let pos = self.pos();
            self.bump();
            let operand = if product { self.unary()? } else { self.arith(true)? };
            rest.push((op, pos, operand));
        }
        Ok(if rest.is_empty() { first } else { Expr::Arith { first: Box::new(first), rest } })
    }

    fn unary(&mut self) -> Result<Expr, RunError> {
        if *self.peek() != Tok::Arith(ArithOp::Sub) {
            return self.power();
        }
        let pos = self.pos();
        self.enter()?;
        self.bump();
        let operand = self.unary()?;
        self.leave();
        Ok(Expr::Neg { operand: Box::new(operand), pos })
    }

    fn power(&mut self) -> Result<Expr, RunError> {
        let base = self.atom()?;
        if *self.peek() != Tok::Pow {
            return Ok(base);
        }
        let pos = self.pos();
        self.enter()?;
        self.bump();
        let exp = self.unary()?;
        self.leave();
        Ok(Expr::Pow { base: Box::new(base), exp: Box::new(exp), pos })
    }

    fn atom(&mut self) -> Result<Expr, RunError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Int(n) => {
                self.bump();
                Ok(Expr::Int(n))
            }
            Tok::Kw(Kw::True) => {
                self.bump();
                Ok(Expr::Bool(true))
            }
            Tok::Kw(Kw::False) => {
                self.bump();
                Ok(Expr::Bool(false))
            }
            Tok::Name(name) if *self.peek2() == Tok::LParen => Err(RunError::Syntax {
                pos,
                found: format!("call of `{name}`"),
                expected: "an expression (there are no functions; `print(...)` is the only builtin)".into(),
            }),
            Tok::Name(name) => {
                self.bump();
                Ok(Expr::Var { name, pos })
            }
            Tok::LParen => {
                self.enter()?;
                self.bump();
                let e = self.expr()?;
                self.expect(Tok::RParen, "`)` or an operator")?;
                self.leave();
                Ok(e)
            }
            _ => Err(self.unexpected("an expression")),
        }
    }
}
