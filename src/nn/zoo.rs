//! The model zoo, built from runtime arguments. Parameter names follow the PyTorch modules of
//! the distillation benchmarks (RepDistiller's `resnet.py` and `wrn.py` here; its other models
//! in [`super::benchmark`], torchvision's and mdistiller's ImageNet models in
//! [`super::imagenet`]), so state dicts map 1:1.

pub use super::builder::ModelConfig;
use super::builder::{image_input, Builder};
use super::layer::{Join, Layer, Residual};
use super::param::Param;
use super::{benchmark, imagenet};
use crate::error::{Error, Result};

/// Zoo entries: name and a one-line description.
pub const ZOO: &[(&str, &str)] = &[
    ("mlp", "multi-layer perceptron: Linear-ReLU per hidden width, then Linear"),
    ("cnn", "conv3x3-BN-ReLU-maxpool2 per channel width, then Linear"),
    ("resnet8", "CIFAR ResNet, depth 8, widths 16/32/64"),
    ("resnet14", "CIFAR ResNet, depth 14"),
    ("resnet20", "CIFAR ResNet, depth 20"),
    ("resnet32", "CIFAR ResNet, depth 32"),
    ("resnet44", "CIFAR ResNet, depth 44"),
    ("resnet56", "CIFAR ResNet, depth 56"),
    ("resnet110", "CIFAR ResNet, depth 110"),
    ("resnet8x4", "CIFAR ResNet, depth 8, widths 64/128/256"),
    ("resnet32x4", "CIFAR ResNet, depth 32, widths 64/128/256"),
    ("wrn_16_1", "wide ResNet, depth 16, widen factor 1"),
    ("wrn_16_2", "wide ResNet, depth 16, widen factor 2"),
    ("wrn_40_1", "wide ResNet, depth 40, widen factor 1"),
    ("wrn_40_2", "wide ResNet, depth 40, widen factor 2"),
    ("vgg8", "CIFAR VGG with batch norm, 8 layers (RepDistiller's vgg8_bn)"),
    ("vgg11", "CIFAR VGG with batch norm, 11 layers"),
    ("vgg13", "CIFAR VGG with batch norm, 13 layers"),
    ("vgg16", "CIFAR VGG with batch norm, 16 layers"),
    ("vgg19", "CIFAR VGG with batch norm, 19 layers"),
    ("mobilenetv2", "CIFAR MobileNetV2 (expansion 6), option width (default 1.0)"),
    ("mobile_half", "CIFAR MobileNetV2 at width 0.5 (the benchmarks' MobileNetV2)"),
    ("shufflev1", "CIFAR ShuffleNet V1, 3 groups (RepDistiller's ShuffleV1)"),
    ("shufflev2", "CIFAR ShuffleNet V2, net size 1 (RepDistiller's ShuffleV2)"),
    ("resnet50", "CIFAR bottleneck ResNet-50 (RepDistiller's ResNet50)"),
    ("resnet18_imagenet", "ImageNet ResNet-18 (torchvision's resnet18 names)"),
    ("resnet34_imagenet", "ImageNet ResNet-34 (torchvision's resnet34 names)"),
    ("resnet50_imagenet", "ImageNet ResNet-50 (torchvision's resnet50 names)"),
    ("mobilenetv1", "ImageNet MobileNetV1 (mdistiller's ImageNet zoo)"),
];

/// Other names the benchmarks use for zoo models: RepDistiller's `model_dict` keys (a
/// teacher's file name starts with one) and its `vgg*_bn` function names.
pub const ALIASES: &[(&str, &str)] = &[
    ("ResNet50", "resnet50"),
    ("MobileNetV2", "mobile_half"),
    ("ShuffleV1", "shufflev1"),
    ("ShuffleV2", "shufflev2"),
    ("vgg8_bn", "vgg8"),
    ("vgg11_bn", "vgg11"),
    ("vgg13_bn", "vgg13"),
    ("vgg16_bn", "vgg16"),
    ("vgg19_bn", "vgg19"),
];

/// The zoo name `name` stands for (itself unless it is one of [`ALIASES`]).
pub fn canonical(name: &str) -> &str {
    ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, to)| to)
}

/// The [`ModelConfig`] fields an architecture reads besides `input`, `classes` and `seed`:
/// a front end refuses the others rather than ignore them.
pub fn arch_options(name: &str) -> &'static [&'static str] {
    match canonical(name) {
        "mlp" => &["hidden", "dropout"],
        "cnn" => &["channels"],
        n if n.starts_with("wrn_") => &["dropout"],
        "mobilenetv2" => &["width"],
        _ => &[],
    }
}

