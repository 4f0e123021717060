//! The library's files import each other without a cycle, and `devices.rs` is names only.
//!
//! An edge is a `crate::` or `super::` path in a file's code (comments and `mod tests` left
//! out), to the file of the longest module prefix it names. A parent module declaring its
//! children (`mod x;`, `pub use x::Y`) is the module's structure, not an import, so a
//! `mod.rs` has no edges to its own children; a child naming its parent's items is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file, relative to `src/` (the binary's `main.rs` and `cli/` are not
/// the library).
fn files(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(src()).unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if rel != "cli" {
                files(&path, out);
            }
        } else if rel.ends_with(".rs") && rel != "main.rs" {
            out.push(rel);
        }
    }
}

/// `tensor/conv.rs` -> [tensor, conv]; `tensor/mod.rs` -> [tensor]; `lib.rs` -> [].
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code without line comments and without the `#[cfg(test)] mod tests` block.
fn code(text: &str) -> String {
    let text = text.find("#[cfg(test)]\nmod tests").map_or(text, |i| &text[..i]);
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The module paths a file's code names through `crate::` and `super::`.
fn paths(code: &str, module: &[String], is_mod_rs: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let base: Vec<String> = if is_mod_rs { module.to_vec() } else { module[..module.len().saturating_sub(1)].to_vec() };
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let starts = (i == 0 || !is_ident(bytes[i - 1])) && (rest.starts_with("crate::") || rest.starts_with("super::"));
        if !starts {
            i += 1;
            continue;
        }
        // the leading `crate::` or `super::super::...`
        let mut prefix = Vec::new();
        let mut j = i;
        if rest.starts_with("crate::") {
            j += 7;
        } else {
            // one `super` is `base` (the parent of a file's module); each further one goes up
            let mut supers = 0;
            while bytes[j..].iter().take(7).collect::<String>() == "super::" {
                supers += 1;
                j += 7;
            }
            prefix = base[..base.len().saturating_sub(supers - 1)].to_vec();
        }
        // a path of identifiers, or a `{...}` group of them
        let read_path = |mut k: usize| {
            let mut segs = Vec::new();
            loop {
                let start = k;
                while k < bytes.len() && is_ident(bytes[k]) {
                    k += 1;
                }
                if k == start {
                    break;
                }
                segs.push(bytes[start..k].iter().collect::<String>());
                if bytes.get(k) == Some(&':') && bytes.get(k + 1) == Some(&':') && bytes.get(k + 2).is_some_and(|c| is_ident(*c)) {
                    k += 2;
                } else {
                    break;
                }
            }
            (segs, k)
        };
        // `path::{a, b::c}` groups, or a plain path
        let (segs, mut k) = read_path(j);
        let prefix: Vec<String> = prefix.iter().cloned().chain(segs).collect();
        if bytes.get(k) == Some(&':') && bytes.get(k + 1) == Some(&':') {
            k += 2;
        }
        if bytes.get(k) == Some(&'{') {
            let end = bytes[k..].iter().position(|c| *c == '}').map_or(bytes.len(), |e| k + e);
            let group: String = bytes[k + 1..end].iter().collect();
            for item in group.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let segs = item.split("::").map(str::trim).take_while(|s| !s.is_empty() && s.chars().all(is_ident)).map(str::to_string);
                out.push(prefix.iter().cloned().chain(segs).collect());
            }
            i = end;
        } else {
            out.push(prefix);
            i = k.max(i + 1);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let modules: BTreeMap<Vec<String>, String> = all.iter().map(|f| (module_of(f), f.clone())).collect();
    let resolve = |path: &[String]| (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]).cloned());
    let mut edges = BTreeMap::new();
    for f in &all {
        let module = module_of(f);
        let is_mod_rs = f.ends_with("mod.rs") || f == "lib.rs";
        let text = std::fs::read_to_string(src().join(f)).unwrap();
        let mut to = BTreeSet::new();
        for p in paths(&code(&text), &module, is_mod_rs) {
            let Some(target) = resolve(&p) else { continue };
            let child_of_mine = is_mod_rs && module_of(&target).starts_with(&module) && target != *f;
            if target != *f && target != "lib.rs" && !child_of_mine {
                to.insert(target);
            }
        }
        edges.insert(f.clone(), to);
    }
    edges
}

/// The layer a file belongs to: its top-level module (`tensor/conv.rs` is in `tensor`), but
/// `cuda/check.rs`, which trains models on both devices, sits above `train` on its own.
fn layer(file: &str) -> String {
    if file == "cuda/check.rs" {
        return "cuda/check".into();
    }
    file.split('/').next().unwrap().trim_end_matches(".rs").to_string()
}

/// `g` collapsed onto layers.
fn layers(g: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, to) in g {
        let entry = out.entry(layer(f)).or_default();
        entry.extend(to.iter().map(|t| layer(t)).filter(|l| *l != layer(f)));
    }
    out
}

#[test]
fn no_file_imports_itself_through_others() {
    let edges = graph();
    assert!(edges.len() > 60, "{} files", edges.len());
    assert_no_cycle(&edges, "files");
    // a module as a whole (a type's impls spread over its files) is below what imports it
    assert_no_cycle(&layers(&edges), "modules");
}

fn assert_no_cycle(edges: &BTreeMap<String, BTreeSet<String>>, what: &str) {
    // depth-first search; a back edge is a cycle
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    return Some(stack[at..].iter().cloned().chain([m.clone()]).collect());
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(n, &edges, &mut state, &mut Vec::new()) {
                panic!("an import cycle between {what}: {}", cycle.join(" -> "));
            }
        }
    }
}

#[test]
fn devices_is_names_only_and_the_library_never_names_terminal_crates() {
    let edges = graph();
    assert_eq!(edges["devices.rs"], BTreeSet::from(["error.rs".to_string()]), "devices.rs imports more than the error type");
    // the terminal crates are the binary's (the `cli` feature), never the library's
    let mut all = Vec::new();
    files(&src(), &mut all);
    for f in all {
        let text = code(&std::fs::read_to_string(src().join(&f)).unwrap());
        for krate in ["rustyline::", "indicatif::", "comfy_table::", "clap::", "ctrlc::", "anyhow::"] {
            assert!(!text.contains(krate), "{f} names {krate}");
        }
    }
}

// the analysis itself: super, crate, groups, comments
#[test]
fn paths_read_crate_super_and_groups() {
    let m = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let got = paths(
        &code("use crate::tensor::{Tensor, limits::numel};\nuse super::geom::Geom; // crate::loss\n"),
        &m(&["tensor", "conv"]),
        false,
    );
    assert_eq!(got, vec![m(&["tensor", "Tensor"]), m(&["tensor", "limits", "numel"]), m(&["tensor", "geom", "Geom"])]);
    let got = paths(&code("x = super::super::error::Error; // crate::loss\n"), &m(&["script", "core"]), false);
    assert_eq!(got, vec![m(&["error", "Error"])]);
}
