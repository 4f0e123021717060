//! The analysis built-ins through the script language: values and gradients against float64
//! references computed here, a validation split that never lets the test set choose the best
//! epoch, and the training hooks (a filter's `index`, `on_epoch_start`, `on_step`, `lr_lambda`).

use retort::run::RunDir;
use retort::script::session::Session;
use retort::script::RunOptions;

fn session() -> Session {
    Session::new(&RunOptions::default(), std::env::temp_dir()).unwrap()
}

/// The numbers of a printed array or tensor value (`[1.5, 2.0]`, `Tensor[2] [1.5, 2]`).
fn numbers(s: &mut Session, expr: &str) -> Vec<f64> {
    let v = s.eval(&format!("({expr}).to_array()")).unwrap_or_else(|e| panic!("{expr}: {e}")).value.unwrap();
    v.replace(['[', ']'], " ").split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect()
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0) || (g.is_nan() && w.is_nan()), "{what}: {got:?} vs {want:?}");
    }
}

const X: [f32; 8] = [0.5, -1.25, 3.0, 2.0, -0.75, 4.5, 1.0, 0.25];

#[test]
fn analysis_builtins_agree_with_float64_in_value_and_gradient() {
    let mut s = session();
    s.eval(&format!("let x = tensor({:?}).reshape([2, 4]);\nlet xg = requires_grad(x);", X)).unwrap();
    let x: Vec<f64> = X.iter().map(|v| *v as f64).collect();
    let rows: Vec<&[f64]> = x.chunks(4).collect();
    // statistics, in float64
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let var = |r: &[f64], u: f64| r.iter().map(|v| (v - mean(r)).powi(2)).sum::<f64>() / (r.len() as f64 - u);
    close(&numbers(&mut s, "variance(x, 1)"), &rows.iter().map(|r| var(r, 1.0)).collect::<Vec<_>>(), "variance");
    close(&numbers(&mut s, "std(x, 1, false)"), &rows.iter().map(|r| var(r, 0.0).sqrt()).collect::<Vec<_>>(), "std biased");
    close(&numbers(&mut s, "std(x)"), &[var(&x, 1.0).sqrt()], "std of all");
    close(&numbers(&mut s, "norm(x, 2)"), &[x.iter().map(|v| v * v).sum::<f64>().sqrt()], "norm 2");
    close(&numbers(&mut s, "norm(x, 1, 1)"), &rows.iter().map(|r| r.iter().map(|v| v.abs()).sum()).collect::<Vec<_>>(), "norm 1");
    close(&numbers(&mut s, "norm(x, \"inf\", 0)"), &[0.75, 4.5, 3.0, 2.0], "norm inf");
    close(&numbers(&mut s, "cumsum(x, 1)"), &[0.5, -0.75, 2.25, 4.25, -0.75, 3.75, 4.75, 5.0], "cumsum");
    // torch.quantile(x[0], 0.3): sorted [-1.25, 0.5, 2, 3], position 0.9 -> -1.25 + 0.9 * 1.75
    close(&numbers(&mut s, "quantile(x, 0.3, 1)"), &[-1.25 + 0.9 * 1.75, -0.75 + 0.9 * 1.0], "quantile");
    // KL(q || p) batchmean, with a zero in q
    let (lp, q) = ([-0.5f32, -1.5, -2.0, -0.25], [0.25f32, 0.75, 0.0, 1.0]);
    let kl: f64 = lp.iter().zip(&q).filter(|(_, q)| **q > 0.0).map(|(l, q)| *q as f64 * ((*q as f64).ln() - *l as f64)).sum::<f64>() / 2.0;
    close(&numbers(&mut s, &format!("kl_div(tensor({lp:?}).reshape([2, 2]), tensor({q:?}).reshape([2, 2]))")), &[kl], "kl_div");
    // ordering and selecting
    close(&numbers(&mut s, "argmax(x, 1)"), &[2.0, 1.0], "argmax");
    close(&numbers(&mut s, "sort(x, 1).indices"), &[1.0, 0.0, 3.0, 2.0, 0.0, 3.0, 2.0, 1.0], "sort");
    close(&numbers(&mut s, "topk(x, 2, 1).values"), &[3.0, 2.0, 4.5, 1.0], "topk");
    close(&numbers(&mut s, "gather(x, 1, tensor([[3], [0]]))"), &[2.0, -0.75], "gather");
    close(&numbers(&mut s, "rows(x, tensor([0, 1]))"), &[-0.75, 4.5, 1.0, 0.25], "rows");
    close(&numbers(&mut s, "cat(split(x, 3, 1), 1)"), &x, "split and cat");
    close(&numbers(&mut s, "tensor(stack(chunk(x, 2, 0), 0).shape)"), &[2.0, 1.0, 4.0], "chunk and stack");
    close(&numbers(&mut s, "count_nonzero(x > 1, 1)"), &[2.0, 1.0], "count_nonzero");
    // gradients: d std / dx = (x - mean) / ((n - 1) std); d topk values / dx = 1 at the picked
    let std = var(&x, 1.0).sqrt();
    let want: Vec<f64> = x.iter().map(|v| (v - mean(&x)) / (7.0 * std)).collect();
    close(&numbers(&mut s, "grad(std(xg), xg)"), &want, "grad std");
    close(&numbers(&mut s, "grad(sum(topk(xg, 2, 1).values), xg)"), &[0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0], "grad topk");
    close(&numbers(&mut s, "grad(sum(quantile(xg, 0.3, 1)), xg)"), &[0.9, 0.1, 0.0, 0.0, 0.1, 0.0, 0.0, 0.9], "grad quantile");
    let n2 = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    close(&numbers(&mut s, "grad(sum(norm(xg, 2)), xg)"), &x.iter().map(|v| v / n2).collect::<Vec<_>>(), "grad norm");
    close(&numbers(&mut s, "grad(sum(cumsum(xg, 1)), xg)"), &[4.0, 3.0, 2.0, 1.0, 4.0, 3.0, 2.0, 1.0], "grad cumsum");
    // bad arguments are errors that say what to do
    for (bad, says) in [
        ("topk(x, 9, 1)", "k = 9 is larger"),
        ("quantile(x, 1.5, 1)", "must be within [0, 1]"),
        ("norm(x, 3)", "use 1, 2 or inf"),
        ("kl_div(x, x, \"avg\")", "reduction 'avg' is unknown"),
        ("index_select(x, 1, tensor([4]))", "index 4 is not a whole number in 0..4"),
        ("cat([x, zeros([3])], 0)", "tensor 1"),
        ("narrow(x, 1, 3, 2)", "outside"),
    ] {
        let e = s.eval(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

/// Acceptance 3 of the built-ins issue: with a validation part, the best epoch is the one with
/// the best validation accuracy, whatever the test set says, and every record says so.
#[test]
fn with_a_validation_split_the_best_epoch_is_chosen_on_validation() {
    let dir = std::env::temp_dir().join(format!("retort-val-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("v.rhai"),
        "let d = dataset(\"digits\", #{ val_fraction: 0.15, train_limit: 500, test_limit: 200 });\nlet m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes });\nlet r = fit(m, d, #{ epochs: 8, optimizer: sgd(#{ lr: 0.3 }) });\nprint(`${r.best_on} ${r.best_epoch}`);\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["run", dir.join("v.rhai").to_str().unwrap(), "--out", dir.join("run").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = RunDir::open(&dir.join("run")).unwrap();
    let history: Vec<_> = run.read_metrics().unwrap().into_iter().map(|l| l.record).collect();
    let by_val = history.iter().fold(&history[0], |b, r| if r.val_accuracy.unwrap() > b.val_accuracy.unwrap() { r } else { b });
    let stage = &run.read_summary().unwrap().stages[0];
    assert_eq!((stage.best_on.as_str(), stage.best_epoch), ("val", by_val.epoch));
    assert_eq!((stage.best_accuracy, stage.best_val_accuracy), (by_val.test_accuracy, by_val.val_accuracy));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("val {}", by_val.epoch));
    // normalization statistics come from the training part alone: its features have mean 0
    let mut s = session();
    let m = numbers(&mut s, "mean(batch(dataset(\"digits\", #{ val_fraction: 0.15 }).train, 1293).x)");
    assert!(m[0].abs() < 1e-4, "{m:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hooks_see_positions_steps_and_epoch_starts() {
    let mut s = session();
    s.eval("let d = dataset(\"digits\", #{ train_limit: 100, test_limit: 20 });\nlet t = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes });\nlet m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes });").unwrap();
    // every training sample's position comes by exactly once an epoch; on_step sees each step
    let e = s
        .eval(
            "let seen = []; let steps = []; let starts = [];\n\
             let r = distill(t, m, d, #{ epochs: 2, batch: 32, loss: \"wsl\",\n\
                 optimizer: sgd(#{ lr: 0.2 }), lr_lambda: |epoch| 0.5,\n\
                 on_epoch_start: |epoch| starts.push(epoch),\n\
                 on_step: |st| steps.push([st.epoch, st.step, st.lr, st.temperature]),\n\
                 filter: |b| { seen += b.index.to_array(); ones(b.labels.shape) } });\n\
             seen.sort();\n\
             [starts, steps.len(), steps[0], steps[-1][1], seen.len(), seen[0], seen[-1], r.history[0].lr]",
        )
        .unwrap();
    assert_eq!(e.value.as_deref(), Some("[[1, 2], 8, [1, 1, 0.1, 4.0], 4, 200, 0.0, 99.0, 0.1]"), "{e:?}");
    // lr_schedule and lr_lambda together are refused
    let err = s.eval("fit(m, d, #{ epochs: 1, lr_schedule: |e| 0.1, lr_lambda: |e| 1.0 })").unwrap_err().to_string();
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn data_from_arrays_subsets_concat_slices_and_messages() {
    let mut s = session();
    s.eval("let labels = [];\nfor i in 0..40 { labels.push(i % 4); }\nlet d = dataset_from(randn([40, 3]), labels, #{ test_fraction: 0.25, val_fraction: 0.2 });").unwrap();
    assert_eq!(s.eval("[d.train.len, d.val.len, d.test.len, d.classes, d.input]").unwrap().value.as_deref(), Some("[24, 4, 12, 4, [3]]"));
    assert_eq!(s.eval("subset(d, [0, 1, 1]).train.len").unwrap().value.as_deref(), Some("3"));
    assert_eq!(s.eval("let c = concat(d, d); [c.train.len, c.val.len, c.test.len]").unwrap().value.as_deref(), Some("[48, 8, 24]"));
    let e = s.eval("concat(dataset(\"digits\"), d)").unwrap_err().to_string();
    assert!(e.contains("one data set has a validation part"), "{e}");
    let e = s.eval("dataset_from(zeros([4, 2]), [0, 1, 2], #{})").unwrap_err().to_string();
    assert!(e.contains("labels [samples]"), "{e}");
    // x[a..b] slices rows, negative bounds from the end; out of range is an error
    s.eval("let x = tensor([[1, 2], [3, 4], [5, 6]]);").unwrap();
    assert_eq!(numbers(&mut s, "x[1..3]"), [3.0, 4.0, 5.0, 6.0]);
    assert_eq!(numbers(&mut s, "x[-1..=-1]"), [5.0, 6.0]);
    assert!(s.eval("x[2..5]").unwrap_err().to_string().contains("not within the 3 rows"));
    // integers where numbers are expected
    assert_eq!(numbers(&mut s, "full([2], 1)"), [1.0, 1.0]);
    // a built-in called with its arguments in the wrong order names what it takes
    s.eval("let m = model(\"mlp\", #{ input: d.input, classes: d.classes });").unwrap();
    let e = s.eval("fit(d, m, #{})").unwrap_err().to_string();
    assert!(
        e.contains("fit was called with (Dataset, Model, map), which no fit takes; it takes:")
            && e.contains("fit(_: Model, _: Dataset, _: map)"),
        "{e}"
    );
    // report joins an array of lines (shown, without a run directory)
    let out = s.eval("report([\"## a\", `b ${1 + 1}`])").unwrap().outputs;
    assert_eq!(out, vec![retort::script::session::Output::Text("## a\nb 2".into())]);
}
