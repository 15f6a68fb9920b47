//! The fixed-knowledge world of the ascent ladder (see `design/WORLD.md`).
//!
//! A seeded generator ([`World::generate`] from a [`WorldConfig`]) makes countries, cities,
//! universities, companies, majors and people with syllable-built names that no pretrained
//! model has seen. From the world come
//! - the knowledge as triples ([`World::facts`], [`World::kb_jsonl`], [`World::knowledge_sha256`]),
//! - a plain-text corpus of biographies and descriptions, rendered one or more times with
//!   varied templates and sentence order ([`World::corpus`]; rendering is the only thing that
//!   changes with the rendering count),
//! - reasoning tasks in seven families with gold answers, gold traces and tool traces, split by
//!   person into train and held-out ([`World::tasks`], [`Task`], [`Family`]),
//! - graders: answer verifiers ([`Verifier`], [`extract_answer`]) and a step-by-step trace
//!   checker ([`verify_trace`]),
//! - files on disk, written atomically ([`World::write`], [`WorldSummary`]),
//! - a decontamination check that no held-out question or worked answer is in any training
//!   text ([`World::decontamination`], [`decontaminate`]).
//!
//! Knowledge from elsewhere comes in as JSON-lines triples: [`import_triples`] parses them into
//! [`Fact`]s, and [`KnowledgeBase::from_jsonl`] (with a [`KbConfig`]) builds on them the same
//! machinery as the world's: a multi-rendered corpus, tasks in every family the data allows, a
//! seeded train/held-out split by entity, the same files and the same decontamination check.
//! The [`Knowledge`] trait, implemented by both [`World`] and [`KnowledgeBase`], is what the rest
//! of the ladder takes (`&dyn Knowledge`), so it is not bound to the generated world.
//! [`KnowledgeIndex`] and [`verify_trace`] work on any list of [`Fact`]s.
//!
//! Everything is deterministic: the same config gives the same bytes on every platform (the
//! generator uses its own SplitMix64, not a library RNG whose streams may change).

mod config;
mod corpus;
mod decontam;
mod error;
mod io;
mod kb;
mod knowledge;
mod names;
pub mod refs;
mod rng;
mod tasks;
mod triples;
mod verify;
mod world;

pub use config::{WorldConfig, MAX_NAMED, MAX_PEOPLE};
pub use corpus::{
    fact_sentence, fact_template_sentence, generic_sentence, pronoun_sentence, relation_words, render, templates,
    TEMPLATES_PER_RELATION,
};
pub use decontam::{decontaminate, Contamination, DecontaminationReport};
pub use error::WorldError;
pub use io::{tasks_jsonl, write_atomic, KbSizes, WorldSizes, WorldSummary, FORMAT_VERSION};
pub use kb::{KbConfig, KnowledgeBase, ENTITY_TYPE, NUMBER_TYPE};
pub use knowledge::Knowledge;
pub use tasks::{task_people, Family, Task};
pub use triples::import_triples;
pub use verify::{extract_answer, normalize_name, verify, verify_trace, KnowledgeIndex, TraceCheck, Verifier};
pub use world::{
    sha256_hex, City, Company, Country, EntityType, Fact, KbRecord, Major, Person, Relation, Split, University, World,
    BIRTH_YEARS, FOUNDING_YEARS,
};
