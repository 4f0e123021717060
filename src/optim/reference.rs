//! The test oracle of [`super::update`]: dfdx's CPU device and its SGD/Adam update kernels,
//! which retort's in-place updates are held to, bit for bit. A dfdx update needs an owning
//! tensor, so it costs a copy of the parameter out of dfdx storage every step; retort's
//! optimizer updates in place instead.

use super::update::Decay;
use crate::error::{Error, Result};
use dfdx::tensor::{Cpu, Storage, Tensor, TensorFromVec};
use dfdx::tensor_ops::{AdamConfig, Momentum, SgdConfig, WeightDecay};

type DeviceVec = <Cpu as Storage<f32>>::Vec;

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

impl Device {
    /// Zeroed optimizer state for a parameter of `len` values.
    pub fn slot(&self, len: usize) -> Result<SlotState> {
        Ok(SlotState {
            first: self.cpu.try_alloc_len(len).map_err(backend_err)?,
            second: self.cpu.try_alloc_len(len).map_err(backend_err)?,
        })
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

fn backend_err(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}
