//! The only module that names dfdx: its CPU device and its per-tensor SGD/Adam update kernels,
//! and, with the `cuda` feature, its CUDA device ([`Gpu`]).
//!
//! retort keeps parameters as plain `Vec<f32>`. An update moves the parameter into a dfdx
//! tensor (no copy), runs dfdx's kernel through `SgdConfig::try_update` /
//! `AdamConfig::try_update`, and copies the result back out (one copy per parameter per step).

use crate::error::{Error, Result};
use dfdx::tensor::{Cpu, Storage, Tensor, TensorFromVec};
use dfdx::tensor_ops::{AdamConfig, Momentum, SgdConfig, WeightDecay};

type DeviceVec = <Cpu as Storage<f32>>::Vec;

/// How weight decay enters an update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decay {
    /// Added to the gradient (PyTorch's `weight_decay` in SGD and Adam).
    L2(f32),
    /// Applied to the weights directly (AdamW).
    Decoupled(f32),
}

/// One parameter's optimizer state, held in dfdx storage.
pub struct SlotState {
    first: DeviceVec,
    second: DeviceVec,
}

/// The CPU device and its update kernels.
pub struct Device {
    cpu: Cpu,
}

impl Default for Device {
    fn default() -> Self {
        Device { cpu: Cpu::default() }
    }
}

fn backend_err(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl Device {
    /// Zeroed optimizer state for a parameter of `len` values.
    pub fn slot(&self, len: usize) -> Result<SlotState> {
        Ok(SlotState {
            first: self.cpu.try_alloc_len(len).map_err(backend_err)?,
            second: self.cpu.try_alloc_len(len).map_err(backend_err)?,
        })
    }

    /// Reads the state buffers (first moment / velocity, second moment).
    pub fn slot_values<'a>(&self, slot: &'a SlotState) -> (&'a [f32], &'a [f32]) {
        (&slot.first, &slot.second)
    }

    /// Overwrites the state buffers (for resuming from a checkpoint).
    pub fn set_slot_values(&self, slot: &mut SlotState, first: &[f32], second: &[f32]) -> Result<()> {
        if first.len() != slot.first.len() || second.len() != slot.second.len() {
            return Err(Error::shape("optimizer state", slot.first.len(), first.len()));
        }
        slot.first.copy_from_slice(first);
        slot.second.copy_from_slice(second);
        Ok(())
    }

    /// Moves a buffer into dfdx storage without copying (`CachableVec` derefs to `Vec`).
    fn wrap(&self, v: Vec<f32>) -> Result<DeviceVec> {
        let mut d = self.cpu.try_alloc_len(0).map_err(backend_err)?;
        *d = v;
        Ok(d)
    }

    fn param_tensor(&self, param: &mut Vec<f32>) -> Result<Tensor<(usize,), f32, Cpu>> {
        let n = param.len();
        self.cpu.try_tensor_from_vec(std::mem::take(param), (n,)).map_err(backend_err)
    }

    /// SGD (optionally with momentum or Nesterov momentum) on one parameter, in place.
    pub fn sgd(
        &self,
        lr: f32,
        momentum: f32,
        nesterov: bool,
        weight_decay: f32,
        param: &mut Vec<f32>,
        grad: Vec<f32>,
        slot: &mut SlotState,
    ) -> Result<()> {
        let cfg = SgdConfig {
            lr: lr as f64,
            momentum: match (momentum > 0.0, nesterov) {
                (false, _) => None,
                (true, false) => Some(Momentum::Classic(momentum as f64)),
                (true, true) => Some(Momentum::Nesterov(momentum as f64)),
            },
            weight_decay: (weight_decay > 0.0).then_some(WeightDecay::L2(weight_decay as f64)),
        };
        let mut p = self.param_tensor(param)?;
        let g = self.wrap(grad)?;
        let result = cfg.try_update(&mut p, &mut slot.first, &g);
        *param = p.as_vec();
        result.map_err(backend_err)
    }

    /// Adam / AdamW on one parameter, in place; `t` is the 1-based step count.
    #[allow(clippy::too_many_arguments)]
    pub fn adam(
        &self,
        t: i32,
        lr: f32,
        betas: [f32; 2],
        eps: f32,
        decay: Option<Decay>,
        param: &mut Vec<f32>,
        grad: Vec<f32>,
        slot: &mut SlotState,
    ) -> Result<()> {
        let cfg = AdamConfig {
            lr: lr as f64,
            betas: [betas[0] as f64, betas[1] as f64],
            eps: eps as f64,
            weight_decay: decay.map(|d| match d {
                Decay::L2(w) => WeightDecay::L2(w as f64),
                Decay::Decoupled(w) => WeightDecay::Decoupled(w as f64),
            }),
        };
        let mut p = self.param_tensor(param)?;
        let g = self.wrap(grad)?;
        let result = cfg.try_update(t, &mut p, &mut slot.first, &mut slot.second, &g);
        *param = p.as_vec();
        result.map_err(backend_err)
    }
}

