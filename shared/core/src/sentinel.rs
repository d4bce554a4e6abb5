//! Sentinel alarms: for a rule where it is cheaper, a CloudWatch alarm that
//! is in ALARM whenever the rule could be breaching, so that firebell polls
//! the rule (GetMetricData, billed per metric requested) only while it is
//! *hot*: its sentinel is in ALARM, its state is not at rest, or a periodic
//! sweep is due (the engine's `sentinel` module decides; this one says what
//! a sentinel is).
//!
//! # The over-approximation
//!
//! A rule's sentinel evaluates, on the rule's own grid (its metrics, their
//! statistic and period), a per-datapoint condition that holds at least
//! wherever one of the rule's datapoints breaches, and stays in ALARM while
//! *one* datapoint of the last `evaluation_periods` did (`DatapointsToAlarm`
//! 1). What firebell adds on top (the volume guard, `for`, M-of-N,
//! `keep_firing_for`, hysteresis, the evaluation delay and arrival grace)
//! only ever makes the rule fire later or not at all, so it is left to
//! firebell.
//!
//! - **A rule** ([`for_rule`]): the alarm's value is the rule's expression
//!   itself, on a single metric (a plain metric alarm) or as CloudWatch
//!   metric math ([`Expr::to_metric_math`], same meaning on complete data);
//!   the threshold and comparison are the rule's. Only *pointwise, strict*
//!   expressions qualify ([`Expr::is_pointwise_strict`]): a datapoint
//!   depends on its bucket alone, and is missing whenever a metric not
//!   `FILL`ed with a number is missing, so wherever firebell has a value
//!   every metric CloudWatch combines is present and both compute the same
//!   number. Missing data: a rule that alerts on it (`missing_data:
//!   breaching` or `nodata`) stays on polling. CloudWatch applies
//!   `TreatMissingData` only when its evaluation range holds fewer real
//!   datapoints than `EvaluationPeriods` (otherwise it evaluates the most
//!   recent real ones and skips the gaps: "Configuring how CloudWatch alarms
//!   treat missing data"), so a gap among real datapoints would not wake a
//!   sentinel; and `FILL`ing the gaps with a breaching value would also fill
//!   the newest period before it arrives, keeping the sentinel in ALARM. The
//!   others have `TreatMissingData: notBreaching`: a missing datapoint never
//!   fires a rule that is at rest (and CloudWatch's looking further back
//!   past gaps only ever sees more breaching datapoints, not fewer).
//! - **An SLO** ([`for_slo`]): one alarm for the SLO's burn-rate rules on the
//!   finest grid (the page alerts). Each fires only when its short-window
//!   burn rate exceeds its threshold `b`, that is when `Σ bad > b · budget ·
//!   Σ total` over the window's datapoints; so at least one SLI datapoint
//!   `i` in that window has `bad_i − x · total_i > 0`, where `x` is the
//!   smallest `b · budget` of the rules covered (counts are never negative,
//!   sums over coarser grids are sums of SLI datapoints). The alarm watches
//!   exactly that, `FILL(bad, 0) − x · FILL(total, 0) > 0` on the SLI's
//!   period: linear, no division, nothing missing. A latency SLI counts
//!   only datapoints with a percentile rank (both sums leave out the
//!   others), so its breaching datapoint has one; the alarm's
//!   `FILL(total, 0) · (100 − FILL(fast, 100)) / 100 − x · FILL(total, 0)`
//!   is exactly `bad_i − x · total_i` there, and `−x · total_i ≤ 0` (never
//!   breaching) where the rank is missing, as those datapoints cannot make
//!   a rule fire.
//! - **Timing**: the alarm looks back over `evaluation_periods` periods
//!   covering the rule's lookback (for an SLO, its short window plus the
//!   delays), so a breaching datapoint is still in the alarm's range at the
//!   cycle that judges it, evaluation delay and arrival grace included.
//!
//! Why that is enough: a cycle writes nothing for a rule whose judgement
//! changes nothing, so a rule skipped while nothing could change ends in the
//! same stored state as a rule judged every cycle. Skipped means cold: no
//! datapoint in the alarm's range breached (nor was missing, when missing
//! counts) and the stored state is at rest; then firebell's judgement
//! changes nothing either. `shared/engine/tests/sentinel_property.rs` checks
//! it over generated series: whenever the rule fires, the sentinel held at
//! its first breaching datapoint, and the engine with sentinels fires the
//! same alerts at the same cycles as without. Data that arrives later than
//! the alarm's range, or a sentinel out of step with its definition, is
//! what the periodic sweep is for.
//!
//! Wildcard rules, expressions outside that shape (`RSUM`, `RATE`, `IF`,
//! `AND`/`OR`, `MIN`/`MAX`, ...), more than [`MAX_ALARM_METRICS`] metrics,
//! metrics of different periods or under a minute, and ranges over a day
//! stay on polling ([`Polling`] says why).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::expr::Expr;
use crate::model::{MetricSpec, MissingData, Op, Rule};
use crate::slo::{Sli, Slo};

