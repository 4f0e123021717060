//! `retort device`: a device's name and, on a GPU, the agreement checks against the CPU, a
//! training run on both, and the step timing (`cuda` feature), printed as tables.

#[cfg(feature = "cuda")]
use super::table;

/// Runs `retort device DEVICE [--check] [--train] [--bench BATCH]`.
pub fn run(device: &str, check: bool, tolerance: f64, train: bool, bench: Option<usize>) -> anyhow::Result<()> {
    use retort::devices::DeviceName;
    let gpu = match device.parse::<DeviceName>()? {
        DeviceName::Cpu => {
            println!("cpu: {} threads (rayon)", rayon::current_num_threads());
            if check {
                println!("the CPU is the reference the agreement check compares against");
            }
            return Ok(());
        }
        DeviceName::Cuda(n) => (retort::tensor::backend::Gpu::open(n)?, n),
    };
    #[allow(unused_variables)]
    let (gpu, ordinal) = gpu;
    println!("{}", gpu.describe());
    #[cfg(not(feature = "cuda"))]
    let _ = (train, bench);
    #[cfg(not(feature = "cuda"))]
    let _ = (check, tolerance, ordinal);
    #[cfg(feature = "cuda")]
    if check {
        use retort::cuda::check;
        let mut rows = check::agreement(&gpu, 1)?;
        rows.extend(check::loss_agreement(ordinal)?);
        rows.extend(check::pool_agreement(ordinal)?);
        rows.extend(check::layer_agreement(ordinal)?);
        let mut t = table(&["op", "shape", "relative error", "result"]);
        for r in &rows {
            t.add_row(vec![
                r.op.clone(),
                r.shape.clone(),
                format!("{:.2e}", r.worst),
                if r.passed(tolerance) { "ok" } else { "MISMATCH" }.into(),
            ]);
        }
        println!("{t}");
        let failed = rows.iter().filter(|r| !r.passed(tolerance)).count();
        println!(
            "relative error: max |gpu - cpu| / max(|cpu|, 1) per element; ||gpu - cpu|| / ||cpu|| per tensor where a row says norm-wise"
        );
        println!("agreement: {} of {} checks within {tolerance:e}", rows.len() - failed, rows.len());
        if failed > 0 {
            anyhow::bail!("{failed} ops disagree with the CPU beyond {tolerance:e}");
        }
    }
    #[cfg(feature = "cuda")]
    if train {
        let epochs = 10;
        let [(cpu, cpu_acc), (gpu, gpu_acc)] = retort::cuda::check::train_check(ordinal, "cnn", epochs)?;
        let mut t = table(&["epoch", "train loss (cpu)", "train loss (cuda)", "relative difference"]);
        for (e, (a, b)) in cpu.iter().zip(&gpu).enumerate() {
            t.add_row(vec![(e + 1).to_string(), format!("{a:.6}"), format!("{b:.6}"), format!("{:.2e}", ((a - b) / a).abs())]);
        }
        println!("{t}");
        println!("test accuracy: cpu {:.2}%, cuda {:.2}%", 100.0 * cpu_acc, 100.0 * gpu_acc);
        let (first, last) = (gpu[0], gpu[gpu.len() - 1]);
        let follows = retort::cuda::check::training_follows_the_cpu(&cpu, &gpu);
        println!(
            "training: cuda loss {first:.4} -> {last:.4}; {}",
            if follows { "falls and stays within 2% of the CPU every epoch" } else { "does NOT fall and stay within 2% of the CPU" }
        );
        if !follows {
            anyhow::bail!("training on CUDA does not follow the CPU run");
        }
    }
    #[cfg(feature = "cuda")]
    if let Some(batch) = bench {
        let ((median, min, max), [fwd, loss, bwd, upd]) = retort::bench::gpu_step(ordinal, batch, 21)?;
        println!(
            "resnet8x4 (CIFAR-100) SGD step, batch {batch}, on {}: median {median:.3} ms (min {min:.3}, max {max:.3}, 21 steps)",
            gpu.describe()
        );
        println!("  phase medians: forward with upload and logits back {fwd:.3} ms, loss on the CPU {loss:.3} ms, backward {bwd:.3} ms, update {upd:.3} ms");
    }
    Ok(())
}
