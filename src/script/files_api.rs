//! Files from scripts: weights (safetensors with PyTorch names) and NumPy arrays, written only
//! inside the run directory and read from anywhere.

use super::convert::{err, lib, Res};
use super::state::State;
use super::train_api::ModelRef;
use crate::def;
use crate::tensor::Tensor;
use rhai::Engine;
use std::rc::Rc;

/// Where `op` writes `path` in the run directory: a relative path inside it that is not one of
/// the run record's own files (its folders made).
fn run_dir_file(st: &State, op: &str, path: &str) -> Res<std::path::PathBuf> {
    let Some(rec) = st.recording() else {
        return err(format!("{op}: this run has no run directory to write in (it was started with --no-record)"));
    };
    let rel = std::path::Path::new(path);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) || path.is_empty() {
        return err(format!("{op}: '{path}' must be a relative path inside the run directory (scripts write only there)"));
    }
    // the run record's own files are not the script's to overwrite
    const RECORD: [&str; 7] = ["config.yaml", "metrics.jsonl", "summary.yaml", "curves.png", "report.md", "checkpoints", "source"];
    if let Some(first) = rel.components().next().and_then(|c| c.as_os_str().to_str()) {
        if RECORD.contains(&first) {
            return err(format!("{op}: '{path}' would overwrite the run record's own {first}; choose another name"));
        }
    }
    let target = rec.dir.path.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{op}: {}: {e}", parent.display()))?;
    }
    Ok(target)
}

pub fn register(engine: &mut Engine, state: &Rc<State>) {
    let st = state.clone();
    def!(
        engine,
        "save_weights",
        "Saves a model's weights as safetensors with PyTorch names, inside the run directory\n\
        (scripts write nowhere else; the path is relative to it).\n\
        ```rhai\n\
        let m = model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 });\n\
        // save_weights(m, \"mlp.safetensors\");\n\
        ```",
        move |m: ModelRef, path: &str| {
            let target = run_dir_file(&st, "save_weights", path)?;
            lib(crate::run::weights::save(&m.model, &target)).map(|_| target.display().to_string())
        }
    );
    let st = state.clone();
    def!(
        engine,
        "save_npy",
        "Saves a tensor as a float32 NumPy `.npy` file inside the run directory (the path is relative to it) and returns its path;\n\
        `np.load` reads it with the tensor's shape.\n\
        ```rhai\n\
        // save_npy(model_logits, \"test-logits.npy\");\n\
        ```",
        move |x: Tensor, path: &str| {
            let target = run_dir_file(&st, "save_npy", path)?;
            lib(crate::run::npy::write(&target, x.shape(), x.data())).map(|_| target.display().to_string())
        }
    );
    def!(
        engine,
        "load_npy",
        "Loads a NumPy `.npy` file (floats, integers or booleans, C order) as a float32 tensor of its shape.\n\
        ```rhai\n\
        // let logits = load_npy(\"runs/teacher/test-logits.npy\");\n\
        ```",
        |path: &str| {
            let npy = lib(crate::run::npy::read(std::path::Path::new(path)))?;
            lib(Tensor::from_vec(npy.values, &npy.shape))
        }
    );
    def!(
        engine,
        "load_weights",
        "Loads weights with PyTorch names into a model (all names and shapes must match, as \
        `load_state_dict(strict=True)`): a safetensors file, or a PyTorch checkpoint (`.pth`/`.pt`, \
        zip or legacy format) whose state_dict is under `model`, `state_dict` or `net` or at the top; \
        a `module.` prefix is removed and f16/bf16/f64 become f32. The pickle is read, never run.\n\
        ```rhai\n\
        let m = model(\"resnet32x4\", #{ input: [3, 32, 32], classes: 100 });\n\
        // load_weights(m, \"resnet32x4_vanilla/ckpt_epoch_240.pth\");\n\
        ```",
        |m: ModelRef, path: &str| lib(crate::run::weights::load(&m.model, std::path::Path::new(path)))
    );
    def!(
        engine,
        "load_weights",
        "Loads a PyTorch checkpoint's state_dict from top-level key `key` (e.g. `\"ema\"`, \
        `\"model_state_dict\"`) into a model; otherwise as `load_weights(model, path)`.\n\
        ```rhai\n\
        let m = model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 });\n\
        // load_weights(m, \"checkpoint.pth\", \"model_state_dict\");\n\
        ```",
        |m: ModelRef, path: &str, key: &str| lib(crate::run::weights::load_with_key(&m.model, std::path::Path::new(path), Some(key)))
    );
}