fn mlp(cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let mut layers = vec![Layer::Flatten];
    let mut width = crate::tensor::limits::numel("model", &cfg.input)?;
    // names follow `nn.Sequential` indices inside a module attribute `layers`
    let mut index = 0;
    for &h in &cfg.hidden {
        if h == 0 {
            return Err(Error::invalid("model", "mlp hidden widths must be positive"));
        }
        layers.push(b.linear(&format!("layers.{index}"), width, h));
        layers.push(Layer::Relu);
        index += 2;
        if cfg.dropout > 0.0 {
            layers.push(Layer::Dropout { p: cfg.dropout });
            index += 1;
        }
        width = h;
    }
    layers.push(b.linear(&format!("layers.{index}"), width, cfg.classes));
    Ok(layers)
}

fn cnn(cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (mut c, mut h, mut w) = image_input("cnn", cfg)?;
    let mut layers = Vec::new();
    for (i, &out) in cfg.channels.iter().enumerate() {
        if out == 0 {
            return Err(Error::invalid("model", "cnn channel widths must be positive"));
        }
        if h < 2 || w < 2 {
            return Err(Error::invalid(
                "model",
                format!("cnn: input {:?} is too small for {} pooling blocks", cfg.input, cfg.channels.len()),
            ));
        }
        layers.push(b.conv(&format!("features.{}", 4 * i), c, out, 3, 1, 1));
        layers.push(b.batch_norm(&format!("features.{}", 4 * i + 1), out));
        layers.push(Layer::Relu);
        layers.push(Layer::MaxPool2d { kernel: 2, stride: 2, padding: 0 });
        (c, h, w) = (out, h / 2, w / 2);
    }
    layers.push(Layer::Flatten);
    layers.push(b.linear("fc", c.saturating_mul(h).saturating_mul(w), cfg.classes));
    Ok(layers)
}

/// RepDistiller's CIFAR ResNet: conv1-bn1-relu, three stages of basic blocks, global pool, fc.
fn resnet(depth: usize, filters: [usize; 4], cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("resnet", cfg)?;
    let blocks = (depth - 2) / 6;
    let mut layers = vec![b.conv("conv1", c, filters[0], 3, 1, 1), b.batch_norm("bn1", filters[0]), Layer::Relu];
    let mut inplanes = filters[0];
    for stage in 0..3 {
        let planes = filters[stage + 1];
        for i in 0..blocks {
            let p = format!("layer{}.{i}", stage + 1);
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            let shortcut = if stride != 1 || inplanes != planes {
                vec![
                    b.conv(&format!("{p}.downsample.0"), inplanes, planes, 1, stride, 0),
                    b.batch_norm(&format!("{p}.downsample.1"), planes),
                ]
            } else {
                vec![]
            };
            let body = vec![
                b.conv(&format!("{p}.conv1"), inplanes, planes, 3, stride, 1),
                b.batch_norm(&format!("{p}.bn1"), planes),
                Layer::Relu,
                b.conv(&format!("{p}.conv2"), planes, planes, 3, 1, 1),
                b.batch_norm(&format!("{p}.bn2"), planes),
            ];
            layers.push(Layer::Residual(Box::new(Residual {
                pre: vec![],
                shared_pre: false,
                body,
                shortcut,
                post: vec![Layer::Relu],
                join: Join::Add,
            })));
            inplanes = planes;
        }
    }
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear("fc", inplanes, cfg.classes));
    Ok(layers)
}

/// RepDistiller's wide ResNet: pre-activation blocks in `block{1,2,3}.layer.{i}`, final bn1-relu, pool, fc.
fn wrn(depth: usize, widen: usize, cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("wrn", cfg)?;
    let widths = [16, 16 * widen, 32 * widen, 64 * widen];
    let n = (depth - 4) / 6;
    let mut layers = vec![b.conv("conv1", c, widths[0], 3, 1, 1)];
    for stage in 0..3 {
        for i in 0..n {
            let (inp, out) = (if i == 0 { widths[stage] } else { widths[stage + 1] }, widths[stage + 1]);
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            let p = format!("block{}.layer.{i}", stage + 1);
            let pre = vec![b.batch_norm(&format!("{p}.bn1"), inp), Layer::Relu];
            let mut body = vec![b.conv(&format!("{p}.conv1"), inp, out, 3, stride, 1), b.batch_norm(&format!("{p}.bn2"), out), Layer::Relu];
            if cfg.dropout > 0.0 {
                body.push(Layer::Dropout { p: cfg.dropout });
            }
            body.push(b.conv(&format!("{p}.conv2"), out, out, 3, 1, 1));
            let equal = inp == out;
            let shortcut = if equal { vec![] } else { vec![b.conv(&format!("{p}.convShortcut"), inp, out, 1, stride, 0)] };
            layers.push(Layer::Residual(Box::new(Residual { pre, shared_pre: !equal, body, shortcut, post: vec![], join: Join::Add })));
        }
    }
    layers.push(b.batch_norm("bn1", widths[3]));
    layers.push(Layer::Relu);
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear("fc", widths[3], cfg.classes));
    // WideResNet zeroes the fc bias at init
    if let Some(Layer::Linear { bias: Some(bias), .. }) = layers.last() {
        bias.set(vec![0.0; bias.len()])?;
    }
    Ok(layers)
}

