//! A persistent scripting session for the REPL and notebooks: one engine, one scope, functions
//! and imports that persist across inputs, output captured per input, and cancellation.
//! No terminal code here: the front ends decide how to show things.

use super::error::ScriptError;
use super::state::State;
use super::RunOptions;
use crate::run::recording::{Record, Recording};
use crate::run::RunConfig;
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
    /// An interrupt stopped its training between batches (the models keep what was trained).
    pub interrupted: bool,
}

/// Hears each output of an input as it is produced (a Jupyter kernel streams them).
pub type Listener = Rc<dyn Fn(&Output)>;

/// An input as the transcript keeps it.
struct Input {
    text: String,
    ran: Ran,
    /// The functions it defines (name, arity), and whether it defines nothing else.
    functions: Vec<(String, usize)>,
    only_functions: bool,
}

/// How an input went.
#[derive(PartialEq)]
enum Ran {
    Ok,
    /// It ran, but Ctrl-C stopped its training: rerun, it trains to the end.
    Interrupted,
    /// It did not compile.
    NotParsed,
    /// It failed, before (false) or after (true) changing the session.
    Failed(bool),
}

/// What an input can change in a session, to tell whether a failed one changed it.
#[derive(PartialEq)]
struct Footprint {
    variables: usize,
    models: u64,
    rng: String,
    stages: usize,
}

/// An engine and scope that live across inputs.
pub struct Session {
    /// What started it: `repl`, or a notebook's path (the run record's `script`).
    what: String,
    /// The flags `retort run` needs to rerun the transcript (seed, parameters).
    rerun: String,
    started: std::time::Instant,
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined so far.
    functions: AST,
    /// `import` statements so far, re-run before each input so the modules stay in reach.
    imports: Vec<String>,
    /// Every input, for the transcript and `:save`.
    inputs: Vec<Input>,
    outputs: Rc<RefCell<Vec<Output>>>,
    /// Where outputs go live besides `outputs` (none: only collected).
    live: Rc<RefCell<Option<Listener>>>,
    /// Each type's properties and methods, for completion (made at the first `name.` Tab).
    members: std::cell::OnceCell<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>>,
    /// The outputs of the last input that failed, before its error.
    failed_outputs: RefCell<Vec<Output>>,
    state: Rc<State>,
    count: usize,
    /// What the next input is called in errors (a notebook cell's `In [N]`), instead of `<input N>`.
    next_name: Option<String>,
}

impl Session {
    /// A REPL session with the run options' seed and parameters; images go to `image_dir`.
    pub fn new(opts: &RunOptions, image_dir: PathBuf) -> Result<Session, ScriptError> {
        Session::start(opts, Some(image_dir), "repl")
    }

    /// A session of `what` (`repl`, or a notebook's path). With `opts.record`, the session is
    /// recorded like a script run: its run directory is made now and holds its stages, the
    /// weights it saves, and its inputs as `source/transcript.rhai`, a script `retort run`
    /// reruns to the same results.
    /// Images go to `image_dir`, or to the run directory when none is given.
    pub fn start(opts: &RunOptions, image_dir: Option<PathBuf>, what: &str) -> Result<Session, ScriptError> {
        let params = super::params::Params::load(opts.config.as_deref(), &opts.sets).map_err(|m| ScriptError::usage("<session>", m))?;
        // a session captures every output of an input, in order, for its front end to show
        let outputs: Rc<RefCell<Vec<Output>>> = Rc::new(RefCell::new(Vec::new()));
        let live: Rc<RefCell<Option<Listener>>> = Rc::default();
        let (collected, listener) = (outputs.clone(), live.clone());
        let push = Rc::new(move |o: Output| {
            // the listener is cloned out first: it may itself print
            let heard = listener.borrow().clone();
            if let Some(l) = heard {
                l(&o);
            }
            collected.borrow_mut().push(o);
        });
        let printed = push.clone();
        let io = super::core::Io {
            out: Rc::new(RefCell::new(move |s: &str| printed(Output::Text(s.to_string())))),
            emit: Rc::new(move |o| push(o)),
            import_dirs: opts.search_path.clone(),
            image_dir: image_dir.clone(),
        };
        let given = super::params_yaml(&params.map);
        let super::core::Core { state, engine, scope } = super::core::start(opts, params, Arc::new(AtomicBool::new(false)), io);
        state.interactive.set(true);
        let mut rerun = format!(" --seed {}", opts.seed);
        if let Some(c) = &opts.config {
            rerun.push_str(&format!(" --config {}", c.display()));
        }
        opts.sets.iter().for_each(|s| rerun.push_str(&format!(" --set '{s}'")));
        match &opts.record {
            None => {}
            Some(record @ (Record::New(_) | Record::Fresh(_))) => {
                let kind = if what == "repl" { "repl" } else { "notebook" };
                let mut config = RunConfig::new(
                    kind,
                    what,
                    "",
                    opts.seed,
                    opts.config.as_ref().map(|p| p.display().to_string()),
                    opts.sets.clone(),
                    given,
                );
                config.sources = vec![TRANSCRIPT.into()];
                let rec = Recording::create(record, &config).map_err(|e| ScriptError::usage(what, e.to_string()))?;
                if image_dir.is_none() {
                    *state.image_dir.borrow_mut() = Some(rec.dir.path.clone());
                }
                let _ = state.recording.set(rec);
            }
            Some(Record::Resume { dir, .. }) => {
                return Err(ScriptError::usage(
                    what,
                    format!("a session cannot resume {}; rerun a session's transcript with retort run", dir.display()),
                ))
            }
        }
        let session = Session {
            what: what.to_string(),
            rerun,
            started: std::time::Instant::now(),
            engine,
            scope,
            functions: AST::empty(),
            imports: vec![],
            inputs: vec![],
            outputs,
            live,
            failed_outputs: RefCell::new(Vec::new()),
            members: Default::default(),
            state,
            count: 0,
            next_name: None,
        };
        session.write_transcript().map_err(|e| ScriptError::usage(what, e.to_string()))?;
        Ok(session)
    }

