//! Translation of an expression to CloudWatch metric math, for the console
//! deep links of alerts ([`Expr::to_metric_math`]).
//!
//! firebell's language looks like CloudWatch metric math, but not every
//! function means the same there. An expression is translated only when
//! every part of it has a CloudWatch equivalent with the same meaning;
//! otherwise there is no translation (`None`), never an approximate one.
//!
//! **Same meaning** is checked against CloudWatch's documented semantics
//! ("Metric math syntax and functions" in the CloudWatch user guide) on
//! complete data: wherever every metric of the expression has a datapoint,
//! the translation gives firebell's value, including where firebell's own
//! operators leave a gap (division by zero, `IF` without an else branch,
//! the first datapoint of `RATE`/`DIFF`, `LOG` outside its domain). Where a
//! metric itself has no datapoint, CloudWatch's documented missing-data
//! rules apply in the console (arithmetic and comparisons between two time
//! series treat a missing value as 0; firebell's give missing), so a graph of
//! a sparse metric may show a point where firebell had none.
//!
//! A series *with gaps* below is one that may lack a datapoint where every
//! metric has one: a division by a series or by 0, `IF` without an else
//! branch (or with one with gaps), `RATE`, `DIFF`, `LOG`, `LOG10`, and what
//! is computed from those (until `FILL`ed with a number). Where such a gap
//! would meet an operator whose missing-data rule differs between the two,
//! there is no translation.
//!
//! | firebell | CloudWatch | condition |
//! |---|---|---|
//! | number, metric id | the same | the id is a console id (`^[a-z][a-zA-Z0-9_]*$`) |
//! | `+ - * /`, unary `-` | the same | not both sides a series that may have gaps (CloudWatch fills them with 0) |
//! | `> >= < <= == !=` | the same | as arithmetic |
//! | `AND`, `OR` (`&&`, `\|\|`) | `AND`, `OR` | both sides series without gaps (firebell's three-valued logic; CloudWatch documents them between two series or two numbers) |
//! | `FILL(s, v)`, `v` a number | `FILL(s, v)` | |
//! | `FILL(s, REPEAT)`, `FILL(s, LINEAR)` | the same | |
//! | `FILL(s, t)`, `t` a series | none | CloudWatch fills a single series only with a scalar |
//! | `IF(c, a[, b])` | `IF(c, a[, b])` | `a` not a series with gaps (CloudWatch gives 0 where a true condition meets a missing `a`) |
//! | `ABS`, `CEIL`, `FLOOR`, `LOG`, `LOG10` | the same | |
//! | `SQRT` | none | CloudWatch metric math has no square root function |
//! | `MIN`/`MAX`/`AVG`/`SUM(a, b, ...)` | `MIN([a, b, ...])`, ... | no argument a series with gaps (CloudWatch's `AVG` of an array counts a missing value as 0); a number argument becomes `TIME_SERIES(n)` |
//! | `MIN`/`MAX`/`AVG`/`SUM(s)` of one series | none | both give one number for the whole series, but over different ranges: firebell over the rule's lookback, the console over the graph's time range |
//! | `RATE(s)` | `RATE(s)` | both per second since the previous datapoint |
//! | `DIFF(s)` | `DIFF(s)` | |
//! | `RSUM(s, n)` | none | classic metric math has no rolling window (`RUNNING_SUM` is cumulative over the whole range) and no time shift to build one |
//!
//! A part without metrics is a number: it is kept as written when it is
//! arithmetic, comparisons and logic over numbers (CloudWatch computes those
//! the same way), and otherwise replaced by its value (`LOG(100)`,
//! `MIN(1, 2)`); when that value is missing (`1 / 0`) there is no
//! translation. `IF` with a number as its condition is replaced by the
//! branch it picks. The whole expression must be a time series (a final
//! result CloudWatch can graph): an expression without metrics has no
//! translation.
//!
//! The text printed uses single spaces around binary operators and
//! parentheses only where needed, as [`Expr`]'s canonical form does, plus
//! parentheses around a logical operand that is itself `AND`/`OR`
//! (CloudWatch documents no precedence between the two). Numbers are
//! printed in plain decimal (no exponent).

