//! CIFAR binary readers, on files written here in the real layout.

use retort::data::cifar;
use std::path::{Path, PathBuf};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("retort-cifar-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` records: label bytes then 3,072 pixels whose first byte encodes the record index.
fn records(n: usize, labels: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(labels(i));
        let mut px = vec![(i % 256) as u8; 3072];
        px[3071] = 255;
        out.extend(px);
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn cifar10_reads_five_batches_and_a_test_batch() {
    let dir = temp_dir("10");
    let sub = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&sub).unwrap();
    for b in 1..=5 {
        write(&sub, &format!("data_batch_{b}.bin"), &records(4, |i| vec![(i % 10) as u8]));
    }
    write(&sub, "test_batch.bin", &records(3, |i| vec![9 - i as u8]));
    let s = cifar::load_cifar10(&dir).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (20, 3));
    assert_eq!(s.train.sample_shape, vec![3, 32, 32]);
    assert_eq!(s.test.labels, vec![9, 8, 7]);
    assert_eq!(s.train.features[3072], 1.0 / 255.0); // second record's first pixel
    assert_eq!(s.train.features[3071], 1.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cifar100_uses_the_fine_label() {
    let dir = temp_dir("100");
    write(&dir, "train.bin", &records(5, |i| vec![(i % 20) as u8, (50 + i) as u8]));
    write(&dir, "test.bin", &records(2, |_| vec![3, 99]));
    let s = cifar::load_cifar100(&dir).unwrap();
    assert_eq!(s.train.labels, vec![50, 51, 52, 53, 54]);
    assert_eq!(s.test.labels, vec![99, 99]);
    assert_eq!(s.train.classes, 100);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_or_wrong_files_name_the_file_and_record() {
    let dir = temp_dir("bad");
    let mut bytes = records(3, |_| vec![1, 2]);
    bytes.truncate(2 * 3074 + 100);
    write(&dir, "train.bin", &bytes);
    write(&dir, "test.bin", &records(1, |_| vec![1, 2]));
    let e = cifar::load_cifar100(&dir).unwrap_err().to_string();
    assert!(e.contains("train.bin") && e.contains("truncated record 2") && e.contains("100 of 3074"), "{e}");

    // a CIFAR-100 file read as CIFAR-10 does not divide into 3,073-byte records
    let dir10 = temp_dir("bad10");
    for b in 1..=5 {
        write(&dir10, &format!("data_batch_{b}.bin"), &records(2, |_| vec![1]));
    }
    write(&dir10, "test_batch.bin", &records(2, |_| vec![1, 2]));
    let e = cifar::load_cifar10(&dir10).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("truncated record"), "{e}");

    // a label out of range names the record
    write(&dir10, "data_batch_3.bin", &records(2, |i| vec![if i == 1 { 10 } else { 0 }]));
    let e = cifar::load_cifar10(&dir10).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin") && e.contains("record 1") && e.contains("label 10"), "{e}");

    // a missing file says where it looked
    write(&dir10, "data_batch_3.bin", &records(2, |_| vec![1]));
    std::fs::remove_file(dir10.join("data_batch_4.bin")).unwrap();
    let e = cifar::load_cifar10(&dir10).unwrap_err().to_string();
    assert!(e.contains("data_batch_4.bin") && e.contains("not found"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir10).unwrap();
}
