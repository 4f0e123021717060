//! Registering documented built-ins: each has a doc comment with a rhai example, kept in the
//! engine's metadata, from which `retort docs` writes `docs/script-api.md`.

/// Formats `doc` (plain lines) as a Rhai doc comment.
pub fn doc_comment(doc: &str) -> String {
    doc.trim().lines().map(|l| if l.is_empty() { "///".to_string() } else { format!("/// {l}") }).collect::<Vec<_>>().join("\n")
}

/// `def!(engine, "name", "doc ... ```rhai example ```", closure)` registers a documented built-in.
#[macro_export]
#[doc(hidden)]
macro_rules! def {
    ($engine:expr, $name:expr, $doc:expr, $f:expr) => {
        rhai::FuncRegistration::new($name).with_comments([$crate::script::api::doc_comment($doc)]).register_into_engine($engine, $f)
    };
}
