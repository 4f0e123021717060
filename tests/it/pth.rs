//! PyTorch checkpoints (tests/fixtures/make_pth_fixture.py): the benchmarks' `{"model": sd,
//! "epoch": .., "accuracy": ..}` in the zip and the legacy format, a DataParallel
//! state_dict, f16, bf16 and f64 weights under other keys; each loads and gives PyTorch's
//! logits, as its safetensors conversion does. Damaged files, pickles without tensors and
//! pickles that would run code are errors, never a panic, and nothing is run.

use retort::nn::{Mode, Model, ModelConfig};
use retort::run::weights;
use retort::{Rng, Tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pth").join(name)
}

/// A fresh scratch folder for one test.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("retort-pth-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cnn() -> Model {
    Model::new("cnn", ModelConfig { classes: 10, input: vec![3, 8, 8], channels: vec![4, 8], seed: 5, ..Default::default() }).unwrap()
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

fn logits(model: &Model) -> Vec<f32> {
    let x: Vec<f32> = (0..2 * 3 * 8 * 8).map(|i| 0.01 * ((7 * i) % 23 - 11) as f32).collect();
    model.forward(&Tensor::from_vec(x, &[2, 3, 8, 8]).unwrap(), Mode::Eval, &mut Rng::new(0)).unwrap().data().to_vec()
}

fn assert_logits(model: &Model, tol: f64, what: &str) {
    let want: Vec<f64> = reference()["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let got = logits(model);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((*g as f64 - w).abs() <= tol * (1.0 + w.abs()), "{what}: logit {i}: retort {g} vs PyTorch {w}");
    }
}

