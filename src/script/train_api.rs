//! Data, model and training built-ins: `dataset`, `model`, `fit`, `distill`, `evaluate`,
//! optimizers, learning-rate schedules and the built-in losses as tensor functions.

use super::convert::{err, float, lib, shape_array, type_of, Opts, Res};
use super::data_api::{DataPart, DataRef};
use super::hooks::{history_fields, Sched, ScriptHooks};
use super::state::State;
use crate::data::Augment;
use crate::def;
use crate::loss::Loss;
use crate::nn::{Mode, Model, ModelConfig};
use crate::optim::{LrSchedule, OptimizerConfig};
use crate::run::recording::{StageInfo, StageRun};
use crate::tensor::Tensor;
use crate::train::{self, EpochRecord, Teacher, TrainConfig, Trainer};
use rhai::{Array, Dynamic, Engine, Map, NativeCallContext, INT};
use std::cell::Cell;
use std::rc::Rc;

/// Precomputed teacher logits (`teacher_logits(path)`), standing in for a teacher model.
#[derive(Clone)]
pub struct LogitsRef {
    path: String,
    shape: Vec<usize>,
    values: Rc<Vec<f32>>,
}

/// A model and its current mode (`train()` / `eval()`).
#[derive(Clone)]
pub struct ModelRef {
    pub model: Rc<Model>,
    mode: Rc<Cell<Mode>>,
}

pub fn summary(m: &Model) -> String {
    let mut s = format!("{} ({} parameters, {} classes, input {:?})", m.arch(), m.params_count(), m.classes(), m.config().input);
    for l in m.layers() {
        s.push_str(&format!("\n  {}", l.describe()));
    }
    s
}

fn build_model(state: &State, name: &str, opts: &Map) -> Res<ModelRef> {
    let o = Opts::new("model", opts, MODEL_KEYS)?;
    let reads = crate::nn::arch_options(name);
    if name == "mlp" && o.get("dropout").is_some() && o.dims("hidden")?.is_some_and(|h| h.is_empty()) {
        return err("model: option 'dropout' has no effect on an mlp without hidden layers (dropout follows each hidden layer)");
    }
    if let Some(k) = ["hidden", "channels", "dropout", "width"].iter().find(|k| o.get(k).is_some() && !reads.contains(k)) {
        let takes: Vec<&str> = ["input", "classes"].into_iter().chain(reads.iter().copied()).chain(["seed"]).collect();
        return err(format!("model: option '{k}' has no effect on {name}; it takes {}", takes.join(", ")));
    }
    let Some(input) = o.dims("input")? else { return err("model: option 'input' is required (e.g. input: data.input)") };
    let classes = o.usize_or("classes", 0)?;
    if classes == 0 {
        return err("model: option 'classes' is required and must be positive (e.g. classes: data.classes)");
    }
    let defaults = ModelConfig::default();
    let seed = match o.get("seed") {
        Some(_) => o.usize_or("seed", 0)? as u64,
        None => state.next_model_seed(),
    };
    let cfg = ModelConfig {
        classes,
        input,
        hidden: o.dims("hidden")?.unwrap_or(defaults.hidden),
        channels: o.dims("channels")?.unwrap_or(defaults.channels),
        dropout: o.f32_or("dropout", 0.0)?,
        width: o.f64_or("width", defaults.width)?,
        seed,
    };
    Ok(ModelRef { model: Rc::new(lib(Model::new(name, cfg))?), mode: Rc::new(Cell::new(Mode::Train)) })
}

/// The options of `model`, of `fit` (and `distill`), and of `distill` alone.
pub(super) const MODEL_KEYS: &[&str] = &["input", "classes", "hidden", "channels", "dropout", "width", "seed"];
pub(super) const TRAIN_KEYS: &[&str] = &[
    "epochs",
    "batch",
    "optimizer",
    "lr_schedule",
    "lr_lambda",
    "augment",
    "seed",
    "on_epoch",
    "on_epoch_start",
    "on_step",
    "eval_batch",
    "label_smoothing",
    "label",
    "device",
];
pub(super) const DISTILL_KEYS: &[&str] = &["loss", "temperature", "alpha", "filter", "ce_weight"];

