//! A model's weights as safetensors with PyTorch `state_dict` names, both ways.

use super::safetensors::{Dtype, Entry, SafeTensors};
use crate::error::{Error, Result};
use crate::nn::Model;
use std::path::Path;

/// The model's parameters and buffers (`num_batches_tracked` as I64, like PyTorch).
pub fn to_safetensors(model: &Model) -> SafeTensors {
    let mut s = SafeTensors::default();
    for p in model.params() {
        let mut e = Entry::f32(p.shape(), &p.values());
        if p.name().ends_with("num_batches_tracked") {
            e.dtype = Dtype::I64;
        }
        s.tensors.insert(p.name().to_string(), e);
    }
    s.metadata.insert("format".into(), "pt".into());
    s.metadata.insert("retort_arch".into(), model.arch().into());
    s
}

/// Loads every parameter and buffer of `model` from `s` (as PyTorch's `load_state_dict`, strict).
///
/// A missing `num_batches_tracked` (state_dicts saved before PyTorch 0.4.1 lack it, and PyTorch
/// fills it in) is taken as 0.
pub fn load_into(model: &Model, s: &SafeTensors, path: &Path) -> Result<()> {
    let optional = |n: &str| n.ends_with("num_batches_tracked");
    let missing: Vec<&str> = model.params().iter().map(|p| p.name()).filter(|n| !s.tensors.contains_key(*n) && !optional(n)).collect();
    let known: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
    let unexpected: Vec<&str> = s.tensors.keys().map(|k| k.as_str()).filter(|k| !k.starts_with("optim.") && !known.contains(k)).collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        let show = |v: &[&str]| v.iter().take(5).copied().collect::<Vec<_>>().join(", ") + if v.len() > 5 { ", ..." } else { "" };
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing {} of its {} names [{}]", missing.len(), known.len(), show(&missing)));
        }
        if !unexpected.is_empty() {
            parts.push(format!("unexpected {} [{}]", unexpected.len(), show(&unexpected)));
        }
        return Err(Error::file(path, format!("does not fit a {} model: {}", model.arch(), parts.join(", "))));
    }
    // check everything before changing anything
    for p in model.params() {
        let Some(e) = s.tensors.get(p.name()) else { continue };
        if let Some(i) = e.values.iter().position(|v| !(*v as f32).is_finite()) {
            return Err(Error::file(path, format!("tensor '{}' holds {} at index {i}, which is not a finite f32", p.name(), e.values[i])));
        }
        let shape: Vec<usize> = if e.shape.is_empty() { vec![] } else { e.shape.clone() };
        if shape != p.shape() {
            return Err(Error::file(path, format!("tensor '{}' has shape {:?}, the model needs {:?}", p.name(), e.shape, p.shape())));
        }
    }
    for p in model.params() {
        p.set(s.tensors.get(p.name()).map_or_else(|| vec![0.0; p.len()], Entry::as_f32))?;
    }
    Ok(())
}

pub fn save(model: &Model, path: &Path) -> Result<()> {
    to_safetensors(model).write(path)
}

/// Loads `model`'s weights from a safetensors file or a PyTorch checkpoint (`.pth`/`.pt`,
/// told apart by their first bytes; see [`super::pth`] for where its state_dict is found).
pub fn load(model: &Model, path: &Path) -> Result<()> {
    load_with_key(model, path, None)
}

/// [`load`], with a PyTorch checkpoint's state_dict taken from top-level key `key`.
pub fn load_with_key(model: &Model, path: &Path, key: Option<&str>) -> Result<()> {
    load_into(model, &read_any(path, key)?.0, path)
}

/// Reads a safetensors file or a PyTorch checkpoint (the latter with what was found where).
pub fn read_any(path: &Path, key: Option<&str>) -> Result<(SafeTensors, Option<super::pth::Found>)> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(512).read_to_end(&mut head)).map_err(|e| Error::file(path, e.to_string()))?;
    if super::pth::sniff(&head) {
        let (s, found) = super::pth::read(path, key)?;
        return Ok((s, Some(found)));
    }
    // safetensors: an 8-byte header length, then the JSON header
    if head.get(8) != Some(&b'{') {
        let what = if head.is_empty() {
            "an empty file".to_string()
        } else {
            format!("{} bytes starting {:?}", head.len().min(8), String::from_utf8_lossy(&head[..head.len().min(8)]))
        };
        return Err(Error::file(
            path,
            format!("is neither a PyTorch checkpoint (a zip or pickle from torch.save) nor a safetensors file ({what})"),
        ));
    }
    if let Some(k) = key {
        return Err(Error::file(path, format!("is a safetensors file, which has no top-level keys to choose from (key '{k}')")));
    }
    Ok((SafeTensors::read(path)?, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModelConfig;

    #[test]
    fn weights_round_trip_and_mismatches_are_errors() {
        let dir = std::env::temp_dir().join(format!("retort-w-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        let cfg = |seed| ModelConfig { classes: 10, input: vec![1, 8, 8], channels: vec![4], seed, ..Default::default() };
        let a = Model::new("cnn", cfg(1)).unwrap();
        let b = Model::new("cnn", cfg(2)).unwrap();
        save(&a, &path).unwrap();
        load(&b, &path).unwrap();
        for (p, q) in a.params().iter().zip(b.params()) {
            assert_eq!(p.values(), q.values(), "{}", p.name());
        }
        let other = Model::new("mlp", ModelConfig { classes: 10, input: vec![64], hidden: vec![4], ..Default::default() }).unwrap();
        let e = load(&other, &path).unwrap_err().to_string();
        assert!(
            e.contains("m.safetensors")
                && e.contains("missing 4 of its 4 names [layers.0.weight")
                && e.contains("unexpected 8 [fc.bias, fc.weight, features.0.weight"),
            "{e}"
        );
        let wider = Model::new("cnn", ModelConfig { channels: vec![5], ..cfg(1) }).unwrap();
        assert!(load(&wider, &path).unwrap_err().to_string().contains("has shape [4, 1, 3, 3], the model needs [5, 1, 3, 3]"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // An old PyTorch state_dict (before 0.4.1) has no num_batches_tracked; PyTorch fills it in as 0.
    #[test]
    fn a_state_dict_without_num_batches_tracked_loads_with_zero() {
        let cfg = |seed| ModelConfig { classes: 10, input: vec![1, 8, 8], channels: vec![4], seed, ..Default::default() };
        let a = Model::new("cnn", cfg(1)).unwrap();
        let mut s = to_safetensors(&a);
        s.tensors.retain(|k, _| !k.ends_with("num_batches_tracked"));
        let b = Model::new("cnn", cfg(2)).unwrap();
        b.param("features.1.num_batches_tracked").unwrap().set(vec![7.0]).unwrap();
        load_into(&b, &s, Path::new("old.safetensors")).unwrap();
        assert_eq!(b.param("features.1.num_batches_tracked").unwrap().values().to_vec(), vec![0.0]);
        assert_eq!(b.param("features.0.weight").unwrap().values(), a.param("features.0.weight").unwrap().values());
        // any other missing key is still an error
        s.tensors.remove("fc.bias");
        let e = load_into(&b, &s, Path::new("old.safetensors")).unwrap_err().to_string();
        assert!(e.contains("missing 1 of its 8 names [fc.bias]") && !e.contains("unexpected"), "{e}");
    }
}
