//! Losses on logits: cross-entropy, Hinton knowledge distillation (KD) and weighted soft labels (WSL).
//!
//! Shapes: `b` = batch, `c` = classes; logits are `[b, c]`, labels `[b]` class indices.
//!
//! - cross-entropy: `mean_i ce_eps(s_i, y_i)`, where `ce_eps(s, y) = -sum_k q_k log_softmax(s)_k`
//!   with the smoothed target `q = (1 - eps) onehot(y) + eps / c` (PyTorch's
//!   `F.cross_entropy(..., label_smoothing=eps)`)
//! - KD: `ce_weight * mean_i ce_eps(s_i, y_i) + alpha * temperature^2 * mean_i m_i soft_i`
//! - WSL (Zhou et al., ICLR 2021): the same with each soft term weighted by
//!   `w_i = 1 - exp(-max(ce(s_i, y_i) / (ce(t_i, y_i) + 1e-7), 0))`, computed without gradient
//!   from the *unsmoothed* cross-entropies of the student and the teacher, as in the method
//!
//! where `soft_i = -sum_k softmax(t_i / temperature)_k log_softmax(s_i / temperature)_k` and `m_i`
//! is an optional per-sample weight or keep-mask (1 when absent) used for sample filtering.
//! [`terms`] computes the per-sample parts once; [`LossTerms::combine`] weighs them by a filter.
//! `ce_weight` is 1 in the paper; it maps other codebases' conventions onto this one (torchdistill's
//! `(1 - a) CE + a T^2 KL` is `ce_weight = 1 - a, alpha = a`; RepDistiller's `gamma CE + alpha KL`
//! is `ce_weight = gamma`). Internals are computed in f64 and rounded once.

use crate::error::{Error, Result};
use crate::tensor::softmax64::{softmax_row, sum_lanes};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::rc::Rc;

/// Which distillation loss to use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Cross-entropy on the labels only (a student trained from scratch, or a teacher).
    CrossEntropy { label_smoothing: f32 },
    /// Hinton KD: cross-entropy (weighted by `ce_weight`, optionally label-smoothed) plus the
    /// temperature-scaled soft cross-entropy to the teacher.
    Kd { temperature: f32, alpha: f32, label_smoothing: f32, ce_weight: f32 },
    /// Weighted soft labels: KD with each sample's soft term weighted by the student/teacher CE ratio.
    Wsl { temperature: f32, alpha: f32, label_smoothing: f32, ce_weight: f32 },
}

impl Loss {
    /// Hinton KD as in the WSL paper: `CE + alpha * temperature^2 * soft`.
    pub fn kd(temperature: f32, alpha: f32) -> Loss {
        Loss::Kd { temperature, alpha, label_smoothing: 0.0, ce_weight: 1.0 }
    }

    /// WSL as in the paper: `CE + alpha * temperature^2 * mean(w * soft)`.
    pub fn wsl(temperature: f32, alpha: f32) -> Loss {
        Loss::Wsl { temperature, alpha, label_smoothing: 0.0, ce_weight: 1.0 }
    }

    /// The same loss at another temperature and alpha (a schedule's value for one step); the
    /// cross-entropy is unchanged.
    pub fn at(self, temperature: f32, alpha: f32) -> Loss {
        match self {
            Loss::Kd { label_smoothing, ce_weight, .. } => Loss::Kd { temperature, alpha, label_smoothing, ce_weight },
            Loss::Wsl { label_smoothing, ce_weight, .. } => Loss::Wsl { temperature, alpha, label_smoothing, ce_weight },
            other => other,
        }
    }

    /// `(temperature, alpha)` of KD and WSL.
    pub fn soft(&self) -> Option<(f32, f32)> {
        match *self {
            Loss::Kd { temperature, alpha, .. } | Loss::Wsl { temperature, alpha, .. } => Some((temperature, alpha)),
            Loss::CrossEntropy { .. } => None,
        }
    }

    /// Whether the loss reads teacher logits.
    pub fn needs_teacher(&self) -> bool {
        !matches!(self, Loss::CrossEntropy { .. })
    }
}

