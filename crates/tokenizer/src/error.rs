//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong when training, loading or saving a tokenizer.
///
/// Variants that concern a file carry its path and name it in their message; variants that
/// concern JSON that may not come from a file (e.g. embedded in a checkpoint) carry an
/// `origin` string, which is the file's path when there is one.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A [`TrainConfig`](crate::TrainConfig) field has an unusable value.
    #[error("invalid tokenizer train config: `{field}` {reason}")]
    InvalidConfig {
        /// Name of the offending field, e.g. `"vocab_size"`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The `tokenizers` trainer failed.
    #[error("tokenizer training failed: {0}")]
    Training(String),

    /// The tokenizer file does not exist.
    #[error("tokenizer file {} not found", path.display())]
    NotFound {
        /// The path that was tried.
        path: PathBuf,
    },

    /// Reading the tokenizer file failed for a reason other than it being absent.
    #[error("cannot read tokenizer file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Writing (or atomically replacing) the tokenizer file failed.
    #[error("cannot write tokenizer file {}: {source}", path.display())]
    Write {
        /// The target file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The bytes are not a tokenizer.json: invalid or truncated JSON, or JSON of another shape.
    #[error("{origin} is not a readable tokenizer.json: {reason}")]
    Parse {
        /// The file path, or a description of where the bytes came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },

    /// A well-formed tokenizer.json that is not an ascent tokenizer (wrong special tokens or
    /// ids, wrong model or pre-tokenizer, ...). Usually means the wrong file was picked.
    #[error("{origin} is not an ascent tokenizer: {reason}")]
    WrongTokenizer {
        /// The file path, or a description of where the bytes came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },

    /// Serializing the tokenizer to JSON failed.
    #[error("cannot serialize tokenizer: {0}")]
    Serialize(String),

    /// A chat template that does not compile or cannot render a conversation.
    #[error("chat template: {0}")]
    Template(String),

    /// The `tokenizers` pipeline reported an error while encoding.
    #[error("encoding failed: {0}")]
    Encode(String),
}
