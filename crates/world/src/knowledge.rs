//! [`Knowledge`]: what the rest of the ladder needs from a body of knowledge, whether generated
//! ([`World`]) or imported ([`crate::KnowledgeBase`]).
//!
//! Both give facts, a corpus rendered one or more times, tasks split into train and held-out,
//! a decontamination check, and the same files on disk. Code that trains or evaluates takes
//! `&dyn Knowledge`, so it runs unchanged on a user's knowledge base; the trait is object-safe
//! for that reason (no generic methods, no `Self` in return position).

use std::collections::BTreeMap;
use std::path::Path;

use crate::corpus::join_documents;
use crate::decontam::{decontaminate, training_sources_of, DecontaminationReport};
use crate::io::WorldSummary;
use crate::kb::KnowledgeBase;
use crate::tasks::Task;
use crate::verify::KnowledgeIndex;
use crate::world::{sha256_hex, Fact, Split, World};
use crate::WorldError;

/// A body of knowledge with its corpus and tasks: implemented by [`World`] and
/// [`crate::KnowledgeBase`].
///
/// Every method is deterministic: the same knowledge and seed give the same bytes.
pub trait Knowledge {
    /// The seed of every random choice (split, template choice, sentence order, pairings).
    fn seed(&self) -> u64;

    /// The configured fraction of split entities that are held out.
    fn heldout_fraction(&self) -> f64;

    /// Every fact, in a fixed order (that of [`Knowledge::kb_jsonl`]).
    fn facts(&self) -> Vec<Fact>;

    /// The knowledge as typed JSON lines ([`crate::KbRecord`]), each ending in `\n`.
    fn kb_jsonl(&self) -> String;

    /// SHA-256 (hex) of [`Knowledge::kb_jsonl`]: the knowledge hash that goes in every report.
    fn knowledge_sha256(&self) -> String {
        sha256_hex(self.kb_jsonl().as_bytes())
    }

    /// The facts indexed for [`crate::verify_trace`].
    fn knowledge_index(&self) -> KnowledgeIndex {
        KnowledgeIndex::new(&self.facts())
    }

    /// The corpus documents for `renderings` renderings (at least 1): one per subject per
    /// rendering pass.
    fn corpus_documents(&self, renderings: usize) -> Result<Vec<String>, WorldError>;

    /// The corpus text: the documents separated by blank lines, ending in a newline.
    fn corpus(&self, renderings: usize) -> Result<String, WorldError> {
        Ok(join_documents(&self.corpus_documents(renderings)?))
    }

    /// SHA-256 (hex) of [`Knowledge::corpus`].
    fn corpus_sha256(&self, renderings: usize) -> Result<String, WorldError> {
        Ok(sha256_hex(self.corpus(renderings)?.as_bytes()))
    }

    /// Every task, in a fixed order (by family, then by subject).
    fn tasks(&self) -> Vec<Task>;

    /// The tasks of one split, in [`Knowledge::tasks`] order.
    fn tasks_in(&self, split: Split) -> Vec<Task> {
        self.tasks().into_iter().filter(|t| t.split == split).collect()
    }

    /// Split entities per split (`train`, `heldout`): people for a world, entities of the split
    /// type for a knowledge base.
    fn people_per_split(&self) -> BTreeMap<String, usize>;

    /// The texts training may use: the corpus at `renderings` and every train task.
    fn training_sources(&self, renderings: usize) -> Result<Vec<(String, String)>, WorldError> {
        Ok(training_sources_of(self.corpus(renderings)?, &self.tasks_in(Split::Train)))
    }

    /// Checks the held-out tasks against [`Knowledge::training_sources`] ([`decontaminate`]).
    fn decontamination(&self, renderings: usize) -> Result<DecontaminationReport, WorldError> {
        Ok(decontaminate(&self.tasks_in(Split::Heldout), &self.training_sources(renderings)?))
    }

    /// What `world.json` holds for `renderings` renderings.
    fn summary(&self, renderings: usize) -> Result<WorldSummary, WorldError>;

    /// Writes `corpus.txt`, `kb.jsonl`, `tasks/train.jsonl`, `tasks/heldout.jsonl` and
    /// `world.json` (last) under `dir`, each atomically; `count_tokens`, if given, fills
    /// `corpus_tokens`.
    fn write_counted(
        &self,
        dir: &Path,
        renderings: usize,
        count_tokens: Option<&dyn Fn(&str) -> u64>,
    ) -> Result<WorldSummary, WorldError>;

