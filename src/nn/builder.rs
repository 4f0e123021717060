//! Building a model: its runtime arguments ([`ModelConfig`]) and the [`Builder`] that creates
//! named, initialized parameters and layers with PyTorch's names and initializations.

use super::layer::{BatchNorm, Layer};
use super::param::Param;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// What to build: the architecture's runtime arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Number of classes (the width of the logits).
    pub classes: usize,
    /// Input shape without the batch dim: `[channels, height, width]` (an MLP also takes `[features]`).
    pub input: Vec<usize>,
    /// Hidden widths of an `mlp`.
    pub hidden: Vec<usize>,
    /// Channels of the `cnn` blocks.
    pub channels: Vec<usize>,
    /// Dropout probability (`mlp` between hidden layers, wide ResNets inside blocks).
    pub dropout: f32,
    /// Width multiplier of `mobilenetv2` (RepDistiller's `width_mult`; 0.5 is `mobile_half`).
    pub width: f64,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            classes: 100,
            input: vec![3, 32, 32],
            hidden: vec![512, 512],
            channels: vec![16, 32, 64],
            dropout: 0.0,
            width: 1.0,
            seed: 0,
        }
    }
}

/// How a convolution's weights start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConvInit {
    /// Normal with std `sqrt(2 / (out * k * k))` (the benchmarks' ResNets, VGGs, MobileNetV2).
    KaimingFanOut,
    /// PyTorch's `nn.Conv2d` default: uniform in `±1 / sqrt(in / groups * k * k)` (ShuffleNets,
    /// MobileNetV1).
    Default,
}

/// Creates named, initialized parameters.
pub(crate) struct Builder {
    pub params: Vec<Param>,
    rng: Rng,
    /// The first layer whose size overflowed or passed the memory cap; [`build`] returns it.
    pub(crate) error: Option<Error>,
    /// Values allocated so far, held to the memory cap as a whole.
    total: usize,
}

impl Builder {
    pub fn new(seed: u64) -> Self {
        Builder { params: Vec::new(), rng: Rng::new(seed), error: None, total: 0 }
    }

    /// The number of values of a weight of `shape` for layer `name`, checked (0 after an error,
    /// which [`build`] then returns).
    fn checked(&mut self, name: &str, shape: &[usize]) -> usize {
        use crate::tensor::limits;
        if self.error.is_some() {
            return 0;
        }
        let total = limits::numel("model", shape).and_then(|n| {
            let total = self.total.saturating_add(n);
            limits::fits("model", "its parameters", total, std::mem::size_of::<f32>()).map(|_| (n, total))
        });
        match total {
            Ok((n, total)) => {
                self.total = total;
                n
            }
            Err(e) => {
                let message = e.to_string();
                let message = message.strip_prefix("model: ").unwrap_or(&message);
                self.error = Some(Error::invalid("model", format!("layer '{name}': {message}")));
                0
            }
        }
    }

    fn add(&mut self, name: String, shape: &[usize], values: Vec<f32>, trainable: bool) -> Param {
        // after a size error the model is discarded: keep a placeholder of the values made
        let shape = if self.error.is_some() { vec![values.len()] } else { shape.to_vec() };
        let p = Param::new(name, &shape, values, trainable);
        self.params.push(p.clone());
        p
    }

    /// PyTorch's `nn.Linear` default init: weight and bias uniform in ±1/sqrt(in).
    pub fn linear(&mut self, name: &str, inputs: usize, outputs: usize) -> Layer {
        let bound = 1.0 / (inputs as f32).sqrt();
        let n = self.checked(name, &[outputs, inputs]);
        let w = (0..n).map(|_| self.rng.uniform_in(-bound, bound)).collect();
        let nb = self.checked(name, &[outputs]);
        let b = (0..nb).map(|_| self.rng.uniform_in(-bound, bound)).collect();
        Layer::Linear {
            weight: self.add(format!("{name}.weight"), &[outputs, inputs], w, true),
            bias: Some(self.add(format!("{name}.bias"), &[outputs], b, true)),
        }
    }

