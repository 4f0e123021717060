//! Recording a script's training stages into its run directory, and resuming them exactly.
//!
//! Each `fit` or `distill` call is a stage, numbered in the order the script makes them. On
//! resume the script runs again from the top: finished stages load their final weights and
//! history instead of training; the stage in progress continues from `last.safetensors`.

use super::{weights, Checkpoint, MetricsLine, RunConfig, RunDir, SafeTensors, StageStatus, StageSummary};
use crate::error::{Error, Result};
use crate::nn::Model;
use crate::train::{Control, EpochRecord, Hooks, Trainer};
use std::cell::Cell;
use std::collections::BTreeMap;

/// Where a run is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A new run directory at this path.
    New(std::path::PathBuf),
    /// A new run directory at this path, or at `PATH-2`, `PATH-3`... when it is taken (the
    /// default names, so runs started at once each get their own).
    Fresh(std::path::PathBuf),
    /// The run recorded here, to continue after an interruption. `current`: the script on disk
    /// has changed since and the user chose it over the recorded copy (`--use-current`).
    Resume { dir: std::path::PathBuf, current: bool },
}

/// The run directory of a script run or a session, shared by its training calls.
pub struct Recording {
    pub dir: RunDir,
    /// Continue an interrupted run instead of starting fresh.
    pub resume: bool,
    stages: Cell<usize>,
    /// The failed stage a resume replayed last (its recorded error stays as it was).
    replayed_failure: Cell<Option<usize>>,
}

/// What the record says about one stage.
pub struct StageInfo<'a> {
    pub kind: &'a str,
    pub label: String,
    pub teacher: Option<&'a Model>,
    pub loss: &'a str,
    /// Schedules and the filter as the script wrote them (option name to source text).
    pub schedules: BTreeMap<String, String>,
}

/// How a stage's training ended.
pub struct StageRun {
    /// The epochs completed; after an interrupt, the partial epoch last (`partial`), unrecorded.
    pub history: Vec<EpochRecord>,
    pub interrupted: bool,
}

impl Recording {
    pub fn new(dir: RunDir, resume: bool) -> Self {
        Recording { dir, resume, stages: Cell::new(0), replayed_failure: Cell::new(None) }
    }

    /// Makes the new run directory `record` names (`New` or `Fresh`), holding `config`.
    pub fn create(record: &Record, config: &RunConfig) -> Result<Recording> {
        let dir = match record {
            Record::Fresh(base) => RunDir::create_fresh(base)?,
            Record::New(path) | Record::Resume { dir: path, .. } => RunDir::create(path)?,
        };
        dir.write_config(config)?;
        Ok(Recording::new(dir, false))
    }

    /// Opens the run recorded at `path` to continue it, with the config it was recorded with.
    pub fn open(path: &std::path::Path) -> Result<(Recording, RunConfig)> {
        let dir = RunDir::open(path)?;
        let config = dir.read_config()?;
        Ok((Recording::new(dir, true), config))
    }

    /// Records the parameters the script ran with (its defaults merged with the given ones).
    pub fn record_params(&self, params: serde_yaml::Value) -> Result<()> {
        let mut config = self.dir.read_config()?;
        if config.params != params {
            config.params = params;
            self.dir.write_config(&config)?;
        }
        Ok(())
    }

    /// Ends the run: finished, or stopped by `error` (which `retort runs` then shows).
    pub fn finish(&self, seconds: f64, error: Option<String>) -> Result<()> {
        let mut summary = self.dir.read_summary()?;
        summary.finished = error.is_none();
        summary.error = error;
        summary.seconds += seconds;
        self.dir.write_summary(&summary)
    }

    /// Replaces the recorded error of the latest stage (a failing closure's message, which the
    /// trainer only knew as "a script hook failed").
    pub fn set_stage_error(&self, message: &str) -> Result<()> {
        let k = self.stages.get();
        if self.replayed_failure.get() == Some(k) {
            return Ok(());
        }
        let mut summary = self.dir.read_summary()?;
        match summary.stages.iter_mut().find(|s| s.stage == k && s.status == StageStatus::Failed) {
            Some(s) => s.error = Some(message.to_string()),
            None => return Ok(()),
        }
        self.dir.write_summary(&summary)
    }

    /// How many stages the script has started so far (the number of the latest).
    pub fn stage_count(&self) -> usize {
        self.stages.get()
    }

    /// Which stage a checkpoint belongs to (without loading its weights).
    fn checkpoint_stage(path: &std::path::Path) -> Option<usize> {
        SafeTensors::read(path).ok()?.metadata.get("stage")?.parse().ok()
    }

