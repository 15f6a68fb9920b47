//! Text sources for pretraining: the built-in corpus and plain-text files.
//!
//! The built-in corpus is generated, not shipped: short biographies of invented people
//! (syllable-built names, cities, years, occupations) in a few sentence templates, so that a
//! fresh checkout can pretrain with no download. It is a stand-in until a user brings text.

use std::path::Path;

use crate::error::{io_err, TrainError};

/// A small deterministic PRNG (SplitMix64) for data generation; no external state.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const ONSETS: &[&str] = &["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr"];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ei", "ou"];
const CODAS: &[&str] = &["", "n", "r", "s", "l", "k", "m"];
const JOBS: &[&str] =
    &["a baker", "a sailor", "a painter", "an engineer", "a teacher", "a doctor", "a farmer", "a poet"];

fn word(rng: &mut SplitMix, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(*rng.pick(ONSETS));
        w.push_str(*rng.pick(VOWELS));
    }
    w.push_str(*rng.pick(CODAS));
    let mut c = w.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// `n` short documents, fixed by `seed`.
pub fn builtin(seed: u64, n: usize) -> Vec<String> {
    let mut rng = SplitMix(seed);
    let cities: Vec<String> = (0..24).map(|_| word(&mut rng, 2)).collect();
    let firsts: Vec<String> = (0..30).map(|_| word(&mut rng, 2)).collect();
    let lasts: Vec<String> = (0..30).map(|_| word(&mut rng, 2)).collect();
    (0..n)
        .map(|_| {
            let name = format!("{} {}", rng.pick(&firsts), rng.pick(&lasts));
            let city = rng.pick(&cities);
            let home = rng.pick(&cities);
            let year = 1900 + rng.below(100);
            let job = rng.pick(JOBS);
            let kids = rng.below(5);
            let sentences = [
                format!("{name} was born in {city} in {year}."),
                format!("{name} worked as {job} in {home}."),
                format!("In {}, {name} moved to {home}.", year + 20 + rng.below(20)),
                format!("{name} had {kids} children."),
                format!("{} plus {} is {}.", year % 100, kids + 3, year % 100 + kids + 3),
            ];
            let mut order: Vec<usize> = (0..sentences.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            order.iter().map(|&i| sentences[i].as_str()).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// Documents of a text file, separated by blank lines.
pub fn from_file(path: &Path) -> Result<Vec<String>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, "cannot read corpus (must be UTF-8 text)", e))?;
    let docs: Vec<String> = text.split("\n\n").map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
    if docs.len() < 2 {
        return Err(TrainError::Data(format!(
            "{}: needs at least 2 documents separated by a blank line (one is held out for validation), found {}",
            path.display(),
            docs.len()
        )));
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_is_deterministic() {
        assert_eq!(super::builtin(3, 50), super::builtin(3, 50));
        assert_ne!(super::builtin(3, 50), super::builtin(4, 50));
    }
}
