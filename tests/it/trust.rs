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
