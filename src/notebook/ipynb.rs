//! Jupyter notebooks (`.ipynb`, nbformat 4, read and written by the `nbformat` crate) without
//! Jupyter: `retort notebook run NB.ipynb` runs the code cells in order in one session
//! ([`Cells`]) and writes their outputs as nbformat 4 outputs, the bundles the kernel sends;
//! `retort notebook convert` turns a Markdown notebook into `.ipynb` and back.

use super::cell::{CellOutput, Cells};
use crate::script::{RunOptions, ScriptError};
use jupyter_protocol::ExecutionCount;
use nbformat::v4::{self, CellId, CellMetadata, DisplayData, ErrorOutput, ExecuteResult, MultilineString, Notebook};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The kernel's name in kernelspecs and notebooks' metadata.
pub const KERNEL_NAME: &str = "retort";
/// The kernel's display name in Jupyter's launcher.
pub const DISPLAY_NAME: &str = "retort (Rhai)";
/// The MIME type of Rhai source, in `language_info`.
pub const MIMETYPE: &str = "text/x-rhai";

/// The tag of papermill's parameters cell.
pub const PARAMETERS_TAG: &str = "parameters";

/// The metadata a notebook of this kernel carries: `kernelspec` and `language_info`.
pub fn set_kernel_metadata(nb: &mut Notebook) {
    nb.metadata.kernelspec = Some(v4::KernelSpec {
        display_name: DISPLAY_NAME.into(),
        name: KERNEL_NAME.into(),
        language: Some("rhai".into()),
        additional: HashMap::new(),
    });
    let mut additional = HashMap::new();
    additional.insert("file_extension".to_string(), serde_json::json!(".rhai"));
    additional.insert("mimetype".to_string(), serde_json::json!(MIMETYPE));
    additional.insert("pygments_lexer".to_string(), serde_json::json!("rust"));
    nb.metadata.language_info = Some(v4::LanguageInfo {
        name: "rhai".into(),
        version: Some(crate::script::RHAI_VERSION.into()),
        codemirror_mode: Some(v4::CodemirrorMode::String("rust".into())),
        additional,
    });
}

/// Reads a notebook of nbformat 4 (4.0 to 4.4 upgraded to 4.5, cells without ids given one);
/// an error names the file and what is wrong, and a notebook of another kernel is refused.
pub fn read(path: &Path) -> Result<Notebook, ScriptError> {
    let shown = path.display().to_string();
    let bad = |m: String| ScriptError::usage(&shown, m);
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read notebook: {e}")))?;
    let parsed = nbformat::parse_notebook(&text).map_err(|e| bad(format!("not a Jupyter notebook (nbformat 4 JSON): {e}")))?;
    let nb = match parsed {
        nbformat::Notebook::V4(nb) => nb,
        nbformat::Notebook::V4QuirksMode(q) => q.repair(),
        nbformat::Notebook::Legacy(old) => {
            nbformat::upgrade_legacy_notebook(old).map_err(|e| bad(format!("cannot upgrade to nbformat 4.5: {e}")))?
        }
        nbformat::Notebook::V3(old) => {
            nbformat::upgrade_v3_notebook(old).map_err(|e| bad(format!("cannot upgrade to nbformat 4.5: {e}")))?
        }
        _ => return Err(bad("an nbformat version retort does not read; save it as nbformat 4".into())),
    };
    if let Some(k) = &nb.metadata.kernelspec {
        if k.name != KERNEL_NAME && k.language.as_deref() != Some("rhai") {
            return Err(bad(format!(
                "this notebook's kernel is '{}' (language {}); retort runs and converts notebooks of its own kernel, '{KERNEL_NAME}' (language rhai); in Jupyter, change the notebook's kernel to \"{DISPLAY_NAME}\"",
                k.name,
                k.language.as_deref().unwrap_or("not given")
            )));
        }
    }
    Ok(nb)
}

/// The notebook as nbformat 4.5 JSON, keys sorted and indented by one space like Python's
/// `nbformat.write`.
pub fn to_json(nb: Notebook) -> Result<String, ScriptError> {
    let mut nb = nb;
    nb.nbformat = 4;
    nb.nbformat_minor = 5;
    nbformat::serialize_notebook(&nbformat::Notebook::V4(nb)).map_err(|e| ScriptError::usage("<notebook>", e.to_string()))
}

/// A folder removed when dropped (an unrecorded session's plots: the REPL's, the kernel's, an
/// `.ipynb` run's).
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What running a notebook gave: the executed notebook and whether every cell succeeded.
pub struct IpynbRun {
    pub notebook: Notebook,
    pub ok: bool,
    /// The failing cell and its error (or the parameters error), for the terminal.
    pub failure: Option<String>,
}