    /// For a session without a run directory: the first of `cells` that calls a built-in
    /// needing one (its index and the error, positioned in the cell), so a notebook fails
    /// before any training.
    pub fn refused_without_record(&self, cells: &[&str]) -> Option<(usize, ScriptError)> {
        if self.state.recording().is_some() {
            return None;
        }
        cells.iter().enumerate().find_map(|(k, code)| {
            let ast = self.engine.compile(code).ok()?;
            super::check_run_dir_calls("<cell>", code, &ast, false, "--no-record").err().map(|e| (k, e))
        })
    }

    /// How many inputs ran without error (what `:save` keeps as code).
    pub fn inputs_run(&self) -> usize {
        self.inputs.iter().filter(|i| matches!(i.ran, Ran::Ok | Ran::Interrupted)).count()
    }

    /// The run directory the session records into.
    pub fn run_dir(&self) -> Option<PathBuf> {
        self.state.recording().map(|r| r.dir.path.clone())
    }

    /// Ends the session's run record: finished, or stopped by `error` (a notebook's failed cell).
    pub fn finish(&self, error: Option<String>) -> Result<(), ScriptError> {
        let Some(rec) = self.state.recording() else { return Ok(()) };
        let fail = |e: crate::Error| ScriptError::usage(&self.what, e.to_string());
        self.write_transcript().map_err(fail)?;
        rec.finish(self.started.elapsed().as_secs_f64(), error).map_err(fail)
    }

    fn write_transcript(&self) -> crate::Result<()> {
        let Some(rec) = self.state.recording() else { return Ok(()) };
        rec.dir.write_source(TRANSCRIPT, &self.script()).map(|_| ())
    }

    /// Names plot files `PREFIX-plot-N.png` (a notebook's name).
    pub fn set_image_prefix(&self, prefix: &str) {
        *self.state.image_prefix.borrow_mut() = prefix.to_string();
    }

    /// Names the next input in its errors (a notebook cell: `In [3]`).
    pub fn name_next_input(&mut self, name: &str) {
        self.next_name = Some(name.to_string());
    }

    /// Sends each output to `listener` as it is produced, as well as collecting it (none: only
    /// collected).
    pub fn set_listener(&self, listener: Option<Listener>) {
        *self.live.borrow_mut() = listener;
    }

