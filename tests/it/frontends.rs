//! The front ends share one session core: the same cells give the same output through
//! `retort run`, the REPL and a notebook.

use std::io::Write;
use std::process::{Command, Stdio};

const CELLS: &[&str] = &[
    "let xs = []; for seed in [1, 2, 3] { xs.push(seed); } print(xs);",
    "print(seed);",
    "let t = randn([3]); print(t.to_array());",
    "let m = model(\"mlp\", #{ input: 4, hidden: [3], classes: 2 }); print(sum(m.forward(ones([1, 4]))).item());",
    "fn twice(x) { 2 * x }",
    "print(twice(21));",
];

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_retort"))
}

#[test]
fn the_same_cells_print_the_same_through_run_repl_and_notebook() {
    let dir = std::env::temp_dir().join(format!("retort-frontends-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // retort run
    let script = dir.join("cells.rhai");
    std::fs::write(&script, CELLS.join("\n") + "\n").unwrap();
    let run = bin().args(["run", "--no-record", "--seed", "3", script.to_str().unwrap()]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let run = String::from_utf8(run.stdout).unwrap();
    assert!(run.starts_with("[1, 2, 3]\n3\n"), "{run}");
    // the REPL, piped
    let mut repl = bin()
        .args(["repl", "--no-record", "--seed", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    repl.stdin.take().unwrap().write_all((CELLS.join("\n") + "\n").as_bytes()).unwrap();
    let repl = repl.wait_with_output().unwrap();
    let repl = String::from_utf8(repl.stdout).unwrap();
    // a notebook, one cell per line
    let nb = dir.join("cells.md");
    let cells: String = CELLS.iter().map(|c| format!("```rhai\n{c}\n```\n\n")).collect();
    std::fs::write(&nb, format!("# cells\n\n{cells}")).unwrap();
    let out = bin().args(["notebook", "run", nb.to_str().unwrap(), "--seed", "3", "--no-record"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&nb).unwrap();
    let mut notebook = String::new();
    let mut inside = false;
    for line in text.lines() {
        match line {
            "```output" => inside = true,
            "```" if inside => inside = false,
            l if inside => notebook.push_str(&format!("{l}\n")),
            _ => {}
        }
    }
    assert_eq!(repl, run, "the REPL printed otherwise than retort run");
    assert_eq!(notebook, run, "the notebook printed otherwise than retort run");
    std::fs::remove_dir_all(&dir).unwrap();
}
