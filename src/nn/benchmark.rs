//! The rest of the CIFAR distillation benchmark's zoo (RepDistiller's and mdistiller's
//! `models/`): VGG with batch norm, MobileNetV2, ShuffleNet V1 and V2, and the bottleneck
//! ResNet50. Parameter names are those modules' `state_dict` keys, so their checkpoints load
//! unchanged. Where those modules pool a fixed window that equals the whole final map on
//! 32x32 inputs (`avg_pool2d(out, 4)`, `AvgPool2d(2)`), the global average is used.

use super::builder::{image_input, Builder, ConvInit, ModelConfig};
use super::layer::{Join, Layer, Residual};
use crate::error::{Error, Result};

/// A block of two branches joined by `join`, then `post`.
pub(crate) fn block(body: Vec<Layer>, shortcut: Vec<Layer>, join: Join, post: Vec<Layer>) -> Layer {
    Layer::Residual(Box::new(Residual { pre: vec![], shared_pre: false, body, shortcut, post, join }))
}

/// `conv (no bias) -> bn` named `{p}conv{i}` / `{p}bn{i}`, with a ReLU after when `relu`.
fn conv_bn(b: &mut Builder, p: &str, i: usize, shape: [usize; 6], init: ConvInit, relu: bool) -> Vec<Layer> {
    let mut l = vec![b.conv_with(&format!("{p}conv{i}"), shape, init, false), b.batch_norm(&format!("{p}bn{i}"), shape[1])];
    if relu {
        l.push(Layer::Relu);
    }
    l
}

/// VGG with batch norm (RepDistiller's `vgg*_bn`, zoo names `vgg8` ... `vgg19`): five blocks
/// of conv3x3 (with bias) - BN - ReLU named `block{k}.{3 i}` and `block{k}.{3 i + 1}`, max
/// pools after the first three blocks (and after the fourth on 64x64 inputs, as there),
/// global average pool, `classifier`.
pub(crate) fn vgg(depth: usize, cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (mut c, h, _) = image_input("vgg", cfg)?;
    let blocks: [&[usize]; 5] = match depth {
        8 => [&[64], &[128], &[256], &[512], &[512]],
        11 => [&[64], &[128], &[256, 256], &[512, 512], &[512, 512]],
        13 => [&[64, 64], &[128, 128], &[256, 256], &[512, 512], &[512, 512]],
        16 => [&[64, 64], &[128, 128], &[256, 256, 256], &[512, 512, 512], &[512, 512, 512]],
        _ => [&[64, 64], &[128, 128], &[256, 256, 256, 256], &[512, 512, 512, 512], &[512, 512, 512, 512]],
    };
    let mut layers = Vec::new();
    for (k, widths) in blocks.iter().enumerate() {
        for (i, &out) in widths.iter().enumerate() {
            layers.push(b.conv_with(&format!("block{k}.{}", 3 * i), [c, out, 3, 1, 1, 1], ConvInit::KaimingFanOut, true));
            layers.push(b.batch_norm(&format!("block{k}.{}", 3 * i + 1), out));
            layers.push(Layer::Relu);
            c = out;
        }
        if k < 3 || (k == 3 && h == 64) {
            layers.push(Layer::MaxPool2d { kernel: 2, stride: 2, padding: 0 });
        }
    }
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear_small("classifier", c, cfg.classes));
    Ok(layers)
}

