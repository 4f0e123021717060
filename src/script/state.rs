//! What built-ins share during one script run: the seed stream and the interrupt flag.

use crate::rng::Rng;
use std::cell::{Cell, RefCell};
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
    /// The run directory training stages are recorded in (none for `check`, tests, tools).
    pub recording: Option<super::records::Recording>,
    /// Where training progress goes (the CLI draws bars; the library never prints).
    pub progress: Option<super::ProgressFn>,
    /// The parameters the script sees, with where each came from.
    pub params: super::params::Params,
}

impl State {
    pub fn new(seed: u64, interrupt: Arc<AtomicBool>) -> Self {
        State {
            seed,
            rng: RefCell::new(Rng::new(seed)),
            models: Cell::new(0),
            interrupt,
            recording: None,
            progress: None,
            params: Default::default(),
        }
    }

    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    /// A default seed for the next model: the run seed plus the number of models built before.
    pub fn next_model_seed(&self) -> u64 {
        let n = self.models.get();
        self.models.set(n + 1);
        self.seed.wrapping_add(n)
    }
}
