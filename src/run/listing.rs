//! Reading run directories back for `retort runs`, `retort runs compare` and `retort plot`.

use super::{RunConfig, RunDir, StageStatus, Summary};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One run as `retort runs` lists it: a row per stage.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub path: PathBuf,
    pub name: String,
    pub config: RunConfig,
    pub summary: Summary,
}

impl RunInfo {
    pub fn load(path: &Path) -> Result<RunInfo> {
        let dir = RunDir::open(path)?;
        let name = path.file_name().map_or(path.display().to_string(), |n| n.to_string_lossy().to_string());
        Ok(RunInfo { path: path.to_path_buf(), name, config: dir.read_config()?, summary: dir.read_summary()? })
    }

    /// The table's header: one row per stage of each run (see [`RunInfo::rows`]).
    pub const HEADER: [&'static str; 12] =
        ["run", "date", "script", "stage", "teacher", "student", "T", "alpha", "best (test accuracy)", "final", "stage status", "run"];

    /// The table rows, one per stage (the run's own fields on its first row only): the stage's
    /// label, teacher, student, temperature and alpha (their schedules as written, where the
    /// script gave closures), best and final test accuracy, and how the stage ended; the run's
    /// time, or "unfinished", "interrupted" or "failed" (its error on a row of its own).
    pub fn rows(&self) -> Vec<Vec<String>> {
        let script = Path::new(&self.config.script).file_name().map_or(self.config.script.clone(), |n| n.to_string_lossy().to_string());
        let run = if self.summary.finished {
            format!("{:.1} s", self.summary.seconds)
        } else {
            match &self.summary.error {
                Some(e) if e.contains("interrupted") => "interrupted".into(),
                Some(_) => "failed".into(),
                None => "unfinished".into(),
            }
        };
        let pct = |v: f32| format!("{:.2}%", 100.0 * v);
        let mut rows: Vec<Vec<String>> = self
            .summary
            .stages
            .iter()
            .map(|s| {
                // a schedule as written, a constant as its value
                let value = |key: &str, v: Option<f32>| match s.schedules.get(key) {
                    Some(text) => short(text),
                    None => v.map_or("-".to_string(), |x| format!("{x}")),
                };
                let status = match (&s.error, s.status) {
                    (Some(e), _) => format!("{}: {}", s.status.as_str(), short(e)),
                    // still training, or killed while it trained
                    (None, StageStatus::Running) => "unfinished".into(),
                    (None, status) => status.as_str().to_string(),
                };
                vec![
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("{} {}", s.stage, s.label),
                    s.teacher.clone().unwrap_or("-".into()),
                    s.student.clone(),
                    value("temperature", s.temperature),
                    value("alpha", s.alpha),
                    if s.epochs == 0 {
                        "-".into()
                    } else {
                        format!("{} (epoch {}, chosen on {})", pct(s.best_accuracy), s.best_epoch, s.best_on)
                    },
                    if s.epochs == 0 { "-".into() } else { pct(s.final_accuracy) },
                    status,
                    String::new(),
                ]
            })
            .collect();
        if rows.is_empty() {
            rows.push(["", "", "", "-", "-", "-", "-", "-", "-", "-", "-", ""].map(String::from).to_vec());
        }
        rows[0][0] = self.name.clone();
        rows[0][1] = self.config.created.clone();
        rows[0][2] = script;
        rows[0][11] = run;
        if let (false, Some(e)) = (self.summary.finished, &self.summary.error) {
            rows.push(vec![String::new(); 11].into_iter().chain([short(e)]).collect());
        }
        rows
    }

    /// Every comparable field, flattened: config (`seed`, `params.*`, ...) and per-stage results.
    pub fn fields(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("script".into(), self.config.script.clone());
        f.insert("script_hash".into(), self.config.script_hash.clone());
        f.insert("seed".into(), self.config.seed.to_string());
        f.insert("retort_version".into(), self.config.retort_version.clone());
        flatten("params", &self.config.params, &mut f);
        for s in &self.summary.stages {
            let p = format!("stage {}", s.stage);
            f.insert(format!("{p} label"), s.label.clone());
            f.insert(format!("{p} status"), s.status.as_str().to_string());
            if let Some(e) = &s.error {
                f.insert(format!("{p} error"), e.clone());
            }
            f.insert(format!("{p} epochs"), s.epochs.to_string());
            f.insert(format!("{p} best epoch (chosen on {})", s.best_on), s.best_epoch.to_string());
            f.insert(format!("{p} best accuracy (test)"), format!("{:.2}%", 100.0 * s.best_accuracy));
            if let Some(v) = s.best_val_accuracy {
                f.insert(format!("{p} best accuracy (val)"), format!("{:.2}%", 100.0 * v));
            }
            f.insert(format!("{p} final accuracy"), format!("{:.2}%", 100.0 * s.final_accuracy));
            if let (Some(t), Some(a)) = (s.temperature, s.alpha) {
                f.insert(format!("{p} T, alpha"), format!("{t}, {a}"));
            }
            for (k, text) in &s.schedules {
                f.insert(format!("{p} {k}"), text.clone());
            }
        }
        f
    }
}

/// A long text cut to one short table cell.
fn short(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= 60 {
        line
    } else {
        format!("{}...", line.chars().take(57).collect::<String>())
    }
}

fn flatten(prefix: &str, v: &serde_yaml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let key = format!("{prefix}.{}", k.as_str().map_or_else(|| format!("{k:?}"), str::to_string));
                flatten(&key, v, out);
            }
        }
        serde_yaml::Value::Null => {}
        other => {
            out.insert(prefix.to_string(), serde_yaml::to_string(other).unwrap_or_default().trim().to_string());
        }
    }
}

/// The runs under `root` (each sub-folder with a `config.yaml`), sorted by name, and the
/// run directories that could not be read, with why (one damaged run hides no other).
pub fn list(root: &Path) -> Result<(Vec<RunInfo>, Vec<Error>)> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let (mut runs, mut unreadable) = (Vec::new(), Vec::new());
    for e in entries.flatten() {
        if e.path().join("config.yaml").is_file() {
            match RunInfo::load(&e.path()) {
                Ok(r) => runs.push(r),
                Err(err) => unreadable.push(err),
            }
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((runs, unreadable))
}

/// Sorts "stage 2" before "stage 10": every run of digits is zero-padded for comparison.
fn natural_key(s: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in s.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            out.push_str(&format!("{digits:0>12}"));
            digits.clear();
        }
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// Side by side: `(field, value per run, differs)`, the differing fields first.
pub fn compare(runs: &[RunInfo]) -> Vec<(String, Vec<String>, bool)> {
    let fields: Vec<BTreeMap<String, String>> = runs.iter().map(RunInfo::fields).collect();
    let mut keys: Vec<&String> = fields.iter().flat_map(|f| f.keys()).collect();
    keys.sort_by_key(|k| natural_key(k));
    keys.dedup();
    let mut rows: Vec<(String, Vec<String>, bool)> = keys
        .into_iter()
        .map(|k| {
            let values: Vec<String> = fields.iter().map(|f| f.get(k).cloned().unwrap_or_else(|| "-".into())).collect();
            let differs = values.windows(2).any(|w| w[0] != w[1]);
            (k.clone(), values, differs)
        })
        .collect();
    rows.sort_by_key(|r| !r.2);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_sort_by_number() {
        let mut v = vec!["stage 10 label", "stage 2 label", "seed", "stage 1 label"];
        v.sort_by_key(|k| natural_key(k));
        assert_eq!(v, ["seed", "stage 1 label", "stage 2 label", "stage 10 label"]);
    }
}
