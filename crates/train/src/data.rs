//! The pretraining data loader: documents → one token stream with `<|eos|>` between documents,
//! split into train and validation by document, and sampled as random windows.
//!
//! The sampler's whole state is (seed, position in the ChaCha8 stream), saved in every
//! checkpoint, so a resumed run draws exactly the windows the uninterrupted run would have.

use model::burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokenizer::Tokenizer;

use crate::error::TrainError;

/// Train and validation token streams.
pub struct TokenData {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

impl TokenData {
    /// Tokenise training and validation documents given separately (every `train` document trains).
    pub fn build_split(train: &[String], val: &[String], tok: &Tokenizer, seq_len: usize) -> Result<Self, TrainError> {
        let stream = |docs: &[String]| {
            let mut out = Vec::new();
            for d in docs {
                out.extend(tok.encode(d));
                out.push(tok.eos_id());
            }
            out
        };
        let data = Self { train: stream(train), val: stream(val) };
        data.check(seq_len)?;
        Ok(data)
    }

    fn check(&self, seq_len: usize) -> Result<(), TrainError> {
        for (name, s) in [("training", &self.train), ("validation", &self.val)] {
            if s.len() < seq_len + 2 {
                return Err(TrainError::Data(format!(
                    "the {name} split has {} tokens, fewer than one window of train.seq_len + 1 = {}; use more text or a shorter seq_len",
                    s.len(),
                    seq_len + 1
                )));
            }
        }
        Ok(())
    }

    /// Tokenise `docs`; a seeded shuffle picks `val_fraction` of them (at least one) for validation.
    pub fn build(
        docs: &[String],
        tok: &Tokenizer,
        val_fraction: f64,
        seed: u64,
        seq_len: usize,
    ) -> Result<Self, TrainError> {
        let mut order: Vec<usize> = (0..docs.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_da7a);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let n_val = ((docs.len() as f64 * val_fraction).round() as usize).clamp(1, docs.len().saturating_sub(1).max(1));
        let eos = tok.eos_id();
        let stream = |idx: &[usize]| {
            let mut out = Vec::new();
            for &i in idx {
                out.extend(tok.encode(&docs[i]));
                out.push(eos);
            }
            out
        };
        let data = Self { val: stream(&order[..n_val]), train: stream(&order[n_val..]) };
        data.check(seq_len)?;
        Ok(data)
    }
}

/// Random windows from a token stream; the state is exactly resumable.
pub struct Sampler {
    rng: ChaCha8Rng,
    seed: u64,
}

/// What a checkpoint stores of the sampler.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct SamplerState {
    pub seed: u64,
    /// Word position in the ChaCha8 stream (u128 as a decimal string in JSON).
    #[serde(with = "u128_string")]
    pub word_pos: u128,
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Sampler {
    pub fn new(seed: u64) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(seed), seed }
    }

    pub fn state(&self) -> SamplerState {
        SamplerState { seed: self.seed, word_pos: self.rng.get_word_pos() }
    }

    pub fn restore(state: SamplerState) -> Self {
        let mut s = Self::new(state.seed);
        s.rng.set_word_pos(state.word_pos);
        s
    }

    /// `batch` random windows: inputs and next-token targets, each `(B, T)`.
    pub fn batch(
        &mut self,
        tokens: &[u32],
        batch: usize,
        seq: usize,
        device: &Device,
    ) -> (Tensor<2, Int>, Tensor<2, Int>) {
        let starts: Vec<usize> = (0..batch).map(|_| self.rng.random_range(0..tokens.len() - seq)).collect();
        windows(tokens, &starts, seq, device)
    }
}

/// Evenly spaced windows covering the stream, for a validation loss that is comparable
/// between evaluations: batch `i` of `n`.
pub fn eval_batch(
    tokens: &[u32],
    i: usize,
    n: usize,
    batch: usize,
    seq: usize,
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let span = tokens.len() - seq - 1;
    let total = n * batch;
    let starts: Vec<usize> = (0..batch).map(|j| (i * batch + j) * span / total.max(1)).collect();
    windows(tokens, &starts, seq, device)
}

fn windows(tokens: &[u32], starts: &[usize], seq: usize, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let mut x = Vec::with_capacity(starts.len() * seq);
    let mut y = Vec::with_capacity(starts.len() * seq);
    for &s in starts {
        x.extend(tokens[s..s + seq].iter().map(|&t| t as i64));
        y.extend(tokens[s + 1..s + seq + 1].iter().map(|&t| t as i64));
    }
    let shape = [starts.len(), seq];
    (Tensor::from_data(TensorData::new(x, shape), device), Tensor::from_data(TensorData::new(y, shape), device))
}
