//! What a script hands its front end besides printed text: tables, images, warnings.

use std::path::PathBuf;

/// What one input produced, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A printed line.
    Text(String),
    /// A table: header and rows (`table(...)`).
    Table(Vec<String>, Vec<Vec<String>>),
    /// A PNG written by `plot(...)`.
    Image(PathBuf),
}
