//! The Rhai scripting layer, the only module that names rhai: `retort run` and `retort check`.
//!
//! A script sees the built-ins registered by [`tensor_api`], [`tensor_math`] and [`train_api`],
//! a `params` map (from `--set`), and the stdlib recipes through `import`.

pub mod api;
pub mod complete;
mod convert;
pub mod core;
mod data_api;
mod display_api;
pub mod docs;
mod error;
mod files_api;
mod hooks;
mod loss_api;
mod modules;
mod optim_api;
pub mod output;
mod params;
mod records_api;
pub mod session;
mod source_text;
mod state;
mod tensor_api;
mod tensor_math;
mod tensor_select;
mod train_api;

pub use error::{ErrorKind, ScriptError, INTERRUPTED};
pub use modules::STDLIB;

use crate::run::recording::Recording;
use crate::run::RunConfig;
use rhai::{Dynamic, Engine, Map, Scope};
use state::State;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Training progress, for a display.
#[derive(Debug, Clone)]
pub enum Progress {
    /// After each batch (`label`: "fit" or "distill").
    Batch { label: &'static str, progress: crate::train::BatchProgress },
    /// After each epoch.
    Epoch { label: &'static str, record: crate::train::EpochRecord },
}

/// Receives [`Progress`].
pub type ProgressFn = Rc<dyn Fn(&Progress)>;

/// How to run a script.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Where training progress goes (none: no progress display).
    pub progress: Option<ProgressFn>,
    /// `key=value` pairs from `--set`; dotted keys make nested maps.
    pub sets: Vec<String>,
    /// A YAML file of parameters under the `--set` values.
    pub config: Option<PathBuf>,
    /// Where to record the run (none: not recorded).
    pub record: Option<crate::run::recording::Record>,
    pub seed: u64,
    /// Bound on script operations (runaway loops stop with an error).
    pub max_operations: Option<u64>,
    /// Extra import folders (after the script's own folder), e.g. from `RETORT_PATH`.
    pub search_path: Vec<PathBuf>,
    /// Put the script's report into this Markdown file as its section (needs a run directory).
    pub report: Option<PathBuf>,
    /// The section's name in `report` (default: the script's file name without extension).
    pub report_section: Option<String>,
    /// Where training runs unless a `fit`/`distill` call names a device.
    pub device: crate::devices::DeviceName,
}

/// Where script output goes.
pub type Output = Rc<RefCell<dyn FnMut(&str)>>;

/// An engine with every built-in registered.
pub fn engine(state: &Rc<State>, out: Output, dirs: Vec<PathBuf>, max_operations: Option<u64>) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_expr_depths(128, 64);
    comparisons(&mut engine);
    if let Some(n) = max_operations {
        engine.set_max_operations(n);
    }
    let o = out.clone();
    engine.on_print(move |s| (o.borrow_mut())(s));
    let o = out;
    engine.on_debug(move |s, _, _| (o.borrow_mut())(s));
    let st = state.clone();
    engine.on_progress(move |_| if st.interrupted() { Some(Dynamic::from("interrupted")) } else { None });
    tensor_api::register(&mut engine, state);
    tensor_math::register(&mut engine);
    tensor_select::register(&mut engine);
    train_api::register(&mut engine, state);
    files_api::register(&mut engine, state);
    display_api::register(&mut engine, state);
    records_api::register(&mut engine);
    engine.set_module_resolver(modules::Resolver::new(dirs, state));
    error::know_signatures(|| docs::signatures(&engine));
    engine
}

pub use display_api::{describe_value, markdown_table};

/// The version of the Rhai engine scripts run on (from Cargo.lock, at build time).
pub const RHAI_VERSION: &str = env!("RETORT_RHAI_VERSION");

