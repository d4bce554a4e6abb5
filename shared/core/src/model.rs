//! The validated rules model. Everything here has passed [`crate::config`]
//! validation: durations are positive, thresholds finite, expressions parsed
//! and every metric they name is defined.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

/// Label set of an alert instance. Sorted, so it hashes and prints stably.
pub type Labels = BTreeMap<String, String>;

/// Where a value came from in a config file, for error messages and lint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A CloudWatch statistic, spelled as CloudWatch spells it (that string is
/// what `GetMetricData` receives as `Stat`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Stat {
    Sum,
    Average,
    Minimum,
    Maximum,
    SampleCount,
    /// A percentile such as p99 or p99.9 (value in 0..=100).
    Percentile(f64),
    /// An extended statistic over a range of the period's datapoints:
    /// `PR(:300)`, `TM(10%:90%)`, `TC(10:90)`, `tm99`, ...
    Range(RangeStat),
    /// The interquartile mean, `IQM` (the same as `TM(25%:75%)`).
    Iqm,
}

/// Which extended statistic a [`RangeStat`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RangeKind {
    /// `PR`: the percentage of datapoints in the range (lower bound
    /// excluded, upper included); its bounds are values.
    PercentileRank,
    /// `TC`: how many datapoints are in the range.
    TrimmedCount,
    /// `TM`: the mean of the datapoints in the range.
    TrimmedMean,
    /// `TS`: the sum of the datapoints in the range.
    TrimmedSum,
    /// `WM`: the mean with the datapoints outside the range counted as the
    /// range's edges.
    WinsorizedMean,
}

impl RangeKind {
    const ALL: [RangeKind; 5] = [
        RangeKind::PercentileRank,
        RangeKind::TrimmedCount,
        RangeKind::TrimmedMean,
        RangeKind::TrimmedSum,
        RangeKind::WinsorizedMean,
    ];

    /// CloudWatch's name: `PR`, `TC`, `TM`, `TS`, `WM`.
    pub fn code(self) -> &'static str {
        match self {
            RangeKind::PercentileRank => "PR",
            RangeKind::TrimmedCount => "TC",
            RangeKind::TrimmedMean => "TM",
            RangeKind::TrimmedSum => "TS",
            RangeKind::WinsorizedMean => "WM",
        }
    }
}

/// How a [`RangeStat`]'s bounds are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bounds {
    /// Percentages of the datapoints: `TM(10%:90%)`.
    Percent,
    /// Values: `PR(:300)`, `TC(10:90)`.
    Value,
    /// The shorthand `tm99`, `tc90`, `ts90`, `wm99`: the lowest `upper`
    /// percent (`TM(:99%)`), spelled as written.
    Short,
}

/// An extended statistic with bounds (`PR`, `TC`, `TM`, `TS`, `WM`). At
/// least one bound is set; both are finite, the lower below the upper, and
/// percentages are within 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RangeStat {
    pub kind: RangeKind,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub bounds: Bounds,
}

/// What `stat` accepts, for error messages.
pub const EXPECTED_STATS: &str = "Sum, Average, Minimum, Maximum, SampleCount, a percentile such as p99, or an extended statistic: PR(:300), PR(100:300), TC/TM/TS/WM(10%:90%) or (10:90), tm99, tc90, ts90, wm99, IQM";

impl Stat {
    /// Parses CloudWatch's spelling: `Sum`, `Average`, `Minimum`,
    /// `Maximum`, `SampleCount`, `p99`, `p99.9`, `PR(:300)`,
    /// `TM(10%:90%)`, `TC(10:90)`, `tm99`, `IQM`, ...
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "Sum" => Stat::Sum,
            "Average" => Stat::Average,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            "SampleCount" => Stat::SampleCount,
            "IQM" => Stat::Iqm,
            _ => {
                if let Some(rest) = s.strip_prefix('p') {
                    let v: f64 = rest.parse().ok()?;
                    if !(v > 0.0 && v <= 100.0) || rest.starts_with('+') {
                        return None;
                    }
                    return Some(Stat::Percentile(v));
                }
                for kind in RangeKind::ALL {
                    let code = kind.code();
                    if kind != RangeKind::PercentileRank
                        && let Some(rest) = s.strip_prefix(code.to_ascii_lowercase().as_str())
                    {
                        return Some(Stat::Range(RangeStat {
                            kind,
                            lower: None,
                            upper: Some(percent(rest)?),
                            bounds: Bounds::Short,
                        }));
                    }
                    if let Some(rest) = s.strip_prefix(code) {
                        return range(kind, rest).map(Stat::Range);
                    }
                }
                return None;
            }
        })
    }

    /// Whether CloudWatch computes the statistic from the whole
    /// distribution (percentiles, extended statistics): such values cannot
    /// be re-aggregated from finer periods.
    pub fn is_distribution(self) -> bool {
        matches!(self, Stat::Percentile(_) | Stat::Range(_) | Stat::Iqm)
    }
}

