//! The knowledge corpus: one biography per person and one short description per city,
//! university and company, each rendered `renderings` times.
//!
//! Every relation has [`TEMPLATES_PER_RELATION`] sentence templates (`{s}` = subject,
//! `{o}` = object). Template 0 is the *canonical* sentence: it is the only one used when
//! `renderings == 1` (with the fixed relation order of [`Relation::ALL`]), and it is the sentence
//! form of gold reasoning traces (see [`fact_sentence`]). With more renderings, each fact gets a
//! seeded permutation of its templates (rendering `r` uses entry `r mod 5`) and each rendering
//! shuffles the sentence order. The facts never change with the rendering count.
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

/// Fills a template.
pub fn render(template: &str, subject: &str, object: &str) -> String {
    template.replace("{s}", subject).replace("{o}", object)
}

/// The middle of the canonical template of `relation` (`" was born in "` for `birth_city`).
pub(crate) fn canonical_middle(relation: Relation) -> &'static str {
    let t = templates(relation)[0];
    let t = t.strip_prefix("{s}").unwrap_or(t);
    t.strip_suffix("{o}.").unwrap_or(t)
}

/// The canonical sentence of a fact, as used in gold traces: template 0 for the world's
/// relations, `The {relation} of {subject} is {object}.` for any other relation.
pub fn fact_sentence(fact: &Fact) -> String {
    match Relation::parse(&fact.relation) {
        Some(r) => render(templates(r)[0], &fact.subject, &fact.object),
        None => format!("The {} of {} is {}.", fact.relation, fact.subject, fact.object),
    }
}

/// One describable subject: its name and its `(relation, object)` facts.
struct Subject {
    key: String,
    name: String,
    facts: Vec<(Relation, String)>,
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
        if renderings == 0 {
            return Err(WorldError::Renderings(0));
        }
        let subjects = self.subjects();
        // Template permutations per (subject, fact), drawn independently of `renderings`, so a
        // world rendered 3 times is a prefix-compatible subset of the same world rendered 5 times.
        let mut rng = SplitMix64::stream(self.config.seed, "corpus/templates");
        let perms: Vec<Vec<[usize; TEMPLATES_PER_RELATION]>> = subjects
            .iter()
            .map(|s| {
                s.facts
                    .iter()
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
            for (s, perm) in subjects.iter().zip(&perms) {
                let mut sentences: Vec<String> = s
                    .facts
                    .iter()
                    .zip(perm)
                    .map(|((rel, obj), p)| {
                        let t = if renderings == 1 { 0 } else { p[r % TEMPLATES_PER_RELATION] };
                        render(templates(*rel)[t], &s.name, obj)
                    })
                    .collect();
                if renderings > 1 {
                    SplitMix64::stream(self.config.seed, &format!("corpus/order/{}/{r}", s.key))
                        .shuffle(&mut sentences);
                }
                docs.push(sentences.join(" "));
            }
        }
        Ok(docs)
    }

    /// The corpus text for `renderings` renderings (at least 1).
    pub fn corpus(&self, renderings: usize) -> Result<String, WorldError> {
        let docs = self.corpus_documents(renderings)?;
        let mut s = docs.join("\n\n");
        s.push('\n');
        Ok(s)
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
}
