//! Optimizer and learning-rate schedule built-ins: `sgd`, `adam`, `adamw`, `constant_lr`,
//! `step_lr`, `multistep`, `cosine`, `warmup`.

use super::convert::{as_f64, dims, err, lib, Opts, Res};
use crate::def;
use crate::optim::schedule::Schedule;
use crate::optim::{LrSchedule, OptimizerConfig};
use rhai::{Array, Dynamic, Engine, Map, INT};

/// The options of `sgd` and of `adam`/`adamw`.
pub(super) const SGD_KEYS: &[&str] = &["lr", "momentum", "nesterov", "weight_decay"];
pub(super) const ADAM_KEYS: &[&str] = &["lr", "betas", "eps", "weight_decay"];

pub(super) fn optimizer(op: &'static str, opts: &Map, adam: Option<bool>) -> Res<OptimizerConfig> {
    let cfg = match adam {
        None => {
            let o = Opts::new(op, opts, SGD_KEYS)?;
            OptimizerConfig::Sgd {
                lr: o.f32_or("lr", 0.1)?,
                momentum: o.f32_or("momentum", 0.0)?,
                nesterov: o.bool_or("nesterov", false)?,
                weight_decay: o.f32_or("weight_decay", 0.0)?,
            }
        }
        Some(decoupled) => {
            let o = Opts::new(op, opts, ADAM_KEYS)?;
            let betas = match o.get("betas") {
                None => [0.9, 0.999],
                Some(v) => {
                    let arr = v.read_lock::<Array>().and_then(|a| a.iter().map(as_f64).collect::<Option<Vec<_>>>()).unwrap_or_default();
                    match arr[..] {
                        [a, b] => [a as f32, b as f32],
                        _ => return err(format!("{op}: option 'betas' must be an array of two numbers such as [0.9, 0.999], got {v}")),
                    }
                }
            };
            let default_decay = if decoupled { 0.01 } else { 0.0 };
            OptimizerConfig::Adam {
                lr: o.f32_or("lr", 1e-3)?,
                betas,
                eps: o.f32_or("eps", 1e-8)?,
                weight_decay: o.f32_or("weight_decay", default_decay)?,
                decoupled,
            }
        }
    };
    lib(cfg.validate())?;
    Ok(cfg)
}

pub fn register(engine: &mut Engine) {
    def!(
        engine,
        "sgd",
        "SGD with options lr, momentum, nesterov, weight_decay (PyTorch semantics).\n\
        ```rhai\n\
        let opt = sgd(#{ lr: 0.1, momentum: 0.9, weight_decay: 5e-4 });\n\
        ```",
        |o: Map| optimizer("sgd", &o, None)
    );
    def!(engine, "adam", "Adam with options lr, betas, eps, weight_decay (L2).\n```rhai\nlet opt = adam(#{ lr: 1e-3 });\n```", |o: Map| {
        optimizer("adam", &o, Some(false))
    });
    def!(
        engine,
        "adamw",
        "AdamW (decoupled weight decay, default 0.01) with options lr, betas, eps, weight_decay.\n\
        ```rhai\n\
        let opt = adamw(#{ lr: 1e-3, weight_decay: 0.05 });\n\
        ```",
        |o: Map| optimizer("adamw", &o, Some(true))
    );
    def!(engine, "constant_lr", "A constant learning rate.\n```rhai\nlet s = constant_lr();\n```", || LrSchedule::default());
    def!(
        engine,
        "step_lr",
        "Multiply the learning rate by `gamma` every `step_size` epochs.\n```rhai\nlet s = step_lr(30, 0.1);\n```",
        |step: INT, gamma: f64| checked(Schedule::Step { step_size: step.max(0) as usize, gamma: gamma as f32 })
    );
    def!(
        engine,
        "multistep",
        "Multiply the learning rate by `gamma` at each milestone epoch.\n```rhai\nlet s = multistep([150, 180, 210], 0.1);\n```",
        |milestones: Array, gamma: f64| {
            let m = dims(&Dynamic::from_array(milestones))
                .map_err(|_| "multistep: milestones must be an array of epochs (non-negative integers)")?;
            checked(Schedule::MultiStep { milestones: m, gamma: gamma as f32 })
        }
    );
    def!(engine, "cosine", "Cosine annealing to 0 over `epochs`.\n```rhai\nlet s = cosine(40);\n```", |epochs: INT| checked(
        Schedule::Cosine { total_epochs: epochs.max(0) as usize, min_lr: 0.0 }
    ));
    def!(
        engine,
        "cosine",
        "Cosine annealing to `min_lr` over `epochs`.\n```rhai\nlet s = cosine(40, 1e-4);\n```",
        |epochs: INT, min_lr: f64| checked(Schedule::Cosine { total_epochs: epochs.max(0) as usize, min_lr: min_lr as f32 })
    );
    def!(
        engine,
        "warmup",
        "Adds a linear warm-up from 0 over `epochs` (fractional allowed) to a schedule.\n```rhai\nlet s = warmup(cosine(40), 2);\n```",
        |s: LrSchedule, epochs: f64| with_warmup(s, epochs as f32)
    );
    def!(
        engine,
        "warmup",
        "Adds a linear warm-up over whole `epochs`.\n```rhai\nlet s = warmup(cosine(40), 2);\n```",
        |s: LrSchedule, epochs: INT| with_warmup(s, epochs as f32)
    );
}

fn with_warmup(s: LrSchedule, epochs: f32) -> Res<LrSchedule> {
    let w = LrSchedule { warmup_epochs: epochs, ..s };
    lib(w.validate()).map(|_| w)
}

fn checked(s: Schedule) -> Res<LrSchedule> {
    let s = LrSchedule::from(s);
    lib(s.validate()).map(|_| s)
}
