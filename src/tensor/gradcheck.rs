//! Finite-difference gradient checking for tests.

use super::Tensor;
use crate::error::Result;

/// Checks the analytic gradient of `sum(f(inputs) * r)` (r a fixed random projection)
/// against central differences computed in f64-accumulated f32.
pub(crate) fn check(inputs: &[(Vec<f32>, Vec<usize>)], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    check_tol(inputs, 1e-2, f)
}

pub(crate) fn check_tol(inputs: &[(Vec<f32>, Vec<usize>)], tol: f32, f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let vars: Vec<Tensor> = inputs.iter().map(|(d, s)| Tensor::variable(d.clone(), s).unwrap()).collect();
    let out = f(&vars).unwrap();
    let mut rng = crate::rng::Rng::new(11);
    let proj: Vec<f32> = (0..out.len()).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let objective = |t: &Tensor| -> f64 { t.data().iter().zip(&proj).map(|(a, b)| (*a as f64) * (*b as f64)).sum() };
    let p = Tensor::from_vec(proj.clone(), out.shape()).unwrap();
    let loss = mul_sum(&out, &p);
    let grads = loss.backward().unwrap();
    let eps = 1e-2f32;
    for (i, (data, shape)) in inputs.iter().enumerate() {
        let analytic = grads.get(vars[i].leaf_key().unwrap()).map(|g| g.to_vec()).unwrap_or(vec![0.0; data.len()]);
        for j in 0..data.len() {
            let eval = |delta: f32| {
                let consts: Vec<Tensor> = inputs
                    .iter()
                    .enumerate()
                    .map(|(k, (d, s))| {
                        let mut d = d.clone();
                        if k == i {
                            d[j] += delta;
                        }
                        Tensor::from_vec(d, s).unwrap()
                    })
                    .collect();
                objective(&f(&consts).unwrap())
            };
            let numeric = ((eval(eps) - eval(-eps)) / (2.0 * eps as f64)) as f32;
            let a = analytic[j];
            let err = (a - numeric).abs() / (1.0f32).max(a.abs()).max(numeric.abs());
            assert!(err < tol, "input {i} {shape:?} element {j}: analytic {a} vs numeric {numeric}");
        }
    }
}

fn mul_sum(out: &Tensor, proj: &Tensor) -> Tensor {
    let value: f32 = out.data().iter().zip(proj.data()).map(|(a, b)| a * b).sum();
    let p = proj.data_rc().clone();
    Tensor::constant(vec![1], std::rc::Rc::new(vec![value])).record(&[out], move |g, _| vec![Some(p.iter().map(|p| p * g[0]).collect())])
}

/// Checks that `fused` gives bit-for-bit the values and input gradients (under a random
/// upstream gradient) of `composed`, the ops it fuses.
pub(crate) fn check_fused(
    inputs: &[(Vec<f32>, Vec<usize>)],
    fused: impl Fn(&[Tensor]) -> Result<Tensor>,
    composed: impl Fn(&[Tensor]) -> Result<Tensor>,
) {
    let run = |f: &dyn Fn(&[Tensor]) -> Result<Tensor>| {
        let vars: Vec<Tensor> = inputs.iter().map(|(d, s)| Tensor::variable(d.clone(), s).unwrap()).collect();
        let out = f(&vars).unwrap();
        let mut rng = crate::rng::Rng::new(12);
        let proj = Tensor::from_vec((0..out.len()).map(|_| rng.uniform_in(-1.0, 1.0)).collect(), out.shape()).unwrap();
        let grads = mul_sum(&out, &proj).backward().unwrap();
        let grads: Vec<Vec<f32>> = vars.iter().map(|v| grads.get(v.leaf_key().unwrap()).unwrap().to_vec()).collect();
        (out.data().to_vec(), grads)
    };
    let (want, got) = (run(&composed), run(&fused));
    assert_eq!(got.0, want.0, "values");
    for (i, (g, w)) in got.1.iter().zip(&want.1).enumerate() {
        assert_eq!(g, w, "gradient of input {i}");
    }
}
