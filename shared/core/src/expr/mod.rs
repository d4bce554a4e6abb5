//! Metric-math expressions, evaluated by firebell itself over aligned series.
//!
//! The language is CloudWatch metric math flavoured. From loosest to tightest:
//!
//! | level | operators | notes |
//! |---|---|---|
//! | or | `OR`, `\|\|` | left-assoc |
//! | and | `AND`, `&&` | left-assoc |
//! | comparison | `>` `>=` `<` `<=` `==` `!=` | non-associative: `a < b < c` is an error |
//! | additive | `+` `-` | left-assoc |
//! | multiplicative | `*` `/` | left-assoc |
//! | unary | `-x` | |
//! | primary | number, metric id, `FUNC(args)`, `(expr)` | |
//!
//! Numbers are decimal (`1`, `0.5`, `.5`, `1e3`). Metric ids are
//! `[A-Za-z_][A-Za-z0-9_]*` and are case-sensitive; function names and the
//! keywords `AND`, `OR`, `REPEAT`, `LINEAR` are upper case and reserved.
//!
//! Semantics, per bucket of the grid (scalars broadcast to every bucket):
//! - arithmetic with a missing operand is missing; so is a non-finite result
//!   (division by zero, `0/0`, overflow): the output never holds NaN or inf;
//! - comparisons give `1`/`0` (missing if either side is missing); `AND`/`OR`
//!   treat non-zero as true and use three-valued logic: a present false side
//!   decides `AND`, a present true side decides `OR`, otherwise missing;
//! - `FILL(s, v)` replaces missing datapoints with `v` (a number or another
//!   series' value at that bucket); `FILL(s, REPEAT)` carries the last present
//!   value forward; `FILL(s, LINEAR)` interpolates across interior gaps.
//!   Leading (and for `LINEAR` trailing) gaps stay missing;
//! - `IF(c, a[, b])`: `a` where `c` is non-zero, else `b` (missing without `b`);
//!   missing `c` gives missing;
//! - `MIN`/`MAX`/`SUM`/`AVG` with two or more arguments work elementwise and
//!   ignore missing arguments (all missing → missing); with one argument they
//!   aggregate the whole series into a scalar that is broadcast to every bucket
//!   (as CloudWatch's `MAX(m1)`), missing if the series has no datapoint;
//! - `RATE(s)`: change since the previous present datapoint divided by the
//!   seconds between the two buckets; `DIFF(s)`: the change itself. The first
//!   present datapoint gives missing;
//! - `RSUM(s, n)`: the rolling sum of the present datapoints among the last
//!   `n` buckets (this one included); `n` is a whole-number literal. Missing
//!   while the window would reach before the grid (a partial window) and when
//!   no datapoint of the window is present. A missing bucket of a counter is
//!   a bucket with no events, so `RSUM(FILL(errors, 0), 60) / RSUM(requests,
//!   60)` is the error ratio of the last hour of 1-minute data. Rules that
//!   use it look back far enough for every judged bucket to have a full
//!   window ([`Expr::history`]);
//! - `ABS`, `CEIL`, `FLOOR`, `SQRT`, `LOG` (natural), `LOG10`, with missing
//!   outside the domain.
//!
//! Expressions are parsed once into a tree; evaluation walks it with plain
//! vector loops, borrowing input series and reusing intermediate buffers.
//!
//! [`Expr::to_metric_math`] translates an expression to CloudWatch metric
//! math with the same meaning, for console links; `RSUM`, `SQRT` and
//! one-argument `MIN`/`MAX`/`SUM`/`AVG` have no equivalent there (see
//! `metric_math.rs` for the mapping).

mod ast;
mod eval;
mod lexer;
mod metric_math;
mod parser;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

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

