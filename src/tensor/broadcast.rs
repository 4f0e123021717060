//! Binary element-wise ops with NumPy broadcasting: `+ - * /`, maximum, minimum, comparisons,
//! `broadcast_to` and `where_`. Backward passes sum gradients over the broadcast dims.

use super::Tensor;
use crate::error::{Error, Result};
use std::rc::Rc;

/// The broadcast of two shapes (right-aligned; each dim equal or 1), if they are compatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= rank { s[i + s.len() - rank] } else { 1 };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// For each flat index of `out`, the flat index into a tensor of shape `from` broadcast to it.
fn source_indices(from: &[usize], out: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    if from == out {
        return (0..n).collect();
    }
    let rank = out.len();
    let offset = rank - from.len();
    // strides of `from` aligned to `out`, 0 on broadcast dims
    let mut strides = vec![0usize; rank];
    let mut s = 1;
    for i in (0..from.len()).rev() {
        strides[i + offset] = if from[i] == 1 { 0 } else { s };
        s *= from[i];
    }
    let mut idx = vec![0usize; rank];
    let mut result = Vec::with_capacity(n);
    let mut src = 0usize;
    for _ in 0..n {
        result.push(src);
        for d in (0..rank).rev() {
            idx[d] += 1;
            src += strides[d];
            if idx[d] < out[d] {
                break;
            }
            src -= strides[d] * idx[d];
            idx[d] = 0;
        }
    }
    result
}

/// Sums `grad` (shaped like the broadcast output) back to a tensor of shape `to`, in f64.
fn reduce_to(grad: &[f32], map: &[usize], to_len: usize) -> Vec<f32> {
    let mut out = vec![0.0f64; to_len];
    grad.iter().zip(map).for_each(|(g, &i)| out[i] += *g as f64);
    out.into_iter().map(|v| v as f32).collect()
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Max => "maximum",
            Op::Min => "minimum",
        }
    }
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
            // NaN propagates, as in torch.maximum / torch.minimum (f32::max would drop it)
            Op::Max if a.is_nan() || b.is_nan() => f32::NAN,
            Op::Min if a.is_nan() || b.is_nan() => f32::NAN,
            Op::Max => a.max(b),
            Op::Min => a.min(b),
        }
    }
    /// (d out / d a, d out / d b)
    fn partials(self, a: f32, b: f32) -> (f32, f32) {
        match self {
            Op::Add => (1.0, 1.0),
            Op::Sub => (1.0, -1.0),
            Op::Mul => (b, a),
            Op::Div => (1.0 / b, -a / (b * b)),
            Op::Max => {
                if a >= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            Op::Min => {
                if a <= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
        }
    }
}

fn out_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<Vec<usize>> {
    let shape = broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| Error::shape(op, format!("shapes that broadcast with {:?}", a.shape), &b.shape))?;
    super::limits::numel(op, &shape)?;
    Ok(shape)
}

