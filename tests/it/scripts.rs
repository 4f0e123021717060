//! Scripts: golden outputs for every numbered example and stdlib recipe, the WSL reference
//! vector through the DSL, parameters, `retort check`, limits and interrupts.
//!
//! Set `RETORT_BLESS=1` to rewrite the golden files after an intended change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in the repository root; `run` without `--out`/`--resume`, `repl` and
/// `notebook run` without `--run-dir` record nothing.
pub fn retort(args: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&str> = args.to_vec();
    if args.first() == Some(&"run") && !args.iter().any(|a| *a == "--out" || *a == "--resume") {
        args.push("--no-record");
    }
    if (args.first() == Some(&"repl") || args.get(..2) == Some(&["notebook", "run"])) && !args.contains(&"--run-dir") {
        args.push("--no-record");
    }
    // the goldens' low digits come from one GEMM path: the probe may pick the other on
    // another CPU (src/tensor/gemm_path.rs)
    let out = Command::new(env!("CARGO_BIN_EXE_retort")).args(&args).current_dir(root()).env("RETORT_GEMM", "crate").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Runs `script`, recorded into a temporary run directory (some examples save files), and
/// compares its stdout with `golden`.
fn golden(script: &Path, golden: &Path) {
    let run = std::env::temp_dir().join(format!("retort-golden-{}-{}", script.file_stem().unwrap().to_string_lossy(), std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    let (code, out, err) = retort(&["run", script.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&run);
    assert_eq!(code, 0, "{} failed:\n{err}", script.display());
    if std::env::var_os("RETORT_BLESS").is_some() {
        std::fs::write(golden, &out).unwrap();
        return;
    }
    let want =
        std::fs::read_to_string(golden).unwrap_or_else(|_| panic!("missing golden file {} (run with RETORT_BLESS=1)", golden.display()));
    assert_eq!(out, want, "{} printed something else than {}", script.display(), golden.display());
}

fn rhai_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    files.sort();
    files
}

#[test]
fn numbered_examples_match_their_golden_output() {
    let scripts = rhai_files("scripts");
    assert!(scripts.iter().filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("0")).count() >= 6);
    for s in scripts.iter().filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("0")) {
        let stem = s.file_stem().unwrap().to_str().unwrap();
        golden(s, &root().join(format!("tests/scripts/{stem}.out")));
    }
}

#[test]
fn every_stdlib_recipe_has_a_golden_test() {
    for (name, _) in retort::script::STDLIB {
        let script = root().join(format!("tests/scripts/stdlib-{name}.rhai"));
        assert!(script.exists(), "stdlib recipe {name} has no test script {}", script.display());
        golden(&script, &script.with_extension("out"));
    }
    // and every file in stdlib/ is embedded
    for f in rhai_files("stdlib") {
        let stem = f.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(retort::script::STDLIB.iter().any(|(n, _)| *n == stem), "stdlib/{stem}.rhai is not embedded in modules.rs");
    }
}

/// Parses `label [a, b, ...]` or `label x` lines into numbers.
fn numbers(out: &str, label: &str) -> Vec<f64> {
    let line = out.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no line '{label}' in\n{out}"));
    line[label.len()..].trim().trim_matches(|c| c == '[' || c == ']').split(',').map(|v| v.trim().parse().unwrap()).collect()
}

#[test]
fn the_wsl_reference_vector_through_the_dsl() {
    let (code, out, err) = retort(&["run", "tests/scripts/wsl-reference.rhai"]);
    assert_eq!(code, 0, "{err}");
    let close = |got: &[f64], want: &[f64]| got.len() == want.len() && got.iter().zip(want).all(|(g, w)| ((g - w) / w).abs() < 1e-5);
    for way in ["inline", "stdlib", "builtin"] {
        assert!(close(&numbers(&out, &format!("{way} loss")), &[21.2468577935]), "{way}: {out}");
        assert!(
            close(&numbers(&out, &format!("{way} weights")), &[0.4134486354, 0.2597611456, 0.2160929061, 0.4141967555]),
            "{way}: {out}"
        );
        assert!(
            close(&numbers(&out, &format!("{way} grad0")), &[0.123473166, -0.1481994463, 0.2964540621, -0.1786332367, -0.093094545]),
            "{way}: {out}"
        );
    }
}

#[test]
fn the_issue_example_student_reaches_90_percent() {
    let (code, out, err) = retort(&["run", "scripts/03-distill-wsl.rhai"]);
    assert_eq!(code, 0, "{err}");
    let acc = numbers(&out, "student:")[0];
    assert!(acc >= 0.90, "student accuracy {acc}\n{out}");
}

#[test]
fn params_from_set_and_seed_reach_the_script() {
    let dir = std::env::temp_dir().join(format!("retort-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("p.rhai");
    std::fs::write(
        &script,
        "defaults(#{ distill: #{ temperature: 1.0 }, name: \"\", widths: [] });\nprint(params.distill.temperature * 2);\nprint(params.name);\nprint(params.widths);\nprint(seed);\nfor seed in [7, 8] { print(seed); }\nprint(randn([2]).to_array());\n",
    )
    .unwrap();
    let s = script.to_str().unwrap();
    let (code, out, err) =
        retort(&["run", s, "--set", "distill.temperature=2", "--set", "name=wsl run", "--set", "widths=[32, 16]", "--seed", "5"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // a loop variable named like the run's `seed` shadows it
    assert_eq!(&lines[..6], &["4", "wsl run", "[32, 16]", "5", "7", "8"]);
    // same seed, same stream; another seed, another stream
    let again = retort(&["run", s, "--set", "distill.temperature=2", "--set", "name=x", "--set", "widths=[1]", "--seed", "5"]).1;
    assert_eq!(again.lines().last(), lines.last().copied());
    let other = retort(&["run", s, "--set", "distill.temperature=2", "--set", "name=x", "--set", "widths=[1]", "--seed", "6"]).1;
    assert_ne!(other.lines().last(), lines.last().copied());
    let (code, _, err) = retort(&["run", s, "--set", "novalue"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("key=value"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_parses_and_resolves_imports_without_running() {
    let dir = std::env::temp_dir().join(format!("retort-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("helper.rhai"), "fn twice(x) { 2 * x }\n").unwrap();
    // would fail at run time (missing data root), but check runs nothing
    std::fs::write(
        dir.join("ok.rhai"),
        "import \"helper\" as h;\nimport \"wsl\" as wsl;\nlet d = dataset(\"cifar10\");\nprint(h::twice(2));\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad.rhai"), "import \"helpr\" as h;\n").unwrap();
    let (code, out, err) = retort(&["check", dir.join("ok.rhai").to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = retort(&["check", dir.join("bad.rhai").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("import 'helpr': module not found") && err.contains("bad.rhai:1:8"), "{err}");
    // RETORT_PATH adds folders to search
    let elsewhere = dir.join("lib");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("helpr.rhai"), "fn f() { 1 }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["check", dir.join("bad.rhai").to_str().unwrap()])
        .env("RETORT_PATH", &elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_stops_training_cleanly() {
    let dir = std::env::temp_dir().join(format!("retort-int-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("long.rhai");
    std::fs::write(&script, "let d = dataset(\"digits\");\nlet m = model(\"mlp\", #{ input: d.input, hidden: [64], classes: d.classes });\nprint(\"training\");\nfit(m, d, #{ epochs: 100000, batch: 8 });\nprint(\"not reached\");\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["run", "--no-record", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("training") && !stdout.contains("not reached"), "{stdout}");
    assert!(stderr.contains("fit: interrupted (Ctrl-C)") && stderr.contains("long.rhai:4:1"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
