//! Metric-math expressions, evaluated by firebell itself over aligned series.
//! (Placeholder interface; the full implementation replaces this file.)

use std::collections::BTreeSet;

use crate::series::{Grid, Series};

/// A parse error at a byte offset of the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at offset {offset}")]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

/// An evaluation error (e.g. a metric missing from the inputs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    src: String,
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        Ok(Expr {
            src: src.to_string(),
        })
    }

    /// Metric ids the expression references.
    pub fn metric_ids(&self) -> BTreeSet<String> {
        BTreeSet::from([self.src.trim().to_string()])
    }

    /// Evaluates over `grid`; `input(id)` returns the aligned series of a metric id.
    pub fn eval<'a>(
        &self,
        grid: &Grid,
        input: &dyn Fn(&str) -> Option<&'a [Option<f64>]>,
    ) -> Result<Series, EvalError> {
        let s = input(self.src.trim())
            .ok_or_else(|| EvalError(format!("unknown metric {}", self.src)))?;
        let _ = grid;
        Ok(s.to_vec())
    }
}
