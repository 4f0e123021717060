//! Tensor built-ins: creation, inspection, shape ops and gradients.

use super::convert::{as_f64, dims, err, f32_of, float, lib, shape_array, type_of, widen, Res};
use super::state::State;
use crate::def;
use crate::tensor::Tensor;
use rhai::{Array, Dynamic, Engine, INT};
use std::rc::Rc;

/// Flattens nested arrays of numbers, checking they are rectangular.
fn flatten(v: &Dynamic, depth: usize, shape: &mut Vec<usize>, out: &mut Vec<f32>) -> Res<()> {
    if let Some(x) = as_f64(v) {
        if depth != shape.len() && !(shape.is_empty() && depth == 0) {
            return err("tensor: ragged nested arrays (every row must have the same length)");
        }
        out.push(f32_of("tensor", x)?);
        return Ok(());
    }
    let Some(arr) = v.read_lock::<Array>() else {
        return err(format!("tensor: expected numbers or arrays of numbers, got {}", type_of(v)));
    };
    if depth == shape.len() {
        if !out.is_empty() {
            return err("tensor: ragged nested arrays (every row must have the same length)");
        }
        shape.push(arr.len());
    } else if shape[depth] != arr.len() {
        return err(format!("tensor: ragged nested arrays: a row of length {} where {} was expected", arr.len(), shape[depth]));
    }
    for item in arr.iter() {
        flatten(item, depth + 1, shape, out)?;
    }
    Ok(())
}

/// Builds a tensor from a number or nested arrays.
pub fn from_dynamic(v: &Dynamic) -> Res<Tensor> {
    let (mut shape, mut data) = (Vec::new(), Vec::new());
    flatten(v, 0, &mut shape, &mut data)?;
    if data.len() != shape.iter().product::<usize>() {
        return err("tensor: ragged nested arrays (every row must have the same length)");
    }
    lib(Tensor::from_vec(data, &shape))
}

/// Nested arrays of the values.
fn to_array(t: &Tensor) -> Dynamic {
    fn nest(data: &[f32], shape: &[usize]) -> Dynamic {
        match shape.split_first() {
            None => float(data[0]),
            Some((&n, rest)) => {
                let step: usize = rest.iter().product();
                Dynamic::from_array((0..n).map(|i| nest(&data[i * step..(i + 1) * step], rest)).collect())
            }
        }
    }
    nest(t.data(), t.shape())
}

/// A short, readable summary: shape, a few values, whether it is tracked.
pub fn summary(t: &Tensor) -> String {
    let shown: Vec<String> = t.data().iter().take(8).map(|v| v.to_string()).collect();
    let more = if t.len() > 8 { format!(", ... ({} values)", t.len()) } else { String::new() };
    let grad = if t.tracked() { " (grad)" } else { "" };
    format!("Tensor{:?} [{}{more}]{grad}", t.shape(), shown.join(", "))
}

/// A shape from a script, its size checked (no overflow, within the memory cap).
fn sized(op: &'static str, shape: &Dynamic) -> Res<(Vec<usize>, usize)> {
    let s = dims(shape).map_err(|e| format!("{op}: {e}"))?;
    let n = lib(crate::tensor::limits::numel(op, &s))?;
    Ok((s, n))
}

fn filled(op: &'static str, shape: &Dynamic, value: f32) -> Res<Tensor> {
    let (s, n) = sized(op, shape)?;
    lib(Tensor::from_vec(lib(crate::tensor::limits::filled(op, n, value))?, &s))
}

