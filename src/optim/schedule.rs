//! Learning-rate schedules over (fractional) epochs, with optional linear warm-up.

use crate::error::{Error, Result};

/// The shape of the learning rate over training.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step {
        step_size: usize,
        gamma: f32,
    },
    /// Multiply by `gamma` at each milestone epoch.
    MultiStep {
        milestones: Vec<usize>,
        gamma: f32,
    },
    /// Cosine annealing from the base rate to `min_lr` over `total_epochs`.
    Cosine {
        total_epochs: usize,
        min_lr: f32,
    },
}

/// A schedule plus a linear warm-up from 0 over the first `warmup_epochs`.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    pub schedule: Schedule,
    pub warmup_epochs: f32,
}

impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule { schedule: Schedule::Constant, warmup_epochs: 0.0 }
    }
}

impl From<Schedule> for LrSchedule {
    fn from(schedule: Schedule) -> Self {
        LrSchedule { schedule, warmup_epochs: 0.0 }
    }
}

impl LrSchedule {
    pub fn validate(&self) -> Result<()> {
        let ok = match &self.schedule {
            Schedule::Constant => true,
            Schedule::Step { step_size, gamma } => *step_size > 0 && *gamma > 0.0 && gamma.is_finite(),
            Schedule::MultiStep { milestones, gamma } => milestones.windows(2).all(|w| w[0] < w[1]) && *gamma > 0.0 && gamma.is_finite(),
            Schedule::Cosine { total_epochs, min_lr } => *total_epochs > 0 && *min_lr >= 0.0 && min_lr.is_finite(),
        };
        if !ok || !(self.warmup_epochs >= 0.0 && self.warmup_epochs <= 1e9) {
            return Err(Error::invalid(
                "lr_schedule",
                format!("{self:?} is not valid: sizes and gamma must be positive, milestones increasing"),
            ));
        }
        Ok(())
    }

    /// The learning rate at `epoch` (0-based) plus `progress` in [0, 1) through it.
    pub fn lr(&self, base: f32, epoch: usize, progress: f32) -> f32 {
        let t = epoch as f32 + progress;
        let lr = match &self.schedule {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => base * gamma.powi((epoch / step_size) as i32),
            Schedule::MultiStep { milestones, gamma } => base * gamma.powi(milestones.iter().filter(|m| epoch >= **m).count() as i32),
            Schedule::Cosine { total_epochs, min_lr } => {
                let f = (epoch as f32 / *total_epochs as f32).min(1.0);
                min_lr + (base - min_lr) * 0.5 * (1.0 + (std::f32::consts::PI * f).cos())
            }
        };
        if t < self.warmup_epochs {
            lr * (t / self.warmup_epochs)
        } else {
            lr
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_definitions() {
        let step = LrSchedule::from(Schedule::Step { step_size: 10, gamma: 0.1 });
        assert_eq!(step.lr(1.0, 9, 0.0), 1.0);
        assert!((step.lr(1.0, 10, 0.0) - 0.1).abs() < 1e-7);
        let multi = LrSchedule::from(Schedule::MultiStep { milestones: vec![150, 180, 210], gamma: 0.1 });
        assert!((multi.lr(0.05, 200, 0.0) - 0.0005).abs() < 1e-8);
        let cos = LrSchedule::from(Schedule::Cosine { total_epochs: 10, min_lr: 0.0 });
        assert!((cos.lr(1.0, 5, 0.0) - 0.5).abs() < 1e-6);
        assert!(cos.lr(1.0, 10, 0.0).abs() < 1e-6);
        let warm = LrSchedule { schedule: Schedule::Constant, warmup_epochs: 2.0 };
        assert!((warm.lr(1.0, 1, 0.0) - 0.5).abs() < 1e-6);
        assert_eq!(warm.lr(1.0, 2, 0.0), 1.0);
        assert!(LrSchedule::from(Schedule::MultiStep { milestones: vec![5, 3], gamma: 0.1 }).validate().is_err());
    }
}
