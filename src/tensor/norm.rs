//! Batch normalization over NCHW (per channel) or NC (per feature) tensors.

use super::Tensor;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;
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

/// The planes of an `[n, c, plane]` buffer, visited per channel or in parallel per image.
#[derive(Clone, Copy)]
struct Planes {
    n: usize,
    c: usize,
    plane: usize,
}

impl Planes {
    /// Channel `ch`'s plane in every image of `data`.
    fn of<'a>(&self, data: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (c, plane) = (self.c, self.plane);
        (0..self.n).map(move |b| &data[(b * c + ch) * plane..(b * c + ch + 1) * plane])
    }

    /// `f(channel)` for every channel, channels in parallel.
    fn per_channel<T: Send>(&self, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
        (0..self.c).into_par_iter().map(&f).collect()
    }

    /// A new buffer in the input's layout whose every plane `f(channel, offset of the plane,
    /// the plane)` writes in full (images in parallel). The buffer is not zeroed first: `f`
    /// must write each value of the plane it is given.
    fn fill_planes(&self, f: impl Fn(usize, usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
        let (c, plane) = (self.c, self.plane);
        let len = self.n * c * plane;
        let mut out = Vec::with_capacity(len);
        if len == 0 {
            return out; // no images, channels or values
        }
        out.spare_capacity_mut()[..len].par_chunks_mut(c * plane).enumerate().for_each(|(b, image)| {
            for (ch, o) in image.chunks_mut(plane).enumerate() {
                f(ch, (b * c + ch) * plane, o);
            }
        });
        // SAFETY: the chunks cover 0..len and every caller's `f` writes all of its plane
        // (each zips the plane with an input of at least its length).
        unsafe { out.set_len(len) };
        out
    }
}

/// Two f64 sums kept in eight interleaved lanes: independent addition chains (one chain
/// waits on the adder's latency per value), in a fixed order, so the result does not
/// depend on the thread count.
#[derive(Default)]
struct LaneSums {
    first: [f64; LANES],
    second: [f64; LANES],
}

const LANES: usize = 8;

impl LaneSums {
    /// Adds `f(a[i], b[i])` for every `i` (`a` and `b` of one length).
    #[inline(always)]
    fn add(&mut self, a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f64, f64)) {
        let (a_tail, b_tail) = (a.chunks_exact(LANES).remainder(), b.chunks_exact(LANES).remainder());
        // the lanes as locals, so they stay in registers
        let (mut first, mut second) = (self.first, self.second);
        for (a, b) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
            for lane in 0..LANES {
                let (u, v) = f(a[lane], b[lane]);
                first[lane] += u;
                second[lane] += v;
            }
        }
        for (lane, (a, b)) in a_tail.iter().zip(b_tail).enumerate() {
            let (u, v) = f(*a, *b);
            first[lane] += u;
            second[lane] += v;
        }
        (self.first, self.second) = (first, second);
    }

    fn total(&self) -> (f64, f64) {
        (self.first.iter().sum(), self.second.iter().sum())
    }
}

/// One channel's constants in a train-mode batch norm's passes.
#[derive(Clone, Copy)]
struct Channel {
    gamma: f32,
    beta: f32,
    mean: f32,
    inv_std: f32,
    /// A ReLU follows (fused).
    relu: bool,
}

impl Channel {
    /// `dy` where the output was not clipped by the fused ReLU (the normalized value
    /// recomputed exactly as the forward pass did), else 0: a select, not a branch (half are
    /// clipped).
    #[inline(always)]
    fn through(&self, dy: f32, xhat: f32) -> f32 {
        if !self.relu || self.gamma * xhat + self.beta > 0.0 {
            dy
        } else {
            0.0
        }
    }
}

vectorized! {
/// Adds the values of `p` and their squares (in f64) to `sums`.
fn add_squares(p: &[f32], sums: &mut LaneSums) {
    sums.add(p, p, |v, _| (v as f64, v as f64 * v as f64))
}
}

vectorized! {
/// Adds `dy` and `dy * xhat` (in f64; `dy` through the fused ReLU, `xhat` recomputed from `x`)
/// to `sums`.
fn add_grad_sums(dy: &[f32], x: &[f32], ch: Channel, sums: &mut LaneSums) {
    sums.add(dy, x, |d, x| {
        let xhat = (x - ch.mean) * ch.inv_std;
        let d = ch.through(d, xhat);
        (d as f64, (d * xhat) as f64)
    })
}
}

vectorized! {
/// `out = gamma * (x - mean) * inv_std + beta`, then the fused ReLU.
fn normalize(x: &[f32], out: &mut [MaybeUninit<f32>], ch: Channel) {
    for (o, x) in out.iter_mut().zip(x) {
        let y = ch.gamma * ((x - ch.mean) * ch.inv_std) + ch.beta;
        o.write(if ch.relu { y.max(0.0) } else { y });
    }
}
}

