//! Optimizers over a model's trainable parameters: per-parameter state and the step; the
//! element-wise updates are in [`update`].

#[cfg(test)]
mod reference;
pub mod schedule;
pub mod update;

pub use schedule::LrSchedule;
pub use update::Decay;

use crate::error::{Error, Result};
use crate::nn::Param;
use crate::tensor::{Gradients, LeafKey};
use std::collections::HashMap;

/// Which optimizer and its hyper-parameters (PyTorch semantics).
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerConfig {
    /// SGD with optional (Nesterov) momentum; `weight_decay` is added to the gradient.
    Sgd { lr: f32, momentum: f32, nesterov: bool, weight_decay: f32 },
    /// Adam (`decoupled = false`: L2 into the gradient) or AdamW (`decoupled = true`).
    Adam { lr: f32, betas: [f32; 2], eps: f32, weight_decay: f32, decoupled: bool },
}

impl OptimizerConfig {
    pub fn sgd(lr: f32) -> Self {
        OptimizerConfig::Sgd { lr, momentum: 0.0, nesterov: false, weight_decay: 0.0 }
    }

    pub fn adam(lr: f32) -> Self {
        OptimizerConfig::Adam { lr, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0, decoupled: false }
    }

    /// The base learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => *lr,
        }
    }

    /// Checks the hyper-parameters are in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid("optimizer", m));
        match self {
            OptimizerConfig::Sgd { lr, momentum, nesterov, weight_decay } => {
                if !(*lr > 0.0 && lr.is_finite()) {
                    return bad(format!("lr {lr} must be positive"));
                }
                if !(0.0..1.0).contains(momentum) {
                    return bad(format!("momentum {momentum} must be in [0, 1)"));
                }
                if *nesterov && *momentum == 0.0 {
                    return bad("nesterov needs a positive momentum".into());
                }
                if !(*weight_decay >= 0.0 && weight_decay.is_finite()) {
                    return bad(format!("weight_decay {weight_decay} must be a finite number >= 0"));
                }
            }
            OptimizerConfig::Adam { lr, betas, eps, weight_decay, .. } => {
                if !(*lr > 0.0 && lr.is_finite()) {
                    return bad(format!("lr {lr} must be positive"));
                }
                if betas.iter().any(|b| !(0.0..1.0).contains(b)) {
                    return bad(format!("betas {betas:?} must be in [0, 1)"));
                }
                if !(*eps > 0.0 && eps.is_finite()) {
                    return bad(format!("eps {eps} must be a positive f32 (1e-8 by default)"));
                }
                if !(*weight_decay >= 0.0 && weight_decay.is_finite()) {
                    return bad(format!("weight_decay {weight_decay} must be a finite number >= 0"));
                }
            }
        }
        Ok(())
    }
}

/// The parameter a saved optimizer state names.
pub(crate) fn state_param<'p>(params: &'p [Param], name: &str) -> Result<&'p Param> {
    params.iter().find(|p| p.name() == name).ok_or_else(|| Error::invalid("optimizer state", format!("no parameter named '{name}'")))
}

/// One parameter's state: velocity (SGD) or first moment (Adam), and second moment (Adam;
/// kept zero for SGD so every checkpoint has both).
struct Slot {
    first: Vec<f32>,
    second: Vec<f32>,
}

