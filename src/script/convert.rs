//! Reading Rhai values into Rust: numbers, shapes, option maps with unknown-key suggestions.

use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, INT};

pub type Res<T> = Result<T, Box<EvalAltResult>>;

/// A runtime error for a script (Rhai fills in the call position).
pub fn err<T>(message: impl Into<String>) -> Res<T> {
    Err(message.into().into())
}

/// Turns a library error into a script error.
pub fn lib<T>(r: crate::Result<T>) -> Res<T> {
    r.map_err(|e| e.to_string().into())
}

/// The Rhai type name of a value, as a script author reads it.
pub fn type_of(v: &Dynamic) -> String {
    let t = v.type_name();
    match t.rsplit("::").next().unwrap_or(t) {
        "i64" => "an integer".into(),
        "f64" => "a number".into(),
        "ImmutableString" | "string" => "a string".into(),
        "bool" => "a boolean".into(),
        "Array" | "array" => "an array".into(),
        "Map" | "map" => "a map".into(),
        "FnPtr" => "a function".into(),
        "()" => "nothing (unit)".into(),
        other => format!("a {other}"),
    }
}

/// An f32 (a tensor value, an accuracy, a loss) as the script's f64: the f64 nearest the
/// shortest decimal that round-trips in f32, so it prints as `0.823`, not
/// `0.8230000138282776`, in `print`, interpolation, `to_array`, tables and reports.
pub fn widen(x: f32) -> f64 {
    if !x.is_finite() {
        return x as f64;
    }
    x.to_string().parse().unwrap_or(x as f64)
}

/// [`widen`] as a script value.
pub fn float(x: f32) -> Dynamic {
    Dynamic::from_float(widen(x))
}

/// A script number as f32, refused where a finite number overflows f32 (`1e40` would become
/// infinity silently).
pub fn f32_of(op: &str, x: f64) -> Res<f32> {
    let f = x as f32;
    if x.is_finite() && !f.is_finite() {
        return err(format!("{op}: {x} does not fit in a float32 (largest magnitude 3.4e38)"));
    }
    Ok(f)
}

pub fn as_f64(v: &Dynamic) -> Option<f64> {
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(super) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + (ca != *cb) as usize).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `known` to `word`, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (distance(word, k), *k)).filter(|(d, k)| *d <= 2.max(k.len() / 3)).min().map(|(_, k)| k)
}

/// An options map for built-in `op`, checked against the keys it accepts.
pub struct Opts<'a> {
    op: &'static str,
    map: &'a Map,
}

impl<'a> Opts<'a> {
    pub fn new(op: &'static str, map: &'a Map, known: &[&str]) -> Res<Self> {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                let hint = match suggest(key, known) {
                    Some(s) => format!("did you mean '{s}'?"),
                    None => format!("known options: {}", known.join(", ")),
                };
                return err(format!("{op}: option '{key}' is unknown; {hint}"));
            }
        }
        Ok(Opts { op, map })
    }

    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    fn wrong<T>(&self, key: &str, want: &str, v: &Dynamic) -> Res<T> {
        err(format!("{}: option '{key}' must be {want}, got {}", self.op, type_of(v)))
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Res<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => as_f64(v).map_or_else(|| self.wrong(key, "a number", v), Ok),
        }
    }

    pub fn f32_or(&self, key: &str, default: f32) -> Res<f32> {
        self.f64_or(key, default as f64).map(|v| v as f32)
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Res<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.as_int() {
                Ok(i) if i >= 0 => Ok(i as usize),
                Ok(i) => err(format!("{}: option '{key}' must not be negative, got {i}", self.op)),
                Err(_) => self.wrong(key, "an integer", v),
            },
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Res<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().or_else(|_| self.wrong(key, "true or false", v)),
        }
    }

    pub fn string(&self, key: &str) -> Res<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().into_immutable_string().map(|s| Some(s.to_string())).or_else(|_| self.wrong(key, "a string", v)),
        }
    }

    pub fn dims(&self, key: &str) -> Res<Option<Vec<usize>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => dims(v).map(Some).map_err(|_| {
                format!("{}: option '{key}' must be an integer or an array of positive integers, got {}", self.op, type_of(v)).into()
            }),
        }
    }

    pub fn fn_ptr(&self, key: &str) -> Res<Option<FnPtr>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().try_cast::<FnPtr>().map(Some).map_or_else(|| self.wrong(key, "a closure such as |b| ...", v), Ok),
        }
    }

    pub fn custom<T: Clone + 'static>(&self, key: &str, want: &str) -> Res<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.clone().try_cast::<T>() {
                Some(t) => Ok(Some(t)),
                None => self.wrong(key, want, v),
            },
        }
    }
}

/// A shape: an integer or an array of non-negative integers.
pub fn dims(v: &Dynamic) -> Res<Vec<usize>> {
    if let Ok(i) = v.as_int() {
        return if i >= 0 { Ok(vec![i as usize]) } else { err(format!("dimension {i} is negative")) };
    }
    let arr = v.read_lock::<Array>().ok_or_else(|| format!("expected a shape (array of integers), got {}", type_of(v)))?;
    arr.iter()
        .map(|d| match d.as_int() {
            Ok(i) if i >= 0 => Ok(i as usize),
            Ok(i) => err(format!("shape entries must be non-negative integers, got {i}")),
            _ => err(format!("shape entries must be non-negative integers, got {}", type_of(d))),
        })
        .collect()
}

/// An array of dims as Rhai integers.
pub fn shape_array(shape: &[usize]) -> Array {
    shape.iter().map(|d| Dynamic::from(*d as INT)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("temprature", &["temperature", "alpha"]), Some("temperature"));
        assert_eq!(suggest("zzz", &["temperature", "alpha"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
