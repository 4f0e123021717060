//! Matrix multiplication, through the `gemm` crate or retort's panel GEMM (the path
//! [`super::gemm_path`] chooses), and the differentiable `matmul`/`linear` ops.

use super::gemm_path::GemmPath;
use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use gemm::Parallelism;
use std::rc::Rc;

/// A row-major matrix view: `rows x cols`, optionally read transposed.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl<'a> Mat<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, transposed: false }
    }
    /// The same storage read as its transpose.
    pub fn t(self) -> Self {
        Mat { transposed: !self.transposed, ..self }
    }
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
    /// (row stride, column stride) of the logical matrix.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.cols as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

pub use super::cores::threads;

/// `c[m, n] = a[m, k] . b[k, n] (+ c if accumulate)`, row-major `c`, on all cores when the
/// product is large enough.
pub fn gemm_into(a: Mat, b: Mat, c: &mut [f32], accumulate: bool) {
    gemm_on(a, b, c, accumulate, true)
}

/// [`gemm_into`], on all cores only if `parallel` (callers that already split work across
/// cores pass false), on the path [`super::gemm_path::choice`] chose.
pub(crate) fn gemm_on(a: Mat, b: Mat, c: &mut [f32], accumulate: bool, parallel: bool) {
    gemm_with(gemm_choice().path, a, b, c, accumulate, parallel)
}

/// The path matrix products take in this process (see [`super::gemm_path`]), decided at the
/// first product: forced, by the CPU, or by [`probe`].
pub fn gemm_choice() -> &'static super::gemm_path::Choice {
    super::gemm_path::choice(probe)
}

/// Each path's best time (ms) over three rounds, the paths alternating within a round: an
/// MLP layer's forward (`x . w^T`, 128 x 784 -> 512), its weight gradient (`g^T . x`,
/// 512 x 128 -> 784) and a 256^3 product, on every core.
pub fn probe() -> (f64, f64) {
    let fill = |n: usize, seed: u32| {
        (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0 - 0.5).collect::<Vec<f32>>()
    };
    let (x, w, g, s) = (fill(128 * 784, 1), fill(512 * 784, 2), fill(128 * 512, 3), fill(256 * 256, 4));
    let mut out = vec![0.0f32; 512 * 784];
    let mut run = |path: GemmPath| {
        let start = std::time::Instant::now();
        gemm_with(path, Mat::new(&x, 128, 784), Mat::new(&w, 512, 784).t(), &mut out[..128 * 512], false, true);
        gemm_with(path, Mat::new(&g, 128, 512).t(), Mat::new(&x, 128, 784), &mut out[..512 * 784], false, true);
        gemm_with(path, Mat::new(&s, 256, 256), Mat::new(&s, 256, 256), &mut out[..256 * 256], false, true);
        start.elapsed().as_secs_f64() * 1e3
    };
    // one warm-up round: packing buffers, the thread pool
    run(GemmPath::Crate);
    run(GemmPath::Panel);
    let (mut best_crate, mut best_panel) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        best_crate = best_crate.min(run(GemmPath::Crate));
        best_panel = best_panel.min(run(GemmPath::Panel));
    }
    (best_crate, best_panel)
}

