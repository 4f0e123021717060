//! The binary's front ends that draw on a terminal: the REPL's line editor. The library never
//! prints; these name the terminal crates (rustyline, comfy-table, ctrlc), which the library
//! does not depend on (the `cli` feature).

pub mod device;
pub mod repl;

use comfy_table::{presets::UTF8_FULL, Table};

/// A table with the UTF-8 preset and this header.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(header.to_vec());
    t
}
