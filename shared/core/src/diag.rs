//! Diagnostics: errors and warnings about config files, each naming the
//! file, line, column, the offending value and what was expected.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    /// A short machine-readable code for warnings (lint names); empty for errors.
    pub code: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if !self.code.is_empty() {
            write!(f, " [{}]", self.code)?;
        }
        Ok(())
    }
}

/// The most errors kept (and shown); later ones are only counted
/// ([`Diagnostics::omitted`]) and reported as "... and N more errors". A
/// file of a million mistakes costs neither a million lines nor their memory.
pub const MAX_ERRORS: usize = 100;

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub list: Vec<Diagnostic>,
    /// Errors past [`MAX_ERRORS`], counted but not kept.
    pub omitted: usize,
    /// Errors kept in `list`.
    kept: usize,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, file: &str, line: usize, column: usize, message: impl Into<String>) {
        if self.kept >= MAX_ERRORS {
            self.omitted += 1;
            return;
        }
        self.kept += 1;
        self.list.push(Diagnostic {
            file: file.to_string(),
            line,
            column,
            severity: Severity::Error,
            code: String::new(),
            message: message.into(),
        });
    }

    pub fn warning(
        &mut self,
        file: &str,
        line: usize,
        column: usize,
        code: &str,
        message: impl Into<String>,
    ) {
        self.list.push(Diagnostic {
            file: file.to_string(),
            line,
            column,
            severity: Severity::Warning,
            code: code.to_string(),
            message: message.into(),
        });
    }

    /// Whether the next error will only be counted (the cap is reached):
    /// callers with costly messages can skip building them.
    pub fn is_full(&self) -> bool {
        self.kept >= MAX_ERRORS
    }

    pub fn has_errors(&self) -> bool {
        self.omitted > 0 || self.list.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.omitted += other.omitted;
        for d in other.list {
            if d.severity == Severity::Error {
                if self.kept >= MAX_ERRORS {
                    self.omitted += 1;
                    continue;
                }
                self.kept += 1;
            }
            self.list.push(d);
        }
    }

    /// Sorts by file, line, column; stable for equal positions.
    pub fn sort(&mut self) {
        self.list
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.list {
            writeln!(f, "{d}")?;
        }
        if self.omitted > 0 {
            writeln!(f, "{}", more(self.omitted))?;
        }
        Ok(())
    }
}

/// Config could not be loaded: every problem found, not just the first.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct ConfigError(pub Diagnostics);

fn more(n: usize) -> String {
    format!("... and {n} more error{}", if n == 1 { "" } else { "s" })
}

fn render_errors(d: &Diagnostics) -> String {
    let n = d.errors().count() + d.omitted;
    let mut s = String::new();
    for e in d.errors() {
        s.push_str(&e.to_string());
        s.push('\n');
    }
    if d.omitted > 0 {
        s.push_str(&more(d.omitted));
        s.push('\n');
    }
    s.push_str(&format!("{n} error{}", if n == 1 { "" } else { "s" }));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_past_the_cap_are_counted_not_kept() {
        let mut d = Diagnostics::new();
        for i in 0..2_000_000 {
            d.error("f.yaml", i + 1, 1, "bad");
        }
        d.warning("f.yaml", 1, 1, "w", "kept");
        assert_eq!(d.list.len(), MAX_ERRORS + 1);
        assert_eq!(d.omitted, 2_000_000 - MAX_ERRORS);
        let text = ConfigError(d).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), MAX_ERRORS + 2);
        assert_eq!(lines[0], "f.yaml:1:1: error: bad");
        assert_eq!(lines[MAX_ERRORS], "... and 1999900 more errors");
        assert_eq!(lines[MAX_ERRORS + 1], "2000000 errors");
    }
}