/// Comparisons of numbers: exact, as IEEE 754 defines them, and refused against strings,
/// booleans and characters. Rhai's own compare floats within a relative
/// epsilon, and against zero within 2.2e-16: `1e-17 > 0.0` was false, `0.1 + 0.2 == 0.3`
/// true, and a statistic that tests `sxx == 0.0` took tiny data for constant. Registered
/// functions override the built-in operators only with fast operators off.
fn comparisons(engine: &mut Engine) {
    use rhai::{FLOAT, INT};
    engine.set_fast_operators(false);
    macro_rules! ops {
        ($($name:literal => $op:tt),*) => {$(
            engine.register_fn($name, |a: FLOAT, b: FLOAT| a $op b);
            engine.register_fn($name, |a: FLOAT, b: INT| a $op b as FLOAT);
            engine.register_fn($name, |a: INT, b: FLOAT| (a as FLOAT) $op b);
        )*};
    }
    ops!("==" => ==, "!=" => !=, "<" => <, "<=" => <=, ">" => >, ">=" => >=);
    // a number against a string, a bool or a character: Rhai answers false (true for !=)
    // without a word; here it is an error (`x == ()`, the test for "not set yet", stays)
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        macro_rules! refuse {
            ($($a:ty, $b:ty);*) => {$(
                engine.register_fn(op, move |a: $a, b: $b| -> convert::Res<bool> {
                    let (a, b) = (Dynamic::from(a), Dynamic::from(b));
                    convert::err(format!("{op}: {} and {} cannot be compared ({a:?} {op} {b:?})", convert::type_of(&a), convert::type_of(&b)))
                });
            )*};
        }
        refuse!(INT, rhai::ImmutableString; rhai::ImmutableString, INT; FLOAT, rhai::ImmutableString; rhai::ImmutableString, FLOAT;
            INT, bool; bool, INT; FLOAT, bool; bool, FLOAT; INT, char; char, INT; FLOAT, char; char, FLOAT;
            rhai::ImmutableString, bool; bool, rhai::ImmutableString);
    }
}

/// Refuses comparisons of a retort value (a model, a data set, an optimizer...) with anything:
/// Rhai's fallback would answer `model == 1` with false, silently.
pub(crate) fn refuse_comparisons<T: rhai::Variant + Clone>(engine: &mut Engine, what: &'static str) {
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        engine.register_fn(op, move |_: T, other: Dynamic| -> convert::Res<bool> {
            convert::err(format!("{op}: a {what} cannot be compared with {}; compare one of its properties", convert::type_of(&other)))
        });
        engine.register_fn(op, move |other: Dynamic, _: T| -> convert::Res<bool> {
            convert::err(format!("{op}: {} cannot be compared with a {what}; compare one of its properties", convert::type_of(&other)))
        });
    }
}

/// The option keys of a built-in that takes an options map (`fit`, `distill`, `model`,
/// `dataset`, the optimizers), for completion inside its `#{ ... }`.
pub fn option_keys(builtin: &str) -> Option<Vec<&'static str>> {
    Some(match builtin {
        "fit" => train_api::TRAIN_KEYS.to_vec(),
        "distill" => train_api::TRAIN_KEYS.iter().chain(train_api::DISTILL_KEYS).copied().collect(),
        "model" => train_api::MODEL_KEYS.to_vec(),
        "dataset" => data_api::DATASET_KEYS.to_vec(),
        "sgd" => optim_api::SGD_KEYS.to_vec(),
        "adam" | "adamw" => optim_api::ADAM_KEYS.to_vec(),
        _ => return None,
    })
}

/// The names of the documented built-ins (for completion).
pub fn builtin_names() -> Vec<String> {
    thread_local! {
        static NAMES: Vec<String> = {
            let mut v: Vec<String> = docs::examples().into_iter().map(|(n, _)| n).filter(|n| !n.starts_with("get$")).collect();
            v.sort();
            v.dedup();
            v
        };
    }
    NAMES.with(|n| n.clone())
}

/// An engine for tools (docs, checks) with output discarded.
pub fn bare_engine() -> Engine {
    let state = Rc::new(State::new(0, Arc::new(AtomicBool::new(false))));
    engine(&state, Rc::new(RefCell::new(|_: &str| {})), vec![], None)
}

