//! Devices by name (`cpu`, `cuda`, `cuda:N`) and the agreement check: what a GPU computes
//! against the CPU reference ops, op by op, on seeded random inputs.
//!
//! Today a GPU runs dfdx's CUDA kernels (matmul on cuBLAS, element-wise, softmax, sums);
//! retort's own layers, losses and optimizers run on the CPU (issue: CUDA port).

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::backend::{Binary, Gpu, Rows, Unary};
use crate::tensor::Tensor;

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeviceName {
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceName {
    type Err = Error;

    fn from_str(s: &str) -> Result<DeviceName> {
        match s {
            "cpu" => Ok(DeviceName::Cpu),
            "cuda" => Ok(DeviceName::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceName::Cuda(n)),
                _ => Err(Error::invalid("device", format!("unknown device '{s}': use cpu, cuda or cuda:N (N = the GPU's number)"))),
            },
        }
    }
}

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

fn random(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!("cpu".parse::<DeviceName>().unwrap(), DeviceName::Cpu);
        assert_eq!("cuda".parse::<DeviceName>().unwrap(), DeviceName::Cuda(0));
        assert_eq!("cuda:2".parse::<DeviceName>().unwrap(), DeviceName::Cuda(2));
        let e = "gpu".parse::<DeviceName>().unwrap_err().to_string();
        assert!(e.contains("'gpu'") && e.contains("cuda:N"), "{e}");
    }

    #[test]
    fn worst_is_relative_above_one_and_absolute_below() {
        assert_eq!(worst(&[2.0, 0.5], &[2.0, 0.5]), 0.0);
        assert!((worst(&[10.1], &[10.0]) - 0.01).abs() < 1e-6);
        assert!((worst(&[0.1], &[0.0]) - 0.1).abs() < 1e-6);
        assert_eq!(worst(&[f32::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(worst(&[1.0], &[1.0, 2.0]), f64::INFINITY);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_cuda_is_a_clear_error() {
        let e = Gpu::open(0).err().unwrap().to_string();
        assert!(e.contains("built without CUDA") && e.contains("--features cuda"), "{e}");
    }
}