pub fn register(engine: &mut Engine, state: &Rc<State>) {
    engine.register_type_with_name::<Tensor>("Tensor");
    def!(
        engine,
        "to_string",
        "A short summary of a tensor: shape, the first values, `(grad)` when tracked.\n```rhai\nprint(tensor([1, 2]).to_string());\n```",
        |t: &mut Tensor| summary(t)
    );
    def!(engine, "to_debug", "Same as `to_string`.\n```rhai\ndebug(tensor([1, 2]));\n```", |t: &mut Tensor| summary(t));

    // creation
    def!(
        engine,
        "tensor",
        "A constant tensor from a number or nested arrays of numbers.\n```rhai\nlet t = tensor([[1.0, 2.0], [3.0, 4.0]]);\n```",
        |v: Dynamic| from_dynamic(&v)
    );
    def!(engine, "zeros", "A tensor of zeros with the given shape.\n```rhai\nlet z = zeros([2, 3]);\n```", |s: Dynamic| filled(
        "zeros", &s, 0.0
    ));
    def!(engine, "ones", "A tensor of ones with the given shape.\n```rhai\nlet o = ones([4]);\n```", |s: Dynamic| filled("ones", &s, 1.0));
    def!(
        engine,
        "full",
        "A tensor filled with `value` (an integer or a float).\n```rhai\nlet f = full([2, 2], 0.5);\nlet g = full([2], 1);\n```",
        |s: Dynamic, v: Dynamic| {
            let Some(x) = super::convert::as_f64(&v) else {
                return super::convert::err(format!("full: the value must be a number, got {}", super::convert::type_of(&v)));
            };
            filled("full", &s, f32_of("full", x)?)
        }
    );
    let st = state.clone();
    def!(
        engine,
        "randn",
        "Standard-normal values from the run's seeded stream (`--seed`).\n```rhai\nlet r = randn([3, 5]);\n```",
        move |s: Dynamic| {
            let (s, n) = sized("randn", &s)?;
            let mut rng = st.rng.borrow_mut();
            let mut values = lib(crate::tensor::limits::filled("randn", n, 0.0))?;
            values.iter_mut().for_each(|v| *v = rng.normal());
            lib(Tensor::from_vec(values, &s))
        }
    );
    def!(engine, "arange", "`0, 1, ..., n - 1` as a tensor.\n```rhai\nlet a = arange(5);\n```", |n: INT| {
        let (s, n) = sized("arange", &Dynamic::from_int(n))?;
        lib(Tensor::from_vec((0..n).map(|i| i as f32).collect(), &s))
    });
    def!(
        engine,
        "arange",
        "`start, start + step, ...` below `end`.\n```rhai\nlet a = arange(0.0, 1.0, 0.25);\n```",
        |a: f64, b: f64, step: f64| {
            if !(a.is_finite() && b.is_finite()) {
                return err(format!("arange: start {a} and end {b} must be finite numbers"));
            }
            if step == 0.0 || !step.is_finite() || ((b - a) / step) > 1e8 {
                return err(format!("arange: step {step} must be non-zero and give at most 1e8 values"));
            }
            let n = ((b - a) / step).ceil().max(0.0) as usize;
            lib(Tensor::from_vec((0..n).map(|i| (a + step * i as f64) as f32).collect(), &[n]))
        }
    );

    // inspection
    def!(engine, "shape", "The shape as an array.\n```rhai\nprint(zeros([2, 3]).shape());\n```", |t: &mut Tensor| shape_array(t.shape()));
    def!(engine, "get$shape", "The shape as an array.\n```rhai\nprint(zeros([2, 3]).shape);\n```", |t: &mut Tensor| shape_array(t.shape()));
    def!(engine, "numel", "Number of elements.\n```rhai\nprint(zeros([2, 3]).numel());\n```", |t: &mut Tensor| t.len() as INT);
    def!(engine, "to_array", "The values as nested arrays.\n```rhai\nprint(tensor([[1, 2]]).to_array());\n```", |t: &mut Tensor| to_array(
        t
    ));
    def!(engine, "item", "The value of a one-element tensor.\n```rhai\nprint(sum(tensor([1, 2])).item());\n```", |t: &mut Tensor| lib(
        t.item()
    )
    .map(widen));

    // shape ops
    def!(
        engine,
        "reshape",
        "The same values under a new shape.\n```rhai\nlet r = arange(6).reshape([2, 3]);\n```",
        |t: &mut Tensor, s: Dynamic| lib(t.reshape(&dims(&s)?))
    );
    def!(engine, "flatten", "`[b, ...] -> [b, rest]`.\n```rhai\nlet f = zeros([2, 3, 4]).flatten();\n```", |t: &mut Tensor| lib(
        t.flatten()
    ));
    def!(
        engine,
        "transpose",
        "Swaps the two dims of a matrix (a tensor of rank 2; name the dims otherwise).\n```rhai\nlet t = zeros([2, 3]).transpose();\n```",
        |t: &mut Tensor| {
            if t.shape().len() != 2 {
                return err(format!(
                    "transpose: a tensor of shape {:?} is not a matrix; name the dims to swap, e.g. transpose(0, 1)",
                    t.shape()
                ));
            }
            lib(t.transpose(0, 1))
        }
    );
    def!(
        engine,
        "transpose",
        "Swaps dims `a` and `b` (negative counts from the end).\n```rhai\nlet t = zeros([2, 3, 4]).transpose(0, -1);\n```",
        |t: &mut Tensor, a: INT, b: INT| lib(t.transpose(a, b))
    );
    def!(engine, "detach", "The same values without gradient tracking.\n```rhai\nlet d = randn([2]).detach();\n```", |t: &mut Tensor| t
        .detach());

    // gradients
    def!(
        engine,
        "requires_grad",
        "A copy of the tensor that records gradients (a leaf for `grad`).\n```rhai\nlet x = requires_grad(tensor([1.0, 2.0]));\n```",
        |t: &mut Tensor| lib(Tensor::variable(t.data().to_vec(), t.shape()))
    );
    def!(
        engine,
        "grad",
        "The gradient of the scalar `y` with respect to the leaf `x` (zeros if `y` does not depend on it).\n\
        ```rhai\n\
        let x = requires_grad(tensor([1.0, 2.0]));\n\
        let g = grad(sum(x * x), x);\n\
        ```",
        |y: Tensor, x: Tensor| {
            let Some(key) = x.leaf_key() else {
                return err("grad: the second argument must be a leaf made with requires_grad(...)");
            };
            let grads = lib(y.backward())?;
            let g = grads.get(key).map(|g| g.to_vec()).unwrap_or_else(|| vec![0.0; x.len()]);
            lib(Tensor::from_vec(g, x.shape()))
        }
    );
}
