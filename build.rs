//! The Rhai version from Cargo.lock (the kernel's `language_info`). With the `cuda` feature: compiles src/cuda/kernels.cu to PTX with nvcc (as dfdx does), for
//! the architecture in CUDA_COMPUTE_CAP (default 7.5). Without it: nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let rhai =
        lock.split("[[package]]").find(|p| p.contains("name = \"rhai\"\n")).and_then(|p| p.split("version = \"").nth(1)?.split('"').next());
    println!("cargo:rustc-env=RETORT_RHAI_VERSION={}", rhai.unwrap_or("1"));
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
