//! Runtime-shaped f32 tensors with reverse-mode autograd.
//!
//! A [`Tensor`] is a shape, a shared buffer and, when it depends on something that
//! needs a gradient, a node of the tape. Each op lives in its own file with its
//! forward and backward side by side; [`Tensor::backward`] walks the tape once in
//! reverse topological order. Tensors built only from untracked inputs (a frozen
//! teacher, evaluation) carry no node, so no tape is built for them.
//!
//! The heavy kernels go through [`matmul`] (the `gemm` crate); [`backend`] is the
//! only module that names dfdx.

#[macro_use]
mod vectorized;
pub(crate) use vectorized::vectorized;
pub mod backend;
mod broadcast;
mod channels;
mod conv;
mod conv_direct;
pub mod cores;
mod elementwise;
pub mod gemm_path;
mod geom;
mod graph;
mod grouped;
mod im2col;
mod index;
pub mod limits;
pub mod matmul;
mod norm;
mod panel;
mod pool;
mod reduce;
mod select;
pub(crate) mod softmax64;
pub mod stats;
mod unary;
mod winograd;

pub use broadcast::broadcast_shapes;
pub use graph::{Gradients, LeafKey};
pub use norm::BatchStats;

use crate::error::{Error, Result};
use std::rc::Rc;

/// A runtime-shaped, row-major f32 tensor.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Rc<Vec<f32>>,
    node: Option<Rc<graph::Node>>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head: Vec<f32> = self.data.iter().take(6).copied().collect();
        write!(f, "Tensor{:?} {:?}{}", self.shape, head, if self.len() > 6 { " ..." } else { "" })
    }
}

impl Tensor {
    /// A constant tensor (no gradient) from `data` laid out row-major in `shape`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        // checked: `product` wraps silently, and [2^63, 2] would then fit no values
        let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if n != Some(data.len()) {
            let n = n.map_or("more than 2^64".to_string(), |n| n.to_string());
            return Err(Error::shape("tensor", format!("{n} values for shape {shape:?}"), data.len()));
        }
        Ok(Tensor::constant(shape.to_vec(), Rc::new(data)))
    }

    pub(crate) fn constant(shape: Vec<usize>, data: Rc<Vec<f32>>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data, node: None }
    }

    /// A leaf that records gradients under a fresh key (used for inputs in gradient checks).
    pub fn variable(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::from_vec(data, shape)?;
        Ok(t.into_leaf(LeafKey::fresh()))
    }

    pub(crate) fn into_leaf(mut self, key: LeafKey) -> Tensor {
        self.node = Some(graph::Node::leaf(key));
        self
    }

    /// All-zero constant.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::constant(shape.to_vec(), Rc::new(vec![0.0; shape.iter().product()]))
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The shared buffer (no copy).
    pub fn data_rc(&self) -> &Rc<Vec<f32>> {
        &self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether gradients flow back through this tensor.
    pub fn tracked(&self) -> bool {
        self.node.is_some()
    }

    /// The key under which [`Gradients`] stores this leaf's gradient, if it is a leaf.
    pub fn leaf_key(&self) -> Option<LeafKey> {
        self.node.as_ref().and_then(|n| n.leaf)
    }

    /// The same values, cut off from the tape.
    pub fn detach(&self) -> Tensor {
        Tensor::constant(self.shape.clone(), self.data.clone())
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.len() != 1 {
            return Err(Error::shape("item", "a one-element tensor", &self.shape));
        }
        Ok(self.data[0])
    }

    /// The same values under a new shape with the same element count (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = limits::numel("reshape", shape)?;
        if n != self.len() {
            return Err(Error::shape("reshape", format!("{} elements", self.len()), shape));
        }
        let out = Tensor::constant(shape.to_vec(), self.data.clone());
        Ok(out.record(&[self], |g, _| vec![Some(g.to_vec())]))
    }

    /// Flattens every dim after the first: `[b, ...] -> [b, rest]`.
    pub fn flatten(&self) -> Result<Tensor> {
        let b = *self.shape.first().ok_or_else(|| Error::shape("flatten", "at least 1 dim", &self.shape))?;
        let rest = self.shape[1..].iter().product();
        self.reshape(&[b, rest])
    }

    /// Attaches a backward op to `self` (the output of an op) if any input is tracked.
    ///
    /// `backward(grad_out, needs)` returns one gradient per input, `None` where
    /// `needs[i]` is false.
    pub(crate) fn record(mut self, inputs: &[&Tensor], backward: impl Fn(&[f32], &[bool]) -> Vec<Option<Vec<f32>>> + 'static) -> Tensor {
        if inputs.iter().any(|t| t.node.is_some()) {
            let parents = inputs.iter().map(|t| t.node.clone()).collect();
            self.node = Some(graph::Node::op(parents, Box::new(backward)));
        }
        self
    }

    /// Reverse-mode gradients of this scalar w.r.t. every tracked leaf it depends on.
    pub fn backward(&self) -> Result<Gradients> {
        if self.len() != 1 {
            return Err(Error::shape("backward", "a scalar (one element)", &self.shape));
        }
        Ok(graph::backward(self.node.as_ref(), 1.0))
    }
}

/// Checks that `t` has rank `rank`.
pub(crate) fn expect_rank(op: &'static str, t: &Tensor, rank: usize) -> Result<()> {
    if t.shape.len() != rank {
        return Err(Error::shape(op, format!("a rank-{rank} tensor"), &t.shape));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod gradcheck;
