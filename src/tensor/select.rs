//! Ordering, selecting and joining, with PyTorch's semantics: `argmax`/`argmin`, `sort`,
//! `argsort`, `topk`, `quantile`, `cat`, `stack`, `split`, `chunk`, `narrow`, `index_select`,
//! `gather`, `masked_select`, `nonzero`, `count_nonzero`, `cumsum`. Indices are returned as
//! f32 tensors of whole numbers (exact up to 2^24). Values are differentiable where PyTorch's
//! are: a selected value's gradient goes back to the element it came from.

use super::Tensor;
use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::rc::Rc;

/// Ascending order with NaN above everything (as torch.sort puts NaN last).
fn ascending(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

impl Tensor {
    /// `out[j] = self[map[j]]` with `shape`; the gradient goes back to each picked element
    /// (summed where one is picked twice).
    fn picked(&self, shape: Vec<usize>, map: Vec<usize>) -> Tensor {
        let out = map.iter().map(|&i| self.data[i]).collect();
        let n = self.len();
        Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; n];
            g.iter().zip(&map).for_each(|(g, &i)| gx[i] += g);
            vec![Some(gx)]
        })
    }

    /// Whole numbers as an index tensor (no gradient).
    fn indices(shape: Vec<usize>, idx: impl IntoIterator<Item = usize>) -> Tensor {
        Tensor::constant(shape, Rc::new(idx.into_iter().map(|i| i as f32).collect()))
    }

    /// For each lane along `dim` (outer x inner of them), the flat offsets of its `n` elements.
    fn lanes(&self, op: &'static str, dim: i64) -> Result<(usize, Vec<Vec<usize>>)> {
        let d = self.resolve_dim(op, dim)?;
        let outer: usize = self.shape[..d].iter().product();
        let inner: usize = self.shape[d + 1..].iter().product();
        let n = self.shape[d];
        let lanes = (0..outer).flat_map(|o| (0..inner).map(move |i| (0..n).map(|k| (o * n + k) * inner + i).collect())).collect();
        Ok((d, lanes))
    }

    /// Writes `per_lane[lane][k]` back into the layout of `self` with `dim` of size `k_len`.
    fn unlane(&self, d: usize, k_len: usize, per_lane: &[Vec<usize>]) -> (Vec<usize>, Vec<usize>) {
        let mut shape = self.shape.clone();
        shape[d] = k_len;
        let inner: usize = self.shape[d + 1..].iter().product();
        let mut out = vec![0usize; shape.iter().product()];
        for (lane, vals) in per_lane.iter().enumerate() {
            let (o, i) = (lane / inner.max(1), lane % inner.max(1));
            for (k, v) in vals.iter().enumerate() {
                out[(o * k_len + k) * inner + i] = *v;
            }
        }
        (shape, out)
    }

    /// Each lane's positions along `dim` in sorted order (stable; NaN last ascending, first descending).
    fn order(&self, op: &'static str, dim: i64, descending: bool) -> Result<(usize, Vec<Vec<usize>>, Vec<Vec<usize>>)> {
        let (d, lanes) = self.lanes(op, dim)?;
        let orders: Vec<Vec<usize>> = lanes
            .iter()
            .map(|lane| {
                let mut pos: Vec<usize> = (0..lane.len()).collect();
                pos.sort_by(|&a, &b| {
                    let o = ascending(self.data[lane[a]], self.data[lane[b]]);
                    if descending {
                        o.reverse()
                    } else {
                        o
                    }
                });
                pos
            })
            .collect();
        Ok((d, lanes, orders))
    }

    /// Positions of the largest (`largest`) or smallest value along `dim`, the first of ties,
    /// a NaN counting as the largest (torch.argmax / torch.argmin); `dim` removed. No gradient.
    pub fn argextreme(&self, dim: i64, largest: bool) -> Result<Tensor> {
        let op = if largest { "argmax" } else { "argmin" };
        let (d, lanes) = self.lanes(op, dim)?;
        if self.shape[d] == 0 {
            return Err(Error::invalid(op, format!("dim {dim} of {:?} is empty", self.shape)));
        }
        let best: Vec<usize> = lanes
            .iter()
            .map(|lane| {
                // a NaN wins either way, as in torch
                if let Some(k) = lane.iter().position(|&i| self.data[i].is_nan()) {
                    return k;
                }
                let mut best = 0;
                for k in 1..lane.len() {
                    let o = ascending(self.data[lane[k]], self.data[lane[best]]);
                    if o == if largest { Ordering::Greater } else { Ordering::Less } {
                        best = k;
                    }
                }
                best
            })
            .collect();
        let mut shape = self.shape.clone();
        shape.remove(d);
        Ok(Tensor::indices(shape, best))
    }

    /// `self` sorted along `dim` (stable; NaN last ascending), and where each value came from
    /// (torch.sort). The values carry the gradient.
    pub fn sort(&self, dim: i64, descending: bool) -> Result<(Tensor, Tensor)> {
        let (d, lanes, orders) = self.order("sort", dim, descending)?;
        let n = self.shape[d];
        let (shape, positions) = self.unlane(d, n, &orders);
        let flat: Vec<Vec<usize>> = lanes.iter().zip(&orders).map(|(lane, o)| o.iter().map(|&k| lane[k]).collect()).collect();
        let (_, map) = self.unlane(d, n, &flat);
        Ok((self.picked(shape.clone(), map), Tensor::indices(shape, positions)))
    }

    /// The positions that sort `self` along `dim` (stable; torch.argsort with stable=True).
    pub fn argsort(&self, dim: i64, descending: bool) -> Result<Tensor> {
        self.sort(dim, descending).map(|(_, i)| i)
    }

    /// The `k` largest (or smallest) values along `dim`, in order, and their positions
    /// (torch.topk, sorted; ties keep the earlier position first).
    pub fn topk(&self, k: usize, dim: i64, largest: bool) -> Result<(Tensor, Tensor)> {
        let (d, lanes, orders) = self.order("topk", dim, largest)?;
        if k > self.shape[d] {
            return Err(Error::invalid("topk", format!("k = {k} is larger than dim {dim} of {:?}", self.shape)));
        }
        let orders: Vec<Vec<usize>> = orders
            .into_iter()
            .map(|mut o| {
                o.truncate(k);
                o
            })
            .collect();
        let (shape, positions) = self.unlane(d, k, &orders);
        let flat: Vec<Vec<usize>> = lanes.iter().zip(&orders).map(|(lane, o)| o.iter().map(|&j| lane[j]).collect()).collect();
        let (_, map) = self.unlane(d, k, &flat);
        Ok((self.picked(shape.clone(), map), Tensor::indices(shape, positions)))
    }

    /// The `q`-quantile (0 <= q <= 1) along `dim`, interpolated linearly between the two
    /// nearest ranks (torch.quantile, interpolation='linear'; computed in f64); a lane holding
    /// NaN gives NaN. The gradient goes to those two elements, weighted as interpolated.
    pub fn quantile(&self, q: f64, dim: i64, keepdim: bool) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&q) {
            return Err(Error::invalid("quantile", format!("q = {q} must be within [0, 1]")));
        }
        let (d, lanes, orders) = self.order("quantile", dim, false)?;
        let n = self.shape[d];
        if n == 0 {
            return Err(Error::invalid("quantile", format!("dim {dim} of {:?} is empty", self.shape)));
        }
        let pos = q * (n - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let frac = pos - lo as f64;
        let mut values = Vec::with_capacity(lanes.len());
        let mut weights = Vec::with_capacity(lanes.len());
        for (lane, order) in lanes.iter().zip(&orders) {
            let (a, b) = (lane[order[lo]], lane[order[hi]]);
            let nan = lane.iter().any(|&i| self.data[i].is_nan());
            let (x, y) = (self.data[a] as f64, self.data[b] as f64);
            values.push(if nan { f32::NAN } else { (x + (y - x) * frac) as f32 });
            weights.push([(a, (1.0 - frac) as f32), (b, frac as f32)]);
        }
        let mut shape = self.shape.clone();
        if keepdim {
            shape[d] = 1;
        } else {
            shape.remove(d);
        }
        let len = self.len();
        Ok(Tensor::constant(shape, Rc::new(values)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; len];
            for (g, w) in g.iter().zip(&weights) {
                for (i, wi) in w {
                    gx[*i] += g * wi;
                }
            }
            vec![Some(gx)]
        }))
    }

    /// `len` entries of `dim` from `start` (torch.narrow): a slice, differentiable.
    pub fn narrow(&self, dim: i64, start: usize, len: usize) -> Result<Tensor> {
        let d = self.resolve_dim("narrow", dim)?;
        if start.checked_add(len).is_none_or(|end| end > self.shape[d]) {
            return Err(Error::invalid(
                "narrow",
                format!("entries {start}..{} of dim {dim} are outside {:?}", start.saturating_add(len), self.shape),
            ));
        }
        let outer: usize = self.shape[..d].iter().product();
        let (inner, n) = (self.shape[d + 1..].iter().product::<usize>(), self.shape[d]);
        let mut shape = self.shape.clone();
        shape[d] = len;
        let block = move |o: usize| (o * n + start) * inner..(o * n + start + len) * inner;
        let mut out = Vec::with_capacity(outer * len * inner);
        (0..outer).for_each(|o| out.extend_from_slice(&self.data[block(o)]));
        let total = self.len();
        Ok(Tensor::constant(shape, Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0; total];
            g.chunks_exact((len * inner).max(1)).enumerate().for_each(|(o, gb)| gx[block(o)].copy_from_slice(gb));
            vec![Some(gx)]
        }))
    }

    /// The entries `idx` of dim `d`, in that order.
    fn select_along(&self, op: &'static str, d: usize, idx: &[usize]) -> Result<Tensor> {
        let outer: usize = self.shape[..d].iter().product();
        let inner: usize = self.shape[d + 1..].iter().product();
        let n = self.shape[d];
        let mut shape = self.shape.clone();
        shape[d] = idx.len();
        super::limits::numel(op, &shape)?;
        let mut map = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            for &k in idx {
                map.extend((0..inner).map(|i| (o * n + k) * inner + i));
            }
        }
        Ok(self.picked(shape, map))
    }

    /// Reads `t` as whole-number indices below `bound` (`what` names them in errors).
    fn as_indices(t: &Tensor, op: &'static str, bound: usize, what: &str) -> Result<Vec<usize>> {
        t.data
            .iter()
            .map(|&v| {
                if v >= 0.0 && v.fract() == 0.0 && (v as usize) < bound {
                    Ok(v as usize)
                } else {
                    Err(Error::invalid(op, format!("index {v} is not a whole number in 0..{bound} ({what})")))
                }
            })
            .collect()
    }

    /// The entries `indices` (a 1-d tensor of positions) of `dim`, in that order
    /// (torch.index_select). Differentiable in `self`.
    pub fn index_select(&self, dim: i64, indices: &Tensor) -> Result<Tensor> {
        let d = self.resolve_dim("index_select", dim)?;
        if indices.shape.len() != 1 {
            return Err(Error::shape("index_select", "1-d indices", &indices.shape));
        }
        let idx = Tensor::as_indices(indices, "index_select", self.shape[d], &format!("dim {dim} of {:?}", self.shape))?;
        self.select_along("index_select", d, &idx)
    }

    /// `out[..., j, ...] = self[..., indices[..., j, ...], ...]` along `dim` (torch.gather):
    /// `indices` has the rank of `self` and sizes no larger than its own off `dim`; the output
    /// has the shape of `indices`. Differentiable in `self`.
    pub fn gather(&self, dim: i64, indices: &Tensor) -> Result<Tensor> {
        let d = self.resolve_dim("gather", dim)?;
        let rank = self.shape.len();
        if indices.shape.len() != rank || (0..rank).any(|k| k != d && indices.shape[k] > self.shape[k]) {
            return Err(Error::shape(
                "gather",
                format!("indices of rank {rank} no larger than {:?} off dim {dim}", self.shape),
                &indices.shape,
            ));
        }
        let idx = Tensor::as_indices(indices, "gather", self.shape[d], &format!("dim {dim} of {:?}", self.shape))?;
        let strides: Vec<usize> = (0..rank).map(|k| self.shape[k + 1..].iter().product()).collect();
        let mut pos = vec![0usize; rank];
        let mut map = Vec::with_capacity(idx.len());
        for &k in &idx {
            map.push((0..rank).map(|r| if r == d { k } else { pos[r] } * strides[r]).sum());
            for r in (0..rank).rev() {
                pos[r] += 1;
                if pos[r] < indices.shape[r] {
                    break;
                }
                pos[r] = 0;
            }
        }
        Ok(self.picked(indices.shape.clone(), map))
    }

    /// The elements where `mask` (broadcast to the shape of `self`) is not 0, as a 1-d tensor
    /// in order (torch.masked_select). Differentiable in `self`.
    pub fn masked_select(&self, mask: &Tensor) -> Result<Tensor> {
        let mask = mask
            .broadcast_to(&self.shape)
            .map_err(|_| Error::shape("masked_select", format!("a mask that broadcasts to {:?}", self.shape), &mask.shape))?;
        let map: Vec<usize> = mask.data.iter().enumerate().filter(|(_, m)| **m != 0.0).map(|(i, _)| i).collect();
        Ok(self.picked(vec![map.len()], map))
    }

    /// The rows (entries of dim 0) where `mask`, a 1-d tensor with one value per row, is not 0.
    pub fn rows(&self, mask: &Tensor) -> Result<Tensor> {
        if self.shape.is_empty() || mask.shape != [self.shape[0]] {
            return Err(Error::shape(
                "rows",
                format!("a mask of one value per row, [{}]", self.shape.first().copied().unwrap_or(0)),
                &mask.shape,
            ));
        }
        let idx: Vec<usize> = mask.data.iter().enumerate().filter(|(_, m)| **m != 0.0).map(|(i, _)| i).collect();
        self.select_along("rows", 0, &idx)
    }

    /// The positions of the elements that are not 0, `[count, rank]` (torch.nonzero). No gradient.
    pub fn nonzero(&self) -> Tensor {
        let rank = self.shape.len();
        let mut out = Vec::new();
        let mut count = 0;
        for (flat, v) in self.data.iter().enumerate() {
            if *v != 0.0 {
                count += 1;
                let mut rest = flat;
                let mut pos = vec![0usize; rank];
                for r in (0..rank).rev() {
                    pos[r] = rest % self.shape[r];
                    rest /= self.shape[r];
                }
                out.extend(pos);
            }
        }
        Tensor::indices(vec![count, rank], out)
    }

    /// How many elements are not 0, in all or along `dim` (torch.count_nonzero). No gradient.
    pub fn count_nonzero(&self, dim: Option<i64>) -> Result<Tensor> {
        match dim {
            None => Ok(Tensor::indices(vec![1], [self.data.iter().filter(|v| **v != 0.0).count()])),
            Some(dim) => {
                let (d, lanes) = self.lanes("count_nonzero", dim)?;
                let mut shape = self.shape.clone();
                shape.remove(d);
                Ok(Tensor::indices(shape, lanes.iter().map(|l| l.iter().filter(|&&i| self.data[i] != 0.0).count())))
            }
        }
    }

    /// Running sums along `dim` (torch.cumsum), accumulated in f64. The gradient is the
    /// reversed running sum of the output's.
    pub fn cumsum(&self, dim: i64) -> Result<Tensor> {
        let (_, lanes) = self.lanes("cumsum", dim)?;
        let mut out = vec![0.0f32; self.len()];
        for lane in &lanes {
            let mut acc = 0.0f64;
            for &i in lane {
                acc += self.data[i] as f64;
                out[i] = acc as f32;
            }
        }
        let len = self.len();
        Ok(Tensor::constant(self.shape.clone(), Rc::new(out)).record(&[self], move |g, _| {
            let mut gx = vec![0.0f32; len];
            for lane in &lanes {
                let mut acc = 0.0f64;
                for &i in lane.iter().rev() {
                    acc += g[i] as f64;
                    gx[i] = acc as f32;
                }
            }
            vec![Some(gx)]
        }))
    }

    /// Joins tensors along `dim` (torch.cat): the same rank, and the same sizes off `dim`.
    /// Differentiable in each.
    pub fn cat(list: &[Tensor], dim: i64) -> Result<Tensor> {
        let first = list.first().ok_or_else(|| Error::invalid("cat", "needs at least one tensor"))?;
        let d = first.resolve_dim("cat", dim)?;
        for (k, t) in list.iter().enumerate() {
            let same = t.shape.len() == first.shape.len() && (0..t.shape.len()).all(|r| r == d || t.shape[r] == first.shape[r]);
            if !same {
                return Err(Error::shape(
                    "cat",
                    format!("tensor {k} with the sizes of tensor 0 ({:?}) off dim {dim}", first.shape),
                    &t.shape,
                ));
            }
        }
        let outer: usize = first.shape[..d].iter().product();
        let inner: usize = first.shape[d + 1..].iter().product();
        let sizes: Vec<usize> = list.iter().map(|t| t.shape[d]).collect();
        let mut shape = first.shape.clone();
        shape[d] = sizes.iter().sum();
        super::limits::numel("cat", &shape)?;
        let mut out = Vec::with_capacity(shape.iter().product());
        for o in 0..outer {
            for (t, n) in list.iter().zip(&sizes) {
                out.extend_from_slice(&t.data[o * n * inner..(o + 1) * n * inner]);
            }
        }
        let inputs: Vec<&Tensor> = list.iter().collect();
        Ok(Tensor::constant(shape, Rc::new(out)).record(&inputs, move |g, _| {
            let total: usize = sizes.iter().sum();
            let mut grads: Vec<Vec<f32>> = sizes.iter().map(|n| Vec::with_capacity(outer * n * inner)).collect();
            for o in 0..outer {
                let mut at = o * total * inner;
                for (k, n) in sizes.iter().enumerate() {
                    grads[k].extend_from_slice(&g[at..at + n * inner]);
                    at += n * inner;
                }
            }
            grads.into_iter().map(Some).collect()
        }))
    }

    /// Joins tensors of one shape along a new `dim` (torch.stack).
    pub fn stack(list: &[Tensor], dim: i64) -> Result<Tensor> {
        let first = list.first().ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        let rank = first.shape.len() as i64;
        let d = if dim < 0 { dim + rank + 1 } else { dim };
        if d < 0 || d > rank {
            return Err(Error::invalid("stack", format!("dim {dim} is out of range for stacking tensors of shape {:?}", first.shape)));
        }
        let mut parts = Vec::with_capacity(list.len());
        for (k, t) in list.iter().enumerate() {
            if t.shape != first.shape {
                return Err(Error::shape("stack", format!("tensor {k} of the shape of tensor 0, {:?}", first.shape), &t.shape));
            }
            let mut shape = t.shape.clone();
            shape.insert(d as usize, 1);
            parts.push(t.reshape(&shape)?);
        }
        Tensor::cat(&parts, d)
    }

    /// Pieces of `size` entries along `dim` (the last may be shorter), as torch.split.
    pub fn split(&self, size: usize, dim: i64) -> Result<Vec<Tensor>> {
        let d = self.resolve_dim("split", dim)?;
        if size == 0 {
            return Err(Error::invalid("split", "the piece size must be positive"));
        }
        let n = self.shape[d];
        (0..n.div_ceil(size)).map(|p| self.narrow(d as i64, p * size, size.min(n - p * size))).collect()
    }

    /// `chunks` pieces of (nearly) equal size along `dim`, as torch.chunk (fewer when the
    /// dim is short).
    pub fn chunk(&self, chunks: usize, dim: i64) -> Result<Vec<Tensor>> {
        let d = self.resolve_dim("chunk", dim)?;
        if chunks == 0 {
            return Err(Error::invalid("chunk", "the number of chunks must be positive"));
        }
        self.split(self.shape[d].div_ceil(chunks).max(1), dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::check;

    fn t(v: &[f32], s: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), s).unwrap()
    }

    #[test]
    fn ordering_matches_torch() {
        let x = t(&[3.0, 1.0, 2.0, 1.0, f32::NAN, 0.0], &[2, 3]);
        assert_eq!(x.argextreme(1, true).unwrap().data(), &[0.0, 1.0]);
        assert_eq!(x.argextreme(1, false).unwrap().data(), &[1.0, 1.0]);
        assert_eq!(x.argextreme(0, true).unwrap().data(), &[0.0, 1.0, 0.0]);
        let (v, i) = t(&[2.0, 1.0, 2.0, 0.0], &[4]).sort(0, false).unwrap();
        assert_eq!((v.data(), i.data()), (&[0.0, 1.0, 2.0, 2.0][..], &[3.0, 1.0, 0.0, 2.0][..]));
        // stable when descending too: equal values keep their order
        assert_eq!(t(&[2.0, 1.0, 2.0, 0.0], &[4]).argsort(0, true).unwrap().data(), &[0.0, 2.0, 1.0, 3.0]);
        let (v, i) = x.topk(2, 1, true).unwrap();
        assert_eq!(i.data(), &[0.0, 2.0, 1.0, 0.0]);
        assert!(v.data()[2].is_nan() && v.data()[0] == 3.0);
        let (v, _) = t(&[5.0, 1.0, 4.0], &[3]).topk(2, 0, false).unwrap();
        assert_eq!(v.data(), &[1.0, 4.0]);
        assert!(x.topk(4, 1, true).is_err());
        check(&[(vec![0.3, -0.2, 0.9, 0.1, 0.5, -0.7], vec![2, 3])], |v| Ok(v[0].sort(1, true)?.0));
        check(&[(vec![0.3, -0.2, 0.9, 0.1, 0.5, -0.7], vec![2, 3])], |v| Ok(v[0].topk(2, 0, true)?.0));
    }

    #[test]
    fn quantile_interpolates_like_torch_in_f64() {
        // torch.quantile(torch.tensor([1., 2., 4., 10.]), q) for q = 0, 0.25, 0.5, 0.9, 1
        let x = t(&[10.0, 1.0, 4.0, 2.0], &[4]);
        let want = [1.0, 1.75, 3.0, 8.2, 10.0];
        for (q, w) in [0.0, 0.25, 0.5, 0.9, 1.0].iter().zip(want) {
            let got = x.quantile(*q, 0, false).unwrap().data()[0] as f64;
            assert!((got - w).abs() <= 1e-6 * w, "q = {q}: {got} vs {w}");
        }
        assert!(t(&[1.0, f32::NAN], &[2]).quantile(0.5, 0, false).unwrap().data()[0].is_nan());
        assert!(x.quantile(1.5, 0, false).is_err());
        check(&[(vec![0.3, -0.2, 0.9, 0.1, 0.5, -0.7, 0.2, 0.8], vec![2, 4])], |v| v[0].quantile(0.3, 1, true));
    }

    #[test]
    fn selecting_and_joining() {
        let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
        assert_eq!(x.narrow(0, 1, 2).unwrap().data(), &[3.0, 4.0, 5.0, 6.0]);
        assert!(x.narrow(0, 2, 2).is_err());
        assert_eq!(x.index_select(0, &t(&[2.0, 0.0, 2.0], &[3])).unwrap().data(), &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        assert!(x.index_select(1, &t(&[2.0], &[1])).is_err());
        // torch.gather(x, 1, [[1], [0], [1]]) = [[2], [3], [6]]
        assert_eq!(x.gather(1, &t(&[1.0, 0.0, 1.0], &[3, 1])).unwrap().data(), &[2.0, 3.0, 6.0]);
        assert_eq!(x.masked_select(&t(&[1.0, 0.0], &[2])).unwrap().data(), &[1.0, 3.0, 5.0]);
        assert_eq!(x.rows(&t(&[0.0, 1.0, 1.0], &[3])).unwrap().shape(), &[2, 2]);
        assert_eq!(t(&[0.0, 2.0, 0.0, 3.0], &[2, 2]).nonzero().data(), &[0.0, 1.0, 1.0, 1.0]);
        assert_eq!(t(&[0.0, 2.0, 0.0, 3.0], &[2, 2]).count_nonzero(Some(0)).unwrap().data(), &[0.0, 2.0]);
        assert_eq!(x.cumsum(0).unwrap().data(), &[1.0, 2.0, 4.0, 6.0, 9.0, 12.0]);
        let c = Tensor::cat(&[x.clone(), t(&[7.0, 8.0], &[1, 2])], 0).unwrap();
        assert_eq!((c.shape(), c.data()[6..].to_vec()), (&[4, 2][..], vec![7.0, 8.0]));
        assert_eq!(Tensor::cat(&[x.clone(), x.clone()], 1).unwrap().data()[..4], [1.0, 2.0, 1.0, 2.0]);
        assert!(Tensor::cat(&[x.clone(), t(&[1.0], &[1])], 0).is_err());
        let s = Tensor::stack(&[t(&[1.0, 2.0], &[2]), t(&[3.0, 4.0], &[2])], 1).unwrap();
        assert_eq!((s.shape(), s.data()), (&[2, 2][..], &[1.0, 3.0, 2.0, 4.0][..]));
        let parts = x.split(2, 0).unwrap();
        assert_eq!(parts.iter().map(|p| p.shape()[0]).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(x.chunk(2, 1).unwrap().len(), 2);
        let g = [(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], vec![3, 2])];
        check(&g, |v| v[0].index_select(0, &t(&[2.0, 0.0, 2.0], &[3])));
        check(&g, |v| v[0].gather(1, &t(&[1.0, 0.0, 1.0], &[3, 1])));
        check(&g, |v| v[0].masked_select(&t(&[1.0, 0.0], &[2])));
        check(&g, |v| v[0].cumsum(1));
        check(&g, |v| v[0].narrow(1, 1, 1));
        check(&[(vec![0.1, 0.2], vec![1, 2]), (vec![0.3, 0.4, 0.5, 0.6], vec![2, 2])], |v| Tensor::cat(&[v[0].clone(), v[1].clone()], 0));
        check(&[(vec![0.1, 0.2], vec![2]), (vec![0.3, 0.4], vec![2])], |v| Tensor::stack(&[v[0].clone(), v[1].clone()], 0));
    }
}
