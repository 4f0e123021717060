//! Reading NumPy `.npy` arrays (little-endian f32 or f64, C order), e.g. precomputed teacher logits.

use crate::error::{Error, Result};
use std::path::Path;

/// An array's shape and its values as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = header[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// Parses `.npy` bytes; `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Npy> {
    let bad = |m: &str| Error::file(path, format!("not a usable .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("it does not start with the NumPy magic"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize, 12),
        v => return Err(bad(&format!("format version {v} is unknown"))),
    };
    let header = bytes.get(start..start + len).ok_or_else(|| bad("the header is truncated"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("the header is not text"))?;
    let descr = header_value(header, "descr").ok_or_else(|| bad("the header has no 'descr'"))?;
    let size = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(bad(&format!("dtype {} is not little-endian float32 or float64", descr.split(',').next().unwrap_or(descr))));
    };
    if header_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad("Fortran-ordered arrays are not supported; save with np.ascontiguousarray"));
    }
    let shape_text = header_value(header, "shape").ok_or_else(|| bad("the header has no 'shape'"))?;
    let inner = shape_text.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or_else(|| bad("the shape is malformed"))?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("the shape is malformed")))
        .collect::<Result<_>>()?;
    let data = &bytes[start + len..];
    // checked: a corrupt shape can multiply past 2^64; the file's length is the bound
    let need = shape.iter().try_fold(size as usize, |n: usize, &d| n.checked_mul(d));
    if need != Some(data.len()) {
        let need = need.map_or("more than 2^64".to_string(), |n| n.to_string());
        return Err(bad(&format!("byte {}: the shape {shape:?} needs {need} bytes of data, the file has {}", start + len, data.len())));
    }
    crate::tensor::limits::fits("npy", "the array", data.len() / size, std::mem::size_of::<f32>())?;
    let values = if size == 4 {
        data.chunks(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
    } else {
        data.chunks(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()
    };
    Ok(Npy { shape, values })
}

pub fn read(path: &Path) -> Result<Npy> {
    parse(&std::fs::read(path).map_err(|e| Error::io(path, e))?, path)
}

/// `.npy` bytes of an f32 array (for tests and tools).
pub fn to_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    values.iter().for_each(|v| out.extend(v.to_le_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // numpy: np.save(f, np.arange(6, dtype=np.float32).reshape(2, 3))
    #[test]
    fn round_trip_and_errors() {
        let p = Path::new("t.npy");
        let bytes = to_bytes(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!((bytes.len() - 24) % 64, 0);
        assert_eq!(parse(&bytes, p).unwrap(), Npy { shape: vec![2, 3], values: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0] });
        assert!(parse(&bytes[..bytes.len() - 4], p).unwrap_err().to_string().contains("needs 24 bytes"));
        assert!(parse(b"not numpy at all", p).unwrap_err().to_string().contains("t.npy"));
        let mut ints = bytes.clone();
        let at = ints.windows(3).position(|w| w == b"<f4").unwrap();
        ints[at + 2] = b'4';
        ints[at + 1] = b'i';
        assert!(parse(&ints, p).unwrap_err().to_string().contains("'<i4'"));
    }
}
