//! Bring your own knowledge: a `KnowledgeBase` imported from triples gets the world's corpus,
//! tasks, traces, verifiers, split, files and decontamination check.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use world::{
    fact_sentence, fact_template_sentence, Family, KbConfig, Knowledge, KnowledgeBase, KnowledgeIndex, Split, Task,
    Verifier, World, WorldConfig, WorldError, TEMPLATES_PER_RELATION,
};

/// A small hand-written knowledge base: books, their authors and years, the authors' birth
/// years and birthplaces, and the birthplaces' countries. It mixes declared and inferred types,
/// world relation names (`birth_year`, `country`) and others, and names with `. ` and ` of `.
const BOOKS: &str = r#"{"subject":"The Glass Orchard","relation":"author","object":"Mira Tollan","subject_type":"book","object_type":"author"}
{"subject":"The Glass Orchard","relation":"publication_year","object":"1952"}
{"subject":"Salt and Ember","relation":"author","object":"Mira Tollan","subject_type":"book"}
{"subject":"Salt and Ember","relation":"publication_year","object":"1961"}
{"subject":"North of Quiet","relation":"author","object":"Idris Vale","subject_type":"book"}
{"subject":"North of Quiet","relation":"publication_year","object":"1975"}
{"subject":"The Lantern Years","relation":"author","object":"Idris Vale","subject_type":"book"}
{"subject":"The Lantern Years","relation":"publication_year","object":"1983"}
{"subject":"A Map of Rain","relation":"author","object":"Oona Brisk","subject_type":"book"}
{"subject":"A Map of Rain","relation":"publication_year","object":"1990"}
{"subject":"Copper Tide","relation":"author","object":"J. R. Penhale","subject_type":"book"}
{"subject":"Copper Tide","relation":"publication_year","object":"1947"}
{"subject":"Mira Tollan","relation":"birth_year","object":"1912","subject_type":"author"}
{"subject":"Mira Tollan","relation":"birthplace","object":"Harrowgate"}
{"subject":"Idris Vale","relation":"birth_year","object":"1940","subject_type":"author"}
{"subject":"Idris Vale","relation":"birthplace","object":"Keswyn"}
{"subject":"Oona Brisk","relation":"birth_year","object":"1958","subject_type":"author"}
{"subject":"Oona Brisk","relation":"birthplace","object":"Harrowgate"}
{"subject":"J. R. Penhale","relation":"birth_year","object":"1909","subject_type":"author"}
{"subject":"Harrowgate","relation":"country","object":"Elmaria","subject_type":"city"}
{"subject":"Keswyn","relation":"country","object":"Dunmere","subject_type":"city"}
"#;

fn books(config: &KbConfig) -> KnowledgeBase {
    KnowledgeBase::from_jsonl(BOOKS, config).unwrap()
}

fn world() -> World {
    World::generate(&WorldConfig { seed: 3, ..WorldConfig::default() }).unwrap()
}

fn world_kb(w: &World) -> KnowledgeBase {
    KnowledgeBase::from_jsonl(&w.kb_jsonl(), &KbConfig { seed: 3, ..KbConfig::default() }).unwrap()
}

fn families(tasks: &[Task], split: Split) -> BTreeMap<Family, usize> {
    let mut per = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.split == split) {
        *per.entry(t.family).or_default() += 1;
    }
    per
}

fn import_errors(text: &str) -> Vec<String> {
    match KnowledgeBase::from_jsonl(text, &KbConfig::default()) {
        Err(WorldError::Import(lines)) => lines,
        other => panic!("expected an import error, got {other:?}"),
    }
}

