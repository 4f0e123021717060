//! Layers and their forward pass. Backward passes come from the tensor ops they call.

use super::param::Param;
use crate::error::Result;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// How a forward pass runs.
pub struct Ctx<'a> {
    /// Train mode: batch norm uses and updates batch statistics, dropout is active.
    pub train: bool,
    /// Record gradients for trainable parameters.
    pub track: bool,
    /// Randomness for dropout.
    pub rng: &'a mut Rng,
    /// Multiply-accumulates counted so far (for `retort models`).
    pub macs: u64,
}

/// Batch normalization's parameters, buffers and settings (PyTorch defaults: momentum 0.1, eps 1e-5).
pub struct BatchNorm {
    pub weight: Param,
    pub bias: Param,
    pub running_mean: Param,
    pub running_var: Param,
    pub num_batches_tracked: Param,
    pub momentum: f32,
    pub eps: f32,
}

/// A block of two branches: `post(join(body(pre(x)), shortcut(pre(x) if shared_pre else x)))`.
///
/// The CIFAR ResNet basic block has an empty `pre`, `join = Add` and `post = [Relu]`; the
/// wide-ResNet block is pre-activation (`pre = [bn1, relu]`) and shares it with the
/// shortcut when the block changes width. ShuffleNet's blocks join by concatenation.
pub struct Residual {
    pub pre: Vec<Layer>,
    pub shared_pre: bool,
    pub body: Vec<Layer>,
    pub shortcut: Vec<Layer>,
    pub post: Vec<Layer>,
    pub join: Join,
}

/// How a [`Residual`] block joins its branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// `body + shortcut` (ResNets, MobileNetV2's inverted residuals).
    Add,
    /// `cat([body, shortcut], 1)` (ShuffleNet V1's stride-2 block, ShuffleNet V2's
    /// down-sampling block).
    Concat,
    /// The input's channels split in halves `x1, x2`; `cat([x1, body(x2)], 1)` (ShuffleNet
    /// V2's basic block; `shortcut` is empty).
    SplitConcat,
}

