//! (binary) `retort sweep`: a sweep's points run as worker processes (`retort run` each, the
//! cores split between them), or handed to Slurm as a job array whose tasks run
//! `retort sweep run-point`; `status` and `report` read the manifest and the run directories.
//! A sweep folder is locked while a sweep writes it; finished points are never rerun,
//! interrupted ones resume (`retort run --resume`), failed ones rerun only with
//! `--retry-failed` (the failed record kept beside, as `.failed-N`).

use retort::script::ScriptError;
use retort::sweep::{self, Manifest, Point, Spec, Status};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `--executor slurm`'s options (sbatch's names).
#[derive(clap::Args, Clone, Default)]
pub struct SlurmArgs {
    /// sbatch --partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// sbatch --time (e.g. 02:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// sbatch --gpus-per-task.
    #[arg(long)]
    pub gpus_per_task: Option<u32>,
    /// sbatch --cpus-per-task (each point's thread count).
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// At most this many array tasks at once (--array=...%K).
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// Write the sbatch script and the manifest, do not submit.
    #[arg(long)]
    pub dry_run: bool,
}

fn usage(at: &Path, m: impl Into<String>) -> ScriptError {
    ScriptError::usage(&at.display().to_string(), m.into())
}

fn fail(e: retort::Error) -> ScriptError {
    ScriptError::usage("retort sweep", e.to_string())
}

/// An exclusive lock on `path` (created), held while the returned file lives; none when another
/// process holds it. The kernel drops it when the process ends, however it ends.
fn try_lock(path: &Path) -> Result<Option<File>, ScriptError> {
    let f = File::options().create(true).truncate(false).write(true).open(path).map_err(|e| usage(path, e.to_string()))?;
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this function owns.
    let held = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    Ok(held.then_some(f))
}

fn point_lock(dir: &Path, p: &Point) -> PathBuf {
    dir.join("points").join(format!("{:04}.lock", p.index))
}

