//! The only module outside tests that names dfdx: with the `cuda` feature, its CUDA device
//! ([`Gpu`]: matmul, element-wise ops, softmax, sums). (The test oracle of the optimizer,
//! dfdx's CPU update kernels, is `optim::reference`.)

#[cfg(feature = "cuda")]
use crate::error::{Error, Result};

#[cfg(feature = "cuda")]
fn backend_err(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
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

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    #[test]
    fn without_the_feature_cuda_is_a_clear_error() {
        let e = super::Gpu::open(0).err().unwrap().to_string();
        assert!(e.contains("built without CUDA") && e.contains("--features cuda"), "{e}");
    }
}
