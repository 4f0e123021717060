//! Training: fit a model on labels, or distill a student from a frozen teacher.
//!
//! One [`Trainer`] drives both; per-epoch [`EpochRecord`]s come back, and [`Hooks`] let a
//! caller (a script, the CLI) set the loss per epoch, weight or filter samples per batch,
//! observe progress and stop early.

mod engine;
pub mod evaluate;
mod record;

pub use evaluate::{evaluate, in_top_k, predict, score, Evaluation};
use record::Span;
pub use record::{best_epoch, EpochRecord};

use crate::data::{Augment, Batches, Split};
use crate::devices::DeviceName;
use crate::error::{Error, Result};
use crate::loss::{Loss, LossParts};
use crate::nn::Model;
use crate::optim::{LrSchedule, OptimizerConfig};
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::time::Instant;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub lr_schedule: LrSchedule,
    /// The loss; KD and WSL need a teacher.
    pub loss: Loss,
    /// Image augmentation of training batches (None: teacher logits are computed once and reused).
    pub augment: Option<Augment>,
    /// Seed of the shuffling, augmentation and dropout stream.
    pub seed: u64,
    pub eval_batch_size: usize,
    /// Without augmentation, compute the teacher's logits once and reuse them every epoch.
    pub cache_teacher_logits: bool,
    /// Where the layers run (`cuda` needs a build with the `cuda` feature).
    pub device: DeviceName,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            optimizer: OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 5e-4 },
            lr_schedule: LrSchedule::default(),
            loss: Loss::CrossEntropy { label_smoothing: 0.0 },
            augment: None,
            seed: 0,
            eval_batch_size: 256,
            cache_teacher_logits: true,
            device: DeviceName::Cpu,
        }
    }
}

/// One training batch as hooks see it.
pub struct BatchView<'a> {
    pub epoch: usize,
    pub batch: usize,
    /// The loss in force for this step (temperature, alpha).
    pub loss: Loss,
    pub labels: &'a [usize],
    /// Each sample's position in the training set.
    pub indices: &'a [usize],
    pub student_logits: &'a Tensor,
    pub teacher_logits: Option<&'a Tensor>,
    pub parts: &'a LossParts,
}

/// One optimizer step as `on_step` sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepView {
    /// 1-based, as are the epochs.
    pub epoch: usize,
    pub step: usize,
    /// The batch's loss before the step.
    pub loss: f32,
    pub lr: f32,
    /// Temperature and alpha of the step (None without a soft term).
    pub temperature: Option<f32>,
    pub alpha: Option<f32>,
}

/// Where an epoch stands after a batch, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchProgress {
    pub epoch: usize,
    pub epochs: usize,
    /// 1-based batch within the epoch.
    pub batch: usize,
    pub batches: usize,
    /// This batch's loss.
    pub loss: f32,
    /// Mean loss and training accuracy of the epoch so far.
    pub mean_loss: f32,
    pub accuracy: f32,
    /// Samples seen in the epoch so far.
    pub samples: usize,
}

/// Whether to keep training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Caller hooks; every method has a do-nothing default.
pub trait Hooks {
    /// The loss for a step (`epoch` 1-based, `step` 1-based within the epoch), e.g. a temperature schedule.
    fn loss_for_step(&mut self, _epoch: usize, _step: usize, base: Loss) -> Result<Loss> {
        Ok(base)
    }
    /// The learning rate for a step, given the one the configured schedule gives.
    fn lr(&mut self, _epoch: usize, _step: usize, scheduled: f32) -> Result<f32> {
        Ok(scheduled)
    }
    /// Per-sample weights (or a 0/1 keep-mask) for the soft term of this batch.
    fn sample_weights(&mut self, _batch: &BatchView) -> Result<Option<Vec<f32>>> {
        Ok(None)
    }
    /// A loss to differentiate instead of the built-in one (a scalar tensor of the student logits).
    fn custom_loss(&mut self, _batch: &BatchView, _sample_weights: Option<&[f32]>) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// Called before an epoch's first batch (`epoch` 1-based), e.g. to recompute a data-set-wide
    /// filter from a full pass.
    fn on_epoch_start(&mut self, _epoch: usize) -> Result<()> {
        Ok(())
    }
    /// Called after each optimizer step with what it used.
    fn on_step(&mut self, _step: &StepView) -> Result<()> {
        Ok(())
    }
    /// Called after each optimizer step, for progress (and to stop between batches).
    fn on_batch(&mut self, _progress: &BatchProgress) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// Whether a `Control::Stop` came from an interrupt (Ctrl-C, a kernel's interrupt), not an
    /// early stop the caller asked for: a run record keeps such a stage open for `--resume`.
    fn interrupted(&self) -> bool {
        false
    }
    fn on_epoch(&mut self, _record: &EpochRecord) -> Result<Control> {
        Ok(Control::Continue)
    }
}

