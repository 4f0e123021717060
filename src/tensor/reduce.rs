//! Reductions over all elements or along one dim (sum, mean, max, min) and softmax / log-softmax.

use super::Tensor;
use crate::error::{Error, Result};
use std::rc::Rc;

impl Tensor {
    /// Resolves a possibly negative `dim` against the rank.
    pub fn resolve_dim(&self, op: &'static str, dim: i64) -> Result<usize> {
        let rank = self.shape.len() as i64;
        let d = if dim < 0 { dim + rank } else { dim };
        if d < 0 || d >= rank {
            return Err(Error::invalid(op, format!("dim {dim} is out of range for a tensor of shape {:?}", self.shape)));
        }
        Ok(d as usize)
    }

    /// (outer, size of dim, inner) of the layout around `dim`, checked: a tensor with no values
    /// can have dims whose product passes 2^64, and a reduction's output (`outer * inner`
    /// values) is held to the memory cap before it is allocated.
    fn around(&self, op: &'static str, dim: usize) -> Result<(usize, usize, usize)> {
        let product = |dims: &[usize]| super::limits::numel(op, dims);
        let (outer, inner) = (product(&self.shape[..dim])?, product(&self.shape[dim + 1..])?);
        super::limits::numel(op, &[outer, inner])?;
        Ok((outer, self.shape[dim], inner))
    }

    fn reduced_shape(&self, dim: usize, keepdim: bool) -> Vec<usize> {
        let mut s = self.shape.clone();
        if keepdim {
            s[dim] = 1;
        } else {
            s.remove(dim);
        }
        s
    }

    /// Sums along `dim` in f64, each divided by `divisor` before rounding once to f32.
    fn sum_dim_f64(&self, op: &'static str, dim: i64, keepdim: bool, divisor: f64) -> Result<Tensor> {
        let d = self.resolve_dim(op, dim)?;
        let (outer, n, inner) = self.around(op, d)?;
        let mut acc = vec![0.0f64; outer * inner];
        for o in 0..outer {
            for k in 0..n {
                for i in 0..inner {
                    acc[o * inner + i] += self.data[(o * n + k) * inner + i] as f64;
                }
            }
        }
        let out: Vec<f32> = acc.iter().map(|s| (s / divisor) as f32).collect();
        let scale = (1.0 / divisor) as f32;
        Ok(Tensor::constant(self.reduced_shape(d, keepdim), Rc::new(out)).record(&[self], move |g, _| {
            let g: Vec<f32> = g.iter().map(|v| v * scale).collect();
            let mut gx = vec![0.0; outer * n * inner];
            for o in 0..outer {
                for k in 0..n {
                    gx[(o * n + k) * inner..(o * n + k + 1) * inner].copy_from_slice(&g[o * inner..(o + 1) * inner]);
                }
            }
            vec![Some(gx)]
        }))
    }

    /// Sum along `dim` (accumulated in f64, rounded once).
    pub fn sum_dim(&self, dim: i64, keepdim: bool) -> Result<Tensor> {
        self.sum_dim_f64("sum", dim, keepdim, 1.0)
    }

    /// Mean along `dim` (accumulated in f64, rounded once).
    pub fn mean_dim(&self, dim: i64, keepdim: bool) -> Result<Tensor> {
        let d = self.resolve_dim("mean", dim)?;
        if self.shape[d] == 0 {
            return Err(Error::invalid("mean", format!("dim {dim} of {:?} is empty", self.shape)));
        }
        self.sum_dim_f64("mean", dim, keepdim, self.shape[d] as f64)
    }

    /// Mean of all elements, as a one-element tensor (accumulated in f64, rounded once).
    pub fn mean(&self) -> Result<Tensor> {
        if self.is_empty() {
            return Err(Error::invalid("mean", "the tensor is empty"));
        }
        self.reshape(&[self.len()])?.mean_dim(0, false)?.reshape(&[1])
    }

