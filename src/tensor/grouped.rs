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
        let g = Geom::of(self, weight, bias, stride, padding)?;
        let (n, o, oh, ow) = (g.n, g.o, g.oh, g.ow);
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

/// The depthwise kernels, on "phase planes": a plane zero-padded and split by stride into
/// `stride^2` planes (rows `a, a + s, ...`, columns `b, b + s, ...`) with one row length `wp`.
/// Tap `(i, j)` then reads phase `(i % s, j % s)` at offset `(i / s, j / s)`, so the whole
/// output plane, laid out `oh` rows of `wp` (the columns past `ow` discarded), is one long
/// contiguous multiply-add per tap, for any stride. Every value is computed by one task in a
/// fixed order, so results do not depend on the thread count.
mod depthwise {
    use super::*;

    /// The phase-plane layout of one convolution.
    struct Phases {
        s: usize,
        /// Rows and row length of each phase plane (one spare row: a tap's run past the last
        /// output row reads into it).
        hp: usize,
        wp: usize,
    }

    impl Phases {
        fn new(g: &Geom) -> Phases {
            let s = g.stride;
            Phases { s, hp: (g.h + 2 * g.pad).div_ceil(s) + 1, wp: (g.w + 2 * g.pad).div_ceil(s) }
        }
        fn plane(&self) -> usize {
            self.hp * self.wp
        }
        /// Where padded position `(y, x)` lives in the phase buffer.
        fn at(&self, y: usize, x: usize) -> usize {
            ((y % self.s) * self.s + x % self.s) * self.plane() + (y / self.s) * self.wp + x / self.s
        }
        /// Where each tap's run starts in the phase buffer, taps in the weights' order.
        fn taps(&self, g: &Geom) -> Vec<usize> {
            (0..g.kh).flat_map(|i| (0..g.kw).map(move |j| self.at(i, j))).collect()
        }
        /// Phase column `b` of image row `y`: the first image column it holds (its padded
        /// columns are `b, b + s, ...`) and where that lands in the phase buffer.
        fn column_start(&self, g: &Geom, y: usize, b: usize) -> (usize, usize) {
            let first = (b + self.s * g.pad.div_ceil(self.s) - g.pad) % self.s;
            (first, self.at(y + g.pad, first + g.pad))
        }
        /// Splits one input plane into `buf` (every phase, zeros where padding).
        fn split(&self, g: &Geom, src: &[f32], buf: &mut Vec<f32>) {
            buf.clear();
            buf.resize(self.s * self.s * self.plane(), 0.0);
            for (y, row) in src.chunks_exact(g.w.max(1)).take(g.h).enumerate() {
                if self.s == 1 {
                    let at = (y + g.pad) * self.wp + g.pad;
                    buf[at..at + g.w].copy_from_slice(row);
                    continue;
                }
                for b in 0..self.s {
                    let (first, at) = self.column_start(g, y, b);
                    for (d, v) in buf[at..].iter_mut().zip(row.iter().skip(first).step_by(self.s)) {
                        *d = *v;
                    }
                }
            }
        }
        /// Adds the image part of a phase buffer back into one input plane.
        fn merge(&self, g: &Geom, buf: &[f32], dst: &mut [f32]) {
            for (y, row) in dst.chunks_exact_mut(g.w.max(1)).take(g.h).enumerate() {
                for b in 0..self.s {
                    let (first, at) = self.column_start(g, y, b);
                    for (d, v) in row.iter_mut().skip(first).step_by(self.s).zip(&buf[at..]) {
                        *d += *v;
                    }
                }
            }
        }
        /// An output plane (or its gradient) laid out with row length `wp`, zeros past `ow`.
        fn widen(&self, g: &Geom, plane: &[f32], wide: &mut Vec<f32>) {
            wide.clear();
            wide.resize(g.oh * self.wp, 0.0);
            for y in 0..g.oh {
                wide[y * self.wp..y * self.wp + g.ow].copy_from_slice(&plane[y * g.ow..(y + 1) * g.ow]);
            }
        }
    }

