//! `retort notebook run`: a Markdown file whose ```rhai blocks are cells, run in order in one
//! [`Session`]. The output is the input with each cell's output inserted under it (text in an
//! `output` block, tables as Markdown tables, plots as PNG files beside it) and a header.
//! Generated parts sit between `<!-- retort:output -->` markers, so a notebook can be re-run.

use crate::script::session::{Output, Session};
use crate::script::{markdown_table, RunOptions, ScriptError};
use std::path::Path;
use std::time::Instant;

const HEADER: &str = "<!-- retort:header";
const OPEN: &str = "<!-- retort:output -->";
const CLOSE: &str = "<!-- /retort:output -->";

/// The notebook without generated parts (header, outputs).
pub fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
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
        }
    }
    out
}

/// What running a notebook gave: the output text and whether every cell succeeded.
pub struct NotebookRun {
    pub markdown: String,
    pub ok: bool,
}

/// Runs the cells of `input` (a Markdown file); plots are written beside `output`.
pub fn run(input: &Path, output: &Path, opts: &RunOptions) -> Result<NotebookRun, ScriptError> {
    let shown = input.display().to_string();
    let text = std::fs::read_to_string(input).map_err(|e| ScriptError::usage(&shown, format!("cannot read notebook: {e}")))?;
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let mut session = Session::new(opts, dir.clone())?;
    let stem = output.file_stem().map_or("notebook".into(), |s| s.to_string_lossy().to_string());
    session.set_image_prefix(&format!("{stem}-"));
    let started = Instant::now();
    let source = strip(&text);
    let mut body = String::new();
    let (mut ok, mut cell, mut in_cell, mut code) = (true, 0, false, String::new());
    for line in source.lines() {
        body.push_str(line);
        body.push('\n');
        if !ok {
            continue;
        }
        if !in_cell && line.trim_start().starts_with("```rhai") {
            (in_cell, code) = (true, String::new());
            continue;
        }
        if in_cell && line.trim_start().starts_with("```") {
            in_cell = false;
            cell += 1;
            body.push_str(&format!("{OPEN}\n"));
            match session.eval(&code) {
                Ok(e) => {
                    let mut text = String::new();
                    for o in &e.outputs {
                        match o {
                            Output::Text(t) => text.push_str(&format!("{t}\n")),
                            Output::Table(h, rows) => {
                                flush_text(&mut body, &mut text);
                                body.push_str(&markdown_table(h, rows));
                            }
                            Output::Image(p) => {
                                flush_text(&mut body, &mut text);
                                let name = p.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string());
                                body.push_str(&format!("![cell {cell} plot]({name})\n"));
                            }
                        }
                    }
                    if let Some(v) = &e.value {
                        text.push_str(&format!("{v}\n"));
                    }
                    flush_text(&mut body, &mut text);
                    if let Some((h, rows)) = &e.value_table {
                        body.push_str(&markdown_table(h, rows));
                    }
                }
                Err(e) => {
                    ok = false;
                    body.push_str(&format!("```error\ncell {cell} failed:\n{e}```\n"));
                }
            }
            body.push_str(&format!("{CLOSE}\n"));
            continue;
        }
        if in_cell {
            code.push_str(line);
            code.push('\n');
        }
    }
    let header = format!(
        "{HEADER} retort {} | seed {} | {} UTC | {:.1} s | {} -->\n",
        env!("CARGO_PKG_VERSION"),
        opts.seed,
        crate::run::now_utc(),
        started.elapsed().as_secs_f64(),
        if ok { "all cells ran" } else { "a cell failed" }
    );
    Ok(NotebookRun { markdown: format!("{header}{body}"), ok })
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