/// Per-sample parts of a loss, for analysis and filtering. Each vector has one entry per sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossParts {
    /// Student cross-entropy on the label at temperature 1.
    pub ce_student: Vec<f32>,
    /// Teacher cross-entropy on the label at temperature 1 (empty without a teacher).
    pub ce_teacher: Vec<f32>,
    /// The weight applied to each soft term (WSL's `w_i`, 1 for KD; empty without a teacher).
    pub weight: Vec<f32>,
    /// The soft cross-entropy `soft_i` at the temperature (empty without a teacher).
    pub soft: Vec<f32>,
}

impl LossParts {
    /// Regularization samples: the student already beats the teacher on the label (`ce_s < ce_t`).
    pub fn regularization_mask(&self) -> Vec<bool> {
        self.ce_student.iter().zip(&self.ce_teacher).map(|(s, t)| s < t).collect()
    }
}

/// A scalar loss tensor (differentiable w.r.t. the student logits) with its per-sample parts.
#[derive(Debug, Clone)]
pub struct LossOutput {
    pub loss: Tensor,
    pub parts: LossParts,
}

/// Per-row buffers: log-probabilities and probabilities of the student and the teacher.
struct Scratch {
    log_s: Vec<f64>,
    s: Vec<f64>,
    log_t: Vec<f64>,
    t: Vec<f64>,
}

impl Scratch {
    fn new(c: usize) -> Self {
        Scratch { log_s: vec![0.0; c], s: vec![0.0; c], log_t: vec![0.0; c], t: vec![0.0; c] }
    }
}

/// One sample's terms before sample weights.
#[derive(Debug, Clone, Copy, Default)]
struct Row {
    /// `ce_weight * ce_eps(s_i, y_i)`.
    hard: f64,
    ce_student: f64,
    ce_teacher: f64,
    /// WSL's `w_i` (1 for KD).
    weight: f64,
    soft: f64,
}

/// One sample's terms, with the gradient of its hard term (of the batch mean) into
/// `hard_grad` and `softmax(s/T) - softmax(t/T)` into `soft_diff` (with a teacher).
#[allow(clippy::too_many_arguments)]
fn row_terms(
    s_row: &[f32],
    t_row: Option<&[f32]>,
    label: usize,
    k: &Settings,
    b: usize,
    x: &mut Scratch,
    hard_grad: &mut [f64],
    soft_diff: &mut [f64],
) -> Row {
    let Settings { smoothing, ce_weight, temperature, weighted, .. } = *k;
    let c = s_row.len();
    // hard: (smoothed) cross-entropy at temperature 1, weighted by ce_weight
    softmax_row(s_row, 1.0, &mut x.log_s, &mut x.s);
    let ce_student = -x.log_s[label];
    let smooth_term = -sum_lanes(x.log_s.iter().copied()) / c as f64;
    let hard = ce_weight * ((1.0 - smoothing) * ce_student + smoothing * smooth_term);
    for (k, g) in hard_grad.iter_mut().enumerate() {
        *g = ce_weight * (x.s[k] - ((1.0 - smoothing) * (k == label) as u8 as f64 + smoothing / c as f64)) / b as f64;
    }
    let mut row = Row { hard, ce_student, ..Row::default() };
    if let Some(t_row) = t_row {
        // soft: temperature-scaled cross-entropy to the teacher; WSL's weight from the
        // unsmoothed cross-entropies at temperature 1
        softmax_row(t_row, 1.0, &mut x.log_t, &mut x.t);
        let ce_t = -x.log_t[label];
        let w = if weighted { 1.0 - (-(ce_student / (ce_t + 1e-7)).max(0.0)).exp() } else { 1.0 };
        softmax_row(s_row, temperature, &mut x.log_s, &mut x.s);
        softmax_row(t_row, temperature, &mut x.log_t, &mut x.t);
        let soft = -sum_lanes(x.t.iter().zip(&x.log_s).map(|(t, s)| t * s));
        // d soft / d s_k = (softmax(s/T)_k - softmax(t/T)_k) / T
        soft_diff.iter_mut().zip(x.s.iter().zip(&x.t)).for_each(|(d, (s, t))| *d = s - t);
        (row.ce_teacher, row.weight, row.soft) = (ce_t, w, soft);
    }
    row
}

