//! Service level objectives (the `slos:` section) and the burn-rate alerts
//! generated from them.
//!
//! An SLO says what share of requests must be good over a rolling window
//! (`objective: 99.9` over `window: 30d`); the rest is the *error budget*
//! (0.1% of the window's requests). The *burn rate* is how fast the budget
//! goes: the error ratio divided by the budget ratio, so a burn rate of 1
//! spends exactly the budget over the window and 14.4 spends 2% of a 30-day
//! budget in an hour.
//!
//! firebell turns each SLO into ordinary [`Rule`]s, evaluated by the engine
//! like hand-written ones: the multi-window, multi-burn-rate alerts of the
//! Google SRE workbook (chapter 5, "Alerting on SLOs"). Each alert fires when
//! the burn rate over a long window *and* over a short window (1/12 of the
//! long one) exceed its threshold: the long window makes it significant, the
//! short one makes it reset soon after the problem stops.
//!
//! | alert | long | short | burn rate | budget spent at firing |
//! |---|---|---|---|---|
//! | page | 1h | 5m | 14.4 | 2% |
//! | page | 6h | 30m | 6 | 5% |
//! | ticket | 3d | 6h | 1 | 10% |
//! | ticket (`ticket_fast: true`) | 1d | 2h | 3 | 10% |
//!
//! These are the numbers for a 30-day window; other windows scale the
//! durations by `window / 30d` (the burn rates, and so the budget spent at
//! firing, stay the same). The durations are rounded to whole steps of the
//! rule's grid (see [`plan`]).
//!
//! # Config
//!
//! ```yaml
//! slos:
//!   - name: PaymentsAvailability
//!     team: payments                 # the `team` label: routing
//!     objective: 99.9                # percent of good requests, in (0, 100)
//!     window: 30d                    # rolling window, at least 1d (default 30d)
//!     sli:                           # errors + total, or good + total
//!       errors: {namespace: Shop, metric: Errors, dimensions: {Service: payments}, stat: Sum}
//!       total: {namespace: Shop, metric: Requests, dimensions: {Service: payments}, stat: Sum}
//!     min_volume: {at_least: 500, window: 1h}   # optional guard on `total`
//!     ticket_fast: false             # also the 1d/2h ticket at 3x
//!     labels: {service: payments}
//!     annotations: {runbook_url: ..., dashboard: ...}
//! ```
//!
//! SLI metrics are counts (`stat: Sum` or `SampleCount`), so they add up over
//! windows. A **latency** SLO is either a `good` + `total` SLO whose `good`
//! metric counts the requests faster than the threshold (an embedded metric
//! format counter `FastRequests` next to `Requests`, a metric filter on
//! access logs), or, without any such counter, a `latency` SLI over the
//! latency metric itself:
//!
//! ```yaml
//!     sli:
//!       latency: {namespace: Shop, metric: Latency, dimensions: {Service: checkout}, under: 300, period: 1m}
//! ```
//!
//! which reads CloudWatch's percentile rank `PR(:300)` (the percentage of the
//! period's datapoints at or under 300) as `fast` and the metric's
//! `SampleCount` as `total`, and weights the first by the second: the bad
//! events of a datapoint are `total × (100 - fast) / 100`, so the windows'
//! ratios are of requests, not of datapoints. The budget (`budget_spent`)
//! is weighted the same way at its own period (CloudWatch computes the
//! percentile rank of each hour itself).
//!
//! # Generated rules
//!
//! For each alert, a rule named `<slo>:<severity>:<long window>` (such as
//! `PaymentsAvailability:page:1h`) with labels `severity` (`page` or
//! `ticket`), `slo`, `team` and the SLO's labels. Its expression computes the
//! burn rates with rolling sums ([`RSUM`](crate::expr)):
//!
//! ```text
//! long  = RSUM(FILL(errors, 0), 60) / RSUM(total, 60) / 0.001
//! short = RSUM(FILL(errors, 0), 5) / RSUM(total, 5) / 0.001
//! value = IF(short > 14.4, long, MIN(long, short))       condition: value > 14.4
//! ```
//!
//! so the condition holds exactly when both burn rates exceed the threshold,
//! and the value shown is the long-window burn rate while it does (otherwise
//! the lower of the two, which is at or under the threshold). With `good`,
//! the bad events are `total - FILL(good, 0)`; with `latency`,
//! `total * (100 - fast) / 100`, and the requests counted
//! `IF(fast >= 0, total)`: a datapoint with a `SampleCount` but no
//! percentile rank is left out of both sums (nothing says its requests were
//! fast), and the budget counts it as not covered (`budget_spent_covered`,
//! "Partial").
//!
//! Notifications state the budget left and the time until it is gone at the
//! current burn rate: the rules carry a context value `budget_spent` (the
//! share of the budget spent over the whole SLO window, from the same
//! metrics at 1-hour periods: 720 datapoints for 30 days, fetched only when
//! an alert fires or resolves, so the rules' own lookback stays short) and an
//! `error_budget` annotation that renders it with the value.

