//! Step-time benchmarks: one SGD step (forward, backward, update) of reference models.

use crate::error::Result;
use crate::loss;
use crate::nn::{Mode, Model, ModelConfig};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::time::Instant;

/// One benchmark row.
#[derive(Debug, Clone)]
pub struct BenchRow {
    pub name: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Effective GFLOP/s: forward plus backward counted as 3x the forward MACs, 2 FLOPs each.
    pub gflops: f64,
}

fn random_batch(rng: &mut Rng, shape: &[usize], classes: usize) -> (Tensor, Vec<usize>) {
    let n: usize = shape.iter().product();
    let x = Tensor::from_vec((0..n).map(|_| rng.normal()).collect(), shape).expect("shape matches");
    (x, (0..shape[0]).map(|_| rng.below(classes)).collect())
}

/// Times `reps` SGD steps of `model` on a fixed random batch (after two warm-up steps).
pub fn time_step(name: &str, model: &Model, batch_shape: &[usize], reps: usize) -> Result<BenchRow> {
    let mut rng = Rng::new(0);
    let (x, y) = random_batch(&mut rng, batch_shape, model.classes());
    let mut opt = Optimizer::new(OptimizerConfig::Sgd { lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 5e-4 })?;
    let mut times = Vec::with_capacity(reps);
    for i in 0..reps + 2 {
        let started = Instant::now();
        let logits = model.forward(&x, Mode::Train, &mut rng)?;
        let out = loss::cross_entropy(&logits, &y, 0.0)?;
        let mut grads = out.loss.backward()?;
        drop((logits, out));
        opt.step(model.params(), &mut grads, 0.01)?;
        if i >= 2 {
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let flops = 3.0 * 2.0 * model.macs()? as f64 * batch_shape[0] as f64;
    Ok(BenchRow {
        name: name.into(),
        median_ms: median,
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        gflops: flops / (median * 1e-3) / 1e9,
    })
}

/// The rows `retort bench` prints.
pub fn steps(reps: usize) -> Result<Vec<BenchRow>> {
    let mlp = Model::new("mlp", ModelConfig { classes: 100, input: vec![784], hidden: vec![512, 512], ..ModelConfig::default() })?;
    let resnet = Model::new("resnet8x4", ModelConfig { classes: 100, input: vec![3, 32, 32], ..ModelConfig::default() })?;
    Ok(vec![
        time_step("MLP 784-512-512-100, batch 128, SGD step", &mlp, &[128, 784], reps)?,
        time_step("resnet8x4 (CIFAR-100), batch 64, SGD step", &resnet, &[64, 3, 32, 32], reps)?,
    ])
}

/// The distillation both sides of [`script_vs_rust`] run: a CNN student (channels 16, 32) from
/// an MLP teacher, WSL at T = 4, alpha = 2.25, with a per-batch filter that drops
/// regularization samples, 3 epochs over the digits training set.
const EPOCHS: usize = 3;

const SCRIPT: &str = r#"
let data = dataset("digits", #{ test_fraction: 0.2, seed: 7 });
let teacher = model("mlp", #{ input: data.input, hidden: [256, 256], classes: data.classes, seed: 1 });
let student = model("cnn", #{ input: data.input, channels: [16, 32], classes: data.classes, seed: 2 });
let t0 = timestamp();
let run = distill(teacher, student, data, #{
        epochs: params.epochs, batch: 64, seed: 3,
        optimizer: sgd(#{ lr: 0.05, momentum: 0.9, weight_decay: 5e-4 }),
        loss: "wsl", temperature: 4.0, alpha: 2.25,
        filter: |b| 1.0 - b.regularization,
});
print(`${t0.elapsed} ${run.hook_seconds}`);
"#;

/// The Rust side's filter, timing itself like the script's hooks are timed.
struct DropRegularization {
    seconds: f64,
}

impl crate::train::Hooks for DropRegularization {
    fn sample_weights(&mut self, b: &crate::train::BatchView) -> Result<Option<Vec<f32>>> {
        let started = Instant::now();
        let mask = b.parts.regularization_mask().iter().map(|r| if *r { 0.0 } else { 1.0 }).collect();
        self.seconds += started.elapsed().as_secs_f64();
        Ok(Some(mask))
    }
}

/// The median of `xs`.
pub fn median_of(xs: &[f64]) -> f64 {
    median(xs.to_vec())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Milliseconds of one run of [`SCRIPT`]'s distillation as the script times it, and of that
/// the milliseconds spent in its closures.
fn script_once() -> Result<(f64, f64)> {
    let printed = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    let sink = printed.clone();
    let opts = crate::script::RunOptions { sets: vec![format!("epochs={EPOCHS}")], ..Default::default() };
    let out: crate::script::Output = std::rc::Rc::new(std::cell::RefCell::new(move |s: &str| sink.borrow_mut().push_str(s)));
    crate::script::run_source("bench", SCRIPT, vec![], &opts, out, Default::default())
        .map_err(|e| crate::Error::invalid("bench", e.to_string()))?;
    let text = printed.borrow().clone();
    let values: Vec<f64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    match values[..] {
        [total, hooks] => Ok((total * 1e3, hooks * 1e3)),
        _ => Err(crate::Error::invalid("bench", format!("the script printed {text:?}"))),
    }
}

/// Timings of the same distillation driven from Rust and from a Rhai script (milliseconds).
#[derive(Debug, Clone)]
pub struct ScriptVsRust {
    pub rust: Vec<f64>,
    pub script: Vec<f64>,
    /// Time spent in the per-batch filter: Rust's closure, and the script's closures plus
    /// building their arguments.
    pub rust_hooks: Vec<f64>,
    pub script_hooks: Vec<f64>,
}

impl ScriptVsRust {
    pub fn medians(&self) -> (f64, f64) {
        (median(self.rust.clone()), median(self.script.clone()))
    }
    /// Median of the per-pair ratios script / Rust (each pair ran back to back).
    pub fn paired_ratio(&self) -> f64 {
        median(self.script.iter().zip(&self.rust).map(|(s, r)| s / r).collect())
    }
    /// The script-driven run's time estimated as the Rust-driven run plus the measured extra
    /// cost of the script layer, over the Rust-driven time: robust to machine noise.
    pub fn accounted_ratio(&self) -> f64 {
        let rust = median(self.rust.clone());
        1.0 + (median(self.script_hooks.clone()) - median(self.rust_hooks.clone())) / rust
    }
    pub fn mins(&self) -> (f64, f64) {
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        (min(&self.rust), min(&self.script))
    }
}

/// Runs the distillation `reps` times from Rust and from a script, interleaved.
pub fn script_vs_rust(reps: usize) -> Result<ScriptVsRust> {
    use crate::train::{self, TrainConfig};
    let mut split = crate::data::load("digits", None, 0.2, 7)?;
    split.normalize();
    let cfg = |hidden: Vec<usize>, seed| ModelConfig {
        classes: 10,
        input: vec![1, 8, 8],
        hidden,
        channels: vec![16, 32],
        seed,
        ..ModelConfig::default()
    };
    let teacher = Model::new("mlp", cfg(vec![256, 256], 1))?;
    let config = TrainConfig {
        epochs: EPOCHS,
        batch_size: 64,
        seed: 3,
        optimizer: OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 5e-4 },
        loss: loss::Loss::Wsl { temperature: 4.0, alpha: 2.25 },
        ..TrainConfig::default()
    };
    // interleaved, so drift in the machine's speed hits both sides alike
    let mut t = ScriptVsRust { rust: vec![], script: vec![], rust_hooks: vec![], script_hooks: vec![] };
    for _ in 0..reps {
        let student = Model::new("cnn", cfg(vec![], 2))?;
        let mut hooks = DropRegularization { seconds: 0.0 };
        let started = Instant::now();
        train::distill(&teacher, &student, &split, &config, &mut hooks)?;
        t.rust.push(started.elapsed().as_secs_f64() * 1e3);
        t.rust_hooks.push(hooks.seconds * 1e3);
        let (total, in_hooks) = script_once()?;
        t.script.push(total);
        t.script_hooks.push(in_hooks);
    }
    Ok(t)
}
