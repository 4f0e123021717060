//! Models: a zoo architecture's layers plus its named parameters and buffers.

mod benchmark;
mod builder;
mod imagenet;
pub mod layer;
pub mod param;
pub mod zoo;

pub use param::Param;
pub use zoo::{arch_options, canonical, ModelConfig, ALIASES, ZOO};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;
use layer::{forward_all, Ctx, Layer};

/// Whether a forward pass trains (batch statistics, dropout, gradients) or evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// A model built from the zoo.
pub struct Model {
    arch: String,
    config: ModelConfig,
    layers: Vec<Layer>,
    params: Vec<Param>,
}

impl Model {
    /// Builds zoo architecture `arch` (see [`ZOO`]).
    pub fn new(arch: &str, config: ModelConfig) -> Result<Model> {
        let (layers, params) = zoo::build(arch, &config)?;
        Ok(Model { arch: zoo::canonical(arch).to_string(), config, layers, params })
    }

    pub fn arch(&self) -> &str {
        &self.arch
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn classes(&self) -> usize {
        self.config.classes
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Every parameter and buffer, in PyTorch `state_dict` order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The trainable parameters.
    pub fn trainable(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.trainable())
    }

    /// Number of trainable values.
    pub fn params_count(&self) -> usize {
        self.trainable().map(|p| p.len()).sum()
    }

    /// Looks a parameter up by its PyTorch name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name() == name)
    }

    /// Logits `[batch, classes]` for `x [batch, ...input]`. In train mode gradients are
    /// recorded for trainable parameters and batch-norm running statistics are updated.
    pub fn forward(&self, x: &Tensor, mode: Mode, rng: &mut Rng) -> Result<Tensor> {
        self.check_input(x)?;
        let mut ctx = Ctx { train: mode == Mode::Train, track: mode == Mode::Train, rng, macs: 0 };
        forward_all(&self.layers, x, &mut ctx)
    }

    pub(crate) fn check_input(&self, x: &Tensor) -> Result<()> {
        let s = x.shape();
        let matches = s.len() > 1
            && (s[1..] == self.config.input[..]
                || (self.arch == "mlp" && s[1..].iter().product::<usize>() == self.config.input.iter().product::<usize>()));
        if !matches {
            return Err(Error::shape("model forward", format!("{} input [batch, {}]", self.arch, join(&self.config.input)), s));
        }
        Ok(())
    }

    /// Multiply-accumulates of one forward pass for a single sample.
    pub fn macs(&self) -> Result<u64> {
        let mut shape = vec![1];
        shape.extend(&self.config.input);
        let x = Tensor::zeros(&shape);
        let mut rng = Rng::new(0);
        let mut ctx = Ctx { train: false, track: false, rng: &mut rng, macs: 0 };
        forward_all(&self.layers, &x, &mut ctx)?;
        Ok(ctx.macs)
    }
}

