//! Reasoning tasks over the world: seven families, each with a gold answer, a verifier, a gold
//! reasoning trace and a tool trace.
//!
//! # Trace formats
//! A **gold trace** has one line per step and ends with `Answer: X`:
//! - a retrieved fact, in its canonical sentence ([`crate::fact_sentence`]), e.g.
//!   `Ilona Varsk was born in Lormet.`
//! - a computation: `A - B = C.` (also `+`, `*`), a comparison `A < B.` / `A > B.`, or a
//!   parity statement `N is even.` / `N is odd.`
//!
//! A **tool trace** has one call per line, `call -> result`, and ends with `Answer: X`:
//! - `lookup(<subject>, <relation>) -> <object>`
//! - `find(<relation>=<object>, <relation>=<object>, ...) -> <subject>[, <subject>...]`
//!   (every subject satisfying all conditions, in sorted order)
//! - `calc(<a> <op> <b>) -> <result>` with `op` one of `+ - * %` (an integer result) or `< >`
//!   (`yes`/`no`), or `calc(abs(<a> - <b>)) -> <difference>`
//!
//! An argument that an earlier call of the trace found is written as a reference to that call's
//! result, `#k` (the k-th call, from 1; [`crate::refs`]): `lookup(#1, country)`,
//! `calc(abs(#1 - #2))`. Names and numbers from the question are written out.
//!
//! # Splits
//! A task lists in `people` every person its question, trace or answer mentions; it is only
//! generated when all of them share one split, and that is the task's split. So no train task
//! even names a held-out person. The tasks of a [`crate::KnowledgeBase`] use the same formats
//! and rule, with the entities of its split type in place of people.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::corpus::{fact_sentence, render, templates};
use crate::rng::SplitMix64;
use crate::verify::Verifier;
use crate::world::{Fact, Relation, Split, World};

/// The task families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// One fact about a person.
    Recall,
    /// Two chained facts.
    TwoHop,
    /// Three (or, for the mentor's employer's country, four) chained facts.
    ThreeHop,
    /// Who was born earlier, A or B.
    Compare,
    /// Years between two birth years; age of the employer at the person's birth.
    Arithmetic,
    /// Was the person born in an even year.
    Parity,
    /// Who was born in YEAR in CITY (only where the answer is unique).
    Inverse,
}

impl Family {
    /// Every family, in task order.
    pub const ALL: [Family; 7] =
        [Self::Recall, Self::TwoHop, Self::ThreeHop, Self::Compare, Self::Arithmetic, Self::Parity, Self::Inverse];

    /// The family's name (`recall`, `two_hop`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recall => "recall",
            Self::TwoHop => "two_hop",
            Self::ThreeHop => "three_hop",
            Self::Compare => "compare",
            Self::Arithmetic => "arithmetic",
            Self::Parity => "parity",
            Self::Inverse => "inverse",
        }
    }

    /// The family with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// One question with everything needed to train on it and to grade it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Unique, stable id: `family/kind/p0012` or `family/kind/p0012-p0040` (person indices); for
    /// a knowledge base `family/relations/e0012[-e0040]` (entity indices in name order).
    pub id: String,
    /// The family.
    pub family: Family,
    /// The question text.
    pub question: String,
    /// The gold answer.
    pub answer: String,
    /// How an answer is graded.
    pub verifier: Verifier,
    /// Number of facts retrieved by the gold trace.
    pub hops: u32,
    /// The split (that of every person in `people`; train if `people` is empty).
    pub split: Split,
    /// Full names of every person the question, trace or answer mentions (for a knowledge base:
    /// every entity of its split type).
    pub people: Vec<String>,
    /// Gold reasoning trace (see the module docs), ending `Answer: X`.
    pub trace: String,
    /// Tool trace (see the module docs), ending `Answer: X`.
    pub tool_trace: String,
}

/// Accumulates the steps of a task's traces (shared by the world's tasks and those of a
/// [`crate::KnowledgeBase`]).
#[derive(Default)]
pub(crate) struct Chain {
    /// Gold-trace lines.
    pub(crate) text: Vec<String>,
    /// Tool-trace lines.
    pub(crate) tool: Vec<String>,
    /// Entities the task mentions (person indices for the world, entity indices for a knowledge
    /// base); they decide the task's split.
    pub(crate) people: Vec<usize>,
    /// Facts retrieved.
    pub(crate) hops: u32,
    /// The results of the tool calls so far, in order (`#1` is the first).
    pub(crate) results: Vec<String>,
}

impl Chain {
    pub(crate) fn with(people: &[usize]) -> Self {
        Self { people: people.to_vec(), ..Self::default() }
    }

    /// A retrieved world fact: its canonical sentence and a `lookup` call; returns the call's
    /// result number (for `#k`).
    fn fact(&mut self, rel: Relation, subject: &str, object: &str) -> usize {
        self.lookup(rel.as_str(), subject, object)
    }

