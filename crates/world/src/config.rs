//! The world's size and seed: [`WorldConfig`].

use serde::{Deserialize, Serialize};

use crate::WorldError;

/// Most entities of one named kind (countries, cities, ..., each name pool).
pub const MAX_NAMED: usize = 20_000;
/// Most people in one world.
pub const MAX_PEOPLE: usize = 1_000_000;

/// How big a world to generate, and from which seed. Every field has a default (the
/// recommended preset of `WORLD.md`), so a config file only names what it changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// Seed of every random choice: the same seed (and sizes) gives the same world, byte for byte.
    pub seed: u64,
    /// Number of countries; every country has at least one city.
    pub countries: usize,
    /// Number of cities, each in exactly one country (at least `countries`).
    pub cities: usize,
    /// Number of universities, each in one city.
    pub universities: usize,
    /// Number of companies, each with a headquarters city and a founding year (1850–1990).
    pub companies: usize,
    /// Number of majors (fields of study).
    pub majors: usize,
    /// Number of people; each full name (first + last) is unique.
    pub people: usize,
    /// Size of the first-name pool; first names repeat across people.
    pub first_name_pool: usize,
    /// Size of the last-name pool; last names repeat across people.
    pub last_name_pool: usize,
    /// Renderings of each biography/description in the corpus (1 = one fixed template per
    /// relation and a fixed sentence order; more = templates and order varied, seeded).
    pub renderings: usize,
    /// Fraction of people (rounded) whose question–answer tasks form the held-out split.
    pub heldout_fraction: f64,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            countries: 10,
            cities: 40,
            universities: 15,
            companies: 30,
            majors: 12,
            people: 200,
            first_name_pool: 25,
            last_name_pool: 25,
            renderings: 5,
            heldout_fraction: 0.5,
        }
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> WorldError {
    WorldError::Config { field, reason: reason.into() }
}

impl WorldConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), WorldError> {
        let named: [(&'static str, usize); 7] = [
            ("countries", self.countries),
            ("cities", self.cities),
            ("universities", self.universities),
            ("companies", self.companies),
            ("majors", self.majors),
            ("first_name_pool", self.first_name_pool),
            ("last_name_pool", self.last_name_pool),
        ];
        for (field, n) in named {
            if n == 0 {
                return Err(bad(field, "must be at least 1"));
            }
            if n > MAX_NAMED {
                return Err(bad(field, format!("{n} is more than the supported {MAX_NAMED}")));
            }
        }
        if self.cities < self.countries {
            return Err(bad(
                "cities",
                format!("{} cities cannot cover {} countries (each country needs a city)", self.cities, self.countries),
            ));
        }
        if self.people < 2 {
            return Err(bad("people", "must be at least 2 (everyone has a mentor who is someone else)"));
        }
        if self.people > MAX_PEOPLE {
            return Err(bad("people", format!("{} is more than the supported {MAX_PEOPLE}", self.people)));
        }
        let pairs = self.first_name_pool.saturating_mul(self.last_name_pool);
        if self.people > pairs {
            return Err(bad(
                "people",
                format!(
                    "{} people need unique full names but first_name_pool × last_name_pool = {} × {} = {pairs}",
                    self.people, self.first_name_pool, self.last_name_pool
                ),
            ));
        }
        if self.renderings == 0 {
            return Err(bad("renderings", "must be at least 1"));
        }
        if !self.heldout_fraction.is_finite() || !(0.0..=1.0).contains(&self.heldout_fraction) {
            return Err(bad("heldout_fraction", format!("{} is not in [0, 1]", self.heldout_fraction)));
        }
        Ok(())
    }

    /// Number of held-out people (`heldout_fraction × people`, rounded).
    pub fn heldout_people(&self) -> usize {
        ((self.heldout_fraction * self.people as f64).round() as usize).min(self.people)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(c: &WorldConfig) -> &'static str {
        match c.validate() {
            Err(WorldError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn default_is_valid_and_bad_fields_are_named() {
        WorldConfig::default().validate().unwrap();
        let d = WorldConfig::default();
        assert_eq!(field_of(&WorldConfig { cities: 5, ..d.clone() }), "cities");
        assert_eq!(field_of(&WorldConfig { majors: 0, ..d.clone() }), "majors");
        assert_eq!(field_of(&WorldConfig { people: 1, ..d.clone() }), "people");
        assert_eq!(field_of(&WorldConfig { people: 700, ..d.clone() }), "people");
        assert_eq!(field_of(&WorldConfig { renderings: 0, ..d.clone() }), "renderings");
        assert_eq!(field_of(&WorldConfig { heldout_fraction: 1.5, ..d.clone() }), "heldout_fraction");
        assert_eq!(field_of(&WorldConfig { heldout_fraction: f64::NAN, ..d.clone() }), "heldout_fraction");
        let msg = WorldConfig { people: 700, ..d }.validate().unwrap_err().to_string();
        assert!(msg.contains("people") && msg.contains("625"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_rejected_and_missing_fields_default() {
        let c: WorldConfig = serde_json::from_str(r#"{"seed": 3}"#).unwrap();
        assert_eq!(c, WorldConfig { seed: 3, ..WorldConfig::default() });
        assert!(serde_json::from_str::<WorldConfig>(r#"{"sede": 3}"#).is_err());
    }
}