use std::fmt::Write as _;

use super::Expr;
use super::ast::{
    BinOp, FillWith, Func, Node, PREC_ADD, PREC_AND, PREC_ATOM, PREC_CMP, PREC_MUL, PREC_OR,
    PREC_UNARY,
};
use super::eval::{self, Val};

/// The longest number printed (plain decimal); a longer one (1e300)
/// makes the expression untranslatable.
const MAX_NUMBER_LEN: usize = 32;

impl Expr {
    /// The expression as CloudWatch metric math with the same meaning, or
    /// `None` when some part of it has no CloudWatch equivalent (such as
    /// `RSUM`, the rolling sums of SLO burn-rate rules). See the module docs
    /// of `expr::metric_math` for the mapping.
    pub fn to_metric_math(&self) -> Option<String> {
        let out = translate(&self.root)?;
        if out.kind == Kind::Scalar || !out.mm.numbers_fit() {
            return None;
        }
        let mut s = String::new();
        out.mm.write(&mut s, 0);
        Some(s)
    }
}

/// What a translated part evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    /// A time series; `gaps`: it may lack a datapoint where every metric
    /// has one (firebell and CloudWatch agree on where, not on what a later
    /// operator makes of it).
    Series {
        gaps: bool,
    },
}

impl Kind {
    fn gaps(self) -> bool {
        matches!(self, Kind::Series { gaps: true })
    }

    fn is_series(self) -> bool {
        matches!(self, Kind::Series { .. })
    }
}

