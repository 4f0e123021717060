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

    /// (outer, size of dim, inner) of the layout around `dim`.
    fn around(&self, dim: usize) -> (usize, usize, usize) {
        (self.shape[..dim].iter().product(), self.shape[dim], self.shape[dim + 1..].iter().product())
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

    /// Sum along `dim`.
    pub fn sum_dim(&self, dim: i64, keepdim: bool) -> Result<Tensor> {
        let d = self.resolve_dim("sum", dim)?;
        let (outer, n, inner) = self.around(d);
        let mut out = vec![0.0; outer * inner];
        for o in 0..outer {
            for k in 0..n {
                for i in 0..inner {
                    out[o * inner + i] += self.data[(o * n + k) * inner + i];
                }
            }
        }
        Ok(Tensor::constant(self.reduced_shape(d, keepdim), Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; outer * n * inner];
            for o in 0..outer {
                for k in 0..n {
                    gx[(o * n + k) * inner..(o * n + k + 1) * inner].copy_from_slice(&g[o * inner..(o + 1) * inner]);
                }
            }
            vec![Some(gx)]
        }))
    }

    /// Mean along `dim`.
    pub fn mean_dim(&self, dim: i64, keepdim: bool) -> Result<Tensor> {
        let d = self.resolve_dim("mean", dim)?;
        if self.shape[d] == 0 {
            return Err(Error::invalid("mean", format!("dim {dim} of {:?} is empty", self.shape)));
        }
        Ok(self.sum_dim(dim, keepdim)?.scale(1.0 / self.shape[d] as f32))
    }

    /// Mean of all elements, as a one-element tensor.
    pub fn mean(&self) -> Result<Tensor> {
        if self.is_empty() {
            return Err(Error::invalid("mean", "the tensor is empty"));
        }
        Ok(self.sum().scale(1.0 / self.len() as f32))
    }

    /// Max (or min with `largest = false`) along `dim`; the gradient goes to the first extremum.
    pub fn extreme_dim(&self, dim: i64, keepdim: bool, largest: bool) -> Result<Tensor> {
        let op = if largest { "max" } else { "min" };
        let d = self.resolve_dim(op, dim)?;
        let (outer, n, inner) = self.around(d);
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
                    if (largest && v > b) || (!largest && v < b) {
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

    /// Largest element, as a one-element tensor.
    pub fn max_all(&self) -> Result<Tensor> {
        self.reshape(&[self.len()])?.extreme_dim(0, false, true)
    }

    /// Smallest element, as a one-element tensor.
    pub fn min_all(&self) -> Result<Tensor> {
        self.reshape(&[self.len()])?.extreme_dim(0, false, false)
    }

    fn softmax_impl(&self, dim: i64, log: bool) -> Result<Tensor> {
        let d = self.resolve_dim(if log { "log_softmax" } else { "softmax" }, dim)?;
        let (outer, n, inner) = self.around(d);
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
                        let gs: f32 = (0..n).map(|k| g[idx(k)]).sum();
                        (0..n).for_each(|k| gx[idx(k)] = g[idx(k)] - y[idx(k)].exp() * gs);
                    } else {
                        // d/dx softmax: y * (g - sum(g * y))
                        let dot: f32 = (0..n).map(|k| g[idx(k)] * y[idx(k)]).sum();
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
        check(&[(v, vec![2, 4])], |t| t[0].max_all());
    }

    #[test]
    fn out_of_range_dims_name_the_shape() {
        let e = Tensor::zeros(&[64, 10]).log_softmax(2).unwrap_err().to_string();
        assert_eq!(e, "log_softmax: dim 2 is out of range for a tensor of shape [64, 10]");
        assert!(Tensor::zeros(&[3]).sum_dim(-2, false).is_err());
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let x = Tensor::from_vec(vec![1000.0, 1001.0, -5.0, 0.0], &[2, 2]).unwrap();
        let s = x.softmax(1).unwrap();
        assert!((s.data()[0] + s.data()[1] - 1.0).abs() < 1e-6);
        assert!(s.data().iter().all(|v| v.is_finite()));
    }
}
