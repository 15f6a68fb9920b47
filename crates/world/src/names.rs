//! Syllable-built names (not real names), unique across every kind of entity.

use std::collections::HashSet;

use crate::rng::SplitMix64;
use crate::WorldError;

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr", "tr", "st",
    "sk", "th", "sh",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "a", "e", "o"];
const CODAS: &[&str] = &["", "", "", "n", "r", "l", "s", "k", "m", "t", "nd", "rk"];
const COUNTRY_ENDINGS: &[&str] = &["ria", "land", "nia", "vora", "lia", "mark"];
const UNIVERSITY_WORDS: &[&str] = &["University", "Institute", "College", "Academy"];
const COMPANY_WORDS: &[&str] = &["Works", "Labs", "Industries", "Group", "Systems", "Holdings", "Foundry", "Motors"];
const MAJOR_ENDINGS: &[&str] = &["logy", "nomics", "graphy", "tics"];

/// Hands out names; a word (stem) is never used twice, whatever the kind, so every name in the
/// world is unique.
#[derive(Default)]
pub(crate) struct NameGen {
    used: HashSet<String>,
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A lowercase word of `syllables` consonant–vowel syllables, optionally ending in a coda.
/// The first syllable may start with a vowel.
fn word(rng: &mut SplitMix64, syllables: usize, coda: bool) -> String {
    let mut w = String::new();
    for i in 0..syllables {
        if i > 0 || rng.below(5) != 0 {
            w.push_str(rng.pick(ONSETS));
        }
        w.push_str(rng.pick(VOWELS));
    }
    if coda {
        w.push_str(rng.pick(CODAS));
    }
    w
}

impl NameGen {
    /// Draws candidates from `make(rng, syllables)` (a `(stem, name)` pair) until the stem is
    /// new; grows the syllable count if the space gets crowded.
    fn fresh(
        &mut self,
        rng: &mut SplitMix64,
        kind: &'static str,
        make: impl Fn(&mut SplitMix64, usize) -> (String, String),
    ) -> Result<String, WorldError> {
        for attempt in 0..400_000usize {
            let syllables = 2 + (attempt / 4_000).min(3);
            let (stem, name) = make(rng, syllables);
            if stem.len() >= 4 && self.used.insert(stem) {
                return Ok(name);
            }
        }
        Err(WorldError::Names { kind })
    }

    pub(crate) fn country(&mut self, rng: &mut SplitMix64) -> Result<String, WorldError> {
        self.fresh(rng, "country", |r, n| {
            let w = format!("{}{}", word(r, n, false), r.pick(COUNTRY_ENDINGS));
            (w.clone(), capitalise(&w))
        })
    }

    pub(crate) fn city(&mut self, rng: &mut SplitMix64) -> Result<String, WorldError> {
        self.fresh(rng, "city", |r, n| {
            let w = word(r, n, true);
            (w.clone(), capitalise(&w))
        })
    }

    pub(crate) fn university(&mut self, rng: &mut SplitMix64) -> Result<String, WorldError> {
        self.fresh(rng, "university", |r, n| {
            let w = word(r, n, true);
            let name = format!("{} {}", capitalise(&w), r.pick(UNIVERSITY_WORDS));
            (w, name)
        })
    }

    pub(crate) fn company(&mut self, rng: &mut SplitMix64) -> Result<String, WorldError> {
        self.fresh(rng, "company", |r, n| {
            let w = word(r, n, true);
            let name = format!("{} {}", capitalise(&w), r.pick(COMPANY_WORDS));
            (w, name)
        })
    }

    pub(crate) fn major(&mut self, rng: &mut SplitMix64) -> Result<String, WorldError> {
        self.fresh(rng, "major", |r, n| {
            let w = format!("{}{}", word(r, n, false), r.pick(MAJOR_ENDINGS));
            (w.clone(), capitalise(&w))
        })
    }

    /// A first or last name (one word).
    pub(crate) fn person_part(&mut self, rng: &mut SplitMix64, kind: &'static str) -> Result<String, WorldError> {
        self.fresh(rng, kind, |r, n| {
            let w = word(r, n, true);
            (w.clone(), capitalise(&w))
        })
    }
}