#[test]
fn importing_a_worlds_kb_gives_its_facts_and_types() {
    let w = world();
    let kb = world_kb(&w);
    let mut expected = w.facts();
    expected.sort();
    assert_eq!(kb.facts(), expected, "facts are the world's, in sorted order");
    // The same typed records, in canonical (sorted) order.
    let world_jsonl = w.kb_jsonl();
    let mut lines: Vec<&str> = world_jsonl.lines().collect();
    lines.sort_unstable();
    let kb_jsonl = kb.kb_jsonl();
    assert_eq!(kb_jsonl.lines().collect::<Vec<_>>(), lines);
    assert!(kb_jsonl.ends_with('\n'));
    assert_eq!(kb.knowledge_sha256(), world::sha256_hex(kb_jsonl.as_bytes()));
    // Re-importing the knowledge base's own kb.jsonl changes nothing.
    let again = KnowledgeBase::from_jsonl(&kb_jsonl, kb.config()).unwrap();
    assert_eq!(again.kb_jsonl(), kb_jsonl);
    assert_eq!(again.tasks(), kb.tasks());

    let p = w.people[0].full_name();
    assert_eq!(kb.entity_type(&p), Some("person"));
    assert_eq!(kb.entity_type(&w.cities[0].name), Some("city"));
    assert_eq!(kb.entity_type(&w.people[0].birth_year.to_string()), Some("year"));
    assert_eq!(kb.entity_type("Nobody At All"), None);
    assert_eq!(kb.split_type(), "person", "the most frequent subject type");
    assert_eq!(kb.people_per_split(), BTreeMap::from([("heldout".into(), 100), ("train".into(), 100)]));
    assert_eq!(kb.numeric_relations(), ["birth_year", "founded"]);
}

#[test]
fn every_family_is_generated_where_the_data_allows() {
    let w = world();
    let tasks = world_kb(&w).tasks();
    for split in [Split::Train, Split::Heldout] {
        let per = families(&tasks, split);
        for f in Family::ALL {
            assert!(per.get(&f).copied().unwrap_or(0) >= 20, "{f:?} in {split:?}: {per:?}");
        }
    }
    let ids: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), tasks.len(), "task ids are unique");
    for t in &tasks {
        assert!(t.id.starts_with(&format!("{}/", t.family.as_str())), "{}", t.id);
        let hops = match t.family {
            Family::Recall | Family::Parity => 1,
            Family::TwoHop | Family::Compare | Family::Arithmetic | Family::Inverse => 2,
            Family::ThreeHop => 3,
        };
        assert_eq!(t.hops, hops, "{}", t.id);
        assert!(t.trace.ends_with(&format!("\nAnswer: {}", t.answer)), "{}", t.id);
        assert!(t.tool_trace.ends_with(&format!("\nAnswer: {}", t.answer)), "{}", t.id);
        assert_eq!(serde_json::from_str::<Task>(&serde_json::to_string(t).unwrap()).unwrap(), *t);
    }

    // The hand-written knowledge base: recall, chains, and numbers on both book years and
    // author birth years.
    let kb = books(&KbConfig::default());
    let tasks = kb.tasks();
    let mut all: BTreeMap<Family, usize> = families(&tasks, Split::Train);
    for (f, n) in families(&tasks, Split::Heldout) {
        *all.entry(f).or_default() += n;
    }
    assert_eq!(all[&Family::Recall], 21, "one per fact");
    // book → author → birth year / birthplace (6 + 5), author → birthplace → country (3).
    assert_eq!(all[&Family::TwoHop], 14);
    // book → author → birthplace → country.
    assert_eq!(all[&Family::ThreeHop], 5);
    assert_eq!(all[&Family::Parity], 10, "6 publication years and 4 birth years");
    for f in [Family::Compare, Family::Arithmetic, Family::Inverse] {
        assert!(all.get(&f).copied().unwrap_or(0) >= 4, "{f:?}: {all:?}");
    }
    let heldout = families(&tasks, Split::Heldout);
    for f in [Family::Recall, Family::TwoHop, Family::Compare, Family::Arithmetic, Family::Parity] {
        assert!(heldout.get(&f).copied().unwrap_or(0) >= 1, "{f:?} in held-out: {heldout:?}");
    }
}

