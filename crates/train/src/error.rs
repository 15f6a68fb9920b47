//! Errors of the training stages. Each says what was wrong and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("config error in `{field}`: {message}")]
    Config { field: String, message: String },
    #[error("{}: invalid TOML: {message}", path.display())]
    Toml { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    #[error("data: {0}")]
    Data(String),
    /// The training loss became NaN or infinite (the message says at which step): callers that
    /// sweep settings record the run as diverged instead of stopping.
    #[error("data: {0}")]
    Diverged(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("engine: {0}")]
    Engine(String),
}

pub fn io_err(path: &std::path::Path, what: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io { path: path.to_path_buf(), message: format!("{what}: {e}") }
}