/// A plain decimal number (no sign, no exponent, no `inf`/`nan`).
fn plain_number(s: &str) -> Option<f64> {
    let mut digits = 0;
    let mut dots = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' => dots += 1,
            _ => return None,
        }
    }
    if digits == 0 || dots > 1 {
        return None;
    }
    s.parse().ok()
}

/// A percentage above 0 and at most 100 (`99`, `99.9`).
fn percent(s: &str) -> Option<f64> {
    let v = plain_number(s)?;
    (v > 0.0 && v <= 100.0).then_some(v)
}

/// `(lower:upper)` with either bound optional (not both), both
/// percentages (`10%`) or both values; PR takes values only.
fn range(kind: RangeKind, s: &str) -> Option<RangeStat> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    let (lo, hi) = inner.split_once(':')?;
    let is_pct = |b: &str| b.ends_with('%');
    let pct = match (lo.is_empty(), hi.is_empty()) {
        (true, true) => return None,
        (false, false) if is_pct(lo) != is_pct(hi) => return None,
        (false, _) => is_pct(lo),
        (true, false) => is_pct(hi),
    };
    if pct && kind == RangeKind::PercentileRank {
        return None;
    }
    let bound = |b: &str| -> Option<Option<f64>> {
        if b.is_empty() {
            return Some(None);
        }
        let v = if pct {
            let v = plain_number(b.strip_suffix('%')?)?;
            (v <= 100.0).then_some(v)?
        } else {
            let (neg, digits) = match b.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, b),
            };
            let v = plain_number(digits)?;
            if neg { -v } else { v }
        };
        Some(Some(v))
    };
    let (lower, upper) = (bound(lo)?, bound(hi)?);
    if let (Some(l), Some(u)) = (lower, upper)
        && l >= u
    {
        return None;
    }
    // An open percentage range that keeps nothing: above 100%, below 0%.
    if pct && (lower == Some(100.0) || upper == Some(0.0)) {
        return None;
    }
    Some(RangeStat {
        kind,
        lower,
        upper,
        bounds: if pct { Bounds::Percent } else { Bounds::Value },
    })
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Sum => f.write_str("Sum"),
            Stat::Average => f.write_str("Average"),
            Stat::Minimum => f.write_str("Minimum"),
            Stat::Maximum => f.write_str("Maximum"),
            Stat::SampleCount => f.write_str("SampleCount"),
            Stat::Percentile(p) => write!(f, "p{p}"),
            Stat::Iqm => f.write_str("IQM"),
            Stat::Range(r) => {
                let code = r.kind.code();
                if r.bounds == Bounds::Short {
                    return write!(
                        f,
                        "{}{}",
                        code.to_ascii_lowercase(),
                        r.upper.unwrap_or(100.0)
                    );
                }
                let pct = if r.bounds == Bounds::Percent { "%" } else { "" };
                write!(f, "{code}(")?;
                if let Some(l) = r.lower {
                    write!(f, "{l}{pct}")?;
                }
                f.write_str(":")?;
                if let Some(u) = r.upper {
                    write!(f, "{u}{pct}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// One CloudWatch metric query: what `GetMetricData` fetches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    pub namespace: String,
    pub metric_name: String,
    /// Dimension name -> value. A value of `"*"` is a wildcard, expanded into
    /// one alert instance per value found (see the AWS adapter).
    pub dimensions: BTreeMap<String, String>,
    pub stat: Stat,
    pub period: Duration,
    /// The account that owns the metric, read through CloudWatch
    /// cross-account observability (or a role named in `accounts:`); `None`
    /// is the account the evaluator runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The region the metric lives in; `None` is the evaluator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A CloudWatch Metrics Insights query (`SELECT ... FROM ...`): when
    /// set, the query is the metric and `namespace` / `metric_name` /
    /// `dimensions` describe it for display only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// A metric spec's identity as a query ([`MetricSpec::key`]): namespace,
/// metric, dimensions, statistic and period.
#[derive(Debug, Clone, Copy)]
pub struct SpecKey<'a>(&'a MetricSpec);

impl SpecKey<'_> {
    /// The statistic as comparable bits: a tag and its parameters (the
    /// bounds of an extended statistic, absent bounds as NaN bits, which
    /// no parsed bound has).
    fn stat_bits(&self) -> (u8, u64, u64) {
        const NONE: u64 = f64::NAN.to_bits();
        match self.0.stat {
            Stat::Sum => (0, 0, 0),
            Stat::Average => (1, 0, 0),
            Stat::Minimum => (2, 0, 0),
            Stat::Maximum => (3, 0, 0),
            Stat::SampleCount => (4, 0, 0),
            // Distinct percentiles are distinct queries (`p99`, `p99.9`).
            Stat::Percentile(p) => (5, p.to_bits(), 0),
            Stat::Iqm => (6, 0, 0),
            Stat::Range(r) => {
                // `tm99` and `TM(:99%)` are one statistic but two spellings;
                // kept apart (each is sent as written).
                let tag = 7
                    + 3 * (r.kind as u8)
                    + match r.bounds {
                        Bounds::Percent => 0,
                        Bounds::Value => 1,
                        Bounds::Short => 2,
                    };
                (
                    tag,
                    r.lower.map_or(NONE, f64::to_bits),
                    r.upper.map_or(NONE, f64::to_bits),
                )
            }
        }
    }
}

impl PartialEq for SpecKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0, other.0);
        a.namespace == b.namespace
            && a.metric_name == b.metric_name
            && a.dimensions == b.dimensions
            && self.stat_bits() == other.stat_bits()
            && a.period.as_secs() == b.period.as_secs()
            && a.account == b.account
            && a.region == b.region
            && a.query == b.query
    }
}

