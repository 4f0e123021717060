//! Every option of every built-in that takes an options map (`fit`, `distill`, `dataset`,
//! `model`, `sgd`, `adam`, `adamw`) and every `defaults` parameter either changes the result
//! or is refused with a message. The option lists come from the built-ins themselves (their
//! "known options" error), so an option added later without a row here fails this test.

use super::scripts::retort;
use std::collections::BTreeSet;

/// What setting one option to a non-default value must do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The printed fingerprint differs from the call without the option.
    Changes,
    /// The call fails with this message part.
    Refused(&'static str),
    /// A resource setting (a batch size for evaluation): the result is the same, and an
    /// invalid value is refused with this message part.
    Resource(&'static str, &'static str),
}
use Expect::*;

/// A built-in's test: the script around `OPTS` (the options map's entries, after the base
/// entries) and the rows `(option, entries that set it, expectation)`.
struct Builtin {
    name: &'static str,
    /// A call with an unknown option, whose error lists the known ones.
    probe: &'static str,
    script: &'static str,
    rows: &'static [&'static [Row]],
}

/// `(option, the entries that set it, what that must do)`.
type Row = (&'static str, &'static str, Expect);

/// The options `fit` and `distill` share.
const TRAINING: &[Row] = &[
    ("epochs", "epochs: 2", Changes),
    ("batch", "batch: 32", Changes),
    ("optimizer", "optimizer: sgd(#{ lr: 0.01 })", Changes),
    ("lr_schedule", "lr_schedule: |epoch, step| 0.01", Changes),
    ("lr_lambda", "lr_lambda: |epoch| 0.1", Changes),
    ("on_epoch_start", "on_epoch_start: |epoch| print(`starting ${epoch}`)", Changes),
    ("on_step", "on_step: |s| print(s.step)", Changes),
    ("augment", "augment: true", Changes),
    ("seed", "seed: 5", Changes),
    ("on_epoch", "on_epoch: |e| print(`epoch ${e.epoch}`)", Changes),
    ("eval_batch", "eval_batch: 7", Resource("eval_batch: 0", "batch sizes")),
    ("label_smoothing", "label_smoothing: 0.2", Changes),
    ("label", "label: \"mine\"", Changes),
    ("device", "device: \"cuda\"", Refused("cuda")),
];

/// The options `adam` and `adamw` share (weight decay 0.5 differs from both defaults).
const ADAM: &[Row] = &[
    ("lr", "lr: 0.02", Changes),
    ("betas", "betas: [0.5, 0.9]", Changes),
    ("eps", "eps: 0.1", Changes),
    ("weight_decay", "weight_decay: 0.5", Changes),
];

const DATA: &str = "let d = dataset(\"digits\", #{ train_limit: 96, test_limit: 32 });\n";

/// Prints what a training run gave, without wall times.
const REPORT: &str = "print(r.history.map(|h| [h.train_loss, h.test_loss, h.test_accuracy, h.lr, h.temperature, h.alpha, h.mean_weight, h.filtered]));\nprint(r.label);\nprint(sum(m.forward(batch(d.test, 4).x)).item());\n";

