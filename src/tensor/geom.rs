//! The geometry of one convolution (sizes and output size, image groups across cores),
//! shared by the im2col, direct and Winograd paths, and the pointer their threads share.

use super::matmul::threads;
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
        if groups == 1 {
            return vec![f(0, self.n, true)];
        }
        let per = self.n.div_ceil(groups);
        (0..self.n.div_ceil(per)).into_par_iter().map(|g| f(g * per, per.min(self.n - g * per), false)).collect()
    }
}

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