#[test]
fn task_shapes_on_a_hand_written_kb() {
    let kb = books(&KbConfig::default());
    let tasks = kb.tasks();
    let find = |q: &str| tasks.iter().find(|t| t.question == q).unwrap_or_else(|| panic!("no task {q:?}"));

    let t = find("What is the publication year of Copper Tide?");
    assert_eq!((t.family, t.answer.as_str(), t.verifier), (Family::Recall, "1947", Verifier::Integer));
    assert_eq!(t.trace, "The publication year of Copper Tide is 1947.\nAnswer: 1947");
    assert_eq!(t.tool_trace, "lookup(Copper Tide, publication_year) -> 1947\nAnswer: 1947");

    let t = find("What is the birth year of the author of Copper Tide?");
    assert_eq!((t.family, t.answer.as_str()), (Family::TwoHop, "1909"));
    // `birth_year` is a world relation, so its canonical sentence is the world's.
    assert_eq!(
        t.trace,
        "The author of Copper Tide is J. R. Penhale.\nJ. R. Penhale was born in the year 1909.\nAnswer: 1909"
    );
    assert_eq!(
        t.tool_trace,
        "lookup(Copper Tide, author) -> J. R. Penhale\nlookup(#1, birth_year) -> 1909\nAnswer: 1909"
    );

    let t = find("What is the country of the birthplace of the author of North of Quiet?");
    assert_eq!((t.family, t.answer.as_str(), t.verifier), (Family::ThreeHop, "Dunmere", Verifier::Name));
    assert_eq!(t.trace.lines().nth(2), Some("Keswyn is in Dunmere."));

    let t = tasks.iter().find(|t| t.family == Family::Arithmetic && t.question.contains("J. R. Penhale")).unwrap();
    assert!(t.question.starts_with("What is the difference between the birth year of "), "{}", t.question);
    let calc = t.trace.lines().rev().nth(1).unwrap();
    assert!(calc.contains(" - ") && calc.ends_with(&format!("= {}.", t.answer)), "{calc}");
    // The tool trace computes over the two looked-up values by reference.
    assert_eq!(t.tool_trace.lines().rev().nth(1), Some(format!("calc(abs(#1 - #2)) -> {}", t.answer).as_str()));

    for t in tasks.iter().filter(|t| t.family == Family::Compare) {
        assert!(t.question.starts_with("Which has the smaller "), "{}", t.question);
        let calc = t.tool_trace.lines().rev().nth(1).unwrap();
        assert!(calc.starts_with("calc(#1 < #2) -> "), "{calc}");
    }
    let t = tasks.iter().find(|t| t.family == Family::Parity && t.question.contains("A Map of Rain")).unwrap();
    assert_eq!(t.question, "Is the publication year of A Map of Rain even?");
    assert_eq!((t.answer.as_str(), t.verifier), ("yes", Verifier::YesNo));
    assert_eq!(t.trace, "The publication year of A Map of Rain is 1990.\n1990 is even.\nAnswer: yes");
    assert_eq!(t.tool_trace, "lookup(A Map of Rain, publication_year) -> 1990\ncalc(#1 % 2) -> 0\nAnswer: yes");

    // Inverse: the answer is the only subject with both facts. Mira Tollan wrote two books, so
    // the author alone does not identify a book, but with the year it does.
    let t = find("Which book has the author Mira Tollan and the publication year 1961?");
    assert_eq!((t.family, t.answer.as_str()), (Family::Inverse, "Salt and Ember"));
    assert_eq!(
        t.tool_trace,
        "find(author=Mira Tollan, publication_year=1961) -> Salt and Ember\nAnswer: Salt and Ember"
    );
    let facts = kb.facts();
    for t in tasks.iter().filter(|t| t.family == Family::Inverse) {
        let cond = t.tool_trace.lines().next().unwrap();
        let args = cond.strip_prefix("find(").unwrap().split(") -> ").next().unwrap();
        let conds: Vec<(&str, &str)> = args.split(", ").map(|c| c.split_once('=').unwrap()).collect();
        let matching: BTreeSet<&str> = facts
            .iter()
            .map(|f| f.subject.as_str())
            .filter(|s| {
                conds.iter().all(|(r, o)| facts.iter().any(|f| f.subject == *s && f.relation == *r && f.object == *o))
            })
            .collect();
        assert_eq!(matching, BTreeSet::from([t.answer.as_str()]), "{}", t.id);
    }

    // On the world's knowledge, an inverse question is a real two-condition question: neither
    // condition alone names the person (where such a pair exists, which is almost always).
    let w = world();
    let facts = w.facts();
    let mut holders: HashMap<(&str, &str), usize> = HashMap::new();
    for f in &facts {
        *holders.entry((f.relation.as_str(), f.object.as_str())).or_default() += 1;
    }
    let inverse: Vec<Task> = world_kb(&w).tasks().into_iter().filter(|t| t.family == Family::Inverse).collect();
    let people: Vec<&Task> = inverse.iter().filter(|t| t.question.starts_with("Which person has ")).collect();
    assert_eq!(people.len(), 200, "one per person");
    let shared = people
        .iter()
        .filter(|t| {
            let call = t.tool_trace.lines().next().unwrap();
            let args = call.strip_prefix("find(").unwrap().split(") -> ").next().unwrap();
            args.split(", ").all(|c| holders[&c.split_once('=').unwrap()] > 1)
        })
        .count();
    assert!(shared * 100 >= 95 * people.len(), "{shared} of {}", people.len());

    // Types: declared on any line, else inferred.
    assert_eq!(kb.entity_type("Salt and Ember"), Some("book"));
    assert_eq!(kb.entity_type("Mira Tollan"), Some("author"), "declared as an object on line 1");
    assert_eq!(kb.entity_type("Harrowgate"), Some("city"), "declared where it is a subject");
    assert_eq!(kb.entity_type("1952"), Some(world::NUMBER_TYPE));
    assert_eq!(kb.entity_type("Elmaria"), Some(world::ENTITY_TYPE));
    assert_eq!(kb.split_type(), "book");
    assert_eq!(kb.people_per_split(), BTreeMap::from([("heldout".into(), 3), ("train".into(), 3)]));
}

