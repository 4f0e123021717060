//! Statistics and divergences with PyTorch's semantics, computed in f64 and rounded once:
//! `var`, `std` (with Bessel's correction when `unbiased`), `norm` (p = 1, 2, inf) and
//! `kl_div` (torch.nn.functional.kl_div, log-probabilities against probabilities).

use super::unary::sign;
use super::Tensor;
use crate::error::{Error, Result};
use std::rc::Rc;

/// How `kl_div` reduces its pointwise terms (torch's `reduction`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reduction {
    /// Sum over everything divided by the batch size (dim 0): the KL divergence per sample,
    /// the mathematically right one and what distillation losses use.
    BatchMean,
    Sum,
    /// The mean over all elements (torch's default, which divides by the classes too).
    Mean,
    /// The pointwise terms, unreduced.
    None,
}

impl std::str::FromStr for Reduction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "batchmean" => Reduction::BatchMean,
            "sum" => Reduction::Sum,
            "mean" => Reduction::Mean,
            "none" => Reduction::None,
            other => {
                return Err(Error::invalid(
                    "kl_div",
                    format!("reduction '{other}' is unknown: use \"batchmean\", \"sum\", \"mean\" or \"none\""),
                ))
            }
        })
    }
}

impl Tensor {
    /// Variance along `dim` (all elements when `None`), divided by `n - 1` when `unbiased`
    /// (torch.var; its default) and by `n` otherwise. A single element with `unbiased` gives
    /// NaN, as in torch. Gradient `2 (x - mean) / (n - u)`.
    pub fn var(&self, dim: Option<i64>, unbiased: bool, keepdim: bool) -> Result<Tensor> {
        self.moment("var", dim, unbiased, keepdim, false)
    }

    /// Standard deviation: the square root of [`Tensor::var`] (torch.std).
    pub fn std(&self, dim: Option<i64>, unbiased: bool, keepdim: bool) -> Result<Tensor> {
        self.moment("std", dim, unbiased, keepdim, true)
    }

    fn moment(&self, op: &'static str, dim: Option<i64>, unbiased: bool, keepdim: bool, root: bool) -> Result<Tensor> {
        let (lanes, shape) = self.lanes_or_all(op, dim, keepdim)?;
        let mut out = Vec::with_capacity(lanes.len());
        let mut means = Vec::with_capacity(lanes.len());
        for lane in &lanes {
            let n = lane.len() as f64;
            let mean = lane.iter().map(|&i| self.data[i] as f64).sum::<f64>() / n;
            let ss: f64 = lane.iter().map(|&i| (self.data[i] as f64 - mean).powi(2)).sum();
            let v = ss / (n - unbiased as u8 as f64);
            out.push(if root { v.sqrt() } else { v });
            means.push(mean);
        }
        let values: Vec<f32> = out.iter().map(|v| *v as f32).collect();
        let (data, len) = (self.data.clone(), self.len());
        Ok(Tensor::constant(shape, Rc::new(values)).record(&[self], move |g, _| {
            let mut gx = vec![0.0f32; len];
            for (k, lane) in lanes.iter().enumerate() {
                let denom = lane.len() as f64 - unbiased as u8 as f64;
                // d var / dx = 2 (x - mean) / denom; d std / dx = that / (2 std)
                let scale = if root { 1.0 / (denom * out[k]) } else { 2.0 / denom };
                for &i in lane {
                    let v = g[k] as f64 * (data[i] as f64 - means[k]) * scale;
                    gx[i] = if root && out[k] == 0.0 { 0.0 } else { v as f32 };
                }
            }
            vec![Some(gx)]
        }))
    }

    /// The flat offsets of each lane along `dim`, or of all elements as one lane, and the
    /// reduced shape.
    fn lanes_or_all(&self, op: &'static str, dim: Option<i64>, keepdim: bool) -> Result<(Vec<Vec<usize>>, Vec<usize>)> {
        match dim {
            None => {
                if self.is_empty() {
                    return Err(Error::invalid(op, format!("a tensor of shape {:?} has no elements", self.shape)));
                }
                let shape = if keepdim { vec![1; self.shape.len()] } else { vec![1] };
                Ok((vec![(0..self.len()).collect()], shape))
            }
            Some(dim) => {
                let d = self.resolve_dim(op, dim)?;
                if self.shape[d] == 0 {
                    return Err(Error::invalid(op, format!("dim {dim} of {:?} is empty", self.shape)));
                }
                let outer: usize = self.shape[..d].iter().product();
                let inner: usize = self.shape[d + 1..].iter().product();
                let n = self.shape[d];
                let lanes = (0..outer).flat_map(|o| (0..inner).map(move |i| (0..n).map(|k| (o * n + k) * inner + i).collect())).collect();
                let mut shape = self.shape.clone();
                if keepdim {
                    shape[d] = 1;
                } else {
                    shape.remove(d);
                }
                Ok((lanes, shape))
            }
        }
    }

