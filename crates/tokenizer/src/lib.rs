//! Byte-level BPE tokenizer for ascent, built on the Hugging Face `tokenizers` crate.
//!
//! # Design
//!
//! * **Byte-level BPE, GPT-2 style.** Text is split by the ByteLevel pre-tokenizer (GPT-2 regex,
//!   no prefix space: text is encoded exactly as given), every UTF-8 byte is mapped to one of 256
//!   printable symbols, and a BPE model merges them. The ByteLevel decoder maps back. There is no
//!   normalizer. The trainer is seeded with all 256 byte symbols, so every string encodes
//!   without unknown tokens and `decode(encode(s)) == s` for every `s`.
//! * **Reserved special tokens at fixed ids.** The [`Special`] tokens always occupy ids
//!   `0..Special::COUNT` in declaration order (`<|pad|>` = 0 … `<|/answer|>` = 14), so model and
//!   training code can use [`Special::id`] without a tokenizer at hand. They are registered as
//!   *special added tokens*: where their text appears literally in input it becomes that single
//!   id and is never split. They are also cut out of the training corpus, so no merges are
//!   wasted on them. `encode` never adds BOS/EOS on its own; callers do that explicitly.
//! * **Validated on every construction.** Training, [`Tokenizer::load`] and
//!   [`Tokenizer::from_json_bytes`] all go through one check: specials at their ids, BPE model,
//!   ByteLevel pre-tokenizer (no prefix space) and decoder, no normalizer/truncation/padding,
//!   all 256 byte tokens present. A tokenizer.json from elsewhere fails with
//!   [`TokenizerError::WrongTokenizer`] saying what is off, rather than silently producing
//!   different ids. Because of this `encode` and `decode` are infallible.
//! * **Standard file format, written atomically.** [`Tokenizer::save`] writes the usual
//!   tokenizer.json (loadable by any `tokenizers` binding) via temp file + fsync + rename.
//!   [`Tokenizer::to_json_string`] / [`Tokenizer::from_json_bytes`] let checkpoints embed it.
//! * **Deterministic.** Same texts + same [`TrainConfig`] ⇒ byte-identical JSON (the BPE
//!   trainer breaks count ties by pair ids, and serialization orders everything by id).
//! * **Imported models' tokenizers.** [`Tokenizer::foreign`] wraps any tokenizer.json (Llama 3,
//!   Qwen2, SmolLM, ...) with its `tokenizer_config.json`: no reserved special tokens, its own
//!   end-of-sequence ids ([`Tokenizer::end_ids`]) and Jinja chat template ([`ChatTemplate`],
//!   rendered by [`Tokenizer::render_chat`]). Code that frames conversations or stops
//!   generation asks the tokenizer instead of using [`Special`] ids.
//! * **Pure Rust.** `tokenizers` is built without its default features: no oniguruma / esaxx C
//!   code (the `fancy-regex` backend is used instead), no hub downloads, no progress bar.

mod bpe;
mod bytes;
pub mod chat;
mod error;
mod special;
pub mod template;

pub use bpe::Tokenizer;
pub use chat::{render_chat, Message, Role};
pub use error::TokenizerError;
pub use special::Special;
pub use template::ChatTemplate;

use serde::{Deserialize, Serialize};

/// Smallest id count a tokenizer can have: the 256 byte tokens plus the special tokens.
pub const MIN_VOCAB_SIZE: usize = 256 + Special::COUNT;

/// Settings for [`Tokenizer::train`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Target number of ids, special and byte tokens included; must exceed 256 + 15.
    pub vocab_size: usize,
    /// A pair must occur at least this many times in the corpus to become a merge.
    pub min_frequency: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { vocab_size: 512, min_frequency: 2 }
    }
}

impl TrainConfig {
    /// Checks the values, naming the offending field in the error.
    pub fn validate(&self) -> Result<(), TokenizerError> {
        if self.vocab_size <= MIN_VOCAB_SIZE {
            return Err(TokenizerError::InvalidConfig {
                field: "vocab_size",
                reason: format!(
                    "is {}, but must exceed {MIN_VOCAB_SIZE} (256 byte tokens + {} special tokens) to leave room for merges",
                    self.vocab_size,
                    Special::COUNT
                ),
            });
        }
        if u32::try_from(self.vocab_size).is_err() {
            return Err(TokenizerError::InvalidConfig {
                field: "vocab_size",
                reason: format!("is {}, but ids are u32", self.vocab_size),
            });
        }
        Ok(())
    }
}
