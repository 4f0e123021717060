//! The only module that names dfdx: with the `cuda` feature, its CUDA device ([`Gpu`]:
//! matmul, element-wise ops, softmax, sums); in tests, its CPU SGD/Adam update kernels as the
//! reference for retort's own in-place updates ([`reference`]).

#[cfg(any(test, feature = "cuda"))]
use crate::error::{Error, Result};

#[cfg(any(test, feature = "cuda"))]
fn backend_err(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// dfdx's CPU device and its SGD/Adam update kernels: the reference `optim::update` is held
/// to, bit for bit. A dfdx update needs an owning tensor, so it costs a copy of the parameter
/// out of dfdx storage every step; retort's optimizer updates in place instead.
#[cfg(test)]
pub(crate) mod reference {
    use super::{backend_err, Result};
    use crate::optim::Decay;
    use dfdx::tensor::{Cpu, Storage, Tensor, TensorFromVec};
    use dfdx::tensor_ops::{AdamConfig, Momentum, SgdConfig, WeightDecay};

    type DeviceVec = <Cpu as Storage<f32>>::Vec;

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

    impl Device {
        /// Zeroed optimizer state for a parameter of `len` values.
        pub fn slot(&self, len: usize) -> Result<SlotState> {
            Ok(SlotState {
                first: self.cpu.try_alloc_len(len).map_err(backend_err)?,
                second: self.cpu.try_alloc_len(len).map_err(backend_err)?,
            })
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