impl Eq for SpecKey<'_> {}

impl Hash for SpecKey<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.namespace.hash(h);
        self.0.metric_name.hash(h);
        self.0.dimensions.hash(h);
        self.stat_bits().hash(h);
        self.0.period.as_secs().hash(h);
        self.0.account.hash(h);
        self.0.region.hash(h);
        self.0.query.hash(h);
    }
}

impl MetricSpec {
    /// The query's identity, borrowed: equal for equal queries (what a
    /// cycle fetches once), hashable. [`MetricSpec::dedup_key`] is its
    /// owned form.
    pub fn key(&self) -> SpecKey<'_> {
        SpecKey(self)
    }

    /// [`MetricSpec::key`] as a string, for sets that outlive the spec:
    /// equal exactly when the keys are (names and values are quoted, so a
    /// `,` or `=` in a dimension value cannot make two queries one).
    pub fn dedup_key(&self) -> String {
        let (stat, bits, more) = self.key().stat_bits();
        let mut key = format!(
            "{:?}",
            (
                &self.namespace,
                &self.metric_name,
                &self.dimensions,
                stat,
                bits,
                self.period.as_secs()
            )
        );
        if stat > 5 {
            key.push_str(&format!("{more:?}"));
        }
        // Only when set, so the keys of same-account, same-region metric
        // queries stay what they were.
        if self.account.is_some() || self.region.is_some() || self.query.is_some() {
            key.push_str(&format!("{:?}", (&self.account, &self.region, &self.query)));
        }
        key
    }

    pub fn has_wildcard(&self) -> bool {
        self.dimensions.values().any(|v| v == "*")
    }

    /// The names of the wildcard dimensions (`*`), sorted.
    pub fn wildcards(&self) -> impl Iterator<Item = &str> {
        self.dimensions
            .iter()
            .filter(|(_, v)| v.as_str() == "*")
            .map(|(k, _)| k.as_str())
    }
}

/// Comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            _ => return None,
        })
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    /// True for `>`/`>=`: the alert is about a value going up.
    pub fn is_upper(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        })
    }
}

/// `value OP threshold`, with an optional recovery threshold (hysteresis):
/// once firing, the alert stays firing while `value OP recovery` holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub op: Op,
    pub threshold: f64,
    pub recovery: Option<f64>,
}

impl Condition {
    pub fn breaches(&self, value: f64) -> bool {
        self.op.holds(value, self.threshold)
    }

    /// Whether a firing alert should still be considered breaching.
    pub fn still_breaching(&self, value: f64) -> bool {
        self.op
            .holds(value, self.recovery.unwrap_or(self.threshold))
    }
}

/// How long or how often the condition must hold before the alert fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pending {
    /// Fire when every datapoint breached for at least this long (Prometheus `for`).
    /// `For(0)` fires on the first breaching datapoint.
    For(Duration),
    /// Fire when at least `m` of the last `n` datapoints breached (CloudWatch M-of-N).
    MofN { m: u32, n: u32 },
}

/// What a missing datapoint counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MissingData {
    /// Missing for the pending period raises a separate NoData alert.
    NoData,
    /// Missing counts as not breaching.
    Ok,
    /// Missing counts as breaching.
    Breaching,
    /// Missing is ignored: the state holds.
    #[default]
    Keep,
}

impl MissingData {
    pub fn parse(s: &str) -> Option<MissingData> {
        Some(match s {
            "nodata" => MissingData::NoData,
            "ok" => MissingData::Ok,
            "breaching" => MissingData::Breaching,
            "keep" => MissingData::Keep,
            _ => return None,
        })
    }
}

/// Minimum-volume guard: the condition is not judged while the sum of
/// `metric` over the last `window` is below `at_least`. An unjudged datapoint
/// counts as not breaching for an alert that is not firing, and holds a
/// firing alert (low traffic neither fires nor resolves an alert).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeGuard {
    pub metric: String,
    pub at_least: f64,
    pub window: Duration,
}

/// How values print in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A percentage, printed `5.2%`.
    Percent,
    /// Milliseconds, printed `850ms`.
    Milliseconds,
    /// Seconds, printed `1.2s`.
    Seconds,
    /// A count, printed `1,204`.
    Count,
    /// A ratio 0..1, printed as a percentage.
    Ratio,
    #[default]
    None,
}

impl Unit {
    pub fn parse(s: &str) -> Option<Unit> {
        Some(match s {
            "percent" | "%" => Unit::Percent,
            "ms" | "milliseconds" => Unit::Milliseconds,
            "s" | "seconds" => Unit::Seconds,
            "count" => Unit::Count,
            "ratio" => Unit::Ratio,
            "none" => Unit::None,
            _ => return None,
        })
    }

    /// Formats a value for humans: `5.2%`, `850ms`, `1.2s`, `1204`.
    pub fn format(self, v: f64) -> String {
        fn num(v: f64) -> String {
            if !v.is_finite() {
                return v.to_string();
            }
            let a = v.abs();
            let s = if a >= 100.0 || a == a.trunc() {
                format!("{v:.0}")
            } else if a >= 10.0 {
                format!("{v:.1}")
            } else if a >= 0.1 {
                format!("{v:.2}")
            } else {
                format!("{v:.3}")
            };
            // Trim trailing zeros after a decimal point: 5.20 -> 5.2, 1.00 -> 1.
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            }
        }
        match self {
            Unit::Percent => format!("{}%", num(v)),
            Unit::Ratio => format!("{}%", num(v * 100.0)),
            Unit::Milliseconds => format!("{}ms", num(v)),
            Unit::Seconds => format!("{}s", num(v)),
            Unit::Count | Unit::None => num(v),
        }
    }
}