    /// A retrieved fact of any relation: its canonical sentence ([`fact_sentence`]) and a
    /// `lookup` call, whose subject is a reference (`#k`, [`crate::refs`]) when an earlier call
    /// of the chain found it. Returns the call's result number.
    pub(crate) fn lookup(&mut self, relation: &str, subject: &str, object: &str) -> usize {
        let fact = Fact { subject: subject.to_string(), relation: relation.to_string(), object: object.to_string() };
        self.text.push(fact_sentence(&fact));
        let arg = match self.results.iter().rposition(|r| r == subject) {
            Some(i) => format!("#{}", i + 1),
            None => subject.to_string(),
        };
        self.tool.push(format!("lookup({arg}, {relation}) -> {object}"));
        self.results.push(object.to_string());
        self.hops += 1;
        self.results.len()
    }

    /// A computation step: its gold-trace sentence, and a `calc` call over `args` (which refer
    /// to earlier results by `#k`) giving `result`.
    pub(crate) fn calc(&mut self, text: String, args: String, result: String) {
        self.text.push(text);
        self.tool.push(format!("calc({args}) -> {result}"));
        self.results.push(result);
    }

    /// A `find` call (conditions from the question) and the subjects it gives.
    pub(crate) fn find(&mut self, args: String, result: String) {
        self.tool.push(format!("find({args}) -> {result}"));
        self.results.push(result);
    }
}

/// Trace lines followed by the final `Answer: X` line.
pub(crate) fn finish_trace(lines: Vec<String>, answer: &str) -> String {
    let mut s = lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s.push_str("Answer: ");
    s.push_str(answer);
    s
}

struct Gen<'a> {
    w: &'a World,
    tasks: Vec<Task>,
}

