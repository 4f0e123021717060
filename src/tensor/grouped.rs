//! Grouped convolution (`torch.nn.functional.conv2d` with `groups`): the input channels and
//! the output channels split into `groups` equal parts, part `g` of the output convolving
//! part `g` of the input only. Weight layout `[out, in / groups, kh, kw]`, as in PyTorch.
//!
//! Depthwise layers (one input channel per group: MobileNet's and ShuffleNet's 3x3 layers)
//! run their own kernel, [`depthwise`]: each output plane is a sum of `kh * kw` shifted,
//! scaled rows of one input plane, planes in parallel. Other groupings run each group's
//! slice through [`Tensor::conv2d`] and join the outputs.

use super::geom::Geom;
use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::rc::Rc;

impl Tensor {
    /// 2-D convolution with `groups` (PyTorch's `F.conv2d(x, weight, bias, stride, padding,
    /// groups=groups)`): `x [n, c, h, w]`, `weight [o, c / groups, kh, kw]`, optional `bias
    /// [o]`; `c` and `o` must be multiples of `groups`. Output `[n, o, oh, ow]`.
    ///
    /// Errors: a rank other than 4, channels that `groups` does not divide, a weight whose
    /// second dim is not `c / groups`, a stride or `groups` of 0, an image smaller than the
    /// kernel after padding.
    pub fn conv2d_groups(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize, groups: usize) -> Result<Tensor> {
        if groups == 1 {
            return self.conv2d(weight, bias, stride, padding);
        }
        expect_rank("conv2d", self, 4)?;
        expect_rank("conv2d", weight, 4)?;
        let (c, o, wc) = (self.shape[1], weight.shape[0], weight.shape[1]);
        if groups == 0 || c % groups != 0 || o % groups != 0 {
            return Err(Error::invalid(
                "conv2d",
                format!("groups = {groups} must divide the input channels ({c}) and the output channels ({o})"),
            ));
        }
        if wc != c / groups {
            return Err(Error::shape(
                "conv2d",
                format!("input [batch, {}, h, w] for weight {:?} with groups = {groups}", wc * groups, weight.shape),
                &self.shape,
            ));
        }
        if wc == 1 {
            return self.depthwise(weight, bias, stride, padding);
        }
        let (og, mut outs) = (o / groups, Vec::with_capacity(groups));
        for g in 0..groups {
            let x = self.narrow(1, g * wc, wc)?;
            let w = weight.narrow(0, g * og, og)?;
            let b = bias.map(|b| b.narrow(0, g * og, og)).transpose()?;
            outs.push(x.conv2d(&w, b.as_ref(), stride, padding)?);
        }
        Tensor::cat(&outs, 1)
    }

    /// Depthwise convolution: `weight [o, 1, kh, kw]`, output channel `oc` reading input
    /// channel `oc / (o / c)`.
    fn depthwise(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize) -> Result<Tensor> {
        let (n, c, h, w) = (self.shape[0], self.shape[1], self.shape[2], self.shape[3]);
        let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3]);
        if stride == 0 {
            return Err(Error::invalid("conv2d", "stride must be at least 1"));
        }
        if h + 2 * padding < kh || w + 2 * padding < kw || kh == 0 || kw == 0 {
            return Err(Error::shape("conv2d", format!("input at least {kh}x{kw} after padding {padding}"), &self.shape));
        }
        if let Some(b) = bias {
            if b.shape != [o] {
                return Err(Error::shape("conv2d", format!("bias [{o}]"), &b.shape));
            }
        }
        let (oh, ow) = ((h + 2 * padding - kh) / stride + 1, (w + 2 * padding - kw) / stride + 1);
        let g = Geom { n, c, h, w, o, kh, kw, stride, pad: padding, oh, ow };
        let out = depthwise::forward(&self.data, &weight.data, bias.map(|b| &b.data[..]), &g);
        let (x, wt) = (self.data.clone(), weight.data.clone());
        let backward = move |grad: &[f32], needs: &[bool]| {
            let gx = needs[0].then(|| depthwise::input_grad(grad, &wt, &g));
            let gw = needs[1].then(|| depthwise::weight_grad(&x, grad, &g));
            let gb = needs.get(2).copied().unwrap_or(false).then(|| depthwise::bias_grad(grad, &g));
            vec![gx, gw, gb]
        };
        let out = Tensor::constant(vec![n, o, oh, ow], Rc::new(out));
        Ok(match bias {
            Some(b) => out.record(&[self, weight, b], backward),
            None => out.record(&[self, weight], backward),
        })
    }
}