#[test]
fn every_gold_trace_and_tool_trace_verifies_step_by_step() {
    let w = world();
    for kb in [world_kb(&w), books(&KbConfig::default())] {
        let index = KnowledgeIndex::new(&kb.facts());
        let tasks = kb.tasks();
        assert!(!tasks.is_empty());
        for t in &tasks {
            for trace in [&t.trace, &t.tool_trace] {
                let c = t.check_trace(&index, trace);
                assert!(c.all_correct(), "{c:?}\n{}\n{trace}", t.id);
            }
            // One step per line, even where a name has `. ` in it.
            assert_eq!(t.check_trace(&index, &t.trace).steps, t.trace.lines().count() - 1, "{}", t.id);
            assert_eq!(t.check_trace(&index, &t.tool_trace).steps, t.tool_trace.lines().count() - 1, "{}", t.id);
            assert!(t.is_correct(&t.trace) && t.is_correct(&t.answer));
        }
    }
    // The world's own index accepts the traces made from its imported knowledge.
    let index = w.knowledge_index();
    for t in world_kb(&w).tasks().iter().step_by(7) {
        assert!(t.check_trace(&index, &t.trace).all_correct(), "{}", t.id);
    }
}

#[test]
fn a_corrupted_step_is_caught() {
    let kb = books(&KbConfig::default());
    let index = kb.knowledge_index();
    let tasks = kb.tasks();
    let t = tasks.iter().find(|t| t.question == "What is the birth year of the author of Copper Tide?").unwrap();
    // A wrong bridge: the first step names another author.
    let bad = t.trace.replacen("is J. R. Penhale.", "is Oona Brisk.", 1);
    let c = t.check_trace(&index, &bad);
    assert_eq!((c.steps, c.correct_steps, c.final_ok), (2, 1, true), "{bad}");
    let bad = t.tool_trace.replacen("-> 1909", "-> 1908", 1);
    let c = t.check_trace(&index, &bad);
    assert_eq!((c.steps, c.correct_steps), (2, 1), "{bad}");
    let t = tasks.iter().find(|t| t.family == Family::Arithmetic).unwrap();
    let d: i64 = t.answer.parse().unwrap();
    let bad = t.trace.replace(&format!("= {d}."), &format!("= {}.", d + 1));
    let c = t.check_trace(&index, &bad);
    assert_eq!((c.steps, c.correct_steps), (3, 2), "{bad}");
}

