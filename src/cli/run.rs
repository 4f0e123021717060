//! (binary) Running scripts and sessions from the command line: `retort run`'s options (from
//! flags, or from a recorded run with `--resume`), where runs and sessions are recorded, the
//! script's output and Ctrl-C.

use retort::run::recording::Record;
use retort::script::{self, RunOptions, ScriptError};
use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn run_notebook(input: &std::path::Path, output: &std::path::Path, opts: RunOptions) -> Result<(), ScriptError> {
    let shown = output.display().to_string();
    // where the notebook goes is checked before any cell runs
    if output.is_dir() {
        return Err(ScriptError::usage(&shown, "is a folder; -o names the notebook file to write".to_string()));
    }
    if let Some(dir) = output.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        return Err(ScriptError::usage(&shown, format!("the folder {} does not exist", dir.display())));
    }
    if is_ipynb(input) != is_ipynb(output) {
        return Err(ScriptError::usage(
            &shown,
            "a notebook is written in its own format (.ipynb or Markdown); to change it, use retort notebook convert".to_string(),
        ));
    }
    let mut started = |dir: Option<&std::path::Path>, interrupt: Arc<AtomicBool>| {
        if let Some(dir) = dir {
            eprintln!("recording this notebook's session in {} (--no-record turns it off)", dir.display());
        }
        // Ctrl-C stops the running cell (training between batches) and the notebook is written
        // with the cells that ran; a second Ctrl-C exits at once
        let _ = ctrlc::set_handler(move || {
            if interrupt.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    };
    let (text, ok, failure) = if is_ipynb(input) {
        let run = retort::notebook::ipynb::run(input, &opts, &mut started)?;
        (retort::notebook::ipynb::to_json(run.notebook)?, run.ok, run.failure)
    } else {
        let run = retort::notebook::run(input, output, &opts, &mut started)?;
        (run.markdown, run.ok, run.failure)
    };
    retort::run::atomic_write(output, text.as_bytes()).map_err(|e| ScriptError::usage(&shown, e.to_string()))?;
    if ok {
        eprintln!("wrote {shown}");
        Ok(())
    } else {
        Err(ScriptError {
            kind: script::ErrorKind::Failure,
            file: shown.clone(),
            line: None,
            column: None,
            message: format!("{}; the notebook, with its error, is written to {shown}", failure.unwrap_or_else(|| "a cell failed".into())),
            source_line: None,
        })
    }
}

fn is_ipynb(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ipynb"))
}

/// `retort notebook convert`: Markdown to .ipynb or back, by the output's extension.
pub fn convert_notebook(input: &std::path::Path, output: &std::path::Path) -> Result<(), ScriptError> {
    use retort::notebook::ipynb;
    let shown = output.display().to_string();
    let text = match (is_ipynb(input), is_ipynb(output)) {
        (false, true) => {
            let md = std::fs::read_to_string(input)
                .map_err(|e| ScriptError::usage(&input.display().to_string(), format!("cannot read notebook: {e}")))?;
            ipynb::to_json(ipynb::from_markdown(&md))?
        }
        (true, false) => ipynb::to_markdown(&ipynb::read(input)?),
        (true, true) => return Err(ScriptError::usage(&shown, "both are .ipynb: convert turns Markdown into .ipynb or back".to_string())),
        (false, false) => {
            return Err(ScriptError::usage(&shown, "neither is .ipynb: convert turns Markdown into .ipynb or back".to_string()))
        }
    };
    retort::run::atomic_write(output, text.as_bytes()).map_err(|e| ScriptError::usage(&shown, e.to_string()))?;
    eprintln!("wrote {shown}");
    Ok(())
}

/// `RETORT_PATH`: extra folders for `import`, separated like `PATH`.
pub fn retort_path() -> Vec<PathBuf> {
    std::env::var_os("RETORT_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default()
}

/// The default run directory: `runs/<YYYYMMDD-HHMMSS>-<script stem>` (`-2`, `-3`... added when taken, see `Record::Fresh`).
pub fn default_run_dir(script: &std::path::Path) -> PathBuf {
    let stamp: String = retort::run::now_utc().chars().filter(|c| c.is_ascii_digit() || *c == ' ').collect::<String>().replace(' ', "-");
    let stem = script.file_stem().map_or("script".into(), |s| s.to_string_lossy().to_string());
    PathBuf::from("runs").join(format!("{stamp}-{stem}"))
}

/// Where a REPL or notebook session is recorded: `--run-dir`, else a new folder under runs/.
pub fn session_record(no_record: bool, run_dir: &Option<PathBuf>, what: &std::path::Path) -> Option<Record> {
    (!no_record).then(|| run_dir.clone().map_or_else(|| Record::Fresh(default_run_dir(what)), Record::New))
}

pub fn run_script(opts: RunOptions, script: PathBuf) -> Result<(), ScriptError> {
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
pub fn resume_script(run: &retort::run::RunDir, recorded: &retort::run::RunConfig, use_current: bool) -> Result<PathBuf, String> {
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
pub fn prepare_run(
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
            report_section: None,
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
            report_section: None,
            device: Default::default(),
        },
        script,
    ))
}

/// `--section`: a name the report's section markers can hold.
pub fn section_name(name: &str) -> Result<String, String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        Ok(name.to_string())
    } else {
        Err(format!("'{name}': use letters, digits, '-', '_' and '.' only"))
    }
}