    /// [`Knowledge::write_counted`] without a token count.
    fn write(&self, dir: &Path, renderings: usize) -> Result<WorldSummary, WorldError> {
        self.write_counted(dir, renderings, None)
    }
}

impl Knowledge for World {
    fn seed(&self) -> u64 {
        self.config.seed
    }

    fn heldout_fraction(&self) -> f64 {
        self.config.heldout_fraction
    }

    fn facts(&self) -> Vec<Fact> {
        World::facts(self)
    }

    fn kb_jsonl(&self) -> String {
        World::kb_jsonl(self)
    }

    fn knowledge_sha256(&self) -> String {
        World::knowledge_sha256(self)
    }

    fn knowledge_index(&self) -> KnowledgeIndex {
        World::knowledge_index(self)
    }

    fn corpus_documents(&self, renderings: usize) -> Result<Vec<String>, WorldError> {
        World::corpus_documents(self, renderings)
    }

    fn corpus(&self, renderings: usize) -> Result<String, WorldError> {
        World::corpus(self, renderings)
    }

    fn corpus_sha256(&self, renderings: usize) -> Result<String, WorldError> {
        World::corpus_sha256(self, renderings)
    }

    fn tasks(&self) -> Vec<Task> {
        World::tasks(self)
    }

    fn tasks_in(&self, split: Split) -> Vec<Task> {
        World::tasks_in(self, split)
    }

    fn people_per_split(&self) -> BTreeMap<String, usize> {
        World::people_per_split(self)
    }

    fn training_sources(&self, renderings: usize) -> Result<Vec<(String, String)>, WorldError> {
        World::training_sources(self, renderings)
    }

    fn decontamination(&self, renderings: usize) -> Result<DecontaminationReport, WorldError> {
        World::decontamination(self, renderings)
    }

    fn summary(&self, renderings: usize) -> Result<WorldSummary, WorldError> {
        World::summary(self, renderings)
    }

    fn write_counted(
        &self,
        dir: &Path,
        renderings: usize,
        count_tokens: Option<&dyn Fn(&str) -> u64>,
    ) -> Result<WorldSummary, WorldError> {
        World::write_counted(self, dir, renderings, count_tokens)
    }
}

impl Knowledge for KnowledgeBase {
    fn seed(&self) -> u64 {
        KnowledgeBase::seed(self)
    }

    fn heldout_fraction(&self) -> f64 {
        self.config().heldout_fraction
    }

    fn facts(&self) -> Vec<Fact> {
        KnowledgeBase::facts(self)
    }

    fn kb_jsonl(&self) -> String {
        KnowledgeBase::kb_jsonl(self)
    }

    fn knowledge_sha256(&self) -> String {
        KnowledgeBase::knowledge_sha256(self)
    }

    fn knowledge_index(&self) -> KnowledgeIndex {
        KnowledgeBase::knowledge_index(self)
    }

    fn corpus_documents(&self, renderings: usize) -> Result<Vec<String>, WorldError> {
        KnowledgeBase::corpus_documents(self, renderings)
    }

    fn corpus(&self, renderings: usize) -> Result<String, WorldError> {
        KnowledgeBase::corpus(self, renderings)
    }

    fn corpus_sha256(&self, renderings: usize) -> Result<String, WorldError> {
        KnowledgeBase::corpus_sha256(self, renderings)
    }

    fn tasks(&self) -> Vec<Task> {
        KnowledgeBase::tasks(self)
    }

    fn tasks_in(&self, split: Split) -> Vec<Task> {
        KnowledgeBase::tasks_in(self, split)
    }

    fn people_per_split(&self) -> BTreeMap<String, usize> {
        KnowledgeBase::people_per_split(self)
    }

    fn training_sources(&self, renderings: usize) -> Result<Vec<(String, String)>, WorldError> {
        KnowledgeBase::training_sources(self, renderings)
    }

    fn decontamination(&self, renderings: usize) -> Result<DecontaminationReport, WorldError> {
        KnowledgeBase::decontamination(self, renderings)
    }

    fn summary(&self, renderings: usize) -> Result<WorldSummary, WorldError> {
        KnowledgeBase::summary(self, renderings)
    }

    fn write_counted(
        &self,
        dir: &Path,
        renderings: usize,
        count_tokens: Option<&dyn Fn(&str) -> u64>,
    ) -> Result<WorldSummary, WorldError> {
        KnowledgeBase::write_counted(self, dir, renderings, count_tokens)
    }
}