impl Tensor {
    fn binary(&self, rhs: &Tensor, op: Op) -> Result<Tensor> {
        if rhs.len() == 1 && rhs.shape.len() <= self.shape.len() {
            return Ok(self.with_scalar(rhs, op, false));
        }
        if self.len() == 1 && self.shape.len() <= rhs.shape.len() {
            return Ok(rhs.with_scalar(self, op, true));
        }
        let shape = out_shape(op.name(), self, rhs)?;
        let (ia, ib) = (source_indices(&self.shape, &shape), source_indices(&rhs.shape, &shape));
        let out: Vec<f32> = ia.iter().zip(&ib).map(|(&i, &j)| op.apply(self.data[i], rhs.data[j])).collect();
        let (a, b) = (self.data.clone(), rhs.data.clone());
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self, rhs], move |g, needs| {
            // gradients summed over the broadcast dims in f64
            let mut ga = needs[0].then(|| vec![0.0f64; a.len()]);
            let mut gb = needs[1].then(|| vec![0.0f64; b.len()]);
            for ((gv, &i), &j) in g.iter().zip(&ia).zip(&ib) {
                let (da, db) = op.partials(a[i], b[j]);
                if let Some(ga) = ga.as_mut() {
                    ga[i] += (gv * da) as f64;
                }
                if let Some(gb) = gb.as_mut() {
                    gb[j] += (gv * db) as f64;
                }
            }
            let round = |v: Option<Vec<f64>>| v.map(|v| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>());
            vec![round(ga), round(gb)]
        }))
    }

    /// `self op scalar` (or `scalar op self` when `swapped`) without index maps: the common
    /// case of a script writing `1.0 - mask` or `s / temperature`.
    fn with_scalar(&self, scalar: &Tensor, op: Op, swapped: bool) -> Tensor {
        let c = scalar.data[0];
        let f = |x: f32| if swapped { op.apply(c, x) } else { op.apply(x, c) };
        let out: Vec<f32> = self.data.iter().map(|&x| f(x)).collect();
        let x = self.data.clone();
        let (t, s) = if swapped { (scalar, self) } else { (self, scalar) };
        Tensor::constant(self.shape.clone(), Rc::new(out)).record(&[t, s], move |g, needs| {
            // partials w.r.t. (tensor element, scalar) for each element
            let parts = |i: usize| {
                let (da, db) = if swapped { op.partials(c, x[i]) } else { op.partials(x[i], c) };
                if swapped {
                    (db, da)
                } else {
                    (da, db)
                }
            };
            let (need_t, need_s) = if swapped { (needs[1], needs[0]) } else { (needs[0], needs[1]) };
            let gt = need_t.then(|| g.iter().enumerate().map(|(i, g)| g * parts(i).0).collect::<Vec<f32>>());
            let gs = need_s.then(|| vec![g.iter().enumerate().map(|(i, g)| (g * parts(i).1) as f64).sum::<f64>() as f32]);
            if swapped {
                vec![gs, gt]
            } else {
                vec![gt, gs]
            }
        })
    }

    /// `self + rhs`, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        if self.shape == rhs.shape {
            // the residual connection's fast path
            let out = super::elementwise::zip_map(&self.data, &rhs.data, |a, b| a + b);
            return Ok(Tensor::constant(self.shape.clone(), Rc::new(out))
                .record(&[self, rhs], |g, needs| needs.iter().map(|n| n.then(|| g.to_vec())).collect()));
        }
        self.binary(rhs, Op::Add)
    }
    /// `self - rhs`, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Op::Sub)
    }
    /// `self * rhs`, broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Op::Mul)
    }
    /// `self / rhs`, broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Op::Div)
    }
    /// Element-wise maximum, broadcasting (ties send the gradient to `self`).
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Op::Max)
    }
    /// Element-wise minimum, broadcasting.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Op::Min)
    }

    /// A 0/1 mask (no gradient) of `cmp(self, rhs)`, broadcasting.
    pub fn compare(&self, rhs: &Tensor, op: &'static str, cmp: fn(f32, f32) -> bool) -> Result<Tensor> {
        let shape = out_shape(op, self, rhs)?;
        let (ia, ib) = (source_indices(&self.shape, &shape), source_indices(&rhs.shape, &shape));
        let out = ia.iter().zip(&ib).map(|(&i, &j)| cmp(self.data[i], rhs.data[j]) as u8 as f32).collect();
        Ok(Tensor::constant(shape, Rc::new(out)))
    }

    /// The tensor repeated along broadcast dims to `shape`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if broadcast_shapes(&self.shape, shape).as_deref() != Some(shape) {
            return Err(Error::shape("broadcast_to", format!("a shape that broadcasts to {shape:?}"), &self.shape));
        }
        let map = source_indices(&self.shape, shape);
        let out = map.iter().map(|&i| self.data[i]).collect();
        let n = self.len();
        Ok(Tensor::constant(shape.to_vec(), Rc::new(out)).record(&[self], move |g, _| vec![Some(reduce_to(g, &map, n))]))
    }

    /// `mask ? a : b` element-wise (mask non-zero selects `a`), broadcasting all three.
    pub fn where_(mask: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let ab = out_shape("where", a, b)?;
        let shape = broadcast_shapes(&mask.shape, &ab)
            .ok_or_else(|| Error::shape("where", format!("a mask that broadcasts with {ab:?}"), &mask.shape))?;
        let (a, b) = (a.broadcast_to(&shape)?, b.broadcast_to(&shape)?);
        let m: Vec<bool> = source_indices(&mask.shape, &shape).iter().map(|&i| mask.data[i] != 0.0).collect();
        let out = m.iter().enumerate().map(|(i, &k)| if k { a.data[i] } else { b.data[i] }).collect();
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[&a, &b], move |g, needs| {
            let pick = |want: bool| g.iter().zip(&m).map(|(g, &k)| if k == want { *g } else { 0.0 }).collect();
            vec![needs[0].then(|| pick(true)), needs[1].then(|| pick(false))]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::check;

    #[test]
    fn shapes_broadcast_like_numpy() {
        assert_eq!(broadcast_shapes(&[4, 1, 3], &[5, 1]), Some(vec![4, 5, 3]));
        assert_eq!(broadcast_shapes(&[], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shapes(&[2, 3], &[3, 2]), None);
    }

    #[test]
    fn values_and_gradients_with_broadcasting() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let b = Tensor::from_vec(vec![10.0, 20.0], &[2, 1]).unwrap();
        assert_eq!(a.add(&b).unwrap().data(), &[11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
        assert_eq!(a.sub(&Tensor::from_vec(vec![1.0], &[]).unwrap()).unwrap().data(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let x = vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4];
        let y = vec![0.5, -2.0, 1.5];
        check(&[(x.clone(), vec![2, 3]), (y.clone(), vec![3])], |v| v[0].add(&v[1]));
        check(&[(x.clone(), vec![2, 3]), (y.clone(), vec![3])], |v| v[0].sub(&v[1]));
        check(&[(x.clone(), vec![2, 3]), (y.clone(), vec![1, 3])], |v| v[0].mul(&v[1]));
        check(&[(x.clone(), vec![2, 3]), (y.clone(), vec![3])], |v| v[0].div(&v[1]));
        check(&[(x.clone(), vec![2, 3]), (vec![0.0, 0.1], vec![2, 1])], |v| v[0].maximum(&v[1]));
        check(&[(x.clone(), vec![2, 3]), (vec![0.0, 0.1], vec![2, 1])], |v| v[0].minimum(&v[1]));
        check(&[(y.clone(), vec![3])], |v| v[0].broadcast_to(&[2, 3]));
        // the scalar fast path, on either side, against the general path's gradients
        for op in [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Max, Op::Min] {
            check(&[(x.clone(), vec![2, 3]), (vec![0.55], vec![])], |v| v[0].binary(&v[1], op));
            check(&[(vec![0.55], vec![1]), (x.clone(), vec![2, 3])], |v| v[0].binary(&v[1], op));
        }
    }

    #[test]
    fn where_and_comparisons() {
        let a = Tensor::from_vec(vec![1.0, 5.0, 3.0], &[3]).unwrap();
        let b = Tensor::from_vec(vec![2.0], &[1]).unwrap();
        let m = a.compare(&b, "gt", |x, y| x > y).unwrap();
        assert_eq!(m.data(), &[0.0, 1.0, 1.0]);
        assert_eq!(Tensor::where_(&m, &a, &b).unwrap().data(), &[2.0, 5.0, 3.0]);
        check(&[(vec![1.0, 5.0, 3.0], vec![3]), (vec![2.0], vec![1])], |v| Tensor::where_(&m, &v[0], &v[1]));
        let e = a.add(&Tensor::zeros(&[2])).unwrap_err().to_string();
        assert!(e.contains("add") && e.contains("[3]") && e.contains("[2]"), "{e}");
    }
}
