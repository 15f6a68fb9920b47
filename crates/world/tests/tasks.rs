//! Tasks, splits, traces and verifiers.

use std::collections::{BTreeMap, HashMap, HashSet};

use world::{extract_answer, Family, Split, Task, Verifier, World, WorldConfig};

fn world(seed: u64) -> World {
    World::generate(&WorldConfig { seed, ..WorldConfig::default() }).unwrap()
}

#[test]
fn families_counts_and_ids() {
    let w = world(0);
    let tasks = w.tasks();
    assert!((1000..10_000).contains(&tasks.len()), "{} tasks", tasks.len());
    let mut per: BTreeMap<(&str, Split), usize> = BTreeMap::new();
    for t in &tasks {
        *per.entry((t.family.as_str(), t.split)).or_default() += 1;
    }
    for f in Family::ALL {
        for s in [Split::Train, Split::Heldout] {
            assert!(per.get(&(f.as_str(), s)).copied().unwrap_or(0) >= 20, "{f:?} {s:?}: {per:?}");
        }
    }
    let names: Vec<&str> = Family::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(names, ["recall", "two_hop", "three_hop", "compare", "arithmetic", "parity", "inverse"]);
    let ids: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), tasks.len(), "task ids are unique");
    for t in &tasks {
        assert!(t.id.starts_with(t.family.as_str()));
        assert!(t.trace.ends_with(&format!("Answer: {}", t.answer)));
        assert!(t.tool_trace.ends_with(&format!("Answer: {}", t.answer)));
        assert!(t.hops >= 1);
        let expected_hops = match t.family {
            Family::Recall | Family::Parity => 1..=1,
            Family::TwoHop | Family::Compare | Family::Inverse => 2..=2,
            Family::ThreeHop => 3..=4,
            Family::Arithmetic => 2..=3,
        };
        assert!(expected_hops.contains(&t.hops), "{t:?}");
        let json = serde_json::to_string(t).unwrap();
        assert!(json.contains(&format!("\"family\":\"{}\"", t.family.as_str())));
        assert!(json.contains(&format!("\"split\":\"{}\"", t.split.as_str())));
        assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), *t);
    }
}

#[test]
fn every_gold_trace_and_tool_trace_verifies_step_by_step() {
    for seed in [0, 7] {
        let w = world(seed);
        let kb = w.knowledge_index();
        for t in w.tasks() {
            for trace in [&t.trace, &t.tool_trace] {
                let c = t.check_trace(&kb, trace);
                assert!(c.all_correct(), "{c:?}\n{}\n{trace}", t.id);
                assert!(c.steps as u32 >= t.hops.min(1));
            }
            assert_eq!(t.check_trace(&kb, &t.trace).steps, t.trace.lines().count() - 1);
            assert_eq!(extract_answer(&t.trace).as_deref(), Some(t.answer.as_str()));
            assert!(t.is_correct(&t.trace));
            assert!(t.is_correct(&t.answer));
            assert!(t.verifier.check(&t.answer, &t.answer.to_uppercase()));
        }
    }
}

#[test]
fn corrupted_trace_steps_are_caught() {
    let w = world(1);
    let kb = w.knowledge_index();
    let tasks = w.tasks();
    let t = tasks.iter().find(|t| t.family == Family::TwoHop).unwrap();
    let other_city = w.cities.iter().map(|c| c.name.as_str()).find(|c| !t.trace.contains(c)).unwrap();
    // Replace the bridge city in the first step only.
    let first = t.trace.lines().next().unwrap();
    let bridge = first.rsplit(" was born in ").next().unwrap().trim_end_matches('.');
    let bad = t.trace.replacen(first, &first.replace(bridge, other_city), 1);
    let c = t.check_trace(&kb, &bad);
    assert_eq!((c.steps, c.correct_steps, c.final_ok), (2, 1, true), "{bad}");
    // A wrong computation is caught too.
    let a = tasks.iter().find(|t| t.id.contains("employer_age")).unwrap();
    let calc = a.trace.lines().rev().nth(1).unwrap();
    let bad = a.trace.replace(calc, &calc.replace(" = ", " = 1"));
    let c = a.check_trace(&kb, &bad);
    assert_eq!(c.correct_steps + 1, c.steps, "{bad}");
    // The tool trace with a wrong lookup result.
    let bad = t.tool_trace.replacen(bridge, other_city, 1);
    assert!(!t.check_trace(&kb, &bad).all_correct());
    // Garbage is a wrong step, no answer is a wrong answer.
    let c = t.check_trace(&kb, "blah blah.\nstill nothing");
    assert_eq!((c.steps, c.correct_steps, c.final_ok), (2, 0, false));
}

