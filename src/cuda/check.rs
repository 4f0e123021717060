//! The GPU against the CPU: every op, loss, pooling and layer of a model run on both with
//! seeded random inputs, compared value by value ([`Agreement`]); a short training run on
//! both ([`train_check`]); and the pass/fail policy `retort device cuda --check` applies.

use crate::devices::DeviceName;
use crate::error::Result;
use crate::rng::Rng;
use crate::tensor::backend::{Binary, Gpu, Rows, Unary};
use crate::tensor::Tensor;

/// One line of the agreement check.
pub struct Agreement {
    pub op: String,
    pub shape: String,
    /// max over elements of |gpu - cpu| / max(|cpu|, 1)
    pub worst: f64,
}

impl Agreement {
    pub fn passed(&self, tolerance: f64) -> bool {
        self.worst <= tolerance
    }
}

fn worst(gpu: &[f32], cpu: &[f32]) -> f64 {
    if gpu.len() != cpu.len() {
        return f64::INFINITY;
    }
    gpu.iter().zip(cpu).map(|(g, c)| (*g as f64 - *c as f64).abs() / (*c as f64).abs().max(1.0)).fold(0.0, |a, b| {
        if b.is_nan() {
            f64::INFINITY
        } else {
            a.max(b)
        }
    })
}

/// `n` values uniform in `[lo, hi)`.
pub(crate) fn random(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform_in(lo, hi)).collect()
}

/// Runs every op the GPU has on seeded random inputs and compares with the CPU ops.
pub fn agreement(gpu: &Gpu, seed: u64) -> Result<Vec<Agreement>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut push = |op: &str, shape: String, g: Vec<f32>, c: &[f32]| out.push(Agreement { op: op.into(), shape, worst: worst(&g, c) });

    for (m, k, n) in [(64, 128, 96), (1, 1, 1), (127, 33, 65), (256, 512, 100)] {
        let (a, b) = (random(&mut rng, m * k, -1.0, 1.0), random(&mut rng, k * n, -1.0, 1.0));
        let cpu = Tensor::from_vec(a.clone(), &[m, k])?.matmul(&Tensor::from_vec(b.clone(), &[k, n])?)?;
        push("matmul", format!("[{m}, {k}] x [{k}, {n}]"), gpu.matmul(&a, &b, m, k, n)?, cpu.data());
    }
    let n = 10_000;
    for f in [Unary::Exp, Unary::Log, Unary::Relu, Unary::Sigmoid, Unary::Tanh, Unary::Sqrt, Unary::Abs] {
        let positive = matches!(f, Unary::Log | Unary::Sqrt);
        let x = if positive { random(&mut rng, n, 0.01, 5.0) } else { random(&mut rng, n, -5.0, 5.0) };
        let t = Tensor::from_vec(x.clone(), &[n])?;
        let cpu = match f {
            Unary::Exp => t.exp(),
            Unary::Log => t.log(),
            Unary::Relu => t.relu(),
            Unary::Sigmoid => t.sigmoid(),
            Unary::Tanh => t.tanh(),
            Unary::Sqrt => t.sqrt(),
            Unary::Abs => t.abs(),
        };
        push(&format!("{f:?}").to_lowercase(), format!("[{n}]"), gpu.unary(f, &x)?, cpu.data());
    }
    for f in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
        let a = random(&mut rng, n, -5.0, 5.0);
        let b: Vec<f32> = random(&mut rng, n, 0.5, 5.0).into_iter().map(|v| if rng.uniform() < 0.5 { -v } else { v }).collect();
        let (ta, tb) = (Tensor::from_vec(a.clone(), &[n])?, Tensor::from_vec(b.clone(), &[n])?);
        let cpu = match f {
            Binary::Add => ta.add(&tb)?,
            Binary::Sub => ta.sub(&tb)?,
            Binary::Mul => ta.mul(&tb)?,
            Binary::Div => ta.div(&tb)?,
        };
        push(&format!("{f:?}").to_lowercase(), format!("[{n}]"), gpu.binary(f, &a, &b)?, cpu.data());
    }
    for (rows, cols) in [(256, 100), (7, 1000), (1, 3)] {
        for f in [Rows::Softmax, Rows::LogSoftmax, Rows::Sum] {
            let x = random(&mut rng, rows * cols, -8.0, 8.0);
            let t = Tensor::from_vec(x.clone(), &[rows, cols])?;
            let cpu = match f {
                Rows::Softmax => t.softmax(1)?,
                Rows::LogSoftmax => t.log_softmax(1)?,
                Rows::Sum => t.sum_dim(1, false)?,
            };
            let name = match f {
                Rows::Softmax => "softmax",
                Rows::LogSoftmax => "log_softmax",
                Rows::Sum => "sum over dim 1",
            };
            push(name, format!("[{rows}, {cols}]"), gpu.rows(f, &x, rows, cols)?, cpu.data());
        }
    }
    Ok(out)
}