/// Reads the options common to `fit` and `distill` into a config and hooks.
fn train_config<'a, 'c>(
    op: &'static str,
    o: &Opts,
    ctx: &'a NativeCallContext<'c>,
    state: &'a State,
) -> Res<(TrainConfig, ScriptHooks<'a, 'c>)> {
    let mut hooks = ScriptHooks::new(ctx, state, op);
    let mut cfg = TrainConfig {
        epochs: o.usize_or("epochs", 10)?,
        batch_size: o.usize_or("batch", 64)?,
        seed: o.usize_or("seed", state.seed as usize)? as u64,
        ..TrainConfig::default()
    };
    cfg.eval_batch_size = o.usize_or("eval_batch", 256)?;
    cfg.device = match o.string("device")? {
        Some(name) => name.parse().map_err(|e: crate::Error| format!("{op}: {e}"))?,
        None => state.device,
    };
    if let Some(opt) = o.custom::<OptimizerConfig>("optimizer", "an optimizer such as sgd(#{ lr: 0.1 })")? {
        cfg.optimizer = opt;
    }
    match o.get("lr_schedule") {
        None => {}
        Some(v) => match v.clone().try_cast::<LrSchedule>() {
            Some(s) => cfg.lr_schedule = s,
            None => hooks.lr = Some(Sched::from_dynamic(op, "lr_schedule", v)?),
        },
    }
    cfg.augment = match o.get("augment") {
        None => None,
        Some(v) if v.as_bool() == Ok(false) => None,
        Some(v) if v.as_bool() == Ok(true) => Some(Augment { crop_padding: 4, horizontal_flip: true }),
        Some(v) => match v.read_lock::<Map>() {
            Some(m) => {
                let a = Opts::new("augment", &m, &["crop_padding", "flip"])?;
                let augment = Augment { crop_padding: a.usize_or("crop_padding", 4)?, horizontal_flip: a.bool_or("flip", true)? };
                if augment.crop_padding == 0 && !augment.horizontal_flip {
                    return err(format!("{op}: augment with crop_padding 0 and flip false changes nothing; use augment: false"));
                }
                Some(augment)
            }
            None => return err(format!("{op}: option 'augment' must be true, false or #{{ crop_padding, flip }}, got {}", type_of(v))),
        },
    };
    if let Some(v) = o.get("lr_lambda") {
        if o.get("lr_schedule").is_some() {
            return err(format!("{op}: give lr_schedule (a rate) or lr_lambda (a multiplier of the optimizer's lr), not both"));
        }
        hooks.lr_lambda = Some(Sched::from_dynamic(op, "lr_lambda", v)?);
        hooks.base_lr = cfg.optimizer.lr();
    }
    cfg.loss = Loss::CrossEntropy { label_smoothing: o.f32_or("label_smoothing", 0.0)? };
    hooks.on_epoch = o.fn_ptr("on_epoch")?;
    hooks.on_epoch_start = o.fn_ptr("on_epoch_start")?;
    hooks.on_step = o.fn_ptr("on_step")?;
    Ok((cfg, hooks))
}

/// What a finished `fit` or `distill` gives back to the script.
#[allow(clippy::too_many_arguments)]
fn run_map(
    state: &State,
    history: &[EpochRecord],
    interrupted: bool,
    student: &Model,
    teacher: Option<&Model>,
    loss: &str,
    label: &str,
    hook_seconds: f64,
) -> Map {
    let mut m = Map::new();
    m.insert("label".into(), label.into());
    // the stage number in the run record (what `retort runs compare` lists), when recording
    m.insert("stage".into(), state.recording().map_or(Dynamic::UNIT, |r| Dynamic::from_int(r.stage_count() as INT)));
    m.insert("hook_seconds".into(), Dynamic::from_float(hook_seconds));
    // stopped between batches (a REPL's Ctrl-C): the history ends in the partial epoch, and
    // the model holds what was trained
    m.insert("interrupted".into(), interrupted.into());
    history_fields(&mut m, history);
    m.insert("student".into(), student.arch().into());
    m.insert("teacher".into(), teacher.map_or(Dynamic::UNIT, |t| t.arch().into()));
    m.insert("loss".into(), loss.into());
    m
}

