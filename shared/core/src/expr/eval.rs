//! Evaluation over aligned series.
//!
//! Values are scalars, borrowed input series or owned buffers. Operators write
//! into an owned operand's buffer when there is one, so `100 * errors / requests`
//! allocates exactly one vector (the result), and scalar-only subtrees
//! allocate nothing.

use super::EvalError;
use super::ast::{BinOp, FillWith, Func, Node};
use crate::series::Series;

pub(crate) type Input<'i, 'a> = &'i dyn Fn(&str) -> Option<&'a [Option<f64>]>;

pub(crate) struct Ctx<'i, 'a> {
    pub len: usize,
    /// Grid step in seconds.
    pub step: f64,
    pub input: Input<'i, 'a>,
}

pub(crate) enum Val<'a> {
    Scalar(Option<f64>),
    Slice(&'a [Option<f64>]),
    Owned(Series),
}

/// A read-only view of a value.
#[derive(Clone, Copy)]
enum Src<'v> {
    Scalar(Option<f64>),
    Series(&'v [Option<f64>]),
}

impl Src<'_> {
    #[inline]
    fn at(self, i: usize) -> Option<f64> {
        match self {
            Src::Scalar(x) => x,
            Src::Series(s) => s.get(i).copied().flatten(),
        }
    }
}

impl Val<'_> {
    fn src(&self) -> Src<'_> {
        match self {
            Val::Scalar(x) => Src::Scalar(*x),
            Val::Slice(s) => Src::Series(s),
            Val::Owned(v) => Src::Series(v),
        }
    }

    pub(crate) fn into_series(self, len: usize) -> Series {
        match self {
            Val::Scalar(x) => vec![x; len],
            Val::Slice(s) => s.to_vec(),
            Val::Owned(v) => v,
        }
    }
}

#[inline]
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[inline]
fn truth(x: f64) -> bool {
    x != 0.0
}

#[inline]
fn bool_val(b: bool) -> Option<f64> {
    Some(if b { 1.0 } else { 0.0 })
}

/// Applies `f` elementwise, broadcasting scalars and reusing an owned buffer.
#[inline]
fn zip<'a>(l: Val<'a>, r: Val<'a>, f: impl Fn(Option<f64>, Option<f64>) -> Option<f64>) -> Val<'a> {
    match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(f(a, b)),
        (Val::Owned(mut v), r) => {
            match r.src() {
                Src::Scalar(b) => v.iter_mut().for_each(|x| *x = f(*x, b)),
                Src::Series(s) => v.iter_mut().zip(s).for_each(|(x, &y)| *x = f(*x, y)),
            }
            Val::Owned(v)
        }
        (l, Val::Owned(mut v)) => {
            match l.src() {
                Src::Scalar(a) => v.iter_mut().for_each(|x| *x = f(a, *x)),
                Src::Series(s) => v.iter_mut().zip(s).for_each(|(x, &y)| *x = f(y, *x)),
            }
            Val::Owned(v)
        }
        (Val::Slice(a), Val::Scalar(b)) => Val::Owned(a.iter().map(|&x| f(x, b)).collect()),
        (Val::Scalar(a), Val::Slice(b)) => Val::Owned(b.iter().map(|&y| f(a, y)).collect()),
        (Val::Slice(a), Val::Slice(b)) => {
            Val::Owned(a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect())
        }
    }
}

