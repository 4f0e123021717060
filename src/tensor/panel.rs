//! The convolution kernels' GEMM, `c[m, n] (+)= a[m, k] . b[k, n]`, on the calling thread or
//! with `a`'s row panels split across the cores, with
//! `a` packed once into panels of [`MR`] rows (so a layer's weights are packed once per step,
//! not once per image) and `b` read in place, row by row, [`NR`] columns at a time (an im2col
//! buffer or a gradient image needs no packing). `c` is any row-major block (`ldc` apart).
//!
//! On x86-64 with AVX-512F (checked at run time) each `MR x NR` tile of `c` is accumulated in
//! 16 zmm registers, each `a` value a broadcast operand of its FMA; elsewhere the same loops
//! run in plain Rust. Both agree with the definition to rounding (tests). On the 2-core Zen 4
//! of docs/performance.md, 16x16 tiles in passes of 256 rows ran ~10% faster than 8x32 in
//! passes of 128 with both cores busy (min of 5 alternating runs over resnet8x4's
//! convolutions); alone, every shape tried ran at ~110 GFLOP/s per core.

use super::cores::threads;
use rayon::prelude::*;
use std::ops::Range;

/// Rows of `a` per packed panel (broadcast operands of the register tile).
pub(crate) const MR: usize = 16;
/// Columns of `b` and `c` per register tile.
pub(crate) const NR: usize = 16;
/// Rows of `b` per pass (`KC x NR` values of `b`, 16 KiB, stay in L1 across the panels).
const KC: usize = 256;

/// `a` packed into panels of [`MR`] rows: panel `p`, column `t`, row `i` lives at
/// `p * MR * k + t * MR + i`; rows past `m` in the last panel are zeros.
#[derive(Debug, Default, Clone)]
pub(crate) struct Packed {
    data: Vec<f32>,
    m: usize,
    k: usize,
}

impl Packed {
    /// Packs the `m x k` matrix whose element `(i, t)` is `a[i * row_stride + t * col_stride]`.
    pub(crate) fn new(a: &[f32], m: usize, k: usize, row_stride: usize, col_stride: usize) -> Packed {
        let mut packed = Packed::default();
        packed.pack(a, m, k, row_stride, col_stride);
        packed
    }

    /// Sizes this buffer (reused across calls) for an `m x k` matrix that the caller then
    /// writes in full; rows past `m` in the last panel are zeroed here.
    fn shape(&mut self, m: usize, k: usize) {
        let panels = m.div_ceil(MR);
        self.data.resize(panels * MR * k, 0.0);
        (self.m, self.k) = (m, k);
        if m % MR != 0 {
            self.data[(panels - 1) * MR * k..].chunks_exact_mut(MR).for_each(|rows| rows[m % MR..].fill(0.0));
        }
    }

    /// [`Packed::new`] into this buffer (reused across calls).
    pub(crate) fn pack(&mut self, a: &[f32], m: usize, k: usize, row_stride: usize, col_stride: usize) {
        assert!(m == 0 || k == 0 || (m - 1) * row_stride + (k - 1) * col_stride < a.len(), "pack: a too short (internal caller bug)");
        let panels = m.div_ceil(MR);
        self.shape(m, k);
        for (p, panel) in self.data.chunks_exact_mut((MR * k).max(1)).take(panels).enumerate() {
            let rows = MR.min(m - p * MR);
            if col_stride == 1 {
                // contiguous rows: the panel is their transpose, MR values per column
                transpose_into(&a[p * MR * row_stride..], row_stride, panel, MR, rows, k);
                continue;
            }
            for i in 0..rows {
                let src = &a[(p * MR + i) * row_stride..];
                panel.iter_mut().skip(i).step_by(MR).zip(src.iter().step_by(col_stride)).for_each(|(d, s)| *d = *s);
            }
        }
    }
}

/// `dst [cols, rows] = src [rows, cols]^T` (`dst` resized).
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut Vec<f32>) {
    dst.resize(rows * cols, 0.0);
    transpose_into(src, cols, dst, rows, rows, cols);
}

