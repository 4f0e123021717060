//! Direct stride-1 convolution of one image, for layers with few channels, where im2col plus a
//! thin GEMM spends most of its time packing.
//!
//! The input is copied into zero-padded planes `wp = w + 2 pad` wide. An output row is then
//! computed `wp` wide too (its last `wp - ow` values are discarded), so every kernel tap is
//! one contiguous `a * x + y` over the whole plane: blocks of 64 outputs are accumulated in
//! registers over all input channels and taps. The input gradient is the same convolution
//! of the padded output gradient with the flipped, transposed kernel; the weight gradient is
//! one long dot product per weight. On x86-64 with AVX2 and FMA (checked at run time) the
//! loops are compiled for those instructions.

/// One image's convolution geometry (stride 1, `pad < kh` and `pad < kw`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Plane {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad: usize,
}

/// Outputs accumulated in registers at a time.
const BLOCK: usize = 64;

/// A stride-1 "valid" convolution over padded planes: `planes` of `ph x pw` values each
/// (stored `stride` apart, with slack after each for whole blocks), output `oh` rows `pw` wide.
#[derive(Debug, Clone, Copy)]
struct Wide {
    channels: usize,
    pw: usize,
    oh: usize,
    stride: usize,
    kh: usize,
    kw: usize,
}

impl Wide {
    fn new(channels: usize, ph: usize, pw: usize, kh: usize, kw: usize) -> Wide {
        let oh = ph + 1 - kh;
        // the last block of the last tap reads up to (kh - 1) * pw + kw - 1 + round_up(oh * pw)
        let stride = (kh - 1) * pw + kw + (oh * pw).div_ceil(BLOCK) * BLOCK;
        Wide { channels, pw, oh, stride: stride.max(ph * pw), kh, kw }
    }
    fn out_len(&self) -> usize {
        self.oh * self.pw
    }
    /// Copies `[channels, rows, cols]` into the padded planes (`pad_y` zero rows above,
    /// `pad_x` zero columns on the left; zeros elsewhere).
    fn fill(&self, src: &[f32], rows: usize, cols: usize, (pad_y, pad_x): (usize, usize), dst: &mut [f32]) {
        dst[..self.channels * self.stride].fill(0.0);
        for ch in 0..self.channels {
            for y in 0..rows {
                let d = ch * self.stride + (y + pad_y) * self.pw + pad_x;
                dst[d..d + cols].copy_from_slice(&src[(ch * rows + y) * cols..(ch * rows + y + 1) * cols]);
            }
        }
    }
}

/// `out[oc] = bias[oc] + sum_ci sum_taps weights[oc, ci, i, j] * planes[ci] shifted by the
/// tap`, `out` holding `outputs` planes of `wide.out_len()` values.
#[inline(always)]
fn wide_conv<const FMA: bool>(wide: &Wide, planes: &[f32], outputs: usize, weights: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let len = wide.out_len();
    let taps = wide.kh * wide.kw;
    assert!(planes.len() >= wide.channels * wide.stride && weights.len() >= outputs * wide.channels * taps && out.len() >= outputs * len);
    for oc in 0..outputs {
        let dst = &mut out[oc * len..(oc + 1) * len];
        let b = bias.map_or(0.0, |b| b[oc]);
        let w = &weights[oc * wide.channels * taps..(oc + 1) * wide.channels * taps];
        for start in (0..len).step_by(BLOCK) {
            let acc = if FMA {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: FMA is only true inside the AVX2+FMA build of this function, and the
                // assert above with `Wide::stride`'s slack keeps every read inside `planes`.
                unsafe {
                    x86::block(wide, planes, start, w, b)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!()
            } else {
                let mut acc = [b; BLOCK];
                for ci in 0..wide.channels {
                    let src = &planes[ci * wide.stride..(ci + 1) * wide.stride];
                    for i in 0..wide.kh {
                        for j in 0..wide.kw {
                            let a = w[(ci * wide.kh + i) * wide.kw + j];
                            let s = &src[start + i * wide.pw + j..][..BLOCK];
                            for r in 0..BLOCK {
                                acc[r] += a * s[r];
                            }
                        }
                    }
                }
                acc
            };
            let n = BLOCK.min(len - start);
            dst[start..start + n].copy_from_slice(&acc[..n]);
        }
    }
}

/// AVX2+FMA inner loops, with the accumulators held in registers.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Wide, BLOCK};
    use std::arch::x86_64::*;

    /// One block of [`super::wide_conv`]: 64 outputs from `start`, for the output channel
    /// whose weights are `w [channels, kh, kw]`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `planes` holds `wide.channels * wide.stride` values and
    /// `start + BLOCK <= round_up(wide.out_len(), BLOCK)`.
    #[inline(always)]
    pub(super) unsafe fn block(wide: &Wide, planes: &[f32], start: usize, w: &[f32], bias: f32) -> [f32; BLOCK] {
        let mut acc = [_mm256_set1_ps(bias); BLOCK / 8];
        let mut t = 0;
        for ci in 0..wide.channels {
            let base = planes.as_ptr().add(ci * wide.stride + start);
            for i in 0..wide.kh {
                for j in 0..wide.kw {
                    let a = _mm256_set1_ps(*w.get_unchecked(t));
                    t += 1;
                    let p = base.add(i * wide.pw + j);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(8 * r)), *acc);
                    }
                }
            }
        }
        let mut out = [0.0f32; BLOCK];
        for (r, acc) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * r), *acc);
        }
        out
    }

    /// `gw[i * 3 + j] += sum_p g[p] * src[p + i * pw + j]` for a 3x3 kernel: the nine dot
    /// products share each load of `g`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `src` holds at least `2 * pw + 2 + g.len()` values.
    #[inline(always)]
    pub(super) unsafe fn taps9(g: &[f32], src: &[f32], pw: usize, gw: &mut [f32]) {
        let offsets = [0, 1, 2, pw, pw + 1, pw + 2, 2 * pw, 2 * pw + 1, 2 * pw + 2];
        debug_assert!(src.len() >= offsets[8] + g.len());
        let mut acc = [_mm256_setzero_ps(); 9];
        let chunks = g.len() / 8;
        for c in 0..chunks {
            let gv = _mm256_loadu_ps(g.as_ptr().add(8 * c));
            for (acc, off) in acc.iter_mut().zip(offsets) {
                *acc = _mm256_fmadd_ps(gv, _mm256_loadu_ps(src.as_ptr().add(8 * c + off)), *acc);
            }
        }
        for (t, (acc, off)) in acc.iter().zip(offsets).enumerate() {
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), *acc);
            let tail: f32 = (8 * chunks..g.len()).map(|p| g[p] * src[p + off]).sum();
            gw[t] += lanes.iter().sum::<f32>() + tail;
        }
    }
}

