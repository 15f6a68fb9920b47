//! Evaluation on task files of the common `{"question", "answer"}` shape, each answer graded by
//! a verifier chosen by name: per line (`"verifier": "name"`) or for the whole file
//! (`ascent eval --verifier`), `numeric` by default (the GSM8K convention: the gold answer's
//! worked solution ends `#### 42`).
//!
//! | verifier | the answer it reads | correct when |
//! |---|---|---|
//! | `numeric` | the number after the last `####`, else after the last `Answer:`, else the last number | the same value (`1,000` = `1000.0` = `$1000`; relative tolerance 1e-9) |
//! | `name` | the line after the last `####` or `Answer:`, else the first non-empty line | equal after lowercasing and dropping punctuation and extra spaces |
//! | `exact` | the same | equal after trimming spaces and a final full stop |
//! | `integer` | the same | the same integer |
//! | `yes_no` | the same | the same yes or no |
//! | `choice` | the first standalone letter A–J of that line (`B`, `(B)`, `B.`) | the gold letter |
//!
//! The gold answer is the text after the last `####` when it has one, else the whole answer.
//! The model is asked with its chat template when it has one (imported models), else in the
//! project's QA format (`Question: ...\nAnswer:`), and answers greedily.

use std::path::Path;
use std::time::Instant;

use model::burn::prelude::Device;
use model::Transformer;
use serde::{Deserialize, Serialize};
use tokenizer::{Message, Role, Tokenizer};
use world::Verifier as WorldVerifier;

use model::generate::{generate_many, Job, Next};
use model::Sampling;

use crate::error::{io_err, TrainError};

/// How a predicted answer is read and compared with the gold one (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QaVerifier {
    Numeric,
    Name,
    Exact,
    Integer,
    YesNo,
    Choice,
}

impl QaVerifier {
    pub const ALL: [QaVerifier; 6] = [Self::Numeric, Self::Name, Self::Exact, Self::Integer, Self::YesNo, Self::Choice];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Numeric => "numeric",
            Self::Name => "name",
            Self::Exact => "exact",
            Self::Integer => "integer",
            Self::YesNo => "yes_no",
            Self::Choice => "choice",
        }
    }

    /// The verifier called `name`, or an error listing the names.
    pub fn from_name(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|v| v.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
            format!("unknown verifier `{name}`; known: {}", names.join(", "))
        })
    }

    /// The answer a completion gives, as this verifier reads it.
    pub fn extract(self, completion: &str) -> Option<String> {
        if self == Self::Numeric {
            return final_number(completion);
        }
        let line = marked_line(completion)
            .or_else(|| completion.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string))?;
        match self {
            Self::Choice => choice_letter(&line).map(String::from),
            _ => Some(line),
        }
    }

    /// Whether `predicted` (as [`extract`](Self::extract) returns it) matches `gold`.
    pub fn check(self, gold: &str, predicted: &str) -> bool {
        match self {
            Self::Numeric => numbers_equal(predicted, gold),
            Self::Name => WorldVerifier::Name.check(gold, predicted),
            Self::Integer => WorldVerifier::Integer.check(gold, predicted),
            Self::YesNo => WorldVerifier::YesNo.check(gold, predicted),
            Self::Exact => {
                let t = |s: &str| s.trim().trim_end_matches('.').trim().to_string();
                t(gold) == t(predicted)
            }
            Self::Choice => choice_letter(gold).is_some_and(|g| choice_letter(predicted) == Some(g)),
        }
    }

    /// Whether `gold` is an answer this verifier can compare with (a number for `numeric`, ...).
    fn accepts_gold(self, gold: &str) -> bool {
        match self {
            Self::Numeric => parse_number(gold).is_some(),
            Self::Integer | Self::YesNo => self.check(gold, gold),
            Self::Choice => choice_letter(gold).is_some(),
            Self::Name | Self::Exact => !gold.trim().is_empty(),
        }
    }
}

/// The first line after the last `####`, else after the last `Answer:`, trimmed and non-empty.
fn marked_line(text: &str) -> Option<String> {
    ["####", "Answer:"].iter().find_map(|marker| {
        let p = text.rfind(marker)?;
        let line = text[p + marker.len()..].trim_start().lines().next().unwrap_or("").trim();
        (!line.is_empty()).then(|| line.to_string())
    })
}

/// The option letter (A–J) `text` gives: the whole of it (`B`, `(B)`, `B.`), else the first
/// in parentheses, else the first standing alone that is not the word "I".
fn choice_letter(text: &str) -> Option<char> {
    let letter = |w: &str| (w.len() == 1 && matches!(w.as_bytes()[0], b'A'..=b'J')).then(|| w.as_bytes()[0] as char);
    let bare = text.trim().trim_matches(|c: char| !c.is_alphanumeric());
    if let Some(c) = letter(bare) {
        return Some(c);
    }
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
    let in_parens = text.match_indices('(').find_map(|(p, _)| {
        let inner = text[p + 1..].split(')').next()?;
        letter(inner.trim())
    });
    in_parens.or_else(|| words.iter().filter(|w| **w != "I").find_map(|w| letter(w)))
}