/// The most metrics one CloudWatch alarm may query.
pub const MAX_ALARM_METRICS: usize = 10;
/// The longest range an alarm evaluates (`Period × EvaluationPeriods`).
pub const MAX_ALARM_RANGE: Duration = Duration::from_secs(86_400);
/// How often every rule is evaluated whatever its sentinel says: 25
/// minutes. A sweep requests every covered metric once, so at 15 minutes
/// sweeps alone cost 2,920 requests per metric a month ($0.029, 29% of the
/// $0.10 its alarm costs) and a rule's bill cannot stay within 1.2x of the
/// CloudWatch alarm it replaces; 25 minutes is the shortest sweep that does
/// (`tests/benches/sentinel_month.rs`). `sentinels: {sweep: 15m}` trades
/// that for a shorter worst case when a sentinel is out of step.
pub const DEFAULT_SWEEP: Duration = Duration::from_secs(25 * 60);
/// The sentinel name prefix when the deployment names none.
pub const DEFAULT_PREFIX: &str = "firebell-sentinel-";
/// The longest alarm name CloudWatch accepts.
pub const MAX_NAME_LEN: usize = 255;
/// Hours a month a sentinel is assumed hot when choosing the cheaper mode.
pub const DEFAULT_HOT_HOURS: f64 = 2.0;
/// Seconds in a billing month (730 hours).
pub const MONTH_SECS: f64 = 730.0 * 3600.0;
/// The marker in a sentinel's description before its definition hash.
pub const DEFINITION_MARKER: &str = "definition ";
/// A simulated alarm ([`SentinelAlarm`] over a replay, `SimulatedAlarms`)
/// takes a trailing period with no data at all as not arrived yet for
/// this many periods, as CloudWatch waits for late data.
pub const ALARM_ARRIVAL_PERIODS: u64 = 2;

/// One sentinel alarm, as firebell wants it to exist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentinelAlarm {
    /// `<prefix>rule.<rule>` or `<prefix>slo.<slo>`.
    pub name: String,
    /// Says what it is and carries [`SentinelAlarm::hash`]: a sentinel whose
    /// description differs is out of date.
    pub description: String,
    /// The rules it covers.
    pub rules: Vec<String>,
    /// Metric id -> query (one for a plain metric alarm).
    pub metrics: BTreeMap<String, MetricSpec>,
    /// CloudWatch metric math over `metrics`; `None`: the alarm watches the
    /// single metric itself.
    pub metric_math: Option<String>,
    /// The same value in firebell's language (what a simulated alarm evaluates).
    #[serde(skip)]
    pub expression: Expr,
    pub op: Op,
    pub threshold: f64,
    pub period_secs: u64,
    pub evaluation_periods: u32,
    /// `TreatMissingData`: `breaching` when true, else `notBreaching`.
    pub missing_breaches: bool,
    /// A content hash of everything above but the description (12 hex digits).
    pub hash: String,
}

