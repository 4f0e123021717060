//! ImageNet architectures of the distillation benchmarks: torchvision's ResNet-18, -34 and
//! -50 (its parameter names, so torchvision's published weights load unchanged) and the
//! MobileNetV1 of mdistiller's ImageNet zoo (`model.{i}` blocks, `fc`).

use super::benchmark::{resnet_stages, ResNetNames};
use super::builder::{image_input, Builder, ConvInit, ModelConfig};
use super::layer::Layer;
use crate::error::Result;

/// torchvision's ResNet: `conv1` 7x7 stride 2 - `bn1` - ReLU - 3x3 stride-2 max pool with
/// padding 1, four stages (`downsample` projections; bottlenecks stride on the 3x3, as in
/// torchvision's v1.5), global average pool, `fc`. 224x224 inputs give 7x7 final maps.
pub(crate) fn resnet(blocks: [usize; 4], bottleneck: bool, cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("resnet", cfg)?;
    let names = ResNetNames { projection: "downsample", classifier: "fc" };
    let mut layers =
        vec![b.conv("conv1", c, 64, 7, 2, 3), b.batch_norm("bn1", 64), Layer::Relu, Layer::MaxPool2d { kernel: 3, stride: 2, padding: 1 }];
    let width = resnet_stages(b, &mut layers, blocks, bottleneck, &names);
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear(names.classifier, width, cfg.classes));
    Ok(layers)
}

/// MobileNetV1 as mdistiller's ImageNet zoo defines it: `model.0` a 3x3 stride-2 conv to 32
/// channels, `model.1` ... `model.13` depthwise-separable blocks (`.0` depthwise 3x3, `.1` BN,
/// `.3` pointwise, `.4` BN, each followed by ReLU) to 1024 channels, the average pool (global
/// here; `AvgPool2d(7)` there, the same on 224x224 inputs), `fc`.
pub(crate) fn mobilenetv1(cfg: &ModelConfig, b: &mut Builder) -> Result<Vec<Layer>> {
    let (c, _, _) = image_input("mobilenetv1", cfg)?;
    let d = ConvInit::Default;
    let mut layers = vec![b.conv_with("model.0.0", [c, 32, 3, 2, 1, 1], d, false), b.batch_norm("model.0.1", 32), Layer::Relu];
    let plan = [
        (32, 64, 1),
        (64, 128, 2),
        (128, 128, 1),
        (128, 256, 2),
        (256, 256, 1),
        (256, 512, 2),
        (512, 512, 1),
        (512, 512, 1),
        (512, 512, 1),
        (512, 512, 1),
        (512, 512, 1),
        (512, 1024, 2),
        (1024, 1024, 1),
    ];
    for (i, (inp, out, stride)) in plan.into_iter().enumerate() {
        let p = format!("model.{}", i + 1);
        layers.extend([
            b.conv_with(&format!("{p}.0"), [inp, inp, 3, stride, 1, inp], d, false),
            b.batch_norm(&format!("{p}.1"), inp),
            Layer::Relu,
            b.conv_with(&format!("{p}.3"), [inp, out, 1, 1, 0, 1], d, false),
            b.batch_norm(&format!("{p}.4"), out),
            Layer::Relu,
        ]);
    }
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear("fc", 1024, cfg.classes));
    Ok(layers)
}
