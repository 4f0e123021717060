//! Script errors with the file, line and column, printed with the source line and a caret.

use rhai::{EvalAltResult, ParseError, Position};
use unicode_width::UnicodeWidthChar;

/// Whether an error is the user's invocation (exit 2) or a failed run (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Usage,
    Failure,
}

/// The message of a script stopped by an interrupt (Ctrl-C, Jupyter's interrupt) outside training.
pub const INTERRUPTED: &str = "interrupted";

/// A failure while checking or running a script.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub kind: ErrorKind,
    pub file: String,
    /// 1-based line and column, when the error has a position.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The source line the position points into.
    pub source_line: Option<String>,
}

impl ScriptError {
    pub fn usage(file: &str, message: impl Into<String>) -> Self {
        ScriptError { kind: ErrorKind::Usage, file: file.into(), line: None, column: None, message: message.into(), source_line: None }
    }

    /// A failed run with no position in the script.
    pub fn failure(file: &str, message: impl Into<String>) -> Self {
        ScriptError { kind: ErrorKind::Failure, ..Self::usage(file, message) }
    }

    /// Exit code for the CLI: 2 for usage errors, 1 for failed runs.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Usage => 2,
            ErrorKind::Failure => 1,
        }
    }

    fn at(file: &str, source: &str, pos: Position, message: String) -> Self {
        Self::at_position(file, source, pos, message, ErrorKind::Failure)
    }

    /// An error at `pos` in `source`, of `kind`.
    pub(crate) fn at_position(file: &str, source: &str, pos: Position, message: String, kind: ErrorKind) -> Self {
        let (line, column) = (pos.line(), pos.position());
        let source_line = line.and_then(|l| source.lines().nth(l - 1)).map(str::to_string);
        ScriptError { kind, file: file.into(), line, column, message, source_line }
    }

    pub(crate) fn from_parse(file: &str, source: &str, e: &ParseError) -> Self {
        Self::at(file, source, e.position(), format!("syntax error: {}", e.err_type()))
    }

    pub(crate) fn from_eval(file: &str, source: &str, e: &EvalAltResult) -> Self {
        // errors raised inside imported modules or functions: report the innermost message,
        // at the outermost position in this file
        let (message, mut pos) = describe(e, file);
        if let (EvalAltResult::ErrorModuleNotFound(path, _), true) = (e, pos.is_none()) {
            // imports resolved before running carry no position: point at the import itself
            pos = find_import(source, path).unwrap_or(pos);
        }
        Self::at(file, source, pos, message)
    }
}

/// The position of `import "path"` in `source`.
fn find_import(source: &str, path: &str) -> Option<Position> {
    let quoted = format!("\"{path}\"");
    source.lines().enumerate().find_map(|(i, line)| {
        let col = line.find(&quoted).filter(|_| line.trim_start().starts_with("import"))?;
        Some(Position::new(i as u16 + 1, col as u16 + 1))
    })
}

thread_local! {
    /// The built-ins' signatures by name, noted when the first engine is made.
    static SIGNATURES: std::cell::RefCell<std::collections::HashMap<String, Vec<String>>> = Default::default();
}

/// Notes the built-ins' signatures (once per thread), for [`ScriptError`]s of calls no
/// built-in takes.
pub(crate) fn know_signatures(make: impl FnOnce() -> std::collections::HashMap<String, Vec<String>>) {
    SIGNATURES.with(|s| {
        if s.borrow().is_empty() {
            *s.borrow_mut() = make();
        }
    });
}

/// "Function not found: fit (Dataset, Model, map)" with the signatures `fit` does take.
fn not_found(sig: &str) -> String {
    let name = sig.split(['(', ' ']).next().unwrap_or(sig);
    let known = SIGNATURES.with(|s| s.borrow().get(name).cloned()).unwrap_or_default();
    if known.is_empty() {
        return format!("Function not found: {sig}");
    }
    let args = sig[name.len()..].trim();
    format!("{name} was called with {args}, which no {name} takes; it takes:\n    {}", known.join("\n    "))
}

/// The message of an evaluation error, unwrapping function-call layers, and its position.
fn describe(e: &EvalAltResult, file: &str) -> (String, Position) {
    match e {
        EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
            let (m, inner_pos) = describe(inner, file);
            let fn_name = if name.starts_with("anon$") { "closure".to_string() } else { format!("'{name}'") };
            if !source.is_empty() && source != file {
                // inside an imported module: say where in it, point at the call in this file
                let at = match (inner_pos.line(), inner_pos.position()) {
                    (Some(l), Some(c)) if !m.contains(" at ") => format!(" at {source}:{l}:{c}"),
                    _ => String::new(),
                };
                return (format!("{m} (in {fn_name}{at})"), *pos);
            }
            // prefer the position inside the function when it is in this file
            let p = if inner_pos.is_none() { *pos } else { inner_pos };
            (format!("{m} (in {fn_name})"), p)
        }
        EvalAltResult::ErrorInModule(path, inner, pos) => {
            let (m, _) = describe(inner, file);
            (format!("{m} (in module '{path}')"), *pos)
        }
        EvalAltResult::ErrorRuntime(v, pos) => (v.to_string(), *pos),
        EvalAltResult::ErrorFunctionNotFound(sig, pos) => (not_found(sig), *pos),
        EvalAltResult::ErrorTooManyOperations(pos) => {
            ("the script ran more operations than --max-operations allows (a runaway loop?)".into(), *pos)
        }
        EvalAltResult::ErrorTerminated(_, pos) => (INTERRUPTED.into(), *pos),
        EvalAltResult::ErrorModuleNotFound(path, pos) => {
            (format!("import '{path}': module not found; looked in the stdlib, the script's folder and RETORT_PATH"), *pos)
        }
        other => {
            let text = other.to_string();
            // Rhai appends " (line N, position M)"; the caret shows that already
            let text = match text.rfind(" (line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            (text, other.position())
        }
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        match (self.line, self.column) {
            (Some(line), col) => {
                write!(f, "  --> {}:{line}", self.file)?;
                if let Some(c) = col {
                    write!(f, ":{c}")?;
                }
                writeln!(f)?;
                if let Some(src) = &self.source_line {
                    let gutter = " ".repeat(line.to_string().len());
                    writeln!(f, "{gutter} |")?;
                    writeln!(f, "{line} | {src}")?;
                    if let Some(c) = col {
                        // padded by display width: a wide (CJK) character takes two columns
                        let pad: String = src
                            .chars()
                            .take(c.saturating_sub(1))
                            .map(|ch| if ch == '\t' { "\t".to_string() } else { " ".repeat(ch.width().unwrap_or(0)) })
                            .collect();
                        writeln!(f, "{gutter} | {pad}^")?;
                    }
                }
                Ok(())
            }
            (None, _) => writeln!(f, "  --> {}", self.file),
        }
    }
}

impl std::error::Error for ScriptError {}
