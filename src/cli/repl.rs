//! `retort repl`: a line editor over a [`Session`]: history, multi-line input while brackets or
//! strings are open, Tab completion, meta-commands, Ctrl-C to stop training, Ctrl-D to leave.
//! With piped stdin it reads inputs without a prompt.

use comfy_table::{presets::UTF8_FULL, Table};
use retort::script::session::{Evaluated, Output, Session};
use retort::script::{RunOptions, ScriptError};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};
use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// The meta-commands, for `:help` and dispatch.
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "this list"),
    (":vars", "variables in the session, with their types and values"),
    (":load FILE", "run a script file in the session"),
    (":save FILE", "write the session's inputs as a runnable script"),
    (":doc NAME", "a built-in's signatures, documentation and example"),
    (":runs", "the recorded runs under ./runs"),
    (":quit", "leave (Ctrl-D too)"),
];

/// Whether `input` still has an open bracket, string or block comment.
pub fn incomplete(input: &str) -> bool {
    let (mut depth, mut chars) = (0i32, input.chars().peekable());
    let mut string: Option<char> = None;
    while let Some(c) = chars.next() {
        match string {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    string = None;
                }
            }
            None => match c {
                '"' | '`' | '\'' => string = Some(c),
                '/' if chars.peek() == Some(&'/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    // an open block comment continues the input
                    let mut prev = ' ';
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if prev == '*' && c == '/' {
                            closed = true;
                            break;
                        }
                        prev = c;
                    }
                    if !closed {
                        return true;
                    }
                }
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            },
        }
    }
    string.is_some() || depth > 0
}

struct ReplHelper {
    session: Rc<RefCell<Session>>,
}

impl Completer for ReplHelper {
    type Candidate = String;
    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        let start = line[..pos].rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if let Some(cmd) = word.strip_prefix(':') {
            let names =
                COMMANDS.iter().map(|(c, _)| c.split(' ').next().unwrap_or(c).to_string()).filter(|c| c[1..].starts_with(cmd)).collect();
            return Ok((start, names));
        }
        Ok(self.session.try_borrow().map(|s| s.complete(line, pos)).unwrap_or((pos, vec![])))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if incomplete(ctx.input()) { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}
impl Helper for ReplHelper {}

/// Writes an input's outputs and value.
pub fn show(e: &Evaluated, out: &mut dyn Write) {
    for o in &e.outputs {
        let _ = match o {
            Output::Text(t) => writeln!(out, "{t}"),
            Output::Table(header, rows) => {
                let mut t = Table::new();
                t.load_preset(UTF8_FULL).set_header(header.clone());
                rows.iter().for_each(|r| {
                    t.add_row(r.clone());
                });
                writeln!(out, "{t}")
            }
            Output::Image(p) => writeln!(out, "wrote {}", p.display()),
        };
    }
    if let Some((header, rows)) = &e.value_table {
        // a long run's last epochs: the whole history stays in the value
        const SHOWN: usize = 10;
        let mut t = Table::new();
        t.load_preset(UTF8_FULL).set_header(header.clone());
        rows.iter().skip(rows.len().saturating_sub(SHOWN)).for_each(|r| {
            t.add_row(r.clone());
        });
        if rows.len() > SHOWN {
            let _ = writeln!(out, "(the last {SHOWN} of {} epochs; the result's history has them all)", rows.len());
        }
        let _ = writeln!(out, "{t}");
    }
    if let Some(v) = &e.value {
        let _ = writeln!(out, "{v}");
    }
}

/// Handles one complete input: a meta-command or script. Returns false to quit.
fn handle(session: &Rc<RefCell<Session>>, input: &str, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return true;
    }
    if let Some(cmd) = trimmed.strip_prefix(':') {
        let (name, arg) = cmd.split_once(char::is_whitespace).map_or((cmd, ""), |(a, b)| (a, b.trim()));
        match name {
            "quit" | "q" | "exit" => return false,
            "help" => {
                let _ = writeln!(out, "Type Rhai statements; a line with open brackets or strings continues on the next.");
                for (c, about) in COMMANDS {
                    let _ = writeln!(out, "  {c:<12} {about}");
                }
            }
            "vars" => {
                for (n, t, v) in session.borrow().vars() {
                    let _ = writeln!(out, "{n}: {t} = {v}");
                }
            }
            "doc" if arg.is_empty() => {
                let _ =
                    writeln!(err, ":doc NAME: a built-in (:doc fit), a recipe function (:doc sched::cosine) or a function of this session");
            }
            "doc" => match session.borrow().doc(arg) {
                Ok(d) => {
                    let _ = writeln!(out, "{d}");
                }
                Err(e) => {
                    let _ = writeln!(err, "{e}");
                }
            },
            "load" => match std::fs::read_to_string(arg) {
                Ok(src) => return handle_script(session, &src, out, err),
                Err(e) => {
                    let _ = writeln!(err, "cannot read {arg}: {e}");
                }
            },
            "save" => {
                let name = std::path::Path::new(arg).file_name().map_or(arg.to_string(), |n| n.to_string_lossy().to_string());
                let text = session.borrow().script_named(&name);
                match retort::run::atomic_write(std::path::Path::new(arg), text.as_bytes()) {
                    Ok(()) => {
                        let _ = writeln!(out, "saved {} inputs to {arg} (run it with: retort run {arg})", session.borrow().inputs_run());
                    }
                    Err(e) => {
                        let _ = writeln!(err, "{e}");
                    }
                }
            }
            "runs" if !std::path::Path::new("runs").is_dir() => {
                let _ = writeln!(out, "no runs under ./runs yet");
            }
            "runs" => match retort::run::listing::list(std::path::Path::new("runs")) {
                Ok((runs, unreadable)) => {
                    for e in unreadable {
                        let _ = writeln!(err, "warning: skipped {e}");
                    }
                    let mut t = super::table(&retort::run::listing::RunInfo::HEADER);
                    for r in runs {
                        for row in r.rows() {
                            t.add_row(row);
                        }
                    }
                    let _ = writeln!(out, "{t}");
                }
                Err(e) => {
                    let _ = writeln!(err, "{e}");
                }
            },
            other => {
                let _ = writeln!(err, "unknown command ':{other}'; :help lists them");
            }
        }
        return true;
    }
    handle_script(session, input, out, err)
}