fn retort(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_retort")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn benchmark_checkpoints_load_in_every_layout_and_give_pytorchs_logits() {
    let dir = temp_dir("layouts");
    for file in ["zip.pth", "legacy.pth", "dataparallel.pth", "double.pth", "repdistiller.pth"] {
        let m = cnn();
        weights::load(&m, &fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_logits(&m, 1e-5, file);
        // every value exactly PyTorch's float32 one
        let values = &reference()["values"];
        for p in m.params() {
            let want: Vec<f32> = values[p.name()].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            assert_eq!(p.values().to_vec(), want, "{file}: {}", p.name());
        }
        // the safetensors conversion gives the same model
        let out = dir.join(format!("{file}.safetensors"));
        let (code, stdout, err) = retort(&["weights", "convert", fixture(file).to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(stdout.contains("wrote 14 tensors"), "{stdout}");
        let c = cnn();
        weights::load(&c, &out).unwrap();
        assert_eq!(logits(&c), logits(&m), "{file}: converted");
    }
    // half precision: PyTorch's values rounded to f16 / bf16, so logits agree loosely
    for (file, tol) in [("half.pth", 5e-3), ("bf16.pth", 5e-2)] {
        let m = cnn();
        weights::load(&m, &fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_logits(&m, tol, file);
    }
}

#[test]
fn inspect_names_the_key_the_format_and_the_other_entries() {
    let (code, out, err) = retort(&["weights", "inspect", fixture("zip.pth").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "zip format",
        "state_dict at key 'model'",
        "epoch: 240",
        "accuracy: 79.4",
        "features.0.weight",
        "[4, 3, 3, 3]",
        "F32",
        "14 tensors",
    ] {
        assert!(out.contains(needle), "missing {needle} in\n{out}");
    }
    // RepDistiller saves the accuracy as a tensor: its value is shown
    let (code, out, _) = retort(&["weights", "inspect", fixture("repdistiller.pth").to_str().unwrap()]);
    assert!(
        code == 0 && out.contains("accuracy: 79.4") && out.contains("epoch: 240") && out.contains("optimizer: a dict of 2 entries"),
        "{out}"
    );
    let (code, out, _) = retort(&["weights", "inspect", fixture("legacy.pth").to_str().unwrap()]);
    assert!(code == 0 && out.contains("legacy format"), "{out}");
    let (_, out, _) = retort(&["weights", "inspect", fixture("dataparallel.pth").to_str().unwrap()]);
    assert!(out.contains("'module.'") && out.contains("the top level") && !out.contains("module.fc"), "{out}");
    let (_, out, _) = retort(&["weights", "inspect", fixture("bf16.pth").to_str().unwrap()]);
    assert!(out.contains("key 'net'") && out.contains("BF16") && out.contains("note: \"bf16\""), "{out}");
    // a key the user names, and one that is not there
    let (code, out, _) = retort(&["weights", "inspect", fixture("half.pth").to_str().unwrap(), "--key", "state_dict"]);
    assert!(code == 0 && out.contains("F16"), "{out}");
    let (code, _, err) = retort(&["weights", "inspect", fixture("zip.pth").to_str().unwrap(), "--key", "ema"]);
    assert_eq!(code, 1);
    assert!(err.contains("'ema' not found") && err.contains("accuracy") && err.contains("model"), "{err}");
}

#[test]
fn a_checkpoint_for_another_model_names_what_does_not_fit() {
    let m = Model::new("cnn", ModelConfig { classes: 10, input: vec![3, 8, 8], channels: vec![4, 16], ..Default::default() }).unwrap();
    let e = weights::load(&m, &fixture("zip.pth")).unwrap_err().to_string();
    assert!(e.contains("zip.pth") && e.contains("features.4.weight") && e.contains("[8, 4, 3, 3]") && e.contains("[16, 4, 3, 3]"), "{e}");
    let r = Model::new("resnet8", ModelConfig { classes: 10, ..Default::default() }).unwrap();
    let e = weights::load(&r, &fixture("legacy.pth")).unwrap_err().to_string();
    assert!(
        e.contains("missing ") && e.contains("conv1.weight") && e.contains("unexpected 12 [") && e.contains("features.0.weight"),
        "{e}"
    );
}

/// Writes `bytes` to a file in `dir` and loads it into a `cnn`, returning the error.
fn load_error(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let m = cnn();
    let before = m.params().iter().map(|p| p.values()).collect::<Vec<_>>();
    let e = weights::load(&m, &path).expect_err(name).to_string();
    assert_eq!(m.params().iter().map(|p| p.values()).collect::<Vec<_>>(), before, "{name}: the model changed");
    assert!(e.contains(name), "{name}: {e}");
    e
}

#[test]
fn damaged_and_hostile_pickles_are_errors_and_nothing_runs() {
    let dir = temp_dir("hostile");
    let dir = dir.as_path();
    let zip = std::fs::read(fixture("zip.pth")).unwrap();
    let legacy = std::fs::read(fixture("legacy.pth")).unwrap();
    for cut in [10, zip.len() / 3, zip.len() - 30] {
        load_error(dir, &format!("cut-{cut}.pth"), &zip[..cut]);
    }
    for cut in [3, legacy.len() / 2, legacy.len() - 8] {
        load_error(dir, &format!("legacy-cut-{cut}.pth"), &legacy[..cut]);
    }
    // bytes flipped inside the stored tensors: the zip's checksums catch them
    let mut flipped = zip.clone();
    let at = flipped.windows(6).position(|w| w == b"data/0").unwrap() + 200;
    flipped[at..at + 16].iter_mut().for_each(|b| *b ^= 0x5a);
    load_error(dir, "flipped.pth", &flipped);
    // a pickle of no tensors (protocol 2: {"a": 1})
    let e = load_error(dir, "plain.pth", b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.");
    assert!(e.contains("no tensors") && e.contains("a"), "{e}");
    // a pickle that, unpickled by Python, would call os.system("touch MARKER")
    let marker = dir.join("MARKER");
    let cmd = format!("touch {}", marker.display());
    // protocol 2: `head`, then the call os.system(cmd) (GLOBAL, the string, a 1-tuple, REDUCE), then `tail`
    let calling = |head: &[u8], tail: &[u8]| {
        let mut p = [head, b"cos\nsystem\nX"].concat();
        p.extend((cmd.len() as u32).to_le_bytes());
        p.extend(cmd.as_bytes());
        p.extend(b"\x85R");
        p.extend(tail);
        p
    };
    let evil = calling(b"\x80\x02", b".");
    let e = load_error(dir, "evil.pth", &evil);
    assert!(e.contains("its top level is a") && e.contains("system object") && e.contains("refused"), "{e}");
    let e = load_error(dir, "evil-dict.pth", &calling(b"\x80\x02}X\x05\x00\x00\x00model", b"s."));
    assert!(e.contains("its 'model' entry is a") && e.contains("system object") && e.contains("refused"), "{e}");
    // neither a checkpoint nor safetensors: an empty file, text
    for (name, bytes) in [("empty.pth", &b""[..]), ("notes.pth", &b"{\"epoch\": 240, \"accuracy\": 79.4}\n"[..])] {
        let e = load_error(dir, name, bytes);
        assert!(e.contains("neither a PyTorch checkpoint") && !e.contains("truncated"), "{e}");
    }
    assert!(!marker.exists(), "a pickle ran code");
    // an opcode the reader does not know
    let e = load_error(dir, "opcode.pth", b"\x80\x02\xff.");
    assert!(e.contains("PyTorch checkpoint"), "{e}");
    // the sizes a checkpoint declares are held to the memory cap before its bytes are read
    let out = Command::new(env!("CARGO_BIN_EXE_retort"))
        .env("RETORT_MAX_MEMORY", "1K")
        .args(["weights", "inspect", fixture("zip.pth").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("zip.pth") && err.contains("memory cap") && err.contains("RETORT_MAX_MEMORY"), "{err}");
    // each tensor is held to the cap alone (in name order, so the same one is named every
    // time), then all of them together
    let cap = |bytes: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_retort"))
            .env("RETORT_MAX_MEMORY", bytes)
            .args(["weights", "inspect", fixture("zip.pth").to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // fc.weight (320 values, 2,560 bytes as f64) is the first over 2 KiB in name order
    let e = cap("2K");
    assert!(e.contains("tensor 'fc.weight' needs 2.5 KiB (320 values)"), "{e}");
    assert!(cap("3K").contains("its 14 tensors together"), "{}", cap("3K"));
    // the command line says so too, with exit 1
    let (code, _, err) = retort(&["weights", "inspect", dir.join("evil.pth").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("evil.pth") && !err.contains("panicked"), "{err}");
    assert!(!marker.exists());
}

#[test]
fn a_script_loads_a_checkpoint_by_key_and_a_wrong_key_is_its_error() {
    let dir = temp_dir("script");
    let script = dir.join("load.rhai");
    let path = fixture("half.pth");
    std::fs::write(
        &script,
        format!(
            "let m = model(\"cnn\", #{{ input: [3, 8, 8], classes: 10, channels: [4, 8] }});\n\
             load_weights(m, {path:?}, \"state_dict\");\n\
             print(\"loaded \" + m.arch);\n\
             load_weights(m, {path:?}, \"ema\");\n",
            path = path.to_str().unwrap()
        ),
    )
    .unwrap();
    let (code, out, err) = retort(&["run", script.to_str().unwrap(), "--no-record"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("loaded cnn"), "{out}");
    assert!(err.contains("load.rhai:4:1") && err.contains("'ema' not found") && err.contains("state_dict"), "{err}");
}