impl SentinelAlarm {
    /// CloudWatch's name for the comparison.
    pub fn comparison_operator(&self) -> &'static str {
        match self.op {
            Op::Gt => "GreaterThanThreshold",
            Op::Ge => "GreaterThanOrEqualToThreshold",
            Op::Lt => "LessThanThreshold",
            Op::Le => "LessThanOrEqualToThreshold",
        }
    }

    /// CloudWatch's `TreatMissingData`.
    pub fn treat_missing_data(&self) -> &'static str {
        if self.missing_breaches {
            "breaching"
        } else {
            "notBreaching"
        }
    }

    /// Whether one datapoint of the alarm's value breaches (`None`: missing).
    pub fn breaches(&self, value: Option<f64>) -> bool {
        match value {
            Some(v) => self.op.holds(v, self.threshold),
            None => self.missing_breaches,
        }
    }

    /// The metrics the alarm is billed for.
    pub fn billed_metrics(&self) -> usize {
        self.metrics.len()
    }

    /// The range it evaluates.
    pub fn range(&self) -> Duration {
        Duration::from_secs(self.period_secs * u64::from(self.evaluation_periods))
    }
}

/// Why a rule stays on polling.
#[derive(Debug, Clone, PartialEq)]
pub enum Polling {
    /// Sentinels are off in the config.
    Off,
    /// A wildcard rule (one alarm per dimension value).
    Wildcard,
    /// A rule reading a Metrics Insights query (its alarms are a separate
    /// kind, at most 200 a region, and read 3 hours only).
    Query,
    /// The expression is not pointwise and strict, or has no metric math.
    Expression,
    /// More metrics than an alarm may query.
    TooManyMetrics(usize),
    /// Metrics of different periods, or a period under a minute.
    Period,
    /// Missing data counts for the rule (`breaching`, `nodata`).
    MissingData,
    /// An SLO alert on a coarser grid than its SLI (the ticket alerts,
    /// evaluated every few minutes: polling them costs little).
    SloCoarse,
    /// The range the alarm would need is over a day.
    Range(Duration),
    /// The SLO has no rule on its finest grid (never for built SLOs).
    NoFineRule,
    /// Polling is cheaper (a rule evaluated seldom).
    Cheaper { polling: f64, sentinel: f64 },
    /// A metric in another account or region (`account:`, `region:`): a
    /// CloudWatch alarm watches metrics of its own region only.
    Elsewhere,
}

impl fmt::Display for Polling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Polling::Off => f.write_str("sentinels are off (`sentinels: {mode: auto}`)"),
            Polling::Wildcard => f.write_str("a wildcard rule (an alarm per value)"),
            Polling::Query => f.write_str(
                "a Metrics Insights query (its alarms are another kind, at most 200 a region)",
            ),
            Polling::Expression => f.write_str(
                "the expression is not pointwise (RSUM, RATE, DIFF, IF, AND/OR, MIN/MAX/SUM/AVG, LOG, SQRT, FILL with REPEAT/LINEAR/a series) or has no metric math",
            ),
            Polling::TooManyMetrics(n) => write!(
                f,
                "{n} metrics (an alarm takes at most {MAX_ALARM_METRICS})"
            ),
            Polling::Period => {
                f.write_str("metrics of different periods or a period under a minute")
            }
            Polling::MissingData => f.write_str(
                "missing data counts (breaching, nodata): CloudWatch ignores TreatMissingData while an alarm's range holds enough real datapoints, so a gap might not wake a sentinel",
            ),
            Polling::SloCoarse => f.write_str(
                "an SLO alert on a coarser grid than its SLI (evaluated every few minutes; its SLO's sentinel covers the page alerts)",
            ),
            Polling::Range(d) => write!(
                f,
                "the alarm would need to look back {}s (at most a day)",
                d.as_secs()
            ),
            Polling::NoFineRule => f.write_str("no rule on the SLO's finest grid"),
            Polling::Elsewhere => f.write_str(
                "a metric in another account or region (a CloudWatch alarm watches its own region's metrics only)",
            ),
            Polling::Cheaper { polling, sentinel } => write!(
                f,
                "polling is cheaper (${polling:.3} against ${sentinel:.3} a month)"
            ),
        }
    }
}

