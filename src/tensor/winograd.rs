//! Winograd F(2x2, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016) for stride-1 3x3 layers with enough channels for GEMMs: each 2x2 block of
//! outputs ("tile") is `A^T [(G g G^T) . (B^T d B)] A` over the 4x4 input patch `d` under it,
//! so the 16 positions of the 4x4 Winograd domain are 16 GEMMs `[o, c] . [c, tiles]`: 16
//! multiplications per tile and channel pair where the definition takes 36.
//!
//! Tiles are taken a chunk of whole tile rows at a time, across the images of a core's group,
//! so the transformed input and output of a chunk stay in L2. The weights are transformed and
//! packed once per call. The input gradient is the same convolution of the output gradient
//! with the flipped, transposed kernel (padding `2 - pad`); the weight gradient is
//! `G^T [sum over tiles (A dy A^T) . (B^T d B)] G`, one GEMM `[o, tiles] . [tiles, c]` per
//! position. The transforms work 16 tiles at a time, as one AVX-512 register where the CPU
//! has it (chosen at run time; the same arithmetic in portable code elsewhere).

use super::geom::{Geom, SyncPtr};
use super::panel::{self, transpose_into, Packed};
use std::ops::Range;

/// Positions of the Winograd domain: a tile's 4x4 elementwise product.
const POS: usize = 16;

/// Bytes of transformed input and output per chunk of tiles (the `chunk` argument below;
/// tests pass smaller chunks).
pub(super) const CHUNK_BYTES: usize = 1 << 20;

/// Whether a convolution runs here: 3x3, stride 1, padding at most 2 (the input gradient's
/// padding `2 - pad` must not be negative).
pub(super) fn applies(g: &Geom) -> bool {
    g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad <= 2
}

/// One layer's tiles: `th x tw` per image, `rows` tile rows per chunk.
#[derive(Debug, Clone, Copy)]
struct Tiles {
    th: usize,
    tw: usize,
    rows: usize,
}

impl Tiles {
    /// Chunks as many tile rows (at least one) as keep the transformed input (`c` channels)
    /// and output (`o` channels) within `bytes`.
    fn new(g: &Geom, bytes: usize) -> Tiles {
        let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
        let tiles = bytes / (4 * POS * (g.c + g.o).max(1));
        Tiles { th, tw, rows: (tiles / tw.max(1)).max(1) }
    }
    /// The tile rows of `count` images in chunks.
    fn chunks(&self, count: usize) -> impl Iterator<Item = Range<usize>> {
        let (total, rows) = (count * self.th, self.rows);
        (0..total).step_by(rows).map(move |r| r..(r + rows).min(total))
    }
    /// Tiles in the largest chunk.
    fn most(&self, count: usize) -> usize {
        self.rows.min(count * self.th) * self.tw
    }
}

