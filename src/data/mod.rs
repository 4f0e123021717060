//! Datasets held in memory as f32 features plus class labels, and what is done to them:
//! splitting, normalization, batching and image augmentation.

pub mod cifar;
pub mod digits;
pub mod idx;
pub mod loader;

pub use loader::{Augment, Batch, Batches};

use crate::error::{Error, Result};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

/// Samples `[n, ...sample_shape]` and their labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    /// Row-major features, `len() * sample_len()` values.
    pub features: Vec<f32>,
    pub labels: Vec<usize>,
    /// Shape of one sample: `[channels, height, width]`.
    pub sample_shape: Vec<usize>,
    pub classes: usize,
}

/// A train/test pair, and a validation part carved from the training part when asked for.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
    /// Held out of `train` ([`Split::carve_validation`]); when present, training chooses its
    /// best epoch on it, never on `test`.
    pub val: Option<Dataset>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        self.labels.iter().for_each(|&y| counts[y] += 1);
        counts
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let d = self.sample_len();
        let mut features = Vec::with_capacity(indices.len() * d);
        indices.iter().for_each(|&i| features.extend_from_slice(&self.features[i * d..(i + 1) * d]));
        Dataset { features, labels: indices.iter().map(|&i| self.labels[i]).collect(), ..self.clone_meta() }
    }

    fn clone_meta(&self) -> Dataset {
        Dataset {
            name: self.name.clone(),
            features: vec![],
            labels: vec![],
            sample_shape: self.sample_shape.clone(),
            classes: self.classes,
        }
    }

    /// The first `n` samples (all of them when `n` is larger).
    /// A data set from values: `features` of `len(labels) * product(sample_shape)` values in
    /// sample order, and class labels below `classes`.
    pub fn from_values(name: &str, features: Vec<f32>, labels: Vec<usize>, sample_shape: Vec<usize>, classes: usize) -> Result<Dataset> {
        let d: usize = sample_shape.iter().product();
        if d == 0 || features.len() != labels.len() * d {
            return Err(Error::shape(
                "dataset_from",
                format!("{} samples of {sample_shape:?}", labels.len()),
                format!("{} values", features.len()),
            ));
        }
        if let Some(y) = labels.iter().find(|&&y| y >= classes) {
            return Err(Error::invalid("dataset_from", format!("label {y} is not below the {classes} classes")));
        }
        Ok(Dataset { name: name.to_string(), features, labels, sample_shape, classes })
    }

    /// This data set followed by `other` (the same sample shape and classes).
    pub fn concat(&self, other: &Dataset) -> Result<Dataset> {
        if self.sample_shape != other.sample_shape || self.classes != other.classes {
            return Err(Error::shape(
                "concat",
                format!("samples of {:?} in {} classes, as {}", self.sample_shape, self.classes, self.name),
                format!("{:?} in {} classes ({})", other.sample_shape, other.classes, other.name),
            ));
        }
        let mut features = self.features.clone();
        features.extend_from_slice(&other.features);
        let mut labels = self.labels.clone();
        labels.extend_from_slice(&other.labels);
        Ok(Dataset { features, labels, ..self.clone_meta() })
    }

    pub fn take(&self, n: usize) -> Dataset {
        self.subset(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// A seeded, stratified split: `test_fraction` of each class goes to the test set.
    pub fn split(&self, test_fraction: f32, seed: u64) -> Result<Split> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::invalid("split", format!("test_fraction {test_fraction} must be between 0 and 1")));
        }
        let mut rng = Rng::new(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for class in 0..self.classes {
            let mut idx: Vec<usize> = (0..self.len()).filter(|&i| self.labels[i] == class).collect();
            rng.shuffle(&mut idx);
            let n_test = (idx.len() as f32 * test_fraction).round() as usize;
            test.extend_from_slice(&idx[..n_test]);
            train.extend_from_slice(&idx[n_test..]);
        }
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        if test.is_empty() || train.is_empty() {
            return Err(Error::invalid(
                "split",
                format!(
                    "test_fraction {test_fraction} of {} samples leaves the {} set empty",
                    self.len(),
                    if test.is_empty() { "test" } else { "training" }
                ),
            ));
        }
        let mut split = Split { train: self.subset(&train), test: self.subset(&test), val: None };
        split.train.name = format!("{}/train", self.name);
        split.test.name = format!("{}/test", self.name);
        Ok(split)
    }
}

