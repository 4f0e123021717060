//! Run records read back into scripts: a sweep's finished points as the maps `fit` and
//! `distill` return, so a study's tables and claims can be written once and fed either by runs
//! made in the script or by a sweep's runs (`scripts/repro-*.rhai` take both).

use super::convert::{err, float, Res};
use super::hooks::history_fields;
use crate::def;
use crate::run::RunDir;
use crate::sweep::{self, Manifest, Status};
use rhai::{Array, Dynamic, Engine, Map, INT};
use std::path::Path;

/// A `--set` value as the script read it: a YAML scalar (`4.0` a float, `kd` a string).
fn setting(op: &str, key: &str, text: &str) -> Res<Dynamic> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| format!("{op}: setting {key}={text}: {e}"))?;
    rhai::serde::to_dynamic(&yaml).map_err(|e| format!("{op}: setting {key}={text}: {e}").into())
}

/// One finished point: its last stage's result map plus `settings`, `seed`, `index`, `dir` and
/// `params` (the parameters the run resolved).
fn point_map(op: &str, folder: &Path, p: &sweep::Point) -> Res<Map> {
    let dir = folder.join(&p.dir);
    let run = RunDir::open(&dir).map_err(|e| format!("{op}: {e}"))?;
    let summary = run.read_summary().map_err(|e| format!("{op}: {e}"))?;
    let Some(last) = summary.stages.last() else {
        return err(format!("{op}: {}: the run trained nothing (its summary.yaml lists no stage)", dir.display()));
    };
    let history: Vec<_> =
        run.read_metrics().map_err(|e| format!("{op}: {e}"))?.into_iter().filter(|m| m.stage == last.stage).map(|m| m.record).collect();
    let mut m = Map::new();
    history_fields(&mut m, &history);
    let mut settings = Map::new();
    for (k, v) in &p.settings {
        settings.insert(k.into(), setting(op, k, v)?);
    }
    m.insert("settings".into(), settings.into());
    m.insert("seed".into(), Dynamic::from_int(p.seed as INT));
    m.insert("index".into(), Dynamic::from_int(p.index as INT));
    m.insert("dir".into(), dir.display().to_string().into());
    let params = run.read_config().map_err(|e| format!("{op}: {e}"))?.params;
    m.insert("params".into(), rhai::serde::to_dynamic(&params).map_err(|e| format!("{op}: {}: {e}", dir.display()))?);
    m.insert("label".into(), last.label.clone().into());
    m.insert("stage".into(), Dynamic::from_int(last.stage as INT));
    m.insert("interrupted".into(), false.into());
    m.insert("student".into(), last.student.clone().into());
    m.insert("teacher".into(), last.teacher.clone().map_or(Dynamic::UNIT, |t| t.into()));
    m.insert("loss".into(), last.loss.clone().into());
    m.insert("temperature".into(), last.temperature.map_or(Dynamic::UNIT, float));
    m.insert("alpha".into(), last.alpha.map_or(Dynamic::UNIT, float));
    Ok(m)
}

/// The finished points of the sweep in `folder`, in the manifest's order; pending, running,
/// interrupted and failed points are left out (`retort sweep status` lists them).
fn sweep_runs(folder: &str) -> Res<Array> {
    const OP: &str = "sweep_runs";
    let folder = Path::new(folder);
    let manifest = Manifest::load(folder).map_err(|e| format!("{OP}: {e}"))?;
    let mut out = Array::new();
    for p in &manifest.points {
        if sweep::status_of(&folder.join(&p.dir)) == Status::Done {
            out.push(point_map(OP, folder, p)?.into());
        }
    }
    Ok(out)
}

pub fn register(engine: &mut Engine) {
    def!(
        engine,
        "sweep_runs",
        "The finished points of a sweep folder (`retort sweep SPEC --out DIR`), in its manifest's order, each as the map \
        `distill`/`fit` return for the run's last stage (`history`, `final_accuracy`, `best_accuracy`, `best_epoch`, \
        `best_on`, `epochs`, `seconds`, `label`, `stage`, `student`, `teacher`, `loss`, `temperature`, `alpha`) plus \
        `settings` (the point's `--set` values as the script read them), `seed`, `index`, `dir` and `params` (what the \
        run resolved). Points not finished are left out; `retort sweep status DIR` shows them. \
        Errors: a folder without `sweep.yaml`, a damaged run record.\n\
        ```rhai\n\
        // let runs = sweep_runs(\"sweeps/example\");\n\
        // let wsl = runs.filter(|r| r.settings.method == \"wsl\");\n\
        // print(wsl.map(|r| r.final_accuracy));\n\
        ```",
        sweep_runs
    );
}