/// MobileNetV2 of RepDistiller (after "Knowledge Distillation via Route Constrained
/// Optimization"): `conv1` (3x3 stride 2), inverted residual blocks `blocks.{s}.{i}.conv.{0..7}`
/// (pointwise expansion by 6, also in the first stage; depthwise 3x3; pointwise linear),
/// `conv2` to 1280 channels, global average pool, `classifier.0`. ReLU, not ReLU6, as there.
/// Channels are `int(c * width)`.
pub(crate) fn mobilenetv2(width: f64, cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("mobilenetv2", cfg)?;
    if !(width > 0.0 && width <= 4.0) {
        return Err(Error::invalid("model", format!("mobilenetv2 width {width} must be in (0, 4]")));
    }
    let scaled = |ch: usize| ((ch as f64 * width) as usize).max(1);
    let k = ConvInit::KaimingFanOut;
    let mut input = scaled(32);
    let mut layers = vec![b.conv_with("conv1.0", [c, input, 3, 2, 1, 1], k, false), b.batch_norm("conv1.1", input), Layer::Relu];
    let settings = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    for (s, &(t, ch, n, stride)) in settings.iter().enumerate() {
        let out = scaled(ch);
        for i in 0..n {
            let stride = if i == 0 { stride } else { 1 };
            let (p, mid) = (format!("blocks.{s}.{i}.conv"), input * t);
            let body = vec![
                b.conv_with(&format!("{p}.0"), [input, mid, 1, 1, 0, 1], k, false),
                b.batch_norm(&format!("{p}.1"), mid),
                Layer::Relu,
                b.conv_with(&format!("{p}.3"), [mid, mid, 3, stride, 1, mid], k, false),
                b.batch_norm(&format!("{p}.4"), mid),
                Layer::Relu,
                b.conv_with(&format!("{p}.6"), [mid, out, 1, 1, 0, 1], k, false),
                b.batch_norm(&format!("{p}.7"), out),
            ];
            // a residual connection only where the shapes agree, as there
            if stride == 1 && input == out {
                layers.push(block(body, vec![], Join::Add, vec![]));
            } else {
                layers.extend(body);
            }
            input = out;
        }
    }
    let last = if width > 1.0 { scaled(1280) } else { 1280 };
    layers.extend([b.conv_with("conv2.0", [input, last, 1, 1, 0, 1], k, false), b.batch_norm("conv2.1", last), Layer::Relu]);
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear_small("classifier.0", last, cfg.classes));
    Ok(layers)
}

/// ShuffleNet V1 of RepDistiller (`ShuffleV1`: groups 3, stages of 240, 480, 960 channels
/// with 4, 8, 4 blocks): `conv1` 1x1 to 24 channels, bottlenecks `layer{s}.{i}` (grouped 1x1,
/// channel shuffle, depthwise 3x3, grouped 1x1; the stride-2 first block of a stage
/// concatenates a 3x3 average pool of its input), global average pool, `linear`.
pub(crate) fn shufflev1(cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("shufflev1", cfg)?;
    let (groups, d) = (3, ConvInit::Default);
    let mut layers = conv_bn(b, "", 1, [c, 24, 1, 1, 0, 1], d, true);
    let mut input = 24;
    for (s, (planes, n)) in [(240, 4), (480, 8), (960, 4)].into_iter().enumerate() {
        for i in 0..n {
            let (stride, p) = (if i == 0 { 2 } else { 1 }, format!("layer{}.{i}.", s + 1));
            let out = if i == 0 { planes - input } else { planes };
            let (mid, g) = (out / 4, if input == 24 { 1 } else { groups });
            let mut body = conv_bn(b, &p, 1, [input, mid, 1, 1, 0, g], d, true);
            if g > 1 {
                body.push(Layer::ChannelShuffle { groups: g });
            }
            body.extend(conv_bn(b, &p, 2, [mid, mid, 3, stride, 1, mid], d, true));
            body.extend(conv_bn(b, &p, 3, [mid, out, 1, 1, 0, groups], d, false));
            layers.push(if stride == 2 {
                block(body, vec![Layer::AvgPool2d { kernel: 3, stride: 2, padding: 1 }], Join::Concat, vec![Layer::Relu])
            } else {
                block(body, vec![], Join::Add, vec![Layer::Relu])
            });
            input = planes;
        }
    }
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear("linear", input, cfg.classes));
    Ok(layers)
}

