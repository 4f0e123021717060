//! `retort docs`: the script API reference, generated from the engine's function metadata.

use serde_json::Value;
use std::collections::BTreeMap;

/// Rhai's closure semantics, which a sweep written as a loop runs into.
const TRAINING_CLOSURES: &str = r#"## What training closures receive

`fit` and `distill` call script closures during training. Epochs and steps are counted from 1
in every one of them. Shapes: `n` samples in the batch, `c` classes.

| option | called | gets | returns |
|---|---|---|---|
| `temperature`, `alpha` | each step | `epoch` or `epoch, step` | a number |
| `lr_schedule` | each step | `epoch` or `epoch, step` | the learning rate itself |
| `lr_lambda` | each step | `epoch` or `epoch, step` | a multiplier of the optimizer's `lr` (PyTorch's `LambdaLR`) |
| `filter` | each batch | the batch record `b` below | a keep-mask or weights `[n]` for the soft term |
| `loss` | each batch | `s [n, c]`, `t [n, c]`, `y [n]`, `ctx`: the batch record plus `filter_weights [n]` when there is a filter | a scalar tensor |
| `on_epoch_start` | before each epoch | `epoch` | ignored (set variables the other closures read) |
| `on_step` | after each optimizer step | `#{ epoch, step, loss, lr, temperature, alpha }` | ignored |
| `on_epoch` | after each epoch | the epoch record (as in `history`) | `false` stops training |

