//! Bring your own knowledge: [`KnowledgeBase`], the world's corpus and task machinery over
//! facts imported from JSON-lines triples (`WORLD.md`, "Also real knowledge").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::corpus::{fact_template_sentence, join_documents, relation_words, render_documents};
use crate::decontam::{decontaminate, training_sources_of, DecontaminationReport};
use crate::io::{summarise, write_files, KbSizes, WorldSummary};
use crate::rng::SplitMix64;
use crate::tasks::{finish_trace, Chain, Family, Task};
use crate::triples::parse_records;
use crate::verify::{normalize_name, KnowledgeIndex, Verifier};
use crate::world::{sha256_hex, Fact, KbRecord, Split};
use crate::WorldError;

/// Type of an integer object that is never a subject and has no declared type.
pub const NUMBER_TYPE: &str = "number";
/// Type of any other name without a declared type.
pub const ENTITY_TYPE: &str = "entity";

/// How to split and render a [`KnowledgeBase`]. Every field has a default, so a config file
/// only names what it changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KbConfig {
    /// Seed of the split, the template choices, the sentence order and the pairings.
    pub seed: u64,
    /// Fraction of the split type's entities (rounded) whose tasks form the held-out split;
    /// 0.5 as for the world, so both splits are large enough to score.
    pub heldout_fraction: f64,
    /// The entity type to split by; `None` = the most frequent subject type (the world's
    /// `person`), which is what the questions are mostly about.
    pub split_type: Option<String>,
}

impl Default for KbConfig {
    fn default() -> Self {
        Self { seed: 0, heldout_fraction: 0.5, split_type: None }
    }
}

impl KbConfig {
    /// Checks the fields that do not depend on the knowledge; the error names the bad one.
    pub fn validate(&self) -> Result<(), WorldError> {
        if !self.heldout_fraction.is_finite() || !(0.0..=1.0).contains(&self.heldout_fraction) {
            return Err(WorldError::Config {
                field: "heldout_fraction",
                reason: format!("{} is not in [0, 1]", self.heldout_fraction),
            });
        }
        if self.split_type.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(WorldError::Config {
                field: "split_type",
                reason: "is empty; leave it out to split by the most frequent subject type".into(),
            });
        }
        Ok(())
    }
}

/// Imported knowledge with the world's corpus, tasks, split and files: the same machinery as
/// [`crate::World`] over a user's facts (`WORLD.md`, "Also real knowledge").
///
/// # Input
/// One triple per line, `{"subject", "relation", "object"}` with optional `subject_type` and
/// `object_type` (the format of `kb.jsonl`, see [`crate::import_triples`]). Names are trimmed;
/// a line repeating an earlier triple is dropped. Each name has one type: the declared one
/// where a line gives it, otherwise `number` for an integer that is never a subject, otherwise
/// `entity`. The import is refused, with every problem and its line numbers, when
/// - a name has two declared types,
/// - a subject has two objects for one relation (gold answers must be unique, so every relation
///   is functional),
/// - two names differ only in case, spacing or punctuation (an answer could not tell them
///   apart), or two relations read the same once underscores are spaces,
/// - a name or relation would break a trace: a line break, ` -> `, `Answer:`, a leading
///   `lookup(` / `find(` / `calc(`; `#` followed by a digit (a result reference,
///   [`crate::refs`]); a relation with `,` or `=`; a name with no letter or digit,
/// - there are no facts.
///
/// Everything derived is canonical: names, relations and facts are sorted, so the order of the
/// input lines changes nothing that is written.
///
/// # Corpus
/// One document per subject (in name order), its facts in relation order, rendered exactly like
/// the world's corpus ([`crate::World::corpus`]): `renderings = 1` is template 0 in a fixed
/// order; more renderings vary the template per fact and the sentence order, seeded. Relations
/// named like the world's use the world's templates ([`crate::templates`]), every other relation
/// five generic ones built from its words ([`crate::generic_sentence`]); template 0 is always
/// the canonical sentence of gold traces ([`crate::fact_sentence`]).
///
/// # Tasks
/// The world's seven families, wherever the data allows:
/// - `recall`: every (subject, relation): "What is the {relation} of {s}?"
/// - `two_hop` / `three_hop`: chains through objects that are themselves subjects:
///   "What is the {r2} of the {r1} of {s}?"
/// - `compare`, `arithmetic`, `parity`: on numeric relations (every object an integer):
///   "Which has the smaller {r}, {a} or {b}?", "What is the difference between the {r} of {a}
///   and the {r} of {b}?", "Is the {r} of {s} even?"; pairs are drawn within a split as for the
///   world (a seeded order, each paired with the next), ties are not compared.
/// - `inverse`: per subject, the first pair of its facts (in relation order) that only it has,
///   preferring pairs whose facts are not unique on their own: "Which {type} has the {r1} {o1}
///   and the {r2} {o2}?" (skipped where a name has `,` or `=`, which the `find` call cannot
///   carry).
///
/// Traces are the world's ([`crate::Task`]): canonical fact sentences, computations, `Answer:`.
///
/// # Split
/// The entities of the split type (by default the most frequent subject type; ties go to the
/// first type by name) are shuffled with the seed and the first `heldout_fraction` of them
/// (rounded) are held out. A task lists in `people` the split-type entities it mentions and
/// belongs to their split; a task mentioning both splits is not generated, one mentioning none
/// is a train task. So no train task names a held-out entity.
///
/// Entities, relations and facts are held as indices into sorted name lists, so everything
/// derived is independent of the input order.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    config: KbConfig,
    /// Every name (subjects and objects), sorted; an entity's index is its position.
    names: Vec<String>,
    /// Type of each entity (parallel to `names`).
    types: Vec<String>,
    /// Every relation, sorted.
    relations: Vec<String>,
    /// Id-safe form of each relation, unique (parallel to `relations`).
    slugs: Vec<String>,
    /// Whether every object of the relation is an integer (parallel to `relations`).
    numeric: Vec<bool>,
    /// `(subject, relation, object)` indices, sorted: the facts.
    triples: Vec<(usize, usize, usize)>,
    /// Each entity's `(relation, object)` facts, in relation order.
    out: Vec<Vec<(usize, usize)>>,
    /// The type whose entities are split.
    split_type: String,
    /// Split of each entity of the split type; `None` for other entities.
    splits: Vec<Option<Split>>,
}

