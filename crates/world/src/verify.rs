//! Grading: answer verifiers ([`Verifier`], [`extract_answer`]) and step-by-step trace
//! verification against the knowledge ([`verify_trace`], a process reward).
//!
//! The same functions serve evaluation, rejection sampling, RL rewards and best-of-N.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::corpus::canonical_middle;
use crate::tasks::Task;
use crate::world::{Fact, Relation, World};

/// How a predicted answer is compared with the gold one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verifier {
    /// Normalised exact match: case, whitespace and punctuation are ignored.
    Name,
    /// Integer equality (`"17"`, `" 17. "`, `"+17"`).
    Integer,
    /// `yes` / `no`, normalised.
    YesNo,
}

impl Verifier {
    /// `"name"`, `"integer"` or `"yes_no"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Integer => "integer",
            Self::YesNo => "yes_no",
        }
    }

    /// The verifier with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Name, Self::Integer, Self::YesNo].into_iter().find(|v| v.as_str() == name)
    }

    /// A verifier suited to a gold answer: integer if it parses as one, yes/no if it is one,
    /// otherwise name. For imported knowledge without a declared answer type.
    pub fn infer(gold: &str) -> Self {
        if parse_int(gold).is_some() {
            Self::Integer
        } else if parse_yes_no(gold).is_some() {
            Self::YesNo
        } else {
            Self::Name
        }
    }

    /// Whether `predicted` (a bare answer, not a whole completion) matches `gold`.
    pub fn check(self, gold: &str, predicted: &str) -> bool {
        match self {
            Self::Name => {
                let g = normalize_name(gold);
                !g.is_empty() && g == normalize_name(predicted)
            }
            Self::Integer => matches!((parse_int(gold), parse_int(predicted)), (Some(a), Some(b)) if a == b),
            Self::YesNo => matches!((parse_yes_no(gold), parse_yes_no(predicted)), (Some(a), Some(b)) if a == b),
        }
    }
}

/// Whether `predicted` matches `gold` under `verifier`.
pub fn verify(verifier: Verifier, gold: &str, predicted: &str) -> bool {
    verifier.check(gold, predicted)
}

