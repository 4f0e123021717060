//! The built-in losses as tensor functions: `cross_entropy`, `kd_loss`, `wsl_loss`,
//! `loss_parts` (the same code `fit` and `distill` train with).

use super::convert::{err, lib, Res};
use super::hooks::vec_tensor;
use crate::def;
use crate::loss::{self, Loss};
use crate::tensor::Tensor;
use rhai::{Dynamic, Engine, Map};

/// The class indices `y [b]` for logits `s [b, c]`: the shapes must match, each label in 0..c.
fn labels_of(s: &Tensor, y: &Tensor, op: &'static str) -> Res<Vec<usize>> {
    let [b, c] = s.shape()[..] else { return err(format!("{op}: logits must be [batch, classes], got shape {:?}", s.shape())) };
    if y.shape() != [b] {
        return err(format!(
            "{op}: labels must have shape [{b}] (one class index per row of the logits {:?}), got {:?}",
            s.shape(),
            y.shape()
        ));
    }
    lib(y.labels(op, c))
}

fn builtin_loss(s: &Tensor, t: &Tensor, y: &Tensor, loss: Loss) -> Res<loss::LossOutput> {
    let labels = labels_of(s, y, "loss")?;
    lib(loss::compute(s, Some(t), &labels, loss, None))
}

pub fn register(engine: &mut Engine) {
    def!(
        engine,
        "cross_entropy",
        "Mean cross-entropy of logits `[b, c]` against labels `[b]` (differentiable).\n\
        ```rhai\n\
        let l = cross_entropy(tensor([[1.0, 2.0]]), tensor([1]));\n\
        ```",
        |s: Tensor, y: Tensor| {
            let labels = labels_of(&s, &y, "cross_entropy")?;
            lib(loss::cross_entropy(&s, &labels, 0.0)).map(|o| o.loss)
        }
    );
    def!(
        engine,
        "kd_loss",
        "Hinton KD as in the WSL paper: `CE + alpha * T^2 * soft` as a scalar tensor (built in). The CE term has weight 1:\n\
        RepDistiller's `alpha: 0.9` is not this alpha (see the README's loss conventions).\n\
        ```rhai\n\
        let l = kd_loss(tensor([[1.0, 2.0]]), tensor([[2.0, 1.0]]), tensor([1]), 4.0, 2.25);\n\
        ```",
        |s: Tensor, t: Tensor, y: Tensor, temperature: f64, alpha: f64| {
            builtin_loss(&s, &t, &y, Loss::kd(temperature as f32, alpha as f32)).map(|o| o.loss)
        }
    );
    def!(
        engine,
        "wsl_loss",
        "Weighted soft labels (Zhou et al. 2021) as a scalar tensor (built in).\n\
        ```rhai\n\
        let l = wsl_loss(tensor([[1.0, 2.0]]), tensor([[2.0, 1.0]]), tensor([1]), 4.0, 2.25);\n\
        ```",
        |s: Tensor, t: Tensor, y: Tensor, temperature: f64, alpha: f64| {
            builtin_loss(&s, &t, &y, Loss::wsl(temperature as f32, alpha as f32)).map(|o| o.loss)
        }
    );
    def!(
        engine,
        "loss_parts",
        "Per-sample parts at a temperature: #{ ce_student, ce_teacher, wsl_weight, soft, regularization }.\n\
        ```rhai\n\
        let p = loss_parts(tensor([[1.0, 2.0]]), tensor([[2.0, 1.0]]), tensor([1]), 4.0);\n\
        ```",
        |s: Tensor, t: Tensor, y: Tensor, temperature: f64| {
            let o = builtin_loss(&s.detach(), &t, &y, Loss::wsl(temperature as f32, 1.0))?;
            let v = |x: &[f32]| Dynamic::from(vec_tensor(x));
            let mut m = Map::new();
            m.insert("ce_student".into(), v(&o.parts.ce_student));
            m.insert("ce_teacher".into(), v(&o.parts.ce_teacher));
            m.insert("wsl_weight".into(), v(&o.parts.weight));
            m.insert("soft".into(), v(&o.parts.soft));
            let reg: Vec<f32> = o.parts.regularization_mask().iter().map(|r| *r as u8 as f32).collect();
            m.insert("regularization".into(), v(&reg));
            Ok::<_, Box<rhai::EvalAltResult>>(m)
        }
    );
}
