//! Evaluation: top-1/top-5 accuracy and loss, and logits without a gradient tape.

use crate::data::{Batches, Dataset};
use crate::error::Result;
use crate::loss;
use crate::nn::{Mode, Model};
use crate::rng::Rng;

/// A model's scores on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Top-1 accuracy in [0, 1].
    pub accuracy: f32,
    /// Top-5 accuracy in [0, 1] (1 when there are at most five classes).
    pub top5: f32,
    pub samples: usize,
}

/// Whether `label` is among the `k` largest of `row` (ties counted against the label).
pub fn in_top_k(row: &[f32], label: usize, k: usize) -> bool {
    let v = row[label];
    row.iter().enumerate().filter(|(i, x)| **x > v || (**x == v && *i < label)).count() < k
}

/// Logits `[n, classes]` for every sample in order, in eval mode, with no tape.
pub fn predict(model: &Model, data: &Dataset, batch_size: usize) -> Result<Vec<f32>> {
    let mut rng = Rng::new(0);
    let mut out = Vec::with_capacity(data.len() * model.classes());
    for batch in Batches::new(data, batch_size, None, None)? {
        out.extend_from_slice(model.forward(&batch.x, Mode::Eval, &mut rng)?.data());
    }
    Ok(out)
}

/// Scores `model` on `data` in eval mode.
pub fn evaluate(model: &Model, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
    if data.is_empty() {
        return Err(crate::Error::invalid("evaluate", format!("{} has no samples", data.name)));
    }
    if data.classes != model.classes() {
        return Err(crate::Error::shape("evaluate", format!("a model with {} classes for {}", data.classes, data.name), model.classes()));
    }
    score(&predict(model, data, batch_size)?, data, model.classes())
}

/// Scores logits `[n, c]` (in data set order) against `data`'s labels.
pub fn score(logits: &[f32], data: &Dataset, c: usize) -> Result<Evaluation> {
    let (mut loss_sum, mut top1, mut top5) = (0.0f64, 0usize, 0usize);
    for (row, &y) in logits.chunks(c).zip(&data.labels) {
        let t = crate::tensor::Tensor::from_vec(row.to_vec(), &[1, c])?;
        loss_sum += loss::cross_entropy(&t, &[y], 0.0)?.parts.ce_student[0] as f64;
        top1 += in_top_k(row, y, 1) as usize;
        top5 += in_top_k(row, y, 5) as usize;
    }
    let n = data.len().max(1) as f32;
    Ok(Evaluation { loss: (loss_sum / n as f64) as f32, accuracy: top1 as f32 / n, top5: top5 as f32 / n, samples: data.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_counts_ties_against_the_label() {
        assert!(in_top_k(&[0.1, 0.9, 0.3], 1, 1));
        assert!(!in_top_k(&[0.1, 0.9, 0.3], 2, 1));
        assert!(in_top_k(&[0.1, 0.9, 0.3], 2, 2));
        assert!(!in_top_k(&[0.5, 0.5], 1, 1));
    }
}