/// A metric-math tree, printed by [`Mm::write`].
#[derive(Debug, Clone)]
enum Mm {
    Num(f64),
    Id(String),
    Word(&'static str),
    Neg(Box<Mm>),
    Binary(BinOp, Box<Mm>, Box<Mm>),
    Call(&'static str, Vec<Mm>),
    Array(Vec<Mm>),
}

struct Out {
    mm: Mm,
    kind: Kind,
}

fn series(mm: Mm, gaps: bool) -> Option<Out> {
    Some(Out {
        mm,
        kind: Kind::Series { gaps },
    })
}

fn has_metrics(node: &Node) -> bool {
    let mut any = false;
    node.collect_metrics(&mut |_| any = true);
    any
}

/// The value of a part without metrics, if it is a present number.
fn constant(node: &Node) -> Option<f64> {
    let no_input = |_: &str| -> Option<&[Option<f64>]> { None };
    let cx = eval::Ctx {
        len: 1,
        step: 60.0,
        input: &no_input,
    };
    match eval::eval(node, &cx) {
        Ok(Val::Scalar(Some(v))) if v.is_finite() => Some(v),
        _ => None,
    }
}

/// A number literal for `v` (a negative one as unary minus).
fn number(v: f64) -> Mm {
    if v == 0.0 {
        Mm::Num(0.0)
    } else if v < 0.0 {
        Mm::Neg(Box::new(Mm::Num(-v)))
    } else {
        Mm::Num(v)
    }
}

/// A part without metrics as written when CloudWatch computes it the same
/// way (numbers, unary minus, binary operators), else `None`.
fn scalar_as_written(node: &Node) -> Option<Mm> {
    Some(match node {
        Node::Num(v) => Mm::Num(*v),
        Node::Neg(x) => Mm::Neg(Box::new(scalar_as_written(x)?)),
        Node::Binary(op, l, r) => Mm::Binary(
            *op,
            Box::new(scalar_as_written(l)?),
            Box::new(scalar_as_written(r)?),
        ),
        Node::Metric(_) | Node::Call(..) | Node::Fill(..) => return None,
    })
}

fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn translate(node: &Node) -> Option<Out> {
    if !has_metrics(node) {
        let v = constant(node)?;
        let mm = scalar_as_written(node).unwrap_or_else(|| number(v));
        return Some(Out {
            mm,
            kind: Kind::Scalar,
        });
    }
    match node {
        // Without metrics: handled above.
        Node::Num(_) => None,
        Node::Metric(id) => valid_id(id).then(|| series(Mm::Id(id.clone()), false))?,
        Node::Neg(x) => {
            let x = translate(x)?;
            Some(Out {
                mm: Mm::Neg(Box::new(x.mm)),
                kind: x.kind,
            })
        }
        Node::Binary(op, l, r) => {
            // Dividing by a number other than 0 leaves no gap.
            let divisor_zero = has_metrics(r) || constant(r) == Some(0.0);
            binary(*op, translate(l)?, translate(r)?, divisor_zero)
        }
        Node::Call(func, args) => call(*func, args),
        Node::Fill(s, with) => fill(s, with),
    }
}

/// `divisor_zero`: `r` may be 0 somewhere (a division by it leaves gaps).
fn binary(op: BinOp, l: Out, r: Out, divisor_zero: bool) -> Option<Out> {
    let both_series = l.kind.is_series() && r.kind.is_series();
    let any_gaps = l.kind.gaps() || r.kind.gaps();
    let kind = match op {
        // Three-valued logic: a missing side decides nothing in firebell,
        // counts as 0 (false) in CloudWatch.
        // CloudWatch documents them between two series or two numbers.
        BinOp::And | BinOp::Or if any_gaps || !both_series => return None,
        BinOp::And | BinOp::Or => Kind::Series { gaps: false },
        // Between two series CloudWatch counts a missing datapoint as 0.
        _ if both_series && any_gaps => return None,
        // A division by zero leaves a gap in both.
        BinOp::Div => Kind::Series {
            gaps: any_gaps || divisor_zero,
        },
        _ => Kind::Series { gaps: any_gaps },
    };
    Some(Out {
        mm: Mm::Binary(op, Box::new(l.mm), Box::new(r.mm)),
        kind,
    })
}

/// The one argument of a per-datapoint function, which must be a series
/// (an argument without metrics makes the call a constant, handled by
/// [`translate`]).
fn series_arg(args: &[Node]) -> Option<Out> {
    let x = translate(args.first()?)?;
    x.kind.is_series().then_some(x)
}

fn call(func: Func, args: &[Node]) -> Option<Out> {
    match func {
        Func::Abs | Func::Ceil | Func::Floor => {
            let x = series_arg(args)?;
            series(Mm::Call(func.name(), vec![x.mm]), x.kind.gaps())
        }
        // Missing outside the domain (x <= 0) in firebell.
        Func::Log | Func::Log10 => {
            let x = series_arg(args)?;
            series(Mm::Call(func.name(), vec![x.mm]), true)
        }
        // Both look back to the previous present datapoint; the first has none.
        Func::Rate | Func::Diff => {
            let x = series_arg(args)?;
            series(Mm::Call(func.name(), vec![x.mm]), true)
        }
        Func::Sqrt | Func::Rsum => None,
        Func::Min | Func::Max | Func::Avg | Func::Sum => aggregate(func, args),
        Func::If => if_(args),
    }
}

/// `MIN`/`MAX`/`AVG`/`SUM` across two or more arguments: elementwise over an
/// array of series. One argument aggregates a whole range, which is not the
/// same range in the console: no translation.
fn aggregate(func: Func, args: &[Node]) -> Option<Out> {
    if args.len() < 2 {
        return None;
    }
    let mut items = Vec::with_capacity(args.len());
    for a in args {
        let x = translate(a)?;
        match x.kind {
            Kind::Scalar => items.push(Mm::Call("TIME_SERIES", vec![x.mm])),
            Kind::Series { gaps: false } => items.push(x.mm),
            Kind::Series { gaps: true } => return None,
        }
    }
    series(Mm::Call(func.name(), vec![Mm::Array(items)]), false)
}

fn if_(args: &[Node]) -> Option<Out> {
    let cond = args.first()?;
    let then = args.get(1)?;
    let other = args.get(2);
    if !has_metrics(cond) {
        // firebell picks one branch for every datapoint.
        let c = constant(cond)?;
        return match (c != 0.0, other) {
            (true, _) => translate(then),
            (false, Some(o)) => translate(o),
            (false, None) => None,
        };
    }
    let c = translate(cond)?;
    let t = translate(then)?;
    // CloudWatch gives 0 where the condition is true and the series has no
    // datapoint; firebell gives missing.
    if t.kind.gaps() {
        return None;
    }
    let mut gaps = c.kind.gaps();
    let mut mms = vec![c.mm, t.mm];
    match other {
        Some(o) => {
            let o = translate(o)?;
            gaps |= o.kind.gaps();
            mms.push(o.mm);
        }
        None => gaps = true,
    }
    series(Mm::Call("IF", mms), gaps)
}

fn fill(s: &Node, with: &FillWith) -> Option<Out> {
    let s = translate(s)?;
    if !s.kind.is_series() {
        return None;
    }
    match with {
        FillWith::Value(v) => {
            let v = translate(v)?;
            if v.kind != Kind::Scalar {
                return None;
            }
            series(Mm::Call("FILL", vec![s.mm, v.mm]), false)
        }
        // Leading (and for LINEAR trailing) gaps stay.
        FillWith::Repeat => series(
            Mm::Call("FILL", vec![s.mm, Mm::Word("REPEAT")]),
            s.kind.gaps(),
        ),
        FillWith::Linear => series(
            Mm::Call("FILL", vec![s.mm, Mm::Word("LINEAR")]),
            s.kind.gaps(),
        ),
    }
}

impl Mm {
    fn prec(&self) -> u8 {
        match self {
            Mm::Num(_) | Mm::Id(_) | Mm::Word(_) | Mm::Call(..) | Mm::Array(_) => PREC_ATOM,
            Mm::Neg(_) => PREC_UNARY,
            Mm::Binary(op, _, _) => op.prec(),
        }
    }

    /// Writes `self`, parenthesised if it binds looser than `min_prec`.
    fn write(&self, out: &mut String, min_prec: u8) {
        let paren = self.prec() < min_prec;
        if paren {
            out.push('(');
        }
        match self {
            Mm::Num(v) => {
                let _ = write!(out, "{v}");
            }
            Mm::Id(id) => out.push_str(id),
            Mm::Word(w) => out.push_str(w),
            Mm::Neg(x) => {
                out.push('-');
                x.write(out, PREC_UNARY);
            }
            Mm::Binary(op, l, r) => {
                let p = op.prec();
                let (left_min, right_min) = match p {
                    // Comparisons are non-associative.
                    PREC_CMP => (p + 1, p + 1),
                    // No documented precedence between AND and OR: a
                    // logical operand is always parenthesised.
                    PREC_OR | PREC_AND => (PREC_CMP, PREC_CMP),
                    _ => (p, p + 1),
                };
                l.write(out, left_min);
                let _ = write!(out, " {} ", op.symbol());
                r.write(out, right_min);
            }
            Mm::Call(name, args) => {
                out.push_str(name);
                out.push('(');
                write_list(out, args);
                out.push(')');
            }
            Mm::Array(items) => {
                out.push('[');
                write_list(out, items);
                out.push(']');
            }
        }
        if paren {
            out.push(')');
        }
    }

    /// Whether every number prints within [`MAX_NUMBER_LEN`].
    fn numbers_fit(&self) -> bool {
        match self {
            Mm::Num(v) => v.is_finite() && format!("{v}").len() <= MAX_NUMBER_LEN,
            Mm::Id(_) | Mm::Word(_) => true,
            Mm::Neg(x) => x.numbers_fit(),
            Mm::Binary(_, l, r) => l.numbers_fit() && r.numbers_fit(),
            Mm::Call(_, items) | Mm::Array(items) => items.iter().all(Mm::numbers_fit),
        }
    }
}

fn write_list(out: &mut String, items: &[Mm]) {
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        a.write(out, 0);
    }
}

// The printer's levels are firebell's.
const _: () = {
    assert!(PREC_OR < PREC_AND && PREC_AND < PREC_CMP && PREC_CMP < PREC_ADD);
    assert!(PREC_ADD < PREC_MUL && PREC_MUL < PREC_UNARY && PREC_UNARY < PREC_ATOM);
};

#[cfg(test)]
mod tests {
    use super::*;