fn join(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cifar100(arch: &str) -> Model {
        Model::new(arch, ModelConfig { classes: 100, input: vec![3, 32, 32], ..Default::default() }).unwrap()
    }

    // Trainable parameter counts of the benchmark definitions (RepDistiller), 100 classes, 3x32x32.
    #[test]
    fn parameter_counts_match_the_benchmarks() {
        for (arch, want) in [
            ("resnet20", 278_324),
            ("resnet56", 861_620),
            ("resnet110", 1_736_564),
            ("resnet8x4", 1_233_540),
            ("resnet32x4", 7_433_860),
            ("wrn_16_2", 703_284),
            ("wrn_40_2", 2_255_156),
            ("vgg8", 3_965_028),
            ("vgg11", 9_277_284),
            ("vgg13", 9_462_180),
            ("vgg16", 14_774_436),
            ("vgg19", 20_086_692),
            ("mobile_half", 812_836),
            ("MobileNetV2", 812_836),
            ("shufflev1", 949_258),
            ("shufflev2", 1_355_528),
            ("resnet50", 23_705_252),
        ] {
            assert_eq!(cifar100(arch).params_count(), want, "{arch}");
        }
        let half = ModelConfig { classes: 100, input: vec![3, 32, 32], width: 0.5, ..Default::default() };
        assert_eq!(Model::new("mobilenetv2", half).unwrap().params_count(), 812_836);
        // torchvision's at 1,000 classes (and its resnet50 and the ImageNet MobileNetV1)
        for (arch, want) in [
            ("resnet18_imagenet", 11_689_512),
            ("resnet34_imagenet", 21_797_672),
            ("resnet50_imagenet", 25_557_032),
            ("mobilenetv1", 4_231_976),
        ] {
            let cfg = ModelConfig { classes: 1000, input: vec![3, 224, 224], ..Default::default() };
            assert_eq!(Model::new(arch, cfg).unwrap().params_count(), want, "{arch}");
        }
    }

    #[test]
    fn parameter_names_follow_pytorch() {
        let m = cifar100("resnet20");
        for name in [
            "conv1.weight",
            "bn1.running_mean",
            "layer1.0.bn1.running_mean",
            "layer2.0.downsample.0.weight",
            "layer3.2.conv2.weight",
            "fc.weight",
            "fc.bias",
        ] {
            assert!(m.param(name).is_some(), "{name}");
        }
        let w = cifar100("wrn_16_2");
        for name in ["block1.layer.0.convShortcut.weight", "block3.layer.1.bn2.running_var", "bn1.weight", "fc.bias"] {
            assert!(w.param(name).is_some(), "{name}");
        }
    }

    #[test]
    fn every_zoo_model_runs_forward_on_its_input() {
        let mut rng = Rng::new(0);
        for (arch, _) in ZOO {
            let cfg = ModelConfig { classes: 10, input: vec![1, 28, 28], hidden: vec![16], channels: vec![8, 8], ..Default::default() };
            let m = Model::new(arch, cfg).unwrap();
            if arch.contains("110") || arch.contains("x4") || arch.contains("40") {
                continue; // covered by the counts above; too slow for a forward test at opt-level 1
            }
            let y = m.forward(&Tensor::zeros(&[2, 1, 28, 28]), Mode::Eval, &mut rng).unwrap();
            assert_eq!(y.shape(), &[2, 10], "{arch}");
        }
    }

    /// Images too small for an architecture's downsampling give an output or an error, never
    /// a panic, in both modes. (The deeper VGGs and ResNet-34/50 repeat the layers of vgg8 and
    /// resnet18_imagenet with more weights to initialize: left out for time.)
    #[test]
    fn tiny_images_are_an_output_or_an_error() {
        let mut rng = Rng::new(0);
        let repeats = ["vgg11", "vgg13", "vgg16", "vgg19", "resnet34_imagenet", "resnet50_imagenet"];
        for (arch, _) in ZOO.iter().filter(|(a, _)| !repeats.contains(a)) {
            for hw in [1, 3] {
                let cfg = ModelConfig { classes: 3, input: vec![3, hw, hw], hidden: vec![4], channels: vec![4], ..Default::default() };
                let Ok(m) = Model::new(arch, cfg) else { continue };
                for mode in [Mode::Eval, Mode::Train] {
                    let x = Tensor::from_vec((0..2 * 3 * hw * hw).map(|i| (i % 5) as f32 - 2.0).collect(), &[2, 3, hw, hw]).unwrap();
                    if let Ok(y) = m.forward(&x, mode, &mut rng) {
                        assert_eq!(y.shape(), &[2, 3], "{arch} at {hw}x{hw}");
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_input_width_is_an_error_naming_both_shapes() {
        let m = Model::new("mlp", ModelConfig { classes: 10, input: vec![64], hidden: vec![32], ..Default::default() }).unwrap();
        let e = m.forward(&Tensor::zeros(&[4, 63]), Mode::Eval, &mut Rng::new(0)).unwrap_err().to_string();
        assert!(e.contains("[batch, 64]") && e.contains("[4, 63]"), "{e}");
        let e = Model::new("resnet9", ModelConfig::default()).err().unwrap().to_string();
        assert!(e.contains("unknown model 'resnet9'") && e.contains("did you mean resnet8"), "{e}");
        // the ImageNet model a torchvision or mdistiller name means
        for name in ["resnet18", "ResNet34", "MobileNetV1"] {
            let e = Model::new(name, ModelConfig::default()).err().unwrap().to_string();
            let want = if name == "MobileNetV1" { "did you mean mobilenetv1?" } else { "_imagenet?" };
            assert!(e.contains(want) && e.contains("vgg8_bn"), "{name}: {e}");
        }
        // RepDistiller's function names are aliases
        for alias in ["vgg8_bn", "vgg13_bn", "ShuffleV2", "MobileNetV2", "ResNet50"] {
            let m = Model::new(alias, ModelConfig { classes: 10, ..Default::default() }).unwrap();
            assert_eq!(m.arch(), canonical(alias), "{alias}");
        }
    }

    #[test]
    fn train_forward_updates_running_statistics_and_eval_does_not() {
        let m = Model::new("cnn", ModelConfig { classes: 3, input: vec![1, 8, 8], channels: vec![4], ..Default::default() }).unwrap();
        let mut rng = Rng::new(1);
        let x = Tensor::from_vec((0..2 * 64).map(|i| (i % 7) as f32).collect(), &[2, 1, 8, 8]).unwrap();
        let rm = m.param("features.1.running_mean").unwrap();
        m.forward(&x, Mode::Eval, &mut rng).unwrap();
        assert!(rm.values().iter().all(|v| *v == 0.0));
        m.forward(&x, Mode::Train, &mut rng).unwrap();
        assert!(rm.values().iter().any(|v| *v != 0.0));
        assert_eq!(m.param("features.1.num_batches_tracked").unwrap().values()[0], 1.0);
    }
}