vectorized! {
/// The input gradient `gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat))`, `dy`
/// through the fused ReLU.
fn input_grad(dy: &[f32], x: &[f32], out: &mut [MaybeUninit<f32>], ch: Channel, mean_dy: f32, mean_dy_xhat: f32) {
    let k = ch.gamma * ch.inv_std;
    for ((o, dy), x) in out.iter_mut().zip(dy).zip(x) {
        let xhat = (x - ch.mean) * ch.inv_std;
        o.write(k * (ch.through(*dy, xhat) - mean_dy - xhat * mean_dy_xhat));
    }
}
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
    /// `y = gamma * (x - mean_c) / sqrt(var_c + eps) + beta`, biased variance. Statistics are
    /// summed in f64, one channel per task; the element-wise passes run one image per task.
    pub fn batch_norm_train(&self, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<(Tensor, BatchStats)> {
        self.batch_norm_train_then(gamma, beta, eps, false)
    }

    /// [`Tensor::batch_norm_train`] followed by ReLU in the same passes (the same values and
    /// gradients as the two ops, without the ReLU's buffers and passes).
    pub fn batch_norm_train_relu(&self, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<(Tensor, BatchStats)> {
        self.batch_norm_train_then(gamma, beta, eps, true)
    }

    fn batch_norm_train_then(&self, gamma: &Tensor, beta: &Tensor, eps: f32, relu: bool) -> Result<(Tensor, BatchStats)> {
        let c = gamma.len();
        let (n, plane) = layout(self, c)?;
        check_affine(gamma, beta, c)?;
        let count = n * plane;
        if count < 2 {
            return Err(Error::shape("batch_norm", "more than one value per channel in train mode", &self.shape));
        }
        let planes = Planes { n, c, plane };
        let (x, gamma_d, beta_d): (&[f32], &[f32], &[f32]) = (&self.data, &gamma.data, &beta.data);
        // one pass: sum and sum of squares in f64 (exact enough for f32 data: the
        // cancellation in E[x^2] - E[x]^2 costs about 16 - log10(mean^2 / var) digits)
        let (mean, var): (Vec<f32>, Vec<f32>) = planes
            .per_channel(|ch| {
                let mut sums = LaneSums::default();
                for p in planes.of(x, ch) {
                    add_squares(p, &mut sums);
                }
                let (s, sq) = sums.total();
                let m = s / count as f64;
                (m as f32, (sq / count as f64 - m * m).max(0.0) as f32)
            })
            .into_iter()
            .unzip();
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let channel = |ch: usize| Channel { gamma: gamma_d[ch], beta: beta_d[ch], mean: mean[ch], inv_std: inv_std[ch], relu };
        let out = planes.fill_planes(|ch, i, o| normalize(&x[i..i + o.len()], o, channel(ch)));
        let stats = BatchStats { mean: mean.clone(), var_unbiased: var.iter().map(|v| v * count as f32 / (count - 1) as f32).collect() };
        // the backward pass recomputes xhat = (x - mean) * inv_std from the input (kept
        // instead of a second activation-sized buffer)
        let (x_data, g_data, b_data) = (self.data.clone(), gamma.data.clone(), beta.data.clone());
        let out = Tensor::constant(self.shape.clone(), Rc::new(out)).record(&[self, gamma, beta], move |g, needs| {
            let (x, g_data, b_data): (&[f32], &[f32], &[f32]) = (&x_data, &g_data, &b_data);
            let channel = |ch: usize| Channel { gamma: g_data[ch], beta: b_data[ch], mean: mean[ch], inv_std: inv_std[ch], relu };
            // per channel: sum(dy), sum(dy * xhat), accumulated in f64 (these sums cancel)
            let (sum_dy, sum_dy_xhat): (Vec<f32>, Vec<f32>) = planes
                .per_channel(|ch| {
                    let mut sums = LaneSums::default();
                    for (dy, xp) in planes.of(g, ch).zip(planes.of(x, ch)) {
                        add_grad_sums(dy, xp, channel(ch), &mut sums);
                    }
                    let (s, sx) = sums.total();
                    (s as f32, sx as f32)
                })
                .into_iter()
                .unzip();
            let gx = needs[0].then(|| {
                let inv_count = 1.0 / count as f32;
                planes.fill_planes(|ch, i, o| {
                    let len = o.len();
                    input_grad(&g[i..i + len], &x[i..i + len], o, channel(ch), sum_dy[ch] * inv_count, sum_dy_xhat[ch] * inv_count)
                })
            });
            vec![gx, needs[1].then_some(sum_dy_xhat), needs[2].then_some(sum_dy)]
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
        let (x, gamma_d, beta_d): (&[f32], &[f32], &[f32]) = (&self.data, &gamma.data, &beta.data);
        let out = Planes { n, c, plane }.fill_planes(|ch, i, o| {
            let scale = gamma_d[ch] * inv_std[ch];
            let shift = beta_d[ch] - mean[ch] * scale;
            o.iter_mut().zip(&x[i..]).for_each(|(o, x)| {
                o.write(x * scale + shift);
            });
        });
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
    use crate::tensor::gradcheck::{check, check_fused};

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

    /// One-pass f64 statistics keep the variance of a channel whose mean is 1e5 standard
    /// deviations from zero (the output and running variance match a two-pass reference).
    #[test]
    fn statistics_survive_a_large_mean() {
        let mut rng = Rng::new(12);
        let vals: Vec<f32> = (0..4 * 3 * 25).map(|_| 1000.0 + 0.01 * rng.uniform_in(-1.0, 1.0)).collect();
        let x = Tensor::from_vec(vals.clone(), &[4, 3, 5, 5]).unwrap();
        let (y, stats) = x.batch_norm_train(&Tensor::from_vec(vec![1.0; 3], &[3]).unwrap(), &Tensor::zeros(&[3]), 0.0).unwrap();
        for ch in 0..3 {
            let v: Vec<f64> = (0..4).flat_map(|b| vals[(b * 3 + ch) * 25..(b * 3 + ch + 1) * 25].iter().map(|v| *v as f64)).collect();
            let m = v.iter().sum::<f64>() / 100.0;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 99.0;
            assert!(((stats.var_unbiased[ch] as f64 - var) / var).abs() < 1e-3, "channel {ch}: {} vs {var}", stats.var_unbiased[ch]);
            let first = (vals[ch * 25] as f64 - m) / (var * 99.0 / 100.0).sqrt();
            assert!((y.data()[ch * 25] as f64 - first).abs() < 1e-2 * (1.0 + first.abs()), "channel {ch}");
        }
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
    fn fused_relu_equals_batch_norm_then_relu() {
        let mut rng = Rng::new(10);
        // a shifted beta puts about half the normalized values below zero
        let inputs = vec![(rand(&mut rng, 4 * 3 * 5 * 5), vec![4, 3, 5, 5]), (rand(&mut rng, 3), vec![3]), (vec![0.3, -0.2, 0.0], vec![3])];
        check_fused(
            &inputs,
            |v| Ok(v[0].batch_norm_train_relu(&v[1], &v[2], 1e-5)?.0),
            |v| Ok(v[0].batch_norm_train(&v[1], &v[2], 1e-5)?.0.relu()),
        );
        // the case is not vacuous: a good share of the outputs is clipped
        let x = Tensor::from_vec(inputs[0].0.clone(), &[4, 3, 5, 5]).unwrap();
        let (y, _) = x.batch_norm_train_relu(&Tensor::from_vec(vec![1.0; 3], &[3]).unwrap(), &Tensor::zeros(&[3]), 1e-5).unwrap();
        let clipped = y.data().iter().filter(|v| **v == 0.0).count();
        assert!((100..200).contains(&clipped), "{clipped} of 300 clipped");
    }

    #[test]
    fn eval_mode_gradients() {
        let mut rng = Rng::new(9);
        let inputs = vec![(rand(&mut rng, 2 * 2 * 2 * 2), vec![2, 2, 2, 2]), (rand(&mut rng, 2), vec![2]), (rand(&mut rng, 2), vec![2])];
        check(&inputs, |v| v[0].batch_norm_eval(&v[1], &v[2], &[0.1, -0.2], &[0.5, 1.5], 1e-5));
    }

    #[test]
    fn empty_planes_and_channels_do_not_panic() {
        let (one, zero) = (Tensor::from_vec(vec![1.0; 3], &[3]).unwrap(), Tensor::zeros(&[3]));
        let y = Tensor::zeros(&[2, 3, 0, 0]).batch_norm_eval(&one, &zero, &[0.0; 3], &[1.0; 3], 1e-5).unwrap();
        assert_eq!(y.len(), 0);
        assert!(Tensor::zeros(&[2, 3, 0, 0]).batch_norm_train(&one, &zero, 1e-5).is_err());
        let none = Tensor::zeros(&[0]);
        assert_eq!(Tensor::zeros(&[2, 0, 4, 4]).batch_norm_eval(&none, &none, &[], &[], 1e-5).unwrap().len(), 0);
    }

    #[test]
    fn wrong_channel_count_is_an_error() {
        let e = Tensor::zeros(&[2, 3, 4, 4]).batch_norm_train(&Tensor::zeros(&[2]), &Tensor::zeros(&[2]), 1e-5).unwrap_err();
        assert!(e.to_string().contains("batch_norm"), "{e}");
    }
}
