//! Work that keeps: REPL and notebook sessions recorded with a runnable transcript, failed and
//! interrupted stages in the record, resolved parameters, and refusals before any training.

use retort::run::{RunDir, StageStatus};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("retort-keeps-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The binary in `dir`, with `stdin` piped in.
fn retort_in(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into()
}

/// Inputs as typed at a REPL: no final `;`, a failing input in the middle.
const SESSION: &str = "let d = dataset(\"digits\", #{ train_limit: 300, test_limit: 100 })
let m = model(\"mlp\", #{ input: d.input, hidden: [16], classes: d.classes, dropout: 0.1 })
let r = fit(m, d, #{ epochs: 2, optimizer: adam(#{ lr: 0.01 }) })
r.final_accuracy
frobnicate()
let x = randn([3])
save_weights(m, \"m.safetensors\")
:save saved.rhai
";

#[test]
fn a_repl_session_is_recorded_and_its_transcript_reruns_to_the_same_weights() {
    let dir = temp("repl");
    let out = retort_in(&dir, &["repl", "--seed", "4"], SESSION);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    // the run directory is printed at the start and listed by `retort runs`
    let first = err.lines().next().unwrap_or("");
    let run = PathBuf::from(first.strip_prefix("recording this session in ").and_then(|r| r.split(" (").next()).expect(first));
    let run = dir.join(run);
    for f in ["config.yaml", "metrics.jsonl", "summary.yaml", "source/transcript.rhai", "m.safetensors", "checkpoints/stage-1.safetensors"]
    {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let summary = RunDir::open(&run).unwrap().read_summary().unwrap();
    assert!(summary.finished && summary.stages.len() == 1, "{summary:?}");
    let listed = text(&retort_in(&dir, &["runs"], "").stdout);
    assert!(listed.contains(run.file_name().unwrap().to_str().unwrap()) && listed.contains("repl"), "{listed}");

    // the transcript and the :save file both run, and give the same weights, byte for byte
    let transcript = std::fs::read_to_string(run.join("source/transcript.rhai")).unwrap();
    assert!(transcript.contains("// rerun: retort run transcript.rhai --seed 4") && transcript.contains("// frobnicate()"), "{transcript}");
    let saved = std::fs::read_to_string(dir.join("saved.rhai")).unwrap();
    assert_eq!(saved.lines().skip(2).collect::<Vec<_>>(), transcript.lines().skip(2).collect::<Vec<_>>());
    let want = std::fs::read(run.join("m.safetensors")).unwrap();
    for (script, out_dir) in [(run.join("source/transcript.rhai"), "rerun-transcript"), (dir.join("saved.rhai"), "rerun-saved")] {
        let out = retort_in(&dir, &["run", script.to_str().unwrap(), "--seed", "4", "--out", out_dir], "");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(std::fs::read(dir.join(out_dir).join("m.safetensors")).unwrap() == want, "{out_dir}: other weights");
    }
    // --no-record: save_weights is refused, and the plots' temporary folder is removed at the end
    let mut child = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["repl", "--no-record"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let images = std::env::temp_dir().join(format!("retort-repl-{}", child.id()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let m = model(\"mlp\", #{ input: 4, classes: 2 })\nsave_weights(m, \"x.safetensors\")\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(text(&out.stderr).contains("save_weights: this run has no run directory (--no-record)"), "{}", text(&out.stderr));
    assert!(!images.exists(), "{} was left behind", images.display());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_notebook_saves_weights_and_another_loads_them() {
    let dir = temp("notebooks");
    std::fs::write(
        dir.join("train.md"),
        "# train\n\n```rhai\nlet d = dataset(\"digits\", #{ train_limit: 300, test_limit: 100 });\nlet t = model(\"mlp\", #{ input: d.input, hidden: [32], classes: d.classes });\nfit(t, d, #{ epochs: 2 });\nprint(evaluate(t, d).accuracy);\nsave_weights(t, \"teacher.safetensors\");\n```\n",
    )
    .unwrap();
    let out = retort_in(&dir, &["notebook", "run", "train.md", "--run-dir", "runs/teacher"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("recording this notebook's session in runs/teacher"));
    let trained = std::fs::read_to_string(dir.join("train.md")).unwrap();
    let accuracy = trained.split("```output\n").nth(1).and_then(|o| o.lines().next()).unwrap().to_string();
    assert!(trained.contains("recorded in runs/teacher"), "{trained}");
    std::fs::write(
        dir.join("use.md"),
        "# use\n\n```rhai\nlet d = dataset(\"digits\", #{ train_limit: 300, test_limit: 100 });\nlet t = model(\"mlp\", #{ input: d.input, hidden: [32], classes: d.classes });\nload_weights(t, \"runs/teacher/teacher.safetensors\");\nprint(evaluate(t, d).accuracy);\n```\n",
    )
    .unwrap();
    let out = retort_in(&dir, &["notebook", "run", "use.md", "--no-record"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let used = std::fs::read_to_string(dir.join("use.md")).unwrap();
    assert!(used.contains(&format!("```output\n{accuracy}\n```")), "{accuracy} not in\n{used}");
    assert!(!dir.join("runs").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("use")));
    std::fs::remove_dir_all(&dir).unwrap();
}

const THREE_STAGES: &str = r#"
let p = defaults(#{ epochs: 2, lr: 0.1 });
let d = dataset("digits", #{ train_limit: 300, test_limit: 100 });
let t = model("mlp", #{ input: d.input, hidden: [32], classes: d.classes });
fit(t, d, #{ epochs: p.epochs, optimizer: sgd(#{ lr: p.lr }), label: "teacher" });
let s = model("mlp", #{ input: d.input, hidden: [8], classes: d.classes });
try {
    distill(t, s, d, #{ epochs: 3, loss: "wsl", temperature: |e| if e > 1 { throw "schedule broke" } else { 4.0 }, label: "broken" });
} catch (e) {
    print("caught");
}
distill(t, s, d, #{ epochs: 3, loss: "wsl", alpha: 2.25, temperature: |e| 5.0 - e, label: "annealed" });
"#;

#[test]
fn a_failed_stage_is_recorded_listed_and_plotted_with_the_others() {
    let dir = temp("stages");
    std::fs::write(dir.join("study.rhai"), THREE_STAGES).unwrap();
    let out = retort_in(&dir, &["run", "study.rhai", "--out", "runs/three"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = dir.join("runs/three");
    let summary = RunDir::open(&run).unwrap().read_summary().unwrap();
    let stages: Vec<(usize, &str, StageStatus)> = summary.stages.iter().map(|s| (s.stage, s.label.as_str(), s.status)).collect();
    assert_eq!(stages, [(1, "teacher", StageStatus::Finished), (2, "broken", StageStatus::Failed), (3, "annealed", StageStatus::Finished)]);
    let broken = &summary.stages[1];
    assert!(broken.error.as_deref().is_some_and(|e| e.contains("schedule broke") && e.contains("line 8")), "{broken:?}");
    assert_eq!(broken.epochs, 1);
    // schedules as the script wrote them; per-epoch values in the metrics
    assert_eq!(summary.stages[2].schedules["temperature"], "|e| 5.0 - e");
    let metrics = RunDir::open(&run).unwrap().read_metrics().unwrap();
    let temps: Vec<Option<f32>> = metrics.iter().filter(|l| l.stage == 3).map(|l| l.record.temperature).collect();
    assert_eq!(temps, [Some(4.0), Some(3.0), Some(2.0)]);
    for k in 1..=3 {
        assert!(run.join(format!("checkpoints/best-stage-{k}.safetensors")).is_file(), "best of stage {k}");
    }
    // retort runs: a row per stage, the failure with its error
    let listed = text(&retort_in(&dir, &["runs"], "").stdout);
    for want in ["1 teacher", "2 broken", "3 annealed", "failed: ", "schedule broke", "|e| 5.0 - e"] {
        assert!(listed.contains(want), "{want} not in\n{listed}");
    }
    // plot: a curve per stage, labelled by the stage
    let series = retort::run::plot::stage_series(&metrics, None);
    assert_eq!(series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["1: teacher", "2: broken", "3: annealed"]);
    let out = retort_in(&dir, &["plot", "runs/three", "-o", "three.png"], "");
    assert!(out.status.success() && dir.join("three.png").is_file(), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compare_shows_the_defaults_a_run_used() {
    let dir = temp("compare");
    std::fs::write(dir.join("study.rhai"), THREE_STAGES.replace("try {", "if false {").replace("} catch (e) {", "} else {")).unwrap();
    for (out, set) in [("runs/a", None), ("runs/b", Some("lr=0.05"))] {
        let mut args = vec!["run", "study.rhai", "--out", out];
        args.extend(set.iter().flat_map(|s| ["--set", *s]));
        let o = retort_in(&dir, &args, "");
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let config = RunDir::open(&dir.join("runs/a")).unwrap().read_config().unwrap();
    assert_eq!(serde_yaml::to_string(&config.params).unwrap(), "epochs: 2\nlr: 0.1\n");
    let compared = text(&retort_in(&dir, &["runs", "compare", "runs/a", "runs/b"], "").stdout);
    let row = compared.lines().find(|l| l.contains("params.lr")).unwrap_or_default();
    assert!(row.contains("* params.lr") && row.contains("0.1") && row.contains("0.05"), "{compared}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_without_a_record_refuses_save_weights_before_training() {
    let dir = temp("norecord");
    std::fs::write(
        dir.join("s.rhai"),
        "let d = dataset(\"digits\");\nlet m = model(\"mlp\", #{ input: d.input, classes: d.classes });\nfit(m, d, #{ epochs: 1000 });\nsave_weights(m, \"m.safetensors\");\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = retort_in(&dir, &["run", "s.rhai", "--no-record"], "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("save_weights: this run has no run directory (retort run --no-record)") && err.contains("s.rhai:4:1"), "{err}");
    assert!(started.elapsed().as_secs() < 20, "it trained first");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_script_that_fails_before_training_leaves_no_unfinished_run() {
    let dir = temp("early");
    std::fs::write(dir.join("syntax.rhai"), "let x = ;\n").unwrap();
    let out = retort_in(&dir, &["run", "syntax.rhai", "--out", "runs/syntax"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("runs/syntax").exists(), "a script that does not compile made a run directory");
    std::fs::write(dir.join("data.rhai"), "let d = dataset(\"cifar-1000\");\n").unwrap();
    let out = retort_in(&dir, &["run", "data.rhai", "--out", "runs/data"], "");
    assert_eq!(out.status.code(), Some(1));
    let summary = RunDir::open(&dir.join("runs/data")).unwrap().read_summary().unwrap();
    assert!(!summary.finished && summary.error.as_deref().is_some_and(|e| e.contains("cifar-1000")), "{summary:?}");
    let listed = text(&retort_in(&dir, &["runs"], "").stdout);
    assert!(listed.contains("failed") && !listed.contains("unfinished"), "{listed}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Ctrl-C stops a recorded run between batches: the error names the command that resumes,
/// the partial epoch is neither logged nor checkpointed, and the resumed run matches an
/// uninterrupted one exactly.
#[test]
fn ctrl_c_names_the_resume_command_and_the_resumed_run_is_exact() {
    let dir = temp("ctrlc");
    let script = "let d = dataset(\"digits\");\nlet m = model(\"mlp\", #{ input: d.input, hidden: [64], classes: d.classes, dropout: 0.2 });\nfit(m, d, #{ epochs: 40, batch: 4, augment: #{ crop_padding: 1, flip: false } });\n";
    std::fs::write(dir.join("s.rhai"), script).unwrap();
    let full = retort_in(&dir, &["run", "s.rhai", "--out", "runs/full"], "");
    assert!(full.status.success(), "{}", text(&full.stderr));
    let child = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["run", "s.rhai", "--out", "runs/stopped"])
        .current_dir(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait for the first recorded epoch, then interrupt in the middle of a later one
    let metrics = dir.join("runs/stopped/metrics.jsonl");
    let waited = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(true, |m| m.lines().count() < 1) && waited.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "the run finished before the interrupt arrived");
    assert!(err.contains("interrupted") && err.contains("resume with: retort run --resume runs/stopped"), "{err}");
    let summary = RunDir::open(&dir.join("runs/stopped")).unwrap().read_summary().unwrap();
    assert!(summary.error.as_deref().is_some_and(|e| e.contains("--resume")) && summary.stages[0].status == StageStatus::Interrupted);
    let resumed = retort_in(&dir, &["run", "--resume", "runs/stopped"], "");
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let lines = |run: &str| super::records::metrics_without_time(&dir.join(run));
    assert_eq!(lines("runs/full"), lines("runs/stopped"));
    let w = |run: &str| std::fs::read(dir.join(run).join("checkpoints/stage-1.safetensors")).unwrap();
    assert!(w("runs/full") == w("runs/stopped"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs started at once with default run directories each get their own.
#[test]
fn runs_started_at_once_never_share_a_directory() {
    let dir = temp("concurrent");
    std::fs::write(dir.join("q.rhai"), "let m = model(\"mlp\", #{ input: 4, classes: 2 });\nsave_weights(m, \"m.safetensors\");\n")
        .unwrap();
    let children: Vec<_> = (1..=4)
        .map(|s| {
            Command::new(env!("CARGO_BIN_EXE_retort")).args(["run", "q.rhai", "--seed", &s.to_string()]).current_dir(&dir).spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let mut seeds: Vec<u64> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| RunDir::open(&e.unwrap().path()).unwrap().read_config().unwrap().seed)
        .collect();
    seeds.sort();
    assert_eq!(seeds, [1, 2, 3, 4]);
    // an explicit directory that holds a run is refused, as is one holding another tool's run files
    let out = retort_in(&dir, &["run", "q.rhai", "--out", "runs/x"], "");
    assert!(out.status.success());
    let out = retort_in(&dir, &["run", "q.rhai", "--out", "runs/x"], "");
    assert!(out.status.code() == Some(2) && text(&out.stderr).contains("already holds a run"), "{}", text(&out.stderr));
    std::fs::create_dir_all(dir.join("other")).unwrap();
    std::fs::write(dir.join("other/summary.yaml"), "not ours\n").unwrap();
    let out = retort_in(&dir, &["run", "q.rhai", "--out", "other"], "");
    assert!(text(&out.stderr).contains("holds a summary.yaml but no config.yaml"), "{}", text(&out.stderr));
    // one damaged run hides no other from `retort runs`
    std::fs::write(dir.join("runs/x/config.yaml"), "{{{").unwrap();
    let out = retort_in(&dir, &["runs"], "");
    assert!(out.status.success() && text(&out.stderr).contains("warning: skipped") && text(&out.stdout).matches("q.rhai").count() == 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Inputs the transcript cannot keep as code are comments that say why, and it still runs.
#[test]
fn the_transcript_keeps_what_runs_and_says_what_it_dropped() {
    let dir = temp("transcript");
    std::fs::write(dir.join("helper.rhai"), "fn width() { 16 }\n").unwrap();
    let session = "import \"helper\" as helper;\nfn h() { 8 }\nlet a = h()\nfn h() { 16 }\nlet b = h()\nlet x = \nlet w = 3; print(\"printed before\"); throw \"boom\";\n/* a comment\n   on two lines */ let c = helper::width()\nprint(`${a} ${b} ${c}`)\n";
    let out = retort_in(&dir, &["repl", "--run-dir", "runs/s"], session);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("8 16 16") && stdout.contains("warning: this input failed after it changed the session"), "{stdout}\n{stderr}");
    // what an input printed before it failed is shown, then its error
    assert!(stdout.contains("printed before") && stderr.contains("boom"), "{stdout}\n{stderr}");
    let transcript = std::fs::read_to_string(dir.join("runs/s/source/transcript.rhai")).unwrap();
    for want in
        ["// replaced by a later definition", "// did not compile:\n// let x =", "// failed after it changed the session", "/* a comment"]
    {
        assert!(transcript.contains(want), "{want} not in\n{transcript}");
    }
    // the module is copied beside it, and the transcript runs from anywhere
    assert!(dir.join("runs/s/source/helper.rhai").is_file());
    let out = retort_in(&std::env::temp_dir(), &["run", dir.join("runs/s/source/transcript.rhai").to_str().unwrap(), "--no-record"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // the function replaced later is gone, so `a` takes the later one: the transcript says so above
    assert_eq!(text(&out.stdout), "16 16 16\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_record_calls_that_need_one_fail_before_training_in_modules_and_notebooks() {
    let dir = temp("norecord-modules");
    std::fs::write(dir.join("keep.rhai"), "fn persist(m) { save_weights(m, \"m.safetensors\") }\n").unwrap();
    std::fs::write(
        dir.join("s.rhai"),
        "import \"keep\" as keep;\nlet d = dataset(\"digits\");\nlet m = model(\"mlp\", #{ input: d.input, classes: d.classes });\nfit(m, d, #{ epochs: 1000 });\nkeep::persist(m);\n",
    )
    .unwrap();
    let out = retort_in(&dir, &["run", "s.rhai", "--no-record"], "");
    assert!(out.status.code() == Some(2) && text(&out.stderr).contains("keep.rhai:1:"), "{}", text(&out.stderr));
    std::fs::write(dir.join("nb.md"), "# nb\n\n```rhai\nlet d = dataset(\"digits\");\nlet m = model(\"mlp\", #{ input: d.input, classes: d.classes });\nfit(m, d, #{ epochs: 1000 });\n```\n\n```rhai\nsave_weights(m, \"m.safetensors\");\n```\n").unwrap();
    let started = std::time::Instant::now();
    let out = retort_in(&dir, &["notebook", "run", "nb.md", "--no-record"], "");
    assert!(out.status.code() == Some(2) && text(&out.stderr).contains("nb.md:10:1"), "{}", text(&out.stderr));
    assert!(started.elapsed().as_secs() < 20, "it trained first");
    std::fs::remove_dir_all(&dir).unwrap();
}
