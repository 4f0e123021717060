//! The safetensors format (what PyTorch's `safetensors.torch.save_file` writes): an 8-byte
//! little-endian header length, a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {..}}`,
//! then the raw little-endian data. Reading validates every offset and size.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Element types retort reads (all converted to f32 for a model) and writes (F32, F64, I64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F16,
    BF16,
    F32,
    F64,
    I32,
    I64,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I32 => "I32",
            Dtype::I64 => "I64",
        }
    }
    fn parse(name: &str) -> Option<Dtype> {
        [Dtype::F16, Dtype::BF16, Dtype::F32, Dtype::F64, Dtype::I32, Dtype::I64].into_iter().find(|d| d.name() == name)
    }
    fn size(self) -> usize {
        match self {
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }
    /// Little-endian bytes of one value as f64 (exact for every type but I64 beyond 2^53).
    fn decode(self, c: &[u8]) -> f64 {
        match self {
            Dtype::F16 => half::f16::from_le_bytes([c[0], c[1]]).to_f64(),
            Dtype::BF16 => half::bf16::from_le_bytes([c[0], c[1]]).to_f64(),
            Dtype::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            Dtype::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            Dtype::F64 => f64::from_le_bytes(c.try_into().expect("8 bytes")),
            Dtype::I64 => i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64,
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
                    Dtype::F16 => out.extend(half::f16::from_f64(*v).to_le_bytes()),
                    Dtype::BF16 => out.extend(half::bf16::from_f64(*v).to_le_bytes()),
                    Dtype::F32 => out.extend((*v as f32).to_le_bytes()),
                    Dtype::F64 => out.extend(v.to_le_bytes()),
                    Dtype::I32 => out.extend((*v as i32).to_le_bytes()),
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
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        for (name, v) in header {
            if name == "__metadata__" {
                for (k, v) in v.as_object().ok_or_else(|| bad("__metadata__ is not an object".into()))? {
                    out.metadata.insert(k.clone(), v.as_str().ok_or_else(|| bad(format!("metadata '{k}' is not a string")))?.to_string());
                }
                continue;
            }
            let dtype = match v["dtype"].as_str() {
                Some(d) => Dtype::parse(d).ok_or_else(|| {
                    Error::file(
                        path,
                        format!(
                            "tensor '{name}' has dtype {d}, which retort cannot convert to f32 (it reads F16, BF16, F32, F64, I32 and I64)"
                        ),
                    )
                })?,
                None => return Err(bad(format!("tensor '{name}' has no dtype"))),
            };
            let shape: Vec<usize> = v["shape"]
                .as_array()
                .ok_or_else(|| bad(format!("tensor '{name}' has no shape")))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("tensor '{name}' has a bad shape")))?;
            let offs: Option<Vec<usize>> =
                v["data_offsets"].as_array().and_then(|a| a.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect());
            let Some([begin, end]) = offs.as_deref().map(|o| <[usize; 2]>::try_from(o).ok()).flatten() else {
                return Err(bad(format!("tensor '{name}' has bad data_offsets (two byte offsets are needed)")));
            };
            // checked: a corrupt shape can multiply past 2^64; the offsets are the bound
            let bytes_needed = shape.iter().try_fold(dtype.size(), |n, &d| n.checked_mul(d));
            if end < begin || Some(end - begin) != bytes_needed {
                return Err(bad(format!("tensor '{name}': offsets {begin}..{end} do not hold a {shape:?} {} tensor", dtype.name())));
            }
            if end > data.len() {
                return Err(bad(format!(
                    "tensor '{name}' ends at byte {end} of the data but the file has only {} (truncated?)",
                    data.len()
                )));
            }
            let raw = &data[begin..end];
            crate::tensor::limits::fits("safetensors", &format!("tensor '{name}'"), raw.len() / dtype.size(), std::mem::size_of::<f64>())?;
            let values = raw.chunks(dtype.size()).map(|c| dtype.decode(c)).collect();
            spans.push((begin, end, name.clone()));
            out.tensors.insert(name, Entry { dtype, shape, values });
        }
        // each tensor has bytes of its own
        spans.sort();
        for pair in spans.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(bad(format!(
                    "tensors '{}' and '{}' overlap in the data (bytes {}..{} and {}..{})",
                    pair[0].2, pair[1].2, pair[0].0, pair[0].1, pair[1].0, pair[1].1
                )));
            }
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

    // safetensors.torch.save_file({"w": torch.tensor([1.5, -2.0, 0.1], dtype=d)}) for d in
    // float16, bfloat16, float64: the values convert to f32 as `tensor.float()` does
    #[test]
    fn half_bfloat_and_double_tensors_read_as_their_values() {
        let p = Path::new("h.safetensors");
        let want = [(Dtype::F16, [1.5, -2.0, 0.0999755859375]), (Dtype::BF16, [1.5, -2.0, 0.10009765625]), (Dtype::F64, [1.5, -2.0, 0.1])];
        for (dtype, values) in want {
            let mut s = SafeTensors::default();
            s.tensors.insert("w".into(), Entry { dtype, shape: vec![3], values: vec![1.5, -2.0, 0.1] });
            let back = SafeTensors::from_bytes(&s.to_bytes(), p).unwrap();
            assert_eq!(back.tensors["w"].values, values, "{dtype:?}");
        }
        // a dtype that cannot become f32 is named
        let mut s = SafeTensors::default();
        s.tensors.insert("w".into(), Entry::f32(&[1], &[1.0]));
        let text = String::from_utf8_lossy(&s.to_bytes()).replace("\"F32\"", "\"C64\"");
        let e = SafeTensors::from_bytes(text.as_bytes(), p).unwrap_err().to_string();
        assert!(e.contains("dtype C64") && e.contains("cannot convert"), "{e}");
        // a shape that multiplies past 2^64 is an error, not an overflow
        let header = br#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes.extend([0u8; 4]);
        let e = SafeTensors::from_bytes(&bytes, p).unwrap_err().to_string();
        assert!(e.contains("do not hold a [4294967296, 4294967296, 16] F32 tensor"), "{e}");
    }
}
