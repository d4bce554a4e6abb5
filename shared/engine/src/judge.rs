//! The judge: one alert instance, one cycle, no I/O.
//!
//! Given a rule, the instance's inputs aligned on the rule's grid, and the
//! instance's stored state, [`judge`] evaluates the expression, applies the
//! minimum-volume guard and the arrival grace, and steps the alert state
//! machine through every datapoint it has not judged yet. It returns the new
//! state, the events, and the values an alert shows. [`alert_records`]
//! turns the events into the alert records the pipeline sees.
//!
//! Every path that judges — the Lambda and `firebell run` (through the
//! engine's cycle), the demo, backtests and rule unit tests (through the
//! same cycle on the in-memory adapters) — calls these functions; nothing
//! re-implements arrival, the guard or alert construction.

use std::collections::BTreeMap;

use firebell_core::alert::{Alert, AlertStatus, fingerprint, nodata_labels};
use firebell_core::expr::EvalError;
use firebell_core::model::{Labels, Rule};
use firebell_core::series::{Epoch, Grid, Series, window_at_least};
use firebell_core::state::{Event, InstanceState, Machine, Observation, Status};

/// How many of the latest judged datapoints an alert carries (sparkline,
/// recent values).
pub const RECENT_POINTS: usize = 30;

/// What the judge needs about one instance.
#[derive(Debug, Clone, Copy)]
pub struct JudgeInput<'a> {
    pub rule: &'a Rule,
    /// The rule's grid as of this cycle.
    pub grid: &'a Grid,
    /// The instance's metrics, by the rule's metric ids, aligned on `grid`.
    pub inputs: &'a BTreeMap<&'a str, Series>,
    /// Trailing buckets where some input has no datapoint yet are "not
    /// arrived" (not judged) for this many periods; then they count as
    /// missing. The default: a rule's own `arrival_grace` wins.
    pub arrival_grace_periods: i64,
}

/// What the judge decided for one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The state after every datapoint judged this cycle.
    pub state: InstanceState,
    /// The state changes, in order.
    pub events: Vec<Event>,
    /// The latest judged datapoints (at most [`RECENT_POINTS`]).
    pub recent: Vec<(Epoch, Option<f64>)>,
    /// The latest value among them.
    pub value: Option<f64>,
    /// The latest datapoint time judged (see [`judge_until`]).
    pub judged_until: Epoch,
    /// Whether something must be written: a durable state change or an event.
    pub changed: bool,
}

/// Judges one instance whose stored state is `stored` (the default state
/// for an instance never seen). Fails only when the expression cannot be
/// evaluated.
pub fn judge(input: JudgeInput<'_>, stored: &InstanceState) -> Result<Judgement, EvalError> {
    judge_observing(input, stored, &mut |_| {})
}

/// [`judge`], showing `observe` every datapoint it steps the state machine
/// through, in order: the expression's value and whether the
/// minimum-volume guard let it be judged (for reports that chart what the
/// engine judged; the cycle calls it only with
/// `EngineOptions::record_views`).
pub fn judge_observing(
    input: JudgeInput<'_>,
    stored: &InstanceState,
    observe: &mut dyn FnMut(Observation),
) -> Result<Judgement, EvalError> {
    let JudgeInput {
        rule,
        grid,
        inputs,
        arrival_grace_periods,
    } = input;
    let values = rule
        .expression
        .eval(grid, &|id| inputs.get(id).map(|s| s.as_slice()))?;
    let step = grid.step.max(1);
    let grace = rule.arrival_grace.map_or(arrival_grace_periods, |g| {
        i64::try_from(g.as_secs().div_ceil(step.unsigned_abs())).unwrap_or(i64::MAX)
    });
    let mut until = judge_until(grid, inputs, grace);
    // `evaluation_delay`: only datapoints whose period ended that long ago.
    let delay = i64::try_from(rule.evaluation_delay.as_secs()).unwrap_or(i64::MAX);
    if delay > 0 {
        until = until.min(grid.end().saturating_sub(delay).saturating_sub(step));
    }
    let guard: Option<Vec<bool>> = rule.min_volume.as_ref().map(|g| {
        inputs
            .get(g.metric.as_str())
            .map(|s| window_at_least(grid, s, g.window.as_secs() as i64, g.at_least))
            .unwrap_or_else(|| vec![false; grid.len])
    });
    let machine = Machine::for_rule(rule);
    let mut state = stored.clone();
    let mut events = Vec::new();
    for (i, t) in grid
        .times()
        .enumerate()
        .skip(first_point(rule, &state, &values, grid))
    {
        if t > until {
            break;
        }
        let judged = guard
            .as_ref()
            .is_none_or(|g| g.get(i).copied().unwrap_or(false));
        let obs = Observation {
            t,
            value: values.get(i).copied().flatten(),
            judged,
        };
        observe(obs);
        machine.step_into(&mut state, obs, &mut events);
    }
    let judged: Vec<(Epoch, Option<f64>)> = grid
        .times()
        .zip(values.iter().copied())
        .filter(|(t, _)| *t <= until)
        .collect();
    let recent = judged[judged.len().saturating_sub(RECENT_POINTS)..].to_vec();
    let value = recent.iter().rev().find_map(|(_, v)| *v);
    let changed = state.durably_differs(stored) || !events.is_empty();
    Ok(Judgement {
        state,
        events,
        recent,
        value,
        judged_until: until,
        changed,
    })
}