/// `G v` for `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]`.
fn by_g([g0, g1, g2]: [f32; 3]) -> [f32; 4] {
    [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
}

/// `G^T v`.
fn by_g_t([u0, u1, u2, u3]: [f32; 4]) -> [f32; 3] {
    [u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3]
}

fn transpose<const R: usize, const C: usize>(m: [[f32; C]; R]) -> [[f32; R]; C] {
    std::array::from_fn(|j| std::array::from_fn(|i| m[i][j]))
}

/// The 16 transformed weights `G g G^T` of each `[o, c]` kernel, packed per position as
/// `[o, c]` matrices; `flipped`, the kernels rotated 180 degrees and packed `[c, o]` (the
/// input gradient's convolution).
fn transform_weights(weight: &[f32], o: usize, c: usize, flipped: bool) -> Vec<Packed> {
    let mut u = vec![0.0; POS * o * c];
    let (m, k) = if flipped { (c, o) } else { (o, c) };
    // row `r`, column `col` of each packed matrix, in order (the writes run sequentially)
    for at in 0..m * k {
        let (r, col) = (at / k, at % k);
        let g = if flipped { &weight[(col * c + r) * 9..][..9] } else { &weight[at * 9..][..9] };
        let g = |i: usize, j: usize| if flipped { g[(2 - i) * 3 + 2 - j] } else { g[i * 3 + j] };
        // G g (G applied to each column), then (G (G g)^T)^T = G g G^T
        let gg: [[f32; 3]; 4] = transpose([0, 1, 2].map(|j| by_g([g(0, j), g(1, j), g(2, j)])));
        for (i, row) in gg.into_iter().enumerate() {
            for (j, v) in by_g(row).into_iter().enumerate() {
                u[(i * 4 + j) * m * k + at] = v;
            }
        }
    }
    u.chunks_exact(m * k).map(|u| Packed::new(u, m, k, k, 1)).collect()
}

/// Values per vector of the transforms (one AVX-512 register).
const LANE: usize = 16;
type Lane = [f32; LANE];

#[inline(always)]
fn lane(src: &[f32]) -> Lane {
    src[..LANE].try_into().expect("a whole lane")
}

/// `src[..LANE]`, zeros past its end.
#[inline(always)]
fn lane_or_zeros(src: &[f32]) -> Lane {
    if src.len() >= LANE {
        return lane(src);
    }
    let mut l = [0.0; LANE];
    for (q, v) in l.iter_mut().enumerate() {
        *v = if q < src.len() { src[q] } else { 0.0 };
    }
    l
}

/// Stores the first `len` values of `l` (all of them when `len` is a whole lane).
#[inline(always)]
fn put(dst: &mut [f32], len: usize, l: &Lane) {
    if len >= LANE {
        dst[..LANE].copy_from_slice(l);
    } else {
        for (d, v) in dst[..len].iter_mut().zip(l) {
            *d = *v;
        }
    }
}

#[inline(always)]
fn add(a: &Lane, b: &Lane) -> Lane {
    let mut r = *a;
    for (r, b) in r.iter_mut().zip(b) {
        *r += b;
    }
    r
}

#[inline(always)]
fn sub(a: &Lane, b: &Lane) -> Lane {
    let mut r = *a;
    for (r, b) in r.iter_mut().zip(b) {
        *r -= b;
    }
    r
}

#[inline(always)]
fn neg(a: &Lane) -> Lane {
    let mut r = *a;
    for r in r.iter_mut() {
        *r = -*r;
    }
    r
}

/// The even-indexed and odd-indexed values of `src[..2 * LANE]`.
#[inline(always)]
fn split<const WIDE: bool>(src: &[f32]) -> (Lane, Lane) {
    let pairs: &[f32; 2 * LANE] = src[..2 * LANE].try_into().expect("two whole lanes");
    #[cfg(target_arch = "x86_64")]
    if WIDE {
        // SAFETY: `WIDE` bodies run only where the CPU has AVX-512F; `pairs` holds 32 values.
        return unsafe { avx512::split(pairs) };
    }
    let (mut even, mut odd) = ([0.0; LANE], [0.0; LANE]);
    for q in 0..LANE {
        even[q] = pairs[2 * q];
        odd[q] = pairs[2 * q + 1];
    }
    (even, odd)
}

/// `even[s] = src[2s]` and `odd[s] = src[2s + 1]` for `s < pairs`, zeros past `src`'s end,
/// a whole lane at a time (`even` and `odd` hold `pairs` rounded up to a lane).
#[inline(always)]
fn deinterleave<const WIDE: bool>(src: &[f32], pairs: usize, even: &mut [f32], odd: &mut [f32]) {
    for s0 in (0..pairs).step_by(LANE) {
        let rest = src.get(2 * s0..).unwrap_or(&[]);
        let (e, o) = if rest.len() >= 2 * LANE {
            split::<WIDE>(rest)
        } else {
            let mut both = [0.0; 2 * LANE];
            both[..LANE].copy_from_slice(&lane_or_zeros(rest));
            both[LANE..].copy_from_slice(&lane_or_zeros(rest.get(LANE..).unwrap_or(&[])));
            split::<WIDE>(&both)
        };
        even[s0..s0 + LANE].copy_from_slice(&e);
        odd[s0..s0 + LANE].copy_from_slice(&o);
    }
}

/// `[even[0], odd[0], even[1], odd[1], ..]`.
#[inline(always)]
fn join<const WIDE: bool>(even: &Lane, odd: &Lane) -> [f32; 2 * LANE] {
    #[cfg(target_arch = "x86_64")]
    if WIDE {
        // SAFETY: `WIDE` bodies run only where the CPU has AVX-512F.
        return unsafe { avx512::join(even, odd) };
    }
    let mut pairs = [0.0; 2 * LANE];
    for q in 0..LANE {
        pairs[2 * q] = even[q];
        pairs[2 * q + 1] = odd[q];
    }
    pairs
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Lane, LANE};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F (the caller is compiled for it, so this inlines).
    #[inline(always)]
    pub(super) unsafe fn split(pairs: &[f32; 2 * LANE]) -> (Lane, Lane) {
        let (lo, hi) = (_mm512_loadu_ps(pairs.as_ptr()), _mm512_loadu_ps(pairs.as_ptr().add(LANE)));
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        let mut out = ([0.0; LANE], [0.0; LANE]);
        _mm512_storeu_ps(out.0.as_mut_ptr(), _mm512_permutex2var_ps(lo, even, hi));
        _mm512_storeu_ps(out.1.as_mut_ptr(), _mm512_permutex2var_ps(lo, odd, hi));
        out
    }

    /// # Safety
    /// As for [`split`].
    #[inline(always)]
    pub(super) unsafe fn join(even: &Lane, odd: &Lane) -> [f32; 2 * LANE] {
        let (e, o) = (_mm512_loadu_ps(even.as_ptr()), _mm512_loadu_ps(odd.as_ptr()));
        let lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        let hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
        let mut out = [0.0; 2 * LANE];
        _mm512_storeu_ps(out.as_mut_ptr(), _mm512_permutex2var_ps(e, lo, o));
        _mm512_storeu_ps(out.as_mut_ptr().add(LANE), _mm512_permutex2var_ps(e, hi, o));
        out
    }
}