    /// The p-norm along `dim` (all elements when `None`): p = 1 (sum of absolute values),
    /// 2 (Euclidean, with gradient 0 at the zero vector as torch.linalg.vector_norm) or
    /// infinity (largest absolute value) (torch.linalg.vector_norm).
    pub fn norm(&self, p: f64, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
        if !(p == 1.0 || p == 2.0 || p == f64::INFINITY) {
            return Err(Error::invalid("norm", format!("p = {p} is not supported: use 1, 2 or inf")));
        }
        let (lanes, shape) = self.lanes_or_all("norm", dim, keepdim)?;
        let norms: Vec<f64> = lanes
            .iter()
            .map(|lane| {
                let abs = lane.iter().map(|&i| (self.data[i] as f64).abs());
                if p == 1.0 {
                    abs.sum()
                } else if p == 2.0 {
                    abs.map(|a| a * a).sum::<f64>().sqrt()
                } else {
                    abs.fold(0.0f64, |m: f64, a: f64| if a.is_nan() || m.is_nan() { f64::NAN } else { m.max(a) })
                }
            })
            .collect();
        let values: Vec<f32> = norms.iter().map(|v| *v as f32).collect();
        let (data, len) = (self.data.clone(), self.len());
        Ok(Tensor::constant(shape, Rc::new(values)).record(&[self], move |g, _| {
            let mut gx = vec![0.0f32; len];
            for (k, lane) in lanes.iter().enumerate() {
                if p == 1.0 {
                    lane.iter().for_each(|&i| gx[i] = g[k] * sign(data[i]));
                } else if p == 2.0 {
                    if norms[k] > 0.0 {
                        lane.iter().for_each(|&i| gx[i] = (g[k] as f64 * data[i] as f64 / norms[k]) as f32);
                    }
                } else {
                    // the largest absolute values share the gradient, as torch's amax does
                    let at: Vec<usize> = lane.iter().copied().filter(|&i| (data[i] as f64).abs() == norms[k]).collect();
                    at.iter().for_each(|&i| gx[i] = g[k] * sign(data[i]) / at.len() as f32);
                }
            }
            vec![Some(gx)]
        }))
    }

