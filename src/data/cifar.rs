//! CIFAR-10 and CIFAR-100 in their binary layouts: records of label byte(s) then 3x32x32 pixels.
//!
//! CIFAR-10: `data_batch_{1..5}.bin` and `test_batch.bin`, 3,073-byte records (label, pixels).
//! CIFAR-100: `train.bin` and `test.bin`, 3,074-byte records (coarse label, fine label, pixels).
//! Files may sit in `root` or in the archive's folder (`cifar-10-batches-bin`, `cifar-100-binary`).

use super::{Dataset, Split};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const PIXELS: usize = 3 * 32 * 32;

fn locate(root: &Path, sub: &str, file: &str) -> Result<PathBuf> {
    for p in [root.join(file), root.join(sub).join(file)] {
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::file(root.join(file), format!("not found (also looked in {})", root.join(sub).display())))
}

/// Reads one binary file; `label_bytes` is 1 (CIFAR-10) or 2 (CIFAR-100, fine label second).
pub fn read_records(path: &Path, label_bytes: usize, classes: usize, into: &mut Dataset) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let record = label_bytes + PIXELS;
    if bytes.is_empty() {
        return Err(Error::file(path, "empty file"));
    }
    if bytes.len() % record != 0 {
        let whole = bytes.len() / record;
        return Err(Error::file(
            path,
            format!(
                "truncated record {whole}: it has {} of {record} bytes (is this a {}-class CIFAR file?)",
                bytes.len() % record,
                classes
            ),
        ));
    }
    // the images as f32, with the ones read before, under the memory cap
    let values = into.features.len().saturating_add(bytes.len() / record * PIXELS);
    crate::tensor::limits::fits("cifar", &format!("{} with the files before it", path.display()), values, std::mem::size_of::<f32>())?;
    for (i, r) in bytes.chunks(record).enumerate() {
        let label = r[label_bytes - 1] as usize;
        if label >= classes {
            return Err(Error::file(path, format!("record {i}: label {label} is not below {classes}")));
        }
        into.labels.push(label);
        into.features.extend(r[label_bytes..].iter().map(|b| *b as f32 / 255.0));
    }
    Ok(())
}

fn empty(name: &str, classes: usize) -> Dataset {
    Dataset { name: name.into(), features: vec![], labels: vec![], sample_shape: vec![3, 32, 32], classes }
}

/// CIFAR-10 from `root`.
pub fn load_cifar10(root: &Path) -> Result<Split> {
    let mut train = empty("cifar10/train", 10);
    for i in 1..=5 {
        read_records(&locate(root, "cifar-10-batches-bin", &format!("data_batch_{i}.bin"))?, 1, 10, &mut train)?;
    }
    let mut test = empty("cifar10/test", 10);
    read_records(&locate(root, "cifar-10-batches-bin", "test_batch.bin")?, 1, 10, &mut test)?;
    Ok(Split { train, test, val: None })
}

/// CIFAR-100 (fine labels) from `root`.
pub fn load_cifar100(root: &Path) -> Result<Split> {
    let mut train = empty("cifar100/train", 100);
    read_records(&locate(root, "cifar-100-binary", "train.bin")?, 2, 100, &mut train)?;
    let mut test = empty("cifar100/test", 100);
    read_records(&locate(root, "cifar-100-binary", "test.bin")?, 2, 100, &mut test)?;
    Ok(Split { train, test, val: None })
}
