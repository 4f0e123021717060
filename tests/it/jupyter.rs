//! The Jupyter kernel and `.ipynb` notebooks. Jupyter's own clients (jupyter_client, nbclient,
//! jupyter_kernel_test, papermill) drive the kernel in `tests/jupyter/test_kernel.py`, from the
//! virtual environment `scripts/jupyter-venv.sh` makes (`.ci/run` does); the rest needs no Python.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_retort"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retort-jupyter-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtual environment's python: RETORT_JUPYTER_PYTHON, else scripts/jupyter-venv.sh's.
fn venv_python() -> Option<PathBuf> {
    std::env::var_os("RETORT_JUPYTER_PYTHON").map(PathBuf::from).or_else(|| {
        let p = root().join("target/jupyter-venv/bin/python");
        p.is_file().then_some(p)
    })
}

#[test]
fn jupyters_clients_drive_the_kernel() {
    let Some(python) = venv_python() else {
        // CI always has it: there a missing environment is a failure, not a skip
        assert!(std::env::var_os("CI").is_none(), "CI must run scripts/jupyter-venv.sh first (no Jupyter clients found)");
        eprintln!("SKIPPED: no Jupyter clients; run scripts/jupyter-venv.sh (.ci/run does)");
        return;
    };
    let dir = scratch("clients");
    let prefix = dir.join("prefix");
    let install = bin().args(["kernel", "install", "--prefix"]).arg(&prefix).args(["--", "--no-record"]).output().unwrap();
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(prefix.join("share/jupyter/kernels/retort/kernel.json")).unwrap()).unwrap();
    assert_eq!(spec["language"], "rhai");
    assert_eq!(spec["interrupt_mode"], "message");
    assert!(prefix.join("share/jupyter/kernels/retort/logo-64x64.png").is_file());
    let papermill = python.parent().unwrap().join("papermill");
    let out = Command::new(&python)
        .args(["-m", "unittest", "-v", "test_kernel"])
        .current_dir(root().join("tests/jupyter"))
        .env("JUPYTER_PATH", prefix.join("share/jupyter"))
        .env("JUPYTER_RUNTIME_DIR", dir.join("runtime"))
        .env("JUPYTER_CONFIG_DIR", dir.join("config"))
        .env("JUPYTER_PLATFORM_DIRS", "1")
        .env("RETORT_BIN", env!("CARGO_BIN_EXE_retort"))
        .env("RETORT_ROOT", root())
        .env("RETORT_PAPERMILL", &papermill)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("{log}");
    assert!(out.status.success(), "the Jupyter clients' tests failed (log above)");
    // every test ran, but for the conformance suite's cases of features the kernel does not
    // have (a stderr stream, clear_output, the pager) and one jupyter-protocol cannot parse
    const NOT_OFFERED: [&str; 4] = ["'No code stderr'", "'No code clear output'", "'No code page something'", "'No code history pattern'"];
    let skipped: Vec<&str> = log.lines().filter(|l| l.contains("skipped '")).collect();
    assert!(skipped.iter().all(|l| NOT_OFFERED.iter().any(|n| l.contains(n))), "a Jupyter test was skipped: {skipped:?}");
    assert_eq!(skipped.len(), NOT_OFFERED.len(), "{skipped:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn run(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn bad_connection_files_are_clear_errors() {
    let dir = scratch("connection");
    let ports = r#""shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5"#;
    let cases = [
        ("not-json.json", "{ this is not json".to_string(), "not a Jupyter connection file"),
        ("no-ports.json", r#"{"ip": "127.0.0.1", "transport": "tcp", "key": "k", "signature_scheme": "hmac-sha256"}"#.into(), "shell_port"),
        (
            "md5.json",
            format!(r#"{{"ip": "127.0.0.1", "transport": "tcp", "key": "k", "signature_scheme": "hmac-md5", {ports}}}"#),
            "hmac-sha256 only",
        ),
        (
            "no-key.json",
            format!(r#"{{"ip": "127.0.0.1", "transport": "tcp", "key": "", "signature_scheme": "hmac-sha256", {ports}}}"#),
            "only signed messages",
        ),
    ];
    for (name, text, says) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let (code, err) = run(&["kernel", "--no-record", "--connection-file", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(path.to_str().unwrap()) && err.contains(says), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, err) = run(&["kernel", "--no-record", "--connection-file", dir.join("absent.json").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the connection file"), "{err}");
    let (code, err) = run(&["kernel"]);
    assert_eq!(code, 2);
    assert!(err.contains("--connection-file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_kernelspec_installs_and_uninstalls() {
    let dir = scratch("kernelspec");
    let prefix = dir.to_str().unwrap();
    let (code, err) = run(&["kernel", "install", "--prefix", prefix]);
    assert_eq!(code, 0, "{err}");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("share/jupyter/kernels/retort/kernel.json")).unwrap()).unwrap();
    assert_eq!(spec["argv"][1], "kernel");
    assert_eq!(spec["argv"][3], "{connection_file}");
    assert_eq!(spec["display_name"], "retort (Rhai)");
    assert_eq!(run(&["kernel", "uninstall", "--prefix", prefix]).0, 0);
    assert!(!dir.join("share/jupyter/kernels/retort").exists());
    let (code, err) = run(&["kernel", "uninstall", "--prefix", prefix]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to uninstall"), "{err}");
    let out = bin().args(["kernel", "install", "--sys-prefix"]).env_remove("VIRTUAL_ENV").env_remove("CONDA_PREFIX").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no virtual environment is active"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn notebook(cells: &[(&str, &str)]) -> String {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .enumerate()
        .map(|(k, (kind, source))| {
            let mut c = serde_json::json!({"cell_type": kind, "id": format!("c{k}"), "metadata": {}, "source": source});
            if *kind == "code" {
                c["outputs"] = serde_json::json!([]);
                c["execution_count"] = serde_json::Value::Null;
            }
            c
        })
        .collect();
    serde_json::json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).to_string()
}

fn outputs(path: &Path) -> Vec<serde_json::Value> {
    let nb: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    nb["cells"].as_array().unwrap().iter().filter(|c| c["cell_type"] == "code").map(|c| c["outputs"].clone()).collect()
}

#[test]
fn an_ipynb_runs_without_jupyter() {
    let dir = scratch("ipynb");
    let nb = dir.join("t.ipynb");
    std::fs::write(
        &nb,
        notebook(&[
            ("markdown", "# a title"),
            ("code", "let x = 20;\nprint(\"x is \" + x);"),
            ("code", "fn twice(v) { v * 2 }\ntwice(x) + 2"),
            ("code", "table([#{ a: 1, b: \"<b>\" }]);"),
        ]),
    )
    .unwrap();
    let (code, err) = run(&["notebook", "run", "--no-record", nb.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let o = outputs(&nb);
    assert_eq!(o[0], serde_json::json!([{"output_type": "stream", "name": "stdout", "text": ["x is 20\n"]}]));
    assert_eq!(o[1][0]["output_type"], "execute_result");
    assert_eq!(o[1][0]["data"]["text/plain"], serde_json::json!(["42"]));
    assert_eq!(o[1][0]["execution_count"], 2);
    let html = o[2][0]["data"]["text/html"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<String>();
    assert!(html.contains("<td>&lt;b&gt;</td>"), "{html}");
    assert_eq!(o[2][0]["data"]["text/markdown"].as_array().unwrap()[0], "| a | b |\n");
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&nb).unwrap()).unwrap();
    assert_eq!(written["metadata"]["kernelspec"]["name"], "retort");
    assert_eq!(written["nbformat_minor"], 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_cell_stops_an_ipynb_at_its_line_and_column() {
    let dir = scratch("ipynb-fails");
    let nb = dir.join("f.ipynb");
    std::fs::write(&nb, notebook(&[("code", "let a = 1;"), ("code", "let a = 2;\nlet b = a +;"), ("code", "print(3);")])).unwrap();
    let (code, err) = run(&["notebook", "run", "--no-record", nb.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let o = outputs(&nb);
    assert_eq!(o[1][0]["output_type"], "error");
    let tb: Vec<&str> = o[1][0]["traceback"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(tb.iter().any(|l| l.contains(":2:")), "{tb:?}");
    assert!(tb.contains(&"2 | let b = a +;"), "{tb:?}");
    assert_eq!(o[2], serde_json::json!([]), "later cells are not run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_notebooks_are_clear_errors_and_stay_unchanged() {
    let dir = scratch("ipynb-bad");
    let cases = [
        ("empty.ipynb", "".to_string(), "not a Jupyter notebook"),
        ("text.ipynb", "hello".to_string(), "not a Jupyter notebook"),
        ("no-cells.ipynb", r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}"#.to_string(), "cells"),
        ("v5.ipynb", r#"{"nbformat": 5, "nbformat_minor": 0, "metadata": {}, "cells": []}"#.to_string(), "nbformat"),
        ("bad-cell.ipynb", r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}"#.to_string(), "cell at index 0"),
        (
            "python.ipynb",
            r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "cells": []}"#
                .to_string(),
            "kernel is 'python3'",
        ),
    ];
    for (name, text, says) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &text).unwrap();
        let (code, err) = run(&["notebook", "run", "--no-record", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(path.to_str().unwrap()) && err.contains(says), "{name}: {err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{name} is unchanged");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn markdown_and_ipynb_convert_both_ways() {
    let dir = scratch("convert");
    let md = root().join("docs/notebooks/wsl-walkthrough.md");
    let nb = dir.join("w.ipynb");
    let back = dir.join("w.md");
    assert_eq!(run(&["notebook", "convert", md.to_str().unwrap(), "-o", nb.to_str().unwrap()]).0, 0);
    assert_eq!(run(&["notebook", "convert", nb.to_str().unwrap(), "-o", back.to_str().unwrap()]).0, 0);
    // the same cells: outputs and the header are what running makes again
    let strip = |p: &Path| retort::notebook::strip(&retort::notebook::without_header(&std::fs::read_to_string(p).unwrap()));
    let squeeze = |s: String| s.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n");
    assert_eq!(squeeze(strip(&back)), squeeze(strip(&md)));
    let (code, err) = run(&["notebook", "convert", md.to_str().unwrap(), "-o", dir.join("x.md").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("neither is .ipynb"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn parameters_are_checked_before_any_cell_runs() {
    let dir = scratch("params");
    let nb = dir.join("p.ipynb");
    let mut text =
        notebook(&[("code", "let temperature = 4.0;\nlet alpha = 2.25;"), ("code", "print(`T = ${temperature}`);"), ("code", "")]);
    text = text.replacen(r#""metadata":{}"#, r#""metadata":{"tags":["parameters"]}"#, 1);
    std::fs::write(&nb, &text).unwrap();
    // run once: outputs in place
    assert_eq!(run(&["notebook", "run", "--no-record", nb.to_str().unwrap()]).0, 0);
    let before = std::fs::read_to_string(&nb).unwrap();
    assert_eq!(outputs(&nb)[1][0]["text"], serde_json::json!(["T = 4.0\n"]));
    // an empty cell is not run, as nbclient skips it
    let counts: Vec<serde_json::Value> = serde_json::from_str::<serde_json::Value>(&before).unwrap()["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["execution_count"].clone())
        .collect();
    assert_eq!(counts, [serde_json::json!(1), serde_json::json!(2), serde_json::Value::Null]);
    // a misspelt parameter: exit 2 before anything runs, the notebook untouched
    let (code, err) = run(&["notebook", "run", "--no-record", nb.to_str().unwrap(), "--set", "temprature=2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'temprature' is not declared") && err.contains("did you mean 'temperature'"), "{err}");
    assert_eq!(std::fs::read_to_string(&nb).unwrap(), before);
    // a good one reaches the cells, as a float like its default
    assert_eq!(run(&["notebook", "run", "--no-record", nb.to_str().unwrap(), "--set", "temperature=2"]).0, 0);
    assert_eq!(outputs(&nb)[1][0]["text"], serde_json::json!(["T = 2.0\n"]));
    // parameters without a parameters cell
    let plain = dir.join("plain.ipynb");
    std::fs::write(&plain, notebook(&[("code", "print(1);")])).unwrap();
    let (code, err) = run(&["notebook", "run", "--no-record", plain.to_str().unwrap(), "--set", "x=1"]);
    assert_eq!(code, 2);
    assert!(err.contains("no code cell is tagged `parameters`"), "{err}");
    // the tag survives a round trip through Markdown, where ```rhai parameters takes --set too
    let md = dir.join("p.md");
    assert_eq!(run(&["notebook", "convert", nb.to_str().unwrap(), "-o", md.to_str().unwrap()]).0, 0);
    assert!(std::fs::read_to_string(&md).unwrap().contains("```rhai parameters\n"));
    let (code, err) = run(&["notebook", "run", "--no-record", md.to_str().unwrap(), "--set", "temperature=3"]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&md).unwrap().contains("T = 3.0"));
    let back = dir.join("back.ipynb");
    assert_eq!(run(&["notebook", "convert", md.to_str().unwrap(), "-o", back.to_str().unwrap()]).0, 0);
    let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&back).unwrap()).unwrap();
    assert_eq!(back["cells"][0]["metadata"]["tags"], serde_json::json!(["parameters"]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn where_a_notebook_goes_is_checked_first_and_links_and_modes_are_kept() {
    let dir = scratch("outputs");
    let nb = dir.join("n.ipynb");
    std::fs::write(&nb, notebook(&[("code", "print(1);")])).unwrap();
    let (code, err) = run(&["notebook", "run", "--no-record", nb.to_str().unwrap(), "-o", dir.join("absent/x.ipynb").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, err) = run(&["notebook", "run", "--no-record", nb.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is a folder"), "{err}");
    // in place through a symbolic link: the linked file gets the outputs, keeps its mode
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&nb, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link.ipynb");
        std::os::unix::fs::symlink(&nb, &link).unwrap();
        assert_eq!(run(&["notebook", "run", "--no-record", link.to_str().unwrap()]).0, 0);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::metadata(&nb).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(outputs(&nb)[0][0]["text"], serde_json::json!(["1\n"]));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_kernels_flags_are_checked_at_install() {
    let dir = scratch("install-flags");
    let (code, err) = run(&["kernel", "install", "--prefix", dir.to_str().unwrap(), "--", "--bogus-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("the kernel's flags after --") && err.contains("--bogus-flag"), "{err}");
    assert!(!dir.join("share/jupyter/kernels/retort/kernel.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C during `notebook run` stops the running cell's training between batches and writes
/// the notebook with the cells that ran.
#[cfg(unix)]
#[test]
fn ctrl_c_writes_what_ran() {
    let dir = scratch("ctrl-c");
    let nb = dir.join("long.ipynb");
    let fit = "let d = dataset(\"digits\", #{});\nlet m = model(\"mlp\", #{ input: d.input, hidden: [64], classes: d.classes });\nlet r = fit(m, d, #{ epochs: 100000 });";
    std::fs::write(&nb, notebook(&[("code", "print(\"first\");"), ("code", fit), ("code", "print(\"never\");")])).unwrap();
    let child = bin().args(["notebook", "run", "--no-record", nb.to_str().unwrap()]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cell 2 (In [2]) failed: Interrupted"), "{err}");
    let o = outputs(&nb);
    assert_eq!(o[0][0]["text"], serde_json::json!(["first\n"]));
    assert_eq!(o[1].as_array().unwrap().last().unwrap()["ename"], "Interrupted");
    assert_eq!(o[2], serde_json::json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}
