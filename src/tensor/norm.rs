//! Batch normalization over NCHW (per channel) or NC (per feature) tensors.

use super::Tensor;
use crate::error::{Error, Result};
use std::rc::Rc;

/// Per-channel statistics of the batch a train-mode batch norm saw, for the running averages.
#[derive(Debug, Clone)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    /// Unbiased variance (what PyTorch folds into `running_var`).
    pub var_unbiased: Vec<f32>,
}

/// `(channels, planes per channel in the batch, values per plane)` of a `[n, c]` or `[n, c, h, w]` tensor.
fn layout(t: &Tensor, channels: usize) -> Result<(usize, usize)> {
    let ok = (t.shape.len() == 2 || t.shape.len() == 4) && t.shape[1] == channels;
    if !ok {
        return Err(Error::shape("batch_norm", format!("[batch, {channels}] or [batch, {channels}, h, w]"), &t.shape));
    }
    let plane = if t.shape.len() == 4 { t.shape[2] * t.shape[3] } else { 1 };
    Ok((t.shape[0], plane))
}

fn check_affine(gamma: &Tensor, beta: &Tensor, c: usize) -> Result<()> {
    if gamma.shape != [c] || beta.shape != [c] {
        return Err(Error::shape("batch_norm", format!("weight and bias [{c}]"), format!("{:?} and {:?}", gamma.shape, beta.shape)));
    }
    Ok(())
}

