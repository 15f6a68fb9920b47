//! Decontamination: evidence that no held-out question, and no held-out worked answer, appears
//! in any text used for training.
//!
//! For every held-out task, three patterns are searched for in every training source: the
//! question, the gold trace and the tool trace (each trace ends in `Answer: X`, so it carries the
//! answer). Matching is on normalised text (lower case, every run of whitespace one space), so a
//! trace split over lines still matches the same trace on one line. Single fact sentences are
//! *not* searched for: every person's facts are knowledge and are meant to be in the corpus;
//! what must not leak is the question and its worked answer.
//!
//! The search is one Aho-Corasick pass per source, so checking a world's whole training data
//! takes well under a second.

use aho_corasick::AhoCorasick;
use serde::Serialize;

use crate::error::WorldError;
use crate::tasks::Task;
use crate::world::{Split, World};

/// One held-out pattern found in a training source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contamination {
    /// The held-out task whose text was found.
    pub task_id: String,
    /// `question`, `trace` or `tool_trace`.
    pub what: &'static str,
    /// The training source it was found in.
    pub source: String,
}

/// The outcome of a decontamination check.
#[derive(Clone, Debug, Serialize)]
pub struct DecontaminationReport {
    /// Held-out tasks checked.
    pub heldout_tasks: usize,
    /// Patterns searched for (three per task).
    pub patterns: usize,
    /// Names of the training sources searched.
    pub sources: Vec<String>,
    /// Every match found.
    pub hits: Vec<Contamination>,
}

impl DecontaminationReport {
    /// No held-out question or worked answer was found in any training source.
    pub fn is_clean(&self) -> bool {
        self.hits.is_empty()
    }
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Search every `(name, text)` training source for the questions and traces of `heldout`.
pub fn decontaminate(heldout: &[Task], sources: &[(String, String)]) -> DecontaminationReport {
    const WHAT: [&str; 3] = ["question", "trace", "tool_trace"];
    let mut patterns = Vec::with_capacity(heldout.len() * 3);
    for t in heldout {
        patterns.push(normalise(&t.question));
        patterns.push(normalise(&t.trace));
        patterns.push(normalise(&t.tool_trace));
    }
    let ac = AhoCorasick::new(&patterns).expect("patterns are plain strings");
    let mut hits = Vec::new();
    for (name, text) in sources {
        let hay = normalise(text);
        let mut seen = std::collections::BTreeSet::new();
        for m in ac.find_overlapping_iter(&hay) {
            let p = m.pattern().as_usize();
            if seen.insert(p) {
                hits.push(Contamination {
                    task_id: heldout[p / 3].id.clone(),
                    what: WHAT[p % 3],
                    source: name.clone(),
                });
            }
        }
    }
    DecontaminationReport {
        heldout_tasks: heldout.len(),
        patterns: patterns.len(),
        sources: sources.iter().map(|s| s.0.clone()).collect(),
        hits,
    }
}

/// The training sources of any knowledge: the corpus text and every train task (question,
/// answer, trace and tool trace), named by the files they are written to.
pub(crate) fn training_sources_of(corpus: String, train: &[Task]) -> Vec<(String, String)> {
    let train: Vec<String> =
        train.iter().map(|t| format!("{}\n{}\n{}\n{}", t.question, t.answer, t.trace, t.tool_trace)).collect();
    vec![("corpus.txt".to_string(), corpus), ("tasks/train.jsonl".to_string(), train.join("\n\n"))]
}

impl World {
    /// The training sources a world provides: the corpus at `renderings` and every train task
    /// (question, answer, trace and tool trace).
    pub fn training_sources(&self, renderings: usize) -> Result<Vec<(String, String)>, WorldError> {
        Ok(training_sources_of(self.corpus(renderings)?, &self.tasks_in(Split::Train)))
    }

    /// Check this world's held-out tasks against its own training sources.
    pub fn decontamination(&self, renderings: usize) -> Result<DecontaminationReport, WorldError> {
        Ok(decontaminate(&self.tasks_in(Split::Heldout), &self.training_sources(renderings)?))
    }
}
