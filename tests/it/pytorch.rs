//! PyTorch interop: a resnet8 trained in PyTorch (tests/fixtures/make_resnet8_fixture.py)
//! loads into retort's resnet8 and gives the same eval-mode logits to 1e-4.

use retort::nn::{Mode, Model, ModelConfig};
use retort::run::{weights, SafeTensors};
use retort::{Rng, Tensor};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn a_pytorch_resnet8_gives_the_same_logits_in_retort() {
    let model = Model::new("resnet8", ModelConfig { classes: 10, input: vec![3, 32, 32], seed: 99, ..Default::default() }).unwrap();
    weights::load(&model, &fixture("resnet8-weights.safetensors")).unwrap();
    let batch = SafeTensors::read(&fixture("resnet8-batch.safetensors")).unwrap();
    let (x, want) = (&batch.tensors["input"], &batch.tensors["logits"]);
    assert_eq!(want.shape, vec![4, 10]);
    let got = model.forward(&Tensor::from_vec(x.as_f32(), &x.shape).unwrap(), Mode::Eval, &mut Rng::new(0)).unwrap();
    for (i, (g, w)) in got.data().iter().zip(&want.values).enumerate() {
        assert!((*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()), "logit {i}: retort {g} vs PyTorch {w}");
    }
    // and retort writes the same names and shapes back (the state_dict round trip)
    let ours = weights::to_safetensors(&model);
    let theirs = SafeTensors::read(&fixture("resnet8-weights.safetensors")).unwrap();
    assert_eq!(ours.tensors.keys().collect::<Vec<_>>(), theirs.tensors.keys().collect::<Vec<_>>());
    for (k, e) in &theirs.tensors {
        assert_eq!(ours.tensors[k].shape, e.shape, "{k}");
        assert_eq!(ours.tensors[k].values, e.values, "{k}");
        assert_eq!(ours.tensors[k].dtype, e.dtype, "{k}");
    }
}

/// `tests/fixtures/make_zoo_fixture.py`'s value hash: `n` values in [0, 1) from `name`.
fn uniform(name: &str, n: usize) -> Vec<f64> {
    let seed = name.bytes().fold(0x811C_9DC5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
    (0..n as u64)
        .map(|j| {
            let mut h = seed ^ (j.wrapping_mul(0x9E37_79B1) as u32);
            h ^= h >> 16;
            h = h.wrapping_mul(0x85EB_CA6B);
            h ^= h >> 13;
            h = h.wrapping_mul(0xC2B2_AE35);
            h ^= h >> 16;
            h as f64 / 4_294_967_296.0
        })
        .collect()
}

/// The fixture's value of a parameter, buffer or the input, by its name and shape.
fn values(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let u = uniform(name, n);
    let f: Box<dyn Fn(f64) -> f64> = if name.ends_with("running_mean") {
        Box::new(|u| (2.0 * u - 1.0) * 0.2)
    } else if name.ends_with("running_var") {
        Box::new(|u| 0.5 + u)
    } else if shape.len() >= 2 {
        let bound = (3.0 * shape[0] as f64 / n as f64).sqrt();
        Box::new(move |u| (2.0 * u - 1.0) * bound)
    } else if name.ends_with("weight") {
        Box::new(|u| 0.5 + u)
    } else {
        Box::new(|u| (2.0 * u - 1.0) * 0.1)
    };
    u.into_iter().map(|u| f(u) as f32).collect()
}

/// Every new zoo architecture against PyTorch (tests/fixtures/zoo-logits.json, written by
/// make_zoo_fixture.py from the benchmark definitions and torchvision): the same
/// state_dict names and shapes in the same order, and the same logits in eval mode and in
/// train mode (batch statistics), to 1e-4 relative.
#[test]
fn the_benchmark_zoo_gives_pytorchs_logits() {
    let text = std::fs::read_to_string(fixture("zoo-logits.json")).unwrap();
    let cases: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 13);
    for (arch, case) in &cases {
        let dims = |v: &serde_json::Value| -> Vec<usize> { v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect() };
        let input = dims(&case["input"]);
        let cfg = ModelConfig { classes: 10, input: input[1..].to_vec(), ..Default::default() };
        let model = Model::new(arch, cfg).unwrap();
        let names: Vec<(String, Vec<usize>)> =
            case["names"].as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_string(), dims(&p[1]))).collect();
        let ours: Vec<(String, Vec<usize>)> = model.params().iter().map(|p| (p.name().to_string(), p.shape().to_vec())).collect();
        assert_eq!(ours, names, "{arch}: state_dict names and shapes");
        for p in model.params().iter().filter(|p| !p.name().ends_with("num_batches_tracked")) {
            p.set(values(p.name(), p.shape())).unwrap();
        }
        let x: Vec<f32> = uniform("input", input.iter().product()).into_iter().map(|u| (2.0 * u - 1.0) as f32).collect();
        let x = Tensor::from_vec(x, &input).unwrap();
        for (mode, key) in [(Mode::Eval, "eval"), (Mode::Train, "train")] {
            let got = model.forward(&x, mode, &mut Rng::new(0)).unwrap();
            let want: Vec<f64> = case[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(got.len(), want.len(), "{arch} {key}");
            let worst = got.data().iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs() / (1.0 + w.abs())).fold(0.0, f64::max);
            assert!(worst <= 1e-4, "{arch} {key}: worst relative difference {worst:e}");
        }
    }
}
