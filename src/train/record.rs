//! What an epoch of training leaves: [`EpochRecord`], and the choice of the best epoch (on the
//! validation part when there is one, never on test then).

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub test_loss: f32,
    pub test_accuracy: f32,
    pub test_top5: f32,
    /// Accuracy and loss on the validation part, when the data set has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f32>,
    /// Learning rate at the start of the epoch.
    pub lr: f32,
    /// Temperature and alpha in force (None without distillation).
    pub temperature: Option<f32>,
    pub alpha: Option<f32>,
    /// Samples where the student's CE on the label was below the teacher's.
    pub regularization: usize,
    /// Samples whose soft-term weight was set to 0 by a filter.
    pub filtered: usize,
    /// Batches whose filter weights were all 0: their soft term vanished (plain cross-entropy).
    #[serde(default)]
    pub empty_filter_batches: usize,
    /// Mean weight applied to the soft term (WSL weight times filter), 1 when undistilled.
    pub mean_weight: f32,
    /// `[lowest, highest]` learning rate, temperature and alpha used in the epoch's steps, where
    /// a schedule changed them within the epoch (absent where they held still).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_range: Option<[f32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_range: Option<[f32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha_range: Option<[f32; 2]>,
    /// Stopped between batches (an interrupt) before its last batch: a run record keeps no
    /// partial epoch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    pub seconds: f64,
}

impl EpochRecord {
    /// The accuracy "best" is chosen by: validation when there is a validation part, else test.
    pub fn selection_accuracy(&self) -> f32 {
        self.val_accuracy.unwrap_or(self.test_accuracy)
    }

    /// The part [`EpochRecord::selection_accuracy`] comes from: `val` or `test`.
    pub fn chosen_on(&self) -> &'static str {
        if self.val_accuracy.is_some() {
            "val"
        } else {
            "test"
        }
    }
}

/// The best whole epoch of a history: the first with the highest validation accuracy when
/// there is a validation part (the test set never picks it), else the highest test accuracy.
pub fn best_epoch(history: &[EpochRecord]) -> Option<&EpochRecord> {
    history.iter().filter(|r| !r.partial).fold(None, |best: Option<&EpochRecord>, r| match best {
        Some(b) if b.selection_accuracy() >= r.selection_accuracy() => Some(b),
        _ => Some(r),
    })
}

/// The lowest and highest of the values one quantity took in an epoch.
#[derive(Default, Clone, Copy)]
pub(super) struct Span(Option<[f32; 2]>);

impl Span {
    pub(super) fn add(&mut self, v: f32) {
        self.0 = Some(match self.0 {
            None => [v, v],
            Some([lo, hi]) => [lo.min(v), hi.max(v)],
        });
    }

    /// The range, where the values were not all one.
    pub(super) fn range(self) -> Option<[f32; 2]> {
        self.0.filter(|[lo, hi]| lo != hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, val: Option<f32>, test: f32) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.0,
            train_accuracy: 0.0,
            test_loss: 0.0,
            test_accuracy: test,
            test_top5: 0.0,
            val_accuracy: val,
            val_loss: val.map(|_| 0.0),
            lr: 0.1,
            temperature: None,
            alpha: None,
            regularization: 0,
            filtered: 0,
            empty_filter_batches: 0,
            mean_weight: 1.0,
            lr_range: None,
            temperature_range: None,
            alpha_range: None,
            partial: false,
            seconds: 0.0,
        }
    }

    #[test]
    fn with_a_validation_part_the_test_set_never_picks_the_best_epoch() {
        // test peaks at epoch 2, validation at epoch 3: epoch 3 is best, and its test accuracy is reported
        let h = [epoch(1, Some(0.5), 0.5), epoch(2, Some(0.6), 0.9), epoch(3, Some(0.7), 0.6), epoch(4, Some(0.7), 0.8)];
        let best = best_epoch(&h).unwrap();
        assert_eq!((best.epoch, best.chosen_on(), best.test_accuracy), (3, "val", 0.6));
        // without one, test chooses (the first of ties)
        let h = [epoch(1, None, 0.5), epoch(2, None, 0.9), epoch(3, None, 0.9)];
        assert_eq!((best_epoch(&h).unwrap().epoch, best_epoch(&h).unwrap().chosen_on()), (2, "test"));
        // a partial (interrupted) epoch never counts
        let mut partial = epoch(4, None, 1.0);
        partial.partial = true;
        assert_eq!(best_epoch(&[epoch(1, None, 0.5), partial]).unwrap().epoch, 1);
    }
}