/// The folders imports are searched in: the script's folder, then `search_path`.
fn import_dirs(path: &Path, opts: &RunOptions) -> Vec<PathBuf> {
    let mut dirs = vec![path.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."))];
    dirs.extend(opts.search_path.iter().cloned());
    dirs
}

fn read(path: &Path) -> Result<String, ScriptError> {
    std::fs::read_to_string(path)
        .map_err(|e| ScriptError::usage(&path.display().to_string(), format!("cannot read script {}: {e}", path.display())))
}

/// Parses a script and resolves its imports without running it.
pub fn check(path: &Path, opts: &RunOptions) -> Result<(), ScriptError> {
    let source = read(path)?;
    let file = path.display().to_string();
    let params = params::Params::load(opts.config.as_deref(), &opts.sets).map_err(|m| ScriptError::usage(&file, m))?;
    let io =
        core::Io { out: Rc::new(RefCell::new(|_: &str| {})), emit: Rc::new(|_| {}), import_dirs: import_dirs(path, opts), image_dir: None };
    let core = core::start(opts, params, Arc::new(AtomicBool::new(false)), io);
    let ast = compile(&core.engine, &file, &source, &core.scope, &core.state.params)?;
    // only a literal defaults map can be checked without running the script: say so rather
    // than pass keys that `retort run` may refuse
    let calls = defaults_calls(&ast);
    if !core.state.params.map.is_empty() && calls.iter().all(|(_, map)| map.is_none()) {
        let pos = calls.first().map_or(rhai::Position::NONE, |(p, _)| *p);
        return Err(ScriptError::at_position(
            &file,
            &source,
            pos,
            "params: this script builds its defaults(...) map at run time, so retort check cannot verify --set/--config keys against it; run the script, or write the defaults as a map literal".into(),
            ErrorKind::Failure,
        ));
    }
    Ok(())
}

/// Parses `source` in `scope`, checks the given parameters against its `defaults(...)`, and
/// resolves its imports.
fn compile(engine: &Engine, file: &str, source: &str, scope: &Scope, params: &params::Params) -> Result<rhai::AST, ScriptError> {
    let parsed = engine.compile_with_scope(scope, source).map_err(|e| ScriptError::from_parse(file, source, &e))?;
    check_params(file, source, &parsed, params)?;
    // resolve imports now, so a bad import fails before anything runs
    engine.compile_into_self_contained(scope, source).map_err(|e| ScriptError::from_eval(file, source, &e)).map(|mut a| {
        a.set_source(file);
        a
    })
}

/// The `defaults(#{...})` calls of a script: their position, and their map when it is a literal.
fn defaults_calls(ast: &rhai::AST) -> Vec<(rhai::Position, Option<Map>)> {
    use rhai::{ASTNode, Expr, Stmt};
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        // a call is an expression, or a statement of its own (`defaults(#{...});`)
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) | Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => Some((call, pos)),
            _ => None,
        };
        if let Some((call, pos)) = call.filter(|(c, _)| c.name.as_str() == "defaults" && c.args.len() == 1) {
            found.push((*pos, call.args[0].get_literal_value(None).and_then(|d| d.try_cast::<Map>())));
        }
        true
    });
    found
}

/// Given parameters (`--config`, `--set`) must be declared by the script: a script without
/// `defaults(...)` would ignore them, and a literal `defaults(#{...})` is checked before anything
/// runs (`retort check` included), naming the key and where it came from.
fn check_params(file: &str, source: &str, ast: &rhai::AST, params: &params::Params) -> Result<(), ScriptError> {
    let Some(first) = params.map.keys().next() else { return Ok(()) };
    let calls = defaults_calls(ast);
    if calls.is_empty() {
        let from = params.sources.get(first.as_str()).map_or(String::new(), |s| format!(" (from {s})"));
        return Err(ScriptError::failure(
            file,
            format!(
                "params: '{first}'{from} is not a parameter of this script: it declares none, so the value would be ignored; declare it with `let p = defaults(#{{ {first}: ... }});` and read p.{first}"
            ),
        ));
    }
    for (pos, map) in calls {
        if let Some(defaults) = map {
            params.over(&defaults).map_err(|e| ScriptError::at_position(file, source, pos, e.to_string(), ErrorKind::Failure))?;
        }
    }
    Ok(())
}

/// Runs the script at `path`, sending `print` output to `out`. `interrupt` stops it (Ctrl-C).
pub fn run(path: &Path, opts: &RunOptions, out: Output, interrupt: Arc<AtomicBool>) -> Result<(), ScriptError> {
    let source = read(path)?;
    run_source(&path.display().to_string(), &source, import_dirs(path, opts), opts, out, interrupt)
}

/// The parameters as YAML, for the run record.
pub(crate) fn params_yaml(map: &Map) -> serde_yaml::Value {
    rhai::serde::from_dynamic(&Dynamic::from_map(map.clone())).unwrap_or(serde_yaml::Value::Null)
}

/// Copies the local modules imported so far into the run record's `source/` (the script's
/// own folder layout, so the copy resolves its imports the same way); a module outside the
/// script's folder gets a warning instead.
pub(super) fn record_sources(rec: &Recording, state: &State) -> crate::Result<()> {
    let mut config = rec.dir.read_config()?;
    let before = config.sources.len();
    for (rel, file) in state.imported.borrow().iter() {
        if config.sources.contains(rel) {
            continue;
        }
        let text = std::fs::read_to_string(file).map_err(|e| crate::Error::io(file, e))?;
        if rec.dir.write_source(rel, &text)? {
            config.sources.push(rel.clone());
        } else {
            state.emit(output::Output::Text(format!(
                "warning: import \"{rel}\" ({}) lies outside the script's folder, so the run record holds no copy of it",
                file.display()
            )));
            config.sources.push(rel.clone());
        }
    }
    if config.sources.len() != before {
        rec.dir.write_config(&config)?;
    }
    Ok(())
}

