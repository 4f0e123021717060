//! (binary) `retort kernel install` / `uninstall`: the kernelspec Jupyter finds the kernel by,
//! `kernels/retort/kernel.json` (argv, display name, language `rhai`, `interrupt_mode:
//! message`) and its logos, under a Jupyter data folder: the user's (the default), a prefix's,
//! or the active virtual environment's.

use retort::notebook::ipynb::{DISPLAY_NAME, KERNEL_NAME};
use retort::script::ScriptError;
use std::path::{Path, PathBuf};

/// Where a kernelspec goes: `--user`, `--prefix P` or `--sys-prefix`.
#[derive(clap::Args, Clone)]
pub struct Place {
    /// The user's Jupyter data folder (JUPYTER_DATA_DIR, else ~/.local/share/jupyter) (default).
    #[arg(long, conflicts_with_all = ["prefix", "sys_prefix"])]
    pub user: bool,
    /// PREFIX/share/jupyter, as `jupyter kernelspec install --prefix`.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<PathBuf>,
    /// The active virtual environment's (VIRTUAL_ENV, else CONDA_PREFIX) share/jupyter.
    #[arg(long, conflicts_with = "prefix")]
    pub sys_prefix: bool,
}

impl Place {
    /// The `kernels/retort` folder.
    pub fn folder(&self) -> Result<PathBuf, ScriptError> {
        let data = if let Some(p) = &self.prefix {
            p.join("share/jupyter")
        } else if self.sys_prefix {
            let env = std::env::var_os("VIRTUAL_ENV").or_else(|| std::env::var_os("CONDA_PREFIX")).ok_or_else(|| {
                ScriptError::usage("--sys-prefix", "no virtual environment is active (neither VIRTUAL_ENV nor CONDA_PREFIX is set); activate one, or use --user or --prefix".to_string())
            })?;
            PathBuf::from(env).join("share/jupyter")
        } else {
            jupyter_zmq_client::user_data_dir()
                .map_err(|e| ScriptError::usage("--user", format!("no user data folder for Jupyter: {e}; use --prefix")))?
        };
        Ok(data.join("kernels").join(KERNEL_NAME))
    }
}

/// The kernelspec: this binary, run as `retort kernel --connection-file {connection_file}` and
/// the session flags given.
pub fn kernel_json(exe: &Path, flags: &[String]) -> serde_json::Value {
    let mut argv = vec![exe.display().to_string(), "kernel".into(), "--connection-file".into(), "{connection_file}".into()];
    argv.extend(flags.iter().cloned());
    serde_json::json!({
        "argv": argv,
        "display_name": DISPLAY_NAME,
        "language": "rhai",
        "interrupt_mode": "message",
        "metadata": { "debugger": false },
    })
}

/// Writes the kernelspec; returns its folder.
pub fn install(place: &Place, flags: &[String]) -> Result<PathBuf, ScriptError> {
    let dir = place.folder()?;
    let shown = dir.display().to_string();
    let fail = |e: &dyn std::fmt::Display| ScriptError::usage(&shown, e.to_string());
    let exe = std::env::current_exe().map_err(|e| fail(&format!("cannot find this program's path: {e}")))?;
    std::fs::create_dir_all(&dir).map_err(|e| fail(&e))?;
    let json = serde_json::to_string_pretty(&kernel_json(&exe, flags)).map_err(|e| fail(&e))?;
    retort::run::atomic_write(&dir.join("kernel.json"), format!("{json}\n").as_bytes()).map_err(|e| fail(&e))?;
    retort::run::atomic_write(&dir.join("logo-64x64.png"), include_bytes!("../../assets/logo-64x64.png")).map_err(|e| fail(&e))?;
    retort::run::atomic_write(&dir.join("logo-32x32.png"), include_bytes!("../../assets/logo-32x32.png")).map_err(|e| fail(&e))?;
    Ok(dir)
}

/// Removes the kernelspec; an error when there is none there.
pub fn uninstall(place: &Place) -> Result<PathBuf, ScriptError> {
    let dir = place.folder()?;
    let shown = dir.display().to_string();
    if !dir.join("kernel.json").is_file() {
        return Err(ScriptError::usage(
            &shown,
            "no retort kernelspec here (nothing to uninstall; --user, --prefix and --sys-prefix name other places)".to_string(),
        ));
    }
    std::fs::remove_dir_all(&dir).map_err(|e| ScriptError::usage(&shown, e.to_string()))?;
    Ok(dir)
}