/// Applies `f` to every datapoint, in place when the buffer is owned.
#[inline]
fn map(v: Val<'_>, f: impl Fn(Option<f64>) -> Option<f64>) -> Val<'_> {
    match v {
        Val::Scalar(x) => Val::Scalar(f(x)),
        Val::Slice(s) => Val::Owned(s.iter().map(|&x| f(x)).collect()),
        Val::Owned(mut v) => {
            v.iter_mut().for_each(|x| *x = f(*x));
            Val::Owned(v)
        }
    }
}

/// Applies `f` to present datapoints; missing stays missing, non-finite results become missing.
#[inline]
fn map_present(v: Val<'_>, f: impl Fn(f64) -> f64) -> Val<'_> {
    map(v, |x| x.and_then(|x| finite(f(x))))
}

/// Both present → `f`; otherwise missing.
#[inline]
fn both(a: Option<f64>, b: Option<f64>, f: impl Fn(f64, f64) -> Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => f(a, b),
        _ => None,
    }
}

/// Combines present values with `f`, ignoring a missing side.
#[inline]
fn either(a: Option<f64>, b: Option<f64>, f: impl Fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => finite(f(a, b)),
        (Some(a), None) => Some(a),
        (None, b) => b,
    }
}

fn binary<'a>(op: BinOp, l: Val<'a>, r: Val<'a>) -> Val<'a> {
    match op {
        BinOp::Add => zip(l, r, |a, b| both(a, b, |a, b| finite(a + b))),
        BinOp::Sub => zip(l, r, |a, b| both(a, b, |a, b| finite(a - b))),
        BinOp::Mul => zip(l, r, |a, b| both(a, b, |a, b| finite(a * b))),
        BinOp::Div => zip(l, r, |a, b| {
            both(a, b, |a, b| if b == 0.0 { None } else { finite(a / b) })
        }),
        BinOp::Gt => zip(l, r, |a, b| both(a, b, |a, b| bool_val(a > b))),
        BinOp::Ge => zip(l, r, |a, b| both(a, b, |a, b| bool_val(a >= b))),
        BinOp::Lt => zip(l, r, |a, b| both(a, b, |a, b| bool_val(a < b))),
        BinOp::Le => zip(l, r, |a, b| both(a, b, |a, b| bool_val(a <= b))),
        BinOp::Eq => zip(l, r, |a, b| both(a, b, |a, b| bool_val(a == b))),
        BinOp::Ne => zip(l, r, |a, b| both(a, b, |a, b| bool_val(a != b))),
        // Three-valued logic: a known false side decides AND, a known true side decides OR.
        BinOp::And => zip(l, r, |a, b| match (a.map(truth), b.map(truth)) {
            (Some(false), _) | (_, Some(false)) => bool_val(false),
            (Some(true), Some(true)) => bool_val(true),
            _ => None,
        }),
        BinOp::Or => zip(l, r, |a, b| match (a.map(truth), b.map(truth)) {
            (Some(true), _) | (_, Some(true)) => bool_val(true),
            (Some(false), Some(false)) => bool_val(false),
            _ => None,
        }),
    }
}

pub(crate) fn eval<'a>(node: &Node, cx: &Ctx<'_, 'a>) -> Result<Val<'a>, EvalError> {
    Ok(match node {
        Node::Num(v) => Val::Scalar(Some(*v)),
        Node::Metric(id) => {
            let s =
                (cx.input)(id).ok_or_else(|| EvalError(format!("no series for metric '{id}'")))?;
            if s.len() != cx.len {
                return Err(EvalError(format!(
                    "series for metric '{id}' has {} datapoints but the grid has {}",
                    s.len(),
                    cx.len
                )));
            }
            Val::Slice(s)
        }
        Node::Neg(x) => map_present(eval(x, cx)?, |v| -v),
        Node::Binary(op, l, r) => {
            let l = eval(l, cx)?;
            let r = eval(r, cx)?;
            binary(*op, l, r)
        }
        Node::Fill(s, with) => {
            let s = eval(s, cx)?;
            match with {
                FillWith::Value(v) => zip(s, eval(v, cx)?, |a, b| a.or(b)),
                FillWith::Repeat => fill_repeat(s),
                FillWith::Linear => fill_linear(s),
            }
        }
        Node::Call(func, args) => call(*func, args, cx)?,
    })
}

