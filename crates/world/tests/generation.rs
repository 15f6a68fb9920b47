//! Generation, knowledge and corpus.

use std::collections::{HashMap, HashSet};

use world::{Relation, World, WorldConfig};

fn world(seed: u64) -> World {
    World::generate(&WorldConfig { seed, ..WorldConfig::default() }).unwrap()
}

#[test]
fn same_seed_same_bytes_different_seed_different() {
    let (a, b, c) = (world(1), world(1), world(2));
    assert_eq!(a.kb_jsonl(), b.kb_jsonl());
    assert_eq!(a.knowledge_sha256(), b.knowledge_sha256());
    assert_eq!(a.corpus(5).unwrap(), b.corpus(5).unwrap());
    assert_eq!(a.corpus_sha256(5).unwrap(), b.corpus_sha256(5).unwrap());
    assert_eq!(a.tasks(), b.tasks());
    assert_ne!(a.kb_jsonl(), c.kb_jsonl());
    assert_ne!(a.knowledge_sha256(), c.knowledge_sha256());
    assert_ne!(a.corpus_sha256(5).unwrap(), c.corpus_sha256(5).unwrap());
    assert_ne!(a.tasks(), c.tasks());
    assert_eq!(a.knowledge_sha256().len(), 64);
}

#[test]
fn sizes_and_ranges_follow_the_config() {
    let w = world(3);
    let c = WorldConfig::default();
    assert_eq!(
        (w.countries.len(), w.cities.len(), w.universities.len(), w.companies.len(), w.majors.len(), w.people.len()),
        (c.countries, c.cities, c.universities, c.companies, c.majors, c.people)
    );
    // Every country has a city.
    let covered: HashSet<usize> = w.cities.iter().map(|x| x.country).collect();
    assert_eq!(covered.len(), c.countries);
    for (i, p) in w.people.iter().enumerate() {
        assert_ne!(p.mentor, i, "nobody mentors themself");
        assert!(p.mentor < w.people.len());
        assert!((1900..=1999).contains(&p.birth_year));
        assert!(p.birth_city < w.cities.len() && p.university < w.universities.len());
        assert!(p.major < w.majors.len() && p.employer < w.companies.len());
    }
    for co in &w.companies {
        assert!((1850..=1990).contains(&co.founded));
    }
    assert_eq!(w.facts().len(), 6 * c.people + c.cities + c.universities + 2 * c.companies);
}

#[test]
fn names_are_unique_across_entities_and_pools_are_shared() {
    for seed in [0, 1, 2, 99] {
        let w = world(seed);
        let names = w.all_names();
        let set: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(set.len(), names.len(), "seed {seed}: a name is used twice");
        for n in &names {
            assert!(!n.is_empty() && n.chars().next().unwrap().is_uppercase(), "{n}");
            assert!(n.chars().all(|c| c.is_ascii_alphabetic() || c == ' '), "{n}");
        }
        // First and last names come from pools: several of each are reused.
        let mut firsts: HashMap<&str, usize> = HashMap::new();
        let mut lasts: HashMap<&str, usize> = HashMap::new();
        for p in &w.people {
            *firsts.entry(&p.first).or_default() += 1;
            *lasts.entry(&p.last).or_default() += 1;
        }
        assert!(firsts.values().filter(|&&n| n >= 2).count() >= 2, "first names are not reused");
        assert!(lasts.values().filter(|&&n| n >= 2).count() >= 2, "last names are not reused");
        assert!(firsts.len() <= 25 && lasts.len() <= 25);
        // A pool name is not also some other entity's name.
        let others: HashSet<String> = names[..names.len() - w.people.len()].iter().cloned().collect();
        for p in &w.people {
            assert!(!others.contains(&p.first) && !others.contains(&p.last));
        }
    }
}

#[test]
fn invalid_config_is_rejected_with_the_field() {
    let err = World::generate(&WorldConfig { people: 1000, ..WorldConfig::default() }).unwrap_err();
    assert!(err.to_string().contains("`people`"), "{err}");
    let err = World::generate(&WorldConfig { cities: 3, ..WorldConfig::default() }).unwrap_err();
    assert!(err.to_string().contains("`cities`"), "{err}");
    assert!(world(0).corpus(0).is_err());
}

#[test]
fn small_and_crowded_worlds_generate() {
    // people == pool product: every pair is used.
    let c = WorldConfig {
        people: 16,
        first_name_pool: 4,
        last_name_pool: 4,
        countries: 1,
        cities: 1,
        ..WorldConfig::default()
    };
    let w = World::generate(&c).unwrap();
    let full: HashSet<String> = w.people.iter().map(|p| p.full_name()).collect();
    assert_eq!(full.len(), 16);
    assert!(!w.tasks().is_empty());
    let c = WorldConfig { people: 2, heldout_fraction: 0.0, ..WorldConfig::default() };
    let w = World::generate(&c).unwrap();
    assert!(w.tasks().iter().all(|t| t.split == world::Split::Train));
}