/// Element-wise functions a [`Gpu`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    Exp,
    Log,
    Relu,
    Sigmoid,
    Tanh,
    Sqrt,
    Abs,
}

/// Element-wise functions of two equally shaped operands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// Row-wise reductions over `[rows, cols]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rows {
    Softmax,
    LogSoftmax,
    Sum,
}

/// Runs `open` (a CUDA device's construction) so that driver trouble is an error naming GPU
/// `ordinal`, never a panic: cudarc 0.9 unwraps some driver errors, so a panic is caught (its
/// message silenced) and reported like an error.
#[cfg(feature = "cuda")]
pub(crate) fn open_guarded<T>(ordinal: usize, open: impl FnOnce() -> std::result::Result<T, String>) -> Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(open));
    std::panic::set_hook(hook);
    let cause = match opened {
        Ok(Ok(device)) => return Ok(device),
        Ok(Err(e)) => e,
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the CUDA driver failed".into()),
    };
    // cudarc unwraps driver errors: keep the error, not the unwrap's wording
    let cause = cause.trim_start_matches("called `Result::unwrap()` on an `Err` value: ");
    Err(Error::Backend(format!(
        "cannot open CUDA device {ordinal}: {cause}. Is there an NVIDIA GPU and driver (nvidia-smi)? \
         The CPU device still works: leave out the cuda device."
    )))
}

#[cfg(feature = "cuda")]
mod gpu {
    //! dfdx's `Cuda` device (cudarc 0.9: libcuda, cuBLAS, NVRTC). Every call takes and returns
    //! host buffers; shapes are checked before dfdx sees them, since dfdx panics on a mismatch.
    use super::{backend_err, open_guarded, Binary, Rows, Unary};
    use crate::error::{Error, Result};
    use dfdx::prelude::*;

    fn expect_len(op: &'static str, what: &str, data: &[f32], want: usize) -> Result<()> {
        if data.len() != want {
            return Err(Error::shape(op, format!("{want} values for {what}"), data.len()));
        }
        Ok(())
    }

    /// A CUDA GPU, opened through dfdx.
    pub struct Gpu {
        dev: Cuda,
        ordinal: usize,
    }

    impl Gpu {
        /// Opens GPU `ordinal`. No GPU, no driver or the link-stub driver give an error, not a
        /// panic: cudarc 0.9 panics on some of these, so the panic is caught and reported.
        pub fn open(ordinal: usize) -> Result<Gpu> {
            open_guarded(ordinal, || Cuda::try_build(ordinal, 0).map(|dev| Gpu { dev, ordinal }).map_err(|e| format!("{e:?}")))
        }

        pub fn describe(&self) -> String {
            format!("CUDA device {} (dfdx 0.13 / cudarc 0.9)", self.ordinal)
        }

        fn matrix(&self, op: &'static str, data: &[f32], rows: usize, cols: usize) -> Result<Tensor<(usize, usize), f32, Cuda>> {
            expect_len(op, &format!("[{rows}, {cols}]"), data, rows * cols)?;
            self.dev.try_tensor_from_vec(data.to_vec(), (rows, cols)).map_err(backend_err)
        }

