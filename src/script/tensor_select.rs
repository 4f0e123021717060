//! Tensor built-ins for analysing logits, as PyTorch names them: ordering (`argmax`, `sort`,
//! `topk`, `quantile`), selecting (`index_select`, `gather`, `rows`, `narrow`), joining (`cat`,
//! `stack`, `split`, `chunk`) and statistics (`std`, `var`, `norm`, `kl_div`, `cumsum`).

use super::convert::{as_f64, err, lib, type_of, Res};
use crate::def;
use crate::tensor::stats::Reduction;
use crate::tensor::Tensor;
use rhai::{Array, Dynamic, Engine, Map, INT};

/// A count or size argument: a non-negative integer.
fn count(op: &str, what: &str, v: INT) -> Res<usize> {
    usize::try_from(v).or_else(|_| err(format!("{op}: {what} must be a non-negative integer, got {v}")))
}

/// A number argument, integer or float.
fn number(op: &str, what: &str, v: &Dynamic) -> Res<f64> {
    as_f64(v).map_or_else(|| err(format!("{op}: {what} must be a number, got {}", type_of(v))), Ok)
}

/// An array of tensors.
fn tensors(op: &str, list: &Array) -> Res<Vec<Tensor>> {
    list.iter()
        .enumerate()
        .map(|(i, v)| v.clone().try_cast::<Tensor>().ok_or_else(|| format!("{op}: element {i} is {}, not a tensor", type_of(v)).into()))
        .collect()
}

/// `#{ values, indices }`, as torch.sort and torch.topk return.
fn values_indices((values, indices): (Tensor, Tensor)) -> Map {
    let mut m = Map::new();
    m.insert("values".into(), Dynamic::from(values));
    m.insert("indices".into(), Dynamic::from(indices));
    m
}

/// `p` of a norm: 1, 2, or `"inf"` (or an infinite number).
fn norm_p(v: &Dynamic) -> Res<f64> {
    if v.clone().into_string().is_ok_and(|s| s == "inf") {
        return Ok(f64::INFINITY);
    }
    number("norm", "p", v)
}

/// The rows `start..end` of `x` (first dim), as Python's `x[a:b]`: negative bounds count from
/// the end; bounds past it are refused (not clipped, so a typo does not pass silently).
fn slice_rows(x: &Tensor, start: INT, end: INT, inclusive: bool) -> Res<Tensor> {
    let Some(&n) = x.shape().first() else { return err("x[a..b]: a scalar tensor has no rows to slice") };
    let at = |i: INT| if i < 0 { i + n as INT } else { i };
    let (a, b) = (at(start), at(end) + inclusive as INT);
    if a < 0 || b < a || b > n as INT {
        let written = if inclusive { format!("{start}..={end}") } else { format!("{start}..{end}") };
        return err(format!("x[{written}]: rows {a}..{b} are not within the {n} rows of a tensor of shape {:?}", x.shape()));
    }
    lib(x.narrow(0, a as usize, (b - a) as usize))
}

