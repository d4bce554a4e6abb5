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

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, file: &str, line: usize, column: usize, message: impl Into<String>) {
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

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.list.extend(other.list);
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
        Ok(())
    }
}

/// Config could not be loaded: every problem found, not just the first.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct ConfigError(pub Diagnostics);

fn render_errors(d: &Diagnostics) -> String {
    let n = d.errors().count();
    let mut s = String::new();
    for e in d.errors() {
        s.push_str(&e.to_string());
        s.push('\n');
    }
    s.push_str(&format!("{n} error{}", if n == 1 { "" } else { "s" }));
    s
}
