//! The session core, the REPL (piped and in a real terminal under tmux) and notebooks.

use retort::script::session::{Output, Session};
use retort::script::RunOptions;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

fn session() -> Session {
    Session::new(&RunOptions::default(), std::env::temp_dir()).unwrap()
}

#[test]
fn session_state_functions_and_imports_persist() {
    let mut s = session();
    s.eval("let x = 20;").unwrap();
    s.eval("fn twice(a) { a * 2 }").unwrap();
    s.eval("import \"schedules\" as sched;").unwrap();
    let e = s.eval("print(twice(x) + 2);\nsched::step_at(1, 4.0, 20, 2.0)").unwrap();
    assert_eq!(e.outputs, vec![Output::Text("42".into())]);
    assert_eq!(e.value.as_deref(), Some("4.0"));
    // an error does not lose variables, and says where it happened
    let err = s.eval("let y = 1;\nlet z = log_softmax(zeros([2]), 3);").unwrap_err().to_string();
    assert!(err.contains("dim 3 is out of range") && err.contains("<input 5>:2:"), "{err}");
    assert_eq!(s.eval("x + y").unwrap().value.as_deref(), Some("21"));
    let vars: Vec<String> = s.vars().into_iter().map(|(n, _, _)| n).collect();
    assert!(vars.contains(&"x".to_string()) && vars.contains(&"y".to_string()), "{vars:?}");
    assert!(s.completions("log_s").contains(&"log_softmax".to_string()));
    assert!(s.completions("twi").contains(&"twice".to_string()));
    assert!(s.script().contains("fn twice(a) { a * 2 }"));
}

#[test]
fn completion_docs_and_vars_know_what_the_user_is_typing() {
    let mut s = session();
    s.eval("import \"schedules\" as sched;\nlet d = dataset(\"digits\", #{ test_limit: 50 });\nlet x = zeros([2, 3]);\nlet m = model(\"mlp\", #{ input: 4, classes: 2 });").unwrap();
    let complete = |line: &str| s.complete(line, line.len()).1;
    // option keys inside the options map of a training call, the model, the optimizer
    assert_eq!(complete("fit(m, d, #{ ep"), ["epochs"]);
    assert!(complete("distill(m, m, d, #{ epochs: 2, te").contains(&"temperature".to_string()));
    assert_eq!(complete("model(\"mlp\", #{ hid"), ["hidden"]);
    assert_eq!(complete("fit(m, d, #{ optimizer: sgd(#{ mo"), ["momentum"]);
    // a value's own properties: a data set's train part, not the model's train_mode
    assert_eq!(complete("d.tr"), ["train"]);
    assert!(complete("m.tr").contains(&"train_mode".to_string()));
    assert!(complete("x.sh").contains(&"shape".to_string()));
    // recipe functions after their alias, and names elsewhere
    assert!(complete("sched::cos").contains(&"sched::cosine".to_string()));
    assert!(complete("let y = log_s").contains(&"log_softmax".to_string()));
    // :doc covers recipe functions and suggests close names
    let doc = s.doc("sched::cosine").unwrap();
    assert!(doc.contains("cosine(epoch, start, end, epochs)") && doc.contains("half a cosine"), "{doc}");
    assert!(s.doc("schedules::step_at").is_ok());
    assert_eq!(s.doc("distil").unwrap_err(), "no built-in or recipe function named 'distil'; did you mean distill?");
    assert!(s.doc("sched::cosin").unwrap_err().contains("did you mean sched::cosine?"));
    // :vars names the types a user knows
    let vars: std::collections::HashMap<String, (String, String)> = s.vars().into_iter().map(|(n, t, v)| (n, (t, v))).collect();
    assert_eq!(vars["x"].0, "Tensor [2, 3]");
    assert_eq!((vars["d"].0.as_str(), vars["m"].0.as_str()), ("Dataset", "Model"));
    assert!(vars["d"].1.starts_with("digits: "), "{:?}", vars["d"]);
}

