//! The `retort` binary: help, version, the zoo table, quickstart, exit codes.

use std::process::Command;

fn retort(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_retort")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn help_and_version() {
    let (code, out, _) = retort(&["--help"]);
    assert_eq!(code, 0);
    for cmd in ["quickstart", "models", "bench"] {
        assert!(out.contains(cmd), "{out}");
    }
    let (code, out, _) = retort(&["--version"]);
    assert_eq!((code, out.trim()), (0, concat!("retort ", env!("CARGO_PKG_VERSION"))));
    let (code, out, _) = retort(&["models", "--help"]);
    assert!(code == 0 && out.contains("--classes"));
}

#[test]
fn usage_errors_exit_2_and_bad_values_exit_1() {
    let (code, _, err) = retort(&["frobnicate"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = retort(&["models", "--input", "3x32"]);
    assert_eq!(code, 1);
    assert!(err.contains("--input '3x32'") && err.contains("3x32x32"), "{err}");
}

#[test]
fn models_lists_the_zoo_with_counts() {
    let (code, out, err) = retort(&["models"]);
    assert_eq!(code, 0, "{err}");
    for needle in ["resnet20", "278324", "resnet32x4", "7433860", "wrn_40_2", "2255156", "MACs"] {
        assert!(out.contains(needle), "missing {needle} in\n{out}");
    }
}

#[test]
fn quickstart_prints_a_table_of_four_models() {
    let (code, out, err) = retort(&["quickstart", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    for needle in ["teacher", "student (scratch)", "student (KD)", "student (WSL)", "test accuracy"] {
        assert!(out.contains(needle), "missing {needle} in\n{out}");
    }
    assert!(err.is_empty(), "--quiet should print nothing on stderr: {err}");
}

/// `retort bench` says which machine its figures are from: the CPU model, the thread count,
/// and the instruction set of each kernel family.
#[test]
fn bench_names_the_cpu_threads_and_kernel_paths() {
    let out = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["bench", "--reps", "1", "--only", "MLP"])
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with("CPU: ") && first.ends_with("; 1 threads"), "{text}");
    for family in ["convolutions", "direct convolution", "linear layers"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(family)), "{family} in\n{text}");
    }
    assert!(text.contains("MLP 784-512-512-100"), "{text}");
}