fn tagged_parameters(metadata: &CellMetadata) -> bool {
    metadata.tags.as_ref().is_some_and(|t| t.iter().any(|t| t == PARAMETERS_TAG))
}

/// Before any cell runs: parameters given (`--set`, `--config`) need a cell tagged `parameters`
/// that declares each of them.
fn check_parameters(nb: &Notebook, session: &crate::script::session::Session, shown: &str) -> Result<(), ScriptError> {
    let given = session.given_params();
    if given.is_empty() {
        return Ok(());
    }
    let cell = nb.cells.iter().find_map(|c| match c {
        v4::Cell::Code { metadata, source, .. } if tagged_parameters(metadata) => Some(source.concat()),
        _ => None,
    });
    let Some(code) = cell else {
        return Err(ScriptError::usage(
            shown,
            format!("parameters given ({}), but no code cell is tagged `parameters`: tag the cell that sets their defaults with `let` (docs/jupyter.md)", given.join(", ")),
        ));
    };
    let declared = session.declared(&code).unwrap_or_default();
    for name in &given {
        if !declared.contains(name) {
            let close = crate::script::complete::close_names(name, declared.iter().map(String::as_str));
            let hint = if close.is_empty() { String::new() } else { format!("; did you mean '{}'?", close.join("', '")) };
            return Err(ScriptError::usage(
                shown,
                format!(
                    "the parameter '{name}' is not declared by the cell tagged `parameters` (it declares: {}){hint}",
                    declared.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Runs the code cells of `input` in order, in one session, and returns the notebook with their
/// outputs and execution counts, plots embedded as image/png (their files, named as the kernel
/// names them, kept in the run record if there is one). The run stops at the first
/// cell that fails (later cells are left without outputs, as nbclient does). A cell tagged
/// `parameters` sets the notebook's parameters: `--set` values replace its defaults.
pub fn run(input: &Path, opts: &RunOptions, started: &mut dyn FnMut(Option<&Path>, Arc<AtomicBool>)) -> Result<IpynbRun, ScriptError> {
    let mut nb = read(input)?;
    let shown = input.display().to_string();
    // plots are embedded in the notebook: their files go to the run record, or to a temporary
    // folder removed at the end
    let scratch = opts.record.is_none().then(|| TempDir(std::env::temp_dir().join(format!("retort-ipynb-{}", std::process::id()))));
    if let Some(t) = &scratch {
        std::fs::create_dir_all(&t.0).map_err(|e| ScriptError::usage(&t.0.display().to_string(), e.to_string()))?;
    }
    let mut cells = Cells::start(opts, scratch.as_ref().map(|t| t.0.clone()), &shown)?;
    started(cells.session().run_dir().as_deref(), cells.session().interrupt_handle());
    check_parameters(&nb, cells.session(), &shown)?;
    let codes: Vec<String> = nb.cells.iter().filter_map(|c| matches!(c, v4::Cell::Code { .. }).then(|| c.source().concat())).collect();
    if let Some((k, e)) = cells.session().refused_without_record(&codes.iter().map(String::as_str).collect::<Vec<_>>()) {
        return Err(ScriptError { file: format!("{shown}, code cell {}", k + 1), ..e });
    }
    let (mut ok, mut failure) = (true, None);
    for (index, cell) in nb.cells.iter_mut().enumerate() {
        let v4::Cell::Code { metadata, execution_count, source, outputs, .. } = cell else { continue };
        outputs.clear();
        *execution_count = None;
        let code = source.concat();
        // an empty cell is not run (nbclient skips it too)
        if !ok || code.trim().is_empty() {
            continue;
        }
        let heard: Rc<RefCell<Vec<CellOutput>>> = Rc::default();
        let to = heard.clone();
        let ran = cells.run(&code, tagged_parameters(metadata), Rc::new(move |o| to.borrow_mut().push(o)));
        *execution_count = Some(cells.count as i32);
        *outputs = to_outputs(heard.take(), cells.count);
        if !ran.ok {
            ok = false;
            let what = outputs.iter().rev().find_map(|o| match o {
                v4::Output::Error(e) => Some(format!("{}: {}", e.ename, e.evalue)),
                _ => None,
            });
            failure = Some(format!("cell {} (In [{}]) failed: {}", index + 1, cells.count, what.unwrap_or_default()));
        }
    }
    if ok {
        if let Some(message) = cells.session().undeclared_params() {
            ok = false;
            let outputs = nb.cells.iter_mut().rev().find_map(|c| match c {
                v4::Cell::Code { outputs, .. } => Some(outputs),
                _ => None,
            });
            if let Some(outputs) = outputs {
                outputs.push(v4::Output::Error(ErrorOutput {
                    ename: "UsageError".into(),
                    evalue: message.clone(),
                    traceback: vec![message],
                }));
            }
        }
    }
    set_kernel_metadata(&mut nb);
    cells.session().finish((!ok).then(|| "a cell failed".to_string()))?;
    Ok(IpynbRun { notebook: nb, ok, failure })
}

/// A cell's outputs as nbformat's, in order: each stream message its own output (as nbclient
/// records them), display updates applied to the display they name.
pub fn to_outputs(heard: Vec<CellOutput>, count: usize) -> Vec<v4::Output> {
    let mut out: Vec<v4::Output> = Vec::new();
    let mut displays: HashMap<String, usize> = HashMap::new();
    for o in heard {
        match o {
            CellOutput::Stream(text) => out.push(v4::Output::Stream { name: "stdout".into(), text: MultilineString(text) }),
            CellOutput::Display { data, display_id } => {
                if let Some(id) = display_id {
                    displays.insert(id, out.len());
                }
                out.push(v4::Output::DisplayData(DisplayData { data, metadata: Default::default() }));
            }
            CellOutput::Update { data, display_id } => {
                if let Some(v4::Output::DisplayData(d)) = displays.get(&display_id).and_then(|k| out.get_mut(*k)) {
                    d.data = data;
                }
            }
            CellOutput::Result(data) => out.push(v4::Output::ExecuteResult(ExecuteResult {
                execution_count: ExecutionCount::new(count),
                data,
                metadata: Default::default(),
            })),
            CellOutput::Error { ename, evalue, traceback } => out.push(v4::Output::Error(ErrorOutput { ename, evalue, traceback })),
        }
    }
    out
}

/// A Markdown notebook as `.ipynb`: each ```rhai block a code cell (```rhai parameters: tagged
/// `parameters`), the text between them Markdown cells; generated outputs are left out (running
/// the notebook makes them again).
pub fn from_markdown(text: &str) -> Notebook {
    let source = super::strip(text);
    let mut cells = Vec::new();
    let mut copied = 0;
    let lines = |s: &str| s.split_inclusive('\n').map(String::from).collect::<Vec<_>>();
    let id = |n: usize| CellId::new(&format!("cell-{n}")).expect("letters, digits and dashes make a valid cell id");
    let markdown = |cells: &mut Vec<v4::Cell>, s: &str| {
        let s = s.trim_matches('\n');
        if !s.is_empty() {
            let n = cells.len() + 1;
            cells.push(v4::Cell::Markdown { id: id(n), metadata: CellMetadata::default(), source: lines(s), attachments: None });
        }
    };
    for c in super::cells(&source) {
        markdown(&mut cells, &source[copied..c.start]);
        let code = c.code.trim_end_matches('\n');
        let n = cells.len() + 1;
        let tags = c.parameters.then(|| vec![PARAMETERS_TAG.to_string()]);
        cells.push(v4::Cell::Code {
            id: id(n),
            metadata: CellMetadata { tags, ..Default::default() },
            execution_count: None,
            source: lines(code),
            outputs: vec![],
        });
        copied = c.end;
    }
    markdown(&mut cells, &source[copied..]);
    let mut nb = Notebook { metadata: Default::default(), nbformat: 4, nbformat_minor: 5, cells };
    set_kernel_metadata(&mut nb);
    nb
}

/// An `.ipynb` as a Markdown notebook: Markdown cells as they are, code cells as ```rhai blocks
/// (the `parameters` cell as ```rhai parameters; other tags are not kept), a raw cell as a
/// ```text block; outputs are left out.
pub fn to_markdown(nb: &Notebook) -> String {
    let blocks: Vec<String> = nb
        .cells
        .iter()
        .map(|c| {
            let text = c.source().concat();
            let text = text.trim_end_matches('\n');
            match c {
                v4::Cell::Markdown { .. } => format!("{text}\n"),
                v4::Cell::Code { metadata, .. } => {
                    let info = if tagged_parameters(metadata) { "rhai parameters" } else { "rhai" };
                    format!("{}{info}\n{text}\n{}\n", fence(text), fence(text))
                }
                v4::Cell::Raw { .. } => format!("{}text\n{text}\n{}\n", fence(text), fence(text)),
            }
        })
        .collect();
    blocks.join("\n")
}

/// A code fence longer than any run of backticks in `text` (CommonMark closes a fence only
/// with one at least as long).
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}