impl Tensor {
    /// Train-mode batch norm: normalizes with the batch's own statistics and returns them.
    ///
    /// `y = gamma * (x - mean_c) / sqrt(var_c + eps) + beta`, biased variance.
    pub fn batch_norm_train(&self, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<(Tensor, BatchStats)> {
        let c = gamma.len();
        let (n, plane) = layout(self, c)?;
        check_affine(gamma, beta, c)?;
        let count = n * plane;
        if count < 2 {
            return Err(Error::shape("batch_norm", "more than one value per channel in train mode", &self.shape));
        }
        let at = move |b: usize, ch: usize| (b * c + ch) * plane;
        let mut mean = vec![0.0f32; c];
        let mut var = vec![0.0f32; c];
        for ch in 0..c {
            let mut s = 0.0f64;
            for b in 0..n {
                s += self.data[at(b, ch)..at(b, ch) + plane].iter().map(|v| *v as f64).sum::<f64>();
            }
            let m = s / count as f64;
            let mut sq = 0.0f64;
            for b in 0..n {
                sq += self.data[at(b, ch)..at(b, ch) + plane].iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>();
            }
            mean[ch] = m as f32;
            var[ch] = (sq / count as f64) as f32;
        }
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let mut xhat = vec![0.0; self.len()];
        let mut out = vec![0.0; self.len()];
        for b in 0..n {
            for ch in 0..c {
                let r = at(b, ch)..at(b, ch) + plane;
                let (g, bt, m, is) = (gamma.data[ch], beta.data[ch], mean[ch], inv_std[ch]);
                for ((xh, o), x) in xhat[r.clone()].iter_mut().zip(&mut out[r.clone()]).zip(&self.data[r]) {
                    *xh = (x - m) * is;
                    *o = g * *xh + bt;
                }
            }
        }
        let stats = BatchStats { mean, var_unbiased: var.iter().map(|v| v * count as f32 / (count - 1) as f32).collect() };
        let g_data = gamma.data.clone();
        let out = Tensor::constant(self.shape.clone(), Rc::new(out)).record(&[self, gamma, beta], move |g, needs| {
            // per channel: sum(dy), sum(dy * xhat), accumulated in f64 (these sums cancel)
            let mut sum_dy64 = vec![0.0f64; c];
            let mut sum_dy_xhat64 = vec![0.0f64; c];
            for b in 0..n {
                for ch in 0..c {
                    let r = at(b, ch)..at(b, ch) + plane;
                    for (dy, xh) in g[r.clone()].iter().zip(&xhat[r]) {
                        sum_dy64[ch] += *dy as f64;
                        sum_dy_xhat64[ch] += (*dy * *xh) as f64;
                    }
                }
            }
            let sum_dy: Vec<f32> = sum_dy64.iter().map(|v| *v as f32).collect();
            let sum_dy_xhat: Vec<f32> = sum_dy_xhat64.iter().map(|v| *v as f32).collect();
            let gx = needs[0].then(|| {
                let mut gx = vec![0.0; g.len()];
                let inv_count = 1.0 / count as f32;
                for b in 0..n {
                    for ch in 0..c {
                        let r = at(b, ch)..at(b, ch) + plane;
                        let k = g_data[ch] * inv_std[ch];
                        let (mdy, mdyx) = (sum_dy[ch] * inv_count, sum_dy_xhat[ch] * inv_count);
                        for ((o, dy), xh) in gx[r.clone()].iter_mut().zip(&g[r.clone()]).zip(&xhat[r]) {
                            *o = k * (dy - mdy - xh * mdyx);
                        }
                    }
                }
                gx
            });
            vec![gx, needs[1].then_some(sum_dy_xhat.clone()), needs[2].then_some(sum_dy.clone())]
        });
        Ok((out, stats))
    }

    /// Eval-mode batch norm with fixed statistics: `y = gamma * (x - mean) / sqrt(var + eps) + beta`.
    pub fn batch_norm_eval(&self, gamma: &Tensor, beta: &Tensor, mean: &[f32], var: &[f32], eps: f32) -> Result<Tensor> {
        let c = gamma.len();
        let (n, plane) = layout(self, c)?;
        check_affine(gamma, beta, c)?;
        if mean.len() != c || var.len() != c {
            return Err(Error::shape("batch_norm", format!("running statistics [{c}]"), mean.len()));
        }
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let at = move |b: usize, ch: usize| (b * c + ch) * plane;
        let mut out = vec![0.0; self.len()];
        for b in 0..n {
            for ch in 0..c {
                let r = at(b, ch)..at(b, ch) + plane;
                let scale = gamma.data[ch] * inv_std[ch];
                let shift = beta.data[ch] - mean[ch] * scale;
                out[r.clone()].iter_mut().zip(&self.data[r]).for_each(|(o, x)| *o = x * scale + shift);
            }
        }
        let (x, g_data, mean) = (self.data.clone(), gamma.data.clone(), mean.to_vec());
        Ok(Tensor::constant(self.shape.clone(), Rc::new(out)).record(&[self, gamma, beta], move |g, needs| {
            let mut gx = needs[0].then(|| vec![0.0; g.len()]);
            let mut gg = vec![0.0; c];
            let mut gb = vec![0.0; c];
            for b in 0..n {
                for ch in 0..c {
                    let r = at(b, ch)..at(b, ch) + plane;
                    for (i, dy) in r.clone().zip(&g[r]) {
                        if let Some(gx) = gx.as_mut() {
                            gx[i] = dy * g_data[ch] * inv_std[ch];
                        }
                        gg[ch] += dy * (x[i] - mean[ch]) * inv_std[ch];
                        gb[ch] += dy;
                    }
                }
            }
            vec![gx.take(), needs[1].then_some(gg), needs[2].then_some(gb)]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::tensor::gradcheck::check;

    fn rand(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
    }

    #[test]
    fn train_mode_normalizes_and_reports_unbiased_variance() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0], &[2, 2, 2, 1]).unwrap();
        let one = Tensor::from_vec(vec![1.0, 1.0], &[2]).unwrap();
        let zero = Tensor::zeros(&[2]);
        let (y, stats) = x.batch_norm_train(&one, &zero, 0.0).unwrap();
        // channel 0 holds 1, 2, 10, 20: mean 8.25, biased var 58.1875
        assert!((stats.mean[0] - 8.25).abs() < 1e-5);
        assert!((stats.var_unbiased[0] - 58.1875 * 4.0 / 3.0).abs() < 1e-3);
        assert!((y.data()[0] - (1.0 - 8.25) / 58.1875f32.sqrt()).abs() < 1e-5);
    }

    #[test]
    fn train_mode_gradients_4d_and_2d() {
        let mut rng = Rng::new(8);
        let inputs = vec![(rand(&mut rng, 3 * 2 * 3 * 3), vec![3, 2, 3, 3]), (rand(&mut rng, 2), vec![2]), (rand(&mut rng, 2), vec![2])];
        check(&inputs, |v| Ok(v[0].batch_norm_train(&v[1], &v[2], 1e-5)?.0));
        let inputs = vec![(rand(&mut rng, 5 * 3), vec![5, 3]), (rand(&mut rng, 3), vec![3]), (rand(&mut rng, 3), vec![3])];
        check(&inputs, |v| Ok(v[0].batch_norm_train(&v[1], &v[2], 1e-5)?.0));
    }

    #[test]
    fn eval_mode_gradients() {
        let mut rng = Rng::new(9);
        let inputs = vec![(rand(&mut rng, 2 * 2 * 2 * 2), vec![2, 2, 2, 2]), (rand(&mut rng, 2), vec![2]), (rand(&mut rng, 2), vec![2])];
        check(&inputs, |v| v[0].batch_norm_eval(&v[1], &v[2], &[0.1, -0.2], &[0.5, 1.5], 1e-5));
    }

    #[test]
    fn wrong_channel_count_is_an_error() {
        let e = Tensor::zeros(&[2, 3, 4, 4]).batch_norm_train(&Tensor::zeros(&[2]), &Tensor::zeros(&[2]), 1e-5).unwrap_err();
        assert!(e.to_string().contains("batch_norm"), "{e}");
    }
}