    fn mm(src: &str) -> Option<String> {
        Expr::parse(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .to_metric_math()
    }

    /// Each `(firebell, CloudWatch)` pair translates exactly.
    fn check(cases: &[(&str, &str)]) {
        for (src, want) in cases {
            assert_eq!(mm(src).as_deref(), Some(*want), "{src}");
        }
    }

    fn untranslatable(cases: &[&str]) {
        for src in cases {
            assert_eq!(mm(src), None, "{src}");
        }
    }

    #[test]
    fn arithmetic() {
        check(&[
            (
                "100 * FILL(errors, 0) / requests",
                "100 * FILL(errors, 0) / requests",
            ),
            (
                "100*FILL(errors,0)/requests",
                "100 * FILL(errors, 0) / requests",
            ),
            ("a + b - c", "a + b - c"),
            ("a - (b - c)", "a - (b - c)"),
            ("(a + b) * c", "(a + b) * c"),
            ("-(a + b)", "-(a + b)"),
            ("-a * 2", "-a * 2"),
            ("a + -3", "a + -3"),
            ("latency / 1000", "latency / 1000"),
            ("errors / requests * 100", "errors / requests * 100"),
            // Gaps (a division by a series) meeting a number are kept as gaps.
            ("a / b + 1", "a / b + 1"),
            ("(a + 1) / 2 - b", "(a + 1) / 2 - b"),
            ("1e-7 * a", "0.0000001 * a"),
            ("a_1 * 2.5", "a_1 * 2.5"),
        ]);
        untranslatable(&[
            // CloudWatch counts the gap left by `b == 0` as 0; firebell's sum is missing.
            "a / b + c",
            "c - a / b",
            "a / 0 + c",
            // Not console ids.
            "Errors / requests",
            "_a + b",
            // No metric: not a time series.
            "1 + 2",
            // Not printable in plain decimal within bounds.
            "1e300 * a",
        ]);
    }

    #[test]
    fn comparisons() {
        check(&[
            ("errors > 5", "errors > 5"),
            ("a >= b", "a >= b"),
            ("a < b", "a < b"),
            ("a <= 0.5", "a <= 0.5"),
            ("a == b", "a == b"),
            ("a != 0", "a != 0"),
            ("a / b > 0.05", "a / b > 0.05"),
            ("(a > 1) * 100", "(a > 1) * 100"),
        ]);
        untranslatable(&["a / b > c", "RATE(a) < b"]);
    }

    #[test]
    fn logic() {
        check(&[
            ("a > 1 AND b > 2", "a > 1 AND b > 2"),
            ("a > 1 && b < 2", "a > 1 AND b < 2"),
            ("a > 1 || b < 2", "a > 1 OR b < 2"),
            ("a > 1 AND b > 2 OR c > 3", "(a > 1 AND b > 2) OR c > 3"),
            ("a > 1 AND (b > 2 OR c > 3)", "a > 1 AND (b > 2 OR c > 3)"),
            ("a AND b", "a AND b"),
        ]);
        untranslatable(&[
            // A gap beside a true side is missing in firebell, false in CloudWatch.
            "a / b > 1 AND c > 2",
            "c > 2 OR IF(a > 1, a) > 3",
            // A series with a number: undocumented in CloudWatch.
            "a > 1 AND 1",
        ]);
    }

    #[test]
    fn fill() {
        check(&[
            ("FILL(a, 0)", "FILL(a, 0)"),
            ("FILL(a, -1)", "FILL(a, -1)"),
            ("FILL(a, 2 * 3)", "FILL(a, 2 * 3)"),
            ("FILL(a, REPEAT)", "FILL(a, REPEAT)"),
            ("FILL(a, LINEAR)", "FILL(a, LINEAR)"),
            // Filled with a number: no gaps left.
            ("FILL(a / b, 0) + c", "FILL(a / b, 0) + c"),
            ("FILL(a / b, REPEAT) * 2", "FILL(a / b, REPEAT) * 2"),
        ]);
        untranslatable(&[
            // CloudWatch fills a single series only with a scalar.
            "FILL(a, b)",
            // REPEAT and LINEAR leave leading gaps.
            "FILL(a / b, REPEAT) + c",
            "FILL(a / b, LINEAR) + c",
        ]);
    }

    #[test]
    fn if_() {
        check(&[
            ("IF(a > 5, a, b)", "IF(a > 5, a, b)"),
            ("IF(a > 5, a)", "IF(a > 5, a)"),
            ("IF(a, 1, 0)", "IF(a, 1, 0)"),
            ("IF(a > 5, 10, b)", "IF(a > 5, 10, b)"),
            ("IF(a > 5, a) + 1", "IF(a > 5, a) + 1"),
            // The condition may have gaps: both give missing there.
            ("IF(a / b > 1, c, 0)", "IF(a / b > 1, c, 0)"),
            ("IF(a > 1, c, a / b)", "IF(a > 1, c, a / b)"),
            // A number as the condition picks one branch everywhere.
            ("IF(1, a, b)", "a"),
            ("IF(0, a, b)", "b"),
            ("IF(2 > 1, a * 2)", "a * 2"),
        ]);
        untranslatable(&[
            // Without an else branch: gaps, which CloudWatch sums as 0.
            "IF(a > 5, a) + b",
            // CloudWatch gives 0 where the condition holds and `a / b` has a gap.
            "IF(c > 1, a / b, 0)",
            "IF(0, a)",
            "IF(1 / 0, a, b)",
            // Picks a number: not a time series.
            "IF(1, 5, a)",
        ]);
    }

    #[test]
    fn per_datapoint_functions() {
        check(&[
            ("ABS(a - b)", "ABS(a - b)"),
            ("CEIL(a)", "CEIL(a)"),
            ("FLOOR(a / 60)", "FLOOR(a / 60)"),
            ("LOG(a)", "LOG(a)"),
            ("LOG10(a) * 10", "LOG10(a) * 10"),
            ("ABS(LOG(a))", "ABS(LOG(a))"),
        ]);
        untranslatable(&[
            // No square root in CloudWatch metric math.
            "SQRT(a)",
            // LOG leaves a gap outside its domain.
            "LOG(a) + b",
            "ABS(a / b) - c",
        ]);
    }

    #[test]
    fn aggregates_across_arguments() {
        check(&[
            ("MAX(a, b)", "MAX([a, b])"),
            ("MIN(a, b)", "MIN([a, b])"),
            ("AVG(a, b)", "AVG([a, b])"),
            ("SUM(a, b, c)", "SUM([a, b, c])"),
            ("MIN(a, 0)", "MIN([a, TIME_SERIES(0)])"),
            ("MAX(a * 2, -1)", "MAX([a * 2, TIME_SERIES(-1)])"),
            (
                "SUM(FILL(a, 0), FILL(b, 0)) / c",
                "SUM([FILL(a, 0), FILL(b, 0)]) / c",
            ),
        ]);
        untranslatable(&[
            // One series: a number for the whole range, and the ranges differ.
            "MAX(a)",
            "a - AVG(a)",
            "a / SUM(a)",
            "MIN(a) + b",
            // firebell ignores a missing argument; CloudWatch's AVG counts it as 0.
            "AVG(a / b, c)",
            "MAX(RATE(a), b)",
        ]);
    }

    #[test]
    fn rate_and_diff() {
        check(&[
            ("RATE(a)", "RATE(a)"),
            ("DIFF(a)", "DIFF(a)"),
            ("RATE(a) * 60", "RATE(a) * 60"),
            ("RATE(FILL(a, 0))", "RATE(FILL(a, 0))"),
            ("FILL(DIFF(a), 0) + b", "FILL(DIFF(a), 0) + b"),
        ]);
        untranslatable(&["RATE(a) - b", "DIFF(a) / RATE(b)"]);
    }

    #[test]
    fn rolling_sums_have_no_equivalent() {
        untranslatable(&[
            "RSUM(a, 5)",
            "RSUM(FILL(errors, 0), 60) / RSUM(total, 60)",
            "FILL(RSUM(a, 5), 0)",
            "IF(a > 1, RSUM(a, 5), 0)",
        ]);
    }

    #[test]
    fn constants_are_folded_or_kept() {
        check(&[
            ("a * (60 * 60)", "a * (60 * 60)"),
            ("a + MIN(1, 2)", "a + 1"),
            ("a * ABS(-3)", "a * 3"),
            ("a + MAX(-3, -4)", "a + -3"),
            ("a * LOG10(1000)", "a * 3"),
            ("a - FILL(5, 0)", "a - 5"),
            ("(a > 1) == 1", "(a > 1) == 1"),
        ]);
        untranslatable(&["a + 1 / 0", "a + LOG(0)", "a + RATE(5)", "a + RSUM(1, 2)"]);
    }

    /// The SLO burn-rate rules' expressions use RSUM: no translation.
    #[test]
    fn slo_expressions_have_no_translation() {
        let text = r#"
slos:
  - name: Payments
    team: payments
    objective: 99.9
    sli:
      errors: {namespace: Shop, metric: Errors, stat: Sum}
      total: {namespace: Shop, metric: Requests, stat: Sum}
  - name: Latency
    team: payments
    objective: 99
    ticket_fast: true
    sli:
      good: {namespace: Shop, metric: Fast, stat: Sum}
      total: {namespace: Shop, metric: Requests, stat: Sum}
"#;
        let slos = crate::slo::parse_slos("s.yaml", text).unwrap();
        let rules = crate::slo::rules(&slos).unwrap();
        assert_eq!(rules.len(), 7);
        for r in &rules {
            assert!(r.expression_src.contains("RSUM("), "{}", r.expression_src);
            assert_eq!(r.expression.to_metric_math(), None, "{}", r.expression_src);
        }
        // The 1h page of a 99.9% SLO over 30 days, as generated.
        let page = "IF(RSUM(FILL(errors, 0), 5) / RSUM(total, 5) / 0.001 > 14.4, \
            RSUM(FILL(errors, 0), 60) / RSUM(total, 60) / 0.001, \
            MIN(RSUM(FILL(errors, 0), 60) / RSUM(total, 60) / 0.001, \
            RSUM(FILL(errors, 0), 5) / RSUM(total, 5) / 0.001))";
        assert_eq!(rules[0].expression_src, page);
        assert_eq!(mm(page), None);
        // The same shape over plain series translates: only RSUM is missing.
        assert_eq!(
            mm("IF(FILL(errors, 0) / total / 0.001 > 14.4, FILL(errors, 0) / total / 0.001, 0)")
                .as_deref(),
            None,
            "the then branch has gaps (total == 0)"
        );
        assert_eq!(
            mm("IF(errors / 0.001 > 14.4, errors / 0.001, MIN(errors / 0.001, total))").as_deref(),
            Some("IF(errors / 0.001 > 14.4, errors / 0.001, MIN([errors / 0.001, total]))")
        );
    }

    /// Without arrays or nested logic the translation is the canonical form,
    /// so console links of such rules keep their expression text.
    #[test]
    fn canonical_form_is_kept() {
        for src in [
            "100 * FILL(errors, 0) / requests",
            "a / b > 0.05",
            "IF(a > 5, a, b)",
            "RATE(a) * 60",
            "-(a + b) / 2",
            "FILL(a, LINEAR)",
            "a > 1 AND b > 2",
        ] {
            let e = Expr::parse(src).unwrap();
            assert_eq!(e.to_metric_math(), Some(e.to_string()), "{src}");
        }
    }
}
