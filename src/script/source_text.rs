//! Quoting a script: the text of the options a `fit`/`distill` call was written with, so a run
//! record holds each schedule and filter as the script wrote it, not only its last value.

use std::collections::BTreeMap;

/// A cursor over source text that skips strings, characters and comments.
struct Scan<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    /// Moves past the token at the cursor when it is a string, a character literal or a
    /// comment; returns whether it did.
    fn skip_opaque(&mut self) -> bool {
        let t = self.text;
        match t[self.at] {
            q @ (b'"' | b'`' | b'\'') => {
                self.at += 1;
                while self.at < t.len() && t[self.at] != q {
                    self.at += if t[self.at] == b'\\' { 2 } else { 1 };
                }
                self.at = (self.at + 1).min(t.len());
                true
            }
            b'/' if t.get(self.at + 1) == Some(&b'/') => {
                while self.at < t.len() && t[self.at] != b'\n' {
                    self.at += 1;
                }
                true
            }
            b'/' if t.get(self.at + 1) == Some(&b'*') => {
                self.at += 2;
                while self.at + 1 < t.len() && !(t[self.at] == b'*' && t[self.at + 1] == b'/') {
                    self.at += 1;
                }
                self.at = (self.at + 2).min(t.len());
                true
            }
            _ => false,
        }
    }

    /// The pieces of a bracketed list starting at the cursor's opening bracket, split at its
    /// top-level commas, as byte ranges; the cursor ends after the closing bracket.
    fn items(&mut self) -> Option<Vec<(usize, usize)>> {
        let t = self.text;
        let mut depth = 0usize;
        let mut items = Vec::new();
        let mut start = self.at + 1;
        // the last character that is not white space: a `|` after `:`, `,`, `(` or `=` opens a
        // closure's parameter list, whose commas do not split items
        let mut last = b' ';
        while self.at < t.len() {
            if self.skip_opaque() {
                continue;
            }
            let c = t[self.at];
            if c == b'|' && matches!(last, b':' | b',' | b'(' | b'=') {
                self.at += 1;
                while self.at < t.len() && t[self.at] != b'|' {
                    self.at += 1;
                }
                last = b'|';
                self.at += 1;
                continue;
            }
            if !c.is_ascii_whitespace() {
                last = c;
            }
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        items.push((start, self.at));
                        self.at += 1;
                        return Some(items);
                    }
                }
                b',' if depth == 1 => {
                    items.push((start, self.at));
                    start = self.at + 1;
                }
                _ => {}
            }
            self.at += 1;
        }
        None
    }
}

/// `s` from its first token that is not a comment.
fn skip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if s.starts_with("//") {
            s = s.find('\n').map_or("", |i| &s[i..]);
        } else if s.starts_with("/*") {
            s = s.find("*/").map_or("", |i| &s[i + 2..]);
        } else {
            return s;
        }
    }
}

/// One line of text: runs of white space (line breaks included) become one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The options of the call at `line`:`column` (1-based, where the function's name starts) in
/// `text` whose last argument is a map literal `#{ key: value, ... }`: each of `keys` found
/// there with its value's text on one line. Empty when the call's options are not a literal.
pub fn call_options(text: &str, line: usize, column: usize, keys: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let start = line_start + text[line_start..].chars().take(column.saturating_sub(1)).map(char::len_utf8).sum::<usize>();
    let bytes = text.as_bytes();
    // the name, then the argument list
    let mut at = start;
    while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_' || bytes[at].is_ascii_whitespace()) {
        at += 1;
    }
    if bytes.get(at) != Some(&b'(') {
        return out;
    }
    let mut scan = Scan { text: bytes, at };
    let Some(args) = scan.items() else { return out };
    let Some(&(a, b)) = args.last() else { return out };
    let last = &text[a..b];
    if !last.trim_start().starts_with("#{") {
        return out;
    }
    // the map's opening brace
    let map_at = a + last.find("#{").unwrap_or(0) + 1;
    let mut scan = Scan { text: bytes, at: map_at };
    let Some(entries) = scan.items() else { return out };
    for (a, b) in entries {
        let entry = skip_comments(&text[a..b]);
        let Some((key, value)) = entry.split_once(':') else { continue };
        let key = key.trim().trim_matches('"');
        if keys.contains(&key) {
            out.insert(key.to_string(), one_line(value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_quoted_as_written() {
        let text = "let p = 1;\nlet r = distill(t, s, data, #{\n    epochs: 3, // a comment, with \"quotes\" {\n    lr_schedule: |epoch, step| 0.1 / step,\n    temperature: |e| if e < 2 { 4.0 } else { 1.0 },\n    alpha: sched::cosine(2.25, 0.5, 20),\n    filter: |b| b.ce_student < quantile(b.ce_student, 0.9, 0),\n    label: \"a, b }\",\n});\n";
        let o = call_options(text, 2, 9, &["temperature", "alpha", "filter", "lr_schedule"]);
        assert_eq!(o["temperature"], "|e| if e < 2 { 4.0 } else { 1.0 }");
        assert_eq!(o["alpha"], "sched::cosine(2.25, 0.5, 20)");
        assert_eq!(o["filter"], "|b| b.ce_student < quantile(b.ce_student, 0.9, 0)");
        let o = call_options(text, 2, 9, &["lr_schedule"]);
        assert_eq!(o["lr_schedule"], "|epoch, step| 0.1 / step");
        // options held in a variable are not a literal: nothing to quote
        assert!(call_options("let o = #{ alpha: 1.0 };\nfit(m, d, o);\n", 2, 1, &["alpha"]).is_empty());
        // a position that is not a call
        assert!(call_options("let x = 1;\n", 1, 5, &["alpha"]).is_empty());
        assert!(call_options("", 9, 9, &["alpha"]).is_empty());
    }
}
