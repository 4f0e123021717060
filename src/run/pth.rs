//! PyTorch checkpoints (`.pth`, `.pt`: what `torch.save` writes) through the `pytorch-reader`
//! crate: the zip format of PyTorch 1.6 and later and the legacy format of 0.4 through 1.5
//! (RepDistiller's and mdistiller's published teachers). The pickle is parsed, never run:
//! classes are names, and opcodes the reader does not know are refused.
//!
//! The state_dict is found under a key the caller names, else under `model`, `state_dict`
//! or `net` (the benchmarks' `{"model": state_dict, "epoch": .., ...}`), else at the top. A
//! `module.` prefix on every name (a model saved inside `nn.DataParallel`) is removed. Every
//! dtype becomes f64 values in a [`SafeTensors`] (f16, bf16 and f64 included), so loading
//! and its errors are those of the safetensors path.

use super::safetensors::{Dtype, Entry, SafeTensors};
use crate::error::{Error, Result};
use crate::tensor::limits;
use pytorch_reader::{DType, PickleValue, PytorchError, PytorchReader};
use std::path::Path;

/// The keys a checkpoint's state_dict is looked for under, in order, before the top level.
pub const STATE_DICT_KEYS: &[&str] = &["model", "state_dict", "net"];

/// What [`read`] found besides the tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The top-level key the state_dict came from (`None`: the top level).
    pub key: Option<String>,
    /// Whether a `module.` prefix was removed from every name.
    pub stripped_module: bool,
    /// The checkpoint's other top-level entries with a short rendering of each value
    /// (`epoch: 240`, `optimizer: dict of 3 entries`).
    pub others: Vec<(String, String)>,
    /// The container: `zip` (PyTorch 1.6+), `legacy` (0.1.10-1.5), `tar` or `pickle`.
    pub format: String,
}

/// Whether `bytes` (a file's first bytes) look like a PyTorch checkpoint rather than
/// safetensors: a zip archive, a pickle (protocol 2+), or a tar archive.
pub fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.first() == Some(&0x80) || bytes.get(257..262) == Some(b"ustar")
}

fn error(path: &Path, e: PytorchError) -> Error {
    let hint = match &e {
        PytorchError::Pickle(_) => {
            " (not a PyTorch checkpoint, or a damaged one; retort reads pickles without running them and refuses what it cannot parse)"
        }
        PytorchError::Zip(_) => " (a truncated or damaged zip checkpoint)",
        _ => "",
    };
    Error::file(path, format!("cannot read it as a PyTorch checkpoint: {e}{hint}"))
}

/// Reads the state_dict of the checkpoint at `path` (under `key` when given; see the module
/// docs for where it is looked for otherwise) as f64 values by PyTorch name.
///
/// Errors: a file that is not a PyTorch checkpoint or is damaged (naming why), a `key`
/// that is not there (naming the keys that are), a state_dict with no tensors, a tensor
/// whose bytes cannot be read.
pub fn read(path: &Path, key: Option<&str>) -> Result<(SafeTensors, Found)> {
    let top = PytorchReader::read_pickle_data(path, None).map_err(|e| error(path, e))?;
    let used = match (key, &top) {
        (Some(k), PickleValue::Dict(d)) => {
            if let Some(v) = d.get(k).filter(|v| !matches!(v, PickleValue::Dict(_))) {
                return Err(not_a_state_dict(path, &format!("its '{k}' entry"), v));
            }
            Some(k.to_string())
        }
        (Some(k), _) => Some(k.to_string()),
        (None, PickleValue::Dict(d)) => {
            let nested = STATE_DICT_KEYS.iter().find(|k| matches!(d.get(**k), Some(PickleValue::Dict(_))));
            // a state_dict key holding something else (an object that would call code) is
            // refused, not passed over for the top level
            let other = STATE_DICT_KEYS.iter().find_map(|k| d.get(*k).filter(|v| !matches!(v, PickleValue::Dict(_))).map(|v| (k, v)));
            match (nested, other) {
                (Some(k), _) => Some(k.to_string()),
                (None, Some((k, v))) if !d.values().any(is_tensor) => {
                    return Err(not_a_state_dict(path, &format!("its '{k}' entry"), v));
                }
                _ => None,
            }
        }
        (None, other) => return Err(not_a_state_dict(path, "its top level", other)),
    };
    let reader = match &used {
        Some(k) => PytorchReader::with_top_level_key(path, k),
        None => PytorchReader::new(path),
    }
    .map_err(|e| error(path, e))?;
    if reader.is_empty() {
        let at = used.as_deref().map_or("at its top level".to_string(), |k| format!("under '{k}'"));
        return Err(Error::file(
            path,
            format!("holds no tensors {at}; name the key of its state_dict (the keys it has: {})", keys_of(&top)),
        ));
    }
    let format = format!("{:?}", reader.metadata().format_type).to_lowercase();
    let mut names: Vec<String> = reader.keys();
    names.sort();
    let stripped_module = names.iter().all(|n| n.starts_with("module."));
    // the sizes the pickle declares, held to the memory cap before anything is read: each
    // tensor alone, then all of them together
    let mut total = 0usize;
    for name in &names {
        let t = &reader.tensors()[name];
        let n = limits::numel("pth", t.shape()).map_err(|e| Error::file(path, format!("tensor '{name}': {e}")))?;
        limits::fits("pth", &format!("tensor '{name}'"), n, std::mem::size_of::<f64>()).map_err(|e| Error::file(path, e.to_string()))?;
        total = total.saturating_add(n);
    }
    limits::fits("pth", &format!("its {} tensors together", names.len()), total, std::mem::size_of::<f64>())
        .map_err(|e| Error::file(path, e.to_string()))?;
    let mut out = SafeTensors::default();
    for name in &names {
        let t = &reader.tensors()[name];
        let bytes = t.read().map_err(|e| Error::file(path, e.to_string()))?;
        let (dtype, values) = decode(t.dtype(), &bytes);
        let name = if stripped_module { name.strip_prefix("module.").unwrap_or(name) } else { name };
        out.tensors.insert(name.to_string(), Entry { dtype, shape: t.shape().to_vec(), values });
    }
    let others = match &top {
        PickleValue::Dict(d) if used.is_some() => {
            // the whole file's tensors, parsed once, only when an entry is a tensor
            let flat = d.values().any(is_tensor).then(|| PytorchReader::new(path).ok()).flatten();
            let mut v: Vec<(String, String)> = d
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != used.as_deref())
                .map(|(k, v)| (k.clone(), render(flat.as_ref(), k, v)))
                .collect();
            v.sort();
            v
        }
        _ => vec![],
    };
    Ok((out, Found { key: used, stripped_module, others, format }))
}