/// An optimizer with per-parameter state.
pub struct Optimizer {
    config: OptimizerConfig,
    slots: HashMap<LeafKey, Slot>,
    steps: usize,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Optimizer { config, slots: HashMap::new(), steps: 0 })
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Updates taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Per-parameter state `(name, first moment or velocity, second moment)` for checkpoints.
    pub fn export(&self, params: &[Param]) -> Vec<(String, Vec<f32>, Vec<f32>)> {
        params
            .iter()
            .filter_map(|p| {
                let slot = self.slots.get(&p.key())?;
                Some((p.name().to_string(), slot.first.clone(), slot.second.clone()))
            })
            .collect()
    }

    /// Restores what [`Optimizer::export`] gave, and the step count.
    pub fn import(&mut self, params: &[Param], state: &[(String, Vec<f32>, Vec<f32>)], steps: usize) -> Result<()> {
        self.slots.clear();
        for (name, first, second) in state {
            let p = crate::optim::state_param(params, name)?;
            if first.len() != p.len() || second.len() != p.len() {
                return Err(Error::shape(
                    "optimizer state",
                    format!("{} values for '{name}'", p.len()),
                    format!("{} and {}", first.len(), second.len()),
                ));
            }
            self.slots.insert(p.key(), Slot { first: first.clone(), second: second.clone() });
        }
        self.steps = steps;
        Ok(())
    }

    /// One update of every trainable parameter that has a gradient, at learning rate `lr`.
    pub fn step(&mut self, params: &[Param], grads: &mut Gradients, lr: f32) -> Result<()> {
        self.steps += 1;
        for p in params.iter().filter(|p| p.trainable()) {
            let Some(g) = grads.take(p.key()) else { continue };
            let slot = self.slots.entry(p.key()).or_insert_with(|| Slot { first: vec![0.0; p.len()], second: vec![0.0; p.len()] });
            if g.len() != p.len() {
                return Err(Error::shape("optimizer step", format!("a gradient of {} values for '{}'", p.len(), p.name()), g.len()));
            }
            match self.config {
                OptimizerConfig::Sgd { momentum, nesterov, weight_decay, .. } => {
                    p.update(|v| update::sgd(lr, momentum, nesterov, weight_decay, v, &g, &mut slot.first, &mut slot.second))
                }
                OptimizerConfig::Adam { betas, eps, weight_decay, decoupled, .. } => {
                    let decay =
                        (weight_decay > 0.0).then(|| if decoupled { Decay::Decoupled(weight_decay) } else { Decay::L2(weight_decay) });
                    let t = i32::try_from(self.steps).map_err(|_| Error::invalid("adam", "too many steps"))?;
                    p.update(|v| update::adam(t, lr, betas, eps, decay, v, &g, &mut slot.first, &mut slot.second))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    // Minimizing sum((p - 3)^2) from p = 0 converges with each optimizer.
    #[test]
    fn each_optimizer_minimizes_a_quadratic() {
        for cfg in [
            OptimizerConfig::sgd(0.1),
            OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0 },
            OptimizerConfig::adam(0.1),
            OptimizerConfig::Adam { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-4, decoupled: true },
        ] {
            let p = Param::new("p", &[2], vec![0.0, 0.0], true);
            let mut opt = Optimizer::new(cfg.clone()).unwrap();
            for _ in 0..300 {
                let t = p.tensor(true);
                let d = t.add(&Tensor::from_vec(vec![-3.0, -3.0], &[2]).unwrap()).unwrap();
                // sum(d^2) via linear: d [1,2] . d^T
                let sq = d.reshape(&[1, 2]).unwrap().matmul(&d.reshape(&[2, 1]).unwrap()).unwrap();
                let mut g = sq.backward().unwrap();
                opt.step(std::slice::from_ref(&p), &mut g, cfg.lr()).unwrap();
            }
            assert!(p.values().iter().all(|v| (v - 3.0).abs() < 0.05), "{cfg:?}: {:?}", p.values());
        }
    }

    #[test]
    fn invalid_hyper_parameters_are_errors() {
        assert!(Optimizer::new(OptimizerConfig::sgd(-1.0)).is_err());
        assert!(Optimizer::new(OptimizerConfig::Sgd { lr: 0.1, momentum: 0.0, nesterov: true, weight_decay: 0.0 }).is_err());
        assert!(
            Optimizer::new(OptimizerConfig::Adam { lr: 0.1, betas: [1.2, 0.9], eps: 1e-8, weight_decay: 0.0, decoupled: false }).is_err()
        );
    }
}
