//! Run records: a killed run resumes to exactly the uninterrupted result; a kill while a
//! checkpoint is written leaves the previous one readable; YAML configs and bad files.

use super::scripts::retort;
use retort::nn::{Model, ModelConfig};
use retort::run::{Checkpoint, RunDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A teacher stage then a distillation stage with dropout and augmentation, so the RNG matters.
const SCRIPT: &str = r#"
let p = defaults(#{ epochs: 4, distill: #{ temperature: 4.0, alpha: 2.25 } });
let data = dataset("digits", #{ train_limit: 400, test_limit: 200 });
let teacher = model("mlp", #{ input: data.input, hidden: [64], classes: data.classes });
fit(teacher, data, #{ epochs: 2, optimizer: sgd(#{ lr: 0.1, momentum: 0.9 }) });
let student = model("mlp", #{ input: data.input, hidden: [16], classes: data.classes, dropout: 0.2 });
let run = distill(teacher, student, data, #{
    epochs: p.epochs, batch: 32, augment: #{ crop_padding: 1, flip: false },
    optimizer: adam(#{ lr: 0.01 }), loss: "wsl",
    temperature: p.distill.temperature, alpha: p.distill.alpha,
});
save_weights(student, "student.safetensors");
print(`final ${run.final_accuracy}`);
"#;

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("retort-rec-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_retort"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into())
}

/// metrics.jsonl without the wall-time field.
pub(super) fn metrics_without_time(dir: &Path) -> Vec<String> {
    RunDir::open(dir)
        .unwrap()
        .read_metrics()
        .unwrap()
        .into_iter()
        .map(|mut l| {
            l.record.seconds = 0.0;
            serde_json::to_string(&l).unwrap()
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_to_exactly_the_uninterrupted_result() {
    let dir = temp("resume");
    let script = dir.join("study.rhai");
    std::fs::write(&script, SCRIPT).unwrap();
    let s = script.to_str().unwrap();
    let (full, killed) = (dir.join("full"), dir.join("killed"));

    let (code, err) = run_env(&["run", s, "--out", full.to_str().unwrap(), "--seed", "3"], &[]);
    assert_eq!(code, Some(0), "{err}");
    // killed right after epoch 2 of the distillation stage was recorded
    let (code, _) = run_env(&["run", s, "--out", killed.to_str().unwrap(), "--seed", "3"], &[("RETORT_TEST_DIE_AFTER", "2:2")]);
    assert_ne!(code, Some(0));
    assert!(!killed.join("checkpoints/stage-2.safetensors").exists());
    assert_eq!(metrics_without_time(&killed).len(), 2 + 2);
    let (code, err) = run_env(&["run", "--resume", killed.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{err}");

    assert_eq!(metrics_without_time(&full), metrics_without_time(&killed));
    assert_eq!(metrics_without_time(&full).len(), 2 + 4);
    for f in ["checkpoints/stage-1.safetensors", "checkpoints/stage-2.safetensors", "checkpoints/last.safetensors", "student.safetensors"] {
        let (a, b) = (std::fs::read(full.join(f)).unwrap(), std::fs::read(killed.join(f)).unwrap());
        assert!(a == b, "{f} differs between the uninterrupted and the resumed run");
    }
    let summary = RunDir::open(&killed).unwrap().read_summary().unwrap();
    assert!(summary.finished);
    assert_eq!(summary.stages.len(), 2);
    assert_eq!(summary.stages[1].teacher.as_deref(), Some("mlp"));
    // the run directory holds what the issue lists
    for f in [
        "config.yaml",
        "metrics.jsonl",
        "summary.yaml",
        "checkpoints/best-stage-1.safetensors",
        "checkpoints/best-stage-2.safetensors",
        "source/study.rhai",
    ] {
        assert!(full.join(f).is_file(), "{f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Acceptance 3 of the records issue: a run directory copied to another folder resumes after
/// kill -9 from a third working directory, bit for bit, from its own copy of the script and of
/// the modules it imports, also when the original script was edited since.
#[test]
fn a_copied_run_directory_resumes_alone_from_any_folder() {
    let dir = temp("copied");
    std::fs::create_dir_all(dir.join("study/lib")).unwrap();
    std::fs::write(dir.join("study/lib/setup.rhai"), "fn data() { dataset(\"digits\", #{ train_limit: 400, test_limit: 200 }) }\n")
        .unwrap();
    let script = dir.join("study/study.rhai");
    std::fs::write(
        &script,
        SCRIPT.replace(
            "let data = dataset(\"digits\", #{ train_limit: 400, test_limit: 200 });",
            "import \"lib/setup\" as setup;\nlet data = setup::data();",
        ),
    )
    .unwrap();
    let s = script.to_str().unwrap();
    let (full, killed, moved) = (dir.join("full"), dir.join("killed"), dir.join("elsewhere/run"));
    let (code, err) = run_env(&["run", s, "--out", full.to_str().unwrap(), "--seed", "3"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _) = run_env(&["run", s, "--out", killed.to_str().unwrap(), "--seed", "3"], &[("RETORT_TEST_DIE_AFTER", "2:2")]);
    assert_ne!(code, Some(0));
    assert!(killed.join("source/study.rhai").is_file() && killed.join("source/lib/setup.rhai").is_file());
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    let twin = dir.join("elsewhere/twin");
    copy_dir(&killed, &twin);
    std::fs::rename(&killed, &moved).unwrap();
    // the original is edited, its module too; a third folder resumes the moved copy
    std::fs::write(&script, "print(\"edited\");\n").unwrap();
    std::fs::write(dir.join("study/lib/setup.rhai"), "fn data() { 1 }\n").unwrap();
    let third = dir.join("third");
    std::fs::create_dir_all(&third).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_retort")).args(["run", "--resume", moved.to_str().unwrap()]).current_dir(&third).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("changed since the run was recorded; resuming from the recorded copy"), "{err}");
    assert_eq!(metrics_without_time(&full), metrics_without_time(&moved));
    for f in ["checkpoints/stage-2.safetensors", "checkpoints/best-stage-2.safetensors", "student.safetensors"] {
        assert!(std::fs::read(full.join(f)).unwrap() == std::fs::read(moved.join(f)).unwrap(), "{f} differs");
    }
    // a finished run has nothing to resume
    let out = Command::new(env!("CARGO_BIN_EXE_retort")).args(["run", "--resume", moved.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("finished; there is nothing to resume") && out.status.code() == Some(2));
    // the edited script itself, only when asked for, with a warning, and the record says so
    let out = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["run", "--resume", twin.to_str().unwrap(), "--use-current"])
        .current_dir(&third)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("warning: resuming with") && String::from_utf8_lossy(&out.stdout) == "edited\n", "{err}");
    let config = RunDir::open(&twin).unwrap().read_config().unwrap();
    assert!(
        config.notes.len() == 1
            && config.notes[0].contains("resumed with an edited script")
            && twin.join("source/study.resumed-1.rhai").is_file(),
        "{:?}",
        config.notes
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_kill_while_writing_a_checkpoint_leaves_the_previous_one() {
    let dir = temp("abort");
    let script = dir.join("study.rhai");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = dir.join("run");
    // the 4th write of last.safetensors is epoch 2 of the distillation (after 2 teacher epochs)
    let (code, _) =
        run_env(&["run", script.to_str().unwrap(), "--out", out.to_str().unwrap()], &[("RETORT_TEST_ABORT_WRITING", "last.safetensors:4")]);
    assert_ne!(code, Some(0));
    let student =
        Model::new("mlp", ModelConfig { classes: 10, input: vec![1, 8, 8], hidden: vec![16], dropout: 0.2, ..Default::default() }).unwrap();
    let ckpt = Checkpoint::load(&student, &out.join("checkpoints/last.safetensors")).unwrap();
    assert_eq!((ckpt.stage, ckpt.trainer.epoch), (2, 1));
    // and the run resumes from it
    let (code, err) = run_env(&["run", "--resume", out.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn yaml_configs_merge_under_set_and_bad_keys_name_the_file_and_line() {
    let dir = temp("yaml");
    let script = dir.join("p.rhai");
    std::fs::write(&script, "let p = defaults(#{ epochs: 40, name: \"x\", distill: #{ temperature: 4.0, alpha: 2.25 } });\nprint(`${p.epochs} ${p.name} ${p.distill.temperature} ${p.distill.alpha}`);\n").unwrap();
    let s = script.to_str().unwrap();
    let cfg = dir.join("exp.yaml");
    std::fs::write(&cfg, "epochs: 3\ndistill:\n  temperature: 8\n").unwrap();
    let (code, out, err) = retort(&["run", s, "--config", cfg.to_str().unwrap(), "--set", "distill.alpha=1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "3 x 8.0 1.0");
    let (_, out, _) = retort(&["run", s, "--config", cfg.to_str().unwrap(), "--set", "distill.temperature=2"]);
    assert_eq!(out.trim(), "3 x 2.0 2.25");

    std::fs::write(&cfg, "epochs: 3\ndistill:\n  temprature: 8\n").unwrap();
    let (code, _, err) = retort(&["run", s, "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("'distill.temprature' (from ") && err.contains("exp.yaml:3)") && err.contains("did you mean 'distill.temperature'?"),
        "{err}"
    );
    std::fs::write(&cfg, "epochs: many\n").unwrap();
    let (_, _, err) = retort(&["run", s, "--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("'epochs' (from ")
            && err.contains("exp.yaml:1)")
            && err.contains("must be an integer like its default 40, got a string"),
        "{err}"
    );
    std::fs::write(&cfg, "epochs: [1,\n").unwrap();
    let (code, _, err) = retort(&["run", s, "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("exp.yaml:") && err.contains("invalid YAML"), "{err}");
    let (_, _, err) = retort(&["run", s, "--set", "epochz=3"]);
    assert!(err.contains("'epochz' (from --set epochz) is not a parameter of this script; did you mean 'epochs'?"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_weights_files_are_clear_errors() {
    let dir = temp("corrupt");
    let good = dir.join("good.safetensors");
    let m = Model::new("mlp", ModelConfig { classes: 10, input: vec![1, 8, 8], hidden: vec![8], ..Default::default() }).unwrap();
    retort::run::weights::save(&m, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("truncated.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    std::fs::write(dir.join("garbage.safetensors"), b"this is not a weights file at all").unwrap();
    for (name, want) in [("truncated", "truncated?"), ("garbage", "is neither a PyTorch checkpoint")] {
        let script = dir.join(format!("{name}.rhai"));
        std::fs::write(
            &script,
            format!(
                "let m = model(\"mlp\", #{{ input: [1, 8, 8], hidden: [8], classes: 10 }});\nload_weights(m, \"{}\");\n",
                dir.join(format!("{name}.safetensors")).display()
            ),
        )
        .unwrap();
        let (code, _, err) = retort(&["run", script.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("{name}.safetensors")) && err.contains(want) && err.contains(":2:1"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn teacher_logits_from_npy_stand_in_for_the_teacher_exactly() {
    let dir = temp("npy");
    // the teacher's logits on the training set, computed here and saved as .npy
    let mut split = retort::data::load("digits", None, 0.2, 0).unwrap();
    split.normalize();
    let teacher =
        Model::new("mlp", ModelConfig { classes: 10, input: vec![1, 8, 8], hidden: vec![32], seed: 5, ..Default::default() }).unwrap();
    retort::run::weights::save(&teacher, &dir.join("teacher.safetensors")).unwrap();
    let logits = retort::train::predict(&teacher, &split.train, 256).unwrap();
    std::fs::write(dir.join("teacher.npy"), retort::run::npy::to_bytes(&[split.train.len(), 10], &logits)).unwrap();
    std::fs::write(dir.join("short.npy"), retort::run::npy::to_bytes(&[100, 10], &logits[..1000])).unwrap();
    let script = format!(
        "let d = dataset(\"digits\");\nlet t = model(\"mlp\", #{{ input: d.input, hidden: [32], classes: 10 }});\nload_weights(t, \"{dir}/teacher.safetensors\");\n\
         let a = model(\"mlp\", #{{ input: d.input, hidden: [8], classes: 10, seed: 1 }});\nlet b = model(\"mlp\", #{{ input: d.input, hidden: [8], classes: 10, seed: 1 }});\n\
         let ra = distill(t, a, d, #{{ epochs: 2, loss: \"wsl\" }});\nlet rb = distill(teacher_logits(\"{dir}/teacher.npy\"), b, d, #{{ epochs: 2, loss: \"wsl\" }});\n\
         print(ra.history[1].train_loss == rb.history[1].train_loss);\nprint(rb.history[1].train_loss);\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("ok.rhai"), script).unwrap();
    let (code, out, err) = retort(&["run", dir.join("ok.rhai").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("true\n"), "{out}");
    std::fs::write(dir.join("bad.rhai"), format!("let d = dataset(\"digits\");\nlet s = model(\"mlp\", #{{ input: d.input, hidden: [8], classes: 10 }});\ndistill(teacher_logits(\"{}/short.npy\"), s, d, #{{ epochs: 1 }});\n", dir.display())).unwrap();
    let (code, _, err) = retort(&["run", dir.join("bad.rhai").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("short.npy have shape [100, 10]") && err.contains("need [1438, 10]") && err.contains("bad.rhai:3:1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_progress_output_when_stderr_is_not_a_terminal() {
    let dir = temp("quiet");
    let script = dir.join("s.rhai");
    std::fs::write(&script, "let d = dataset(\"digits\", #{ train_limit: 100, test_limit: 50 });\nlet m = model(\"mlp\", #{ input: d.input, hidden: [8], classes: d.classes });\nfit(m, d, #{ epochs: 2 });\nprint(\"done\");\n").unwrap();
    let (code, out, err) = retort(&["run", script.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap()]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "done\n", ""));
    std::fs::remove_dir_all(&dir).unwrap();
}