mod decode;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::decode::format_duration;
use crate::expr::Expr;
use crate::model::{
    Bounds, Condition, ContextValue, Labels, MetricSpec, MissingData, Op, Origin, Pending,
    RangeKind, RangeStat, Rule, Stat, Unit, VolumeGuard,
};

pub use decode::{SloBuilder, parse_slos};

/// Top-level keys this module decodes.
pub const SECTIONS: &[&str] = &["slos"];

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// The window the workbook's numbers are for.
pub const REFERENCE_WINDOW: Duration = Duration::from_secs(30 * DAY);

/// The context value the generated rules carry: the share of the error
/// budget spent over the SLO window (0.25 = a quarter spent; above 1: overspent).
pub const BUDGET_SPENT: &str = "budget_spent";

/// How an alert is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One alert of the multi-window, multi-burn-rate scheme.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnAlert {
    pub severity: Severity,
    /// The long window: how much of the burn must have happened.
    pub long: Duration,
    /// The short window (1/12 of the long): is it still burning?
    pub short: Duration,
    /// The burn-rate threshold both windows must exceed.
    pub burn: f64,
}

/// Page: 2% of a 30-day budget in an hour.
pub const PAGE_FAST: BurnAlert = BurnAlert {
    severity: Severity::Page,
    long: Duration::from_secs(HOUR),
    short: Duration::from_secs(5 * 60),
    burn: 14.4,
};
/// Page: 5% of a 30-day budget in six hours.
pub const PAGE_SLOW: BurnAlert = BurnAlert {
    severity: Severity::Page,
    long: Duration::from_secs(6 * HOUR),
    short: Duration::from_secs(30 * 60),
    burn: 6.0,
};
/// Ticket: 10% of a 30-day budget in three days.
pub const TICKET: BurnAlert = BurnAlert {
    severity: Severity::Ticket,
    long: Duration::from_secs(3 * DAY),
    short: Duration::from_secs(6 * HOUR),
    burn: 1.0,
};
/// Ticket, optional (`ticket_fast: true`): 10% of a 30-day budget in a day.
pub const TICKET_FAST: BurnAlert = BurnAlert {
    severity: Severity::Ticket,
    long: Duration::from_secs(DAY),
    short: Duration::from_secs(2 * HOUR),
    burn: 3.0,
};

impl BurnAlert {
    /// The alert for an SLO window: durations scaled by `window / 30d`.
    pub fn scaled(&self, window: Duration) -> BurnAlert {
        let scale = window.as_secs_f64() / REFERENCE_WINDOW.as_secs_f64();
        BurnAlert {
            long: self.long.mul_f64(scale),
            short: self.short.mul_f64(scale),
            ..*self
        }
    }

