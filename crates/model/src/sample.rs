//! Choosing the next token from logits: greedy, or sampling with temperature, top-k, top-p
//! (nucleus) and min-p, from a seeded per-sequence random stream.
//!
//! Order of the filters, as in llama.cpp and Hugging Face: logits are divided by the
//! temperature, then top-k keeps the `k` largest, the softmax is taken over what is left, min-p
//! drops tokens whose probability is below `min_p` times the largest, top-p keeps the smallest
//! set of most likely tokens whose mass reaches `top_p`, and the survivors are renormalised and
//! sampled. Ties are broken by the lower token id everywhere, so a choice never depends on sort
//! stability.
//!
//! Reproducibility: every sequence draws from its own ChaCha8 stream, keyed by the run's seed
//! and the sequence's stream number (see [`Sampling::rng`]). A sequence's tokens therefore do
//! not depend on which other sequences share its batch or on the number of threads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the next token is chosen. The default is greedy decoding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    /// Softmax temperature; 0 means greedy (argmax, lowest id on ties).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = no limit).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1 = all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0 = none).
    pub min_p: f32,
    /// Seed of the random streams.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 0 }
    }
}

impl Sampling {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self::default()
    }

    /// Sampling at `temperature` with no other filter.
    pub fn temperature(temperature: f32, seed: u64) -> Self {
        Self { temperature, seed, ..Self::default() }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(format!("temperature must be a finite number ≥ 0, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        Ok(())
    }

    /// The random stream of sequence number `stream`.
    pub fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream);
        rng
    }

    /// The next token for one row of `logits`.
    pub fn pick(&self, logits: &[f32], rng: &mut ChaCha8Rng) -> u32 {
        if self.is_greedy() || logits.len() <= 1 {
            return argmax(logits);
        }
        // Candidates sorted by logit, descending; lower id first on ties.
        let mut idx: Vec<u32> = (0..logits.len() as u32).filter(|&i| logits[i as usize].is_finite()).collect();
        if idx.is_empty() {
            return argmax(logits);
        }
        idx.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
        if self.top_k > 0 && idx.len() > self.top_k {
            idx.truncate(self.top_k);
        }
        let t = self.temperature as f64;
        let top = logits[idx[0] as usize] as f64 / t;
        let mut probs: Vec<f64> = idx.iter().map(|&i| (logits[i as usize] as f64 / t - top).exp()).collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        if self.min_p > 0.0 {
            let floor = self.min_p as f64 * probs[0];
            let keep = probs.iter().take_while(|&&p| p >= floor).count().max(1);
            idx.truncate(keep);
            probs.truncate(keep);
        }
        if self.top_p < 1.0 {
            let (mut mass, mut keep) = (0.0, 0);
            for p in &probs {
                mass += p;
                keep += 1;
                if mass >= self.top_p as f64 {
                    break;
                }
            }
            idx.truncate(keep);
            probs.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let mut u = rng.random::<f64>() * total;
        for (&i, &p) in idx.iter().zip(&probs) {
            if u < p {
                return i;
            }
            u -= p;
        }
        *idx.last().expect("at least one candidate")
    }
}

/// Index of the largest value, the lowest index on ties; NaN never wins.
pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] || xs[best].is_nan() && !x.is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(s: &Sampling, logits: &[f32], n: usize) -> Vec<usize> {
        let mut rng = s.rng(0);
        let mut c = vec![0; logits.len()];
        for _ in 0..n {
            c[s.pick(logits, &mut rng) as usize] += 1;
        }
        c
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0]), 1);
        assert_eq!(Sampling::greedy().pick(&[0.0, 3.0, 1.0], &mut Sampling::greedy().rng(0)), 1);
    }

    #[test]
    fn temperature_sampling_follows_the_softmax() {
        // p = softmax([ln 1, ln 2, ln 7]) = [0.1, 0.2, 0.7].
        let logits = [1f32.ln(), 2f32.ln(), 7f32.ln()];
        let c = counts(&Sampling::temperature(1.0, 7), &logits, 20_000);
        for (got, want) in c.iter().zip([0.1, 0.2, 0.7]) {
            let f = *got as f64 / 20_000.0;
            assert!((f - want).abs() < 0.015, "{c:?}");
        }
    }

    #[test]
    fn filters_cut_the_tail() {
        let logits = [1f32.ln(), 2f32.ln(), 3f32.ln(), 4f32.ln()]; // p = .1 .2 .3 .4
        let top_k = Sampling { top_k: 2, ..Sampling::temperature(1.0, 1) };
        let c = counts(&top_k, &logits, 5000);
        assert_eq!((c[0], c[1]), (0, 0), "{c:?}");
        assert!(c[2] > 1500 && c[3] > 1500, "{c:?}");
        // top_p 0.6: .4 + .3 reaches it, so ids 2 and 3 survive.
        let top_p = Sampling { top_p: 0.6, ..Sampling::temperature(1.0, 1) };
        let c = counts(&top_p, &logits, 5000);
        assert_eq!((c[0], c[1]), (0, 0), "{c:?}");
        // min_p 0.6: floor .24, so only .3 and .4 survive.
        let min_p = Sampling { min_p: 0.6, ..Sampling::temperature(1.0, 1) };
        let c = counts(&min_p, &logits, 5000);
        assert_eq!((c[0], c[1]), (0, 0), "{c:?}");
        assert!(c[2] > 1500, "{c:?}");
    }

    #[test]
    fn a_stream_is_reproducible_and_streams_differ() {
        let s = Sampling::temperature(1.0, 42);
        let logits = vec![0.0f32; 50];
        let draw = |stream| {
            let mut r = s.rng(stream);
            (0..32).map(|_| s.pick(&logits, &mut r)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(Sampling { temperature: -1.0, ..Default::default() }.validate().unwrap_err().contains("temperature"));
        assert!(Sampling { top_p: 0.0, ..Default::default() }.validate().unwrap_err().contains("top_p"));
        assert!(Sampling { min_p: 2.0, ..Default::default() }.validate().unwrap_err().contains("min_p"));
    }
}
