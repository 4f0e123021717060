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
