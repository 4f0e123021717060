//! (binary) `retort weights`: what a weights file holds, and PyTorch checkpoints to safetensors.

use super::table;
use retort::run::weights;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum WeightsAction {
    /// List a weights file's tensors (name, shape, dtype); for a PyTorch checkpoint also the
    /// key its state_dict came from and its other entries (epoch, accuracy, ...).
    Inspect {
        /// A .safetensors file or a PyTorch checkpoint (.pth, .pt).
        file: PathBuf,
        /// The top-level key of the checkpoint's state_dict (default: model, state_dict, net, or the top).
        #[arg(long)]
        key: Option<String>,
    },
    /// Write a PyTorch checkpoint's state_dict (or a safetensors file) as safetensors: dtypes
    /// kept, a `module.` prefix removed; an existing output is replaced atomically.
    Convert {
        /// A PyTorch checkpoint (.pth, .pt) or a .safetensors file.
        input: PathBuf,
        /// The .safetensors file to write (its folder must exist).
        output: PathBuf,
        /// The top-level key of the checkpoint's state_dict (default: model, state_dict, net, or the top).
        #[arg(long)]
        key: Option<String>,
    },
}

pub fn run(action: WeightsAction) -> anyhow::Result<()> {
    match action {
        WeightsAction::Inspect { file, key } => {
            let (s, found) = weights::read_any(&file, key.as_deref())?;
            match &found {
                Some(f) => {
                    let at = f.key.as_deref().map_or("the top level".to_string(), |k| format!("key '{k}'"));
                    println!("{}: PyTorch checkpoint ({} format), state_dict at {at}", file.display(), f.format);
                    if f.stripped_module {
                        println!("every name began with 'module.' (nn.DataParallel); shown without it");
                    }
                    for (k, v) in &f.others {
                        println!("  {k}: {v}");
                    }
                }
                None => println!("{}: safetensors", file.display()),
            }
            let mut t = table(&["name", "shape", "dtype", "values"]);
            let mut total = 0usize;
            for (name, e) in &s.tensors {
                total += e.values.len();
                let shape = format!("[{}]", e.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "));
                t.add_row(vec![name.clone(), shape, format!("{:?}", e.dtype), e.values.len().to_string()]);
            }
            println!("{t}");
            println!("{} tensors, {total} values", s.tensors.len());
        }
        WeightsAction::Convert { input, output, key } => {
            if !output.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) {
                anyhow::bail!("{}: the output must be a .safetensors file", output.display());
            }
            if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
                anyhow::bail!("{}: the folder {} does not exist", output.display(), dir.display());
            }
            let (mut s, found) = weights::read_any(&input, key.as_deref())?;
            s.metadata.insert("format".into(), "pt".into());
            if let Some(f) = &found {
                s.metadata.insert(
                    "converted_from".into(),
                    format!("{} ({} format, state_dict at {})", input.display(), f.format, f.key.as_deref().unwrap_or("top level")),
                );
            }
            s.write(&output)?;
            let what = match &found {
                Some(f) => format!(
                    "PyTorch checkpoint {} (state_dict at {}{})",
                    input.display(),
                    f.key.as_deref().map_or("the top level".to_string(), |k| format!("key '{k}'")),
                    if f.stripped_module { ", 'module.' removed" } else { "" }
                ),
                None => format!("safetensors file {}", input.display()),
            };
            println!("wrote {} tensors of the {what} to {}", s.tensors.len(), output.display());
        }
    }
    Ok(())
}
