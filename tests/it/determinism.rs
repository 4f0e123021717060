//! Fixed-seed training repeats bit for bit, and its first losses are pinned.

use retort::data;
use retort::loss::{self, Loss};
use retort::nn::{Mode, Model, ModelConfig};
use retort::optim::{Optimizer, OptimizerConfig};
use retort::Rng;

/// Twenty SGD steps of a small CNN student distilled with WSL from a fixed MLP teacher on digits.
fn twenty_steps() -> Vec<f32> {
    let mut split = data::load("digits", None, 0.2, 3).unwrap();
    split.normalize();
    let teacher =
        Model::new("mlp", ModelConfig { classes: 10, input: vec![1, 8, 8], hidden: vec![64], seed: 1, ..Default::default() }).unwrap();
    let student =
        Model::new("cnn", ModelConfig { classes: 10, input: vec![1, 8, 8], channels: vec![8, 16], seed: 2, ..Default::default() }).unwrap();
    let mut opt = Optimizer::new(OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 5e-4 }).unwrap();
    let mut rng = Rng::new(4);
    let mut losses = Vec::new();
    let batches = data::Batches::new(&split.train, 32, Some(&mut rng), None).unwrap();
    for batch in batches.take(20) {
        let t = teacher.forward(&batch.x, Mode::Eval, &mut rng).unwrap();
        let s = student.forward(&batch.x, Mode::Train, &mut rng).unwrap();
        let out = loss::compute(&s, Some(&t), &batch.labels, Loss::wsl(4.0, 2.25), None).unwrap();
        losses.push(out.loss.item().unwrap());
        let mut g = out.loss.backward().unwrap();
        drop((s, out));
        opt.step(student.params(), &mut g, 0.05).unwrap();
    }
    losses
}

#[test]
fn twenty_steps_repeat_exactly_and_match_the_pinned_values() {
    let a = twenty_steps();
    let b = twenty_steps();
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert!(a[19] < a[0], "training should lower the loss: {a:?}");
    // Pinned from a run of this test; a change means the numerics changed.
    let pinned: [f32; 4] = PINNED;
    for (i, (got, want)) in a.iter().zip(pinned).enumerate() {
        assert!((got - want).abs() <= 1e-5 * want.abs(), "step {i}: {got} vs pinned {want}; all: {a:?}");
    }
}

const PINNED: [f32; 4] = [58.310905, 56.857224, 52.48212, 50.097294];

/// The same run on 1, 2 and 3 threads gives byte-identical weights: sums over images (weight
/// gradients) are taken in fixed groups and added in order, whatever the thread count
/// (`Geom::by_reduction_groups`); batch norm sums per channel; the GEMMs split outputs, never
/// a sum.
#[test]
fn one_two_and_three_threads_give_identical_checkpoints() {
    let dir = std::env::temp_dir().join(format!("retort-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("threads.rhai");
    std::fs::write(
        &script,
        r#"
let x = randn([48, 3, 32, 32]);
let labels = [];
for i in 0..48 { labels.push(i % 10); }
let c = dataset_from(x, tensor(labels), #{ classes: 10, test_fraction: 0.25 });
// a CNN with batch norm (vgg8) and resnet8, on random CIFAR-shaped data
for name in ["vgg8", "resnet8"] {
    let m = model(name, #{ input: c.input, classes: 10 });
    fit(m, c, #{ epochs: 1, batch: 12, optimizer: sgd(#{ lr: 0.05, momentum: 0.9 }) });
    save_weights(m, name + ".safetensors");
}
"#,
    )
    .unwrap();
    let mut weights = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.join(format!("run{threads}"));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_retort"))
            .args(["run", "--quiet", "--out", out.to_str().unwrap(), script.to_str().unwrap()])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        weights.push(["vgg8", "resnet8"].map(|m| std::fs::read(out.join(format!("{m}.safetensors"))).unwrap()));
    }
    for (threads, w) in [(2, &weights[1]), (3, &weights[2])] {
        for (k, m) in ["vgg8", "resnet8"].iter().enumerate() {
            assert!(w[k] == weights[0][k], "{m}: {threads} threads gave other weights than 1");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
