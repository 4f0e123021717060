//! The column matrices of [`conv`](super::conv)'s im2col + GEMM path: `im2col` copies the
//! input values each output position's kernel taps read into one column per position, a band
//! of output rows at a time; `col2im`, its adjoint, adds columns back into an input
//! gradient. A stride-1 convolution as wide as its input moves each column row as one
//! shifted copy of the plane, with the taps that fall outside zeroed.

use super::geom::Geom;
use std::ops::Range;

/// `cols[(c, i, j), (y, x)] = x[c, y*s + i - p, x*s + j - p]` (zero outside) for one image's
/// output rows `y` in `rows`: `k` rows of `rows.len() * ow` columns.
pub(super) fn im2col(x: &[f32], g: &Geom, rows: Range<usize>, cols: &mut [f32]) {
    let n = rows.len() * g.ow;
    for (row, dst) in cols.chunks_exact_mut(n).take(g.k()).enumerate() {
        let (c, i, j) = (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
        let src = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        let (lo, hi) = g.valid_x(j);
        if g.stride == 1 && g.ow == g.w {
            shifted_row(src, g, i, j, (lo, hi), rows.clone(), dst);
            continue;
        }
        for (y, d) in rows.clone().zip(dst.chunks_exact_mut(g.ow)) {
            let sy = (y * g.stride + i).wrapping_sub(g.pad);
            if sy >= g.h {
                d.fill(0.0);
                continue;
            }
            let s = &src[sy * g.w..(sy + 1) * g.w];
            d[..lo].fill(0.0);
            d[hi..].fill(0.0);
            if lo == hi {
                continue;
            }
            let first = lo * g.stride + j - g.pad;
            if g.stride == 1 {
                d[lo..hi].copy_from_slice(&s[first..first + hi - lo]);
            } else {
                d[lo..hi].iter_mut().zip(s[first..].iter().step_by(g.stride)).for_each(|(d, s)| *d = *s);
            }
        }
    }
}

/// Where tap `(i, j)` of a stride-1 convolution as wide as its input reads for output rows
/// `rows`: output position `t` reads plane value `t + shift`; rows `y_lo..y_hi` fall inside
/// the plane vertically, and of their positions `t0..t1` inside it as a flat range (what
/// the range leaves out, and the `lo`/`hi` column edges, wrap around a row).
struct Shifted {
    y_lo: usize,
    y_hi: usize,
    t0: usize,
    t1: usize,
    shift: isize,
}

impl Shifted {
    fn new(g: &Geom, i: usize, j: usize, rows: Range<usize>) -> Shifted {
        let w = g.w;
        let y_lo = g.pad.saturating_sub(i).clamp(rows.start, rows.end);
        let y_hi = (g.h + g.pad).saturating_sub(i).clamp(y_lo, rows.end);
        let shift = (i * w + j) as isize - (g.pad * w + g.pad) as isize;
        let t0 = ((y_lo * w) as isize).max(-shift);
        let t1 = ((y_hi * w) as isize).min((g.h * w) as isize - shift);
        // a tap that reads nothing of these rows (a plane smaller than the kernel's reach):
        // an empty run inside them
        let (t0, t1) = if t1 > t0 { (t0 as usize, t1 as usize) } else { (y_lo * w, y_lo * w) };
        Shifted { y_lo, y_hi, t0, t1, shift }
    }
    /// The plane values positions `t0..t1` read.
    fn source(&self) -> Range<usize> {
        if self.t1 == self.t0 {
            return 0..0;
        }
        (self.t0 as isize + self.shift) as usize..(self.t1 as isize + self.shift) as usize
    }
}

/// Zeroes columns `..lo` and `hi..` of whole rows `w` wide: one strided pass per column (a
/// fill per row would be a call per value or two).
fn zero_edges(rows: &mut [f32], w: usize, (lo, hi): (usize, usize)) {
    for x in (0..lo).chain(hi..w) {
        rows.iter_mut().skip(x).step_by(w).for_each(|v| *v = 0.0);
    }
}

/// One row of [`im2col`] for a stride-1 convolution whose output is as wide as its input:
/// the plane shifted in one copy, then zeros where a tap falls outside.
fn shifted_row(src: &[f32], g: &Geom, i: usize, j: usize, edges: (usize, usize), rows: Range<usize>, dst: &mut [f32]) {
    let base = rows.start * g.w;
    let s = Shifted::new(g, i, j, rows);
    dst[..s.y_lo * g.w - base].fill(0.0);
    dst[s.y_hi * g.w - base..].fill(0.0);
    dst[s.t0 - base..s.t1 - base].copy_from_slice(&src[s.source()]);
    zero_edges(&mut dst[s.y_lo * g.w - base..s.y_hi * g.w - base], g.w, edges);
}

/// The adjoint of [`im2col`] for one image's output rows `rows`: adds the columns into `x`.
/// The columns are scratch: for a stride-1 convolution as wide as its input each row's
/// edges are zeroed and the row added as one shifted plane.
pub(super) fn col2im(cols: &mut [f32], g: &Geom, rows: Range<usize>, x: &mut [f32]) {
    let n = rows.len() * g.ow;
    for (row, src) in cols.chunks_exact_mut(n).take(g.k()).enumerate() {
        let (c, i, j) = (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
        let dst = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        let (lo, hi) = g.valid_x(j);
        if g.stride == 1 && g.ow == g.w {
            let base = rows.start * g.w;
            let s = Shifted::new(g, i, j, rows.clone());
            zero_edges(&mut src[s.y_lo * g.w - base..s.y_hi * g.w - base], g.w, (lo, hi));
            dst[s.source()].iter_mut().zip(&src[s.t0 - base..s.t1 - base]).for_each(|(d, s)| *d += s);
            continue;
        }
        for (y, s) in rows.clone().zip(src.chunks_exact(g.ow)) {
            let sy = (y * g.stride + i).wrapping_sub(g.pad);
            if sy >= g.h || lo == hi {
                continue;
            }
            let d = &mut dst[sy * g.w..(sy + 1) * g.w];
            let first = lo * g.stride + j - g.pad;
            if g.stride == 1 {
                d[first..first + hi - lo].iter_mut().zip(&s[lo..hi]).for_each(|(d, s)| *d += s);
            } else {
                d[first..].iter_mut().step_by(g.stride).zip(&s[lo..hi]).for_each(|(d, s)| *d += s);
            }
        }
    }
}
