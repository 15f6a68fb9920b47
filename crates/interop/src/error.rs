//! Why a model file cannot be read or written.

use std::path::PathBuf;

/// An import or export failure, naming the file (and the field or tensor) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{}: `{field}` {message}", path.display())]
    Field { path: PathBuf, field: String, message: String },
    #[error("{}: {source}", path.display())]
    Weights { path: PathBuf, source: model::weights::WeightsError },
    #[error("cannot export: {0}")]
    Export(String),
}

pub(crate) fn file_err(path: &std::path::Path, message: impl Into<String>) -> ImportError {
    ImportError::File { path: path.to_path_buf(), message: message.into() }
}

pub(crate) fn field_err(path: &std::path::Path, field: &str, message: impl Into<String>) -> ImportError {
    ImportError::Field { path: path.to_path_buf(), field: field.to_string(), message: message.into() }
}
