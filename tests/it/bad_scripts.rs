//! Bad scripts: each fails with a specific message, at the right line and column, exit code 1.

use super::scripts::retort;

const PRELUDE: &str = "let d = dataset(\"digits\", #{ train_limit: 64, test_limit: 32 });\nlet m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes }); let t = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes });\n";

/// (name, script, expected message part, expected `line:column` of the caret).
/// Scripts starting with `@` get the prelude (a small data set `d`, a student `m` and a teacher `t`, lines 1-2).
const CASES: &[(&str, &str, &str, &str)] = &[
    ("syntax", "let x = 1 +;\n", "syntax error", "1:12"),
    ("unclosed", "let a = [1, 2;\n", "syntax error", "1:14"),
    ("unknown-function", "frobnicate(1);\n", "Function not found: frobnicate", "1:1"),
    ("distill-typo", "@let r = distill(t, m, d, #{ epochs: 1, temprature: 4.0 });\n", "distill: option 'temprature' is unknown; did you mean 'temperature'?", "3:9"),
    ("fit-typo", "@fit(m, d, #{ epoch: 1 });\n", "fit: option 'epoch' is unknown; did you mean 'epochs'?", "3:1"),
    ("unknown-model", "let m = model(\"resnet9\", #{ input: [3, 32, 32], classes: 10 });\n", "unknown model 'resnet9'", "1:9"),
    ("model-no-classes", "let m = model(\"mlp\", #{ input: 64 });\n", "option 'classes' is required", "1:9"),
    ("model-wrong-type", "let m = model(\"mlp\", #{ input: 64, classes: 10, hidden: \"big\" });\n", "option 'hidden' must be an integer or an array", "1:9"),
    ("unknown-dataset", "let d = dataset(\"imagenet\");\n", "unknown data set 'imagenet'", "1:9"),
    ("missing-data-file", "let d = dataset(\"cifar10\", #{ root: \"/nonexistent/cifar\" });\n", "/nonexistent/cifar/data_batch_1.bin: not found", "1:9"),
    ("bad-import", "import \"nope\" as n;\n", "import 'nope': module not found", "1:8"),
    ("dim-out-of-range", "let x = zeros([64, 10]);\nlet y = log_softmax(x, 2);\n", "log_softmax: dim 2 is out of range for a tensor of shape [64, 10]", "2:9"),
    ("matmul-shapes", "let y = matmul(zeros([2, 3]), zeros([4, 5]));\n", "matmul: shape mismatch", "1:9"),
    ("forward-width", "@let y = m.forward(zeros([2, 10]));\n", "expected mlp input [batch, 1, 8, 8], got [2, 10]", "3:11"),
    ("ragged", "let t = tensor([[1, 2], [3]]);\n", "ragged nested arrays", "1:9"),
    ("reshape-count", "let t = zeros([2, 3]).reshape([4, 2]);\n", "reshape: shape mismatch", "1:23"),
    ("item-many", "let v = zeros([3]).item();\n", "item: shape mismatch: expected a one-element tensor, got [3]", "1:20"),
    ("nan-loss", "@fit(m, d, #{ epochs: 1 });\nlet t = model(\"mlp\", #{ input: d.input, hidden: [4], classes: d.classes });\ndistill(m, t, d, #{ epochs: 1, loss: |s, t, y, ctx| mean(s) * 0.0 / 0.0 });\n", "non-finite loss NaN at epoch 1, batch 1", "5:1"),
    ("negative-lr", "let o = sgd(#{ lr: -1.0 });\n", "lr -1 must be positive", "1:9"),
    ("loss-typo", "@distill(t, m, d, #{ loss: \"wls\" });\n", "loss 'wls' is unknown", "3:1"),
    ("temperature-type", "@distill(t, m, d, #{ temperature: \"hot\" });\n", "option 'temperature' must be a number or a closure", "3:1"),
    ("filter-shape", "@distill(t, m, d, #{ epochs: 1, filter: |b| ones([3]) });\n", "the filter returned a tensor of shape [3]", "3:1"),
    ("filter-type", "@distill(t, m, d, #{ epochs: 1, filter: |b| 1 });\n", "the filter must return a tensor", "3:1"),
    ("loss-not-scalar", "@distill(t, m, d, #{ epochs: 1, loss: |s, t, y, ctx| s });\n", "the loss closure must return a scalar tensor, got shape [64, 10]", "3:1"),
    ("on-epoch-error", "@fit(m, d, #{ epochs: 1, on_epoch: |e| e.epoch.frob() });\n", "Function not found: frob", "3:47"),
    ("grad-not-leaf", "let x = tensor([1.0]);\nlet g = grad(sum(x), x);\n", "grad: the second argument must be a leaf", "2:9"),
    ("one-hot-range", "let y = one_hot(tensor([3]), 3);\n", "label 3 is not an integer in 0..3", "1:9"),
    ("zeros-type", "let z = zeros(\"abc\");\n", "expected a shape", "1:9"),
    ("class-mismatch", "@let t = model(\"mlp\", #{ input: d.input, hidden: [4], classes: 3 });\ndistill(t, m, d, #{ epochs: 1 });\n", "the teacher has 3 classes but the student 10", "4:1"),
    ("optimizer-type", "let o = sgd(#{ lr: \"fast\" });\n", "sgd: option 'lr' must be a number, got a string", "1:9"),
    ("milestones", "let s = multistep([30, 20], 0.1);\n", "lr_schedule", "1:9"),
    ("table-column", "let t = markdown_table([#{ a: 1 }], [\"a\", \"b\"]);\n", "markdown_table: no row has the column 'b' (the rows have: a)", "1:9"),
    ("plot-lines-name", "plot_lines(\"../up.png\", #{ series: [] });\n", "plot_lines: '../up.png' must be a plain file name ending in .png", "1:1"),
    ("plot-lines-ragged", "plot_lines(\"a.png\", #{ series: [#{ x: [1, 2], y: [1] }] });\n", "plot_lines: series 1: 2 x values but 1 y values", "1:1"),
    // sizes: checked arithmetic and the memory cap, never a capacity overflow or an abort
    ("one-hot-huge", "let y = one_hot(tensor([1]), 9223372036854775807);\n", "one_hot: shape [1, 9223372036854775807]", "1:9"),
    ("randn-huge", "let r = randn([9223372036854775807]);\n", "overflows the address space", "1:9"),
    ("full-huge", "let f = full([4611686018427387904, 4], 1.0);\n", "its dims multiply past 2^64", "1:9"),
    ("zeros-over-cap", "let z = zeros([100000, 100000]);\n", "over the memory cap", "1:9"),
    ("broadcast-over-cap", "let z = zeros([100000, 1]) + zeros([1, 100000]);\n", "add: shape [100000, 100000] needs", "1:28"),
    ("model-width-huge", "let m = model(\"mlp\", #{ input: 4, hidden: [9223372036854775807], classes: 2 });\n", "layer 'layers.0'", "1:9"),
    ("batch-negative", "let b = batch(dataset(\"digits\").test, -5);\n", "batch: the number of samples must be positive, got -5", "1:9"),
    // options that take effect or are refused
    ("filter-with-ce", "@distill(t, m, d, #{ loss: \"ce\", filter: |b| b.ce_student });\n", "option 'filter' has no effect with loss \"ce\"", "3:1"),
    ("temperature-with-ce", "@distill(t, m, d, #{ loss: \"ce\", temperature: 2.0 });\n", "option 'temperature' has no effect with loss \"ce\"", "3:1"),
    ("smoothing-with-closure", "@distill(t, m, d, #{ loss: |s, t, y, ctx| mean(s), label_smoothing: 0.1 });\n", "option 'label_smoothing' has no effect", "3:1"),
    ("channels-on-mlp", "let m = model(\"mlp\", #{ input: 4, classes: 2, channels: [8] });\n", "option 'channels' has no effect on mlp", "1:9"),
    ("test-limit-zero", "let d = dataset(\"digits\", #{ test_limit: 0 });\n", "option 'test_limit' must be at least 1", "1:9"),
    ("negative-filter", "@distill(t, m, d, #{ epochs: 1, filter: |b| b.ce_student * 0.0 - 1.0 });\n", "filter weights must be finite and >= 0", "3:1"),
    ("labels-shape", "let l = cross_entropy(zeros([4, 3]), tensor([[0], [1], [2], [0]]));\n", "labels must have shape [4]", "1:9"),
    ("labels-count", "let l = kd_loss(zeros([4, 3]), zeros([4, 3]), tensor([0, 1]), 4.0, 1.0);\n", "labels must have shape [4]", "1:9"),
    // comparisons: a mask or an error, never Rhai's silent fallback for unlike types
    ("compare-string", "let m = tensor([1, 2]) != \"2\";\n", "ne (!=): a tensor compares with a tensor or a number, not a string", "1:24"),
    // the second pass over each kind
    ("sum-of-empty-over-cap", "let s = sum(zeros([0, 1000000000000]), 0, true);\n", "over the memory cap", "1:9"),
    ("crop-padding-huge", "@fit(m, d, #{ epochs: 1, augment: #{ crop_padding: 9223372036854775807 } });\n", "is larger than the 8x8 images", "3:1"),
    ("augment-no-op", "@fit(m, d, #{ epochs: 1, augment: #{ crop_padding: 0, flip: false } });\n", "changes nothing", "3:1"),
    ("cnn-channels-huge", "let m = model(\"cnn\", #{ input: [1, 8, 8], classes: 10, channels: [9223372036854775807] });\n", "layer 'features.0'", "1:9"),
    ("dropout-without-hidden", "let m = model(\"mlp\", #{ input: 64, classes: 10, hidden: [], dropout: 0.5 });\n", "'dropout' has no effect on an mlp without hidden layers", "1:9"),
    ("weight-decay-nan", "let o = sgd(#{ weight_decay: 0.0 / 0.0 });\n", "weight_decay NaN must be a finite number", "1:9"),
    ("betas-with-a-string", "let o = adam(#{ betas: [0.9, \"x\", 0.99] });\n", "option 'betas' must be an array of two numbers", "1:9"),
    ("eps-overflows", "let o = adam(#{ eps: 1e40 });\n", "eps inf must be a positive f32", "1:9"),
    ("warmup-nan", "let s = warmup(cosine(5), 0.0 / 0.0);\n", "lr_schedule", "1:9"),
    ("plot-lines-key", "plot_lines(\"a.png\", #{ series: [], colour: \"red\" });\n", "plot_lines: option 'colour' is unknown", "1:1"),
    ("max-with-a-number", "let y = max(tensor([-1, 2]), 0.0);\n", "write maximum(x, v) for the element-wise maximum", "1:9"),
    ("same-teacher-and-student", "@distill(m, m, d, #{ epochs: 1 });\n", "the teacher and the student are the same model", "3:1"),
    ("transpose-rank-3", "let t = zeros([2, 3, 4]).transpose();\n", "is not a matrix", "1:26"),
    ("arange-nan", "let a = arange(0.0 / 0.0, 1.0, 0.1);\n", "must be finite numbers", "1:9"),
    ("tensor-overflows-f32", "let t = tensor([1e40]);\n", "does not fit in a float32", "1:9"),
    ("full-overflows-f32", "let t = full([2], 1e40);\n", "does not fit in a float32", "1:9"),
    ("evaluate-classes", "@let x = model(\"mlp\", #{ input: d.input, hidden: [4], classes: 9 });\nevaluate(x, d);\n", "evaluate: shape mismatch: expected a model with 10 classes", "4:1"),
    ("empty-test-set", "let d = dataset(\"digits\", #{ test_fraction: 1e-9 });\n", "leaves the test set empty", "1:9"),
    ("dkd-with-a-filter", "@import \"dkd\" as dkd;\ndistill(t, m, d, #{ epochs: 1, loss: |s, tl, y, ctx| dkd::distill_loss(s, tl, y, ctx), filter: |b| b.ce_student * 0.0 + 1.0 });\n", "dkd::distill_loss does not weigh samples", "4:59"),
    ("compare-int-string", "let b = 1 == \"1\";\n", "an integer and a string cannot be compared", "1:11"),
    ("compare-bool-int", "let b = true < 1;\n", "a boolean and an integer cannot be compared", "1:14"),
    ("compare-dataset", "let b = dataset(\"digits\") == 1;\n", "a Dataset cannot be compared with an integer", "1:27"),
    ("compare-schedule", "let b = cosine(3) != 5;\n", "a LrSchedule cannot be compared", "1:19"),
    ("closure-in-module-call", "import \"wsl\" as wsl;\nlet l = wsl::loss(zeros([2, 3]), zeros([2, 4]), tensor([0, 1]), 4.0, 1.0);\n", "shape mismatch: expected shapes that broadcast with [2, 4], got [2, 3] (in 'soft' at wsl:", "2:14"),
];