/// A validated alert rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Where the rule's `name` was written.
    pub origin: Origin,
    /// How often the rule is evaluated.
    pub interval: Duration,
    /// Metric id (as used in `expression`) -> query.
    pub metrics: BTreeMap<String, MetricSpec>,
    /// The expression source text.
    pub expression_src: String,
    pub expression: Expr,
    pub condition: Condition,
    pub pending: Pending,
    pub keep_firing_for: Duration,
    /// Datapoints younger than this are not judged yet (their metrics may
    /// still be arriving): every alert of the rule is this much later, and
    /// no datapoint is judged before all of its metrics are in.
    pub evaluation_delay: Duration,
    /// How long a trailing datapoint some of whose metrics are missing is
    /// waited for before the missing ones count as missing (`FILL` applies).
    /// `None`: the engine's default (two periods).
    pub arrival_grace: Option<Duration>,
    pub missing_data: MissingData,
    pub min_volume: Option<VolumeGuard>,
    pub unit: Unit,
    pub labels: Labels,
    /// Annotation templates (summary, description, runbook_url, dashboard, ...).
    pub annotations: BTreeMap<String, String>,
    /// Values worked out when an alert of the rule fires or resolves, each
    /// over its own (coarse, long) grid, and handed to the annotation
    /// templates as variables. Empty for hand-written rules; SLO burn-rate
    /// rules use it for the budget spent over the SLO window.
    pub context: Vec<ContextValue>,
}

/// A value computed beside a rule: `expression` over `metrics` on a grid of
/// `window` ending now (step: the largest metric period); the value is the
/// expression's last present datapoint. The engine computes it only for
/// instances that have an alert to record, fetching its metrics apart from
/// the rule's so a long window never lengthens the rule's own lookback.
#[derive(Debug, Clone)]
pub struct ContextValue {
    /// The template variable, e.g. `budget_spent`.
    pub name: String,
    pub metrics: BTreeMap<String, MetricSpec>,
    pub expression: Expr,
    pub window: Duration,
    /// Metric ids without which a datapoint of the others is left out of
    /// the value: such a datapoint counts as not covered (a latency SLI's
    /// percentile rank `fast`). Empty: every datapoint counts.
    pub required: Vec<String>,
}

impl ContextValue {
    /// The step of the value's grid: the largest metric period.
    pub fn step(&self) -> Duration {
        self.metrics
            .values()
            .map(|m| m.period)
            .max()
            .unwrap_or(Duration::from_secs(3600))
    }
}

/// The longest metric period: 1 day. CloudWatch accepts longer multiples of
/// 60 s, but a rule on a coarser grid judges less than once a day (not
/// alerting), and its lookback (five periods of margin at least) must stay
/// within the 455 days CloudWatch keeps hourly data.
pub const MAX_PERIOD: Duration = Duration::from_secs(86_400);
/// The longest `evaluation_delay` and `arrival_grace`: 1 hour (CloudWatch
/// publishes within minutes; longer only makes every alert late).
pub const MAX_ARRIVAL_WAIT: Duration = Duration::from_secs(3600);

/// How long CloudWatch keeps datapoints of `period` (its documented
/// retention by resolution): 15 days below 5 minutes (data of 1 minute and
/// finer is rolled up after that; high-resolution data below 1 minute is
/// rolled up to 1 minute after 3 hours, still served at 1 minute), 63 days
/// below 1 hour, 455 days otherwise. A rule needing older data would see
/// none, forever: `validate` rejects it.
pub fn retention(period: Duration) -> Duration {
    const DAY: u64 = 86_400;
    let days = if period < Duration::from_secs(300) {
        15
    } else if period < Duration::from_secs(3_600) {
        63
    } else {
        455
    };
    Duration::from_secs(days * DAY)
}

