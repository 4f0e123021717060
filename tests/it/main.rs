//! Integration tests, one binary (like ripgrep's `tests/tests.rs`).

mod analysis;
mod bad_scripts;
mod cifar;
mod cli;
#[cfg(feature = "cuda")]
mod cuda;
mod determinism;
mod docs;
mod fashion_mnist;
mod frontends;
mod fuzz;
mod fuzz_files;
mod gemm_paths;
mod jupyter;
mod keeps;
mod layers;
mod options;
mod pth;
mod pytorch;
mod records;
mod repl;
mod reproduction;
mod runs_cli;
mod scripts;
mod slurm;
mod sweeps;
mod training;
mod trust;
mod zoo_pairs;