/// The alarm name: `<prefix><kind>.<name>`, or a hash of it when too long.
fn alarm_name(prefix: &str, kind: &str, name: &str) -> String {
    let full = format!("{prefix}{kind}.{name}");
    if full.len() <= MAX_NAME_LEN && full.chars().all(|c| c.is_ascii_graphic()) {
        full
    } else {
        format!("{prefix}{kind}#{}", &crate::text::sha256_hex(&full)[..16])
    }
}

/// The canonical text hashed into [`SentinelAlarm::hash`].
#[derive(Serialize)]
struct Definition<'a> {
    name: &'a str,
    metrics: &'a BTreeMap<String, MetricSpec>,
    metric_math: &'a Option<String>,
    op: Op,
    threshold: f64,
    period_secs: u64,
    evaluation_periods: u32,
    missing_breaches: bool,
}

#[allow(clippy::too_many_arguments)]
fn build(
    name: String,
    rules: Vec<String>,
    metrics: BTreeMap<String, MetricSpec>,
    metric_math: Option<String>,
    expression: Expr,
    op: Op,
    threshold: f64,
    period_secs: u64,
    evaluation_periods: u32,
    missing_breaches: bool,
) -> SentinelAlarm {
    let def = Definition {
        name: &name,
        metrics: &metrics,
        metric_math: &metric_math,
        op,
        threshold,
        period_secs,
        evaluation_periods,
        missing_breaches,
    };
    let text = serde_json::to_string(&def).unwrap_or_default();
    let hash = crate::text::sha256_hex(&text)[..12].to_string();
    let mut listed = rules.join(", ");
    if listed.len() > 600 {
        listed = format!("{} rules", rules.len());
    }
    let description = format!(
        "firebell sentinel of {listed}: in ALARM whenever the rule could be breaching, so firebell polls it then. Managed by firebell: change the rule, not this alarm; {DEFINITION_MARKER}{hash}"
    );
    SentinelAlarm {
        name,
        description,
        rules,
        metrics,
        metric_math,
        expression,
        op,
        threshold,
        period_secs,
        evaluation_periods,
        missing_breaches,
        hash,
    }
}

/// The common period of `metrics` in seconds, if they share one of a whole
/// number of minutes.
fn common_period(metrics: &BTreeMap<String, MetricSpec>) -> Option<u64> {
    let mut periods = metrics.values().map(|m| m.period.as_secs());
    let p = periods.next()?;
    (p >= 60 && p % 60 == 0 && periods.all(|q| q == p)).then_some(p)
}