    vectorized! {
    /// `row = bias + sum over taps t of w[t] * buf[taps[t]..][..row.len()]`.
    fn taps_forward(row: &mut [f32], buf: &[f32], taps: &[usize], w: &[f32], bias: f32) {
        row.fill(bias);
        let run = row.len();
        for (at, wv) in taps.iter().zip(w) {
            for (d, v) in row.iter_mut().zip(&buf[*at..*at + run]) {
                *d += wv * v;
            }
        }
    }
    }

    vectorized! {
    /// `buf[taps[t]..][..row.len()] += w[t] * row` for every tap `t`.
    fn taps_backward(buf: &mut [f32], row: &[f32], taps: &[usize], w: &[f32]) {
        let run = row.len();
        for (at, wv) in taps.iter().zip(w) {
            for (d, v) in buf[*at..*at + run].iter_mut().zip(row) {
                *d += wv * v;
            }
        }
    }
    }

    vectorized! {
    /// `acc[t] += sum(row * buf[taps[t]..][..row.len()])` for every tap `t`: 16 lanes summed
    /// in a fixed order (the same on every path), then added in f64.
    fn taps_dot(acc: &mut [f64], row: &[f32], buf: &[f32], taps: &[usize]) {
        let run = row.len();
        for (a, at) in acc.iter_mut().zip(taps) {
            let src = &buf[*at..*at + run];
            let mut lanes = [0.0f32; 16];
            let (wc, sc) = (row.chunks_exact(16), src.chunks_exact(16));
            let tail: f32 = wc.remainder().iter().zip(sc.remainder()).map(|(x, y)| x * y).sum();
            for (x, y) in wc.zip(sc) {
                for k in 0..16 {
                    lanes[k] += x[k] * y[k];
                }
            }
            *a += (lanes.iter().sum::<f32>() + tail) as f64;
        }
    }
    }

    /// Output planes of at most this many values run on [`Pairs`]: their phase planes would
    /// cost more to fill than their few products. Measured on MobileNetV2 (width 0.5) at batch
    /// 64 on the 2-core machine of docs/performance.md: 4 and 16 within noise of each other
    /// and 6% faster a step than phase planes throughout; 64 slower (scalar products on 8x8
    /// planes lose to the vectorized phase planes).
    const SMALL: usize = 4;

    /// Every product of one plane as `(tap, input index)` pairs, grouped by output position
    /// (`starts[o]..starts[o + 1]`), taps ascending: the same for every plane of a layer.
    struct Pairs {
        list: Vec<(usize, usize)>,
        starts: Vec<usize>,
    }

