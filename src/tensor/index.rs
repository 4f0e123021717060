//! Indexing ops: one-hot encoding, picking one entry per row by label, transposing two dims.

use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use std::rc::Rc;

impl Tensor {
    /// The values as class indices, each an integer in `0..classes`; `op` names the caller in errors.
    pub fn labels(&self, op: &'static str, classes: usize) -> Result<Vec<usize>> {
        self.data
            .iter()
            .map(|&v| {
                if v >= 0.0 && v.fract() == 0.0 && (v as usize) < classes {
                    Ok(v as usize)
                } else {
                    Err(Error::invalid(op, format!("label {v} is not an integer in 0..{classes}")))
                }
            })
            .collect()
    }

    /// `[n] -> [n, classes]` of 0/1 (no gradient).
    pub fn one_hot(labels: &Tensor, classes: usize) -> Result<Tensor> {
        expect_rank("one_hot", labels, 1)?;
        let ys = labels.labels("one_hot", classes)?;
        super::limits::numel("one_hot", &[ys.len(), classes])?;
        let mut out = vec![0.0; ys.len() * classes];
        ys.iter().enumerate().for_each(|(i, &y)| out[i * classes + y] = 1.0);
        Ok(Tensor::constant(vec![ys.len(), classes], Rc::new(out)))
    }

    /// `x[i, labels[i]]` for `x [n, c]` and `labels [n]`: `[n]`.
    pub fn pick(&self, labels: &Tensor) -> Result<Tensor> {
        expect_rank("pick", self, 2)?;
        let (n, c) = (self.shape[0], self.shape[1]);
        if labels.shape != [n] {
            return Err(Error::shape("pick", format!("labels [{n}] for a tensor of shape {:?}", self.shape), &labels.shape));
        }
        let ys = labels.labels("pick", c)?;
        let out = ys.iter().enumerate().map(|(i, &y)| self.data[i * c + y]).collect();
        Ok(Tensor::constant(vec![n], Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; n * c];
            ys.iter().enumerate().for_each(|(i, &y)| gx[i * c + y] = g[i]);
            vec![Some(gx)]
        }))
    }

    /// Swaps dims `a` and `b` (a copy).
    pub fn transpose(&self, a: i64, b: i64) -> Result<Tensor> {
        let (a, b) = (self.resolve_dim("transpose", a)?, self.resolve_dim("transpose", b)?);
        let mut shape = self.shape.clone();
        shape.swap(a, b);
        let rank = shape.len();
        let strides_in: Vec<usize> = (0..rank).map(|d| self.shape[d + 1..].iter().product()).collect();
        let mut perm_strides = strides_in.clone();
        perm_strides.swap(a, b);
        // map[j] = source index of output element j
        let mut map = Vec::with_capacity(self.len());
        let mut idx = vec![0usize; rank];
        for _ in 0..self.len() {
            map.push(idx.iter().zip(&perm_strides).map(|(i, s)| i * s).sum::<usize>());
            for d in (0..rank).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        let out = map.iter().map(|&i| self.data[i]).collect();
        let n = self.len();
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; n];
            g.iter().zip(&map).for_each(|(g, &i)| gx[i] = *g);
            vec![Some(gx)]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::check;

    #[test]
    fn one_hot_pick_transpose() {
        let y = Tensor::from_vec(vec![2.0, 0.0], &[2]).unwrap();
        assert_eq!(Tensor::one_hot(&y, 3).unwrap().data(), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        assert_eq!(x.pick(&y).unwrap().data(), &[3.0, 4.0]);
        assert_eq!(x.transpose(0, 1).unwrap().data(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        check(&[(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], vec![2, 3])], |v| v[0].pick(&y));
        check(&[(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], vec![2, 2, 2])], |v| v[0].transpose(0, 2));
        assert!(x.pick(&Tensor::from_vec(vec![3.0, 0.0], &[2]).unwrap()).unwrap_err().to_string().contains("label 3"));
        assert!(Tensor::one_hot(&Tensor::from_vec(vec![0.5], &[1]).unwrap(), 2).is_err());
    }
}