/// Whether `s` is an AWS account id: exactly 12 ASCII digits.
pub fn valid_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` has the shape of an AWS region name: two or three
/// lower-case words joined by `-`, the first of 2 to 4 letters, then a
/// number of 1 or 2 digits (`eu-west-1`, `us-gov-west-1`,
/// `ap-southeast-5`, `eusc-de-east-1`).
pub fn valid_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    let word = |w: &&str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase());
    s.len() <= 32
        && (2..=3).contains(&words.len())
        && (2..=4).contains(&words[0].len())
        && words.iter().all(word)
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The label an instance gets from its metrics' `account`.
pub const ACCOUNT_LABEL: &str = "account";
/// The label an instance gets from its metrics' `region`.
pub const REGION_LABEL: &str = "region";

impl Rule {
    /// The labels the rule's instances get from where their metrics live:
    /// `account` when a metric names one, `region` when a metric names one
    /// (the distinct values, sorted, joined by `,` when the metrics name
    /// several). Empty for metrics of the evaluator's own account and
    /// region, so existing rules' labels do not change.
    pub fn reach_labels(&self) -> Labels {
        let mut out = Labels::new();
        let join = |vals: std::collections::BTreeSet<&str>| -> Option<String> {
            (!vals.is_empty()).then(|| vals.into_iter().collect::<Vec<_>>().join(","))
        };
        let accounts = self
            .metrics
            .values()
            .filter_map(|m| m.account.as_deref())
            .collect();
        let regions = self
            .metrics
            .values()
            .filter_map(|m| m.region.as_deref())
            .collect();
        if let Some(a) = join(accounts) {
            out.insert(ACCOUNT_LABEL.to_string(), a);
        }
        if let Some(r) = join(regions) {
            out.insert(REGION_LABEL.to_string(), r);
        }
        out
    }

    /// The evaluation step of the rule's series: the largest metric period.
    pub fn step(&self) -> Duration {
        self.metrics
            .values()
            .map(|m| m.period)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    /// How much history one evaluation needs to see: enough for the pending
    /// period, the volume guard window and RATE/DIFF, plus a margin, plus the
    /// rolling windows of the expression (`RSUM`) so every judged datapoint
    /// has a full window.
    pub fn lookback(&self) -> Duration {
        let step = self.step();
        let pending = match self.pending {
            Pending::For(d) => d,
            Pending::MofN { n, .. } => step.saturating_mul(n),
        };
        let guard = self
            .min_volume
            .as_ref()
            .map(|g| g.window)
            .unwrap_or_default();
        let history = u32::try_from(self.expression.history())
            .ok()
            .and_then(|n| step.checked_mul(n))
            .unwrap_or(Duration::MAX);
        // Everything a replay from the last stored state must see again:
        // the pending or keep-firing stretch, plus the warm-up of the volume
        // guard and of the expression before the first point judged, plus
        // the datapoints since the previous evaluation (interval), plus a
        // margin for late data.
        pending
            .max(self.keep_firing_for)
            .saturating_add(guard)
            .saturating_add(history)
            .saturating_add(self.interval)
            .saturating_add(self.evaluation_delay)
            .saturating_add(self.arrival_grace.unwrap_or_default())
            .saturating_add(step.saturating_mul(5))
    }

    /// How far back CloudWatch keeps datapoints of this rule's period
    /// ([`retention`]); `validate` checks the [`Rule::lookback`] fits.
    pub fn retention(&self) -> Duration {
        retention(self.step())
    }

    /// Leading grid points that cannot be judged because the expression's
    /// history (RATE, DIFF, RSUM) or the volume guard's window would reach
    /// before the start of the fetched data.
    pub fn warmup_points(&self) -> usize {
        let step = self.step().as_secs().max(1);
        let guard = self
            .min_volume
            .as_ref()
            .map(|g| (g.window.as_secs().div_ceil(step) as usize).saturating_sub(1))
            .unwrap_or(0);
        self.expression.history().max(guard)
    }

    pub fn severity(&self) -> Option<&str> {
        self.labels.get("severity").map(String::as_str)
    }

    /// Every wildcard dimension of the rule's metrics, sorted.
    pub fn wildcards(&self) -> std::collections::BTreeSet<&str> {
        self.metrics
            .values()
            .flat_map(MetricSpec::wildcards)
            .collect()
    }

    /// The metric whose reported dimension values list the rule's
    /// instances: the first (by id) with every wildcard dimension of the
    /// rule. `None` when the rule has no wildcard, or when no metric has
    /// them all (`validate` rejects such a rule).
    pub fn wildcard_driver(&self) -> Option<&MetricSpec> {
        let all = self.wildcards();
        if all.is_empty() {
            return None;
        }
        self.metrics
            .values()
            .find(|m| m.wildcards().count() == all.len())
    }
}

/// The whole rules configuration: every rule file of a config directory.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dims: &[(&str, &str)], stat: Stat) -> MetricSpec {
        MetricSpec {
            namespace: "Svc".into(),
            metric_name: "Errors".into(),
            dimensions: dims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stat,
            period: Duration::from_secs(60),
            account: None,
            region: None,
            query: None,
        }
    }

    #[test]
    fn a_query_key_and_its_string_agree_and_never_merge_two_queries() {
        let a = spec(&[("A", "1,B=2")], Stat::Sum);
        let b = spec(&[("A", "1"), ("B", "2")], Stat::Sum);
        assert!(a.key() != b.key());
        assert_ne!(a.dedup_key(), b.dedup_key());
        let p99 = spec(&[("A", "1")], Stat::Percentile(99.0));
        let p999 = spec(&[("A", "1")], Stat::Percentile(99.9));
        assert!(p99.key() != p999.key());
        assert_ne!(p99.dedup_key(), p999.dedup_key());
        assert!(p99.key() == p99.clone().key());
        assert_eq!(p99.dedup_key(), p99.clone().dedup_key());
    }

    #[test]
    fn extended_statistics_round_trip_to_cloudwatch_spelling() {
        for s in [
            "Sum",
            "SampleCount",
            "p99",
            "p99.9",
            "PR(:300)",
            "PR(100:300)",
            "PR(100:)",
            "PR(-5:0.5)",
            "TC(10%:90%)",
            "TC(10:90)",
            "TM(:80%)",
            "TM(10%:)",
            "TM(2.5%:97.5%)",
            "TS(150:1000)",
            "WM(10%:90%)",
            "tm99",
            "tc90",
            "ts90",
            "wm99.5",
            "IQM",
        ] {
            let stat = Stat::parse(s).unwrap_or_else(|| panic!("{s} does not parse"));
            assert_eq!(stat.to_string(), s);
        }
        assert_eq!(
            Stat::parse("PR(:300)"),
            Some(Stat::Range(RangeStat {
                kind: RangeKind::PercentileRank,
                lower: None,
                upper: Some(300.0),
                bounds: Bounds::Value,
            }))
        );
        // Sent normalized: the shortest spelling of each number.
        for (written, sent) in [
            ("PR(:300.0)", "PR(:300)"),
            ("p99.0", "p99"),
            ("TM(10.50%:90%)", "TM(10.5%:90%)"),
        ] {
            assert_eq!(
                Stat::parse(written).map(|s| s.to_string()).as_deref(),
                Some(sent)
            );
        }
        assert_eq!(
            Stat::parse("tm99"),
            Some(Stat::Range(RangeStat {
                kind: RangeKind::TrimmedMean,
                lower: None,
                upper: Some(99.0),
                bounds: Bounds::Short,
            }))
        );
        for bad in [
            "PR(:)",
            "PR(10%:90%)",
            "PR(300)",
            "PR:300",
            "TM(10%:90)",
            "TM(90%:10%)",
            "TM(10%:110%)",
            "TM(10:10)",
            "TM(a:b)",
            "TM(1e3:)",
            "tm0",
            "tm101",
            "tm",
            "pr99",
            "iqm",
            "IQM(25%:75%)",
            "TX(1:2)",
            "TM(:inf)",
            "TM(-1%:5%)",
            "TM(100%:)",
            "TM(:0%)",
            "TC(100%:)",
            "WM(:0%)",
        ] {
            assert_eq!(Stat::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn extended_statistics_are_distinct_queries() {
        let stats = [
            "tm99", "TM(:99%)", "TM(:99)", "TS(:99)", "PR(:99)", "IQM", "p99",
        ];
        for (i, a) in stats.iter().enumerate() {
            for (j, b) in stats.iter().enumerate() {
                let (sa, sb) = (
                    spec(&[], Stat::parse(a).unwrap_or(Stat::Sum)),
                    spec(&[], Stat::parse(b).unwrap_or(Stat::Sum)),
                );
                assert_eq!(sa.key() == sb.key(), i == j, "{a} {b}");
                assert_eq!(sa.dedup_key() == sb.dedup_key(), i == j, "{a} {b}");
            }
        }
        assert!(Stat::Iqm.is_distribution());
        assert!(!Stat::SampleCount.is_distribution());
    }
}
