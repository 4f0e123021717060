//! Showing values: summaries of tensors, models and maps for the REPL, and the `table` and
//! `plot` built-ins, whose output the front end renders (terminal, Markdown, PNG file).

use super::convert::{as_f64, err, type_of, Res};
use super::output::Output;
use super::state::State;
use super::train_api::ModelRef;
use crate::def;
use crate::run::plot::{curves, lines, Lines, Series};
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
    if let Some(d) = v.read_lock::<super::data_api::DataRef>() {
        return d.summary();
    }
    if let Some(d) = v.read_lock::<super::data_api::DataPart>() {
        return d.summary();
    }
    if let Some(o) = v.read_lock::<crate::optim::OptimizerConfig>() {
        return format!("{:?}", *o);
    }
    if let Some(s) = v.read_lock::<crate::optim::LrSchedule>() {
        return format!("{:?}", *s);
    }
    if let Some(f) = v.read_lock::<rhai::FnPtr>() {
        return if f.fn_name().starts_with("anon$") { "a closure".into() } else { format!("the function {}", f.fn_name()) };
    }
    v.to_string()
}

/// Appends `text` to the report (shown instead when the run has no run directory).
fn add_report(st: &State, text: &str) {
    let mut r = st.report.borrow_mut();
    r.push_str(text);
    r.push('\n');
    if st.recording().is_none() {
        st.emit(Output::Text(text.to_string()));
    }
}

/// The type of a value as a user names it: `Tensor [2, 3]`, `Model`, `Dataset`, `integer`...
pub fn type_label(engine: &rhai::Engine, v: &Dynamic) -> String {
    if let Some(t) = v.read_lock::<Tensor>() {
        return format!("Tensor {:?}", t.shape());
    }
    match engine.map_type_name(v.type_name()).rsplit("::").next().unwrap_or("") {
        "i64" => "integer".into(),
        "f64" => "number".into(),
        "ImmutableString" | "string" => "string".into(),
        "Fn" | "FnPtr" => "closure".into(),
        other => other.into(),
    }
}

