//! Integration tests, one binary (like ripgrep's `tests/tests.rs`).

mod cifar;
mod cli;
mod determinism;
mod fashion_mnist;
mod scripts;
mod training;