/// The images and tile rows of a chunk of the group's tile rows (`th` per image), each with
/// the index of its first tile row in the chunk.
fn parts(chunk: Range<usize>, th: usize) -> impl Iterator<Item = (usize, Range<usize>, usize)> {
    let start = chunk.start;
    (chunk.start / th..chunk.end.div_ceil(th)).map(move |image| {
        let rows = (image * th).max(chunk.start)..((image + 1) * th).min(chunk.end);
        (image, rows.start - image * th..rows.end - image * th, rows.start - start)
    })
}

vectorized! {
/// `v[p, ch, t] = (B^T d B)[p]` for every channel `ch` and every tile `t` of the chunk's tile
/// rows (`chunk.len() * tw` tiles; `x` holds the group's images). Each channel's rows under
/// the chunk are copied into a zero-bordered plane (`2 tw + 2` wide), the 16 values `d[i, j]`
/// of every tile gathered from it into 16 rows over the chunk's tiles, and those transformed
/// as whole rows.
fn transform_input(x: &[f32], g: &Geom, t: &Tiles, chunk: Range<usize>, v: &mut [f32], scratch: &mut Vec<f32>) {
    let n = chunk.len() * t.tw;
    let dn = n.next_multiple_of(LANE) + LANE;
    let (wp, hp) = (2 * t.tw + 2, 2 * t.th + 2);
    scratch.resize(POS * dn + hp * wp + 4 * LANE, 0.0);
    let (d, padded) = scratch.split_at_mut(POS * dn);
    // The gathered rows need no zeroing (what lies past the chunk's tiles only fills lanes
    // that are dropped). The plane starts zero, and only rows inside the image are ever
    // copied into it (each whole lane past a row's end is zeros), so its borders stay zero.
    padded.fill(0.0);
    for ch in 0..g.c {
        for (image, rows, first) in parts(chunk.clone(), t.th) {
            let plane = &x[(image * g.c + ch) * g.h * g.w..][..g.h * g.w];
            for y in (2 * rows.start).saturating_sub(g.pad)..(2 * rows.end + 2).saturating_sub(g.pad).min(g.h) {
                let (src, dst) = (&plane[y * g.w..][..g.w], &mut padded[(y + g.pad) * wp + g.pad..]);
                let whole = g.w / LANE * LANE;
                for x0 in (0..whole).step_by(LANE) {
                    dst[x0..x0 + LANE].copy_from_slice(&src[x0..x0 + LANE]);
                }
                if whole < g.w {
                    dst[whole..whole + LANE].copy_from_slice(&lane_or_zeros(&src[whole..]));
                }
            }
            for (k, ty) in rows.enumerate() {
                let at = (first + k) * t.tw;
                // tile s reads columns 2s .. 2s + 3 of rows 2 ty .. 2 ty + 3
                for i in 0..4 {
                    let row = &padded[(2 * ty + i) * wp..];
                    for s0 in (0..t.tw).step_by(LANE) {
                        let (e0, o0) = split::<WIDE>(&row[2 * s0..]);
                        let (e1, o1) = split::<WIDE>(&row[2 * s0 + 2..]);
                        for (j, l) in [e0, o0, e1, o1].iter().enumerate() {
                            d[(i * 4 + j) * dn + at + s0..][..LANE].copy_from_slice(l);
                        }
                    }
                }
            }
        }
        let v = &mut v[ch * n..];
        let vn = g.c * n;
        for s in (0..n).step_by(LANE) {
            let mut x = [[0.0; LANE]; POS];
            for (p, x) in x.iter_mut().enumerate() {
                *x = lane(&d[p * dn + s..]);
            }
            // B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3; then times B, the same on columns
            let mut rows = [[[0.0; LANE]; 4]; 4];
            for j in 0..4 {
                rows[0][j] = sub(&x[j], &x[8 + j]);
                rows[1][j] = add(&x[4 + j], &x[8 + j]);
                rows[2][j] = sub(&x[8 + j], &x[4 + j]);
                rows[3][j] = sub(&x[4 + j], &x[12 + j]);
            }
            let len = n - s;
            for (i, [r0, r1, r2, r3]) in rows.iter().enumerate() {
                put(&mut v[(i * 4) * vn + s..], len, &sub(r0, r2));
                put(&mut v[(i * 4 + 1) * vn + s..], len, &add(r1, r2));
                put(&mut v[(i * 4 + 2) * vn + s..], len, &sub(r2, r1));
                put(&mut v[(i * 4 + 3) * vn + s..], len, &sub(r1, r3));
            }
        }
    }
}
}

