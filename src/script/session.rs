//! A persistent scripting session for the REPL and notebooks: one engine, one scope, functions
//! and imports that persist across inputs, output captured per input, and cancellation.
//! No terminal code here: the front ends decide how to show things.

use super::error::ScriptError;
use super::state::State;
use super::RunOptions;
use rhai::{Dynamic, Engine, Scope, AST};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use super::output::Output;

/// The result of one input: its outputs and, when it ends in an expression, that value.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub outputs: Vec<Output>,
    pub value: Option<String>,
    /// The value as a table, when it is a `fit`/`distill` result (one row per epoch).
    pub value_table: Option<(Vec<String>, Vec<Vec<String>>)>,
}

/// An engine and scope that live across inputs.
pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined so far.
    functions: AST,
    /// `import` statements so far, re-run before each input so the modules stay in reach.
    imports: Vec<String>,
    /// Every input that ran without error, for `:save`.
    inputs: Vec<String>,
    outputs: Rc<RefCell<Vec<Output>>>,
    state: Rc<State>,
    count: usize,
}

impl Session {
    /// A session with the run options' seed and parameters; images go to `image_dir`.
    pub fn new(opts: &RunOptions, image_dir: PathBuf) -> Result<Session, ScriptError> {
        let params = super::params::Params::load(opts.config.as_deref(), &opts.sets).map_err(|m| ScriptError::usage("<session>", m))?;
        // a session captures every output of an input, in order, for its front end to show
        let outputs: Rc<RefCell<Vec<Output>>> = Rc::new(RefCell::new(Vec::new()));
        let (sink, printed) = (outputs.clone(), outputs.clone());
        let io = super::core::Io {
            out: Rc::new(RefCell::new(move |s: &str| printed.borrow_mut().push(Output::Text(s.to_string())))),
            emit: Rc::new(move |o| sink.borrow_mut().push(o)),
            import_dirs: opts.search_path.clone(),
            image_dir: Some(image_dir),
        };
        let super::core::Core { state, engine, scope } = super::core::start(opts, params, None, Arc::new(AtomicBool::new(false)), io);
        Ok(Session { engine, scope, functions: AST::empty(), imports: vec![], inputs: vec![], outputs, state, count: 0 })
    }

    /// Names plot files `PREFIX-plot-N.png` (a notebook's name).
    pub fn set_image_prefix(&self, prefix: &str) {
        *self.state.image_prefix.borrow_mut() = prefix.to_string();
    }

    /// A flag that stops the running input (training stops between batches).
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        self.state.interrupt.clone()
    }

    /// Runs one input. On error the variables set so far stay, and the session goes on.
    pub fn eval(&mut self, input: &str) -> Result<Evaluated, ScriptError> {
        self.count += 1;
        let name = format!("<input {}>", self.count);
        self.state.interrupt.store(false, Ordering::SeqCst);
        self.outputs.borrow_mut().clear();
        let prelude = self.imports.join("\n");
        let source = if prelude.is_empty() { input.to_string() } else { format!("{prelude}\n{input}") };
        let offset = if prelude.is_empty() { 0 } else { self.imports.len() };
        let shift = |mut e: ScriptError| {
            e.file = name.clone();
            e.line = e.line.map(|l| l.saturating_sub(offset));
            e
        };
        let ast = self.engine.compile_with_scope(&self.scope, &source).map_err(|e| shift(ScriptError::from_parse(&name, &source, &e)))?;
        let program = self.functions.merge(&ast);
        // a panic (a bug in retort) fails this input only: the session and its variables live on
        let (engine, scope) = (&self.engine, &mut self.scope);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.eval_ast_with_scope::<Dynamic>(scope, &program)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".into());
                Err(format!("internal error (a bug in retort; please report it): {what}").into())
            });
        let outputs = std::mem::take(&mut *self.outputs.borrow_mut());
        self.state.interrupt.store(false, Ordering::SeqCst);
        let value = result.map_err(|e| shift(ScriptError::from_eval(&name, &source, &e)))?;
        // keep what persists: functions, imports, the input itself
        self.functions = self.functions.merge(&ast.clone_functions_only());
        for line in input.lines().map(str::trim).filter(|l| l.starts_with("import ")) {
            if !self.imports.iter().any(|i| i == line) {
                self.imports.push(line.to_string());
            }
        }
        self.inputs.push(input.to_string());
        let value_table = super::display_api::run_table(&value);
        let value = (!value.is_unit() && value_table.is_none()).then(|| super::describe_value(&value));
        Ok(Evaluated { outputs, value, value_table })
    }

    /// An error when parameters were given to the session but no `defaults(...)` declared them.
    pub fn undeclared_params(&self) -> Option<String> {
        self.state.undeclared_params()
    }

    /// Variables in scope: name, type and a short summary.
    pub fn vars(&self) -> Vec<(String, String, String)> {
        self.scope
            .iter_raw()
            .map(|(name, _, v)| {
                (
                    name.to_string(),
                    self.engine.map_type_name(v.type_name()).rsplit("::").next().unwrap_or("").to_string(),
                    super::describe_value(v).lines().next().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Names a word could complete to: variables, functions, built-ins, stdlib recipes.
    pub fn completions(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self.scope.iter_raw().map(|(n, _, _)| n.to_string()).collect();
        names.extend(self.functions.iter_functions().map(|f| f.name.to_string()));
        names.extend(super::builtin_names());
        names.extend(super::STDLIB.iter().map(|(n, _)| n.to_string()));
        names.retain(|n| n.starts_with(prefix) && n.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_'));
        names.sort();
        names.dedup();
        names
    }

    /// The inputs that ran, as a script that recreates the session.
    pub fn script(&self) -> String {
        self.inputs.iter().map(|i| format!("{}\n", i.trim_end())).collect()
    }
}
