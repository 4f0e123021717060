//! retort: knowledge-distillation research on a small, exact, deterministic training core.
//!
//! A tour, bottom up:
//! - [`tensor`]: runtime-shaped f32 tensors with autograd; the only place that names dfdx.
//! - [`nn`]: parameters, layers and the model zoo (MLP, CNN, CIFAR ResNets, wide ResNets).
//! - [`loss`]: cross-entropy, Hinton KD and weighted soft labels (WSL), with per-sample parts.
//! - [`data`]: digits (bundled), MNIST/Fashion-MNIST IDX, CIFAR binaries, batching, augmentation.
//! - [`optim`]: SGD and Adam/AdamW on dfdx's update kernels, learning-rate schedules.
//! - [`train`]: fit a teacher, distill a student, evaluate.

pub mod bench;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod data;
pub mod devices;
pub mod error;
pub mod loss;
pub mod nn;
pub mod notebook;
pub mod optim;
pub mod quickstart;
pub mod rng;
pub mod run;
pub mod script;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use rng::Rng;
pub use tensor::Tensor;