/// The first grid index to judge.
///
/// A fresh instance starts at its first datapoint: the empty stretch before
/// it is history it never saw, not missing data (a window with no data at
/// all is still judged as missing). A wildcard instance that never had data
/// (a dimension value ListMetrics still lists but that stopped reporting) is
/// not judged. The warm-up points, whose expression history or guard window
/// would reach before the fetched data, are never judged.
fn first_point(rule: &Rule, state: &InstanceState, values: &[Option<f64>], grid: &Grid) -> usize {
    let first = if state.last_t.is_none() {
        let no_data = if rule.metrics.values().any(|m| m.has_wildcard()) {
            grid.len
        } else {
            0
        };
        values.iter().position(Option::is_some).unwrap_or(no_data)
    } else {
        0
    };
    first.max(rule.warmup_points())
}

/// The latest datapoint time to judge: trailing buckets where no input has
/// any data are "not arrived yet" for `grace` periods, then they count as
/// missing. Within the grace window a bucket is judged only once every input
/// has its datapoint: a bucket with requests but not yet errors is not 0%.
pub fn judge_until(grid: &Grid, inputs: &BTreeMap<&str, Series>, grace: i64) -> Epoch {
    let last_bucket = grid.time(grid.len.saturating_sub(1));
    let last_present = (0..grid.len)
        .rev()
        .find(|&i| {
            inputs
                .values()
                .all(|s| s.get(i).copied().flatten().is_some())
        })
        .map(|i| grid.time(i));
    let floor = last_bucket - grace * grid.step;
    match last_present {
        Some(t) => t.max(floor),
        None => floor,
    }
}

/// Whether the judgement has an alert to record or a firing alert to keep
/// current, so the rule's context values (an SLO's budget) are needed.
/// Quiet instances fetch nothing.
pub fn needs_context(rule: &Rule, j: &Judgement) -> bool {
    !rule.context.is_empty() && (j.events.iter().any(makes_alert) || is_firing(&j.state))
}

/// Whether an event makes an alert record.
fn makes_alert(ev: &Event) -> bool {
    !matches!(ev, Event::Pending { .. } | Event::PendingCleared { .. })
}

/// Whether an instance currently counts as firing (for reports and tools).
pub fn is_firing(st: &InstanceState) -> bool {
    matches!(st.status, Status::Firing | Status::NoData)
}

/// The alert records the judgement's events make visible to the pipeline,
/// each with the event that made it (pending events make none).
/// `annotations` are the rule's templates, with context values bound when
/// the rule has them ([`with_context`]).
pub fn alert_records(
    rule: &Rule,
    labels: &Labels,
    j: &Judgement,
    annotations: &BTreeMap<String, String>,
) -> Vec<(Event, Option<Alert>)> {
    j.events
        .iter()
        .map(|ev| {
            let alert = alert_for_event(rule, annotations, labels, &j.state, ev, &j.recent);
            (*ev, alert)
        })
        .collect()
}

/// An alert record of `labels` in `status`, as of state `st`.
fn alert_record(
    rule: &Rule,
    annotations: &BTreeMap<String, String>,
    labels: &Labels,
    st: &InstanceState,
    status: AlertStatus,
    recent: &[(Epoch, Option<f64>)],
) -> Alert {
    Alert {
        fingerprint: fingerprint(labels),
        labels: labels.clone(),
        annotations: annotations.clone(),
        status,
        active_since: st.active_since.or(st.fired_at).unwrap_or(0),
        fired_at: st.fired_at.unwrap_or(0),
        resolved_at: None,
        value: st.value,
        peak: st.peak,
        op: rule.condition.op,
        threshold: rule.condition.threshold,
        unit: rule.unit,
        recent: recent.to_vec(),
        expression: rule.expression_src.clone(),
        metrics: rule.metrics.clone(),
    }
}

