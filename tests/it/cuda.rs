//! The `cuda` build (run with `cargo test --features cuda`, through scripts/cuda-toolchain.sh;
//! see docs/cuda.md): it starts without a GPU, says so clearly when CUDA is asked for, and the
//! CPU still works in the same binary. With a GPU, opening it succeeds.

use super::scripts::retort;

fn has_gpu() -> bool {
    std::process::Command::new("nvidia-smi").arg("-L").output().map(|o| o.status.success() && !o.stdout.is_empty()).unwrap_or(false)
        && std::path::Path::new("/dev/nvidia0").exists()
}

#[test]
fn the_cuda_build_reports_a_missing_gpu_and_keeps_the_cpu() {
    let (code, out, err) = retort(&["device", "cuda"]);
    if has_gpu() {
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("CUDA device 0"), "{out}");
    } else {
        assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
        assert!(err.contains("cannot open CUDA device 0") && err.contains("The CPU device still works"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let (code, _, err) = retort(&["run", "scripts/03-distill-wsl.rhai", "--device", "cuda"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("fit: tensor backend: cannot open CUDA device 0") && err.contains("03-distill-wsl.rhai:10:1"), "{err}");
    }
    let (code, out, err) = retort(&["run", "scripts/01-tensors.rhai", "--device", "cpu"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty());
}