/// `dst[c * dst_stride + r] = src[r * src_stride + c]` for `r < rows`, `c < cols`: blocks of
/// 16 x 16 transposed in registers where AVX-512 runs, the edges value by value.
pub(crate) fn transpose_into(src: &[f32], src_stride: usize, dst: &mut [f32], dst_stride: usize, rows: usize, cols: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let fits = (rows - 1) * src_stride + cols <= src.len() && (cols - 1) * dst_stride + rows <= dst.len();
    assert!(fits && src_stride >= cols && dst_stride >= rows, "transpose: operand too short (internal caller bug)");
    let (mut whole_rows, mut whole_cols) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        (whole_rows, whole_cols) = (rows / 16 * 16, cols / 16 * 16);
        for r in (0..whole_rows).step_by(16) {
            for c in (0..whole_cols).step_by(16) {
                // SAFETY: the assert above bounds the 16 rows of 16 values read and written.
                unsafe {
                    avx512::transpose16(
                        src.as_ptr().add(r * src_stride + c),
                        src_stride,
                        dst.as_mut_ptr().add(c * dst_stride + r),
                        dst_stride,
                    )
                };
            }
        }
    }
    let mut one_by_one = |rows: Range<usize>, cols: Range<usize>| {
        for r in rows {
            for c in cols.clone() {
                dst[c * dst_stride + r] = src[r * src_stride + c];
            }
        }
    };
    one_by_one(0..whole_rows, whole_cols..cols);
    one_by_one(whole_rows..rows, 0..cols);
}

/// `c[i * ldc + j] (+)= sum_t a[i, t] * b[t * ldb + j]` for `a`'s `m` rows `i` and `j < n`, with
/// the row panels split across the cores if `parallel` and the product is large enough.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(a: &Packed, b: &[f32], ldb: usize, n: usize, c: &mut [f32], ldc: usize, accumulate: bool, parallel: bool) {
    let (m, k) = (a.m, a.k);
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "panel gemm: c too short (internal caller bug)");
    if k == 0 {
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    assert!(ldb >= n && b.len() >= (k - 1) * ldb + n, "panel gemm: b too short (internal caller bug)");
    let panels = m.div_ceil(MR);
    let threads = if parallel && m * n * k >= 1 << 20 { threads().min(panels) } else { 1 };
    if threads <= 1 {
        return rows(Kernel::detect(), &a.data, m, k, b, ldb, n, c, ldc, accumulate);
    }
    let per = panels.div_ceil(threads);
    a.data.par_chunks(per * MR * k).zip(c.par_chunks_mut(per * MR * ldc)).enumerate().for_each(|(t, (a, c))| {
        rows(Kernel::detect(), a, (m - t * per * MR).min(per * MR), k, b, ldb, n, c, ldc, accumulate);
    });
}

/// [`gemm`] of `m` rows packed in `panels` (`m`, `k`, `n` at least 1), on this thread.
#[allow(clippy::too_many_arguments)]
fn rows(kernel: Kernel, panels: &[f32], m: usize, k: usize, b: &[f32], ldb: usize, n: usize, c: &mut [f32], ldc: usize, accumulate: bool) {
    let fits = panels.len() >= m.div_ceil(MR) * MR * k && c.len() >= (m - 1) * ldc + n && b.len() >= (k - 1) * ldb + n;
    assert!(fits && ldb >= n && ldc >= n, "panel gemm: operand too short (internal caller bug)");
    // KC rows of a strip of b stay in L1 while every panel passes over them (reading the
    // larger operand once per pass instead, panels outside, measured the same)
    for k0 in (0..k).step_by(KC) {
        let depth = KC.min(k - k0);
        let accumulate = accumulate || k0 > 0;
        for j in (0..n).step_by(NR) {
            let cols = NR.min(n - j);
            for (p, panel) in panels.chunks_exact(MR * k).take(m.div_ceil(MR)).enumerate() {
                let rows = MR.min(m - p * MR);
                // SAFETY: the assert above bounds every read of `b` (rows < k, columns < n)
                // and every write of `c` (rows < m, columns < n); the panel holds MR * k values.
                unsafe {
                    let (a, b, c) = (panel.as_ptr().add(k0 * MR), b.as_ptr().add(k0 * ldb + j), c.as_mut_ptr().add(p * MR * ldc + j));
                    kernel.tile(Tile { k: depth, a, b, ldb, c, ldc, rows, cols, accumulate });
                }
            }
        }
    }
}