/// Periods covering `needed`, or why not.
fn periods_for(needed: Duration, period: u64) -> Result<u32, Polling> {
    let n = needed.as_secs().div_ceil(period).max(1);
    if n * period > MAX_ALARM_RANGE.as_secs() {
        return Err(Polling::Range(needed));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The sentinel of a hand-written rule, or why it stays on polling (see
/// the module docs for the shape and the argument).
pub fn for_rule(rule: &Rule, prefix: &str) -> Result<SentinelAlarm, Polling> {
    if elsewhere(rule.metrics.values()) {
        return Err(Polling::Elsewhere);
    }
    if rule.metrics.values().any(|m| m.query.is_some()) {
        return Err(Polling::Query);
    }
    if !rule.wildcards().is_empty() {
        return Err(Polling::Wildcard);
    }
    if rule.metrics.len() > MAX_ALARM_METRICS {
        return Err(Polling::TooManyMetrics(rule.metrics.len()));
    }
    let period = common_period(&rule.metrics).ok_or(Polling::Period)?;
    if matches!(
        rule.missing_data,
        MissingData::Breaching | MissingData::NoData
    ) {
        return Err(Polling::MissingData);
    }
    let missing_breaches = false;
    let (metrics, metric_math) = match rule.expression.as_metric() {
        Some(id) => {
            let spec = rule.metrics.get(id).ok_or(Polling::Expression)?;
            (BTreeMap::from([(id.to_string(), spec.clone())]), None)
        }
        None => {
            if !rule.expression.is_pointwise_strict() {
                return Err(Polling::Expression);
            }
            let mm = rule
                .expression
                .to_metric_math()
                .ok_or(Polling::Expression)?;
            if missing_breaches {
                return Err(Polling::MissingData);
            }
            let used = rule.expression.metric_ids();
            let metrics = rule
                .metrics
                .iter()
                .filter(|(id, _)| used.contains(id.as_str()))
                .map(|(id, m)| (id.clone(), m.clone()))
                .collect();
            (metrics, Some(mm))
        }
    };
    let evaluation_periods = periods_for(rule.lookback(), period)?;
    Ok(build(
        alarm_name(prefix, "rule", &rule.name),
        vec![rule.name.clone()],
        metrics,
        metric_math,
        rule.expression.clone(),
        rule.condition.op,
        rule.condition.threshold,
        period,
        evaluation_periods,
        missing_breaches,
    ))
}

/// Whether a metric lives in another account or region than the
/// evaluator's (where the sentinel alarm would be created).
fn elsewhere<'a>(mut metrics: impl Iterator<Item = &'a MetricSpec>) -> bool {
    metrics.any(|m| m.account.is_some() || m.region.is_some())
}

/// The sentinel of an SLO: it covers the SLO's rules (`rules`: those
/// generated from it) on the SLI's own grid; the coarser ones (the ticket
/// alerts, evaluated every few minutes) stay on polling. See the module
/// docs for the argument.
pub fn for_slo(slo: &Slo, rules: &[&Rule], prefix: &str) -> Result<SentinelAlarm, Polling> {
    let period = slo.sli.period();
    let covered: Vec<&Rule> = rules
        .iter()
        .copied()
        .filter(|r| r.step() == period)
        .collect();
    if covered.is_empty() {
        return Err(Polling::NoFineRule);
    }
    let metrics = slo.sli.metrics();
    if elsewhere(metrics.values()) {
        return Err(Polling::Elsewhere);
    }
    let period = common_period(&metrics).ok_or(Polling::Period)?;
    // The budget as the rules' expressions write it, and x rounded down
    // (printed with 10 decimals), so the sentinel never asks more than the
    // most sensitive rule.
    let budget: f64 = crate::slo::number(slo.budget())
        .parse()
        .unwrap_or_else(|_| slo.budget());
    let x = covered
        .iter()
        .map(|r| r.condition.threshold * budget)
        .fold(f64::INFINITY, f64::min);
    let x = crate::slo::number((x * 1e10).floor() / 1e10);
    let bad = match slo.sli {
        Sli::Errors { .. } => "FILL(errors, 0)",
        Sli::Good { .. } => "FILL(total, 0) - FILL(good, 0)",
        Sli::Latency { .. } => "FILL(total, 0) * (100 - FILL(fast, 100)) / 100",
    };
    let src = format!("{bad} - {x} * FILL(total, 0)");
    let expression = Expr::parse(&src).map_err(|_| Polling::Expression)?;
    let metric_math = expression.to_metric_math().ok_or(Polling::Expression)?;
    // The short window, plus everything between a datapoint and the cycle
    // that judges it.
    let needed = covered
        .iter()
        .map(|r| {
            let short =
                r.expression
                    .rolling_windows()
                    .into_iter()
                    .min()
                    .map_or(Duration::ZERO, |n| {
                        r.step()
                            .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
                    });
            short
                .saturating_add(r.interval)
                .saturating_add(r.evaluation_delay)
                .saturating_add(r.arrival_grace.unwrap_or(r.step() * 2))
                .saturating_add(r.step() * 5)
        })
        .max()
        .unwrap_or_default();
    let evaluation_periods = periods_for(needed, period)?;
    Ok(build(
        alarm_name(prefix, "slo", &slo.name),
        covered.iter().map(|r| r.name.clone()).collect(),
        metrics,
        Some(metric_math),
        expression,
        Op::Gt,
        0.0,
        period,
        evaluation_periods,
        false,
    ))
}

/// What a mode costs a month, in US dollars, for the metric requests and
/// the alarm (the rest of the bill is the same either way).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModeCost {
    /// Polling every interval.
    pub polling: f64,
    /// The sentinel: its alarm metrics, the sweeps, and polling while hot.
    pub sentinel: f64,
    /// Of `sentinel`: the alarm.
    pub alarm: f64,
    /// Of `sentinel`: the sweeps.
    pub sweeps: f64,
    /// Of `sentinel`: polling while hot.
    pub hot: f64,
}

/// Prices and assumptions behind a [`ModeCost`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostInputs {
    /// Per metric requested (GetMetricData: $0.01 per 1,000).
    pub per_metric_requested: f64,
    /// Per alarm metric a month ($0.10 at standard resolution).
    pub per_alarm_metric: f64,
    /// How often the evaluator runs.
    pub cycle_every: Duration,
    pub sweep: Duration,
    /// Hours a month the sentinel is hot.
    pub hot_hours: f64,
}