/// ||gpu - cpu||_2 / ||cpu||_2 over a whole tensor (gradient-check style): sums accumulated in
/// another order differ most where terms cancel, so single entries are the wrong measure there.
pub fn norm_relative(gpu: &[f32], cpu: &[f32]) -> f64 {
    if gpu.len() != cpu.len() {
        return f64::INFINITY;
    }
    let (mut d, mut c) = (0.0f64, 0.0f64);
    for (g, r) in gpu.iter().zip(cpu) {
        d += (*g as f64 - *r as f64).powi(2);
        c += (*r as f64).powi(2);
    }
    let e = if c == 0.0 { d.sqrt() } else { (d / c).sqrt() };
    if e.is_nan() {
        f64::INFINITY
    } else {
        e
    }
}

/// The smallest |value| entering any ReLU of `model` in a train-mode pass over `x` (the model's
/// batch-norm running statistics move, so pass a throwaway copy). At a ReLU input within rounding
/// of zero the derivative depends on the rounding, so gradient comparisons avoid such inputs.
pub fn min_relu_input(model: &crate::nn::Model, x: &Tensor, dropout_seed: u64) -> Result<f32> {
    use crate::nn::layer::{Ctx, Join, Layer};
    fn walk(layers: &[Layer], x: &Tensor, ctx: &mut Ctx, min: &mut f32) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in layers {
            h = match layer {
                Layer::Relu => {
                    *min = h.data().iter().fold(*min, |m, v| m.min(v.abs()));
                    h.relu()
                }
                Layer::Residual(r) => {
                    let pre = walk(&r.pre, &h, ctx, min)?;
                    let joined = if r.join == Join::SplitConcat {
                        let (c, half) = (pre.shape()[1], pre.shape()[1] / 2);
                        let x2 = walk(&r.body, &pre.narrow(1, half, c - half)?, ctx, min)?;
                        Tensor::cat(&[pre.narrow(1, 0, half)?, x2], 1)?
                    } else {
                        let main = walk(&r.body, &pre, ctx, min)?;
                        let skip = walk(&r.shortcut, if r.shared_pre { &pre } else { &h }, ctx, min)?;
                        if r.join == Join::Concat {
                            Tensor::cat(&[main, skip], 1)?
                        } else {
                            main.add(&skip)?
                        }
                    };
                    walk(&r.post, &joined, ctx, min)?
                }
                other => other.forward(&h, ctx)?,
            };
        }
        Ok(h)
    }
    let mut rng = Rng::new(dropout_seed);
    let mut ctx = Ctx { train: true, track: false, rng: &mut rng, macs: 0 };
    let mut min = f32::INFINITY;
    walk(model.layers(), x, &mut ctx, &mut min)?;
    Ok(min)
}