/// [`gemm_on`] on a given path (the probe and the tests force each).
pub fn gemm_with(path: GemmPath, a: Mat, b: Mat, c: &mut [f32], accumulate: bool, parallel: bool) {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    assert_eq!(k, k2, "gemm_into: inner dims (internal caller bug)");
    assert_eq!(c.len(), m * n, "gemm_into: output size (internal caller bug)");
    assert!(a.data.len() >= a.rows * a.cols && b.data.len() >= b.rows * b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    match path {
        GemmPath::Crate => crate_gemm(a, b, c, accumulate, parallel),
        GemmPath::Panel => panel_gemm(a, b, c, accumulate, parallel),
    }
}

/// The `gemm` crate: output blocks split across the cores (each sum stays on one thread).
fn crate_gemm(a: Mat, b: Mat, c: &mut [f32], accumulate: bool, parallel: bool) {
    let ((m, k), n) = (a.shape(), b.shape().1);
    let parallelism = if parallel && m * n * k >= 1 << 18 && threads() > 1 { Parallelism::Rayon(threads()) } else { Parallelism::None };
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    // SAFETY: gemm_with's asserts guarantee every index the strides reach is inside the
    // slices, and `c` is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// retort's panel GEMM: `a` packed into row panels, `b` read as row-major `[k, n]` (a
/// transposed `b` is transposed into a buffer first), row panels split across the cores.
fn panel_gemm(a: Mat, b: Mat, c: &mut [f32], accumulate: bool, parallel: bool) {
    use super::panel;
    thread_local! {
        static BUFFERS: std::cell::RefCell<(panel::Packed, Vec<f32>)> = Default::default();
    }
    let ((m, k), n) = (a.shape(), b.shape().1);
    let (a_rs, a_cs) = a.strides();
    // one row: its stride is free (a transposed column vector has both strides 1)
    let a_rs = if m == 1 { a_rs.max(k as isize * a_cs) } else { a_rs };
    let mut run = |packed: &mut panel::Packed, rows: &mut Vec<f32>| {
        packed.pack(a.data, m, k, a_rs as usize, a_cs as usize);
        let b = if b.transposed {
            panel::transpose(&b.data[..b.rows * b.cols], b.rows, b.cols, rows);
            &rows[..]
        } else {
            &b.data[..k * n]
        };
        panel::gemm(packed, b, n, n, c, n, accumulate, parallel);
    };
    // a thread waiting inside one product's parallel loop may be handed another product
    // (rayon's work stealing): that one gets buffers of its own
    BUFFERS.with(|buffers| match buffers.try_borrow_mut() {
        Ok(mut held) => {
            let (packed, rows) = &mut *held;
            run(packed, rows)
        }
        Err(_) => run(&mut panel::Packed::default(), &mut Vec::new()),
    });
}

/// Runs `a` if `want_a` and `b` if `want_b`: both at once on two threads (each told not to
/// split further) when both are wanted and there is more than one core, else alone with
/// every core.
fn both_or_either<A: Send, B: Send>(
    want_a: bool,
    want_b: bool,
    a: impl FnOnce(bool) -> A + Send,
    b: impl FnOnce(bool) -> B + Send,
) -> (Option<A>, Option<B>) {
    if want_a && want_b && threads() > 1 {
        let (a, b) = rayon::join(|| a(false), || b(false));
        return (Some(a), Some(b));
    }
    (want_a.then(|| a(true)), want_b.then(|| b(true)))
}

/// The products `first.0 . first.1` and `second.0 . second.1` into new buffers, each only
/// if wanted (a backward pass's two gradient GEMMs; see [`both_or_either`]).
fn products<'a>(want: (bool, bool), first: (Mat<'a>, Mat<'a>), second: (Mat<'a>, Mat<'a>)) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let product = |(a, b): (Mat, Mat), parallel: bool| {
        let mut c = vec![0.0; a.shape().0 * b.shape().1];
        gemm_on(a, b, &mut c, false, parallel);
        c
    };
    both_or_either(want.0, want.1, |parallel| product(first, parallel), |parallel| product(second, parallel))
}

