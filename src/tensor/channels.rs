//! The mobile architectures' small ops: ReLU6 (MobileNetV2) and channel shuffle
//! (ShuffleNet V1 and V2).

use super::elementwise::zip_map;
use super::{expect_rank, Tensor};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::rc::Rc;

impl Tensor {
    /// `min(max(x, 0), 6)` element-wise (PyTorch's `F.relu6`). NaN stays NaN; the gradient
    /// passes where `0 < x < 6`, as in PyTorch's `hardtanh` backward.
    pub fn relu6(&self) -> Tensor {
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let out = zip_map(&self.data, &self.data, |x, _| {
            if !(x <= 0.0) {
                if x > 6.0 {
                    6.0
                } else {
                    x
                }
            } else {
                0.0
            }
        });
        let x = self.data.clone();
        Tensor::constant(self.shape.clone(), Rc::new(out))
            .record(&[self], move |g, _| vec![Some(zip_map(g, &x, |g, x| if x > 0.0 && x < 6.0 { g } else { 0.0 }))])
    }

    /// Channel shuffle (PyTorch's `nn.ChannelShuffle(groups)`, ShuffleNet's `ShuffleBlock`):
    /// `[n, c, h, w]` viewed as `[n, groups, c / groups, h, w]`, the two channel dims
    /// swapped. Output channel `k * groups + g` is input channel `g * (c / groups) + k`.
    ///
    /// Errors: a rank other than 4, `groups` 0 or not dividing the channels.
    pub fn channel_shuffle(&self, groups: usize) -> Result<Tensor> {
        expect_rank("channel_shuffle", self, 4)?;
        let c = self.shape[1];
        if groups == 0 || c % groups != 0 {
            return Err(Error::invalid("channel_shuffle", format!("groups = {groups} must divide the channels ({c})")));
        }
        let (per, plane) = (c / groups, self.shape[2] * self.shape[3]);
        // output channel j reads input channel source(j); the gradient goes the other way
        let source = move |j: usize| (j % groups) * per + j / groups;
        let out = permute_planes(&self.data, c, plane, source);
        Ok(Tensor::constant(self.shape.clone(), Rc::new(out)).record(&[self], move |g, _| {
            let target = move |i: usize| (i % per) * groups + i / per;
            vec![Some(permute_planes(g, c, plane, target))]
        }))
    }
}

/// `out[b, j] = x[b, source(j)]` for planes of `plane` values, `c` channels per image.
fn permute_planes(x: &[f32], c: usize, plane: usize, source: impl Fn(usize) -> usize + Sync) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    if plane == 0 || c == 0 {
        return out;
    }
    out.par_chunks_mut(plane).with_min_len((4096 / plane).max(1)).enumerate().for_each(|(p, o)| {
        let (b, j) = (p / c, p % c);
        o.copy_from_slice(&x[(b * c + source(j)) * plane..][..plane]);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::check;

    #[test]
    fn relu6_values_and_gradient() {
        let x = Tensor::from_vec(vec![-1.0, 0.5, 5.5, 7.0, f32::NAN], &[5]).unwrap();
        let y = x.relu6();
        assert_eq!(&y.data()[..4], &[0.0, 0.5, 5.5, 6.0]);
        assert!(y.data()[4].is_nan());
        check(&[(vec![-1.0, 0.5, 5.5, 7.0, 3.0, -0.3], vec![2, 3])], |v| Ok(v[0].relu6()));
    }

    /// PyTorch's definition: view `[n, g, c / g, h, w]`, swap dims 1 and 2.
    #[test]
    fn channel_shuffle_is_the_view_and_transpose() {
        let (n, c, hw, g) = (2, 6, 2, 3);
        let x: Vec<f32> = (0..n * c * hw).map(|v| v as f32).collect();
        let y = Tensor::from_vec(x.clone(), &[n, c, 1, hw]).unwrap().channel_shuffle(g).unwrap();
        for b in 0..n {
            for gi in 0..g {
                for k in 0..c / g {
                    for p in 0..hw {
                        let want = x[(b * c + gi * (c / g) + k) * hw + p];
                        assert_eq!(y.data()[(b * c + k * g + gi) * hw + p], want);
                    }
                }
            }
        }
        check(&[(x, vec![n, c, 1, hw])], |v| v[0].channel_shuffle(2));
        let e = Tensor::zeros(&[1, 6, 2, 2]).channel_shuffle(4).unwrap_err().to_string();
        assert!(e.contains("groups = 4") && e.contains("(6)"), "{e}");
    }
}