#[test]
fn every_verifier_rejects_a_wrong_answer() {
    let w = world();
    for kb in [world_kb(&w), books(&KbConfig::default())] {
        let tasks = kb.tasks();
        let mut by_kind: HashMap<(Family, Verifier), Vec<&str>> = HashMap::new();
        for t in &tasks {
            by_kind.entry((t.family, t.verifier)).or_default().push(&t.answer);
        }
        for t in &tasks {
            let other = by_kind[&(t.family, t.verifier)]
                .iter()
                .find(|a| world::normalize_name(a) != world::normalize_name(&t.answer));
            if let Some(other) = other {
                assert!(!t.is_correct(other), "{} accepted {other}", t.id);
                assert!(!t.is_correct(&format!("Answer: {other}")), "{} accepted {other}", t.id);
            }
            let mutated = match t.verifier {
                Verifier::Integer => (t.answer.parse::<i64>().unwrap() + 1).to_string(),
                Verifier::YesNo => if t.answer == "yes" { "no" } else { "yes" }.to_string(),
                Verifier::Name => format!("{}x", t.answer),
            };
            assert!(!t.is_correct(&mutated), "{} accepted {mutated}", t.id);
            assert!(!t.is_correct(""));
        }
    }
}

fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[test]
fn train_and_heldout_are_disjoint_by_entity() {
    let w = world();
    let kb = world_kb(&w);
    let train: BTreeSet<String> = kb.entities_in(Split::Train).into_iter().collect();
    let heldout: BTreeSet<String> = kb.entities_in(Split::Heldout).into_iter().collect();
    assert_eq!((train.len(), heldout.len()), (100, 100));
    assert!(train.is_disjoint(&heldout));
    let people: BTreeSet<String> = w.people.iter().map(|p| p.full_name()).collect();
    assert_eq!(train.union(&heldout).cloned().collect::<BTreeSet<_>>(), people);

    let tasks = kb.tasks();
    for t in &tasks {
        for p in &t.people {
            assert_eq!(kb.split_of(p), Some(t.split), "{}: {p}", t.id);
        }
        let other = if t.split == Split::Train { &heldout } else { &train };
        let text = format!("{}\n{}\n{}\n{}", t.question, t.answer, t.trace, t.tool_trace);
        for name in other {
            assert!(!mentions(&text, name), "{} mentions {name} of the other split", t.id);
        }
        if t.people.is_empty() {
            assert_eq!(t.split, Split::Train, "{}: a task about no person is a train task", t.id);
        }
    }
    let train_people = world::task_people(&kb.tasks_in(Split::Train));
    let heldout_people = world::task_people(&kb.tasks_in(Split::Heldout));
    assert!(train_people.is_disjoint(&heldout_people));
    assert_eq!((train_people.len(), heldout_people.len()), (100, 100));

    // The split type and the fraction are configurable.
    let kb = books(&KbConfig { split_type: Some("author".into()), heldout_fraction: 0.25, ..KbConfig::default() });
    assert_eq!(kb.people_per_split(), BTreeMap::from([("heldout".into(), 1), ("train".into(), 3)]));
    let held = kb.entities_in(Split::Heldout);
    for t in kb.tasks() {
        for p in &t.people {
            assert_eq!(kb.entity_type(p), Some("author"));
            assert_eq!(kb.split_of(p), Some(t.split));
        }
        if t.split == Split::Train {
            assert!(!mentions(&format!("{}\n{}\n{}", t.question, t.trace, t.tool_trace), &held[0]), "{}", t.id);
        }
    }

    // Held-out questions and worked answers are not in the training data.
    for kb in [world_kb(&w), books(&KbConfig::default())] {
        for r in [1, 5] {
            let report = kb.decontamination(r).unwrap();
            assert!(report.heldout_tasks > 0 && report.patterns == 3 * report.heldout_tasks);
            assert!(report.is_clean(), "{:?}", &report.hits[..report.hits.len().min(5)]);
        }
    }
}

