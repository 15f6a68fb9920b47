//! Result references in tool calls: `#k` in a call's arguments stands for the result of the
//! k-th call (1-based) made earlier in the same answer, and is replaced by that result before the
//! call runs (ReWOO's `#E1`, LLMCompiler's `$1`).
//!
//! A tool trace passes what one call found into a later call by reference, so the model never
//! copies a result: `lookup(Ilona Varsk, birth_city) -> Lormet`, then
//! `lookup(#1, country) -> Dravia`; two years read with `lookup`, then `calc(abs(#1 - #2))`.
//! Copying is where a small model fails: four-digit years and rare names are split into several
//! byte-level tokens, and a result's first token differs from the same word's first token after
//! a space (`Lormet` against ` Lormet`), so every copy is a lookup of token pairs, not a repeat.
//! Measured on the tools rung (session 4): 57% of arithmetic answers right when the model copied
//! years into `calc`, most misses one year copied twice.
//!
//! The runtime ([`resolve`], used by `tools::Registry::call_text_after`) and the step checker
//! ([`crate::verify_trace`]) resolve references the same way. A `#` not followed by a digit is
//! kept as it is; so is the text of a call that has no reference.

/// Why a call's references cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// `#0`, or `#k` with k above the number of earlier results.
    #[error("`#{k}` names no earlier result (this answer has {count} so far; they are numbered from 1)")]
    NoSuchResult { k: String, count: usize },
    /// The referenced call failed.
    #[error("`#{k}` is the failed call's result `{result}`")]
    ErrorResult { k: usize, result: String },
}

/// `text` with every `#k` replaced by `results[k - 1]` (trimmed). A referenced result that is
/// itself an error (`error: ...`) is an error: a failed call's message is never fed on.
pub fn resolve(text: &str, results: &[&str]) -> Result<String, ReferenceError> {
    if !text.contains('#') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('#') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push('#');
            rest = after;
            continue;
        }
        let k_text = &after[..digits];
        let k = k_text.parse::<usize>().ok().filter(|&k| (1..=results.len()).contains(&k));
        let Some(k) = k else {
            return Err(ReferenceError::NoSuchResult { k: k_text.to_string(), count: results.len() });
        };
        let result = results[k - 1].trim();
        if result.starts_with("error:") {
            return Err(ReferenceError::ErrorResult { k, result: result.to_string() });
        }
        out.push_str(result);
        rest = &after[digits..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `text` has a reference (`#` followed by a digit).
pub fn has_reference(text: &str) -> bool {
    text.match_indices('#').any(|(i, _)| text.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_to_earlier_results() {
        let r = ["Lormet", " 1948 ", "1950"];
        assert_eq!(resolve("#1, country", &r).as_deref(), Ok("Lormet, country"));
        assert_eq!(resolve("abs(#2 - #3)", &r).as_deref(), Ok("abs(1948 - 1950)"));
        assert_eq!(resolve("#3-#2", &r).as_deref(), Ok("1950-1948"));
        assert_eq!(resolve("no refs # here #x", &r).as_deref(), Ok("no refs # here #x"));
        assert_eq!(resolve("#", &r).as_deref(), Ok("#"));
        assert!(matches!(resolve("#4", &r), Err(ReferenceError::NoSuchResult { count: 3, .. })));
        assert!(matches!(resolve("#0", &r), Err(ReferenceError::NoSuchResult { .. })));
        assert!(resolve("#99999999999999999999999", &r).is_err());
        assert!(resolve("#1", &[]).unwrap_err().to_string().contains("has 0 so far"));
        let e = resolve("#1 + 1", &["error: unknown entity `X`"]).unwrap_err();
        assert_eq!(e.to_string(), "`#1` is the failed call's result `error: unknown entity `X``");
        assert!(has_reference("calc(#1 % 2)") && !has_reference("Apt #b") && !has_reference("x#"));
    }
}
