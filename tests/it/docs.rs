//! The generated script reference is current, and every built-in's example runs.

use retort::script::{self, RunOptions};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[test]
fn committed_script_api_is_current() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/script-api.md")).unwrap();
    assert!(committed == script::docs::script_api_markdown(), "docs/script-api.md is stale: run `cargo run -- docs`");
}

#[test]
fn every_builtin_has_a_doc_with_an_example_that_runs() {
    let examples = script::docs::examples();
    assert!(examples.len() > 100, "{}", examples.len());
    let dir = std::env::temp_dir().join(format!("retort-examples-{}", std::process::id()));
    for (i, (name, code)) in examples.into_iter().enumerate() {
        assert!(!code.trim().is_empty(), "built-in '{name}' has no ```rhai example");
        let sink = Rc::new(RefCell::new(|_: &str| {}));
        // each example runs as `retort run` does, recording into a run directory
        let opts = RunOptions { record: Some(retort::run::recording::Record::New(dir.join(format!("run-{i}")))), ..Default::default() };
        let r = script::run_source(&format!("example of {name}"), &code, vec![], &opts, sink, Arc::new(AtomicBool::new(false)));
        assert!(r.is_ok(), "the example of '{name}' fails:\n{code}\n{}", r.unwrap_err());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_cuda_kernel_is_loaded() {
    // src/cuda/mod.rs loads kernels by name; one left out fails only on a GPU
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cu = std::fs::read_to_string(root.join("src/cuda/kernels.cu")).unwrap();
    let rs = std::fs::read_to_string(root.join("src/cuda/mod.rs")).unwrap();
    let list = rs.split("const KERNELS").nth(1).and_then(|r| r.split("];").next()).expect("KERNELS in src/cuda/mod.rs");
    let kernels: Vec<&str> = cu.split("__global__ void ").skip(1).map(|rest| rest.split('(').next().unwrap().trim()).collect();
    assert!(kernels.len() >= 20, "{kernels:?}");
    for k in kernels {
        assert!(list.contains(&format!("\"{k}\",")), "kernel {k} is in kernels.cu but not in KERNELS (src/cuda/mod.rs)");
    }
}
