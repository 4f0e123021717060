//! The Rhai scripting layer, the only module that names rhai: `retort run` and `retort check`.
//!
//! A script sees the built-ins registered by [`tensor_api`], [`tensor_math`] and [`train_api`],
//! a `params` map (from `--set`), and the stdlib recipes through `import`.

pub mod api;
mod convert;
pub mod docs;
mod error;
mod hooks;
mod modules;
mod state;
mod tensor_api;
mod tensor_math;
mod train_api;

pub use error::{ErrorKind, ScriptError};
pub use modules::STDLIB;

use rhai::{Dynamic, Engine, Map, Scope};
use state::State;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// How to run a script.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `key=value` pairs from `--set`; dotted keys make nested maps.
    pub sets: Vec<String>,
    pub seed: u64,
    /// Bound on script operations (runaway loops stop with an error).
    pub max_operations: Option<u64>,
    /// Extra import folders (after the script's own folder), e.g. from `RETORT_PATH`.
    pub search_path: Vec<PathBuf>,
}

/// Where script output goes.
pub type Output = Rc<RefCell<dyn FnMut(&str)>>;

/// An engine with every built-in registered.
pub fn engine(state: &Rc<State>, out: Output, dirs: Vec<PathBuf>, max_operations: Option<u64>) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_expr_depths(128, 64);
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
    train_api::register(&mut engine, state);
    engine.set_module_resolver(modules::Resolver::new(dirs));
    engine
}

/// An engine for tools (docs, checks) with output discarded.
pub fn bare_engine() -> Engine {
    let state = Rc::new(State::new(0, Arc::new(AtomicBool::new(false))));
    engine(&state, Rc::new(RefCell::new(|_: &str| {})), vec![], None)
}

/// Parses `--set` pairs into the nested `params` map. Values are Rhai literals when they
/// parse as one (`2`, `0.5`, `true`, `[1, 2]`), strings otherwise.
pub fn parse_sets(engine: &Engine, sets: &[String]) -> Result<Map, String> {
    let mut params = Map::new();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(format!("--set '{set}' must look like key=value"));
        };
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("--set '{set}': the key '{key}' has an empty part"));
        }
        let v = engine.eval_expression::<Dynamic>(value).unwrap_or_else(|_| Dynamic::from(value.to_string()));
        insert_path(&mut params, &parts, v).map_err(|p| format!("--set '{set}': '{p}' is already a value, not a map"))?;
    }
    Ok(params)
}

/// Inserts `v` at the dotted path `parts`, making maps on the way; on a clash returns the part.
fn insert_path(map: &mut Map, parts: &[&str], v: Dynamic) -> Result<(), String> {
    let (first, rest) = parts.split_first().expect("split on '.' gives at least one part");
    if rest.is_empty() {
        map.insert((*first).into(), v);
        return Ok(());
    }
    let mut inner = match map.remove(*first) {
        None => Map::new(),
        Some(d) => d.try_cast::<Map>().ok_or_else(|| first.to_string())?,
    };
    insert_path(&mut inner, rest, v)?;
    map.insert((*first).into(), Dynamic::from_map(inner));
    Ok(())
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
    let state = Rc::new(State::new(opts.seed, Arc::new(AtomicBool::new(false))));
    let engine = engine(&state, Rc::new(RefCell::new(|_: &str| {})), import_dirs(path, opts), opts.max_operations);
    compile(&engine, &path.display().to_string(), &source, opts).map(|_| ())
}

fn compile(engine: &Engine, file: &str, source: &str, opts: &RunOptions) -> Result<(rhai::AST, Scope<'static>), ScriptError> {
    let params = parse_sets(engine, &opts.sets).map_err(|m| ScriptError::usage(file, m))?;
    let mut scope = Scope::new();
    scope.push_constant("params", params);
    scope.push_constant("seed", opts.seed as rhai::INT);
    engine.compile_with_scope(&scope, source).map_err(|e| ScriptError::from_parse(file, source, &e))?;
    // resolve imports now, so a bad import fails before anything runs
    let ast = engine.compile_into_self_contained(&scope, source).map_err(|e| ScriptError::from_eval(file, source, &e)).map(|mut a| {
        a.set_source(file);
        a
    })?;
    Ok((ast, scope))
}

/// Runs the script at `path`, sending `print` output to `out`. `interrupt` stops it (Ctrl-C).
pub fn run(path: &Path, opts: &RunOptions, out: Output, interrupt: Arc<AtomicBool>) -> Result<(), ScriptError> {
    let source = read(path)?;
    run_source(&path.display().to_string(), &source, import_dirs(path, opts), opts, out, interrupt)
}

/// Runs script text (named `file` in errors) with imports searched in `dirs`.
pub fn run_source(
    file: &str,
    source: &str,
    dirs: Vec<PathBuf>,
    opts: &RunOptions,
    out: Output,
    interrupt: Arc<AtomicBool>,
) -> Result<(), ScriptError> {
    let state = Rc::new(State::new(opts.seed, interrupt));
    let engine = engine(&state, out, dirs, opts.max_operations);
    let (ast, mut scope) = compile(&engine, file, source, opts)?;
    engine.run_ast_with_scope(&mut scope, &ast).map_err(|e| ScriptError::from_eval(file, source, &e))
}
