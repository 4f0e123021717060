//! Where a trainer runs the layers: on the CPU through the tape, or (with the `cuda` feature)
//! on the GPU through `crate::cuda`. On the GPU the logits come back to the CPU, where the
//! loss, filters and hooks run exactly as without CUDA; only the gradient of the logits goes back.

#[cfg(feature = "cuda")]
use crate::data::Batches;
use crate::data::Dataset;
use crate::devices::DeviceName;
use crate::error::Result;
use crate::loss::{self, Loss, LossOutput};
use crate::nn::{Mode, Model, Param};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::rng::Rng;
use crate::tensor::Tensor;

#[cfg(feature = "cuda")]
use crate::cuda::{
    model::{GpuModel, Tape},
    optim::GpuOptimizer,
    Cuda,
};

/// The student's logits for one batch, and what its backward pass needs.
pub(crate) struct Pass {
    pub logits: Tensor,
    #[cfg(feature = "cuda")]
    tape: Option<Tape>,
    /// The gradient of the logits from the GPU loss kernel (built-in losses on the GPU).
    #[cfg(feature = "cuda")]
    dlogits: Option<crate::cuda::Buf>,
}

/// A built-in loss's per-sample terms for one batch, before sample weights.
pub(crate) enum Terms {
    Cpu(loss::LossTerms),
    /// The GPU kernel's unweighted result (its gradient is on the device, in the pass).
    #[cfg(feature = "cuda")]
    Gpu(LossOutput),
}

impl Terms {
    pub fn parts(&self) -> &loss::LossParts {
        match self {
            Terms::Cpu(t) => &t.parts,
            #[cfg(feature = "cuda")]
            Terms::Gpu(out) => &out.parts,
        }
    }
}

#[cfg(feature = "cuda")]
impl Gpu<'_> {
    /// The loss kernel on the pass's device logits; its gradient stays on the device.
    fn loss(
        &mut self,
        pass: &mut Pass,
        teacher: Option<&Tensor>,
        labels: &[usize],
        kind: Loss,
        weights: Option<&[f32]>,
    ) -> Result<LossOutput> {
        let tape = pass.tape.as_ref().expect("a train-mode pass");
        let t = match teacher.filter(|_| kind.needs_teacher()) {
            Some(t) => Some(self.cuda.upload(t.data())?),
            None => None,
        };
        let (out, grad) = self.cuda.loss(&tape.logits, t.as_ref(), &pass.logits, teacher, labels, kind, weights)?;
        pass.dlogits = Some(grad);
        Ok(out)
    }
}

#[cfg(feature = "cuda")]
pub(crate) struct Gpu<'a> {
    cuda: std::rc::Rc<Cuda>,
    student: GpuModel<'a>,
    teacher: Option<GpuModel<'a>>,
    optimizer: GpuOptimizer,
}

