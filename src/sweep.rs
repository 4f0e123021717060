//! Sweeps: a grid (or list) of `--set` settings times seeds, each point an ordinary run
//! directory under the sweep's folder. This module owns the spec, the points, the manifest
//! (`sweep.yaml`: each point's settings, seed, folder and last known status), a point's status
//! read from its run record, and the report over seeds; running the points is the binary's
//! (`retort sweep`: worker processes, or Slurm's job array).

use crate::error::{Error, Result};
use crate::run::{RunDir, StageStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A sweep's spec (YAML). Paths are relative to the spec's folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The script every point runs.
    pub script: PathBuf,
    /// A YAML file of parameters under the points' settings (`--config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// Each `--set` key with its values; the points are every combination, in the order written.
    #[serde(default)]
    pub grid: serde_yaml::Mapping,
    /// Settings given one by one (after the grid's).
    #[serde(default)]
    pub points: Vec<serde_yaml::Mapping>,
    /// Every setting runs once per seed (`--seed`).
    pub seeds: Vec<u64>,
    /// The setting the report's paired differences are against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<serde_yaml::Mapping>,
}

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub index: usize,
    /// `--set` keys and values (YAML scalars, as written in the spec).
    pub settings: BTreeMap<String, String>,
    pub seed: u64,
    /// Its run directory, relative to the sweep's folder.
    pub dir: PathBuf,
    #[serde(default)]
    pub status: Status,
}

/// Where a point stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started.
    #[default]
    Pending,
    /// Its run is going (its lock is held).
    Running,
    /// Started and stopped before the end (killed or interrupted): `retort run --resume` goes on.
    Interrupted,
    /// An error stopped it (its summary says which).
    Failed,
    Done,
}

/// `sweep.yaml`: the spec (its script and config made absolute) and every point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub spec: Spec,
    /// `--set` values every point gets (`retort sweep SPEC --set KEY=VALUE`), under its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sets: BTreeMap<String, String>,
    pub points: Vec<Point>,
    /// `retort run --device` of every point (`retort sweep --device`; none: the CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The Slurm job ids of its submissions, oldest first (`sweep status` asks squeue about them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slurm_jobs: Vec<String>,
}

/// A YAML scalar as `--set` takes it.
fn scalar(v: &serde_yaml::Value, at: &str) -> Result<String> {
    match v {
        // a string that would read back as another kind (`"1.0"`, `"yes"`) is quoted, so the
        // point's `--set` hands the script a string, as the spec wrote it
        serde_yaml::Value::String(s) => Ok(match serde_yaml::from_str::<serde_yaml::Value>(s) {
            Ok(serde_yaml::Value::String(back)) if back == *s => s.clone(),
            _ => format!("'{}'", s.replace('\'', "''")),
        }),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        serde_yaml::Value::Bool(b) => Ok(b.to_string()),
        other => Err(Error::file(at, format!("values must be numbers, strings or booleans (a --set value), got {other:?}"))),
    }
}

fn key(k: &serde_yaml::Value, at: &str) -> Result<String> {
    k.as_str().map(String::from).ok_or_else(|| Error::file(at, format!("keys must be strings (--set keys), got {k:?}")))
}

/// A settings map of the spec as `--set` pairs.
pub fn settings_of(m: &serde_yaml::Mapping, at: &str) -> Result<BTreeMap<String, String>> {
    m.iter().map(|(k, v)| Ok((key(k, at)?, scalar(v, at)?))).collect()
}

