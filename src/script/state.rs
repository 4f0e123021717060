//! What built-ins share during one script run: the seed stream and the interrupt flag.

use crate::rng::Rng;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct State {
    /// The run's seed (`--seed`).
    pub seed: u64,
    /// Randomness for `randn` and default seeds.
    pub rng: RefCell<Rng>,
    /// Models built so far (each gets seed + count unless given one).
    pub models: Cell<u64>,
    /// Set by Ctrl-C; training stops between batches and the script stops.
    pub interrupt: Arc<AtomicBool>,
    /// The run directory training stages are recorded in (unset for `check`, tests, tools, and
    /// until a script has compiled: a script that does not compile leaves no run directory).
    pub recording: std::cell::OnceCell<crate::run::recording::Recording>,
    /// A REPL or notebook session: an interrupt stops training and hands back what was trained
    /// instead of stopping the script.
    pub interactive: Cell<bool>,
    /// Set when an interrupt stopped a training call in a session (the transcript notes it).
    pub training_interrupted: Cell<bool>,
    /// Source texts by source name (the script, each input of a session, each module), so a
    /// stage can record its schedules as the script wrote them.
    pub sources: RefCell<std::collections::HashMap<String, String>>,
    /// The local module files `import` loaded: import path and file, for the run record.
    pub imported: RefCell<Vec<(String, std::path::PathBuf)>>,
    /// Where training progress goes (the CLI draws bars; the library never prints).
    pub progress: Option<super::ProgressFn>,
    /// Where `table` and `plot` output goes (a session's capture, or the run's printer).
    pub emit: Option<Rc<dyn Fn(super::output::Output)>>,
    /// Where `plot` writes PNG files.
    pub image_dir: RefCell<Option<std::path::PathBuf>>,
    /// Images written so far, and the file-name prefix (a notebook's name).
    pub images: Cell<usize>,
    pub image_prefix: RefCell<String>,
    /// The parameters the script sees, with where each came from.
    pub params: super::params::Params,
    /// Whether `defaults(...)` ran: given parameters are otherwise never checked nor used.
    pub defaults_called: Cell<bool>,
    /// What the `defaults(...)` calls so far returned, merged: the parameters the script ran with.
    pub resolved: RefCell<rhai::Map>,
    /// Where `fit`/`distill` train unless told otherwise (`retort run --device`).
    pub device: crate::devices::DeviceName,
    /// Markdown from `report(...)`, and the images `plot_lines` wrote for it.
    pub report: RefCell<String>,
    pub report_images: RefCell<Vec<String>>,
}

impl State {
    pub fn new(seed: u64, interrupt: Arc<AtomicBool>) -> Self {
        State {
            seed,
            rng: RefCell::new(Rng::new(seed)),
            models: Cell::new(0),
            interrupt,
            recording: Default::default(),
            interactive: Cell::new(false),
            training_interrupted: Cell::new(false),
            sources: Default::default(),
            imported: Default::default(),
            progress: None,
            emit: None,
            image_dir: RefCell::new(None),
            images: Cell::new(0),
            image_prefix: RefCell::new(String::new()),
            params: Default::default(),
            defaults_called: Cell::new(false),
            resolved: Default::default(),
            device: crate::devices::DeviceName::Cpu,
            report: RefCell::new(String::new()),
            report_images: RefCell::new(Vec::new()),
        }
    }

    /// The run record, when there is one.
    pub fn recording(&self) -> Option<&crate::run::recording::Recording> {
        self.recording.get()
    }

    /// An error when parameters were given but no `defaults(...)` ran to declare them.
    pub fn undeclared_params(&self) -> Option<String> {
        if self.defaults_called.get() {
            return None;
        }
        let first = self.params.map.keys().next()?;
        let from = self.params.sources.get(first.as_str()).map_or(String::new(), |s| format!(" (from {s})"));
        Some(format!(
            "params: '{first}'{from} was never declared: no defaults(...) call ran, so the value was not used; declare it with `let p = defaults(#{{ {first}: ... }});`"
        ))
    }

    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    /// Hands output to the front end (dropped when there is none).
    pub fn emit(&self, o: super::output::Output) {
        if let Some(f) = &self.emit {
            f(o);
        }
    }

    /// The path for the next image, `plot-N.png` in the image folder.
    pub fn next_image_path(&self) -> Option<std::path::PathBuf> {
        let dir = self.image_dir.borrow().clone()?;
        let n = self.images.get() + 1;
        self.images.set(n);
        Some(dir.join(format!("{}plot-{n}.png", self.image_prefix.borrow())))
    }

    /// A default seed for the next model: the run seed plus the number of models built before.
    pub fn next_model_seed(&self) -> u64 {
        let n = self.models.get();
        self.models.set(n + 1);
        self.seed.wrapping_add(n)
    }
}