/// Layer-level agreement (the `cuda` feature), for models covering every layer the zoo uses:
/// train-mode logits (element-wise), every parameter gradient and the batch-norm running
/// statistics (norm-wise per tensor), parameters after three optimizer steps from the same
/// gradients (SGD, Nesterov, Adam, AdamW; norm-wise), and eval-mode logits after them.
pub fn layer_agreement(ordinal: usize) -> Result<Vec<Agreement>> {
    use crate::cuda::model::GpuModel;
    use crate::cuda::optim::GpuOptimizer;
    use crate::nn::{Mode, Model, ModelConfig};
    use crate::optim::{Optimizer, OptimizerConfig};
    use std::rc::Rc;

    let cuda = Rc::new(crate::cuda::Cuda::open(ordinal)?);
    let mut out = Vec::new();
    let cases: [(&str, Vec<usize>, Vec<usize>, f32, OptimizerConfig); 10] = [
        ("mlp", vec![1, 8, 8], vec![32, 16], 0.25, OptimizerConfig::Sgd { lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 5e-4 }),
        ("cnn", vec![3, 16, 16], vec![], 0.0, OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 1e-4 }),
        (
            "resnet8",
            vec![3, 16, 16],
            vec![],
            0.0,
            OptimizerConfig::Adam { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-4, decoupled: false },
        ),
        (
            "wrn_16_1",
            vec![3, 16, 16],
            vec![],
            0.0,
            OptimizerConfig::Adam { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, decoupled: true },
        ),
        ("resnet8x4", vec![3, 32, 32], vec![], 0.0, OptimizerConfig::sgd(0.1)),
        // the benchmark zoo's layers: convolution bias and max pooling (vgg8), depthwise
        // convolution and inverted residuals (mobile_half), grouped convolution, channel shuffle,
        // padded average pooling and concatenating blocks (shufflev1), split blocks (shufflev2),
        // the ImageNet stem's 7x7 convolution and padded max pool (resnet18_imagenet)
        ("vgg8", vec![3, 16, 16], vec![], 0.0, OptimizerConfig::sgd(0.05)),
        ("mobile_half", vec![3, 16, 16], vec![], 0.0, OptimizerConfig::sgd(0.05)),
        ("shufflev1", vec![3, 16, 16], vec![], 0.0, OptimizerConfig::sgd(0.05)),
        ("shufflev2", vec![3, 16, 16], vec![], 0.0, OptimizerConfig::sgd(0.05)),
        ("resnet18_imagenet", vec![3, 32, 32], vec![], 0.0, OptimizerConfig::sgd(0.05)),
    ];
    // the worst tensor of a model by `measure`, named in the row
    let worst_of =
        |rows: Vec<(String, f64)>| rows.into_iter().fold((String::new(), 0.0f64), |a, b| if b.1 > a.1 || b.1.is_nan() { b } else { a });
    for (arch, input, hidden, dropout, opt) in cases {
        let hidden = if hidden.is_empty() { ModelConfig::default().hidden } else { hidden };
        let cfg = ModelConfig { classes: 10, input: input.clone(), hidden, dropout, seed: 3, ..ModelConfig::default() };
        let (cpu, gpu_host, probe) = (Model::new(arch, cfg.clone())?, Model::new(arch, cfg.clone())?, Model::new(arch, cfg)?);
        // resnet8x4 has 0.5 M ReLU inputs per sample at 32x32: two samples keep a margin findable
        let batch = if matches!(arch, "resnet8x4" | "shufflev1" | "shufflev2" | "resnet18_imagenet") { 2 } else { 8 };
        let mut shape = vec![batch];
        shape.extend(&input);
        // an input whose ReLU inputs all keep 2e-6 away from zero (see `min_relu_input`)
        let mut input_seed = 11;
        let x = loop {
            let x = Tensor::from_vec(random(&mut Rng::new(input_seed), shape.iter().product(), -1.0, 1.0), &shape)?;
            if min_relu_input(&probe, &x, 5)? >= 2e-6 || input_seed >= 60 {
                break x;
            }
            input_seed += 1;
        };
        let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % 10).collect();
        let mut gpu = GpuModel::new(cuda.clone(), &gpu_host)?;
        let opt_name = format!("{opt:?}").split_whitespace().next().unwrap_or("").to_string();
        let (mut gpu_opt, mut cpu_opt) = (GpuOptimizer::new(opt.clone())?, Optimizer::new(opt)?);
        // one train-mode pass, same dropout stream
        let logits = cpu.forward(&x, Mode::Train, &mut Rng::new(5))?;
        let grads = crate::loss::cross_entropy(&logits, &labels, 0.0)?.loss.backward()?;
        let (g_logits, tape) = gpu.forward_train(x.data(), x.shape(), &mut Rng::new(5))?;
        let gl = Tensor::variable(g_logits.clone(), logits.shape())?;
        let dl =
            crate::loss::cross_entropy(&gl, &labels, 0.0)?.loss.backward()?.get(gl.leaf_key().expect("a variable")).map(<[f32]>::to_vec);
        gpu.backward(tape, &dl.unwrap_or_default())?;
        let shape_text = format!("{:?}, input seed {input_seed}", x.shape());
        out.push(Agreement { op: format!("{arch} forward (train)"), shape: shape_text.clone(), worst: worst(&g_logits, logits.data()) });
        // all gradients as one vector (a pre-ReLU value within rounding of zero can flip one
        // sample's mask and move a single small tensor, e.g. a batch-norm bias), and the worst tensor
        let (mut all_gpu, mut all_cpu, mut per_tensor) = (Vec::new(), Vec::new(), Vec::new());
        for (name, g) in gpu.gradients()? {
            let c = grads.get(cpu.param(&name).expect("same architecture").key()).unwrap_or(&[]).to_vec();
            per_tensor.push((name, norm_relative(&g, &c)));
            all_gpu.extend(g);
            all_cpu.extend(c);
        }
        let (name, w) = worst_of(per_tensor);
        out.push(Agreement {
            op: format!("{arch} gradients, norm-wise over all (worst tensor: {name}, {w:.1e})"),
            shape: format!("{} tensors", cpu.trainable().count()),
            worst: norm_relative(&all_gpu, &all_cpu),
        });
        gpu.download()?;
        let buffers: Vec<(String, f64)> = cpu
            .params()
            .iter()
            .filter(|p| !p.trainable())
            .map(|p| (p.name().to_string(), norm_relative(&gpu_host.param(p.name()).expect("same architecture").values(), &p.values())))
            .collect();
        if !buffers.is_empty() {
            let (name, w) = worst_of(buffers);
            out.push(Agreement {
                op: format!("{arch} batch-norm running statistics, norm-wise (worst: {name})"),
                shape: format!("{} buffers", cpu.params().iter().filter(|p| !p.trainable()).count()),
                worst: w,
            });
        }
        // three optimizer steps from the CPU's gradients on both sides
        for _ in 0..3 {
            let mut g = crate::tensor::Gradients::default();
            for p in cpu.trainable() {
                g.insert(p.key(), grads.get(p.key()).unwrap_or(&[]).to_vec());
            }
            gpu.set_gradients(|name| cpu.param(name).and_then(|p| grads.get(p.key())).map(<[f32]>::to_vec))?;
            gpu_opt.step(&mut gpu, 0.05)?;
            cpu_opt.step(cpu.params(), &mut g, 0.05)?;
        }
        gpu.download()?;
        let (name, w) = worst_of(
            cpu.trainable()
                .map(|p| (p.name().to_string(), norm_relative(&gpu_host.param(p.name()).expect("same architecture").values(), &p.values())))
                .collect(),
        );
        out.push(Agreement {
            op: format!("{arch} parameters after 3 {opt_name} steps, norm-wise (worst: {name})"),
            shape: format!("{} tensors", cpu.trainable().count()),
            worst: w,
        });
        let e_cpu = cpu.forward(&x, Mode::Eval, &mut Rng::new(0))?;
        let e_gpu = gpu.forward(x.data(), x.shape(), false, &mut Rng::new(0))?;
        out.push(Agreement { op: format!("{arch} forward (eval)"), shape: shape_text, worst: worst(&e_gpu, e_cpu.data()) });
    }
    Ok(out)
}

