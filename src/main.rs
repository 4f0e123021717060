//! The `retort` command line: quickstart, the model zoo, benchmarks.

use anyhow::Context;
use clap::{Parser, Subcommand};
use comfy_table::{presets::UTF8_FULL, Table};
use retort::nn::{Model, ModelConfig, ZOO};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "retort", version, about = "Knowledge-distillation research: teachers, students, KD and weighted soft labels (WSL)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Time training steps (MLP 784-512-512-100 at batch 128, resnet8x4 at batch 64).
    Bench {
        /// Timed repetitions per row (after warm-up).
        #[arg(long, default_value_t = 10)]
        reps: usize,
    },
}

fn parse_input(s: &str) -> anyhow::Result<Vec<usize>> {
    let dims: Result<Vec<usize>, _> = s.split('x').map(str::parse).collect();
    match dims {
        Ok(d) if d.len() == 3 && d.iter().all(|v| *v > 0) => Ok(d),
        _ => anyhow::bail!("--input '{s}' must look like 3x32x32 (channels x height x width)"),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(header.to_vec());
    t
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
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
        Command::Bench { reps } => {
            let mut t = table(&["benchmark", "median (ms)", "min (ms)", "max (ms)", "GFLOP/s"]);
            for row in retort::bench::steps(reps.max(1))? {
                t.add_row(vec![
                    row.name,
                    format!("{:.2}", row.median_ms),
                    format!("{:.2}", row.min_ms),
                    format!("{:.2}", row.max_ms),
                    format!("{:.1}", row.gflops),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
