//! Fictional stand-ins: a train example rewritten about people who do not exist, so that it can
//! only be answered by reading the context (a tool's result, a retrieved passage), never from
//! memory.
//!
//! Why: fine-tuned on the train people alone, a small model reproduces their tool calls and
//! their answers from memory (it has seen each many times) instead of learning to copy the
//! name from the question and the value from the tool's result; on held-out people it then
//! writes a train person's name into the call and a remembered year into `calc`. In a copy of
//! the example where every person is renamed to a fictional one (consistently: the same person
//! gets the same new name throughout), memory cannot help and copying is the only way to the
//! answer. No fact is added: a fictional person's facts appear only in tool results or passages
//! (context, weight 0 or prompt), and the rest of the knowledge base is untouched.
//!
//! Years move too: every year (a four-digit number from 1000 to 2999) in the copy is shifted by
//! one even offset, so a remembered year is wrong while every comparison, difference and parity
//! the example computes from years stays true (and the copy needs no recomputation).
//!
//! Fictional names recombine the first and last names of the knowledge's people (the world
//! draws names from such pools), never giving a name any entity has; which name a person gets,
//! and the year offset, are fixed by a hash of the seed, the example and the copy.

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

/// Renames people to fictional people.
pub struct Fictional {
    /// Real people's names, longest first (so a name is replaced before any name inside it).
    people: Vec<String>,
    firsts: Vec<String>,
    lasts: Vec<String>,
    /// Every entity name (subjects and objects), which a fictional name must not be.
    taken: BTreeSet<String>,
    seed: u64,
}

impl Fictional {
    /// From the people's names and every entity name of the knowledge. `None` when the names do
    /// not split into first and last names that can be recombined (fewer than two of each).
    pub fn new(people: &[String], entities: impl IntoIterator<Item = String>, seed: u64) -> Option<Self> {
        let mut firsts = BTreeSet::new();
        let mut lasts = BTreeSet::new();
        for p in people {
            let (f, l) = p.split_once(' ')?;
            firsts.insert(f.to_string());
            lasts.insert(l.to_string());
        }
        if firsts.len() < 2 || lasts.len() < 2 {
            return None;
        }
        let mut sorted: Vec<String> = people.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        sorted.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut taken: BTreeSet<String> = entities.into_iter().collect();
        taken.extend(people.iter().cloned());
        Some(Self {
            people: sorted,
            firsts: firsts.into_iter().collect(),
            lasts: lasts.into_iter().collect(),
            taken,
            seed,
        })
    }

    /// `texts` with every real person renamed, the same way in all of them: copy `copy` of
    /// example `id`. Texts that name nobody come back unchanged.
    pub fn rename(&self, id: &str, copy: usize, texts: &[&str]) -> Vec<String> {
        let mut names: HashMap<&str, String> = HashMap::new();
        let mut used: BTreeSet<String> = BTreeSet::new();
        for p in &self.people {
            if !texts.iter().any(|t| t.contains(p.as_str())) {
                continue;
            }
            let mut attempt = 0u64;
            let name = loop {
                let h = Sha256::digest(format!("fictional/{}/{id}/{copy}/{p}/{attempt}", self.seed).as_bytes());
                let word = |i: usize| u64::from_le_bytes(h[i * 8..i * 8 + 8].try_into().expect("8 bytes")) as usize;
                let candidate =
                    format!("{} {}", self.firsts[word(0) % self.firsts.len()], self.lasts[word(1) % self.lasts.len()]);
                if !self.taken.contains(&candidate) && !used.contains(&candidate) {
                    break candidate;
                }
                attempt += 1;
                if attempt > 10_000 {
                    // Every recombination is taken: leave this person as they are.
                    break p.clone();
                }
            };
            used.insert(name.clone());
            names.insert(p.as_str(), name);
        }
        let h = Sha256::digest(format!("fictional/{}/{id}/{copy}/years", self.seed).as_bytes());
        let draw = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
        // An even offset in ±2..=±40.
        let step = 2 * (1 + (draw % 20) as i64);
        let offset = if draw & (1 << 40) == 0 { step } else { -step };
        texts
            .iter()
            .map(|t| {
                // Two passes through placeholders, so a new name is never itself renamed.
                let mut out = shift_years(t, offset);
                for (i, p) in self.people.iter().enumerate() {
                    if names.contains_key(p.as_str()) {
                        out = out.replace(p.as_str(), &format!("\u{0}{i}\u{0}"));
                    }
                }
                for (i, p) in self.people.iter().enumerate() {
                    if let Some(n) = names.get(p.as_str()) {
                        out = out.replace(&format!("\u{0}{i}\u{0}"), n);
                    }
                }
                out
            })
            .collect()
    }
}

