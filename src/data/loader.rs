//! Seeded mini-batches, with random-crop-with-padding and horizontal-flip augmentation for images.

use super::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Image augmentation applied per sample when batching a training set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Zero padding on each side before a random crop back to the original size (0: no crop).
    pub crop_padding: usize,
    /// Flip left-right with probability 1/2.
    pub horizontal_flip: bool,
}

/// One mini-batch: inputs `[b, ...sample_shape]`, labels, and the samples' indices in the data set.
pub struct Batch {
    pub x: Tensor,
    pub labels: Vec<usize>,
    pub indices: Vec<usize>,
}

/// Iterates over a data set in mini-batches (the last one may be smaller).
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
    augment: Option<(Augment, Rng)>,
}

impl<'a> Batches<'a> {
    /// Batches in a seeded random order (`shuffle = Some(rng)`) or in data set order.
    pub fn new(data: &'a Dataset, batch_size: usize, shuffle: Option<&mut Rng>, augment: Option<Augment>) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batches", "batch size must be at least 1"));
        }
        if augment.is_some() && data.sample_shape.len() != 3 {
            return Err(Error::invalid(
                "batches",
                format!("augmentation needs image samples [c, h, w], {} has {:?}", data.name, data.sample_shape),
            ));
        }
        if let Some(a) = &augment {
            let (h, w) = (data.sample_shape[1], data.sample_shape[2]);
            if a.crop_padding > h.min(w) {
                return Err(Error::invalid(
                    "augment",
                    format!("crop_padding {} is larger than the {h}x{w} images of {}; CIFAR uses 4", a.crop_padding, data.name),
                ));
            }
        }
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut aug_rng = None;
        if let Some(rng) = shuffle {
            rng.shuffle(&mut order);
            aug_rng = Some(rng.fork());
        }
        let augment = augment.map(|a| (a, aug_rng.unwrap_or_else(|| Rng::new(0))));
        Ok(Batches { data, order, batch_size, pos: 0, augment })
    }

    /// Number of batches in one pass.
    pub fn num_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }
}

fn augment_sample(src: &[f32], shape: &[usize], a: &Augment, rng: &mut Rng, dst: &mut [f32]) {
    let (c, h, w) = (shape[0], shape[1], shape[2]);
    let p = a.crop_padding as isize;
    let (dy, dx) = if p > 0 { (rng.below(2 * p as usize + 1) as isize - p, rng.below(2 * p as usize + 1) as isize - p) } else { (0, 0) };
    let flip = a.horizontal_flip && rng.below(2) == 1;
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let sy = y as isize + dy;
                let sx0 = if flip { (w - 1 - x) as isize } else { x as isize };
                let sx = sx0 + dx;
                dst[(ch * h + y) * w + x] = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                    src[(ch * h + sy as usize) * w + sx as usize]
                } else {
                    0.0
                };
            }
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let indices = self.order[self.pos..end].to_vec();
        self.pos = end;
        let d = self.data.sample_len();
        let mut x = vec![0.0; indices.len() * d];
        for (row, &i) in indices.iter().enumerate() {
            let src = &self.data.features[i * d..(i + 1) * d];
            let dst = &mut x[row * d..(row + 1) * d];
            match &mut self.augment {
                Some((a, rng)) => augment_sample(src, &self.data.sample_shape, a, rng, dst),
                None => dst.copy_from_slice(src),
            }
        }
        let mut shape = vec![indices.len()];
        shape.extend(&self.data.sample_shape);
        let x = Tensor::from_vec(x, &shape).expect("batch shape matches its data");
        Some(Batch { x, labels: indices.iter().map(|&i| self.data.labels[i]).collect(), indices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            name: "tiny".into(),
            features: (0..5 * 4).map(|v| v as f32).collect(),
            labels: vec![0, 1, 0, 1, 0],
            sample_shape: vec![1, 2, 2],
            classes: 2,
        }
    }

    #[test]
    fn batches_cover_every_sample_once_in_seeded_order() {
        let d = tiny();
        let mut r1 = Rng::new(3);
        let a: Vec<usize> = Batches::new(&d, 2, Some(&mut r1), None).unwrap().flat_map(|b| b.indices).collect();
        let mut r2 = Rng::new(3);
        let b: Vec<usize> = Batches::new(&d, 2, Some(&mut r2), None).unwrap().flat_map(|b| b.indices).collect();
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        let sizes: Vec<usize> = Batches::new(&d, 2, None, None).unwrap().map(|b| b.labels.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert!(Batches::new(&d, 0, None, None).is_err());
    }

    #[test]
    fn flip_and_crop_move_pixels() {
        let src = [1.0, 2.0, 3.0, 4.0];
        let mut dst = [0.0; 4];
        let mut rng = Rng::new(0);
        // flip only: find a draw that flips
        let flipped = (0..20).any(|_| {
            augment_sample(&src, &[1, 2, 2], &Augment { crop_padding: 0, horizontal_flip: true }, &mut rng, &mut dst);
            dst == [2.0, 1.0, 4.0, 3.0]
        });
        assert!(flipped);
        // crop with padding keeps values from the image or zero padding
        for _ in 0..20 {
            augment_sample(&src, &[1, 2, 2], &Augment { crop_padding: 1, horizontal_flip: false }, &mut rng, &mut dst);
            assert!(dst.iter().all(|v| [0.0, 1.0, 2.0, 3.0, 4.0].contains(v)));
        }
    }
}
