//! A model's layers and its optimizer on the GPU: forward (train or eval), backward from the
//! gradient of the logits, and SGD/Adam updates, mirroring `nn::layer` and `optim` kernel for
//! kernel. The loss is computed on the CPU from the downloaded logits, exactly as without CUDA.

use super::{Buf, Cuda};
use crate::error::{Error, Result};
use crate::nn::layer::{BatchNorm, Join, Layer};
use crate::nn::{Model, Param};
use crate::rng::Rng;
use crate::tensor::LeafKey;
use cudarc::driver::{CudaSlice, DeviceSlice};
use std::collections::HashMap;
use std::rc::Rc;

/// An activation on the device and its shape.
struct Act {
    buf: Buf,
    shape: Vec<usize>,
}

/// What a layer's backward pass needs from its forward pass.
enum Saved {
    Linear { x: Act },
    Conv { col: Buf, x_shape: Vec<usize>, oh: usize, ow: usize },
    Bn { x: Buf, mean: Buf, var: Buf, shape: Vec<usize> },
    Relu { x: Buf },
    MaxPool { arg: CudaSlice<i32>, x_shape: Vec<usize>, oh: usize, ow: usize },
    AvgPool { x_shape: Vec<usize>, oh: usize, ow: usize },
    Gap { x_shape: Vec<usize> },
    Flatten,
    Dropout { mask: Buf },
    Identity,
    Residual { pre: Vec<Saved>, body: Vec<Saved>, shortcut: Vec<Saved>, post: Vec<Saved>, shared_pre: bool, join: JoinSaved },
    Shuffle { shape: Vec<usize> },
}

/// How a block joined its branches, with the sizes its backward pass splits the gradient by.
enum JoinSaved {
    Add,
    /// `cat([body (cm channels), shortcut (cs channels)])` of `n` images of `plane` values.
    Concat {
        n: usize,
        cm: usize,
        cs: usize,
        plane: usize,
    },
    /// `cat([x1, body(x2)])`, `x1` the first `half` of the input's `c` channels of `h x w`
    /// planes, the body's output `cm` channels.
    Split {
        n: usize,
        c: usize,
        half: usize,
        cm: usize,
        h: usize,
        w: usize,
    },
}

/// Channels `from .. from + count` of `x [n, c, plane]` as a new `[n, count, plane]` buffer.
fn channels(cu: &Cuda, x: &Buf, n: usize, c: usize, from: usize, count: usize, plane: usize) -> Result<Buf> {
    let mut out = cu.output(n * count * plane)?;
    cu.launch("channel_copy", n * count * plane, (x, &mut out, i(n), i(c), i(count), i(from), 0i32, i(count), i(plane), 0i32))?;
    Ok(out)
}

/// `cat([a, b], 1)` of `a [n, ca, h, w]` and `b [n, cb, h, w]`.
#[allow(clippy::too_many_arguments)]
fn concat(cu: &Cuda, a: &Buf, ca: usize, b: &Buf, cb: usize, n: usize, h: usize, w: usize) -> Result<Act> {
    let (c, plane) = (ca + cb, h * w);
    let mut out = cu.output(n * c * plane)?;
    cu.launch("channel_copy", n * ca * plane, (a, &mut out, i(n), i(ca), i(c), 0i32, 0i32, i(ca), i(plane), 0i32))?;
    cu.launch("channel_copy", n * cb * plane, (b, &mut out, i(n), i(cb), i(c), 0i32, i(ca), i(cb), i(plane), 0i32))?;
    Ok(Act { buf: out, shape: vec![n, c, h, w] })
}

fn i(v: usize) -> i32 {
    v as i32
}

/// `[n, c, plane]` view of a batch-norm input `[n, c, ...]`.
fn bn_layout(shape: &[usize], c: usize) -> Result<(usize, usize)> {
    if shape.len() < 2 || shape[1] != c {
        return Err(Error::shape("batch_norm", format!("[batch, {c}, ...]"), shape));
    }
    Ok((shape[0], shape[2..].iter().product()))
}

