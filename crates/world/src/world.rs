//! Entities, relations and facts, and the seeded generator [`World::generate`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::names::NameGen;
use crate::rng::SplitMix64;
use crate::{WorldConfig, WorldError};

/// Earliest and latest birth year of a person.
pub const BIRTH_YEARS: (u32, u32) = (1900, 1999);
/// Earliest and latest founding year of a company.
pub const FOUNDING_YEARS: (u32, u32) = (1850, 1990);

/// A country (it has no facts of its own; cities point to it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Country {
    /// Unique name.
    pub name: String,
}

/// A city.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct City {
    /// Unique name.
    pub name: String,
    /// Index into [`World::countries`].
    pub country: usize,
}

/// A university.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct University {
    /// Unique name.
    pub name: String,
    /// Index into [`World::cities`].
    pub city: usize,
}

/// A company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    /// Unique name.
    pub name: String,
    /// Index into [`World::cities`].
    pub hq_city: usize,
    /// Founding year, in [`FOUNDING_YEARS`].
    pub founded: u32,
}

/// A major (field of study).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Major {
    /// Unique name.
    pub name: String,
}

/// A person. First and last names come from pools, so only the pair is unique.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// First name (shared with other people).
    pub first: String,
    /// Last name (shared with other people).
    pub last: String,
    /// Birth year, in [`BIRTH_YEARS`].
    pub birth_year: u32,
    /// Index into [`World::cities`].
    pub birth_city: usize,
    /// Index into [`World::universities`].
    pub university: usize,
    /// Index into [`World::majors`].
    pub major: usize,
    /// Index into [`World::companies`].
    pub employer: usize,
    /// Index into [`World::people`]; never the person themself.
    pub mentor: usize,
}

impl Person {
    /// `"First Last"`, unique in the world.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

/// The kind of a fact's subject or object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    /// A person.
    Person,
    /// A city.
    City,
    /// A country.
    Country,
    /// A university.
    University,
    /// A company.
    Company,
    /// A major.
    Major,
    /// A year (a number).
    Year,
}

impl EntityType {
    /// The name used in `kb.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::City => "city",
            Self::Country => "country",
            Self::University => "university",
            Self::Company => "company",
            Self::Major => "major",
            Self::Year => "year",
        }
    }
}

/// The relations of the generated world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// person → year
    BirthYear,
    /// person → city
    BirthCity,
    /// person → university
    University,
    /// person → major
    Major,
    /// person → company
    Employer,
    /// person → person
    Mentor,
    /// city → country
    Country,
    /// university → city
    City,
    /// company → city
    Headquarters,
    /// company → year
    Founded,
}

impl Relation {
    /// Every relation, in the order facts are listed for one subject.
    pub const ALL: [Relation; 10] = [
        Self::BirthYear,
        Self::BirthCity,
        Self::University,
        Self::Major,
        Self::Employer,
        Self::Mentor,
        Self::Country,
        Self::City,
        Self::Headquarters,
        Self::Founded,
    ];
    /// The person relations, in biography order.
    pub const PERSON: [Relation; 6] =
        [Self::BirthYear, Self::BirthCity, Self::University, Self::Major, Self::Employer, Self::Mentor];

    /// The name used in triples and tool calls.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BirthYear => "birth_year",
            Self::BirthCity => "birth_city",
            Self::University => "university",
            Self::Major => "major",
            Self::Employer => "employer",
            Self::Mentor => "mentor",
            Self::Country => "country",
            Self::City => "city",
            Self::Headquarters => "headquarters",
            Self::Founded => "founded",
        }
    }

    /// The relation with this name, if it is one of the world's.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Type of the subject.
    pub fn subject_type(self) -> EntityType {
        match self {
            Self::BirthYear | Self::BirthCity | Self::University | Self::Major | Self::Employer | Self::Mentor => {
                EntityType::Person
            }
            Self::Country => EntityType::City,
            Self::City => EntityType::University,
            Self::Headquarters | Self::Founded => EntityType::Company,
        }
    }

    /// Type of the object.
    pub fn object_type(self) -> EntityType {
        match self {
            Self::BirthYear | Self::Founded => EntityType::Year,
            Self::BirthCity | Self::City | Self::Headquarters => EntityType::City,
            Self::University => EntityType::University,
            Self::Major => EntityType::Major,
            Self::Employer => EntityType::Company,
            Self::Mentor => EntityType::Person,
            Self::Country => EntityType::Country,
        }
    }
}

