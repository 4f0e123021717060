//! Script closures as training hooks: temperature, alpha and learning-rate schedules,
//! per-batch filters, custom losses and per-epoch callbacks.

use super::convert::{as_f64, err, float, type_of, Res};
use super::state::State;
use crate::loss::Loss;
use crate::tensor::Tensor;
use crate::train::{BatchProgress, BatchView, Control, EpochRecord, Hooks};
use rhai::{Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext, INT};

/// A number, or a closure of the epoch (and optionally the step) giving one.
#[derive(Clone)]
pub enum Sched {
    Num(f32),
    Fn(FnPtr),
}

impl Sched {
    pub fn from_dynamic(op: &str, key: &str, v: &Dynamic) -> Res<Sched> {
        if let Some(x) = as_f64(v) {
            return Ok(Sched::Num(x as f32));
        }
        match v.clone().try_cast::<FnPtr>() {
            Some(f) => Ok(Sched::Fn(f)),
            None => err(format!("{op}: option '{key}' must be a number or a closure |epoch| ..., got {}", type_of(v))),
        }
    }
}

/// The keys of an epoch record as scripts see it.
pub fn record_map(r: &EpochRecord) -> Map {
    let mut m = Map::new();
    let f = float;
    m.insert("epoch".into(), Dynamic::from_int(r.epoch as INT));
    m.insert("train_loss".into(), f(r.train_loss));
    m.insert("train_accuracy".into(), f(r.train_accuracy));
    m.insert("test_loss".into(), f(r.test_loss));
    m.insert("test_accuracy".into(), f(r.test_accuracy));
    m.insert("test_top5".into(), f(r.test_top5));
    m.insert("val_accuracy".into(), r.val_accuracy.map_or(Dynamic::UNIT, f));
    m.insert("val_loss".into(), r.val_loss.map_or(Dynamic::UNIT, f));
    m.insert("lr".into(), f(r.lr));
    m.insert("temperature".into(), r.temperature.map_or(Dynamic::UNIT, f));
    m.insert("alpha".into(), r.alpha.map_or(Dynamic::UNIT, f));
    m.insert("regularization".into(), Dynamic::from_int(r.regularization as INT));
    m.insert("filtered".into(), Dynamic::from_int(r.filtered as INT));
    m.insert("empty_filter_batches".into(), Dynamic::from_int(r.empty_filter_batches as INT));
    m.insert("mean_weight".into(), f(r.mean_weight));
    let range = |v: Option<[f32; 2]>| v.map_or(Dynamic::UNIT, |[lo, hi]| Dynamic::from_array(vec![f(lo), f(hi)]));
    m.insert("lr_range".into(), range(r.lr_range));
    m.insert("temperature_range".into(), range(r.temperature_range));
    m.insert("alpha_range".into(), range(r.alpha_range));
    if r.partial {
        m.insert("partial".into(), true.into());
    }
    m.insert("seconds".into(), Dynamic::from_float(r.seconds));
    m
}

/// A stage's result fields drawn from its epochs: `history`, `epochs`, the final and best
/// accuracy (the best epoch chosen on the validation part when there is one), `seconds`.
pub(super) fn history_fields(m: &mut Map, history: &[EpochRecord]) {
    let last = history.last();
    let best = crate::train::best_epoch(history);
    m.insert("history".into(), Dynamic::from_array(history.iter().map(|r| Dynamic::from_map(record_map(r))).collect()));
    m.insert("epochs".into(), Dynamic::from_int(history.len() as INT));
    m.insert("final_accuracy".into(), float(last.map_or(0.0, |r| r.test_accuracy)));
    m.insert("best_accuracy".into(), float(best.map_or(0.0, |r| r.test_accuracy)));
    m.insert("best_epoch".into(), Dynamic::from_int(best.map_or(0, |r| r.epoch) as INT));
    // the best epoch is chosen on the validation part when there is one, never on test then;
    // best_accuracy is the test accuracy at that epoch
    m.insert("best_on".into(), best.map_or("test", |r| r.chosen_on()).into());
    m.insert("best_val_accuracy".into(), best.and_then(|r| r.val_accuracy).map_or(Dynamic::UNIT, float));
    m.insert("final_val_accuracy".into(), last.and_then(|r| r.val_accuracy).map_or(Dynamic::UNIT, float));
    m.insert("seconds".into(), Dynamic::from_float(history.iter().map(|r| r.seconds).sum()));
}