#[test]
fn every_verifier_rejects_a_wrong_answer() {
    let w = world(2);
    let tasks = w.tasks();
    let mut by_kind: HashMap<(Family, Verifier), Vec<&Task>> = HashMap::new();
    for t in &tasks {
        by_kind.entry((t.family, t.verifier)).or_default().push(t);
    }
    for t in &tasks {
        // Another task's answer of the same family and verifier, when it differs.
        let wrong = by_kind[&(t.family, t.verifier)]
            .iter()
            .map(|o| o.answer.as_str())
            .find(|a| world::normalize_name(a) != world::normalize_name(&t.answer));
        if let Some(wrong) = wrong {
            assert!(!t.is_correct(wrong), "{} accepted {wrong}", t.id);
            assert!(!t.is_correct(&format!("Answer: {wrong}")));
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

fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[test]
fn splits_are_disjoint_and_tasks_respect_them() {
    let w = world(3);
    let heldout = w.people_in(Split::Heldout);
    let train = w.people_in(Split::Train);
    assert_eq!(heldout.len(), 100);
    assert_eq!(train.len(), 100);
    let name_split: HashMap<String, Split> =
        w.people.iter().enumerate().map(|(i, p)| (p.full_name(), w.splits[i])).collect();
    let tasks = w.tasks();
    for t in &tasks {
        assert!(!t.people.is_empty());
        for p in &t.people {
            assert_eq!(name_split[p], t.split, "{}: {p}", t.id);
        }
        // No person of the other split is even mentioned.
        let text = format!("{}\n{}\n{}\n{}", t.question, t.answer, t.trace, t.tool_trace);
        for (name, s) in &name_split {
            if *s != t.split {
                assert!(!mentions(&text, name), "{} mentions {name}", t.id);
            }
        }
    }
    let train_people = world::task_people(&w.tasks_in(Split::Train));
    let heldout_people = world::task_people(&w.tasks_in(Split::Heldout));
    assert!(train_people.is_disjoint(&heldout_people));
    assert_eq!(train_people.len(), 100);
    assert_eq!(heldout_people.len(), 100);
    // Two-person tasks pair people of one split.
    for t in tasks.iter().filter(|t| t.family == Family::Compare || t.id.contains("years_apart")) {
        assert_eq!(t.people.len(), 2);
    }
    // The fraction is configurable.
    let w = World::generate(&WorldConfig { heldout_fraction: 0.25, ..WorldConfig::default() }).unwrap();
    assert_eq!(w.people_in(Split::Heldout).len(), 50);
}

#[test]
fn inverse_answers_are_unique_and_compare_has_no_ties() {
    let w = world(4);
    for t in w.tasks() {
        match t.family {
            Family::Inverse => {
                let i = w.people.iter().position(|p| p.full_name() == t.answer).unwrap();
                let (y, c) = (w.people[i].birth_year, w.people[i].birth_city);
                let q = format!("Who was born in {y} in {}?", w.cities[c].name);
                assert_eq!(t.question, q);
                let n = w.people.iter().filter(|p| p.birth_year == y && p.birth_city == c).count();
                assert_eq!(n, 1, "{}", t.id);
            }
            Family::Compare => {
                let years: Vec<u32> = t
                    .people
                    .iter()
                    .map(|n| w.people.iter().find(|p| &p.full_name() == n).unwrap().birth_year)
                    .collect();
                assert_ne!(years[0], years[1]);
                let earliest = if years[0] < years[1] { &t.people[0] } else { &t.people[1] };
                assert_eq!(&t.answer, earliest);
            }
            Family::Arithmetic if t.id.contains("employer_age") => {
                assert!(t.answer.parse::<i64>().unwrap() >= 0);
            }
            Family::Parity => assert!(t.answer == "yes" || t.answer == "no"),
            _ => {}
        }
    }
}

#[test]
fn example_trace_shapes() {
    let w = world(0);
    let tasks = w.tasks();
    let t = tasks.iter().find(|t| t.id.starts_with("two_hop/birth_country/")).unwrap();
    let p = &w.people[0];
    let city = &w.cities[p.birth_city];
    let country = &w.countries[city.country].name;
    assert_eq!(t.question, format!("In which country was {} born?", p.full_name()));
    assert_eq!(
        t.trace,
        format!("{} was born in {}.\n{} is in {country}.\nAnswer: {country}", p.full_name(), city.name, city.name)
    );
    assert_eq!(
        t.tool_trace,
        format!(
            "lookup({}, birth_city) -> {}\nlookup(#1, country) -> {country}\nAnswer: {country}",
            p.full_name(),
            city.name,
        )
    );
    // The employer's founding year and the birth year, subtracted by reference.
    let a = tasks.iter().find(|t| t.id.contains("employer_age")).unwrap();
    assert!(a.trace.lines().rev().nth(1).unwrap().contains(" - "));
    let lines: Vec<&str> = a.tool_trace.lines().collect();
    assert!(lines[0].contains(", employer) -> ") && lines[1].starts_with("lookup(#1, founded) -> "), "{lines:?}");
    assert_eq!(lines[3], format!("calc(#3 - #2) -> {}", a.answer));
}
