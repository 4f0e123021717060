//! The matrix products' GEMM path (`src/tensor/gemm_path.rs`): forced by `RETORT_GEMM`, each
//! path trains to the same accuracy and repeats bit for bit; chosen by a probe whose result is
//! cached per CPU model; a bad `RETORT_GEMM` is a clear error.

use std::process::Command;

fn retort(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_retort"));
    cmd.args(args).env_remove("RETORT_GEMM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

const SCRIPT: &str = r#"
let d = dataset("digits", #{ test_fraction: 0.2, seed: 7 });
let m = model("mlp", #{ input: d.input, hidden: [64, 32], classes: d.classes, seed: 3 });
let r = fit(m, d, #{ epochs: 4, batch: 64, optimizer: sgd(#{ lr: 0.1, momentum: 0.9 }) });
print(`loss ${r.history[3].train_loss} accuracy ${r.final_accuracy}`);
"#;

#[test]
fn each_forced_path_trains_alike_and_repeats_exactly() {
    let dir = std::env::temp_dir().join(format!("retort-gemm-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("mlp.rhai");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut accuracies = Vec::new();
    for path in ["crate", "panel"] {
        let run = || retort(&["run", "--no-record", script.to_str().unwrap()], &[("RETORT_GEMM", path)]);
        let (code, first, err) = run();
        assert_eq!(code, 0, "{path}: {err}");
        let (_, second, _) = run();
        assert_eq!(first, second, "{path}: the same seed gave another run");
        let accuracy: f64 = first.trim().rsplit(' ').next().unwrap().parse().unwrap();
        assert!(accuracy > 0.9, "{path}: {first}");
        accuracies.push(accuracy);
        let (code, bench, _) = retort(&["bench", "--reps", "1", "--only", "MLP"], &[("RETORT_GEMM", path), ("RAYON_NUM_THREADS", "1")]);
        assert_eq!(code, 0);
        let line = bench.lines().find(|l| l.trim_start().starts_with("linear layers")).unwrap_or_default().to_string();
        assert!(line.contains("forced by RETORT_GEMM"), "{path}: {line}");
        assert!(line.contains(if path == "crate" { "gemm crate" } else { "panel GEMM" }), "{path}: {line}");
    }
    // the paths sum in other orders: the same accuracy to a test sample or two
    assert!((accuracies[0] - accuracies[1]).abs() <= 2.0 / 359.0, "{accuracies:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_probe_runs_once_per_cpu_and_is_cached() {
    let cache = std::env::temp_dir().join(format!("retort-gemm-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let env = [("RETORT_CACHE_DIR", cache.to_str().unwrap()), ("RAYON_NUM_THREADS", "2")];
    let line = |out: &str| out.lines().find(|l| l.trim_start().starts_with("linear layers")).unwrap_or_default().to_string();
    let (code, first, err) = retort(&["bench", "--reps", "1", "--only", "MLP"], &env);
    assert_eq!(code, 0, "{err}");
    let file = cache.join("gemm-probe.json");
    let has_avx512 = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" avx512f"));
    if !has_avx512 {
        // no competing path: nothing measured, nothing cached
        assert!(line(&first).contains("no AVX-512F"), "{first}");
        assert!(!file.exists());
        return;
    }
    assert!(line(&first).contains("(probe: crate"), "{first}");
    let cached: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let key = cached.as_object().unwrap().keys().next().unwrap().clone();
    assert!(key.contains("| 2 threads |"), "{key}");
    let (_, second, _) = retort(&["bench", "--reps", "1", "--only", "MLP"], &env);
    assert!(line(&second).contains("(probe, cached: crate"), "{second}");
    // the cached figures decide: the faster path is the one named
    let (c, p) = (cached[&key]["crate_ms"].as_f64().unwrap(), cached[&key]["panel_ms"].as_f64().unwrap());
    assert!(line(&second).contains(if p < c { "panel GEMM" } else { "gemm crate" }), "{second}");
    // a damaged cache is measured again and rewritten
    std::fs::write(&file, "{ not json").unwrap();
    let (code, third, _) = retort(&["bench", "--reps", "1", "--only", "MLP"], &env);
    assert_eq!(code, 0);
    assert!(line(&third).contains("(probe: crate"), "{third}");
    assert!(serde_json::from_slice::<serde_json::Value>(&std::fs::read(&file).unwrap()).is_ok());
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn a_bad_retort_gemm_is_a_clear_error() {
    let (code, _, err) = retort(&["models"], &[("RETORT_GEMM", "mkl")]);
    assert_eq!(code, 2);
    assert!(err.contains("RETORT_GEMM='mkl' is not crate, panel or auto"), "{err}");
}
