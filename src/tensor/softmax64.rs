//! Row softmax and log-softmax in f64 for the losses: the scaled logits divided once, `exp`
//! eight f64 lanes at a time (Cody-Waite reduction and a Taylor series, within a few ulp of
//! `f64::exp`), sums in eight fixed lanes so a result does not depend on the thread count.

/// Row-wise `log_softmax(x / temperature)` in f64.
#[cfg(test)]
pub(crate) fn log_softmax_rows(x: &[f32], c: usize, temperature: f64) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    let mut p = vec![0.0; c];
    for (row, log_p) in x.chunks(c).zip(out.chunks_mut(c)) {
        softmax_row(row, temperature, log_p, &mut p);
    }
    out
}

crate::tensor::vectorized! {
/// `log_p = log_softmax(row / temperature)` and `p = softmax(row / temperature)`, in f64,
/// one `exp` per value ([`exp_nonpositive`]), the sum in [`LANES`] lanes.
pub(crate) fn softmax_row(row: &[f32], temperature: f64, log_p: &mut [f64], p: &mut [f64]) {
    // the scaled logits, divided once, in `log_p` until the end
    for (lp, v) in log_p.iter_mut().zip(row) {
        *lp = *v as f64 / temperature;
    }
    let max = log_p.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
    for (p, v) in p.iter_mut().zip(log_p.iter()) {
        *p = v - max;
    }
    exp_nonpositive(p);
    let sum = sum_lanes(p.iter().copied());
    let lse = sum.ln() + max;
    for (lp, p) in log_p.iter_mut().zip(p.iter_mut()) {
        *lp -= lse;
        *p /= sum;
    }
}
}

/// Values per vector of the loss's f64 loops (one AVX-512 register).
pub(crate) const LANES: usize = 8;

/// The sum of `values` in [`LANES`] interleaved lanes, then across them: independent addition
/// chains (one chain waits on the adder's latency per value) in a fixed order, so the sum
/// does not depend on the thread count. Inline, so it runs at the caller's vector width.
#[inline(always)]
pub(crate) fn sum_lanes(values: impl Iterator<Item = f64>) -> f64 {
    let mut lanes = [0.0; LANES];
    for (i, v) in values.enumerate() {
        lanes[i % LANES] += v;
    }
    lanes.iter().sum()
}

/// `1 / k!` for `k` in `0..14`: the Taylor series of `exp` on `|r| <= ln(2) / 2` to 14 terms
/// (the first left out, `0.35^14 / 14!`, is ~4e-18 of the sum).
const INV_FACTORIAL: [f64; 14] = {
    let mut f = [1.0; 14];
    let mut k = 1;
    while k < 14 {
        f[k] = f[k - 1] / k as f64;
        k += 1;
    }
    f
};

crate::tensor::vectorized! {
/// `v = exp(v)` for values `<= 0` (softmax's shifted logits), eight lanes at a time: `x = n
/// ln 2 + r` (Cody-Waite, `ln 2` in two parts so `n ln 2` is exact), the Taylor series of
/// `exp(r)`, times `2^n` built in the exponent bits. Within a few ulp of `f64::exp` (tested);
/// below -708 it returns `exp(-708)` (3e-308) where the true value is smaller still; NaN stays
/// NaN. Every value goes through the same lanes, so a result does not depend on its position.
pub(crate) fn exp_nonpositive(v: &mut [f64]) {
    // adding 2^52 + 2^51 rounds to an integer, which the low bits of the sum then hold
    const ROUND: f64 = 6755399441055744.0;
    // ln 2 = LN2_HI + LN2_LO, the first with 21 trailing zero bits (fdlibm's split)
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    for chunk in v.chunks_mut(LANES) {
        let mut x = [0.0; LANES];
        x[..chunk.len()].copy_from_slice(chunk);
        // each step over all lanes at once (one vector instruction each)
        let (mut t, mut n, mut r) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
        for l in 0..LANES {
            let clamped = x[l].clamp(-708.0, 0.0);
            t[l] = clamped * std::f64::consts::LOG2_E + ROUND;
            n[l] = t[l] - ROUND;
            r[l] = (clamped - n[l] * LN2_HI) - n[l] * LN2_LO;
        }
        let mut p = [INV_FACTORIAL[13]; LANES];
        for c in INV_FACTORIAL[..13].iter().rev() {
            for l in 0..LANES {
                p[l] = p[l] * r[l] + c;
            }
        }
        let mut out = [0.0; LANES];
        for l in 0..LANES {
            let n_bits = t[l].to_bits().wrapping_sub(ROUND.to_bits()) as i64;
            let scale = f64::from_bits(((n_bits + 1023) as u64) << 52);
            out[l] = if x[l].is_nan() { x[l] } else { p[l] * scale };
        }
        chunk.copy_from_slice(&out[..chunk.len()]);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_library_within_a_few_ulp() {
        let mut xs: Vec<f64> = (0..200_001).map(|i| -(i as f64) * 0.0035).collect();
        xs.extend([0.0, -0.0, -1e-300, -0.34657359, -0.34657360, -707.9, -708.0]);
        let mut got = xs.clone();
        exp_nonpositive(&mut got);
        for (x, e) in xs.iter().zip(&got) {
            let want = x.exp();
            assert!((e - want).abs() <= 2.0 * f64::EPSILON * want, "exp({x}) = {e}, want {want}");
        }
        let mut edge = vec![-709.0, -1e4, f64::NEG_INFINITY, f64::NAN];
        exp_nonpositive(&mut edge);
        assert!(edge[..3].iter().all(|v| *v > 0.0 && *v < 4e-308), "{edge:?}");
        assert!(edge[3].is_nan());
    }
}