    impl Pairs {
        fn new(g: &Geom) -> Pairs {
            let (mut list, mut starts) = (Vec::new(), vec![0]);
            for o in 0..g.l() {
                let (y, x) = (o / g.ow, o % g.ow);
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        let (sy, sx) = ((y * g.stride + i).checked_sub(g.pad), (x * g.stride + j).checked_sub(g.pad));
                        if let (Some(sy), Some(sx)) = (sy.filter(|v| *v < g.h), sx.filter(|v| *v < g.w)) {
                            list.push((i * g.kw + j, sy * g.w + sx));
                        }
                    }
                }
                starts.push(list.len());
            }
            Pairs { list, starts }
        }
        fn of(&self, o: usize) -> &[(usize, usize)] {
            &self.list[self.starts[o]..self.starts[o + 1]]
        }
    }

    /// `out [n, o, oh, ow]`: input planes in parallel, each making its `o / c` output planes.
    pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
        let (m, plane, l, taps, ph) = (g.o / g.c, g.h * g.w, g.l(), g.kh * g.kw, Phases::new(g));
        let mut out = vec![0.0; g.n * g.o * l];
        if l == 0 {
            return out;
        }
        if l <= SMALL {
            let pairs = Pairs::new(g);
            out.par_chunks_mut(m * l).with_min_len((4096 / (m * l)).max(1)).enumerate().for_each(|(p, outs)| {
                let src = &x[p * plane..(p + 1) * plane];
                for (k, op) in outs.chunks_exact_mut(l).enumerate() {
                    let oc = (p % g.c) * m + k;
                    let w = &weight[oc * taps..(oc + 1) * taps];
                    for (o, v) in op.iter_mut().enumerate() {
                        *v = pairs.of(o).iter().fold(bias.map_or(0.0, |b| b[oc]), |acc, &(t, i)| acc + w[t] * src[i]);
                    }
                }
            });
            return out;
        }
        let (run, offsets) = (g.oh * ph.wp, ph.taps(g));
        out.par_chunks_mut(m * l).with_min_len((4096 / (m * l)).max(1)).enumerate().for_each_init(
            || (Vec::new(), vec![0.0; run]),
            |(buf, wide), (p, outs)| {
                ph.split(g, &x[p * plane..(p + 1) * plane], buf);
                for (k, op) in outs.chunks_exact_mut(l).enumerate() {
                    let oc = (p % g.c) * m + k;
                    taps_forward(wide, buf, &offsets, &weight[oc * taps..(oc + 1) * taps], bias.map_or(0.0, |b| b[oc]));
                    for y in 0..g.oh {
                        op[y * g.ow..(y + 1) * g.ow].copy_from_slice(&wide[y * ph.wp..y * ph.wp + g.ow]);
                    }
                }
            },
        );
        out
    }

    /// `d x [n, c, h, w]`: input planes in parallel, each gathering its `o / c` output planes.
    pub(super) fn input_grad(grad: &[f32], weight: &[f32], g: &Geom) -> Vec<f32> {
        let (m, plane, l, taps, ph) = (g.o / g.c, g.h * g.w, g.l(), g.kh * g.kw, Phases::new(g));
        let mut gx = vec![0.0; g.n * g.c * plane];
        if plane == 0 || l == 0 {
            return gx;
        }
        if l <= SMALL {
            let pairs = Pairs::new(g);
            gx.par_chunks_mut(plane).with_min_len((4096 / plane).max(1)).enumerate().for_each(|(p, gp)| {
                let (b, ic) = (p / g.c, p % g.c);
                for oc in ic * m..(ic + 1) * m {
                    let (w, gop) = (&weight[oc * taps..(oc + 1) * taps], &grad[(b * g.o + oc) * l..][..l]);
                    for (o, gv) in gop.iter().enumerate() {
                        pairs.of(o).iter().for_each(|&(t, i)| gp[i] += w[t] * gv);
                    }
                }
            });
            return gx;
        }
        let offsets = ph.taps(g);
        gx.par_chunks_mut(plane).with_min_len((4096 / plane).max(1)).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(buf, wide), (p, gp)| {
                buf.clear();
                buf.resize(ph.s * ph.s * ph.plane(), 0.0);
                let (b, ic) = (p / g.c, p % g.c);
                for oc in ic * m..(ic + 1) * m {
                    ph.widen(g, &grad[(b * g.o + oc) * l..][..l], wide);
                    taps_backward(buf, wide, &offsets, &weight[oc * taps..(oc + 1) * taps]);
                }
                ph.merge(g, buf, gp);
            },
        );
        gx
    }

    /// `d weight [o, 1, kh, kw]`: output channels in parallel, each summing over the images
    /// in order (each image's dot products in f32, their sum in f64).
    pub(super) fn weight_grad(x: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
        let (m, plane, l, taps, ph) = (g.o / g.c, g.h * g.w, g.l(), g.kh * g.kw, Phases::new(g));
        let mut gw = vec![0.0; g.o * taps];
        if l == 0 {
            return gw;
        }
        if l <= SMALL {
            let pairs = Pairs::new(g);
            gw.par_chunks_mut(taps).enumerate().for_each(|(oc, gwc)| {
                let (mut acc, mut part) = (vec![0.0f64; taps], vec![0.0f32; taps]);
                for b in 0..g.n {
                    let (src, gop) = (&x[(b * g.c + oc / m) * plane..][..plane], &grad[(b * g.o + oc) * l..][..l]);
                    part.fill(0.0);
                    for (o, gv) in gop.iter().enumerate() {
                        pairs.of(o).iter().for_each(|&(t, i)| part[t] += gv * src[i]);
                    }
                    acc.iter_mut().zip(&part).for_each(|(a, p)| *a += *p as f64);
                }
                gwc.iter_mut().zip(&acc).for_each(|(w, a)| *w = *a as f32);
            });
            return gw;
        }
        let offsets = ph.taps(g);
        gw.par_chunks_mut(taps).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(buf, wide), (oc, gwc)| {
                let mut acc = vec![0.0f64; taps];
                for b in 0..g.n {
                    ph.split(g, &x[(b * g.c + oc / m) * plane..][..plane], buf);
                    ph.widen(g, &grad[(b * g.o + oc) * l..][..l], wide);
                    taps_dot(&mut acc, wide, buf, &offsets);
                }
                gwc.iter_mut().zip(&acc).for_each(|(w, a)| *w = *a as f32);
            },
        );
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
        // larger planes, all on the depthwise phase-plane path (the cases above run on both:
        // at most 4 outputs per plane on the pairs path, more on phase planes)
        for stride in [1, 2] {
            for pad in [0, 1] {
                let (xs, ws) = ([1, 2, 19, 18], [4, 1, 3, 3]);
                let x = rand(&mut rng, xs.iter().product());
                let w = rand(&mut rng, ws.iter().product());
                let y = Tensor::from_vec(x.clone(), &xs).unwrap().conv2d_groups(
                    &Tensor::from_vec(w.clone(), &ws).unwrap(),
                    None,
                    stride,
                    pad,
                    2,
                );
                let y = y.unwrap();
                assert!(y.len() / 4 > 4, "{:?}", y.shape());
                assert_close(y.data(), &naive(&x, xs, &w, ws, stride, pad, 2), &format!("phase planes, stride {stride} pad {pad}"));
                let b = rand(&mut rng, 4);
                check(&[(x, xs.to_vec()), (w, ws.to_vec()), (b, vec![4])], |v| v[0].conv2d_groups(&v[1], Some(&v[2]), stride, pad, 2));
            }
        }
    }

    /// Depthwise results do not depend on how many planes run at once: a large batch gives
    /// each image's output and gradients bit for bit as that image alone.
    #[test]
    fn depthwise_batches_match_images_alone() {
        let mut rng = Rng::new(5);
        // 4x4 inputs give 2x2 outputs, on the pairs path; 24x24 run on phase planes
        for (c, hw) in [(24, 4), (6, 24)] {
            let (n, plane) = (9, hw * hw);
            let x = rand(&mut rng, n * c * plane);
            let w = rand(&mut rng, c * 9);
            let whole = Tensor::variable(x.clone(), &[n, c, hw, hw]).unwrap();
            let wt = Tensor::variable(w.clone(), &[c, 1, 3, 3]).unwrap();
            let y = whole.conv2d_groups(&wt, None, 2, 1, c).unwrap();
            let grads = y.sum().backward().unwrap();
            let gx = grads.get(whole.leaf_key().unwrap()).unwrap();
            for b in 0..n {
                let one = Tensor::variable(x[b * c * plane..(b + 1) * c * plane].to_vec(), &[1, c, hw, hw]).unwrap();
                let yo = one.conv2d_groups(&Tensor::from_vec(w.clone(), &[c, 1, 3, 3]).unwrap(), None, 2, 1, c).unwrap();
                let l = yo.len();
                assert_eq!(yo.data(), &y.data()[b * l..(b + 1) * l], "{hw}x{hw}: image {b}");
                let go = yo.sum().backward().unwrap();
                assert_eq!(
                    go.get(one.leaf_key().unwrap()).unwrap(),
                    &gx[b * c * plane..(b + 1) * c * plane],
                    "{hw}x{hw}: image {b} gradient"
                );
            }
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