fn written(kb: &dyn Knowledge, renderings: usize) -> (tempfile::TempDir, BTreeMap<&'static str, Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    kb.write(dir.path(), renderings).unwrap();
    let files = ["corpus.txt", "kb.jsonl", "tasks/train.jsonl", "tasks/heldout.jsonl", "world.json"];
    let bytes = files.into_iter().map(|f| (f, std::fs::read(dir.path().join(f)).unwrap())).collect();
    (dir, bytes)
}

#[test]
fn same_input_and_seed_give_the_same_bytes() {
    let config = KbConfig { seed: 9, ..KbConfig::default() };
    let (_a, a) = written(&books(&config), 5);
    let (_b, b) = written(&books(&config), 5);
    for (f, bytes) in &a {
        assert!(!bytes.is_empty(), "{f} is empty");
        assert_eq!(bytes, &b[f], "{f} differs");
    }
    // The order of the input lines does not matter, nor do exact repeats.
    let mut lines: Vec<&str> = BOOKS.lines().collect();
    lines.reverse();
    lines.push(lines[3]);
    let shuffled = KnowledgeBase::from_jsonl(&lines.join("\n"), &config).unwrap();
    let (_c, c) = written(&shuffled, 5);
    assert_eq!(a, c);
    // Another seed: the same knowledge and single-rendering corpus, another split and rendering.
    let other = books(&KbConfig { seed: 10, ..KbConfig::default() });
    let kb = books(&config);
    assert_eq!(other.kb_jsonl(), kb.kb_jsonl());
    assert_eq!(other.corpus(1).unwrap(), kb.corpus(1).unwrap());
    assert_ne!(other.corpus(5).unwrap(), kb.corpus(5).unwrap());
    let seeds: BTreeSet<Vec<String>> =
        (0..6).map(|seed| books(&KbConfig { seed, ..KbConfig::default() }).entities_in(Split::Heldout)).collect();
    assert!(seeds.len() > 1, "the split depends on the seed");

    // world.json of a knowledge base: the same fields as a world's, sizes replaced.
    let j: serde_json::Value = serde_json::from_slice(&a["world.json"]).unwrap();
    assert_eq!(j["seed"], 9);
    assert_eq!(j["renderings"], 5);
    assert_eq!(j["fact_count"], 21);
    assert_eq!(j["knowledge_sha256"], kb.knowledge_sha256());
    assert_eq!(j["corpus_sha256"], kb.corpus_sha256(5).unwrap());
    assert_eq!(j["people_per_split"]["heldout"], 3);
    assert!(j.get("sizes").is_none());
    assert_eq!(j["knowledge_base"]["split_type"], "book");
    assert_eq!(j["knowledge_base"]["subjects"], 12);
    assert_eq!(j["knowledge_base"]["entities"]["book"], 6);
    assert_eq!(j["knowledge_base"]["relations"]["author"], 6);
    let train = String::from_utf8(a["tasks/train.jsonl"].clone()).unwrap();
    let n: u64 = j["tasks"]["train"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(train.lines().count() as u64, n);
    assert_eq!(j["tasks_sha256"]["train"], world::sha256_hex(train.as_bytes()));
    let back: world::WorldSummary = serde_json::from_slice(&a["world.json"]).unwrap();
    assert_eq!(back, kb.summary(5).unwrap());
    assert_eq!(back.sizes, None);
}

#[test]
fn world_and_knowledge_base_share_the_knowledge_trait() {
    let w = World::generate(&WorldConfig { seed: 4, people: 40, ..WorldConfig::default() }).unwrap();
    let kb = world_kb(&w);
    let sources: [&dyn Knowledge; 2] = [&w, &kb];
    for k in sources {
        assert_eq!(k.facts().len(), w.facts().len());
        assert_eq!(k.knowledge_sha256(), world::sha256_hex(k.kb_jsonl().as_bytes()));
        assert_eq!(k.corpus(3).unwrap(), format!("{}\n", k.corpus_documents(3).unwrap().join("\n\n")));
        assert_eq!(k.corpus_sha256(3).unwrap(), world::sha256_hex(k.corpus(3).unwrap().as_bytes()));
        let (train, heldout) = (k.tasks_in(Split::Train), k.tasks_in(Split::Heldout));
        assert_eq!(train.len() + heldout.len(), k.tasks().len());
        assert_eq!(k.people_per_split().values().sum::<usize>(), 40);
        assert!(k.decontamination(2).unwrap().is_clean());
        let index = k.knowledge_index();
        assert!(heldout.iter().all(|t| t.check_trace(&index, &t.tool_trace).all_correct()));
    }
    // Through the trait, a world writes exactly what World::write writes, world.json unchanged.
    let (_a, a) = written(&w, 2);
    let b = tempfile::tempdir().unwrap();
    w.write(b.path(), 2).unwrap();
    for (f, bytes) in &a {
        assert_eq!(bytes, &std::fs::read(b.path().join(f)).unwrap(), "{f}");
    }
    let j: serde_json::Value = serde_json::from_slice(&a["world.json"]).unwrap();
    assert_eq!(j["sizes"]["people"], 40);
    assert!(j.get("knowledge_base").is_none());
    let count = |text: &str| text.split_whitespace().count() as u64;
    let dir = tempfile::tempdir().unwrap();
    let s = Knowledge::write_counted(&kb, dir.path(), 1, Some(&count)).unwrap();
    assert_eq!(s.corpus_tokens, Some(count(&kb.corpus(1).unwrap())));
}

#[test]
fn corpus_renders_every_fact_in_every_phrasing() {
    let kb = books(&KbConfig::default());
    let facts = kb.facts();
    // One rendering: one document per subject, template 0 in relation order.
    let docs = kb.corpus_documents(1).unwrap();
    assert_eq!(docs.len(), 12);
    let mut by_subject: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for f in &facts {
        by_subject.entry(&f.subject).or_default().push(fact_sentence(f));
    }
    let expected: Vec<String> = by_subject.values().map(|v| v.join(" ")).collect();
    assert_eq!(docs, expected);
    // Five renderings: each fact once in each of its five phrasings.
    let five = kb.corpus(5).unwrap();
    assert_eq!(kb.corpus_documents(5).unwrap().len(), 60);
    for f in &facts {
        let phrasings: BTreeSet<String> = (0..TEMPLATES_PER_RELATION).map(|t| fact_template_sentence(f, t)).collect();
        assert_eq!(phrasings.len(), TEMPLATES_PER_RELATION, "{f:?}");
        for p in &phrasings {
            assert!(five.contains(p.as_str()), "{p:?} is not in the corpus");
        }
    }
    assert!(matches!(kb.corpus(0), Err(WorldError::Renderings(0))));
}

#[test]
fn malformed_input_is_refused_with_line_numbers() {
    // Lines that are not triples: the import's own errors.
    let errs =
        import_errors("{\"subject\":\"A\",\"relation\":\"r\",\"object\":\"B\"}\nnot json\n{\"subject\":\"A\"}\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("line 2: not JSON"), "{errs:?}");
    assert!(errs[1].starts_with("line 3: missing field `relation`"), "{errs:?}");

    // Triples that are inconsistent: every problem, with both lines where two lines disagree.
    let text = [
        r#"{"subject":"Ada","relation":"friend","object":"Bo","subject_type":"person"}"#,
        r#"{"subject":"Ada","relation":"friend","object":"Cy"}"#,
        r#"{"subject":"Bo","relation":"age","object":"30","subject_type":"city"}"#,
        r#"{"subject":"Dee","relation":"friend","object":"Bo","object_type":"person"}"#,
        r#"{"subject":"dee","relation":"age","object":"31"}"#,
        r#"{"subject":"Eve","relation":"a,b","object":"Xo"}"#,
        r#"{"subject":"Eve","relation":"likes","object":"Answer: 3"}"#,
        r#"{"subject":"Fay","relation":"best_friend","object":"Bo"}"#,
        r#"{"subject":"Gus","relation":"best friend","object":"Bo"}"#,
        r#"{"subject":"Ada","relation":"friend","object":"Bo"}"#,
        r#"{"subject":"???","relation":"friend","object":"Bo"}"#,
        r#"{"subject":"Hal","relation":"friend","object":"Room #12"}"#,
    ]
    .join("\n");
    let errs = import_errors(&text);
    let starts: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        starts,
        ["lines 1 and 2", "lines 3 and 4", "lines 4 and 5", "line 6", "line 7", "lines 8 and 9", "line 11", "line 12"],
        "{errs:#?}"
    );
    assert!(errs[0].contains("`Ada` has two `friend` objects, `Bo` and `Cy`"), "{}", errs[0]);
    assert!(errs[1].contains("`Bo` has two types, `city` (line 3) and `person` (line 4)"), "{}", errs[1]);
    assert!(errs[2].contains("`Dee` and `dee`"), "{}", errs[2]);
    assert!(errs[3].contains("relation `a,b`"), "{}", errs[3]);
    assert!(errs[4].contains("`Answer: 3`"), "{}", errs[4]);
    assert!(errs[5].contains("`best_friend` and `best friend`"), "{}", errs[5]);
    assert!(errs[6].contains("`???`"), "{}", errs[6]);
    assert!(errs[7].contains("`Room #12` contains `#` and a digit"), "{}", errs[7]);
    let msg = KnowledgeBase::from_jsonl(&text, &KbConfig::default()).unwrap_err().to_string();
    assert!(msg.starts_with("bad triples: lines 1 and 2:"), "{msg}");

    // No facts at all.
    for empty in ["", "\n\n  \n"] {
        let errs = import_errors(empty);
        assert!(errs[0].starts_with("no facts"), "{errs:?}");
    }

    // Bad config values name the field.
    let field = |c: KbConfig| match KnowledgeBase::from_jsonl(BOOKS, &c) {
        Err(WorldError::Config { field, reason }) => (field, reason),
        other => panic!("expected a config error, got {other:?}"),
    };
    assert_eq!(field(KbConfig { heldout_fraction: 1.5, ..KbConfig::default() }).0, "heldout_fraction");
    assert_eq!(field(KbConfig { heldout_fraction: f64::NAN, ..KbConfig::default() }).0, "heldout_fraction");
    let (f, reason) = field(KbConfig { split_type: Some("planet".into()), ..KbConfig::default() });
    assert_eq!(f, "split_type");
    assert!(reason.contains("author, book, city"), "{reason}");
    let c: KbConfig = serde_json::from_str(r#"{"seed": 4}"#).unwrap();
    assert_eq!(c, KbConfig { seed: 4, ..KbConfig::default() });
    assert!(serde_json::from_str::<KbConfig>(r#"{"sede": 4}"#).is_err());
}