#[test]
fn session_cancellation_stops_training_and_keeps_the_session() {
    let mut s = session();
    s.eval("let d = dataset(\"digits\");\nlet m = model(\"mlp\", #{ input: d.input, hidden: [32], classes: d.classes });").unwrap();
    let flag = s.interrupt_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(400));
        flag.store(true, Ordering::SeqCst);
    });
    let started = std::time::Instant::now();
    // what was trained comes back, marked interrupted, its history ending in the partial epoch
    let e = s.eval("let r = fit(m, d, #{ epochs: 1000000, batch: 8 });").unwrap();
    stopper.join().unwrap();
    assert!(matches!(&e.outputs[..], [Output::Text(t)] if t.starts_with("fit: interrupted (Ctrl-C): the model keeps")), "{:?}", e.outputs);
    assert!(started.elapsed().as_secs() < 30);
    let e = s.eval("[r.interrupted, r.history[-1].partial, r.epochs == r.history.len()]").unwrap();
    assert_eq!(e.value.as_deref(), Some("[true, true, true]"));
    // statements after the interrupted call in the same input do not run
    let flag = s.interrupt_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(400));
        flag.store(true, Ordering::SeqCst);
    });
    let err = s.eval("let r2 = fit(m, d, #{ epochs: 1000000, batch: 8 });\nlet after = 1;").unwrap_err().to_string();
    stopper.join().unwrap();
    assert!(err.contains("interrupted") && s.eval("r2.interrupted").unwrap().value.as_deref() == Some("true"), "{err}");
    assert!(s.eval("after").is_err());
    // the model and data are still there, and training works again
    let e = s.eval("fit(m, d, #{ epochs: 1 }).epochs").unwrap();
    assert_eq!(e.value.as_deref(), Some("1"));
    // a run shows as a table of its epochs
    let e = s.eval("fit(m, d, #{ epochs: 2 })").unwrap();
    let (header, rows) = e.value_table.expect("a run value is a table");
    assert_eq!((header[0].as_str(), header[3].as_str(), rows.len()), ("epoch", "test_accuracy", 2));
    assert_eq!(rows[1][0], "2");
}

#[test]
fn repl_reads_piped_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["repl", "--no-record"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"let x = [1,\n  2, 3];\nprint(x.len());\nfn f(a) {\n  a + 1\n}\nf(41)\nzeros([2]).reshape([3])\nx\n:help\n:quit\nprint(\"after quit\");\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(&lines[..3], &["3", "42", "[1, 2, 3]"], "{stdout}");
    assert!(stdout.contains(":doc NAME") && !stdout.contains("after quit"), "{stdout}");
    assert!(stderr.contains("reshape: shape mismatch") && stderr.contains("^"), "{stderr}");
}

fn tmux(args: &[&str]) -> String {
    String::from_utf8_lossy(&Command::new("tmux").args(args).output().unwrap().stdout).into()
}

/// Types `text` literally, then Enter. (tmux reads a trailing `;` as a command separator and
/// drops it; the lines typed here do not need one.)
fn type_line(session: &str, text: &str) {
    tmux(&["send-keys", "-t", session, "-l", text]);
    tmux(&["send-keys", "-t", session, "Enter"]);
}