const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "fit",
        probe: "fit(m, d, #{ qqqqqqqqqq: 1 })",
        script: "let m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes, seed: 1 });\nlet r = fit(m, d, #{ epochs: 1 } + #{ OPTS });\n",
        rows: &[TRAINING],
    },
    Builtin {
        name: "distill",
        probe: "distill(t, m, d, #{ qqqqqqqqqq: 1 })",
        script: "let t = model(\"mlp\", #{ input: d.input, hidden: [16], classes: d.classes, seed: 3 });\nlet m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes, seed: 1 });\nlet r = distill(t, m, d, #{ epochs: 1, loss: \"wsl\" } + #{ OPTS });\n",
        rows: &[TRAINING, &[
            ("loss", "loss: \"kd\"", Changes),
            ("temperature", "temperature: 2.0", Changes),
            ("alpha", "alpha: 0.5", Changes),
            ("filter", "filter: |b| 1.0 - b.regularization", Changes),
            ("ce_weight", "ce_weight: 0.5", Changes),
        ]],
    },
    Builtin {
        name: "dataset",
        probe: "dataset(\"digits\", #{ qqqqqqqqqq: 1 })",
        script: "let d = dataset(DIGITS, #{ OPTS });\nprint([d.train.len(), d.test.len()]);\nlet b = batch(d.train, 8);\nprint([sum(b.x).item(), sum(b.labels).item()]);\n",
        rows: &[&[
            ("root", "root: ROOT", Changes),
            ("test_fraction", "test_fraction: 0.5", Changes),
            ("val_fraction", "val_fraction: 0.2", Changes),
            ("seed", "seed: 9", Changes),
            ("normalize", "normalize: false", Changes),
            ("train_limit", "train_limit: 100", Changes),
            ("test_limit", "test_limit: 10", Changes),
        ]],
    },
    Builtin {
        name: "model",
        probe: "model(\"mlp\", #{ input: 4, classes: 2, qqqqqqqqqq: 1 })",
        script: "let m = model(\"mlp\", #{ input: [1, 8, 8], classes: 10, seed: 1 } + #{ OPTS });\nprint(m.to_string());\nprint(sum(m.forward(zeros([2, 64]).reshape([2, 1, 8, 8]) + 0.5)).item());\n",
        rows: &[&[
            ("input", "input: [64]", Changes),
            ("classes", "classes: 5", Changes),
            ("hidden", "hidden: [7]", Changes),
            ("channels", "channels: [8]", Refused("option 'channels' has no effect on mlp")),
            ("dropout", "dropout: 0.5", Changes),
            ("width", "width: 0.5", Refused("option 'width' has no effect on mlp")),
            ("seed", "seed: 2", Changes),
        ]],
    },
    Builtin {
        name: "sgd",
        probe: "sgd(#{ qqqqqqqqqq: 1 })",
        script: "let m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes, seed: 1 });\nlet r = fit(m, d, #{ epochs: 1, optimizer: sgd(#{ lr: 0.1, momentum: 0.5 } + #{ OPTS }) });\n",
        rows: &[&[
            ("lr", "lr: 0.05", Changes),
            ("momentum", "momentum: 0.9", Changes),
            ("nesterov", "nesterov: true", Changes),
            ("weight_decay", "weight_decay: 0.01", Changes),
        ]],
    },
    Builtin {
        name: "adam",
        probe: "adam(#{ qqqqqqqqqq: 1 })",
        script: "let m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes, seed: 1 });\nlet r = fit(m, d, #{ epochs: 1, optimizer: adam(#{ lr: 0.01 } + #{ OPTS }) });\n",
        rows: &[ADAM],
    },
    Builtin {
        name: "adamw",
        probe: "adamw(#{ qqqqqqqqqq: 1 })",
        script: "let m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes, seed: 1 });\nlet r = fit(m, d, #{ epochs: 1, optimizer: adamw(#{ lr: 0.01 } + #{ OPTS }) });\n",
        rows: &[ADAM],
    },
];

/// The same text, numbers equal to 1e-5 relative: evaluation batched by another size gives
/// the same logits up to the GEMM's rounding (its blocking depends on the row count).
fn same_up_to_rounding(a: &str, b: &str) -> bool {
    let tokens = |s: &str| {
        s.split(|c: char| c.is_whitespace() || "[],".contains(c)).filter(|t| !t.is_empty()).map(str::to_string).collect::<Vec<_>>()
    };
    let (ta, tb) = (tokens(a), tokens(b));
    ta.len() == tb.len()
        && ta.iter().zip(&tb).all(|(x, y)| match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= 1e-5 * x.abs().max(y.abs()).max(1e-6),
            _ => x == y,
        })
}

fn run(dir: &std::path::Path, name: &str, source: &str) -> (i32, String, String) {
    let path = dir.join(format!("{name}.rhai"));
    std::fs::write(&path, source).unwrap();
    retort(&["run", path.to_str().unwrap()])
}

