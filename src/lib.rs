//! retort: knowledge-distillation research on a small, exact, deterministic training core.
//!
//! A tour, bottom up: a module imports only modules listed before it, except `cuda::check`,
//! which trains on both devices and so sits above `train`; `tests/it/layers.rs` holds that no
//! files and no modules import each other in a cycle.
//! - [`error`]: the one error type; every variant names the op, shape, file or key.
//! - [`rng`]: a seedable, serializable generator (shuffles, init, dropout, augmentation).
//! - [`devices`]: device names (`cpu`, `cuda:N`), nothing else.
//! - [`tensor`]: runtime-shaped f32 tensors with autograd, the CPU kernels (GEMM, convolution,
//!   Winograd, batch norm), size limits and the memory cap; `tensor::backend` is the only
//!   module outside tests that names dfdx.
//! - [`nn`]: parameters, layers and the model zoo (MLP, CNN, CIFAR ResNets, wide ResNets).
//! - [`loss`]: cross-entropy, Hinton KD and weighted soft labels (WSL) as formulas, with
//!   per-sample parts computed once and weighed by sample filters.
//! - [`data`]: digits (bundled), MNIST/Fashion-MNIST IDX, CIFAR binaries, batching, augmentation.
//! - [`optim`]: SGD and Adam/AdamW updating parameters in place (held bit for bit to dfdx's
//!   update kernels in tests), learning-rate schedules.
//! - `cuda` (feature `cuda`): the GPU through cudarc: kernels, layers, the loss; `cuda::check`
//!   compares it with the CPU.
//! - [`train`]: fit a teacher, distill a student, evaluate; hooks for schedules and filters.
//! - [`run`]: run directories (config, metrics, checkpoints, summary), recording and resuming,
//!   safetensors and npy files, listings, plots, reports.
//! - [`script`]: the Rhai layer (the only module that names rhai): built-ins, the session
//!   core every front end starts from, `retort run` and `check`.
//! - [`notebook`], [`quickstart`], [`bench`]: front ends that return values; the binary
//!   (`src/main.rs`, `src/cli/`) prints them and owns the terminal.

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
pub mod sweep;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use rng::Rng;
pub use tensor::Tensor;
