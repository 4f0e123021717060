//! Tensor arithmetic and functions for scripts: operators with broadcasting, element-wise
//! functions, reductions, softmax, comparisons and label indexing. All differentiable where
//! it makes sense.

use super::convert::{err, lib, type_of, Res};
use crate::def;
use crate::tensor::Tensor;
use rhai::{Dynamic, Engine, INT};

fn scalar(x: f64) -> Tensor {
    Tensor::from_vec(vec![x as f32], &[]).expect("one value for shape []")
}

/// Registers `op` for tensor-tensor, tensor-number and number-tensor operands.
macro_rules! binary {
    ($engine:expr, $op:expr, $doc:expr, $f:expr) => {{
        let f: fn(&Tensor, &Tensor) -> crate::Result<Tensor> = $f;
        def!($engine, $op, $doc, move |a: Tensor, b: Tensor| lib(f(&a, &b)));
        def!($engine, $op, $doc, move |a: Tensor, b: f64| lib(f(&a, &scalar(b))));
        def!($engine, $op, $doc, move |a: Tensor, b: INT| lib(f(&a, &scalar(b as f64))));
        def!($engine, $op, $doc, move |a: f64, b: Tensor| lib(f(&scalar(a), &b)));
        def!($engine, $op, $doc, move |a: INT, b: Tensor| lib(f(&scalar(a as f64), &b)));
    }};
}

/// Registers a comparison for every pairing of a tensor with a tensor or a number, the number
/// on either side. Any other operand is an error: without these, Rhai's fallback for unlike
/// types would answer `x != "a"` with `true` and `2 < x` with `false`, silently.
fn cmp(engine: &mut Engine, name: &'static str, symbol: &'static str, f: fn(f32, f32) -> bool) {
    let doc =
        format!("A 0/1 mask of `a {symbol} b` element-wise, broadcasting (no gradient).\n```rhai\nlet m = {name}(tensor([1, 5]), 2);\n```");
    for n in [name, symbol] {
        def!(engine, n, &doc, move |a: Tensor, b: Tensor| lib(a.compare(&b, name, f)));
        def!(engine, n, &doc, move |a: Tensor, b: f64| lib(a.compare(&scalar(b), name, f)));
        def!(engine, n, &doc, move |a: Tensor, b: INT| lib(a.compare(&scalar(b as f64), name, f)));
        def!(engine, n, &doc, move |a: f64, b: Tensor| lib(scalar(a).compare(&b, name, f)));
        def!(engine, n, &doc, move |a: INT, b: Tensor| lib(scalar(a as f64).compare(&b, name, f)));
        let refuse = move |other: &Dynamic| -> Res<Tensor> {
            err(format!("{name} ({symbol}): a tensor compares with a tensor or a number, not {}", type_of(other)))
        };
        engine.register_fn(n, move |_: Tensor, b: Dynamic| refuse(&b));
        engine.register_fn(n, move |a: Dynamic, _: Tensor| refuse(&a));
    }
}