/// One layer of a model.
pub enum Layer {
    Linear {
        weight: Param,
        bias: Option<Param>,
    },
    /// `nn.Conv2d`: weight `[out, in / groups, k, k]`.
    Conv2d {
        weight: Param,
        bias: Option<Param>,
        stride: usize,
        padding: usize,
        groups: usize,
    },
    BatchNorm(BatchNorm),
    Relu,
    Relu6,
    /// ShuffleNet's channel shuffle (`nn.ChannelShuffle`).
    ChannelShuffle {
        groups: usize,
    },
    MaxPool2d {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    /// `nn.AvgPool2d` with `count_include_pad=True`.
    AvgPool2d {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    GlobalAvgPool,
    Flatten,
    Dropout {
        p: f32,
    },
    Residual(Box<Residual>),
}

impl BatchNorm {
    /// Normalizes `x`; `relu` applies a following ReLU in the same op.
    fn forward(&self, x: &Tensor, ctx: &mut Ctx, relu: bool) -> Result<Tensor> {
        let (gamma, beta) = (self.weight.tensor(ctx.track), self.bias.tensor(ctx.track));
        if !ctx.train {
            let y = x.batch_norm_eval(&gamma, &beta, &self.running_mean.values(), &self.running_var.values(), self.eps)?;
            return Ok(if relu { y.relu() } else { y });
        }
        let (y, stats) =
            if relu { x.batch_norm_train_relu(&gamma, &beta, self.eps)? } else { x.batch_norm_train(&gamma, &beta, self.eps)? };
        let m = self.momentum;
        self.running_mean.update(|rm| rm.iter_mut().zip(&stats.mean).for_each(|(r, b)| *r = (1.0 - m) * *r + m * b));
        self.running_var.update(|rv| rv.iter_mut().zip(&stats.var_unbiased).for_each(|(r, b)| *r = (1.0 - m) * *r + m * b));
        self.num_batches_tracked.update(|n| n[0] += 1.0);
        Ok(y)
    }
}

/// Runs `layers` in order; a batch norm followed by a ReLU runs as one fused op.
pub fn forward_all(layers: &[Layer], x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
    let mut h = x.clone();
    let mut rest = layers;
    while let Some((layer, tail)) = rest.split_first() {
        rest = tail;
        h = match (layer, tail.first()) {
            (Layer::BatchNorm(bn), Some(Layer::Relu)) => {
                rest = &tail[1..];
                bn.forward(&h, ctx, true)?
            }
            _ => layer.forward(&h, ctx)?,
        };
    }
    Ok(h)
}

impl Layer {
    pub fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        match self {
            Layer::Linear { weight, bias } => {
                let w = weight.tensor(ctx.track);
                ctx.macs += (x.shape().first().copied().unwrap_or(0) * w.len()) as u64;
                x.linear(&w, bias.as_ref().map(|b| b.tensor(ctx.track)).as_ref())
            }
            Layer::Conv2d { weight, bias, stride, padding, groups } => {
                let w = weight.tensor(ctx.track);
                let y = x.conv2d_groups(&w, bias.as_ref().map(|b| b.tensor(ctx.track)).as_ref(), *stride, *padding, *groups)?;
                let s = y.shape();
                ctx.macs += (s[0] * s[2] * s[3] * w.len()) as u64;
                Ok(y)
            }
            Layer::BatchNorm(bn) => bn.forward(x, ctx, false),
            Layer::Relu => Ok(x.relu()),
            Layer::Relu6 => Ok(x.relu6()),
            Layer::ChannelShuffle { groups } => x.channel_shuffle(*groups),
            Layer::MaxPool2d { kernel, stride, padding } => x.max_pool2d(*kernel, *stride, *padding),
            Layer::AvgPool2d { kernel, stride, padding } => x.avg_pool2d(*kernel, *stride, *padding),
            Layer::GlobalAvgPool => x.global_avg_pool(),
            Layer::Flatten => x.flatten(),
            Layer::Dropout { p } => {
                if ctx.train {
                    x.dropout(*p, ctx.rng)
                } else {
                    Ok(x.clone())
                }
            }
            Layer::Residual(r) => {
                let h = forward_all(&r.pre, x, ctx)?;
                if r.join == Join::SplitConcat {
                    let half = h.shape().get(1).copied().unwrap_or(0) / 2;
                    let (x1, x2) = (h.narrow(1, 0, half)?, h.narrow(1, half, h.shape()[1] - half)?);
                    let out = Tensor::cat(&[x1, forward_all(&r.body, &x2, ctx)?], 1)?;
                    return forward_all(&r.post, &out, ctx);
                }
                let main = forward_all(&r.body, &h, ctx)?;
                let skip = forward_all(&r.shortcut, if r.shared_pre { &h } else { x }, ctx)?;
                match (r.join, r.post.split_first()) {
                    (Join::Concat, _) => forward_all(&r.post, &Tensor::cat(&[main, skip], 1)?, ctx),
                    // the sum and a first ReLU in one pass
                    (_, Some((Layer::Relu, post))) if main.shape() == skip.shape() => forward_all(post, &main.add_relu(&skip)?, ctx),
                    _ => forward_all(&r.post, &main.add(&skip)?, ctx),
                }
            }
        }
    }

    /// A one-line description for model summaries.
    pub fn describe(&self) -> String {
        match self {
            Layer::Linear { weight, bias } => format!("Linear({} -> {}, bias={})", weight.shape()[1], weight.shape()[0], bias.is_some()),
            Layer::Conv2d { weight, bias, stride, padding, groups } => {
                let s = weight.shape();
                let g = if *groups > 1 { format!(", groups={groups}") } else { String::new() };
                format!(
                    "Conv2d({} -> {}, {}x{}, stride={stride}, padding={padding}{g}, bias={})",
                    s[1] * groups,
                    s[0],
                    s[2],
                    s[3],
                    bias.is_some()
                )
            }
            Layer::BatchNorm(bn) => format!("BatchNorm({})", bn.weight.len()),
            Layer::Relu => "ReLU".into(),
            Layer::Relu6 => "ReLU6".into(),
            Layer::ChannelShuffle { groups } => format!("ChannelShuffle(groups={groups})"),
            Layer::MaxPool2d { kernel, stride, padding } => format!("MaxPool2d({kernel}, stride={stride}, padding={padding})"),
            Layer::AvgPool2d { kernel, stride, padding } => format!("AvgPool2d({kernel}, stride={stride}, padding={padding})"),
            Layer::GlobalAvgPool => "GlobalAvgPool".into(),
            Layer::Flatten => "Flatten".into(),
            Layer::Dropout { p } => format!("Dropout({p})"),
            Layer::Residual(r) => {
                let shortcut = match (r.join, r.shortcut.is_empty()) {
                    (Join::SplitConcat, _) => "half the channels",
                    (_, true) => "identity",
                    (Join::Add, false) => "projection",
                    (Join::Concat, false) => "a branch",
                };
                let join = match r.join {
                    Join::Add => "add",
                    Join::Concat | Join::SplitConcat => "concat",
                };
                format!("Residual(body={}, shortcut={shortcut}, join={join})", r.body.len())
            }
        }
    }
}