pub(crate) fn validate(
    student: &Tensor,
    teacher: Option<&Tensor>,
    labels: &[usize],
    sample_weight: Option<&[f32]>,
) -> Result<(usize, usize)> {
    let s = student.shape();
    if s.len() != 2 || s[1] == 0 {
        return Err(Error::shape("loss", "student logits [batch, classes]", s));
    }
    let (b, c) = (s[0], s[1]);
    if labels.len() != b {
        return Err(Error::shape("loss", format!("{b} labels for logits {s:?}"), labels.len()));
    }
    if let Some(bad) = labels.iter().find(|&&y| y >= c) {
        return Err(Error::invalid("loss", format!("label {bad} is out of range for {c} classes")));
    }
    if let Some(t) = teacher {
        if t.shape() != s {
            return Err(Error::shape("loss", format!("teacher logits {s:?} like the student's"), t.shape()));
        }
    }
    if let Some(w) = sample_weight {
        if w.len() != b {
            return Err(Error::shape("loss", format!("{b} sample weights"), w.len()));
        }
    }
    if b == 0 {
        return Err(Error::shape("loss", "a non-empty batch", s));
    }
    Ok((b, c))
}

/// A loss's coefficients in f64, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub smoothing: f64,
    pub ce_weight: f64,
    pub temperature: f64,
    pub alpha: f64,
    /// WSL's per-sample weight on the soft term.
    pub weighted: bool,
}

/// The coefficients of `loss`, checked: label smoothing in [0, 1), a positive finite
/// temperature, finite non-negative alpha and ce_weight.
pub(crate) fn settings(loss: Loss) -> Result<Settings> {
    let (smoothing, ce_weight, temperature, alpha, weighted) = match loss {
        Loss::CrossEntropy { label_smoothing } => (label_smoothing, 1.0, 1.0, 0.0, false),
        Loss::Kd { temperature, alpha, label_smoothing, ce_weight } => (label_smoothing, ce_weight, temperature, alpha, false),
        Loss::Wsl { temperature, alpha, label_smoothing, ce_weight } => (label_smoothing, ce_weight, temperature, alpha, true),
    };
    if !(0.0..1.0).contains(&smoothing) {
        return Err(Error::invalid("loss", format!("label_smoothing {smoothing} must be in [0, 1)")));
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::invalid("loss", format!("temperature {temperature} must be positive")));
    }
    if !(alpha >= 0.0 && alpha.is_finite()) {
        return Err(Error::invalid("loss", format!("alpha {alpha} must be finite and >= 0")));
    }
    if !(ce_weight >= 0.0 && ce_weight.is_finite()) {
        return Err(Error::invalid("loss", format!("ce_weight {ce_weight} must be finite and >= 0")));
    }
    let f = |v: f32| v as f64;
    Ok(Settings { smoothing: f(smoothing), ce_weight: f(ce_weight), temperature: f(temperature), alpha: f(alpha), weighted })
}

/// Mean cross-entropy with optional label smoothing.
pub fn cross_entropy(logits: &Tensor, labels: &[usize], label_smoothing: f32) -> Result<LossOutput> {
    compute(logits, None, labels, Loss::CrossEntropy { label_smoothing }, None)
}