/// The error for a place in a checkpoint that holds something other than a state_dict.
fn not_a_state_dict(path: &Path, at: &str, v: &PickleValue) -> Error {
    let what = match v {
        PickleValue::Unsupported(t) => {
            format!("a {t} object; retort reads pickles without running them, so an object that would be built by calling code is refused")
        }
        other => format!("{}, not a state_dict (a dictionary of tensors)", render_plain(other)),
    };
    Error::file(path, format!("{at} is {what}"))
}

/// The top-level keys of a checkpoint, for error messages.
fn keys_of(top: &PickleValue) -> String {
    match top {
        PickleValue::Dict(d) => {
            let mut k: Vec<&str> = d.keys().map(|k| k.as_str()).collect();
            k.sort();
            k.join(", ")
        }
        _ => "none: its root is not a dictionary".into(),
    }
}

/// A short rendering of a top-level entry: its value, a small tensor's values from `flat`
/// (the file's tensors; RepDistiller saves `accuracy` as a tensor), or what it is.
fn render(flat: Option<&PytorchReader>, key: &str, v: &PickleValue) -> String {
    let small = flat.filter(|_| is_tensor(v)).and_then(|r| {
        let t = r.get(key).filter(|t| t.num_elements() <= 8)?;
        Some(decode(t.dtype(), &t.read().ok()?).1)
    });
    match small {
        Some(values) if values.len() == 1 => (values[0] as f32).to_string(),
        Some(values) => format!("[{}]", values.iter().map(|v| (*v as f32).to_string()).collect::<Vec<_>>().join(", ")),
        None => render_plain(v),
    }
}

/// Whether a pickled value is a tensor (or a parameter), which the reader names but does not
/// interpret here.
fn is_tensor(v: &PickleValue) -> bool {
    matches!(v, PickleValue::Unsupported(t) if t.contains("ensor") || t.contains("arameter"))
}

/// A short rendering of a non-tensor value.
fn render_plain(v: &PickleValue) -> String {
    match v {
        PickleValue::None => "None".into(),
        PickleValue::Bool(b) => b.to_string(),
        PickleValue::Int(i) => i.to_string(),
        PickleValue::Float(f) => f.to_string(),
        PickleValue::String(s) if s.chars().count() <= 60 => format!("{s:?}"),
        PickleValue::String(s) => format!("a string of {} characters", s.chars().count()),
        PickleValue::List(l) => format!("a list of {} entries", l.len()),
        PickleValue::Dict(d) => format!("a dict of {} entries", d.len()),
        PickleValue::Bytes(b) => format!("{} bytes", b.len()),
        PickleValue::Unsupported(t) => format!("a {t}"),
    }
}

/// Native-endian bytes of `dtype` as f64 values, and the safetensors dtype that names them
/// (integers wider than 32 bits as I64, narrower ones as I32; booleans as I32 0/1).
fn decode(dtype: DType, b: &[u8]) -> (Dtype, Vec<f64>) {
    fn each<const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
        b.chunks_exact(N).map(|c| f(c.try_into().expect("chunks_exact gives N bytes"))).collect()
    }
    match dtype {
        DType::F64 => (Dtype::F64, each(b, f64::from_ne_bytes)),
        DType::F32 => (Dtype::F32, each(b, |c| f32::from_ne_bytes(c) as f64)),
        DType::F16 => (Dtype::F16, each(b, |c| half::f16::from_ne_bytes(c).to_f64())),
        DType::BF16 => (Dtype::BF16, each(b, |c| half::bf16::from_ne_bytes(c).to_f64())),
        DType::I64 => (Dtype::I64, each(b, |c| i64::from_ne_bytes(c) as f64)),
        DType::U64 => (Dtype::I64, each(b, |c| u64::from_ne_bytes(c) as f64)),
        DType::I32 => (Dtype::I32, each(b, |c| i32::from_ne_bytes(c) as f64)),
        DType::U32 => (Dtype::I64, each(b, |c| u32::from_ne_bytes(c) as f64)),
        DType::I16 => (Dtype::I32, each(b, |c| i16::from_ne_bytes(c) as f64)),
        DType::U16 => (Dtype::I32, each(b, |c| u16::from_ne_bytes(c) as f64)),
        DType::I8 => (Dtype::I32, each(b, |c: [u8; 1]| c[0] as i8 as f64)),
        DType::U8 | DType::Bool => (Dtype::I32, each(b, |c: [u8; 1]| c[0] as f64)),
    }
}