fn handle_script(session: &Rc<RefCell<Session>>, input: &str, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let result: Result<Evaluated, ScriptError> = session.borrow_mut().eval(input);
    match result {
        Ok(e) => show(&e, out),
        Err(e) => {
            let printed = session.borrow().failed_outputs();
            show(&Evaluated { outputs: printed, value: None, value_table: None, interrupted: false }, out);
            let _ = out.flush();
            let _ = write!(err, "{e}");
        }
    }
    let _ = out.flush();
    true
}

/// Runs the REPL until `:quit`, Ctrl-D or the end of piped input. A recorded session's plots go
/// to its run directory; an unrecorded one's to a temporary folder removed at the end.
pub fn run(opts: &RunOptions) -> Result<(), ScriptError> {
    let (images, _temporary) = match &opts.record {
        Some(_) => (None, None),
        None => {
            let dir = std::env::temp_dir().join(format!("retort-repl-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| ScriptError::usage("repl", format!("{}: {e}", dir.display())))?;
            (Some(dir.clone()), Some(retort::notebook::ipynb::TempDir(dir)))
        }
    };
    let mut opts = opts.clone();
    if std::io::stderr().is_terminal() {
        opts.progress = Some(super::progress_bars());
    }
    let session = Rc::new(RefCell::new(Session::start(&opts, images, "repl")?));
    if let Some(dir) = session.borrow().run_dir() {
        eprintln!("recording this session in {} (--no-record turns it off)", dir.display());
    }
    let interrupt = session.borrow().interrupt_handle();
    let _ = ctrlc::set_handler(move || interrupt.store(true, Ordering::SeqCst));
    let result = read_inputs(&session);
    let finished = session.borrow().finish(None);
    result.and(finished)
}

/// Reads and handles inputs: piped lines, or the line editor's.
fn read_inputs(session: &Rc<RefCell<Session>>) -> Result<(), ScriptError> {
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());

    if !std::io::stdin().is_terminal() {
        let mut buffer = String::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| ScriptError::usage("stdin", e.to_string()))?;
            buffer.push_str(&line);
            buffer.push('\n');
            if incomplete(&buffer) {
                continue;
            }
            if !handle(session, &std::mem::take(&mut buffer), &mut out, &mut err) {
                break;
            }
        }
        if !buffer.trim().is_empty() {
            handle(session, &buffer, &mut out, &mut err);
        }
        return Ok(());
    }

    let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> =
        Editor::new().map_err(|e| ScriptError::usage("repl", e.to_string()))?;
    editor.set_helper(Some(ReplHelper { session: session.clone() }));
    let history = std::env::var_os("RETORT_HISTORY")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".retort_history")));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let _ = writeln!(out, "retort {} REPL: :help for commands, Ctrl-C stops training, Ctrl-D leaves", env!("CARGO_PKG_VERSION"));
    loop {
        match editor.readline("retort> ") {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                if !handle(session, &line, &mut out, &mut err) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(ScriptError::usage("repl", e.to_string())),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_and_strings_continue() {
        assert!(incomplete("let x = [1, 2,"));
        assert!(incomplete("fn f(x) {"));
        assert!(incomplete("let s = \"abc"));
        assert!(!incomplete("let s = \"a(b\";"));
        assert!(!incomplete("let x = 1; // (comment"));
        assert!(!incomplete("f(1)\n"));
        assert!(incomplete("/* a comment that goes on"));
        assert!(!incomplete("/* closed */ let x = 1;"));
        assert!(!incomplete("let e = '{';"));
    }
}
