//! The knowledge corpus: one biography per person and one short description per city,
//! university and company, each rendered `renderings` times. A [`crate::KnowledgeBase`] is
//! rendered by the same code, one document per subject.
//!
//! Every relation has [`TEMPLATES_PER_RELATION`] sentence templates (`{s}` = subject,
//! `{o}` = object); a relation that is not one of the world's gets five generic ones built from
//! its name ([`generic_sentence`]). Template 0 is the *canonical* sentence: it is the only one used when
//! `renderings == 1` (with the fixed relation order of [`Relation::ALL`]), and it is the sentence
//! form of gold reasoning traces (see [`fact_sentence`]). With more renderings, each fact gets a
//! seeded permutation of its templates (rendering `r` uses entry `r mod 5`) and each rendering
//! shuffles the sentence order. The facts never change with the rendering count.
//!
//! The single rendering names a generated world's person or company in its first sentence only
//! and refers to it by a pronoun after that ("They were born in Hovor.", [`pronoun_sentence`]), as
//! a plain biography does. Repeating the full name in every sentence is itself one of the
//! knowledge augmentations of Physics of Language Models 3.1 ("fullname"), so it belongs to the
//! multi-rendering lever, not to the augmentation-free baseline; with more renderings every
//! sentence names its subject (the shuffled order needs it). A user's knowledge base is always
//! rendered with names (its subjects have no known pronoun).
//!
//! Layout: documents are separated by one blank line; a document is its sentences joined by
//! single spaces. Rendering pass 0 (all people, then cities, universities, companies) comes
//! first, then pass 1, and so on. The text ends with a newline.

use crate::rng::SplitMix64;
use crate::world::{sha256_hex, Fact, Relation, World};
use crate::WorldError;

/// Templates per relation.
pub const TEMPLATES_PER_RELATION: usize = 5;

/// The sentence templates of `relation`; entry 0 is canonical and has the form `{s}<middle>{o}.`
pub fn templates(relation: Relation) -> &'static [&'static str; TEMPLATES_PER_RELATION] {
    match relation {
        Relation::BirthYear => &[
            "{s} was born in the year {o}.",
            "{s}'s year of birth is {o}.",
            "{s} came into the world in {o}.",
            "The birth year of {s} is {o}.",
            "In {o}, {s} was born.",
        ],
        Relation::BirthCity => &[
            "{s} was born in {o}.",
            "{s}'s birthplace is {o}.",
            "{o} is where {s} was born.",
            "{s} hails from the city of {o}.",
            "The city where {s} was born is {o}.",
        ],
        Relation::University => &[
            "{s} studied at {o}.",
            "{s} attended {o}.",
            "{s} is a graduate of {o}.",
            "{o} is the university {s} went to.",
            "{s} earned a degree from {o}.",
        ],
        Relation::Major => &[
            "{s} majored in {o}.",
            "{s}'s field of study was {o}.",
            "At university, {s} studied {o}.",
            "{o} was the subject {s} chose to study.",
            "{s} specialised in {o}.",
        ],
        Relation::Employer => &[
            "{s} works for {o}.",
            "{s} is employed by {o}.",
            "{o} is the employer of {s}.",
            "{s} has a job at {o}.",
            "{s} earns a living at {o}.",
        ],
        Relation::Mentor => &[
            "{s}'s mentor is {o}.",
            "{s} was mentored by {o}.",
            "{o} is the mentor of {s}.",
            "{o} served as {s}'s mentor.",
            "{s} learned the trade from {o}.",
        ],
        Relation::Country => &[
            "{s} is in {o}.",
            "{s} is a city in {o}.",
            "{s} lies in the country of {o}.",
            "{o} is the country where {s} is located.",
            "The city of {s} belongs to {o}.",
        ],
        Relation::City => &[
            "{s} is located in {o}.",
            "{s} has its campus in {o}.",
            "{o} is home to {s}.",
            "The campus of {s} is in {o}.",
            "{s} sits in the city of {o}.",
        ],
        Relation::Headquarters => &[
            "{s} is headquartered in {o}.",
            "{s} has its headquarters in {o}.",
            "The headquarters of {s} is in {o}.",
            "{o} is where {s} is based.",
            "{s} is based in {o}.",
        ],
        Relation::Founded => &[
            "{s} was founded in {o}.",
            "{s} was established in {o}.",
            "The founding year of {s} is {o}.",
            "{s} has existed since {o}.",
            "In {o}, {s} was founded.",
        ],
    }
}