    /// Writes stage `k`'s entry of `summary.yaml`: after each epoch (`Running`) and at its end.
    #[allow(clippy::too_many_arguments)]
    fn summarize(
        &self,
        k: usize,
        info: &StageInfo,
        student: &Model,
        status: StageStatus,
        error: Option<String>,
        history: &[EpochRecord],
        (_, best_epoch): (f32, usize),
    ) -> Result<()> {
        let mut summary = self.dir.read_summary()?;
        summary.stages.retain(|s| s.stage < k);
        let whole: Vec<&EpochRecord> = history.iter().filter(|r| !r.partial).collect();
        let last = whole.last();
        let chosen = whole.iter().find(|r| r.epoch == best_epoch);
        summary.stages.push(StageSummary {
            stage: k,
            label: info.label.clone(),
            kind: info.kind.into(),
            status,
            error,
            student: student.arch().into(),
            teacher: info.teacher.map(|t| t.arch().to_string()),
            loss: info.loss.into(),
            temperature: last.and_then(|r| r.temperature),
            alpha: last.and_then(|r| r.alpha),
            schedules: info.schedules.clone(),
            epochs: whole.len(),
            // the test accuracy at the best epoch, and the accuracy that chose it
            best_accuracy: chosen.map_or(0.0, |r| r.test_accuracy),
            best_val_accuracy: chosen.and_then(|r| r.val_accuracy),
            best_epoch,
            best_on: chosen.map_or("test", |r| r.chosen_on()).into(),
            final_accuracy: last.map_or(0.0, |r| r.test_accuracy),
            seconds: whole.iter().fold(0.0, |s, r| s + r.seconds),
        });
        self.dir.write_summary(&summary)
    }