/// Runs script text (named `file` in errors) with imports searched in `dirs`. With a run
/// record, the directory is made only once the script compiles; it holds a copy of the script
/// and its local modules, the parameters it ran with, and how it ended (an error, an interrupt
/// with the command that resumes it).
pub fn run_source(
    file: &str,
    source: &str,
    dirs: Vec<PathBuf>,
    opts: &RunOptions,
    out: Output,
    interrupt: Arc<AtomicBool>,
) -> Result<(), ScriptError> {
    use crate::run::recording::Record;
    let started = std::time::Instant::now();
    let usage = |e: crate::Error| ScriptError::usage(file, e.to_string());
    let script_hash = crate::run::content_hash(source);
    // parameters: from the run being resumed, or from --config and --set
    let mut params = params::Params::load(opts.config.as_deref(), &opts.sets).map_err(|m| ScriptError::usage(file, m))?;
    let mut resumed = None;
    if let Some(Record::Resume { dir, current }) = &opts.record {
        let (rec, recorded) = Recording::open(dir).map_err(usage)?;
        if recorded.script_hash != script_hash && !current {
            return Err(ScriptError::usage(
                file,
                format!(
                    "{file} is not the script the run in {} was recorded with; resume from its copy (retort run --resume {0}), or add --use-current to resume with this one",
                    dir.display()
                ),
            ));
        }
        let d: Dynamic = rhai::serde::to_dynamic(recorded.given_params()).map_err(|e| ScriptError::usage(file, e.to_string()))?;
        params.map = d.try_cast::<Map>().unwrap_or_default();
        resumed = Some(rec);
    }
    let given = params_yaml(&params.map);
    // a script prints tables as Markdown and names the images it wrote
    let printer = out.clone();
    let emit = Rc::new(move |o| match o {
        output::Output::Text(t) => (printer.borrow_mut())(&t),
        output::Output::Table(h, rows) => (printer.borrow_mut())(markdown_table(&h, &rows).trim_end()),
        output::Output::Image(p) => (printer.borrow_mut())(&format!("wrote {}", p.display())),
    });
    // images go to the run directory, once it exists
    let core::Core { state, engine, mut scope } =
        core::start(opts, params, interrupt, core::Io { out, emit, import_dirs: dirs, image_dir: None });
    state.sources.borrow_mut().insert(file.to_string(), source.to_string());
    let ast = compile(&engine, file, source, &scope, &state.params)?;
    check_run_dir_calls(file, source, &ast, opts.record.is_some(), "retort run --no-record")?;
    if opts.record.is_none() {
        // and in the local modules it imports
        let imported = state.imported.borrow().clone();
        for (_, path) in imported {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| ScriptError::usage(&shown, e.to_string()))?;
            if let Ok(module) = engine.compile(&text) {
                check_run_dir_calls(&shown, &text, &module, false, "retort run --no-record")?;
            }
        }
    }
    // the script compiles: now the run directory
    let recording = match (&opts.record, resumed) {
        (Some(record @ (Record::New(_) | Record::Fresh(_))), _) => {
            let absolute = |p: &Path| std::fs::canonicalize(p).map_or(p.display().to_string(), |p| p.display().to_string());
            let config_file = opts.config.as_deref().map(absolute);
            let mut config = RunConfig::new("script", file, &script_hash, opts.seed, config_file, opts.sets.clone(), given);
            config.script_path = Some(absolute(Path::new(file)));
            let name = Path::new(file).file_name().map_or("script.rhai".into(), |n| n.to_string_lossy().to_string());
            config.sources = vec![name.clone()];
            let rec = Recording::create(record, &config).map_err(usage)?;
            rec.dir.write_source(&name, source).map_err(usage)?;
            // the --config file too (its values are in config.yaml as `given` as well)
            if let Some(cfg) = &opts.config {
                let text = std::fs::read_to_string(cfg).map_err(|e| ScriptError::usage(file, format!("{}: {e}", cfg.display())))?;
                let cfg_name = cfg.file_name().map_or("config.yaml".into(), |n| n.to_string_lossy().to_string());
                rec.dir.write_source(&format!("config/{cfg_name}"), &text).map_err(usage)?;
            }
            Some(rec)
        }
        (Some(Record::Resume { current: true, .. }), Some(rec)) => {
            // resumed with an edited script: the record says so and keeps that version too
            let mut config = rec.dir.read_config().map_err(usage)?;
            if config.script_hash != script_hash {
                let stem = Path::new(file).file_stem().map_or("script".into(), |n| n.to_string_lossy().to_string());
                let copy = format!("{stem}.resumed-{}.rhai", config.notes.len() + 1);
                rec.dir.write_source(&copy, source).map_err(usage)?;
                config.notes.push(format!(
                    "{} UTC: resumed with an edited script (content hash {script_hash}, copied to source/{copy}) after stage {} had begun; stages recorded before used source/{}",
                    crate::run::now_utc(),
                    rec.dir.read_summary().map_err(usage)?.stages.len(),
                    config.sources.first().cloned().unwrap_or_default()
                ));
                rec.dir.write_config(&config).map_err(usage)?;
            }
            Some(rec)
        }
        (_, Some(rec)) => Some(rec),
        _ => None,
    };
    if let Some(rec) = recording {
        record_sources(&rec, &state).map_err(usage)?;
        *state.image_dir.borrow_mut() = Some(rec.dir.path.clone());
        let _ = state.recording.set(rec);
    }
    let result = engine
        .run_ast_with_scope(&mut scope, &ast)
        .map_err(|e| ScriptError::from_eval(file, source, &e))
        .and_then(|_| state.undeclared_params().map_or(Ok(()), |m| Err(ScriptError::failure(file, m))));
    let Some(rec) = state.recording() else { return result };
    let fail = |e: crate::Error| ScriptError::usage(file, e.to_string());
    record_sources(rec, &state).map_err(fail)?;
    let result = result.map_err(|mut e| {
        if state.interrupted() {
            e.message = format!("{}; resume with: retort run --resume {}", e.message, rec.dir.path.display());
        }
        e
    });
    rec.finish(started.elapsed().as_secs_f64(), result.as_ref().err().map(|e| e.message.clone())).map_err(fail)?;
    result?;
    let summary = rec.dir.read_summary().map_err(fail)?;
    let report = state.report.borrow();
    if !report.is_empty() {
        crate::run::atomic_write(&rec.dir.path.join("report.md"), report.as_bytes()).map_err(fail)?;
    }
    if let Some(target) = &opts.report {
        let name = opts
            .report_section
            .clone()
            .unwrap_or_else(|| Path::new(file).file_stem().map_or("script".into(), |s| s.to_string_lossy().to_string()));
        let sets: String = opts.sets.iter().map(|s| format!(" --set {s}")).collect();
        let provenance = format!(
            "_Generated by `retort run {file}{sets}{}` (retort {}) on {}; run records in `{}` (see `retort runs compare`)._",
            if opts.seed == 0 { String::new() } else { format!(" --seed {}", opts.seed) },
            env!("CARGO_PKG_VERSION"),
            crate::run::now_utc(),
            rec.dir.path.display()
        );
        let section = crate::run::report::section(&name, &report, &provenance, summary.seconds);
        crate::run::report::publish(target, &name, &section, &rec.dir.path, &state.report_images.borrow()).map_err(fail)?;
    }
    Ok(())
}

