//! The expression tree and its canonical printed form.

use std::fmt;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    And,
    Or,
}

/// Binding strength, loosest first. Used by the parser's grammar levels and
/// by the printer to decide where parentheses are needed.
pub(crate) const PREC_OR: u8 = 1;
pub(crate) const PREC_AND: u8 = 2;
pub(crate) const PREC_CMP: u8 = 3;
pub(crate) const PREC_ADD: u8 = 4;
pub(crate) const PREC_MUL: u8 = 5;
pub(crate) const PREC_UNARY: u8 = 6;
pub(crate) const PREC_ATOM: u8 = 7;

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
        }
    }

    pub(crate) fn prec(self) -> u8 {
        match self {
            BinOp::Or => PREC_OR,
            BinOp::And => PREC_AND,
            BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le | BinOp::Eq | BinOp::Ne => PREC_CMP,
            BinOp::Add | BinOp::Sub => PREC_ADD,
            BinOp::Mul | BinOp::Div => PREC_MUL,
        }
    }
}

/// A built-in function other than `FILL` (whose second argument has its own syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    If,
    Abs,
    Ceil,
    Floor,
    Log,
    Log10,
    Sqrt,
    Min,
    Max,
    Avg,
    Sum,
    Rate,
    Diff,
    Rsum,
}

/// The name a function call resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Callee {
    Fill,
    Func(Func),
}

/// Allowed argument counts: `min..=max` (`max == None`: unbounded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arity {
    pub min: usize,
    pub max: Option<usize>,
}

const fn exactly(n: usize) -> Arity {
    Arity {
        min: n,
        max: Some(n),
    }
}

/// Every function, in the order error messages list them.
pub(crate) const FUNCTIONS: &[(&str, Callee, Arity)] = &[
    ("FILL", Callee::Fill, exactly(2)),
    (
        "IF",
        Callee::Func(Func::If),
        Arity {
            min: 2,
            max: Some(3),
        },
    ),
    ("ABS", Callee::Func(Func::Abs), exactly(1)),
    ("CEIL", Callee::Func(Func::Ceil), exactly(1)),
    ("FLOOR", Callee::Func(Func::Floor), exactly(1)),
    ("LOG", Callee::Func(Func::Log), exactly(1)),
    ("LOG10", Callee::Func(Func::Log10), exactly(1)),
    ("SQRT", Callee::Func(Func::Sqrt), exactly(1)),
    ("MIN", Callee::Func(Func::Min), Arity { min: 1, max: None }),
    ("MAX", Callee::Func(Func::Max), Arity { min: 1, max: None }),
    ("AVG", Callee::Func(Func::Avg), Arity { min: 1, max: None }),
    ("SUM", Callee::Func(Func::Sum), Arity { min: 1, max: None }),
    ("RATE", Callee::Func(Func::Rate), exactly(1)),
    ("DIFF", Callee::Func(Func::Diff), exactly(1)),
    ("RSUM", Callee::Func(Func::Rsum), exactly(2)),
];

pub(crate) fn lookup_function(name: &str) -> Option<(Callee, Arity)> {
    FUNCTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, c, a)| (c, a))
}

impl Func {
    pub(crate) fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|(_, c, _)| *c == Callee::Func(self))
            .map_or("?", |(n, _, _)| n)
    }
}

/// The second argument of `FILL`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FillWith {
    /// A number or another series.
    Value(Box<Node>),
    /// Carry the last present value forward.
    Repeat,
    /// Interpolate linearly between the present values around a gap.
    Linear,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Num(f64),
    Metric(String),
    Neg(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
    Fill(Box<Node>, FillWith),
}

impl Node {
    fn prec(&self) -> u8 {
        match self {
            Node::Num(_) | Node::Metric(_) | Node::Call(..) | Node::Fill(..) => PREC_ATOM,
            Node::Neg(_) => PREC_UNARY,
            Node::Binary(op, _, _) => op.prec(),
        }
    }

    pub(crate) fn collect_metrics<'n>(&'n self, out: &mut dyn FnMut(&'n str)) {
        match self {
            Node::Num(_) => {}
            Node::Metric(id) => out(id),
            Node::Neg(x) => x.collect_metrics(out),
            Node::Binary(_, l, r) => {
                l.collect_metrics(out);
                r.collect_metrics(out);
            }
            Node::Call(_, args) => args.iter().for_each(|a| a.collect_metrics(out)),
            Node::Fill(s, with) => {
                s.collect_metrics(out);
                if let FillWith::Value(v) = with {
                    v.collect_metrics(out);
                }
            }
        }
    }