The batch record `b`: `epoch`, `step`; `labels [n]`; `index [n]`, each sample's position in the
training set (row `i` of `predict(model, data.train)`); `student_logits [n, c]` (no gradient);
with a teacher, `teacher_logits [n, c]`, `ce_student [n]` and `ce_teacher [n]` (cross-entropy at
T = 1), `wsl_weight [n]` (WSL's `1 - exp(-max(ce_student / (ce_teacher + 1e-7), 0))`, no gradient), `soft [n]`
(the soft term per sample at the step's temperature), `regularization [n]` (1 where the student
already beats the teacher on the label), `temperature`, `alpha`. Each name means one thing: the
WSL weight is always `wsl_weight`, a filter's output always `filter_weights`.

"#;

const CLOSURES_IN_LOOPS: &str = r#"## Closures built in a loop

A Rhai closure captures a variable itself, not its value, and a `for` loop has one loop
variable. Closures made in a loop all see its last value: this temperature sweep runs T = 8
three times.

```rhai
let schedules = [];
for t in [2.0, 4.0, 8.0] { schedules.push(|epoch| t); }     // wrong: every closure gives 8.0
```

Give each closure its own variable: a `let` inside the loop body, or a function that returns
the closure, or `map`.

```rhai
let schedules = [];
for t in [2.0, 4.0, 8.0] { let fixed = t; schedules.push(|epoch| fixed); }   // 2.0, 4.0, 8.0
let same = [2.0, 4.0, 8.0].map(|t| |epoch| t);                              // 2.0, 4.0, 8.0
```

"#;

/// Shows Rust types as the script sees them: `Result<T, ...>` as `T`, paths as registered names.
/// Every documented built-in's readable signatures, by name (for "no built-in takes these
/// arguments" errors).
pub fn signatures(engine: &rhai::Engine) -> std::collections::HashMap<String, Vec<String>> {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let meta: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for f in meta["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_default();
        if f["docComments"].as_array().is_none_or(|d| d.is_empty()) || name.starts_with("get$") {
            continue;
        }
        let sig = readable_signature(engine, f["signature"].as_str().unwrap_or_default());
        let entry = out.entry(name.to_string()).or_default();
        if !entry.contains(&sig) {
            entry.push(sig);
        }
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

fn readable_signature(engine: &rhai::Engine, sig: &str) -> String {
    const RESULT: &str = "core::result::Result<";
    const ERR: &str = ",alloc::boxed::Box<rhai::types::error::EvalAltResult>>";
    let mut s = sig.to_string();
    while let (Some(a), Some(b)) = (s.find(RESULT), s.find(ERR)) {
        if b < a {
            break;
        }
        s = format!("{}{}{}", &s[..a], &s[a + RESULT.len()..b], &s[b + ERR.len()..]);
    }
    // replace each path (a::b::C) by the name registered for it
    let mut out = String::new();
    let mut token = String::new();
    for ch in s.chars().chain(std::iter::once(' ')) {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' {
            token.push(ch);
            continue;
        }
        if token.contains("::") {
            let mapped = engine.map_type_name(&token);
            out.push_str(mapped.rsplit("::").next().unwrap_or(mapped));
        } else {
            out.push_str(&token);
        }
        token.clear();
        out.push(ch);
    }
    out.pop();
    out.replace("BTreeMap<SmartString<LazyCompact>,Dynamic>", "map").replace("Vec<Dynamic>", "array").replace("ImmutableString", "string")
}

/// The reference section of one built-in (as in `docs/script-api.md`), for `:doc NAME`.
pub fn doc_for(name: &str) -> Option<String> {
    let md = script_api_markdown();
    let headings = [format!("## `{name}`"), format!("## `.{name}` (property)")];
    let start = headings.iter().find_map(|h| md.find(&format!("{h}\n")))?;
    let rest = &md[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    Some(rest[..end].trim().to_string())
}

/// The ```rhai examples of every documented built-in, for tests that run them.
pub fn examples() -> Vec<(String, String)> {
    let engine = super::bare_engine();
    let json = engine.gen_fn_metadata_to_json(false).expect("engine metadata serializes");
    let meta: Value = serde_json::from_str(&json).expect("engine metadata is JSON");
    let mut out = Vec::new();
    for f in meta["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_default().to_string();
        for d in f["docComments"].as_array().into_iter().flatten().filter_map(|d| d.as_str()) {
            let text: Vec<&str> = d.lines().map(|l| l.trim_start_matches("///").trim_start()).collect();
            let text = text.join("\n");
            match text.split_once("```rhai\n").and_then(|(_, rest)| rest.split_once("```")) {
                Some((code, _)) => out.push((name.clone(), code.to_string())),
                None => out.push((name.clone(), String::new())),
            }
        }
    }
    out
}

/// Markdown for `docs/script-api.md`: every documented built-in with its signatures and doc.
pub fn script_api_markdown() -> String {
    let engine = super::bare_engine();
    let json = engine.gen_fn_metadata_to_json(false).expect("engine metadata serializes");
    let meta: Value = serde_json::from_str(&json).expect("engine metadata is JSON");
    // name -> (signatures, doc)
    let mut by_name: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for f in meta["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_default().to_string();
        let doc: Vec<String> = f["docComments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .map(|d| {
                d.lines()
                    .map(|l| l.trim_start_matches("///").strip_prefix(' ').unwrap_or(l.trim_start_matches("///")).to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        if doc.is_empty() {
            continue;
        }
        let sig = readable_signature(&engine, f["signature"].as_str().unwrap_or_default());
        let entry = by_name.entry(name).or_default();
        entry.0.push(sig);
        for d in doc {
            if !entry.1.contains(&d) {
                entry.1.push(d);
            }
        }
    }
    let mut md = String::from("# Script API\n\nGenerated by `retort docs` from the engine's metadata; do not edit by hand.\n\n");
    md.push_str("Every script also sees `params` (the `--set` values as a map) and `seed` (`--seed`).\n\n");
    md.push_str(TRAINING_CLOSURES);
    md.push_str(CLOSURES_IN_LOOPS);
    for (name, (mut sigs, mut docs)) in by_name {
        sigs.sort();
        sigs.dedup();
        docs.sort();
        let title = match name.strip_prefix("get$") {
            Some(prop) => format!("`.{prop}` (property)"),
            None => format!("`{name}`"),
        };
        md.push_str(&format!("## {title}\n\n```\n{}\n```\n\n", sigs.join("\n")));
        for d in docs {
            md.push_str(&d);
            md.push_str("\n\n");
        }
    }
    md
}
