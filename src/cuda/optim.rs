//! (`cuda` feature) SGD and Adam/AdamW on the GPU: the update kernels over a [`GpuModel`]'s
//! parameters and gradients, with [`crate::optim::Optimizer`]'s state layout (for checkpoints).

use super::model::GpuModel;
use super::{Buf, Cuda};
use crate::error::{Error, Result};
use crate::nn::Param;
use crate::optim::OptimizerConfig;
use crate::tensor::LeafKey;
use std::collections::HashMap;

/// SGD and Adam on the GPU, with the same state layout as [`crate::optim::Optimizer`].
pub struct GpuOptimizer {
    config: OptimizerConfig,
    slots: HashMap<LeafKey, (Buf, Buf)>,
    steps: usize,
}

impl GpuOptimizer {
    pub fn new(config: OptimizerConfig) -> Result<Self> {
        config.validate()?;
        Ok(GpuOptimizer { config, slots: HashMap::new(), steps: 0 })
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    /// One update of every trainable parameter from the gradients of the last backward pass.
    pub fn step(&mut self, model: &mut GpuModel, lr: f32) -> Result<()> {
        self.steps += 1;
        let cu = model.cuda.clone();
        for p in model.model.params().iter().filter(|p| p.trainable() && model.written.contains(&p.key())) {
            if !self.slots.contains_key(&p.key()) {
                self.slots.insert(p.key(), (cu.zeros(p.len())?, cu.zeros(p.len())?));
            }
            let (first, second) = self.slots.get_mut(&p.key()).expect("inserted above");
            let g = &model.grads[&p.key()];
            let v = model.values.get_mut(&p.key()).expect("uploaded in new");
            let n = p.len();
            match self.config {
                OptimizerConfig::Sgd { momentum, nesterov, weight_decay, .. } => {
                    let kind = if momentum == 0.0 {
                        0
                    } else if nesterov {
                        2
                    } else {
                        1
                    };
                    cu.launch("sgd", n, (v, g, first, lr, momentum, kind as i32, weight_decay, n))?;
                }
                OptimizerConfig::Adam { betas, eps, weight_decay, decoupled, .. } => {
                    let t = self.steps as i32;
                    let bc1 = (1.0 - (betas[0] as f64).powi(t)) as f32;
                    let bc2 = (1.0 - (betas[1] as f64).powi(t)) as f32;
                    let (l2, dec) = if decoupled { (0.0, weight_decay * lr) } else { (weight_decay, 0.0) };
                    cu.launch("adam", n, (v, g, first, second, lr / bc1, betas[0], betas[1], eps, l2, dec, bc2, n))?;
                }
            }
        }
        Ok(())
    }

    /// `(name, first, second)` per parameter, as the CPU optimizer exports them.
    pub fn export(&self, cuda: &Cuda, params: &[Param]) -> Result<Vec<(String, Vec<f32>, Vec<f32>)>> {
        let mut out = Vec::new();
        for p in params {
            if let Some((a, b)) = self.slots.get(&p.key()) {
                out.push((p.name().to_string(), cuda.download(a)?, cuda.download(b)?));
            }
        }
        Ok(out)
    }

    pub fn import(&mut self, cuda: &Cuda, params: &[Param], state: &[(String, Vec<f32>, Vec<f32>)], steps: usize) -> Result<()> {
        self.slots.clear();
        for (name, first, second) in state {
            let p = crate::optim::state_param(params, name)?;
            if first.len() != p.len() || second.len() != p.len() {
                return Err(Error::shape("optimizer state", p.len(), first.len()));
            }
            self.slots.insert(p.key(), (cuda.upload(first)?, cuda.upload(second)?));
        }
        self.steps = steps;
        Ok(())
    }
}
