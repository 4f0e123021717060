//! The quickstart: a teacher and three students (scratch, KD, WSL) on the bundled digits.

use crate::data;
use crate::error::Result;
use crate::loss::Loss;
use crate::nn::{Model, ModelConfig};
use crate::optim::{schedule::Schedule, LrSchedule, OptimizerConfig};
use crate::train::{self, Control, EpochRecord, Hooks, TrainConfig};
use std::time::Instant;

/// One trained model of the quickstart.
#[derive(Debug, Clone)]
pub struct QuickstartRow {
    pub name: String,
    pub arch: String,
    pub params: usize,
    pub test_accuracy: f32,
    pub seconds: f64,
}

/// The settings the quickstart uses (the paper's CIFAR temperature and alpha).
pub const TEMPERATURE: f32 = 4.0;
pub const ALPHA: f32 = 2.25;

struct Observe<'a> {
    stage: &'a str,
    f: &'a mut dyn FnMut(&str, &EpochRecord),
}

impl Hooks for Observe<'_> {
    fn on_epoch(&mut self, record: &EpochRecord) -> Result<Control> {
        (self.f)(self.stage, record);
        Ok(Control::Continue)
    }
}

/// Trains the teacher (MLP 64-256-256-10) and three MLP 64-32-10 students on digits,
/// calling `observe(stage, record)` after every epoch.
pub fn run(seed: u64, observe: &mut dyn FnMut(&str, &EpochRecord)) -> Result<Vec<QuickstartRow>> {
    let mut split = data::load("digits", None, 0.2, seed)?;
    split.normalize();
    let model = |hidden: Vec<usize>, model_seed: u64| {
        Model::new(
            "mlp",
            ModelConfig { classes: 10, input: split.train.sample_shape.clone(), hidden, seed: model_seed, ..ModelConfig::default() },
        )
    };
    let config = |epochs: usize, loss: Loss| TrainConfig {
        epochs,
        batch_size: 64,
        optimizer: OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 5e-4 },
        lr_schedule: LrSchedule::from(Schedule::Cosine { total_epochs: epochs, min_lr: 0.0 }),
        loss,
        seed,
        ..TrainConfig::default()
    };
    let mut rows = Vec::new();
    let record = |name: &str, m: &Model, started: Instant, history: &[EpochRecord]| QuickstartRow {
        name: name.into(),
        arch: format!("mlp {}", m.config().hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join("-")),
        params: m.params_count(),
        test_accuracy: history.last().map_or(0.0, |r| r.test_accuracy),
        seconds: started.elapsed().as_secs_f64(),
    };

    let started = Instant::now();
    let teacher = model(vec![256, 256], seed)?;
    let h = train::fit(
        &teacher,
        &split,
        &config(30, Loss::CrossEntropy { label_smoothing: 0.0 }),
        &mut Observe { stage: "teacher", f: observe },
    )?;
    rows.push(record("teacher", &teacher, started, &h));

    let students = [
        ("student (scratch)", Loss::CrossEntropy { label_smoothing: 0.0 }),
        ("student (KD)", Loss::kd(TEMPERATURE, ALPHA)),
        ("student (WSL)", Loss::wsl(TEMPERATURE, ALPHA)),
    ];
    for (name, loss) in students {
        let started = Instant::now();
        // every student starts from the same weights
        let student = model(vec![32], seed + 1)?;
        let h = train::distill_or_fit(&teacher, &student, &split, &config(40, loss), &mut Observe { stage: name, f: observe })?;
        rows.push(record(name, &student, started, &h));
    }
    Ok(rows)
}