/// Per-channel mean and standard deviation.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Split {
    /// Moves a stratified, seeded `fraction` of the training part into `val` (named
    /// `NAME/val`); the training part keeps the rest.
    pub fn carve_validation(&mut self, fraction: f32, seed: u64) -> Result<()> {
        let parts =
            self.train.split(fraction, seed).map_err(|e| Error::invalid("val_fraction", e.to_string().replace("test", "validation")))?;
        let base = self.train.name.trim_end_matches("/train").to_string();
        let (mut train, mut val) = (parts.train, parts.test);
        train.name = format!("{base}/train");
        val.name = format!("{base}/val");
        self.train = train;
        self.val = Some(val);
        Ok(())
    }

    /// Standardizes every part (train, validation, test) per channel with the statistics of the
    /// training part alone, and returns them.
    pub fn normalize(&mut self) -> Normalization {
        let channels = self.train.sample_shape[0];
        let plane = self.train.sample_len() / channels;
        let (mut sum, mut sq) = (vec![0.0f64; channels], vec![0.0f64; channels]);
        for sample in self.train.features.chunks(self.train.sample_len()) {
            for c in 0..channels {
                for v in &sample[c * plane..(c + 1) * plane] {
                    sum[c] += *v as f64;
                    sq[c] += (*v as f64) * (*v as f64);
                }
            }
        }
        let count = (self.train.len() * plane).max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / count) as f32).collect();
        let std: Vec<f32> =
            sq.iter().zip(&mean).map(|(q, m)| ((q / count - (*m as f64).powi(2)).max(0.0).sqrt() as f32).max(1e-6)).collect();
        for set in [Some(&mut self.train), Some(&mut self.test), self.val.as_mut()].into_iter().flatten() {
            let d = set.sample_len();
            for sample in set.features.chunks_mut(d) {
                for c in 0..channels {
                    sample[c * plane..(c + 1) * plane].iter_mut().for_each(|v| *v = (*v - mean[c]) / std[c]);
                }
            }
        }
        Normalization { mean, std }
    }
}

/// Data sets retort can load by name.
pub const DATASETS: &[&str] = &["digits", "mnist", "fashion_mnist", "cifar10", "cifar100"];

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const FASHION_MNIST_DEBIAN: &str = "/usr/share/datasets/fashion-mnist";

/// Loads a named data set as a train/test split with features scaled to [0, 1] (not yet normalized).
///
/// `root` is the folder of the files (digits needs none; Fashion-MNIST defaults to Debian's);
/// `test_fraction` and `seed` split digits, which ships as one set.
pub fn load(name: &str, root: Option<&Path>, test_fraction: f32, seed: u64) -> Result<Split> {
    let need_root = |what: &str| -> Result<PathBuf> {
        root.map(Path::to_path_buf).ok_or_else(|| Error::invalid("dataset", format!("{name} needs a root folder holding its {what} files")))
    };
    match name {
        "digits" => match root {
            Some(path) => digits::load_file(path)?.split(test_fraction, seed),
            None => digits::bundled()?.split(test_fraction, seed),
        },
        "mnist" => idx::load_split(&need_root("IDX")?, "mnist"),
        "fashion_mnist" => idx::load_split(root.unwrap_or(Path::new(FASHION_MNIST_DEBIAN)), "fashion_mnist"),
        "cifar10" => cifar::load_cifar10(&need_root("CIFAR-10 binary")?),
        "cifar100" => cifar::load_cifar100(&need_root("CIFAR-100 binary")?),
        other => Err(Error::invalid("dataset", format!("unknown data set '{other}'; known: {}", DATASETS.join(", ")))),
    }
}

/// Reads a whole file, transparently un-gzipping it when it starts with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        // every gzip member (files concatenated with `cat a.gz b.gz`), decompressed under the memory cap: a corrupt or hostile stream cannot exhaust memory
        let cap = crate::tensor::limits::memory_cap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(flate2::read::MultiGzDecoder::new(&raw[..]), cap.saturating_add(1)), &mut out)
            .map_err(|e| Error::file(path, format!("not a valid gzip file: {e}")))?;
        if out.len() as u64 > cap {
            return Err(Error::file(
                path,
                format!(
                    "decompresses to more than the memory cap of {}; set RETORT_MAX_MEMORY to allow more",
                    crate::tensor::limits::human(cap)
                ),
            ));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_seeded_and_disjoint() {
        let d = digits::bundled().unwrap();
        let a = d.split(0.2, 7).unwrap();
        let b = d.split(0.2, 7).unwrap();
        assert_eq!(a.train.labels, b.train.labels);
        assert_eq!(a.train.len() + a.test.len(), 1797);
        let counts = a.test.class_counts();
        assert!(counts.iter().all(|&c| (35..=37).contains(&c)), "{counts:?}");
        assert_ne!(d.split(0.2, 8).unwrap().train.labels, a.train.labels);
        assert!(d.split(1.5, 0).is_err());
    }

    #[test]
    fn normalize_gives_zero_mean_unit_std_on_train() {
        let mut s = digits::bundled().unwrap().split(0.2, 1).unwrap();
        let n = s.normalize();
        assert_eq!(n.mean.len(), 1);
        let v = &s.train.features;
        let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "{mean} {var}");
    }

    #[test]
    fn unknown_names_and_missing_roots_are_errors() {
        assert!(load("imagenet", None, 0.2, 0).unwrap_err().to_string().contains("unknown data set 'imagenet'"));
        assert!(load("cifar10", None, 0.2, 0).unwrap_err().to_string().contains("root"));
    }
}
