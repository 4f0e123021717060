//! Data set built-ins: `dataset` (with its options), the train and test parts, `batch`.

use super::convert::{err, lib, shape_array, Opts, Res};
use super::hooks::labels_tensor;
use crate::data::{self, Dataset, Split};
use crate::def;
use rhai::{Dynamic, Engine, Map, INT};
use std::path::PathBuf;
use std::rc::Rc;

/// A loaded data set (train and test).
#[derive(Clone)]
pub struct DataRef(pub Rc<Split>);

/// Which part of a data set.
#[derive(Clone, Copy, PartialEq)]
pub enum Part {
    Train,
    Val,
    Test,
}

/// One part of a data set.
#[derive(Clone)]
pub struct DataPart {
    split: Rc<Split>,
    part: Part,
}

impl DataRef {
    /// `digits: 1437 train / 360 test samples of [1, 8, 8], 10 classes`.
    pub(super) fn summary(&self) -> String {
        let s = &self.0;
        let val = s.val.as_ref().map_or(String::new(), |v| format!(" / {} val", v.len()));
        format!(
            "{}: {} train{val} / {} test samples of {:?}, {} classes",
            s.train.name.trim_end_matches("/train"),
            s.train.len(),
            s.test.len(),
            s.train.sample_shape,
            s.train.classes
        )
    }
}

impl DataPart {
    /// `digits/test: 360 samples`.
    pub(super) fn summary(&self) -> String {
        format!("{}: {} samples", self.get().name, self.get().len())
    }

    pub(super) fn get(&self) -> &Dataset {
        match self.part {
            Part::Train => &self.split.train,
            Part::Test => &self.split.test,
            Part::Val => self.split.val.as_ref().expect("a val part is made only when the split has one"),
        }
    }
}

/// The options of `dataset`.
pub(super) const DATASET_KEYS: &[&str] = &["root", "test_fraction", "val_fraction", "seed", "normalize", "train_limit", "test_limit"];

fn load_dataset(name: &str, opts: &Map) -> Res<DataRef> {
    let o = Opts::new("dataset", opts, DATASET_KEYS)?;
    if name != "digits" {
        // the other data sets ship with their own test set: nothing to split (but a validation part)
        if o.get("seed").is_some() && o.get("val_fraction").is_none() {
            return err(format!("dataset: option 'seed' has no effect on {name}, which comes with its own test set, unless val_fraction asks for a validation part"));
        }
        if let Some(k) = ["test_fraction"].iter().find(|k| o.get(k).is_some()) {
            return err(format!(
                "dataset: option '{k}' has no effect on {name}, which comes with its own test set (it splits only digits)"
            ));
        }
    }
    for k in ["train_limit", "test_limit"] {
        if o.get(k).is_some() && o.usize_or(k, 0)? == 0 {
            return err(format!("dataset: option '{k}' must be at least 1 (omit it to keep every sample)"));
        }
    }
    let root = o.string("root")?.map(PathBuf::from);
    let mut split = lib(data::load(name, root.as_deref(), o.f32_or("test_fraction", 0.2)?, o.usize_or("seed", 0)? as u64))?;
    if let Some(n) = o.get("train_limit").map(|_| o.usize_or("train_limit", 0)).transpose()? {
        split.train = split.train.take(n);
    }
    if let Some(n) = o.get("test_limit").map(|_| o.usize_or("test_limit", 0)).transpose()? {
        split.test = split.test.take(n);
    }
    // the validation part comes out of the training part (after train_limit), stratified and
    // seeded; normalization statistics then come from what is left for training
    if o.get("val_fraction").is_some() {
        lib(split.carve_validation(o.f32_or("val_fraction", 0.1)?, o.usize_or("seed", 0)? as u64 + 1))?;
    }
    if o.bool_or("normalize", true)? {
        split.normalize();
    }
    Ok(DataRef(Rc::new(split)))
}

