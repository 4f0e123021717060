//! Property test: every built-in, called with random argument types and shapes, returns a
//! value or an error, and never panics.

use retort::script::{self, RunOptions};
use retort::Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Values of every kind a script can pass, as Rhai expressions.
const POOL: &[&str] = &[
    "0",
    "-1",
    "3",
    "100000",
    "0.0",
    "-1.5",
    "1e30",
    "(0.0 / 0.0)",
    "true",
    "\"\"",
    "\"digits\"",
    "\"mlp\"",
    "()",
    "[]",
    "[2, 3]",
    "[[1, 2], [3]]",
    "[-1]",
    "[1.5, 2]",
    "#{}",
    "#{ lr: -1 }",
    "#{ input: 4, hidden: [3], classes: 2 }",
    "|x| x",
    "zeros([0])",
    "zeros([2, 3])",
    "randn([4, 5])",
    "tensor(1.0)",
    "tensor([[1.0, 2.0], [3.0, 4.0]])",
    "zeros([1, 1, 8, 8])",
    "tensor([0, 1, 5])",
    "MODEL",
    "DATA",
    "DATA.test",
    "sgd(#{ lr: 0.1 })",
    "cosine(3)",
];

const SETUP: &str = "const MODEL = model(\"mlp\", #{ input: [1, 8, 8], hidden: [3], classes: 10 });\nconst DATA = dataset(\"digits\", #{ train_limit: 20, test_limit: 10 });\n";

fn arities() -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let engine = script::bare_engine();
    for sig in engine.gen_fn_signatures(false) {
        let Some((name, rest)) = sig.split_once('(') else { continue };
        let params = rest.split(')').next().unwrap_or("");
        let n = if params.trim().is_empty() { 0 } else { params.split(',').count() };
        let e = out.entry(name.to_string()).or_default();
        if !e.contains(&n) {
            e.push(n);
        }
    }
    out
}

#[test]
fn random_arguments_never_panic_a_builtin() {
    let documented: Vec<String> = script::docs::examples().into_iter().map(|(n, _)| n).collect();
    let mut rng = Rng::new(2024);
    let (mut calls, mut succeeded) = (0, 0);
    for (name, counts) in arities() {
        if !documented.contains(&name) {
            continue; // Rhai's own standard library
        }
        for &n in &counts {
            for _ in 0..12 {
                let args: Vec<&str> = (0..n).map(|_| POOL[rng.below(POOL.len())]).collect();
                let call = match (name.as_str(), n) {
                    (op, 1) if !op.chars().next().unwrap().is_alphabetic() => format!("{op}({})", args[0]),
                    (op, 2) if !op.chars().next().unwrap().is_alphabetic() => format!("({}) {op} ({})", args[0], args[1]),
                    (prop, 1) if prop.starts_with("get$") => format!("({}).{}", args[0], &prop[4..]),
                    _ => format!("{name}({})", args.join(", ")),
                };
                // options that train are limited to one epoch on 20 samples
                let code = format!("{SETUP}let r = {};\n", call.replace("#{}", "#{ epochs: 1 }"));
                let sink = Rc::new(RefCell::new(|_: &str| {}));
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    script::run_source(
                        "fuzz",
                        &code,
                        vec![],
                        &RunOptions { max_operations: Some(1_000_000), ..Default::default() },
                        sink,
                        Arc::new(AtomicBool::new(false)),
                    )
                }));
                let Ok(outcome) = result else { panic!("a built-in panicked on:\n{code}") };
                calls += 1;
                succeeded += outcome.is_ok() as usize;
            }
        }
    }
    // the setup works and a fair share of random calls are valid, so the calls reach the kernels
    assert!(calls > 1000 && succeeded * 10 > calls, "{succeeded} of {calls} calls succeeded");
}