/// The GPU loss kernel against `loss::compute`: CE (label smoothing), KD and WSL (with a
/// sample filter), loss value, per-sample parts and the gradient w.r.t. the student logits.
pub fn loss_agreement(ordinal: usize) -> Result<Vec<Agreement>> {
    use crate::loss::Loss;
    let cuda = crate::cuda::Cuda::open(ordinal)?;
    let mut rng = Rng::new(21);
    let mut out = Vec::new();
    for (b, c) in [(128, 100), (7, 1000)] {
        let s = Tensor::variable(random(&mut rng, b * c, -6.0, 6.0), &[b, c])?;
        let t = Tensor::from_vec(random(&mut rng, b * c, -6.0, 6.0), &[b, c])?;
        let labels: Vec<usize> = (0..b).map(|_| (rng.uniform() * c as f32) as usize % c).collect();
        let mask: Vec<f32> = (0..b).map(|i| (i % 3 != 0) as u8 as f32).collect();
        let (sd, td) = (cuda.upload(s.data())?, cuda.upload(t.data())?);
        for (name, loss, weights) in [
            ("cross-entropy, label smoothing 0.1", Loss::CrossEntropy { label_smoothing: 0.1 }, None),
            ("KD, T 4, alpha 0.9", Loss::kd(4.0, 0.9), None),
            ("WSL, T 4, alpha 2.25", Loss::wsl(4.0, 2.25), None),
            ("WSL, T 2, alpha 2.5, filtered", Loss::wsl(2.0, 2.5), Some(&mask[..])),
        ] {
            let cpu = crate::loss::compute(&s, Some(&t), &labels, loss, weights)?;
            let grad = cpu.loss.backward()?.get(s.leaf_key().expect("a variable")).map(<[f32]>::to_vec).unwrap_or_default();
            let (gpu, g_grad) = cuda.loss(&sd, Some(&td), &s, Some(&t), &labels, loss, weights)?;
            let shape = format!("[{b}, {c}]");
            out.push(Agreement { op: format!("{name}: loss"), shape: shape.clone(), worst: worst(gpu.loss.data(), cpu.loss.data()) });
            let (p, q) = (&gpu.parts, &cpu.parts);
            let parts = [(&p.ce_student, &q.ce_student), (&p.ce_teacher, &q.ce_teacher), (&p.weight, &q.weight), (&p.soft, &q.soft)];
            let w = parts.iter().map(|(a, b)| worst(a, b)).fold(0.0, f64::max);
            out.push(Agreement { op: format!("{name}: per-sample parts"), shape: shape.clone(), worst: w });
            out.push(Agreement { op: format!("{name}: gradient"), shape, worst: worst(&cuda.download(&g_grad)?, &grad) });
        }
    }
    Ok(out)
}