/// One register tile's operands: `c` rows `0..rows` (`ldc` apart), columns `0..cols`,
/// (+)= the packed panel `a` (`MR * k` values) times `b` rows `0..k` (`ldb` apart).
#[derive(Clone, Copy)]
struct Tile {
    k: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
}

#[derive(Clone, Copy)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernel::Avx512;
        }
        Kernel::Portable
    }

    /// # Safety
    /// The tile's `a` holds `MR * k` values; its `b` rows hold `cols` readable values and its
    /// `c` rows `cols` writable ones; `rows <= MR`, `cols <= NR`.
    unsafe fn tile(self, t: Tile) {
        match self {
            Kernel::Portable => tile_portable(t),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => avx512::tile(t),
        }
    }
}

/// The register tile in plain Rust (any target).
unsafe fn tile_portable(Tile { k, a, b, ldb, c, ldc, rows, cols, accumulate }: Tile) {
    let mut acc = [[0.0f32; NR]; MR];
    let mut row = [0.0f32; NR];
    for t in 0..k {
        row[..cols].copy_from_slice(std::slice::from_raw_parts(b.add(t * ldb), cols));
        let a = std::slice::from_raw_parts(a.add(t * MR), MR);
        for (acc, &a) in acc.iter_mut().zip(a) {
            acc.iter_mut().zip(&row).for_each(|(c, b)| *c += a * b);
        }
    }
    for (i, acc) in acc.iter().enumerate().take(rows) {
        let out = std::slice::from_raw_parts_mut(c.add(i * ldc), cols);
        if accumulate {
            out.iter_mut().zip(acc).for_each(|(c, v)| *c += v);
        } else {
            out.copy_from_slice(&acc[..cols]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Tile, MR, NR};
    use std::arch::x86_64::*;

    /// [`super::Kernel::tile`] with `MR x NR / 16` zmm accumulators; the column edge is masked.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(Tile { k, a, b, ldb, c, ldc, rows, cols, accumulate }: Tile) {
        const V: usize = NR / 16;
        const _: () = assert!(NR % 16 == 0);
        // lanes of each vector inside the tile's `cols` columns
        let masks: [__mmask16; V] = std::array::from_fn(|v| {
            let lanes = cols.saturating_sub(16 * v).min(16);
            ((1u32 << lanes) - 1) as u16
        });
        let mut acc = [[_mm512_setzero_ps(); V]; MR];
        let (mut a, mut b) = (a, b);
        for _ in 0..k {
            let bv: [__m512; V] = std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], b.add(16 * v)));
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(i));
                for v in 0..V {
                    acc[v] = _mm512_fmadd_ps(av, bv[v], acc[v]);
                }
            }
            a = a.add(MR);
            b = b.add(ldb);
        }
        for (i, acc) in acc.iter().enumerate().take(rows) {
            for v in 0..V {
                let out = c.add(i * ldc + 16 * v);
                let sum = if accumulate { _mm512_add_ps(acc[v], _mm512_maskz_loadu_ps(masks[v], out)) } else { acc[v] };
                _mm512_mask_storeu_ps(out, masks[v], sum);
            }
        }
    }

    /// `dst[c * ds + r] = src[r * ss + c]` for a 16 x 16 block: four rounds, each swapping the
    /// off-diagonal blocks of size 1, 2, 4, 8 between pairs of rows.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose16(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        let mut r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * ss)));
        swap_blocks::<1>(&mut r);
        swap_blocks::<2>(&mut r);
        swap_blocks::<4>(&mut r);
        swap_blocks::<8>(&mut r);
        for (i, row) in r.iter().enumerate() {
            _mm512_storeu_ps(dst.add(i * ds), *row);
        }
    }

    /// One round of [`transpose16`]: rows `i` and `i + H` (bit `H` of `i` clear) exchange the
    /// `H x H` blocks off their diagonal. Constant bounds, so the rows stay in registers.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn swap_blocks<const H: usize>(r: &mut [__m512; 16]) {
        // lanes of the upper row of a pair from (itself, the lower row), and of the lower row
        let upper: [i32; 16] = std::array::from_fn(|l| if l & H == 0 { l as i32 } else { (16 + l - H) as i32 });
        let lower: [i32; 16] = std::array::from_fn(|l| if l & H == 0 { (l + H) as i32 } else { (16 + l) as i32 });
        let (upper, lower) = (_mm512_loadu_epi32(upper.as_ptr()), _mm512_loadu_epi32(lower.as_ptr()));
        for i in 0..16 {
            if i & H == 0 {
                let (a, b) = (r[i], r[i + H]);
                r[i] = _mm512_permutex2var_ps(a, upper, b);
                r[i + H] = _mm512_permutex2var_ps(a, lower, b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn reference(a: &[f32], m: usize, k: usize, b: &[f32], ldb: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|t| a[i * k + t] as f64 * b[t * ldb + j] as f64).sum();
            }
        }
        c
    }

    #[test]
    /// Partial tiles in both directions, `b` and `c` wider than `n`, passes of `KC` rows
    /// (`k > KC`), tall and wide products. The AVX-512 kernel is checked
    /// wherever it can run, which is wherever it is dispatched.
    fn every_edge_matches_the_definition_with_each_kernel() {
        let mut rng = Rng::new(5);
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            kernels.push(Kernel::Avx512);
        }
        for (m, k, n, extra) in [
            (1, 1, 1, 0),
            (12, 7, 32, 0),
            (13, 5, 33, 3),
            (25, 40, 70, 5),
            (64, 9, 16, 0),
            (5, 3, 17, 1),
            (41, 300, 20, 2),
            (20, 300, 70, 0),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let ldb = n + extra;
            let b: Vec<f32> = (0..k * ldb).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let want = reference(&a, m, k, &b, ldb, n);
            let packed = Packed::new(&a, m, k, k, 1);
            for &kernel in &kernels {
                // c has a guard column past n that must stay untouched
                let ldc = n + 1;
                for accumulate in [false, true] {
                    let mut c = vec![0.5f32; m * ldc];
                    rows(kernel, &packed.data, m, k, &b, ldb, n, &mut c, ldc, accumulate);
                    for i in 0..m {
                        for j in 0..n {
                            let want = want[i * n + j] + if accumulate { 0.5 } else { 0.0 };
                            assert!((c[i * ldc + j] as f64 - want).abs() < 1e-4, "{m}x{k}x{n} at {i},{j}");
                        }
                        assert_eq!(c[i * ldc + n], 0.5, "guard column written at row {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_matches_the_definition_around_whole_blocks() {
        let mut rng = Rng::new(7);
        for (rows, cols, extra) in [(16, 16, 0), (33, 50, 3), (5, 3, 1), (48, 17, 0), (1, 40, 2)] {
            let src: Vec<f32> = (0..rows * (cols + extra)).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let ds = rows + 2;
            let mut dst = vec![9.0; cols * ds];
            transpose_into(&src, cols + extra, &mut dst, ds, rows, cols);
            for c in 0..cols {
                for r in 0..rows {
                    assert_eq!(dst[c * ds + r], src[r * (cols + extra) + c], "{rows}x{cols} at {r},{c}");
                }
                assert_eq!(dst[c * ds + rows..(c + 1) * ds], [9.0, 9.0], "padding written in row {c}");
            }
        }
    }

    #[test]
    fn packing_a_transposed_view_equals_packing_its_copy() {
        let mut rng = Rng::new(6);
        let (m, k) = (40, 37); // two full panels and a partial one, 16-column blocks and an edge
        let at: Vec<f32> = (0..m * k).map(|_| rng.uniform_in(-1.0, 1.0)).collect(); // [k, m]
        let copy: Vec<f32> = (0..m * k).map(|x| at[(x % k) * m + x / k]).collect(); // [m, k]
        assert_eq!(Packed::new(&at, m, k, 1, m).data, Packed::new(&copy, m, k, k, 1).data);
        // a reused buffer that held a larger matrix packs the same (its padding rows zeroed)
        let mut reused = Packed::new(&vec![7.0; 40 * 11], 40, 11, 11, 1);
        reused.pack(&copy, m, k, k, 1);
        assert_eq!(reused.data, Packed::new(&copy, m, k, k, 1).data);
        let b: Vec<f32> = (0..k * 3).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let mut c = vec![0.0; m * 3];
        gemm(&Packed::new(&at, m, k, 1, m), &b, 3, 3, &mut c, 3, false, false);
        let want = reference(&copy, m, k, &b, 3, 3);
        c.iter().zip(&want).for_each(|(c, w)| assert!((*c as f64 - w).abs() < 1e-4));
    }
}
