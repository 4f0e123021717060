//! `retort notebook run`: a Markdown file whose fenced `rhai` code blocks (found by a
//! CommonMark parser, pulldown-cmark: backtick or tilde fences of any length) are cells, run in
//! order in one [`Session`]. The output is the input with each cell's output inserted under it (text in an
//! `output` block, tables as Markdown tables, plots as PNG files beside it) and a header.
//! Generated parts sit between `<!-- retort:output -->` markers, so a notebook can be re-run.
//! Jupyter's notebooks: [`ipynb`], with cells run by [`cell`].

pub mod cell;
pub mod ipynb;

use crate::script::session::{Evaluated, Output, Session};
use crate::script::{markdown_table, RunOptions, ScriptError};
use std::path::Path;
use std::time::Instant;

const HEADER: &str = "<!-- retort:header";
const OPEN: &str = "<!-- retort:output -->";
const CLOSE: &str = "<!-- /retort:output -->";

/// The notebook without generated parts (header, outputs).
pub fn strip(text: &str) -> String {
    strip_with_lines(text).0
}

/// [`strip`], with the 1-based line in `text` of each line kept, so errors name the notebook's
/// own line.
fn strip_with_lines(text: &str) -> (String, Vec<usize>) {
    let (mut out, mut lines) = (String::new(), Vec::new());
    let mut skipping = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with(HEADER) {
            continue;
        }
        if line.trim() == OPEN {
            skipping = true;
            continue;
        }
        if line.trim() == CLOSE {
            skipping = false;
            continue;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
            lines.push(i + 1);
        }
    }
    (out, lines)
}

/// A ```rhai (or ~~~rhai, or longer-fenced) code block of a notebook.
pub(crate) struct Cell {
    pub(crate) code: String,
    /// Byte offset in the stripped notebook where the block (its opening fence) starts.
    pub(crate) start: usize,
    /// Byte offset in the stripped notebook where the block (its closing fence included) ends.
    pub(crate) end: usize,
    /// Fenced as ```rhai parameters: the notebook's parameters cell.
    pub(crate) parameters: bool,
    /// 0-based line, in the stripped notebook, of the code's first line.
    first_line: usize,
}

/// The notebook's cells, found by a CommonMark parser: fenced code blocks whose info string
/// starts with `rhai`, however they are fenced.
pub(crate) fn cells(source: &str) -> Vec<Cell> {
    use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
    let line_of = |offset: usize| source[..offset].bytes().filter(|b| *b == b'\n').count();
    let mut out = Vec::new();
    let mut current: Option<Cell> = None;
    for (event, range) in Parser::new(source).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))
                if info.split(|c: char| c.is_whitespace() || c == ',').next() == Some("rhai") =>
            {
                // the code starts on the line after the opening fence
                let parameters = info.split(|c: char| c.is_whitespace() || c == ',').any(|w| w == "parameters");
                current = Some(Cell {
                    code: String::new(),
                    start: range.start,
                    end: range.end,
                    parameters,
                    first_line: line_of(range.start) + 1,
                });
            }
            Event::Text(text) => {
                if let Some(c) = current.as_mut() {
                    c.code.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(mut c) = current.take() {
                    // through the closing fence's line break, where the output goes
                    c.end = range.end + source[range.end..].starts_with('\n') as usize;
                    out.push(c);
                }
            }
            _ => {}
        }
    }
    out
}

/// What running a notebook gave: the output text and whether every cell succeeded.
pub struct NotebookRun {
    pub markdown: String,
    pub ok: bool,
    /// The failing cell and its error, for the terminal.
    pub failure: Option<String>,
}