fn call<'a>(func: Func, args: &[Node], cx: &Ctx<'_, 'a>) -> Result<Val<'a>, EvalError> {
    let arg = |i: usize| match args.get(i) {
        Some(n) => eval(n, cx),
        None => Err(EvalError(format!(
            "{} is missing argument {}",
            func.name(),
            i + 1
        ))),
    };
    Ok(match func {
        Func::Abs => map_present(arg(0)?, f64::abs),
        Func::Ceil => map_present(arg(0)?, f64::ceil),
        Func::Floor => map_present(arg(0)?, f64::floor),
        Func::Sqrt => map(arg(0)?, |x| x.filter(|&v| v >= 0.0).map(f64::sqrt)),
        Func::Log => map(arg(0)?, |x| {
            x.filter(|&v| v > 0.0).and_then(|v| finite(v.ln()))
        }),
        Func::Log10 => map(arg(0)?, |x| {
            x.filter(|&v| v > 0.0).and_then(|v| finite(v.log10()))
        }),
        Func::Rate => delta(arg(0)?, cx, Some(cx.step)),
        Func::Diff => delta(arg(0)?, cx, None),
        Func::Rsum => {
            let n = match args.get(1) {
                Some(Node::Num(n)) => *n as usize,
                _ => return Err(EvalError("RSUM needs a window in datapoints".to_string())),
            };
            rolling_sum(arg(0)?, n, cx.len)
        }
        Func::If => {
            let cond = arg(0)?;
            let then = arg(1)?;
            let other = if args.len() > 2 { Some(arg(2)?) } else { None };
            if_(cond, &then, other.as_ref(), cx.len)
        }
        Func::Min | Func::Max | Func::Sum | Func::Avg if args.len() == 1 => {
            Val::Scalar(aggregate(func, arg(0)?.src()))
        }
        Func::Min => fold(args, cx, f64::min)?,
        Func::Max => fold(args, cx, f64::max)?,
        Func::Sum => fold(args, cx, |a, b| a + b)?,
        Func::Avg => avg(args, cx)?,
    })
}

/// `IF(cond, then[, other])`: missing condition → missing.
fn if_<'a>(cond: Val<'a>, then: &Val<'a>, other: Option<&Val<'a>>, len: usize) -> Val<'a> {
    let then = then.src();
    let other = other.map(Val::src);
    let pick = |c: Option<f64>, i: usize| match c {
        None => None,
        Some(c) if truth(c) => then.at(i),
        Some(_) => other.and_then(|o| o.at(i)),
    };
    let all_scalar =
        matches!(then, Src::Scalar(_)) && other.is_none_or(|o| matches!(o, Src::Scalar(_)));
    match cond {
        Val::Scalar(c) if all_scalar => Val::Scalar(pick(c, 0)),
        Val::Owned(mut v) => {
            v.iter_mut().enumerate().for_each(|(i, x)| *x = pick(*x, i));
            Val::Owned(v)
        }
        cond => {
            let c = cond.src();
            Val::Owned((0..len).map(|i| pick(c.at(i), i)).collect())
        }
    }
}

/// The aggregate of the present datapoints of one argument (missing if none).
fn aggregate(func: Func, s: Src<'_>) -> Option<f64> {
    let s = match s {
        Src::Scalar(x) => return x,
        Src::Series(s) => s,
    };
    let (mut n, mut sum) = (0usize, 0.0);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in s.iter().flatten() {
        n += 1;
        sum += v;
        min = min.min(*v);
        max = max.max(*v);
    }
    if n == 0 {
        return None;
    }
    finite(match func {
        Func::Min => min,
        Func::Max => max,
        Func::Sum => sum,
        _ => sum / n as f64,
    })
}

/// Elementwise combination across arguments, ignoring missing ones.
fn fold<'a>(
    args: &[Node],
    cx: &Ctx<'_, 'a>,
    f: impl Fn(f64, f64) -> f64 + Copy,
) -> Result<Val<'a>, EvalError> {
    let mut acc = Val::Scalar(None);
    for (i, a) in args.iter().enumerate() {
        let v = eval(a, cx)?;
        acc = if i == 0 {
            v
        } else {
            zip(acc, v, |x, y| either(x, y, f))
        };
    }
    Ok(acc)
}