/// One question, its gold answer and its verifier.
#[derive(Clone, Debug, PartialEq)]
pub struct QaTask {
    pub question: String,
    /// The gold answer: what follows the last `####`, or the whole answer when it has none.
    pub gold: String,
    pub verifier: QaVerifier,
}

#[derive(Deserialize)]
struct Line {
    question: String,
    answer: serde_json::Value,
    #[serde(default)]
    verifier: Option<String>,
}

/// Whether the first record of a JSONL text has the `{"question", "answer"}` shape and is not
/// one of the world's tasks (which have a `family`), so `ascent eval` can tell them apart.
pub fn is_qa_file(text: &str) -> bool {
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else { return false };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(first) else { return false };
    v.get("question").is_some() && v.get("answer").is_some() && v.get("family").is_none()
}

/// The tasks of a JSONL file, each graded by its line's `verifier` or else by `default`; a line
/// without a question, with an unknown verifier, or whose gold answer the verifier cannot
/// compare with, is an error naming the line.
pub fn read_qa_tasks(path: &Path, default: QaVerifier) -> Result<Vec<QaTask>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, "cannot read tasks", e))?;
    crate::sftdata::parse_jsonl(&text, &path.display().to_string(), "tasks", |line| {
        let l: Line = serde_json::from_str(line).map_err(|e| format!("expected {{\"question\", \"answer\"}}: {e}"))?;
        let answer = match &l.answer {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            other => return Err(format!("`answer` should be a string or a number, is {other}")),
        };
        let verifier = match &l.verifier {
            Some(name) => QaVerifier::from_name(name)?,
            None => default,
        };
        let gold = match answer.rfind("####") {
            Some(p) => answer[p + 4..].trim().to_string(),
            None => answer.trim().to_string(),
        };
        if !verifier.accepts_gold(&gold) {
            return Err(format!("the gold answer {gold:?} is not one the `{}` verifier compares", verifier.as_str()));
        }
        Ok(QaTask { question: l.question, gold, verifier })
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
pub struct QaItem {
    pub question: String,
    pub gold: String,
    pub verifier: QaVerifier,
    pub completion: String,
    pub predicted: Option<String>,
    pub correct: bool,
}

/// Accuracy over a task file, with every graded answer.
#[derive(Serialize, Clone, Debug)]
pub struct QaReport {
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// 95% Wilson interval of the accuracy.
    pub ci95: [f64; 2],
    pub seconds: f64,
    pub items: Vec<QaItem>,
}

/// The prompt a task is asked with: the model's chat template, or the QA format.
pub fn qa_prompt(tok: &Tokenizer, question: &str) -> Result<String, TrainError> {
    if asks_in_chat(tok) {
        tok.render_chat(&[Message::new(Role::User, question)], true).map_err(|e| TrainError::Data(e.to_string()))
    } else {
        Ok(crate::eval::prompt(question, crate::eval::AnswerMode::Direct))
    }
}

/// Whether tasks are asked through the model's chat template (an imported model's); otherwise
/// in the QA format, where the answer is the rest of the `Answer:` line.
fn asks_in_chat(tok: &Tokenizer) -> bool {
    tok.chat_template().is_some()
}

/// The prompts of `tasks`, encoded as inference encodes them, and the tokens each answer may
/// take: `max_new` where it fits the context, else what the longest prompt leaves. A prompt that
/// does not fit at all is an error.
pub(crate) fn qa_prompts<'a>(
    model: &Transformer,
    tok: &Tokenizer,
    tasks: impl IntoIterator<Item = &'a QaTask>,
    max_new: usize,
) -> Result<(Vec<Vec<u32>>, usize), TrainError> {
    let prompts: Vec<Vec<u32>> =
        tasks.into_iter().map(|t| Ok(tok.encode_prompt(&qa_prompt(tok, &t.question)?))).collect::<Result<_, _>>()?;
    let max_new = crate::eval::answer_budget(&prompts, model.config().max_seq_len, max_new)?;
    Ok((prompts, max_new))
}

/// Whether an answer is finished: an end-of-sequence token, or, in the QA format, the end of
/// the `Answer:` line.
pub(crate) fn qa_done(tok: &Tokenizer, ids: &[u32]) -> bool {
    ids.last().is_some_and(|&l| tok.is_eos(l)) || (!asks_in_chat(tok) && tok.decode(ids).contains('\n'))
}

/// The completion of `task` (up to its end), the answer its verifier reads from it, and whether
/// that answer is right.
pub(crate) fn qa_grade(tok: &Tokenizer, task: &QaTask, ids: &[u32]) -> (String, Option<String>, bool) {
    let ids: Vec<u32> = ids.iter().copied().take_while(|&i| !tok.is_eos(i)).collect();
    let mut completion = tok.decode(&ids);
    if !asks_in_chat(tok) {
        completion.truncate(completion.find('\n').unwrap_or(completion.len()));
    }
    let predicted = task.verifier.extract(&completion);
    let correct = predicted.as_deref().is_some_and(|p| task.verifier.check(&task.gold, p));
    (completion, predicted, correct)
}

/// Greedy answers to `tasks`, at most `max_new` tokens each (decoded in batches of 16), each
/// graded by its verifier.
pub fn evaluate_qa(
    model: &Transformer,
    tok: &Tokenizer,
    tasks: &[QaTask],
    max_new: usize,
    device: &Device,
) -> Result<QaReport, TrainError> {
    let started = Instant::now();
    let (prompts, max_new) = qa_prompts(model, tok, tasks, max_new)?;
    let hook = |_: usize, ids: &[u32], _: &[bool]| if qa_done(tok, ids) { Next::Stop } else { Next::Continue };
    let generated = generate_many(model, &Job::numbered(&prompts), max_new, 16, &Sampling::greedy(), &hook, device)
        .map_err(TrainError::Engine)?;
    let items: Vec<QaItem> = tasks
        .iter()
        .zip(&generated)
        .map(|(t, g)| {
            let (completion, predicted, correct) = qa_grade(tok, t, &g.tokens);
            QaItem {
                question: t.question.clone(),
                gold: t.gold.clone(),
                verifier: t.verifier,
                completion,
                predicted,
                correct,
            }
        })
        .collect();
    let n = items.len();
    let correct = items.iter().filter(|i| i.correct).count();
    Ok(QaReport {
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
        let t = read_qa_tasks(&p, QaVerifier::Numeric).unwrap();
        assert_eq!(t[0].gold, "4");
        assert_eq!(t[1].gold, "7");
        assert!(is_qa_file(&std::fs::read_to_string(&p).unwrap()));
        std::fs::write(&p, "{\"question\": \"q\", \"answer\": \"#### many\"}\n").unwrap();
        let e = read_qa_tasks(&p, QaVerifier::Numeric).unwrap_err().to_string();
        assert!(e.contains("gsm.jsonl:1") && e.contains("numeric"), "{e}");
        // A verifier per line, or the file's default; unknown names are listed.
        std::fs::write(
            &p,
            "{\"question\": \"Capital?\", \"answer\": \"Lormet\", \"verifier\": \"name\"}\n{\"question\": \"Even?\", \"answer\": true}\n",
        )
        .unwrap();
        let t = read_qa_tasks(&p, QaVerifier::YesNo).unwrap();
        assert_eq!((t[0].verifier, t[1].verifier, t[1].gold.as_str()), (QaVerifier::Name, QaVerifier::YesNo, "yes"));
        std::fs::write(&p, "{\"question\": \"q\", \"answer\": \"x\", \"verifier\": \"fuzzy\"}\n").unwrap();
        let e = read_qa_tasks(&p, QaVerifier::Numeric).unwrap_err().to_string();
        assert!(e.contains("gsm.jsonl:1") && e.contains("unknown verifier `fuzzy`") && e.contains("choice"), "{e}");
        let world_line = "{\"id\": \"recall/x\", \"family\": \"recall\", \"question\": \"q\", \"answer\": \"a\"}";
        assert!(!is_qa_file(world_line));
    }

    #[test]
    fn each_verifier_reads_and_compares_its_kind_of_answer() {
        use QaVerifier::*;
        let graded =
            |v: QaVerifier, gold: &str, completion: &str| v.extract(completion).is_some_and(|p| v.check(gold, &p));
        assert!(graded(Numeric, "12", "3 * 4 = 12\n#### 12"));
        assert!(!graded(Numeric, "12", "3 * 4 = 13"));
        assert!(graded(Name, "Lormet", "Answer: lormet."));
        assert!(graded(Name, "Ilona Varsk", "  Ilona  Varsk\nmore text"));
        assert!(!graded(Name, "Lormet", "Answer: Dravia"));
        assert!(graded(Exact, "Lormet", "Lormet."));
        assert!(!graded(Exact, "Lormet", "lormet"));
        assert!(graded(Integer, "1948", "Answer: 1948"));
        assert!(!graded(Integer, "1948", "Answer: 1949"));
        assert!(graded(YesNo, "no", "#### No."));
        assert!(!graded(YesNo, "no", "#### yes"));
        assert!(graded(Choice, "B", "The answer is (B) because..."));
        assert!(graded(Choice, "B", "I think it is B."));
        assert!(graded(Choice, "I", "(I)"));
        assert!(graded(Choice, "(C)", "Answer: C. Lormet"));
        assert!(!graded(Choice, "B", "Answer: A"));
        assert_eq!(Choice.extract("no letter here"), None);
        assert_eq!(QaVerifier::from_name("yes_no"), Ok(YesNo));
    }
}
