//! Run records: a run directory with its config, per-epoch metrics, checkpoints and summary;
//! weights in safetensors with PyTorch names; exact resume.
//!
//! Layout of a run directory:
//! - `config.yaml`: script path and content hash, seed, the resolved parameters (the script's
//!   defaults merged with `--config` and `--set`), the given ones, retort version
//! - `source/`: a copy of the script and of every local module it imported, so the run
//!   directory reruns and resumes on its own (a REPL or notebook session: `transcript.rhai`)
//! - `metrics.jsonl`: one JSON line per epoch of each training stage (a `fit` or `distill` call)
//! - `checkpoints/last.safetensors`: weights, optimizer state, epoch and RNG state of the stage in progress
//! - `checkpoints/best-stage-N.safetensors`: the weights of stage N's best epoch (chosen on the test set)
//! - `checkpoints/stage-N.safetensors`: the final weights of each finished stage
//! - `summary.yaml`: one entry per stage (finished, failed with its error, or interrupted)
//! - `curves.png`: train loss and test accuracy per epoch of every stage

pub mod checkpoint;
pub mod listing;
pub mod npy;
pub mod plot;
pub mod pth;
pub mod recording;
pub mod report;
pub mod safetensors;
pub mod weights;

pub use checkpoint::Checkpoint;
pub use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::train::EpochRecord;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed.
/// A file replaced keeps its permissions; a symbolic link keeps pointing at the file, which is
/// the one replaced.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    // through a symbolic link: the file it points to is replaced, the link stays
    let resolved =
        std::fs::symlink_metadata(path).ok().filter(|m| m.file_type().is_symlink()).and_then(|_| std::fs::canonicalize(path).ok());
    let path = resolved.as_deref().unwrap_or(path);
    // a replaced file keeps its permissions
    let permissions = std::fs::metadata(path).ok().map(|m| m.permissions());
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        // test hook "NAME:N": die half-way through the N-th write of file NAME (only in builds
        // with the `fault-injection` feature, which the tests enable)
        #[cfg(feature = "fault-injection")]
        if let Some((target, n)) = std::env::var("RETORT_TEST_ABORT_WRITING")
            .ok()
            .and_then(|v| v.split_once(':').map(|(a, b)| (a.to_string(), b.parse::<usize>().unwrap_or(1))))
        {
            static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            if name == target && WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == n {
                f.write_all(&bytes[..bytes.len() / 2])?;
                f.sync_all()?;
                std::process::abort();
            }
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(p) = &permissions {
            std::fs::set_permissions(&tmp, p.clone())?;
        }
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// One line of `metrics.jsonl`: the stage it belongs to, then the epoch record's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    pub stage: usize,
    pub label: String,
    /// `seconds` (wall time) is the only field a resumed run does not reproduce.
    #[serde(flatten)]
    pub record: EpochRecord,
}

impl MetricsLine {
    pub fn new(stage: usize, label: &str, record: &EpochRecord) -> Self {
        MetricsLine { stage, label: label.to_string(), record: record.clone() }
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    /// It ran all its epochs (or its `on_epoch` closure stopped it).
    #[default]
    Finished,
    /// An error stopped it (a non-finite loss, a failing closure); `error` says which.
    Failed,
    /// Ctrl-C (or a notebook kernel's interrupt) stopped it between batches.
    Interrupted,
    /// Training (or, when the process is gone, killed before it ended).
    Running,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Finished => "finished",
            StageStatus::Failed => "failed",
            StageStatus::Interrupted => "interrupted",
            StageStatus::Running => "running",
        }
    }
}

/// What a stage leaves in `summary.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    pub stage: usize,
    pub label: String,
    pub kind: String,
    #[serde(default)]
    pub status: StageStatus,
    /// Why a failed stage failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub student: String,
    pub teacher: Option<String>,
    pub loss: String,
    /// Temperature and alpha of the last epoch (see `schedules` when they changed).
    pub temperature: Option<f32>,
    pub alpha: Option<f32>,
    /// The closures the stage ran with (temperature, alpha, learning-rate schedule or
    /// `lr_lambda`, filter, loss, `on_epoch_start`, `on_step`, `on_epoch`) as the script wrote
    /// them (source text; `closure` where retort could not find it).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub schedules: std::collections::BTreeMap<String, String>,
    /// Epochs completed.
    pub epochs: usize,
    /// Test accuracy at the best epoch.
    pub best_accuracy: f32,
    /// Validation accuracy at the best epoch, when there is a validation part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_val_accuracy: Option<f32>,
    pub best_epoch: usize,
    /// The data part that chose the best epoch: `val` when the data set has a validation part,
    /// else `test`.
    #[serde(default = "best_on_test")]
    pub best_on: String,
    pub final_accuracy: f32,
    pub seconds: f64,
}

fn best_on_test() -> String {
    "test".into()
}

/// `summary.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub stages: Vec<StageSummary>,
    pub finished: bool,
    /// What stopped an unfinished run: its error, or the interrupt and the command that resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
}

/// `config.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub retort_version: String,
    pub script: String,
    pub script_hash: String,
    pub seed: u64,
    pub created: String,
    /// `--config` file, if any.
    pub config_file: Option<String>,
    /// `--set` pairs as given.
    pub sets: Vec<String>,
    /// The parameters the script ran with: its `defaults(...)` merged with `--config` and
    /// `--set` (before any `defaults` call ran: the given ones).
    pub params: serde_yaml::Value,
    /// `--config` and `--set` merged, as given: what `--resume` runs the script with again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<serde_yaml::Value>,
    /// What was recorded: `script` (`retort run`), `repl` or `notebook`.
    #[serde(default = "kind_script")]
    pub kind: String,
    /// The script's absolute path when it ran (to tell whether it changed since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_path: Option<String>,
    /// The files under `source/`: the script first, then the local modules it imported (by
    /// their `import` path); stdlib recipes are embedded in retort `retort_version`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// What happened to the record after it began (a resume with an edited script).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn kind_script() -> String {
    "script".into()
}

