//! Hostile and arbitrary input: every tool answers (usually with an error) within a time bound,
//! and never panics, hangs or overflows the stack.
//!
//! The time bound is generous: 1 s per case in release, where the slowest case (a loop of
//! 2048-bit multiplications until the fuel runs out) takes about 60 ms; 10 s in an unoptimised
//! build, where big-integer arithmetic is some 15 times slower. What it catches is a hang or an
//! unbounded computation, which would take far longer.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tools::calc::eval;
use tools::{calc, run, run_with, CalcError, CalcLimits, Registry, RunError, RunLimits};

const BOUND: Duration = Duration::from_secs(if cfg!(debug_assertions) { 10 } else { 1 });

/// `f()`, asserting it took less than [`BOUND`].
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < BOUND, "{what}: took {took:?}");
    out
}

/// A hostile case: its name, the input, the limits, and which error it must give.
type Case<L, E> = (&'static str, String, L, fn(&E) -> bool);

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Limits with the input length lifted, so the other limits meet the whole input.
fn long_calc() -> CalcLimits {
    CalcLimits { max_len: 4 << 20, ..CalcLimits::default() }
}

fn long_run() -> RunLimits {
    RunLimits { max_len: 4 << 20, ..RunLimits::default() }
}

#[test]
fn hostile_calc() {
    let deep = "(".repeat(100_000);
    let nested = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    let signs = format!("{}1", "-".repeat(100_000));
    let powers = ["2"; 50_000].join("^");
    let long_sum = ["1"; 500_000].join("+");
    let literal = "9".repeat(100_000);
    let decimals = format!("0.{}1", "0".repeat(100_000));
    let zeros = format!("{}1", "0".repeat(100_000));
    let cases: Vec<Case<CalcLimits, CalcError>> = vec![
        ("100k (", deep.clone(), CalcLimits::default(), |e| matches!(e, CalcError::TooLong { .. })),
        ("100k ( lifted", deep, long_calc(), |e| matches!(e, CalcError::TooDeep { .. })),
        ("100k (1)", nested, long_calc(), |e| matches!(e, CalcError::TooDeep { .. })),
        ("100k -", signs, long_calc(), |e| matches!(e, CalcError::TooDeep { .. })),
        ("2^2^...", powers, long_calc(), |e| matches!(e, CalcError::TooDeep { .. })),
        // Right-associative: 9^9 is computed, then 9^387420489 is refused at the outer `^`.
        ("9^9^9^9", "9^9^9^9".into(), CalcLimits::default(), |e| matches!(e, CalcError::TooBig { pos: 3, .. })),
        ("2^100000", "2^100000".into(), CalcLimits::default(), |e| matches!(e, CalcError::TooBig { .. })),
        ("2**2**100", "2**2**100".into(), CalcLimits::default(), |e| matches!(e, CalcError::TooBig { .. })),
        ("(1/3)^-99999", "(1/3)^-99999".into(), CalcLimits::default(), |e| matches!(e, CalcError::TooBig { .. })),
        ("2^(10^30)", "2^(10^30)".into(), CalcLimits::default(), |e| matches!(e, CalcError::TooBig { .. })),
        ("4000-digit literal", "9".repeat(4000), CalcLimits::default(), |e| {
            matches!(e, CalcError::TooBig { pos: 0, .. })
        }),
        ("100k-digit literal", literal, long_calc(), |e| matches!(e, CalcError::TooBig { pos: 0, .. })),
        ("100k decimals", decimals, long_calc(), |e| matches!(e, CalcError::TooBig { pos: 0, .. })),
        ("1 MB of 1+1+...", long_sum, CalcLimits::default(), |e| matches!(e, CalcError::TooLong { .. })),
        ("squares", "2^4000 * 2^4000".into(), CalcLimits::default(), |e| matches!(e, CalcError::TooBig { pos: 7, .. })),
        ("1/0", "1/0".into(), CalcLimits::default(), |e| matches!(e, CalcError::DivisionByZero { .. })),
        ("0^-1", "0^-1".into(), CalcLimits::default(), |e| matches!(e, CalcError::DivisionByZero { .. })),
        ("NUL", "1 +\0".into(), CalcLimits::default(), |e| matches!(e, CalcError::Syntax { pos: 3, .. })),
    ];
    for (what, input, limits, expected) in cases {
        let got = timed(what, || eval(&input, &limits));
        match got {
            Err(e) => assert!(expected(&e), "{what}: {e:?}"),
            Ok(v) => panic!("{what}: expected an error, got {v}"),
        }
    }
    // Leading zeros are not size: a long zero-padded 1 is just 1.
    assert_eq!(timed("zeros", || eval(&zeros, &long_calc())).map(|v| v.to_string()), Ok("1".to_string()));
}

#[test]
fn hostile_run() {
    let parens = format!("print({}1{})", "(".repeat(100_000), ")".repeat(100_000));
    let blocks = "if true { ".repeat(100_000);
    let whiles = "while true { ".repeat(100_000);
    let nots = format!("print({}true)", "not ".repeat(100_000));
    let negs = format!("print({}1)", "-".repeat(100_000));
    let elses = format!("if false {{}}{}", " else if false {}".repeat(100_000));
    let powers = format!("print({})", ["2"; 50_000].join("^"));
    let chain = format!("print({})", ["1"; 100_000].join(" + "));
    let vars: String = (0..300).map(|i| format!("let v{i}=0;")).collect();
    let big_vars: String = (0..200).map(|i| format!("let v{i} = b; ")).collect();
    let big_vars = format!("let b = 2^4000; {big_vars}");
    let source_1mb = "print(1);".repeat(120_000);
    let literal = format!("print({})", "7".repeat(100_000));
    let cases: Vec<Case<RunLimits, RunError>> = vec![
        ("100k (", parens.clone(), RunLimits::default(), |e| matches!(e, RunError::TooLong { .. })),
        ("100k ( lifted", parens, long_run(), |e| matches!(e, RunError::TooDeep { .. })),
        ("100k if", blocks, long_run(), |e| matches!(e, RunError::TooDeep { .. })),
        ("100k while", whiles, long_run(), |e| matches!(e, RunError::TooDeep { .. })),
        ("100k not", nots, long_run(), |e| matches!(e, RunError::TooDeep { .. })),
        ("100k -", negs, long_run(), |e| matches!(e, RunError::TooDeep { .. })),
        ("100k else if", elses, long_run(), |e| matches!(e, RunError::TooDeep { .. })),
        ("2^2^...", powers, long_run(), |e| matches!(e, RunError::TooDeep { .. })),
        ("100k-term sum", chain, long_run(), |e| matches!(e, RunError::OutOfSteps { .. })),
        ("100k-digit literal", literal, long_run(), |e| matches!(e, RunError::TooBig { pos: 6, .. })),
        ("1 MB source", source_1mb, RunLimits::default(), |e| matches!(e, RunError::TooLong { .. })),
        ("while true {}", "while true {}".into(), RunLimits::default(), |e| matches!(e, RunError::OutOfSteps { .. })),
        ("9^9^9^9", "print(9^9^9^9)".into(), RunLimits::default(), |e| matches!(e, RunError::TooBig { .. })),
        ("2^100000", "print(2^100000)".into(), RunLimits::default(), |e| matches!(e, RunError::TooBig { .. })),
        ("4000-digit literal", format!("print({})", "9".repeat(4000)), RunLimits::default(), |e| {
            matches!(e, RunError::TooBig { pos: 6, .. })
        }),
        ("squaring forever", "let x = 2; while true { x = x * x }".into(), RunLimits::default(), |e| {
            matches!(e, RunError::TooBig { .. })
        }),
        ("counting forever", "let x = 0; while true { x = x + 1 }".into(), RunLimits::default(), |e| {
            matches!(e, RunError::OutOfSteps { .. })
        }),
        ("300 variables", vars, RunLimits::default(), |e| matches!(e, RunError::TooManyVariables { .. })),
        ("200 big variables", big_vars, RunLimits::default(), |e| matches!(e, RunError::OutOfMemory { .. })),
        ("1 MB of output", "while true { print(2^4000) }".into(), RunLimits::default(), |e| {
            matches!(e, RunError::OutputTooLong { .. })
        }),
        ("1M prints", "let i = 0; while i < 1000000 { print(i); i = i + 1 }".into(), RunLimits::default(), |e| {
            matches!(e, RunError::OutputTooLong { .. })
        }),
        (
            "big multiplications until out of fuel",
            "let x = 2^2047 + 1; while true { let y = x * x / x; }".into(),
            RunLimits::default(),
            |e| matches!(e, RunError::OutOfSteps { .. }),
        ),
        (
            "big printing until out of output",
            "let x = 7^1400; while true { print(x) }".into(),
            RunLimits::default(),
            |e| matches!(e, RunError::OutputTooLong { .. }),
        ),
        ("no builtins", "open(1)".into(), RunLimits::default(), |e| matches!(e, RunError::Syntax { .. })),
        ("NUL", "print(1)\0".into(), RunLimits::default(), |e| matches!(e, RunError::Syntax { pos: 8, .. })),
    ];
    for (what, input, limits, expected) in cases {
        let got = timed(what, || run_with(&input, &limits));
        match got {
            Err(e) => assert!(expected(&e), "{what}: {e:?}"),
            Ok(v) => panic!("{what}: expected an error, got {}", short(&v)),
        }
    }
    // A loop whose block variables come and go never runs out of memory, only of steps.
    let churn = "let i = 0; while true { let a = 2^4000; let b = a; let c = a; i = i + 1 }";
    assert!(matches!(timed("churn", || run(churn)), Err(RunError::OutOfSteps { .. })));
}

#[test]
fn hostile_calls() {
    let r = Registry::standard(&[]);
    let deep_call = format!("calc({})", "(".repeat(100_000));
    for call in
        [deep_call.as_str(), "calc(", ")(", "()", "lookup(,)", "find(=,=)", "run(while true {})", "\u{0}(\u{0})"]
    {
        let out = timed(call, || r.call_text(call));
        assert!(out.starts_with("error: "), "{}: {}", short(call), short(&out));
    }
}

/// Pieces that calc's grammar is made of, to make near-valid expressions.
fn calc_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "1",
        "2",
        "9",
        "0",
        "10",
        "0.5",
        "123456789012345678901234567890",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "**",
        "(",
        ")",
        "<",
        ">",
        "<=",
        "==",
        "!=",
        " ",
    ])
}