/// The integer value of a name, if it is one (as [`crate::verify_trace`] reads numbers).
fn int_value(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

/// Problems with a name (subject, object or type) that would break a corpus line or a trace.
fn name_problems(what: &str, name: &str, out: &mut Vec<String>) {
    if name.chars().any(char::is_control) {
        out.push(format!("{what} `{}` contains a line break or control character", name.escape_debug()));
    }
    if name.contains(" -> ") || name.contains("Answer:") {
        out.push(format!("{what} `{name}` contains ` -> ` or `Answer:`, which mark trace steps and answers"));
    }
    if ["lookup(", "find(", "calc("].iter().any(|p| name.starts_with(p)) {
        out.push(format!("{what} `{name}` starts like a tool call"));
    }
    if crate::refs::has_reference(name) {
        out.push(format!("{what} `{name}` contains `#` and a digit, which in a tool call names an earlier result"));
    }
    if normalize_name(name).is_empty() {
        out.push(format!("{what} `{name}` has no letter or digit, so no answer could match it"));
    }
}

/// Problems with a relation name (it also appears inside `lookup(..)` and `find(..)` calls).
fn relation_problems(relation: &str, out: &mut Vec<String>) {
    name_problems("relation", relation, out);
    if relation.contains([',', '=']) {
        out.push(format!("relation `{relation}` contains `,` or `=`, which separate tool-call arguments"));
    }
}

/// An id-safe form of a relation: ASCII letters, digits, `_` and `-`, others as `_`.
fn slug(relation: &str) -> String {
    relation.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// A line-numbered problem, sorted by its first line when reported.
type Problem = (usize, String);

/// Finds names (or relations) that collide under `key`: each colliding pair is a problem that
/// names the lines where each first appears.
fn collisions<'a>(
    items: impl Iterator<Item = (&'a str, usize)>,
    key: impl Fn(&str) -> String,
    what: &str,
    why: &str,
    problems: &mut Vec<Problem>,
) {
    let mut first: HashMap<String, (&'a str, usize)> = HashMap::new();
    let mut reported: HashSet<(&'a str, &'a str)> = HashSet::new();
    for (name, line) in items {
        let k = key(name);
        match first.get(&k) {
            Some(&(other, other_line)) if other != name => {
                if reported.insert((other, name)) {
                    problems.push((
                        other_line,
                        format!("lines {other_line} and {line}: {what} `{other}` and `{name}` {why}"),
                    ));
                }
            }
            Some(_) => {}
            None => {
                first.insert(k, (name, line));
            }
        }
    }
}

impl KnowledgeBase {
    /// Imports JSON-lines triples (see [`KnowledgeBase`] for the format and what is refused).
    /// Malformed or inconsistent input is a [`WorldError::Import`] listing every problem with
    /// its line numbers; a bad `config` is a [`WorldError::Config`] naming the field.
    pub fn from_jsonl(text: &str, config: &KbConfig) -> Result<KnowledgeBase, WorldError> {
        config.validate()?;
        let records = parse_records(text)?;
        let mut problems: Vec<Problem> = Vec::new();

        // Trimmed triples whose names can be used: (line, subject, relation, object, types).
        struct Line<'a> {
            line: usize,
            s: &'a str,
            r: &'a str,
            o: &'a str,
            st: Option<&'a str>,
            ot: Option<&'a str>,
        }
        let mut lines: Vec<Line> = Vec::new();
        for rec in &records {
            let f = &rec.fact;
            let l = Line {
                line: rec.line,
                s: f.subject.trim(),
                r: f.relation.trim(),
                o: f.object.trim(),
                st: rec.subject_type.as_deref().map(str::trim),
                ot: rec.object_type.as_deref().map(str::trim),
            };
            let mut p = Vec::new();
            name_problems("subject", l.s, &mut p);
            relation_problems(l.r, &mut p);
            name_problems("object", l.o, &mut p);
            for t in [l.st, l.ot].into_iter().flatten() {
                name_problems("type", t, &mut p);
            }
            if p.is_empty() {
                lines.push(l);
            } else {
                problems.push((rec.line, format!("line {}: {}", rec.line, p.join(", "))));
            }
        }

        // One object per (subject, relation); exact repeats are dropped.
        let mut objects: HashMap<(&str, &str), (&str, usize)> = HashMap::new();
        let mut kept: Vec<&Line> = Vec::new();
        for l in &lines {
            match objects.get(&(l.s, l.r)) {
                Some(&(o, first)) if o != l.o => problems.push((
                    first,
                    format!(
                        "lines {first} and {}: `{}` has two `{}` objects, `{o}` and `{}`; a relation must give one \
                         object per subject so that every question has one gold answer",
                        l.line, l.s, l.r, l.o
                    ),
                )),
                Some(_) => {}
                None => {
                    objects.insert((l.s, l.r), (l.o, l.line));
                    kept.push(l);
                }
            }
        }

        // One declared type per name.
        let mut declared: HashMap<&str, (&str, usize)> = HashMap::new();
        let mut clashed: HashSet<&str> = HashSet::new();
        for l in &lines {
            for (name, ty) in [(l.s, l.st), (l.o, l.ot)] {
                let Some(ty) = ty else { continue };
                match declared.get(name) {
                    Some(&(t, first)) if t != ty => {
                        if clashed.insert(name) {
                            problems.push((
                                first,
                                format!(
                                    "lines {first} and {}: `{name}` has two types, `{t}` (line {first}) and `{ty}` \
                                     (line {})",
                                    l.line, l.line
                                ),
                            ));
                        }
                    }
                    Some(_) => {}
                    None => {
                        declared.insert(name, (ty, l.line));
                    }
                }
            }
        }

        // Names and relations that an answer or a sentence could not tell apart.
        collisions(
            lines.iter().flat_map(|l| [(l.s, l.line), (l.o, l.line)]),
            normalize_name,
            "names",
            "differ only in case, spacing or punctuation, so an answer could not tell them apart",
            &mut problems,
        );
        collisions(
            lines.iter().map(|l| (l.r, l.line)),
            relation_words,
            "relations",
            "read the same in sentences (underscores are spaces)",
            &mut problems,
        );

        if !problems.is_empty() {
            problems.sort();
            return Err(WorldError::Import(problems.into_iter().map(|p| p.1).collect()));
        }
        if kept.is_empty() {
            return Err(WorldError::Import(vec![
                "no facts: expected JSON lines {\"subject\": .., \"relation\": .., \"object\": ..}".into(),
            ]));
        }

        let names: Vec<String> =
            kept.iter().flat_map(|l| [l.s, l.o]).collect::<BTreeSet<&str>>().into_iter().map(String::from).collect();
        let relations: Vec<String> =
            kept.iter().map(|l| l.r).collect::<BTreeSet<&str>>().into_iter().map(String::from).collect();
        let name_index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let rel_index: HashMap<&str, usize> = relations.iter().enumerate().map(|(i, r)| (r.as_str(), i)).collect();
        let mut triples: Vec<(usize, usize, usize)> =
            kept.iter().map(|l| (name_index[l.s], rel_index[l.r], name_index[l.o])).collect();
        triples.sort_unstable();

        let mut out = vec![Vec::new(); names.len()];
        let mut numeric = vec![true; relations.len()];
        for &(s, r, o) in &triples {
            out[s].push((r, o));
            numeric[r] &= int_value(&names[o]).is_some();
        }
        let types: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| match declared.get(n.as_str()) {
                Some((t, _)) => t.to_string(),
                None if out[i].is_empty() && int_value(n).is_some() => NUMBER_TYPE.to_string(),
                None => ENTITY_TYPE.to_string(),
            })
            .collect();

        let mut slugs: Vec<String> = relations.iter().map(|r| slug(r)).collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for s in &slugs {
            *seen.entry(s.clone()).or_default() += 1;
        }
        for (i, s) in slugs.iter_mut().enumerate() {
            if seen[s.as_str()] > 1 {
                s.push_str(&format!("~{i}"));
            }
        }

        let mut subject_types: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, facts) in out.iter().enumerate() {
            if !facts.is_empty() {
                *subject_types.entry(types[i].as_str()).or_default() += 1;
            }
        }
        let split_type = match config.split_type.as_deref().map(str::trim) {
            Some(t) if subject_types.contains_key(t) => t.to_string(),
            Some(t) => {
                let known: Vec<&str> = subject_types.keys().copied().collect();
                return Err(WorldError::Config {
                    field: "split_type",
                    reason: format!("no subject has type `{t}`; the subject types are: {}", known.join(", ")),
                });
            }
            None => {
                // The most frequent; the first by name among equals.
                let mut best: Option<(&str, usize)> = None;
                for (&t, &n) in &subject_types {
                    if best.is_none_or(|(_, m)| n > m) {
                        best = Some((t, n));
                    }
                }
                best.map(|b| b.0.to_string()).unwrap_or_default()
            }
        };

        let mut members: Vec<usize> = (0..names.len()).filter(|&i| types[i] == split_type).collect();
        SplitMix64::stream(config.seed, "split").shuffle(&mut members);
        let heldout = ((config.heldout_fraction * members.len() as f64).round() as usize).min(members.len());
        let mut splits = vec![None; names.len()];
        for (k, &i) in members.iter().enumerate() {
            splits[i] = Some(if k < heldout { Split::Heldout } else { Split::Train });
        }

        Ok(KnowledgeBase {
            config: config.clone(),
            names,
            types,
            relations,
            slugs,
            numeric,
            triples,
            out,
            split_type,
            splits,
        })
    }

    /// Reads a triples file and imports it ([`KnowledgeBase::from_jsonl`]).
    pub fn read(path: &Path, config: &KbConfig) -> Result<KnowledgeBase, WorldError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| WorldError::Io { path: path.to_path_buf(), source })?;
        Self::from_jsonl(&text, config)
    }

    /// The config it was built with.
    pub fn config(&self) -> &KbConfig {
        &self.config
    }

    /// The seed (of the config).
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// Every entity name (subjects and objects, numbers included), sorted.
    pub fn entities(&self) -> &[String] {
        &self.names
    }

    /// Every relation name, sorted.
    pub fn relations(&self) -> &[String] {
        &self.relations
    }

    /// The relations whose objects are all integers (those of compare, arithmetic and parity).
    pub fn numeric_relations(&self) -> Vec<&str> {
        (0..self.relations.len()).filter(|&r| self.numeric[r]).map(|r| self.relations[r].as_str()).collect()
    }

    /// The type of entity `name` (declared or inferred), if it is one.
    pub fn entity_type(&self, name: &str) -> Option<&str> {
        self.index_of(name).map(|i| self.types[i].as_str())
    }

    /// The type whose entities are split into train and held-out.
    pub fn split_type(&self) -> &str {
        &self.split_type
    }

    /// The split of entity `name`; `None` if it is not of the split type (or not an entity).
    pub fn split_of(&self, name: &str) -> Option<Split> {
        self.index_of(name).and_then(|i| self.splits[i])
    }

    /// Names of the split-type entities in `split`, sorted.
    pub fn entities_in(&self, split: Split) -> Vec<String> {
        (0..self.names.len()).filter(|&i| self.splits[i] == Some(split)).map(|i| self.names[i].clone()).collect()
    }

    /// Split-type entities per split (`train`, `heldout`).
    pub fn people_per_split(&self) -> BTreeMap<String, usize> {
        [Split::Train, Split::Heldout]
            .into_iter()
            .map(|s| (s.as_str().to_string(), self.splits.iter().filter(|x| **x == Some(s)).count()))
            .collect()
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok()
    }

    fn fact(&self, s: usize, r: usize, o: usize) -> Fact {
        Fact { subject: self.names[s].clone(), relation: self.relations[r].clone(), object: self.names[o].clone() }
    }

    /// Every fact (names trimmed, repeats dropped), sorted by subject, relation, object.
    pub fn facts(&self) -> Vec<Fact> {
        self.triples.iter().map(|&(s, r, o)| self.fact(s, r, o)).collect()
    }

    /// Every fact with its subject and object types, in the order of [`KnowledgeBase::facts`].
    pub fn kb_records(&self) -> Vec<KbRecord> {
        self.triples
            .iter()
            .map(|&(s, r, o)| KbRecord {
                subject: self.names[s].clone(),
                relation: self.relations[r].clone(),
                object: self.names[o].clone(),
                subject_type: self.types[s].clone(),
                object_type: self.types[o].clone(),
            })
            .collect()
    }

    /// The knowledge as canonical JSON lines, in the record format of the world's `kb.jsonl`
    /// ([`KbRecord`]), each line ending in `\n`. Importing it again gives the same knowledge base.
    pub fn kb_jsonl(&self) -> String {
        crate::world::records_jsonl(&self.kb_records())
    }

    /// SHA-256 (hex) of [`KnowledgeBase::kb_jsonl`]: the knowledge hash for reports.
    pub fn knowledge_sha256(&self) -> String {
        sha256_hex(self.kb_jsonl().as_bytes())
    }

    /// The facts indexed for [`crate::verify_trace`].
    pub fn knowledge_index(&self) -> KnowledgeIndex {
        KnowledgeIndex::new(&self.facts())
    }

    /// The corpus documents for `renderings` renderings (at least 1): per rendering pass, one
    /// document per subject in name order (see [`KnowledgeBase`]).
    pub fn corpus_documents(&self, renderings: usize) -> Result<Vec<String>, WorldError> {
        let subjects: Vec<usize> = (0..self.names.len()).filter(|&i| !self.out[i].is_empty()).collect();
        let shape: Vec<(String, usize)> =
            subjects.iter().map(|&i| (format!("entity/{i}"), self.out[i].len())).collect();
        render_documents(self.config.seed, &shape, renderings, |si, fi, t| {
            let s = subjects[si];
            let (r, o) = self.out[s][fi];
            fact_template_sentence(&self.fact(s, r, o), t)
        })
    }

    /// The corpus text for `renderings` renderings (at least 1).
    pub fn corpus(&self, renderings: usize) -> Result<String, WorldError> {
        Ok(join_documents(&self.corpus_documents(renderings)?))
    }

    /// SHA-256 (hex) of [`KnowledgeBase::corpus`].
    pub fn corpus_sha256(&self, renderings: usize) -> Result<String, WorldError> {
        Ok(sha256_hex(self.corpus(renderings)?.as_bytes()))
    }

    /// Every task, in a fixed order: by family ([`Family::ALL`]), then by subject.
    pub fn tasks(&self) -> Vec<Task> {
        let mut g = KbGen { kb: self, tasks: Vec::new() };
        g.recall();
        g.two_hop();
        g.three_hop();
        g.compare();
        g.arithmetic();
        g.parity();
        g.inverse();
        g.tasks
    }

    /// The tasks of one split, in [`KnowledgeBase::tasks`] order.
    pub fn tasks_in(&self, split: Split) -> Vec<Task> {
        self.tasks().into_iter().filter(|t| t.split == split).collect()
    }

    /// The training sources: the corpus at `renderings` and every train task.
    pub fn training_sources(&self, renderings: usize) -> Result<Vec<(String, String)>, WorldError> {
        Ok(training_sources_of(self.corpus(renderings)?, &self.tasks_in(Split::Train)))
    }

    /// Checks the held-out tasks against the training sources ([`decontaminate`]).
    pub fn decontamination(&self, renderings: usize) -> Result<DecontaminationReport, WorldError> {
        Ok(decontaminate(&self.tasks_in(Split::Heldout), &self.training_sources(renderings)?))
    }

    /// What `world.json` holds for `renderings` renderings: `sizes` is absent and
    /// `knowledge_base` ([`KbSizes`]) present.
    pub fn summary(&self, renderings: usize) -> Result<WorldSummary, WorldError> {
        self.summary_of(renderings, &self.corpus(renderings)?, &self.tasks())
    }

    fn summary_of(&self, renderings: usize, corpus: &str, tasks: &[Task]) -> Result<WorldSummary, WorldError> {
        let c = &self.config;
        let mut summary = summarise(
            c.seed,
            renderings,
            c.heldout_fraction,
            self.people_per_split(),
            &self.kb_jsonl(),
            corpus,
            tasks,
        )?;
        let mut entities: BTreeMap<String, usize> = BTreeMap::new();
        for t in &self.types {
            *entities.entry(t.clone()).or_default() += 1;
        }
        let mut relations: BTreeMap<String, usize> = BTreeMap::new();
        for &(_, r, _) in &self.triples {
            *relations.entry(self.relations[r].clone()).or_default() += 1;
        }
        summary.knowledge_base = Some(KbSizes {
            split_type: self.split_type.clone(),
            subjects: self.out.iter().filter(|f| !f.is_empty()).count(),
            entities,
            relations,
        });
        Ok(summary)
    }

    /// Writes the same files as [`crate::World::write`] under `dir`, each atomically. Same input
    /// and config ⇒ same bytes.
    pub fn write(&self, dir: &Path, renderings: usize) -> Result<WorldSummary, WorldError> {
        self.write_counted(dir, renderings, None)
    }

    /// [`KnowledgeBase::write`], with `world.json`'s `corpus_tokens` counted by `count_tokens`.
    pub fn write_counted(
        &self,
        dir: &Path,
        renderings: usize,
        count_tokens: Option<&dyn Fn(&str) -> u64>,
    ) -> Result<WorldSummary, WorldError> {
        let corpus = self.corpus(renderings)?;
        let tasks = self.tasks();
        let mut summary = self.summary_of(renderings, &corpus, &tasks)?;
        summary.corpus_tokens = count_tokens.map(|count| count(&corpus));
        write_files(dir, &corpus, &self.kb_jsonl(), &tasks, &summary)?;
        Ok(summary)
    }
}

