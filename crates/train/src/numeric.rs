//! Evaluation on task files of the common `{"question", "answer"}` shape with a numeric answer
//! (the GSM8K convention: the gold answer's worked solution ends `#### 42`), graded by a numeric
//! verifier.
//!
//! The model is asked with its chat template when it has one (imported models), else in the
//! project's QA format (`Question: ...\nAnswer:`), and answers greedily. Its final number is
//! read as GSM8K's graders read it: the number after the last `####` if it wrote one, else after
//! the last `Answer:`, else the last number in its text. Numbers compare as values (`1,000`,
//! `1000.0` and `$1000` are equal; relative tolerance 1e-9).

use std::path::Path;
use std::time::Instant;

use model::burn::prelude::Device;
use model::Transformer;
use serde::{Deserialize, Serialize};
use tokenizer::{Message, Role, Tokenizer};

use crate::error::{io_err, TrainError};
use crate::infer::{complete, CompleteOptions};

/// One question and its gold final number.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericTask {
    pub question: String,
    /// The gold answer as written after `####` (or the whole answer when it has none).
    pub gold: String,
}

#[derive(Deserialize)]
struct Line {
    question: String,
    answer: serde_json::Value,
}

/// Whether the first record of a JSONL text has the `{"question", "answer"}` shape without the
/// world's task fields (so `ascent eval` can tell the two kinds of task file apart).
pub fn is_numeric_file(text: &str) -> bool {
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else { return false };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(first) else { return false };
    v.get("question").is_some() && v.get("answer").is_some() && v.get("verifier").is_none()
}

/// The tasks of a JSONL file; a line without a question, or whose answer has no number, is an
/// error naming the line.
pub fn read_numeric_tasks(path: &Path) -> Result<Vec<NumericTask>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, "cannot read tasks", e))?;
    crate::sftdata::parse_jsonl(&text, &path.display().to_string(), "tasks", |line| {
        let l: Line = serde_json::from_str(line).map_err(|e| format!("expected {{\"question\", \"answer\"}}: {e}"))?;
        let answer = match &l.answer {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(format!("`answer` should be a string or a number, is {other}")),
        };
        let gold = match answer.rfind("####") {
            Some(p) => answer[p + 4..].trim().to_string(),
            None => answer.trim().to_string(),
        };
        if parse_number(&gold).is_none() {
            return Err(format!("the gold answer {gold:?} is not a number"));
        }
        Ok(NumericTask { question: l.question, gold })
    })
}

/// A number as written: commas, a currency sign, a trailing full stop or percent sign ignored.
pub fn parse_number(text: &str) -> Option<f64> {
    let t: String = text.trim().chars().filter(|c| !matches!(c, ',' | '$' | '€' | '£' | ' ')).collect();
    let t = t.trim_end_matches(['.', '%']);
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The numbers in `text`, in order, as written (digits with an optional minus sign, commas
/// and decimal points between digits).
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let digit_at = |k: usize| chars.get(k).is_some_and(|&(_, d)| d.is_ascii_digit());
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_ascii_digit() || (c == '-' && digit_at(i + 1)) {
            let mut j = i + 1;
            while j < chars.len() && (digit_at(j) || (matches!(chars[j].1, ',' | '.') && digit_at(j + 1))) {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(p, _)| p);
            out.push(text[start..end].to_string());
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The final number of a completion (see the module doc), as written.
pub fn final_number(text: &str) -> Option<String> {
    for marker in ["####", "Answer:"] {
        if let Some(p) = text.rfind(marker) {
            let line = text[p + marker.len()..].trim_start().lines().next().unwrap_or("");
            if let Some(n) = numbers(line).into_iter().next() {
                return Some(n);
            }
        }
    }
    numbers(text).pop()
}

/// Whether two written numbers are the same value.
pub fn numbers_equal(a: &str, b: &str) -> bool {
    match (parse_number(a), parse_number(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

/// One graded answer.
#[derive(Serialize, Clone, Debug)]
pub struct NumericItem {
    pub question: String,
    pub gold: String,
    pub completion: String,
    pub predicted: Option<String>,
    pub correct: bool,
}

/// Accuracy over a numeric task file, with every graded answer.
#[derive(Serialize, Clone, Debug)]
pub struct NumericReport {
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// 95% Wilson interval of the accuracy.
    pub ci95: [f64; 2],
    pub seconds: f64,
    pub items: Vec<NumericItem>,
}

/// The prompt a task is asked with: the model's chat template, or the QA format.
pub fn numeric_prompt(tok: &Tokenizer, question: &str) -> Result<String, TrainError> {
    if tok.chat_template().is_some() {
        tok.render_chat(&[Message::new(Role::User, question)], true).map_err(|e| TrainError::Data(e.to_string()))
    } else {
        Ok(crate::eval::prompt(question, crate::eval::AnswerMode::Direct))
    }
}

/// Greedy answers to `tasks`, at most `max_new` tokens each, graded numerically.
pub fn evaluate_numeric(
    model: &Transformer,
    tok: &Tokenizer,
    tasks: &[NumericTask],
    max_new: usize,
    device: &Device,
) -> Result<NumericReport, TrainError> {
    let started = Instant::now();
    let opts = CompleteOptions { max_new, ..Default::default() };
    let mut items = Vec::with_capacity(tasks.len());
    for t in tasks {
        let prompt = numeric_prompt(tok, &t.question)?;
        let c = complete(model, tok, &prompt, &opts, &|_, _| {}, device)?.remove(0);
        let predicted = final_number(&c.text);
        let correct = predicted.as_deref().is_some_and(|p| numbers_equal(p, &t.gold));
        items.push(NumericItem {
            question: t.question.clone(),
            gold: t.gold.clone(),
            completion: c.text,
            predicted,
            correct,
        });
    }
    let n = items.len();
    let correct = items.iter().filter(|i| i.correct).count();
    Ok(NumericReport {
        n,
        correct,
        accuracy: correct as f64 / n.max(1) as f64,
        ci95: crate::eval::wilson(correct, n),
        seconds: started.elapsed().as_secs_f64(),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_numbers_as_gsm8k_graders_read_them() {
        assert_eq!(final_number("She pays 3 * 4 = 12 dollars.\n#### 12").as_deref(), Some("12"));
        assert_eq!(final_number("Answer: 1,250 apples").as_deref(), Some("1,250"));
        assert_eq!(final_number("5 + 7 = 12, minus 2 is 10.").as_deref(), Some("10"));
        assert_eq!(final_number("It fell to -3.5 degrees").as_deref(), Some("-3.5"));
        assert_eq!(final_number("no number here"), None);
        assert!(numbers_equal("1,000", "1000.0") && numbers_equal("$18", "18") && numbers_equal("12.", "12"));
        assert!(!numbers_equal("12", "13") && !numbers_equal("x", "1"));
    }

    #[test]
    fn files_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gsm.jsonl");
        std::fs::write(
            &p,
            "{\"question\": \"2+2?\", \"answer\": \"2+2=4\\n#### 4\"}\n{\"question\": \"q\", \"answer\": 7}\n",
        )
        .unwrap();
        let t = read_numeric_tasks(&p).unwrap();
        assert_eq!(t[0].gold, "4");
        assert_eq!(t[1].gold, "7");
        assert!(is_numeric_file(&std::fs::read_to_string(&p).unwrap()));
        std::fs::write(&p, "{\"question\": \"q\", \"answer\": \"#### many\"}\n").unwrap();
        let e = read_numeric_tasks(&p).unwrap_err().to_string();
        assert!(e.contains("gsm.jsonl:1") && e.contains("not a number"), "{e}");
    }
}