/// Fills a template: each `{s}` becomes `subject` and each `{o}` becomes `object`, in one pass,
/// so a name that itself contains `{o}` is left as it is.
pub fn render(template: &str, subject: &str, object: &str) -> String {
    let mut out = String::with_capacity(template.len() + subject.len() + object.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{s}") {
            out.push_str(subject);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{o}") {
            out.push_str(object);
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A relation name as words in a sentence: trimmed, underscores as spaces
/// (`publication_year` → `publication year`).
pub fn relation_words(relation: &str) -> String {
    relation.trim().replace('_', " ")
}

/// Sentence `template` (taken modulo [`TEMPLATES_PER_RELATION`]) of a fact whose relation is not
/// one of the world's: five phrasings built from the relation's words. Template 0,
/// `The {relation} of {subject} is {object}.`, is the canonical one (see [`fact_sentence`]).
pub fn generic_sentence(template: usize, relation: &str, subject: &str, object: &str) -> String {
    let rel = relation_words(relation);
    match template % TEMPLATES_PER_RELATION {
        0 => format!("The {rel} of {subject} is {object}."),
        1 => format!("{subject}'s {rel} is {object}."),
        2 => format!("{object} is the {rel} of {subject}."),
        3 => format!("For {subject}, the {rel} is {object}."),
        _ => format!("{subject} has the {rel} {object}."),
    }
}

/// Sentence `template` (modulo [`TEMPLATES_PER_RELATION`]) of any fact: the world's templates
/// for the world's relations ([`templates`]), [`generic_sentence`] for any other relation.
/// Template 0 is [`fact_sentence`].
pub fn fact_template_sentence(fact: &Fact, template: usize) -> String {
    match Relation::parse(fact.relation.trim()) {
        Some(r) => render(templates(r)[template % TEMPLATES_PER_RELATION], &fact.subject, &fact.object),
        None => generic_sentence(template, &fact.relation, &fact.subject, &fact.object),
    }
}

/// The canonical sentence of a fact about a subject already named earlier in its document, with
/// a pronoun for the subject: "They" for a person's facts, "It" for a company's (see the module
/// docs). Gives the same content words as template 0.
pub fn pronoun_sentence(relation: Relation, object: &str) -> String {
    match relation {
        Relation::BirthYear => format!("They were born in the year {object}."),
        Relation::BirthCity => format!("They were born in {object}."),
        Relation::University => format!("They studied at {object}."),
        Relation::Major => format!("They majored in {object}."),
        Relation::Employer => format!("They work for {object}."),
        Relation::Mentor => format!("Their mentor is {object}."),
        Relation::Country => format!("It is in {object}."),
        Relation::City => format!("It is located in {object}."),
        Relation::Headquarters => format!("It is headquartered in {object}."),
        Relation::Founded => format!("It was founded in {object}."),
    }
}

/// The middle of the canonical template of `relation` (`" was born in "` for `birth_city`).
pub(crate) fn canonical_middle(relation: Relation) -> &'static str {
    let t = templates(relation)[0];
    let t = t.strip_prefix("{s}").unwrap_or(t);
    t.strip_suffix("{o}.").unwrap_or(t)
}

/// The canonical sentence of a fact, as used in gold traces: template 0 for the world's
/// relations, `The {relation} of {subject} is {object}.` for any other relation (with the
/// relation's underscores as spaces, [`relation_words`]). [`crate::verify_trace`] parses both.
pub fn fact_sentence(fact: &Fact) -> String {
    fact_template_sentence(fact, 0)
}

/// One describable subject: its name and its `(relation, object)` facts.
struct Subject {
    key: String,
    name: String,
    facts: Vec<(Relation, String)>,
}

/// Renders documents, one per subject per rendering pass, the same way for every source of
/// knowledge (see the module docs). `subjects` lists each subject's stable key (it seeds the
/// subject's sentence order) and its number of facts; `sentence(subject, fact, template)` renders
/// one fact with one template (`0..TEMPLATES_PER_RELATION`).
///
/// The template permutations are drawn for every fact before any rendering, independently of
/// `renderings`, so a corpus rendered 3 times is a prefix-compatible subset of the same one
/// rendered 5 times.
pub(crate) fn render_documents(
    seed: u64,
    subjects: &[(String, usize)],
    renderings: usize,
    sentence: impl Fn(usize, usize, usize) -> String,
) -> Result<Vec<String>, WorldError> {
    if renderings == 0 {
        return Err(WorldError::Renderings(0));
    }
    let mut rng = SplitMix64::stream(seed, "corpus/templates");
    let perms: Vec<Vec<[usize; TEMPLATES_PER_RELATION]>> = subjects
        .iter()
        .map(|(_, n)| {
            (0..*n)
                .map(|_| {
                    let mut p = [0, 1, 2, 3, 4];
                    rng.shuffle(&mut p);
                    p
                })
                .collect()
        })
        .collect();
    let mut docs = Vec::with_capacity(renderings * subjects.len());
    for r in 0..renderings {
        for (si, ((key, _), perm)) in subjects.iter().zip(&perms).enumerate() {
            let mut sentences: Vec<String> = perm
                .iter()
                .enumerate()
                .map(|(fi, p)| sentence(si, fi, if renderings == 1 { 0 } else { p[r % TEMPLATES_PER_RELATION] }))
                .collect();
            if renderings > 1 {
                SplitMix64::stream(seed, &format!("corpus/order/{key}/{r}")).shuffle(&mut sentences);
            }
            docs.push(sentences.join(" "));
        }
    }
    Ok(docs)
}

/// Documents joined into corpus text: one blank line between documents, a final newline.
pub(crate) fn join_documents(docs: &[String]) -> String {
    let mut s = docs.join("\n\n");
    s.push('\n');
    s
}

impl World {
    fn subjects(&self) -> Vec<Subject> {
        let mut out = Vec::new();
        for (i, p) in self.people.iter().enumerate() {
            out.push(Subject { key: format!("person/{i}"), name: p.full_name(), facts: self.person_facts(i) });
        }
        for (i, c) in self.cities.iter().enumerate() {
            out.push(Subject {
                key: format!("city/{i}"),
                name: c.name.clone(),
                facts: vec![(Relation::Country, self.countries[c.country].name.clone())],
            });
        }
        for (i, u) in self.universities.iter().enumerate() {
            out.push(Subject {
                key: format!("university/{i}"),
                name: u.name.clone(),
                facts: vec![(Relation::City, self.cities[u.city].name.clone())],
            });
        }
        for (i, c) in self.companies.iter().enumerate() {
            out.push(Subject {
                key: format!("company/{i}"),
                name: c.name.clone(),
                facts: vec![
                    (Relation::Headquarters, self.cities[c.hq_city].name.clone()),
                    (Relation::Founded, c.founded.to_string()),
                ],
            });
        }
        out
    }

    /// The documents of the corpus for `renderings` renderings (see the module docs).
    pub fn corpus_documents(&self, renderings: usize) -> Result<Vec<String>, WorldError> {
        let subjects = self.subjects();
        let shape: Vec<(String, usize)> = subjects.iter().map(|s| (s.key.clone(), s.facts.len())).collect();
        render_documents(self.config.seed, &shape, renderings, |si, fi, t| {
            let (s, (rel, obj)) = (&subjects[si], &subjects[si].facts[fi]);
            if renderings == 1 && fi > 0 {
                pronoun_sentence(*rel, obj)
            } else {
                render(templates(*rel)[t], &s.name, obj)
            }
        })
    }

    /// The corpus text for `renderings` renderings (at least 1).
    pub fn corpus(&self, renderings: usize) -> Result<String, WorldError> {
        Ok(join_documents(&self.corpus_documents(renderings)?))
    }

    /// SHA-256 (hex) of [`World::corpus`].
    pub fn corpus_sha256(&self, renderings: usize) -> Result<String, WorldError> {
        Ok(sha256_hex(self.corpus(renderings)?.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_well_formed() {
        for r in Relation::ALL {
            let ts = templates(r);
            for t in ts {
                assert_eq!(t.matches("{s}").count(), 1, "{t}");
                assert_eq!(t.matches("{o}").count(), 1, "{t}");
            }
            let distinct: std::collections::HashSet<_> = ts.iter().collect();
            assert_eq!(distinct.len(), TEMPLATES_PER_RELATION);
            assert!(ts[0].starts_with("{s}") && ts[0].ends_with("{o}."), "{}", ts[0]);
        }
        // The canonical middles must not be confusable except by trying both parses.
        assert_eq!(canonical_middle(Relation::BirthCity), " was born in ");
    }

    #[test]
    fn render_fills_once_and_generic_templates_are_distinct() {
        assert_eq!(render("{s} likes {o}.", "A{o}", "B{s}"), "A{o} likes B{s}.");
        assert_eq!(render("{x} {s}", "A", "B"), "{x} A");
        let f = Fact { subject: "Copper Tide".into(), relation: "publication_year".into(), object: "1947".into() };
        let all: std::collections::HashSet<String> =
            (0..TEMPLATES_PER_RELATION).map(|t| fact_template_sentence(&f, t)).collect();
        assert_eq!(all.len(), TEMPLATES_PER_RELATION);
        for s in &all {
            assert!(s.contains("Copper Tide") && s.contains("1947") && s.contains("publication year"), "{s}");
        }
        assert_eq!(fact_sentence(&f), "The publication year of Copper Tide is 1947.");
        assert_eq!(fact_template_sentence(&f, 5), fact_sentence(&f));
        // World relations keep the world's sentences.
        let f = Fact { subject: "Ada".into(), relation: "birth_city".into(), object: "Lormet".into() };
        assert_eq!(fact_sentence(&f), "Ada was born in Lormet.");
    }
}
