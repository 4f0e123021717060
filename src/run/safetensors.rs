//! The safetensors format (what PyTorch's `safetensors.torch.save_file` writes): an 8-byte
//! little-endian header length, a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {..}}`,
//! then the raw little-endian data. Reading validates every offset and size.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Element types retort reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    I64,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
        }
    }
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }
}

/// One named tensor: its shape and its values as f64 (exact for f32 and for counts).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl Entry {
    pub fn f32(shape: &[usize], values: &[f32]) -> Entry {
        Entry { dtype: Dtype::F32, shape: shape.to_vec(), values: values.iter().map(|v| *v as f64).collect() }
    }
    pub fn as_f32(&self) -> Vec<f32> {
        self.values.iter().map(|v| *v as f32).collect()
    }
}

/// Tensors in name order plus string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafeTensors {
    pub tensors: BTreeMap<String, Entry>,
    pub metadata: BTreeMap<String, String>,
}

impl SafeTensors {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = Map::new();
        if !self.metadata.is_empty() {
            header.insert(
                "__metadata__".into(),
                Value::Object(self.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
            );
        }
        let mut offset = 0usize;
        for (name, e) in &self.tensors {
            let len = e.values.len() * e.dtype.size();
            let mut t = Map::new();
            t.insert("dtype".into(), e.dtype.name().into());
            t.insert("shape".into(), e.shape.iter().map(|d| Value::from(*d)).collect());
            t.insert("data_offsets".into(), Value::Array(vec![offset.into(), (offset + len).into()]));
            header.insert(name.clone(), Value::Object(t));
            offset += len;
        }
        let mut json = serde_json::to_vec(&Value::Object(header)).expect("a JSON object serializes");
        // pad the header with spaces so the data starts 8-byte aligned, as the reference writer does
        while (8 + json.len()) % 8 != 0 {
            json.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + json.len() + offset);
        out.extend((json.len() as u64).to_le_bytes());
        out.extend(json);
        for e in self.tensors.values() {
            for v in &e.values {
                match e.dtype {
                    Dtype::F32 => out.extend((*v as f32).to_le_bytes()),
                    Dtype::F64 => out.extend(v.to_le_bytes()),
                    Dtype::I64 => out.extend((*v as i64).to_le_bytes()),
                }
            }
        }
        out
    }

    /// Parses a file's bytes; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<SafeTensors> {
        let bad = |m: String| Error::file(path, format!("not a valid safetensors file: {m}"));
        if bytes.len() < 8 {
            return Err(bad(format!("{} bytes is too short for the header length", bytes.len())));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        if n > bytes.len() - 8 {
            return Err(bad(format!("the header claims {n} bytes but the file has {} after the length (truncated?)", bytes.len() - 8)));
        }
        let header: Value = serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| bad(format!("header is not JSON ({e})")))?;
        let Value::Object(header) = header else { return Err(bad("header is not a JSON object".into())) };
        let data = &bytes[8 + n..];
        let mut out = SafeTensors::default();
        for (name, v) in header {
            if name == "__metadata__" {
                for (k, v) in v.as_object().ok_or_else(|| bad("__metadata__ is not an object".into()))? {
                    out.metadata.insert(k.clone(), v.as_str().ok_or_else(|| bad(format!("metadata '{k}' is not a string")))?.to_string());
                }
                continue;
            }
            let dtype = match v["dtype"].as_str() {
                Some("F32") => Dtype::F32,
                Some("F64") => Dtype::F64,
                Some("I64") => Dtype::I64,
                other => return Err(bad(format!("tensor '{name}' has dtype {other:?}; retort reads F32, F64 and I64"))),
            };
            let shape: Vec<usize> = v["shape"]
                .as_array()
                .ok_or_else(|| bad(format!("tensor '{name}' has no shape")))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("tensor '{name}' has a bad shape")))?;
            let offs: Vec<usize> =
                v["data_offsets"].as_array().map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect()).unwrap_or_default();
            let [begin, end] = offs[..] else { return Err(bad(format!("tensor '{name}' has bad data_offsets"))) };
            let count: usize = shape.iter().product();
            if end < begin || end - begin != count * dtype.size() {
                return Err(bad(format!("tensor '{name}': offsets {begin}..{end} do not hold {count} {} values", dtype.name())));
            }
            if end > data.len() {
                return Err(bad(format!(
                    "tensor '{name}' ends at byte {end} of the data but the file has only {} (truncated?)",
                    data.len()
                )));
            }
            let raw = &data[begin..end];
            let values = match dtype {
                Dtype::F32 => raw.chunks(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64).collect(),
                Dtype::F64 => raw.chunks(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect(),
                Dtype::I64 => raw.chunks(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64).collect(),
            };
            out.tensors.insert(name, Entry { dtype, shape, values });
        }
        Ok(out)
    }

    pub fn read(path: &Path) -> Result<SafeTensors> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Writes atomically: a temporary file beside `path`, then a rename.
    pub fn write(&self, path: &Path) -> Result<()> {
        super::atomic_write(path, &self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SafeTensors {
        let mut s = SafeTensors::default();
        s.tensors.insert("fc.weight".into(), Entry::f32(&[2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-8, -7.25]));
        s.tensors.insert("bn.num_batches_tracked".into(), Entry { dtype: Dtype::I64, shape: vec![], values: vec![42.0] });
        s.metadata.insert("epoch".into(), "3".into());
        s
    }

    #[test]
    fn round_trips_and_aligns_data() {
        let s = sample();
        let bytes = s.to_bytes();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + n) % 8, 0);
        assert_eq!(SafeTensors::from_bytes(&bytes, Path::new("x")).unwrap(), s);
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors_naming_the_file() {
        let bytes = sample().to_bytes();
        let p = Path::new("model.safetensors");
        for cut in [0, 4, 20, bytes.len() - 3] {
            let e = SafeTensors::from_bytes(&bytes[..cut], p).unwrap_err().to_string();
            assert!(e.contains("model.safetensors") && e.contains("not a valid safetensors file"), "{cut}: {e}");
        }
        let mut garbage = bytes.clone();
        garbage[8] = b'!';
        assert!(SafeTensors::from_bytes(&garbage, p).unwrap_err().to_string().contains("not JSON"));
    }
}