fn avg<'a>(args: &[Node], cx: &Ctx<'_, 'a>) -> Result<Val<'a>, EvalError> {
    let vals = args
        .iter()
        .map(|a| eval(a, cx))
        .collect::<Result<Vec<_>, _>>()?;
    let srcs: Vec<Src<'_>> = vals.iter().map(Val::src).collect();
    let at = |i: usize| {
        let (mut n, mut sum) = (0usize, 0.0);
        for v in srcs.iter().filter_map(|s| s.at(i)) {
            n += 1;
            sum += v;
        }
        if n == 0 { None } else { finite(sum / n as f64) }
    };
    if srcs.iter().all(|s| matches!(s, Src::Scalar(_))) {
        return Ok(Val::Scalar(at(0)));
    }
    Ok(Val::Owned((0..cx.len).map(at).collect()))
}

/// `DIFF` (`per_second == None`) or `RATE` (`Some(step)`): the change since
/// the previous present datapoint, per elapsed second for `RATE`.
fn delta<'a>(v: Val<'a>, cx: &Ctx<'_, 'a>, per_second: Option<f64>) -> Val<'a> {
    let mut out = v.into_series(cx.len);
    let mut prev: Option<(usize, f64)> = None;
    for (i, x) in out.iter_mut().enumerate() {
        let Some(cur) = *x else { continue };
        *x = prev.and_then(|(j, p)| {
            let d = cur - p;
            match per_second {
                Some(step) => finite(d / ((i - j) as f64 * step)),
                None => finite(d),
            }
        });
        prev = Some((i, cur));
    }
    Val::Owned(out)
}

/// `RSUM(s, n)`: at bucket `i`, the sum of the present datapoints among the
/// `n` buckets ending at `i`. Missing while the window reaches before the
/// first bucket (a partial window would understate the sum) and when no
/// datapoint of the window is present. O(len): a sliding sum with a count of
/// present datapoints, recomputed every `max(n, 1024)` buckets so float
/// drift cannot build up (amortised O(1) per bucket).
fn rolling_sum(v: Val<'_>, n: usize, len: usize) -> Val<'static> {
    let s = v.into_series(len);
    let n = n.max(1);
    let every = n.max(1024);
    let mut out = Vec::with_capacity(s.len());
    let (mut sum, mut present) = (0.0_f64, 0usize);
    for i in 0..s.len() {
        if let Some(x) = s[i] {
            sum += x;
            present += 1;
        }
        if i >= n
            && let Some(x) = s[i - n]
        {
            sum -= x;
            present -= 1;
        }
        if i % every == every - 1 {
            let from = (i + 1).saturating_sub(n);
            sum = s[from..=i].iter().flatten().sum();
        }
        out.push(if i + 1 < n || present == 0 {
            None
        } else {
            finite(sum)
        });
    }
    Val::Owned(out)
}

/// Carries the last present value forward; leading gaps stay missing.
fn fill_repeat(v: Val<'_>) -> Val<'_> {
    if let Val::Scalar(_) = v {
        return v;
    }
    let mut out = v.into_series(0);
    let mut last = None;
    for x in &mut out {
        match *x {
            Some(_) => last = *x,
            None => *x = last,
        }
    }
    Val::Owned(out)
}

/// Interpolates linearly across interior gaps; leading and trailing gaps stay missing.
fn fill_linear(v: Val<'_>) -> Val<'_> {
    if let Val::Scalar(_) = v {
        return v;
    }
    let mut out = v.into_series(0);
    let mut prev: Option<(usize, f64)> = None;
    for i in 0..out.len() {
        let Some(cur) = out[i] else { continue };
        if let Some((j, p)) = prev {
            let span = (i - j) as f64;
            for (k, slot) in out.iter_mut().enumerate().take(i).skip(j + 1) {
                *slot = finite(p + (cur - p) * (k - j) as f64 / span);
            }
        }
        prev = Some((i, cur));
    }
    Val::Owned(out)
}
