//! The one error type of the library: every variant carries the context a user needs to fix it.

use std::path::PathBuf;

/// Result alias used across retort.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in retort, with the op, shape, file or key involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two tensors (or a tensor and a layer) do not fit together.
    #[error("{op}: shape mismatch: expected {expected}, got {got}")]
    Shape { op: &'static str, expected: String, got: String },
    /// A value given to an op, layer, model or optimizer is out of its range.
    #[error("{op}: {message}")]
    Invalid { op: &'static str, message: String },
    /// A data, weight or config file could not be read or is malformed.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// An I/O failure on a named file.
    /// (The I/O error is in the message, not chained as a source, so it is not printed twice.)
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    /// The tensor backend (dfdx) reported a failure.
    #[error("tensor backend: {0}")]
    Backend(String),
    /// A loss became NaN or infinite.
    #[error("non-finite loss {value} at epoch {epoch}, batch {batch}; lower the learning rate or check the data")]
    NonFinite { value: f32, epoch: usize, batch: usize },
}

/// Strings are shown as text, everything else (shapes) with `{:?}`.
fn unquoted(s: String) -> String {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.to_string(),
        None => s,
    }
}

impl Error {
    /// A shape error; strings are shown as text, shapes with `{:?}`.
    pub fn shape(op: &'static str, expected: impl std::fmt::Debug, got: impl std::fmt::Debug) -> Self {
        Error::Shape { op, expected: unquoted(format!("{expected:?}")), got: unquoted(format!("{got:?}")) }
    }

    /// An invalid-argument error.
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { op, message: message.into() }
    }

    /// A malformed-file error naming the path.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File { path: path.into(), message: message.into() }
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), error: source }
    }
}