impl Spec {
    /// Reads a spec; an error names the file, and the line and column for YAML errors.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read the sweep spec: {e}")))?;
        let mut spec: Spec = serde_yaml::from_str(&text)
            .map_err(|e| Error::file(path, format!("not a sweep spec: {e} (docs/sweeps.md lists its fields)")))?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let absolute = |p: &Path| {
            std::fs::canonicalize(base.join(p)).map_err(|e| Error::file(base.join(p), format!("named by {}: {e}", path.display())))
        };
        spec.script = absolute(&spec.script)?;
        spec.config = spec.config.as_deref().map(absolute).transpose()?;
        if spec.seeds.is_empty() {
            return Err(Error::file(path, "seeds: give at least one seed"));
        }
        if spec.grid.is_empty() && spec.points.is_empty() {
            return Err(Error::file(path, "give a grid (keys with lists of values) or points (a list of settings), or both"));
        }
        Ok(spec)
    }

    /// The settings, grid first (every combination, the last key varying fastest), then the
    /// listed points.
    pub fn settings(&self, at: &str) -> Result<Vec<BTreeMap<String, String>>> {
        let mut all: Vec<Vec<(String, String)>> = vec![vec![]];
        for (k, values) in &self.grid {
            let k = key(k, at)?;
            let values = values.as_sequence().ok_or_else(|| Error::file(at, format!("grid: '{k}' must be a list of values")))?;
            if values.is_empty() {
                return Err(Error::file(at, format!("grid: '{k}' has no values")));
            }
            let values: Vec<String> = values.iter().map(|v| scalar(v, at)).collect::<Result<_>>()?;
            let mut next = Vec::with_capacity(all.len() * values.len());
            for done in &all {
                for v in &values {
                    next.push([done.clone(), vec![(k.clone(), v.clone())]].concat());
                }
            }
            all = next;
        }
        let mut out: Vec<BTreeMap<String, String>> =
            if self.grid.is_empty() { vec![] } else { all.into_iter().map(|s| s.into_iter().collect()).collect() };
        for p in &self.points {
            out.push(settings_of(p, at)?);
        }
        Ok(out)
    }

    /// Every point: each setting once per seed.
    pub fn expand(&self, at: &str) -> Result<Vec<Point>> {
        let mut points = Vec::new();
        for settings in self.settings(at)? {
            for seed in &self.seeds {
                let index = points.len();
                let mut slug: String = settings.iter().map(|(k, v)| format!("{k}={v},")).collect();
                slug.push_str(&format!("seed={seed}"));
                let slug: String = slug.chars().map(|c| if c.is_alphanumeric() || "=,.-_".contains(c) { c } else { '_' }).collect();
                points.push(Point {
                    index,
                    settings: settings.clone(),
                    seed: *seed,
                    dir: PathBuf::from("points").join(format!("{index:04}-{slug}")),
                    status: Status::Pending,
                });
            }
        }
        Ok(points)
    }
}

impl Manifest {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("sweep.yaml")
    }

    pub fn load(dir: &Path) -> Result<Manifest> {
        let p = Manifest::path(dir);
        let text = std::fs::read_to_string(&p)
            .map_err(|e| Error::file(&p, format!("cannot read the sweep's manifest ({e}); is {} a sweep folder?", dir.display())))?;
        serde_yaml::from_str(&text).map_err(|e| Error::file(&p, format!("a damaged manifest: {e}")))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_yaml::to_string(self).map_err(|e| Error::file(Manifest::path(dir), e.to_string()))?;
        crate::run::atomic_write(&Manifest::path(dir), text.as_bytes())
    }
}

/// A point's status from its run directory (`running` is the caller's to tell: who holds the
/// point's lock).
pub fn status_of(dir: &Path) -> Status {
    if !dir.join("config.yaml").exists() || never_started(dir) {
        return if start_failed(dir).exists() { Status::Failed } else { Status::Pending };
    }
    let Ok(summary) = RunDir::open(dir).and_then(|r| r.read_summary()) else { return Status::Interrupted };
    if summary.finished {
        return Status::Done;
    }
    let stopped = summary.stages.iter().any(|s| matches!(s.status, StageStatus::Interrupted | StageStatus::Running));
    if summary.error.is_none() || stopped {
        Status::Interrupted
    } else {
        Status::Failed
    }
}

/// The marker of a point whose run failed before it made its run directory (a `--set` the script
/// refuses, a script that does not compile): `<point folder>.start-failed`, holding the error.
pub fn start_failed(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".start-failed");
    PathBuf::from(name)
}

/// A run directory claimed (its config.yaml made, empty) by a run killed before it wrote its
/// config: nothing of it can be resumed, and nothing was trained.
pub fn never_started(dir: &Path) -> bool {
    dir.join("config.yaml").exists()
        && !dir.join("summary.yaml").exists()
        && !dir.join("metrics.jsonl").exists()
        && RunDir::open(dir).and_then(|r| r.read_config()).is_err()
}

/// A finished point's figures: the last stage's final and best accuracy, and which part chose
/// the best epoch (`test` or `val`).
pub fn figures(dir: &Path) -> Option<(f64, f64, String)> {
    let summary = RunDir::open(dir).ok()?.read_summary().ok()?;
    let last = summary.stages.last()?;
    Some((last.final_accuracy as f64, last.best_accuracy as f64, last.best_on.clone()))
}