/// A table cell: a number as the shortest decimal that reads back as the same f32 (`0.823`,
/// `1e-9` as `0.000000001`, never rounded to a fixed number of places).
fn cell(v: &Dynamic) -> String {
    match (v.is_float(), as_f64(v)) {
        (true, Some(x)) => format!("{}", x as f32),
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
    if header.is_empty() {
        return "_(empty table)_\n".into();
    }
    // a `|` or a line break inside a cell would end it
    let escape = |c: &String| c.replace('|', "\\|").replace("\r\n", "<br>").replace('\n', "<br>");
    let line = |cells: &[String]| format!("| {} |\n", cells.iter().map(escape).collect::<Vec<_>>().join(" | "));
    let mut s = line(header);
    s.push_str(&format!("|{}|\n", header.iter().map(|_| "---").collect::<Vec<_>>().join("|")));
    for r in rows {
        s.push_str(&line(r));
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

/// `[x...]` and `[y...]` arrays of numbers as points.
fn points(series: &Map, i: usize) -> Res<(String, Vec<(f64, f64)>)> {
    super::convert::Opts::new("plot_lines (a series)", series, &["label", "x", "y"])?;
    let nums = |k: &str| -> Res<Vec<f64>> {
        let Some(a) = series.get(k).and_then(|v| v.read_lock::<Array>().map(|a| a.clone())) else {
            return err(format!("plot_lines: series {} needs '{k}', an array of numbers", i + 1));
        };
        a.iter()
            .map(|v| as_f64(v).ok_or_else(|| format!("plot_lines: series {}: '{k}' holds {}, not a number", i + 1, type_of(v)).into()))
            .collect()
    };
    let (x, y) = (nums("x")?, nums("y")?);
    if x.len() != y.len() {
        return err(format!("plot_lines: series {}: {} x values but {} y values", i + 1, x.len(), y.len()));
    }
    let label = series.get("label").map_or(format!("series {}", i + 1), |l| l.to_string());
    Ok((label, x.into_iter().zip(y).collect()))
}

pub fn register(engine: &mut Engine, state: &Rc<State>) {
    let st = state.clone();
    def!(
        engine,
        "report",
        "Adds Markdown to the run's report (`report.md` in the run directory; `retort run --report FILE`\n\
        puts it into FILE as this script's section). Without a run directory the text is shown instead.\n\
        A backtick string is raw: `\\n` in it stays two characters, so write its line breaks as real ones, or pass an array of lines.\n\
        ```rhai\n\
        report(\"## Results\\n\
        WSL beat KD on 4 of 5 seeds.\");\n\
        ```",
        move |text: &str| add_report(&st, text)
    );
    let st = state.clone();
    def!(
        engine,
        "report",
        "Adds lines to the run's report, joined by line breaks (numbers and other values as they print).\n\
        ```rhai\n\
        let acc = 0.93;\n\
        report([\"## Results\", `accuracy ${acc}`, \"\", \"WSL beat KD.\"]);\n\
        ```",
        move |lines: Array| add_report(&st, &lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n"))
    );
    def!(
        engine,
        "markdown_table",
        "An array of maps as a Markdown table (text), e.g. for `report`; columns in key order.\n\
        ```rhai\n\
        let t = markdown_table([#{ method: \"KD\", accuracy: 0.93 }, #{ method: \"WSL\", accuracy: 0.95 }]);\n\
        ```",
        |rows: Array| {
            let (header, body) = table_of(&rows)?;
            Ok::<_, Box<rhai::EvalAltResult>>(markdown_table(&header, &body))
        }
    );
    def!(
        engine,
        "markdown_table",
        "An array of maps as a Markdown table with these columns, in this order.\n\
        ```rhai\n\
        let t = markdown_table([#{ method: \"KD\", accuracy: 0.93 }], [\"method\", \"accuracy\"]);\n\
        ```",
        |rows: Array, columns: Array| {
            let (header, body) = table_of(&rows)?;
            let mut order = Vec::new();
            for c in &columns {
                let name = c.to_string();
                let Some(i) = header.iter().position(|h| *h == name) else {
                    return err(format!("markdown_table: no row has the column '{name}' (the rows have: {})", header.join(", ")));
                };
                order.push(i);
            }
            let body: Vec<Vec<String>> = body.iter().map(|r| order.iter().map(|&i| r[i].clone()).collect()).collect();
            Ok(markdown_table(&order.iter().map(|&i| header[i].clone()).collect::<Vec<_>>(), &body))
        }
    );
    let st = state.clone();
    def!(
        engine,
        "run_dir",
        "The run directory this script records into, or \"\" when it is not recorded.\n```rhai\nprint(run_dir());\n```",
        move || { st.recording().map_or(String::new(), |r| r.dir.path.display().to_string()) }
    );
    let st = state.clone();
    def!(engine, "plot_lines", "Draws named series of points as a PNG called `file` in the run directory and returns the file name\n\
        (for `report(\"![...](file)\")`). spec: #{ title, x_label, y_label, series: [#{ label, x: [..], y: [..] }] }.\n\
        ```rhai\n\
        // plot_lines(\"counts.png\", #{ title: \"counts\", x_label: \"epoch\", y_label: \"n\", series: [#{ label: \"T=4\", x: [1, 2], y: [5, 3] }] });\n\
        ```", move |file: &str, spec: Map| {
        if !file.ends_with(".png") || file.contains(['/', '\\']) || file.starts_with('.') {
            return err(format!("plot_lines: '{file}' must be a plain file name ending in .png (it is written in the run directory)"));
        }
        super::convert::Opts::new("plot_lines", &spec, &["title", "x_label", "y_label", "series"])?;
        let text = |k: &str| spec.get(k).map_or(String::new(), |v| v.to_string());
        let Some(series) = spec.get("series").and_then(|v| v.read_lock::<Array>().map(|a| a.clone())) else {
            return err("plot_lines: spec needs 'series', an array of #{ label, x, y } maps");
        };
        let series = series
            .iter()
            .enumerate()
            .map(|(i, s)| points(&s.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| format!("plot_lines: series {} must be a map #{{ label, x, y }}, got {}", i + 1, type_of(s)))?, i))
            .collect::<Res<Vec<_>>>()?;
        let Some(dir) = st.image_dir.borrow().clone() else { return err("plot_lines: this run has nowhere to write images (run it with a run directory or in a notebook)") };
        let path = dir.join(format!("{}{file}", st.image_prefix.borrow()));
        lines(&Lines { title: text("title"), x_label: text("x_label"), y_label: text("y_label"), series }, &path).map_err(|e| e.to_string())?;
        let name = path.file_name().map_or(file.to_string(), |n| n.to_string_lossy().to_string());
        st.report_images.borrow_mut().push(name.clone());
        st.emit(Output::Image(path));
        Ok::<_, Box<rhai::EvalAltResult>>(name)
    });

    let st = state.clone();
    def!(
        engine,
        "table",
        "Shows an array of maps as a table (a Markdown table in notebooks).\n\
        ```rhai\n\
        table([#{ method: \"KD\", accuracy: 0.93 }, #{ method: \"WSL\", accuracy: 0.95 }]);\n\
        ```",
        move |rows: Array| {
            let (header, body) = table_of(&rows)?;
            st.emit(Output::Table(header, body));
            Ok::<_, Box<rhai::EvalAltResult>>(())
        }
    );
    let st = state.clone();
    def!(engine, "plot", "Draws train loss and test accuracy per epoch of a `fit`/`distill` result, or of an array of them, as a PNG (in the run directory, or beside a notebook).\n\
        ```rhai\n\
        let data = dataset(\"digits\", #{ train_limit: 100, test_limit: 50 });\n\
        let m = model(\"mlp\", #{ input: data.input, hidden: [8], classes: data.classes });\n\
        plot(fit(m, data, #{ epochs: 2 }));\n\
        ```", move |runs: Dynamic| {
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
