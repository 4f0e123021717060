//! The `retort` command line: run and check scripts, quickstart, the model zoo, docs, benchmarks.

mod cli;

use cli::table;

use anyhow::Context;
use clap::{Parser, Subcommand};
use comfy_table::{presets::UTF8_FULL, Table};
use retort::nn::{Model, ModelConfig, ZOO};
use retort::run::recording::Record;
use retort::script::{self, RunOptions, ScriptError};
use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "retort", version, about = "Knowledge-distillation research: teachers, students, KD and weighted soft labels (WSL)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The largest single allocation a script, flag or file may ask for (bytes, or with K, M, G
    /// or T); default RETORT_MAX_MEMORY, else 3/4 of physical memory.
    #[arg(long, global = true, value_parser = parse_memory)]
    max_memory: Option<u64>,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    retort::tensor::limits::parse_bytes(text).ok_or_else(|| format!("'{text}' is not a size such as 8G, 512M or 1048576"))
}

/// A closed stdout or stderr pipe (`retort runs | head`) ends the process quietly, as it does
/// `cat` or `grep`, instead of a failed write panicking (Rust ignores SIGPIPE by default).
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a Rhai script, recording its training in a run directory.
    Run {
        /// The script (.rhai); omit it with --resume.
        #[arg(required_unless_present = "resume")]
        script: Option<PathBuf>,
        /// Continue the interrupted run recorded in this directory, from any folder: its recorded
        /// copy of the script and modules, seed and parameters.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["script", "out", "config", "sets", "no_record", "seed"])]
        resume: Option<PathBuf>,
        /// With --resume: the script at its original path instead of the recorded copy (it may have been edited).
        #[arg(long, requires = "resume")]
        use_current: bool,
        /// The run directory (default: runs/<date>-<time>-<script name>).
        #[arg(long, visible_alias = "run-dir", value_name = "DIR")]
        out: Option<PathBuf>,
        /// Do not record the run (no run directory).
        #[arg(long)]
        no_record: bool,
        /// Put the script's `report(...)` text into this Markdown file as the script's section.
        #[arg(long, value_name = "FILE", conflicts_with = "no_record")]
        report: Option<PathBuf>,
        /// Where fit/distill train unless a call says otherwise: cpu, cuda or cuda:N (cuda needs `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// No progress bars (they are drawn only when stderr is a terminal anyway).
        #[arg(long, short)]
        quiet: bool,
        /// A YAML file of script parameters (under the --set values).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Set a script parameter, seen as `params.KEY` (dotted keys nest: distill.temperature=2).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Seed of the run (default seeds for data, models and batches).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop the script after this many operations (guards against runaway loops).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        max_operations: Option<u64>,
    },
    /// An interactive session (reads piped stdin without a prompt), recorded like a script run:
    /// its stages, the weights it saves and its inputs as a transcript that `retort run` reruns.
    Repl {
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The session's run directory (default: runs/<date>-<time>-repl).
        #[arg(long, value_name = "DIR")]
        run_dir: Option<PathBuf>,
        /// Do not record the session (no run directory; save_weights is refused).
        #[arg(long, conflicts_with = "run_dir")]
        no_record: bool,
    },
    /// Markdown notebooks whose ```rhai blocks are cells.
    Notebook {
        #[command(subcommand)]
        action: NotebookAction,
    },
    /// Parse a script and resolve its imports without running it.
    Check {
        script: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// List recorded runs, or compare some side by side.
    Runs {
        #[command(subcommand)]
        action: Option<RunsAction>,
        /// The folder holding run directories.
        #[arg(default_value = "runs")]
        dir: PathBuf,
    },
    /// Draw the training curves of runs together.
    Plot {
        /// Run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The PNG to write.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Write the script API reference (docs/script-api.md) from the engine's metadata.
    Docs {
        /// Where to write it.
        #[arg(long, short, default_value = "docs/script-api.md")]
        output: PathBuf,
    },
    /// Train a teacher and three students (scratch, KD, WSL) on the bundled digits and compare them.
    Quickstart {
        /// Seed of the split, the weights and the batches.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print nothing but the table.
        #[arg(long, short)]
        quiet: bool,
    },
    /// List the model zoo with parameter counts and multiply-accumulates.
    Models {
        /// Number of classes.
        #[arg(long, default_value_t = 100)]
        classes: usize,
        /// Input shape as CxHxW.
        #[arg(long, default_value = "3x32x32")]
        input: String,
    },
    /// Open a device and say what it is; --check compares what it computes with the CPU ops.
    Device {
        /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`, see docs/cuda.md).
        #[arg(default_value = "cpu")]
        device: String,
        /// Run the agreement check (seeded random inputs, every op the device runs) and exit 1 on a mismatch.
        #[arg(long)]
        check: bool,
        /// Largest allowed |device - cpu| / max(|cpu|, 1).
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f64,
        /// Train a cnn on digits on the CPU and on this device (same seeds) and compare the losses.
        #[arg(long)]
        train: bool,
        /// Time a resnet8x4 SGD step at this batch size on the device.
        #[arg(long, value_name = "BATCH")]
        bench: Option<usize>,
    },
    /// Benchmarks: matmul peak, training steps (MLP, small CNN, resnet8x4), the WSL loss,
    /// distillation epochs, and a script-driven against a Rust-driven distillation.
    Bench {
        /// Timed repetitions per row (after warm-up).
        #[arg(long, default_value_t = 10)]
        reps: usize,
        /// Only the rows whose name contains this (e.g. resnet8x4), and no script-vs-Rust part.
        #[arg(long, value_name = "TEXT")]
        only: Option<String>,
    },
}

#[derive(Subcommand)]
enum NotebookAction {
    /// Run every cell in one session and write the notebook with outputs (exit 1 if a cell fails).
    Run {
        notebook: PathBuf,
        /// Where to write the executed notebook (default: over the input).
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// A YAML file of parameters (under the --set values).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The session's run directory (default: runs/<date>-<time>-<notebook name>).
        #[arg(long, value_name = "DIR")]
        run_dir: Option<PathBuf>,
        /// Do not record the session (no run directory; save_weights is refused).
        #[arg(long, conflicts_with = "run_dir")]
        no_record: bool,
    },
}

#[derive(Subcommand)]
enum RunsAction {
    /// Show runs side by side, the fields that differ first.
    Compare {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
}

fn parse_input(s: &str) -> anyhow::Result<Vec<usize>> {
    let dims: Result<Vec<usize>, _> = s.split('x').map(str::parse).collect();
    match dims {
        Ok(d) if d.len() == 3 && d.iter().all(|v| *v > 0) => Ok(d),
        _ => anyhow::bail!("--input '{s}' must look like 3x32x32 (channels x height x width)"),
    }
}

fn run_notebook(input: &std::path::Path, output: &std::path::Path, opts: RunOptions) -> Result<(), ScriptError> {
    let mut started = |dir: Option<&std::path::Path>| {
        if let Some(dir) = dir {
            eprintln!("recording this notebook's session in {} (--no-record turns it off)", dir.display());
        }
    };
    let run = retort::notebook::run(input, output, &opts, &mut started)?;
    let shown = output.display().to_string();
    retort::run::atomic_write(output, run.markdown.as_bytes()).map_err(|e| ScriptError::usage(&shown, e.to_string()))?;
    if run.ok {
        eprintln!("wrote {shown}");
        Ok(())
    } else {
        Err(ScriptError {
            kind: script::ErrorKind::Failure,
            file: shown.clone(),
            line: None,
            column: None,
            message: format!("a cell failed; its error is in {shown}"),
            source_line: None,
        })
    }
}

/// `RETORT_PATH`: extra folders for `import`, separated like `PATH`.
fn retort_path() -> Vec<PathBuf> {
    std::env::var_os("RETORT_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default()
}

/// The default run directory: `runs/<YYYYMMDD-HHMMSS>-<script stem>` (`-2`, `-3`... added when taken, see `Record::Fresh`).
fn default_run_dir(script: &std::path::Path) -> PathBuf {
    let stamp: String = retort::run::now_utc().chars().filter(|c| c.is_ascii_digit() || *c == ' ').collect::<String>().replace(' ', "-");
    let stem = script.file_stem().map_or("script".into(), |s| s.to_string_lossy().to_string());
    PathBuf::from("runs").join(format!("{stamp}-{stem}"))
}

/// Where a REPL or notebook session is recorded: `--run-dir`, else a new folder under runs/.
fn session_record(no_record: bool, run_dir: &Option<PathBuf>, what: &std::path::Path) -> Option<Record> {
    (!no_record).then(|| run_dir.clone().map_or_else(|| Record::Fresh(default_run_dir(what)), Record::New))
}

fn run_script(opts: RunOptions, script: PathBuf) -> Result<(), ScriptError> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // a second Ctrl-C exits at once
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    // the first failed write (a full disk, a closed pipe) fails the run once it stops
    let failed: Rc<RefCell<Option<std::io::Error>>> = Rc::default();
    let first = failed.clone();
    let out = Rc::new(RefCell::new(move |s: &str| {
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, "{s}").and_then(|_| stdout.flush()) {
            first.borrow_mut().get_or_insert(e);
        }
    }));
    script::run(&script, &opts, out, interrupt)?;
    match failed.take() {
        Some(e) => Err(ScriptError::failure(&script.display().to_string(), format!("cannot write the script's output to stdout: {e}"))),
        None => Ok(()),
    }
}

/// The script a run resumes with: the copy in its run directory (so the run resumes from any
/// folder, and after the original was edited, which gets a warning), or with `--use-current`
/// the original. Run directories recorded before copies were kept resume from the original.
fn resume_script(run: &retort::run::RunDir, recorded: &retort::run::RunConfig, use_current: bool) -> Result<PathBuf, String> {
    if run.read_summary().map_err(|e| e.to_string())?.finished {
        return Err(format!(
            "the run in {} finished; there is nothing to resume (start a new run, or see it with retort runs)",
            run.path.display()
        ));
    }
    let original = PathBuf::from(recorded.script_path.as_deref().unwrap_or(&recorded.script));
    // a local module edited since: the copy is what resumes
    if let Some(folder) = original.parent() {
        for rel in recorded.sources.iter().skip(1) {
            let (now, copy) = (std::fs::read(folder.join(rel)), std::fs::read(run.source_dir().join(rel)));
            if let (Ok(now), Ok(copy)) = (now, copy) {
                if now != copy && !use_current {
                    eprintln!(
                        "warning: the module {} changed since the run was recorded; resuming with the recorded copy",
                        folder.join(rel).display()
                    );
                }
            }
        }
    }
    let copy = recorded.sources.first().map(|name| run.source_dir().join(name)).filter(|p| p.is_file());
    let changed = || std::fs::read_to_string(&original).is_ok_and(|text| retort::run::content_hash(&text) != recorded.script_hash);
    match (copy, use_current) {
        (_, true) => {
            if !original.is_file() {
                return Err(format!("--use-current: the run's script {} no longer exists", original.display()));
            }
            if changed() {
                eprintln!(
                    "warning: resuming with {}, which changed since the run was recorded: finished stages keep their recorded weights, so the result may match neither version of the script",
                    original.display()
                );
            }
            Ok(original)
        }
        (Some(copy), false) => {
            if changed() {
                eprintln!(
                    "warning: {} changed since the run was recorded; resuming from the recorded copy {} (--use-current resumes with the edited script)",
                    original.display(),
                    copy.display()
                );
            }
            Ok(copy)
        }
        (None, false) => Ok(original),
    }
}

/// Options for `retort run`, from its flags or, with --resume, from the recorded run.
#[allow(clippy::too_many_arguments)]
fn prepare_run(
    script: &Option<PathBuf>,
    resume: &Option<PathBuf>,
    use_current: bool,
    out: &Option<PathBuf>,
    no_record: bool,
    config: &Option<PathBuf>,
    sets: &[String],
    seed: u64,
    max_operations: Option<u64>,
) -> Result<(RunOptions, PathBuf), ScriptError> {
    if let Some(dir) = resume {
        let shown = dir.display().to_string();
        let run = retort::run::RunDir::open(dir).map_err(|e| ScriptError::usage(&shown, e.to_string()))?;
        let recorded = run.read_config().map_err(|e| ScriptError::usage(&shown, e.to_string()))?;
        if recorded.kind != "script" {
            return Err(ScriptError::usage(
                &shown,
                format!(
                    "{shown} records a {} session, which cannot resume; its transcript reruns it: retort run {}",
                    recorded.kind,
                    run.source_dir().join(retort::script::session::TRANSCRIPT).display()
                ),
            ));
        }
        let script = resume_script(&run, &recorded, use_current).map_err(|m| ScriptError::usage(&shown, m))?;
        let opts = RunOptions {
            progress: None,
            sets: recorded.sets,
            seed: recorded.seed,
            max_operations,
            search_path: retort_path(),
            config: None,
            record: Some(Record::Resume { dir: dir.clone(), current: use_current }),
            report: None,
            device: Default::default(),
        };
        return Ok((opts, script));
    }
    let script = script.clone().expect("clap requires a script without --resume");
    let record = (!no_record).then(|| out.clone().map_or_else(|| Record::Fresh(default_run_dir(&script)), Record::New));
    Ok((
        RunOptions {
            progress: None,
            sets: sets.to_vec(),
            seed,
            max_operations,
            search_path: retort_path(),
            config: config.clone(),
            record,
            report: None,
            device: Default::default(),
        },
        script,
    ))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { .. } | Command::Check { .. } | Command::Repl { .. } | Command::Notebook { .. } => unreachable!("handled in main"),
        Command::Runs { action: None, dir } => {
            let (runs, unreadable) = retort::run::listing::list(&dir)?;
            let mut t = table(&retort::run::listing::RunInfo::HEADER);
            for r in &runs {
                for row in r.rows() {
                    t.add_row(row);
                }
            }
            println!("{t}");
            for e in &unreadable {
                eprintln!("warning: skipped {e}");
            }
        }
        Command::Runs { action: Some(RunsAction::Compare { runs }), .. } => {
            let infos = runs.iter().map(|p| retort::run::listing::RunInfo::load(p)).collect::<retort::Result<Vec<_>>>()?;
            let mut header = vec!["field".to_string()];
            header.extend(infos.iter().map(|r| r.name.clone()));
            let mut t = Table::new();
            t.load_preset(UTF8_FULL).set_header(header);
            for (field, values, differs) in retort::run::listing::compare(&infos) {
                let mut row = vec![if differs { format!("* {field}") } else { field }];
                row.extend(values);
                t.add_row(row);
            }
            println!("{t}");
            println!("* differs between the runs");
        }
        Command::Plot { runs, output } => {
            let mut series = Vec::new();
            for p in &runs {
                let info = retort::run::listing::RunInfo::load(p)?;
                let metrics = retort::run::RunDir::open(p)?.read_metrics()?;
                series.extend(retort::run::plot::stage_series(&metrics, (runs.len() > 1).then_some(info.name.as_str())));
            }
            retort::run::plot::curves(&series, "every stage of each run", &output)?;
            eprintln!("wrote {}", output.display());
        }
        Command::Docs { output } => {
            let md = script::docs::script_api_markdown();
            let tmp = output.with_extension("md.tmp");
            std::fs::write(&tmp, md).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &output).with_context(|| format!("writing {}", output.display()))?;
            eprintln!("wrote {}", output.display());
        }
        Command::Quickstart { seed, quiet } => {
            let mut observe = |stage: &str, r: &retort::train::EpochRecord| {
                if !quiet {
                    eprintln!("{stage:>18}  epoch {:>2}  loss {:.4}  test accuracy {:.2}%", r.epoch, r.train_loss, 100.0 * r.test_accuracy);
                }
            };
            let rows = retort::quickstart::run(seed, &mut observe)?;
            let mut t = table(&["model", "architecture", "parameters", "test accuracy", "time (s)"]);
            for r in rows {
                t.add_row(vec![
                    r.name,
                    r.arch,
                    r.params.to_string(),
                    format!("{:.2}%", 100.0 * r.test_accuracy),
                    format!("{:.1}", r.seconds),
                ]);
            }
            println!("digits (1,797 samples, 20% test), T = {}, alpha = {}", retort::quickstart::TEMPERATURE, retort::quickstart::ALPHA);
            println!("{t}");
        }
        Command::Models { classes, input } => {
            let input = parse_input(&input)?;
            let mut t = table(&["model", "parameters", "MACs", "description"]);
            for (name, about) in ZOO {
                let m = Model::new(name, ModelConfig { classes, input: input.clone(), ..ModelConfig::default() })
                    .with_context(|| format!("building {name}"))?;
                t.add_row(vec![
                    name.to_string(),
                    m.params_count().to_string(),
                    format!("{:.1} M", m.macs()? as f64 / 1e6),
                    about.to_string(),
                ]);
            }
            println!("{classes} classes, input {}", input.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"));
            println!("{t}");
        }
        Command::Device { device, check, tolerance, train, bench } => cli::device::run(&device, check, tolerance, train, bench)?,
        Command::Bench { reps, only } => {
            let mut t = table(&["benchmark", "median (ms)", "min (ms)", "max (ms)", "GFLOP/s", "of peak"]);
            let rows = retort::bench::steps(reps.max(1), only.as_deref())?;
            let peak = rows[0].gflops;
            for row in rows {
                let (gf, frac) = if row.gflops > 0.0 {
                    (format!("{:.1}", row.gflops), format!("{:.0}%", 100.0 * row.gflops / peak))
                } else {
                    ("-".into(), "-".into())
                };
                t.add_row(vec![
                    row.name,
                    format!("{:.2}", row.median_ms),
                    format!("{:.2}", row.min_ms),
                    format!("{:.2}", row.max_ms),
                    gf,
                    frac,
                ]);
            }
            println!("{t}");
            if only.is_some() {
                return Ok(());
            }
            let t = retort::bench::script_vs_rust(reps.max(3))?;
            let ((rust, script), (rust_min, script_min)) = (t.medians(), t.mins());
            println!(
                "distillation driven from Rust vs a script (digits, CNN student, WSL, per-batch filter closure, 3 epochs, {} reps):",
                t.rust.len()
            );
            println!("  median: Rust {rust:.1} ms, script {script:.1} ms, script / Rust = {:.3}", script / rust);
            println!("  best:   Rust {rust_min:.1} ms, script {script_min:.1} ms, script / Rust = {:.3}", script_min / rust_min);
            println!("  median of paired ratios script / Rust = {:.3}", t.paired_ratio());
            println!(
                "  in the filter: Rust {:.2} ms, script {:.2} ms per run; Rust time + that difference, over Rust time = {:.4}",
                retort::bench::median_of(&t.rust_hooks),
                retort::bench::median_of(&t.script_hooks),
                t.accounted_ratio()
            );
        }
    }
    Ok(())
}

/// Keeps freed training buffers in the process instead of handing them back to the OS, so the
/// next step's buffers of the same sizes need no fresh zeroed pages (page faults were ~12% of a
/// resnet step). glibc only; elsewhere this does nothing.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Any panic left (a failed `println!` to a full disk, or a bug) ends in a one-line error and
/// exit code 1, never a panic message with exit code 101.
fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if what.starts_with("failed printing to") {
            eprintln!("error: {what}");
        } else {
            eprintln!("error: internal error (a bug in retort; please report it): {info}");
        }
    }));
    std::panic::catch_unwind(real_main).unwrap_or(ExitCode::FAILURE)
}

fn real_main() -> ExitCode {
    keep_freed_memory();
    default_sigpipe();
    if let Ok(text) = std::env::var("RETORT_MAX_MEMORY") {
        if let Err(e) = parse_memory(&text) {
            eprintln!("error: RETORT_MAX_MEMORY: {e}");
            return ExitCode::from(2);
        }
    }
    let cli = Cli::parse();
    if let Some(bytes) = cli.max_memory {
        retort::tensor::limits::set_memory_cap(bytes);
    }
    let script_result = match &cli.command {
        Command::Run { script, resume, use_current, out, no_record, report, device, quiet, config, sets, seed, max_operations } => {
            Some(prepare_run(script, resume, *use_current, out, *no_record, config, sets, *seed, *max_operations).and_then(
                |(mut opts, script)| {
                    opts.report = report.clone();
                    opts.device = device.parse().map_err(|e: retort::Error| ScriptError::usage("--device", e.to_string()))?;
                    if !*quiet && std::io::stderr().is_terminal() {
                        opts.progress = Some(cli::progress_bars());
                    }
                    run_script(opts, script)
                },
            ))
        }
        Command::Check { script, sets, config } => Some(script::check(
            script,
            &RunOptions { sets: sets.clone(), config: config.clone(), search_path: retort_path(), ..Default::default() },
        )),
        Command::Repl { sets, seed, config, run_dir, no_record } => Some(cli::repl::run(&RunOptions {
            sets: sets.clone(),
            seed: *seed,
            config: config.clone(),
            // modules in the working folder first, as a script's own folder for `retort run`
            search_path: std::iter::once(PathBuf::from(".")).chain(retort_path()).collect(),
            record: session_record(*no_record, run_dir, std::path::Path::new("repl")),
            ..Default::default()
        })),
        Command::Notebook { action: NotebookAction::Run { notebook, output, seed, sets, config, run_dir, no_record } } => {
            let record = session_record(*no_record, run_dir, notebook);
            // modules in the notebook's folder first
            let folder = notebook.parent().filter(|p| !p.as_os_str().is_empty()).map_or(PathBuf::from("."), PathBuf::from);
            let opts = RunOptions {
                seed: *seed,
                sets: sets.clone(),
                config: config.clone(),
                search_path: std::iter::once(folder).chain(retort_path()).collect(),
                record,
                ..Default::default()
            };
            Some(run_notebook(notebook, output.as_ref().unwrap_or(notebook), opts))
        }
        _ => None,
    };
    if let Some(result) = script_result {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