    /// The share of the SLO window's budget spent when the alert fires at
    /// exactly its threshold: `burn × long / window` (0.02 for the 1h page
    /// of a 30-day SLO).
    pub fn budget_spent(&self, window: Duration) -> f64 {
        self.burn * self.long.as_secs_f64() / window.as_secs_f64()
    }

    /// How long a constant `error_ratio` (0.01 = 1% of requests fail),
    /// starting from a clean window, takes to fire the alert for an SLO whose
    /// budget ratio is `budget` (0.001 for 99.9%): the long window's burn rate
    /// passes the threshold once `long × burn × budget / error_ratio` has
    /// passed (the short window's, sooner). `None` when the ratio never gets
    /// there (the burn rate `error_ratio / budget` is at or under the threshold).
    pub fn detection_time(&self, budget: f64, error_ratio: f64) -> Option<Duration> {
        if !(budget > 0.0 && error_ratio > 0.0) || error_ratio / budget <= self.burn {
            return None;
        }
        Some(
            self.long
                .mul_f64((self.burn * budget / error_ratio).min(1.0)),
        )
    }
}

/// An SLI: which events are bad, out of which.
#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    /// `errors` out of `total`.
    Errors {
        errors: MetricSpec,
        total: MetricSpec,
    },
    /// `total - good` out of `total` (availability or, with a count of fast
    /// requests as `good`, latency).
    Good { good: MetricSpec, total: MetricSpec },
    /// Latency: `fast` is the percentage of the metric's datapoints at or
    /// under a threshold (`PR(:300)`), `total` their count (`SampleCount`,
    /// the same metric); the bad events of a datapoint are
    /// `total × (100 - fast) / 100`.
    Latency { fast: MetricSpec, total: MetricSpec },
}

impl Sli {
    /// The latency SLI of a metric (`total`, a `SampleCount` query): the
    /// share of its datapoints at or under `under`.
    pub fn latency(total: MetricSpec, under: f64) -> Sli {
        let fast = MetricSpec {
            stat: Stat::Range(RangeStat {
                kind: RangeKind::PercentileRank,
                lower: None,
                upper: Some(under),
                bounds: Bounds::Value,
            }),
            ..total.clone()
        };
        Sli::Latency {
            fast,
            total: MetricSpec {
                stat: Stat::SampleCount,
                ..total
            },
        }
    }

    /// Metric id -> query.
    pub fn metrics(&self) -> BTreeMap<String, MetricSpec> {
        let (id, spec, total) = match self {
            Sli::Errors { errors, total } => ("errors", errors, total),
            Sli::Good { good, total } => ("good", good, total),
            Sli::Latency { fast, total } => ("fast", fast, total),
        };
        BTreeMap::from([
            (id.to_string(), spec.clone()),
            ("total".to_string(), total.clone()),
        ])
    }

    /// The bad events of one datapoint, as an expression over [`Sli::metrics`].
    fn bad(&self) -> &'static str {
        match self {
            Sli::Errors { .. } => "FILL(errors, 0)",
            Sli::Good { .. } => "total - FILL(good, 0)",
            // Missing without the percentile rank: nothing is known of
            // those requests (not that they were fast).
            Sli::Latency { .. } => "total * (100 - fast) / 100",
        }
    }

    /// The events of one datapoint that count, as an expression over
    /// [`Sli::metrics`]: `total`, but for a latency SLI only where the
    /// percentile rank is known (a datapoint with a `SampleCount` and no
    /// `PR` is left out of both sums, not counted as fast).
    fn counted(&self) -> &'static str {
        match self {
            Sli::Errors { .. } | Sli::Good { .. } => "total",
            Sli::Latency { .. } => "IF(fast >= 0, total)",
        }
    }

    /// The metric ids whose missing datapoint, where the others have one,
    /// leaves that datapoint out: it counts as not covered
    /// ([`ContextValue::required`]).
    fn required(&self) -> Vec<String> {
        match self {
            Sli::Errors { .. } | Sli::Good { .. } => Vec::new(),
            Sli::Latency { .. } => vec!["fast".to_string()],
        }
    }

    /// The largest period of the SLI's metrics: the finest step a rule can use.
    pub fn period(&self) -> Duration {
        self.metrics()
            .values()
            .map(|m| m.period)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }
}

