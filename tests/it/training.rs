//! End-to-end training through the library API.

use retort::data;
use retort::loss::Loss;
use retort::nn::{Mode, Model, ModelConfig};
use retort::tensor::Tensor;
use retort::train::{self, NoHooks, TrainConfig};
use retort::Rng;

#[test]
fn quickstart_students_reach_90_percent() {
    let rows = retort::quickstart::run(7, &mut |_, _| {}).unwrap();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert!(r.test_accuracy >= 0.90, "{} reached only {:.2}%", r.name, 100.0 * r.test_accuracy);
    }
    assert!(rows[0].params > rows[1].params * 10, "the teacher should be much larger than the students");
}

#[test]
fn distillation_leaves_the_teacher_untouched() {
    let mut split = data::load("digits", None, 0.3, 5).unwrap();
    split.normalize();
    let cfg = |seed| ModelConfig { classes: 10, input: vec![1, 8, 8], channels: vec![4], seed, ..Default::default() };
    let teacher = Model::new("cnn", cfg(1)).unwrap();
    let student = Model::new("cnn", cfg(2)).unwrap();
    train::fit(&teacher, &split, &TrainConfig { epochs: 1, ..Default::default() }, &mut NoHooks).unwrap();
    let before: Vec<Vec<f32>> = teacher.params().iter().map(|p| p.values().to_vec()).collect();
    for loss in [Loss::kd(4.0, 0.9), Loss::wsl(4.0, 2.25)] {
        // with augmentation the teacher runs every batch (eval mode), without it once up front
        let augment = Some(data::Augment { crop_padding: 1, horizontal_flip: false });
        for augment in [None, augment] {
            let h =
                train::distill(&teacher, &student, &split, &TrainConfig { epochs: 1, loss, augment, ..Default::default() }, &mut NoHooks)
                    .unwrap();
            assert_eq!(h.len(), 1);
            assert!(h[0].mean_weight > 0.0 && h[0].mean_weight <= 1.0);
        }
    }
    let after: Vec<Vec<f32>> = teacher.params().iter().map(|p| p.values().to_vec()).collect();
    assert_eq!(before, after, "the teacher's weights and running statistics must not change");
}

#[test]
fn shape_mismatches_are_errors_not_panics() {
    let m = Model::new("resnet8", ModelConfig { classes: 10, input: vec![3, 32, 32], ..Default::default() }).unwrap();
    let e = m.forward(&Tensor::zeros(&[2, 1, 32, 32]), Mode::Eval, &mut Rng::new(0)).unwrap_err().to_string();
    assert!(e.contains("[batch, 3, 32, 32]") && e.contains("[2, 1, 32, 32]"), "{e}");
    let x = Tensor::zeros(&[4, 10]);
    let w = Tensor::zeros(&[5, 9]);
    let e = x.linear(&w, None).unwrap_err().to_string();
    assert!(e.starts_with("linear:") && e.contains("[batch, 9]") && e.contains("[4, 10]"), "{e}");
    let e = x.matmul(&Tensor::zeros(&[3, 2])).unwrap_err().to_string();
    assert!(e.starts_with("matmul:") && e.contains("[3, 2]") && e.contains("[4, 10]"), "{e}");
    // a model for 10 classes cannot train on a 100-class data set
    let mut split = data::load("digits", None, 0.2, 0).unwrap();
    split.train.classes = 100;
    split.test.classes = 100;
    let mlp = Model::new("mlp", ModelConfig { classes: 10, input: vec![64], hidden: vec![8], ..Default::default() }).unwrap();
    assert!(train::fit(&mlp, &split, &TrainConfig::default(), &mut NoHooks).unwrap_err().to_string().contains("100 classes"));
}

#[test]
fn a_diverging_run_stops_with_the_epoch_and_batch() {
    let mut split = data::load("digits", None, 0.2, 0).unwrap();
    split.normalize();
    let mlp = Model::new("mlp", ModelConfig { classes: 10, input: vec![64], hidden: vec![64], ..Default::default() }).unwrap();
    let cfg = TrainConfig { optimizer: retort::optim::OptimizerConfig::sgd(1e30), epochs: 3, ..Default::default() };
    let e = train::fit(&mlp, &split, &cfg, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("non-finite loss") && e.contains("epoch 1") && e.contains("batch"), "{e}");
}

#[test]
fn the_script_vs_rust_benchmark_runs_and_times_its_hooks() {
    let t = retort::bench::script_vs_rust(1).unwrap();
    assert_eq!((t.rust.len(), t.script.len()), (1, 1));
    assert!(t.rust[0] > 0.0 && t.script[0] > 0.0);
    // the script's filter ran once per batch, so some time was spent in it
    assert!(t.script_hooks[0] > 0.0 && t.script_hooks[0] < t.script[0], "{t:?}");
}