#[test]
fn renderings_change_only_the_text() {
    let w = world(4);
    let one = w.corpus(1).unwrap();
    let five = w.corpus(5).unwrap();
    assert_ne!(one, five);
    assert_ne!(w.corpus_sha256(1).unwrap(), w.corpus_sha256(5).unwrap());
    // Knowledge does not depend on the rendering: regenerate with another renderings setting.
    let w1 = World::generate(&WorldConfig { seed: 4, renderings: 1, ..WorldConfig::default() }).unwrap();
    assert_eq!(w1.facts(), w.facts());
    assert_eq!(w1.knowledge_sha256(), w.knowledge_sha256());
    assert_eq!(w1.tasks(), w.tasks());
    // Document counts scale with renderings.
    let docs1 = w.corpus_documents(1).unwrap();
    let docs5 = w.corpus_documents(5).unwrap();
    assert_eq!(docs5.len(), 5 * docs1.len());
    assert_eq!(one.split("\n\n").count(), docs1.len());
    // renderings = 1 uses only the canonical template, in the fixed relation order, and names
    // the person once: later sentences use a pronoun.
    let p = &w.people[0];
    let name = p.full_name();
    assert!(
        docs1[0].starts_with(&format!("{name} was born in the year {}. They were born in", p.birth_year)),
        "{}",
        docs1[0]
    );
    assert_eq!(docs1[0].matches(name.as_str()).count(), 1, "{}", docs1[0]);
    // With several renderings every sentence names its subject.
    let docs5 = w.corpus_documents(5).unwrap();
    assert!(docs5.iter().all(|d| !d.contains("They ") && !d.contains("Their ") && !d.contains("It ")));
    // More renderings vary templates: at least 4 distinct birth-year phrasings appear for one person.
    let year = p.birth_year.to_string();
    let phrasings: HashSet<&str> = world::templates(Relation::BirthYear)
        .iter()
        .copied()
        .filter(|t| five.contains(&world::render(t, &name, &year)))
        .collect();
    assert!(phrasings.len() >= 4, "{phrasings:?}");
    assert!(one.contains(&world::render(world::templates(Relation::BirthYear)[0], &name, &year)));
    // ...and sentence order: not every rendering of person 0 starts with the same relation.
    let n = docs1.len();
    let starts: HashSet<String> =
        (0..5).map(|r| docs5[r * n].split(' ').take(4).collect::<Vec<_>>().join(" ")).collect();
    assert!(starts.len() >= 2, "{starts:?}");
}

#[test]
fn every_fact_appears_in_its_subjects_documents() {
    let w = world(5);
    for r in [1, 5] {
        let docs = w.corpus_documents(r).unwrap();
        for f in w.facts() {
            // The subject's documents: those naming the subject (biography or description).
            let hits = docs.iter().filter(|d| d.contains(&f.subject) && d.contains(&f.object)).count();
            assert!(hits >= r, "renderings {r}: {f:?} appears in {hits} documents");
        }
        // And each relation's object is stated in the subject's own document with a template.
        let n = docs.len() / r;
        for (i, p) in w.people.iter().enumerate() {
            for pass in 0..r {
                let doc = &docs[pass * n + i];
                assert!(doc.contains(&p.full_name()));
                assert!(doc.contains(&w.cities[p.birth_city].name));
                assert!(doc.contains(&p.birth_year.to_string()));
                assert!(doc.contains(&w.companies[p.employer].name));
                assert!(doc.contains(&w.people[p.mentor].full_name()));
                assert!(doc.contains(&w.universities[p.university].name));
                assert!(doc.contains(&w.majors[p.major].name));
            }
        }
    }
}

#[test]
fn kb_jsonl_has_types() {
    let w = world(6);
    let kb = w.kb_jsonl();
    assert!(kb.ends_with('\n'));
    let first: serde_json::Value = serde_json::from_str(kb.lines().next().unwrap()).unwrap();
    assert_eq!(first["relation"], "birth_year");
    assert_eq!(first["subject_type"], "person");
    assert_eq!(first["object_type"], "year");
    let keys: Vec<&str> = kb.lines().next().unwrap().split('"').skip(1).step_by(4).collect();
    assert_eq!(keys, ["subject", "relation", "object", "subject_type", "object_type"]);
    let types: HashSet<String> = kb
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["object_type"].as_str().unwrap().to_string())
        .collect();
    for t in ["person", "city", "country", "university", "company", "major", "year"] {
        assert!(types.contains(t), "{t}");
    }
}