/// Average pooling has kernels but no zoo model uses it: its forward and backward kernels
/// against the CPU op on a random `[2, 3, 9, 9]` input, kernel 3, strides 3 and 2, and stride 2
/// with padding 1 (ShuffleNet V1's shortcut; padding counted in the divisor).
pub fn pool_agreement(ordinal: usize) -> Result<Vec<Agreement>> {
    let cuda = crate::cuda::Cuda::open(ordinal)?;
    let mut rng = Rng::new(31);
    let (n, c, h, w, k) = (2usize, 3usize, 9usize, 9usize, 3usize);
    let mut out = Vec::new();
    for (stride, pad) in [(3usize, 0usize), (2, 0), (2, 1)] {
        let xv = random(&mut rng, n * c * h * w, -1.0, 1.0);
        let x = Tensor::variable(xv.clone(), &[n, c, h, w])?;
        let y = x.avg_pool2d(k, stride, pad)?;
        let (oh, ow) = (y.shape()[2], y.shape()[3]);
        let dyv = random(&mut rng, y.len(), -1.0, 1.0);
        let dx = y
            .mul(&Tensor::from_vec(dyv.clone(), y.shape())?)?
            .sum()
            .backward()?
            .get(x.leaf_key().expect("a variable"))
            .map(<[f32]>::to_vec);
        let xd = cuda.upload(&xv)?;
        let mut yd = cuda.zeros(y.len())?;
        let dims = ((n * c) as i32, h as i32, w as i32, k as i32, stride as i32, pad as i32, oh as i32, ow as i32);
        let args = (&xd, &mut yd, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7);
        cuda.launch("avgpool_fwd", y.len(), args)?;
        let dyd = cuda.upload(&dyv)?;
        let mut dxd = cuda.zeros(xv.len())?;
        cuda.launch("avgpool_bwd", xv.len(), (&dyd, &mut dxd, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7))?;
        let shape = format!("[{n}, {c}, {h}, {w}], kernel {k}, stride {stride}, padding {pad}");
        out.push(Agreement { op: "avg_pool2d forward".into(), shape: shape.clone(), worst: worst(&cuda.download(&yd)?, y.data()) });
        out.push(Agreement { op: "avg_pool2d backward".into(), shape, worst: worst(&cuda.download(&dxd)?, &dx.unwrap_or_default()) });
    }
    Ok(out)
}

