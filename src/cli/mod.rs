//! The binary's front ends that draw on a terminal: the REPL's line editor. The library never
//! prints; these name the terminal crates (rustyline, comfy-table, ctrlc), which the library
//! does not depend on (the `cli` feature).

pub mod device;
pub mod kernel;
pub mod kernelspec;
pub mod repl;
pub mod run;
pub mod sweep;
pub mod weights;

use comfy_table::{presets::UTF8_FULL, Table};
use retort::script;
use std::cell::RefCell;
use std::rc::Rc;

/// A table with the UTF-8 preset and this header.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(header.to_vec());
    t
}

/// An indicatif bar per epoch on stderr: batches, loss, accuracy, rate.
pub fn progress_bars() -> script::ProgressFn {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar: RefCell<Option<(usize, ProgressBar, std::time::Instant)>> = RefCell::new(None);
    Rc::new(move |p: &script::Progress| match p {
        script::Progress::Batch { label, progress: b } => {
            let mut slot = bar.borrow_mut();
            if slot.as_ref().is_none_or(|(epoch, _, _)| *epoch != b.epoch) {
                let pb = ProgressBar::new(b.batches as u64);
                pb.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}").expect("a valid template").progress_chars("=> "),
                );
                pb.set_prefix(format!("{label} epoch {}/{}", b.epoch, b.epochs));
                *slot = Some((b.epoch, pb, std::time::Instant::now()));
            }
            let (_, pb, started) = slot.as_ref().expect("set above");
            let rate = b.samples as f64 / started.elapsed().as_secs_f64().max(1e-9);
            pb.set_position(b.batch as u64);
            pb.set_message(format!("loss {:.4} acc {:.2}% {rate:.0} samples/s", b.mean_loss, 100.0 * b.accuracy));
        }
        script::Progress::Epoch { record, .. } => {
            if let Some((_, pb, _)) = bar.borrow_mut().take() {
                pb.finish_with_message(format!(
                    "loss {:.4} acc {:.2}% test {:.2}%",
                    record.train_loss,
                    100.0 * record.train_accuracy,
                    100.0 * record.test_accuracy
                ));
            }
        }
    })
}