/// The minimum-volume guard of an SLO's alerts, on `total`.
#[derive(Debug, Clone, PartialEq)]
pub struct SloVolume {
    pub at_least: f64,
    pub window: Duration,
}

/// A validated SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: String,
    /// Where the SLO's `name` was written (the generated rules point here too).
    pub origin: Origin,
    pub team: String,
    /// Percent of good events, in (0, 100).
    pub objective: f64,
    pub window: Duration,
    pub sli: Sli,
    /// Also generate the 1d/2h ticket at 3x.
    pub ticket_fast: bool,
    pub min_volume: Option<SloVolume>,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
}

/// One generated alert: its (scaled) windows and the grid it runs on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planned {
    /// The alert with its windows scaled to the SLO window (not yet rounded).
    pub alert: BurnAlert,
    /// The rule's step: its metrics' period and its evaluation interval.
    pub step: Duration,
    /// Datapoints in the long and the short window.
    pub long_n: u32,
    pub short_n: u32,
}

impl Planned {
    /// The long window as evaluated (whole steps).
    pub fn long(&self) -> Duration {
        self.step * self.long_n
    }

    /// The short window as evaluated (whole steps).
    pub fn short(&self) -> Duration {
        self.step * self.short_n
    }
}

/// Steps a generated rule may run on, finest first.
const STEPS: &[u64] = &[60, 300, 900, HOUR, 6 * HOUR, DAY];
/// The most datapoints a long window may span: the step is the finest one
/// that keeps the long window within this (1h at 1m: 60; 6h at 1m: 360; 3d
/// at 15m: 288).
pub const MAX_WINDOW_POINTS: u64 = 360;

/// Chooses the grid of an alert: the finest step (at least the SLI's period
/// and a multiple of it) whose long window spans at most
/// [`MAX_WINDOW_POINTS`] datapoints; the windows are rounded to whole steps
/// (at least one).
pub fn plan(alert: BurnAlert, sli_period: Duration) -> Planned {
    let p = sli_period.as_secs().max(1);
    let long = alert.long.as_secs_f64();
    let step = STEPS
        .iter()
        .copied()
        .find(|&s| s >= p && s % p == 0 && long / s as f64 <= MAX_WINDOW_POINTS as f64)
        .unwrap_or_else(|| {
            // An unusual SLI period: whole multiples of it.
            let k = (long / (p * MAX_WINDOW_POINTS) as f64).ceil().max(1.0) as u64;
            p * k
        });
    let n = |d: Duration| ((d.as_secs_f64() / step as f64).round() as u32).max(1);
    Planned {
        alert,
        step: Duration::from_secs(step),
        long_n: n(alert.long),
        short_n: n(alert.short),
    }
}

