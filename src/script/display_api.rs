//! Showing values: summaries of tensors, models and maps for the REPL, and the `table` and
//! `plot` built-ins, whose output the front end renders (terminal, Markdown, PNG file).

use super::convert::{as_f64, err, type_of, Res};
use super::session::Output;
use super::state::State;
use super::train_api::ModelRef;
use crate::def;
use crate::run::plot::{curves, Series};
use crate::tensor::Tensor;
use rhai::{Array, Dynamic, Engine, Map};
use std::rc::Rc;

/// A readable one- or few-line summary of any script value.
pub fn describe_value(v: &Dynamic) -> String {
    if let Some(t) = v.read_lock::<Tensor>() {
        return super::tensor_api::summary(&t);
    }
    if let Some(m) = v.read_lock::<ModelRef>() {
        return super::train_api::summary(&m.model);
    }
    v.to_string()
}

fn cell(v: &Dynamic) -> String {
    match (v.is_float(), as_f64(v)) {
        (true, Some(x)) => format!("{x:.4}"),
        _ => describe_value(v),
    }
}

/// Header and rows from an array of maps (the union of their keys, in first-seen order).
fn table_of(rows: &Array) -> Res<(Vec<String>, Vec<Vec<String>>)> {
    let mut header: Vec<String> = Vec::new();
    let maps: Vec<Map> = rows
        .iter()
        .map(|r| r.clone().try_cast::<Map>().ok_or_else(|| format!("table: rows must be maps, got {}", type_of(r)).into()))
        .collect::<Res<_>>()?;
    for m in &maps {
        for k in m.keys() {
            if !header.iter().any(|h| h == k.as_str()) {
                header.push(k.to_string());
            }
        }
    }
    let body = maps.iter().map(|m| header.iter().map(|h| m.get(h.as_str()).map_or(String::new(), cell)).collect()).collect();
    Ok((header, body))
}

/// A `fit`/`distill` result as a table of its epochs, or `None` for any other value.
pub fn run_table(v: &Dynamic) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let run = v.read_lock::<Map>()?;
    let history = run.get("history")?.read_lock::<Array>()?.clone();
    run.get("final_accuracy")?;
    let keys = ["epoch", "train_loss", "train_accuracy", "test_accuracy", "lr", "temperature", "alpha", "regularization", "mean_weight"];
    let rows = history
        .iter()
        .filter_map(|e| {
            e.read_lock::<Map>().map(|m| keys.iter().map(|k| m.get(*k).filter(|v| !v.is_unit()).map_or("-".to_string(), cell)).collect())
        })
        .collect();
    Some((keys.iter().map(|k| k.to_string()).collect(), rows))
}

/// A Markdown table.
pub fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}|\n", header.join(" | "), header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

/// Curves from a run map's `history` (as `fit`/`distill` return it).
fn series_of(name: String, run: &Map) -> Res<Series> {
    let Some(history) = run.get("history").and_then(|h| h.read_lock::<Array>().map(|a| a.clone())) else {
        return err("plot: expects the result of fit or distill (a map with a history), or an array of them");
    };
    let mut s = Series { name, loss: vec![], accuracy: vec![] };
    for e in history {
        let e = e.try_cast::<Map>().unwrap_or_default();
        let get = |k: &str| e.get(k).and_then(as_f64).unwrap_or(f64::NAN);
        s.loss.push((get("epoch"), get("train_loss")));
        s.accuracy.push((get("epoch"), 100.0 * get("test_accuracy")));
    }
    Ok(s)
}

pub fn register(engine: &mut Engine, state: &Rc<State>) {
    let st = state.clone();
    def!(engine, "table", "Shows an array of maps as a table (a Markdown table in notebooks).\n```rhai\ntable([#{ method: \"KD\", accuracy: 0.93 }, #{ method: \"WSL\", accuracy: 0.95 }]);\n```", move |rows: Array| {
        let (header, body) = table_of(&rows)?;
        st.emit(Output::Table(header, body));
        Ok::<_, Box<rhai::EvalAltResult>>(())
    });
    let st = state.clone();
    def!(engine, "plot", "Draws train loss and test accuracy per epoch of a `fit`/`distill` result, or of an array of them, as a PNG (in the run directory, or beside a notebook).\n```rhai\nlet data = dataset(\"digits\", #{ train_limit: 100, test_limit: 50 });\nlet m = model(\"mlp\", #{ input: data.input, hidden: [8], classes: data.classes });\nplot(fit(m, data, #{ epochs: 2 }));\n```", move |runs: Dynamic| {
        let list: Vec<Dynamic> = match runs.read_lock::<Array>() {
            Some(a) => a.clone(),
            None => vec![runs.clone()],
        };
        let series = list
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let m = r.clone().try_cast::<Map>().ok_or_else(|| format!("plot: expects fit/distill results, got {}", type_of(r)))?;
                let name = m.get("loss").map_or(format!("run {}", i + 1), |l| format!("{} {} ({l})", i + 1, m.get("student").map_or(String::new(), |s| s.to_string())));
                series_of(name, &m)
            })
            .collect::<Res<Vec<_>>>()?;
        let Some(path) = st.next_image_path() else { return err("plot: this run has nowhere to write images (run it with a run directory or in a notebook)") };
        curves(&series, "training curves", &path).map_err(|e| e.to_string())?;
        st.emit(Output::Image(path));
        Ok::<_, Box<rhai::EvalAltResult>>(())
    });
}
