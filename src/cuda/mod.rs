//! retort's own CUDA path (the `cuda` feature): the device, buffers, kernel launches and
//! row-major GEMM on cuBLAS, through cudarc 0.9 (the version dfdx 0.13 uses). The kernels are
//! CUDA C in `kernels.cu`, compiled to PTX by build.rs. [`model::GpuModel`] runs a model's
//! layers and optimizer updates here; [`Cuda::loss`] runs CE/KD/WSL as `crate::loss` defines them.

pub mod check;
pub mod model;
pub mod optim;

use crate::error::{Error, Result};
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaDevice, CudaFunction, CudaSlice, DevicePtr, DevicePtrMut, LaunchAsync, LaunchConfig};
use std::sync::Arc;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels.ptx"));
const MODULE: &str = "retort";
const KERNELS: &[&str] = &[
    "add_into",
    "add",
    "mul",
    "relu_fwd",
    "relu_bwd",
    "add_bias",
    "swap01",
    "im2col",
    "col2im",
    "relu6_fwd",
    "relu6_bwd",
    "channel_copy",
    "channel_shuffle",
    "channel_sum",
    "bn_stats",
    "bn_apply",
    "bn_running",
    "bn_bwd_reduce",
    "bn_bwd_dx",
    "maxpool_fwd",
    "maxpool_bwd",
    "avgpool_fwd",
    "avgpool_bwd",
    "gap_fwd",
    "gap_bwd",
    "sgd",
    "adam",
    "distill_loss",
];

pub(crate) fn cuda_err(e: impl std::fmt::Debug) -> Error {
    Error::Backend(format!("CUDA: {e:?}"))
}

/// A GPU with retort's kernels loaded and a cuBLAS handle.
pub struct Cuda {
    dev: Arc<CudaDevice>,
    blas: CudaBlas,
}

/// A device buffer of f32.
pub type Buf = CudaSlice<f32>;

impl Cuda {
    /// Opens GPU `ordinal` and loads the kernels; driver trouble is an error, never a panic.
    pub fn open(ordinal: usize) -> Result<Cuda> {
        crate::tensor::backend::open_guarded(ordinal, || {
            let dev = CudaDevice::new(ordinal).map_err(|e| format!("{e:?}"))?;
            dev.load_ptx(PTX.into(), MODULE, KERNELS).map_err(|e| format!("{e:?}"))?;
            let blas = CudaBlas::new(dev.clone()).map_err(|e| format!("{e:?}"))?;
            Ok(Cuda { dev, blas })
        })
    }

    pub fn upload(&self, v: &[f32]) -> Result<Buf> {
        self.dev.htod_sync_copy(v).map_err(cuda_err)
    }

    pub fn download(&self, b: &Buf) -> Result<Vec<f32>> {
        self.dev.dtoh_sync_copy(b).map_err(cuda_err)
    }

    pub fn zeros(&self, n: usize) -> Result<Buf> {
        self.dev.alloc_zeros::<f32>(n.max(1)).map_err(cuda_err)
    }

    /// An uninitialized buffer, for outputs a kernel writes in full.
    pub(crate) fn output(&self, n: usize) -> Result<Buf> {
        // SAFETY: every caller passes it as the output of a kernel or GEMM that writes all n values
        unsafe { self.dev.alloc::<f32>(n.max(1)) }.map_err(cuda_err)
    }

    pub(crate) fn output_i32(&self, n: usize) -> Result<CudaSlice<i32>> {
        // SAFETY: as `output`: maxpool_fwd writes every index
        unsafe { self.dev.alloc::<i32>(n.max(1)) }.map_err(cuda_err)
    }

    /// Copies `src` into `dst` (same length) on the device.
    pub fn copy(&self, src: &Buf, dst: &mut Buf) -> Result<()> {
        self.dev.dtod_copy(src, dst).map_err(cuda_err)
    }

    pub fn sync(&self) -> Result<()> {
        self.dev.synchronize().map_err(cuda_err)
    }

    fn func(&self, name: &str) -> Result<CudaFunction> {
        self.dev.get_func(MODULE, name).ok_or_else(|| Error::Backend(format!("CUDA kernel {name} is not loaded")))
    }

    /// Grid-stride launch over `n` outputs.
    pub(crate) fn launch<P>(&self, name: &str, n: usize, args: P) -> Result<()>
    where
        CudaFunction: LaunchAsync<P>,
    {
        if n >= 1 << 31 {
            return Err(Error::invalid("cuda", format!("{name}: {n} elements is beyond the kernels' 32-bit indexing")));
        }
        let blocks = n.div_ceil(256).clamp(1, 65_535 * 8) as u32;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: every kernel in kernels.cu bounds its loop by the sizes passed with it, and the
        // callers in model.rs pass buffers of those sizes.
        unsafe { self.func(name)?.launch(cfg, args) }.map_err(cuda_err)
    }