/// Formats a number for expressions and messages without float noise:
/// 0.0010000000000000009 -> `0.001`, 14.4 -> `14.4`.
pub fn number(v: f64) -> String {
    let s = format!("{v:.10}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

impl Slo {
    /// The error budget as a ratio of events: 0.001 for 99.9%.
    pub fn budget(&self) -> f64 {
        (100.0 - self.objective) / 100.0
    }

    /// The alerts of this SLO, scaled to its window.
    pub fn alerts(&self) -> Vec<BurnAlert> {
        let mut out = vec![PAGE_FAST, PAGE_SLOW, TICKET];
        if self.ticket_fast {
            out.push(TICKET_FAST);
        }
        out.iter().map(|a| a.scaled(self.window)).collect()
    }

    /// The alerts with their grids.
    pub fn plans(&self) -> Vec<Planned> {
        let p = self.sli.period();
        self.alerts().into_iter().map(|a| plan(a, p)).collect()
    }

    /// The burn rate over `n` datapoints, as an expression.
    fn burn_expr(&self, n: u32) -> String {
        format!(
            "RSUM({}, {n}) / RSUM({}, {n}) / {}",
            self.sli.bad(),
            self.sli.counted(),
            number(self.budget())
        )
    }

    /// The expression of a planned alert (see the module docs).
    pub fn expression(&self, p: &Planned) -> String {
        let long = self.burn_expr(p.long_n);
        let short = self.burn_expr(p.short_n);
        let x = number(p.alert.burn);
        format!("IF({short} > {x}, {long}, MIN({long}, {short}))")
    }

    /// The period of the budget query: 1h, or 1d for windows over 90 days
    /// (at most about 2,200 datapoints), and never finer than the SLI.
    pub fn budget_period(&self) -> Duration {
        let p = if self.window > Duration::from_secs(90 * DAY) {
            DAY
        } else {
            HOUR
        };
        let sli = self.sli.period().as_secs().max(1);
        Duration::from_secs(p.div_ceil(sli) * sli)
    }

    /// The share of the budget spent over the whole window, as an expression
    /// of whole-series sums (one value broadcast over the grid).
    pub fn budget_expression(&self) -> String {
        let bad = match self.sli {
            Sli::Errors { .. } => "SUM(FILL(errors, 0))".to_string(),
            Sli::Good { .. } => "(SUM(total) - SUM(FILL(good, 0)))".to_string(),
            Sli::Latency { .. } => format!("SUM({})", self.sli.bad()),
        };
        format!(
            "{bad} / SUM({}) / {}",
            self.sli.counted(),
            number(self.budget())
        )
    }

    /// The generated rules, one per alert. Fails only if a generated
    /// expression does not parse (a bug, reported as a config error).
    pub fn rules(&self) -> Result<Vec<Rule>, String> {
        self.plans().iter().map(|p| self.rule(p)).collect()
    }

    fn with_period(&self, period: Duration) -> BTreeMap<String, MetricSpec> {
        self.sli
            .metrics()
            .into_iter()
            .map(|(id, mut m)| {
                m.period = period;
                (id, m)
            })
            .collect()
    }

    fn rule(&self, p: &Planned) -> Result<Rule, String> {
        let severity = p.alert.severity.as_str();
        let long = format_duration(p.long());
        let short = format_duration(p.short());
        let name = format!("{}:{severity}:{long}", self.name);
        let src = self.expression(p);
        let expression =
            Expr::parse(&src).map_err(|e| format!("generated expression {src:?}: {e}"))?;
        let budget_src = self.budget_expression();
        let budget_expr = Expr::parse(&budget_src)
            .map_err(|e| format!("generated expression {budget_src:?}: {e}"))?;

        let mut labels = self.labels.clone();
        labels.insert("team".to_string(), self.team.clone());
        labels.insert("severity".to_string(), severity.to_string());
        labels.insert("slo".to_string(), self.name.clone());

        let window = format_duration(self.window);
        let x = number(p.alert.burn);
        let spent = number(p.alert.budget_spent(self.window) * 100.0);
        let mut annotations = self.annotations.clone();
        let title = annotations
            .get("title")
            .cloned()
            .unwrap_or_else(|| self.name.clone());
        annotations.insert(
            "title".to_string(),
            format!("{title}: error budget burn over {long}"),
        );
        annotations
            .entry("summary".to_string())
            .or_insert_with(|| {
                format!(
                    "{} is burning its error budget {{{{ value }}}}x as fast as it can afford over the last {long} (threshold {{{{ threshold }}}}x, also over the last {short})",
                    self.name
                )
            });
        annotations
            .entry("description".to_string())
            .or_insert_with(|| {
                format!(
                    "SLO {}: {}% of requests good over {window}. This {severity} fires when the last {long} and the last {short} both burn the error budget faster than {x}x; at {x}x, {spent}% of the {window} budget goes in {long}.",
                    self.name,
                    number(self.objective)
                )
            });
        annotations.insert("error_budget".to_string(), budget_template(self.window));

        Ok(Rule {
            name,
            origin: self.origin.clone(),
            interval: p.step,
            metrics: self.with_period(p.step),
            expression_src: src,
            expression,
            condition: Condition {
                op: Op::Gt,
                threshold: p.alert.burn,
                recovery: None,
            },
            // The short window is the confirmation: no pending period.
            pending: Pending::For(Duration::ZERO),
            keep_firing_for: Duration::ZERO,
            evaluation_delay: Duration::ZERO,
            arrival_grace: None,
            missing_data: MissingData::Keep,
            min_volume: self.min_volume.as_ref().map(|v| VolumeGuard {
                metric: "total".to_string(),
                at_least: v.at_least,
                window: v.window,
            }),
            unit: Unit::None,
            labels,
            annotations,
            context: vec![ContextValue {
                name: BUDGET_SPENT.to_string(),
                metrics: self.with_period(self.budget_period()),
                expression: budget_expr,
                window: self.window,
                required: self.sli.required(),
            }],
        })
    }
}

/// The `error_budget` annotation: the budget left over the window and, at
/// the current burn rate (the alert's value), the time until it is gone,
/// marked partial when the data covers less than the window. A template
/// over `budget_spent` and `budget_spent_covered` (bound by the engine) and
/// `value_raw`.
pub fn budget_template(window: Duration) -> String {
    let w = format_duration(window);
    let hours = number(window.as_secs_f64() / HOUR as f64);
    format!(
        "{{% if {BUDGET_SPENT} is none %}}Error budget left: unknown (no data over the last {w}).\
{{% elif {BUDGET_SPENT} >= 1 %}}Error budget exhausted: {{{{ ({BUDGET_SPENT} * 100) | round(1) }}}}% of the {w} budget spent.\
{{% else %}}Error budget left: {{{{ ((1 - {BUDGET_SPENT}) * 100) | round(1) }}}}% of the {w} budget\
{{% if value_raw is number and value_raw > 0 %}}; at {{{{ value_raw | round(1) }}}}x it is gone in \
{{% set h = (1 - {BUDGET_SPENT}) * {hours} / value_raw %}}\
{{% if h >= 48 %}}{{{{ (h / 24) | round(1) }}}} days\
{{% elif h >= 1 %}}{{{{ h | round(1) }}}} hours\
{{% else %}}{{{{ (h * 60) | round | int }}}} minutes{{% endif %}}\
{{% endif %}}.{{% endif %}}\
{{% if {BUDGET_SPENT} is not none and {BUDGET_SPENT}_covered is number and {BUDGET_SPENT}_covered < 0.99 %}} \
(Partial: computed from only {{% set d = {BUDGET_SPENT}_covered * {hours} %}}\
{{% if d >= 48 %}}{{{{ (d / 24) | round(1) }}}} days{{% else %}}{{{{ d | round(1) }}}} hours{{% endif %}} \
of data, not the full {w}.){{% endif %}}"
    )
}

/// Time until the budget is gone at a burn rate, from the share spent:
/// `(1 - spent) × window / burn`. `None` when already gone or not burning.
pub fn time_to_exhaustion(window: Duration, spent: f64, burn: f64) -> Option<Duration> {
    if spent >= 1.0 || !burn.is_finite() || burn <= 0.0 {
        return None;
    }
    Some(window.mul_f64((1.0 - spent) / burn))
}

/// The rules of every SLO, in order.
pub fn rules(slos: &[Slo]) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    for s in slos {
        out.extend(s.rules()?);
    }
    Ok(out)
}