    /// KL divergence `sum q (log q - log_p)` of the distribution `q` (probabilities, the
    /// target) from `log_p` (log-probabilities, the input), with `0 log 0 = 0`
    /// (torch.nn.functional.kl_div(log_p, q, reduction)). `BatchMean` divides the sum by the
    /// batch size, `log_p.shape[0]`. Differentiable in both.
    pub fn kl_div(log_p: &Tensor, q: &Tensor, reduction: Reduction) -> Result<Tensor> {
        if log_p.shape != q.shape {
            return Err(Error::shape("kl_div", format!("a target of the input's shape {:?}", log_p.shape), &q.shape));
        }
        let term = |lp: f32, q: f32| if q > 0.0 { q as f64 * ((q as f64).ln() - lp as f64) } else { 0.0 };
        let terms: Vec<f64> = log_p.data.iter().zip(q.data.iter()).map(|(a, b)| term(*a, *b)).collect();
        let (shape, values, divisor) = match reduction {
            Reduction::None => (log_p.shape.clone(), terms.iter().map(|t| *t as f32).collect(), 1.0),
            r => {
                let divisor = match r {
                    Reduction::BatchMean => *log_p.shape.first().unwrap_or(&1) as f64,
                    Reduction::Mean => log_p.len() as f64,
                    _ => 1.0,
                };
                (vec![1], vec![(terms.iter().sum::<f64>() / divisor) as f32], divisor)
            }
        };
        let (lp, qd) = (log_p.data.clone(), q.data.clone());
        let each = reduction == Reduction::None;
        Ok(Tensor::constant(shape, Rc::new(values)).record(&[log_p, q], move |g, _| {
            let up = |i: usize| (if each { g[i] } else { g[0] }) as f64 / divisor;
            let g_lp = (0..lp.len()).map(|i| (-(qd[i] as f64) * up(i)) as f32).collect();
            let g_q = (0..qd.len())
                .map(|i| if qd[i] > 0.0 { (((qd[i] as f64).ln() - lp[i] as f64 + 1.0) * up(i)) as f32 } else { 0.0 })
                .collect();
            vec![Some(g_lp), Some(g_q)]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::check;

    fn t(v: &[f32], s: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), s).unwrap()
    }

    /// float64 references, computed here from the same f32 inputs.
    fn var64(x: &[f32], unbiased: bool) -> f64 {
        let n = x.len() as f64;
        let m = x.iter().map(|v| *v as f64).sum::<f64>() / n;
        x.iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>() / (n - unbiased as u8 as f64)
    }

    #[test]
    fn moments_and_norms_match_float64() {
        let v = [1.5f32, -2.25, 3.0, 0.125, 7.75, -1.0];
        let x = t(&v, &[2, 3]);
        let close = |a: f32, b: f64| assert!((a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        close(x.var(None, true, false).unwrap().data()[0], var64(&v, true));
        close(x.var(None, false, false).unwrap().data()[0], var64(&v, false));
        close(x.std(None, true, false).unwrap().data()[0], var64(&v, true).sqrt());
        let rows = x.var(Some(1), true, false).unwrap();
        close(rows.data()[1], var64(&v[3..], true));
        assert_eq!(x.std(Some(0), false, true).unwrap().shape(), &[1, 3]);
        assert!(t(&[1.0], &[1]).var(None, true, false).unwrap().data()[0].is_nan());
        close(x.norm(1.0, None, false).unwrap().data()[0], v.iter().map(|a| (*a as f64).abs()).sum());
        close(x.norm(2.0, None, false).unwrap().data()[0], v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt());
        close(x.norm(f64::INFINITY, Some(1), false).unwrap().data()[1], 7.75);
        assert!(x.norm(3.0, None, false).is_err());
        let g = [(vec![0.3, -0.2, 0.9, 0.1, 0.5, -0.7], vec![2, 3])];
        check(&g, |v| v[0].var(Some(1), true, false));
        check(&g, |v| v[0].std(None, false, false));
        check(&g, |v| v[0].norm(1.0, Some(0), false));
        check(&g, |v| v[0].norm(2.0, None, false));
        check(&g, |v| v[0].norm(f64::INFINITY, Some(1), true));
        // the zero vector: gradient 0, not NaN
        let z = Tensor::variable(vec![0.0, 0.0], &[2]).unwrap();
        let grads = z.norm(2.0, None, false).unwrap().backward().unwrap();
        assert_eq!(grads.get(z.leaf_key().unwrap()).unwrap(), &[0.0, 0.0]);
    }

    #[test]
    fn kl_div_is_torchs_with_batchmean() {
        // F.kl_div(log_p, q, reduction='batchmean') for log_p = log([[.2, .8], [.5, .5]]), q = [[.1, .9], [0, 1]]
        let p = [0.2f64, 0.8, 0.5, 0.5];
        let q = [0.1f64, 0.9, 0.0, 1.0];
        let lp: Vec<f32> = p.iter().map(|v| v.ln() as f32).collect();
        let qf: Vec<f32> = q.iter().map(|v| *v as f32).collect();
        let want: f64 =
            lp.iter().zip(&qf).filter(|(_, q)| **q > 0.0).map(|(l, q)| *q as f64 * ((*q as f64).ln() - *l as f64)).sum::<f64>() / 2.0;
        let got = Tensor::kl_div(&t(&lp, &[2, 2]), &t(&qf, &[2, 2]), Reduction::BatchMean).unwrap();
        assert!((got.data()[0] as f64 - want).abs() < 1e-7, "{} vs {want}", got.data()[0]);
        let none = Tensor::kl_div(&t(&lp, &[2, 2]), &t(&qf, &[2, 2]), Reduction::None).unwrap();
        assert_eq!(none.data()[2], 0.0);
        assert!("avg".parse::<Reduction>().is_err());
        check(&[(vec![-1.2, -0.4, -0.7, -0.7], vec![2, 2]), (vec![0.1, 0.9, 0.3, 0.7], vec![2, 2])], |v| {
            Tensor::kl_div(&v[0], &v[1], Reduction::BatchMean)
        });
    }
}
