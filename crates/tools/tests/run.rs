//! `run` programs: loops, conditions, printing, scoping, and every error with its position.

use tools::{run, run_with, RunError, RunLimits};

#[test]
fn programs() {
    let cases = [
        ("let x = 3; let s = 0; while x > 0 { s = s + x; x = x - 1; } print(s)", "6"),
        ("print(1); print(2); print(true)", "1\n2\ntrue"),
        ("let x = 6; x * 7", "42"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3;", "9"),
        ("let s = 0; let i = 1; while i <= 10 { s = s + i; i = i + 1; } print(s)", "55"),
        // factorial, exact
        ("let n = 25; let f = 1; while n > 1 { f = f * n; n = n - 1 } print(f)", "15511210043330985984000000"),
        // if / else if / else
        ("let y = 1975; if y % 2 == 0 { print(true) } else { print(false) }", "false"),
        ("let x = 5; if x < 3 { print(1) } else if x < 6 { print(2) } else { print(3) }", "2"),
        ("let x = 9; if x < 3 { print(1) } else if x < 6 { print(2) } else { print(3) }", "3"),
        ("if false { print(1) }", ""),
        // booleans, short-circuit (the division by zero is never evaluated)
        ("let x = 0; print(x == 0 or 1 / x > 2)", "true"),
        ("let x = 0; print(x != 0 and 1 / x > 2)", "false"),
        ("print(not 1 > 2)", "true"),
        ("print(not not true)", "true"),
        ("print(true == false)", "false"),
        ("print(true and true and false or true)", "true"),
        // arithmetic: truncating division, right-associative powers, signs
        ("print(-7 / 2); print(-7 % 2); print(7 / -2)", "-3\n-1\n-3"),
        ("print(2 ^ 3 ^ 2); print(-2 ^ 2); print((-2) ^ 3); print(2 ** 10)", "512\n-4\n-8\n1024"),
        ("print(10 - 3 - 2); print(64 / 4 / 2)", "5\n8"),
        ("print((-1) ^ 1000000000000000000001); print(0 ^ 0)", "-1\n1"),
        // blocks scope their variables; an inner let shadows, assignment reaches out
        ("let x = 1; if true { let x = 2; print(x) } print(x)", "2\n1"),
        ("let x = 1; if true { x = 2 } print(x)", "2"),
        ("let i = 0; while i < 3 { let sq = i * i; print(sq); i = i + 1 }", "0\n1\n4"),
        ("let x = 1; let x = x + 1; print(x)", "2"),
        // stray semicolons and an empty block
        (";; let x = 1;; while false {} ; print(x);", "1"),
        // fizzbuzz-like: nested conditions in a loop
        (
            "let i = 1; let n = 0; while i <= 15 { if i % 3 == 0 and i % 5 == 0 { n = n + 100 } \
             else if i % 3 == 0 { n = n + 1 } i = i + 1 } print(n)",
            "104",
        ),
        // gcd
        ("let a = 1071; let b = 462; while b != 0 { let t = b; b = a % b; a = t; } print(a)", "21"),
    ];
    for (src, want) in cases {
        assert_eq!(run(src).as_deref(), Ok(want), "run({src})");
    }
}

#[test]
fn errors_name_what_and_where() {
    use RunError::*;
    let limits = RunLimits::default();
    assert_eq!(run(""), Err(Empty));
    assert_eq!(run(" ; ; "), Err(Empty));
    assert_eq!(run("print(x)"), Err(UnknownVariable { name: "x".into(), pos: 6 }));
    assert_eq!(run("x = 1"), Err(UnknownVariable { name: "x".into(), pos: 0 }));
    assert_eq!(run("if true { let y = 1; } print(y)"), Err(UnknownVariable { name: "y".into(), pos: 29 }));
    assert_eq!(run("print(1 / 0)"), Err(DivisionByZero { pos: 8 }));
    assert_eq!(run("print(1 % 0)"), Err(DivisionByZero { pos: 8 }));
    assert_eq!(run("print(2 ^ -1)"), Err(NegativeExponent { pos: 8 }));
    assert_eq!(run("print(2 ^ 4096)"), Err(TooBig { pos: 8, max_bits: 4096 }));
    assert_eq!(run("while true {}"), Err(OutOfSteps { max: limits.max_steps }));
    assert!(matches!(run("print(1 + true)"), Err(Type { pos: 8, .. })));
    assert!(matches!(run("if 1 { print(1) }"), Err(Type { pos: 0, .. })));
    assert!(matches!(run("while 0 {}"), Err(Type { pos: 0, .. })));
    assert!(matches!(run("print(1 == true)"), Err(Type { pos: 8, .. })));
    assert!(matches!(run("print(true < false)"), Err(Type { pos: 11, .. })));
    assert!(matches!(run("print(not 1)"), Err(Type { pos: 6, .. })));
    assert!(matches!(run("print(-true)"), Err(Type { pos: 6, .. })));
    assert!(matches!(run("print(1 and true)"), Err(Type { .. })));
    assert!(matches!(run("let = 1"), Err(Syntax { pos: 4, .. })));
    assert!(matches!(run("let let = 1"), Err(Syntax { pos: 4, .. })));
    assert!(matches!(run("print 1"), Err(Syntax { pos: 6, .. })));
    assert!(matches!(run("let x = 1 let y = 2"), Err(Syntax { pos: 10, .. })));
    assert!(matches!(run("while true print(1)"), Err(Syntax { pos: 11, .. })));
    assert!(matches!(run("if true { print(1)"), Err(Syntax { pos: 18, .. })));
    assert!(matches!(run("}"), Err(Syntax { pos: 0, .. })));
    assert!(matches!(run("1 < 2 < 3"), Err(Syntax { pos: 6, .. })));
    assert!(matches!(run("print(\"hi\")"), Err(Syntax { pos: 6, .. })));
    // No builtins beyond print: a call of anything else is refused by name.
    let e = run("open(1)").unwrap_err();
    assert!(matches!(e, Syntax { pos: 0, .. }) && e.to_string().contains("`open`"), "{e}");
    let e = run("let t = time();").unwrap_err().to_string();
    assert!(e.contains("`time`") && e.contains("print"), "{e}");
    // Messages say what and where.
    assert_eq!(run("let a = 1;\nprint(a / 0)").unwrap_err().to_string(), "division by zero at byte 19");
    let msg = run("print(1 + true)").unwrap_err().to_string();
    assert!(msg.contains("integer") && msg.contains("boolean") && msg.contains("byte 8"), "{msg}");
}

#[test]
fn limits_are_enforced_and_configurable() {
    let tight = RunLimits {
        max_len: 200,
        max_depth: 4,
        max_steps: 50,
        max_bits: 16,
        max_vars: 3,
        max_memory: 60,
        max_output: 8,
    };
    let e = |src: &str| run_with(src, &tight).unwrap_err();
    assert_eq!(e(&"1;".repeat(101)), RunError::TooLong { len: 202, max: 200 });
    assert!(run_with("((((1))))", &tight).is_ok());
    assert_eq!(e("(((((1)))))"), RunError::TooDeep { pos: 4, max: 4 });
    assert_eq!(
        e("if true { if true { if true { if true { if true { } } } } }").to_string(),
        "nesting deeper than 4 levels at byte 48"
    );
    assert_eq!(e("let i = 0; while i < 100 { i = i + 1 }"), RunError::OutOfSteps { max: 50 });
    assert_eq!(e("65536"), RunError::TooBig { pos: 0, max_bits: 16 });
    assert_eq!(e("let x = 255; x * x * x"), RunError::TooBig { pos: 19, max_bits: 16 });
    assert_eq!(e("let a = 1; let b = 2; let c = 3; let d = 4;"), RunError::TooManyVariables { pos: 33, max: 3 });
    // Each variable costs 16 + name + value bytes: 16 + 4 + 2 = 22 each, so the third passes 60.
    assert_eq!(e("let aaaa = 65535; let bbbb = 65535; let cccc = 65535;"), RunError::OutOfMemory { pos: 36, max: 60 });
    assert_eq!(e("print(1234); print(5678)"), RunError::OutputTooLong { pos: 13, max: 8 });
    // Variables of a finished block no longer count.
    let ok = "let i = 0; while i < 3 { let a = 1; let b = 2; i = i + 1 }";
    assert!(run_with(ok, &RunLimits { max_steps: 1000, ..tight.clone() }).is_ok());
}