/// Runs the cells of `input` (a Markdown file); plots are written beside `output`. `started`
/// hears where the session is recorded (none: `opts.record` is none) before the first cell runs.
pub fn run(
    input: &Path,
    output: &Path,
    opts: &RunOptions,
    started: &mut dyn FnMut(Option<&Path>, std::sync::Arc<std::sync::atomic::AtomicBool>),
) -> Result<NotebookRun, ScriptError> {
    let shown = input.display().to_string();
    let text = std::fs::read_to_string(input).map_err(|e| ScriptError::usage(&shown, format!("cannot read notebook: {e}")))?;
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let mut session = Session::start(opts, Some(dir.clone()), &shown)?;
    started(session.run_dir().as_deref(), session.interrupt_handle());
    let stem = output.file_stem().map_or("notebook".into(), |s| s.to_string_lossy().to_string());
    session.set_image_prefix(&format!("{stem}-"));
    let started = Instant::now();
    let (source, lines) = strip_with_lines(&text);
    let source_lines: Vec<&str> = source.lines().collect();
    let mut body = String::new();
    let (mut ok, mut copied, mut ran) = (true, 0, 0);
    let mut failure = None;
    let all = cells(&source);
    // without a run directory, a cell that would need one fails the notebook before any cell runs
    let codes: Vec<&str> = all.iter().map(|c| c.code.as_str()).collect();
    if let Some((k, e)) = session.refused_without_record(&codes) {
        return Err(at_notebook_line(e, &all[k], &shown, &lines, &source_lines));
    }
    for (index, c) in all.iter().enumerate() {
        let cell = index + 1;
        body.push_str(&source[copied..c.end]);
        if !body.ends_with('\n') {
            body.push('\n');
        }
        copied = c.end;
        if !ok {
            continue;
        }
        ran += 1;
        body.push_str(&format!("{OPEN}\n"));
        let ran = if c.parameters { session.eval_parameters(&c.code) } else { session.eval(&c.code) };
        match ran {
            Ok(e) => {
                write_outputs(&mut body, cell, &e);
                if e.interrupted {
                    ok = false;
                    failure = Some(format!("cell {cell} was interrupted (training stopped between batches)"));
                    body.push_str(&format!(
                        "```error\ncell {cell} was interrupted: training stopped between batches; later cells did not run\n```\n"
                    ));
                }
            }
            Err(e) => {
                ok = false;
                failure = Some(format!("cell {cell} failed: {}", e.message));
                // what the cell printed before it failed, then the error
                write_outputs(
                    &mut body,
                    cell,
                    &Evaluated { outputs: session.failed_outputs(), value: None, value_table: None, interrupted: false },
                );
                let e = at_notebook_line(e, c, &shown, &lines, &source_lines);
                body.push_str(&format!("```error\ncell {cell} failed:\n{e}```\n"));
            }
        }
        body.push_str(&format!("{CLOSE}\n"));
    }
    body.push_str(&source[copied..]);
    if ok {
        if let Some(message) = session.undeclared_params() {
            ok = false;
            body.push_str(&format!("{OPEN}\n```error\n{message}\n```\n{CLOSE}\n"));
            failure = Some(message);
        }
    }
    let status = if ok { format!("all {ran} cells ran") } else { format!("a cell failed: cell {ran} of {}", all.len()) };
    session.finish((!ok).then(|| status.clone()))?;
    let record = session.run_dir().map_or(String::new(), |d| format!(" | recorded in {}", d.display()));
    let header = format!(
        "{HEADER} retort {} | seed {} | {} UTC | {:.1} s | {status}{record} -->\n",
        env!("CARGO_PKG_VERSION"),
        opts.seed,
        crate::run::now_utc(),
        started.elapsed().as_secs_f64(),
    );
    Ok(NotebookRun { markdown: format!("{header}{body}"), ok, failure })
}

/// A cell's outputs in order: text in `output` blocks, tables as Markdown, plots as images.
fn write_outputs(body: &mut String, cell: usize, e: &Evaluated) {
    let mut text = String::new();
    for o in &e.outputs {
        match o {
            Output::Text(t) => text.push_str(&format!("{t}\n")),
            Output::Table(h, rows) => {
                flush_text(body, &mut text);
                body.push_str(&markdown_table(h, rows));
            }
            Output::Image(p) => {
                flush_text(body, &mut text);
                let name = p.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string());
                body.push_str(&format!("![cell {cell} plot]({name})\n"));
            }
        }
    }
    if let Some(v) = &e.value {
        text.push_str(&format!("{v}\n"));
    }
    flush_text(body, &mut text);
    if let Some((h, rows)) = &e.value_table {
        body.push_str(&markdown_table(h, rows));
    }
}

/// An error of `cell` at the notebook's own line and column, not the cell's.
fn at_notebook_line(mut e: ScriptError, c: &Cell, shown: &str, lines: &[usize], source_lines: &[&str]) -> ScriptError {
    e.file = shown.to_string();
    if let Some(l) = e.line {
        let stripped = c.first_line + l - 1;
        e.line = lines.get(stripped).copied();
        e.source_line = source_lines.get(stripped).map(|s| s.to_string());
        // a cell inside a list item or a quote: its lines carry the container's prefix
        let code_line = c.code.lines().nth(l - 1).unwrap_or("");
        if let (Some(col), Some(src)) = (e.column, &e.source_line) {
            if let Some(at) = src.find(code_line).filter(|_| !code_line.is_empty()) {
                e.column = Some(col + src[..at].chars().count());
            }
        }
    }
    e
}

fn flush_text(body: &mut String, text: &mut String) {
    if !text.is_empty() {
        body.push_str(&format!("```output\n{text}```\n"));
        text.clear();
    }
}

/// The notebook without its header line (which holds the date and timings), for comparisons.
pub fn without_header(markdown: &str) -> String {
    markdown.lines().filter(|l| !l.starts_with(HEADER)).map(|l| format!("{l}\n")).collect()
}