    /// Kaiming-normal (fan_out, ReLU) init as the benchmark ResNets use; no bias.
    pub fn conv(&mut self, name: &str, inputs: usize, outputs: usize, kernel: usize, stride: usize, padding: usize) -> Layer {
        self.conv_with(name, [inputs, outputs, kernel, stride, padding, 1], ConvInit::KaimingFanOut, false)
    }

    /// A convolution `[inputs, outputs, kernel, stride, padding, groups]` with `init`, and a
    /// bias (zero, or PyTorch's default with [`ConvInit::Default`]) when `bias`.
    pub fn conv_with(
        &mut self,
        name: &str,
        [inputs, outputs, kernel, stride, padding, groups]: [usize; 6],
        init: ConvInit,
        bias: bool,
    ) -> Layer {
        let per_group = inputs / groups.max(1);
        let shape = [outputs, per_group, kernel, kernel];
        let n = self.checked(name, &shape);
        let fan_in = (per_group * kernel * kernel).max(1) as f32;
        let w = match init {
            ConvInit::KaimingFanOut => {
                let std = (2.0 / (outputs as f32 * (kernel * kernel) as f32)).sqrt();
                (0..n).map(|_| self.rng.normal() * std).collect()
            }
            ConvInit::Default => (0..n).map(|_| self.rng.uniform_in(-1.0, 1.0) / fan_in.sqrt()).collect(),
        };
        // state_dict order: the weight, then the bias
        let weight = self.add(format!("{name}.weight"), &shape, w, true);
        let bias = bias.then(|| {
            let nb = self.checked(name, &[outputs]);
            let b = match init {
                ConvInit::KaimingFanOut => vec![0.0; nb],
                ConvInit::Default => (0..nb).map(|_| self.rng.uniform_in(-1.0, 1.0) / fan_in.sqrt()).collect(),
            };
            self.add(format!("{name}.bias"), &[outputs], b, true)
        });
        Layer::Conv2d { weight, bias, stride, padding, groups: groups.max(1) }
    }

    /// A linear layer initialized as the benchmark VGGs and MobileNetV2 do: weight normal
    /// with standard deviation 0.01, bias zero.
    pub fn linear_small(&mut self, name: &str, inputs: usize, outputs: usize) -> Layer {
        let layer = self.linear(name, inputs, outputs);
        if let Layer::Linear { weight, bias: Some(bias) } = &layer {
            let w = (0..weight.len()).map(|_| self.rng.normal() * 0.01).collect();
            // sizes were checked by `linear`; `set` fails only on a length mismatch
            let _ = weight.set(w);
            let _ = bias.set(vec![0.0; bias.len()]);
        }
        layer
    }

    pub fn batch_norm(&mut self, name: &str, channels: usize) -> Layer {
        let channels = self.checked(name, &[channels, 4]) / 4;
        Layer::BatchNorm(BatchNorm {
            weight: self.add(format!("{name}.weight"), &[channels], vec![1.0; channels], true),
            bias: self.add(format!("{name}.bias"), &[channels], vec![0.0; channels], true),
            running_mean: self.add(format!("{name}.running_mean"), &[channels], vec![0.0; channels], false),
            running_var: self.add(format!("{name}.running_var"), &[channels], vec![1.0; channels], false),
            num_batches_tracked: self.add(format!("{name}.num_batches_tracked"), &[], vec![0.0], false),
            momentum: 0.1,
            eps: 1e-5,
        })
    }
}

pub(crate) fn image_input(name: &str, cfg: &ModelConfig) -> Result<(usize, usize, usize)> {
    match cfg.input[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok((c, h, w)),
        _ => Err(Error::invalid("model", format!("{name} needs an image input [channels, height, width], got {:?}", cfg.input))),
    }
}
