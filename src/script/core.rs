//! The session core: how every front end (`retort run`, the REPL, notebooks, next the Jupyter
//! kernel) sets up a script's state, engine and scope. Only where input comes from and where
//! output goes differ ([`Io`]); the rest is here once, so the front ends cannot drift apart.

use super::output::Output as Emitted;
use super::params::Params;
use super::state::State;
use super::{engine, Output, RunOptions};
use rhai::{Engine, Scope, INT};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What a front end supplies: where printed text, tables and images go, where imports and
/// images live.
pub struct Io {
    /// `print` and `debug` output.
    pub out: Output,
    /// `table`, `plot` and warnings.
    pub emit: Rc<dyn Fn(Emitted)>,
    /// Folders `import` searches after the embedded stdlib.
    pub import_dirs: Vec<PathBuf>,
    /// Where `plot` writes its PNG files (none: plots are refused).
    pub image_dir: Option<PathBuf>,
}

/// A script's state, its engine with every built-in, and its scope.
pub struct Core {
    pub state: Rc<State>,
    pub engine: Engine,
    pub scope: Scope<'static>,
}

/// Sets up a run or a session: the seed stream, `params`, the device, the progress display
/// and the interrupt flag (the run record comes once the script compiles), then the engine and the scope every input runs in.
pub fn start(opts: &RunOptions, params: Params, interrupt: Arc<AtomicBool>, io: Io) -> Core {
    let mut state = State::new(opts.seed, interrupt);
    state.params = params;
    state.device = opts.device;
    state.progress = opts.progress.clone();
    state.emit = Some(io.emit);
    state.image_dir = std::cell::RefCell::new(io.image_dir);
    let state = Rc::new(state);
    let engine = engine(&state, io.out, io.import_dirs, opts.max_operations);
    let mut scope = Scope::new();
    // plain variables, not constants: Rhai's optimizer would inline a constant even where a
    // loop variable of the same name shadows it (`for seed in [1, 2]` saw the run's seed)
    scope.push("params", state.params.map.clone());
    scope.push("seed", opts.seed as INT);
    Core { state, engine, scope }
}
