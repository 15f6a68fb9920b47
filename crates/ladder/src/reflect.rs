//! Self-reflection data: gold reasoning traces in which one fact line is first written wrong,
//! then retracted and written right.
//!
//! The form (one retraction; [`train::eval::RETRACTION`] is the retraction line):
//! ```text
//! Question: In which country was Ilona Varsk born?
//! Ilona Varsk was born in Tessor.        <- a wrong fact: read, not trained on (weight 0)
//! Wait, that is wrong.                   <- trained: the model learns to notice
//! Ilona Varsk was born in Lormet.        <- trained: and to write the line again
//! Lormet is in Ardonia.
//! Answer: Ardonia
//! ```
//! This is the "retry data" of Physics of Language Models 2.2 (errors followed at once by their
//! correction), with the erroneous line masked out of the loss so the model is never taught
//! to make the error, only to catch it. The wrong fact keeps the subject and relation and takes
//! another object the relation has in the knowledge base, so it is a plausible slip rather than
//! noise. Which traces get an error, which line, and which object are fixed by a hash of the
//! seed and the task id: the data is reproducible. At inference an answer may retract at most
//! [`train::eval::MAX_REVISIONS`] lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sha2::{Digest, Sha256};
use train::eval::RETRACTION;
use world::{fact_sentence, Fact};

/// Rewrites gold traces into their reflection form.
pub struct Reflection {
    /// Each fact's canonical sentence (as gold traces write it) to the fact.
    by_sentence: HashMap<String, Fact>,
    /// Each relation's distinct objects, sorted.
    objects: BTreeMap<String, Vec<String>>,
    seed: u64,
    /// Fraction of traces that get an error (the rest are left as they are).
    rate: f64,
}

impl Reflection {
    pub fn new(facts: &[Fact], seed: u64, rate: f64) -> Self {
        let by_sentence = facts.iter().map(|f| (fact_sentence(f), f.clone())).collect();
        let mut objects: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in facts {
            objects.entry(f.relation.clone()).or_default().insert(f.object.clone());
        }
        let objects = objects.into_iter().map(|(r, o)| (r, o.into_iter().collect())).collect();
        Self { by_sentence, objects, seed, rate }
    }

    /// Three numbers drawn from the task id: whether to corrupt, which line, which object.
    fn draws(&self, id: &str) -> [u64; 3] {
        let h = Sha256::digest(format!("reflection/{}/{id}", self.seed).as_bytes());
        let word = |i: usize| u64::from_le_bytes(h[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        [word(0), word(1), word(2)]
    }

    /// The reflection form of the gold `trace` of task `id` and the byte ranges of the wrong
    /// line (weight 0 in the loss). A trace that is not drawn for an error, or has no fact line
    /// whose relation has another object, is returned as it is.
    pub fn rewrite(&self, id: &str, trace: &str) -> (String, Vec<(usize, usize)>) {
        let [pick, line_draw, object_draw] = self.draws(id);
        if (pick % 1_000_000) as f64 / 1e6 >= self.rate {
            return (trace.to_string(), Vec::new());
        }
        let lines: Vec<&str> = trace.split('\n').collect();
        let candidates: Vec<(usize, &Fact)> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| self.by_sentence.get(*l).map(|f| (i, f)))
            .filter(|(_, f)| self.objects.get(&f.relation).is_some_and(|o| o.len() > 1))
            .collect();
        if candidates.is_empty() {
            return (trace.to_string(), Vec::new());
        }
        let (at, fact) = candidates[(line_draw % candidates.len() as u64) as usize];
        let others: Vec<&String> = self.objects[&fact.relation].iter().filter(|o| **o != fact.object).collect();
        let wrong = Fact { object: others[(object_draw % others.len() as u64) as usize].clone(), ..fact.clone() };
        let mut out = String::new();
        for l in &lines[..at] {
            out.push_str(l);
            out.push('\n');
        }
        let start = out.len();
        out.push_str(&fact_sentence(&wrong));
        out.push('\n');
        let end = out.len();
        out.push_str(RETRACTION);
        out.push('\n');
        out.push_str(&lines[at..].join("\n"));
        (out, vec![(start, end)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(s: &str, r: &str, o: &str) -> Fact {
        Fact { subject: s.into(), relation: r.into(), object: o.into() }
    }

    #[test]
    fn one_wrong_line_is_retracted_and_masked() {
        let facts = [
            fact("Ana Bel", "birth_city", "Lormet"),
            fact("Teo Brandl", "birth_city", "Tessor"),
            fact("Lormet", "country", "Ardonia"),
        ];
        let trace = format!("{}\n{}\nAnswer: Ardonia", fact_sentence(&facts[0]), fact_sentence(&facts[2]));
        let all = Reflection::new(&facts, 0, 1.0);
        let (text, forced) = all.rewrite("two_hop/x/p0", &trace);
        assert_eq!(forced.len(), 1);
        let (a, b) = forced[0];
        let wrong = &text[a..b];
        // The wrong line is the first fact with the other birth city (the country relation has
        // only one object, so it cannot be corrupted).
        assert_eq!(wrong, "Ana Bel was born in Tessor.\n");
        assert_eq!(train::eval::without_retractions(&text), trace);
        assert!(text[b..].starts_with(RETRACTION));
        // Reproducible, and rate 0 leaves traces alone.
        assert_eq!(all.rewrite("two_hop/x/p0", &trace), (text, forced));
        assert_eq!(Reflection::new(&facts, 0, 0.0).rewrite("t", &trace), (trace.clone(), Vec::new()));
        // About `rate` of the traces get an error.
        let half = Reflection::new(&facts, 3, 0.5);
        let n = (0..400).filter(|i| !half.rewrite(&format!("t{i}"), &trace).1.is_empty()).count();
        assert!((150..250).contains(&n), "{n} of 400");
    }
}