/// A 1-d tensor of `v`.
pub(super) fn vec_tensor(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()]).expect("1-d")
}

/// Class indices as a 1-d tensor, as scripts see labels.
pub(super) fn labels_tensor(labels: &[usize]) -> Tensor {
    Tensor::from_vec(labels.iter().map(|&y| y as f32).collect(), &[labels.len()]).expect("1-d")
}

/// Hooks that call into the script. The first script error is kept and re-raised as is.
pub struct ScriptHooks<'a, 'c> {
    pub ctx: &'a NativeCallContext<'c>,
    pub state: &'a State,
    pub op: &'static str,
    pub temperature: Option<Sched>,
    pub alpha: Option<Sched>,
    pub lr: Option<Sched>,
    pub filter: Option<FnPtr>,
    pub loss: Option<FnPtr>,
    pub on_epoch: Option<FnPtr>,
    /// `|epoch| ...` before each epoch, `|s| ...` after each optimizer step.
    pub on_epoch_start: Option<FnPtr>,
    pub on_step: Option<FnPtr>,
    /// `lr_lambda`: a multiplier of `base_lr` per step (PyTorch's LambdaLR), not a rate.
    pub lr_lambda: Option<Sched>,
    pub base_lr: f32,
    pub error: Option<Box<EvalAltResult>>,
    /// Closure arities found so far (1: epoch, 2: epoch and step), keyed by function name.
    arity: std::collections::HashMap<String, usize>,
    interrupted: bool,
    /// Whether the all-zero filter warning was given (once per call).
    warned_empty_filter: bool,
    /// Seconds spent in script closures (and building their arguments) during training.
    pub seconds: f64,
}

impl<'a, 'c> ScriptHooks<'a, 'c> {
    pub fn new(ctx: &'a NativeCallContext<'c>, state: &'a State, op: &'static str) -> Self {
        ScriptHooks {
            ctx,
            state,
            op,
            temperature: None,
            alpha: None,
            lr: None,
            filter: None,
            loss: None,
            on_epoch: None,
            on_epoch_start: None,
            on_step: None,
            lr_lambda: None,
            base_lr: 0.0,
            error: None,
            arity: Default::default(),
            interrupted: false,
            warned_empty_filter: false,
            seconds: 0.0,
        }
    }

    /// Keeps a script error and hands the trainer a placeholder that stops it.
    fn keep<T>(&mut self, r: Res<T>) -> crate::Result<T> {
        r.map_err(|e| {
            self.error.get_or_insert(e);
            crate::Error::invalid("script", "a script hook failed")
        })
    }

    /// Re-raises what stopped training: a script error, or a library error. An interrupt is an
    /// error in a script run (the run stops, to be resumed); a session (REPL, notebook) gets
    /// back what was trained, marked interrupted.
    pub fn finish<T>(&mut self, r: crate::Result<T>) -> Res<T> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.interrupted && !self.state.interactive.get() {
            return err(format!("{}: interrupted (Ctrl-C)", self.op));
        }
        if self.interrupted {
            self.state.training_interrupted.set(true);
            // the flag stays set: the rest of the input stops, as after Ctrl-C anywhere
            self.state.emit(super::output::Output::Text(format!(
                "{}: interrupted (Ctrl-C): the model keeps what was trained, and the result has interrupted: true with the epochs so far (the partial one last)",
                self.op
            )));
        }
        r.map_err(|e| format!("{}: {e}", self.op).into())
    }

    fn eval_sched(&mut self, s: &Sched, key: &str, epoch: usize, step: usize) -> Res<f32> {
        match s {
            Sched::Num(x) => Ok(*x),
            Sched::Fn(f) => {
                let name = f.fn_name().to_string();
                let e = epoch as INT;
                let value: Dynamic = match self.arity.get(&name) {
                    Some(1) => f.call_within_context(self.ctx, (e,))?,
                    Some(_) => f.call_within_context(self.ctx, (e, step as INT))?,
                    None => match f.call_within_context::<Dynamic>(self.ctx, (e, step as INT)) {
                        Ok(v) => {
                            self.arity.insert(name, 2);
                            v
                        }
                        Err(ee) if matches!(&*ee, EvalAltResult::ErrorFunctionNotFound(sig, _) if sig.starts_with(&name)) => {
                            self.arity.insert(name, 1);
                            f.call_within_context(self.ctx, (e,))?
                        }
                        Err(ee) => return Err(ee),
                    },
                };
                match as_f64(&value) {
                    Some(x) if x.is_finite() => Ok(x as f32),
                    _ => err(format!("{}: the '{key}' closure must return a finite number, got {}", self.op, type_of(&value))),
                }
            }
        }
    }

    fn batch_map(&self, b: &BatchView) -> Map {
        let p = b.parts;
        let mut m = Map::new();
        let t = |x: Tensor| Dynamic::from(x);
        m.insert("ce_student".into(), t(vec_tensor(&p.ce_student)));
        m.insert("labels".into(), t(labels_tensor(b.labels)));
        m.insert("index".into(), t(labels_tensor(b.indices)));
        m.insert("student_logits".into(), t(b.student_logits.detach()));
        m.insert("epoch".into(), Dynamic::from_int(b.epoch as INT));
        m.insert("step".into(), Dynamic::from_int(b.batch as INT));
        if let Some(tl) = b.teacher_logits {
            m.insert("teacher_logits".into(), t(tl.clone()));
            m.insert("ce_teacher".into(), t(vec_tensor(&p.ce_teacher)));
            m.insert("wsl_weight".into(), t(vec_tensor(&p.weight)));
            m.insert("soft".into(), t(vec_tensor(&p.soft)));
            let reg: Vec<f32> = p.regularization_mask().iter().map(|r| *r as u8 as f32).collect();
            m.insert("regularization".into(), t(vec_tensor(&reg)));
        }
        if let Some((temperature, alpha)) = b.loss.soft() {
            m.insert("temperature".into(), float(temperature));
            m.insert("alpha".into(), float(alpha));
        }
        m
    }
}

