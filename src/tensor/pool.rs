//! Pooling over NCHW tensors: max, average and global average, each in one pass.

use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::rc::Rc;

fn pooled(op: &'static str, t: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<(usize, usize, usize, usize)> {
    expect_rank(op, t, 4)?;
    let (h, w) = (t.shape[2], t.shape[3]);
    if kernel == 0 || stride == 0 {
        return Err(Error::invalid(op, "kernel and stride must be at least 1"));
    }
    if 2 * padding > kernel {
        return Err(Error::invalid(op, format!("padding {padding} must be at most half the kernel ({kernel})")));
    }
    if h + 2 * padding < kernel || w + 2 * padding < kernel {
        return Err(Error::shape(op, format!("spatial size at least {kernel}x{kernel} after padding {padding}"), &t.shape));
    }
    Ok((h, w, (h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1))
}

/// The input rows (or columns) `lo..hi` of output row `y`'s window, clipped to the image.
fn window(y: usize, kernel: usize, stride: usize, padding: usize, size: usize) -> std::ops::Range<usize> {
    let start = y * stride;
    start.saturating_sub(padding)..(start + kernel).saturating_sub(padding).min(size)
}

/// Runs `f(plane index, output plane)` over every `plane`-value plane of `out`, planes in
/// parallel (grouped so each task gets at least a few thousand values).
fn per_plane<T: Send>(out: &mut [T], plane: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    out.par_chunks_mut(plane).with_min_len((4096 / plane).max(1)).enumerate().for_each(|(p, o)| f(p, o));
}

impl Tensor {
    /// Max pooling with a square `kernel`, `stride` and `padding` (PyTorch's `F.max_pool2d`:
    /// padding counts as -inf, at most half the kernel). `[n, c, h, w] -> [n, c, oh, ow]`
    /// with `oh = (h + 2 padding - kernel) / stride + 1`. The first maximum of a window takes
    /// the gradient, as in PyTorch.
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        let (h, w, oh, ow) = pooled("max_pool2d", self, kernel, stride, padding)?;
        let planes = self.shape[0] * self.shape[1];
        let mut out = vec![0.0; planes * oh * ow];
        let mut argmax = vec![0u32; planes * oh * ow];
        let x: &[f32] = &self.data;
        let l = oh * ow;
        let planes_of = out.par_chunks_mut(l).zip(argmax.par_chunks_mut(l)).with_min_len((4096 / l).max(1));
        planes_of.enumerate().for_each(|(p, (out, argmax))| {
            let src = &x[p * h * w..(p + 1) * h * w];
            if kernel == 2 && stride == 2 && padding == 0 {
                // the common case, without the general loop's bookkeeping
                for y in 0..oh {
                    let (top, bottom) = (&src[2 * y * w..2 * y * w + 2 * ow], &src[(2 * y + 1) * w..(2 * y + 1) * w + 2 * ow]);
                    let (out, argmax) = (&mut out[y * ow..(y + 1) * ow], &mut argmax[y * ow..(y + 1) * ow]);
                    for (xo, ((o, a), (t, b))) in
                        out.iter_mut().zip(argmax.iter_mut()).zip(top.chunks_exact(2).zip(bottom.chunks_exact(2))).enumerate()
                    {
                        let (mut best, mut at) = (t[0], 2 * y * w + 2 * xo);
                        for (v, i) in [(t[1], at + 1), (b[0], at + w), (b[1], at + w + 1)] {
                            if v > best || v.is_nan() {
                                (best, at) = (v, i);
                            }
                        }
                        *o = best;
                        *a = at as u32;
                    }
                }
                return;
            }
            for y in 0..oh {
                let rows = window(y, kernel, stride, padding, h);
                for xo in 0..ow {
                    let cols = window(xo, kernel, stride, padding, w);
                    let mut at = rows.start * w + cols.start;
                    let mut best = src[at];
                    for sy in rows.clone() {
                        for sx in cols.clone() {
                            let v = src[sy * w + sx];
                            // NaN propagates, as in PyTorch
                            if v > best || v.is_nan() {
                                best = v;
                                at = sy * w + sx;
                            }
                        }
                    }
                    out[y * ow + xo] = best;
                    argmax[y * ow + xo] = at as u32;
                }
            }
        });
        let shape = vec![self.shape[0], self.shape[1], oh, ow];
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; planes * h * w];
            let l = oh * ow;
            per_plane(&mut gx, h * w, |p, gx| {
                for (gv, at) in g[p * l..(p + 1) * l].iter().zip(&argmax[p * l..(p + 1) * l]) {
                    gx[*at as usize] += gv;
                }
            });
            vec![Some(gx)]
        }))
    }

    /// Average pooling with a square `kernel`, `stride` and `padding` (PyTorch's
    /// `F.avg_pool2d` with `count_include_pad=True`: every window divides by `kernel^2`,
    /// padding counting as zeros). Output size as [`Tensor::max_pool2d`].
    pub fn avg_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        let (h, w, oh, ow) = pooled("avg_pool2d", self, kernel, stride, padding)?;
        let planes = self.shape[0] * self.shape[1];
        let scale = 1.0 / (kernel * kernel) as f32;
        let mut out = vec![0.0; planes * oh * ow];
        let x: &[f32] = &self.data;
        per_plane(&mut out, oh * ow, |p, out| {
            let src = &x[p * h * w..(p + 1) * h * w];
            for y in 0..oh {
                let rows = window(y, kernel, stride, padding, h);
                for xo in 0..ow {
                    let cols = window(xo, kernel, stride, padding, w);
                    let acc: f32 = rows.clone().map(|sy| src[sy * w + cols.start..sy * w + cols.end].iter().sum::<f32>()).sum();
                    out[y * ow + xo] = acc * scale;
                }
            }
        });
        let shape = vec![self.shape[0], self.shape[1], oh, ow];
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; planes * h * w];
            per_plane(&mut gx, h * w, |p, gx| {
                for y in 0..oh {
                    let rows = window(y, kernel, stride, padding, h);
                    for xo in 0..ow {
                        let cols = window(xo, kernel, stride, padding, w);
                        let gv = g[(p * oh + y) * ow + xo] * scale;
                        rows.clone().for_each(|sy| gx[sy * w + cols.start..sy * w + cols.end].iter_mut().for_each(|v| *v += gv));
                    }
                }
            });
            vec![Some(gx)]
        }))
    }

    /// Adaptive average pooling to `[out_h, out_w]` (PyTorch's `F.adaptive_avg_pool2d`):
    /// output cell `i` of a dim of size `n` averages inputs `floor(i n / out)` up to
    /// `ceil((i + 1) n / out)`. `[n, c, h, w] -> [n, c, out_h, out_w]`; `[1, 1]` is the
    /// global average (kept 4-D).
    pub fn adaptive_avg_pool2d(&self, out_h: usize, out_w: usize) -> Result<Tensor> {
        expect_rank("adaptive_avg_pool2d", self, 4)?;
        let (h, w) = (self.shape[2], self.shape[3]);
        if out_h == 0 || out_w == 0 || h == 0 || w == 0 {
            return Err(Error::shape("adaptive_avg_pool2d", format!("a non-empty input for output {out_h}x{out_w}"), &self.shape));
        }
        let span = |i: usize, out: usize, n: usize| (i * n / out)..((i + 1) * n).div_ceil(out);
        let planes = self.shape[0] * self.shape[1];
        let mut out = vec![0.0; planes * out_h * out_w];
        let x: &[f32] = &self.data;
        per_plane(&mut out, out_h * out_w, |p, out| {
            let src = &x[p * h * w..(p + 1) * h * w];
            for y in 0..out_h {
                let rows = span(y, out_h, h);
                for xo in 0..out_w {
                    let cols = span(xo, out_w, w);
                    let acc: f32 = rows.clone().map(|sy| src[sy * w + cols.start..sy * w + cols.end].iter().sum::<f32>()).sum();
                    out[y * out_w + xo] = acc / (rows.len() * cols.len()) as f32;
                }
            }
        });
        let shape = vec![self.shape[0], self.shape[1], out_h, out_w];
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; planes * h * w];
            per_plane(&mut gx, h * w, |p, gx| {
                for y in 0..out_h {
                    let rows = span(y, out_h, h);
                    for xo in 0..out_w {
                        let cols = span(xo, out_w, w);
                        let gv = g[(p * out_h + y) * out_w + xo] / (rows.len() * cols.len()) as f32;
                        rows.clone().for_each(|sy| gx[sy * w + cols.start..sy * w + cols.end].iter_mut().for_each(|v| *v += gv));
                    }
                }
            });
            vec![Some(gx)]
        }))
    }

    /// Mean over the spatial dims: `[n, c, h, w] -> [n, c]`.
    pub fn global_avg_pool(&self) -> Result<Tensor> {
        expect_rank("global_avg_pool", self, 4)?;
        let (n, c) = (self.shape[0], self.shape[1]);
        let hw = self.shape[2] * self.shape[3];
        if hw == 0 {
            return Err(Error::shape("global_avg_pool", "a non-empty spatial size", &self.shape));
        }
        let scale = 1.0 / hw as f32;
        let out: Vec<f32> = self.data.chunks(hw).map(|p| p.iter().sum::<f32>() * scale).collect();
        Ok(Tensor::constant(vec![n, c], Rc::new(out))
            .record(&[self], move |g, _| vec![Some(g.iter().flat_map(|gv| std::iter::repeat(gv * scale).take(hw)).collect())]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::tensor::gradcheck::check;

    #[test]
    fn max_pool_values_and_gradient() {
        let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]).unwrap();
        assert_eq!(x.max_pool2d(2, 2, 0).unwrap().data(), &[5.0, 7.0, 13.0, 15.0]);
        // distinct values far apart so finite differences never cross a tie
        let mut rng = Rng::new(4);
        let mut vals: Vec<f32> = (0..2 * 3 * 6 * 6).map(|i| i as f32 * 0.1).collect();
        rng.shuffle(&mut vals);
        check(&[(vals, vec![2, 3, 6, 6])], |v| v[0].max_pool2d(2, 2, 0));
    }

    #[test]
    fn avg_and_global_pool_gradients() {
        let mut rng = Rng::new(6);
        let vals: Vec<f32> = (0..2 * 2 * 5 * 5).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        check(&[(vals.clone(), vec![2, 2, 5, 5])], |v| v[0].avg_pool2d(2, 2, 0));
        check(&[(vals.clone(), vec![2, 2, 5, 5])], |v| v[0].avg_pool2d(3, 1, 0));
        check(&[(vals, vec![2, 2, 5, 5])], |v| v[0].global_avg_pool());
        let x = Tensor::from_vec((0..8).map(|v| v as f32).collect(), &[1, 2, 2, 2]).unwrap();
        assert_eq!(x.global_avg_pool().unwrap().data(), &[1.5, 5.5]);
    }

    /// Large batches run planes in parallel: every plane must match the same plane pooled alone.
    #[test]
    fn parallel_planes_match_one_plane_at_a_time() {
        let mut rng = Rng::new(7);
        let (planes, h, w) = (6 * 40, 9, 8);
        let vals: Vec<f32> = (0..planes * h * w).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let upstream: Vec<f32> = (0..planes * 16).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        for (kernel, stride) in [(2, 2), (3, 2)] {
            for max in [true, false] {
                let pool = |t: &Tensor| if max { t.max_pool2d(kernel, stride, 0) } else { t.avg_pool2d(kernel, stride, 0) };
                let whole = Tensor::variable(vals.clone(), &[6, 40, h, w]).unwrap();
                let out = pool(&whole).unwrap();
                let l = out.len() / planes;
                let g = Tensor::from_vec(upstream[..out.len()].to_vec(), out.shape()).unwrap();
                let grads = out.mul(&g).unwrap().sum().backward().unwrap();
                let gx = grads.get(whole.leaf_key().unwrap()).unwrap();
                for p in 0..planes {
                    let one = Tensor::variable(vals[p * h * w..(p + 1) * h * w].to_vec(), &[1, 1, h, w]).unwrap();
                    let o = pool(&one).unwrap();
                    assert_eq!(o.data(), &out.data()[p * l..(p + 1) * l], "plane {p}");
                    if max {
                        // the definition: each window's largest value
                        let src = &vals[p * h * w..(p + 1) * h * w];
                        let ow = (w - kernel) / stride + 1;
                        for (i, v) in o.data().iter().enumerate() {
                            let (y, x) = (i / ow * stride, i % ow * stride);
                            let want = (0..kernel * kernel).map(|k| src[(y + k / kernel) * w + x + k % kernel]).fold(f32::MIN, f32::max);
                            assert_eq!(*v, want, "plane {p} output {i}");
                        }
                    }
                    let go = Tensor::from_vec(upstream[p * l..(p + 1) * l].to_vec(), o.shape()).unwrap();
                    let gs = o.mul(&go).unwrap().sum().backward().unwrap();
                    assert_eq!(gs.get(one.leaf_key().unwrap()).unwrap(), &gx[p * h * w..(p + 1) * h * w], "plane {p} gradient");
                }
            }
        }
    }

    /// The ImageNet stem's 3x3 stride-2 max pool with padding 1, ShuffleNet V1's average
    /// pool of the same shape (padding counted in the divisor), adaptive pooling: values by
    /// PyTorch's definitions, gradients by finite differences.
    #[test]
    fn padded_and_adaptive_pools() {
        let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]).unwrap();
        assert_eq!(x.max_pool2d(3, 2, 1).unwrap().data(), &[5.0, 7.0, 13.0, 15.0]);
        let avg = x.avg_pool2d(3, 2, 1).unwrap();
        // windows rows 0..2 x cols 0..2, rows 0..2 x cols 1..4, ...; always divided by 9
        assert_eq!(avg.data(), &[10.0 / 9.0, 24.0 / 9.0, 51.0 / 9.0, 90.0 / 9.0]);
        // 5 -> 2: cells average rows 0..3 and 2..5
        let y = Tensor::from_vec((0..25).map(|v| v as f32).collect(), &[1, 1, 5, 5]).unwrap().adaptive_avg_pool2d(2, 3).unwrap();
        let mean = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
            let (r, c) = (rows.len(), cols.len());
            rows.flat_map(|i| cols.clone().map(move |j| (i * 5 + j) as f32)).sum::<f32>() / (r * c) as f32
        };
        assert_eq!(y.shape(), &[1, 1, 2, 3]);
        assert_eq!(y.data(), &[mean(0..3, 0..2), mean(0..3, 1..4), mean(0..3, 3..5), mean(2..5, 0..2), mean(2..5, 1..4), mean(2..5, 3..5)]);
        let g = Tensor::from_vec((0..8).map(|v| v as f32).collect(), &[1, 2, 2, 2]).unwrap();
        assert_eq!(g.adaptive_avg_pool2d(1, 1).unwrap().data(), g.global_avg_pool().unwrap().data());
        let mut rng = Rng::new(8);
        let mut vals: Vec<f32> = (0..2 * 2 * 7 * 6).map(|i| i as f32 * 0.1).collect();
        rng.shuffle(&mut vals);
        check(&[(vals.clone(), vec![2, 2, 7, 6])], |v| v[0].max_pool2d(3, 2, 1));
        check(&[(vals.clone(), vec![2, 2, 7, 6])], |v| v[0].avg_pool2d(3, 2, 1));
        check(&[(vals.clone(), vec![2, 2, 7, 6])], |v| v[0].adaptive_avg_pool2d(3, 4));
        let e = x.max_pool2d(2, 2, 2).unwrap_err().to_string();
        assert!(e.contains("padding 2") && e.contains("half the kernel"), "{e}");
        assert!(x.adaptive_avg_pool2d(0, 1).is_err());
    }

    #[test]
    fn too_small_input_is_an_error() {
        let e = Tensor::zeros(&[1, 1, 1, 1]).max_pool2d(2, 2, 0).unwrap_err().to_string();
        assert!(e.contains("max_pool2d") && e.contains("[1, 1, 1, 1]"), "{e}");
    }
}