    /// Runs (or resumes, or replays) the next stage with `trainer` training `student`. The
    /// stage's summary entry is kept current after each epoch (`running`). A stage that fails is
    /// recorded with its error and its last epoch before the error is returned; an interrupted
    /// one is recorded as such, its partial epoch neither logged nor checkpointed, so `--resume`
    /// continues from the last whole epoch exactly.
    pub fn stage(&self, trainer: &mut Trainer, student: &Model, info: StageInfo, hooks: &mut dyn Hooks) -> Result<StageRun> {
        let k = self.stages.get() + 1;
        self.stages.set(k);
        let final_path = self.dir.checkpoint(&format!("stage-{k}.safetensors"));
        let last_path = self.dir.checkpoint("last.safetensors");
        let best_path = self.dir.checkpoint(&format!("best-stage-{k}.safetensors"));
        let mut metrics = self.dir.read_metrics()?;
        let recorded = self.dir.read_summary()?.stages.into_iter().find(|s| s.stage == k);

        // a finished stage: its weights and history, no training; a failed one: its weights at
        // the failure and its error again, so the script goes on as it did (an interrupted or
        // unfinished one continues below)
        let ended = recorded.as_ref().is_none_or(|s| matches!(s.status, StageStatus::Finished | StageStatus::Failed));
        if self.resume && final_path.exists() && ended {
            weights::load(student, &final_path)?;
            let history = metrics.iter().filter(|l| l.stage == k).map(|l| l.record.clone()).collect();
            if let Some(failed) = recorded.filter(|s| s.status == StageStatus::Failed) {
                self.replayed_failure.set(Some(k));
                let why = failed.error.unwrap_or_default();
                return Err(Error::invalid("resume", format!("this stage failed when the run was recorded: {why}")));
            }
            return Ok(StageRun { history, interrupted: false });
        }
        let (mut best, mut best_epoch) = (f32::NEG_INFINITY, 0);
        if self.resume && last_path.exists() && Self::checkpoint_stage(&last_path) == Some(k) {
            let ckpt = Checkpoint::load(student, &last_path)?;
            trainer.restore(&ckpt.trainer)?;
            (best, best_epoch) = (ckpt.best_accuracy, ckpt.best_epoch);
            metrics.retain(|l| l.stage != k || l.record.epoch <= ckpt.trainer.epoch);
        } else {
            metrics.retain(|l| l.stage != k);
        }
        self.dir.write_metrics(&metrics)?;
        let mut history: Vec<EpochRecord> = metrics.iter().filter(|l| l.stage == k).map(|l| l.record.clone()).collect();
        let mut status = StageStatus::Finished;
        let mut failure = None;
        self.summarize(k, &info, student, StageStatus::Running, None, &history, (best, best_epoch))?;

        while trainer.epoch() < trainer.config().epochs {
            let (record, control) = match trainer.run_epoch(hooks) {
                Ok(r) => r,
                Err(e) => {
                    (status, failure) = (StageStatus::Failed, Some(e));
                    break;
                }
            };
            if record.partial {
                // stopped between batches: what was trained is the caller's, not the record's
                history.push(record);
                status = StageStatus::Interrupted;
                break;
            }
            // log
            metrics.push(MetricsLine::new(k, &info.label, &record));
            self.dir.write_metrics(&metrics)?;
            // checkpoint
            // chosen on validation when there is a validation part, never on test then
            if record.selection_accuracy() > best {
                (best, best_epoch) = (record.selection_accuracy(), record.epoch);
                weights::save(student, &best_path)?;
            }
            Checkpoint { stage: k, trainer: trainer.state()?, best_accuracy: best, best_epoch }.save(student, &last_path)?;
            history.push(record);
            self.summarize(k, &info, student, StageStatus::Running, None, &history, (best, best_epoch))?;
            let title = self.dir.path.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string());
            super::plot::run_curves(&metrics, &title, &self.dir.path.join("curves.png"))?;
            // test hook: die right after epoch E of stage K was recorded ("K:E")
            if std::env::var("RETORT_TEST_DIE_AFTER").is_ok_and(|v| v == format!("{k}:{}", trainer.epoch())) {
                std::process::abort();
            }
            if control == Control::Stop {
                // an interrupt on an epoch's last batch leaves no partial epoch, but the stage
                // is not done: --resume must go on from here, not skip its remaining epochs
                if hooks.interrupted() && trainer.epoch() < trainer.config().epochs {
                    status = StageStatus::Interrupted;
                }
                break;
            }
        }
        // stop: the final weights (or those at the failure or the interrupt: what later stages
        // started from)
        weights::save(student, &final_path)?;
        self.summarize(k, &info, student, status, failure.as_ref().map(|e| e.to_string()), &history, (best, best_epoch))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(StageRun { history, interrupted: status == StageStatus::Interrupted }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModelConfig;
    use crate::train::{BatchProgress, TrainConfig};

    /// Ctrl-C landing on the last batch of `epoch`.
    struct InterruptAt {
        epoch: usize,
        hit: bool,
    }

    impl Hooks for InterruptAt {
        fn on_batch(&mut self, p: &BatchProgress) -> Result<Control> {
            self.hit |= p.epoch == self.epoch && p.batch == p.batches;
            Ok(if self.hit { Control::Stop } else { Control::Continue })
        }
        fn interrupted(&self) -> bool {
            self.hit
        }
    }

    #[test]
    fn an_interrupt_at_an_epochs_end_leaves_the_stage_to_resume() {
        let dir = std::env::temp_dir().join(format!("retort-interrupt-at-end-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut split = crate::data::load("digits", None, 0.2, 7).unwrap();
        split.train = split.train.take(128);
        let config = TrainConfig { epochs: 3, batch_size: 64, ..Default::default() };
        let model = || Model::new("mlp", ModelConfig { classes: 10, input: vec![1, 8, 8], hidden: vec![8], ..Default::default() });
        let info = || StageInfo { kind: "fit", label: "fit".into(), teacher: None, loss: "ce", schedules: BTreeMap::new() };
        let run_dir = RunDir::create(&dir).unwrap();
        run_dir.write_summary(&super::super::Summary::default()).unwrap();
        let student = model().unwrap();
        let mut trainer = Trainer::new(&student, crate::train::Teacher::None, &split, config.clone()).unwrap();
        let mut hooks = InterruptAt { epoch: 1, hit: false };
        let run = Recording::new(run_dir, false).stage(&mut trainer, &student, info(), &mut hooks).unwrap();
        assert!(run.interrupted && run.history.len() == 1 && !run.history[0].partial);
        let summary = RunDir::open(&dir).unwrap().read_summary().unwrap();
        assert_eq!(summary.stages[0].status, StageStatus::Interrupted);
        // --resume trains epochs 2 and 3, from the checkpoint of epoch 1
        let student = model().unwrap();
        let mut trainer = Trainer::new(&student, crate::train::Teacher::None, &split, config).unwrap();
        let resumed = Recording::new(RunDir::open(&dir).unwrap(), true);
        let run = resumed.stage(&mut trainer, &student, info(), &mut crate::train::NoHooks).unwrap();
        assert_eq!(run.history.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(RunDir::open(&dir).unwrap().read_summary().unwrap().stages[0].status, StageStatus::Finished);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
