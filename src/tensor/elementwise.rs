//! Element-wise ops: ReLU, residual add, scaling, dropout.

use super::Tensor;
use crate::error::{Error, Result};
use crate::rng::Rng;
use rayon::prelude::*;
use std::rc::Rc;

/// Below this many elements, element-wise maps stay on one thread.
const PARALLEL_FROM: usize = 1 << 18;

/// `f(a[i], b[i])` for every `i`, on all cores for large inputs.
pub(crate) fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    if a.len() < PARALLEL_FROM {
        return a.iter().zip(b).map(|(a, b)| f(*a, *b)).collect();
    }
    a.par_iter().zip(b).with_min_len(PARALLEL_FROM / 4).map(|(a, b)| f(*a, *b)).collect()
}

impl Tensor {
    fn unary(&self, f: impl Fn(f32) -> f32) -> Vec<f32> {
        self.data.iter().map(|&x| f(x)).collect()
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Tensor {
        // NaN stays NaN, as in torch.relu (f32::max would turn it into 0 and hide it): one
        // compare and a mask, no slower than max
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let out = Rc::new(zip_map(&self.data, &self.data, |x, _| if !(x <= 0.0) { x } else { 0.0 }));
        let y = out.clone();
        Tensor::constant(self.shape.clone(), out)
            .record(&[self], move |g, _| vec![Some(zip_map(g, &y, |g, y| if y > 0.0 { g } else { 0.0 }))])
    }

    /// `max(self + rhs, 0)` for tensors of one shape (a residual block's sum and ReLU in one
    /// pass, the same values and gradients as the two ops).
    pub fn add_relu(&self, rhs: &Tensor) -> Result<Tensor> {
        if self.shape != rhs.shape {
            return Err(Error::shape("add_relu", format!("{:?} (both operands one shape)", self.shape), &rhs.shape));
        }
        let out = Rc::new(zip_map(&self.data, &rhs.data, |a, b| (a + b).max(0.0)));
        let y = out.clone();
        Ok(Tensor::constant(self.shape.clone(), out).record(&[self, rhs], move |g, needs| {
            let g = zip_map(g, &y, |g, y| if y > 0.0 { g } else { 0.0 });
            match needs {
                [true, true] => vec![Some(g.clone()), Some(g)],
                _ => needs.iter().map(|n| n.then(|| g.clone())).collect(),
            }
        }))
    }

    /// `x * factor`.
    pub fn scale(&self, factor: f32) -> Tensor {
        Tensor::constant(self.shape.clone(), Rc::new(self.unary(|x| x * factor)))
            .record(&[self], move |g, _| vec![Some(g.iter().map(|g| g * factor).collect())])
    }

    /// Sum of all elements, as a one-element tensor (accumulated in f64, rounded once).
    pub fn sum(&self) -> Tensor {
        let total = self.data.iter().map(|&v| v as f64).sum::<f64>() as f32;
        let n = self.len();
        Tensor::constant(vec![1], Rc::new(vec![total])).record(&[self], move |g, _| vec![Some(vec![g[0]; n])])
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales the rest by `1/(1-p)`.
    pub fn dropout(&self, p: f32, rng: &mut Rng) -> Result<Tensor> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid("dropout", format!("probability {p} must be in [0, 1)")));
        }
        if p == 0.0 {
            return Ok(self.clone());
        }
        let keep = 1.0 / (1.0 - p);
        let mask: Vec<f32> = (0..self.len()).map(|_| if rng.uniform() < p { 0.0 } else { keep }).collect();
        let out: Vec<f32> = self.data.iter().zip(&mask).map(|(x, m)| x * m).collect();
        Ok(Tensor::constant(self.shape.clone(), Rc::new(out))
            .record(&[self], move |g, _| vec![Some(g.iter().zip(&mask).map(|(g, m)| g * m).collect())]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::{check, check_fused};

    #[test]
    fn relu_add_scale_gradients() {
        let x = vec![0.5, -1.2, 2.0, -0.3, 0.9, 1.7];
        let y = vec![0.1, 0.2, -0.4, 0.8, -1.1, 0.6];
        check(&[(x.clone(), vec![2, 3]), (y.clone(), vec![2, 3])], |v| Ok(v[0].relu().add(&v[1].scale(2.5))?.relu()));
    }

    #[test]
    fn add_relu_equals_add_then_relu() {
        let x = vec![0.5, -1.2, 2.0, -0.3, 0.9, 1.7];
        let y = vec![0.1, 0.2, -0.4, 0.8, -1.1, 0.6];
        let inputs = [(x, vec![2, 3]), (y, vec![2, 3])];
        check_fused(&inputs, |v| v[0].add_relu(&v[1]), |v| Ok(v[0].add(&v[1])?.relu()));
        let e = Tensor::zeros(&[2, 3]).add_relu(&Tensor::zeros(&[3])).unwrap_err().to_string();
        assert!(e.contains("add_relu") && e.contains("[2, 3]") && e.contains("[3]"), "{e}");
    }

    #[test]
    fn dropout_keeps_expectation_and_routes_gradient() {
        let mut rng = Rng::new(5);
        let x = Tensor::variable(vec![1.0; 10_000], &[10_000]).unwrap();
        let y = x.dropout(0.25, &mut rng).unwrap();
        let mean = y.data().iter().sum::<f32>() / 10_000.0;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        let g = y.sum().backward().unwrap();
        assert_eq!(g.get(x.leaf_key().unwrap()).unwrap(), y.data());
        assert!(x.dropout(1.0, &mut rng).is_err());
    }

    #[test]
    fn add_rejects_mismatched_shapes() {
        let a = Tensor::zeros(&[2, 3]);
        let b = Tensor::zeros(&[3, 2]);
        let e = a.add(&b).unwrap_err().to_string();
        assert!(e.contains("add") && e.contains("[2, 3]") && e.contains("[3, 2]"), "{e}");
    }
}
