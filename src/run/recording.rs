//! Recording a script's training stages into its run directory, and resuming them exactly.
//!
//! Each `fit` or `distill` call is a stage, numbered in the order the script makes them. On
//! resume the script runs again from the top: finished stages load their final weights and
//! history instead of training; the stage in progress continues from `last.safetensors`.

use super::{weights, Checkpoint, MetricsLine, RunConfig, RunDir, SafeTensors, StageSummary};
use crate::error::{Error, Result};
use crate::nn::Model;
use crate::train::{Control, EpochRecord, Hooks, Trainer};
use std::cell::Cell;

/// The run directory of a `retort run`, shared by the script's training calls.
/// Where a run is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A new run directory at this path.
    New(std::path::PathBuf),
    /// The run recorded here, to continue after an interruption.
    Resume(std::path::PathBuf),
}

pub struct Recording {
    pub dir: RunDir,
    /// Continue an interrupted run instead of starting fresh.
    pub resume: bool,
    stages: Cell<usize>,
}

/// What the record says about one stage.
pub struct StageInfo<'a> {
    pub kind: &'a str,
    pub label: String,
    pub teacher: Option<&'a Model>,
    pub loss: &'a str,
}

impl Recording {
    pub fn new(dir: RunDir, resume: bool) -> Self {
        Recording { dir, resume, stages: Cell::new(0) }
    }

    /// Opens where `record` says: a new run directory gets `config` (made only then); a run to
    /// resume must have been recorded from a script with `script_hash`, and its recorded
    /// config comes back, for the parameters and seed it ran with.
    pub fn start(record: &Record, script_hash: &str, config: impl FnOnce() -> RunConfig) -> Result<(Recording, RunConfig)> {
        match record {
            Record::New(path) => {
                let dir = RunDir::create(path)?;
                let config = config();
                dir.write_config(&config)?;
                Ok((Recording::new(dir, false), config))
            }
            Record::Resume(path) => {
                let dir = RunDir::open(path)?;
                let recorded = dir.read_config()?;
                if recorded.script_hash != script_hash {
                    return Err(Error::file(
                        path,
                        format!(
                            "{} changed since the run in {} was recorded; resume needs the same script",
                            recorded.script,
                            path.display()
                        ),
                    ));
                }
                Ok((Recording::new(dir, true), recorded))
            }
        }
    }

    /// How many stages the script has started so far (the number of the latest).
    pub fn stage_count(&self) -> usize {
        self.stages.get()
    }

    /// Which stage a checkpoint belongs to (without loading its weights).
    fn checkpoint_stage(path: &std::path::Path) -> Option<usize> {
        SafeTensors::read(path).ok()?.metadata.get("stage")?.parse().ok()
    }

    /// Runs (or resumes, or replays) the next stage with `trainer` training `student`.
    pub fn stage(&self, trainer: &mut Trainer, student: &Model, info: StageInfo, hooks: &mut dyn Hooks) -> Result<Vec<EpochRecord>> {
        let k = self.stages.get() + 1;
        self.stages.set(k);
        let final_path = self.dir.checkpoint(&format!("stage-{k}.safetensors"));
        let last_path = self.dir.checkpoint("last.safetensors");
        let best_path = self.dir.checkpoint("best.safetensors");
        let mut metrics = self.dir.read_metrics()?;

        // a finished stage: its weights and history, no training
        if self.resume && final_path.exists() {
            weights::load(student, &final_path)?;
            return Ok(metrics.iter().filter(|l| l.stage == k).map(|l| l.record.clone()).collect());
        }
        let (mut best, mut best_epoch) = (f32::NEG_INFINITY, 0);
        if self.resume && last_path.exists() && Self::checkpoint_stage(&last_path) == Some(k) {
            let ckpt = Checkpoint::load(student, &last_path)?;
            trainer.restore(&ckpt.trainer)?;
            (best, best_epoch) = (ckpt.best_accuracy, ckpt.best_epoch);
            metrics.retain(|l| l.stage < k || (l.stage == k && l.record.epoch <= ckpt.trainer.epoch));
        } else {
            metrics.retain(|l| l.stage < k);
        }
        self.dir.write_metrics(&metrics)?;
        let mut history: Vec<EpochRecord> = metrics.iter().filter(|l| l.stage == k).map(|l| l.record.clone()).collect();

        while trainer.epoch() < trainer.config().epochs {
            let (record, control) = trainer.run_epoch(hooks)?;
            // log
            metrics.push(MetricsLine::new(k, &info.label, &record));
            self.dir.write_metrics(&metrics)?;
            // checkpoint
            if record.test_accuracy > best {
                (best, best_epoch) = (record.test_accuracy, record.epoch);
                weights::save(student, &best_path)?;
            }
            Checkpoint { stage: k, trainer: trainer.state()?, best_accuracy: best, best_epoch }.save(student, &last_path)?;
            history.push(record);
            let title = self.dir.path.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string());
            super::plot::run_curves(&metrics, &title, &self.dir.path.join("curves.png"))?;
            // test hook: die right after epoch E of stage K was recorded ("K:E")
            if std::env::var("RETORT_TEST_DIE_AFTER").is_ok_and(|v| v == format!("{k}:{}", trainer.epoch())) {
                std::process::abort();
            }
            if control == Control::Stop {
                break;
            }
        }
        // stop
        weights::save(student, &final_path)?;
        let mut summary = self.dir.read_summary()?;
        summary.stages.retain(|s| s.stage < k);
        let last = history.last();
        summary.stages.push(StageSummary {
            stage: k,
            label: info.label,
            kind: info.kind.into(),
            student: student.arch().into(),
            teacher: info.teacher.map(|t| t.arch().to_string()),
            loss: info.loss.into(),
            temperature: last.and_then(|r| r.temperature),
            alpha: last.and_then(|r| r.alpha),
            epochs: history.len(),
            best_accuracy: best.max(0.0),
            best_epoch,
            final_accuracy: last.map_or(0.0, |r| r.test_accuracy),
            seconds: history.iter().map(|r| r.seconds).sum(),
        });
        self.dir.write_summary(&summary)?;
        Ok(history)
    }
}
