//! Checkpoints: weights plus optimizer state, epoch and RNG state, so a resumed run continues
//! exactly where the interrupted one stopped.

use super::safetensors::{Entry, SafeTensors};
use super::weights;
use crate::error::{Error, Result};
use crate::nn::Model;
use crate::train::TrainerState;
use std::path::Path;

/// Where in a run a checkpoint was taken, and the trainer state to continue from.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub stage: usize,
    pub trainer: TrainerState,
    pub best_accuracy: f32,
    pub best_epoch: usize,
}

impl Checkpoint {
    /// Writes the model's weights and this state to `path` (atomically).
    pub fn save(&self, model: &Model, path: &Path) -> Result<()> {
        let mut s = weights::to_safetensors(model);
        for (name, first, second) in &self.trainer.slots {
            s.tensors.insert(format!("optim.{name}.first"), Entry::f32(&[first.len()], first));
            s.tensors.insert(format!("optim.{name}.second"), Entry::f32(&[second.len()], second));
        }
        let m = &mut s.metadata;
        m.insert("stage".into(), self.stage.to_string());
        m.insert("epoch".into(), self.trainer.epoch.to_string());
        m.insert("optimizer_steps".into(), self.trainer.optimizer_steps.to_string());
        m.insert("rng".into(), self.trainer.rng.iter().map(|w| format!("{w:016x}")).collect::<Vec<_>>().join(","));
        m.insert("best_accuracy".into(), format!("{:e}", self.best_accuracy));
        m.insert("best_epoch".into(), self.best_epoch.to_string());
        s.write(path)
    }

    /// Reads a checkpoint, loading its weights into `model`.
    pub fn load(model: &Model, path: &Path) -> Result<Checkpoint> {
        let s = SafeTensors::read(path)?;
        let meta =
            |k: &str| s.metadata.get(k).ok_or_else(|| Error::file(path, format!("not a retort checkpoint: no '{k}' in its metadata")));
        let num = |k: &str| -> Result<usize> {
            meta(k)?.parse().map_err(|_| Error::file(path, format!("checkpoint metadata '{k}' is not a number")))
        };
        let rng: Vec<u64> = meta("rng")?
            .split(',')
            .map(|w| u64::from_str_radix(w, 16))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::file(path, "checkpoint metadata 'rng' is malformed"))?;
        let rng: [u64; 4] = rng.try_into().map_err(|_| Error::file(path, "checkpoint metadata 'rng' needs four words"))?;
        let mut slots = Vec::new();
        for (name, e) in &s.tensors {
            if let Some(param) = name.strip_prefix("optim.").and_then(|n| n.strip_suffix(".first")) {
                let second = s
                    .tensors
                    .get(&format!("optim.{param}.second"))
                    .ok_or_else(|| Error::file(path, format!("optimizer state of '{param}' is incomplete")))?;
                slots.push((param.to_string(), e.as_f32(), second.as_f32()));
            }
        }
        let trainer = TrainerState { epoch: num("epoch")?, rng, optimizer_steps: num("optimizer_steps")?, slots };
        let best_accuracy: f32 =
            meta("best_accuracy")?.parse().map_err(|_| Error::file(path, "checkpoint metadata 'best_accuracy' is not a number"))?;
        if !(0.0..=1.0).contains(&best_accuracy) {
            return Err(Error::file(path, format!("checkpoint metadata 'best_accuracy' is {best_accuracy}, not an accuracy in [0, 1]")));
        }
        let ckpt = Checkpoint { stage: num("stage")?, trainer, best_accuracy, best_epoch: num("best_epoch")? };
        weights::load_into(model, &s, path)?;
        Ok(ckpt)
    }
}