/// Most a year moves in [`Fictional::spread`].
pub const SPREAD: i64 = 80;

impl Fictional {
    /// A tool trace whose answer is its last `calc` result (a difference of years), with every
    /// year a `lookup` found moved by its own offset (in ±[`SPREAD`]) and every `calc` run again
    /// over the moved values ([`tools::calc`], references resolved): copy `copy` of example
    /// `id`. The one shared offset of [`Fictional::rename`] keeps every difference as it was, so
    /// copies alone never show the model a difference the train questions do not have (none of
    /// three digits, in the default world); here the differences spread over one to three
    /// digits, and copying the result into the answer has to work for any length.
    ///
    /// `None` when the trace's answer is not its last `calc` result, or when no draw (of 16)
    /// keeps every `calc` result a non-negative integer (an age is never negative).
    pub fn spread(&self, id: &str, copy: usize, tool_trace: &str) -> Option<String> {
        let lines: Vec<&str> = tool_trace.lines().collect();
        let (last, body) = lines.split_last()?;
        let answer = last.strip_prefix("Answer: ")?;
        let last_calc =
            body.iter().rev().filter_map(|l| tools::split_trace_line(l)).find(|(c, _)| c.starts_with("calc("))?;
        if last_calc.1 != answer {
            return None;
        }
        'draw: for attempt in 0..16u32 {
            let mut out: Vec<String> = Vec::new();
            let mut results: Vec<String> = Vec::new();
            let mut value = String::new();
            for (i, line) in body.iter().enumerate() {
                let Some((call, result)) = tools::split_trace_line(line) else { return None };
                let parsed = tools::parse_call(call).ok()?;
                let new = if parsed.name == "calc" {
                    let earlier: Vec<&str> = results.iter().map(String::as_str).collect();
                    let args = world::refs::resolve(parsed.args, &earlier).ok()?;
                    let v = tools::calc(&args).ok()?;
                    if v.parse::<i64>().map_or(v != "yes" && v != "no", |n| n < 0) {
                        continue 'draw;
                    }
                    value = v.clone();
                    v
                } else {
                    match result.parse::<i64>() {
                        Ok(y) if (1000..=2999).contains(&y) => {
                            let h = Sha256::digest(
                                format!("fictional/{}/{id}/{copy}/spread/{attempt}/{i}", self.seed).as_bytes(),
                            );
                            let draw = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
                            (y + (draw % (2 * SPREAD as u64 + 1)) as i64 - SPREAD).to_string()
                        }
                        _ => result.to_string(),
                    }
                };
                out.push(tools::protocol::format_trace_line(call, &new));
                results.push(new);
            }
            out.push(format!("Answer: {value}"));
            return Some(out.join("\n"));
        }
        None
    }
}