impl Default for CostInputs {
    fn default() -> Self {
        CostInputs {
            per_metric_requested: 0.01 / 1000.0,
            per_alarm_metric: 0.10,
            cycle_every: Duration::from_secs(60),
            sweep: DEFAULT_SWEEP,
            hot_hours: DEFAULT_HOT_HOURS,
        }
    }
}

/// The monthly cost of watching `rules` by polling and by `alarm`: each
/// rule requests its metrics once per interval when polled, once per sweep
/// and once per interval while hot with a sentinel.
pub fn mode_cost(rules: &[&Rule], alarm: &SentinelAlarm, c: &CostInputs) -> ModeCost {
    let per_month = |every: Duration| MONTH_SECS / every.as_secs_f64().max(1.0);
    let mut polling = 0.0;
    let mut sweeps = 0.0;
    let mut hot = 0.0;
    for r in rules {
        let metrics = r.metrics.len() as f64;
        let every = r.interval.max(c.cycle_every);
        polling += metrics * per_month(every) * c.per_metric_requested;
        // A sweep evaluates a rule at most once per interval.
        sweeps += metrics * per_month(c.sweep.max(every)) * c.per_metric_requested;
        hot += metrics
            * (c.hot_hours * 3600.0 / every.as_secs_f64().max(1.0))
            * c.per_metric_requested;
    }
    let alarm = alarm.billed_metrics() as f64 * c.per_alarm_metric;
    ModeCost {
        polling,
        sentinel: alarm + sweeps + hot,
        alarm,
        sweeps,
        hot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Rule {
        let text = format!("rules:\n{yaml}");
        let set = crate::config::parse_rules("r.yaml", &text).expect("rules");
        set.rules.into_iter().next().expect("one rule")
    }

    const RATIO: &str = "  - name: ErrorRate
    interval: 1m
    metrics:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: pay}, stat: Sum, period: 1m}
      requests: {namespace: Shop, metric: Requests, dimensions: {Service: pay}, stat: Sum, period: 1m}
    expression: 100 * FILL(errors, 0) / requests
    condition: {op: '>', threshold: 1}
    for: 5m
