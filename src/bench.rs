//! Step-time benchmarks: one SGD step (forward, backward, update) of reference models.

use crate::data::Dataset;
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

/// Keeps `Dataset` reachable from benches that build their own data.
pub type BenchData = Dataset;