/// `sum(x * y)` with sixteen independent partial sums (so it vectorizes).
#[inline(always)]
fn dot<const FMA: bool>(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (xc, yc) = (x.chunks_exact(16), y.chunks_exact(16));
    let tail: f32 = xc.remainder().iter().zip(yc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in xc.zip(yc) {
        for k in 0..16 {
            acc[k] = if FMA { x[k].mul_add(y[k], acc[k]) } else { x[k] * y[k] + acc[k] };
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Per-thread buffers for [`Plane`]'s kernels.
#[derive(Default)]
pub(super) struct Scratch {
    padded: Vec<f32>,
    wide: Vec<f32>,
    flipped: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

impl Plane {
    fn oh(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.kh
    }
    fn ow(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.kw
    }
    fn input_wide(&self) -> Wide {
        Wide::new(self.c, self.h + 2 * self.pad, self.w + 2 * self.pad, self.kh, self.kw)
    }
    /// Copies the `[channels, pw]`-wide result rows into `[channels, rows, cols]`.
    fn narrow(wide: &[f32], channels: usize, rows: usize, cols: usize, pw: usize, out: &mut [f32]) {
        for ch in 0..channels {
            for y in 0..rows {
                let s = (ch * rows + y) * pw;
                out[(ch * rows + y) * cols..(ch * rows + y + 1) * cols].copy_from_slice(&wide[s..s + cols]);
            }
        }
    }

    #[inline(always)]
    fn forward_body<const FMA: bool>(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32], s: &mut Scratch) {
        let wide = self.input_wide();
        let padded = grow(&mut s.padded, self.c * wide.stride);
        wide.fill(x, self.h, self.w, (self.pad, self.pad), padded);
        let result = grow(&mut s.wide, self.o * wide.out_len());
        wide_conv::<FMA>(&wide, padded, self.o, weight, bias, result);
        Self::narrow(result, self.o, self.oh(), self.ow(), wide.pw, out);
    }

    /// The input gradient: the output gradient padded by `k - 1 - pad`, convolved with the
    /// kernel flipped in both directions and with input and output channels swapped.
    #[inline(always)]
    fn input_grad_body<const FMA: bool>(&self, grad: &[f32], weight: &[f32], gx: &mut [f32], s: &mut Scratch) {
        let (ph, pw) = (self.kh - 1 - self.pad, self.kw - 1 - self.pad);
        let wide = Wide::new(self.o, self.oh() + 2 * ph, self.ow() + 2 * pw, self.kh, self.kw);
        let padded = grow(&mut s.padded, self.o * wide.stride);
        wide.fill(grad, self.oh(), self.ow(), (ph, pw), padded);
        let result = grow(&mut s.wide, self.c * wide.out_len());
        let (o, c, kh, kw) = (self.o, self.c, self.kh, self.kw);
        let flipped = grow(&mut s.flipped, c * o * kh * kw);
        for (t, v) in flipped.iter_mut().enumerate() {
            let (ci, oc, i, j) = (t / (o * kh * kw), t / (kh * kw) % o, t / kw % kh, t % kw);
            *v = weight[((oc * c + ci) * kh + kh - 1 - i) * kw + kw - 1 - j];
        }
        wide_conv::<FMA>(&wide, padded, c, flipped, None, result);
        Self::narrow(result, self.c, self.h, self.w, wide.pw, gx);
    }

    /// The weight gradient, added into `gw`: one dot product of the output gradient (laid out
    /// `pw` wide, zeros past `ow`) with the padded input shifted by the tap.
    #[inline(always)]
    fn weight_grad_body<const FMA: bool>(&self, x: &[f32], grad: &[f32], gw: &mut [f32], s: &mut Scratch) {
        let wide = self.input_wide();
        let padded = grow(&mut s.padded, self.c * wide.stride);
        wide.fill(x, self.h, self.w, (self.pad, self.pad), padded);
        let (oh, ow, len) = (self.oh(), self.ow(), wide.out_len());
        let g = grow(&mut s.wide, self.o * len);
        g.fill(0.0);
        for oc in 0..self.o {
            for y in 0..oh {
                g[oc * len + y * wide.pw..][..ow].copy_from_slice(&grad[(oc * oh + y) * ow..][..ow]);
            }
        }
        let taps = self.kh * self.kw;
        assert!(padded.len() >= self.c * wide.stride && gw.len() >= self.o * self.c * taps);
        for oc in 0..self.o {
            let go = &g[oc * len..(oc + 1) * len];
            for ci in 0..self.c {
                let src = &padded[ci * wide.stride..(ci + 1) * wide.stride];
                #[cfg(target_arch = "x86_64")]
                if FMA && taps == 9 {
                    let at = (oc * self.c + ci) * 9;
                    // SAFETY: FMA is only true inside the AVX2+FMA build; the tap offsets stay
                    // below `wide.stride - len` (its slack).
                    unsafe { x86::taps9(go, src, wide.pw, &mut gw[at..at + 9]) };
                    continue;
                }
                for i in 0..self.kh {
                    for j in 0..self.kw {
                        gw[((oc * self.c + ci) * self.kh + i) * self.kw + j] += dot::<FMA>(go, &src[i * wide.pw + j..][..len]);
                    }
                }
            }
        }
    }
}

/// Defines `Plane::$name`: `$body` compiled for AVX2+FMA when the CPU has them.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $fast:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        impl Plane {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $fast(&self, $($arg: $ty),*) {
                self.$body::<true>($($arg),*)
            }

            $(#[$doc])*
            pub(super) fn $name(&self, $($arg: $ty),*) {
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    return unsafe { self.$fast($($arg),*) };
                }
                self.$body::<false>($($arg),*)
            }
        }
    };
}