/// The verifier of a gold answer that is a name or a number.
fn answer_verifier(answer: &str) -> Verifier {
    if int_value(answer).is_some() {
        Verifier::Integer
    } else {
        Verifier::Name
    }
}

/// A subject's fact on a numeric relation: subject, object and the object's value.
#[derive(Clone, Copy)]
struct Valued {
    s: usize,
    o: usize,
    v: i64,
}

/// Task generation over a knowledge base (see [`KnowledgeBase`]).
struct KbGen<'a> {
    kb: &'a KnowledgeBase,
    tasks: Vec<Task>,
}

impl KbGen<'_> {
    fn name(&self, i: usize) -> &str {
        &self.kb.names[i]
    }

    fn words(&self, r: usize) -> String {
        relation_words(&self.kb.relations[r])
    }

    /// A fact step of `chain`.
    fn hop(&self, chain: &mut Chain, s: usize, r: usize, o: usize) -> usize {
        chain.lookup(&self.kb.relations[r], self.name(s), self.name(o))
    }

    /// Adds a task if the split-type entities of `chain.people` share a split (none: train).
    /// Its id is `family/kind/e0012[-e0040]` (entity indices in name order).
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        family: Family,
        kind: &str,
        subjects: &[usize],
        question: String,
        answer: String,
        verifier: Verifier,
        chain: Chain,
    ) {
        let mut split = None;
        let mut people: Vec<String> = Vec::new();
        for &e in &chain.people {
            let Some(s) = self.kb.splits[e] else { continue };
            if split.is_some_and(|x| x != s) {
                return;
            }
            split = Some(s);
            if !people.iter().any(|p| p == self.name(e)) {
                people.push(self.name(e).to_string());
            }
        }
        let ids: Vec<String> = subjects.iter().map(|i| format!("e{i:04}")).collect();
        self.tasks.push(Task {
            id: format!("{}/{kind}/{}", family.as_str(), ids.join("-")),
            family,
            question,
            verifier,
            hops: chain.hops,
            split: split.unwrap_or(Split::Train),
            people,
            trace: finish_trace(chain.text, &answer),
            tool_trace: finish_trace(chain.tool, &answer),
            answer,
        });
    }

    fn recall(&mut self) {
        let kb = self.kb;
        for s in 0..kb.names.len() {
            for &(r, o) in &kb.out[s] {
                let mut chain = Chain::with(&[s, o]);
                self.hop(&mut chain, s, r, o);
                let question = format!("What is the {} of {}?", self.words(r), self.name(s));
                let answer = self.name(o).to_string();
                self.emit(
                    Family::Recall,
                    &kb.slugs[r],
                    &[s],
                    question,
                    answer.clone(),
                    answer_verifier(&answer),
                    chain,
                );
            }
        }
    }

    fn two_hop(&mut self) {
        let kb = self.kb;
        for s in 0..kb.names.len() {
            for &(r1, b) in &kb.out[s] {
                for &(r2, o) in &kb.out[b] {
                    let mut chain = Chain::with(&[s, b, o]);
                    self.hop(&mut chain, s, r1, b);
                    self.hop(&mut chain, b, r2, o);
                    let question =
                        format!("What is the {} of the {} of {}?", self.words(r2), self.words(r1), self.name(s));
                    let kind = format!("{}.{}", kb.slugs[r1], kb.slugs[r2]);
                    let answer = self.name(o).to_string();
                    self.emit(Family::TwoHop, &kind, &[s], question, answer.clone(), answer_verifier(&answer), chain);
                }
            }
        }
    }

    fn three_hop(&mut self) {
        let kb = self.kb;
        for s in 0..kb.names.len() {
            for &(r1, b1) in &kb.out[s] {
                for &(r2, b2) in &kb.out[b1] {
                    for &(r3, o) in &kb.out[b2] {
                        let mut chain = Chain::with(&[s, b1, b2, o]);
                        self.hop(&mut chain, s, r1, b1);
                        self.hop(&mut chain, b1, r2, b2);
                        self.hop(&mut chain, b2, r3, o);
                        let question = format!(
                            "What is the {} of the {} of the {} of {}?",
                            self.words(r3),
                            self.words(r2),
                            self.words(r1),
                            self.name(s)
                        );
                        let kind = format!("{}.{}.{}", kb.slugs[r1], kb.slugs[r2], kb.slugs[r3]);
                        let answer = self.name(o).to_string();
                        let verifier = answer_verifier(&answer);
                        self.emit(Family::ThreeHop, &kind, &[s], question, answer, verifier, chain);
                    }
                }
            }
        }
    }

    /// For each numeric relation, pairs of distinct subjects within one split group (train,
    /// held-out, not of the split type): each group's subjects in a seeded order, each paired
    /// with the next (cyclically); unordered duplicates dropped. Items are
    /// `(relation, a, b)`, each side a [`Valued`] fact.
    fn pairs(&self, label: &str) -> Vec<(usize, Valued, Valued)> {
        let kb = self.kb;
        let mut out = Vec::new();
        for r in (0..kb.relations.len()).filter(|&r| kb.numeric[r]) {
            let mut groups: BTreeMap<Option<Split>, Vec<Valued>> = BTreeMap::new();
            for &(s, fr, o) in &kb.triples {
                if fr == r {
                    if let Some(v) = int_value(&kb.names[o]) {
                        groups.entry(kb.splits[s]).or_default().push(Valued { s, o, v });
                    }
                }
            }
            let mut seen = HashSet::new();
            for (group, mut v) in groups {
                if v.len() < 2 {
                    continue;
                }
                let group = group.map_or("none", Split::as_str);
                SplitMix64::stream(kb.config.seed, &format!("pairs/{label}/{}/{group}", kb.relations[r]))
                    .shuffle(&mut v);
                for k in 0..v.len() {
                    let (a, b) = (v[k], v[(k + 1) % v.len()]);
                    if seen.insert((a.s.min(b.s), a.s.max(b.s))) {
                        out.push((r, a, b));
                    }
                }
            }
        }
        out
    }

    fn compare(&mut self) {
        for (r, x, y) in self.pairs("compare") {
            let (Valued { s: a, o: oa, v: va }, Valued { s: b, o: ob, v: vb }) = (x, y);
            if va == vb {
                continue;
            }
            let mut chain = Chain::with(&[a, b, oa, ob]);
            let ra = self.hop(&mut chain, a, r, oa);
            let rb = self.hop(&mut chain, b, r, ob);
            let (sign, yes) = if va < vb { ("<", "yes") } else { (">", "no") };
            chain.calc(format!("{va} {sign} {vb}."), format!("#{ra} < #{rb}"), yes.to_string());
            let answer = self.name(if va < vb { a } else { b }).to_string();
            let question = format!("Which has the smaller {}, {} or {}?", self.words(r), self.name(a), self.name(b));
            let kind = self.kb.slugs[r].clone();
            self.emit(Family::Compare, &kind, &[a, b], question, answer, Verifier::Name, chain);
        }
    }

    fn arithmetic(&mut self) {
        for (r, x, y) in self.pairs("arithmetic") {
            let (Valued { s: a, o: oa, v: va }, Valued { s: b, o: ob, v: vb }) = (x, y);
            let (hi, lo) = (va.max(vb), va.min(vb));
            let Some(d) = hi.checked_sub(lo) else { continue };
            let mut chain = Chain::with(&[a, b, oa, ob]);
            let ra = self.hop(&mut chain, a, r, oa);
            let rb = self.hop(&mut chain, b, r, ob);
            chain.calc(format!("{hi} - {lo} = {d}."), format!("abs(#{ra} - #{rb})"), d.to_string());
            let rel = self.words(r);
            let question = format!(
                "What is the difference between the {rel} of {} and the {rel} of {}?",
                self.name(a),
                self.name(b)
            );
            let kind = self.kb.slugs[r].clone();
            self.emit(Family::Arithmetic, &kind, &[a, b], question, d.to_string(), Verifier::Integer, chain);
        }
    }

    fn parity(&mut self) {
        let kb = self.kb;
        for s in 0..kb.names.len() {
            for &(r, o) in &kb.out[s] {
                let Some(n) = kb.numeric[r].then(|| int_value(&kb.names[o])).flatten() else { continue };
                let even = n % 2 == 0;
                let mut chain = Chain::with(&[s, o]);
                let rn = self.hop(&mut chain, s, r, o);
                chain.calc(
                    format!("{n} is {}.", if even { "even" } else { "odd" }),
                    format!("#{rn} % 2"),
                    (n % 2).to_string(),
                );
                let question = format!("Is the {} of {} even?", self.words(r), self.name(s));
                let answer = if even { "yes" } else { "no" }.to_string();
                self.emit(Family::Parity, &kb.slugs[r], &[s], question, answer, Verifier::YesNo, chain);
            }
        }
    }

    fn inverse(&mut self) {
        let kb = self.kb;
        // How many subjects have each fact, and each pair of facts (objects compared as the
        // trace checker's `find` compares them).
        let norm: Vec<String> = kb.names.iter().map(|n| normalize_name(n)).collect();
        let mut single: HashMap<(usize, &str), usize> = HashMap::new();
        let mut pair: HashMap<(usize, &str, usize, &str), usize> = HashMap::new();
        for facts in &kb.out {
            for (i, &(r1, o1)) in facts.iter().enumerate() {
                *single.entry((r1, norm[o1].as_str())).or_default() += 1;
                for &(r2, o2) in &facts[i + 1..] {
                    *pair.entry((r1, norm[o1].as_str(), r2, norm[o2].as_str())).or_default() += 1;
                }
            }
        }
        let plain = |i: usize| !kb.names[i].contains([',', '=']);
        for s in (0..kb.names.len()).filter(|&s| plain(s)) {
            let facts = &kb.out[s];
            let mut best: Option<(usize, usize)> = None;
            'search: for (i, &(r1, o1)) in facts.iter().enumerate() {
                for (j, &(r2, o2)) in facts.iter().enumerate().skip(i + 1) {
                    if !plain(o1) || !plain(o2) || pair[&(r1, norm[o1].as_str(), r2, norm[o2].as_str())] != 1 {
                        continue;
                    }
                    let alone = single[&(r1, norm[o1].as_str())] == 1 || single[&(r2, norm[o2].as_str())] == 1;
                    if !alone {
                        best = Some((i, j));
                        break 'search;
                    }
                    best = best.or(Some((i, j)));
                }
            }
            let Some((i, j)) = best else { continue };
            let ((r1, o1), (r2, o2)) = (facts[i], facts[j]);
            let mut chain = Chain::with(&[s, o1, o2]);
            self.hop(&mut chain, s, r1, o1);
            self.hop(&mut chain, s, r2, o2);
            chain.tool = vec![format!(
                "find({}={}, {}={}) -> {}",
                kb.relations[r1],
                self.name(o1),
                kb.relations[r2],
                self.name(o2),
                self.name(s)
            )];
            chain.results = vec![self.name(s).to_string()];
            let question = format!(
                "Which {} has the {} {} and the {} {}?",
                kb.types[s],
                self.words(r1),
                self.name(o1),
                self.words(r2),
                self.name(o2)
            );
            let kind = format!("{}+{}", kb.slugs[r1], kb.slugs[r2]);
            let answer = self.name(s).to_string();
            self.emit(Family::Inverse, &kind, &[s], question, answer, Verifier::Name, chain);
        }
    }
}
