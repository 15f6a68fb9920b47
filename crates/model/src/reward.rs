//! A transformer with a scalar head: the outcome reward model's network (trained in
//! `train::reward`). The head reads the final hidden state (after the final norm) at one
//! position per row.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

use crate::Transformer;

/// A transformer with a scalar head.
#[derive(Module, Debug)]
pub struct RewardModel {
    pub body: Transformer,
    pub score: Linear,
}

impl RewardModel {
    /// `body` with a zero-initialised head (every sequence starts at score 0).
    pub fn new(body: Transformer, device: &Device) -> Self {
        let d = body.config().d_model;
        let score = LinearConfig::new(d, 1).with_initializer(Initializer::Zeros).init(device);
        Self { body, score }
    }

    /// The score of each row, read at its position `last[i]`. `tokens: (B, T)`, `last: (B, 1)`
    /// → `(B)`.
    pub fn forward(&self, tokens: Tensor<2, Int>, last: Tensor<2, Int>) -> Tensor<1> {
        let [b, t] = tokens.dims();
        let h = self.body.hidden_states(tokens); // (B, T, D)
        let s = self.score.forward(h).reshape([b, t]); // (B, T)
        s.gather(1, last).reshape([b])
    }
}