/// Trains the same model on the bundled digits on the CPU and on the GPU (same seeds) and
/// returns both per-epoch train losses and final test accuracies.
pub fn train_check(ordinal: usize, arch: &str, epochs: usize) -> Result<[(Vec<f32>, f32); 2]> {
    use crate::nn::{Model, ModelConfig};
    use crate::train::{NoHooks, TrainConfig};
    let mut split = crate::data::load("digits", None, 0.2, 7)?;
    split.normalize();
    let run = |device| -> Result<(Vec<f32>, f32)> {
        let m = Model::new(
            arch,
            ModelConfig { classes: 10, input: vec![1, 8, 8], hidden: vec![64], channels: vec![16, 32], seed: 1, ..ModelConfig::default() },
        )?;
        let cfg = TrainConfig { epochs, batch_size: 32, device, ..TrainConfig::default() };
        let h = crate::train::fit(&m, &split, &cfg, &mut NoHooks)?;
        Ok((h.iter().map(|r| r.train_loss).collect(), h.last().map_or(0.0, |r| r.test_accuracy)))
    };
    Ok([run(DeviceName::Cpu)?, run(DeviceName::Cuda(ordinal))?])
}

/// A resnet8x4 (CIFAR-100) SGD step at `batch` on the GPU, timed over `reps` steps: the median,
/// min and max in milliseconds, and the median of each phase (upload + forward + logits back;
/// the loss on the CPU; backward; update), each ended by a device synchronize.

/// The verdict on a training run on both devices: the GPU's loss must fall to half and stay
/// within 2% of the CPU's every epoch.
pub fn training_follows_the_cpu(cpu: &[f32], gpu: &[f32]) -> bool {
    let close = cpu.iter().zip(gpu).all(|(a, b)| ((a - b) / a).abs() < 0.02);
    match (gpu.first(), gpu.last()) {
        (Some(first), Some(last)) => close && *last < first * 0.5,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_relu_input_sees_inside_residual_blocks() {
        use crate::nn::{Model, ModelConfig};
        let m = Model::new("resnet8", ModelConfig { classes: 10, input: vec![3, 8, 8], seed: 1, ..ModelConfig::default() }).unwrap();
        let x = Tensor::from_vec(vec![0.5; 2 * 3 * 8 * 8], &[2, 3, 8, 8]).unwrap();
        let min = min_relu_input(&m, &x, 0).unwrap();
        assert!(min.is_finite() && min >= 0.0, "{min}");
        // an mlp's first ReLU sees x W^T + b exactly; all-zero weights make it see the bias
        let mlp =
            Model::new("mlp", ModelConfig { classes: 3, input: vec![4], hidden: vec![2], seed: 1, ..ModelConfig::default() }).unwrap();
        mlp.params()[0].set(vec![0.0; 8]).unwrap();
        mlp.params()[1].set(vec![0.25, -0.5]).unwrap();
        assert_eq!(min_relu_input(&mlp, &Tensor::zeros(&[1, 4]), 0).unwrap(), 0.25);
    }

    #[test]
    fn norm_relative_is_the_relative_error_of_the_whole_tensor() {
        assert_eq!(norm_relative(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert!((norm_relative(&[3.0, 4.5], &[3.0, 4.0]) - 0.1).abs() < 1e-9);
        assert!((norm_relative(&[0.5], &[0.0]) - 0.5).abs() < 1e-9);
        assert_eq!(norm_relative(&[f32::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(norm_relative(&[1.0], &[]), f64::INFINITY);
    }

    #[test]
    fn worst_is_relative_above_one_and_absolute_below() {
        assert_eq!(worst(&[2.0, 0.5], &[2.0, 0.5]), 0.0);
        assert!((worst(&[10.1], &[10.0]) - 0.01).abs() < 1e-6);
        assert!((worst(&[0.1], &[0.0]) - 0.1).abs() < 1e-6);
        assert_eq!(worst(&[f32::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(worst(&[1.0], &[1.0, 2.0]), f64::INFINITY);
    }
}