impl Tensor {
    /// `[m, k] x [k, n] -> [m, n]`.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        expect_rank("matmul", self, 2)?;
        expect_rank("matmul", rhs, 2)?;
        let (m, k, n) = (self.shape[0], self.shape[1], rhs.shape[1]);
        if rhs.shape[0] != k {
            return Err(Error::shape("matmul", format!("rhs [{k}, _] to match lhs {:?}", self.shape), &rhs.shape));
        }
        super::limits::numel("matmul", &[m, n])?;
        let mut out = vec![0.0; m * n];
        gemm_into(Mat::new(&self.data, m, k), Mat::new(&rhs.data, k, n), &mut out, false);
        let (a, b) = (self.data.clone(), rhs.data.clone());
        Ok(Tensor::constant(vec![m, n], Rc::new(out)).record(&[self, rhs], move |g, needs| {
            let (ga, gb) =
                products((needs[0], needs[1]), (Mat::new(g, m, n), Mat::new(&b, k, n).t()), (Mat::new(&a, m, k).t(), Mat::new(g, m, n)));
            vec![ga, gb]
        }))
    }

    /// A fully-connected layer as PyTorch defines it: `x [b, in] . weight[out, in]^T + bias[out]`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        expect_rank("linear", weight, 2)?;
        let (out_f, in_f) = (weight.shape[0], weight.shape[1]);
        if self.shape.len() != 2 || self.shape[1] != in_f {
            return Err(Error::shape("linear", format!("input [batch, {in_f}]"), &self.shape));
        }
        if let Some(b) = bias {
            if b.shape != [out_f] {
                return Err(Error::shape("linear", format!("bias [{out_f}]"), &b.shape));
            }
        }
        let rows = self.shape[0];
        let mut out = vec![0.0; rows * out_f];
        if let Some(b) = bias {
            out.chunks_mut(out_f).for_each(|r| r.copy_from_slice(&b.data));
        }
        gemm_into(Mat::new(&self.data, rows, in_f), Mat::new(&weight.data, out_f, in_f).t(), &mut out, bias.is_some());
        let (x, w) = (self.data.clone(), weight.data.clone());
        let out = Tensor::constant(vec![rows, out_f], Rc::new(out));
        let backward = move |g: &[f32], needs: &[bool]| {
            // with both gradients wanted, the two GEMMs run side by side, one per core (each
            // alone scales poorly across cores at these sizes)
            let (gx, gw) = products(
                (needs[0], needs[1]),
                (Mat::new(g, rows, out_f), Mat::new(&w, out_f, in_f)),
                (Mat::new(g, rows, out_f).t(), Mat::new(&x, rows, in_f)),
            );
            let gb = needs.get(2).copied().unwrap_or(false).then(|| {
                let mut gb = vec![0.0; out_f];
                g.chunks(out_f).for_each(|r| gb.iter_mut().zip(r).for_each(|(a, b)| *a += b));
                gb
            });
            vec![gx, gw, gb]
        };
        Ok(match bias {
            Some(b) => out.record(&[self, weight, b], backward),
            None => out.record(&[self, weight], backward),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::tensor::gradcheck::check;

    fn rand(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
    }

    #[test]
    fn matmul_values_and_gradients() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let b = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]).unwrap();
        assert_eq!(a.matmul(&b).unwrap().data(), &[4.0, 5.0, 10.0, 11.0]);
        let mut rng = Rng::new(1);
        check(&[(rand(&mut rng, 12), vec![3, 4]), (rand(&mut rng, 20), vec![4, 5])], |v| v[0].matmul(&v[1]));
    }

    #[test]
    fn linear_matches_pytorch_layout_and_gradients() {
        // x [1, 2] . W[3, 2]^T + b
        let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap();
        let w = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]).unwrap();
        let b = Tensor::from_vec(vec![0.5, 0.5, 0.5], &[3]).unwrap();
        assert_eq!(x.linear(&w, Some(&b)).unwrap().data(), &[1.5, 2.5, 3.5]);
        let mut rng = Rng::new(2);
        let inputs = [(rand(&mut rng, 8), vec![2, 4]), (rand(&mut rng, 12), vec![3, 4]), (rand(&mut rng, 3), vec![3])];
        check(&inputs, |v| v[0].linear(&v[1], Some(&v[2])));
        check(&inputs[..2], |v| v[0].linear(&v[1], None));
    }

    /// Both paths, forced: every transposition of `a` and `b`, accumulating or not, edge sizes
    /// (a row, a column, odd sizes past the 16-row panels), on one core and on all, against the
    /// definition in f64; and each path gives the same bits for 1, 2 and 3 threads.
    #[test]
    fn each_gemm_path_matches_the_definition_for_any_thread_count() {
        let mut rng = Rng::new(9);
        for (m, k, n) in [(1, 1, 1), (1, 7, 5), (5, 3, 1), (17, 33, 19), (128, 200, 96), (40, 600, 70)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b, c0) = (rand(&mut rng, m * k), rand(&mut rng, k * n), rand(&mut rng, m * n));
                let am = if ta { Mat::new(&a, k, m).t() } else { Mat::new(&a, m, k) };
                let bm = if tb { Mat::new(&b, n, k).t() } else { Mat::new(&b, k, n) };
                let at = |i: usize, t: usize| if ta { a[t * m + i] } else { a[i * k + t] } as f64;
                let bt = |t: usize, j: usize| if tb { b[j * k + t] } else { b[t * n + j] } as f64;
                for path in [GemmPath::Crate, GemmPath::Panel] {
                    for accumulate in [false, true] {
                        let mut runs = Vec::new();
                        for threads in [1, 2, 3] {
                            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                            let mut c = c0.clone();
                            pool.install(|| gemm_with(path, am, bm, &mut c, accumulate, true));
                            runs.push(c);
                        }
                        let c = &runs[0];
                        for i in 0..m {
                            for j in 0..n {
                                let want =
                                    (0..k).map(|t| at(i, t) * bt(t, j)).sum::<f64>() + if accumulate { c0[i * n + j] as f64 } else { 0.0 };
                                let got = c[i * n + j] as f64;
                                assert!(
                                    (got - want).abs() <= 1e-5 * (k as f64).sqrt() * want.abs().max(1.0),
                                    "{path:?} {m}x{k}x{n} t{ta}{tb} acc {accumulate}: c[{i},{j}] {got} vs {want}"
                                );
                            }
                        }
                        let bits = |c: &Vec<f32>| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&runs[1]), bits(&runs[0]), "{path:?} {m}x{k}x{n}: 2 threads differ from 1");
                        assert_eq!(bits(&runs[2]), bits(&runs[0]), "{path:?} {m}x{k}x{n}: 3 threads differ from 1");
                    }
                }
            }
        }
    }

    #[test]
    fn large_gemm_matches_a_naive_product() {
        // big enough to take the multi-threaded path
        let (m, k, n) = (70, 90, 80);
        let mut rng = Rng::new(3);
        let (a, b) = (rand(&mut rng, m * k), rand(&mut rng, k * n));
        let mut c = vec![0.0; m * n];
        gemm_into(Mat::new(&a, m, k), Mat::new(&b, k, n), &mut c, false);
        for i in (0..m).step_by(7) {
            for j in (0..n).step_by(5) {
                let want: f32 = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-4, "{i},{j}");
            }
        }
    }

    #[test]
    fn reshape_and_flatten_route_gradients() {
        let mut rng = Rng::new(4);
        check(&[(rand(&mut rng, 24), vec![2, 3, 2, 2])], |v| v[0].flatten()?.reshape(&[4, 6]));
        assert!(Tensor::zeros(&[2, 3]).reshape(&[4, 2]).is_err());
    }
}