impl Gen<'_> {
    fn name(&self, i: usize) -> String {
        self.w.people[i].full_name()
    }

    fn city(&self, i: usize) -> &str {
        &self.w.cities[i].name
    }

    fn country_of_city(&self, c: usize) -> &str {
        &self.w.countries[self.w.cities[c].country].name
    }

    fn company(&self, i: usize) -> &str {
        &self.w.companies[i].name
    }

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
        let Some(&first) = chain.people.first() else { return };
        let split = self.w.splits[first];
        if chain.people.iter().any(|&p| self.w.splits[p] != split) {
            return;
        }
        let mut seen = HashSet::new();
        let people: Vec<String> = chain.people.iter().filter(|&&p| seen.insert(p)).map(|&p| self.name(p)).collect();
        let ids: Vec<String> = subjects.iter().map(|i| format!("p{i:04}")).collect();
        let trace = finish_trace(chain.text, &answer);
        let tool_trace = finish_trace(chain.tool, &answer);
        self.tasks.push(Task {
            id: format!("{}/{kind}/{}", family.as_str(), ids.join("-")),
            family,
            question,
            answer,
            verifier,
            hops: chain.hops,
            split,
            people,
            trace,
            tool_trace,
        });
    }

    fn recall(&mut self) {
        for i in 0..self.w.people.len() {
            let p = self.name(i);
            let m = self.w.people[i].mentor;
            for (rel, obj) in self.w.person_facts(i) {
                let (kind, question, verifier) = match rel {
                    Relation::BirthCity => ("birth_city", format!("What is the birth city of {p}?"), Verifier::Name),
                    Relation::BirthYear => ("birth_year", format!("In what year was {p} born?"), Verifier::Integer),
                    Relation::University => ("university", format!("Which university did {p} attend?"), Verifier::Name),
                    Relation::Major => ("major", format!("What did {p} major in?"), Verifier::Name),
                    Relation::Employer => ("employer", format!("Which company does {p} work for?"), Verifier::Name),
                    Relation::Mentor => ("mentor", format!("Who is {p}'s mentor?"), Verifier::Name),
                    _ => continue,
                };
                let mut chain = Chain::with(&[i]);
                if rel == Relation::Mentor {
                    chain.people.push(m);
                }
                chain.fact(rel, &p, &obj);
                self.emit(Family::Recall, kind, &[i], question, obj, verifier, chain);
            }
        }
    }

    fn two_hop(&mut self) {
        for i in 0..self.w.people.len() {
            let person = &self.w.people[i];
            let p = self.name(i);

            let city = self.city(person.birth_city).to_string();
            let country = self.country_of_city(person.birth_city).to_string();
            let mut chain = Chain::with(&[i]);
            chain.fact(Relation::BirthCity, &p, &city);
            chain.fact(Relation::Country, &city, &country);
            self.emit(
                Family::TwoHop,
                "birth_country",
                &[i],
                format!("In which country was {p} born?"),
                country,
                Verifier::Name,
                chain,
            );

            let m = person.mentor;
            let mname = self.name(m);
            let year = self.w.people[m].birth_year.to_string();
            let mut chain = Chain::with(&[i, m]);
            chain.fact(Relation::Mentor, &p, &mname);
            chain.fact(Relation::BirthYear, &mname, &year);
            self.emit(
                Family::TwoHop,
                "mentor_birth_year",
                &[i],
                format!("What year was {p}'s mentor born?"),
                year,
                Verifier::Integer,
                chain,
            );

            let company = self.company(person.employer).to_string();
            let hq = self.city(self.w.companies[person.employer].hq_city).to_string();
            let mut chain = Chain::with(&[i]);
            chain.fact(Relation::Employer, &p, &company);
            chain.fact(Relation::Headquarters, &company, &hq);
            self.emit(
                Family::TwoHop,
                "employer_city",
                &[i],
                format!("In which city is the headquarters of {p}'s employer?"),
                hq,
                Verifier::Name,
                chain,
            );
        }
    }

    fn three_hop(&mut self) {
        for i in 0..self.w.people.len() {
            let person = &self.w.people[i];
            let p = self.name(i);

            // employer -> headquarters -> country
            let e = person.employer;
            let company = self.company(e).to_string();
            let hq = self.w.companies[e].hq_city;
            let (hq_name, hq_country) = (self.city(hq).to_string(), self.country_of_city(hq).to_string());
            let mut chain = Chain::with(&[i]);
            chain.fact(Relation::Employer, &p, &company);
            chain.fact(Relation::Headquarters, &company, &hq_name);
            chain.fact(Relation::Country, &hq_name, &hq_country);
            self.emit(
                Family::ThreeHop,
                "employer_country",
                &[i],
                format!("In which country is the headquarters of {p}'s employer?"),
                hq_country,
                Verifier::Name,
                chain,
            );

            // mentor -> birth city -> country
            let m = person.mentor;
            let mname = self.name(m);
            let mc = self.w.people[m].birth_city;
            let (mc_name, mc_country) = (self.city(mc).to_string(), self.country_of_city(mc).to_string());
            let mut chain = Chain::with(&[i, m]);
            chain.fact(Relation::Mentor, &p, &mname);
            chain.fact(Relation::BirthCity, &mname, &mc_name);
            chain.fact(Relation::Country, &mc_name, &mc_country);
            self.emit(
                Family::ThreeHop,
                "mentor_birth_country",
                &[i],
                format!("In which country was {p}'s mentor born?"),
                mc_country,
                Verifier::Name,
                chain,
            );

            // mentor -> employer -> headquarters -> country (the WORLD.md example; 4 lookups)
            let me = self.w.people[m].employer;
            let mcompany = self.company(me).to_string();
            let mhq = self.w.companies[me].hq_city;
            let (mhq_name, mhq_country) = (self.city(mhq).to_string(), self.country_of_city(mhq).to_string());
            let mut chain = Chain::with(&[i, m]);
            chain.fact(Relation::Mentor, &p, &mname);
            chain.fact(Relation::Employer, &mname, &mcompany);
            chain.fact(Relation::Headquarters, &mcompany, &mhq_name);
            chain.fact(Relation::Country, &mhq_name, &mhq_country);
            self.emit(
                Family::ThreeHop,
                "mentor_employer_country",
                &[i],
                format!("In which country is the headquarters of {p}'s mentor's employer?"),
                mhq_country,
                Verifier::Name,
                chain,
            );
        }
    }

    /// Pairs of distinct people of the same split: each split's people in a seeded order,
    /// each paired with the next (cyclically); unordered duplicates dropped.
    fn pairs(&self, label: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for split in [Split::Train, Split::Heldout] {
            let mut v = self.w.people_in(split);
            if v.len() < 2 {
                continue;
            }
            SplitMix64::stream(self.w.config.seed, &format!("pairs/{label}/{}", split.as_str())).shuffle(&mut v);
            for k in 0..v.len() {
                let (a, b) = (v[k], v[(k + 1) % v.len()]);
                if seen.insert((a.min(b), a.max(b))) {
                    out.push((a, b));
                }
            }
        }
        out
    }

    fn compare(&mut self) {
        for (a, b) in self.pairs("compare") {
            let (ya, yb) = (self.w.people[a].birth_year, self.w.people[b].birth_year);
            if ya == yb {
                continue;
            }
            let (na, nb) = (self.name(a), self.name(b));
            let mut chain = Chain::with(&[a, b]);
            let ra = chain.fact(Relation::BirthYear, &na, &ya.to_string());
            let rb = chain.fact(Relation::BirthYear, &nb, &yb.to_string());
            let (sign, yes) = if ya < yb { ("<", "yes") } else { (">", "no") };
            chain.calc(format!("{ya} {sign} {yb}."), format!("#{ra} < #{rb}"), yes.to_string());
            let answer = if ya < yb { na.clone() } else { nb.clone() };
            self.emit(
                Family::Compare,
                "born_earlier",
                &[a, b],
                format!("Who was born earlier, {na} or {nb}?"),
                answer,
                Verifier::Name,
                chain,
            );
        }
    }

    fn arithmetic(&mut self) {
        for (a, b) in self.pairs("years_apart") {
            let (ya, yb) = (self.w.people[a].birth_year, self.w.people[b].birth_year);
            let (na, nb) = (self.name(a), self.name(b));
            let (hi, lo) = (ya.max(yb), ya.min(yb));
            let d = hi - lo;
            let mut chain = Chain::with(&[a, b]);
            let ra = chain.fact(Relation::BirthYear, &na, &ya.to_string());
            let rb = chain.fact(Relation::BirthYear, &nb, &yb.to_string());
            chain.calc(format!("{hi} - {lo} = {d}."), format!("abs(#{ra} - #{rb})"), d.to_string());
            self.emit(
                Family::Arithmetic,
                "years_apart",
                &[a, b],
                format!("How many years apart were {na} and {nb} born?"),
                d.to_string(),
                Verifier::Integer,
                chain,
            );
        }
        for i in 0..self.w.people.len() {
            let person = &self.w.people[i];
            let company = &self.w.companies[person.employer];
            if person.birth_year < company.founded {
                continue;
            }
            let p = self.name(i);
            let (y, f) = (person.birth_year, company.founded);
            let age = y - f;
            let mut chain = Chain::with(&[i]);
            chain.fact(Relation::Employer, &p, &company.name);
            let rf = chain.fact(Relation::Founded, &company.name, &f.to_string());
            let ry = chain.fact(Relation::BirthYear, &p, &y.to_string());
            chain.calc(format!("{y} - {f} = {age}."), format!("#{ry} - #{rf}"), age.to_string());
            self.emit(
                Family::Arithmetic,
                "employer_age",
                &[i],
                format!("How old was {p}'s employer when {p} was born?"),
                age.to_string(),
                Verifier::Integer,
                chain,
            );
        }
    }

    fn parity(&mut self) {
        for i in 0..self.w.people.len() {
            let p = self.name(i);
            let y = self.w.people[i].birth_year;
            let even = y & 1 == 0;
            let mut chain = Chain::with(&[i]);
            let r = chain.fact(Relation::BirthYear, &p, &y.to_string());
            chain.calc(
                format!("{y} is {}.", if even { "even" } else { "odd" }),
                format!("#{r} % 2"),
                (y % 2).to_string(),
            );
            self.emit(
                Family::Parity,
                "even_birth_year",
                &[i],
                format!("Was {p} born in an even year?"),
                if even { "yes" } else { "no" }.to_string(),
                Verifier::YesNo,
                chain,
            );
        }
    }

    fn inverse(&mut self) {
        let mut count: HashMap<(u32, usize), usize> = HashMap::new();
        for p in &self.w.people {
            *count.entry((p.birth_year, p.birth_city)).or_default() += 1;
        }
        for i in 0..self.w.people.len() {
            let person = &self.w.people[i];
            if count.get(&(person.birth_year, person.birth_city)) != Some(&1) {
                continue;
            }
            let p = self.name(i);
            let y = person.birth_year.to_string();
            let city = self.city(person.birth_city).to_string();
            let mut chain = Chain::with(&[i]);
            chain.text.push(render(templates(Relation::BirthYear)[0], &p, &y));
            chain.text.push(render(templates(Relation::BirthCity)[0], &p, &city));
            chain.find(format!("birth_year={y}, birth_city={city}"), p.clone());
            chain.hops = 2;
            self.emit(
                Family::Inverse,
                "born_year_city",
                &[i],
                format!("Who was born in {y} in {city}?"),
                p,
                Verifier::Name,
                chain,
            );
        }
    }
}

impl World {
    /// Every task, in a fixed order: by family ([`Family::ALL`]), then by person.
    pub fn tasks(&self) -> Vec<Task> {
        let mut g = Gen { w: self, tasks: Vec::new() };
        g.recall();
        g.two_hop();
        g.three_hop();
        g.compare();
        g.arithmetic();
        g.parity();
        g.inverse();
        g.tasks
    }

    /// The tasks of one split, in [`World::tasks`] order.
    pub fn tasks_in(&self, split: Split) -> Vec<Task> {
        self.tasks().into_iter().filter(|t| t.split == split).collect()
    }
}

/// Names of the people in `tasks`, as a set (for decontamination checks).
pub fn task_people(tasks: &[Task]) -> BTreeSet<String> {
    tasks.iter().flat_map(|t| t.people.iter().cloned()).collect()
}