fn fit(ctx: NativeCallContext, state: &State, model: ModelRef, data: DataRef, opts: Map) -> Res<Map> {
    let o = Opts::new("fit", &opts, TRAIN_KEYS)?;
    let (cfg, mut hooks) = train_config("fit", &o, &ctx, state)?;
    let label = o.string("label")?.unwrap_or_else(|| format!("fit {}", model.model.arch()));
    let info = StageInfo { kind: "fit", label: label.clone(), teacher: None, loss: "ce", schedules: schedules(&ctx, state, &opts) };
    let result =
        Trainer::new(&model.model, Teacher::None, &data.0, cfg).and_then(|t| train_stage(state, t, &model.model, info, &mut hooks));
    let run = finish_stage(state, &mut hooks, result)?;
    // an interrupt that lands at an epoch's end leaves no partial epoch, but it did stop training
    Ok(run_map(state, &run.history, run.interrupted || state.training_interrupted.get(), &model.model, None, "ce", &label, hooks.seconds))
}

/// The closures and schedules of a training call (temperature, alpha, learning rate, filter,
/// loss, and the hooks that can change training) as the script wrote them (`closure` where its
/// options are not a literal in the text): the record says what the hooks did.
fn schedules(ctx: &NativeCallContext, state: &State, opts: &Map) -> std::collections::BTreeMap<String, String> {
    const KEYS: [&str; 9] = ["temperature", "alpha", "lr_schedule", "lr_lambda", "filter", "loss", "on_epoch_start", "on_step", "on_epoch"];
    let pos = ctx.call_position();
    let quoted = match (ctx.call_source().and_then(|s| state.sources.borrow().get(s).cloned()), pos.line(), pos.position()) {
        (Some(text), Some(line), Some(column)) => super::source_text::call_options(&text, line, column, &KEYS),
        _ => Default::default(),
    };
    KEYS.iter()
        .filter_map(|k| {
            let v = opts.get(*k)?;
            let text = quoted.get(*k).cloned().unwrap_or_else(|| match v.clone().try_cast::<rhai::FnPtr>() {
                Some(_) => "closure".into(),
                None if v.is::<LrSchedule>() => format!("{:?}", v.clone().cast::<LrSchedule>()),
                None => v.to_string(),
            });
            // numbers are in the records as values, a loss named by a string in `loss`
            (v.is::<rhai::FnPtr>() || v.is::<LrSchedule>()).then(|| (k.to_string(), text))
        })
        .collect()
}

/// Re-raises what stopped a stage; a failed stage's record gets the script's own message
/// (a closure's error and its line, which the trainer only knew as "a script hook failed").
fn finish_stage(state: &State, hooks: &mut ScriptHooks, result: crate::Result<StageRun>) -> Res<StageRun> {
    let before = state.recording().map(|r| r.stage_count());
    hooks.finish(result).inspect_err(|e| {
        if let Some(rec) = state.recording() {
            // only a stage that started (a bad option fails before one does)
            if Some(rec.stage_count()) == before {
                let _ = rec.set_stage_error(&e.to_string());
            }
        }
    })
}

/// The teacher of a `distill` call: a model, or logits computed elsewhere.
enum TeacherArg {
    Model(ModelRef),
    Logits(LogitsRef),
}

