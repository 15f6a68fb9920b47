//! [`RetrievalError`]: what went wrong, on which folder, and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong building, opening or searching an index. Each variant names the
/// folder or file involved.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// No index at this folder (the folder or its `meta.json` does not exist).
    #[error("no retrieval index at {}: {reason}; build one with Index::build or Index::open_or_build", dir.display())]
    Missing {
        /// The index folder.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The folder holds an index that cannot be read.
    #[error("retrieval index at {} is corrupt: {reason}; delete the folder and build it again", dir.display())]
    Corrupt {
        /// The index folder.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The index was built from another corpus.
    #[error(
        "retrieval index at {} was built from the corpus with SHA-256 {found}, but the corpus now has SHA-256 \
         {expected}; build it again (Index::build or Index::open_or_build)",
        dir.display()
    )]
    CorpusMismatch {
        /// The index folder.
        dir: PathBuf,
        /// The hash the caller expects (that of the current corpus).
        expected: String,
        /// The hash recorded in the index's `meta.json`.
        found: String,
    },
    /// The index was written in another on-disk format of this crate.
    #[error(
        "retrieval index at {} has format {found} ({found_tantivy}), this build reads format {expected}; build it again",
        dir.display()
    )]
    Format {
        /// The index folder.
        dir: PathBuf,
        /// [`crate::FORMAT_VERSION`].
        expected: u32,
        /// The format recorded in `meta.json`.
        found: u32,
        /// The tantivy version recorded in `meta.json`.
        found_tantivy: String,
    },
    /// A build was pointed at something that is not a retrieval index; it is left alone.
    #[error(
        "{} exists and is not a retrieval index ({reason}); refusing to replace it: choose another folder or remove it",
        path.display()
    )]
    NotAnIndex {
        /// The folder (or file) in the way.
        path: PathBuf,
        /// Why it is not one of ours.
        reason: String,
    },
    /// The arguments cannot make an index (e.g. an empty corpus hash, a folder with no name).
    #[error("cannot build a retrieval index at {}: {reason}", dir.display())]
    Invalid {
        /// The index folder.
        dir: PathBuf,
        /// What is wrong with the arguments.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `rename`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// tantivy failed while building or searching.
    #[error("tantivy could not {action} the retrieval index at {}: {reason}", dir.display())]
    Tantivy {
        /// What was being done (`create`, `commit`, `search`, ...).
        action: &'static str,
        /// The index folder.
        dir: PathBuf,
        /// tantivy's error message.
        reason: String,
    },
}

impl RetrievalError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }

    pub(crate) fn tantivy(action: &'static str, dir: impl Into<PathBuf>) -> impl FnOnce(tantivy::TantivyError) -> Self {
        let dir = dir.into();
        move |e| Self::Tantivy { action, dir, reason: e.to_string() }
    }
}
