//! Training for ascent: the pretraining and fine-tuning stages, evaluation, the data loader,
//! optimiser set-up, learning-rate schedules, atomic checkpoints with exact resume, and the
//! throughput benchmarks.
//!
//! - [`config`]: the TOML recipe and its validation.
//! - [`corpus`], [`data`]: text → token stream → seeded random windows.
//! - [`optim`], [`schedule`]: AdamW with global-norm clipping; constant / cosine / WSD.
//! - [`checkpoint`]: the on-disk checkpoint format.
//! - [`pretrain`]: the loop.
//! - [`sft`]: supervised fine-tuning on (prompt, completion) examples with replay and packing.
//! - [`sftdata`]: fine-tuning JSONL files (prompt/completion or chat messages) as examples.
//! - [`stage`]: the TOML recipes of `ascent sft` and `ascent dpo|orpo`, and preference-pair files.
//! - [`eval`]: the question-answer format, greedy answers graded by the tasks' verifiers.
//! - [`infer`]: completions and chat turns (`ascent generate`, `ascent chat`).
//! - [`testtime`]: sampled answers per question; self-consistency, best-of-N, pass@k, maj@k.
//! - [`distill`]: logit distillation (forward KL at a temperature) from a teacher to a student.
//! - [`finetune`]: what the resumable fine-tuning stages share (start or resume, checkpoints).
//! - [`prefs`]: preference optimisation (DPO against a frozen reference, ORPO without one).
//! - [`grpo`]: GRPO, reinforcement learning from the verifier's rewards with group-normalised advantages.
//! - [`rft`]: rejection-sampling fine-tuning rounds (STaR / ReST), with the yield per round.
//! - [`reward`]: an outcome reward model (a scalar head on the policy) trained on verified samples.
//! - [`bench`]: `ascent bench train|generate`, mirroring the PyTorch reference script.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod corpus;
pub mod data;
pub mod distill;
pub mod error;
pub mod eval;
pub mod export;
pub mod finetune;
pub mod grpo;
pub mod infer;
pub mod optim;
pub mod prefs;
pub mod pretrain;
pub mod qa;
pub mod reward;
pub mod rft;
pub mod schedule;
pub mod sft;
pub mod sftdata;
pub mod stage;
pub mod testtime;

pub use config::PretrainConfig;
pub use error::TrainError;
pub use pretrain::{pretrain, RunOptions, Summary};