vectorized! {
/// `out = A^T m A (+ bias)` for every output channel and tile of the chunk (`m[p, oc, t]`,
/// readable to a whole lane past its end; `out` the group's output images), values past the
/// output's edge dropped.
fn transform_output(m: &[f32], g: &Geom, t: &Tiles, chunk: Range<usize>, bias: Option<&[f32]>, out: &mut [f32], scratch: &mut Vec<f32>) {
    let n = chunk.len() * t.tw;
    let yn = n.next_multiple_of(LANE) + LANE;
    scratch.resize(4 * yn, 0.0);
    let mn = g.o * n;
    for oc in 0..g.o {
        let b = [bias.map_or(0.0, |b| b[oc]); LANE];
        for s in (0..n).step_by(LANE) {
            let mut x = [[0.0; LANE]; POS];
            for (p, x) in x.iter_mut().enumerate() {
                *x = lane(&m[p * mn + oc * n + s..]);
            }
            // A^T m: rows m0 + m1 + m2 and m1 - m2 - m3; then times A, the same on columns
            let (mut top, mut bottom) = ([[0.0; LANE]; 4], [[0.0; LANE]; 4]);
            for j in 0..4 {
                top[j] = add(&add(&x[j], &x[4 + j]), &x[8 + j]);
                bottom[j] = sub(&sub(&x[4 + j], &x[8 + j]), &x[12 + j]);
            }
            for (r, row) in [top, bottom].iter().enumerate() {
                scratch[2 * r * yn + s..][..LANE].copy_from_slice(&add(&add(&add(&row[0], &row[1]), &row[2]), &b));
                scratch[(2 * r + 1) * yn + s..][..LANE].copy_from_slice(&add(&sub(&sub(&row[1], &row[2]), &row[3]), &b));
            }
        }
        for (image, rows, first) in parts(chunk.clone(), t.th) {
            for (k, ty) in rows.enumerate() {
                let at = (first + k) * t.tw;
                for a in 0..2 {
                    let y = 2 * ty + a;
                    if y >= g.oh {
                        continue;
                    }
                    let (even, odd) = (&scratch[2 * a * yn + at..], &scratch[(2 * a + 1) * yn + at..]);
                    let dst = &mut out[((image * g.o + oc) * g.oh + y) * g.ow..][..g.ow];
                    for s0 in (0..t.tw).step_by(LANE) {
                        let (e, o) = (lane(&even[s0..]), lane(&odd[s0..]));
                        let pairs = join::<WIDE>(&e, &o);
                        let len = g.ow - 2 * s0;
                        if len >= 2 * LANE {
                            dst[2 * s0..2 * s0 + 2 * LANE].copy_from_slice(&pairs);
                        } else {
                            for (d, v) in dst[2 * s0..].iter_mut().zip(pairs) {
                                *d = v;
                            }
                        }
                    }
                }
            }
        }
    }
}
}