    /// Collects the window (in datapoints) of every `RSUM`.
    pub(crate) fn collect_windows(&self, out: &mut dyn FnMut(usize)) {
        match self {
            Node::Num(_) | Node::Metric(_) => {}
            Node::Neg(x) => x.collect_windows(out),
            Node::Binary(_, l, r) => {
                l.collect_windows(out);
                r.collect_windows(out);
            }
            Node::Call(f, args) => {
                if let (Func::Rsum, Some(Node::Num(n))) = (f, args.get(1)) {
                    out(*n as usize);
                }
                args.iter().for_each(|a| a.collect_windows(out));
            }
            Node::Fill(s, with) => {
                s.collect_windows(out);
                if let FillWith::Value(v) = with {
                    v.collect_windows(out);
                }
            }
        }
    }

    /// Collects the metric ids under the right-hand side of every division.
    pub(crate) fn collect_divisors<'n>(&'n self, out: &mut dyn FnMut(&'n str)) {
        match self {
            Node::Num(_) | Node::Metric(_) => {}
            Node::Neg(x) => x.collect_divisors(out),
            Node::Binary(op, l, r) => {
                l.collect_divisors(out);
                r.collect_divisors(out);
                if *op == BinOp::Div {
                    r.collect_metrics(out);
                }
            }
            Node::Call(_, args) => args.iter().for_each(|a| a.collect_divisors(out)),
            Node::Fill(s, with) => {
                s.collect_divisors(out);
                if let FillWith::Value(v) = with {
                    v.collect_divisors(out);
                }
            }
        }
    }

    /// How many datapoints before a bucket its value depends on through
    /// rolling windows: `RSUM(s, n)` looks `n - 1` buckets back (plus what
    /// `s` needs). `RATE`/`DIFF` and whole-series aggregates are not counted.
    pub(crate) fn history(&self) -> usize {
        match self {
            Node::Num(_) | Node::Metric(_) => 0,
            Node::Neg(x) => x.history(),
            Node::Binary(_, l, r) => l.history().max(r.history()),
            Node::Call(Func::Rsum, args) => {
                let inner = args.first().map_or(0, Node::history);
                let n = match args.get(1) {
                    Some(Node::Num(n)) => *n as usize,
                    _ => 1,
                };
                inner.saturating_add(n.saturating_sub(1))
            }
            Node::Call(_, args) => args.iter().map(Node::history).max().unwrap_or(0),
            Node::Fill(s, with) => match with {
                FillWith::Value(v) => s.history().max(v.history()),
                FillWith::Repeat | FillWith::Linear => s.history(),
            },
        }
    }

    /// Writes `self`, parenthesised if it binds looser than `min_prec`.
    fn write_at(&self, f: &mut fmt::Formatter<'_>, min_prec: u8) -> fmt::Result {
        if self.prec() < min_prec {
            f.write_str("(")?;
            fmt::Display::fmt(self, f)?;
            f.write_str(")")
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

fn write_number(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    // `Display` never uses an exponent (1e300 would print 300 digits);
    // `Debug` does for very large/small magnitudes and still round-trips.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        write!(f, "{v}")
    } else {
        write!(f, "{v:?}")
    }
}

/// Prints the canonical form: single spaces around binary operators, `AND`/`OR`
/// spelled as words, parentheses only where precedence requires them.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Num(v) => write_number(f, *v),
            Node::Metric(id) => f.write_str(id),
            Node::Neg(x) => {
                f.write_str("-")?;
                x.write_at(f, PREC_UNARY)
            }
            Node::Binary(op, l, r) => {
                let p = op.prec();
                // Left-associative; comparisons are non-associative.
                let left_min = if p == PREC_CMP { p + 1 } else { p };
                l.write_at(f, left_min)?;
                write!(f, " {} ", op.symbol())?;
                r.write_at(f, p + 1)
            }
            Node::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    fmt::Display::fmt(a, f)?;
                }
                f.write_str(")")
            }
            Node::Fill(s, with) => {
                write!(f, "FILL({s}, ")?;
                match with {
                    FillWith::Value(v) => write!(f, "{v}")?,
                    FillWith::Repeat => f.write_str("REPEAT")?,
                    FillWith::Linear => f.write_str("LINEAR")?,
                }
                f.write_str(")")
            }
        }
    }
}