pub(crate) enum Engine<'a> {
    Cpu(Optimizer, std::marker::PhantomData<&'a Model>),
    #[cfg(feature = "cuda")]
    Gpu(Box<Gpu<'a>>),
}

impl<'a> Engine<'a> {
    pub fn new(device: DeviceName, student: &'a Model, teacher: Option<&'a Model>, optimizer: &OptimizerConfig) -> Result<Self> {
        match device {
            DeviceName::Cpu => Ok(Engine::Cpu(Optimizer::new(optimizer.clone())?, std::marker::PhantomData)),
            #[cfg(feature = "cuda")]
            DeviceName::Cuda(n) => {
                let cuda = std::rc::Rc::new(Cuda::open(n)?);
                let teacher = match teacher {
                    Some(t) => Some(GpuModel::new(cuda.clone(), t)?),
                    None => None,
                };
                let student = GpuModel::new(cuda.clone(), student)?;
                Ok(Engine::Gpu(Box::new(Gpu { cuda, student, teacher, optimizer: GpuOptimizer::new(optimizer.clone())? })))
            }
            #[cfg(not(feature = "cuda"))]
            DeviceName::Cuda(n) => {
                let _ = (student, teacher);
                match crate::tensor::backend::Gpu::open(n) {
                    Err(e) => Err(e),
                    Ok(gpu) => match gpu {},
                }
            }
        }
    }

    /// The student's train-mode logits for a batch.
    pub fn forward(&mut self, student: &Model, x: &Tensor, rng: &mut Rng) -> Result<Pass> {
        match self {
            Engine::Cpu(..) => Ok(Pass {
                logits: student.forward(x, Mode::Train, rng)?,
                #[cfg(feature = "cuda")]
                tape: None,
                #[cfg(feature = "cuda")]
                dlogits: None,
            }),
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => {
                student.check_input(x)?;
                let (logits, tape) = g.student.forward_train(x.data(), x.shape(), rng)?;
                let logits = Tensor::variable(logits, &[x.shape()[0], student.classes()])?;
                Ok(Pass { logits, tape: Some(tape), dlogits: None })
            }
        }
    }

    /// The frozen teacher's eval-mode logits for a batch.
    pub fn teacher(&mut self, teacher: &Model, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        match self {
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) if g.teacher.is_some() => {
                teacher.check_input(x)?;
                let t = g.teacher.as_mut().expect("checked");
                Tensor::from_vec(t.forward(x.data(), x.shape(), false, rng)?, &[x.shape()[0], teacher.classes()])
            }
            _ => teacher.forward(x, Mode::Eval, rng),
        }
    }

    /// A built-in loss (CE, KD, WSL) on the student's logits, before sample weights: its
    /// per-sample parts, computed once ([`loss::terms`] on the CPU; on the GPU the loss kernel,
    /// which keeps the gradient on the device for [`Engine::step`]).
    pub fn loss_terms(&mut self, pass: &mut Pass, teacher: Option<&Tensor>, labels: &[usize], kind: Loss) -> Result<Terms> {
        match self {
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => Ok(Terms::Gpu(g.loss(pass, teacher, labels, kind, None)?)),
            _ => Ok(Terms::Cpu(loss::terms(&pass.logits, teacher, labels, kind)?)),
        }
    }

    /// The loss from `terms` with each soft term scaled by `weights` (a filter's).
    pub fn combine(
        &mut self,
        pass: &mut Pass,
        terms: Terms,
        teacher: Option<&Tensor>,
        labels: &[usize],
        kind: Loss,
        weights: Option<&[f32]>,
    ) -> Result<LossOutput> {
        let _ = (&teacher, labels, kind);
        match (self, terms) {
            (_, Terms::Cpu(t)) => t.combine(&pass.logits, weights),
            #[cfg(feature = "cuda")]
            (Engine::Gpu(g), Terms::Gpu(out)) => match weights {
                None => Ok(out),
                // the kernel weighs the soft terms as it forms the gradient on the device
                Some(w) => g.loss(pass, teacher, labels, kind, Some(w)),
            },
            #[cfg(feature = "cuda")]
            (Engine::Cpu(..), Terms::Gpu(out)) => Ok(out),
        }
    }

    /// Backward from `loss` and one optimizer step on the student. `custom`: the loss came from
    /// a script closure on the host logits, not from [`Engine::loss`].
    pub fn step(&mut self, student: &Model, pass: Pass, loss: Tensor, custom: bool, lr: f32) -> Result<()> {
        match self {
            Engine::Cpu(opt, _) => {
                let mut grads = loss.backward()?;
                drop((loss, pass, custom));
                opt.step(student.params(), &mut grads, lr)
            }
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => {
                let tape = pass.tape.expect("a train-mode pass");
                match pass.dlogits.filter(|_| !custom) {
                    Some(dlogits) => g.student.backward_from(tape, dlogits)?,
                    None => {
                        let mut grads = loss.backward()?;
                        let key = pass.logits.leaf_key().expect("GPU logits are a leaf");
                        let dlogits = grads.take(key).unwrap_or_else(|| vec![0.0; pass.logits.len()]);
                        g.student.backward(tape, &dlogits)?
                    }
                }
                g.optimizer.step(&mut g.student, lr)
            }
        }
    }

    /// Eval-mode logits `[n, classes]` of the student (or the teacher) for every sample of `data`.
    pub fn predict(&mut self, model: &Model, teacher: bool, data: &Dataset, batch_size: usize) -> Result<Vec<f32>> {
        match self {
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => {
                let m = if teacher { g.teacher.as_mut() } else { Some(&mut g.student) };
                let Some(m) = m else { return super::evaluate::predict(model, data, batch_size) };
                let mut rng = Rng::new(0);
                let mut out = Vec::with_capacity(data.len() * model.classes());
                for batch in Batches::new(data, batch_size, None, None)? {
                    model.check_input(&batch.x)?;
                    out.extend(m.forward(batch.x.data(), batch.x.shape(), false, &mut rng)?);
                }
                Ok(out)
            }
            _ => {
                let _ = teacher;
                super::evaluate::predict(model, data, batch_size)
            }
        }
    }

    /// Brings the student's parameters back to the host (after an epoch, before checkpoints).
    pub fn sync(&mut self) -> Result<()> {
        match self {
            Engine::Cpu(..) => Ok(()),
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => {
                g.cuda.sync()?;
                g.student.download()
            }
        }
    }

    pub fn steps(&self) -> usize {
        match self {
            Engine::Cpu(opt, _) => opt.steps(),
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => g.optimizer.steps(),
        }
    }

    pub fn export(&self, params: &[Param]) -> Result<Vec<(String, Vec<f32>, Vec<f32>)>> {
        match self {
            Engine::Cpu(opt, _) => Ok(opt.export(params)),
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => g.optimizer.export(&g.cuda, params),
        }
    }

    /// Restores optimizer state, and on the GPU re-uploads the (just loaded) host parameters.
    pub fn import(&mut self, params: &[Param], state: &[(String, Vec<f32>, Vec<f32>)], steps: usize) -> Result<()> {
        match self {
            Engine::Cpu(opt, _) => opt.import(params, state, steps),
            #[cfg(feature = "cuda")]
            Engine::Gpu(g) => {
                g.student.upload()?;
                g.optimizer.import(&g.cuda, params, state, steps)
            }
        }
    }
}
