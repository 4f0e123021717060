//! The optimizers' element-wise updates, in place on a parameter's own buffer and on all
//! cores for large parameters. Each follows dfdx 0.13's CPU kernel operation for operation
//! (and so PyTorch's `SGD` with dampening 0 and `Adam`/`AdamW`); tests hold them to dfdx's
//! results bit for bit.

use rayon::prelude::*;

/// How weight decay enters an update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decay {
    /// Added to the gradient (PyTorch's `weight_decay` in SGD and Adam).
    L2(f32),
    /// Applied to the weights directly (AdamW).
    Decoupled(f32),
}

/// Parameters shorter than this update on the calling thread.
const PARALLEL_FROM: usize = 1 << 16;
const CHUNK: usize = 1 << 14;

/// `f(p, g, first, second)` over aligned chunks of four equally long buffers.
fn chunked(p: &mut [f32], g: &[f32], first: &mut [f32], second: &mut [f32], f: impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync) {
    if p.len() < PARALLEL_FROM {
        return f(p, g, first, second);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(first.par_chunks_mut(CHUNK))
        .zip(second.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), a), b)| f(p, g, a, b));
}

/// SGD: `d = g + wd p`; with momentum `u`: `v = d + u v`, step `v` (classic) or `d + u v`
/// (Nesterov); `p -= lr * step`. The first step's velocity is `d` (zero-initialized `v`).
/// (`unused` is the slot's second buffer, which SGD leaves alone.)
#[allow(clippy::too_many_arguments)]
pub fn sgd(lr: f32, momentum: f32, nesterov: bool, weight_decay: f32, p: &mut [f32], g: &[f32], velocity: &mut [f32], unused: &mut [f32]) {
    chunked(p, g, velocity, unused, |p, g, v, _| {
        for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            let mut d = *g;
            if weight_decay > 0.0 {
                d += weight_decay * *p;
            }
            let step = if momentum > 0.0 {
                *v = d + momentum * *v;
                if nesterov {
                    (d + momentum * *v) * lr
                } else {
                    *v * lr
                }
            } else {
                d * lr
            };
            *p -= step;
        }
    });
}

/// Adam / AdamW at 1-based step `t`: moments `m`, `v` with bias correction, `eps` outside the
/// square root.
#[allow(clippy::too_many_arguments)]
pub fn adam(t: i32, lr: f32, betas: [f32; 2], eps: f32, decay: Option<Decay>, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let [b1, b2] = betas;
    let (c1, c2) = ((1.0 - b1.powi(t)).recip(), (1.0 - b2.powi(t)).recip());
    let l2 = match decay {
        Some(Decay::L2(w)) => w,
        _ => 0.0,
    };
    // dfdx multiplies the decoupled decay by the learning rate in f64
    let decoupled = match decay {
        Some(Decay::Decoupled(w)) => (w as f64 * lr as f64) as f32,
        _ => 0.0,
    };
    chunked(p, g, m, v, |p, g, m, v| {
        for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let mut d = *g;
            if l2 > 0.0 {
                d += l2 * *p;
            }
            *m = *m * b1 + d * (1.0 - b1);
            *v = *v * b2 + d.powi(2) * (1.0 - b2);
            let mut step = lr * (*m * c1) / ((*v * c2).sqrt() + eps);
            if decoupled > 0.0 {
                step += decoupled * *p;
            }
            *p -= step;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::reference;
    use crate::rng::Rng;

    // torch: p=[1,2], g=[0.5,-1], SGD(lr=0.1, momentum=0.9, weight_decay=0.01), two steps with the same g:
    // step 1: d = g + 0.01 p = [0.51, -0.98]; v = d; p = [0.949, 2.098]
    // step 2: d = [0.50949, -0.97902]; v = 0.9 v + d = [0.96849, -1.86102]; p = [0.852151, 2.284102]
    #[test]
    fn sgd_momentum_weight_decay_matches_torch() {
        let (mut p, mut v, mut unused) = (vec![1.0, 2.0], vec![0.0; 2], vec![0.0; 2]);
        for _ in 0..2 {
            sgd(0.1, 0.9, false, 0.01, &mut p, &[0.5, -1.0], &mut v, &mut unused);
        }
        assert!((p[0] - 0.852151).abs() < 1e-6, "{p:?}");
        assert!((p[1] - 2.284102).abs() < 1e-6, "{p:?}");
    }

    // torch: p=[1], g=[0.5], Adam(lr=0.1): first step moves by lr * sign(g) = 0.9.
    #[test]
    fn adam_first_step_moves_by_lr() {
        let (mut p, mut m, mut v) = (vec![1.0], vec![0.0], vec![0.0]);
        adam(1, 0.1, [0.9, 0.999], 1e-8, None, &mut p, &[0.5], &mut m, &mut v);
        assert!((p[0] - 0.9).abs() < 1e-6, "{p:?}");
    }

    /// Five steps of every variant on a parameter long enough to update in parallel chunks
    /// (plus a short one on one thread) give exactly dfdx's results.
    #[test]
    fn every_variant_equals_dfdx_bit_for_bit() {
        let dev = reference::Device::default();
        let mut rng = Rng::new(11);
        for len in [7, PARALLEL_FROM + 3 * CHUNK + 5] {
            let start: Vec<f32> = (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let grads: Vec<Vec<f32>> = (0..5).map(|_| (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).collect();
            for (momentum, nesterov, wd) in [(0.0, false, 0.0), (0.9, false, 5e-4), (0.9, true, 1e-2)] {
                let (mut ours, mut v, mut unused) = (start.clone(), vec![0.0; len], vec![0.0; len]);
                let (mut theirs, mut slot) = (start.clone(), dev.slot(len).unwrap());
                for g in &grads {
                    sgd(0.05, momentum, nesterov, wd, &mut ours, g, &mut v, &mut unused);
                    dev.sgd(0.05, momentum, nesterov, wd, &mut theirs, g.clone(), &mut slot).unwrap();
                }
                assert!(ours == theirs, "sgd momentum {momentum} nesterov {nesterov} wd {wd} len {len}");
            }
            for decay in [None, Some(Decay::L2(1e-2)), Some(Decay::Decoupled(5e-2))] {
                let (mut ours, mut m, mut v) = (start.clone(), vec![0.0; len], vec![0.0; len]);
                let (mut theirs, mut slot) = (start.clone(), dev.slot(len).unwrap());
                for (t, g) in grads.iter().enumerate() {
                    adam(t as i32 + 1, 1e-3, [0.9, 0.999], 1e-8, decay, &mut ours, g, &mut m, &mut v);
                    dev.adam(t as i32 + 1, 1e-3, [0.9, 0.999], 1e-8, decay, &mut theirs, g.clone(), &mut slot).unwrap();
                }
                assert!(ours == theirs, "adam {decay:?} len {len}");
            }
        }
    }
}
