//! Pooling over NCHW tensors: max, average and global average, each in one pass.

use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::rc::Rc;

fn pooled(op: &'static str, t: &Tensor, kernel: usize, stride: usize) -> Result<(usize, usize, usize, usize)> {
    expect_rank(op, t, 4)?;
    let (h, w) = (t.shape[2], t.shape[3]);
    if kernel == 0 || stride == 0 {
        return Err(Error::invalid(op, "kernel and stride must be at least 1"));
    }
    if h < kernel || w < kernel {
        return Err(Error::shape(op, format!("spatial size at least {kernel}x{kernel}"), &t.shape));
    }
    Ok((h, w, (h - kernel) / stride + 1, (w - kernel) / stride + 1))
}

/// Runs `f(plane index, output plane)` over every `plane`-value plane of `out`, planes in
/// parallel (grouped so each task gets at least a few thousand values).
fn per_plane<T: Send>(out: &mut [T], plane: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    out.par_chunks_mut(plane).with_min_len((4096 / plane).max(1)).enumerate().for_each(|(p, o)| f(p, o));
}

impl Tensor {
    /// Max pooling with a square `kernel` and `stride` (no padding). The first maximum of a
    /// window takes the gradient, as in PyTorch.
    pub fn max_pool2d(&self, kernel: usize, stride: usize) -> Result<Tensor> {
        let (h, w, oh, ow) = pooled("max_pool2d", self, kernel, stride)?;
        let planes = self.shape[0] * self.shape[1];
        let mut out = vec![0.0; planes * oh * ow];
        let mut argmax = vec![0u32; planes * oh * ow];
        let x: &[f32] = &self.data;
        let l = oh * ow;
        let planes_of = out.par_chunks_mut(l).zip(argmax.par_chunks_mut(l)).with_min_len((4096 / l).max(1));
        planes_of.enumerate().for_each(|(p, (out, argmax))| {
            let src = &x[p * h * w..(p + 1) * h * w];
            if kernel == 2 && stride == 2 {
                // the common case, without the general loop's bookkeeping
                for y in 0..oh {
                    let (top, bottom) = (&src[2 * y * w..2 * y * w + 2 * ow], &src[(2 * y + 1) * w..(2 * y + 1) * w + 2 * ow]);
                    let (out, argmax) = (&mut out[y * ow..(y + 1) * ow], &mut argmax[y * ow..(y + 1) * ow]);
                    for (xo, ((o, a), (t, b))) in
                        out.iter_mut().zip(argmax.iter_mut()).zip(top.chunks_exact(2).zip(bottom.chunks_exact(2))).enumerate()
                    {
                        let (mut best, mut at) = (t[0], 2 * y * w + 2 * xo);
                        for (v, i) in [(t[1], at + 1), (b[0], at + w), (b[1], at + w + 1)] {
                            if v > best {
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
                for xo in 0..ow {
                    let mut at = y * stride * w + xo * stride;
                    let mut best = src[at];
                    for i in 0..kernel {
                        let row = (y * stride + i) * w + xo * stride;
                        for (j, v) in src[row..row + kernel].iter().enumerate() {
                            if *v > best {
                                best = *v;
                                at = row + j;
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

    /// Average pooling with a square `kernel` and `stride` (no padding).
    pub fn avg_pool2d(&self, kernel: usize, stride: usize) -> Result<Tensor> {
        let (h, w, oh, ow) = pooled("avg_pool2d", self, kernel, stride)?;
        let planes = self.shape[0] * self.shape[1];
        let scale = 1.0 / (kernel * kernel) as f32;
        let mut out = vec![0.0; planes * oh * ow];
        let x: &[f32] = &self.data;
        per_plane(&mut out, oh * ow, |p, out| {
            let src = &x[p * h * w..(p + 1) * h * w];
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = 0.0;
                    for i in 0..kernel {
                        let row = (y * stride + i) * w + xo * stride;
                        acc += src[row..row + kernel].iter().sum::<f32>();
                    }
                    out[y * ow + xo] = acc * scale;
                }
            }
        });
        let shape = vec![self.shape[0], self.shape[1], oh, ow];
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; planes * h * w];
            per_plane(&mut gx, h * w, |p, gx| {
                for y in 0..oh {
                    for xo in 0..ow {
                        let gv = g[(p * oh + y) * ow + xo] * scale;
                        for i in 0..kernel {
                            let row = (y * stride + i) * w + xo * stride;
                            gx[row..row + kernel].iter_mut().for_each(|v| *v += gv);
                        }
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
        assert_eq!(x.max_pool2d(2, 2).unwrap().data(), &[5.0, 7.0, 13.0, 15.0]);
        // distinct values far apart so finite differences never cross a tie
        let mut rng = Rng::new(4);
        let mut vals: Vec<f32> = (0..2 * 3 * 6 * 6).map(|i| i as f32 * 0.1).collect();
        rng.shuffle(&mut vals);
        check(&[(vals, vec![2, 3, 6, 6])], |v| v[0].max_pool2d(2, 2));
    }

    #[test]
    fn avg_and_global_pool_gradients() {
        let mut rng = Rng::new(6);
        let vals: Vec<f32> = (0..2 * 2 * 5 * 5).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        check(&[(vals.clone(), vec![2, 2, 5, 5])], |v| v[0].avg_pool2d(2, 2));
        check(&[(vals.clone(), vec![2, 2, 5, 5])], |v| v[0].avg_pool2d(3, 1));
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
                let pool = |t: &Tensor| if max { t.max_pool2d(kernel, stride) } else { t.avg_pool2d(kernel, stride) };
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

    #[test]
    fn too_small_input_is_an_error() {
        let e = Tensor::zeros(&[1, 1, 1, 1]).max_pool2d(2, 2).unwrap_err().to_string();
        assert!(e.contains("max_pool2d") && e.contains("[1, 1, 1, 1]"), "{e}");
    }
}