    /// Max (or min with `largest = false`) along `dim`; the gradient goes to the first extremum.
    pub fn extreme_dim(&self, dim: i64, keepdim: bool, largest: bool) -> Result<Tensor> {
        let op = if largest { "max" } else { "min" };
        let d = self.resolve_dim(op, dim)?;
        let (outer, n, inner) = self.around(op, d)?;
        if n == 0 {
            return Err(Error::invalid(op, format!("dim {dim} of {:?} is empty", self.shape)));
        }
        let mut out = vec![0.0; outer * inner];
        let mut at = vec![0usize; outer * inner];
        for o in 0..outer {
            for i in 0..inner {
                let mut best = 0;
                for k in 1..n {
                    let (v, b) = (self.data[(o * n + k) * inner + i], self.data[(o * n + best) * inner + i]);
                    // the first NaN wins, as in torch.max / torch.min
                    if (largest && v > b) || (!largest && v < b) || (v.is_nan() && !b.is_nan()) {
                        best = k;
                    }
                }
                out[o * inner + i] = self.data[(o * n + best) * inner + i];
                at[o * inner + i] = (o * n + best) * inner + i;
            }
        }
        let len = self.len();
        Ok(Tensor::constant(self.reduced_shape(d, keepdim), Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; len];
            g.iter().zip(&at).for_each(|(g, &i)| gx[i] += g);
            vec![Some(gx)]
        }))
    }

    /// `log(sum(exp(x)))` along `dim`, computed stably in f64 (PyTorch's `torch.logsumexp`):
    /// the row's maximum is taken out first, so large logits do not overflow and entries of
    /// `-inf` (masked classes) contribute nothing. The gradient is the softmax along `dim`.
    pub fn logsumexp(&self, dim: i64, keepdim: bool) -> Result<Tensor> {
        let op = "logsumexp";
        let d = self.resolve_dim(op, dim)?;
        let (outer, n, inner) = self.around(op, d)?;
        let mut out = vec![0.0f32; outer * inner];
        let mut lse = vec![0.0f64; outer * inner];
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| self.data[(o * n + k) * inner + i] as f64;
                let max = (0..n).map(at).fold(f64::NEG_INFINITY, f64::max);
                let l = if max == f64::NEG_INFINITY || max.is_nan() {
                    max
                } else if max == f64::INFINITY {
                    f64::INFINITY
                } else {
                    max + (0..n).map(|k| (at(k) - max).exp()).sum::<f64>().ln()
                };
                lse[o * inner + i] = l;
                out[o * inner + i] = l as f32;
            }
        }
        let x = self.data.clone();
        Ok(Tensor::constant(self.reduced_shape(d, keepdim), Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; outer * n * inner];
            for o in 0..outer {
                for i in 0..inner {
                    let l = lse[o * inner + i];
                    for k in 0..n {
                        let at = (o * n + k) * inner + i;
                        let p = if l.is_finite() { (x[at] as f64 - l).exp() } else { 0.0 };
                        gx[at] = (g[o * inner + i] as f64 * p) as f32;
                    }
                }
            }
            vec![Some(gx)]
        }))
    }

    /// Largest element, as a one-element tensor.
    pub fn max_all(&self) -> Result<Tensor> {
        self.reshape(&[self.len()])?.extreme_dim(0, false, true)
    }

    /// Smallest element, as a one-element tensor.
    pub fn min_all(&self) -> Result<Tensor> {
        self.reshape(&[self.len()])?.extreme_dim(0, false, false)
    }

    fn softmax_impl(&self, dim: i64, log: bool) -> Result<Tensor> {
        let op = if log { "log_softmax" } else { "softmax" };
        let d = self.resolve_dim(op, dim)?;
        if self.is_empty() {
            // nothing to normalize (and no positions to walk: the other dims may be huge)
            return Ok(Tensor::constant(self.shape.clone(), Rc::new(Vec::new())).record(&[self], |_, _| vec![Some(Vec::new())]));
        }
        let (outer, n, inner) = self.around(op, d)?;
        let mut out = vec![0.0; self.len()];
        for o in 0..outer {
            for i in 0..inner {
                let idx = |k: usize| (o * n + k) * inner + i;
                let max = (0..n).map(|k| self.data[idx(k)]).fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = (0..n).map(|k| ((self.data[idx(k)] - max) as f64).exp()).sum();
                let lse = max as f64 + sum.ln();
                for k in 0..n {
                    let l = self.data[idx(k)] as f64 - lse;
                    out[idx(k)] = if log { l as f32 } else { l.exp() as f32 };
                }
            }
        }
        let out = Rc::new(out);
        let y = out.clone();
        Ok(Tensor::constant(self.shape.clone(), out).record(&[self], move |g, _| {
            let mut gx = vec![0.0; y.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let idx = |k: usize| (o * n + k) * inner + i;
                    if log {
                        // d/dx log_softmax: g - softmax * sum(g)
                        let gs = (0..n).map(|k| g[idx(k)] as f64).sum::<f64>() as f32;
                        (0..n).for_each(|k| gx[idx(k)] = g[idx(k)] - y[idx(k)].exp() * gs);
                    } else {
                        // d/dx softmax: y * (g - sum(g * y))
                        let dot = (0..n).map(|k| g[idx(k)] as f64 * y[idx(k)] as f64).sum::<f64>() as f32;
                        (0..n).for_each(|k| gx[idx(k)] = y[idx(k)] * (g[idx(k)] - dot));
                    }
                }
            }
            vec![Some(gx)]
        }))
    }

    /// Softmax along `dim` (computed in f64).
    pub fn softmax(&self, dim: i64) -> Result<Tensor> {
        self.softmax_impl(dim, false)
    }

    /// Log-softmax along `dim` (computed in f64).
    pub fn log_softmax(&self, dim: i64) -> Result<Tensor> {
        self.softmax_impl(dim, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::check;

    #[test]
    fn reductions_values_and_gradients() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        assert_eq!(x.sum_dim(0, false).unwrap().data(), &[5.0, 7.0, 9.0]);
        assert_eq!(x.mean_dim(-1, true).unwrap().shape(), &[2, 1]);
        assert_eq!(x.extreme_dim(1, false, true).unwrap().data(), &[3.0, 6.0]);
        assert_eq!(x.extreme_dim(0, false, false).unwrap().data(), &[1.0, 2.0, 3.0]);
        let v = vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4, 0.9, 1.4];
        for dim in [0, 1, 2, -1] {
            check(&[(v.clone(), vec![2, 2, 2])], |t| t[0].sum_dim(dim, false));
            check(&[(v.clone(), vec![2, 2, 2])], |t| t[0].mean_dim(dim, true));
            check(&[(v.clone(), vec![2, 2, 2])], |t| t[0].extreme_dim(dim, false, true));
            check(&[(v.clone(), vec![2, 2, 2])], |t| t[0].softmax(dim));
            check(&[(v.clone(), vec![2, 2, 2])], |t| t[0].log_softmax(dim));
        }
        check(&[(v.clone(), vec![2, 4])], |t| t[0].mean());
        for dim in [0, 1, -1] {
            check(&[(v.clone(), vec![2, 4])], |t| t[0].logsumexp(dim, false));
        }
        check(&[(v, vec![2, 4])], |t| t[0].max_all());
    }

    #[test]
    fn out_of_range_dims_name_the_shape() {
        let e = Tensor::zeros(&[64, 10]).log_softmax(2).unwrap_err().to_string();
        assert_eq!(e, "log_softmax: dim 2 is out of range for a tensor of shape [64, 10]");
        assert!(Tensor::zeros(&[3]).sum_dim(-2, false).is_err());
    }

    // torch.logsumexp(torch.tensor([[1e4, 1e4 - 1, -inf], [-inf, -inf, -inf]], dtype=torch.float64), 1)
    //   = [10000.313261687518, -inf]
    #[test]
    fn logsumexp_is_stable_and_masks_minus_infinity() {
        let x = Tensor::from_vec(vec![1e4, 1e4 - 1.0, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY], &[2, 3])
            .unwrap();
        let l = x.logsumexp(1, false).unwrap();
        assert!((l.data()[0] as f64 - 10000.313261687518).abs() < 1e-3, "{:?}", l.data());
        assert_eq!(l.data()[1], f32::NEG_INFINITY);
        let big = Tensor::from_vec(vec![1e30, 0.0, -1e30], &[3]).unwrap();
        assert_eq!(big.logsumexp(0, false).unwrap().data(), &[1e30]);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let x = Tensor::from_vec(vec![1000.0, 1001.0, -5.0, 0.0], &[2, 2]).unwrap();
        let s = x.softmax(1).unwrap();
        assert!((s.data()[0] + s.data()[1] - 1.0).abs() < 1e-6);
        assert!(s.data().iter().all(|v| v.is_finite()));
    }
}