        /// `[m, k] x [k, n]` on cuBLAS.
        pub fn matmul(&self, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Result<Vec<f32>> {
            let (a, b) = (self.matrix("matmul", a, m, k)?, self.matrix("matmul", b, k, n)?);
            Ok(a.try_matmul(b).map_err(backend_err)?.as_vec())
        }

        pub fn unary(&self, f: Unary, x: &[f32]) -> Result<Vec<f32>> {
            let t = self.matrix("unary", x, 1, x.len())?;
            let y = match f {
                Unary::Exp => t.try_exp(),
                Unary::Log => t.try_ln(),
                Unary::Relu => t.try_relu(),
                Unary::Sigmoid => t.try_sigmoid(),
                Unary::Tanh => t.try_tanh(),
                Unary::Sqrt => t.try_sqrt(),
                Unary::Abs => t.try_abs(),
            };
            Ok(y.map_err(backend_err)?.as_vec())
        }

        pub fn binary(&self, f: Binary, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
            let (x, y) = (self.matrix("binary", a, 1, a.len())?, self.matrix("binary", b, 1, a.len())?);
            let z = match f {
                Binary::Add => x.try_add(y),
                Binary::Sub => x.try_sub(y),
                Binary::Mul => x.try_mul(y),
                Binary::Div => x.try_div(y),
            };
            Ok(z.map_err(backend_err)?.as_vec())
        }

        /// Softmax, log-softmax or sum of each row of `[rows, cols]`.
        pub fn rows(&self, f: Rows, x: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
            let t = self.matrix("rows", x, rows, cols)?;
            Ok(match f {
                Rows::Softmax => t.try_softmax::<Axis<1>>().map_err(backend_err)?.as_vec(),
                Rows::LogSoftmax => t.try_log_softmax::<Axis<1>>().map_err(backend_err)?.as_vec(),
                Rows::Sum => t.try_sum::<(usize,), Axis<1>>().map_err(backend_err)?.as_vec(),
            })
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod gpu {
    use super::{Binary, Rows, Unary};
    use crate::error::{Error, Result};

    /// A CUDA GPU: this build has none (it was built without the `cuda` feature).
    pub enum Gpu {}

    impl Gpu {
        pub fn open(_ordinal: usize) -> Result<Gpu> {
            Err(Error::Backend(
                "this retort was built without CUDA: build it with `cargo build --release --features cuda` \
                 (docs/cuda.md), or leave out the cuda device"
                    .into(),
            ))
        }

        pub fn describe(&self) -> String {
            match *self {}
        }

        pub fn matmul(&self, _: &[f32], _: &[f32], _: usize, _: usize, _: usize) -> Result<Vec<f32>> {
            match *self {}
        }

        pub fn unary(&self, _: Unary, _: &[f32]) -> Result<Vec<f32>> {
            match *self {}
        }

        pub fn binary(&self, _: Binary, _: &[f32], _: &[f32]) -> Result<Vec<f32>> {
            match *self {}
        }

        pub fn rows(&self, _: Rows, _: &[f32], _: usize, _: usize) -> Result<Vec<f32>> {
            match *self {}
        }
    }
}

pub use gpu::Gpu;

#[cfg(test)]
mod tests {
    use super::*;

    // torch: p=[1,2], g=[0.5,-1], SGD(lr=0.1, momentum=0.9, weight_decay=0.01), two steps with the same g:
    // step 1: d = g + 0.01 p = [0.51, -0.98]; v = d; p = [0.949, 2.098]
    // step 2: d = [0.50949, -0.97902]; v = 0.9 v + d = [0.96849, -1.86102]; p = [0.852151, 2.284102]
    #[test]
    fn sgd_momentum_weight_decay_matches_torch() {
        let dev = Device::default();
        let mut slot = dev.slot(2).unwrap();
        let mut p = vec![1.0, 2.0];
        for _ in 0..2 {
            dev.sgd(0.1, 0.9, false, 0.01, &mut p, vec![0.5, -1.0], &mut slot).unwrap();
        }
        assert!((p[0] - 0.852151).abs() < 1e-6, "{p:?}");
        assert!((p[1] - 2.284102).abs() < 1e-6, "{p:?}");
    }

    // torch: p=[1], g=[0.5], Adam(lr=0.1): first step moves by lr * sign(g) = 0.9.
    #[test]
    fn adam_first_step_moves_by_lr() {
        let dev = Device::default();
        let mut slot = dev.slot(1).unwrap();
        let mut p = vec![1.0];
        dev.adam(1, 0.1, [0.9, 0.999], 1e-8, None, &mut p, vec![0.5], &mut slot).unwrap();
        assert!((p[0] - 0.9).abs() < 1e-6, "{p:?}");
    }
}
