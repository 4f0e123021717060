//! 2-D convolution (NCHW, PyTorch weight layout `[out, in, kh, kw]`): im2col of one image,
//! a band of output rows at a time, into a per-thread buffer that stays in L2, then a panel
//! GEMM ([`panel`]) straight into that image's output planes with the weights packed once
//! per call. Images are split across the cores, each GEMM runs on its thread. The backward
//! pass recomputes the columns: the input gradient is `weight^T . grad` folded back by
//! col2im, the weight gradient `cols . grad^T` with the columns packed and the gradient
//! transposed. Stride-1 layers with few channels run direct ([`conv_direct`]); stride-1
//! 3x3 layers with enough channels as Winograd F(2x2, 3x3) ([`winograd`]).

use super::conv_direct;
use super::geom::{Geom, SyncPtr};
use super::im2col::{col2im, im2col};
use super::panel::{self, transpose, Packed};
use super::winograd;
use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use std::ops::Range;
use std::rc::Rc;

/// Bytes of column matrix per band of output rows: a band's columns stay in L2 between
/// their im2col and their GEMM (and between the GEMM and col2im).
const BAND_BYTES: usize = 1 << 20;

/// Output channels times input channels up to which a stride-1 convolution runs direct. On
/// the 2-core machine of docs/performance.md the direct kernels beat im2col + GEMM on first
/// layers (3 input channels) and tie at 16 -> 32 channels.
const DIRECT_MAX_CHANNEL_PAIRS: usize = 128;

/// Which algorithm runs a convolution, and its bands of output rows.
impl Geom {
    /// Stride-1 convolutions with few channel pairs run direct (see [`conv_direct`]): their
    /// GEMMs would be too thin to pay for packing.
    fn direct(&self) -> Option<conv_direct::Plane> {
        let direct = self.stride == 1
            && !self.pointwise()
            && self.pad < self.kh
            && self.pad < self.kw
            && self.o * self.c <= DIRECT_MAX_CHANNEL_PAIRS;
        direct.then_some(conv_direct::Plane { c: self.c, h: self.h, w: self.w, o: self.o, kh: self.kh, kw: self.kw, pad: self.pad })
    }
    /// Stride-1 3x3 convolutions with at least 32 channels in and out run as Winograd
    /// F(2x2, 3x3) when their outputs are at least 16x16, or at 128 channels and more: on
    /// the 2-core machine of docs/performance.md it lost to im2col + GEMM with 16 input or
    /// output channels and at 64 x 64 channels on 8x8 outputs, and won from 32 x 32 channels
    /// on 32x32 outputs, from 64 x 64 on 16x16 and from 128 x 128 on 8x8.
    fn winograd(&self) -> bool {
        let (narrow, positions) = (self.c.min(self.o), self.oh * self.ow);
        self.direct().is_none() && winograd::applies(self) && narrow >= 32 && (positions >= 256 || narrow >= 128)
    }
    /// A 1x1, stride 1, unpadded convolution reads its input as the column matrix itself.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
    /// The output rows of one image in bands whose column matrix (`k` rows, one column per
    /// position) fits in [`BAND_BYTES`], the bands as even as they can be.
    fn bands(&self) -> impl Iterator<Item = Range<usize>> {
        let positions = (BAND_BYTES / 4 / self.k().max(1)) / panel::NR * panel::NR;
        let most = (positions / self.ow.max(1)).clamp(1, self.oh.max(1));
        let rows = self.oh.div_ceil(self.oh.div_ceil(most).max(1)).max(1);
        let oh = self.oh;
        (0..oh).step_by(rows).map(move |y| y..(y + rows).min(oh))
    }
    /// Positions in the widest band.
    fn band_len(&self) -> usize {
        self.bands().map(|r| r.len() * self.ow).max().unwrap_or(0)
    }
}