/// Hooks that do nothing.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Where teacher logits come from.
pub enum Teacher<'a> {
    None,
    /// A frozen model run in eval mode (no tape, running statistics untouched).
    Model(&'a Model),
    /// Precomputed logits for the training set, `[n, classes]` in data set order.
    Logits(Vec<f32>),
}

/// What a checkpoint needs to continue training exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    /// Epochs completed.
    pub epoch: usize,
    pub rng: [u64; 4],
    pub optimizer_steps: usize,
    /// `(parameter name, first moment or velocity, second moment)`.
    pub slots: Vec<(String, Vec<f32>, Vec<f32>)>,
}

/// Drives training epoch by epoch.
pub struct Trainer<'a> {
    student: &'a Model,
    teacher: Teacher<'a>,
    split: &'a Split,
    config: TrainConfig,
    engine: engine::Engine<'a>,
    rng: Rng,
    epoch: usize,
}

impl<'a> Trainer<'a> {
    pub fn new(student: &'a Model, teacher: Teacher<'a>, split: &'a Split, config: TrainConfig) -> Result<Self> {
        if config.epochs == 0 || config.batch_size == 0 || config.eval_batch_size == 0 {
            return Err(Error::invalid("train", "epochs and batch sizes must be at least 1"));
        }
        config.lr_schedule.validate()?;
        for set in [Some(&split.train), Some(&split.test), split.val.as_ref()].into_iter().flatten() {
            if set.is_empty() {
                return Err(Error::invalid("train", format!("{} has no samples", set.name)));
            }
        }
        if split.train.classes != student.classes() {
            return Err(Error::shape(
                "train",
                format!("a model with {} classes for {}", split.train.classes, split.train.name),
                student.classes(),
            ));
        }
        if config.loss.needs_teacher() && matches!(teacher, Teacher::None) {
            return Err(Error::invalid("train", "KD and WSL need a teacher"));
        }
        let teacher_model = match teacher {
            Teacher::Model(t) => Some(t),
            _ => None,
        };
        let mut engine = engine::Engine::new(config.device, student, teacher_model, &config.optimizer)?;
        // a teacher without augmentation sees the same inputs every epoch: run it once
        let teacher = match teacher {
            Teacher::Model(t) if config.augment.is_none() && config.cache_teacher_logits && config.loss.needs_teacher() => {
                Teacher::Logits(engine.predict(t, true, &split.train, config.eval_batch_size)?)
            }
            other => other,
        };
        if let Teacher::Logits(l) = &teacher {
            if l.len() != split.train.len() * student.classes() {
                return Err(Error::shape("teacher logits", format!("[{}, {}]", split.train.len(), student.classes()), l.len()));
            }
        }
        Ok(Trainer { student, teacher, split, rng: Rng::new(config.seed), config, engine, epoch: 0 })
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The state a checkpoint stores (the weights live in the model).
    pub fn state(&self) -> Result<TrainerState> {
        Ok(TrainerState {
            epoch: self.epoch,
            rng: self.rng.state(),
            optimizer_steps: self.engine.steps(),
            slots: self.engine.export(self.student.params())?,
        })
    }

    /// Continues from `state` (the student's weights must be restored by the caller).
    pub fn restore(&mut self, state: &TrainerState) -> Result<()> {
        // a checkpoint from another plan, or a corrupt one, is refused before anything changes
        if state.epoch > self.config.epochs {
            return Err(Error::invalid(
                "resume",
                format!("the checkpoint is at epoch {} but this stage trains {} epochs", state.epoch, self.config.epochs),
            ));
        }
        let most_steps = self.config.epochs.saturating_mul(self.split.train.len().div_ceil(self.config.batch_size.max(1)).max(1));
        if state.optimizer_steps > most_steps {
            return Err(Error::invalid(
                "resume",
                format!("the checkpoint counts {} optimizer steps, more than this stage's {most_steps}", state.optimizer_steps),
            ));
        }
        if state.rng == [0; 4] {
            return Err(Error::invalid("resume", "the checkpoint's random-number state is all zero, which the generator never reaches"));
        }
        self.engine.import(self.student.params(), &state.slots, state.optimizer_steps)?;
        self.rng = Rng::from_state(state.rng);
        self.epoch = state.epoch;
        Ok(())
    }

    fn teacher_logits(&mut self, x: &Tensor, indices: &[usize], rng: &mut Rng) -> Result<Option<Tensor>> {
        let c = self.student.classes();
        Ok(match &self.teacher {
            Teacher::None => None,
            Teacher::Model(t) => Some(self.engine.teacher(t, x, rng)?),
            Teacher::Logits(all) => {
                let mut rows = Vec::with_capacity(indices.len() * c);
                indices.iter().for_each(|&i| rows.extend_from_slice(&all[i * c..(i + 1) * c]));
                Some(Tensor::from_vec(rows, &[indices.len(), c])?)
            }
        })
    }

    /// Runs one epoch and evaluates on the test set.
    pub fn run_epoch(&mut self, hooks: &mut dyn Hooks) -> Result<(EpochRecord, Control)> {
        let started = Instant::now();
        let epoch = self.epoch + 1;
        let base_lr = self.config.optimizer.lr();
        let (mut temperature, mut alpha, mut lr_at_start) = (None, None, base_lr);
        let mut epoch_rng = self.rng.fork();
        let mut dropout_rng = epoch_rng.fork();
        hooks.on_epoch_start(epoch)?;
        let batches = Batches::new(&self.split.train, self.config.batch_size, Some(&mut epoch_rng), self.config.augment)?;
        let n_batches = batches.num_batches();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let (mut regularization, mut filtered, mut weight_sum) = (0usize, 0usize, 0.0f64);
        let mut empty_filter_batches = 0usize;
        let (mut lr_span, mut temperature_span, mut alpha_span) = (Span::default(), Span::default(), Span::default());
        let mut control = Control::Continue;
        let mut partial = false;
        for (b, batch) in batches.enumerate() {
            let step = b + 1;
            let loss_kind = hooks.loss_for_step(epoch, step, self.config.loss)?;
            let scheduled = self.config.lr_schedule.lr(base_lr, self.epoch, b as f32 / n_batches as f32);
            let lr = hooks.lr(epoch, step, scheduled)?;
            if b == 0 {
                lr_at_start = lr;
                if let Some((t, a)) = loss_kind.soft() {
                    (temperature, alpha) = (Some(t), Some(a));
                }
            }
            lr_span.add(lr);
            if let Some((t, a)) = loss_kind.soft() {
                temperature_span.add(t);
                alpha_span.add(a);
            }
            if !(lr >= 0.0 && lr.is_finite()) {
                return Err(Error::invalid(
                    "train",
                    format!("learning rate {lr} at epoch {epoch}, batch {step} must be a non-negative number"),
                ));
            }
            // forward
            let mut pass = self.engine.forward(self.student, &batch.x, &mut dropout_rng)?;
            let teacher = self.teacher_logits(&batch.x, &batch.indices, &mut dropout_rng)?;
            // loss: the per-sample parts once, then weighed by the filter
            let terms = self.engine.loss_terms(&mut pass, teacher.as_ref(), &batch.labels, loss_kind)?;
            let (weights, custom) = {
                let view = BatchView {
                    epoch,
                    batch: step,
                    loss: loss_kind,
                    labels: &batch.labels,
                    indices: &batch.indices,
                    student_logits: &pass.logits,
                    teacher_logits: teacher.as_ref(),
                    parts: terms.parts(),
                };
                let weights = hooks.sample_weights(&view)?;
                if let Some(w) = &weights {
                    if w.len() != batch.labels.len() {
                        return Err(Error::shape("sample weights", format!("{} values, one per sample", batch.labels.len()), w.len()));
                    }
                    if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !(**v >= 0.0 && v.is_finite())) {
                        return Err(Error::invalid(
                            "filter",
                            format!("weight {v} for sample {i} of batch {step}, epoch {epoch}: filter weights must be finite and >= 0 (a keep-mask is 0 or 1)"),
                        ));
                    }
                }
                let custom = hooks.custom_loss(&view, weights.as_deref())?;
                (weights, custom)
            };
            let mut out = self.engine.combine(&mut pass, terms, teacher.as_ref(), &batch.labels, loss_kind, weights.as_deref())?;
            if let Some(w) = &weights {
                filtered += w.iter().filter(|v| **v == 0.0).count();
                empty_filter_batches += w.iter().all(|v| *v == 0.0) as usize;
            }
            let custom_loss = custom.is_some();
            if let Some(c) = custom {
                if c.len() != 1 {
                    return Err(Error::shape("custom loss", "a scalar (one-element) tensor", c.shape()));
                }
                out.loss = c;
            }
            let value = out.loss.item()?;
            if !value.is_finite() {
                return Err(Error::NonFinite { value, epoch, batch: b + 1 });
            }
            // backward and step: the log keeps the logits' values, not their tape, so the step
            // updates every parameter in place (nothing else holds its values)
            let logits = pass.logits.detach();
            let loss = std::mem::replace(&mut out.loss, Tensor::zeros(&[1]));
            self.engine.step(self.student, pass, loss, custom_loss, lr)?;
            let soft = loss_kind.soft();
            hooks.on_step(&StepView { epoch, step, loss: value, lr, temperature: soft.map(|s| s.0), alpha: soft.map(|s| s.1) })?;
            // log
            let c = self.student.classes();
            correct += logits.data().chunks(c).zip(&batch.labels).filter(|(row, y)| in_top_k(row, **y, 1)).count();
            loss_sum += value as f64 * batch.labels.len() as f64;
            seen += batch.labels.len();
            if teacher.is_some() {
                regularization += out.parts.regularization_mask().iter().filter(|r| **r).count();
                let applied = out.parts.weight.iter().enumerate().map(|(i, w)| (*w * weights.as_ref().map_or(1.0, |m| m[i])) as f64);
                weight_sum += applied.sum::<f64>();
            } else {
                weight_sum += batch.labels.len() as f64;
            }
            let progress = BatchProgress {
                epoch,
                epochs: self.config.epochs,
                batch: b + 1,
                batches: n_batches,
                loss: value,
                mean_loss: (loss_sum / seen as f64) as f32,
                accuracy: correct as f32 / seen as f32,
                samples: seen,
            };
            if hooks.on_batch(&progress)? == Control::Stop {
                control = Control::Stop;
                partial = step < n_batches;
                break;
            }
        }
        self.epoch = epoch;
        self.engine.sync()?;
        let logits = self.engine.predict(self.student, false, &self.split.test, self.config.eval_batch_size)?;
        let test = score(&logits, &self.split.test, self.student.classes())?;
        let val = match &self.split.val {
            Some(part) => {
                let logits = self.engine.predict(self.student, false, part, self.config.eval_batch_size)?;
                Some(score(&logits, part, self.student.classes())?)
            }
            None => None,
        };
        let record = EpochRecord {
            epoch,
            train_loss: (loss_sum / seen.max(1) as f64) as f32,
            train_accuracy: correct as f32 / seen.max(1) as f32,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            test_top5: test.top5,
            val_accuracy: val.as_ref().map(|v| v.accuracy),
            val_loss: val.as_ref().map(|v| v.loss),
            lr: lr_at_start,
            temperature,
            alpha,
            regularization,
            filtered,
            empty_filter_batches,
            mean_weight: (weight_sum / seen.max(1) as f64) as f32,
            lr_range: lr_span.range(),
            temperature_range: temperature_span.range(),
            alpha_range: alpha_span.range(),
            partial,
            seconds: started.elapsed().as_secs_f64(),
        };
        if !partial && hooks.on_epoch(&record)? == Control::Stop {
            control = Control::Stop;
        }
        Ok((record, control))
    }