/// Adds the time `f` takes to `hooks.seconds`.
fn timed<'a, 'c, T>(hooks: &mut ScriptHooks<'a, 'c>, f: impl FnOnce(&mut ScriptHooks<'a, 'c>) -> T) -> T {
    let started = std::time::Instant::now();
    let r = f(hooks);
    hooks.seconds += started.elapsed().as_secs_f64();
    r
}

impl Hooks for ScriptHooks<'_, '_> {
    fn loss_for_step(&mut self, epoch: usize, step: usize, base: Loss) -> crate::Result<Loss> {
        timed(self, |h| h.loss_for_step_inner(epoch, step, base))
    }

    fn lr(&mut self, epoch: usize, step: usize, scheduled: f32) -> crate::Result<f32> {
        timed(self, |h| h.lr_inner(epoch, step, scheduled))
    }

    fn sample_weights(&mut self, b: &BatchView) -> crate::Result<Option<Vec<f32>>> {
        timed(self, |h| h.sample_weights_inner(b))
    }

    fn custom_loss(&mut self, b: &BatchView, weights: Option<&[f32]>) -> crate::Result<Option<Tensor>> {
        timed(self, |h| h.custom_loss_inner(b, weights))
    }

    fn on_epoch_start(&mut self, epoch: usize) -> crate::Result<()> {
        let Some(f) = self.on_epoch_start.clone() else { return Ok(()) };
        timed(self, |h| {
            let r = f.call_within_context::<Dynamic>(h.ctx, (epoch as INT,)).map(|_| ());
            h.keep(r)
        })
    }

    fn on_step(&mut self, s: &crate::train::StepView) -> crate::Result<()> {
        let Some(f) = self.on_step.clone() else { return Ok(()) };
        timed(self, |h| {
            let mut m = Map::new();
            m.insert("epoch".into(), Dynamic::from_int(s.epoch as INT));
            m.insert("step".into(), Dynamic::from_int(s.step as INT));
            m.insert("loss".into(), float(s.loss));
            m.insert("lr".into(), float(s.lr));
            m.insert("temperature".into(), s.temperature.map_or(Dynamic::UNIT, float));
            m.insert("alpha".into(), s.alpha.map_or(Dynamic::UNIT, float));
            let r = f.call_within_context::<Dynamic>(h.ctx, (Dynamic::from_map(m),)).map(|_| ());
            h.keep(r)
        })
    }

    fn interrupted(&self) -> bool {
        self.interrupted
    }

