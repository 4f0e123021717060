//! 2-D convolution (NCHW, PyTorch weight layout `[out, in, kh, kw]`) as im2col over the
//! whole batch followed by one GEMM; the backward pass recomputes the columns.

use super::matmul::{gemm_into, Mat};
use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::rc::Rc;

/// Geometry of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    /// Rows of the column matrix (`c * kh * kw`) and its columns (`n * oh * ow`).
    fn cols_shape(&self) -> (usize, usize) {
        (self.c * self.kh * self.kw, self.n * self.oh * self.ow)
    }
}

/// `cols[(c, i, j), (n, y, x)] = x[n, c, y*s + i - p, x*s + j - p]` (zero outside).
/// Rows are filled in parallel.
fn im2col(x: &[f32], g: &Geom) -> Vec<f32> {
    let (rows, cols) = g.cols_shape();
    let mut out = vec![0.0; rows * cols];
    let plane = g.oh * g.ow;
    out.par_chunks_mut(cols).enumerate().for_each(|(row, dst_row)| {
        let (c, i, j) = (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
        for n in 0..g.n {
            let src = &x[(n * g.c + c) * g.h * g.w..(n * g.c + c + 1) * g.h * g.w];
            let dst = &mut dst_row[n * plane..(n + 1) * plane];
            for y in 0..g.oh {
                let sy = (y * g.stride + i) as isize - g.pad as isize;
                if sy < 0 || sy >= g.h as isize {
                    continue;
                }
                let src_row = &src[sy as usize * g.w..(sy as usize + 1) * g.w];
                let dst_row = &mut dst[y * g.ow..(y + 1) * g.ow];
                for (xo, d) in dst_row.iter_mut().enumerate() {
                    let sx = (xo * g.stride + j) as isize - g.pad as isize;
                    if sx >= 0 && sx < g.w as isize {
                        *d = src_row[sx as usize];
                    }
                }
            }
        }
    });
    out
}

/// The adjoint of [`im2col`]: scatter-adds columns back into an input-shaped buffer, one
/// image per task.
fn col2im(cols: &[f32], g: &Geom) -> Vec<f32> {
    let (_, ncols) = g.cols_shape();
    let mut x = vec![0.0; g.n * g.c * g.h * g.w];
    let plane = g.oh * g.ow;
    x.par_chunks_mut(g.c * g.h * g.w).enumerate().for_each(|(n, image)| {
        for c in 0..g.c {
            let dst = &mut image[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = (c * g.kh + i) * g.kw + j;
                    let src = &cols[row * ncols + n * plane..row * ncols + (n + 1) * plane];
                    for y in 0..g.oh {
                        let sy = (y * g.stride + i) as isize - g.pad as isize;
                        if sy < 0 || sy >= g.h as isize {
                            continue;
                        }
                        for xo in 0..g.ow {
                            let sx = (xo * g.stride + j) as isize - g.pad as isize;
                            if sx >= 0 && sx < g.w as isize {
                                dst[sy as usize * g.w + sx as usize] += src[y * g.ow + xo];
                            }
                        }
                    }
                }
            }
        }
    });
    x
}

/// `[o, n*l] -> [n, o, l]`.
fn channels_first_to_batch_first(src: &[f32], o: usize, n: usize, l: usize) -> Vec<f32> {
    let mut out = vec![0.0; o * n * l];
    out.par_chunks_mut(o * l).enumerate().for_each(|(b, image)| {
        for oc in 0..o {
            image[oc * l..(oc + 1) * l].copy_from_slice(&src[oc * n * l + b * l..oc * n * l + (b + 1) * l]);
        }
    });
    out
}

/// `[n, o, l] -> [o, n*l]`.
fn batch_first_to_channels_first(src: &[f32], o: usize, n: usize, l: usize) -> Vec<f32> {
    let mut out = vec![0.0; o * n * l];
    for b in 0..n {
        for oc in 0..o {
            out[oc * n * l + b * l..oc * n * l + (b + 1) * l].copy_from_slice(&src[(b * o + oc) * l..(b * o + oc + 1) * l]);
        }
    }
    out
}