fn image(op: &'static str, shape: &[usize]) -> Result<(usize, usize, usize, usize)> {
    match shape {
        [n, c, h, w] => Ok((*n, *c, *h, *w)),
        _ => Err(Error::shape(op, "a [batch, channels, height, width] input", shape)),
    }
}

/// A model's parameters on the GPU, with gradient buffers for the trainable ones.
pub struct GpuModel<'m> {
    pub(super) cuda: Rc<Cuda>,
    pub(super) model: &'m Model,
    pub(super) values: HashMap<LeafKey, Buf>,
    pub(super) grads: HashMap<LeafKey, Buf>,
    /// Parameters whose gradient the last backward pass wrote (the optimizer updates only these).
    pub(super) written: std::collections::HashSet<LeafKey>,
}

impl<'m> GpuModel<'m> {
    /// Uploads every parameter and buffer (`num_batches_tracked` stays on the host).
    pub fn new(cuda: Rc<Cuda>, model: &'m Model) -> Result<Self> {
        let mut g = GpuModel { cuda: cuda.clone(), model, values: HashMap::new(), grads: HashMap::new(), written: Default::default() };
        g.upload()?;
        for p in model.params().iter().filter(|p| p.trainable()) {
            g.grads.insert(p.key(), cuda.zeros(p.len())?);
        }
        Ok(g)
    }

    fn on_device(p: &Param) -> bool {
        !p.name().ends_with("num_batches_tracked")
    }

    /// Host values to the device (after loading weights or a checkpoint).
    pub fn upload(&mut self) -> Result<()> {
        for p in self.model.params().iter().filter(|p| Self::on_device(p)) {
            self.values.insert(p.key(), self.cuda.upload(&p.values())?);
        }
        Ok(())
    }

    /// Device values to the host parameters (before checkpoints, saving or CPU use).
    pub fn download(&self) -> Result<()> {
        for p in self.model.params().iter().filter(|p| Self::on_device(p)) {
            p.set(self.cuda.download(&self.values[&p.key()])?)?;
        }
        Ok(())
    }

    /// The gradients of the last backward pass, per trainable parameter (for the agreement check).
    pub fn gradients(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let mut out = Vec::new();
        for p in self.model.params().iter().filter(|p| p.trainable()) {
            out.push((p.name().to_string(), self.cuda.download(&self.grads[&p.key()])?));
        }
        Ok(out)
    }

    /// Sets each trainable parameter's gradient to `grad(name)` (the agreement check feeds both
    /// optimizers the same gradients).
    pub fn set_gradients(&mut self, grad: impl Fn(&str) -> Option<Vec<f32>>) -> Result<()> {
        for p in self.model.params().iter().filter(|p| p.trainable()) {
            let g = grad(p.name()).ok_or_else(|| Error::invalid("set_gradients", format!("no gradient for {}", p.name())))?;
            if g.len() != p.len() {
                return Err(Error::shape("set_gradients", p.len(), g.len()));
            }
            self.grads.insert(p.key(), self.cuda.upload(&g)?);
            self.written.insert(p.key());
        }
        Ok(())
    }

    fn value(&self, p: &Param) -> &Buf {
        &self.values[&p.key()]
    }

    /// Logits `[batch, classes]` (downloaded) for a host batch; `saved` is filled in train mode.
    pub fn forward(&mut self, x: &[f32], shape: &[usize], train: bool, rng: &mut Rng) -> Result<Vec<f32>> {
        let (y, _) = self.run(x, shape, train, rng)?;
        self.cuda.download(&y.buf)
    }

    fn run(&mut self, x: &[f32], shape: &[usize], train: bool, rng: &mut Rng) -> Result<(Act, Vec<Saved>)> {
        let x = Act { buf: self.cuda.upload(x)?, shape: shape.to_vec() };
        let mut saved = Vec::new();
        let y = self.forward_all(self.model.layers(), x, train, rng, &mut saved)?;
        Ok((y, saved))
    }