vectorized! {
/// `y[p, oc, t] = (A dy A^T)[p]` for every output channel and tile of the chunk, from the
/// output gradient `grad` of the group's images (zeros past the output's edge).
fn transform_grad(grad: &[f32], g: &Geom, t: &Tiles, chunk: Range<usize>, y: &mut [f32], scratch: &mut Vec<f32>) {
    let n = chunk.len() * t.tw;
    let en = n.next_multiple_of(LANE) + LANE;
    scratch.resize(4 * en, 0.0);
    let yn = g.o * n;
    for oc in 0..g.o {
        // rows 0 to 3: each tile's dy (0, 0), (0, 1), (1, 0), (1, 1)
        for (image, rows, first) in parts(chunk.clone(), t.th) {
            for (k, ty) in rows.enumerate() {
                let at = (first + k) * t.tw;
                for a in 0..2 {
                    let (even, odd) = scratch[2 * a * en + at..].split_at_mut(en);
                    let row = 2 * ty + a;
                    let src = if row < g.oh { &grad[((image * g.o + oc) * g.oh + row) * g.ow..][..g.ow] } else { &[][..] };
                    deinterleave::<WIDE>(src, t.tw, even, odd);
                }
            }
        }
        let y = &mut y[oc * n..];
        for s in (0..n).step_by(LANE) {
            let (e0, o0, e1, o1) = (lane(&scratch[s..]), lane(&scratch[en + s..]), lane(&scratch[2 * en + s..]), lane(&scratch[3 * en + s..]));
            // A dy: rows d0, d0 + d1, d0 - d1, -d1; then times A^T, the same on columns
            let rows = [(e0, o0), (add(&e0, &e1), add(&o0, &o1)), (sub(&e0, &e1), sub(&o0, &o1)), (neg(&e1), neg(&o1))];
            let len = n - s;
            for (i, (x0, x1)) in rows.iter().enumerate() {
                put(&mut y[i * 4 * yn + s..], len, x0);
                put(&mut y[(i * 4 + 1) * yn + s..], len, &add(x0, x1));
                put(&mut y[(i * 4 + 2) * yn + s..], len, &sub(x0, x1));
                put(&mut y[(i * 4 + 3) * yn + s..], len, &neg(x1));
            }
        }
    }
}
}

/// The convolution of `x` (the layer `g`) with the kernels whose transforms `u` holds, one
/// packed `[o, c]` matrix per position.
fn convolve(x: &[f32], u: &[Packed], bias: Option<&[f32]>, g: &Geom, chunk: usize) -> Vec<f32> {
    let t = Tiles::new(g, chunk);
    let (image, out_image) = (g.image(), g.o * g.l());
    let mut out = vec![0.0; g.n * out_image];
    let out_ptr = SyncPtr(out.as_mut_ptr());
    g.by_groups(|first, count, parallel| {
        let most = t.most(count);
        let (mut v, mut m, mut scratch) = (vec![0.0; POS * g.c * most], vec![0.0; POS * g.o * most + LANE], Vec::new());
        let mut rows = Vec::new();
        let x = &x[first * image..(first + count) * image];
        // SAFETY: groups cover disjoint image ranges, so each output image is written by
        // exactly one thread, and `out` outlives `by_groups`.
        let out = unsafe { out_ptr.slice(first * out_image, count * out_image) };
        for chunk in t.chunks(count) {
            let n = chunk.len() * t.tw;
            transform_input(x, g, &t, chunk.clone(), &mut v, &mut scratch);
            for (p, u) in u.iter().enumerate() {
                panel::gemm(u, &v[p * g.c * n..], n, n, &mut m[p * g.o * n..], n, false, parallel);
            }
            transform_output(&m, g, &t, chunk, bias, out, &mut rows);
        }
    });
    out
}

