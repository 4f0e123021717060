//! Fashion-MNIST from Debian's `dataset-fashion-mnist` (installed by `.ci/run`).

use retort::data::{self, FASHION_MNIST_DEBIAN};
use std::path::Path;

#[test]
fn debian_fashion_mnist_has_60000_and_10000_balanced_images() {
    if !Path::new(FASHION_MNIST_DEBIAN).join("train-images-idx3-ubyte.gz").exists() {
        eprintln!("SKIPPED: {FASHION_MNIST_DEBIAN} is absent; install Debian's dataset-fashion-mnist (.ci/run does)");
        return;
    }
    let s = data::load("fashion_mnist", None, 0.0, 0).unwrap();
    assert_eq!(s.train.len(), 60_000);
    assert_eq!(s.test.len(), 10_000);
    assert_eq!(s.train.sample_shape, vec![1, 28, 28]);
    assert_eq!(s.train.class_counts(), vec![6_000; 10]);
    assert_eq!(s.test.class_counts(), vec![1_000; 10]);
    assert!(s.train.features.iter().all(|v| (0.0..=1.0).contains(v)));
}
