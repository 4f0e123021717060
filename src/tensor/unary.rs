//! Differentiable element-wise functions: exp, expm1, log, log1p, sqrt, abs, neg, clamp, pow, sigmoid, tanh.

use super::Tensor;
use crate::error::{Error, Result};
use std::rc::Rc;

/// -1, 0 or 1: the gradient of `|x|` (0 at 0, as torch's).
pub(crate) fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Tensor {
    /// Applies `f` with derivative `df(x, y)` (given the input and the output).
    fn map_with_grad(&self, f: impl Fn(f32) -> f32, df: impl Fn(f32, f32) -> f32 + 'static) -> Tensor {
        let out: Vec<f32> = self.data.iter().map(|&x| f(x)).collect();
        let out = Rc::new(out);
        let (x, y) = (self.data.clone(), out.clone());
        Tensor::constant(self.shape.clone(), out)
            .record(&[self], move |g, _| vec![Some(g.iter().zip(x.iter().zip(y.iter())).map(|(g, (x, y))| g * df(*x, *y)).collect())])
    }

    pub fn exp(&self) -> Tensor {
        self.map_with_grad(f32::exp, |_, y| y)
    }
    /// `exp(x) - 1`, exact near 0 where the subtraction would cancel (`torch.expm1`).
    pub fn expm1(&self) -> Tensor {
        self.map_with_grad(f32::exp_m1, |_, y| y + 1.0)
    }
    /// `log(1 + x)`, exact near 0 (`torch.log1p`).
    pub fn log1p(&self) -> Tensor {
        self.map_with_grad(f32::ln_1p, |x, _| 1.0 / (1.0 + x))
    }
    /// Natural log (`-inf` at 0, NaN below).
    pub fn log(&self) -> Tensor {
        self.map_with_grad(f32::ln, |x, _| 1.0 / x)
    }
    pub fn sqrt(&self) -> Tensor {
        self.map_with_grad(f32::sqrt, |_, y| 0.5 / y)
    }
    pub fn abs(&self) -> Tensor {
        self.map_with_grad(f32::abs, |x, _| sign(x))
    }
    pub fn neg(&self) -> Tensor {
        self.map_with_grad(|x| -x, |_, _| -1.0)
    }
    pub fn sigmoid(&self) -> Tensor {
        self.map_with_grad(|x| 1.0 / (1.0 + (-x).exp()), |_, y| y * (1.0 - y))
    }
    pub fn tanh(&self) -> Tensor {
        self.map_with_grad(f32::tanh, |_, y| 1.0 - y * y)
    }
    /// `x^p` for a scalar power.
    pub fn powf(&self, p: f32) -> Tensor {
        self.map_with_grad(move |x| x.powf(p), move |x, _| p * x.powf(p - 1.0))
    }
    /// Limits values to `[lo, hi]`; the gradient is zero where a bound is active.
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor> {
        if lo > hi || lo.is_nan() || hi.is_nan() {
            return Err(Error::invalid("clamp", format!("lower bound {lo} must not exceed upper bound {hi}")));
        }
        Ok(self.map_with_grad(move |x| x.clamp(lo, hi), move |x, _| if x < lo || x > hi { 0.0 } else { 1.0 }))
    }
}

#[cfg(test)]
mod tests {
    use crate::tensor::gradcheck::check;

    #[test]
    fn unary_gradients() {
        let x = vec![0.3, 1.2, 2.0, 0.7, 1.6, 0.45];
        let s = vec![2, 3];
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].exp()));
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].log()));
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].expm1()));
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].log1p()));
        // exact near 0 where exp(x) - 1 cancels: expm1(1e-7) = 1.00000005e-7
        let tiny = crate::tensor::Tensor::from_vec(vec![1e-7], &[1]).unwrap();
        assert!((tiny.expm1().data()[0] as f64 - 1.00000005e-7).abs() < 1e-14);
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].sqrt()));
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].neg().abs()));
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].sigmoid().tanh()));
        check(&[(x.clone(), s.clone())], |v| Ok(v[0].powf(1.5)));
        check(&[(x.clone(), s.clone())], |v| v[0].clamp(0.5, 1.5));
        assert!(crate::Tensor::zeros(&[1]).clamp(1.0, 0.0).is_err());
    }
}
