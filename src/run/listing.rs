//! Reading run directories back for `retort runs`, `retort runs compare` and `retort plot`.

use super::{RunConfig, RunDir, Summary};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One run as `retort runs` lists it (the last stage stands for the run).
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

    /// The table row: name, date, script, teacher, student, T, alpha, best, final, time.
    pub fn row(&self) -> Vec<String> {
        let last = self.summary.stages.last();
        let opt = |v: Option<f32>| v.map_or("-".to_string(), |x| format!("{x}"));
        let pct = |v: f32| format!("{:.2}%", 100.0 * v);
        let script = Path::new(&self.config.script).file_name().map_or(self.config.script.clone(), |n| n.to_string_lossy().to_string());
        vec![
            self.name.clone(),
            self.config.created.clone(),
            script,
            last.and_then(|s| s.teacher.clone()).unwrap_or("-".into()),
            last.map_or("-".into(), |s| s.student.clone()),
            opt(last.and_then(|s| s.temperature)),
            opt(last.and_then(|s| s.alpha)),
            last.map_or("-".into(), |s| pct(s.best_accuracy)),
            last.map_or("-".into(), |s| pct(s.final_accuracy)),
            if self.summary.finished { format!("{:.1} s", self.summary.seconds) } else { "unfinished".into() },
        ]
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
            f.insert(format!("{p} epochs"), s.epochs.to_string());
            f.insert(format!("{p} best accuracy"), format!("{:.2}%", 100.0 * s.best_accuracy));
            f.insert(format!("{p} final accuracy"), format!("{:.2}%", 100.0 * s.final_accuracy));
            if let (Some(t), Some(a)) = (s.temperature, s.alpha) {
                f.insert(format!("{p} T, alpha"), format!("{t}, {a}"));
            }
        }
        f
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

/// The runs under `root` (each sub-folder with a `config.yaml`), sorted by name.
pub fn list(root: &Path) -> Result<Vec<RunInfo>> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let mut runs = Vec::new();
    for e in entries.flatten() {
        if e.path().join("config.yaml").is_file() {
            runs.push(RunInfo::load(&e.path())?);
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(runs)
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