/// The alert record an event makes visible to the pipeline.
fn alert_for_event(
    rule: &Rule,
    annotations: &BTreeMap<String, String>,
    labels: &Labels,
    st: &InstanceState,
    ev: &Event,
    recent: &[(Epoch, Option<f64>)],
) -> Option<Alert> {
    let record =
        |labels: &Labels, status| alert_record(rule, annotations, labels, st, status, recent);
    match *ev {
        Event::Fired { .. } => Some(record(labels, AlertStatus::Firing)),
        Event::Resolved { at, value } => {
            let mut a = record(labels, AlertStatus::Resolved);
            a.resolved_at = Some(at);
            a.value = value.or(st.value);
            Some(a)
        }
        Event::NoDataStarted { at } => {
            let mut a = record(&nodata_labels(labels), AlertStatus::Firing);
            a.active_since = st.nodata_since.unwrap_or(at);
            a.fired_at = at;
            a.value = None;
            Some(a)
        }
        Event::NoDataEnded { at } => {
            let mut a = record(&nodata_labels(labels), AlertStatus::Resolved);
            a.active_since = at;
            a.fired_at = at;
            a.resolved_at = Some(at);
            Some(a)
        }
        Event::Pending { .. } | Event::PendingCleared { .. } => None,
    }
}

/// The alert an instance in state `st` is now, for tools that show the
/// current alerts (`firebell test`): pending and firing instances under
/// their own labels, NoData under the NoData labels, with `value` (the
/// latest judged value; none for NoData); `None` when inactive or resolved.
pub fn current_alert(
    rule: &Rule,
    labels: &Labels,
    st: &InstanceState,
    value: Option<f64>,
    annotations: &BTreeMap<String, String>,
) -> Option<Alert> {
    let (labels, value) = match st.status {
        Status::Pending | Status::Firing => (labels.clone(), value),
        Status::NoData => (nodata_labels(labels), None),
        _ => return None,
    };
    let mut a = alert_record(rule, annotations, &labels, st, AlertStatus::Firing, &[]);
    a.active_since = st
        .active_since
        .or(st.fired_at)
        .or(st.nodata_since)
        .unwrap_or(0);
    a.value = value;
    Some(a)
}

/// The annotation templates with context values bound: a template that
/// mentions a value's name starts with `{% set name = value %}` (`none` when
/// unknown), so the renderer's templates can use it like any variable.
/// Templates that mention none are left as they are.
pub fn with_context(
    annotations: &BTreeMap<String, String>,
    values: &[(String, Option<f64>)],
) -> BTreeMap<String, String> {
    annotations
        .iter()
        .map(|(k, t)| {
            let mut prefix = String::new();
            for (name, v) in values {
                if t.contains(name.as_str()) {
                    prefix.push_str(&format!("{{% set {name} = {} %}}", literal(*v)));
                }
            }
            (k.clone(), format!("{prefix}{t}"))
        })
        .collect()
}

/// A context value as a template literal: at most 9 decimals, `none` when unknown.
fn literal(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.9}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s.is_empty() || s == "-" {
                "0".to_string()
            } else {
                s.to_string()
            }
        }
        _ => "none".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_values_are_bound_only_where_mentioned() {
        let ann: BTreeMap<String, String> = [
            ("a".to_string(), "left {{ 1 - budget_spent }}".to_string()),
            ("b".to_string(), "https://runbooks.example.com".to_string()),
        ]
        .into();
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(0.25))]);
        assert_eq!(
            got["a"],
            "{% set budget_spent = 0.25 %}left {{ 1 - budget_spent }}"
        );
        assert_eq!(got["b"], "https://runbooks.example.com");
        let got = with_context(&ann, &[("budget_spent".to_string(), None)]);
        assert_eq!(
            got["a"],
            "{% set budget_spent = none %}left {{ 1 - budget_spent }}"
        );
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(1.0 / 3.0))]);
        assert!(got["a"].starts_with("{% set budget_spent = 0.333333333 %}"));
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(-2.0))]);
        assert!(got["a"].starts_with("{% set budget_spent = -2 %}"));
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(1e-12))]);
        assert!(got["a"].starts_with("{% set budget_spent = 0 %}"));
    }
}
