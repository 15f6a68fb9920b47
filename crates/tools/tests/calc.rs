//! `calc` on a table of cases: exact rationals, precedence, associativity, comparisons, errors.

use tools::{calc, calc::eval, CalcError, CalcLimits};

#[test]
fn values() {
    let cases = [
        // integers and the world's trace forms
        ("1948 < 1950", "yes"),
        ("1950 < 1948", "no"),
        ("1975 % 2", "1"),
        ("1974 % 2", "0"),
        ("1990 - 1955", "35"),
        ("0", "0"),
        ("  42  ", "42"),
        ("007", "7"),
        // exact rationals, in lowest terms
        ("7 / 2", "7/2"),
        ("6 / 4", "3/2"),
        ("-6 / 4", "-3/2"),
        ("6 / -4", "-3/2"),
        ("1 / 3 + 1 / 6", "1/2"),
        ("1.25", "5/4"),
        ("1.25 * 4", "5"),
        ("0.1 + 0.2", "3/10"),
        ("0.1 + 0.2 == 0.3", "yes"),
        ("2.50", "5/2"),
        ("10 / 5", "2"),
        // precedence
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("2 * 3 ^ 2", "18"),
        ("-2 ^ 2", "-4"),
        ("(-2) ^ 2", "4"),
        ("2 ^ -1", "1/2"),
        ("(2/3) ^ -2", "9/4"),
        ("(-2/3) ^ 3", "-8/27"),
        ("1 + 2 < 2 * 2", "yes"),
        ("10 - 4 / 2", "8"),
        ("7 % 4 * 2", "6"),
        ("2 ** 10", "1024"),
        // associativity: ^ to the right, - and / to the left
        ("2 ^ 3 ^ 2", "512"),
        ("(2 ^ 3) ^ 2", "64"),
        ("2 ** 3 ** 2", "512"),
        ("10 - 3 - 2", "5"),
        ("10 - (3 - 2)", "9"),
        ("64 / 4 / 2", "8"),
        ("100 % 7 % 3", "2"),
        // unary signs
        ("--3", "3"),
        ("- -3", "3"),
        ("+3", "3"),
        ("3 - -3", "6"),
        ("-(1 + 2)", "-3"),
        // % truncates toward zero: the sign is the dividend's
        ("-7 % 3", "-1"),
        ("7 % -3", "1"),
        // powers of 0 and ±1 with any exponent
        ("0 ^ 0", "1"),
        ("0 ^ 5", "0"),
        ("1 ^ 1000000000000000000000", "1"),
        ("(-1) ^ 1000000000000000000001", "-1"),
        ("(-1) ^ -3", "-1"),
        // every comparison
        ("3 <= 3", "yes"),
        ("3 >= 4", "no"),
        ("3 == 3.0", "yes"),
        ("3 != 3", "no"),
        ("1/3 > 0.333", "yes"),
        // big but bounded
        ("2 ^ 4000", &num_bigint::BigInt::from(2).pow(4000).to_string()),
        ("2 ^ 4095 / 2 ^ 4095", "1"),
    ];
    for (expr, want) in cases {
        assert_eq!(calc(expr).as_deref(), Ok(want), "calc({expr})");
    }
}

#[test]
fn errors_name_what_and_where() {
    use CalcError::*;
    assert_eq!(calc(""), Err(Empty));
    assert_eq!(calc("   "), Err(Empty));
    assert_eq!(calc("1 / 0"), Err(DivisionByZero { pos: 2 }));
    assert_eq!(calc("1 % (2 - 2)"), Err(DivisionByZero { pos: 2 }));
    assert_eq!(calc("0 ^ -1"), Err(DivisionByZero { pos: 2 }));
    assert_eq!(calc("1.5 % 1"), Err(NotInteger { pos: 4, what: "both operands of %" }));
    assert_eq!(calc("2 ^ 0.5"), Err(NotInteger { pos: 2, what: "the exponent" }));
    assert_eq!(calc("2 ^ 5000"), Err(TooBig { pos: 2, max_bits: 4096 }));
    assert_eq!(calc("2 ^ 4096"), Err(TooBig { pos: 2, max_bits: 4096 }));
    assert_eq!(calc("2 ^ 4095 * 2"), Err(TooBig { pos: 9, max_bits: 4096 }));
    assert!(matches!(calc("1 +"), Err(Syntax { pos: 3, .. })));
    assert!(matches!(calc("(1 + 2"), Err(Syntax { pos: 6, .. })));
    assert!(matches!(calc("1 + 2)"), Err(Syntax { pos: 5, .. })));
    assert!(matches!(calc("1 < 2 < 3"), Err(Syntax { pos: 6, .. })));
    assert!(matches!(calc("(1 < 2)"), Err(Syntax { pos: 3, .. })));
    assert!(matches!(calc("1 2"), Err(Syntax { pos: 2, .. })));
    assert!(matches!(calc("x + 1"), Err(Syntax { pos: 0, .. })));
    assert!(matches!(calc("1 + é"), Err(Syntax { pos: 4, .. })));
    assert!(matches!(calc("1."), Err(Syntax { pos: 1, .. })));
    assert!(matches!(calc(".5"), Err(Syntax { pos: 0, .. })));
    // Messages say what and where.
    let msg = calc("1 + (2 * 0) / 0").unwrap_err().to_string();
    assert_eq!(msg, "division by zero at byte 12");
    assert_eq!(
        calc("(1 < 2)").unwrap_err().to_string(),
        "unexpected comparison at byte 3: expected `)` or an operator (a comparison only at the top level)"
    );
    assert_eq!(calc("1 + )").unwrap_err().to_string(), "unexpected `)` at byte 4: expected a number, `(` or `abs(`");
    let msg = calc("3 $ 4").unwrap_err().to_string();
    assert!(msg.contains("`$`") && msg.contains("byte 2"), "{msg}");
}

#[test]
fn limits_are_configurable() {
    let tight = CalcLimits { max_len: 8, max_depth: 3, max_bits: 16 };
    assert_eq!(eval("123456789", &tight), Err(CalcError::TooLong { len: 9, max: 8 }));
    assert_eq!(eval("(((1)))", &tight).map(|v| v.to_string()), Ok("1".to_string()));
    assert_eq!(eval("((((1))))", &tight), Err(CalcError::TooLong { len: 9, max: 8 }));
    assert_eq!(eval("(((-1)))", &tight), Err(CalcError::TooDeep { pos: 3, max: 3 }));
    assert_eq!(eval("-(-(-1))", &tight), Err(CalcError::TooDeep { pos: 3, max: 3 }));
    assert_eq!(eval("65536", &tight), Err(CalcError::TooBig { pos: 0, max_bits: 16 }));
    assert_eq!(eval("65535", &tight).map(|v| v.to_string()), Ok("65535".to_string()));
    assert_eq!(eval("2^16", &tight), Err(CalcError::TooBig { pos: 1, max_bits: 16 }));
    assert_eq!(eval("1/65536", &tight), Err(CalcError::TooBig { pos: 2, max_bits: 16 }));
    let d = CalcLimits::default();
    assert_eq!((d.max_len, d.max_depth, d.max_bits), (4096, 64, 4096));
}
