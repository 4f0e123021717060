//! `retort runs`, `retort runs compare` (golden outputs on fixed run records) and the PNG
//! curves of a real run.

use super::scripts::retort;
use std::path::{Path, PathBuf};

fn fixture_run(root: &Path, name: &str, seed: u64, temperature: f32, best: f32, finished: bool) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!("retort_version: 0.1.0\nscript: scripts/study.rhai\nscript_hash: 00ff00ff00ff00ff\nseed: {seed}\ncreated: 2026-11-28 10:00:0{seed}\nconfig_file: null\nsets: []\nparams:\n  epochs: 40\n  distill:\n    temperature: {temperature}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("summary.yaml"),
        format!("stages:\n- stage: 1\n  label: fit resnet20\n  kind: fit\n  student: resnet20\n  teacher: null\n  loss: ce\n  temperature: null\n  alpha: null\n  epochs: 40\n  best_accuracy: 0.91\n  best_epoch: 38\n  final_accuracy: 0.905\n  seconds: 100.0\n- stage: 2\n  label: distill resnet20 -> resnet8 (wsl)\n  kind: distill\n  student: resnet8\n  teacher: resnet20\n  loss: wsl\n  temperature: {temperature}\n  alpha: 2.25\n  epochs: 40\n  best_accuracy: {best}\n  best_epoch: 40\n  final_accuracy: {best}\n  seconds: 80.5\nfinished: {finished}\nseconds: 180.5\n"),
    )
    .unwrap();
    dir
}

fn golden(out: &str, name: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scripts").join(name);
    if std::env::var_os("RETORT_BLESS").is_some() {
        std::fs::write(&path, out).unwrap();
    }
    assert_eq!(out, std::fs::read_to_string(&path).unwrap(), "output differs from {}", path.display());
}

#[test]
fn runs_and_compare_match_their_golden_output() {
    let root = std::env::temp_dir().join(format!("retort-runs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let a = fixture_run(&root, "a-t4", 1, 4.0, 0.8812, true);
    let b = fixture_run(&root, "b-t2", 2, 2.0, 0.8766, false);
    std::fs::create_dir_all(root.join("not-a-run")).unwrap();
    let (code, out, err) = retort(&["runs", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    golden(&out, "runs.out");
    let (code, out, err) = retort(&["runs", "compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    golden(&out, "runs-compare.out");
    let (code, _, err) = retort(&["runs", "compare", root.join("not-a-run").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not-a-run") && err.contains("not a run directory"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn curves_png_is_a_real_plot() {
    let root = std::env::temp_dir().join(format!("retort-png-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let script = root.join("s.rhai");
    std::fs::write(&script, "let d = dataset(\"digits\", #{ train_limit: 300, test_limit: 100 });\nlet m = model(\"mlp\", #{ input: d.input, hidden: [16], classes: d.classes });\nfit(m, d, #{ epochs: 5, optimizer: sgd(#{ lr: 0.1, momentum: 0.9 }) });\n").unwrap();
    let run = root.join("run");
    let (code, _, err) = retort(&["run", script.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let img = image::open(run.join("curves.png")).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1200, 480));
    // white background in the corner, black text and axes, and the first series' colour
    assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255]);
    let count = |rgb: [u8; 3]| img.pixels().filter(|p| p.0 == rgb).count();
    assert!(count([0, 0, 0]) > 500, "axes and labels");
    let first_series = [230, 25, 75]; // plotters' Palette99 colour 0
    assert!(count(first_series) > 200, "the curves are drawn: {}", count(first_series));
    // both panels hold the curve: left and right halves
    let in_half = |left: bool| img.enumerate_pixels().filter(|(x, _, p)| (*x < 600) == left && p.0 == first_series).count();
    assert!(in_half(true) > 50 && in_half(false) > 50);
    // retort plot draws several runs into one file
    let out = root.join("both.png");
    let (code, _, err) = retort(&["plot", run.to_str().unwrap(), run.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(image::open(&out).unwrap().to_rgb8().dimensions(), (1200, 480));
    std::fs::remove_dir_all(&root).unwrap();
}
