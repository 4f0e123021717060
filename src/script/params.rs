//! Script parameters: a `--config` YAML file, then `--set key=value` pairs over it, seen by the
//! script as `params`; `defaults(#{...})` checks them against the script's own defaults.

use super::convert::{err, suggest, type_of, Res};
use rhai::{Dynamic, Map};
use std::collections::HashMap;
use std::path::Path;

/// The merged parameters and where each dotted key came from (`exp.yaml:3` or `--set`).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub map: Map,
    pub sources: HashMap<String, String>,
}

/// Inserts `v` at the dotted path `parts`, making maps on the way; on a clash returns the part.
fn insert_path(map: &mut Map, parts: &[&str], v: Dynamic) -> Result<(), String> {
    let (first, rest) = parts.split_first().expect("split on '.' gives at least one part");
    if rest.is_empty() {
        map.insert((*first).into(), v);
        return Ok(());
    }
    let mut inner = match map.remove(*first) {
        None => Map::new(),
        Some(d) => d.try_cast::<Map>().ok_or_else(|| first.to_string())?,
    };
    insert_path(&mut inner, rest, v)?;
    map.insert((*first).into(), Dynamic::from_map(inner));
    Ok(())
}

/// The line of each dotted key of a block-style YAML mapping.
fn yaml_key_lines(text: &str) -> HashMap<String, usize> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let Some((key, _)) = trimmed.split_once(':') else { continue };
        let indent = line.len() - trimmed.len();
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        stack.push((indent, key.trim().trim_matches(|c| c == '"' || c == '\'').to_string()));
        out.insert(stack.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>().join("."), i + 1);
    }
    out
}

fn collect_sources(map: &Map, prefix: &str, source: &dyn Fn(&str) -> String, out: &mut HashMap<String, String>) {
    for (k, v) in map {
        let key = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        if let Some(m) = v.read_lock::<Map>() {
            collect_sources(&m, &key, source, out);
        }
        out.insert(key.clone(), source(&key));
    }
}

/// Merges `from` over `into`, maps key by key.
pub(super) fn merge(into: &mut Map, from: Map) {
    for (k, v) in from {
        match (into.get_mut(&k), v.is_map()) {
            (Some(existing), true) if existing.is_map() => {
                let mut inner = existing.clone().cast::<Map>();
                merge(&mut inner, v.cast::<Map>());
                *existing = Dynamic::from_map(inner);
            }
            _ => {
                into.insert(k, v);
            }
        }
    }
}

impl Params {
    /// Reads `config` (YAML) if given, then applies `sets`. Errors name the file and line or the flag.
    pub fn load(config: Option<&Path>, sets: &[String]) -> Result<Params, String> {
        let mut p = Params::default();
        if let Some(path) = config {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read --config {}: {e}", path.display()))?;
            let value: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| match e.location() {
                Some(l) => format!("{}:{}:{}: invalid YAML: {e}", path.display(), l.line(), l.column()),
                None => format!("{}: invalid YAML: {e}", path.display()),
            })?;
            if value.is_null() {
                // an empty file sets nothing
            } else if !value.is_mapping() {
                return Err(format!("{}: the config must be a mapping of parameter names to values", path.display()));
            } else {
                let d: Dynamic = rhai::serde::to_dynamic(&value).map_err(|e| format!("{}: {e}", path.display()))?;
                p.map = d.try_cast::<Map>().ok_or_else(|| format!("{}: the config must be a mapping", path.display()))?;
                let lines = yaml_key_lines(&text);
                let file = path.display().to_string();
                collect_sources(&p.map, "", &|k| lines.get(k).map_or(file.clone(), |l| format!("{file}:{l}")), &mut p.sources);
            }
        }
        let mut set_map = Map::new();
        for set in sets {
            let Some((key, value)) = set.split_once('=') else {
                return Err(format!("--set '{set}' must look like key=value"));
            };
            let parts: Vec<&str> = key.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(format!("--set '{set}': the key '{key}' has an empty part"));
            }
            // the value as a YAML scalar or flow collection, exactly as it would read in a --config file
            let yaml: serde_yaml::Value =
                serde_yaml::from_str(value).map_err(|e| format!("--set '{set}': the value is not valid YAML: {e}"))?;
            let v: Dynamic = rhai::serde::to_dynamic(&yaml).map_err(|e| format!("--set '{set}': {e}"))?;
            insert_path(&mut set_map, &parts, v).map_err(|part| format!("--set '{set}': '{part}' is already a value, not a map"))?;
        }
        collect_sources(&set_map, "", &|k| format!("--set {k}"), &mut p.sources);
        merge(&mut p.map, set_map);
        Ok(p)
    }

    /// `defaults` with the given parameters merged over it. Each given key must exist in
    /// `defaults` with a value of the same kind (an integer may stand for a number).
    pub fn over(&self, defaults: &Map) -> Res<Map> {
        self.merge_level(defaults, &self.map, "")
    }

    fn merge_level(&self, defaults: &Map, given: &Map, prefix: &str) -> Res<Map> {
        let mut out = defaults.clone();
        for (k, v) in given {
            let key = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
            let from = self.sources.get(&key).map_or(String::new(), |s| format!(" (from {s})"));
            let Some(default) = defaults.get(k.as_str()) else {
                let known: Vec<&str> = defaults.keys().map(|k| k.as_str()).collect();
                let hint = suggest(k, &known).map_or(format!("known: {}", known.join(", ")), |s| {
                    format!("did you mean '{}'?", if prefix.is_empty() { s.to_string() } else { format!("{prefix}.{s}") })
                });
                return err(format!("params: '{key}'{from} is not a parameter of this script; {hint}"));
            };
            let merged = match (default.read_lock::<Map>(), v.read_lock::<Map>()) {
                (Some(dm), Some(vm)) => Dynamic::from_map(self.merge_level(&dm, &vm, &key)?),
                (Some(_), None) => return err(format!("params: '{key}'{from} must be a map like its default, got {}", type_of(v))),
                (None, _) => {
                    let same = default.type_name() == v.type_name() || (default.is_float() && v.is_int());
                    if !same {
                        return err(format!(
                            "params: '{key}'{from} must be {} like its default {default}, got {}",
                            type_of(default),
                            type_of(v)
                        ));
                    }
                    if default.is_float() && v.is_int() {
                        Dynamic::from_float(v.as_int().unwrap_or(0) as f64)
                    } else {
                        v.clone()
                    }
                }
            };
            out.insert(k.clone(), merged);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lines_follow_nesting() {
        let lines = yaml_key_lines("epochs: 3\ndistill:\n  temperature: 4\n  alpha: 2\nname: x\n");
        assert_eq!(lines["epochs"], 1);
        assert_eq!(lines["distill.temperature"], 3);
        assert_eq!(lines["distill.alpha"], 4);
        assert_eq!(lines["name"], 5);
    }
}