    /// A flag that stops the running input (training stops between batches).
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        self.state.interrupt.clone()
    }

    /// Runs one input. On error the variables set so far stay, and the session goes on.
    pub fn eval(&mut self, input: &str) -> Result<Evaluated, ScriptError> {
        self.count += 1;
        let name = self.next_name.take().unwrap_or_else(|| format!("<input {}>", self.count));
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
        let parsed = self.engine.compile_with_scope(&self.scope, &source);
        let Ok(mut ast) = parsed else {
            self.inputs.push(Input { text: input.to_string(), ran: Ran::NotParsed, functions: vec![], only_functions: false });
            let _ = self.write_transcript();
            return Err(shift(ScriptError::from_parse(&name, &source, &parsed.unwrap_err())));
        };
        ast.set_source(name.as_str());
        super::check_run_dir_calls(&name, &source, &ast, self.state.recording().is_some(), "--no-record").map_err(shift)?;
        self.state.sources.borrow_mut().insert(name.clone(), source.clone());
        let program = self.functions.merge(&ast);
        let before = self.footprint();
        self.state.training_interrupted.set(false);
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
        let mut outputs = std::mem::take(&mut *self.outputs.borrow_mut());
        self.state.interrupt.store(false, Ordering::SeqCst);
        let ran = match &result {
            Ok(_) if self.state.training_interrupted.get() => Ran::Interrupted,
            Ok(_) => Ran::Ok,
            Err(_) => Ran::Failed(self.footprint() != before),
        };
        let functions: Vec<(String, usize)> = ast.iter_functions().map(|f| (f.name.to_string(), f.params.len())).collect();
        // the prelude's imports are statements of their own
        let only_functions = ast.statements().len() == offset && !functions.is_empty();
        if ran == Ran::Failed(true) && self.state.recording().is_some() {
            outputs.push(Output::Text(
                "warning: this input failed after it changed the session (variables, models, random numbers or training); the transcript keeps it as a comment, so from here rerunning the transcript may not give what this session has".into(),
            ));
        }
        let interrupted = ran == Ran::Interrupted;
        self.inputs.push(Input { text: input.to_string(), ran, functions, only_functions });
        self.record_modules();
        let _ = self.write_transcript();
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                // what it printed before it failed is the front end's to show
                *self.failed_outputs.borrow_mut() = outputs;
                return Err(shift(ScriptError::from_eval(&name, &source, &e)));
            }
        };
        // keep what persists: functions, imports, the input itself
        self.functions = self.functions.merge(&ast.clone_functions_only());
        for line in input.lines().map(str::trim).filter(|l| l.starts_with("import ")) {
            if !self.imports.iter().any(|i| i == line) {
                self.imports.push(line.to_string());
            }
        }
        let value_table = super::display_api::run_table(&value);
        let value = (!value.is_unit() && value_table.is_none()).then(|| super::describe_value(&value));
        Ok(Evaluated { outputs, value, value_table, interrupted })
    }

    /// Runs a notebook's `parameters` cell (papermill's convention: it sets each parameter's
    /// default with `let`). Its variables become the session's `defaults(...)`: a value given
    /// with `--set` or `--config` replaces the cell's default (an integer where the default is a
    /// float becomes a float), one the cell does not declare is an error naming those it does, and
    /// `params` holds every declared parameter's value.
    pub fn eval_parameters(&mut self, input: &str) -> Result<Evaluated, ScriptError> {
        let before = self.scope.len();
        let evaluated = self.eval(input)?;
        // in the order declared (`iter_raw` goes newest first); a name declared twice keeps its last value
        let declared: rhai::Map = self.scope.iter().skip(before).map(|(n, _, v)| (n.into(), v)).collect();
        let name = format!("the parameters cell (input {})", self.count);
        let failed = |e: Box<rhai::EvalAltResult>| ScriptError::usage(&name, format!("the parameters cell: {}", e.to_string().trim()));
        let merged = self.state.params.over(&declared).map_err(failed)?;
        self.state.defaults_called.set(true);
        super::params::merge(&mut self.state.resolved.borrow_mut(), merged.clone());
        if let Some(rec) = self.state.recording() {
            rec.record_params(super::params_yaml(&self.state.resolved.borrow())).map_err(|e| ScriptError::usage(&name, e.to_string()))?;
        }
        for (k, v) in &merged {
            self.scope.set_value(k.to_string(), v.clone());
        }
        self.scope.set_value("params", merged);
        Ok(evaluated)
    }

    fn footprint(&self) -> Footprint {
        Footprint {
            variables: self.scope.len(),
            models: self.state.models.get(),
            rng: format!("{:?}", self.state.rng.borrow()),
            stages: self.state.recording().map_or(0, |r| r.stage_count()),
        }
    }

    /// Copies the local modules the session imported into its run record's `source/`, beside
    /// the transcript.
    fn record_modules(&self) {
        if let Some(rec) = self.state.recording() {
            if let Err(e) = super::record_sources(rec, &self.state) {
                self.state.emit(Output::Text(format!("warning: the run record holds no copy of an imported module: {e}")));
            }
        }
    }

    /// What the last failed input printed (and warned) before its error, taken.
    pub fn failed_outputs(&self) -> Vec<Output> {
        std::mem::take(&mut *self.failed_outputs.borrow_mut())
    }

    /// Whether `code` is a whole input: it parses (`Ok`), or it does not, and the parser ran out
    /// of input (`Err(true)`: more lines would complete it) or found an error (`Err(false)`).
    pub fn parses(&self, code: &str) -> Result<(), bool> {
        match self.engine.compile(code) {
            Ok(_) => Ok(()),
            Err(e) => Err(matches!(*e.0, rhai::ParseErrorType::UnexpectedEOF)),
        }
    }

    /// The names of the parameters given with `--set` and `--config` (top level).
    pub fn given_params(&self) -> Vec<String> {
        self.state.params.map.keys().map(|k| k.to_string()).collect()
    }

    /// The variables a cell declares at its top level with `let` or `const`, in order, without
    /// running it (none: it does not parse).
    pub fn declared(&self, code: &str) -> Option<Vec<String>> {
        let ast = self.engine.compile(code).ok()?;
        Some(
            ast.statements()
                .iter()
                .filter_map(|s| match s {
                    rhai::Stmt::Var(v, ..) => Some(v.0.name.to_string()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// An error when parameters were given to the session but no `defaults(...)` declared them.
    pub fn undeclared_params(&self) -> Option<String> {
        self.state.undeclared_params()
    }

    /// Variables in scope: name, type as users know it (`Tensor [2, 3]`, `Dataset`, `Model`) and
    /// a short summary.
    pub fn vars(&self) -> Vec<(String, String, String)> {
        self.scope
            .iter_raw()
            .map(|(name, _, v)| {
                (
                    name.to_string(),
                    super::display_api::type_label(&self.engine, v),
                    super::describe_value(v).lines().next().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Completions for the word ending at byte `pos` of `line`, and where that word starts:
    /// option keys inside the `#{ ... }` of `fit`, `distill`, `model`, `dataset` and the
    /// optimizers; a value's own properties and methods after `name.`; a recipe module's
    /// functions after `alias::`; otherwise variables, functions, built-ins and recipes.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        use super::complete::Context;
        let (start, context) = super::complete::context(line, pos);
        let word = &line[start..pos];
        let mut names: Vec<String> = match context {
            Context::OptionKey(call) => match super::option_keys(call) {
                Some(keys) => keys.into_iter().map(String::from).collect(),
                None if word.is_empty() => vec![],
                None => self.completions(word),
            },
            Context::Member(var) => match self.scope.get(var) {
                Some(v) => {
                    // the engine's metadata is read once a session, not at every Tab
                    let members = self.members.get_or_init(|| super::complete::members(&self.engine));
                    members.get(&super::complete::type_key(&self.engine, v)).map(|m| m.iter().cloned().collect()).unwrap_or_default()
                }
                None => vec![],
            },
            Context::Name if word.is_empty() => vec![],
            Context::Name => match word.rsplit_once("::") {
                Some((alias, _)) => self
                    .recipe(alias)
                    .map(|(_, source)| super::complete::recipe_functions(&self.engine, &source))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(f, _, _)| format!("{alias}::{f}"))
                    .collect(),
                None => self.completions(word),
            },
        };
        names.retain(|n| n.starts_with(word));
        names.sort();
        names.dedup();
        (start, names)
    }

    /// The module an alias of this session's imports names (`sched` of `import "schedules" as
    /// sched`, or a module's own name), with its source.
    fn recipe(&self, alias: &str) -> Option<(String, String)> {
        let module = self
            .imports
            .iter()
            .find_map(|line| {
                let rest = line.strip_prefix("import")?.trim_start();
                let (path, after) = rest.strip_prefix('"')?.split_once('"')?;
                let name = after.trim_start().strip_prefix("as")?.trim().trim_end_matches(';').trim();
                (name == alias).then(|| path.to_string())
            })
            .unwrap_or_else(|| alias.to_string());
        let source = super::STDLIB
            .iter()
            .find(|(n, _)| *n == module)
            .map(|(_, s)| s.to_string())
            .or_else(|| self.state.sources.borrow().get(&module).cloned())?;
        Some((module, source))
    }

    /// Documentation for a built-in, a function of an imported or stdlib recipe (`sched::cosine`,
    /// `schedules::cosine`) or one defined in the session; an error suggests close names.
    pub fn doc(&self, name: &str) -> Result<String, String> {
        use super::complete::{close_names, recipe_functions};
        if let Some((alias, function)) = name.rsplit_once("::") {
            let Some((module, source)) = self.recipe(alias) else {
                let modules: Vec<&str> = super::STDLIB.iter().map(|(n, _)| *n).collect();
                return Err(format!("no recipe module '{alias}' (import one first; the stdlib has {})", modules.join(", ")));
            };
            let functions = recipe_functions(&self.engine, &source);
            let found: Vec<String> = functions
                .iter()
                .filter(|(f, _, _)| f == function)
                .map(|(f, params, doc)| format!("## `{alias}::{f}` (recipe {module})\n\n```\n{f}({})\n```\n\n{doc}", params.join(", ")))
                .collect();
            if !found.is_empty() {
                return Ok(found.join("\n\n"));
            }
            let close = close_names(function, functions.iter().map(|(f, _, _)| f.as_str()));
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.iter().map(|c| format!("{alias}::{c}")).collect::<Vec<_>>().join(", "))
            };
            return Err(format!("no function '{function}' in recipe module '{module}'{hint}"));
        }
        if let Some(d) = super::docs::doc_for(name) {
            return Ok(d);
        }
        if let Some(f) = self.functions.iter_functions().find(|f| f.name == name) {
            let doc: Vec<String> = f.comments.iter().map(|c| c.trim_start_matches("///").trim().to_string()).collect();
            return Ok(format!("## `{name}` (defined in this session)\n\n```\n{name}({})\n```\n\n{}", f.params.join(", "), doc.join("\n")));
        }
        let mut known: Vec<String> = super::builtin_names();
        known.extend(self.functions.iter_functions().map(|f| f.name.to_string()));
        for (module, source) in super::STDLIB {
            known.extend(recipe_functions(&self.engine, source).into_iter().map(|(f, _, _)| format!("{module}::{f}")));
        }
        let close = close_names(name, known.iter().map(String::as_str));
        let hint = if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(", ")) };
        Err(format!("no built-in or recipe function named '{name}'{hint}"))
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

    /// The inputs, as a script that `retort run` accepts and that recreates the session: each
    /// input that ran, terminated where the REPL let it end without `;`; one that failed or did
    /// not compile kept as a comment, as is a function definition a later input replaced (a
    /// script defines each function once). `name` is the file's name in its header.
    pub fn script_named(&self, name: &str) -> String {
        let mut out = format!(
            "// {} session, retort {}, recorded {} UTC\n// rerun: retort run {name}{}\n",
            self.what,
            env!("CARGO_PKG_VERSION"),
            crate::run::now_utc(),
            self.rerun,
        );
        let comment = |out: &mut String, why: &str, text: &str| {
            out.push_str(&format!("// {why}:\n"));
            text.lines().for_each(|l| out.push_str(&format!("// {l}\n")));
        };
        for (k, input) in self.inputs.iter().enumerate() {
            let text = input.text.trim_end();
            if text.trim().is_empty() {
                continue;
            }
            let replaced = input.only_functions
                && input.functions.iter().all(|f| self.inputs[k + 1..].iter().any(|l| l.ran == Ran::Ok && l.functions.contains(f)));
            match input.ran {
                Ran::NotParsed => comment(&mut out, "did not compile", text),
                Ran::Failed(false) => comment(&mut out, "failed", text),
                Ran::Failed(true) => comment(
                    &mut out,
                    "failed after it changed the session (from here the transcript may not give what the session had)",
                    text,
                ),
                Ran::Ok | Ran::Interrupted if replaced => {
                    comment(&mut out, "replaced by a later definition (the inputs in between used this one)", text)
                }
                Ran::Ok | Ran::Interrupted => {
                    if input.ran == Ran::Interrupted {
                        out.push_str("// interrupted in the session (Ctrl-C): rerun, its training runs to the end\n");
                    }
                    out.push_str(text);
                    out.push_str(terminator(&self.engine, text));
                    out.push('\n');
                }
            }
        }
        out
    }

    /// [`Session::script_named`] as the run record's transcript.
    pub fn script(&self) -> String {
        self.script_named(TRANSCRIPT)
    }
}

/// The transcript's name in a session's `source/`.
pub const TRANSCRIPT: &str = "transcript.rhai";

/// What an input needs after it so another statement can follow: nothing, or `;` (on a line of
/// its own after a trailing comment).
fn terminator(engine: &Engine, input: &str) -> &'static str {
    let follows = |t: &str| engine.compile(format!("{input}{t}\nlet __next = 0;")).is_ok();
    if follows("") {
        ""
    } else if follows(";") {
        ";"
    } else {
        "\n;"
    }
}

impl Session {}