/// The per-sample terms of `loss` on a batch, before sample weights: its [`LossParts`] (for
/// filters and logs) and what [`LossTerms::combine`] needs to weigh them into a loss without
/// computing them again. `teacher` is required for KD and WSL (and ignored by CE).
pub fn terms(student: &Tensor, teacher: Option<&Tensor>, labels: &[usize], loss: Loss) -> Result<LossTerms> {
    let teacher =
        if loss.needs_teacher() { Some(teacher.ok_or_else(|| Error::invalid("loss", "KD and WSL need teacher logits"))?) } else { None };
    let (b, c) = validate(student, teacher, labels, None)?;
    let settings = settings(loss)?;
    // one task per block of rows, each row on its own: the result does not depend on the thread count
    let (s_data, t_data): (&[f32], Option<&[f32]>) = (student.data(), teacher.map(|t| t.data()));
    let mut hard_grad = vec![0.0f64; b * c];
    let mut soft_diff = vec![0.0f64; if teacher.is_some() { b * c } else { 0 }];
    let diff_rows: Vec<&mut [f64]> =
        if teacher.is_some() { soft_diff.chunks_mut(c).collect() } else { (0..b).map(|_| <&mut [f64]>::default()).collect() };
    let rows: Vec<Row> = hard_grad
        .par_chunks_mut(c)
        .zip(diff_rows)
        .enumerate()
        .with_min_len((4096 / c).max(1))
        .map_init(
            || Scratch::new(c),
            |scratch, (i, (hard_grad, soft_diff))| {
                let s_row = &s_data[i * c..(i + 1) * c];
                let t_row = t_data.map(|t| &t[i * c..(i + 1) * c]);
                row_terms(s_row, t_row, labels[i], &settings, b, scratch, hard_grad, soft_diff)
            },
        )
        .collect();
    let mut parts = LossParts { ce_student: rows.iter().map(|r| r.ce_student as f32).collect(), ..LossParts::default() };
    if teacher.is_some() {
        parts.ce_teacher = rows.iter().map(|r| r.ce_teacher as f32).collect();
        parts.weight = rows.iter().map(|r| r.weight as f32).collect();
        parts.soft = rows.iter().map(|r| r.soft as f32).collect();
    }
    Ok(LossTerms { parts, settings, shape: (b, c), distilled: teacher.is_some(), rows, hard_grad, soft_diff })
}

/// A loss's per-sample terms on one batch ([`terms`]), ready to be weighed per sample.
#[derive(Debug, Clone)]
pub struct LossTerms {
    pub parts: LossParts,
    settings: Settings,
    shape: (usize, usize),
    distilled: bool,
    rows: Vec<Row>,
    /// `[b, c]`: the gradient of each sample's hard term (of the batch mean).
    hard_grad: Vec<f64>,
    /// `[b, c]` with a teacher: `softmax(s/T) - softmax(t/T)`.
    soft_diff: Vec<f64>,
}

impl LossTerms {
    /// The loss with each soft term scaled by `sample_weight` (a filter's keep-mask or weights;
    /// 1 when absent): `mean_i (hard_i + alpha * T^2 * w_i * m_i * soft_i)`, differentiable
    /// w.r.t. `student`, the logits the terms were computed from.
    pub fn combine(&self, student: &Tensor, sample_weight: Option<&[f32]>) -> Result<LossOutput> {
        let (b, c) = self.shape;
        if student.shape() != [b, c] {
            return Err(Error::shape("loss", format!("the logits [{b}, {c}] the terms came from"), student.shape()));
        }
        if let Some(w) = sample_weight {
            if w.len() != b {
                return Err(Error::shape("loss", format!("{b} sample weights"), w.len()));
            }
        }
        let Settings { temperature, alpha, .. } = self.settings;
        let scale = alpha * temperature * temperature / b as f64;
        let mut grad = vec![0.0f32; b * c];
        let totals: Vec<f64> = grad
            .par_chunks_mut(c)
            .enumerate()
            .with_min_len((4096 / c).max(1))
            .map(|(i, grad)| {
                let (row, hard_grad) = (&self.rows[i], &self.hard_grad[i * c..(i + 1) * c]);
                if !self.distilled {
                    grad.iter_mut().zip(hard_grad).for_each(|(o, g)| *o = *g as f32);
                    return row.hard;
                }
                let m = sample_weight.map_or(1.0, |m| m[i] as f64);
                let w = row.weight;
                for ((o, g), d) in grad.iter_mut().zip(hard_grad).zip(&self.soft_diff[i * c..(i + 1) * c]) {
                    *o = (g + scale * w * m * d / temperature) as f32;
                }
                row.hard + alpha * temperature * temperature * w * m * row.soft
            })
            .collect();
        // summed in row order, so the value does not depend on the thread count
        let value = (totals.iter().sum::<f64>() / b as f64) as f32;
        let loss = Tensor::constant(vec![1], Rc::new(vec![value]))
            .record(&[student], move |g, _| vec![Some(grad.iter().map(|v| v * g[0]).collect())]);
        Ok(LossOutput { loss, parts: self.parts.clone() })
    }
}

