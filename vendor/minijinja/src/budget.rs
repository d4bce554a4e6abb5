//! firebell patch: bounds on the values a template builds.
//!
//! A per-thread budget, off unless [`set`] installs one. Every operation
//! that builds a string or sequence from its inputs (`~`, `+`, `*`, the
//! growing filters, captured output) charges the size of its result before
//! allocating it: a result over `max_value` bytes, or a render whose results
//! add up to more than `total` bytes, fails with an error instead of
//! allocating.
use std::cell::Cell;

use crate::error::{Error, ErrorKind};
use crate::value::{ObjectRepr, Value};

/// The limits of one render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest string (bytes) or sequence (items) one operation may build.
    pub max_value: usize,
    /// Bytes all operations of the render may build together.
    pub total: usize,
}

thread_local! {
    static LIMITS: Cell<Option<Limits>> = const { Cell::new(None) };
    static SPENT: Cell<usize> = const { Cell::new(0) };
}

/// Installs `limits` for this thread (`None`: no limits) and resets the
/// spent bytes.
pub fn set(limits: Option<Limits>) {
    LIMITS.with(|l| l.set(limits));
    SPENT.with(|s| s.set(0));
}

/// The limits installed on this thread.
pub fn limits() -> Option<Limits> {
    LIMITS.with(|l| l.get())
}

/// Charges a result of `len` bytes (`None`: too large to count).
pub fn charge(len: Option<usize>) -> Result<(), Error> {
    let Some(limits) = limits() else {
        return Ok(());
    };
    let len = match len {
        Some(len) if len <= limits.max_value => len,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "value too large: {} bytes (limit {} bytes)",
                    len.map_or_else(|| "more than usize::MAX".to_string(), |l| l.to_string()),
                    limits.max_value
                ),
            ))
        }
    };
    spend(len, limits)
}

/// Adds `len` bytes to the render's total.
fn spend(len: usize, limits: Limits) -> Result<(), Error> {
    let spent = SPENT.with(|s| s.get()).saturating_add(len);
    if spent > limits.total {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "template built more than {} bytes of values (limit)",
                limits.total
            ),
        ));
    }
    SPENT.with(|s| s.set(spent));
    Ok(())
}

/// Checks a sequence of `n` items (`None`: too large to count).
pub fn check_items(n: Option<usize>) -> Result<(), Error> {
    let Some(limits) = limits() else {
        return Ok(());
    };
    match n {
        Some(n) if n <= limits.max_value => spend(n.saturating_mul(16), limits),
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "sequence too long: {} items (limit {})",
                n.map_or_else(|| "more than usize::MAX".to_string(), |l| l.to_string()),
                limits.max_value
            ),
        )),
    }
}

/// Charges a value a filter, function or method returned.
pub fn charge_value(v: &Value) -> Result<(), Error> {
    if limits().is_none() {
        return Ok(());
    }
    if let Some(s) = v.as_str() {
        return charge(Some(s.len()));
    }
    if let Some(obj) = v.as_object() {
        if matches!(obj.repr(), ObjectRepr::Seq | ObjectRepr::Map | ObjectRepr::Iterable) {
            if let Some(n) = obj.enumerator_len() {
                return check_items(Some(n));
            }
        }
    }
    Ok(())
}

/// Charges `len` bytes written into a capture buffer that then holds
/// `total` bytes.
pub fn charge_capture(total: Option<usize>, len: usize) -> Result<(), Error> {
    match (limits(), total) {
        (None, _) => Ok(()),
        (Some(l), Some(t)) if t <= l.max_value => charge(Some(len)),
        (Some(_), t) => charge(t),
    }
}

/// Checks that a result of `len` bytes could be built, without charging it
/// (the caller's result is charged when it is returned).
pub fn check_len(len: Option<usize>) -> Result<(), Error> {
    let Some(l) = limits() else {
        return Ok(());
    };
    match len {
        Some(n) if n <= l.max_value && SPENT.with(|s| s.get()).saturating_add(n) <= l.total => {
            Ok(())
        }
        _ => charge(len.or(Some(usize::MAX))),
    }
}

/// The widths and precisions a format string asks for, added up.
pub fn format_widths(fmt: &str) -> usize {
    let b = fmt.as_bytes();
    let mut total: usize = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' || b[i] == b'{' {
            let mut j = i + 1;
            let mut n: usize = 0;
            while j < b.len() && j < i + 48 && b"0123456789.-+# :<>^*$_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".contains(&b[j]) {
                if b[j].is_ascii_digit() {
                    n = n.saturating_mul(10).saturating_add(usize::from(b[j] - b'0'));
                } else {
                    total = total.saturating_add(n);
                    n = 0;
                }
                j += 1;
            }
            total = total.saturating_add(n);
            i = j;
        } else {
            i += 1;
        }
    }
    total
}

/// A `fmt::Write` that keeps the first `max` bytes and drops the rest.
#[derive(Debug)]
pub struct Truncating {
    buf: String,
    max: usize,
}

impl Truncating {
    /// An empty writer keeping at most `max` bytes.
    pub fn new(max: usize) -> Truncating {
        Truncating {
            buf: String::new(),
            max,
        }
    }

    /// What was kept.
    pub fn as_str(&self) -> &str {
        &self.buf
    }
}

impl std::fmt::Write for Truncating {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.max.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.buf.push_str(&s[..cut]);
        // Stop the writer: the rest is dropped.
        Err(std::fmt::Error)
    }
}