/// `dataset_from(features, labels, opts)`: a data set from tensors or arrays, split like digits.
fn dataset_from(features: &Dynamic, labels: &Dynamic, opts: &Map) -> Res<DataRef> {
    let o = Opts::new("dataset_from", opts, &["classes", "input", "test_fraction", "val_fraction", "seed", "normalize", "name"])?;
    let as_tensor = |v: &Dynamic| v.clone().try_cast::<crate::tensor::Tensor>().map_or_else(|| super::tensor_api::from_dynamic(v), Ok);
    let (x, y) = (as_tensor(features)?, as_tensor(labels)?);
    if x.shape().len() < 2 || y.shape().len() != 1 || y.shape()[0] != x.shape()[0] {
        return err(format!("dataset_from: features must be [samples, ...] and labels [samples], got {:?} and {:?}", x.shape(), y.shape()));
    }
    let inferred = y.data().iter().fold(0.0f32, |m, v| m.max(*v)) as usize + 1;
    let classes = o.usize_or("classes", inferred)?;
    let labels = lib(y.labels("dataset_from", classes))?;
    let shape = o.dims("input")?.unwrap_or_else(|| x.shape()[1..].to_vec());
    let name = o.string("name")?.unwrap_or_else(|| "dataset_from".into());
    let all = lib(Dataset::from_values(&name, x.data().to_vec(), labels, shape, classes))?;
    let seed = o.usize_or("seed", 0)? as u64;
    let mut split = lib(all.split(o.f32_or("test_fraction", 0.2)?, seed))?;
    if o.get("val_fraction").is_some() {
        lib(split.carve_validation(o.f32_or("val_fraction", 0.1)?, seed + 1))?;
    }
    if o.bool_or("normalize", true)? {
        split.normalize();
    }
    Ok(DataRef(Rc::new(split)))
}