/// The regularization samples of the last stage's last epoch (distillation stages record
/// them; none for a stage that does not).
pub fn regularization(dir: &Path) -> Option<usize> {
    let run = RunDir::open(dir).ok()?;
    let last = run.read_summary().ok()?.stages.last()?.stage;
    let metrics = run.read_metrics().ok()?;
    metrics.iter().rev().find(|m| m.stage == last).filter(|m| m.record.temperature.is_some()).map(|m| m.record.regularization)
}

type Figures = (f64, f64, String, Option<usize>);

/// The finished points' figures, per setting (in the manifest's order) and seed.
fn finished(dir: &Path, manifest: &Manifest) -> Vec<(BTreeMap<String, String>, BTreeMap<u64, Figures>)> {
    let mut by_setting: Vec<(BTreeMap<String, String>, BTreeMap<u64, Figures>)> = Vec::new();
    for p in &manifest.points {
        let run = dir.join(&p.dir);
        let Some((last, best, on)) = figures(&run).filter(|_| status_of(&run) == Status::Done) else { continue };
        let f = (last, best, on, regularization(&run));
        match by_setting.iter_mut().find(|(s, _)| *s == p.settings) {
            Some((_, seeds)) => {
                seeds.insert(p.seed, f);
            }
            None => by_setting.push((p.settings.clone(), BTreeMap::from([(p.seed, f)]))),
        }
    }
    by_setting
}

/// The final accuracy (mean ± std over seeds, percent) against one numeric setting `x` (none:
/// the first grid key whose values are all numbers), one line per value of the other settings,
/// as `report.png` in the sweep folder; none when no setting can be the x axis.
pub fn plot(dir: &Path, manifest: &Manifest, x: Option<&str>) -> Result<Option<PathBuf>> {
    let by_setting = finished(dir, manifest);
    let numeric = |k: &str| by_setting.iter().all(|(s, _)| s.get(k).is_some_and(|v| v.parse::<f64>().is_ok()));
    let x = match x {
        Some(k) if numeric(k) => k.to_string(),
        Some(k) => return Err(Error::file(dir, format!("--x {k}: not a setting with numbers for values in every finished point"))),
        None => match manifest.spec.grid.keys().filter_map(|k| k.as_str()).find(|k| numeric(k)) {
            Some(k) => k.to_string(),
            None => return Ok(None),
        },
    };
    let mut lines: Vec<(String, Vec<(f64, f64)>, Vec<f64>)> = Vec::new();
    for (settings, seeds) in &by_setting {
        let mut others = settings.clone();
        let at: f64 = others.remove(&x).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        let name = if others.is_empty() { "final accuracy".to_string() } else { describe(&others) };
        let (mean, std) = mean_std(&seeds.values().map(|f| 100.0 * f.0).collect::<Vec<_>>());
        match lines.iter_mut().find(|l| l.0 == name) {
            Some(l) => {
                l.1.push((at, mean));
                l.2.push(std);
            }
            None => lines.push((name, vec![(at, mean)], vec![std])),
        }
    }
    for l in lines.iter_mut() {
        let mut both: Vec<((f64, f64), f64)> = l.1.iter().copied().zip(l.2.iter().copied()).collect();
        both.sort_by(|a, b| a.0 .0.total_cmp(&b.0 .0));
        (l.1, l.2) = both.into_iter().unzip();
    }
    let chart = crate::run::plot::Lines {
        title: "final accuracy over seeds (mean ± sample std)".into(),
        x_label: x,
        y_label: "final test accuracy (%)".into(),
        series: lines.iter().map(|l| (l.0.clone(), l.1.clone())).collect(),
    };
    let errors: Vec<Vec<f64>> = lines.into_iter().map(|l| l.2).collect();
    let path = dir.join("report.png");
    crate::run::plot::lines_with_errors(&chart, &errors, &path)?;
    Ok(Some(path))
}