fn wait_for(session: &str, needle: &str, seconds: u64) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        let screen = tmux(&["capture-pane", "-t", session, "-p"]);
        if screen.contains(needle) || std::time::Instant::now() > deadline {
            return screen;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn repl_in_a_terminal_completes_continues_lines_and_survives_ctrl_c() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED: tmux is not installed (.ci/run installs it)");
        return;
    }
    let name = format!("retort-repl-{}", std::process::id());
    let history = std::env::temp_dir().join(format!("{name}.history"));
    let cmd = format!("RETORT_HISTORY={} {} repl --no-record", history.display(), env!("CARGO_BIN_EXE_retort"));
    tmux(&["new-session", "-d", "-s", &name, "-x", "160", "-y", "40", &cmd]);
    // the session (and a fit still training in it) ends with the test, passed or failed
    struct KillSession(String);
    impl Drop for KillSession {
        fn drop(&mut self) {
            let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
        }
    }
    let _session = KillSession(name.clone());
    let screen = wait_for(&name, "retort>", 10);
    assert!(screen.contains("retort>"), "no prompt:\n{screen}");
    // multi-line input: the open bracket continues the line
    type_line(&name, "let v = [1,");
    type_line(&name, "2];");
    type_line(&name, "print(v.len() * 7);");
    let screen = wait_for(&name, "14", 10);
    assert!(screen.lines().any(|l| l.trim() == "14"), "multi-line input:\n{screen}");
    // Tab completes a built-in
    tmux(&["send-keys", "-t", &name, "-l", "print(log_softm"]);
    tmux(&["send-keys", "-t", &name, "Tab"]);
    let screen = wait_for(&name, "log_softmax", 5);
    assert!(screen.contains("print(log_softmax"), "completion:\n{screen}");
    tmux(&["send-keys", "-t", &name, "C-c"]);
    // Ctrl-C stops a running fit; the session goes on with its variables
    let fit = "let d = dataset(\"digits\"); let m = model(\"mlp\", #{ input: d.input, hidden: [32], classes: d.classes }); fit(m, d, #{ epochs: 1000000, batch: 8 });";
    type_line(&name, fit);
    // under load the fit may start late: a Ctrl-C that reaches the line editor first only
    // clears the line (a bare prompt comes back), so type the line again and send another
    // until one lands in the running fit
    let mut screen = String::new();
    for _ in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        tmux(&["send-keys", "-t", &name, "C-c"]);
        // a Ctrl-C that lands before the fit starts (while the data loads) stops the input
        // with "error: interrupted" and a prompt comes back: type it again
        screen = wait_for(&name, "fit: interrupted", 8);
        if screen.contains("fit: interrupted") {
            break;
        }
        if screen.lines().rev().find(|l| !l.trim().is_empty()).is_some_and(|l| l.trim() == "retort>") {
            type_line(&name, fit);
        }
    }
    assert!(screen.contains("fit: interrupted (Ctrl-C)"), "Ctrl-C:\n{screen}");
    // let the prompt come back before typing (keys sent earlier can be dropped)
    std::thread::sleep(std::time::Duration::from_millis(500));
    type_line(&name, "print(`still here ${v.len()} ${m.params_count}`);");
    let screen = wait_for(&name, "still here", 10);
    assert!(screen.contains("still here 2 2410"), "after Ctrl-C:\n{screen}");
    // Ctrl-D leaves and the history file is written
    tmux(&["send-keys", "-t", &name, "C-d"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = Command::new("tmux").args(["kill-session", "-t", &name]).output();
    let saved = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(saved.contains("print(v.len() * 7)"), "history:\n{saved}");
    let _ = std::fs::remove_file(&history);
}

#[test]
fn the_committed_notebook_reexecutes_to_the_same_output() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let committed = root.join("docs/notebooks/wsl-walkthrough.md");
    let dir = std::env::temp_dir().join(format!("retort-nb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("wsl-walkthrough.md");
    let status = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(["notebook", "run", committed.to_str().unwrap(), "-o", out.to_str().unwrap(), "--no-record"])
        // the committed digits come from the crate's GEMM (another CPU's probe may pick the panel)
        .env("RETORT_GEMM", "crate")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let (fresh, kept) = (std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&committed).unwrap());
    assert_eq!(retort::notebook::without_header(&fresh), retort::notebook::without_header(&kept));
    assert!(dir.join("wsl-walkthrough-plot-1.png").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failing_cell_stops_the_notebook_with_its_error() {
    let dir = std::env::temp_dir().join(format!("retort-nbfail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nb = dir.join("nb.md");
    std::fs::write(
        &nb,
        "# t\n\n```rhai\nlet a = 1;\nprint(a);\n```\n\n```rhai\nlet b = zeros([2]).item();\n```\n\n```rhai\nprint(\"never\");\n```\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_retort")).args(["notebook", "run", nb.to_str().unwrap(), "--no-record"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&nb).unwrap();
    assert!(
        text.contains("```output\n1\n```")
            && text.contains("cell 2 failed")
            && text.contains("item: shape mismatch")
            && !text.contains("never\n```output"),
        "{text}"
    );
    assert!(text.contains("a cell failed"));
    // re-running strips the old outputs instead of stacking them
    let _ = Command::new(env!("CARGO_BIN_EXE_retort")).args(["notebook", "run", nb.to_str().unwrap(), "--no-record"]).output().unwrap();
    let again = std::fs::read_to_string(&nb).unwrap();
    assert_eq!(again.matches("cell 2 failed").count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