impl Tensor {
    /// 2-D convolution: `x [n, c, h, w]`, `weight [o, c, kh, kw]`, optional `bias [o]`.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize) -> Result<Tensor> {
        expect_rank("conv2d", self, 4)?;
        expect_rank("conv2d", weight, 4)?;
        let (o, kc, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]);
        let (n, c, h, w) = (self.shape[0], self.shape[1], self.shape[2], self.shape[3]);
        if c != kc {
            return Err(Error::shape("conv2d", format!("input [batch, {kc}, h, w] for weight {:?}", weight.shape), &self.shape));
        }
        if stride == 0 {
            return Err(Error::invalid("conv2d", "stride must be at least 1"));
        }
        if h + 2 * padding < kh || w + 2 * padding < kw {
            return Err(Error::shape("conv2d", format!("input at least {kh}x{kw} after padding {padding}"), &self.shape));
        }
        if let Some(b) = bias {
            if b.shape != [o] {
                return Err(Error::shape("conv2d", format!("bias [{o}]"), &b.shape));
            }
        }
        let g = Geom {
            n,
            c,
            h,
            w,
            kh,
            kw,
            stride,
            pad: padding,
            oh: (h + 2 * padding - kh) / stride + 1,
            ow: (w + 2 * padding - kw) / stride + 1,
        };
        let (k, ncols) = g.cols_shape();
        let l = g.oh * g.ow;

        // forward: out_t[o, n*l] = weight[o, k] . cols[k, n*l]
        let cols = im2col(&self.data, &g);
        let mut out_t = vec![0.0; o * ncols];
        gemm_into(Mat::new(&weight.data, o, k), Mat::new(&cols, k, ncols), &mut out_t, false);
        drop(cols);
        let mut out = channels_first_to_batch_first(&out_t, o, n, l);
        if let Some(b) = bias {
            out.chunks_mut(l).enumerate().for_each(|(i, plane)| plane.iter_mut().for_each(|v| *v += b.data[i % o]));
        }

        let (x, wt) = (self.data.clone(), weight.data.clone());
        let backward = move |grad: &[f32], needs: &[bool]| {
            let g_t = batch_first_to_channels_first(grad, o, n, l);
            let gx = needs[0].then(|| {
                // d cols[k, n*l] = weight^T . g_t, then fold back
                let mut dcols = vec![0.0; k * ncols];
                gemm_into(Mat::new(&wt, o, k).t(), Mat::new(&g_t, o, ncols), &mut dcols, false);
                col2im(&dcols, &g)
            });
            let gw = needs[1].then(|| {
                let cols = im2col(&x, &g);
                let mut gw = vec![0.0; o * k];
                gemm_into(Mat::new(&g_t, o, ncols), Mat::new(&cols, k, ncols).t(), &mut gw, false);
                gw
            });
            let gb = needs.get(2).copied().unwrap_or(false).then(|| g_t.chunks(ncols).map(|r| r.iter().sum()).collect());
            vec![gx, gw, gb]
        };
        let out = Tensor::constant(vec![n, o, g.oh, g.ow], Rc::new(out));
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

    /// The definition, one output at a time.
    fn naive(x: &[f32], xs: [usize; 4], w: &[f32], ws: [usize; 4], stride: usize, pad: usize) -> Vec<f32> {
        let [n, c, h, wd] = xs;
        let [o, _, kh, kw] = ws;
        let oh = (h + 2 * pad - kh) / stride + 1;
        let ow = (wd + 2 * pad - kw) / stride + 1;
        let mut out = vec![0.0; n * o * oh * ow];
        for b in 0..n {
            for oc in 0..o {
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0;
                        for ic in 0..c {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let sy = (y * stride + i) as isize - pad as isize;
                                    let sx = (xo * stride + j) as isize - pad as isize;
                                    if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < wd {
                                        acc +=
                                            x[((b * c + ic) * h + sy as usize) * wd + sx as usize] * w[((oc * c + ic) * kh + i) * kw + j];
                                    }
                                }
                            }
                        }
                        out[((b * o + oc) * oh + y) * ow + xo] = acc;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition() {
        let mut rng = Rng::new(1);
        for &(stride, pad) in &[(1, 0), (1, 1), (2, 1), (2, 0)] {
            let x = rand(&mut rng, 2 * 3 * 7 * 6);
            let w = rand(&mut rng, 4 * 3 * 3 * 3);
            let xt = Tensor::from_vec(x.clone(), &[2, 3, 7, 6]).unwrap();
            let wt = Tensor::from_vec(w.clone(), &[4, 3, 3, 3]).unwrap();
            let got = xt.conv2d(&wt, None, stride, pad).unwrap();
            let want = naive(&x, [2, 3, 7, 6], &w, [4, 3, 3, 3], stride, pad);
            assert_eq!(got.len(), want.len());
            for (a, b) in got.data().iter().zip(&want) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn gradients_stride_1_and_2_with_and_without_padding() {
        let mut rng = Rng::new(2);
        for &(stride, pad, bias) in &[(1, 0, true), (1, 1, false), (2, 1, true), (2, 0, false)] {
            let mut inputs = vec![(rand(&mut rng, 2 * 2 * 5 * 5), vec![2, 2, 5, 5]), (rand(&mut rng, 3 * 2 * 3 * 3), vec![3, 2, 3, 3])];
            if bias {
                inputs.push((rand(&mut rng, 3), vec![3]));
            }
            check(&inputs, |v| v[0].conv2d(&v[1], v.get(2), stride, pad));
        }
    }

    #[test]
    fn errors_name_the_op_and_shapes() {
        let x = Tensor::zeros(&[1, 3, 8, 8]);
        let w = Tensor::zeros(&[4, 2, 3, 3]);
        let e = x.conv2d(&w, None, 1, 1).unwrap_err().to_string();
        assert!(e.contains("conv2d") && e.contains("[1, 3, 8, 8]") && e.contains("[4, 2, 3, 3]"), "{e}");
        let w = Tensor::zeros(&[4, 3, 3, 3]);
        assert!(x.conv2d(&w, None, 0, 1).is_err());
        assert!(Tensor::zeros(&[1, 3, 2, 2]).conv2d(&w, None, 1, 0).is_err());
        assert!(Tensor::zeros(&[3, 8, 8]).conv2d(&w, None, 1, 0).is_err());
    }
}