    /// One block of 256 threads per channel (the per-channel reductions).
    pub(crate) fn launch_per_channel<P>(&self, name: &str, channels: usize, args: P) -> Result<()>
    where
        CudaFunction: LaunchAsync<P>,
    {
        let cfg = LaunchConfig { grid_dim: (channels.max(1) as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: as in `launch`; the kernels' shared arrays hold 256 values, the block size.
        unsafe { self.func(name)?.launch(cfg, args) }.map_err(cuda_err)
    }

    /// CE, KD or WSL on device logits `s` (and teacher logits `t`) as `crate::loss::compute`
    /// defines them: the loss, its per-sample parts, and the gradient w.r.t. `s` left on the
    /// device. `student`/`teacher` are the same logits on the host, for the shape checks.
    pub fn loss(
        &self,
        s: &Buf,
        t: Option<&Buf>,
        student: &crate::tensor::Tensor,
        teacher: Option<&crate::tensor::Tensor>,
        labels: &[usize],
        loss: crate::loss::Loss,
        sample_weight: Option<&[f32]>,
    ) -> Result<(crate::loss::LossOutput, Buf)> {
        use crate::loss::{LossOutput, LossParts};
        let teacher = if loss.needs_teacher() {
            Some(teacher.ok_or_else(|| Error::invalid("loss", "KD and WSL need teacher logits"))?)
        } else {
            None
        };
        let (b, c) = crate::loss::validate(student, teacher, labels, sample_weight)?;
        let k = crate::loss::settings(loss)?;
        let kind: i32 = if teacher.is_none() {
            0
        } else if k.weighted {
            2
        } else {
            1
        };
        let y: Vec<i32> = labels.iter().map(|&l| l as i32).collect();
        let y = self.dev.htod_sync_copy(&y).map_err(cuda_err)?;
        let m = self.upload(&sample_weight.map_or_else(|| vec![1.0; b], <[f32]>::to_vec))?;
        let mut grad = self.output(b * c)?;
        let mut parts = self.dev.alloc_zeros::<f64>(b * 5).map_err(cuda_err)?;
        let hard = self.upload(&[k.smoothing as f32, k.ce_weight as f32])?;
        let args =
            (s, t.unwrap_or(s), &y, &m, &mut grad, &mut parts, kind, &hard, k.temperature as f32, k.alpha as f32, b as i32, c as i32);
        self.launch("distill_loss", b, args)?;
        let p = self.dev.dtoh_sync_copy(&parts).map_err(cuda_err)?;
        let total: f64 = p.chunks(5).map(|r| r[4]).sum();
        let column = |k: usize| p.chunks(5).map(|r| r[k] as f32).collect::<Vec<f32>>();
        let mut parts = LossParts { ce_student: column(0), ..LossParts::default() };
        if teacher.is_some() {
            (parts.ce_teacher, parts.weight, parts.soft) = (column(1), column(2), column(3));
        }
        let value = crate::tensor::Tensor::from_vec(vec![(total / b as f64) as f32], &[1])?;
        Ok((LossOutput { loss: value, parts }, grad))
    }

    /// Row-major `c[m, n] = op(a) op(b) + beta * c`, where `a` is stored `[m, k]` (or `[k, m]`
    /// when `ta`) and `b` is stored `[k, n]` (or `[n, k]` when `tb`); buffers or views into
    /// them (one group's rows of a grouped convolution).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm<A: DevicePtr<f32>, B: DevicePtr<f32>, C: DevicePtrMut<f32>>(
        &self,
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        a: &A,
        b: &B,
        beta: f32,
        c: &mut C,
    ) -> Result<()> {
        let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        let int = |v: usize| i32::try_from(v).map_err(|_| Error::invalid("gemm", format!("dimension {v} is too large for cuBLAS")));
        // column-major view: c^T[n, m] = op(b)^T op(a)^T, so cuBLAS gets b first
        let cfg = GemmConfig {
            transa: op(tb),
            transb: op(ta),
            m: int(n)?,
            n: int(m)?,
            k: int(k)?,
            alpha: 1.0f32,
            lda: int(if tb { k } else { n })?.max(1),
            ldb: int(if ta { m } else { k })?.max(1),
            beta,
            ldc: int(n)?.max(1),
        };
        // SAFETY: the callers size a, b and c for these m, n, k (checked by debug asserts below).
        debug_assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        unsafe { self.blas.gemm(cfg, b, a, c) }.map_err(cuda_err)
    }
}