/// Evaluates `loss` on a batch: [`terms`], then [`LossTerms::combine`] with `sample_weight`
/// scaling each sample's soft term (a keep-mask of 0/1 filters samples).
pub fn compute(
    student: &Tensor,
    teacher: Option<&Tensor>,
    labels: &[usize],
    loss: Loss,
    sample_weight: Option<&[f32]>,
) -> Result<LossOutput> {
    terms(student, teacher, labels, loss)?.combine(student, sample_weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gradcheck::check_tol;
    use crate::tensor::softmax64::log_softmax_rows;

    const STUDENT: [f32; 20] = [
        0.251, -0.264, 1.281, 0.21, -1.071, 0.723, 2.608, 1.894, -1.407, -2.531, -1.247, 0.083, -4.65, -0.438, -2.492, -1.465, -1.089,
        -0.633, 0.823, 2.085,
    ];
    const TEACHER: [f32; 20] = [
        -0.386, 4.099, -1.996, 1.055, 2.71, 0.282, -2.23, -2.765, -1.373, 0.661, -3.029, -0.628, -0.478, 1.623, 0.644, 1.066, -1.961,
        -0.389, 2.352, 4.48,
    ];
    const LABELS: [usize; 4] = [3, 2, 1, 1];

    fn rel(a: f32, b: f64) -> f64 {
        ((a as f64 - b) / b).abs()
    }

    // The reference values are the foundation issue's acceptance vector (T = 4, alpha = 2.25).
    // PyTorch:
    //   ce_s = F.cross_entropy(s, y, reduction="none"); ce_t = F.cross_entropy(t, y, reduction="none")
    //   w = 1 - torch.exp(-torch.clamp(ce_s / (ce_t + 1e-7), min=0))
    //   soft = -(F.softmax(t / 4, 1) * F.log_softmax(s / 4, 1)).sum(1)
    //   loss = ce_s.mean() + 2.25 * 16 * (w * soft).mean()
    #[test]
    fn wsl_matches_the_reference_vector() {
        let s = Tensor::variable(STUDENT.to_vec(), &[4, 5]).unwrap();
        let t = Tensor::from_vec(TEACHER.to_vec(), &[4, 5]).unwrap();
        let out = compute(&s, Some(&t), &LABELS, Loss::wsl(4.0, 2.25), None).unwrap();
        assert!(rel(out.loss.item().unwrap(), 21.2468577935) < 1e-5, "{}", out.loss.item().unwrap());
        let want_w = [0.4134486354, 0.2597611456, 0.2160929061, 0.4141967555];
        for (w, want) in out.parts.weight.iter().zip(want_w) {
            assert!(rel(*w, want) < 1e-5, "{w} vs {want}");
        }
        let grads = out.loss.backward().unwrap();
        let g = grads.get(s.leaf_key().unwrap()).unwrap();
        let want_g = [0.123473166, -0.1481994463, 0.2964540621, -0.1786332367, -0.093094545];
        for (a, b) in g[..5].iter().zip(want_g) {
            assert!(rel(*a, b) < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn kd_matches_the_reference_vector() {
        let s = Tensor::from_vec(STUDENT.to_vec(), &[4, 5]).unwrap();
        let t = Tensor::from_vec(TEACHER.to_vec(), &[4, 5]).unwrap();
        let out = compute(&s, Some(&t), &LABELS, Loss::kd(4.0, 2.25), None).unwrap();
        assert!(rel(out.loss.item().unwrap(), 62.1352537458) < 1e-5, "{}", out.loss.item().unwrap());
        assert_eq!(out.parts.weight, vec![1.0; 4]);
    }

    // Label smoothing and ce_weight on KD and WSL, float64 reference in pure Python (the test
    // vector above, eps = 0.2, T = 4, alpha = 2.25):
    //   q = (1 - eps) onehot(y) + eps / c; hard = -sum_k q_k log_softmax(s)_k
    //   w from the unsmoothed ce_s, ce_t; loss = mean(ce_weight * hard + alpha T^2 w soft)
    #[test]
    fn label_smoothing_and_ce_weight_reach_kd_and_wsl() {
        let t = Tensor::from_vec(TEACHER.to_vec(), &[4, 5]).unwrap();
        let smooth = |l: Loss, eps: f32, cw: f32| match l {
            Loss::Kd { temperature, alpha, .. } => Loss::Kd { temperature, alpha, label_smoothing: eps, ce_weight: cw },
            Loss::Wsl { temperature, alpha, .. } => Loss::Wsl { temperature, alpha, label_smoothing: eps, ce_weight: cw },
            other => other,
        };
        let cases = [
            (smooth(Loss::wsl(4.0, 2.25), 0.2, 1.0), 21.375047649624644, [0.11347316389169321, -0.15819944509693487, 0.2864540644810809]),
            (smooth(Loss::kd(4.0, 2.25), 0.2, 1.0), 62.26344380070323, [0.22558960769587835, -0.40612095050941105, 0.5304134005967945]),
            (smooth(Loss::kd(4.0, 2.25), 0.2, 0.1), 60.532319291902915, [0.19458958803181392, -0.4210209863853235, 0.42737070865579463]),
        ];
        for (loss, want, want_g) in cases {
            let s = Tensor::variable(STUDENT.to_vec(), &[4, 5]).unwrap();
            let out = compute(&s, Some(&t), &LABELS, loss, None).unwrap();
            assert!(rel(out.loss.item().unwrap(), want) < 1e-6, "{loss:?}: {} vs {want}", out.loss.item().unwrap());
            let g = out.loss.backward().unwrap();
            for (a, b) in g.get(s.leaf_key().unwrap()).unwrap().iter().zip(want_g) {
                assert!(rel(*a, b) < 1e-5, "{loss:?}: {a} vs {b}");
            }
        }
        // WSL's weight uses the unsmoothed cross-entropies: the same with and without smoothing
        let s = Tensor::from_vec(STUDENT.to_vec(), &[4, 5]).unwrap();
        let plain = compute(&s, Some(&t), &LABELS, Loss::wsl(4.0, 2.25), None).unwrap().parts;
        let smoothed = compute(&s, Some(&t), &LABELS, smooth(Loss::wsl(4.0, 2.25), 0.2, 1.0), None).unwrap().parts;
        assert_eq!(plain, smoothed);
        // out-of-range coefficients are refused
        for bad in
            [smooth(Loss::kd(4.0, 1.0), 1.0, 1.0), smooth(Loss::kd(4.0, 1.0), 0.0, -1.0), Loss::kd(4.0, f32::NAN), Loss::wsl(4.0, -2.0)]
        {
            assert!(compute(&s, Some(&t), &LABELS, bad, None).is_err(), "{bad:?}");
        }
    }

    // PyTorch: F.cross_entropy(s, y) = 2.6620..., with label_smoothing=0.1 the smoothed target is used.
    #[test]
    fn cross_entropy_value_and_smoothing() {
        let s = Tensor::from_vec(STUDENT.to_vec(), &[4, 5]).unwrap();
        let plain = cross_entropy(&s, &LABELS, 0.0).unwrap();
        let mean_ce: f32 = plain.parts.ce_student.iter().sum::<f32>() / 4.0;
        assert!((plain.loss.item().unwrap() - mean_ce).abs() < 1e-6);
        // by hand: smoothing mixes in the mean of -log p over classes
        let lp = log_softmax_rows(&STUDENT, 5, 1.0);
        let uniform: f64 = (0..4).map(|i| -lp[i * 5..i * 5 + 5].iter().sum::<f64>() / 5.0).sum::<f64>() / 4.0;
        let smooth = cross_entropy(&s, &LABELS, 0.1).unwrap();
        let want = 0.9 * mean_ce as f64 + 0.1 * uniform;
        assert!(rel(smooth.loss.item().unwrap(), want) < 1e-6);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let t = Tensor::from_vec(TEACHER.to_vec(), &[4, 5]).unwrap();
        let mask = [1.0, 0.0, 1.0, 0.5];
        for loss in [Loss::CrossEntropy { label_smoothing: 0.1 }, Loss::kd(4.0, 2.25), Loss::wsl(2.0, 2.5)] {
            // WSL's weight carries no gradient by definition, so check against a fixed-weight objective:
            // the finite difference is taken with the weights frozen at the unperturbed point.
            let base = compute(&Tensor::from_vec(STUDENT.to_vec(), &[4, 5]).unwrap(), Some(&t), &LABELS, loss, Some(&mask)).unwrap();
            let frozen: Vec<f32> = base.parts.weight.iter().zip(mask).map(|(w, m)| w * m).collect();
            let as_kd = match loss {
                Loss::Wsl { temperature, alpha, label_smoothing, ce_weight } => Loss::Kd { temperature, alpha, label_smoothing, ce_weight },
                other => other,
            };
            let m = if matches!(loss, Loss::Wsl { .. }) { frozen.clone() } else { mask.to_vec() };
            check_tol(&[(STUDENT.to_vec(), vec![4, 5])], 2e-3, |v| Ok(compute(&v[0], Some(&t), &LABELS, as_kd, Some(&m))?.loss));
            // and the WSL analytic gradient equals that frozen-weight KD gradient
            if matches!(loss, Loss::Wsl { .. }) {
                let s1 = Tensor::variable(STUDENT.to_vec(), &[4, 5]).unwrap();
                let s2 = Tensor::variable(STUDENT.to_vec(), &[4, 5]).unwrap();
                let g1 = compute(&s1, Some(&t), &LABELS, loss, Some(&mask)).unwrap().loss.backward().unwrap();
                let g2 = compute(&s2, Some(&t), &LABELS, as_kd, Some(&frozen)).unwrap().loss.backward().unwrap();
                let (a, b) = (g1.get(s1.leaf_key().unwrap()).unwrap(), g2.get(s2.leaf_key().unwrap()).unwrap());
                a.iter().zip(b).for_each(|(a, b)| assert!((a - b).abs() < 1e-6));
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let s = Tensor::from_vec(STUDENT.to_vec(), &[4, 5]).unwrap();
        let t = Tensor::from_vec(TEACHER.to_vec(), &[4, 5]).unwrap();
        assert!(compute(&s, None, &LABELS, Loss::kd(4.0, 1.0), None).is_err());
        assert!(cross_entropy(&s, &[0, 1, 2], 0.0).unwrap_err().to_string().contains("3"));
        assert!(cross_entropy(&s, &[0, 1, 2, 9], 0.0).unwrap_err().to_string().contains("label 9"));
        assert!(compute(&s, Some(&t), &LABELS, Loss::wsl(0.0, 1.0), None).is_err());
        let t_bad = Tensor::zeros(&[4, 6]);
        assert!(compute(&s, Some(&t_bad), &LABELS, Loss::kd(1.0, 1.0), None).is_err());
    }

    #[test]
    fn regularization_mask_compares_student_and_teacher_ce() {
        let s = Tensor::from_vec(STUDENT.to_vec(), &[4, 5]).unwrap();
        let t = Tensor::from_vec(TEACHER.to_vec(), &[4, 5]).unwrap();
        let out = compute(&s, Some(&t), &LABELS, Loss::kd(4.0, 2.25), None).unwrap();
        let want: Vec<bool> = out.parts.ce_student.iter().zip(&out.parts.ce_teacher).map(|(a, b)| a < b).collect();
        assert_eq!(out.parts.regularization_mask(), want);
    }
}