/// The depthwise kernels. Every output (or input-gradient, or weight-gradient) value is
/// computed by one task in a fixed order, so results do not depend on the thread count.
mod depthwise {
    use super::*;

    /// For each tap row `i`, the output rows `y` whose input row `y * stride + i - pad` is
    /// inside the image, with that row.
    fn rows(g: &Geom, i: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..g.oh).filter_map(move |y| (y * g.stride + i).checked_sub(g.pad).filter(|sy| *sy < g.h).map(|sy| (y, sy)))
    }

    /// Calls `f(output row, its input row, tap index, output columns lo..hi)` for every tap
    /// of one plane, the columns those whose input column `x * stride + j - pad` is inside.
    fn each_tap(g: &Geom, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (lo, hi) = g.valid_x(j);
                for (y, sy) in rows(g, i) {
                    f(y, sy, i * g.kw + j, j, lo, hi);
                }
            }
        }
    }

    /// `out [n, o, oh, ow]`: output planes in parallel.
    pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
        let (m, plane, l, taps) = (g.o / g.c, g.h * g.w, g.l(), g.kh * g.kw);
        let mut out = vec![0.0; g.n * g.o * l];
        if l == 0 {
            return out;
        }
        out.par_chunks_mut(l).with_min_len((4096 / l).max(1)).enumerate().for_each(|(p, op)| {
            let (b, oc) = (p / g.o, p % g.o);
            let src = &x[(b * g.c + oc / m) * plane..][..plane];
            op.fill(bias.map_or(0.0, |b| b[oc]));
            each_tap(g, |y, sy, tap, j, lo, hi| {
                let wv = weight[oc * taps + tap];
                let (dst, row) = (&mut op[y * g.ow..(y + 1) * g.ow], &src[sy * g.w..(sy + 1) * g.w]);
                if g.stride == 1 {
                    let s = &row[lo + j - g.pad..hi + j - g.pad];
                    dst[lo..hi].iter_mut().zip(s).for_each(|(d, v)| *d += wv * v);
                } else {
                    (lo..hi).for_each(|xo| dst[xo] += wv * row[xo * g.stride + j - g.pad]);
                }
            });
        });
        out
    }

    /// `d x [n, c, h, w]`: input planes in parallel, each gathering its `o / c` output planes.
    pub(super) fn input_grad(grad: &[f32], weight: &[f32], g: &Geom) -> Vec<f32> {
        let (m, plane, l, taps) = (g.o / g.c, g.h * g.w, g.l(), g.kh * g.kw);
        let mut gx = vec![0.0; g.n * g.c * plane];
        if plane == 0 {
            return gx;
        }
        gx.par_chunks_mut(plane).with_min_len((4096 / plane).max(1)).enumerate().for_each(|(p, gp)| {
            let (b, ic) = (p / g.c, p % g.c);
            for oc in ic * m..(ic + 1) * m {
                let gop = &grad[(b * g.o + oc) * l..][..l];
                each_tap(g, |y, sy, tap, j, lo, hi| {
                    let wv = weight[oc * taps + tap];
                    let (src, row) = (&gop[y * g.ow..(y + 1) * g.ow], &mut gp[sy * g.w..(sy + 1) * g.w]);
                    if g.stride == 1 {
                        let d = &mut row[lo + j - g.pad..hi + j - g.pad];
                        d.iter_mut().zip(&src[lo..hi]).for_each(|(d, v)| *d += wv * v);
                    } else {
                        (lo..hi).for_each(|xo| row[xo * g.stride + j - g.pad] += wv * src[xo]);
                    }
                });
            }
        });
        gx
    }

    /// `d weight [o, 1, kh, kw]`: output channels in parallel, each summing over the images
    /// in order (row dot products in f32, their sum in f64).
    pub(super) fn weight_grad(x: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
        let (m, plane, l, taps) = (g.o / g.c, g.h * g.w, g.l(), g.kh * g.kw);
        let mut gw = vec![0.0; g.o * taps];
        gw.par_chunks_mut(taps).enumerate().for_each(|(oc, gwc)| {
            let mut acc = vec![0.0f64; taps];
            for b in 0..g.n {
                let (src, gop) = (&x[(b * g.c + oc / m) * plane..][..plane], &grad[(b * g.o + oc) * l..][..l]);
                each_tap(g, |y, sy, tap, j, lo, hi| {
                    let (gr, row) = (&gop[y * g.ow..(y + 1) * g.ow], &src[sy * g.w..(sy + 1) * g.w]);
                    let dot: f32 = if g.stride == 1 {
                        gr[lo..hi].iter().zip(&row[lo + j - g.pad..hi + j - g.pad]).map(|(a, b)| a * b).sum()
                    } else {
                        (lo..hi).map(|xo| gr[xo] * row[xo * g.stride + j - g.pad]).sum()
                    };
                    acc[tap] += dot as f64;
                });
            }
            gwc.iter_mut().zip(&acc).for_each(|(w, a)| *w = *a as f32);
        });
        gw
    }

    /// `d bias [o]`: each output channel's gradient summed over images and positions, in f64.
    pub(super) fn bias_grad(grad: &[f32], g: &Geom) -> Vec<f32> {
        let l = g.l();
        (0..g.o)
            .into_par_iter()
            .map(|oc| (0..g.n).map(|b| grad[(b * g.o + oc) * l..][..l].iter().map(|v| *v as f64).sum::<f64>()).sum::<f64>() as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::tensor::conv::tests::{assert_close, rand};
    use crate::tensor::gradcheck::check;

    /// The definition, in f64: output channel `oc` of group `oc / (o / groups)` sums its
    /// group's input channels.
    fn naive(x: &[f32], xs: [usize; 4], w: &[f32], ws: [usize; 4], stride: usize, pad: usize, groups: usize) -> Vec<f32> {
        let ([n, c, h, wd], [o, cg, kh, kw]) = (xs, ws);
        let (oh, ow) = ((h + 2 * pad - kh) / stride + 1, (wd + 2 * pad - kw) / stride + 1);
        let og = o / groups;
        let mut out = vec![0.0f64; n * o * oh * ow];
        for b in 0..n {
            for oc in 0..o {
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0f64;
                        for k in 0..cg {
                            let ic = oc / og * cg + k;
                            for i in 0..kh {
                                for j in 0..kw {
                                    let (sy, sx) = ((y * stride + i) as isize - pad as isize, (xo * stride + j) as isize - pad as isize);
                                    if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < wd {
                                        let xv = x[((b * c + ic) * h + sy as usize) * wd + sx as usize] as f64;
                                        acc += xv * w[((oc * cg + k) * kh + i) * kw + j] as f64;
                                    }
                                }
                            }
                        }
                        out[((b * o + oc) * oh + y) * ow + xo] = acc;
                    }
                }
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    /// Groups 1, 2, channels / 2 and channels (depthwise, with channel multipliers 1 and 2),
    /// strides 1 and 2, paddings 0 and 1: values against the definition, then both gradients
    /// (and the bias's) against finite differences.
    #[test]
    fn grouped_and_depthwise_match_the_definition_and_finite_differences() {
        let mut rng = Rng::new(3);
        let c = 6;
        for groups in [1, 2, c / 2, c] {
            for multiplier in [1, 2] {
                let o = c * multiplier;
                for stride in [1, 2] {
                    for pad in [0, 1] {
                        let (xs, ws) = ([2, c, 5, 4], [o, c / groups, 3, 3]);
                        let x = rand(&mut rng, xs.iter().product());
                        let w = rand(&mut rng, ws.iter().product());
                        let b = rand(&mut rng, o);
                        let xt = Tensor::from_vec(x.clone(), &xs).unwrap();
                        let wt = Tensor::from_vec(w.clone(), &ws).unwrap();
                        let what = format!("groups {groups} o {o} stride {stride} pad {pad}");
                        let y = xt.conv2d_groups(&wt, None, stride, pad, groups).unwrap();
                        assert_close(y.data(), &naive(&x, xs, &w, ws, stride, pad, groups), &what);
                        let inputs = [(x, xs.to_vec()), (w, ws.to_vec()), (b, vec![o])];
                        check(&inputs, |v| v[0].conv2d_groups(&v[1], Some(&v[2]), stride, pad, groups));
                    }
                }
            }
        }
    }

    /// Depthwise results do not depend on how many planes run at once: a large batch gives
    /// each image's output and gradients bit for bit as that image alone.
    #[test]
    fn depthwise_batches_match_images_alone() {
        let mut rng = Rng::new(5);
        let (n, c) = (9, 24);
        let x = rand(&mut rng, n * c * 8 * 8);
        let w = rand(&mut rng, c * 9);
        let whole = Tensor::variable(x.clone(), &[n, c, 8, 8]).unwrap();
        let wt = Tensor::variable(w.clone(), &[c, 1, 3, 3]).unwrap();
        let y = whole.conv2d_groups(&wt, None, 2, 1, c).unwrap();
        let grads = y.sum().backward().unwrap();
        let gx = grads.get(whole.leaf_key().unwrap()).unwrap();
        for b in 0..n {
            let one = Tensor::variable(x[b * c * 64..(b + 1) * c * 64].to_vec(), &[1, c, 8, 8]).unwrap();
            let yo = one.conv2d_groups(&Tensor::from_vec(w.clone(), &[c, 1, 3, 3]).unwrap(), None, 2, 1, c).unwrap();
            let l = yo.len();
            assert_eq!(yo.data(), &y.data()[b * l..(b + 1) * l], "image {b}");
            let go = yo.sum().backward().unwrap();
            assert_eq!(go.get(one.leaf_key().unwrap()).unwrap(), &gx[b * c * 64..(b + 1) * c * 64], "image {b} gradient");
        }
    }

    #[test]
    fn bad_groups_are_errors_naming_the_channels() {
        let x = Tensor::zeros(&[1, 6, 5, 5]);
        let e = x.conv2d_groups(&Tensor::zeros(&[6, 1, 3, 3]), None, 1, 1, 4).unwrap_err().to_string();
        assert!(e.contains("groups = 4") && e.contains("(6)"), "{e}");
        let e = x.conv2d_groups(&Tensor::zeros(&[6, 2, 3, 3]), None, 1, 1, 2).unwrap_err().to_string();
        assert!(e.contains("[batch, 4, h, w]") && e.contains("groups = 2"), "{e}");
        assert!(x.conv2d_groups(&Tensor::zeros(&[6, 1, 3, 3]), None, 1, 1, 0).is_err());
        assert!(x.conv2d_groups(&Tensor::zeros(&[6, 1, 7, 7]), None, 1, 0, 6).is_err());
        assert!(x.conv2d_groups(&Tensor::zeros(&[6, 1, 3, 3]), None, 0, 0, 6).is_err());
    }
}
