//! With the `cuda` feature: compiles src/cuda/kernels.cu to PTX with nvcc (as dfdx does), for
//! the architecture in CUDA_COMPUTE_CAP (default 7.5). Without it: nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=src/cuda/kernels.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "75".into()).replace('.', "");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("kernels.ptx");
    let status = std::process::Command::new("nvcc")
        .args(["--ptx", &format!("-arch=compute_{cap}"), "-O3", "src/cuda/kernels.cu", "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("nvcc failed on src/cuda/kernels.cu ({s})"),
        Err(e) => panic!("cannot run nvcc ({e}): the cuda feature needs the CUDA toolkit on PATH; run `eval \"$(scripts/cuda-toolchain.sh)\"` first (docs/cuda.md)"),
    }
}