/// Mean and sample standard deviation (n - 1; 0 for one value).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The report's rows: per setting, the seeds' final and best accuracy (mean ± sample std),
/// against the baseline the per-seed differences of the final accuracy (mean ± std, and how
/// many are above zero) over the seeds both ran, and the regularization samples of the last
/// epoch where the runs distilled.
pub struct Report {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Builds the report from the manifest and the run directories (finished points only).
pub fn report(dir: &Path, manifest: &Manifest, baseline: Option<&BTreeMap<String, String>>) -> Result<Report> {
    let by_setting = finished(dir, manifest);
    if let Some(b) = baseline {
        if !by_setting.iter().any(|(s, _)| s == b) {
            let known: Vec<String> = by_setting.iter().map(|(s, _)| describe(s)).collect();
            return Err(Error::file(
                dir,
                format!("the baseline {} is not a finished setting of this sweep (finished: {})", describe(b), known.join("; ")),
            ));
        }
    }
    let keys: Vec<String> =
        by_setting.iter().flat_map(|(s, _)| s.keys().cloned()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let best_on = by_setting.iter().flat_map(|(_, s)| s.values().map(|f| f.2.clone())).next().unwrap_or_else(|| "test".into());
    let mut header = keys.clone();
    header.extend(["seeds".to_string(), "final accuracy".to_string(), format!("best accuracy (best epoch on {best_on})")]);
    if baseline.is_some() {
        header.extend(["final - baseline (paired)".to_string(), "seeds above 0".to_string()]);
    }
    let regularization = by_setting.iter().any(|(_, s)| s.values().any(|f| f.3.is_some()));
    if regularization {
        header.push("regularization samples (last epoch)".to_string());
    }
    let base = baseline.and_then(|b| by_setting.iter().find(|(s, _)| s == b).map(|(_, seeds)| seeds.clone()));
    let pm = |(m, s): (f64, f64)| format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s);
    let rows = by_setting
        .iter()
        .map(|(settings, seeds)| {
            let mut row: Vec<String> = keys.iter().map(|k| settings.get(k).cloned().unwrap_or_default()).collect();
            let finals: Vec<f64> = seeds.values().map(|f| f.0).collect();
            let bests: Vec<f64> = seeds.values().map(|f| f.1).collect();
            row.extend([seeds.len().to_string(), pm(mean_std(&finals)), pm(mean_std(&bests))]);
            if let Some(base) = &base {
                let diffs: Vec<f64> = seeds.iter().filter_map(|(seed, f)| base.get(seed).map(|b| f.0 - b.0)).collect();
                if Some(settings) == baseline || diffs.is_empty() {
                    row.extend(["-".to_string(), "-".to_string()]);
                } else {
                    row.extend([pm(mean_std(&diffs)), format!("{}/{}", diffs.iter().filter(|d| **d > 0.0).count(), diffs.len())]);
                }
            }
            if regularization {
                let counts: Vec<f64> = seeds.values().filter_map(|f| f.3.map(|c| c as f64)).collect();
                row.push(if counts.is_empty() {
                    "-".to_string()
                } else {
                    let (m, s) = mean_std(&counts);
                    format!("{m:.1} ± {s:.1}")
                });
            }
            row
        })
        .collect();
    Ok(Report { header, rows })
}

/// `k=v, k=v`.
pub fn describe(settings: &BTreeMap<String, String>) -> String {
    settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// The report as CSV (RFC 4180 quoting).
pub fn csv(r: &Report) -> String {
    let field = |f: &str| if f.contains([',', '"', '\n']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.to_string() };
    std::iter::once(&r.header).chain(&r.rows).map(|row| row.iter().map(|f| field(f)).collect::<Vec<_>>().join(",") + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_expands_in_order_times_seeds() {
        let spec: Spec = serde_yaml::from_str(
            "script: s.rhai\ngrid:\n  loss: [kd, wsl]\n  temperature: [2, 4.0]\npoints:\n  - {loss: ce}\nseeds: [0, 1]\n",
        )
        .unwrap();
        let points = spec.expand("spec").unwrap();
        assert_eq!(points.len(), 10);
        assert_eq!(describe(&points[0].settings), "loss=kd, temperature=2");
        assert_eq!((points[1].seed, describe(&points[2].settings)), (1, "loss=kd, temperature=4.0".to_string()));
        assert_eq!(describe(&points[8].settings), "loss=ce");
        assert_eq!(points[9].dir, PathBuf::from("points/0009-loss=ce,seed=1"));
    }

    #[test]
    fn sample_standard_deviation() {
        assert_eq!(mean_std(&[1.0, 2.0, 3.0]), (2.0, 1.0));
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