    fn on_batch(&mut self, progress: &BatchProgress) -> crate::Result<Control> {
        if let Some(show) = &self.state.progress {
            show(&super::Progress::Batch { label: self.op, progress: *progress });
        }
        if self.state.interrupted() {
            self.interrupted = true;
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn on_epoch(&mut self, record: &EpochRecord) -> crate::Result<Control> {
        if record.empty_filter_batches > 0 && !self.warned_empty_filter {
            self.warned_empty_filter = true;
            let effect = if self.loss.is_some() {
                "the loss closure got ctx.weights of all zeros there"
            } else {
                "so there the soft term vanished and the loss was plain cross-entropy"
            };
            self.state.emit(super::output::Output::Text(format!(
                "warning: {}: in epoch {} the filter set every weight of {} batch(es) to 0, {effect} (recorded as empty_filter_batches per epoch; this warning is given once)",
                self.op, record.epoch, record.empty_filter_batches
            )));
        }
        if let Some(show) = &self.state.progress {
            show(&super::Progress::Epoch { label: self.op, record: record.clone() });
        }
        timed(self, |h| h.on_epoch_inner(record))
    }
}

impl ScriptHooks<'_, '_> {
    fn loss_for_step_inner(&mut self, epoch: usize, step: usize, base: Loss) -> crate::Result<Loss> {
        let (Some(ts), Some(as_)) = (self.temperature.clone(), self.alpha.clone()) else { return Ok(base) };
        let r = self.eval_sched(&ts, "temperature", epoch, step).and_then(|t| Ok((t, self.eval_sched(&as_, "alpha", epoch, step)?)));
        let (temperature, alpha) = self.keep(r)?;
        Ok(base.at(temperature, alpha))
    }

    fn lr_inner(&mut self, epoch: usize, step: usize, scheduled: f32) -> crate::Result<f32> {
        if let Some(s) = self.lr_lambda.clone() {
            let r = self.eval_sched(&s, "lr_lambda", epoch, step).map(|f| self.base_lr * f);
            return self.keep(r);
        }
        match self.lr.clone() {
            None => Ok(scheduled),
            Some(s) => {
                let r = self.eval_sched(&s, "lr_schedule", epoch, step);
                self.keep(r)
            }
        }
    }

    fn sample_weights_inner(&mut self, b: &BatchView) -> crate::Result<Option<Vec<f32>>> {
        let Some(f) = self.filter.clone() else { return Ok(None) };
        let map = self.batch_map(b);
        let r = f.call_within_context::<Dynamic>(self.ctx, (Dynamic::from_map(map),)).and_then(|v| match v.clone().try_cast::<Tensor>() {
            Some(t) if t.len() == b.labels.len() => Ok(t.data().to_vec()),
            Some(t) => err(format!(
                "{}: the filter returned a tensor of shape {:?}; it must give one value per sample ([{}])",
                self.op,
                t.shape(),
                b.labels.len()
            )),
            None => err(format!("{}: the filter must return a tensor (a keep-mask or weights), got {}", self.op, type_of(&v))),
        });
        self.keep(r).map(Some)
    }

    fn custom_loss_inner(&mut self, b: &BatchView, weights: Option<&[f32]>) -> crate::Result<Option<Tensor>> {
        let Some(f) = self.loss.clone() else { return Ok(None) };
        let mut ctx = self.batch_map(b);
        if let Some(w) = weights {
            ctx.insert("filter_weights".into(), Dynamic::from(vec_tensor(w)));
        }
        let teacher = b.teacher_logits.map_or(Dynamic::UNIT, |t| Dynamic::from(t.clone()));
        let args = (Dynamic::from(b.student_logits.clone()), teacher, Dynamic::from(labels_tensor(b.labels)), Dynamic::from_map(ctx));
        let r = f.call_within_context::<Dynamic>(self.ctx, args).and_then(|v| match v.clone().try_cast::<Tensor>() {
            Some(t) if t.len() == 1 => Ok(t),
            Some(t) => err(format!(
                "{}: the loss closure must return a scalar tensor, got shape {:?} (use mean(...) or sum(...))",
                self.op,
                t.shape()
            )),
            None => err(format!("{}: the loss closure must return a tensor, got {}", self.op, type_of(&v))),
        });
        self.keep(r).map(Some)
    }

    fn on_epoch_inner(&mut self, record: &EpochRecord) -> crate::Result<Control> {
        let Some(f) = self.on_epoch.clone() else { return Ok(Control::Continue) };
        let r = f.call_within_context::<Dynamic>(self.ctx, (Dynamic::from_map(record_map(record)),));
        let v = self.keep(r)?;
        Ok(if v.as_bool() == Ok(false) { Control::Stop } else { Control::Continue })
    }
}