/// Edit distance between two names (case-insensitive), for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.to_lowercase().chars().collect(), b.to_lowercase().chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The error for a name the zoo does not have: the closest names (or the ImageNet model a
/// torchvision or mdistiller name means), then every name and alias.
fn unknown(name: &str) -> Error {
    let all: Vec<&str> = ZOO.iter().map(|(n, _)| *n).chain(ALIASES.iter().map(|(a, _)| *a)).collect();
    let lower = name.to_lowercase();
    let near = (name.chars().count() / 4).max(1);
    let mut close: Vec<&str> = all.iter().copied().filter(|n| distance(n, name) <= near || n.starts_with(&format!("{lower}_"))).collect();
    if let Some(imagenet) = ["resnet18", "resnet34", "resnet50", "mobilenetv1"].iter().find(|n| **n == lower) {
        close.retain(|n| n.ends_with("_imagenet") || *n == "mobilenetv1" || n.eq_ignore_ascii_case(imagenet));
        close.extend(ZOO.iter().map(|(n, _)| *n).filter(|n| *n == format!("{imagenet}_imagenet")));
    }
    close.sort();
    close.dedup();
    let hint = if close.is_empty() { String::new() } else { format!(" (did you mean {}?)", close.join(" or ")) };
    Error::invalid("model", format!("unknown model '{name}'{hint}; the zoo has: {}", all.join(", ")))
}

/// Builds the layers and parameters of zoo model `name`.
pub(crate) fn build(name: &str, cfg: &ModelConfig) -> Result<(Vec<Layer>, Vec<Param>)> {
    if cfg.classes == 0 {
        return Err(Error::invalid("model", "classes must be at least 1"));
    }
    if cfg.input.is_empty() || cfg.input.contains(&0) {
        return Err(Error::invalid("model", format!("input shape {:?} must be non-empty with positive dims", cfg.input)));
    }
    if !(0.0..1.0).contains(&cfg.dropout) {
        return Err(Error::invalid("model", format!("dropout {} must be in [0, 1)", cfg.dropout)));
    }
    let mut b = Builder::new(cfg.seed);
    let name = canonical(name);
    let layers = match name {
        "mlp" => mlp(cfg, &mut b)?,
        "cnn" => cnn(cfg, &mut b)?,
        "resnet8" | "resnet14" | "resnet20" | "resnet32" | "resnet44" | "resnet56" | "resnet110" => {
            let depth = name["resnet".len()..].parse().expect("zoo names parse");
            resnet(depth, [16, 16, 32, 64], cfg, &mut b)?
        }
        "resnet8x4" => resnet(8, [32, 64, 128, 256], cfg, &mut b)?,
        "resnet32x4" => resnet(32, [32, 64, 128, 256], cfg, &mut b)?,
        "wrn_16_1" => wrn(16, 1, cfg, &mut b)?,
        "wrn_16_2" => wrn(16, 2, cfg, &mut b)?,
        "wrn_40_1" => wrn(40, 1, cfg, &mut b)?,
        "wrn_40_2" => wrn(40, 2, cfg, &mut b)?,
        "vgg8" | "vgg11" | "vgg13" | "vgg16" | "vgg19" => benchmark::vgg(name[3..].parse().expect("zoo names parse"), cfg, &mut b)?,
        "mobilenetv2" => benchmark::mobilenetv2(cfg.width, cfg, &mut b)?,
        "mobile_half" => benchmark::mobilenetv2(0.5, cfg, &mut b)?,
        "shufflev1" => benchmark::shufflev1(cfg, &mut b)?,
        "shufflev2" => benchmark::shufflev2(cfg, &mut b)?,
        "resnet50" => benchmark::resnet50_cifar(cfg, &mut b)?,
        "resnet18_imagenet" => imagenet::resnet([2, 2, 2, 2], false, cfg, &mut b)?,
        "resnet34_imagenet" => imagenet::resnet([3, 4, 6, 3], false, cfg, &mut b)?,
        "resnet50_imagenet" => imagenet::resnet([3, 4, 6, 3], true, cfg, &mut b)?,
        "mobilenetv1" => imagenet::mobilenetv1(cfg, &mut b)?,
        other => return Err(unknown(other)),
    };
    match b.error {
        Some(e) => Err(e),
        None => Ok((layers, b.params)),
    }
}
