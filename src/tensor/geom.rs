//! The geometry of one convolution (sizes and output size, image groups across cores),
//! shared by the im2col, direct and Winograd paths, and the pointer their threads share.

use super::cores::threads;
use super::Tensor;
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Geometry of one convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// The geometry of `x [n, c, h, w]` convolved with `weight [o, _, kh, kw]` (ranks checked
    /// by the caller), with the checks every convolution makes: a stride of at least 1, a
    /// kernel no larger than the padded image, a bias of `o` values.
    pub fn of(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Result<Geom> {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3]);
        if stride == 0 {
            return Err(Error::invalid("conv2d", "stride must be at least 1"));
        }
        if h + 2 * pad < kh || w + 2 * pad < kw || kh == 0 || kw == 0 {
            return Err(Error::shape("conv2d", format!("input at least {kh}x{kw} after padding {pad}"), &x.shape));
        }
        if let Some(b) = bias {
            if b.shape != [o] {
                return Err(Error::shape("conv2d", format!("bias [{o}]"), &b.shape));
            }
        }
        let (oh, ow) = ((h + 2 * pad - kh) / stride + 1, (w + 2 * pad - kw) / stride + 1);
        Ok(Geom { n, c, h, w, o, kh, kw, stride, pad, oh, ow })
    }

    /// Rows of an image's column matrix: `c * kh * kw`.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Output positions per image: `oh * ow`.
    pub fn l(&self) -> usize {
        self.oh * self.ow
    }
    /// Values per input image.
    pub fn image(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Output columns `[lo, hi)` whose input column `xo * stride + j - pad` is inside the image.
    pub fn valid_x(&self, j: usize) -> (usize, usize) {
        let lo = (self.pad.saturating_sub(j)).div_ceil(self.stride).min(self.ow);
        let hi = if self.w + self.pad > j { ((self.w + self.pad - j - 1) / self.stride + 1).min(self.ow) } else { 0 };
        (lo, hi.max(lo))
    }
    /// Runs `f(first image, images, parallel)` over groups of consecutive images, one group
    /// per core, and returns each group's result. Each group's GEMMs run on its own thread
    /// (`parallel` false); a single image is one group whose GEMMs use every core.
    pub fn by_groups<T: Send>(&self, f: impl Fn(usize, usize, bool) -> T + Sync) -> Vec<T> {
        let groups = threads().min(self.n).max(1);
        self.in_groups(groups, groups == 1, f)
    }

    /// [`Geom::by_groups`] for passes that sum over images (weight gradients): the batch in
    /// [`REDUCTION_GROUPS`] runs of consecutive images (fewer for a smaller batch), however many
    /// cores there are, so each group's sum (over its images, in order) and the total of the
    /// groups (in order) are the same bits for any thread count. A group's GEMMs split their
    /// rows across the cores when there are more cores than groups (a row split leaves every
    /// sum whole).
    pub fn by_reduction_groups<T: Send>(&self, f: impl Fn(usize, usize, bool) -> T + Sync) -> Vec<T> {
        let groups = REDUCTION_GROUPS.min(self.n).max(1);
        self.in_groups(groups, threads() > groups, f)
    }

    fn in_groups<T: Send>(&self, groups: usize, parallel: bool, f: impl Fn(usize, usize, bool) -> T + Sync) -> Vec<T> {
        if groups == 1 {
            return vec![f(0, self.n, parallel)];
        }
        let per = self.n.div_ceil(groups);
        (0..self.n.div_ceil(per)).into_par_iter().map(|g| f(g * per, per.min(self.n - g * per), parallel)).collect()
    }
}

/// Groups of images whose sums over images (weight gradients) are taken apart and then added
/// in order: fixed, so results do not depend on the thread count.
pub const REDUCTION_GROUPS: usize = 8;

/// A raw pointer that threads writing disjoint ranges of one buffer may share.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub *mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// # Safety
    /// `start + len` must lie inside the buffer, the buffer must outlive the slice, and no
    /// other live slice may overlap it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}
