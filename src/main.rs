//! The `retort` command line: run and check scripts, quickstart, the model zoo, docs, benchmarks.

mod cli;

use cli::run::{prepare_run, retort_path, run_notebook, run_script, session_record};
use cli::table;

use anyhow::Context;
use clap::{Parser, Subcommand};
use comfy_table::{presets::UTF8_FULL, Table};
use retort::nn::{Model, ModelConfig, ZOO};
use retort::script::{self, RunOptions, ScriptError};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// The section's name in the --report file (default: the script's name); letters,
        /// digits, '-', '_' and '.'. One script run twice with other settings fills two sections.
        #[arg(long, value_name = "NAME", requires = "report", value_parser = cli::run::section_name)]
        section: Option<String>,
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
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Inspect weights files; convert PyTorch checkpoints (.pth) to safetensors.
    Weights {
        #[command(subcommand)]
        action: cli::weights::WeightsAction,
    },
    /// A Jupyter kernel (Jupyter passes --connection-file), and its kernelspec: install, uninstall.
    Kernel {
        #[command(subcommand)]
        action: Option<KernelAction>,
        /// The connection file Jupyter writes (its ports and HMAC key).
        #[arg(long, value_name = "FILE")]
        connection_file: Option<PathBuf>,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// A grid of settings times seeds, each point a run: here, N at a time (--jobs), or as a
    /// Slurm job array (--executor slurm); then `status` and `report` (docs/sweeps.md).
    #[command(args_conflicts_with_subcommands = true)]
    Sweep {
        #[command(subcommand)]
        action: Option<cli::sweep::SweepAction>,
        /// The sweep spec (YAML: script, grid or points, seeds, baseline).
        spec: Option<PathBuf>,
        /// The sweep folder (default: sweeps/<spec name>).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// A parameter every point gets (e.g. a teacher's weights), under the spec's settings;
        /// kept in the manifest, so a rerun must give the same.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Where every point trains (retort run --device: cpu, cuda, cuda:N); kept in the manifest.
        #[arg(long)]
        device: Option<String>,
        /// Points run at once on this machine, each with cores / N threads.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        jobs: u32,
        /// Rerun the points that failed (their records are kept as .failed-N).
        #[arg(long)]
        retry_failed: bool,
        /// local, or slurm (an sbatch job array).
        #[arg(long, default_value = "local", value_parser = ["local", "slurm"])]
        executor: String,
        #[command(flatten)]
        slurm: cli::sweep::SlurmArgs,
    },
    /// Notebooks: Markdown files whose ```rhai blocks are cells, or Jupyter's .ipynb.
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
enum KernelAction {
    /// Write the kernelspec (kernels/retort/kernel.json and logos) where Jupyter finds it.
    Install {
        #[command(flatten)]
        place: cli::kernelspec::Place,
        /// Session flags the kernel starts with (e.g. --no-record, --seed 3), after `--`.
        #[arg(last = true, value_name = "FLAGS")]
        flags: Vec<String>,
    },
    /// Remove the kernelspec.
    Uninstall {
        #[command(flatten)]
        place: cli::kernelspec::Place,
    },
}

#[derive(Subcommand)]
enum NotebookAction {
    /// Turn a Markdown notebook into .ipynb, or an .ipynb into Markdown (by OUTPUT's extension).
    Convert {
        input: PathBuf,
        /// The notebook to write: .ipynb or .md.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Run every cell in one session and write the notebook with outputs (exit 1 if a cell
    /// fails). A .ipynb is written as nbformat 4.5 with Jupyter's outputs; its cell tagged
    /// `parameters` takes --set values.
    Run {
        notebook: PathBuf,
        /// Where to write the executed notebook (default: over the input).
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        session: SessionArgs,
    },
}

/// The flags of a REPL or notebook session.
#[derive(clap::Args)]
struct SessionArgs {
    /// Set a script parameter, seen as `params.KEY`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A YAML file of parameters (under the --set values).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The session's run directory (default: runs/<date>-<time>-repl, -kernel, or the notebook's name).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// Do not record the session (no run directory; save_weights is refused).
    #[arg(long, conflicts_with = "run_dir")]
    no_record: bool,
}

impl SessionArgs {
    /// The session's options; imports are searched in `folder` first, then RETORT_PATH.
    fn options(&self, what: &std::path::Path, folder: PathBuf) -> RunOptions {
        RunOptions {
            sets: self.sets.clone(),
            seed: self.seed,
            config: self.config.clone(),
            search_path: std::iter::once(folder).chain(retort_path()).collect(),
            record: session_record(self.no_record, &self.run_dir, what),
            ..Default::default()
        }
    }
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { .. }
        | Command::Check { .. }
        | Command::Repl { .. }
        | Command::Notebook { .. }
        | Command::Kernel { .. }
        | Command::Sweep { .. } => {
            unreachable!("handled in main")
        }
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
        Command::Weights { action } => cli::weights::run(action)?,
        Command::Models { classes, input } => {
            let input = parse_input(&input)?;
            let mut t = table(&["model", "parameters", "MACs", "description"]);
            for (name, about) in ZOO {
                // a model the input is too small for gets its row, saying why
                let built = Model::new(name, ModelConfig { classes, input: input.clone(), ..ModelConfig::default() })
                    .and_then(|m| Ok((m.params_count(), m.macs()?)));
                t.add_row(match built {
                    Ok((params, macs)) => {
                        vec![name.to_string(), params.to_string(), format!("{:.1} M", macs as f64 / 1e6), about.to_string()]
                    }
                    Err(e) => vec![name.to_string(), "-".into(), "-".into(), format!("{about}; not at this input: {e}")],
                });
            }
            println!("{classes} classes, input {}", input.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"));
            println!("{t}");
        }
        Command::Device { device, check, tolerance, train, bench } => cli::device::run(&device, check, tolerance, train, bench)?,
        Command::Bench { reps, only } => {
            let m = retort::bench::machine();
            println!("CPU: {}; {} threads", m.cpu, m.threads);
            for (family, isa) in &m.kernels {
                println!("  {family}: {isa}");
            }
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
    if let Err(e) = retort::tensor::gemm_path::forced() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    if let Some(bytes) = cli.max_memory {
        retort::tensor::limits::set_memory_cap(bytes);
    }
    let script_result = match &cli.command {
        Command::Run {
            script,
            resume,
            use_current,
            out,
            no_record,
            report,
            section,
            device,
            quiet,
            config,
            sets,
            seed,
            max_operations,
        } => Some(prepare_run(script, resume, *use_current, out, *no_record, config, sets, *seed, *max_operations).and_then(
            |(mut opts, script)| {
                if section.is_some() && report.is_none() {
                    return Err(ScriptError::usage(
                        "--section",
                        "names a section of the --report file; give --report FILE too".to_string(),
                    ));
                }
                opts.report = report.clone();
                opts.report_section = section.clone();
                opts.device = device.parse().map_err(|e: retort::Error| ScriptError::usage("--device", e.to_string()))?;
                if !*quiet && std::io::stderr().is_terminal() {
                    opts.progress = Some(cli::progress_bars());
                }
                run_script(opts, script)
            },
        )),
        Command::Check { script, sets, config } => Some(script::check(
            script,
            &RunOptions { sets: sets.clone(), config: config.clone(), search_path: retort_path(), ..Default::default() },
        )),
        // modules in the working folder first, as a script's own folder for `retort run`
        Command::Repl { session } => Some(cli::repl::run(&session.options(std::path::Path::new("repl"), PathBuf::from(".")))),
        Command::Notebook { action: NotebookAction::Run { notebook, output, session } } => {
            // modules in the notebook's folder first
            let folder = notebook.parent().filter(|p| !p.as_os_str().is_empty()).map_or(PathBuf::from("."), PathBuf::from);
            Some(run_notebook(notebook, output.as_ref().unwrap_or(notebook), session.options(notebook, folder)))
        }
        Command::Notebook { action: NotebookAction::Convert { input, output } } => Some(cli::run::convert_notebook(input, output)),
        Command::Sweep { action: Some(action), .. } => Some(action.run()),
        Command::Sweep { action: None, spec: None, .. } => Some(Err(ScriptError::usage(
            "retort sweep",
            "needs a spec (retort sweep SPEC.yaml), or status, report or run-point".to_string(),
        ))),
        Command::Sweep { action: None, spec: Some(spec), out, sets, device, jobs, retry_failed, executor, slurm } => {
            Some(cli::sweep::start(spec, out.as_deref(), sets, device.as_deref(), *jobs as usize, *retry_failed, executor, slurm))
        }
        Command::Kernel { action: Some(KernelAction::Install { place, flags }), .. } => {
            // the kernel's flags are checked now, not at every start of the kernel
            let args = ["retort", "kernel", "--connection-file", "FILE"].into_iter().map(String::from).chain(flags.iter().cloned());
            let checked = Cli::try_parse_from(args).map(|_| ()).map_err(|e| {
                let first = e.to_string().lines().next().unwrap_or("").trim_start_matches("error: ").to_string();
                ScriptError::usage("retort kernel install", format!("the kernel's flags after --: {first}"))
            });
            Some(checked.and_then(|()| cli::kernelspec::install(place, flags)).map(|dir| {
                println!(
                    "installed the retort kernel in {} (Jupyter lists it as \"{}\")",
                    dir.display(),
                    retort::notebook::ipynb::DISPLAY_NAME
                );
            }))
        }
        Command::Kernel { action: Some(KernelAction::Uninstall { place }), .. } => {
            Some(cli::kernelspec::uninstall(place).map(|dir| println!("removed {}", dir.display())))
        }
        Command::Kernel { action: None, connection_file: Some(file), session } => {
            Some(cli::kernel::run(file, &session.options(std::path::Path::new("kernel"), PathBuf::from("."))))
        }
        Command::Kernel { action: None, connection_file: None, .. } => Some(Err(ScriptError::usage(
            "retort kernel",
            "needs --connection-file FILE (Jupyter starts it so, after `retort kernel install`)".to_string(),
        ))),
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
