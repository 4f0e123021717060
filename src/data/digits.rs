//! The UCI optical handwritten digits (8x8, 1,797 samples) as scikit-learn ships them,
//! bundled in the binary so retort always has data. CC BY 4.0: see `data/README.md`.

use super::{read_maybe_gz, Dataset};
use crate::error::{Error, Result};
use std::path::Path;

const BUNDLED: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The bundled copy.
pub fn bundled() -> Result<Dataset> {
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(BUNDLED), &mut csv)
        .map_err(|e| Error::file("<bundled digits.csv.gz>", e.to_string()))?;
    parse(&csv, Path::new("<bundled digits.csv.gz>"))
}

/// A digits CSV (optionally gzipped) in scikit-learn's layout: 64 values 0..16, then the label.
pub fn load_file(path: &Path) -> Result<Dataset> {
    let bytes = read_maybe_gz(path)?;
    let text = String::from_utf8(bytes).map_err(|_| Error::file(path, "not a UTF-8 CSV file"))?;
    parse(&text, path)
}

fn parse(csv: &str, path: &Path) -> Result<Dataset> {
    crate::tensor::limits::fits("digits", &format!("{}'s pixels", path.display()), csv.lines().count().saturating_mul(64), 4)?;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (line_no, line) in csv.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 65 {
            return Err(Error::file(
                path,
                format!("line {}: expected 65 comma-separated values (64 pixels and a label), found {}", line_no + 1, fields.len()),
            ));
        }
        for f in &fields[..64] {
            let v: f32 = f
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| Error::file(path, format!("line {}: pixel '{f}' is not a finite number", line_no + 1)))?;
            features.push(v / 16.0);
        }
        let y: usize = fields[64]
            .parse()
            .ok()
            .filter(|y| *y < 10)
            .ok_or_else(|| Error::file(path, format!("line {}: label '{}' is not a digit 0-9", line_no + 1, fields[64])))?;
        labels.push(y);
    }
    Ok(Dataset { name: "digits".into(), features, labels, sample_shape: vec![1, 8, 8], classes: 10 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_digits_has_1797_samples_in_ten_classes() {
        let d = bundled().unwrap();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.features.len(), 1797 * 64);
        assert_eq!(d.class_counts().iter().sum::<usize>(), 1797);
        assert!(d.class_counts().iter().all(|&c| c >= 170));
        assert!(d.features.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let e = parse("1,2,3\n", Path::new("x.csv")).unwrap_err().to_string();
        assert!(e.contains("x.csv") && e.contains("line 1") && e.contains("65"), "{e}");
    }
}