pub fn register(engine: &mut Engine) {
    binary!(engine, "+", "Sum, broadcasting.\n```rhai\nlet y = tensor([1, 2]) + 1;\n```", |a, b| a.add(b));
    binary!(engine, "-", "Difference, broadcasting.\n```rhai\nlet y = tensor([1, 2]) - tensor([[1], [2]]);\n```", |a, b| a.sub(b));
    binary!(engine, "*", "Product, broadcasting.\n```rhai\nlet y = 2.0 * tensor([1, 2]);\n```", |a, b| a.mul(b));
    binary!(engine, "/", "Quotient, broadcasting.\n```rhai\nlet y = tensor([1, 2]) / 4;\n```", |a, b| a.div(b));
    binary!(engine, "maximum", "Element-wise maximum, broadcasting.\n```rhai\nlet y = maximum(tensor([-1, 2]), 0);\n```", |a, b| a
        .maximum(b));
    binary!(engine, "minimum", "Element-wise minimum, broadcasting.\n```rhai\nlet y = minimum(tensor([-1, 2]), 0);\n```", |a, b| a
        .minimum(b));
    // as in PyTorch, max(x, other tensor) is element-wise and max(x, dim) reduces; a number
    // beside a tensor would read both ways (max(x, 0) vs max(x, 0.0)), so it is refused
    def!(
        engine,
        "max",
        "Element-wise maximum of two tensors, broadcasting (torch.max(x, other)); `max(x, dim)` reduces, `maximum(x, 0.5)` takes a number.\n\
            ```rhai\n\
            let y = max(tensor([-1, 2]), tensor([0, 0]));\n\
            ```",
        |a: Tensor, b: Tensor| lib(a.maximum(&b))
    );
    def!(
        engine,
        "min",
        "Element-wise minimum of two tensors, broadcasting (torch.min(x, other)); `min(x, dim)` reduces, `minimum(x, 0.5)` takes a number.\n\
            ```rhai\n\
            let y = min(tensor([-1, 2]), tensor([0, 0]));\n\
            ```",
        |a: Tensor, b: Tensor| lib(a.minimum(&b))
    );
    for (name, elementwise) in [("max", "maximum"), ("min", "minimum")] {
        let refuse = move || -> Res<Tensor> {
            err(format!("{name}: with a tensor and a number, write {elementwise}(x, v) for the element-wise {elementwise} or {name}(x, dim) with an integer dim to reduce (as torch.{name}(x, dim))"))
        };
        engine.register_fn(name, move |_: Tensor, _: rhai::FLOAT| refuse());
        engine.register_fn(name, move |_: rhai::FLOAT, _: Tensor| refuse());
        engine.register_fn(name, move |_: INT, _: Tensor| refuse());
    }
    def!(engine, "-", "Negation.\n```rhai\nlet y = -tensor([1, 2]);\n```", |a: Tensor| a.neg());
    def!(
        engine,
        "matmul",
        "Matrix product `[m, k] x [k, n]`.\n```rhai\nlet y = matmul(ones([2, 3]), ones([3, 4]));\n```",
        |a: Tensor, b: Tensor| lib(a.matmul(&b))
    );

    // element-wise functions
    def!(engine, "exp", "e to the power of each element.\n```rhai\nlet y = exp(tensor([0, 1]));\n```", |t: Tensor| t.exp());
    def!(
        engine,
        "expm1",
        "`exp(x) - 1`, exact for small `x` where `exp(x) - 1` cancels (torch.expm1).\n```rhai\nlet y = expm1(tensor([1e-7, 1.0]));\n```",
        |t: Tensor| t.expm1()
    );
    def!(
        engine,
        "log1p",
        "`log(1 + x)`, exact for small `x` (torch.log1p).\n```rhai\nlet y = log1p(tensor([1e-7, 1.0]));\n```",
        |t: Tensor| t.log1p()
    );
    def!(engine, "log", "Natural logarithm.\n```rhai\nlet y = log(tensor([1, 2]));\n```", |t: Tensor| t.log());
    def!(engine, "sqrt", "Square root.\n```rhai\nlet y = sqrt(tensor([1, 4]));\n```", |t: Tensor| t.sqrt());
    def!(engine, "abs", "Absolute value.\n```rhai\nlet y = abs(tensor([-1, 2]));\n```", |t: Tensor| t.abs());
    def!(engine, "relu", "`max(x, 0)`.\n```rhai\nlet y = relu(tensor([-1, 2]));\n```", |t: Tensor| t.relu());
    def!(
        engine,
        "relu6",
        "`min(max(x, 0), 6)` (torch.nn.functional.relu6); the gradient passes where `0 < x < 6`.\n```rhai\nlet y = relu6(tensor([-1, 2, 7]));\n```",
        |t: Tensor| t.relu6()
    );
    def!(engine, "sigmoid", "Logistic sigmoid.\n```rhai\nlet y = sigmoid(tensor([0]));\n```", |t: Tensor| t.sigmoid());
    def!(engine, "tanh", "Hyperbolic tangent.\n```rhai\nlet y = tanh(tensor([0.5]));\n```", |t: Tensor| t.tanh());
    def!(engine, "pow", "Each element to the power `p`.\n```rhai\nlet y = pow(tensor([2, 3]), 2);\n```", |t: Tensor, p: f64| t
        .powf(p as f32));
    def!(engine, "pow", "Each element to the power `p`.\n```rhai\nlet y = pow(tensor([2, 3]), 2);\n```", |t: Tensor, p: INT| t
        .powf(p as f32));
    def!(
        engine,
        "clamp",
        "Limits values to `[lo, hi]`.\n```rhai\nlet y = clamp(tensor([-1, 0.5, 2]), 0.0, 1.0);\n```",
        |t: Tensor, lo: f64, hi: f64| lib(t.clamp(lo as f32, hi as f32))
    );
    def!(
        engine,
        "clamp",
        "Limits values to `[lo, hi]`.\n```rhai\nlet y = clamp(tensor([-1, 0.5, 2]), 0, 1);\n```",
        |t: Tensor, lo: INT, hi: INT| lib(t.clamp(lo as f32, hi as f32))
    );

    // reductions
    def!(engine, "sum", "Sum of all elements (a one-element tensor).\n```rhai\nlet s = sum(tensor([1, 2, 3]));\n```", |t: Tensor| t.sum());
    def!(
        engine,
        "sum",
        "Sum along `dim` (negative counts from the end).\n```rhai\nlet s = sum(ones([2, 3]), 1);\n```",
        |t: Tensor, dim: INT| lib(t.sum_dim(dim, false))
    );
    def!(
        engine,
        "sum",
        "Sum along `dim`, keeping it with size 1 when `keepdim`.\n```rhai\nlet s = sum(ones([2, 3]), 1, true);\n```",
        |t: Tensor, dim: INT, keep: bool| lib(t.sum_dim(dim, keep))
    );
    def!(
        engine,
        "logsumexp",
        "`log(sum(exp(x)))` along `dim`, stable for large values, with `-inf` entries counting as zero mass (torch.logsumexp).\n\
            ```rhai\n\
            let l = logsumexp(tensor([[1000.0, 999.0]]), 1);\n\
            ```",
        |t: Tensor, dim: INT| lib(t.logsumexp(dim, false))
    );
    def!(
        engine,
        "logsumexp",
        "`logsumexp` along `dim`, keeping it with size 1 when `keepdim`.\n```rhai\nlet l = logsumexp(tensor([[1.0, 2.0]]), 1, true);\n```",
        |t: Tensor, dim: INT, keep: bool| lib(t.logsumexp(dim, keep))
    );
    def!(engine, "mean", "Mean of all elements.\n```rhai\nlet m = mean(tensor([1, 2, 3]));\n```", |t: Tensor| lib(t.mean()));
    def!(engine, "mean", "Mean along `dim`.\n```rhai\nlet m = mean(ones([2, 3]), 0);\n```", |t: Tensor, dim: INT| lib(
        t.mean_dim(dim, false)
    ));
    def!(
        engine,
        "mean",
        "Mean along `dim`, keeping it when `keepdim`.\n```rhai\nlet m = mean(ones([2, 3]), 0, true);\n```",
        |t: Tensor, dim: INT, keep: bool| lib(t.mean_dim(dim, keep))
    );
    def!(engine, "max", "Largest element.\n```rhai\nlet m = max(tensor([1, 5, 3]));\n```", |t: Tensor| lib(t.max_all()));
    def!(
        engine,
        "max",
        "Largest values along `dim` (torch.amax; an integer `dim`).\n```rhai\nlet m = max(ones([2, 3]), 1);\n```",
        |t: Tensor, dim: INT| lib(t.extreme_dim(dim, false, true))
    );
    def!(
        engine,
        "amax",
        "Largest values along `dim` (torch.amax).\n```rhai\nlet m = amax(ones([2, 3]), 1);\n```",
        |t: Tensor, dim: INT| lib(t.extreme_dim(dim, false, true))
    );
    def!(
        engine,
        "amin",
        "Smallest values along `dim` (torch.amin).\n```rhai\nlet m = amin(ones([2, 3]), 1);\n```",
        |t: Tensor, dim: INT| lib(t.extreme_dim(dim, false, false))
    );
    def!(engine, "min", "Smallest element.\n```rhai\nlet m = min(tensor([1, 5, 3]));\n```", |t: Tensor| lib(t.min_all()));
    def!(
        engine,
        "min",
        "Smallest values along `dim` (torch.amin; an integer `dim`).\n```rhai\nlet m = min(ones([2, 3]), 1);\n```",
        |t: Tensor, dim: INT| lib(t.extreme_dim(dim, false, false))
    );
    def!(engine, "softmax", "Softmax along the last dim.\n```rhai\nlet p = softmax(tensor([[1.0, 2.0]]));\n```", |t: Tensor| lib(
        t.softmax(-1)
    ));
    def!(engine, "softmax", "Softmax along `dim`.\n```rhai\nlet p = softmax(tensor([[1.0, 2.0]]), 1);\n```", |t: Tensor, dim: INT| lib(
        t.softmax(dim)
    ));
    def!(
        engine,
        "log_softmax",
        "Log-softmax along the last dim.\n```rhai\nlet lp = log_softmax(tensor([[1.0, 2.0]]));\n```",
        |t: Tensor| lib(t.log_softmax(-1))
    );
    def!(
        engine,
        "log_softmax",
        "Log-softmax along `dim`.\n```rhai\nlet lp = log_softmax(tensor([[1.0, 2.0]]), 1);\n```",
        |t: Tensor, dim: INT| lib(t.log_softmax(dim))
    );

    // comparisons and selection
    cmp(engine, "gt", ">", |a, b| a > b);
    cmp(engine, "lt", "<", |a, b| a < b);
    cmp(engine, "ge", ">=", |a, b| a >= b);
    cmp(engine, "le", "<=", |a, b| a <= b);
    cmp(engine, "eq", "==", |a, b| a == b);
    cmp(engine, "ne", "!=", |a, b| a != b);
    def!(
        engine,
        "where",
        "`mask ? a : b` element-wise (non-zero mask selects `a`), broadcasting.\n\
        ```rhai\n\
        let y = where(tensor([1, 0]), tensor([1, 2]), 0.0);\n\
        ```",
        |m: Tensor, a: Tensor, b: Tensor| lib(Tensor::where_(&m, &a, &b))
    );
    def!(
        engine,
        "where",
        "`mask ? a : b` with a number for `b`.\n```rhai\nlet y = where(tensor([1, 0]), tensor([1, 2]), 0.0);\n```",
        |m: Tensor, a: Tensor, b: f64| lib(Tensor::where_(&m, &a, &scalar(b)))
    );
    def!(
        engine,
        "where",
        "`mask ? a : b` with a number for `a`.\n```rhai\nlet y = where(tensor([1, 0]), 1.0, tensor([5, 6]));\n```",
        |m: Tensor, a: f64, b: Tensor| lib(Tensor::where_(&m, &scalar(a), &b))
    );
    def!(
        engine,
        "one_hot",
        "`[n]` labels to `[n, classes]` of 0/1.\n```rhai\nlet y = one_hot(tensor([2, 0]), 3);\n```",
        |labels: Tensor, classes: INT| {
            if classes <= 0 {
                return err(format!("one_hot: classes must be positive, got {classes}"));
            }
            lib(Tensor::one_hot(&labels, classes as usize))
        }
    );
    def!(
        engine,
        "pick",
        "`x[i, labels[i]]` for `x [n, c]`: one entry per row.\n```rhai\nlet p = pick(tensor([[1, 2], [3, 4]]), tensor([1, 0]));\n```",
        |t: Tensor, labels: Tensor| lib(t.pick(&labels))
    );
    def!(
        engine,
        "gather",
        "Same as `pick`: one entry per row by label.\n```rhai\nlet p = gather(tensor([[1, 2], [3, 4]]), tensor([1, 0]));\n```",
        |t: Tensor, labels: Tensor| lib(t.pick(&labels))
    );
}