/// A parsed expression.
///
/// Equality compares the parsed structure, not the source text: `a+b` equals
/// `a + b` and `(a) + b`. [`Display`](fmt::Display) prints a canonical form
/// that parses back to an equal expression; [`Expr::source`] returns the text
/// as written.
#[derive(Debug, Clone)]
pub struct Expr {
    src: String,
    root: ast::Node,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        Ok(Expr {
            src: src.to_string(),
            root: parser::parse(src)?,
        })
    }

    /// The source text as given to [`Expr::parse`].
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Metric ids the expression references.
    pub fn metric_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        self.root.collect_metrics(&mut |id| {
            if !ids.contains(id) {
                ids.insert(id.to_string());
            }
        });
        ids
    }

    /// Metric ids the expression divides by (`errors / requests`:
    /// `requests`): a ratio of metrics, whose value means little at low
    /// volume. Division by numbers only (`latency / 1000`) gives none.
    pub fn divisors(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        self.root.collect_divisors(&mut |id| {
            if !ids.contains(id) {
                ids.insert(id.to_string());
            }
        });
        ids
    }

    /// The distinct `RSUM` windows of the expression, in datapoints
    /// (an SLO burn-rate rule: its short and long window).
    pub fn rolling_windows(&self) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        self.root.collect_windows(&mut |n| {
            out.insert(n);
        });
        out
    }

    /// How many buckets before a datapoint its value depends on through
    /// rolling windows (`RSUM(s, 60)`: 59). The engine adds this to a rule's
    /// lookback. `RATE`/`DIFF` need one present datapoint before, which the
    /// lookback's margin covers.
    pub fn history(&self) -> usize {
        self.root.history()
    }

    /// Whether the expression is *pointwise and strict*: each datapoint
    /// depends on that bucket's metric values alone (no rolling window,
    /// previous datapoint, whole-series aggregate or carried fill), and is
    /// missing whenever a metric not `FILL`ed with a number is missing.
    /// Numbers, metric ids, `+ - * /`, unary `-`, comparisons, `ABS`,
    /// `CEIL`, `FLOOR` and `FILL(s, number)` are; `AND`, `OR`, `IF`,
    /// `MIN`/`MAX`/`AVG`/`SUM`, `RATE`, `DIFF`, `RSUM`, `LOG`, `SQRT` and
    /// `FILL` with `REPEAT`, `LINEAR` or a series are not. A sentinel alarm
    /// evaluates such an expression on the same bucket as firebell does
    /// (`sentinel`).
    pub fn is_pointwise_strict(&self) -> bool {
        fn ok(n: &ast::Node) -> bool {
            use ast::{BinOp, FillWith, Func, Node};
            match n {
                Node::Num(_) | Node::Metric(_) => true,
                Node::Neg(x) => ok(x),
                Node::Binary(op, l, r) => !matches!(op, BinOp::And | BinOp::Or) && ok(l) && ok(r),
                Node::Call(f, args) => {
                    matches!(f, Func::Abs | Func::Ceil | Func::Floor)
                        && args.len() == 1
                        && args.iter().all(ok)
                }
                Node::Fill(s, FillWith::Value(v)) => matches!(**v, Node::Num(_)) && ok(s),
                Node::Fill(..) => false,
            }
        }
        ok(&self.root)
    }

    /// The metric id if the whole expression is just that id (e.g. `latency`).
    pub fn as_metric(&self) -> Option<&str> {
        match &self.root {
            ast::Node::Metric(id) => Some(id),
            _ => None,
        }
    }

    /// Evaluates over `grid`; `input(id)` returns the aligned series of a metric id,
    /// which must have `grid.len` datapoints. The result has `grid.len` datapoints,
    /// none of them NaN or infinite.
    pub fn eval<'a>(
        &self,
        grid: &Grid,
        input: &dyn Fn(&str) -> Option<&'a [Option<f64>]>,
    ) -> Result<Series, EvalError> {
        let cx = eval::Ctx {
            len: grid.len,
            step: grid.step as f64,
            input,
        };
        let mut out = eval::eval(&self.root, &cx)?.into_series(grid.len);
        // Operators never produce non-finite values, but inputs passed straight
        // through (a bare metric, FILL, IF, MIN/MAX) might carry them.
        for x in &mut out {
            if x.is_some_and(|v| !v.is_finite()) {
                *x = None;
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.root, f)
    }
}

impl FromStr for Expr {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}
