//! What a session offers while typing: completions that know where the cursor is (an option
//! key inside `fit(..., #{ ... })`, a value's own properties after `name.`), and documentation
//! for built-ins and for the functions of stdlib and local recipes (`:doc sched::cosine`),
//! with close names suggested. Shared by the REPL and, next, the Jupyter kernel.

use super::convert::distance;
use rhai::Engine;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Where the word being completed sits.
#[derive(Debug, PartialEq)]
pub enum Context<'a> {
    /// A key of the options map of this built-in (`fit(m, d, #{ ep|`).
    OptionKey(&'a str),
    /// A property or method of this variable (`d.tr|`).
    Member(&'a str),
    /// Any name.
    Name,
}

/// The start of the word that ends at `pos` in `line`, and its context.
pub fn context(line: &str, pos: usize) -> (usize, Context<'_>) {
    let before = &line[..pos];
    let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |i| i + 1);
    // `name.word`
    if before[..start].ends_with('.') {
        let head = &before[..start - 1];
        let var_start = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let var = &head[var_start..];
        if !var.is_empty() && !var.starts_with(|c: char| c.is_ascii_digit()) {
            return (start, Context::Member(var));
        }
    }
    // the innermost open bracket before the word
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let bytes = before[..start].as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => stack.push((bytes[i], i)),
            b')' | b']' | b'}' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(&(b'{', brace)) = stack.last().filter(|(_, at)| *at > 0 && bytes[at - 1] == b'#') {
        // a key position: only white space since the map opened or since the last comma
        let since = before[brace + 1..start].rsplit(',').next().unwrap_or("");
        if since.trim().is_empty() {
            // the call whose argument the map is: `name(` below it on the stack
            if let Some(&(b'(', paren)) = stack.len().checked_sub(2).and_then(|k| stack.get(k)) {
                let head = before[..paren].trim_end();
                let name_start = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
                return (start, Context::OptionKey(&head[name_start..]));
            }
        }
    }
    (start, Context::Name)
}

/// A type's name as users know it (`Dataset`, `Tensor`), from a Rust path or a registered name.
fn short_type(engine: &Engine, name: &str) -> String {
    let name = name.trim_start_matches("&mut ").trim_start_matches('&');
    engine.map_type_name(name).rsplit("::").next().unwrap_or(name).to_string()
}

/// The engine's functions: name, first parameter's type, doc text.
fn functions(engine: &Engine) -> Vec<(String, Option<String>, String)> {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let meta: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    meta["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let name = f["name"].as_str().unwrap_or_default().to_string();
            let first = f["params"].as_array().and_then(|p| p.first()).and_then(|p| p["type"].as_str()).map(|t| short_type(engine, t));
            let doc =
                f["docComments"].as_array().map(|d| d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n")).unwrap_or_default();
            (name, first, doc)
        })
        .collect()
}

/// The properties (`train`) and methods (`to_string`) values of each type have, by type name.
pub fn members(engine: &Engine) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, first, doc) in functions(engine) {
        let Some(ty) = first else { continue };
        if doc.is_empty() || name.starts_with("set$") || !name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') {
            continue;
        }
        out.entry(ty).or_default().insert(name.strip_prefix("get$").unwrap_or(&name).to_string());
    }
    out
}

/// The type name of a value as [`members`] keys it.
pub fn type_key(engine: &Engine, v: &rhai::Dynamic) -> String {
    short_type(engine, v.type_name())
}

/// A recipe module's functions: name, parameters, doc comment (`///` lines), from its source.
pub fn recipe_functions(engine: &Engine, source: &str) -> Vec<(String, Vec<String>, String)> {
    let Ok(ast) = engine.compile(source) else { return vec![] };
    ast.iter_functions()
        .filter(|f| f.access != rhai::FnAccess::Private)
        .map(|f| {
            let doc: Vec<String> = f.comments.iter().map(|c| c.trim_start_matches("///").trim().to_string()).collect();
            (f.name.to_string(), f.params.iter().map(|p| p.to_string()).collect(), doc.join("\n"))
        })
        .collect()
}

/// The closest of `known` to `word`: a typo's distance, or the names `word` starts.
pub fn close_names<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = known
        .filter_map(|k| {
            let d = distance(word, k);
            (d <= 2.max(k.len() / 3) || (word.len() >= 3 && k.starts_with(word))).then_some((d, k))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(5).map(|(_, k)| k.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_of_the_word_being_typed() {
        fn at(s: &str) -> (usize, Context<'_>) {
            context(s, s.len())
        }
        assert_eq!(at("fit(m, d, #{ ep"), (13, Context::OptionKey("fit")));
        assert_eq!(at("let r = distill(t, s, d, #{ epochs: 3, tem"), (39, Context::OptionKey("distill")));
        assert_eq!(at("model(\"mlp\", #{ input: 4, "), (26, Context::OptionKey("model")));
        // a value position is not a key position
        assert_eq!(at("fit(m, d, #{ epochs: ep").1, Context::Name);
        // an inner map of another call: the optimizer's keys
        assert_eq!(at("fit(m, d, #{ optimizer: sgd(#{ mo").1, Context::OptionKey("sgd"));
        assert_eq!(at("d.tr"), (2, Context::Member("d")));
        assert_eq!(at("print(data.cl"), (11, Context::Member("data")));
        assert_eq!(at("let x = log_s"), (8, Context::Name));
        assert_eq!(at("1.5").1, Context::Name);
        // a string holding brackets does not confuse it
        assert_eq!(at("fit(m, d, #{ label: \"a { (\", ep").1, Context::OptionKey("fit"));
    }

    #[test]
    fn close_names_catch_typos_and_prefixes() {
        let known = ["distill", "dist", "fit", "dataset"];
        assert_eq!(close_names("distil", known.iter().copied()), ["distill", "dist"]);
        assert!(close_names("zzzz", known.iter().copied()).is_empty());
    }
}