fn distill(ctx: NativeCallContext, state: &State, teacher: TeacherArg, student: ModelRef, data: DataRef, opts: Map) -> Res<Map> {
    let keys: Vec<&str> = TRAIN_KEYS.iter().chain(DISTILL_KEYS).copied().collect();
    let o = Opts::new("distill", &opts, &keys)?;
    let (mut cfg, mut hooks) = train_config("distill", &o, &ctx, state)?;
    let temperature = Sched::from_dynamic("distill", "temperature", o.get("temperature").unwrap_or(&Dynamic::from_float(4.0)))?;
    let alpha = Sched::from_dynamic("distill", "alpha", o.get("alpha").unwrap_or(&Dynamic::from_float(1.0)))?;
    let (t0, a0) = match (&temperature, &alpha) {
        (Sched::Num(t), Sched::Num(a)) => (*t, *a),
        _ => (4.0, 1.0), // closures are evaluated per step by the hooks
    };
    let loss_name = match o.get("loss") {
        None => "kd".to_string(),
        Some(v) => match v.clone().try_cast::<rhai::FnPtr>() {
            Some(f) => {
                hooks.loss = Some(f);
                "custom".to_string()
            }
            None => o.string("loss")?.unwrap_or_default(),
        },
    };
    let (label_smoothing, ce_weight) = (o.f32_or("label_smoothing", 0.0)?, o.f32_or("ce_weight", 1.0)?);
    // an option that would have no effect with this loss is refused, never silently ignored
    let refuse = |keys: &[&str], why: &str| match keys.iter().find(|k| o.get(k).is_some()) {
        Some(k) => err(format!("distill: option '{k}' has no effect with loss \"{loss_name}\": {why}")),
        None => Ok(()),
    };
    cfg.loss = match loss_name.as_str() {
        "ce" => {
            refuse(&["temperature", "alpha", "filter", "ce_weight"], "it has no soft term (use \"kd\" or \"wsl\", or fit)")?;
            Loss::CrossEntropy { label_smoothing }
        }
        "custom" => {
            refuse(&["label_smoothing", "ce_weight"], "the loss closure computes the whole loss (smooth inside it)")?;
            Loss::kd(t0, a0)
        }
        "kd" => Loss::Kd { temperature: t0, alpha: a0, label_smoothing, ce_weight },
        "wsl" => Loss::Wsl { temperature: t0, alpha: a0, label_smoothing, ce_weight },
        other => {
            let hint = super::convert::suggest(other, &["ce", "kd", "wsl"]).map_or(String::new(), |s| format!("; did you mean '{s}'?"));
            return err(format!("distill: loss '{other}' is unknown: use \"ce\", \"kd\", \"wsl\" or a closure |s, t, y, ctx| ...{hint}"));
        }
    };
    if cfg.loss.needs_teacher() {
        hooks.temperature = Some(temperature);
        hooks.alpha = Some(alpha);
    }
    hooks.filter = o.fn_ptr("filter")?;
    let uses_teacher = cfg.loss.needs_teacher() || hooks.loss.is_some();
    let (source, teacher_model, teacher_name) = match &teacher {
        TeacherArg::Model(t) => {
            if Rc::ptr_eq(&t.model, &student.model) {
                return err(
                    "distill: the teacher and the student are the same model; the teacher must stay frozen while the student trains",
                );
            }
            if t.model.classes() != student.model.classes() {
                return err(format!("distill: the teacher has {} classes but the student {}", t.model.classes(), student.model.classes()));
            }
            (if uses_teacher { Teacher::Model(&t.model) } else { Teacher::None }, Some(&*t.model), t.model.arch().to_string())
        }
        TeacherArg::Logits(l) => {
            if cfg.augment.is_some() && uses_teacher {
                return err(format!("distill: the teacher logits in {} were computed once for the unaugmented training images, so they do not match randomly cropped or flipped inputs; use a teacher model with augment, or train without augment", l.path));
            }
            let want = [data.0.train.len(), student.model.classes()];
            if l.shape != want {
                return err(format!("distill: the teacher logits in {} have shape {:?}; this data set and student need {want:?} (training samples x classes, in data set order)", l.path, l.shape));
            }
            (if uses_teacher { Teacher::Logits(l.values.to_vec()) } else { Teacher::None }, None, format!("logits {}", l.path))
        }
    };
    let label = o.string("label")?.unwrap_or_else(|| format!("distill {teacher_name} -> {} ({loss_name})", student.model.arch()));
    let info = StageInfo {
        kind: "distill",
        label: label.clone(),
        teacher: teacher_model,
        loss: &loss_name,
        schedules: schedules(&ctx, state, &opts),
    };
    let result = Trainer::new(&student.model, source, &data.0, cfg).and_then(|t| train_stage(state, t, &student.model, info, &mut hooks));
    let run = finish_stage(state, &mut hooks, result)?;
    Ok(run_map(
        state,
        &run.history,
        run.interrupted || state.training_interrupted.get(),
        &student.model,
        teacher_model,
        &loss_name,
        &label,
        hooks.seconds,
    ))
}