/// The built-ins that write into the run directory.
const WRITES_RUN_DIR: &[(&str, &str)] = &[
    ("save_weights", "the weights are saved inside the run directory"),
    ("plot_lines", "the image is written inside the run directory"),
    ("save_npy", "the array is saved inside the run directory"),
];

/// Refuses, before anything runs, a call that needs the run directory in a run without one,
/// so `save_weights` does not fail after all the training (`how`: the flag that turned it off).
pub(crate) fn check_run_dir_calls(file: &str, source: &str, ast: &rhai::AST, recorded: bool, how: &str) -> Result<(), ScriptError> {
    use rhai::{ASTNode, Expr, Stmt};
    if recorded {
        return Ok(());
    }
    let mut found = None;
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) | Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => Some((call.name.as_str(), *pos)),
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => Some((call.name.as_str(), *pos)),
            _ => None,
        };
        if let Some((name, pos)) = call {
            if let Some((n, why)) = WRITES_RUN_DIR.iter().find(|(n, _)| *n == name) {
                found = Some((*n, *why, pos));
                return false;
            }
        }
        true
    });
    match found {
        None => Ok(()),
        Some((name, why, pos)) => Err(ScriptError::at_position(
            file,
            source,
            pos,
            format!("{name}: this run has no run directory ({how}) and {why}; record the run, or remove the call"),
            ErrorKind::Usage,
        )),
    }
}