/// Forward: `out [n, o, oh, ow]` of `x [n, c, h, w]` and `weight [o, c, 3, 3]`, in chunks
/// of about `chunk` bytes.
pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &Geom, chunk: usize) -> Vec<f32> {
    convolve(x, &transform_weights(weight, g.o, g.c, false), bias, g, chunk)
}

/// The input gradient: the output gradient convolved with the flipped kernels, input and
/// output channels swapped, padding `2 - pad`.
pub(super) fn input_grad(grad: &[f32], weight: &[f32], g: &Geom, chunk: usize) -> Vec<f32> {
    let back = Geom { c: g.o, h: g.oh, w: g.ow, o: g.c, pad: 2 - g.pad, oh: g.h, ow: g.w, ..*g };
    convolve(grad, &transform_weights(weight, g.o, g.c, true), None, &back, chunk)
}

/// The weight gradient `[o, c, 3, 3]`: per position, `[o, tiles] . [tiles, c]` summed over
/// every tile, then `G^T (.) G` back to 3x3.
pub(super) fn weight_grad(x: &[f32], grad: &[f32], g: &Geom, chunk: usize) -> Vec<f32> {
    let t = Tiles::new(g, chunk);
    let (image, out_image) = (g.image(), g.o * g.l());
    let partial = g.by_reduction_groups(|first, count, parallel| {
        let most = t.most(count);
        let mut v = vec![0.0; POS * g.c * most];
        let (mut v_t, mut y) = (vec![0.0; POS * g.c * most], vec![0.0; POS * g.o * most]);
        let (mut scratch, mut packed) = (Vec::new(), Packed::default());
        let mut sums = vec![0.0; POS * g.o * g.c];
        let x = &x[first * image..(first + count) * image];
        let grad = &grad[first * out_image..(first + count) * out_image];
        for (i, chunk) in t.chunks(count).enumerate() {
            let n = chunk.len() * t.tw;
            transform_input(x, g, &t, chunk.clone(), &mut v, &mut scratch);
            transform_grad(grad, g, &t, chunk, &mut y, &mut scratch);
            for p in 0..POS {
                transpose_into(&v[p * g.c * n..], n, &mut v_t[p * n * g.c..], g.c, g.c, n);
                packed.pack(&y[p * g.o * n..], g.o, n, n, 1);
                panel::gemm(&packed, &v_t[p * n * g.c..], g.c, g.c, &mut sums[p * g.o * g.c..], g.c, i > 0, parallel);
            }
        }
        sums
    });
    let mut parts = partial.into_iter();
    let mut sums = parts.next().unwrap_or_default();
    for part in parts {
        sums.iter_mut().zip(&part).for_each(|(s, p)| *s += p);
    }
    let mut gw = vec![0.0; g.o * g.c * 9];
    if sums.is_empty() {
        return gw;
    }
    for (oc, dst) in gw.chunks_exact_mut(9).enumerate() {
        let u = |i: usize, j: usize| sums[(i * 4 + j) * g.o * g.c + oc];
        // G^T u (G^T applied to each column), then its rows times G
        let gu: [[f32; 4]; 3] = transpose([0, 1, 2, 3].map(|j| by_g_t([u(0, j), u(1, j), u(2, j), u(3, j)])));
        for (i, row) in gu.into_iter().enumerate() {
            dst[i * 3..i * 3 + 3].copy_from_slice(&by_g_t(row));
        }
    }
    gw
}

#[cfg(test)]
mod tests {
    use super::super::conv::tests::{assert_close, geom, naive, naive_grads, rand};
    use super::*;
    use crate::rng::Rng;

    /// Odd and even output sizes (partial tiles on the right and bottom), paddings 0 to 2,
    /// one image (its GEMMs split across the cores) and several (groups of images per core),
    /// partial GEMM register tiles, and tile rows wider than one lane (`tw` = 17).
    const CASES: [([usize; 4], [usize; 4], usize); 6] = [
        ([3, 5, 7, 9], [6, 5, 3, 3], 1),
        ([2, 4, 6, 6], [3, 4, 3, 3], 0),
        ([2, 3, 5, 4], [4, 3, 3, 3], 2),
        ([1, 8, 3, 3], [5, 8, 3, 3], 1),
        ([5, 20, 8, 8], [18, 20, 3, 3], 1),
        ([2, 6, 34, 33], [7, 6, 3, 3], 1),
    ];