/// Pieces of run programs.
fn run_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "let ", "x", "y", " = ", "1", "2", "0", "99", "+", "-", "*", "/", "%", "^", "(", ")", "{", "}", ";", "while ",
        "if ", "else ", "print(", "true", "false", " and ", " or ", "not ", "<", "==", " ",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn calc_on_any_string_answers_in_time(s in "\\PC{0,300}") {
        let _ = timed(&s, || calc(&s));
    }

    #[test]
    fn run_on_any_string_answers_in_time(s in "\\PC{0,300}") {
        let _ = timed(&s, || run(&s));
    }

    #[test]
    fn registry_on_any_call_answers_in_time(name in "[a-z]{0,8}", args in "\\PC{0,200}") {
        let r = Registry::standard(&[]);
        let out = timed(&args, || r.call_text(&format!("{name}({args})")));
        prop_assert!(!out.is_empty() || name == "run" || name == "find");
    }

    #[test]
    fn calc_on_near_valid_input_answers_in_time_and_round_trips(pieces in prop::collection::vec(calc_piece(), 0..120)) {
        let expr = pieces.concat();
        if let Ok(value) = timed(&expr, || calc(&expr)) {
            // A printed value reads back as itself.
            if value != "yes" && value != "no" {
                prop_assert_eq!(calc(&value), Ok(value.clone()), "{}", expr);
            }
        }
    }

    #[test]
    fn run_on_near_valid_input_answers_in_time(pieces in prop::collection::vec(run_piece(), 0..150)) {
        let src = pieces.concat();
        let _ = timed(&src, || run(&src));
    }

    #[test]
    fn calc_agrees_with_machine_integers(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000, op in 0..7usize) {
        let (a, b) = (i128::from(a), i128::from(b));
        let (sym, want) = match op {
            0 => ("+", (a + b).to_string()),
            1 => ("-", (a - b).to_string()),
            2 => ("*", (a * b).to_string()),
            3 if b != 0 => ("%", (a % b).to_string()),
            4 => ("<", if a < b { "yes" } else { "no" }.to_string()),
            5 => (">=", if a >= b { "yes" } else { "no" }.to_string()),
            _ => ("==", if a == b { "yes" } else { "no" }.to_string()),
        };
        prop_assert_eq!(calc(&format!("{a} {sym} {b}")), Ok(want));
    }

    #[test]
    fn run_agrees_with_machine_integers(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000) {
        let (a, b) = (i128::from(a), i128::from(b));
        let src = format!("let a = {a}; let b = {b}; print(a + b); print(a - b); print(a * b); print(a < b)");
        let want = format!("{}\n{}\n{}\n{}", a + b, a - b, a * b, a < b);
        prop_assert_eq!(run(&src), Ok(want));
        if b != 0 {
            prop_assert_eq!(run(&format!("print({a} / ({b})); print({a} % ({b}))")), Ok(format!("{}\n{}", a / b, a % b)));
        }
    }

    #[test]
    fn calc_division_is_exact(a in -100_000i64..100_000, b in 1i64..100_000, c in 1i64..1000) {
        // (a / b) * b == a, and (a / b) / c == a / (b * c)
        prop_assert_eq!(calc(&format!("({a} / {b}) * {b}")), Ok(a.to_string()));
        prop_assert_eq!(calc(&format!("({a} / {b}) / {c} == {a} / ({b} * {c})")), Ok("yes".to_string()));
    }
}
