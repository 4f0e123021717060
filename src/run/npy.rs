//! NumPy `.npy` arrays through the `npyz` crate: read (floats, integers and booleans of either
//! byte order, C order) as f32, and written as little-endian float32, e.g. logits to analyse
//! in NumPy or precomputed teacher logits.

use crate::error::{Error, Result};
use npyz::WriterBuilder;
use std::path::Path;

/// An array's shape and its values as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Reads every element as `T`, then as f32, when the file's dtype is `T`'s; the file back otherwise.
fn try_as<T: npyz::Deserialize, R: std::io::Read>(
    file: npyz::NpyFile<R>,
    to_f32: impl Fn(T) -> f32,
) -> std::result::Result<std::io::Result<Vec<f32>>, npyz::NpyFile<R>> {
    file.try_data::<T>().map(|data| data.map(|v| v.map(&to_f32)).collect())
}

/// Parses `.npy` bytes; `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Npy> {
    let bad = |m: String| Error::file(path, format!("not a usable .npy file: {m}"));
    // the header, then the data bytes after it
    let mut data = bytes;
    let header = npyz::NpyHeader::from_reader(&mut data).map_err(|e| bad(e.to_string()))?;
    let file = npyz::NpyFile::with_header(header, data);
    if file.order() == npyz::Order::Fortran && file.shape().len() > 1 {
        return Err(bad("Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into()));
    }
    let dtype = file.dtype().descr();
    // checked against the file's length before anything is allocated: a corrupt shape can
    // multiply past 2^64
    let shape: Vec<usize> = file.shape().iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    let item = match file.dtype() {
        npyz::DType::Plain(t) => t.num_bytes().unwrap_or(0),
        _ => 0,
    };
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    match count.and_then(|n| n.checked_mul(item)) {
        Some(need) if need == data.len() => {}
        need => {
            let need = need.map_or("more than 2^64".to_string(), |n| n.to_string());
            let at = bytes.len() - data.len();
            return Err(bad(format!(
                "byte {at}: the shape {shape:?} of dtype {dtype} needs {need} bytes of data, the file has {}",
                data.len()
            )));
        }
    }
    crate::tensor::limits::fits("npy", "the array", count.unwrap_or(usize::MAX), std::mem::size_of::<f32>())?;
    let read = try_as::<f32, _>(file, |v| v)
        .or_else(|f| try_as::<f64, _>(f, |v| v as f32))
        .or_else(|f| try_as::<i64, _>(f, |v| v as f32))
        .or_else(|f| try_as::<i32, _>(f, |v| v as f32))
        .or_else(|f| try_as::<i16, _>(f, |v| v as f32))
        .or_else(|f| try_as::<i8, _>(f, |v| v as f32))
        .or_else(|f| try_as::<u64, _>(f, |v| v as f32))
        .or_else(|f| try_as::<u32, _>(f, |v| v as f32))
        .or_else(|f| try_as::<u16, _>(f, |v| v as f32))
        .or_else(|f| try_as::<u8, _>(f, |v| v as f32))
        .or_else(|f| try_as::<bool, _>(f, |v| v as u8 as f32));
    let values = match read {
        Ok(values) => values.map_err(|e| bad(format!("the data is truncated or unreadable: {e}")))?,
        Err(_) => return Err(bad(format!("dtype {dtype} is not a number type (floats, integers and booleans are read)"))),
    };
    if values.len() != count.unwrap_or(0) {
        return Err(bad(format!("the shape {shape:?} needs {} values, the file holds {}", count.unwrap_or(0), values.len())));
    }
    Ok(Npy { shape, values })
}

pub fn read(path: &Path) -> Result<Npy> {
    parse(&std::fs::read(path).map_err(|e| Error::io(path, e))?, path)
}

/// `.npy` bytes of a little-endian float32 array in C order.
pub fn to_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let writer =
        npyz::WriteOptions::new().dtype(npyz::DType::Plain("<f4".parse().expect("a valid type string"))).shape(&dims).writer(&mut out);
    // writing into a Vec cannot fail
    let mut w = writer.begin_nd().expect("an in-memory npy writer");
    w.extend(values.iter().copied()).expect("an in-memory npy writer");
    w.finish().expect("an in-memory npy writer");
    out
}

/// Writes `values` of `shape` to `path` as float32 `.npy`, atomically.
pub fn write(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    super::atomic_write(path, &to_bytes(shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let p = Path::new("t.npy");
        let bytes = to_bytes(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(parse(&bytes, p).unwrap(), Npy { shape: vec![2, 3], values: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0] });
        // what numpy writes for np.arange(6, dtype=np.float32).reshape(2, 3): the same bytes
        assert!(bytes.starts_with(b"\x93NUMPY\x01\x00") && String::from_utf8_lossy(&bytes).contains("'descr': '<f4'"));
        assert!(parse(&bytes[..bytes.len() - 4], p).unwrap_err().to_string().contains("needs 24 bytes of data, the file has 20"));
        assert!(parse(b"not numpy at all", p).unwrap_err().to_string().contains("t.npy"));
        // integers are read as numbers (np.save of int64 labels)
        let mut ints = Vec::new();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&[3]).writer(&mut ints).begin_nd().unwrap();
        w.extend([3i64, -1, 7]).unwrap();
        w.finish().unwrap();
        assert_eq!(parse(&ints, p).unwrap().values, vec![3.0, -1.0, 7.0]);
        // a shape the file cannot hold is refused before any allocation
        let huge = String::from_utf8_lossy(&bytes).replace("(2, 3)", "(4294967296, 4294967296)");
        assert!(parse(huge.as_bytes(), p).is_err());
    }
}