    /// Against the definition, with the layer's default chunks and with chunks of one and
    /// of three tile rows (chunks that end inside an image and chunks that span images).
    #[test]
    fn forward_and_gradients_match_the_definition() {
        let mut rng = Rng::new(4);
        for (xs, ws, pad) in CASES {
            let g = geom(xs, ws, 1, pad);
            let x = rand(&mut rng, xs.iter().product());
            let w = rand(&mut rng, ws.iter().product());
            let bias = rand(&mut rng, ws[0]);
            let grad = rand(&mut rng, g.n * g.o * g.l());
            let mut want = naive(&x, xs, &w, ws, 1, pad);
            want.iter_mut().enumerate().for_each(|(i, v)| *v += bias[i / g.l() % g.o]);
            let (gx, gw) = naive_grads(&x, xs, &w, ws, 1, pad, &grad);
            let tw = g.ow.div_ceil(2);
            for rows in [None, Some(1), Some(3)] {
                let chunk = rows.map_or(CHUNK_BYTES, |r| r * tw * 4 * POS * (g.c + g.o));
                if let Some(r) = rows {
                    assert_eq!(Tiles::new(&g, chunk).rows, r);
                }
                let what = format!("x {xs:?} w {ws:?} pad {pad} rows {rows:?}");
                assert_close(&forward(&x, &w, Some(&bias), &g, chunk), &want, &what);
                assert_close(&input_grad(&grad, &w, &g, chunk), &gx, &format!("d x, {what}"));
                assert_close(&weight_grad(&x, &grad, &g, chunk), &gw, &format!("d weight, {what}"));
            }
        }
    }

    /// Empty batches, empty images (only padding under the tiles) and 1x1 images: the
    /// definition's values (zeros or the bias), no panic.
    #[test]
    fn degenerate_shapes() {
        let mut rng = Rng::new(5);
        for (xs, ws, pad) in [
            ([0, 4, 5, 5], [3, 4, 3, 3], 1),
            ([2, 4, 0, 0], [3, 4, 3, 3], 2),
            ([2, 4, 1, 1], [3, 4, 3, 3], 1),
            ([1, 2, 1, 3], [2, 2, 3, 3], 2),
        ] {
            let g = geom(xs, ws, 1, pad);
            let x = rand(&mut rng, xs.iter().product());
            let w = rand(&mut rng, ws.iter().product());
            let grad = rand(&mut rng, g.n * g.o * g.l());
            let what = format!("x {xs:?} pad {pad}");
            assert_close(&forward(&x, &w, None, &g, CHUNK_BYTES), &naive(&x, xs, &w, ws, 1, pad), &what);
            let (gx, gw) = naive_grads(&x, xs, &w, ws, 1, pad, &grad);
            assert_close(&input_grad(&grad, &w, &g, CHUNK_BYTES), &gx, &what);
            assert_close(&weight_grad(&x, &grad, &g, CHUNK_BYTES), &gw, &what);
        }
    }

    #[test]
    fn shuffles_match_the_portable_ones() {
        let pairs: Vec<f32> = (0..2 * LANE).map(|i| i as f32 * 1.5 - 7.0).collect();
        let (even, odd) = split::<false>(&pairs);
        assert!(even.iter().zip(&odd).enumerate().all(|(q, (e, o))| *e == pairs[2 * q] && *o == pairs[2 * q + 1]));
        assert_eq!(join::<false>(&even, &odd)[..], pairs[..]);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(split::<true>(&pairs), (even, odd));
            assert_eq!(join::<true>(&even, &odd)[..], pairs[..]);
        }
    }

    #[test]
    fn chunks_split_tile_rows_by_image() {
        let parts: Vec<_> = parts(3..10, 4).collect();
        assert_eq!(parts, [(0, 3..4, 0), (1, 0..4, 1), (2, 0..2, 5)]);
        let t = Tiles { th: 4, tw: 2, rows: 3 };
        assert_eq!(t.chunks(2).collect::<Vec<_>>(), [0..3, 3..6, 6..8]);
        assert_eq!(t.most(2), 6);
    }
}