dispatch!(
    /// `out [o, oh, ow] = conv(x [c, h, w], weight [o, c, kh, kw]) (+ bias)`.
    forward, forward_avx2, forward_body, (x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32], s: &mut Scratch)
);
dispatch!(
    /// `gx [c, h, w] = d conv / d x` for the output gradient `grad [o, oh, ow]`.
    input_grad, input_grad_avx2, input_grad_body, (grad: &[f32], weight: &[f32], gx: &mut [f32], s: &mut Scratch)
);
dispatch!(
    /// `gw [o, c, kh, kw] += d conv / d weight` for input `x` and output gradient `grad`.
    weight_grad, weight_grad_avx2, weight_grad_body, (x: &[f32], grad: &[f32], gw: &mut [f32], s: &mut Scratch)
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
        }
    }

    /// The portable loops (what a CPU without AVX2/FMA runs) agree with the dispatched ones
    /// (the AVX2+FMA build on this machine); both are checked against the definition of a
    /// convolution through `Tensor::conv2d`'s tests.
    #[test]
    fn portable_and_dispatched_kernels_agree() {
        let mut rng = Rng::new(3);
        for p in [
            Plane { c: 3, h: 11, w: 9, o: 5, kh: 3, kw: 3, pad: 1 },
            Plane { c: 2, h: 7, w: 12, o: 3, kh: 3, kw: 2, pad: 0 },
            Plane { c: 4, h: 20, w: 20, o: 2, kh: 5, kw: 5, pad: 2 },
        ] {
            let x: Vec<f32> = (0..p.c * p.h * p.w).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let w: Vec<f32> = (0..p.o * p.c * p.kh * p.kw).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let bias: Vec<f32> = (0..p.o).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let g: Vec<f32> = (0..p.o * p.oh() * p.ow()).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut s = Scratch::default();
            let (mut a, mut b) = (vec![0.0; g.len()], vec![0.0; g.len()]);
            p.forward(&x, &w, Some(&bias), &mut a, &mut s);
            p.forward_body::<false>(&x, &w, Some(&bias), &mut b, &mut s);
            close(&a, &b, "forward");
            let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            p.input_grad(&g, &w, &mut a, &mut s);
            p.input_grad_body::<false>(&g, &w, &mut b, &mut s);
            close(&a, &b, "input gradient");
            let (mut a, mut b) = (vec![0.0; w.len()], vec![0.0; w.len()]);
            p.weight_grad(&x, &g, &mut a, &mut s);
            p.weight_grad_body::<false>(&x, &g, &mut b, &mut s);
            close(&a, &b, "weight gradient");
        }
    }
}
