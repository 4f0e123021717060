//! Benchmarks behind `retort bench`: the matmul peak, training steps of reference models, the
//! WSL loss, distillation epochs, and a distillation driven from a script against Rust.

use crate::error::Result;
use crate::loss;
use crate::nn::{Mode, Model, ModelConfig};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::time::Instant;

/// The machine a benchmark ran on: its CPU model, the thread count, and the instruction set
/// each kernel family chose on it (they choose at run time, by what the CPU reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo (Linux), else "unknown CPU".
    pub cpu: String,
    /// Threads the kernels split work across (rayon's pool; `RAYON_NUM_THREADS`).
    pub threads: usize,
    /// `(kernel family, instruction set)`.
    pub kernels: Vec<(&'static str, String)>,
}

/// What [`Machine`] says of this one.
pub fn machine() -> Machine {
    let cpu = crate::tensor::gemm_path::cpu_model();
    #[cfg(target_arch = "x86_64")]
    let (avx512, avx2_fma) = (
        std::arch::is_x86_feature_detected!("avx512f"),
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (avx512, avx2_fma) = (false, false);
    let isa = |on: bool, name: &str| if on { name.to_string() } else { "portable Rust (no vector extension found)".to_string() };
    let crate_isa = if avx512 {
        "AVX-512F"
    } else if avx2_fma {
        "AVX2+FMA"
    } else {
        "SSE/scalar"
    };
    let gemm = format!("{} [the gemm crate here: {crate_isa}]", crate::tensor::matmul::gemm_choice());
    Machine {
        cpu,
        threads: crate::tensor::matmul::threads(),
        kernels: vec![
            ("convolutions (panel GEMM, Winograd, depthwise), batch norm, element-wise", isa(avx512, "AVX-512F")),
            ("direct convolution (few channels)", isa(avx2_fma, "AVX2+FMA")),
            ("linear layers and the matmul peak", gemm),
        ],
    }
}

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

/// Times `reps` runs of `f` after two warm-up runs; `flops` per run gives GFLOP/s (0: none).
pub fn time_fn(name: &str, flops: f64, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<BenchRow> {
    let mut times = Vec::with_capacity(reps);
    for i in 0..reps + 2 {
        let ms = elapsed_ms(&mut f)?;
        if i >= 2 {
            times.push(ms);
        }
    }
    Ok(row(name, flops, times))
}

/// [`time_fn`] for two rows compared with each other: their runs alternate, so a slow
/// minute of a shared machine falls on both alike.
fn time_alternating(
    a: (&str, &mut dyn FnMut() -> Result<()>),
    b: (&str, &mut dyn FnMut() -> Result<()>),
    reps: usize,
) -> Result<[BenchRow; 2]> {
    let (mut times_a, mut times_b) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for i in 0..reps + 2 {
        let (ms_a, ms_b) = (elapsed_ms(&mut *a.1)?, elapsed_ms(&mut *b.1)?);
        if i >= 2 {
            times_a.push(ms_a);
            times_b.push(ms_b);
        }
    }
    Ok([row(a.0, 0.0, times_a), row(b.0, 0.0, times_b)])
}

fn elapsed_ms(f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// The median, min and max of `times` (at least one), and GFLOP/s at the median.
fn row(name: &str, flops: f64, mut times: Vec<f64>) -> BenchRow {
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    BenchRow {
        name: name.into(),
        median_ms: median,
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        gflops: flops / (median * 1e-3) / 1e9,
    }
}

/// Times SGD steps of `model` on a fixed random batch: forward, backward, update.
pub fn time_step(name: &str, model: &Model, batch_shape: &[usize], reps: usize) -> Result<BenchRow> {
    let mut rng = Rng::new(0);
    let (x, y) = random_batch(&mut rng, batch_shape, model.classes());
    let mut opt = Optimizer::new(OptimizerConfig::Sgd { lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 5e-4 })?;
    let flops = 3.0 * 2.0 * model.macs()? as f64 * batch_shape[0] as f64;
    time_fn(name, flops, reps, || {
        let logits = model.forward(&x, Mode::Train, &mut rng)?;
        let out = loss::cross_entropy(&logits, &y, 0.0)?;
        let mut grads = out.loss.backward()?;
        drop((logits, out));
        opt.step(model.params(), &mut grads, 0.01)
    })
}

/// f32 matmul 1024x1024x1024 through the kernels' GEMM path: the machine's peak for the table.
pub fn matmul_peak(reps: usize) -> Result<BenchRow> {
    let n = 1024;
    let mut rng = Rng::new(1);
    let a: Vec<f32> = (0..n * n).map(|_| rng.normal()).collect();
    let b: Vec<f32> = (0..n * n).map(|_| rng.normal()).collect();
    let mut c = vec![0.0; n * n];
    time_fn("f32 matmul 1024x1024x1024", 2.0 * (n * n * n) as f64, reps, || {
        crate::tensor::matmul::gemm_into(
            crate::tensor::matmul::Mat::new(&a, n, n),
            crate::tensor::matmul::Mat::new(&b, n, n),
            &mut c,
            false,
        );
        Ok(())
    })
}

/// The WSL loss forward and backward on random logits.
pub fn wsl_loss(batch: usize, classes: usize, reps: usize) -> Result<BenchRow> {
    let mut rng = Rng::new(2);
    let (s, y) = random_batch(&mut rng, &[batch, classes], classes);
    let (t, _) = random_batch(&mut rng, &[batch, classes], classes);
    let name = format!("WSL loss forward+backward, batch {batch}, {classes} classes");
    time_fn(&name, 0.0, reps, || {
        let s = Tensor::variable(s.data().to_vec(), s.shape())?;
        let out = loss::compute(&s, Some(&t), &y, loss::Loss::wsl(4.0, 2.25), None)?;
        out.loss.backward().map(|_| ())
    })
}

/// One epoch over 10,000 synthetic 1x28x28 samples (batch 128): an MLP student alone, with a
/// CNN teacher's forward pass every batch, and with the teacher's logits cached.
pub fn distill_epochs(reps: usize) -> Result<Vec<BenchRow>> {
    use crate::data::{Dataset, Split};
    use crate::train::{self, NoHooks, TrainConfig};
    let mut rng = Rng::new(3);
    let make = |n: usize, rng: &mut Rng| Dataset {
        name: "synthetic".into(),
        features: (0..n * 784).map(|_| rng.uniform()).collect(),
        labels: (0..n).map(|_| rng.below(10)).collect(),
        sample_shape: vec![1, 28, 28],
        classes: 10,
    };
    let split = Split { train: make(10_000, &mut rng), test: make(256, &mut rng), val: None };
    let teacher =
        Model::new("cnn", ModelConfig { classes: 10, input: vec![1, 28, 28], channels: vec![16, 32, 64], ..ModelConfig::default() })?;
    let student_cfg = ModelConfig { classes: 10, input: vec![1, 28, 28], hidden: vec![256], ..ModelConfig::default() };
    let config = |loss, cache| TrainConfig { epochs: 1, batch_size: 128, loss, cache_teacher_logits: cache, ..TrainConfig::default() };
    let kd = loss::Loss::kd(4.0, 0.9);
    let student = Model::new("mlp", student_cfg.clone())?;
    let reps = reps.clamp(1, 11);
    let cached = train::predict(&teacher, &split.train, 256)?;
    // the student alone and with cached logits alternate (the comparison the rows are for);
    // the teacher's logits are computed once, outside the timed epochs
    let [alone, with_cache] = time_alternating(
        ("distillation epoch, 10,000 samples: student alone", &mut || {
            train::fit(&student, &split, &config(loss::Loss::CrossEntropy { label_smoothing: 0.0 }, true), &mut NoHooks).map(|_| ())
        }),
        ("  ... student plus cached teacher logits", &mut || {
            let logits = train::Teacher::Logits(cached.clone());
            train::Trainer::new(&student, logits, &split, config(kd, true))?.run(&mut NoHooks).map(|_| ())
        }),
        reps,
    )?;
    let teacher_every_batch = time_fn("  ... student plus teacher forward every batch", 0.0, reps, || {
        train::distill(&teacher, &student, &split, &config(kd, false), &mut NoHooks).map(|_| ())
    })?;
    // the same student's bare SGD step: an epoch is 79 of these plus batching and evaluation,
    // so the trainer's own step can be held to the benchmarked one
    let step = time_step("  ... the student's bare SGD step, batch 128 (x79 per epoch)", &student, &[128, 1, 28, 28], reps)?;
    Ok(vec![alone, teacher_every_batch, with_cache, step])
}

/// The rows `retort bench` prints; with `only`, just the rows whose name contains it (the
/// matmul peak always runs first: the other rows are fractions of it).
pub fn steps(reps: usize, only: Option<&str>) -> Result<Vec<BenchRow>> {
    let mlp = Model::new("mlp", ModelConfig { classes: 100, input: vec![784], hidden: vec![512, 512], ..ModelConfig::default() })?;
    let cnn =
        Model::new("cnn", ModelConfig { classes: 100, input: vec![3, 32, 32], channels: vec![16, 32, 64], ..ModelConfig::default() })?;
    let resnet = Model::new("resnet8x4", ModelConfig { classes: 100, input: vec![3, 32, 32], ..ModelConfig::default() })?;
    let mobile = Model::new("mobile_half", ModelConfig { classes: 100, input: vec![3, 32, 32], ..ModelConfig::default() })?;
    let shuffle = Model::new("shufflev2", ModelConfig { classes: 100, input: vec![3, 32, 32], ..ModelConfig::default() })?;
    type Row<'a> = (&'static str, Box<dyn Fn() -> Result<Vec<BenchRow>> + 'a>);
    let rows: Vec<Row> = vec![
        (
            "MLP 784-512-512-100, batch 128, SGD step",
            Box::new(|| Ok(vec![time_step("MLP 784-512-512-100, batch 128, SGD step", &mlp, &[128, 784], reps)?])),
        ),
        (
            "small CNN 3x32x32 (16/32/64), batch 64, SGD step",
            Box::new(|| Ok(vec![time_step("small CNN 3x32x32 (16/32/64), batch 64, SGD step", &cnn, &[64, 3, 32, 32], reps)?])),
        ),
        (
            "resnet8x4 (CIFAR-100), batch 64, SGD step",
            Box::new(|| Ok(vec![time_step("resnet8x4 (CIFAR-100), batch 64, SGD step", &resnet, &[64, 3, 32, 32], reps)?])),
        ),
        (
            "MobileNetV2 (width 0.5, CIFAR-100), batch 64, SGD step",
            Box::new(|| Ok(vec![time_step("MobileNetV2 (width 0.5, CIFAR-100), batch 64, SGD step", &mobile, &[64, 3, 32, 32], reps)?])),
        ),
        (
            "ShuffleV2 (CIFAR-100), batch 64, SGD step",
            Box::new(|| Ok(vec![time_step("ShuffleV2 (CIFAR-100), batch 64, SGD step", &shuffle, &[64, 3, 32, 32], reps)?])),
        ),
        ("WSL loss forward+backward, batch 256, 100 classes", Box::new(|| Ok(vec![wsl_loss(256, 100, reps)?]))),
        ("WSL loss forward+backward, batch 256, 1000 classes", Box::new(|| Ok(vec![wsl_loss(256, 1000, reps)?]))),
        ("distillation epoch", Box::new(|| distill_epochs(reps))),
    ];
    let mut out = vec![matmul_peak(reps)?];
    for (name, run) in rows {
        if only.is_none_or(|o| name.contains(o)) {
            out.extend(run()?);
        }
    }
    Ok(out)
}

/// The distillation both sides of [`script_vs_rust`] run: a CNN student (channels 16, 32) from
/// an MLP teacher, WSL at T = 4, alpha = 2.25, with a per-batch filter that drops
/// regularization samples, 3 epochs over the digits training set.
const EPOCHS: usize = 3;

const SCRIPT: &str = r#"
let p = defaults(#{ epochs: 1 });
let data = dataset("digits", #{ test_fraction: 0.2, seed: 7 });
let teacher = model("mlp", #{ input: data.input, hidden: [256, 256], classes: data.classes, seed: 1 });
let student = model("cnn", #{ input: data.input, channels: [16, 32], classes: data.classes, seed: 2 });
let t0 = timestamp();
let run = distill(teacher, student, data, #{
        epochs: p.epochs, batch: 64, seed: 3,
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
    // each print replaces the last: the timing line comes last (after any filter warning)
    let out: crate::script::Output = std::rc::Rc::new(std::cell::RefCell::new(move |s: &str| *sink.borrow_mut() = s.to_string()));
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
        loss: loss::Loss::wsl(4.0, 2.25),
        ..TrainConfig::default()
    };
    // interleaved, so drift in the machine's speed hits both sides alike, each side first in
    // every other pair (so does whatever the first run of a pair leaves the second)
    let mut t = ScriptVsRust { rust: vec![], script: vec![], rust_hooks: vec![], script_hooks: vec![] };
    for rep in 0..reps {
        let mut rust = || -> Result<()> {
            let student = Model::new("cnn", cfg(vec![], 2))?;
            let mut hooks = DropRegularization { seconds: 0.0 };
            let started = Instant::now();
            train::distill(&teacher, &student, &split, &config, &mut hooks)?;
            t.rust.push(started.elapsed().as_secs_f64() * 1e3);
            t.rust_hooks.push(hooks.seconds * 1e3);
            Ok(())
        };
        let script = || script_once();
        let (total, in_hooks) = if rep % 2 == 0 {
            rust()?;
            script()?
        } else {
            let timed = script()?;
            rust()?;
            timed
        };
        t.script.push(total);
        t.script_hooks.push(in_hooks);
    }
    Ok(t)
}

/// resnet8x4 (CIFAR-100) SGD steps at `batch` on GPU `ordinal`: the median, min and max step
/// time (ms) over `reps` steps, and the median of each phase (forward, loss, backward, update).
#[cfg(feature = "cuda")]
pub fn gpu_step(ordinal: usize, batch: usize, reps: usize) -> Result<((f64, f64, f64), [f64; 4])> {
    use crate::cuda::model::GpuModel;
    use crate::cuda::optim::GpuOptimizer;
    use crate::nn::{Model, ModelConfig};
    use crate::optim::OptimizerConfig;
    use std::time::Instant;
    let cuda = std::rc::Rc::new(crate::cuda::Cuda::open(ordinal)?);
    let model = Model::new("resnet8x4", ModelConfig { classes: 100, input: vec![3, 32, 32], ..ModelConfig::default() })?;
    let mut gpu = GpuModel::new(cuda.clone(), &model)?;
    let mut opt = GpuOptimizer::new(OptimizerConfig::Sgd { lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 5e-4 })?;
    let mut rng = Rng::new(0);
    let x = crate::cuda::check::random(&mut rng, batch * 3 * 32 * 32, -1.0, 1.0);
    let labels: Vec<usize> = (0..batch).map(|i| i % 100).collect();
    let mut step = || -> Result<[f64; 4]> {
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let (logits, tape) = gpu.forward_train(&x, &[batch, 3, 32, 32], &mut rng)?;
        let forward = ms(t);
        let t = Instant::now();
        let l = Tensor::variable(logits, &[batch, 100])?;
        let dl = crate::loss::cross_entropy(&l, &labels, 0.0)?.loss.backward()?.get(l.leaf_key().expect("a variable")).map(<[f32]>::to_vec);
        let loss = ms(t);
        let t = Instant::now();
        gpu.backward(tape, &dl.unwrap_or_default())?;
        cuda.sync()?;
        let backward = ms(t);
        let t = Instant::now();
        opt.step(&mut gpu, 0.01)?;
        cuda.sync()?;
        Ok([forward, loss, backward, ms(t)])
    };
    for _ in 0..3 {
        step()?;
    }
    let phases: Vec<[f64; 4]> = (0..reps).map(|_| step()).collect::<Result<_>>()?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let totals: Vec<f64> = phases.iter().map(|p| p.iter().sum()).collect();
    let (lo, hi) = (totals.iter().copied().fold(f64::INFINITY, f64::min), totals.iter().copied().fold(0.0, f64::max));
    let each = [0, 1, 2, 3].map(|k| median(phases.iter().map(|p| p[k]).collect()));
    Ok(((median(totals), lo, hi), each))
}