#[test]
fn each_bad_script_fails_with_a_positioned_specific_message() {
    assert!(CASES.len() >= 25);
    let dir = std::env::temp_dir().join(format!("retort-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body, message, at) in CASES {
        let source = match body.strip_prefix('@') {
            Some(rest) => format!("{PRELUDE}{rest}"),
            None => body.to_string(),
        };
        let path = dir.join(format!("{name}.rhai"));
        std::fs::write(&path, &source).unwrap();
        // recorded (plot_lines and save_weights are refused before anything runs without a run directory)
        let out = dir.join(format!("{name}-run"));
        let (code, _, err) = retort(&["run", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: exit code\n{err}");
        assert!(err.contains(message), "{name}: expected '{message}' in\n{err}");
        let location = format!("{name}.rhai:{at}");
        assert!(err.contains(&location), "{name}: expected location {location} in\n{err}");
        assert!(err.contains('^'), "{name}: expected a caret under the culprit\n{err}");
        assert!(!err.contains("panicked"), "{name}: panicked\n{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn runaway_loops_stop_at_max_operations() {
    let dir = std::env::temp_dir().join(format!("retort-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("loop.rhai");
    std::fs::write(&path, "let x = 0;\nloop { x += 1; }\n").unwrap();
    let (code, _, err) = retort(&["run", path.to_str().unwrap(), "--max-operations", "100000"]);
    assert_eq!(code, 1);
    assert!(err.contains("--max-operations") && err.contains("loop.rhai:2:"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = retort(&["run", "no/such/script.rhai"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read script no/such/script.rhai"), "{err}");
    let (code, _, _) = retort(&["run"]);
    assert_eq!(code, 2);
    let (code, _, _) = retort(&["run", "scripts/01-tensors.rhai", "--seed", "abc"]);
    assert_eq!(code, 2);
}