/// A point's lock for running it: `sweep status` holds it for an instant to see whether it is
/// free, so a held lock is asked again for up to a second before the point counts as running
/// elsewhere.
fn lock_point(dir: &Path, p: &Point) -> Result<File, ScriptError> {
    for _ in 0..20 {
        if let Some(f) = try_lock(&point_lock(dir, p))? {
            return Ok(f);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(usage(&dir.join(&p.dir), "is running elsewhere (its lock is held)"))
}

/// A point's status, `running` when someone holds its lock.
fn current_status(dir: &Path, p: &Point) -> Status {
    match try_lock(&point_lock(dir, p)) {
        Ok(None) => Status::Running,
        _ => sweep::status_of(&dir.join(&p.dir)),
    }
}

/// `--set KEY=VALUE` flags as a map; a key the spec sweeps is refused (the spec's values would
/// be overridden for every point).
fn common_sets(sets: &[String], points: &[Point]) -> Result<std::collections::BTreeMap<String, String>, ScriptError> {
    let mut out = std::collections::BTreeMap::new();
    for set in sets {
        let (k, v) = set.split_once('=').ok_or_else(|| usage(Path::new("--set"), format!("'{set}' must look like KEY=VALUE")))?;
        if points.iter().any(|p| p.settings.contains_key(k)) {
            return Err(usage(Path::new("--set"), format!("'{k}' is one of the spec's own settings; change it in the spec")));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Prepares the sweep folder: its lock, the manifest (the same spec and `--set` values as
/// before, or new).
fn prepare(spec_path: &Path, out: Option<&Path>, sets: &[String], device: Option<&str>) -> Result<(PathBuf, Manifest, File), ScriptError> {
    let spec = Spec::load(spec_path).map_err(fail)?;
    let shown = spec_path.display().to_string();
    let points = spec.expand(&shown).map_err(fail)?;
    let sets = common_sets(sets, &points)?;
    let stem = spec_path.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().to_string());
    let dir = out.map_or_else(|| PathBuf::from("sweeps").join(&stem), Path::to_path_buf);
    std::fs::create_dir_all(dir.join("points")).map_err(|e| usage(&dir, e.to_string()))?;
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| usage(&dir, e.to_string()))?;
    let lock = try_lock(&dir.join(".lock"))?
        .ok_or_else(|| usage(&dir, "another retort sweep is writing this folder (it holds .lock); wait for it, or choose another --out"))?;
    let manifest = match Manifest::load(&dir) {
        Ok(old) => {
            let same =
                old.spec == spec && old.points.iter().map(|p| (&p.settings, p.seed)).eq(points.iter().map(|p| (&p.settings, p.seed)));
            if !same {
                return Err(usage(&dir, format!("holds a sweep of another spec (its sweep.yaml); choose another --out for {shown}")));
            }
            // values nothing ran with yet (every point failed to start, or none ran) may change
            let recorded = old.points.iter().any(|p| dir.join(&p.dir).join("config.yaml").exists());
            let device = device.map(String::from);
            if (old.sets != sets || old.device != device) && !recorded {
                for p in &old.points {
                    let _ = std::fs::remove_file(sweep::start_failed(&dir.join(&p.dir)));
                }
                let mut old = old;
                (old.sets, old.device) = (sets, device);
                old.save(&dir).map_err(fail)?;
                return Ok((dir, old, lock));
            }
            if old.device != device {
                return Err(usage(
                    &dir,
                    format!(
                        "holds this sweep run with --device {}; give the same, or choose another --out",
                        old.device.as_deref().unwrap_or("cpu")
                    ),
                ));
            }
            if old.sets != sets {
                let was: Vec<String> = old.sets.iter().map(|(k, v)| format!("--set {k}={v}")).collect();
                return Err(usage(
                    &dir,
                    format!("holds this sweep with other --set values ({}); give the same, or choose another --out", was.join(" ")),
                ));
            }
            old
        }
        Err(_) if !Manifest::path(&dir).exists() => {
            Manifest { spec, sets, points, device: device.map(String::from), slurm_jobs: Vec::new() }
        }
        Err(e) => return Err(fail(e)),
    };
    manifest.save(&dir).map_err(fail)?;
    Ok((dir, manifest, lock))
}

/// The command that runs (or resumes) a point, its output to the point's log.
fn point_command(dir: &Path, m: &Manifest, p: &Point, threads: usize) -> Result<Command, ScriptError> {
    let exe = std::env::current_exe().map_err(|e| usage(dir, e.to_string()))?;
    let run_dir = dir.join(&p.dir);
    let mut cmd = Command::new(exe);
    if sweep::never_started(&run_dir) {
        // killed between claiming its folder and writing its config: start it afresh
        std::fs::remove_dir_all(&run_dir).map_err(|e| usage(&run_dir, e.to_string()))?;
    }
    if sweep::status_of(&run_dir) == Status::Interrupted {
        cmd.args(["run", "--quiet", "--resume"]).arg(&run_dir);
    } else {
        cmd.args(["run", "--quiet", "--out"]).arg(&run_dir).arg("--seed").arg(p.seed.to_string());
        if let Some(d) = &m.device {
            cmd.arg("--device").arg(d);
        }
        for (k, v) in m.sets.iter().chain(&p.settings) {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        if let Some(c) = &m.spec.config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg(&m.spec.script);
    }
    let log_path = dir.join("logs").join(format!("{:04}.log", p.index));
    let log = File::options().create(true).append(true).open(&log_path).map_err(|e| usage(&log_path, e.to_string()))?;
    let err = log.try_clone().map_err(|e| usage(&log_path, e.to_string()))?;
    cmd.env("RAYON_NUM_THREADS", threads.to_string()).stdin(Stdio::null()).stdout(log).stderr(err);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl in the child before exec; it allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                // the point dies with the sweep (kill -9 included); rerunning resumes it
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    Ok(cmd)
}

/// Moves a failed point's record aside (`NAME.failed-N`) so it runs afresh.
fn set_aside(dir: &Path, p: &Point) -> Result<(), ScriptError> {
    let from = dir.join(&p.dir);
    let marker = sweep::start_failed(&from);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(|e| usage(&marker, e.to_string()))?;
    }
    if !from.exists() {
        return Ok(());
    }
    let named = |n: usize| {
        let mut name = from.as_os_str().to_owned();
        name.push(format!(".failed-{n}"));
        PathBuf::from(name)
    };
    let to = (1..).map(named).find(|t| !t.exists()).expect("some free name");
    std::fs::rename(&from, &to).map_err(|e| usage(&from, e.to_string()))
}

/// After a point's process failed: where it made no run directory (the script refused a
/// `--set`, or did not compile), a marker with its log's last lines keeps it `failed`.
fn mark_start_failure(dir: &Path, p: &Point) {
    let run_dir = dir.join(&p.dir);
    if sweep::status_of(&run_dir) == Status::Pending {
        let log = std::fs::read_to_string(dir.join("logs").join(format!("{:04}.log", p.index))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        let _ = retort::run::atomic_write(&sweep::start_failed(&run_dir), tail.join("\n").as_bytes());
    }
}

/// The points to run now (pending, interrupted, and failed ones with `retry_failed`, which are
/// set aside), and how many failed points stay failed.
fn todo(dir: &Path, m: &mut Manifest, retry_failed: bool) -> Result<(Vec<usize>, usize), ScriptError> {
    let (mut run, mut failed) = (Vec::new(), 0);
    for p in m.points.iter_mut() {
        p.status = current_status(dir, p);
        match p.status {
            Status::Done | Status::Running => {}
            Status::Failed if !retry_failed => failed += 1,
            Status::Failed => {
                set_aside(dir, p)?;
                p.status = Status::Pending;
                run.push(p.index);
            }
            Status::Pending | Status::Interrupted => run.push(p.index),
        }
    }
    Ok((run, failed))
}

/// `retort sweep SPEC --jobs N`: the points on this machine, N at a time, each with cores / N
/// threads; one progress line per finished point.
pub fn run_local(
    spec_path: &Path,
    out: Option<&Path>,
    sets: &[String],
    device: Option<&str>,
    jobs: usize,
    retry_failed: bool,
) -> Result<(), ScriptError> {
    let (dir, mut m, _lock) = prepare(spec_path, out, sets, device)?;
    let (queue, kept_failed) = todo(&dir, &mut m, retry_failed)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = jobs.clamp(1, queue.len().max(1));
    let threads = (cores / jobs).max(1);
    let total = m.points.len();
    let done_before = m.points.iter().filter(|p| p.status == Status::Done).count();
    eprintln!(
        "sweep {}: {total} points, {done_before} done before, {} to run, {jobs} at a time with {threads} threads each",
        dir.display(),
        queue.len()
    );
    let mut waiting = queue.into_iter();
    let mut running: Vec<(usize, Child, File)> = Vec::new();
    let (mut finished, mut failed) = (done_before, kept_failed);
    loop {
        while running.len() < jobs {
            let Some(k) = waiting.next() else { break };
            let p = m.points[k].clone();
            let lock =
                try_lock(&point_lock(&dir, &p))?.ok_or_else(|| usage(&dir.join(&p.dir), "is running elsewhere (its lock is held)"))?;
            let child = point_command(&dir, &m, &p, threads)?.spawn().map_err(|e| usage(&dir, format!("cannot start a point: {e}")))?;
            m.points[k].status = Status::Running;
            running.push((k, child, lock));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut k = 0;
        while k < running.len() {
            match running[k].1.try_wait() {
                Ok(Some(exit)) => {
                    let (index, _, lock) = running.swap_remove(k);
                    if !exit.success() {
                        mark_start_failure(&dir, &m.points[index]);
                    }
                    drop(lock);
                    let p = &mut m.points[index];
                    p.status = sweep::status_of(&dir.join(&p.dir));
                    if p.status == Status::Done {
                        finished += 1;
                    } else {
                        failed += 1;
                    }
                    eprintln!(
                        "[{finished}/{total} done, {failed} failed, {} running] point {} ({}, seed {}): {:?}",
                        running.len(),
                        p.index,
                        sweep::describe(&p.settings),
                        p.seed,
                        p.status
                    );
                    m.save(&dir).map_err(fail)?;
                }
                Ok(None) => k += 1,
                Err(e) => return Err(usage(&dir, e.to_string())),
            }
        }
    }
    m.save(&dir).map_err(fail)?;
    if failed > 0 {
        return Err(ScriptError::failure(
            &dir.display().to_string(),
            format!("{failed} of {total} points failed (their logs: {}/logs; rerun with --retry-failed)", dir.display()),
        ));
    }
    eprintln!("sweep {}: all {total} points done; retort sweep report {} tabulates them", dir.display(), dir.display());
    Ok(())
}

/// `retort sweep run-point DIR --index I`: one point (a Slurm array task), under its lock.
pub fn run_point(dir: &Path, index: usize, retry_failed: bool) -> Result<(), ScriptError> {
    let mut m = Manifest::load(dir).map_err(fail)?;
    let p = m
        .points
        .get(index)
        .cloned()
        .ok_or_else(|| usage(dir, format!("--index {index}: the sweep has points 0 to {}", m.points.len().saturating_sub(1))))?;
    let _lock = lock_point(dir, &p)?;
    match sweep::status_of(&dir.join(&p.dir)) {
        Status::Done => {
            eprintln!("point {index} is done already");
            return Ok(());
        }
        Status::Failed if !retry_failed => return Err(usage(&dir.join(&p.dir), "failed before; rerun it with --retry-failed")),
        Status::Failed => set_aside(dir, &p)?,
        _ => {}
    }
    let threads = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let status = point_command(dir, &m, &p, threads)?.status().map_err(|e| usage(dir, e.to_string()))?;
    if !status.success() {
        mark_start_failure(dir, &p);
    }
    m.points[index].status = sweep::status_of(&dir.join(&p.dir));
    if status.success() {
        Ok(())
    } else {
        Err(ScriptError::failure(
            &dir.join(&p.dir).display().to_string(),
            format!("the point failed; its log: {}/logs/{index:04}.log", dir.display()),
        ))
    }
}

/// `--executor slurm`: the sbatch script of a job array over the unfinished points, submitted
/// with sbatch when it is on the PATH (not with --dry-run).
pub fn run_slurm(
    spec_path: &Path,
    out: Option<&Path>,
    sets: &[String],
    device: Option<&str>,
    retry_failed: bool,
    s: &SlurmArgs,
) -> Result<(), ScriptError> {
    let (dir, mut m, _lock) = prepare(spec_path, out, sets, device)?;
    let (queue, _) = todo(&dir, &mut m, retry_failed)?;
    m.save(&dir).map_err(fail)?;
    if queue.is_empty() {
        eprintln!("sweep {}: nothing to run", dir.display());
        return Ok(());
    }
    let abs = std::fs::canonicalize(&dir).map_err(|e| usage(&dir, e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| usage(&dir, e.to_string()))?;
    let indices: Vec<String> = queue.iter().map(usize::to_string).collect();
    let mut script = String::from("#!/bin/bash\n");
    script
        .push_str(&format!("#SBATCH --job-name=retort-{}\n", abs.file_name().map_or("sweep".into(), |n| n.to_string_lossy().to_string())));
    script.push_str(&format!("#SBATCH --array={}{}\n", indices.join(","), s.max_parallel.map_or(String::new(), |k| format!("%{k}"))));
    script.push_str(&format!("#SBATCH --output={}/logs/slurm-%a.log\n", abs.display()));
    if let Some(p) = &s.partition {
        script.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &s.time {
        script.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(g) = s.gpus_per_task {
        script.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    if let Some(c) = s.cpus_per_task {
        script.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    let retry = if retry_failed { " --retry-failed" } else { "" };
    script.push_str(&format!("exec '{}' sweep run-point '{}' --index \"$SLURM_ARRAY_TASK_ID\"{retry}\n", exe.display(), abs.display()));
    let path = dir.join("sweep.sbatch");
    retort::run::atomic_write(&path, script.as_bytes()).map_err(fail)?;
    let sbatch = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("sbatch")).find(|p| p.is_file()));
    match sbatch {
        Some(sbatch) if !s.dry_run => {
            let out = Command::new(sbatch).arg(&path).output().map_err(|e| usage(&path, format!("cannot run sbatch: {e}")))?;
            if !out.status.success() {
                return Err(usage(&path, format!("sbatch refused it: {}", String::from_utf8_lossy(&out.stderr).trim())));
            }
            let said = String::from_utf8_lossy(&out.stdout);
            // "Submitted batch job 42": `sweep status` asks squeue about job 42's array tasks
            if let Some(id) = said.split_whitespace().last().filter(|id| id.chars().all(|c| c.is_ascii_digit())) {
                m.slurm_jobs.push(id.to_string());
                m.save(&dir).map_err(fail)?;
            }
            eprintln!("{} ({} points); follow it with: retort sweep status {}", said.trim(), queue.len(), dir.display());
        }
        _ => eprintln!("wrote {} ({} points); submit it with: sbatch {}", path.display(), queue.len(), path.display()),
    }
    Ok(())
}

/// Slurm's state of each array task still in its queue (squeue; the newest submission first),
/// by point index; `Err` says why Slurm could not be asked.
fn slurm_states(jobs: &[String]) -> Result<std::collections::BTreeMap<usize, String>, String> {
    let mut states = std::collections::BTreeMap::new();
    for job in jobs.iter().rev() {
        let out = Command::new("squeue")
            .args(["-h", "-r", "-j", job, "-o", "%K|%T"])
            .output()
            .map_err(|e| format!("squeue could not run ({e}); Slurm's view is left out"))?;
        if !out.status.success() {
            // a job that left the queue long ago is unknown to squeue: nothing queued for it
            continue;
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((task, state)) = line.split_once('|') {
                if let Ok(i) = task.trim().parse::<usize>() {
                    states.entry(i).or_insert_with(|| format!("{} (job {job})", state.trim()));
                }
            }
        }
    }
    Ok(states)
}

/// `retort sweep status DIR`: each point's status (and, for a sweep given to Slurm, its array
/// task's state in squeue), then the counts.
pub fn status(dir: &Path) -> Result<(), ScriptError> {
    let m = Manifest::load(dir).map_err(fail)?;
    let slurm = (!m.slurm_jobs.is_empty()).then(|| slurm_states(&m.slurm_jobs));
    let mut header = vec!["point", "settings", "seed", "status"];
    if matches!(slurm, Some(Ok(_))) {
        header.push("slurm (squeue)");
    }
    let mut t = super::table(&header);
    let mut counts = std::collections::BTreeMap::new();
    for p in &m.points {
        let s = current_status(dir, p);
        *counts.entry(format!("{s:?}").to_lowercase()).or_insert(0) += 1;
        let mut row = vec![p.index.to_string(), sweep::describe(&p.settings), p.seed.to_string(), format!("{s:?}").to_lowercase()];
        if let Some(Ok(states)) = &slurm {
            row.push(states.get(&p.index).cloned().unwrap_or_else(|| "-".into()));
        }
        t.add_row(row);
    }
    println!("{t}");
    if let Some(Err(why)) = &slurm {
        eprintln!("{why}");
    }
    println!("{}", counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "));
    Ok(())
}

/// `retort sweep report DIR`: the table over seeds, printed and written as report.md and
/// report.csv in the sweep folder.
pub fn report(dir: &Path, baseline: Option<&str>, x: Option<&str>) -> Result<(), ScriptError> {
    let m = Manifest::load(dir).map_err(fail)?;
    let base = match baseline {
        Some(text) => Some(
            text.split(',')
                .map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                .collect::<Option<std::collections::BTreeMap<_, _>>>()
                .ok_or_else(|| usage(Path::new("--baseline"), format!("'{text}' is not key=value,key=value")))?,
        ),
        None => m.spec.baseline.as_ref().map(|b| sweep::settings_of(b, "baseline")).transpose().map_err(fail)?,
    };
    let r = sweep::report(dir, &m, base.as_ref()).map_err(fail)?;
    let mut t = super::table(&r.header.iter().map(String::as_str).collect::<Vec<_>>());
    r.rows.iter().for_each(|row| {
        t.add_row(row.clone());
    });
    println!("{t}");
    // what the table leaves out: the values every point shared, and the points not finished
    let mut counts = std::collections::BTreeMap::new();
    for p in &m.points {
        *counts.entry(format!("{:?}", current_status(dir, p)).to_lowercase()).or_insert(0) += 1;
    }
    let done = counts.get("done").copied().unwrap_or(0);
    let mut shared: Vec<String> = m.sets.iter().map(|(k, v)| format!("--set {k}={v}")).collect();
    if let Some(d) = &m.device {
        shared.push(format!("--device {d}"));
    }
    let mut notes = format!("{done} of {} points finished", m.points.len());
    let others: Vec<String> = counts.iter().filter(|(k, _)| *k != "done").map(|(k, n)| format!("{n} {k}")).collect();
    if !others.is_empty() {
        notes.push_str(&format!(" ({}; `retort sweep status` lists them); only finished points count", others.join(", ")));
    }
    if !shared.is_empty() {
        notes.push_str(&format!(". Every point ran with {}", shared.join(" ")));
    }
    eprintln!("{notes}.");
    let md = format!(
        "# Sweep {}\n\nAccuracy in percent, mean ± sample standard deviation over seeds{}. {notes}.\n\n{}",
        dir.display(),
        base.as_ref().map_or(String::new(), |b| format!("; paired differences against {}", sweep::describe(b))),
        retort::script::markdown_table(&r.header, &r.rows)
    );
    let plot = sweep::plot(dir, &m, x).map_err(fail)?;
    let md = match &plot {
        Some(_) => format!("{md}\n![final accuracy against the swept parameter](report.png)\n"),
        None => md,
    };
    retort::run::atomic_write(&dir.join("report.md"), md.as_bytes()).map_err(fail)?;
    retort::run::atomic_write(&dir.join("report.csv"), sweep::csv(&r).as_bytes()).map_err(fail)?;
    let png = if plot.is_some() { format!(" and {}/report.png", dir.display()) } else { String::new() };
    eprintln!("wrote {0}/report.md, {0}/report.csv{png}", dir.display());
    Ok(())
}

/// `retort sweep`'s subcommands.
#[derive(clap::Subcommand)]
pub enum SweepAction {
    /// Each point's status: pending, running, interrupted, failed, done.
    Status { dir: PathBuf },
    /// Mean ± std over seeds per setting, paired differences against a baseline; report.md, report.csv.
    Report {
        dir: PathBuf,
        /// The baseline setting, as key=value,key=value (default: the spec's `baseline`).
        #[arg(long)]
        baseline: Option<String>,
        /// The setting on report.png's x axis (default: the first grid key with numbers).
        #[arg(long, value_name = "KEY")]
        x: Option<String>,
    },
    /// Run one point (what each Slurm array task does).
    RunPoint {
        dir: PathBuf,
        #[arg(long)]
        index: usize,
        #[arg(long)]
        retry_failed: bool,
    },
}

impl SweepAction {
    pub fn run(&self) -> Result<(), ScriptError> {
        match self {
            SweepAction::Status { dir } => status(dir),
            SweepAction::Report { dir, baseline, x } => report(dir, baseline.as_deref(), x.as_deref()),
            SweepAction::RunPoint { dir, index, retry_failed } => run_point(dir, *index, *retry_failed),
        }
    }
}

/// `retort sweep SPEC`: here (`local`) or as a Slurm job array, the device name checked first.
#[allow(clippy::too_many_arguments)]
pub fn start(
    spec: &Path,
    out: Option<&Path>,
    sets: &[String],
    device: Option<&str>,
    jobs: usize,
    retry_failed: bool,
    executor: &str,
    slurm: &SlurmArgs,
) -> Result<(), ScriptError> {
    if let Some(d) = device {
        d.parse::<retort::devices::DeviceName>().map_err(|e| ScriptError::usage("--device", e.to_string()))?;
    }
    if executor == "slurm" {
        run_slurm(spec, out, sets, device, retry_failed, slurm)
    } else {
        run_local(spec, out, sets, device, jobs, retry_failed)
    }
}