/// Forward: `out[b] [o, l] = weight [o, k] . cols(x[b]) [k, l] (+ bias)`, the weights
/// packed once for every image.
fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    if g.winograd() {
        return winograd::forward(x, weight, bias, g, winograd::CHUNK_BYTES);
    }
    let (o, k, l) = (g.o, g.k(), g.l());
    let mut out = vec![0.0; g.n * o * l];
    let out_ptr = SyncPtr(out.as_mut_ptr());
    let direct = g.direct();
    let packed = if direct.is_some() { Packed::default() } else { Packed::new(weight, o, k, k, 1) };
    g.by_groups(|first, count, parallel| {
        let mut scratch = conv_direct::Scratch::default();
        let mut cols = if g.pointwise() || direct.is_some() { Vec::new() } else { vec![0.0; k * g.band_len()] };
        for b in first..first + count {
            let xb = &x[b * g.image()..(b + 1) * g.image()];
            // SAFETY: groups cover disjoint image ranges, so each output image is written by
            // exactly one thread, and `out` outlives `by_groups`.
            let ob = unsafe { out_ptr.slice(b * o * l, o * l) };
            if let Some(plane) = &direct {
                plane.forward(xb, weight, bias, ob, &mut scratch);
                continue;
            }
            if let Some(bias) = bias {
                ob.chunks_exact_mut(l).zip(bias).for_each(|(plane, v)| plane.fill(*v));
            }
            if g.pointwise() {
                panel::gemm(&packed, xb, l, l, ob, l, bias.is_some(), parallel);
                continue;
            }
            for rows in g.bands() {
                let (start, n) = (rows.start * g.ow, rows.len() * g.ow);
                im2col(xb, g, rows, &mut cols);
                panel::gemm(&packed, &cols, n, n, &mut ob[start..], l, bias.is_some(), parallel);
            }
        }
    });
    out
}

/// Backward: the input gradient (`weight^T . grad` folded back by col2im, the transposed
/// weights packed once) and the weight gradient (`(cols . grad^T)^T`, summed over images),
/// each only if asked for.
fn backward(x: &[f32], weight: &[f32], grad: &[f32], g: &Geom, need_x: bool, need_w: bool) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    if g.winograd() {
        return (
            need_x.then(|| winograd::input_grad(grad, weight, g, winograd::CHUNK_BYTES)),
            need_w.then(|| winograd::weight_grad(x, grad, g, winograd::CHUNK_BYTES)),
        );
    }
    let (o, k, l) = (g.o, g.k(), g.l());
    let mut gx = if need_x { vec![0.0; g.n * g.image()] } else { Vec::new() };
    let gx_ptr = SyncPtr(gx.as_mut_ptr());
    let direct = g.direct();
    let packed_t = if need_x && direct.is_none() { Packed::new(weight, k, o, 1, k) } else { Packed::default() };
    let partial_gw = g.by_reduction_groups(|first, count, parallel| {
        let mut scratch = conv_direct::Scratch::default();
        let mut cols = if g.pointwise() || direct.is_some() { Vec::new() } else { vec![0.0; k * g.band_len()] };
        // the weight gradient transposed, [k, o], with the image's columns the packed
        // operand (the direct kernel adds into it in the weights' own layout, [o, k])
        let mut gw_t = if need_w { vec![0.0; k * o] } else { Vec::new() };
        let (mut packed_cols, mut grad_t) = (Packed::default(), Vec::new());
        for b in first..first + count {
            let gb = &grad[b * o * l..(b + 1) * o * l];
            if let Some(plane) = &direct {
                if need_w {
                    plane.weight_grad(&x[b * g.image()..(b + 1) * g.image()], gb, &mut gw_t, &mut scratch);
                }
                if need_x {
                    // SAFETY: as in `forward`: one writer per image.
                    plane.input_grad(gb, weight, unsafe { gx_ptr.slice(b * g.image(), g.image()) }, &mut scratch);
                }
                continue;
            }
            let xb = &x[b * g.image()..(b + 1) * g.image()];
            // SAFETY: as in `forward`: one writer per image.
            let gxb = if need_x { unsafe { gx_ptr.slice(b * g.image(), g.image()) } } else { &mut [] };
            if need_w {
                transpose(gb, o, l, &mut grad_t);
            }
            if g.pointwise() {
                if need_w {
                    packed_cols.pack(xb, k, l, l, 1);
                    panel::gemm(&packed_cols, &grad_t, o, o, &mut gw_t, o, b > first, parallel);
                }
                if need_x {
                    panel::gemm(&packed_t, gb, l, l, gxb, l, false, parallel);
                }
                continue;
            }
            for rows in g.bands() {
                let (start, n) = (rows.start * g.ow, rows.len() * g.ow);
                if need_w {
                    im2col(xb, g, rows.clone(), &mut cols);
                    packed_cols.pack(&cols, k, n, n, 1);
                    panel::gemm(&packed_cols, &grad_t[start * o..], o, o, &mut gw_t, o, b > first || start > 0, parallel);
                }
                if need_x {
                    panel::gemm(&packed_t, &gb[start..], l, n, &mut cols, n, false, parallel);
                    col2im(&mut cols, g, rows, gxb); // gx starts zeroed; each band is folded once
                }
            }
        }
        gw_t
    });
    let gw = need_w.then(|| {
        let mut parts = partial_gw.into_iter();
        let mut total = parts.next().unwrap_or_else(|| vec![0.0; o * k]);
        for part in parts {
            total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
        }
        if direct.is_some() {
            return total;
        }
        let mut gw = Vec::new();
        transpose(&total, k, o, &mut gw);
        gw
    });
    (need_x.then_some(gx), gw)
}