/// `text` with every year (a run of exactly four digits, 1000 to 2999) moved by `offset`.
pub fn shift_years(text: &str, offset: i64) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let run = &text[start..i];
            match run.parse::<i64>() {
                Ok(y) if run.len() == 4 && (1000..=2999).contains(&y) => out.push_str(&(y + offset).to_string()),
                _ => out.push_str(run),
            }
        } else {
            let c = text[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_renamed_consistently_to_names_nobody_has() {
        let people: Vec<String> = ["Ana Bel", "Teo Brandl", "Ana Brandl", "Ivo Kest", "Uma Zorn", "Eli Voss"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = Fictional::new(&people, ["Lormet".to_string(), "Teo Bel".to_string()], 1).unwrap();
        let q = "Who was born earlier, Ana Bel or Teo Brandl?";
        let trace = "lookup(Ana Bel, birth_year) -> 1950\nlookup(Teo Brandl, birth_year) -> 1960\nAnswer: Ana Bel";
        let out = f.rename("compare/x", 0, &[q, trace]);
        for real in &people {
            assert!(!out[0].contains(real.as_str()) && !out[1].contains(real.as_str()), "{out:?}");
        }
        assert!(!out[0].contains("Teo Bel"), "an entity's name is never given: {out:?}");
        // The same person has the same new name in the question, the calls and the answer.
        let first = out[0].trim_start_matches("Who was born earlier, ").split(" or ").next().unwrap().to_string();
        assert!(out[1].starts_with(&format!("lookup({first}, birth_year)")) && out[1].ends_with(&first), "{out:?}");
        // Reproducible; another copy draws other names; a text naming nobody, with no year, is unchanged.
        assert_eq!(f.rename("compare/x", 0, &[q, trace]), out);
        assert_ne!(f.rename("compare/x", 1, &[q, trace]), out);
        assert_eq!(f.rename("x", 0, &["Who lives in Lormet?"]), ["Who lives in Lormet?"]);
        // Years move by one even offset: differences, order and parity survive.
        let y = f.rename("arith/x", 0, &["calc(1972 - 1950) -> 22\ncalc(1950 % 2) -> 0 in 12345"]);
        let nums: Vec<i64> =
            y[0].split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        let (a, b) = (nums[0], nums[1]);
        assert_ne!(a, 1972);
        assert_eq!((a - b, nums[2], nums[4], b % 2, nums[6]), (22, 22, 2, 0, 12345), "{y:?}");
        assert_eq!(shift_years("1990, 19901, 2999 and 3000", 10), "2000, 19901, 3009 and 3000");
        // Spread: each looked-up year moves on its own, the calc and the answer follow.
        let t = "lookup(Ana Bel, employer) -> Okri Labs\nlookup(#1, founded) -> 1931\n\
                 lookup(Ana Bel, birth_year) -> 1950\ncalc(#3 - #2) -> 19\nAnswer: 19";
        let mut answers = BTreeSet::new();
        for copy in 0..40 {
            let s = f.spread("arith/y", copy, t).unwrap();
            let l: Vec<&str> = s.lines().collect();
            assert_eq!((l.len(), l[0]), (5, "lookup(Ana Bel, employer) -> Okri Labs"), "{s}");
            let num = |i: usize| l[i].rsplit_once(" -> ").unwrap().1.parse::<i64>().unwrap();
            let (f0, y) = (num(1), num(2));
            assert!((f0 - 1931).abs() <= SPREAD && (y - 1950).abs() <= SPREAD, "{s}");
            assert_eq!(
                (l[3], l[4]),
                (format!("calc(#3 - #2) -> {}", y - f0).as_str(), format!("Answer: {}", y - f0).as_str())
            );
            assert!(y >= f0, "never a negative age: {s}");
            answers.insert((y - f0).to_string().len());
        }
        assert_eq!(answers, BTreeSet::from([1, 2, 3]), "differences of every length");
        assert_eq!(f.spread("arith/y", 3, t), f.spread("arith/y", 3, t));
        // Not when the answer is not the last calc result.
        assert_eq!(
            f.spread("c", 0, "lookup(A, y) -> 1950\nlookup(B, y) -> 1960\ncalc(#1 < #2) -> yes\nAnswer: A"),
            None
        );
        assert_eq!(f.spread("r", 0, "lookup(A, y) -> 1950\nAnswer: 1950"), None);
        // Names that do not split into first and last names give no renamer.
        assert!(Fictional::new(&["Plato".to_string(), "Ana Bel".to_string()], [], 0).is_none());
    }
}
