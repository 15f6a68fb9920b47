//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while generating, rendering, writing or importing a world.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A [`crate::WorldConfig`] field has a value the generator cannot use.
    #[error("invalid world config: `{field}`: {reason}")]
    Config {
        /// The offending field, as named in the config file.
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// The syllable name space ran out (far more entities than the defaults).
    #[error("could not generate enough unique {kind} names; use fewer entities")]
    Names {
        /// The kind of entity being named.
        kind: &'static str,
    },
    /// A rendering count of zero was asked for.
    #[error("invalid renderings {0}: must be at least 1")]
    Renderings(usize),
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Serialising to JSON failed.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    /// A triples file had malformed lines; every problem is listed with its 1-based line number.
    #[error("bad triples: {}", .0.join("; "))]
    Import(Vec<String>),
    /// An internal invariant failed (a bug in this crate).
    #[error("internal error: {0}")]
    Internal(String),
}