/// The option names a built-in lists when given an unknown one.
fn known_options(dir: &std::path::Path, b: &Builtin) -> BTreeSet<String> {
    let prelude = "let d = dataset(\"digits\", #{ train_limit: 16, test_limit: 8 });\nlet m = model(\"mlp\", #{ input: d.input, hidden: [4], classes: d.classes });\nlet t = m;\n";
    let (code, _, err) = run(dir, "probe", &format!("{prelude}{};\n", b.probe));
    assert_eq!(code, 1, "{}: the probe must fail\n{err}", b.name);
    let list = err.split("known options: ").nth(1).unwrap_or_else(|| panic!("{}: no option list in\n{err}", b.name));
    list.lines().next().unwrap().split(", ").map(|s| s.trim().to_string()).collect()
}

#[test]
fn every_option_changes_the_result_or_is_refused() {
    let dir = std::env::temp_dir().join(format!("retort-options-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // a digits CSV of its own, for `root`: the first 200 rows of the bundled set, reversed
    let csv = dir.join("digits.csv");
    let rows: Vec<String> = (0..200).map(|i| format!("{},{}", vec![(i % 17).to_string(); 64].join(","), i % 10)).collect();
    std::fs::write(&csv, rows.join("\n") + "\n").unwrap();
    for b in BUILTINS {
        let known = known_options(&dir, b);
        let covered: BTreeSet<String> = b.rows.iter().copied().flatten().map(|(k, _, _)| k.to_string()).collect();
        assert_eq!(known, covered, "{}: the table must have one row per option", b.name);
        let script = |opts: &str| {
            let body =
                b.script.replace("DIGITS", "\"digits\"").replace("OPTS", opts).replace("ROOT", &format!("{:?}", csv.display().to_string()));
            let report = if b.script.contains("let r =") { REPORT } else { "" };
            format!("{DATA}{body}{report}")
        };
        let (code, base, err) = run(&dir, "base", &script(""));
        assert_eq!(code, 0, "{}: the base call failed\n{err}", b.name);
        for (key, setting, expect) in b.rows.iter().copied().flatten() {
            let (code, out, err) = run(&dir, "variant", &script(setting));
            match expect {
                Changes => {
                    assert_eq!(code, 0, "{}.{key}: failed\n{err}", b.name);
                    assert_ne!(out, base, "{}.{key}: `{setting}` changed nothing", b.name);
                }
                Refused(message) => {
                    assert_eq!(code, 1, "{}.{key}: `{setting}` was accepted", b.name);
                    assert!(err.contains(message), "{}.{key}: expected '{message}' in\n{err}", b.name);
                }
                Resource(invalid, message) => {
                    assert_eq!(code, 0, "{}.{key}: failed\n{err}", b.name);
                    assert!(
                        same_up_to_rounding(&out, &base),
                        "{}.{key}: a resource setting changed the result:\n{out}\nvs\n{base}",
                        b.name
                    );
                    let (code, _, err) = run(&dir, "invalid", &script(invalid));
                    assert_eq!(code, 1, "{}.{key}: `{invalid}` was accepted", b.name);
                    assert!(err.contains(message), "{}.{key}: expected '{message}' in\n{err}", b.name);
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// defaults(...): each declared parameter given by --set changes the run; an undeclared one is
// refused, naming where it came from.
#[test]
fn every_defaults_parameter_changes_the_run_or_is_refused() {
    let dir = std::env::temp_dir().join(format!("retort-defaults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("p.rhai");
    std::fs::write(
        &script,
        format!("{DATA}let p = defaults(#{{ epochs: 1, lr: 0.1, hidden: [8] }});\nlet m = model(\"mlp\", #{{ input: d.input, hidden: p.hidden, classes: d.classes, seed: 1 }});\nlet r = fit(m, d, #{{ epochs: p.epochs, optimizer: sgd(#{{ lr: p.lr }}) }});\n{REPORT}"),
    )
    .unwrap();
    let s = script.to_str().unwrap();
    let (code, base, err) = retort(&["run", s]);
    assert_eq!(code, 0, "{err}");
    for set in ["epochs=2", "lr=0.05", "hidden=[4]"] {
        let (code, out, err) = retort(&["run", s, "--set", set]);
        assert_eq!(code, 0, "{set}: {err}");
        assert_ne!(out, base, "--set {set} changed nothing");
    }
    let (code, _, err) = retort(&["run", s, "--set", "lrr=0.05"]);
    assert_eq!(code, 1);
    assert!(err.contains("'lrr' (from --set lrr) is not a parameter of this script; did you mean 'lr'?"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
