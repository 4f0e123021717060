//! Sweeps (`retort sweep`): the example spec with two workers, its report against the run
//! records, kill -9 and resume, the folder's lock, failed points, one point at a time (Slurm's
//! array tasks) and the sbatch script.

use retort::sweep::{self, Manifest, Status};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_retort"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retort-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).current_dir(root()).output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
}

/// A spec of distill-point.rhai's student alone (`method: ce`) with `seeds` (a YAML list).
fn ce_spec(dir: &Path, seeds: &str) -> PathBuf {
    let spec = dir.join("spec.yaml");
    let script = root().join("scripts/sweeps/distill-point.rhai");
    std::fs::write(&spec, format!("script: {}\ngrid:\n  method: [ce]\nseeds: {seeds}\n", script.display())).unwrap();
    spec
}

fn example(out: &Path) -> (i32, String) {
    run(&["sweep", "scripts/sweeps/example.yaml", "--jobs", "2", "--out", out.to_str().unwrap()])
}

/// The report's figures computed again from each point's summary.yaml.
fn expected_report(dir: &Path) -> Vec<Vec<String>> {
    let m = Manifest::load(dir).unwrap();
    let finals = |method: &str, t: &str| -> Vec<(u64, f64)> {
        m.points
            .iter()
            .filter(|p| p.settings["method"] == method && p.settings["temperature"] == t)
            .map(|p| (p.seed, sweep::figures(&dir.join(&p.dir)).unwrap().0))
            .collect()
    };
    let pm = |(m, s): (f64, f64)| format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s);
    let base = finals("kd", "4.0");
    let mut rows = Vec::new();
    for (method, t) in [("kd", "2.0"), ("kd", "4.0"), ("wsl", "2.0"), ("wsl", "4.0")] {
        let f = finals(method, t);
        let values: Vec<f64> = f.iter().map(|x| x.1).collect();
        let diffs: Vec<f64> = f.iter().zip(&base).map(|(a, b)| a.1 - b.1).collect();
        let mut row = vec![method.to_string(), t.to_string(), "3".into(), pm(sweep::mean_std(&values))];
        if (method, t) == ("kd", "4.0") {
            row.extend(["-".to_string(), "-".to_string()]);
        } else {
            row.extend([pm(sweep::mean_std(&diffs)), format!("{}/3", diffs.iter().filter(|d| **d > 0.0).count())]);
        }
        rows.push(row);
    }
    rows
}

fn csv_rows(dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("report.csv")).unwrap().lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect()
}