pub fn register(engine: &mut Engine) {
    def!(
        engine,
        "dataset_from",
        "A data set from tensors or arrays: `features` [samples, ...] and class `labels` [samples], split into train and test like digits (stratified, seeded).\n\
        Options: classes (default: the largest label + 1), input (the shape of one sample; default: the features' shape after the first dim), test_fraction (0.2),\n\
        val_fraction, seed, normalize (true: per channel, with the training part's statistics), name.\n\
        ```rhai\n\
        let labels = [];\n\
        for i in 0..40 { labels.push(i % 4); }\n\
        let d = dataset_from(randn([40, 3]), labels, #{ test_fraction: 0.25 });\n\
        ```",
        |features: Dynamic, labels: Dynamic, opts: Map| dataset_from(&features, &labels, &opts)
    );
    def!(
        engine,
        "subset",
        "The data set with its training part cut down to the samples at `indices` (positions in the training part, as a filter's `b.index`; repeats allowed); validation and test parts unchanged.\n\
        ```rhai\n\
        let d = dataset(\"digits\");\n\
        let first_four = subset(d, [0, 1, 2, 3]);\n\
        ```",
        |d: DataRef, indices: Dynamic| {
            let idx = indices.clone().try_cast::<crate::tensor::Tensor>().map_or_else(|| super::tensor_api::from_dynamic(&indices), Ok)?;
            let positions = lib(idx.labels("subset", d.0.train.len()))?;
            let mut split = (*d.0).clone();
            split.train = split.train.subset(&positions);
            Ok::<_, Box<rhai::EvalAltResult>>(DataRef(Rc::new(split)))
        }
    );
    def!(
        engine,
        "concat",
        "Two data sets of the same sample shape and classes as one: training parts joined, test parts joined (and validation parts, when both have one).\n\
        ```rhai\n\
        let d = dataset(\"digits\");\n\
        let twice = concat(d, d);\n\
        ```",
        |a: DataRef, b: DataRef| {
            let val = match (&a.0.val, &b.0.val) {
                (Some(x), Some(y)) => Some(lib(x.concat(y))?),
                (None, None) => None,
                _ => return err("concat: one data set has a validation part and the other not; give both val_fraction or neither"),
            };
            let split = Split { train: lib(a.0.train.concat(&b.0.train))?, test: lib(a.0.test.concat(&b.0.test))?, val };
            Ok(DataRef(Rc::new(split)))
        }
    );
    def!(
        engine,
        "dataset",
        "Loads a data set by name (digits, mnist, fashion_mnist, cifar10, cifar100), normalized.\n\
        ```rhai\n\
        let data = dataset(\"digits\");\n\
        ```",
        |name: &str| load_dataset(name, &Map::new())
    );
    def!(
        engine,
        "dataset",
        "Loads a data set with options: root, test_fraction (digits), val_fraction, seed, normalize, train_limit, test_limit.\n\
        `val_fraction` holds a stratified, seeded part of the training part out as `data.val`: `fit` and `distill` then choose their best epoch on it, never on test.\n\
        With `train_limit`, it comes out of those first samples; normalization statistics always come from the training part that is left.\n\
        ```rhai\n\
        let data = dataset(\"digits\", #{ test_fraction: 0.2, seed: 7 });\n\
        ```",
        |name: &str, opts: Map| load_dataset(name, &opts)
    );
    def!(
        engine,
        "get$features",
        "Values per sample (e.g. 64 for digits).\n```rhai\nprint(dataset(\"digits\").features);\n```",
        |d: &mut DataRef| d.0.train.sample_len() as INT
    );
    def!(
        engine,
        "get$classes",
        "Number of classes.\n```rhai\nprint(dataset(\"digits\").classes);\n```",
        |d: &mut DataRef| d.0.train.classes as INT
    );
    def!(
        engine,
        "get$input",
        "Shape of one sample, `[channels, height, width]`: pass it to `model` as `input`.\n```rhai\nprint(dataset(\"digits\").input);\n```",
        |d: &mut DataRef| Dynamic::from_array(shape_array(&d.0.train.sample_shape))
    );
    def!(
        engine,
        "get$train",
        "The training part (without the validation part, when there is one).\n```rhai\nprint(dataset(\"digits\").train.len());\n```",
        |d: &mut DataRef| DataPart { split: d.0.clone(), part: Part::Train }
    );
    def!(engine, "get$test", "The test part.\n```rhai\nprint(dataset(\"digits\").test.len());\n```", |d: &mut DataRef| DataPart {
        split: d.0.clone(),
        part: Part::Test
    });
    def!(
        engine,
        "get$val",
        "The validation part (`dataset(..., #{ val_fraction: 0.1 })`), or `()` when there is none.\n```rhai\nprint(dataset(\"digits\", #{ val_fraction: 0.1 }).val.len());\n```",
        |d: &mut DataRef| if d.0.val.is_some() { Dynamic::from(DataPart { split: d.0.clone(), part: Part::Val }) } else { Dynamic::UNIT }
    );
    def!(engine, "get$len", "Number of samples.\n```rhai\nprint(dataset(\"digits\").test.len);\n```", |d: &mut DataPart| d.get().len()
        as INT);
    def!(engine, "len", "Number of samples.\n```rhai\nprint(dataset(\"digits\").train.len());\n```", |d: &mut DataPart| d.get().len()
        as INT);
    def!(engine, "to_string", "A data set summary.\n```rhai\nprint(dataset(\"digits\"));\n```", |d: &mut DataRef| d.summary());
    def!(engine, "to_string", "A data set part summary.\n```rhai\nprint(dataset(\"digits\").test);\n```", |d: &mut DataPart| d.summary());
    def!(
        engine,
        "batch",
        "The first `n` samples of a data part as #{ x, labels } tensors.\n```rhai\nlet b = batch(dataset(\"digits\").test, 8);\n```",
        |d: DataPart, n: INT| {
            if n <= 0 {
                return err(format!("batch: the number of samples must be positive, got {n}"));
            }
            let subset = d.get().take(usize::try_from(n).unwrap_or(usize::MAX));
            let mut it = lib(data::Batches::new(&subset, subset.len().max(1), None, None))?;
            let mut m = Map::new();
            if let Some(b) = it.next() {
                m.insert("x".into(), Dynamic::from(b.x));
                m.insert("labels".into(), Dynamic::from(labels_tensor(&b.labels)));
            }
            Ok::<_, Box<rhai::EvalAltResult>>(m)
        }
    );
}