/// One fact: a `(subject, relation, object)` triple of strings (numbers as decimal text).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fact {
    /// Subject name.
    pub subject: String,
    /// Relation name (see [`Relation::as_str`]; imported knowledge may use any name).
    pub relation: String,
    /// Object name or number.
    pub object: String,
}

/// One line of `kb.jsonl`: a fact with its subject and object types.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbRecord {
    /// Subject name.
    pub subject: String,
    /// Relation name.
    pub relation: String,
    /// Object name or number.
    pub object: String,
    /// Subject type (`person`, `city`, ...).
    pub subject_type: String,
    /// Object type (`person`, `city`, `country`, `university`, `company`, `major`, `year`).
    pub object_type: String,
}

/// Which task split a person (and every task about them) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Question–answer training data may be about these people.
    Train,
    /// Evaluation only.
    Heldout,
}

impl Split {
    /// `"train"` or `"heldout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Heldout => "heldout",
        }
    }
}

/// A generated world. Indices in the entities point into the vectors here.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    /// The config it was generated from.
    pub config: WorldConfig,
    /// Countries.
    pub countries: Vec<Country>,
    /// Cities.
    pub cities: Vec<City>,
    /// Universities.
    pub universities: Vec<University>,
    /// Companies.
    pub companies: Vec<Company>,
    /// Majors.
    pub majors: Vec<Major>,
    /// People.
    pub people: Vec<Person>,
    /// The split of each person (parallel to `people`).
    pub splits: Vec<Split>,
}

/// Knowledge records as JSON lines, each ending in `\n` (the `kb.jsonl` format).
pub(crate) fn records_jsonl(records: &[KbRecord]) -> String {
    let mut s = String::new();
    for r in records {
        // Serialising a struct of strings cannot fail.
        s.push_str(&serde_json::to_string(r).unwrap_or_default());
        s.push('\n');
    }
    s
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `n` distinct (first, last) index pairs.
fn choose_pairs(rng: &mut SplitMix64, firsts: usize, lasts: usize, n: usize) -> Vec<(usize, usize)> {
    let total = firsts * lasts;
    if n * 2 <= total {
        let mut seen = HashSet::with_capacity(n);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let p = (rng.below(firsts), rng.below(lasts));
            if seen.insert(p) {
                out.push(p);
            }
        }
        out
    } else {
        let mut all: Vec<(usize, usize)> = (0..firsts).flat_map(|f| (0..lasts).map(move |l| (f, l))).collect();
        rng.shuffle(&mut all);
        all.truncate(n);
        all
    }
}

impl World {
    /// Generates the world of `config`; deterministic in `config` (seed and sizes).
    pub fn generate(config: &WorldConfig) -> Result<World, WorldError> {
        config.validate()?;
        let c = config;
        let mut rng = SplitMix64::stream(c.seed, "entities");
        let mut names = NameGen::default();

        let mut countries = Vec::with_capacity(c.countries);
        for _ in 0..c.countries {
            countries.push(Country { name: names.country(&mut rng)? });
        }
        let mut cities = Vec::with_capacity(c.cities);
        for i in 0..c.cities {
            let name = names.city(&mut rng)?;
            let country = if i < c.countries { i } else { rng.below(c.countries) };
            cities.push(City { name, country });
        }
        let mut universities = Vec::with_capacity(c.universities);
        for _ in 0..c.universities {
            let name = names.university(&mut rng)?;
            universities.push(University { name, city: rng.below(c.cities) });
        }
        let mut companies = Vec::with_capacity(c.companies);
        for _ in 0..c.companies {
            let name = names.company(&mut rng)?;
            let hq_city = rng.below(c.cities);
            let founded = rng.range_inclusive(FOUNDING_YEARS.0, FOUNDING_YEARS.1);
            companies.push(Company { name, hq_city, founded });
        }
        let mut majors = Vec::with_capacity(c.majors);
        for _ in 0..c.majors {
            majors.push(Major { name: names.major(&mut rng)? });
        }
        let mut firsts = Vec::with_capacity(c.first_name_pool);
        for _ in 0..c.first_name_pool {
            firsts.push(names.person_part(&mut rng, "first")?);
        }
        let mut lasts = Vec::with_capacity(c.last_name_pool);
        for _ in 0..c.last_name_pool {
            lasts.push(names.person_part(&mut rng, "last")?);
        }
        let pairs = choose_pairs(&mut rng, c.first_name_pool, c.last_name_pool, c.people);
        let mut people = Vec::with_capacity(c.people);
        for (i, (f, l)) in pairs.into_iter().enumerate() {
            let birth_year = rng.range_inclusive(BIRTH_YEARS.0, BIRTH_YEARS.1);
            let birth_city = rng.below(c.cities);
            let university = rng.below(c.universities);
            let major = rng.below(c.majors);
            let employer = rng.below(c.companies);
            // Uniform over the other people.
            let mut mentor = rng.below(c.people - 1);
            if mentor >= i {
                mentor += 1;
            }
            people.push(Person {
                first: firsts[f].clone(),
                last: lasts[l].clone(),
                birth_year,
                birth_city,
                university,
                major,
                employer,
                mentor,
            });
        }

        let mut order: Vec<usize> = (0..c.people).collect();
        SplitMix64::stream(c.seed, "split").shuffle(&mut order);
        let mut splits = vec![Split::Train; c.people];
        for &i in order.iter().take(c.heldout_people()) {
            splits[i] = Split::Heldout;
        }

        let world =
            World { config: config.clone(), countries, cities, universities, companies, majors, people, splits };
        let names = world.all_names();
        let distinct: HashSet<&String> = names.iter().collect();
        if distinct.len() != names.len() {
            return Err(WorldError::Internal("generated names are not unique".into()));
        }
        Ok(world)
    }

