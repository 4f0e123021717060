//! Which GEMM runs the matrix products (`matmul`, `linear` and their gradients, the matmul
//! peak of `retort bench`): the `gemm` crate (0.19: its AVX-512 kernels where the CPU has
//! AVX-512F, else AVX2+FMA) or retort's panel GEMM (the convolutions': `a` packed into 16-row
//! panels, 16x16 AVX-512 register tiles).
//!
//! The choice rests on the CPU it runs on, never on a vendor: without AVX-512F only the crate
//! has vector kernels, so it runs. With AVX-512F both compete, and a short measured probe
//! (the MLP's forward and weight-gradient shapes and a square product, both paths in
//! alternation, the best of three) picks the faster, once per CPU model and thread count. The
//! result is cached in `gemm-probe.json` under `RETORT_CACHE_DIR`, else `$XDG_CACHE_HOME/retort`,
//! else `~/.cache/retort`. `RETORT_GEMM=crate` or `panel` forces a path (`auto`: the default).
//!
//! Each path sums in its own order, so the two can differ in the last bits of a result; one
//! path always gives the same bits (for any thread count: both split the output, never a sum).

use std::sync::OnceLock;

/// A GEMM implementation (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmPath {
    /// The `gemm` crate.
    Crate,
    /// retort's panel GEMM.
    Panel,
}

impl GemmPath {
    pub fn name(self) -> &'static str {
        match self {
            GemmPath::Crate => "crate",
            GemmPath::Panel => "panel",
        }
    }
}

/// Why a path was chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    /// `RETORT_GEMM` named it.
    Forced,
    /// The CPU has no AVX-512F: the panel GEMM would run portable loops.
    NoAvx512,
    /// Measured: each path's best time (ms) over the probe's products, and whether the
    /// figures came from the cache.
    Probed { crate_ms: f64, panel_ms: f64, cached: bool },
}

/// The path in use and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub path: GemmPath,
    pub reason: Reason,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = match self.path {
            GemmPath::Crate => "the gemm crate's kernels",
            GemmPath::Panel => "retort's panel GEMM",
        };
        match &self.reason {
            Reason::Forced => write!(f, "{path} (forced by RETORT_GEMM)"),
            Reason::NoAvx512 => write!(f, "{path} (no AVX-512F, so no competing path)"),
            Reason::Probed { crate_ms, panel_ms, cached } => write!(
                f,
                "{path} (probe{}: crate {crate_ms:.2} ms, panel {panel_ms:.2} ms; RETORT_GEMM=crate|panel forces one)",
                if *cached { ", cached" } else { "" }
            ),
        }
    }
}

/// `RETORT_GEMM`: a path, `auto` or unset (none), or an error naming the bad value.
pub fn forced() -> Result<Option<GemmPath>, String> {
    match std::env::var("RETORT_GEMM") {
        Err(_) => Ok(None),
        Ok(v) => match v.trim() {
            "" | "auto" => Ok(None),
            "crate" => Ok(Some(GemmPath::Crate)),
            "panel" => Ok(Some(GemmPath::Panel)),
            other => {
                Err(format!("RETORT_GEMM='{other}' is not crate, panel or auto (the matrix products' GEMM; unset it to let retort choose)"))
            }
        },
    }
}

/// The path matrix products use in this process, decided at the first call (`probe` times
/// both paths where they compete: `matmul::probe`).
pub fn choice(probe: fn() -> (f64, f64)) -> &'static Choice {
    static CHOICE: OnceLock<Choice> = OnceLock::new();
    CHOICE.get_or_init(|| decide(probe))
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn decide(probe: fn() -> (f64, f64)) -> Choice {
    // a bad value is the binary's to report (it checks at start); the library goes on choosing
    if let Ok(Some(path)) = forced() {
        return Choice { path, reason: Reason::Forced };
    }
    if !avx512() {
        return Choice { path: GemmPath::Crate, reason: Reason::NoAvx512 };
    }
    // a debug build's own kernels run far slower than a release build's: never share figures
    let build = if cfg!(debug_assertions) { "debug build" } else { "release build" };
    let key = format!("{} | {} threads | retort {} {build}", cpu_model(), super::cores::threads(), env!("CARGO_PKG_VERSION"));
    let file = cache_file();
    let mut cache: serde_json::Map<String, serde_json::Value> = file
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let cached = cache.get(&key).and_then(|e| Some((e.get("crate_ms")?.as_f64()?, e.get("panel_ms")?.as_f64()?)));
    let ((crate_ms, panel_ms), was_cached) = match cached {
        Some(times) => (times, true),
        None => {
            let times = probe();
            cache.insert(key, serde_json::json!({ "crate_ms": times.0, "panel_ms": times.1 }));
            if let Some(f) = &file {
                // a cache that cannot be written costs a probe per process, nothing else
                let _ = write_atomically(f, &serde_json::to_vec_pretty(&serde_json::Value::Object(cache)).unwrap_or_default());
            }
            (times, false)
        }
    };
    let path = if panel_ms < crate_ms { GemmPath::Panel } else { GemmPath::Crate };
    Choice { path, reason: Reason::Probed { crate_ms, panel_ms, cached: was_cached } }
}

/// `model name` of /proc/cpuinfo (Linux), else "unknown CPU".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Where the probe's results are kept (none: no cache folder is known).
pub fn cache_file() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("RETORT_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| std::path::Path::new(&d).join("retort")))
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/retort")))?;
    Some(dir.join("gemm-probe.json"))
}

fn write_atomically(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}
