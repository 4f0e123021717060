//! The only module that names dfdx: its CPU device and its per-tensor SGD/Adam update kernels.
//!
//! retort keeps parameters as plain `Vec<f32>`. An update moves the parameter into a dfdx
//! tensor (no copy), runs dfdx's kernel through `SgdConfig::try_update` /
//! `AdamConfig::try_update`, and copies the result back out (one copy per parameter per step).

use crate::error::{Error, Result};
use dfdx::tensor::{Cpu, Storage, Tensor, TensorFromVec};
use dfdx::tensor_ops::{AdamConfig, Momentum, SgdConfig, WeightDecay};

type DeviceVec = <Cpu as Storage<f32>>::Vec;

/// How weight decay enters an update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decay {
    /// Added to the gradient (PyTorch's `weight_decay` in SGD and Adam).
    L2(f32),
    /// Applied to the weights directly (AdamW).
    Decoupled(f32),
}

/// One parameter's optimizer state, held in dfdx storage.
pub struct SlotState {
    first: DeviceVec,
    second: DeviceVec,
}

/// The CPU device and its update kernels.
pub struct Device {
    cpu: Cpu,
}

impl Default for Device {
    fn default() -> Self {
        Device { cpu: Cpu::default() }
    }
}

fn backend_err(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl Device {
    /// Zeroed optimizer state for a parameter of `len` values.
    pub fn slot(&self, len: usize) -> Result<SlotState> {
        Ok(SlotState {
            first: self.cpu.try_alloc_len(len).map_err(backend_err)?,
            second: self.cpu.try_alloc_len(len).map_err(backend_err)?,
        })
    }

    /// Reads the state buffers (first moment / velocity, second moment).
    pub fn slot_values<'a>(&self, slot: &'a SlotState) -> (&'a [f32], &'a [f32]) {
        (&slot.first, &slot.second)
    }

    /// Overwrites the state buffers (for resuming from a checkpoint).
    pub fn set_slot_values(&self, slot: &mut SlotState, first: &[f32], second: &[f32]) -> Result<()> {
        if first.len() != slot.first.len() || second.len() != slot.second.len() {
            return Err(Error::shape("optimizer state", slot.first.len(), first.len()));
        }
        slot.first.copy_from_slice(first);
        slot.second.copy_from_slice(second);
        Ok(())
    }

    /// Moves a buffer into dfdx storage without copying (`CachableVec` derefs to `Vec`).
    fn wrap(&self, v: Vec<f32>) -> Result<DeviceVec> {
        let mut d = self.cpu.try_alloc_len(0).map_err(backend_err)?;
        *d = v;
        Ok(d)
    }

    fn param_tensor(&self, param: &mut Vec<f32>) -> Result<Tensor<(usize,), f32, Cpu>> {
        let n = param.len();
        self.cpu.try_tensor_from_vec(std::mem::take(param), (n,)).map_err(backend_err)
    }

    /// SGD (optionally with momentum or Nesterov momentum) on one parameter, in place.
    pub fn sgd(
        &self,
        lr: f32,
        momentum: f32,
        nesterov: bool,
        weight_decay: f32,
        param: &mut Vec<f32>,
        grad: Vec<f32>,
        slot: &mut SlotState,
    ) -> Result<()> {
        let cfg = SgdConfig {
            lr: lr as f64,
            momentum: match (momentum > 0.0, nesterov) {
                (false, _) => None,
                (true, false) => Some(Momentum::Classic(momentum as f64)),
                (true, true) => Some(Momentum::Nesterov(momentum as f64)),
            },
            weight_decay: (weight_decay > 0.0).then_some(WeightDecay::L2(weight_decay as f64)),
        };
        let mut p = self.param_tensor(param)?;
        let g = self.wrap(grad)?;
        let result = cfg.try_update(&mut p, &mut slot.first, &g);
        *param = p.as_vec();
        result.map_err(backend_err)
    }

    /// Adam / AdamW on one parameter, in place; `t` is the 1-based step count.
    #[allow(clippy::too_many_arguments)]
    pub fn adam(
        &self,
        t: i32,
        lr: f32,
        betas: [f32; 2],
        eps: f32,
        decay: Option<Decay>,
        param: &mut Vec<f32>,
        grad: Vec<f32>,
        slot: &mut SlotState,
    ) -> Result<()> {
        let cfg = AdamConfig {
            lr: lr as f64,
            betas: [betas[0] as f64, betas[1] as f64],
            eps: eps as f64,
            weight_decay: decay.map(|d| match d {
                Decay::L2(w) => WeightDecay::L2(w as f64),
                Decay::Decoupled(w) => WeightDecay::Decoupled(w as f64),
            }),
        };
        let mut p = self.param_tensor(param)?;
        let g = self.wrap(grad)?;
        let result = cfg.try_update(t, &mut p, &mut slot.first, &mut slot.second, &g);
        *param = p.as_vec();
        result.map_err(backend_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // torch: p=[1,2], g=[0.5,-1], SGD(lr=0.1, momentum=0.9, weight_decay=0.01), two steps with the same g:
    // step 1: d = g + 0.01 p = [0.51, -0.98]; v = d; p = [0.949, 2.098]
    // step 2: d = [0.50949, -0.97902]; v = 0.9 v + d = [0.96849, -1.86102]; p = [0.852151, 2.284102]
    #[test]
    fn sgd_momentum_weight_decay_matches_torch() {
        let dev = Device::default();
        let mut slot = dev.slot(2).unwrap();
        let mut p = vec![1.0, 2.0];
        for _ in 0..2 {
            dev.sgd(0.1, 0.9, false, 0.01, &mut p, vec![0.5, -1.0], &mut slot).unwrap();
        }
        assert!((p[0] - 0.852151).abs() < 1e-6, "{p:?}");
        assert!((p[1] - 2.284102).abs() < 1e-6, "{p:?}");
    }

    // torch: p=[1], g=[0.5], Adam(lr=0.1): first step moves by lr * sign(g) = 0.9.
    #[test]
    fn adam_first_step_moves_by_lr() {
        let dev = Device::default();
        let mut slot = dev.slot(1).unwrap();
        let mut p = vec![1.0];
        dev.adam(1, 0.1, [0.9, 0.999], 1e-8, None, &mut p, vec![0.5], &mut slot).unwrap();
        assert!((p[0] - 0.9).abs() < 1e-6, "{p:?}");
    }
}
