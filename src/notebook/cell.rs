//! Code cells run on the session core, with Jupyter's outputs: text as `stream`, tables and
//! plots as MIME bundles (`display_data`), a cell's value as `execute_result`, training
//! progress as one display updated in place (`display_id`), and errors with the cell's line,
//! column and caret. The kernel (`retort kernel`) sends each output as it comes;
//! `retort notebook run` on an `.ipynb` writes them into the notebook. Both run cells here, so
//! both give the same bundles.

use crate::script::session::{Evaluated, Output, Session};
use crate::script::{markdown_table, Progress, RunOptions, ScriptError};
use jupyter_protocol::media::{Media, MediaType};
use std::cell::{Cell as Counter, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One output of a cell, in Jupyter's terms (messaging protocol 5.3, nbformat 4).
#[derive(Debug, Clone)]
pub enum CellOutput {
    /// Printed text on stdout, each line ending in `\n`.
    Stream(String),
    /// A `display_data` bundle; with an id when later updates replace it.
    Display { data: Media, display_id: Option<String> },
    /// An `update_display_data`: new contents for the display of that id.
    Update { data: Media, display_id: String },
    /// The cell's value (`execute_result`).
    Result(Media),
    /// An `error`: its name, message and the lines of the traceback.
    Error { ename: String, evalue: String, traceback: Vec<String> },
}

/// Where a cell's outputs go as they are produced.
pub type Sink = Rc<dyn Fn(CellOutput)>;

/// How a cell went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellRun {
    /// False when it failed or an interrupt stopped it.
    pub ok: bool,
    /// An interrupt stopped its training between batches.
    pub interrupted: bool,
}

/// A session whose inputs are notebook cells.
pub struct Cells {
    session: Session,
    sink: Rc<RefCell<Option<Sink>>>,
    /// Cells run so far (Jupyter's `execution_count`).
    pub count: usize,
}

