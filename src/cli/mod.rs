//! The binary's front ends that draw on a terminal: the REPL's line editor. The library never
//! prints; these name the terminal crates (rustyline, comfy-table, ctrlc), which the library
//! does not depend on (the `cli` feature).

pub mod repl;
