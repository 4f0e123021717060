//! Trust: no silent wrong result, no panic. Each test holds the right value of a fault that
//! was found (numerics over large tensors, extreme logits, options that must take effect or
//! be refused, sizes, files from the PyTorch world).

use super::scripts::retort;
use std::path::PathBuf;

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retort-trust-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `source` as a script; (exit code, stdout, stderr).
fn run_script(tag: &str, source: &str) -> (i32, String, String) {
    let dir = temp(tag);
    let path = dir.join(format!("{tag}.rhai"));
    std::fs::write(&path, source).unwrap();
    let r = retort(&["run", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    r
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

// Values from tests/fixtures/stdlib_extreme_reference.py (float64, the recipes' definitions):
// logits up to |1e4|, temperatures 0.05 to 100.
const EXTREME: &[(&str, f64, f64)] = &[
    ("kd", 0.05, 4457.539237408819),
    ("wsl", 0.05, 3707.4945324950377),
    ("dkd", 0.05, 6166.096529076629),
    ("dist", 0.05, 3332.4244457415616),
    ("kd", 1.0, 25786.290207093294),
    ("wsl", 1.0, 10783.832346712674),
    ("dkd", 1.0, 59831.2522508513),
    ("dist", 1.0, 3335.0261469482507),
    ("kd", 4.0, 87074.7898415386),
    ("wsl", 4.0, 27056.840669635392),
    ("dkd", 4.0, 207054.2232486882),
    ("dist", 4.0, 3372.375171795628),
    ("kd", 100.0, 2011769.3814707987),
    ("wsl", 100.0, 503903.6781884222),
    ("dkd", 100.0, 4455413.735588038),
    ("dist", 100.0, 28722.485550906214),
];

#[test]
fn stdlib_recipes_hold_to_float64_at_extreme_logits() {
    let script = r#"
import "kd" as kd; import "wsl" as wsl; import "dkd" as dkd; import "dist" as dist;
let t = tensor([[-1e4, 1e4, 3.0], [5.0, -5.0, 0.0], [2.0, 1.0, -3.0]]);
let y = tensor([0, 1, 2]);
for temperature in [0.05, 1.0, 4.0, 100.0] {
    let s = requires_grad(tensor([[1e4, -1e4, 0.5], [-3.0, 2.0, 9999.0], [0.25, -7.0, 1.5]]));
    let losses = [
        ["kd", kd::loss(s, t, y, temperature, 2.25)],
        ["wsl", wsl::loss(s, t, y, temperature, 2.25)],
        ["dkd", dkd::loss(s, t, y, temperature, 1.0, 8.0)],
        ["dist", dist::loss(s, t, y, temperature, 1.0, 1.0)],
    ];
    for l in losses {
        let g = grad(l[1], s);
        print(`${l[0]} ${temperature} ${l[1].item()} ${sum(g * 0.0 == 0.0).item()}`);
    }
}
"#;
    let (code, out, err) = run_script("extreme", script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), EXTREME.len(), "{out}");
    for (line, (name, temperature, want)) in lines.iter().zip(EXTREME) {
        assert_eq!((line[0], line[1].parse::<f64>().unwrap()), (*name, *temperature));
        let got: f64 = line[2].parse().unwrap();
        assert!(rel(got, *want) < 1e-5, "{name} at T = {temperature}: {got} vs float64 {want}");
        assert_eq!(line[3], "9.0", "{name} at T = {temperature}: a non-finite gradient entry");
    }
}

// The DKD example of the bug report: float64 gives 164.642 (CE 120 plus TCKD 44.642 at T = 1;
// NCKD is 0 with two classes), and the gradient [1.37754, -1.37754].
#[test]
fn dkd_at_saturated_logits_is_finite() {
    let script = "import \"dkd\" as dkd;\nlet s = requires_grad(tensor([[60.0, -60.0]]));\nlet l = dkd::loss(s, tensor([[1.0, 0.5]]), tensor([1]), 1.0, 1.0, 8.0);\nprint(l.item());\nprint(grad(l, s).to_array()[0][0]);\n";
    let (code, out, err) = run_script("dkd", script);
    assert_eq!(code, 0, "{err}");
    let v: Vec<f64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert!(rel(v[0], 164.64203293719828) < 1e-6, "{out}");
    assert!(rel(v[1], 1.3775406687981455) < 1e-5, "{out}");
}

#[test]
fn sums_and_means_over_large_tensors_accumulate_in_f64() {
    let (code, out, err) =
        run_script("sums", "print(sum(full([10000000], 0.1)).item());\nprint(mean(full([60000, 10], 0.1)).item());\nprint(sum(full([60000, 10], 0.1), 0).to_array()[0]);\nprint(mean(full([3, 4000000], 0.1), 1).to_array()[2]);\n");
    assert_eq!(code, 0, "{err}");
    // f32(0.1) = 0.100000001490116...: 1e7 of them is 1000000.0149 before rounding to f32
    let v: Vec<f64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(v[0] as f32, 1_000_000.0f32, "{out}");
    assert_eq!(v[1] as f32, 0.1f32, "{out}");
    assert_eq!(v[2] as f32, 6000.0001f32, "{out}");
    assert_eq!(v[3] as f32, 0.1f32, "{out}");
}

// Label smoothing reaches KD and WSL through `distill`, and ce_weight weighs the hard term:
// each changes the first epoch's training loss; with `ce_weight: 0` KD is the soft term alone.
#[test]
fn label_smoothing_and_ce_weight_change_distillation() {
    let script = r#"
let d = dataset("digits", #{ train_limit: 128, test_limit: 32 });
let t = model("mlp", #{ input: d.input, hidden: [16], classes: d.classes, seed: 1 });
for loss in ["kd", "wsl"] {
    for opts in [#{}, #{ label_smoothing: 0.5 }, #{ ce_weight: 0.25 }] {
        let s = model("mlp", #{ input: d.input, hidden: [8], classes: d.classes, seed: 2 });
        opts.epochs = 1; opts.loss = loss; opts.temperature = 4.0; opts.alpha = 2.25;
        print(distill(t, s, d, opts).history[0].train_loss);
    }
}
"#;
    let (code, out, err) = run_script("smoothing", script);
    assert_eq!(code, 0, "{err}");
    let v: Vec<f64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(v.len(), 6);
    for run in [&v[0..3], &v[3..6]] {
        assert!(run[0] != run[1] && run[0] != run[2] && run[1] != run[2], "{out}");
    }
}

#[test]
fn set_and_config_keys_a_script_never_declares_are_errors() {
    let dir = temp("params");
    let plain = dir.join("plain.rhai");
    std::fs::write(&plain, "print(1);\n").unwrap();
    let (code, _, err) = retort(&["run", plain.to_str().unwrap(), "--set", "epochs=5"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("'epochs' (from --set epochs) is not a parameter of this script"), "{err}");
    // retort check reads the config against a literal defaults(...) without running anything
    let declared = dir.join("declared.rhai");
    std::fs::write(&declared, "let p = defaults(#{ epochs: 40, distill: #{ temperature: 4.0 } });\nprint(p.epochs);\n").unwrap();
    let cfg = dir.join("exp.yaml");
    std::fs::write(&cfg, "epochs: 3\ndistill:\n  temprature: 8\n").unwrap();
    let (code, _, err) = retort(&["check", declared.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("'distill.temprature'") && err.contains("exp.yaml:3") && err.contains("declared.rhai:1"), "{err}");
    let (code, _, err) = retort(&["check", plain.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a parameter of this script: it declares none") && err.contains("exp.yaml:"), "{err}");
    std::fs::write(&cfg, "epochs: 3\n").unwrap();
    let (code, _, err) = retort(&["check", declared.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// `--set` values read as YAML scalars, the same as in a --config file: `.5` is 0.5.
#[test]
fn set_values_follow_the_yaml_scalar_rules() {
    let dir = temp("yamlset");
    let script = dir.join("lr.rhai");
    std::fs::write(
        &script,
        "let p = defaults(#{ lr: 0.1, name: \"x\", on: false, widths: [1] });\nprint(`${p.lr} ${p.name} ${p.on} ${p.widths}`);\n",
    )
    .unwrap();
    let s = script.to_str().unwrap();
    let (code, out, err) = retort(&["run", s, "--set", "lr=.5", "--set", "name=wsl run", "--set", "on=true", "--set", "widths=[32, 16]"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "0.5 wsl run true [32, 16]");
    let (code, out, err) = retort(&["run", s, "--set", "lr=1e-3"]);
    assert_eq!((code, out.trim()), (0, "0.001 x false [1]"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn teacher_logits_are_checked_when_loaded_and_refused_with_augment() {
    let dir = temp("logits");
    let npy = dir.join("t.npy");
    let mut values = vec![0.5f32; 20];
    values[13] = f32::NAN;
    std::fs::write(&npy, retort::run::npy::to_bytes(&[2, 10], &values)).unwrap();
    let (code, _, err) = run_script("nan", &format!("let t = teacher_logits(\"{}\");\n", npy.display()));
    assert_eq!(code, 1);
    assert!(err.contains("holds NaN at sample 1, class 3") && err.contains(":1:9"), "{err}");
    std::fs::write(&npy, retort::run::npy::to_bytes(&[20, 10], &[0.5; 200])).unwrap();
    let script = format!(
        "let d = dataset(\"digits\", #{{ train_limit: 20, test_limit: 8 }});\nlet s = model(\"mlp\", #{{ input: d.input, hidden: [4], classes: d.classes }});\ndistill(teacher_logits(\"{}\"), s, d, #{{ epochs: 1, augment: true }});\n",
        npy.display()
    );
    let (code, _, err) = run_script("augment", &script);
    assert_eq!(code, 1);
    assert!(err.contains("do not match randomly cropped or flipped inputs") && err.contains(":3:1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn comparisons_with_the_number_on_either_side_give_masks() {
    let (code, out, err) =
        run_script("cmp", "let x = tensor([1, 2, 3]);\nprint((x != 2).to_array());\nprint((2 < x).to_array());\nprint((2.5 >= x).to_array());\nprint((x == x).to_array());\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "[1.0, 0.0, 1.0]\n[0.0, 0.0, 1.0]\n[1.0, 1.0, 0.0]\n[1.0, 1.0, 1.0]\n");
}

#[test]
fn values_print_as_the_shortest_f32_decimal() {
    let (code, out, err) = run_script(
        "print",
        "let x = tensor([0.823, 0.1]);\nprint(sum(tensor([0.823])).item());\nprint(x.to_array());\nprint(`${mean(x).item()}`);\n",
    );
    assert_eq!(code, 0, "{err}");
    // f32(0.823) and f32(0.1) average to 0.46150000393 in f64, whose nearest f32 prints as 0.46150002
    assert_eq!(out, "0.823\n[0.823, 0.1]\n0.46150002\n");
}

// The caret sits under the culprit after wide (CJK) characters: padded by display width.
#[test]
fn the_caret_is_padded_by_display_width() {
    let (code, _, err) = run_script("cjk", "let s = \"温度\"; let z = frobnicate(1);\n");
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().collect();
    let src = lines.iter().position(|l| l.contains("frobnicate(1)")).unwrap();
    let caret = lines[src + 1].find('^').unwrap();
    let prefix = &lines[src][..lines[src].find("frobnicate").unwrap()];
    assert_eq!(caret, unicode_width::UnicodeWidthStr::width(prefix), "{err}");
}

// A piped REPL survives an input that used to abort the process: its variables stay.
#[test]
fn a_repl_session_keeps_its_variables_after_an_aborting_input() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["repl", "--no-record"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let a = 41;\nlet z = zeros([100000, 100000]);\nlet y = one_hot(tensor([1]), 9223372036854775807);\nprint(a + 1);\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("42"), "{stdout}\n{stderr}");
    assert!(stderr.contains("over the memory cap") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn notebook_cells_follow_commonmark_and_errors_name_the_notebook_line() {
    let dir = temp("nb");
    let nb = dir.join("nb.md");
    std::fs::write(
        &nb,
        "# fences\n\n~~~rhai\nlet a = 1;\nprint(a);\n~~~\n\n````rhai\nprint(a + 1);\n````\n\n```rhai\nlet b = a +\n  frobnicate();\n```\n",
    )
    .unwrap();
    let (code, _, _) = retort(&["notebook", "run", nb.to_str().unwrap()]);
    assert_eq!(code, 1);
    let text = std::fs::read_to_string(&nb).unwrap();
    assert!(text.contains("```output\n1\n```") && text.contains("```output\n2\n```"), "{text}");
    assert!(text.contains("a cell failed: cell 3 of 3") && text.contains("nb.md:14:3"), "{text}");
    // re-run: the error names the line in the file as it now stands, outputs included
    retort(&["notebook", "run", nb.to_str().unwrap()]);
    let again = std::fs::read_to_string(&nb).unwrap();
    let line = again.lines().position(|l| l == "  frobnicate();").unwrap() + 1;
    assert!(again.contains(&format!("nb.md:{line}:3")), "{again}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn closures_built_in_a_loop_share_its_variable_and_the_documented_idioms_do_not() {
    let (code, out, err) = run_script(
        "closures",
        "let a = [];\nfor t in [2.0, 4.0, 8.0] { a.push(|e| t); }\nprint(a.map(|f| f.call(0)));\nlet b = [];\nfor t in [2.0, 4.0, 8.0] { let fixed = t; b.push(|e| fixed); }\nprint(b.map(|f| f.call(0)));\nprint([2.0, 4.0, 8.0].map(|t| |e| t).map(|f| f.call(0)));\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "[8.0, 8.0, 8.0]\n[2.0, 4.0, 8.0]\n[2.0, 4.0, 8.0]\n");
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/script-api.md")).unwrap();
    assert!(api.contains("## Closures built in a loop"));
}

#[test]
fn safetensors_in_half_precision_load_into_a_model() {
    use retort::nn::{Model, ModelConfig};
    use retort::run::safetensors::Dtype;
    let dir = temp("half");
    let cfg = |seed| ModelConfig { classes: 10, input: vec![1, 8, 8], hidden: vec![4], seed, ..Default::default() };
    let a = Model::new("mlp", cfg(1)).unwrap();
    for dtype in [Dtype::F16, Dtype::BF16, Dtype::F64] {
        let mut s = retort::run::weights::to_safetensors(&a);
        s.tensors.values_mut().for_each(|e| e.dtype = dtype);
        let path = dir.join("h.safetensors");
        s.write(&path).unwrap();
        let b = Model::new("mlp", cfg(2)).unwrap();
        retort::run::weights::load(&b, &path).unwrap();
        let (x, y) = (a.param("layers.0.weight").unwrap().values(), b.param("layers.0.weight").unwrap().values());
        let tol = if dtype == Dtype::F64 { 0.0 } else { 1e-2 };
        x.iter().zip(y.iter()).for_each(|(x, y)| assert!((x - y).abs() <= tol * x.abs().max(1e-3), "{dtype:?}: {x} vs {y}"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// Numbers compare as IEEE 754 says, not within Rhai's epsilon (1e-17 > 0.0 was false, and a
// statistic over small data took it for constant); NaN prints as NaN in the stats recipes.
#[test]
fn number_comparisons_are_exact_and_nan_prints() {
    let (code, out, err) = run_script(
        "floats",
        "import \"stats\" as stats;\nprint(1e-17 > 0.0);\nprint(0.1 + 0.2 == 0.3);\nprint(3 == 3.0);\nprint(stats::pearson([1e-9, 2e-9, 3e-9], [1, 2, 3]));\nprint(stats::fixed(0.0 / 0.0, 2));\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "true\nfalse\ntrue\n1.0\nNaN\n");
}

#[test]
fn tables_show_shortest_values_and_escape_their_cells() {
    let (code, out, err) = run_script("table", "print(markdown_table([#{ a: 1e-9, b: \"x|y\" }], [\"a\", \"b\"]));\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| 0.000000001 | x\\|y |"), "{out}");
}

// Parameters that no defaults(...) call ever declared: refused after the run (a branch not
// taken), by retort check when the defaults map is built at run time, and by notebooks.
#[test]
fn parameters_a_run_never_declares_are_refused_everywhere() {
    let dir = temp("undeclared");
    let branch = dir.join("branch.rhai");
    std::fs::write(&branch, "if seed > 100 { let p = defaults(#{ lr: 0.1 }); }\nprint(1);\n").unwrap();
    let (code, _, err) = retort(&["run", branch.to_str().unwrap(), "--set", "lr=0.5"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("'lr' (from --set lr) was never declared"), "{err}");
    let dynamic = dir.join("dynamic.rhai");
    std::fs::write(&dynamic, "let base = #{ lr: 0.1 };\nlet p = defaults(base);\nprint(p.lr);\n").unwrap();
    let (code, _, err) = retort(&["check", dynamic.to_str().unwrap(), "--set", "zzz=4"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot verify --set/--config keys") && err.contains("dynamic.rhai:2"), "{err}");
    let nb = dir.join("nb.md");
    std::fs::write(&nb, "```rhai\nprint(1);\n```\n").unwrap();
    let (code, _, _) = retort(&["notebook", "run", nb.to_str().unwrap(), "--set", "lr=3"]);
    assert_eq!(code, 1);
    assert!(std::fs::read_to_string(&nb).unwrap().contains("'lr' (from --set lr) was never declared"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flags_that_would_be_ignored_are_usage_errors() {
    let (code, _, err) = retort(&["run", "--resume", "runs/none", "--seed", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--seed"), "{err}");
    let (code, _, err) = retort(&["run", "scripts/01-tensors.rhai", "--max-operations", "0"]);
    assert_eq!(code, 2, "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_retort")).args(["models"]).env("RETORT_MAX_MEMORY", "abc").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RETORT_MAX_MEMORY: 'abc' is not a size"));
}

#[test]
fn save_weights_cannot_overwrite_the_run_record() {
    let dir = temp("reserved");
    let script = dir.join("s.rhai");
    std::fs::write(&script, "let m = model(\"mlp\", #{ input: 4, hidden: [3], classes: 2 });\nsave_weights(m, \"config.yaml\");\n")
        .unwrap();
    let (code, _, err) = retort(&["run", script.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("would overwrite the run record's own config.yaml"), "{err}");
    let config = std::fs::read_to_string(dir.join("run/config.yaml")).unwrap();
    assert!(config.contains("script_hash"), "{config}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// A closed or full stdout ends in an error, never a panic.
#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("Linux's /dev/full");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_retort")).args(["models"]).stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device") && !err.contains("panicked at"), "{err}");
}

// NaN propagates through relu, maximum/minimum and max/min, as in PyTorch, instead of
// turning into 0 or 1 and hiding a diverged value.
#[test]
fn nan_propagates_through_relu_and_extrema() {
    let (code, out, err) = run_script(
        "nan",
        "let n = 0.0 / 0.0;\nprint(relu(tensor([n, -1.0, 2.0])).to_array());\nprint(maximum(tensor([n, 1.0]), 0.0).to_array());\nprint(minimum(tensor([n, 1.0]), 0.0).to_array());\nprint(max(tensor([1.0, n])).item());\nprint(min(tensor([n, 1.0])).item());\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "[NaN, 0.0, 2.0]\n[NaN, 1.0]\n[NaN, 0.0]\nNaN\nNaN\n");
}

#[test]
fn a_cell_inside_a_list_item_reports_its_own_column() {
    let dir = temp("nested");
    let nb = dir.join("n.md");
    std::fs::write(&nb, "- item\n\n  ```rhai\n  let a = 1 +\n    nope1();\n  ```\n").unwrap();
    let (code, _, _) = retort(&["notebook", "run", nb.to_str().unwrap()]);
    assert_eq!(code, 1);
    let text = std::fs::read_to_string(&nb).unwrap();
    assert!(text.contains("n.md:5:5"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// An IDX header whose dims multiply past 2^64 (three 32-bit dims of 0xFFFFFFFF) is an error
// naming the file and byte, not a wrapped size or a 140 TB allocation.
#[test]
fn an_idx_header_past_2_pow_64_is_an_error() {
    let dir = temp("idx");
    let path = dir.join("train-images-idx3-ubyte");
    let mut bytes = 0x0803u32.to_be_bytes().to_vec();
    bytes.extend([0xff; 12]);
    bytes.extend([0u8; 64]);
    std::fs::write(&path, &bytes).unwrap();
    let e = retort::data::idx::read_images(&path).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("byte 4") && e.contains("more than 2^64 bytes"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// A reader that closes the pipe early (`retort models | head -1`) ends retort quietly, by
// SIGPIPE as it ends `cat`, never with a panic.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["models"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{:?} {err}", out.status);
}