";

    #[test]
    fn a_ratio_rule_gets_a_metric_math_sentinel_over_its_lookback() {
        let r = rule(RATIO);
        let s = for_rule(&r, "fb-").expect("sentinel");
        assert_eq!(s.name, "fb-rule.ErrorRate");
        assert_eq!(
            s.metric_math.as_deref(),
            Some("100 * FILL(errors, 0) / requests")
        );
        assert_eq!(s.comparison_operator(), "GreaterThanThreshold");
        assert_eq!(s.treat_missing_data(), "notBreaching");
        assert_eq!(s.period_secs, 60);
        assert_eq!(
            u64::from(s.evaluation_periods) * 60,
            r.lookback().as_secs().div_ceil(60) * 60
        );
        assert!(s.description.ends_with(&format!("definition {}", s.hash)));
        // The hash follows the definition.
        let mut r2 = r.clone();
        r2.condition.threshold = 2.0;
        assert_ne!(for_rule(&r2, "fb-").expect("sentinel").hash, s.hash);
    }

    #[test]
    fn metrics_of_another_account_or_region_stay_on_polling() {
        for reach in ["account: '123456789012'", "region: eu-west-1"] {
            let r = rule(&RATIO.replace(
                "stat: Sum, period: 1m}\n    expression",
                &format!("stat: Sum, period: 1m, {reach}}}\n    expression"),
            ));
            assert_eq!(for_rule(&r, "fb-"), Err(Polling::Elsewhere), "{reach}");
        }
        assert_eq!(
            Polling::Elsewhere.to_string(),
            "a metric in another account or region (a CloudWatch alarm watches its own region's metrics only)"
        );
    }

    #[test]
    fn shapes_without_a_sound_alarm_stay_on_polling() {
        let with = |expr: &str| RATIO.replace("100 * FILL(errors, 0) / requests", expr);
        for e in [
            "RSUM(errors, 5) / RSUM(requests, 5)",
            "RATE(errors)",
            "IF(requests > 10, errors, 0)",
            "MAX(errors, requests)",
            "FILL(errors, REPEAT) / requests",
            "errors > 1 AND requests > 1",
        ] {
            assert_eq!(
                for_rule(&rule(&with(e)), "fb-"),
                Err(Polling::Expression),
                "{e}"
            );
        }
        let nodata = RATIO.replace(
            "    for: 5m\n",
            "    for: 5m\n    missing_data: breaching\n",
        );
        assert_eq!(for_rule(&rule(&nodata), "fb-"), Err(Polling::MissingData));
        let wild = RATIO.replace("{Service: pay}", "{Service: '*'}");
        assert_eq!(for_rule(&rule(&wild), "fb-"), Err(Polling::Wildcard));
    }

    #[test]
    fn a_rule_alerting_on_missing_data_stays_on_polling() {
        let text = "  - name: Latency
    interval: 1m
    metrics:
      p99: {namespace: Shop, metric: Latency, stat: p99, period: 1m}
    expression: p99
    condition: {op: '>', threshold: 800}
    missing_data: nodata
";
        let r = rule(text);
        assert_eq!(for_rule(&r, "fb-"), Err(Polling::MissingData));
        let mut keep = r.clone();
        keep.missing_data = MissingData::Breaching;
        assert_eq!(for_rule(&keep, "fb-"), Err(Polling::MissingData));
        keep.missing_data = MissingData::Keep;
        let s = for_rule(&keep, "fb-").expect("sentinel");
        assert_eq!(s.metric_math, None);
        assert_eq!(s.treat_missing_data(), "notBreaching");
        assert!(!s.breaches(None));
        assert!(s.breaches(Some(801.0)));
        assert!(!s.breaches(Some(800.0)));
    }

    #[test]
    fn sentinels_cost_less_than_polling_every_minute_and_more_every_hour() {
        let r = rule(RATIO);
        let s = for_rule(&r, "fb-").expect("sentinel");
        let c = mode_cost(&[&r], &s, &CostInputs::default());
        // 2 metrics a minute: 87,600 requests, $0.876.
        assert!((c.polling - 0.876).abs() < 1e-9, "{c:?}");
        assert!((c.alarm - 0.20).abs() < 1e-9);
        // 2 metrics every 25 minutes: 3,504 requests.
        assert!((c.sweeps - 0.03504).abs() < 1e-9, "{c:?}");
        assert!(c.sentinel < c.polling);
        let mut hourly = r.clone();
        hourly.interval = Duration::from_secs(3600);
        let c = mode_cost(&[&hourly], &s, &CostInputs::default());
        assert!(c.sentinel > c.polling, "{c:?}");
    }
}
