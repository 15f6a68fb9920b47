//! Decoder-only transformer architectures for ascent.
//!
//! - [`config`]: the architecture as data (enums for every choice), validation, presets,
//!   parameter and FLOP counts.
//! - [`transformer`]: the burn module, its forward pass, the KV cache and the loss; [`moe`]:
//!   the mixture-of-experts block and its router statistics.
//! - [`generate`]: generation with a KV cache, batched by prompt length, with per-sequence
//!   stopping and injected (forced) tokens; [`sample`]: greedy, temperature, top-k/p, min-p.
//! - [`weights`]: safetensors (Hugging Face Llama layout) to and from bytes.
//! - [`engine`]: the few things specific to the tensor engine (devices, seeding, threads).
//!
//! Invariant: this crate does no file or network IO.

pub mod config;
pub mod engine;
pub mod generate;
pub mod moe;
pub mod reward;
pub mod sample;
pub mod transformer;
pub mod weights;

pub use burn;
pub use config::{ConfigError, MlaConfig, Mlp, ModelConfig, MoeConfig, Norm, ParamCount, Position, RopeScaling};
pub use moe::RouterStats;
pub use reward::RewardModel;
pub use sample::Sampling;
pub use transformer::{token_cross_entropy, KvCache, Transformer, HIDDEN_MATRICES};
