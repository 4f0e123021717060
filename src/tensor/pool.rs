//! Pooling over NCHW tensors: max, average and global average, each in one pass.

use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
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

impl Tensor {
    /// Max pooling with a square `kernel` and `stride` (no padding).
    pub fn max_pool2d(&self, kernel: usize, stride: usize) -> Result<Tensor> {
        let (h, w, oh, ow) = pooled("max_pool2d", self, kernel, stride)?;
        let planes = self.shape[0] * self.shape[1];
        let mut out = vec![0.0; planes * oh * ow];
        let mut argmax = vec![0u32; planes * oh * ow];
        for p in 0..planes {
            let src = &self.data[p * h * w..(p + 1) * h * w];
            for y in 0..oh {
                for x in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, 0);
                    for i in 0..kernel {
                        for j in 0..kernel {
                            let idx = (y * stride + i) * w + x * stride + j;
                            if src[idx] > best || (i == 0 && j == 0) {
                                best = src[idx];
                                at = idx;
                            }
                        }
                    }
                    out[(p * oh + y) * ow + x] = best;
                    argmax[(p * oh + y) * ow + x] = at as u32;
                }
            }
        }
        let shape = vec![self.shape[0], self.shape[1], oh, ow];
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; planes * h * w];
            for (i, (gv, at)) in g.iter().zip(&argmax).enumerate() {
                gx[(i / (oh * ow)) * h * w + *at as usize] += gv;
            }
            vec![Some(gx)]
        }))
    }

    /// Average pooling with a square `kernel` and `stride` (no padding).
    pub fn avg_pool2d(&self, kernel: usize, stride: usize) -> Result<Tensor> {
        let (h, w, oh, ow) = pooled("avg_pool2d", self, kernel, stride)?;
        let planes = self.shape[0] * self.shape[1];
        let scale = 1.0 / (kernel * kernel) as f32;
        let mut out = vec![0.0; planes * oh * ow];
        for p in 0..planes {
            let src = &self.data[p * h * w..(p + 1) * h * w];
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = 0.0;
                    for i in 0..kernel {
                        let row = (y * stride + i) * w + x * stride;
                        acc += src[row..row + kernel].iter().sum::<f32>();
                    }
                    out[(p * oh + y) * ow + x] = acc * scale;
                }
            }
        }
        let shape = vec![self.shape[0], self.shape[1], oh, ow];
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; planes * h * w];
            for p in 0..planes {
                for y in 0..oh {
                    for x in 0..ow {
                        let gv = g[(p * oh + y) * ow + x] * scale;
                        for i in 0..kernel {
                            let row = p * h * w + (y * stride + i) * w + x * stride;
                            gx[row..row + kernel].iter_mut().for_each(|v| *v += gv);
                        }
                    }
                }
            }
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

    #[test]
    fn too_small_input_is_an_error() {
        let e = Tensor::zeros(&[1, 1, 1, 1]).max_pool2d(2, 2).unwrap_err().to_string();
        assert!(e.contains("max_pool2d") && e.contains("[1, 1, 1, 1]"), "{e}");
    }
}