pub fn register(engine: &mut Engine) {
    // x[a..b] and x[a..=b]: rows of the first dim (torch's x[a:b]), differentiable
    engine.register_indexer_get(|x: &mut Tensor, r: std::ops::Range<INT>| slice_rows(x, r.start, r.end, false));
    engine.register_indexer_get(|x: &mut Tensor, r: std::ops::RangeInclusive<INT>| slice_rows(x, *r.start(), *r.end(), true));
    // ordering
    def!(
        engine,
        "argmax",
        "Position of the largest value along `dim`, the first of ties, NaN counting as largest (torch.argmax); `dim` removed. No gradient.\n\
        ```rhai\n\
        let predicted = argmax(tensor([[0.1, 2.0, 0.3], [5.0, 1.0, 0.0]]), 1);   // [1, 0]\n\
        ```",
        |x: Tensor, dim: INT| lib(x.argextreme(dim, true))
    );
    def!(
        engine,
        "argmax",
        "Position of the largest value of the flattened tensor (torch.argmax(x)).\n```rhai\nlet i = argmax(tensor([3, 9, 1]));   // [1]\n```",
        |x: Tensor| lib(x.flatten().and_then(|f| f.argextreme(0, true)).and_then(|t| t.reshape(&[1])))
    );
    def!(
        engine,
        "argmin",
        "Position of the smallest value along `dim`, the first of ties (torch.argmin); `dim` removed. No gradient.\n\
        ```rhai\n\
        let i = argmin(tensor([[0.1, 2.0], [5.0, 1.0]]), 1);   // [0, 1]\n\
        ```",
        |x: Tensor, dim: INT| lib(x.argextreme(dim, false))
    );
    def!(
        engine,
        "argmin",
        "Position of the smallest value of the flattened tensor (torch.argmin(x)).\n```rhai\nlet i = argmin(tensor([3, 9, 1]));   // [2]\n```",
        |x: Tensor| lib(x.flatten().and_then(|f| f.argextreme(0, false)).and_then(|t| t.reshape(&[1])))
    );
    def!(
        engine,
        "sort",
        "`#{ values, indices }`: `x` sorted ascending along `dim` (stable: equal values keep their order; NaN last) and where each value came from (torch.sort). `values` carries the gradient.\n\
        ```rhai\n\
        let s = sort(tensor([3.0, 1.0, 2.0]), 0);   // s.values [1, 2, 3], s.indices [1, 2, 0]\n\
        ```",
        |x: Tensor, dim: INT| lib(x.sort(dim, false)).map(values_indices)
    );
    def!(
        engine,
        "sort",
        "`sort` descending when `descending` (still stable).\n```rhai\nlet s = sort(tensor([3.0, 1.0, 2.0]), 0, true);\n```",
        |x: Tensor, dim: INT, descending: bool| lib(x.sort(dim, descending)).map(values_indices)
    );
    def!(
        engine,
        "argsort",
        "The positions that sort `x` ascending along `dim`, stable (torch.argsort(stable=True)).\n```rhai\nlet order = argsort(tensor([3.0, 1.0, 2.0]), 0);   // [1, 2, 0]\n```",
        |x: Tensor, dim: INT| lib(x.argsort(dim, false))
    );
    def!(
        engine,
        "argsort",
        "`argsort` descending when `descending` (stable: ties keep their order).\n```rhai\nlet order = argsort(tensor([3.0, 1.0, 3.0]), 0, true);   // [0, 2, 1]\n```",
        |x: Tensor, dim: INT, descending: bool| lib(x.argsort(dim, descending))
    );
    def!(
        engine,
        "topk",
        "`#{ values, indices }` of the `k` largest values along `dim`, largest first (torch.topk; ties: the earlier position first). `values` carries the gradient.\n\
        ```rhai\n\
        let confident = topk(tensor([0.2, 0.9, 0.5, 0.7]), 2, 0);   // values [0.9, 0.7], indices [1, 3]\n\
        ```",
        |x: Tensor, k: INT, dim: INT| lib(x.topk(count("topk", "k", k)?, dim, true)).map(values_indices)
    );
    def!(
        engine,
        "topk",
        "`topk` of the smallest values (smallest first) when `largest` is false.\n```rhai\nlet least = topk(tensor([0.2, 0.9, 0.5]), 2, 0, false);   // values [0.2, 0.5]\n```",
        |x: Tensor, k: INT, dim: INT, largest: bool| lib(x.topk(count("topk", "k", k)?, dim, largest)).map(values_indices)
    );
    def!(
        engine,
        "quantile",
        "The `q`-quantile (0 to 1) along `dim`, interpolated linearly between the two nearest ranks (torch.quantile; computed in float64); NaN in a lane gives NaN. Differentiable.\n\
        ```rhai\n\
        let cut = quantile(tensor([[1.0, 2.0, 4.0, 10.0]]), 0.9, 1);   // [8.2]\n\
        ```",
        |x: Tensor, q: Dynamic, dim: INT| lib(x.quantile(number("quantile", "q", &q)?, dim, false))
    );
    def!(
        engine,
        "quantile",
        "The `q`-quantile of all the values (torch.quantile(x, q)).\n```rhai\nlet median = quantile(tensor([1.0, 2.0, 4.0, 10.0]), 0.5);   // [3.0]\n```",
        |x: Tensor, q: Dynamic| {
            let q = number("quantile", "q", &q)?;
            lib(x.flatten().and_then(|f| f.quantile(q, 0, true)))
        }
    );

    // selecting
    def!(
        engine,
        "index_select",
        "The entries `indices` (a 1-d tensor of positions, repeats allowed) of `dim`, in that order (torch.index_select). Differentiable in `x`.\n\
        ```rhai\n\
        let picked = index_select(tensor([[1, 2], [3, 4], [5, 6]]), 0, tensor([2, 0]));   // [[5, 6], [1, 2]]\n\
        ```",
        |x: Tensor, dim: INT, indices: Tensor| lib(x.index_select(dim, &indices))
    );
    def!(
        engine,
        "gather",
        "`out[i][j] = x[i][indices[i][j]]` along `dim` = 1 (and so on for other dims): `indices` has the rank of `x` (torch.gather). Differentiable in `x`.\n\
        ```rhai\n\
        let on_label = gather(tensor([[0.1, 0.9], [0.8, 0.2]]), 1, tensor([[1], [0]]));   // [[0.9], [0.8]]\n\
        ```",
        |x: Tensor, dim: INT, indices: Tensor| lib(x.gather(dim, &indices))
    );
    def!(
        engine,
        "masked_select",
        "The values where `mask` (broadcast to `x`) is not 0, as a 1-d tensor in order (torch.masked_select). Differentiable in `x`.\n\
        ```rhai\n\
        let high = masked_select(tensor([0.2, 0.9, 0.7]), tensor([0.2, 0.9, 0.7]) > 0.5);   // [0.9, 0.7]\n\
        ```",
        |x: Tensor, mask: Tensor| lib(x.masked_select(&mask))
    );
    def!(
        engine,
        "rows",
        "The rows (entries of dim 0) where `mask`, one value per row, is not 0 (`x[mask]` in PyTorch). Differentiable in `x`.\n\
        ```rhai\n\
        let kept = rows(tensor([[1, 2], [3, 4], [5, 6]]), tensor([1, 0, 1]));   // [[1, 2], [5, 6]]\n\
        ```",
        |x: Tensor, mask: Tensor| lib(x.rows(&mask))
    );
    def!(
        engine,
        "narrow",
        "`len` entries of `dim` from `start` (torch.narrow). Along dim 0, `x[a..b]` and `x[a..=b]` slice rows too (negative bounds count from the end). Differentiable.\n\
        ```rhai\n\
        let first_two = narrow(tensor([[1, 2], [3, 4], [5, 6]]), 0, 0, 2);\n\
        ```",
        |x: Tensor, dim: INT, start: INT, len: INT| lib(x.narrow(dim, count("narrow", "start", start)?, count("narrow", "len", len)?))
    );
    def!(
        engine,
        "nonzero",
        "The positions of the values that are not 0, `[count, rank]` (torch.nonzero). No gradient.\n```rhai\nlet at = nonzero(tensor([0, 3, 0, 5]));   // [[1], [3]]\n```",
        |x: Tensor| x.nonzero()
    );
    def!(
        engine,
        "argwhere",
        "`nonzero` under NumPy's name (np.argwhere).\n```rhai\nlet at = argwhere(tensor([[0, 1], [1, 0]]));   // [[0, 1], [1, 0]]\n```",
        |x: Tensor| x.nonzero()
    );
    def!(
        engine,
        "count_nonzero",
        "How many values are not 0, as a one-element tensor (torch.count_nonzero).\n```rhai\nlet n = count_nonzero(tensor([0, 3, 0, 5]));   // [2]\n```",
        |x: Tensor| lib(x.count_nonzero(None))
    );
    def!(
        engine,
        "count_nonzero",
        "How many values are not 0 along `dim`.\n```rhai\nlet per_row = count_nonzero(tensor([[0, 1], [1, 1]]), 1);   // [1, 2]\n```",
        |x: Tensor, dim: INT| lib(x.count_nonzero(Some(dim)))
    );

    // joining and splitting
    def!(
        engine,
        "cat",
        "Joins an array of tensors along `dim`; the sizes off `dim` must agree (torch.cat). Differentiable in each.\n\
        ```rhai\n\
        let all = cat([zeros([2, 3]), ones([1, 3])], 0);   // [3, 3]\n\
        ```",
        |list: Array, dim: INT| lib(Tensor::cat(&tensors("cat", &list)?, dim))
    );
    def!(
        engine,
        "stack",
        "Joins an array of tensors of one shape along a new `dim` (torch.stack). Differentiable in each.\n\
        ```rhai\n\
        let pair = stack([tensor([1, 2]), tensor([3, 4])], 0);   // [2, 2]\n\
        ```",
        |list: Array, dim: INT| lib(Tensor::stack(&tensors("stack", &list)?, dim))
    );
    def!(
        engine,
        "split",
        "An array of pieces of `size` entries along `dim`, the last possibly shorter (torch.split).\n\
        ```rhai\n\
        let batches = split(zeros([10, 4]), 4, 0);   // shapes [4, 4], [4, 4], [2, 4]\n\
        ```",
        |x: Tensor, size: INT, dim: INT| lib(x.split(count("split", "size", size)?, dim))
            .map(|v| v.into_iter().map(Dynamic::from).collect::<Array>())
    );
    def!(
        engine,
        "chunk",
        "An array of `chunks` pieces of (nearly) equal size along `dim`, fewer when the dim is short (torch.chunk).\n\
        ```rhai\n\
        let halves = chunk(zeros([10, 4]), 2, 0);   // two [5, 4]\n\
        ```",
        |x: Tensor, chunks: INT, dim: INT| lib(x.chunk(count("chunk", "chunks", chunks)?, dim))
            .map(|v| v.into_iter().map(Dynamic::from).collect::<Array>())
    );

    // statistics
    // `var` is a reserved word in Rhai: torch.var is `variance` here
    for (name, torch, root) in [("variance", "var", false), ("std", "std", true)] {
        let what = if root { "Standard deviation" } else { "Variance (torch.var; `var` is a reserved word in Rhai)" };
        let f = move |x: &Tensor, dim: Option<i64>, unbiased: bool| {
            if root {
                x.std(dim, unbiased, false)
            } else {
                x.var(dim, unbiased, false)
            }
        };
        def!(
            engine,
            name,
            &format!("{what} of all values, unbiased (divided by n - 1, torch.{torch}'s default; computed in float64). Differentiable.\n```rhai\nlet s = {name}(tensor([1.0, 2.0, 4.0]));\n```"),
            move |x: Tensor| lib(f(&x, None, true))
        );
        def!(
            engine,
            name,
            &format!("{what} along `dim`, unbiased.\n```rhai\nlet s = {name}(tensor([[1.0, 2.0], [4.0, 8.0]]), 1);\n```"),
            move |x: Tensor, dim: INT| lib(f(&x, Some(dim), true))
        );
        def!(
            engine,
            name,
            &format!("{what} along `dim`, divided by n - 1 when `unbiased`, by n otherwise (torch.{torch}(x, dim, unbiased)).\n```rhai\nlet s = {name}(tensor([[1.0, 2.0], [4.0, 8.0]]), 1, false);\n```"),
            move |x: Tensor, dim: INT, unbiased: bool| lib(f(&x, Some(dim), unbiased))
        );
    }
    def!(
        engine,
        "norm",
        "The `p`-norm of all values: `p` = 1, 2 or \"inf\" (torch.linalg.vector_norm; float64). Differentiable (gradient 0 at the zero vector).\n\
        ```rhai\n\
        let l2 = norm(tensor([3.0, 4.0]), 2);   // [5.0]\n\
        ```",
        |x: Tensor, p: Dynamic| {
            let p = norm_p(&p)?;
            lib(x.norm(p, None, false))
        }
    );
    def!(
        engine,
        "norm",
        "The `p`-norm along `dim`.\n```rhai\nlet per_row = norm(tensor([[3.0, 4.0], [1.0, 0.0]]), \"inf\", 1);   // [4.0, 1.0]\n```",
        |x: Tensor, p: Dynamic, dim: INT| {
            let p = norm_p(&p)?;
            lib(x.norm(p, Some(dim), false))
        }
    );
    def!(
        engine,
        "cumsum",
        "Running sums along `dim` (torch.cumsum; float64). Differentiable.\n```rhai\nlet c = cumsum(tensor([1, 2, 3]), 0);   // [1, 3, 6]\n```",
        |x: Tensor, dim: INT| lib(x.cumsum(dim))
    );
    def!(
        engine,
        "kl_div",
        "KL divergence of the target distribution `q` (probabilities) from `log_p` (log-probabilities), `sum q (log q - log_p)` with `0 log 0 = 0`, divided by the batch size (`log_p`'s dim 0): \
        torch.nn.functional.kl_div(log_p, q, reduction=\"batchmean\"), the per-sample KL that distillation uses. Differentiable in both.\n\
        ```rhai\n\
        let s = log_softmax(tensor([[1.0, 2.0], [0.5, 0.5]]) / 4.0, 1);\n\
        let t = softmax(tensor([[2.0, 1.0], [0.0, 1.0]]) / 4.0, 1);\n\
        let kl = kl_div(s, t);\n\
        ```",
        |log_p: Tensor, q: Tensor| lib(Tensor::kl_div(&log_p, &q, Reduction::BatchMean))
    );
    def!(
        engine,
        "kl_div",
        "`kl_div` with torch's `reduction`: \"batchmean\" (the sum divided by dim 0), \"sum\", \"mean\" (over every element: torch's default, which also divides by the number of classes) or \"none\".\n\
        ```rhai\n\
        let pointwise = kl_div(log_softmax(tensor([[1.0, 2.0]]), 1), tensor([[0.5, 0.5]]), \"none\");\n\
        ```",
        |log_p: Tensor, q: Tensor, reduction: &str| lib(reduction.parse().and_then(|r| Tensor::kl_div(&log_p, &q, r)))
    );
}