    /// Every entity name: countries, cities, universities, companies, majors, people's full names.
    pub fn all_names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        v.extend(self.countries.iter().map(|x| x.name.clone()));
        v.extend(self.cities.iter().map(|x| x.name.clone()));
        v.extend(self.universities.iter().map(|x| x.name.clone()));
        v.extend(self.companies.iter().map(|x| x.name.clone()));
        v.extend(self.majors.iter().map(|x| x.name.clone()));
        v.extend(self.people.iter().map(Person::full_name));
        v
    }

    /// Indices of the people in `split`, ascending.
    pub fn people_in(&self, split: Split) -> Vec<usize> {
        (0..self.people.len()).filter(|&i| self.splits[i] == split).collect()
    }

    /// The `(relation, object)` facts of person `i`, in biography order.
    pub(crate) fn person_facts(&self, i: usize) -> Vec<(Relation, String)> {
        let p = &self.people[i];
        vec![
            (Relation::BirthYear, p.birth_year.to_string()),
            (Relation::BirthCity, self.cities[p.birth_city].name.clone()),
            (Relation::University, self.universities[p.university].name.clone()),
            (Relation::Major, self.majors[p.major].name.clone()),
            (Relation::Employer, self.companies[p.employer].name.clone()),
            (Relation::Mentor, self.people[p.mentor].full_name()),
        ]
    }

    /// Every fact with its relation, grouped by subject: people, then cities, universities,
    /// companies (each in index order; within a subject, in [`Relation::ALL`] order).
    pub(crate) fn relation_facts(&self) -> Vec<(String, Relation, String)> {
        let mut out = Vec::new();
        for (i, p) in self.people.iter().enumerate() {
            let name = p.full_name();
            for (r, o) in self.person_facts(i) {
                out.push((name.clone(), r, o));
            }
        }
        for c in &self.cities {
            out.push((c.name.clone(), Relation::Country, self.countries[c.country].name.clone()));
        }
        for u in &self.universities {
            out.push((u.name.clone(), Relation::City, self.cities[u.city].name.clone()));
        }
        for c in &self.companies {
            out.push((c.name.clone(), Relation::Headquarters, self.cities[c.hq_city].name.clone()));
            out.push((c.name.clone(), Relation::Founded, c.founded.to_string()));
        }
        out
    }

    /// Every fact, in a fixed order (see `kb.jsonl`).
    pub fn facts(&self) -> Vec<Fact> {
        self.relation_facts()
            .into_iter()
            .map(|(subject, r, object)| Fact { subject, relation: r.as_str().to_string(), object })
            .collect()
    }

    /// Every fact with its types, in the order of [`World::facts`].
    pub fn kb_records(&self) -> Vec<KbRecord> {
        self.relation_facts()
            .into_iter()
            .map(|(subject, r, object)| KbRecord {
                subject,
                relation: r.as_str().to_string(),
                object,
                subject_type: r.subject_type().as_str().to_string(),
                object_type: r.object_type().as_str().to_string(),
            })
            .collect()
    }

    /// The knowledge as JSON lines `{"subject","relation","object","subject_type","object_type"}`,
    /// each line ending in `\n`.
    pub fn kb_jsonl(&self) -> String {
        records_jsonl(&self.kb_records())
    }

    /// SHA-256 (hex) of [`World::kb_jsonl`]: the knowledge hash that goes in every report.
    pub fn knowledge_sha256(&self) -> String {
        sha256_hex(self.kb_jsonl().as_bytes())
    }
}