/// Lowercase, every non-alphanumeric character turned into a space, whitespace collapsed.
pub fn normalize_name(s: &str) -> String {
    let mapped: String = s.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    mapped.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

fn trim_answer(s: &str) -> &str {
    s.trim().trim_end_matches(['.', '!', '?', ',', ';']).trim()
}

fn parse_int(s: &str) -> Option<i64> {
    let t = trim_answer(s);
    t.strip_prefix('+').unwrap_or(t).parse().ok()
}

fn parse_yes_no(s: &str) -> Option<bool> {
    match normalize_name(s).as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// The answer of a completion: the rest of the line after the last `Answer:`, trimmed;
/// `None` if there is no `Answer:` or nothing follows it.
pub fn extract_answer(text: &str) -> Option<String> {
    let pos = text.rfind("Answer:")?;
    let rest = &text[pos + "Answer:".len()..];
    let line = rest.lines().next().unwrap_or("").trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// Facts indexed for step checks (names compared after [`normalize_name`]).
#[derive(Clone, Debug, Default)]
pub struct KnowledgeIndex {
    facts: HashSet<(String, String, String)>,
    subjects: HashMap<(String, String), BTreeSet<String>>,
}

impl KnowledgeIndex {
    /// Indexes `facts`.
    pub fn new(facts: &[Fact]) -> Self {
        let mut k = Self::default();
        for f in facts {
            let (s, r, o) = (normalize_name(&f.subject), f.relation.trim().to_string(), normalize_name(&f.object));
            k.subjects.entry((r.clone(), o.clone())).or_default().insert(s.clone());
            k.facts.insert((s, r, o));
        }
        k
    }

    /// Whether `(subject, relation, object)` is a fact.
    pub fn contains(&self, subject: &str, relation: &str, object: &str) -> bool {
        self.facts.contains(&(normalize_name(subject), relation.trim().to_string(), normalize_name(object)))
    }

    /// The (normalised) subjects satisfying every `(relation, object)` condition.
    pub fn find(&self, conditions: &[(&str, &str)]) -> BTreeSet<String> {
        let mut out: Option<BTreeSet<String>> = None;
        for (r, o) in conditions {
            let set = self.subjects.get(&(r.trim().to_string(), normalize_name(o))).cloned().unwrap_or_default();
            out = Some(match out {
                None => set,
                Some(prev) => prev.intersection(&set).cloned().collect(),
            });
        }
        out.unwrap_or_default()
    }
}

impl World {
    /// The world's facts, indexed for [`verify_trace`].
    pub fn knowledge_index(&self) -> KnowledgeIndex {
        KnowledgeIndex::new(&self.facts())
    }
}

/// Result of checking a trace step by step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCheck {
    /// Steps found before the final `Answer:` (fact sentences, computations, tool calls).
    pub steps: usize,
    /// Steps that are true facts, correct computations or calls with correct results.
    pub correct_steps: usize,
    /// Whether the final answer passes the verifier.
    pub final_ok: bool,
    /// The extracted final answer.
    pub answer: Option<String>,
}

impl TraceCheck {
    /// At least one step, every step correct, and the final answer right.
    pub fn all_correct(&self) -> bool {
        self.steps > 0 && self.correct_steps == self.steps && self.final_ok
    }

    /// Fraction of correct steps (0 when there are none).
    pub fn step_score(&self) -> f64 {
        if self.steps == 0 {
            0.0
        } else {
            self.correct_steps as f64 / self.steps as f64
        }
    }
}

fn int(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

fn arith(a: i64, op: &str, b: i64) -> Option<i64> {
    match op {
        "+" => a.checked_add(b),
        "-" => a.checked_sub(b),
        "*" => a.checked_mul(b),
        "%" if b != 0 => a.checked_rem(b),
        _ => None,
    }
}

/// A computation sentence: `Some(correct)`, or `None` if it is not one.
fn check_computation(sentence: &str) -> Option<bool> {
    let t: Vec<&str> = sentence.split_whitespace().collect();
    match t.as_slice() {
        [a, op, b, "=", c] => {
            let (a, b, c) = (int(a)?, int(b)?, int(c)?);
            Some(arith(a, op, b)? == c)
        }
        [a, "<", b] => Some(int(a)? < int(b)?),
        [a, ">", b] => Some(int(a)? > int(b)?),
        [n, "is", parity @ ("even" | "odd")] => Some((int(n)? % 2 == 0) == (*parity == "even")),
        _ => None,
    }
}

/// Every way to cut `text` at one occurrence of `sep`: `(before, after)` pairs.
fn cuts<'a>(text: &'a str, sep: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    text.match_indices(sep).map(move |(i, _)| (&text[..i], &text[i + sep.len()..]))
}

/// A fact sentence (canonical or generic form) is a known fact under some parse. Every cut is
/// tried, so names and relations may themselves contain ` of `, ` is ` or a template's middle.
/// In the generic form the relation may be written with spaces for underscores
/// ([`crate::relation_words`]).
fn check_fact_sentence(kb: &KnowledgeIndex, sentence: &str) -> bool {
    for rel in Relation::ALL {
        if cuts(sentence, canonical_middle(rel)).any(|(s, o)| kb.contains(s, rel.as_str(), o)) {
            return true;
        }
    }
    let Some(rest) = sentence.strip_prefix("The ") else { return false };
    cuts(rest, " of ").any(|(rel, rest)| {
        let underscored = rel.trim().replace(' ', "_");
        cuts(rest, " is ").any(|(s, o)| kb.contains(s, rel, o) || kb.contains(s, &underscored, o))
    })
}

/// A tool-call line (`lookup`, `find`, `calc`): correct result? `results` are the results the
/// earlier call lines of the trace claim, which its references (`#k`, [`crate::refs`]) name.
fn check_tool_line(kb: &KnowledgeIndex, line: &str, results: &[&str]) -> bool {
    let Some((call, result)) = line.rsplit_once(" -> ") else { return false };
    let result = result.trim();
    let Ok(call) = crate::refs::resolve(call, results) else { return false };
    let inner = |name: &str| call.trim().strip_prefix(name).and_then(|c| c.strip_suffix(')'));
    if let Some(args) = inner("lookup(") {
        return match args.rsplit_once(',') {
            Some((s, rel)) => kb.contains(s, rel, result),
            None => false,
        };
    }
    if let Some(args) = inner("find(") {
        let mut conds = Vec::new();
        for c in args.split(',') {
            match c.split_once('=') {
                Some((r, o)) => conds.push((r.trim(), o.trim())),
                None => return false,
            }
        }
        let claimed: BTreeSet<String> = result.split(',').map(normalize_name).filter(|s| !s.is_empty()).collect();
        return !conds.is_empty() && kb.find(&conds) == claimed;
    }
    if let Some(expr) = inner("calc(") {
        // `abs(a - b)`: the distance between two numbers.
        if let Some(diff) = expr.trim().strip_prefix("abs(").and_then(|e| e.strip_suffix(')')) {
            let t: Vec<&str> = diff.split_whitespace().collect();
            let [a, "-", b] = t.as_slice() else { return false };
            let (Some(a), Some(b)) = (int(a), int(b)) else { return false };
            return a.checked_sub(b).and_then(i64::checked_abs).is_some_and(|d| int(result) == Some(d));
        }
        let t: Vec<&str> = expr.split_whitespace().collect();
        let [a, op, b] = t.as_slice() else { return false };
        let (Some(a), Some(b)) = (int(a), int(b)) else { return false };
        return match *op {
            "<" => result == if a < b { "yes" } else { "no" },
            ">" => result == if a > b { "yes" } else { "no" },
            _ => arith(a, op, b).is_some_and(|v| int(result) == Some(v)),
        };
    }
    false
}

/// One sentence (without its final period): a true computation or a known fact.
fn check_step(kb: &KnowledgeIndex, sentence: &str) -> bool {
    check_computation(sentence).unwrap_or_else(|| check_fact_sentence(kb, sentence))
}

/// Most pieces (between `. `) that one sentence may span: enough for a name like
/// `J. R. R. Tolkien` inside a sentence, and it bounds the work on long lines.
const MAX_SENTENCE_PIECES: usize = 8;

/// Steps and correct steps of a line of prose. The line is cut into pieces at `. `; a sentence
/// is a run of consecutive pieces, so a name with `. ` in it can stay whole. Of all the ways to
/// group the pieces, the one with the most correct steps is taken, and among those the one with
/// the most steps: a line of true sentences scores as the naive split would, unless a name's
/// period would otherwise break a true fact in two.
fn score_line(kb: &KnowledgeIndex, line: &str) -> (usize, usize) {
    let pieces: Vec<&str> = line.split(". ").collect();
    // best[j] = (correct, steps) of the best grouping of pieces[..j].
    let mut best: Vec<Option<(usize, usize)>> = vec![None; pieces.len() + 1];
    best[0] = Some((0, 0));
    for j in 1..=pieces.len() {
        for i in j.saturating_sub(MAX_SENTENCE_PIECES)..j {
            let Some((c, n)) = best[i] else { continue };
            let joined = pieces[i..j].join(". ");
            let sentence = joined.trim().trim_end_matches('.').trim();
            let candidate =
                if sentence.is_empty() { (c, n) } else { (c + usize::from(check_step(kb, sentence)), n + 1) };
            if best[j].is_none_or(|b| candidate > b) {
                best[j] = Some(candidate);
            }
        }
    }
    let (correct, steps) = best[pieces.len()].unwrap_or((0, 0));
    (steps, correct)
}

/// Checks a trace (gold-style sentences or tool calls, the formats of [`Task`]) step by step
/// against `kb`, and its final answer against `gold` with `verifier`.
///
/// The text before the last `Answer:` is split into lines; a line starting with `lookup(`,
/// `find(` or `calc(` is one tool step, any other line is split into sentences at `. ` (keeping
/// together the pieces of a true fact whose names contain `. `, such as `J. R. Penhale`). Each
/// sentence is a step: correct if it is a true
/// computation or a fact sentence (canonical template or `The {relation} of {subject} is
/// {object}.`) naming a known fact. Unparseable sentences count as incorrect steps.
pub fn verify_trace(kb: &KnowledgeIndex, trace: &str, verifier: Verifier, gold: &str) -> TraceCheck {
    let (body, answer) = match trace.rfind("Answer:") {
        Some(pos) => (&trace[..pos], extract_answer(trace)),
        None => (trace, None),
    };
    let (mut steps, mut correct) = (0, 0);
    let mut results: Vec<&str> = Vec::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if ["lookup(", "find(", "calc("].iter().any(|p| line.starts_with(p)) {
            steps += 1;
            correct += usize::from(check_tool_line(kb, line, &results));
            results.push(line.rsplit_once(" -> ").map_or("error: no result", |(_, r)| r.trim()));
            continue;
        }
        let (n, ok) = score_line(kb, line);
        steps += n;
        correct += ok;
    }
    let final_ok = answer.as_deref().is_some_and(|a| verifier.check(gold, a));
    TraceCheck { steps, correct_steps: correct, final_ok, answer }
}

impl Task {
    /// Grades a completion: the text after its last `Answer:` (or, if none, the whole text).
    pub fn is_correct(&self, completion: &str) -> bool {
        let predicted = extract_answer(completion).unwrap_or_else(|| completion.trim().to_string());
        self.verifier.check(&self.answer, &predicted)
    }

    /// Checks a trace for this task step by step ([`verify_trace`]).
    pub fn check_trace(&self, kb: &KnowledgeIndex, trace: &str) -> TraceCheck {
        verify_trace(kb, trace, self.verifier, &self.answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers() {
        assert!(verify(Verifier::Name, "Ilona Varsk", "  ilona   VARSK. "));
        assert!(!verify(Verifier::Name, "Ilona Varsk", "Ilona Vars"));
        assert!(!verify(Verifier::Name, "", ""));
        assert!(verify(Verifier::Integer, "17", " 17."));
        assert!(verify(Verifier::Integer, "17", "+17"));
        assert!(!verify(Verifier::Integer, "17", "18"));
        assert!(!verify(Verifier::Integer, "17", "17 or 18"));
        assert!(verify(Verifier::YesNo, "yes", "Yes."));
        assert!(!verify(Verifier::YesNo, "yes", "no"));
        assert!(!verify(Verifier::YesNo, "yes", "maybe"));
        assert_eq!(Verifier::infer("1972"), Verifier::Integer);
        assert_eq!(Verifier::infer("no"), Verifier::YesNo);
        assert_eq!(Verifier::infer("Lormet"), Verifier::Name);
        assert_eq!(Verifier::from_name("yes_no"), Some(Verifier::YesNo));
    }

    #[test]
    fn extract() {
        assert_eq!(extract_answer("x\nAnswer: Lormet\n"), Some("Lormet".into()));
        assert_eq!(extract_answer("Answer: a\nAnswer:  b "), Some("b".into()));
        assert_eq!(extract_answer("Answer:   "), None);
        assert_eq!(extract_answer("no answer"), None);
    }

    #[test]
    fn computations() {
        assert_eq!(check_computation("1972 - 1955 = 17"), Some(true));
        assert_eq!(check_computation("1972 - 1955 = 18"), Some(false));
        assert_eq!(check_computation("1955 < 1972"), Some(true));
        assert_eq!(check_computation("1955 > 1972"), Some(false));
        assert_eq!(check_computation("1972 is even"), Some(true));
        assert_eq!(check_computation("1973 is even"), Some(false));
        assert_eq!(check_computation("Lormet is Dravia"), None);
    }

    #[test]
    fn generic_and_tool_steps() {
        let kb = KnowledgeIndex::new(&[
            Fact { subject: "Ada".into(), relation: "friend".into(), object: "Bo".into() },
            Fact { subject: "Cy".into(), relation: "friend".into(), object: "Bo".into() },
        ]);
        let t = "The friend of Ada is Bo.\nlookup(Cy, friend) -> Bo\nfind(friend=Bo) -> Ada, Cy\ncalc(2 < 3) -> yes\nAnswer: Bo";
        let c = verify_trace(&kb, t, Verifier::Name, "Bo");
        assert_eq!((c.steps, c.correct_steps, c.final_ok), (4, 4, true));
        let bad = "The friend of Bo is Ada.\nfind(friend=Bo) -> Ada\ncalc(2 - 3) -> 1\nAnswer: Ada";
        let c = verify_trace(&kb, bad, Verifier::Name, "Bo");
        assert_eq!((c.steps, c.correct_steps, c.final_ok), (3, 0, false));
    }

    #[test]
    fn references_name_the_results_the_trace_claims() {
        let kb = KnowledgeIndex::new(&[
            Fact { subject: "Ada".into(), relation: "friend".into(), object: "Bo".into() },
            Fact { subject: "Bo".into(), relation: "born".into(), object: "1950".into() },
            Fact { subject: "Ada".into(), relation: "born".into(), object: "1961".into() },
        ]);
        let steps = |t: &str| {
            let c = verify_trace(&kb, t, Verifier::Integer, "11");
            (c.steps, c.correct_steps, c.final_ok)
        };
        let t = "lookup(Ada, friend) -> Bo\nlookup(#1, born) -> 1950\nlookup(Ada, born) -> 1961\n\
                 calc(abs(#2 - #3)) -> 11\ncalc(#3 - #2) -> 11\ncalc(#2 < #3) -> yes\ncalc(#3 % 2) -> 1\nAnswer: 11";
        assert_eq!(steps(t), (7, 7, true));
        // A wrong difference, a reference past the results, a reference to a failed call.
        assert_eq!(
            steps("lookup(Ada, born) -> 1961\nlookup(Bo, born) -> 1950\ncalc(abs(#1 - #2)) -> -11\nAnswer: 11"),
            (3, 2, true)
        );
        assert_eq!(steps("lookup(Ada, born) -> 1961\ncalc(#1 - #2) -> 1961\nAnswer: 1961"), (2, 1, false));
        assert_eq!(
            steps("lookup(Cy, born) -> error: unknown entity `Cy`\nlookup(#1, born) -> 1950\nAnswer: 1950"),
            (2, 0, false)
        );
        // A step is checked on the results the trace claims: a wrong lookup makes the lookup
        // wrong, not the arithmetic over it.
        assert_eq!(
            steps("lookup(Ada, born) -> 1962\nlookup(Bo, born) -> 1950\ncalc(abs(#1 - #2)) -> 12\nAnswer: 12"),
            (3, 2, false)
        );
    }

    #[test]
    fn names_with_periods_and_of_are_one_step() {
        let kb = KnowledgeIndex::new(&[
            Fact { subject: "North of Quiet".into(), relation: "author".into(), object: "J. R. Penhale".into() },
            Fact { subject: "J. R. Penhale".into(), relation: "place_of_birth".into(), object: "Keswyn".into() },
        ]);
        let t = "The author of North of Quiet is J. R. Penhale.\nThe place of birth of J. R. Penhale is Keswyn.\nAnswer: Keswyn";
        let c = verify_trace(&kb, t, Verifier::Name, "Keswyn");
        assert_eq!((c.steps, c.correct_steps, c.final_ok), (2, 2, true), "{c:?}");
        // Two true facts on one line are two steps; a false sentence is split at its periods.
        let t = "The author of North of Quiet is J. R. Penhale. The place of birth of J. R. Penhale is Keswyn.\nAnswer: Keswyn";
        assert_eq!(verify_trace(&kb, t, Verifier::Name, "Keswyn").correct_steps, 2);
        let t = "The author of North of Quiet is J. R. Tolkien.\nAnswer: Keswyn";
        let c = verify_trace(&kb, t, Verifier::Name, "Keswyn");
        assert_eq!((c.steps, c.correct_steps), (3, 0));
        assert!(!c.all_correct());
    }
}