    /// Runs the remaining epochs.
    pub fn run(&mut self, hooks: &mut dyn Hooks) -> Result<Vec<EpochRecord>> {
        let mut records = Vec::new();
        while self.epoch < self.config.epochs {
            let (record, control) = self.run_epoch(hooks)?;
            records.push(record);
            if control == Control::Stop {
                break;
            }
        }
        Ok(records)
    }
}

/// Trains `model` on the labels (cross-entropy unless `config.loss` says otherwise).
pub fn fit(model: &Model, split: &Split, config: &TrainConfig, hooks: &mut dyn Hooks) -> Result<Vec<EpochRecord>> {
    Trainer::new(model, Teacher::None, split, config.clone())?.run(hooks)
}

/// Distills `student` from the frozen `teacher` with `config.loss` (KD or WSL).
pub fn distill(teacher: &Model, student: &Model, split: &Split, config: &TrainConfig, hooks: &mut dyn Hooks) -> Result<Vec<EpochRecord>> {
    if teacher.classes() != student.classes() {
        return Err(Error::shape("distill", format!("a teacher with the student's {} classes", student.classes()), teacher.classes()));
    }
    Trainer::new(student, Teacher::Model(teacher), split, config.clone())?.run(hooks)
}

/// [`distill`] for KD/WSL losses, [`fit`] for cross-entropy (the teacher is then unused).
pub fn distill_or_fit(
    teacher: &Model,
    student: &Model,
    split: &Split,
    config: &TrainConfig,
    hooks: &mut dyn Hooks,
) -> Result<Vec<EpochRecord>> {
    if config.loss.needs_teacher() {
        distill(teacher, student, split, config, hooks)
    } else {
        fit(student, split, config, hooks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModelConfig;

    /// Holds that no optimizer step copied a parameter: each trainable parameter's values stay
    /// in the allocation they started in (a copy-on-write would move them).
    struct SameAllocation {
        params: Vec<(crate::nn::Param, *const f32)>,
        filter: bool,
        steps: usize,
    }

    impl SameAllocation {
        fn new(model: &Model, filter: bool) -> Self {
            let params = model.trainable().map(|p| (p.clone(), p.values().as_ptr())).collect();
            SameAllocation { params, filter, steps: 0 }
        }
    }

    impl Hooks for SameAllocation {
        fn sample_weights(&mut self, batch: &BatchView) -> Result<Option<Vec<f32>>> {
            Ok(self.filter.then(|| batch.parts.regularization_mask().iter().map(|r| if *r { 0.0 } else { 1.0 }).collect()))
        }
        fn on_batch(&mut self, _: &BatchProgress) -> Result<Control> {
            self.steps += 1;
            for (p, ptr) in &self.params {
                assert_eq!(p.values().as_ptr(), *ptr, "step {} copied {}", self.steps, p.name());
            }
            Ok(Control::Continue)
        }
    }

    #[test]
    fn an_optimizer_step_copies_no_parameter() {
        let mut split = crate::data::load("digits", None, 0.2, 7).unwrap();
        split.train = split.train.take(256);
        let cfg = |channels| ModelConfig { classes: 10, input: vec![1, 8, 8], channels, hidden: vec![16], ..Default::default() };
        let teacher = Model::new("mlp", cfg(vec![])).unwrap();
        let student = Model::new("cnn", cfg(vec![4, 8])).unwrap();
        let sgd = crate::optim::OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 5e-4 };
        for (loss, filter) in
            [(Loss::CrossEntropy { label_smoothing: 0.0 }, false), (Loss::kd(4.0, 2.25), false), (Loss::wsl(4.0, 2.25), true)]
        {
            let config = TrainConfig { epochs: 1, batch_size: 64, loss, optimizer: sgd.clone(), ..Default::default() };
            let mut hooks = SameAllocation::new(&student, filter);
            distill_or_fit(&teacher, &student, &split, &config, &mut hooks).unwrap();
            assert_eq!(hooks.steps, 4, "{loss:?}");
        }
    }
}