/// Trains through the run's recording when there is one.
fn train_stage(
    state: &State,
    mut trainer: Trainer,
    student: &Model,
    info: StageInfo,
    hooks: &mut dyn train::Hooks,
) -> crate::Result<StageRun> {
    match state.recording() {
        Some(rec) => rec.stage(&mut trainer, student, info, hooks),
        None => {
            let history = trainer.run(hooks)?;
            Ok(StageRun { interrupted: history.last().is_some_and(|r| r.partial), history })
        }
    }
}

fn eval_map(e: train::Evaluation) -> Map {
    let mut m = Map::new();
    m.insert("accuracy".into(), float(e.accuracy));
    m.insert("top5".into(), float(e.top5));
    m.insert("loss".into(), float(e.loss));
    m.insert("samples".into(), Dynamic::from_int(e.samples as INT));
    m
}

pub fn register(engine: &mut Engine, state: &Rc<State>) {
    engine.register_type_with_name::<LogitsRef>("TeacherLogits");
    engine.register_type_with_name::<DataRef>("Dataset").register_type_with_name::<DataPart>("DataPart");
    engine
        .register_type_with_name::<ModelRef>("Model")
        .register_type_with_name::<OptimizerConfig>("Optimizer")
        .register_type_with_name::<LrSchedule>("LrSchedule");
    super::refuse_comparisons::<ModelRef>(engine, "Model");
    super::refuse_comparisons::<DataRef>(engine, "Dataset");
    super::refuse_comparisons::<DataPart>(engine, "DataPart");
    super::refuse_comparisons::<OptimizerConfig>(engine, "Optimizer");
    super::refuse_comparisons::<LrSchedule>(engine, "LrSchedule");
    super::refuse_comparisons::<LogitsRef>(engine, "TeacherLogits");
    super::optim_api::register(engine);
    super::loss_api::register(engine);
    super::data_api::register(engine);

    // models
    let st = state.clone();
    def!(
        engine,
        "model",
        "Builds a zoo model with PyTorch parameter names (`retort models` lists them with parameters \
        and MACs; docs/zoo.md says which definition each follows): mlp, cnn; the CIFAR benchmark's \
        resnet8 ... resnet110, resnet8x4, resnet32x4, resnet50, wrn_16_1/16_2/40_1/40_2, vgg8/11/13/16/19, \
        mobilenetv2 (`mobile_half` = width 0.5), shufflev1, shufflev2; ImageNet resnet18_imagenet, \
        resnet34_imagenet, resnet50_imagenet (torchvision's), mobilenetv1. RepDistiller's names \
        (ResNet50, MobileNetV2, ShuffleV1, ShuffleV2, vgg8_bn ...) are aliases.\n\
        Options: input, classes (required); hidden (mlp), channels (cnn), dropout (mlp, wrn_*), \
        width (mobilenetv2), seed. Errors: an unknown name (with the closest ones), an option the \
        architecture does not read, an input too small for its downsampling.\n\
        ```rhai\n\
        let m = model(\"mlp\", #{ input: 64, hidden: [32], classes: 10 });\n\
        let s = model(\"mobilenetv2\", #{ input: [3, 32, 32], classes: 100, width: 0.5 });\n\
        ```",
        move |name: &str, opts: Map| build_model(&st, name, &opts)
    );
    def!(
        engine,
        "forward",
        "Logits for a batch `x`; records gradients in train mode.\n\
        ```rhai\n\
        let m = model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 });\n\
        let y = m.forward(randn([2, 4]));\n\
        ```",
        {
            let st = state.clone();
            move |m: &mut ModelRef, x: Tensor| lib(m.model.forward(&x, m.mode.get(), &mut st.rng.borrow_mut()))
        }
    );
    def!(
        engine,
        "train_mode",
        "Puts the model in train mode (batch statistics, dropout, gradients); the default.\n\
        ```rhai\n\
        let m = model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 });\n\
        m.train_mode();\n\
        ```",
        |m: &mut ModelRef| m.mode.set(Mode::Train)
    );
    def!(
        engine,
        "eval_mode",
        "Puts the model in eval mode (running statistics, no dropout, no gradients). (`eval` is a reserved word in Rhai.)\n\
        ```rhai\n\
        let m = model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 });\n\
        m.eval_mode();\n\
        ```",
        |m: &mut ModelRef| m.mode.set(Mode::Eval)
    );
    def!(
        engine,
        "params_count",
        "Number of trainable values.\n```rhai\nprint(model(\"resnet20\", #{ input: [3, 32, 32], classes: 100 }).params_count());\n```",
        |m: &mut ModelRef| m.model.params_count() as INT
    );
    def!(
        engine,
        "get$params_count",
        "Number of trainable values.\n```rhai\nprint(model(\"resnet8\", #{ input: [3, 32, 32], classes: 10 }).params_count);\n```",
        |m: &mut ModelRef| m.model.params_count() as INT
    );
    def!(
        engine,
        "get$arch",
        "The zoo name of the architecture.\n```rhai\nprint(model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 }).arch);\n```",
        |m: &mut ModelRef| m.model.arch().to_string()
    );
    def!(
        engine,
        "parameters",
        "Every parameter and buffer as #{ name, shape, trainable }, in PyTorch state_dict order.\n\
        ```rhai\n\
        let ps = model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 }).parameters();\n\
        ```",
        |m: &mut ModelRef| {
            m.model
                .params()
                .iter()
                .map(|p| {
                    let mut e = Map::new();
                    e.insert("name".into(), p.name().into());
                    e.insert("shape".into(), Dynamic::from_array(shape_array(p.shape())));
                    e.insert("trainable".into(), p.trainable().into());
                    Dynamic::from_map(e)
                })
                .collect::<Array>()
        }
    );
    def!(
        engine,
        "to_string",
        "A layer summary.\n```rhai\nprint(model(\"mlp\", #{ input: 4, hidden: [8], classes: 3 }));\n```",
        |m: &mut ModelRef| summary(&m.model)
    );

    // training
    let st = state.clone();
    def!(engine, "fit", "Trains a model on the labels (cross-entropy). Options: epochs, batch, optimizer, lr_schedule, augment, seed, label_smoothing, on_epoch, eval_batch,\n\
        label (the stage's name in the run record), device (cpu, cuda or cuda:N; default: `retort run --device`).\n\
        Returns #{ history, final_accuracy, best_accuracy, best_epoch, best_on (\"test\": the set best was chosen on), epochs, seconds, hook_seconds (time in script closures), stage (its number in the run record), label,\n\
        interrupted (true when Ctrl-C stopped it in a REPL or notebook: the model keeps what was trained and history ends in the partial epoch), ... }.\n\
        ```rhai\n\
        let data = dataset(\"digits\");\n\
        let m = model(\"mlp\", #{ input: data.input, hidden: [32], classes: data.classes });\n\
        let run = fit(m, data, #{ epochs: 2, optimizer: sgd(#{ lr: 0.1 }) });\n\
        ```", move |ctx: NativeCallContext, m: ModelRef, d: DataRef, o: Map| fit(ctx, &st, m, d, o));
    let st = state.clone();
    def!(
        engine,
        "distill",
        "Distills a student from precomputed teacher logits (see `teacher_logits`); options as with a teacher model.\n\
        ```rhai\n\
        let data = dataset(\"digits\");\n\
        let s = model(\"mlp\", #{ input: data.input, hidden: [16], classes: data.classes });\n\
        // let run = distill(teacher_logits(\"teacher.npy\"), s, data, #{ loss: \"wsl\" });\n\
        ```",
        move |ctx: NativeCallContext, t: LogitsRef, s: ModelRef, d: DataRef, o: Map| distill(ctx, &st, TeacherArg::Logits(t), s, d, o)
    );
    def!(engine, "teacher_logits", "Loads precomputed teacher logits from a .npy file (float32 or float64, [training samples, classes], in the data set's training order) to use as the teacher of `distill`.\n\
        ```rhai\n\
        // let t = teacher_logits(\"teacher-logits.npy\");\n\
        ```", |path: &str| {
        let npy = lib(crate::run::npy::read(std::path::Path::new(path)))?;
        if npy.shape.len() != 2 {
            return err(format!("teacher_logits: {path} has shape {:?}; logits are [samples, classes]", npy.shape));
        }
        if let Some(i) = npy.values.iter().position(|v| !v.is_finite()) {
            let classes = npy.shape[1].max(1);
            return err(format!(
                "teacher_logits: {path} holds {} at sample {}, class {} (flat index {i}); teacher logits must be finite numbers",
                npy.values[i],
                i / classes,
                i % classes
            ));
        }
        Ok::<_, Box<rhai::EvalAltResult>>(LogitsRef { path: path.to_string(), shape: npy.shape, values: Rc::new(npy.values) })
    });
    let st = state.clone();
    def!(engine, "distill", "Distills a student from a frozen teacher. Options as `fit`, plus loss (\"kd\", \"wsl\", \"ce\" or |s, t, y, ctx| ...), temperature and alpha (numbers or |epoch| ... closures), filter (|b| keep-mask or weights per sample),\n\
        ce_weight (the weight of the hard-label CE term, 1 in the paper) and label_smoothing (of the hard-label term; WSL's weights keep the unsmoothed CE).\n\
        Options that would have no effect with the chosen loss (a filter or temperature with \"ce\") are refused.\n\
        ```rhai\n\
        let data = dataset(\"digits\");\n\
        let t = model(\"mlp\", #{ input: data.input, hidden: [64], classes: data.classes });\n\
        let s = model(\"mlp\", #{ input: data.input, hidden: [16], classes: data.classes });\n\
        let run = distill(t, s, data, #{ epochs: 1, loss: \"wsl\", temperature: 4.0, alpha: 2.25 });\n\
        ```", move |ctx: NativeCallContext, t: ModelRef, s: ModelRef, d: DataRef, o: Map| distill(ctx, &st, TeacherArg::Model(t), s, d, o));
    def!(
        engine,
        "predict",
        "Logits `[samples, classes]` of a model on a whole data part, in eval mode, batched, without gradient (e.g. the teacher's\n\
        logits on the training set in `on_epoch_start`, row i for training sample i, as a filter's `b.index` counts).\n\
        ```rhai\n\
        let data = dataset(\"digits\");\n\
        let m = model(\"mlp\", #{ input: data.input, hidden: [8], classes: data.classes });\n\
        let logits = predict(m, data.test);\n\
        ```",
        |m: ModelRef, d: DataPart| {
            let part = d.get();
            let logits = lib(train::predict(&m.model, part, 256))?;
            lib(Tensor::from_vec(logits, &[part.len(), m.model.classes()]))
        }
    );
    def!(
        engine,
        "evaluate",
        "Top-1 and top-5 accuracy and loss on a data part, in eval mode: #{ accuracy, top5, loss, samples }.\n\
        ```rhai\n\
        let data = dataset(\"digits\");\n\
        let m = model(\"mlp\", #{ input: data.input, hidden: [8], classes: data.classes });\n\
        print(evaluate(m, data.test).accuracy);\n\
        ```",
        |m: ModelRef, d: DataPart| lib(train::evaluate(&m.model, d.get(), 256)).map(eval_map)
    );
    def!(
        engine,
        "evaluate",
        "Evaluates on the test part of a data set.\n\
        ```rhai\n\
        let data = dataset(\"digits\");\n\
        let m = model(\"mlp\", #{ input: data.input, hidden: [8], classes: data.classes });\n\
        print(evaluate(m, data).accuracy);\n\
        ```",
        |m: ModelRef, d: DataRef| lib(train::evaluate(&m.model, &d.0.test, 256)).map(eval_map)
    );

    // parameters and weights
    let st = state.clone();
    def!(
        engine,
        "defaults",
        "The script's parameters: `params` (from --config and --set) merged over these defaults.\n\
        A parameter the defaults do not name, or of another kind, is an error naming where it came from.\n\
        ```rhai\n\
        let p = defaults(#{ epochs: 40, distill: #{ temperature: 4.0, alpha: 2.25 } });\n\
        print(p.distill.temperature);\n\
        ```",
        move |d: Map| {
            st.defaults_called.set(true);
            let merged = st.params.over(&d)?;
            // the run record holds the parameters the script ran with, defaults included
            super::params::merge(&mut st.resolved.borrow_mut(), merged.clone());
            if let Some(rec) = st.recording() {
                lib(rec.record_params(super::params_yaml(&st.resolved.borrow())))?;
            }
            Ok::<_, Box<rhai::EvalAltResult>>(merged)
        }
    );
}