#[test]
fn the_example_sweep_reports_means_and_paired_differences_of_its_records() {
    let dir = scratch("example");
    let (code, out) = example(&dir);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["sweep", "report", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // the CSV's columns: method, temperature, seeds, final, best, paired difference, seeds
    // above 0, regularization samples
    let rows = csv_rows(&dir);
    let got: Vec<Vec<String>> = rows.iter().map(|r| [&r[..4], &r[5..7]].concat()).collect();
    assert_eq!(got, expected_report(&dir));
    assert!(rows.iter().all(|r| r.len() == 8 && r[7].contains(" ± ")), "{rows:?}");
    assert!(dir.join("report.png").is_file());
    assert!(std::fs::read_to_string(dir.join("report.md")).unwrap().contains("| method | temperature | seeds |"));
    let (_, status) = run(&["sweep", "status", dir.to_str().unwrap()]);
    assert!(status.contains("12 done"), "{status}");
    // rerun: nothing to do, nothing touched
    let before = std::fs::read(dir.join(&Manifest::load(&dir).unwrap().points[0].dir).join("summary.yaml")).unwrap();
    let (code, out) = example(&dir);
    assert_eq!(code, 0);
    assert!(out.contains("12 done before, 0 to run"), "{out}");
    assert_eq!(std::fs::read(dir.join(&Manifest::load(&dir).unwrap().points[0].dir).join("summary.yaml")).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_killed_half_way_resumes_to_the_same_report() {
    let whole = scratch("whole");
    assert_eq!(example(&whole).0, 0);
    assert_eq!(run(&["sweep", "report", whole.to_str().unwrap()]).0, 0);
    let dir = scratch("killed");
    let mut child = bin()
        .args(["sweep", "scripts/sweeps/example.yaml", "--jobs", "2", "--out", dir.to_str().unwrap()])
        .current_dir(root())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let done = |dir: &Path| -> Vec<PathBuf> {
        Manifest::load(dir)
            .map_or(vec![], |m| m.points.iter().map(|p| dir.join(&p.dir)).filter(|d| sweep::status_of(d) == Status::Done).collect())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while done(&dir).len() < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let finished = done(&dir);
    assert!((5..12).contains(&finished.len()), "killed after {} points", finished.len());
    let files = |d: &Path| -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
        let mut out = Vec::new();
        for f in ["summary.yaml", "metrics.jsonl", "config.yaml"] {
            let p = d.join(f);
            out.push((p.clone(), std::fs::read(&p).unwrap(), std::fs::metadata(&p).unwrap().modified().unwrap()));
        }
        out
    };
    let kept: Vec<_> = finished.iter().map(|d| files(d)).collect();
    let (code, out) = example(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{} done before", finished.len())), "{out}");
    assert_eq!(finished.iter().map(|d| files(d)).collect::<Vec<_>>(), kept, "a finished point was touched");
    assert_eq!(run(&["sweep", "report", dir.to_str().unwrap()]).0, 0);
    assert_eq!(std::fs::read(dir.join("report.csv")).unwrap(), std::fs::read(whole.join("report.csv")).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&whole);
}

#[test]
fn one_sweep_writes_a_folder_at_a_time() {
    let dir = scratch("lock");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join(".lock")).unwrap();
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let (code, out) = example(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("another retort sweep is writing this folder"), "{out}");
    drop(lock);
    // a folder of another spec is refused
    assert_eq!(example(&dir).0, 0);
    let other = dir.join("other.yaml");
    std::fs::write(
        &other,
        format!("script: {}\ngrid:\n  method: [ce]\nseeds: [0]\n", root().join("scripts/sweeps/distill-point.rhai").display()),
    )
    .unwrap();
    let (code, out) = run(&["sweep", other.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.contains("holds a sweep of another spec"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_points_rerun_only_when_asked() {
    let dir = scratch("failed");
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        format!("script: {}\ngrid:\n  method: [ce, bogus]\nseeds: [0]\n", root().join("scripts/sweeps/distill-point.rhai").display()),
    )
    .unwrap();
    let out_dir = dir.join("out");
    let (code, out) = run(&["sweep", spec.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 of 2 points failed"), "{out}");
    let (_, status) = run(&["sweep", "status", out_dir.to_str().unwrap()]);
    assert!(status.contains("1 done, 1 failed"), "{status}");
    let (code, out) = run(&["sweep", spec.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("1 done before, 0 to run"), "{out}");
    let (code, _) = run(&["sweep", spec.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--retry-failed"]);
    assert_eq!(code, 1);
    assert!(out_dir.join("points/0001-method=bogus,seed=0.failed-1").is_dir());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slurm_gets_an_array_of_the_unfinished_points() {
    let dir = scratch("slurm");
    let (code, out) = run(&[
        "sweep",
        "scripts/sweeps/example.yaml",
        "--executor",
        "slurm",
        "--dry-run",
        "--max-parallel",
        "4",
        "--partition",
        "cpu",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let sbatch = std::fs::read_to_string(dir.join("sweep.sbatch")).unwrap();
    assert!(sbatch.contains("#SBATCH --array=0,1,2,3,4,5,6,7,8,9,10,11%4\n"), "{sbatch}");
    assert!(sbatch.contains("#SBATCH --partition=cpu\n") && sbatch.contains("sweep run-point"), "{sbatch}");
    // what an array task runs
    let (code, out) = run(&["sweep", "run-point", dir.to_str().unwrap(), "--index", "3"]);
    assert_eq!(code, 0, "{out}");
    let (_, status) = run(&["sweep", "status", dir.to_str().unwrap()]);
    assert!(status.contains("1 done, 11 pending"), "{status}");
    // a resubmission covers the rest only
    assert_eq!(run(&["sweep", "scripts/sweeps/example.yaml", "--executor", "slurm", "--dry-run", "--out", dir.to_str().unwrap()]).0, 0);
    assert!(std::fs::read_to_string(dir.join("sweep.sbatch")).unwrap().contains("--array=0,1,2,4,5,6,7,8,9,10,11\n"));
    let (code, out) = run(&["sweep", "run-point", dir.to_str().unwrap(), "--index", "12"]);
    assert_eq!(code, 2);
    assert!(out.contains("points 0 to 11"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_specs_are_clear_errors() {
    let dir = scratch("bad");
    let script = root().join("scripts/sweeps/distill-point.rhai");
    let cases = [
        ("typo.yaml", "script: x.rhai\ngird: {a: [1]}\nseeds: [0]\n".to_string(), "unknown field `gird`"),
        ("noseeds.yaml", format!("script: {}\ngrid: {{a: [1]}}\nseeds: []\n", script.display()), "at least one seed"),
        ("nogrid.yaml", format!("script: {}\nseeds: [0]\n", script.display()), "give a grid"),
        ("noscript.yaml", "script: absent.rhai\ngrid: {a: [1]}\nseeds: [0]\n".to_string(), "absent.rhai"),
        ("nested.yaml", format!("script: {}\ngrid: {{a: [[1]]}}\nseeds: [0]\n", script.display()), "numbers, strings or booleans"),
    ];
    for (name, text, says) in cases {
        let spec = dir.join(name);
        std::fs::write(&spec, &text).unwrap();
        let (code, out) = run(&["sweep", spec.to_str().unwrap(), "--out", dir.join("out").to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(out.contains(says), "{name}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn set_values_reach_every_point_and_a_rerun_must_give_the_same() {
    let dir = scratch("sets");
    let spec = ce_spec(&dir, "[0, 1]");
    let out_dir = dir.join("out");
    let sweep = |extra: &[&str]| run(&[&["sweep", spec.to_str().unwrap(), "--out", out_dir.to_str().unwrap()][..], extra].concat());
    // a Slurm task (run-point) takes the values from the manifest
    let (code, out) = sweep(&["--set", "epochs=1", "--executor", "slurm", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(run(&["sweep", "run-point", out_dir.to_str().unwrap(), "--index", "1"]).0, 0);
    let (code, out) = sweep(&["--set", "epochs=1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 done before, 1 to run"), "{out}");
    // sweep_runs gives the script every finished point, its settings and what it resolved
    let reader = dir.join("read.rhai");
    std::fs::write(
        &reader,
        format!(
            "for r in sweep_runs({:?}) {{ print(`${{r.index}} ${{r.seed}} ${{r.settings.method}} ${{r.params.epochs}} ${{r.epochs}} ${{r.history.len()}} ${{r.final_accuracy > 0.5}}`); }}",
            out_dir.display().to_string()
        ),
    )
    .unwrap();
    let (code, out) = run(&["run", reader.to_str().unwrap(), "--no-record"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(), ["0 0 ce 1 1 1 true", "1 1 ce 1 1 1 true"], "{out}");
    let cases: [(&[&str], &str); 4] = [
        (&["--set", "epochs=2"], "other --set values (--set epochs=1)"),
        (&[], "other --set values (--set epochs=1)"),
        (&["--set", "epochs=1", "--set", "method=kd"], "'method' is one of the spec's own settings"),
        (&["--set", "epochs"], "'epochs' must look like KEY=VALUE"),
    ];
    for (flags, says) in cases {
        let (code, out) = sweep(flags);
        assert_eq!(code, 2, "{flags:?}: {out}");
        assert!(out.contains(says), "{flags:?}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sweep_runs_names_a_folder_that_is_not_a_sweep() {
    let dir = scratch("notsweep");
    let reader = dir.join("read.rhai");
    std::fs::write(&reader, format!("sweep_runs({:?});", dir.display().to_string())).unwrap();
    let (code, out) = run(&["run", reader.to_str().unwrap(), "--no-record"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sweep_runs") && out.contains("sweep.yaml") && out.contains("is") && out.contains("a sweep folder"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cifar100_table_sweep_is_every_documented_pair_with_kd_and_wsl_over_five_seeds() {
    let dir = scratch("cifar100");
    let (code, out) = run(&[
        "sweep",
        "scripts/sweeps/cifar100.yaml",
        "--set",
        "root=DATA",
        "--set",
        "teachers=save/models",
        "--executor",
        "slurm",
        "--dry-run",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let m = Manifest::load(&dir).unwrap();
    assert_eq!(m.points.len(), 13 * 2 * 5);
    let doc = std::fs::read_to_string(root().join("docs/zoo.md")).unwrap();
    for p in &m.points {
        let row = format!("--set teacher={} --set student={}`", p.settings["teacher"], p.settings["student"]);
        assert!(doc.contains(&row), "{row} is not a row of docs/zoo.md's table");
    }
    assert!(std::fs::read_to_string(dir.join("sweep.sbatch")).unwrap().contains("--array=0,1,2,"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_point_killed_before_writing_its_config_starts_afresh() {
    let dir = scratch("claimed");
    let spec = ce_spec(&dir, "[0]");
    let out_dir = dir.join("out");
    let sweep = |extra: &[&str]| {
        run(&[&["sweep", spec.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--set", "epochs=1"][..], extra].concat())
    };
    assert_eq!(sweep(&["--executor", "slurm", "--dry-run"]).0, 0);
    // what kill -9 leaves between a run's claim on its folder and its config: an empty config.yaml
    let point = out_dir.join("points/0000-method=ce,seed=0");
    std::fs::create_dir_all(point.join("checkpoints")).unwrap();
    std::fs::write(point.join("config.yaml"), "").unwrap();
    let (_, status) = run(&["sweep", "status", out_dir.to_str().unwrap()]);
    assert!(status.contains("1 pending"), "{status}");
    let (code, out) = sweep(&[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sweep::status_of(&point), Status::Done);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_point_that_fails_before_its_run_starts_is_failed_and_values_nothing_ran_with_may_change() {
    let dir = scratch("startfail");
    let spec = ce_spec(&dir, "[0]");
    let out_dir = dir.join("out");
    let sweep = |extra: &[&str]| run(&[&["sweep", spec.to_str().unwrap(), "--out", out_dir.to_str().unwrap()][..], extra].concat());
    // the script refuses the value: the point made no run directory, and is failed, not pending
    let (code, out) = sweep(&["--set", "epochs=abc"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 of 1 points failed"), "{out}");
    let (_, status) = run(&["sweep", "status", out_dir.to_str().unwrap()]);
    assert!(status.contains("1 failed"), "{status}");
    let (code, out) = sweep(&["--set", "epochs=abc"]);
    assert_eq!(code, 1);
    assert!(out.contains("0 to run"), "failed points rerun only with --retry-failed: {out}");
    // nothing ran with epochs=abc: a corrected value is taken
    let (code, out) = sweep(&["--set", "epochs=1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(Manifest::load(&out_dir).unwrap().sets["epochs"], "1");
    // now points ran with epochs=1 and on the CPU: other values or another device are refused
    let (code, out) = sweep(&["--set", "epochs=1", "--device", "cuda"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--device cpu"), "{out}");
    let (code, out) = sweep(&["--set", "epochs=1", "--device", "tpu"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--device"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn string_values_reach_the_script_as_strings() {
    let dir = scratch("strings");
    let script = dir.join("tag.rhai");
    std::fs::write(&script, "let p = defaults(#{ tag: \"x\" });\nprint(`tag ${p.tag} ${type_of(p.tag)}`);\n").unwrap();
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, "script: tag.rhai\ngrid:\n  tag: [\"1.0\", \"yes\", \"a b\", \"it's\"]\nseeds: [0]\n").unwrap();
    let out_dir = dir.join("out");
    let (code, out) = run(&["sweep", spec.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let logs: String = (0..4).map(|i| std::fs::read_to_string(out_dir.join(format!("logs/{i:04}.log"))).unwrap()).collect();
    for want in ["tag 1.0 string", "tag yes string", "tag a b string", "tag it's string"] {
        assert!(logs.contains(want), "{want}: {logs}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
