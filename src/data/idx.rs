//! MNIST-style IDX files (raw or gzipped): `idx3` images and `idx1` labels.

use super::{read_maybe_gz, Dataset, Split};
use crate::error::{Error, Result};
use std::path::Path;

fn header(bytes: &[u8], path: &Path, magic: u32, dims: usize) -> Result<Vec<usize>> {
    let need = 4 + 4 * dims;
    if bytes.len() < need {
        return Err(Error::file(path, format!("too short for an IDX header ({} bytes, need {need})", bytes.len())));
    }
    let found = u32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if found != magic {
        return Err(Error::file(path, format!("IDX magic is {found:#010x}, expected {magic:#010x}")));
    }
    Ok((0..dims).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize).collect())
}

/// Images as `[n, 1, rows, cols]` scaled to [0, 1].
pub fn read_images(path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    let bytes = read_maybe_gz(path)?;
    let dims = header(&bytes, path, 0x0000_0803, 3)?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(Error::file(path, format!("byte 8: the header says images of {rows}x{cols}; images need at least one row and column")));
    }
    let body = &bytes[16..];
    // checked: three 32-bit dims multiply past 2^64; the file's length is the bound
    let want = n.checked_mul(rows).and_then(|v| v.checked_mul(cols));
    if want != Some(body.len()) {
        let size = want.map_or("more than 2^64 bytes".to_string(), |w| format!("{w} bytes"));
        return Err(Error::file(
            path,
            format!(
                "byte 4: the header says {n} images of {rows}x{cols} ({size}) but the file holds {} bytes after the 16-byte header",
                body.len()
            ),
        ));
    }
    crate::tensor::limits::fits("idx", "the images", body.len(), std::mem::size_of::<f32>())?;
    Ok((body.iter().map(|b| *b as f32 / 255.0).collect(), vec![n, 1, rows, cols]))
}

/// Labels, each below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<usize>> {
    let bytes = read_maybe_gz(path)?;
    let n = header(&bytes, path, 0x0000_0801, 1)?[0];
    let body = &bytes[8..];
    if body.len() != n {
        return Err(Error::file(path, format!("header says {n} labels but the file holds {}", body.len())));
    }
    if let Some((i, y)) = body.iter().enumerate().find(|(_, y)| **y as usize >= classes) {
        return Err(Error::file(path, format!("label {y} of record {i} is not below {classes}")));
    }
    Ok(body.iter().map(|y| *y as usize).collect())
}

fn find(root: &Path, stem: &str) -> Result<std::path::PathBuf> {
    for candidate in [format!("{stem}.gz"), stem.to_string()] {
        let p = root.join(&candidate);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::file(
        root.join(format!("{stem}.gz")),
        format!("not found (looked for {stem} and {stem}.gz); for Fashion-MNIST install Debian's dataset-fashion-mnist or pass its folder"),
    ))
}

fn load_set(root: &Path, prefix: &str, name: &str) -> Result<Dataset> {
    let images = find(root, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(root, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (features, shape) = read_images(&images)?;
    let labels = read_labels(&labels_path, 10)?;
    if labels.len() != shape[0] {
        return Err(Error::file(labels_path, format!("{} labels for {} images in {}", labels.len(), shape[0], images.display())));
    }
    Ok(Dataset { name: name.into(), features, labels, sample_shape: shape[1..].to_vec(), classes: 10 })
}

/// The `train-*` and `t10k-*` files of MNIST or Fashion-MNIST in `root`.
pub fn load_split(root: &Path, name: &str) -> Result<Split> {
    let (train, test) = (load_set(root, "train", &format!("{name}/train"))?, load_set(root, "t10k", &format!("{name}/test"))?);
    if train.sample_shape != test.sample_shape {
        return Err(Error::file(
            root,
            format!(
                "the training images are {:?} but the test images {:?}; both sets must have one image size",
                train.sample_shape, test.sample_shape
            ),
        ));
    }
    Ok(Split { train, test, val: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_idx(dir: &Path, images: &[u8], n: u32, labels: &[u8]) {
        let mut img = vec![0, 0, 8, 3];
        for d in [n, 2, 2] {
            img.extend(d.to_be_bytes());
        }
        img.extend(images);
        std::fs::write(dir.join("train-images-idx3-ubyte"), &img).unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), &img).unwrap();
        let mut lab = vec![0, 0, 8, 1];
        lab.extend((labels.len() as u32).to_be_bytes());
        lab.extend(labels);
        std::fs::write(dir.join("train-labels-idx1-ubyte"), &lab).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &lab).unwrap();
    }

    #[test]
    fn reads_raw_idx_and_rejects_bad_sizes() {
        let dir = std::env::temp_dir().join(format!("retort-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_idx(&dir, &[0, 255, 0, 255, 10, 20, 30, 40], 2, &[3, 7]);
        let s = load_split(&dir, "mnist").unwrap();
        assert_eq!(s.train.len(), 2);
        assert_eq!(s.train.labels, vec![3, 7]);
        assert_eq!(s.train.features[1], 1.0);
        write_idx(&dir, &[0, 255, 0], 2, &[3, 7]);
        let e = load_split(&dir, "mnist").unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte") && e.contains("header says 2 images"), "{e}");
        write_idx(&dir, &[0; 8], 2, &[3, 12]);
        assert!(load_split(&dir, "mnist").unwrap_err().to_string().contains("label 12 of record 1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