/// ShuffleNet V2 of RepDistiller (`ShuffleV2`, net size 1: stages of 116, 232, 464 channels
/// with 3, 7, 3 basic blocks after a down-sampling block): `conv1` 1x1 to 24 channels,
/// `layer{s}.0` the down-sampling block (two stride-2 branches, concatenated), `layer{s}.{i}`
/// basic blocks (half the channels through 1x1 - depthwise 3x3 - 1x1, concatenated back),
/// each followed by a channel shuffle of 2 groups; `conv2` 1x1 to 1024, global average pool,
/// `linear`.
pub(crate) fn shufflev2(cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("shufflev2", cfg)?;
    let d = ConvInit::Default;
    let mut layers = conv_bn(b, "", 1, [c, 24, 1, 1, 0, 1], d, true);
    let mut input = 24;
    let shuffle = || vec![Layer::ChannelShuffle { groups: 2 }];
    for (s, (out, n)) in [(116, 3), (232, 7), (464, 3)].into_iter().enumerate() {
        let (p, mid) = (format!("layer{}.0.", s + 1), out / 2);
        let mut left = conv_bn(b, &p, 1, [input, input, 3, 2, 1, input], d, false);
        left.extend(conv_bn(b, &p, 2, [input, mid, 1, 1, 0, 1], d, true));
        let mut right = conv_bn(b, &p, 3, [input, mid, 1, 1, 0, 1], d, true);
        right.extend(conv_bn(b, &p, 4, [mid, mid, 3, 2, 1, mid], d, false));
        right.extend(conv_bn(b, &p, 5, [mid, mid, 1, 1, 0, 1], d, true));
        layers.push(block(left, right, Join::Concat, shuffle()));
        for i in 1..=n {
            let (p, half) = (format!("layer{}.{i}.", s + 1), out / 2);
            let mut body = conv_bn(b, &p, 1, [half, half, 1, 1, 0, 1], d, true);
            body.extend(conv_bn(b, &p, 2, [half, half, 3, 1, 1, half], d, false));
            body.extend(conv_bn(b, &p, 3, [half, half, 1, 1, 0, 1], d, true));
            layers.push(block(body, vec![], Join::SplitConcat, shuffle()));
        }
        input = out;
    }
    layers.extend(conv_bn(b, "", 2, [input, 1024, 1, 1, 0, 1], d, true));
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear("linear", 1024, cfg.classes));
    Ok(layers)
}

/// Names of a bottleneck or basic ResNet's parts: the benchmark's CIFAR ResNet50 calls the
/// projection `shortcut` and the classifier `linear`; torchvision `downsample` and `fc`.
pub(crate) struct ResNetNames {
    pub projection: &'static str,
    pub classifier: &'static str,
}

/// Stages of `blocks[s]` residual blocks of `64 * 2^s` planes (stride 2 from the second
/// stage), bottlenecks (expansion 4, stride on the 3x3) or basic blocks, named
/// `layer{s}.{i}.conv{1,2,3}` / `bn{1,2,3}`; the stem is the caller's. Returns the layers
/// and the final width.
pub(crate) fn resnet_stages(b: &mut Builder, layers: &mut Vec<Layer>, blocks: [usize; 4], bottleneck: bool, names: &ResNetNames) -> usize {
    let (expansion, k) = (if bottleneck { 4 } else { 1 }, ConvInit::KaimingFanOut);
    let mut input = 64;
    for (s, &n) in blocks.iter().enumerate() {
        let planes = 64 << s;
        for i in 0..n {
            let (stride, p) = (if i == 0 && s > 0 { 2 } else { 1 }, format!("layer{}.{i}.", s + 1));
            let out = planes * expansion;
            let body = if bottleneck {
                let mut l = conv_bn(b, &p, 1, [input, planes, 1, 1, 0, 1], k, true);
                l.extend(conv_bn(b, &p, 2, [planes, planes, 3, stride, 1, 1], k, true));
                l.extend(conv_bn(b, &p, 3, [planes, out, 1, 1, 0, 1], k, false));
                l
            } else {
                let mut l = conv_bn(b, &p, 1, [input, planes, 3, stride, 1, 1], k, true);
                l.extend(conv_bn(b, &p, 2, [planes, planes, 3, 1, 1, 1], k, false));
                l
            };
            let shortcut = if stride != 1 || input != out {
                let q = format!("{p}{}", names.projection);
                vec![b.conv(&format!("{q}.0"), input, out, 1, stride, 0), b.batch_norm(&format!("{q}.1"), out)]
            } else {
                vec![]
            };
            layers.push(block(body, shortcut, Join::Add, vec![Layer::Relu]));
            input = out;
        }
    }
    input
}

/// The benchmark's CIFAR ResNet50 (RepDistiller's `resnetv2.ResNet50`): `conv1` 3x3 to 64
/// channels, bottleneck stages of 3, 4, 6, 3 blocks, global average pool, `linear`.
pub(crate) fn resnet50_cifar(cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("resnet50", cfg)?;
    let names = ResNetNames { projection: "shortcut", classifier: "linear" };
    let mut layers = vec![b.conv("conv1", c, 64, 3, 1, 1), b.batch_norm("bn1", 64), Layer::Relu];
    let width = resnet_stages(b, &mut layers, [3, 4, 6, 3], true, &names);
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear(names.classifier, width, cfg.classes));
    Ok(layers)
}
