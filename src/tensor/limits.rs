//! Size limits: every size that comes from a script, a flag or a file header is multiplied
//! with checked arithmetic and held to a memory cap before anything is allocated, so a huge or
//! corrupt size is an error naming its source, never a capacity-overflow panic or an
//! allocation abort.
//!
//! The cap bounds one allocation (a tensor's values, a file's payload). It defaults to three
//! quarters of the machine's physical memory (16 GiB where that cannot be read) and is set by
//! `RETORT_MAX_MEMORY` (bytes, or with a `K`, `M`, `G` or `T` suffix) or [`set_memory_cap`]
//! (`retort --max-memory`).

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

/// 0: not yet read from the environment.
static CAP: AtomicU64 = AtomicU64::new(0);

/// Parses `8G`, `8GB`, `8GiB`, `512M`, `1048576` (bytes; K, M, G, T are powers of 1024).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix("ib"))
        .or_else(|| t.strip_suffix('B').filter(|r| r.ends_with(|c: char| c.is_ascii_alphabetic())))
        .unwrap_or(t);
    let (digits, scale) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (&t[..i], 1u64 << shift)
        }
        _ => (t, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(scale).filter(|v| *v > 0)
}

fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The largest single allocation, in bytes.
pub fn memory_cap() -> u64 {
    match CAP.load(Ordering::Relaxed) {
        0 => {
            let cap = std::env::var("RETORT_MAX_MEMORY")
                .ok()
                .and_then(|v| parse_bytes(&v))
                .unwrap_or_else(|| physical_memory().map_or(16 << 30, |m| m / 4 * 3));
            CAP.store(cap, Ordering::Relaxed);
            cap
        }
        cap => cap,
    }
}

/// Sets the cap for this process (`--max-memory`).
pub fn set_memory_cap(bytes: u64) {
    CAP.store(bytes.max(1), Ordering::Relaxed);
}

/// `a * b`, or an error naming `what` when it overflows.
pub fn mul(op: &'static str, what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::invalid(op, format!("{what}: {a} x {b} overflows the address space")))
}

/// Checks that `count` items of `item_bytes` each fit under the memory cap.
pub fn fits(op: &'static str, what: &str, count: usize, item_bytes: usize) -> Result<usize> {
    let bytes = mul(op, what, count, item_bytes)? as u64;
    let cap = memory_cap();
    if bytes > cap {
        return Err(Error::invalid(
            op,
            format!(
                "{what} needs {} ({count} values), over the memory cap of {}; set RETORT_MAX_MEMORY (or --max-memory) to allow more",
                human(bytes),
                human(cap)
            ),
        ));
    }
    Ok(count)
}

/// The number of f32 values of `shape`, checked: no overflow, and within the memory cap.
///
/// The non-zero dims must multiply within `usize` too, even when a zero dim leaves the tensor
/// empty: every product of some of its dims (strides, a reduction's output) then fits.
pub fn numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    let nonzero = shape.iter().filter(|d| **d > 0).try_fold(1usize, |n, &d| n.checked_mul(d));
    let Some(nonzero) = nonzero else {
        return Err(Error::invalid(op, format!("shape {shape:?}: its dims multiply past 2^64")));
    };
    let n = if shape.contains(&0) { 0 } else { nonzero };
    fits(op, &format!("shape {shape:?}"), n, std::mem::size_of::<f32>())
}

/// `n` copies of `value`, the allocation checked: a size under a raised cap that the machine
/// cannot provide is an error, not an abort.
pub fn filled(op: &'static str, n: usize, value: f32) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::invalid(op, format!("cannot allocate {} for {n} values", human(n as u64 * 4))))?;
    v.resize(n, value);
    Ok(v)
}

/// `1.5 GiB`-style sizes for messages.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("1B"), None);
        assert_eq!(parse_bytes(""), None);
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
    }

    #[test]
    fn overflowing_and_huge_shapes_are_errors() {
        let e = numel("zeros", &[usize::MAX, 2]).unwrap_err().to_string();
        assert!(e.contains("2^64"), "{e}");
        let e = numel("zeros", &[100_000, 100_000, 1000]).unwrap_err().to_string();
        assert!(e.contains("memory cap"), "{e}");
        assert_eq!(numel("zeros", &[2, 3]).unwrap(), 6);
        assert_eq!(numel("zeros", &[0, 1 << 40]).unwrap(), 0);
        assert!(numel("zeros", &[0, usize::MAX, 2]).is_err());
    }
}