    fn forward_all(&mut self, layers: &'m [Layer], mut x: Act, train: bool, rng: &mut Rng, saved: &mut Vec<Saved>) -> Result<Act> {
        for layer in layers {
            let (y, s) = self.layer_forward(layer, x, train, rng)?;
            saved.push(s);
            x = y;
        }
        Ok(x)
    }

    fn layer_forward(&mut self, layer: &'m Layer, x: Act, train: bool, rng: &mut Rng) -> Result<(Act, Saved)> {
        let cu = self.cuda.clone();
        Ok(match layer {
            Layer::Linear { weight, bias } => {
                let (out, inp) = (weight.shape()[0], weight.shape()[1]);
                if x.shape.len() != 2 || x.shape[1] != inp {
                    return Err(Error::shape("linear", format!("[batch, {inp}]"), &x.shape));
                }
                let n = x.shape[0];
                let mut y = cu.output(n * out)?;
                cu.gemm(false, true, n, out, inp, &x.buf, self.value(weight), 0.0, &mut y)?;
                if let Some(b) = bias {
                    cu.launch("add_bias", n * out, (&mut y, self.value(b), n, out, 1usize))?;
                }
                (Act { buf: y, shape: vec![n, out] }, if train { Saved::Linear { x } } else { Saved::Identity })
            }
            Layer::Conv2d { weight, bias, stride, padding, groups } => {
                let (n, c, h, w) = image("conv2d", &x.shape)?;
                let ws = weight.shape();
                let (oc, k, g) = (ws[0], ws[2], *groups);
                if ws[1] * g != c || h + 2 * padding < k || w + 2 * padding < k {
                    return Err(Error::shape(
                        "conv2d",
                        format!("an input with {} channels of at least {k}x{k} with padding", ws[1] * g),
                        &x.shape,
                    ));
                }
                let (oh, ow) = ((h + 2 * padding - k) / stride + 1, (w + 2 * padding - k) / stride + 1);
                // per group: its channels' columns, then its rows of the weights times them
                let (cg, og) = (c / g, oc / g);
                let (gkk, cols) = (cg * k * k, n * oh * ow);
                let mut col = cu.output(c * k * k * cols)?;
                let mut out_t = cu.output(oc * cols)?;
                for gi in 0..g {
                    let mut col_g = col.slice_mut(gi * gkk * cols..(gi + 1) * gkk * cols);
                    let dims = (i(n), i(cg), i(c), i(gi * cg), i(h), i(w), i(k), i(*stride), i(*padding));
                    cu.launch(
                        "im2col",
                        gkk * cols,
                        (&x.buf, &mut col_g, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7, dims.8),
                    )?;
                    let w_g = self.value(weight).slice(gi * og * gkk..(gi + 1) * og * gkk);
                    let col_g = col.slice(gi * gkk * cols..(gi + 1) * gkk * cols);
                    let mut out_g = out_t.slice_mut(gi * og * cols..(gi + 1) * og * cols);
                    cu.gemm(false, false, og, cols, gkk, &w_g, &col_g, 0.0, &mut out_g)?;
                }
                let mut y = cu.output(oc * cols)?;
                cu.launch("swap01", oc * cols, (&out_t, &mut y, oc, n, oh * ow))?;
                if let Some(b) = bias {
                    cu.launch("add_bias", oc * cols, (&mut y, self.value(b), n, oc, oh * ow))?;
                }
                let saved = if train { Saved::Conv { col, x_shape: x.shape, oh, ow } } else { Saved::Identity };
                (Act { buf: y, shape: vec![n, oc, oh, ow] }, saved)
            }
            Layer::BatchNorm(bn) => self.batch_norm(bn, x, train)?,
            Layer::Relu => {
                let mut y = cu.output(x.buf.len())?;
                cu.launch("relu_fwd", x.buf.len(), (&x.buf, &mut y, x.buf.len()))?;
                let shape = x.shape.clone();
                (Act { buf: y, shape }, if train { Saved::Relu { x: x.buf } } else { Saved::Identity })
            }
            Layer::Relu6 => {
                let mut y = cu.output(x.buf.len())?;
                cu.launch("relu6_fwd", x.buf.len(), (&x.buf, &mut y, x.buf.len()))?;
                let shape = x.shape.clone();
                (Act { buf: y, shape }, if train { Saved::Relu { x: x.buf } } else { Saved::Identity })
            }
            Layer::ChannelShuffle { groups } => {
                let (n, c, h, w) = image("channel_shuffle", &x.shape)?;
                if *groups == 0 || c % groups != 0 {
                    return Err(Error::invalid("channel_shuffle", format!("groups = {groups} must divide the channels ({c})")));
                }
                let mut y = cu.output(x.buf.len())?;
                cu.launch("channel_shuffle", x.buf.len(), (&x.buf, &mut y, i(n), i(c), i(*groups), i(h * w), 0i32))?;
                (Act { buf: y, shape: x.shape.clone() }, Saved::Shuffle { shape: x.shape })
            }
            Layer::MaxPool2d { kernel, stride, padding } | Layer::AvgPool2d { kernel, stride, padding } => {
                let (n, c, h, w) = image("pool2d", &x.shape)?;
                if h + 2 * padding < *kernel || w + 2 * padding < *kernel || 2 * padding > *kernel {
                    return Err(Error::shape(
                        "pool2d",
                        format!("an input of at least {kernel}x{kernel} after padding {padding}"),
                        &x.shape,
                    ));
                }
                let (oh, ow) = ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1);
                let mut y = cu.output(n * c * oh * ow)?;
                let dims = (i(n * c), i(h), i(w), i(*kernel), i(*stride), i(*padding), i(oh), i(ow));
                let shape = vec![n, c, oh, ow];
                if matches!(layer, Layer::MaxPool2d { .. }) {
                    let mut arg = cu.output_i32(n * c * oh * ow)?;
                    cu.launch(
                        "maxpool_fwd",
                        n * c * oh * ow,
                        (&x.buf, &mut y, &mut arg, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7),
                    )?;
                    (Act { buf: y, shape }, if train { Saved::MaxPool { arg, x_shape: x.shape, oh, ow } } else { Saved::Identity })
                } else {
                    cu.launch(
                        "avgpool_fwd",
                        n * c * oh * ow,
                        (&x.buf, &mut y, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7),
                    )?;
                    (Act { buf: y, shape }, if train { Saved::AvgPool { x_shape: x.shape, oh, ow } } else { Saved::Identity })
                }
            }
            Layer::GlobalAvgPool => {
                let (n, c, h, w) = image("global_avg_pool", &x.shape)?;
                let mut y = cu.output(n * c)?;
                cu.launch("gap_fwd", n * c, (&x.buf, &mut y, n * c, h * w))?;
                (Act { buf: y, shape: vec![n, c] }, Saved::Gap { x_shape: x.shape })
            }
            Layer::Flatten => {
                let n = x.shape[0];
                let rest = x.shape[1..].iter().product();
                (Act { buf: x.buf, shape: vec![n, rest] }, Saved::Flatten)
            }
            Layer::Dropout { p } => {
                if !train || *p == 0.0 {
                    return Ok((x, Saved::Identity));
                }
                // the CPU's mask, drawn from the same stream in the same order
                let keep = 1.0 / (1.0 - p);
                let mask: Vec<f32> = (0..x.buf.len()).map(|_| if rng.uniform() < *p { 0.0 } else { keep }).collect();
                let mask = cu.upload(&mask)?;
                let mut y = cu.output(x.buf.len())?;
                cu.launch("mul", x.buf.len(), (&x.buf, &mask, &mut y, x.buf.len()))?;
                (Act { buf: y, shape: x.shape }, Saved::Dropout { mask })
            }
            Layer::Residual(r) => {
                let skip_x = if r.shared_pre { None } else { Some(Act { buf: x.buf.clone(), shape: x.shape.clone() }) };
                let (mut pre, mut body, mut shortcut, mut post) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let h = self.forward_all(&r.pre, x, train, rng, &mut pre)?;
                if r.join == Join::SplitConcat {
                    // cat([x1, body(x2)]) for the halves x1, x2 of h's channels
                    let (n, c, hh, ww) = image("channel split", &h.shape)?;
                    let (half, plane) = (c / 2, hh * ww);
                    let x2 = Act { buf: channels(&cu, &h.buf, n, c, half, c - half, plane)?, shape: vec![n, c - half, hh, ww] };
                    let main = self.forward_all(&r.body, x2, train, rng, &mut body)?;
                    let (_, cm, mh, mw) = image("channel split", &main.shape)?;
                    if (mh, mw) != (hh, ww) {
                        return Err(Error::shape("channel split", &h.shape, &main.shape));
                    }
                    let joined = concat(&cu, &channels(&cu, &h.buf, n, c, 0, half, plane)?, half, &main.buf, cm, n, hh, ww)?;
                    let y = self.forward_all(&r.post, joined, train, rng, &mut post)?;
                    let join = JoinSaved::Split { n, c, half, cm, h: hh, w: ww };
                    return Ok((y, Saved::Residual { pre, body, shortcut, post, shared_pre: r.shared_pre, join }));
                }
                let skip_in = match skip_x {
                    Some(a) => a,
                    None => Act { buf: h.buf.clone(), shape: h.shape.clone() },
                };
                let main = self.forward_all(&r.body, h, train, rng, &mut body)?;
                let skip = self.forward_all(&r.shortcut, skip_in, train, rng, &mut shortcut)?;
                if r.join == Join::Concat {
                    // cat([body, shortcut]): the same images and sizes, any channels
                    let (n, cm, hh, ww) = image("concat", &main.shape)?;
                    let (_, cs, sh, sw) = image("concat", &skip.shape)?;
                    if (sh, sw, skip.shape[0]) != (hh, ww, n) {
                        return Err(Error::shape("concat", &main.shape, &skip.shape));
                    }
                    let joined = concat(&cu, &main.buf, cm, &skip.buf, cs, n, hh, ww)?;
                    let y = self.forward_all(&r.post, joined, train, rng, &mut post)?;
                    let join = JoinSaved::Concat { n, cm, cs, plane: hh * ww };
                    return Ok((y, Saved::Residual { pre, body, shortcut, post, shared_pre: r.shared_pre, join }));
                }
                if main.shape != skip.shape {
                    return Err(Error::shape("residual add", &main.shape, &skip.shape));
                }
                let mut sum = cu.output(main.buf.len())?;
                cu.launch("add", main.buf.len(), (&main.buf, &skip.buf, &mut sum, main.buf.len()))?;
                let y = self.forward_all(&r.post, Act { buf: sum, shape: main.shape }, train, rng, &mut post)?;
                (y, Saved::Residual { pre, body, shortcut, post, shared_pre: r.shared_pre, join: JoinSaved::Add })
            }
        })
    }

    fn batch_norm(&mut self, bn: &'m BatchNorm, x: Act, train: bool) -> Result<(Act, Saved)> {
        let cu = self.cuda.clone();
        let c = bn.weight.len();
        let (n, plane) = bn_layout(&x.shape, c)?;
        let mut y = cu.output(x.buf.len())?;
        let (gamma, beta) = (self.value(&bn.weight), self.value(&bn.bias));
        if !train {
            let (rm, rv) = (self.value(&bn.running_mean), self.value(&bn.running_var));
            cu.launch("bn_apply", x.buf.len(), (&x.buf, rm, rv, gamma, beta, &mut y, bn.eps, i(n), i(c), i(plane)))?;
            return Ok((Act { buf: y, shape: x.shape }, Saved::Identity));
        }
        let count = n * plane;
        if count < 2 {
            return Err(Error::shape("batch_norm", "more than one value per channel in train mode", &x.shape));
        }
        let (mut mean, mut var) = (cu.output(c)?, cu.output(c)?);
        cu.launch_per_channel("bn_stats", c, (&x.buf, &mut mean, &mut var, i(n), i(c), i(plane)))?;
        cu.launch("bn_apply", x.buf.len(), (&x.buf, &mean, &var, gamma, beta, &mut y, bn.eps, i(n), i(c), i(plane)))?;
        let unbias = count as f32 / (count - 1) as f32;
        let mut rm = self.values.remove(&bn.running_mean.key()).expect("uploaded in new");
        let mut rv = self.values.remove(&bn.running_var.key()).expect("uploaded in new");
        let ran = cu.launch("bn_running", c, (&mut rm, &mut rv, &mean, &var, bn.momentum, unbias, i(c)));
        self.values.insert(bn.running_mean.key(), rm);
        self.values.insert(bn.running_var.key(), rv);
        ran?;
        bn.num_batches_tracked.update(|v| v[0] += 1.0);
        let shape = x.shape.clone();
        Ok((Act { buf: y, shape: shape.clone() }, Saved::Bn { x: x.buf, mean, var, shape }))
    }

    /// `g` becomes the gradient of `p`, or is added to it when `p` already got one this pass.
    fn accumulate(&mut self, p: &Param, g: Buf) -> Result<()> {
        if self.written.insert(p.key()) {
            self.grads.insert(p.key(), g);
            return Ok(());
        }
        let acc = self.grads.get_mut(&p.key()).ok_or_else(|| Error::invalid("backward", format!("{} is not trainable", p.name())))?;
        self.cuda.launch("add_into", g.len(), (acc, &g, g.len()))
    }

    /// Runs a train-mode forward pass and keeps what the backward pass needs.
    pub fn forward_train(&mut self, x: &[f32], shape: &[usize], rng: &mut Rng) -> Result<(Vec<f32>, Tape)> {
        let (y, saved) = self.run(x, shape, true, rng)?;
        Ok((self.cuda.download(&y.buf)?, Tape { saved, logits: y.buf }))
    }

    /// Gradients of every trainable parameter from the gradient of the logits (host, `[batch, classes]`).
    pub fn backward(&mut self, tape: Tape, dlogits: &[f32]) -> Result<()> {
        let dy = self.cuda.upload(dlogits)?;
        self.backward_from(tape, dy)
    }

    /// The same from a gradient already on the device (the loss kernel's).
    pub fn backward_from(&mut self, tape: Tape, dlogits: Buf) -> Result<()> {
        self.written.clear();
        self.backward_all(self.model.layers(), tape.saved, dlogits)?;
        Ok(())
    }

    fn backward_all(&mut self, layers: &'m [Layer], saved: Vec<Saved>, mut dy: Buf) -> Result<Buf> {
        for (layer, s) in layers.iter().zip(saved).rev() {
            dy = self.layer_backward(layer, s, dy)?;
        }
        Ok(dy)
    }

    fn layer_backward(&mut self, layer: &'m Layer, saved: Saved, dy: Buf) -> Result<Buf> {
        let cu = self.cuda.clone();
        Ok(match (layer, saved) {
            (_, Saved::Identity) => dy,
            (Layer::Linear { weight, bias }, Saved::Linear { x }) => {
                let (out, inp, n) = (weight.shape()[0], weight.shape()[1], x.shape[0]);
                let mut dw = cu.output(out * inp)?;
                cu.gemm(true, false, out, inp, n, &dy, &x.buf, 0.0, &mut dw)?;
                self.accumulate(weight, dw)?;
                if let Some(b) = bias {
                    let mut db = cu.output(out)?;
                    cu.launch_per_channel("channel_sum", out, (&dy, &mut db, i(n), i(out), 1i32))?;
                    self.accumulate(b, db)?;
                }
                let mut dx = cu.output(n * inp)?;
                cu.gemm(false, false, n, inp, out, &dy, self.value(weight), 0.0, &mut dx)?;
                dx
            }
            (Layer::Conv2d { weight, bias, stride, padding, groups }, Saved::Conv { col, x_shape, oh, ow }) => {
                let (n, c, h, w) = image("conv2d", &x_shape)?;
                let (oc, k, g) = (weight.shape()[0], weight.shape()[2], *groups);
                let (cg, og) = (c / g, oc / g);
                let (gkk, cols) = (cg * k * k, n * oh * ow);
                let mut dy_t = cu.output(oc * cols)?;
                cu.launch("swap01", oc * cols, (&dy, &mut dy_t, n, oc, oh * ow))?;
                let mut dw = cu.output(oc * gkk)?;
                let mut dx = cu.output(n * c * h * w)?;
                let mut dcol = cu.output(gkk * cols)?;
                for gi in 0..g {
                    // group gi: its rows of dy^T against its columns, and its channels of dx
                    let dy_g = dy_t.slice(gi * og * cols..(gi + 1) * og * cols);
                    let col_g = col.slice(gi * gkk * cols..(gi + 1) * gkk * cols);
                    let mut dw_g = dw.slice_mut(gi * og * gkk..(gi + 1) * og * gkk);
                    cu.gemm(false, true, og, gkk, cols, &dy_g, &col_g, 0.0, &mut dw_g)?;
                    let w_g = self.value(weight).slice(gi * og * gkk..(gi + 1) * og * gkk);
                    cu.gemm(true, false, gkk, cols, og, &w_g, &dy_g, 0.0, &mut dcol)?;
                    let dims = (i(n), i(cg), i(c), i(gi * cg), i(h), i(w), i(k), i(*stride), i(*padding));
                    cu.launch(
                        "col2im",
                        n * cg * h * w,
                        (&dcol, &mut dx, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7, dims.8),
                    )?;
                }
                self.accumulate(weight, dw)?;
                if let Some(b) = bias {
                    let mut db = cu.output(oc)?;
                    cu.launch_per_channel("channel_sum", oc, (&dy, &mut db, i(n), i(oc), i(oh * ow)))?;
                    self.accumulate(b, db)?;
                }
                dx
            }
            (Layer::BatchNorm(bn), Saved::Bn { x, mean, var, shape }) => {
                let c = bn.weight.len();
                let (n, plane) = bn_layout(&shape, c)?;
                let (mut dgamma, mut dbeta) = (cu.output(c)?, cu.output(c)?);
                cu.launch_per_channel("bn_bwd_reduce", c, (&dy, &x, &mean, &var, bn.eps, &mut dgamma, &mut dbeta, i(n), i(c), i(plane)))?;
                let mut dx = cu.output(x.len())?;
                let gamma = self.value(&bn.weight);
                cu.launch("bn_bwd_dx", x.len(), (&dy, &x, &mean, &var, bn.eps, gamma, &dgamma, &dbeta, &mut dx, i(n), i(c), i(plane)))?;
                self.accumulate(&bn.weight, dgamma)?;
                self.accumulate(&bn.bias, dbeta)?;
                dx
            }
            (Layer::Relu, Saved::Relu { x }) => {
                let mut dx = cu.output(x.len())?;
                cu.launch("relu_bwd", x.len(), (&x, &dy, &mut dx, x.len()))?;
                dx
            }
            (Layer::MaxPool2d { kernel, stride, padding }, Saved::MaxPool { arg, x_shape, oh, ow }) => {
                let (n, c, h, w) = image("max_pool2d", &x_shape)?;
                let mut dx = cu.output(n * c * h * w)?;
                let dims = (i(n * c), i(h), i(w), i(*kernel), i(*stride), i(*padding), i(oh), i(ow));
                cu.launch(
                    "maxpool_bwd",
                    n * c * h * w,
                    (&dy, &arg, &mut dx, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7),
                )?;
                dx
            }
            (Layer::AvgPool2d { kernel, stride, padding }, Saved::AvgPool { x_shape, oh, ow }) => {
                let (n, c, h, w) = image("avg_pool2d", &x_shape)?;
                let mut dx = cu.output(n * c * h * w)?;
                let dims = (i(n * c), i(h), i(w), i(*kernel), i(*stride), i(*padding), i(oh), i(ow));
                cu.launch("avgpool_bwd", n * c * h * w, (&dy, &mut dx, dims.0, dims.1, dims.2, dims.3, dims.4, dims.5, dims.6, dims.7))?;
                dx
            }
            (Layer::GlobalAvgPool, Saved::Gap { x_shape }) => {
                let (n, c, h, w) = image("global_avg_pool", &x_shape)?;
                let mut dx = cu.output(n * c * h * w)?;
                cu.launch("gap_bwd", n * c * h * w, (&dy, &mut dx, n * c, h * w))?;
                dx
            }
            (Layer::Flatten, Saved::Flatten) => dy,
            (Layer::Dropout { .. }, Saved::Dropout { mask }) => {
                let mut dx = cu.output(dy.len())?;
                cu.launch("mul", dy.len(), (&dy, &mask, &mut dx, dy.len()))?;
                dx
            }
            (Layer::Residual(r), Saved::Residual { pre, body, shortcut, post, shared_pre, join }) => {
                let d_out = self.backward_all(&r.post, post, dy)?;
                let (d_main, d_skip_out) = match join {
                    JoinSaved::Add => (d_out.clone(), d_out),
                    JoinSaved::Concat { n, cm, cs, plane } => {
                        (channels(&cu, &d_out, n, cm + cs, 0, cm, plane)?, channels(&cu, &d_out, n, cm + cs, cm, cs, plane)?)
                    }
                    JoinSaved::Split { n, c, half, cm, h, w } => {
                        // d h = cat([d x1, body's d x2])
                        let d_x2 = self.backward_all(&r.body, body, channels(&cu, &d_out, n, half + cm, half, cm, h * w)?)?;
                        let d_x1 = channels(&cu, &d_out, n, half + cm, 0, half, h * w)?;
                        let dh = concat(&cu, &d_x1, half, &d_x2, c - half, n, h, w)?;
                        return self.backward_all(&r.pre, pre, dh.buf);
                    }
                };
                let mut dh = self.backward_all(&r.body, body, d_main)?;
                let d_skip = self.backward_all(&r.shortcut, shortcut, d_skip_out)?;
                if shared_pre {
                    cu.launch("add_into", d_skip.len(), (&mut dh, &d_skip, d_skip.len()))?;
                    self.backward_all(&r.pre, pre, dh)?
                } else {
                    let mut dx = self.backward_all(&r.pre, pre, dh)?;
                    cu.launch("add_into", d_skip.len(), (&mut dx, &d_skip, d_skip.len()))?;
                    dx
                }
            }
            (Layer::Relu6, Saved::Relu { x }) => {
                let mut dx = cu.output(x.len())?;
                cu.launch("relu6_bwd", x.len(), (&x, &dy, &mut dx, x.len()))?;
                dx
            }
            (Layer::ChannelShuffle { groups }, Saved::Shuffle { shape }) => {
                let (n, c, h, w) = image("channel_shuffle", &shape)?;
                let mut dx = cu.output(dy.len())?;
                cu.launch("channel_shuffle", dy.len(), (&dy, &mut dx, i(n), i(c), i(*groups), i(h * w), 1i32))?;
                dx
            }
            (layer, _) => return Err(Error::invalid("backward", format!("internal: no saved state for {}", layer.describe()))),
        })
    }
}

/// What a train-mode forward pass saved for its backward pass.
pub struct Tape {
    saved: Vec<Saved>,
    /// The logits on the device (the loss kernel reads them there).
    pub logits: Buf,
}