impl Tensor {
    /// 2-D convolution: `x [n, c, h, w]`, `weight [o, c, kh, kw]`, optional `bias [o]`.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize) -> Result<Tensor> {
        expect_rank("conv2d", self, 4)?;
        expect_rank("conv2d", weight, 4)?;
        let (o, kc, n, c) = (weight.shape[0], weight.shape[1], self.shape[0], self.shape[1]);
        if c != kc {
            return Err(Error::shape("conv2d", format!("input [batch, {kc}, h, w] for weight {:?}", weight.shape), &self.shape));
        }
        let g = Geom::of(self, weight, bias, stride, padding)?;
        let out = forward(&self.data, &weight.data, bias.map(|b| &b.data[..]), &g);
        let (x, wt) = (self.data.clone(), weight.data.clone());
        let backward = move |grad: &[f32], needs: &[bool]| {
            let (gx, gw) = backward(&x, &wt, grad, &g, needs[0], needs[1]);
            let gb = needs.get(2).copied().unwrap_or(false).then(|| {
                let mut gb = vec![0.0; o];
                for image in grad.chunks_exact(o * g.l()) {
                    gb.iter_mut().zip(image.chunks_exact(g.l())).for_each(|(s, plane)| *s += plane.iter().sum::<f32>());
                }
                gb
            });
            vec![gx, gw, gb]
        };
        let out = Tensor::constant(vec![n, o, g.oh, g.ow], Rc::new(out));
        Ok(match bias {
            Some(b) => out.record(&[self, weight, b], backward),
            None => out.record(&[self, weight], backward),
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::tensor::gradcheck::check;

    pub(in crate::tensor) fn rand(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
    }

    /// Every product term of the definition: `f(output index, input index, weight index)`
    /// for each output, input channel and tap that lands inside the image.
    fn each_term(xs: [usize; 4], ws: [usize; 4], stride: usize, pad: usize, mut f: impl FnMut(usize, usize, usize)) {
        let [n, c, h, wd] = xs;
        let [o, _, kh, kw] = ws;
        let oh = (h + 2 * pad - kh) / stride + 1;
        let ow = (wd + 2 * pad - kw) / stride + 1;
        for b in 0..n {
            for oc in 0..o {
                for y in 0..oh {
                    for xo in 0..ow {
                        for ic in 0..c {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let sy = (y * stride + i) as isize - pad as isize;
                                    let sx = (xo * stride + j) as isize - pad as isize;
                                    if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < wd {
                                        let xi = ((b * c + ic) * h + sy as usize) * wd + sx as usize;
                                        f(((b * o + oc) * oh + y) * ow + xo, xi, ((oc * c + ic) * kh + i) * kw + j);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The definition: each output sums its terms.
    pub(in crate::tensor) fn naive(x: &[f32], xs: [usize; 4], w: &[f32], ws: [usize; 4], stride: usize, pad: usize) -> Vec<f32> {
        let (oh, ow) = ((xs[2] + 2 * pad - ws[2]) / stride + 1, (xs[3] + 2 * pad - ws[3]) / stride + 1);
        let mut out = vec![0.0f64; xs[0] * ws[0] * oh * ow];
        each_term(xs, ws, stride, pad, |oi, xi, wi| out[oi] += x[xi] as f64 * w[wi] as f64);
        out.into_iter().map(|v| v as f32).collect()
    }

    /// The gradients by the definition: `(d x, d weight)` of `sum(out * grad)`.
    pub(in crate::tensor) fn naive_grads(
        x: &[f32],
        xs: [usize; 4],
        w: &[f32],
        ws: [usize; 4],
        stride: usize,
        pad: usize,
        grad: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let (mut gx, mut gw) = (vec![0.0f64; x.len()], vec![0.0f64; w.len()]);
        each_term(xs, ws, stride, pad, |oi, xi, wi| {
            gx[xi] += grad[oi] as f64 * w[wi] as f64;
            gw[wi] += grad[oi] as f64 * x[xi] as f64;
        });
        (gx.into_iter().map(|v| v as f32).collect(), gw.into_iter().map(|v| v as f32).collect())
    }

    pub(in crate::tensor) fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
        }
    }

    /// Every geometry the kernels special-case: 1x1 (the input is the column matrix),
    /// padding wider than the kernel reaches, strides 1 to 3, non-square images and kernels,
    /// and batches of 1 (one group, parallel GEMMs) and of 5 (uneven groups across cores).
    /// Stride-1 cases with up to 128 channel pairs run direct, the last case as Winograd
    /// (tested further in winograd.rs), the others im2col + GEMM (checked in
    /// `cases_cover_every_kernel`). The four stride-1 GEMM cases after the direct ones have
    /// partial register tiles in both directions, the third one image on every core; the
    /// three cases before the last have column matrices split into bands of output rows
    /// (stride 1, 2 and 1).
    const CASES: [([usize; 4], [usize; 4], usize, usize); 17] = [
        ([2, 3, 7, 6], [4, 3, 3, 3], 1, 0),
        ([2, 3, 7, 6], [4, 3, 3, 3], 1, 1),
        ([2, 3, 7, 6], [4, 3, 3, 3], 2, 1),
        ([2, 3, 7, 6], [4, 3, 3, 3], 2, 0),
        ([5, 3, 6, 5], [2, 3, 1, 1], 1, 0),
        ([5, 2, 6, 5], [3, 2, 1, 1], 2, 0),
        ([1, 2, 4, 3], [3, 2, 3, 2], 3, 2),
        ([3, 4, 9, 9], [5, 4, 5, 5], 1, 2),
        ([1, 1, 2, 2], [2, 1, 3, 3], 1, 2),
        ([2, 24, 6, 5], [24, 24, 3, 3], 1, 1),
        ([3, 20, 5, 7], [30, 20, 3, 2], 1, 0),
        ([2, 16, 11, 10], [40, 16, 3, 3], 1, 1),
        ([1, 32, 16, 15], [50, 32, 2, 3], 1, 1),
        ([2, 32, 32, 31], [8, 32, 3, 3], 1, 1),
        ([1, 32, 63, 64], [8, 32, 3, 3], 2, 1),
        ([1, 32, 32, 32], [8, 32, 5, 5], 1, 2),
        ([2, 32, 16, 16], [32, 32, 3, 3], 1, 1),
    ];

    pub(in crate::tensor) fn geom(xs: [usize; 4], ws: [usize; 4], stride: usize, pad: usize) -> Geom {
        let (oh, ow) = ((xs[2] + 2 * pad - ws[2]) / stride + 1, (xs[3] + 2 * pad - ws[3]) / stride + 1);
        Geom { n: xs[0], c: xs[1], h: xs[2], w: xs[3], o: ws[0], kh: ws[2], kw: ws[3], stride, pad, oh, ow }
    }

    #[test]
    fn cases_cover_every_kernel() {
        let geoms: Vec<Geom> = CASES.iter().map(|(xs, ws, s, p)| geom(*xs, *ws, *s, *p)).collect();
        let direct: Vec<bool> = geoms.iter().map(|g| g.direct().is_some()).collect();
        assert_eq!(
            direct,
            [true, true, false, false, false, false, false, true, true, false, false, false, false, false, false, false, false]
        );
        let winograd: Vec<usize> = (0..CASES.len()).filter(|i| geoms[*i].winograd()).collect();
        assert_eq!(winograd, [16]);
        // the measured threshold: resnet8x4's stride-1 3x3 layers (but its first), not the
        // small CNN's 16 -> 32 on 16x16 or a 64 x 64 layer on 8x8
        let layer = |c: usize, o: usize, hw: usize| geom([64, c, hw, hw], [o, c, 3, 3], 1, 1).winograd();
        assert_eq!(
            [(32, 64, 32), (64, 64, 32), (128, 128, 16), (256, 256, 8), (3, 32, 32)].map(|(c, o, hw)| layer(c, o, hw)),
            [true, true, true, true, false]
        );
        assert_eq!([(16, 32, 16), (32, 64, 8), (64, 64, 8), (128, 128, 8)].map(|(c, o, hw)| layer(c, o, hw)), [false, false, false, true]);
        let bands: Vec<usize> = geoms.iter().map(|g| g.bands().count()).collect();
        assert_eq!(bands[..13], [1; 13]);
        assert_eq!(bands[13..], [2, 2, 4, 1]);
        assert!(geoms.iter().any(|g| g.stride == 1 && g.direct().is_none() && !g.winograd() && !g.pointwise()));
    }

    #[test]
    fn matches_the_definition() {
        let mut rng = Rng::new(1);
        for (xs, ws, stride, pad) in CASES {
            let x = rand(&mut rng, xs.iter().product());
            let w = rand(&mut rng, ws.iter().product());
            let xt = Tensor::variable(x.clone(), &xs).unwrap();
            let wt = Tensor::variable(w.clone(), &ws).unwrap();
            let out = xt.conv2d(&wt, None, stride, pad).unwrap();
            let what = format!("x {xs:?} w {ws:?} stride {stride} pad {pad}");
            assert_close(out.data(), &naive(&x, xs, &w, ws, stride, pad), &what);
            let grad = rand(&mut rng, out.len());
            let weighted = out.mul(&Tensor::from_vec(grad.clone(), out.shape()).unwrap()).unwrap().sum();
            let grads = weighted.backward().unwrap();
            let (gx, gw) = naive_grads(&x, xs, &w, ws, stride, pad, &grad);
            assert_close(grads.get(xt.leaf_key().unwrap()).unwrap(), &gx, &format!("d x, {what}"));
            assert_close(grads.get(wt.leaf_key().unwrap()).unwrap(), &gw, &format!("d weight, {what}"));
        }
    }

    /// Planes smaller than the kernel's reach (1x1, 1x2, 2x2 under a padded 3x3: the last
    /// stages of a network fed a small image), on every path: direct (few channels), the
    /// shifted-row im2col (stride 1, output as wide as the input), strided im2col, Winograd.
    #[test]
    fn planes_smaller_than_the_kernel_match_the_definition() {
        let mut rng = Rng::new(9);
        for (c, o) in [(3, 4), (24, 24), (128, 128)] {
            for (h, w) in [(1, 1), (1, 2), (2, 2), (2, 1)] {
                for stride in [1, 2] {
                    let (xs, ws) = ([2, c, h, w], [o, c, 3, 3]);
                    let x = rand(&mut rng, xs.iter().product());
                    let wv = rand(&mut rng, ws.iter().product());
                    let xt = Tensor::variable(x.clone(), &xs).unwrap();
                    let wt = Tensor::variable(wv.clone(), &ws).unwrap();
                    let out = xt.conv2d(&wt, None, stride, 1).unwrap();
                    let what = format!("{c} -> {o} on {h}x{w}, stride {stride}");
                    assert_close(out.data(), &naive(&x, xs, &wv, ws, stride, 1), &what);
                    let grad = rand(&mut rng, out.len());
                    let grads = out.mul(&Tensor::from_vec(grad.clone(), out.shape()).unwrap()).unwrap().sum().backward().unwrap();
                    let (gx, gw) = naive_grads(&x, xs, &wv, ws, stride, 1, &grad);
                    assert_close(grads.get(xt.leaf_key().unwrap()).unwrap(), &gx, &format!("d x, {what}"));
                    assert_close(grads.get(wt.leaf_key().unwrap()).unwrap(), &gw, &format!("d weight, {what}"));
                }
            }
        }
    }

    #[test]
    fn gradients_stride_1_and_2_with_and_without_padding() {
        let mut rng = Rng::new(2);
        for &(stride, pad, bias) in &[(1, 0, true), (1, 1, false), (2, 1, true), (2, 0, false)] {
            let mut inputs = vec![(rand(&mut rng, 3 * 2 * 5 * 5), vec![3, 2, 5, 5]), (rand(&mut rng, 3 * 2 * 3 * 3), vec![3, 2, 3, 3])];
            if bias {
                inputs.push((rand(&mut rng, 3), vec![3]));
            }
            check(&inputs, |v| v[0].conv2d(&v[1], v.get(2), stride, pad));
        }
        let inputs = vec![
            (rand(&mut rng, 3 * 2 * 4 * 4), vec![3, 2, 4, 4]),
            (rand(&mut rng, 3 * 2), vec![3, 2, 1, 1]),
            (rand(&mut rng, 3), vec![3]),
        ];
        check(&inputs, |v| v[0].conv2d(&v[1], v.get(2), 1, 0));
    }

    #[test]
    fn errors_name_the_op_and_shapes() {
        let x = Tensor::zeros(&[1, 3, 8, 8]);
        let w = Tensor::zeros(&[4, 2, 3, 3]);
        let e = x.conv2d(&w, None, 1, 1).unwrap_err().to_string();
        assert!(e.contains("conv2d") && e.contains("[1, 3, 8, 8]") && e.contains("[4, 2, 3, 3]"), "{e}");
        let w = Tensor::zeros(&[4, 3, 3, 3]);
        assert!(x.conv2d(&w, None, 0, 1).is_err());
        assert!(Tensor::zeros(&[1, 3, 2, 2]).conv2d(&w, None, 1, 0).is_err());
        assert!(Tensor::zeros(&[3, 8, 8]).conv2d(&w, None, 1, 0).is_err());
        // empty images and batches (both kernels) give empty or all-bias outputs, no panic
        for (xs, pad) in [([1, 3, 0, 0], 2), ([0, 3, 5, 5], 1), ([1, 3, 0, 4], 1)] {
            for o in [4, 64] {
                let x = Tensor::variable(vec![], &xs).unwrap();
                let w = Tensor::variable(vec![0.5; o * 27], &[o, 3, 3, 3]).unwrap();
                if let Ok(y) = x.conv2d(&w, None, 1, pad) {
                    assert!(y.data().iter().all(|v| *v == 0.0));
                    y.sum().backward().unwrap();
                }
            }
        }
    }
}