impl RunConfig {
    /// A config for a new run of `script` (a path, or `repl`, or a notebook's path).
    pub fn new(
        kind: &str,
        script: &str,
        script_hash: &str,
        seed: u64,
        config_file: Option<String>,
        sets: Vec<String>,
        given: serde_yaml::Value,
    ) -> Self {
        RunConfig {
            retort_version: env!("CARGO_PKG_VERSION").into(),
            script: script.into(),
            script_hash: script_hash.into(),
            seed,
            created: now_utc(),
            config_file,
            sets,
            params: given.clone(),
            given: Some(given),
            kind: kind.into(),
            script_path: None,
            sources: vec![],
            notes: vec![],
        }
    }

    /// The parameters to run the script with again: the given ones (older records kept only those, as `params`).
    pub fn given_params(&self) -> &serde_yaml::Value {
        self.given.as_ref().unwrap_or(&self.params)
    }
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `path` (and `checkpoints/`); it must not hold a run already.
    pub fn create(path: &Path) -> Result<RunDir> {
        // files of a run record without a config: another tool's folder, or a damaged run
        if !path.join("config.yaml").exists() {
            if let Some(f) = ["summary.yaml", "metrics.jsonl", "checkpoints", "source"].iter().find(|f| path.join(f).exists()) {
                return Err(Error::file(
                    path,
                    format!("holds a {f} but no config.yaml, so it is not a run retort can add to; choose another directory"),
                ));
            }
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        // claimed atomically: two runs started at once never share a directory
        match std::fs::OpenOptions::new().write(true).create_new(true).open(path.join("config.yaml")) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::file(
                    path,
                    "already holds a run (`retort run --resume` continues a script's run); choose another directory",
                ));
            }
            Err(e) => return Err(Error::io(path.join("config.yaml"), e)),
        }
        std::fs::create_dir_all(path.join("checkpoints")).map_err(|e| Error::io(path, e))?;
        Ok(RunDir { path: path.to_path_buf() })
    }

    /// Creates the first free one of `base`, `base-2`, `base-3`, ... (claimed atomically, so
    /// runs started in the same second get one each).
    pub fn create_fresh(base: &Path) -> Result<RunDir> {
        let name = base.file_name().map_or("run".into(), |n| n.to_string_lossy().to_string());
        for n in 1..10_000 {
            let path = if n == 1 { base.to_path_buf() } else { base.with_file_name(format!("{name}-{n}")) };
            if path.exists() {
                continue;
            }
            match RunDir::create(&path) {
                Ok(dir) => return Ok(dir),
                Err(_) if path.join("config.yaml").exists() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::file(base, "no free run directory name; clean up old runs"))
    }

    /// Opens an existing run for resuming.
    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.join("config.yaml").is_file() {
            return Err(Error::file(path, "is not a run directory (no config.yaml)"));
        }
        Ok(RunDir { path: path.to_path_buf() })
    }

    pub fn checkpoint(&self, name: &str) -> PathBuf {
        self.path.join("checkpoints").join(name)
    }

    /// The folder of the recorded script and its modules.
    pub fn source_dir(&self) -> PathBuf {
        self.path.join("source")
    }

    /// Copies `text` to `source/<rel>` (a relative path without `..`); false when `rel` has no place there.
    pub fn write_source(&self, rel: &str, text: &str) -> Result<bool> {
        let r = Path::new(rel);
        if r.is_absolute() || r.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Ok(false);
        }
        let target = self.source_dir().join(r);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        atomic_write(&target, text.as_bytes()).map(|_| true)
    }

    pub fn write_config(&self, c: &RunConfig) -> Result<()> {
        let text = serde_yaml::to_string(c).map_err(|e| Error::file(self.path.join("config.yaml"), e.to_string()))?;
        atomic_write(&self.path.join("config.yaml"), text.as_bytes())
    }

    pub fn read_config(&self) -> Result<RunConfig> {
        let p = self.path.join("config.yaml");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        serde_yaml::from_str(&text).map_err(|e| Error::file(&p, format!("not a retort run config: {e}")))
    }

    pub fn read_metrics(&self) -> Result<Vec<MetricsLine>> {
        let p = self.path.join("metrics.jsonl");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io(&p, e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::file(&p, format!("line {}: {e}", i + 1))))
            .collect()
    }

    /// Rewrites `metrics.jsonl` with `lines` (atomically), in stage order.
    pub fn write_metrics(&self, lines: &[MetricsLine]) -> Result<()> {
        let mut sorted: Vec<&MetricsLine> = lines.iter().collect();
        sorted.sort_by_key(|l| l.stage);
        let mut text = String::new();
        for l in sorted {
            text.push_str(&serde_json::to_string(l).expect("metrics serialize"));
            text.push('\n');
        }
        atomic_write(&self.path.join("metrics.jsonl"), text.as_bytes())
    }

    pub fn read_summary(&self) -> Result<Summary> {
        let p = self.path.join("summary.yaml");
        match std::fs::read_to_string(&p) {
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| Error::file(&p, format!("not a retort summary: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Summary::default()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    pub fn write_summary(&self, s: &Summary) -> Result<()> {
        let text = serde_yaml::to_string(s).map_err(|e| Error::file(self.path.join("summary.yaml"), e.to_string()))?;
        atomic_write(&self.path.join("summary.yaml"), text.as_bytes())
    }
}

/// A stable, dependency-free 64-bit FNV-1a hash of a script's text, as hex.
pub fn content_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}