impl Cells {
    /// A session of `what` (a notebook's path, or `kernel`) whose training progress is a display
    /// updated in place; see [`Session::start`] for `image_dir` and recording.
    pub fn start(opts: &RunOptions, image_dir: Option<PathBuf>, what: &str) -> Result<Cells, ScriptError> {
        let sink: Rc<RefCell<Option<Sink>>> = Rc::default();
        let mut opts = opts.clone();
        opts.progress = Some(progress_display(sink.clone()));
        let session = Session::start(&opts, image_dir, what)?;
        Ok(Cells { session, sink, count: 0 })
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs `code` as the next cell, sending its outputs to `sink` as they are produced. A cell
    /// tagged `parameters` sets the notebook's parameters (see [`Session::eval_parameters`]).
    pub fn run(&mut self, code: &str, parameters: bool, sink: Sink) -> CellRun {
        self.count += 1;
        self.session.name_next_input(&format!("In [{}]", self.count));
        self.run_input(code, parameters, sink)
    }

    /// Runs `code` without counting it as a cell (Jupyter's silent executions).
    pub fn run_silently(&mut self, code: &str, sink: Sink) -> CellRun {
        self.session.name_next_input("<silent input>");
        self.run_input(code, false, sink)
    }

    fn run_input(&mut self, code: &str, parameters: bool, sink: Sink) -> CellRun {
        *self.sink.borrow_mut() = Some(sink.clone());
        let heard = Rc::new(Counter::new(0usize));
        let (to, count) = (sink.clone(), heard.clone());
        self.session.set_listener(Some(Rc::new(move |o: &Output| {
            count.set(count.get() + 1);
            to(output(o));
        })));
        let result = if parameters { self.session.eval_parameters(code) } else { self.session.eval(code) };
        self.session.set_listener(None);
        *self.sink.borrow_mut() = None;
        // what the session added after the input ran (its warnings) has not been heard yet
        let rest = |outputs: &[Output]| outputs.iter().skip(heard.get()).for_each(|o| sink(output(o)));
        match result {
            Ok(e) => {
                rest(&e.outputs);
                result_outputs(&e).into_iter().for_each(|o| sink(o));
                if e.interrupted {
                    sink(interrupted("training stopped between batches; the models keep what was trained"));
                }
                CellRun { ok: !e.interrupted, interrupted: e.interrupted }
            }
            Err(e) => {
                rest(&self.session.failed_outputs());
                // an interrupt outside training stops the script where it is
                let stopped = e.message == crate::script::INTERRUPTED;
                let at = match e.line {
                    Some(line) => format!("the script stopped at {}, line {line}", e.file),
                    None => format!("the script stopped in {}", e.file),
                };
                sink(if stopped { interrupted(&at) } else { error(&e) });
                CellRun { ok: false, interrupted: stopped }
            }
        }
    }
}

/// A cell's value: a `fit`/`distill` result as a table, anything else as text.
fn result_outputs(e: &Evaluated) -> Vec<CellOutput> {
    let mut out = Vec::new();
    if let Some((header, rows)) = &e.value_table {
        out.push(CellOutput::Result(table(header, rows)));
    }
    if let Some(v) = &e.value {
        out.push(CellOutput::Result(Media::new(vec![MediaType::Plain(v.clone())])));
    }
    out
}

/// An output of the session as a cell output.
pub fn output(o: &Output) -> CellOutput {
    match o {
        Output::Text(t) => CellOutput::Stream(format!("{t}\n")),
        Output::Table(header, rows) => CellOutput::Display { data: table(header, rows), display_id: None },
        Output::Image(path) => CellOutput::Display { data: image(path), display_id: None },
    }
}

/// A table as text/plain (aligned columns), text/markdown and text/html.
pub fn table(header: &[String], rows: &[Vec<String>]) -> Media {
    use unicode_width::UnicodeWidthStr;
    let columns = header.len();
    let cell = |r: &[String], k: usize| r.get(k).cloned().unwrap_or_default();
    let widths: Vec<usize> =
        (0..columns).map(|k| rows.iter().map(|r| cell(r, k).width()).chain([header[k].width()]).max().unwrap_or(0)).collect();
    let line = |r: &[String]| {
        let padded: Vec<String> = (0..columns).map(|k| format!("{}{}", cell(r, k), " ".repeat(widths[k] - cell(r, k).width()))).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut plain = line(header);
    plain.push_str(&format!("{}\n", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ")));
    rows.iter().for_each(|r| plain.push_str(&line(r)));
    let html_row = |r: &[String], tag: &str| {
        let cells: String = (0..columns).map(|k| format!("<{tag}>{}</{tag}>", escape_html(&cell(r, k)))).collect();
        format!("<tr>{cells}</tr>")
    };
    let body: String = rows.iter().map(|r| html_row(r, "td")).collect();
    let html = format!("<table>\n<thead>{}</thead>\n<tbody>{body}</tbody>\n</table>", html_row(header, "th"));
    Media::new(vec![MediaType::Plain(plain), MediaType::Markdown(markdown_table(header, rows)), MediaType::Html(html)])
}

/// A PNG as image/png (base64), with its file name as text/plain.
pub fn image(path: &std::path::Path) -> Media {
    let name = path.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string());
    match std::fs::read(path) {
        Ok(bytes) => Media::new(vec![MediaType::Png(data_encoding::BASE64.encode(&bytes)), MediaType::Plain(format!("<plot {name}>"))]),
        Err(e) => Media::new(vec![MediaType::Plain(format!("<plot {name}: cannot read {}: {e}>", path.display()))]),
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A script error as Jupyter's: `ename` says where it was found (`ScriptError` for a failure,
/// `UsageError` for a bad call or parameter), `evalue` is the message, and the traceback holds
/// the cell's line and column, the source line and the caret under the column.
pub fn error(e: &ScriptError) -> CellOutput {
    let ename = match e.kind {
        crate::script::ErrorKind::Usage => "UsageError",
        crate::script::ErrorKind::Failure => "ScriptError",
    };
    let traceback = e.to_string().lines().map(String::from).collect();
    CellOutput::Error { ename: ename.into(), evalue: e.message.clone(), traceback }
}

/// An interrupted cell: `where_` says what stopped (training between batches, or the script at
/// a line); the session keeps its variables.
fn interrupted(where_: &str) -> CellOutput {
    let evalue = format!("an interrupt stopped this cell ({where_}); the session keeps its variables");
    CellOutput::Error { ename: "Interrupted".into(), traceback: vec![format!("Interrupted: {evalue}")], evalue }
}

/// Training progress as one display per `fit`/`distill` call, updated in place (at most four
/// times a second, and at each epoch's end): the finished epochs' loss and accuracy, then the
/// running epoch's batch, loss and accuracy.
fn progress_display(sink: Rc<RefCell<Option<Sink>>>) -> crate::script::ProgressFn {
    struct Shown {
        id: String,
        epochs: usize,
        lines: Vec<String>,
        last: Instant,
    }
    let shown: RefCell<Option<Shown>> = RefCell::new(None);
    let displays = Counter::new(0usize);
    Rc::new(move |p: &Progress| {
        let Some(to) = sink.borrow().clone() else { return };
        let mut slot = shown.borrow_mut();
        let (current, epoch_end) = match p {
            Progress::Batch { label, progress: b } => {
                if b.epoch == 1 && b.batch == 1 {
                    displays.set(displays.get() + 1);
                    let id = format!("retort-progress-{}-{}", std::process::id(), displays.get());
                    *slot = Some(Shown { id: id.clone(), epochs: b.epochs, lines: vec![], last: Instant::now() });
                    let text = format!("{label} epoch 1/{}: starting\n", b.epochs);
                    to(CellOutput::Display { data: Media::new(vec![MediaType::Plain(text)]), display_id: Some(id) });
                }
                let line = format!(
                    "{label} epoch {}/{}: batch {}/{}, loss {:.4}, train acc {:.2}%",
                    b.epoch,
                    b.epochs,
                    b.batch,
                    b.batches,
                    b.mean_loss,
                    100.0 * b.accuracy
                );
                (line, false)
            }
            Progress::Epoch { label, record: r } => {
                let line = format!(
                    "{label} epoch {}/{}: loss {:.4}, train acc {:.2}%, test acc {:.2}%",
                    r.epoch,
                    slot.as_ref().map_or(r.epoch, |s| s.epochs),
                    r.train_loss,
                    100.0 * r.train_accuracy,
                    100.0 * r.test_accuracy
                );
                (line, true)
            }
        };
        let Some(s) = slot.as_mut() else { return };
        if !epoch_end && s.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        s.last = Instant::now();
        let mut text: String = s.lines.iter().map(|l| format!("{l}\n")).collect();
        text.push_str(&format!("{current}\n"));
        if epoch_end {
            s.lines.push(current);
        }
        to(CellOutput::Update { data: Media::new(vec![MediaType::Plain(text)]), display_id: s.id.clone() });
    })
}
