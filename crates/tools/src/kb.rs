//! `lookup(entity, relation)` and `find(relation=object, ...)` over a list of facts.
//!
//! Answers read exactly like the world's tool traces (`world::Task::tool_trace`):
//! - `lookup(Ilona Varsk, birth_city) -> Lormet`: the object, as the facts spell it (several
//!   objects, which neither the world nor an imported knowledge base has, are joined by `, `
//!   in sorted order);
//! - `find(birth_year=1948, birth_city=Lormet) -> Ilona Varsk`: every subject having all the
//!   facts, in sorted order, joined by `, `; an empty result when none has them (that is what
//!   `world::verify_trace` accepts for an empty set).
//!
//! Names (entities and objects) are compared after [`world::normalize_name`] (case, spacing and
//! punctuation ignored), as `world::verify_trace` compares them; relations are compared exactly
//! after trimming, as there. Arguments are split the way `verify_trace` splits them: `lookup` at
//! the last `,`; `find` at every `,`, each condition at its first `=` (an imported knowledge base
//! refuses relations with `,` or `=`, and its `find` tasks skip names with them).
//!
//! [`world::KnowledgeIndex`] is not used: it answers with normalised names, and the tools must
//! answer with the names as written.

use std::collections::{BTreeSet, HashMap, HashSet};

use world::{normalize_name, Fact};

/// Why a `lookup` or `find` has no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KbError {
    /// The arguments are not `entity, relation` / `relation=object, ...`.
    #[error("{0}")]
    BadArguments(String),
    /// No fact mentions this name.
    #[error("unknown entity `{0}`")]
    UnknownEntity(String),
    /// No fact has this relation.
    #[error("unknown relation `{relation}` (known: {known})")]
    UnknownRelation {
        /// The relation asked for.
        relation: String,
        /// The known relations, comma-separated (the first few).
        known: String,
    },
    /// The entity is known but has no fact with this relation.
    #[error("`{entity}` has no `{relation}`")]
    NoFact {
        /// The entity asked about.
        entity: String,
        /// The relation asked for.
        relation: String,
    },
}

/// Facts indexed both ways, names kept as written.
#[derive(Clone, Debug, Default)]
pub struct KnowledgeMap {
    /// `(normalised subject, relation)` → objects as written.
    objects: HashMap<(String, String), BTreeSet<String>>,
    /// `(relation, normalised object)` → subjects as written.
    subjects: HashMap<(String, String), BTreeSet<String>>,
    /// Every normalised name, subject or object.
    entities: HashSet<String>,
    /// Every relation.
    relations: BTreeSet<String>,
}

/// Most relations an unknown-relation error lists.
const LISTED_RELATIONS: usize = 12;

impl KnowledgeMap {
    /// Indexes `facts` (e.g. `world::World::facts`, or `world::Knowledge::facts`).
    pub fn new(facts: &[Fact]) -> Self {
        let mut k = Self::default();
        for f in facts {
            let (subject, object) = (f.subject.trim(), f.object.trim());
            let (s, r, o) = (normalize_name(subject), f.relation.trim().to_string(), normalize_name(object));
            k.objects.entry((s.clone(), r.clone())).or_default().insert(object.to_string());
            k.subjects.entry((r.clone(), o.clone())).or_default().insert(subject.to_string());
            k.entities.insert(s);
            k.entities.insert(o);
            k.relations.insert(r);
        }
        k
    }

    /// Every relation, sorted.
    pub fn relations(&self) -> impl Iterator<Item = &str> {
        self.relations.iter().map(String::as_str)
    }

    fn known_relation(&self, relation: &str) -> Result<String, KbError> {
        let r = relation.trim();
        if self.relations.contains(r) {
            return Ok(r.to_string());
        }
        let mut known: Vec<&str> = self.relations.iter().take(LISTED_RELATIONS).map(String::as_str).collect();
        if self.relations.len() > LISTED_RELATIONS {
            known.push("...");
        }
        Err(KbError::UnknownRelation { relation: r.to_string(), known: known.join(", ") })
    }

    fn known_entity(&self, name: &str) -> Result<String, KbError> {
        let n = normalize_name(name);
        if n.is_empty() || !self.entities.contains(&n) {
            return Err(KbError::UnknownEntity(name.trim().to_string()));
        }
        Ok(n)
    }

    /// The objects of `(entity, relation)`, sorted (one for a functional relation).
    pub fn lookup(&self, entity: &str, relation: &str) -> Result<Vec<String>, KbError> {
        let e = self.known_entity(entity)?;
        let r = self.known_relation(relation)?;
        match self.objects.get(&(e, r.clone())) {
            Some(objects) => Ok(objects.iter().cloned().collect()),
            None => Err(KbError::NoFact { entity: entity.trim().to_string(), relation: r }),
        }
    }

    /// Every subject with all the `(relation, object)` facts, sorted.
    pub fn find(&self, conditions: &[(&str, &str)]) -> Result<Vec<String>, KbError> {
        if conditions.is_empty() {
            return Err(KbError::BadArguments("find needs at least one condition `relation=object`".into()));
        }
        let mut out: Option<BTreeSet<String>> = None;
        for (relation, object) in conditions {
            let r = self.known_relation(relation)?;
            let o = self.known_entity(object)?;
            let set = self.subjects.get(&(r, o)).cloned().unwrap_or_default();
            out = Some(match out {
                None => set,
                Some(prev) => prev.intersection(&set).cloned().collect(),
            });
        }
        Ok(out.unwrap_or_default().into_iter().collect())
    }

    /// `lookup` on the text between the parentheses: `entity, relation`.
    pub fn lookup_call(&self, args: &str) -> Result<String, KbError> {
        let Some((entity, relation)) = args.rsplit_once(',') else {
            return Err(KbError::BadArguments(format!(
                "lookup takes `entity, relation`, e.g. `lookup(Ilona Varsk, birth_city)`; got `{}`",
                args.trim()
            )));
        };
        Ok(self.lookup(entity, relation)?.join(", "))
    }

    /// `find` on the text between the parentheses: `relation=object, relation=object, ...`.
    pub fn find_call(&self, args: &str) -> Result<String, KbError> {
        let mut conditions = Vec::new();
        for c in args.split(',') {
            let Some((r, o)) = c.split_once('=') else {
                return Err(KbError::BadArguments(format!(
                    "find takes `relation=object, ...`, e.g. `find(birth_year=1948, birth_city=Lormet)`; \
                     `{}` has no `=`",
                    c.trim()
                )));
            };
            conditions.push((r, o));
        }
        Ok(self.find(&conditions)?.join(", "))
    }
}
