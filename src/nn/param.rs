//! Named parameters and buffers, shared between a model's layers and its optimizer.

use crate::error::{Error, Result};
use crate::tensor::{LeafKey, Tensor};
use std::cell::RefCell;
use std::rc::Rc;

struct Inner {
    name: String,
    shape: Vec<usize>,
    key: LeafKey,
    trainable: bool,
    value: RefCell<Rc<Vec<f32>>>,
}

/// A named tensor a model owns: a trainable weight, or a buffer such as `running_mean`.
///
/// Cloning a `Param` shares it. A forward pass reads the values without copying;
/// an update writes them in place once no tensor of a finished step still holds them.
#[derive(Clone)]
pub struct Param(Rc<Inner>);

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}{}", self.0.name, self.0.shape, if self.0.trainable { "" } else { " (buffer)" })
    }
}

impl Param {
    pub fn new(name: impl Into<String>, shape: &[usize], values: Vec<f32>, trainable: bool) -> Param {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "Param::new: values for shape (internal caller bug)");
        Param(Rc::new(Inner {
            name: name.into(),
            shape: shape.to_vec(),
            key: LeafKey::fresh(),
            trainable,
            value: RefCell::new(Rc::new(values)),
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    pub fn len(&self) -> usize {
        self.0.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn trainable(&self) -> bool {
        self.0.trainable
    }

    /// The key of this parameter's gradient in [`crate::tensor::Gradients`].
    pub fn key(&self) -> LeafKey {
        self.0.key
    }

    /// The current values (shared, no copy).
    pub fn values(&self) -> Rc<Vec<f32>> {
        self.0.value.borrow().clone()
    }

    /// The values as a tensor; a tracked leaf when `track` is set and the parameter is trainable.
    pub fn tensor(&self, track: bool) -> Tensor {
        let t = Tensor::constant(self.0.shape.clone(), self.values());
        if track && self.0.trainable {
            t.into_leaf(self.0.key)
        } else {
            t
        }
    }

    /// Replaces the values; the length must match.
    pub fn set(&self, values: Vec<f32>) -> Result<()> {
        if values.len() != self.len() {
            return Err(Error::shape(
                "set parameter",
                format!("{} values for {}{:?}", self.len(), self.0.name, self.0.shape),
                values.len(),
            ));
        }
        *self.0.value.borrow_mut() = Rc::new(values);
        Ok(())
    }

    /// Updates the values in place (copy-on-write if a tensor still shares them).
    pub fn update<R>(&self, f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
        let mut slot = self.0.value.borrow_mut();
        f(Rc::make_mut(&mut slot))
    }

    /// Whether two handles are the same parameter.
    pub fn same(&self, other: &Param) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}
