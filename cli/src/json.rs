//! The JSON documents the commands print with `-o json`: one versioned
//! schema per entity, published under `docs/schemas/<entity>.schema.json`
//! and described in `docs/output.md`. Every object carries its `schema`
//! (`firebell.<entity>/v1`); times are RFC 3339 (UTC). Adding a field keeps
//! the version; removing or retyping one makes the next version.

use firebell_core::diag::{Diagnostic, Severity};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_engine::history::Notification;
use firebell_engine::{CycleReport, Transition};
use firebell_notify::{RouteMatch, SilenceView};
use serde_json::{Value, json};

use crate::timefmt::rfc3339;

pub(crate) const TRANSITION: &str = "firebell.transition/v1";
pub(crate) const CYCLE: &str = "firebell.cycle/v1";
pub(crate) const SILENCE: &str = "firebell.silence/v1";
pub(crate) const DIAGNOSTIC: &str = "firebell.diagnostic/v1";
pub(crate) const ROUTE: &str = "firebell.route/v1";
pub(crate) const COST: &str = "firebell.cost/v1";

/// Prints one JSON document on a line of its own.
pub(crate) fn print(v: &Value) {
    println!("{v}");
}

/// A notification record (`firebell.notification-record/v1`): the one the
/// engine's history keeps, [`Notification::to_json`].
pub(crate) fn notification(n: &Notification) -> Value {
    n.to_json()
}

/// The event's name: `fired`, `resolved`, `pending`, `pending_cleared`,
/// `no_data_started`, `no_data_ended`.
pub(crate) fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Pending { .. } => "pending",
        Event::PendingCleared { .. } => "pending_cleared",
        Event::Fired { .. } => "fired",
        Event::Resolved { .. } => "resolved",
        Event::NoDataStarted { .. } => "no_data_started",
        Event::NoDataEnded { .. } => "no_data_ended",
    }
}

/// A state change seen by the cycle at `tick` (`firebell.transition/v1`).
pub(crate) fn transition(tick: Epoch, t: &Transition) -> Value {
    let value = match t.event {
        Event::Fired { value, .. } | Event::Resolved { value, .. } => {
            value.filter(|v| v.is_finite())
        }
        _ => None,
    };
    json!({
        "schema": TRANSITION,
        "at": rfc3339(t.event.at()),
        "tick": rfc3339(tick),
        "rule": t.rule,
        "labels": t.labels,
        "event": event_name(&t.event),
        "value": value,
    })
}

/// A cycle's summary (`firebell.cycle/v1`); the field names are those of
/// `firebell_engine::history::CycleRecord`.
pub(crate) fn cycle(r: &CycleReport, duration_ms: u64) -> Value {
    json!({
        "schema": CYCLE,
        "tick": rfc3339(r.tick),
        "skipped": r.skipped.map(|s| match s {
            firebell_engine::Skip::Duplicate => "duplicate",
            firebell_engine::Skip::Overlap => "overlap",
        }),
        "duration_ms": duration_ms,
        "rules_evaluated": r.rules_evaluated,
        "instances_evaluated": r.instances_evaluated,
        "transitions": r.transitions.len(),
        "notifications": r.notifications_sent,
        "store_writes": r.store_writes,
        "incomplete": r.incomplete,
        "stopped_early": r.stopped_early,
        "errors": r.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// A cycle as the history keeps it (`firebell.cycle/v1`, as [`cycle`]).
pub(crate) fn cycle_record(c: &firebell_engine::history::CycleRecord) -> Value {
    json!({
        "schema": CYCLE,
        "tick": rfc3339(c.tick),
        "skipped": null,
        "duration_ms": c.duration_ms,
        "rules_evaluated": c.rules_evaluated,
        "instances_evaluated": c.instances_evaluated,
        "transitions": c.transitions,
        "notifications": c.notifications,
        "store_writes": c.store_writes,
        "incomplete": c.incomplete,
        "stopped_early": c.stopped_early,
        "errors": c.errors,
    })
}

/// A silence and its state now (`firebell.silence/v1`).
pub(crate) fn silence(v: &SilenceView) -> Value {
    let s = &v.silence;
    json!({
        "schema": SILENCE,
        "id": s.id,
        "state": v.state.as_str(),
        "matchers": s.matchers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "starts_at": rfc3339(s.starts_at),
        "ends_at": rfc3339(s.ends_at),
        "created_by": s.created_by,
        "comment": s.comment,
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
    })
}

/// A finding of validate, lint or test (`firebell.diagnostic/v1`).
pub(crate) fn diagnostic(d: &Diagnostic) -> Value {
    let mut v = json!({
        "schema": DIAGNOSTIC,
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "severity": match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "message": d.message,
    });
    if !d.code.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.insert("code".into(), d.code.clone().into());
    }
    v
}

/// One route a label set reaches (`firebell.route/v1`).
pub(crate) fn route(m: &RouteMatch, labels: &firebell_core::model::Labels) -> Value {
    json!({
        "schema": ROUTE,
        "receiver": m.receiver,
        "path": m.path,
        "description": m.description,
        "group_by": match &m.group_by {
            firebell_notify::GroupBy::All => vec!["...".to_string()],
            firebell_notify::GroupBy::Labels(l) => l.clone(),
        },
        "group_labels": m.group_by.group_labels(labels),
        "group_wait_secs": m.timing.group_wait.as_secs(),
        "group_interval_secs": m.timing.group_interval.as_secs(),
        "repeat_interval_secs": m.timing.repeat_interval.as_secs(),
        "mute_time_intervals": m.mute_time_intervals,
        "active_time_intervals": m.active_time_intervals,
    })
}

/// The monthly cost estimate of a config (`firebell.cost/v1`), in US dollars.
pub(crate) fn cost(config: &str, e: &firebell_tools::cost::Estimate) -> Value {
    let mut v = cost_fields(config, e);
    // Only with queries, so other configs' output stays as it was.
    if !e.insights.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.insert(
            "metrics_insights".to_string(),
            e.insights
                .iter()
                .map(|q| {
                    json!({
                        "query": q.query,
                        "metrics_analyzed_per_fetch": q.analyzed,
                        "metrics_analyzed_assumed": true,
                        "series_per_fetch": q.series,
                        "fetches": q.fetches,
                    })
                })
                .collect(),
        );
    }
    v
}

fn cost_fields(config: &str, e: &firebell_tools::cost::Estimate) -> Value {
    json!({
        "schema": COST,
        "config": config,
        "currency": "USD",
        "rules": e.rules.iter().map(|r| json!({
            "rule": r.rule,
            "interval_secs": r.interval.as_secs(),
            "instances": r.instances,
            "metrics_per_evaluation": r.metrics_per_evaluation,
            "get_metric_data": r.get_metric_data,
            "list_metrics": r.list_metrics,
            "dynamodb": r.dynamodb,
            "sns": r.sns,
            "total": r.total(),
            "alarm_equivalent": {
                "alarms": r.alarm.alarms,
                "metrics": r.alarm.metrics,
                "composite": r.alarm.composite,
                "high_resolution": r.alarm.high_resolution,
                "cost": r.alarm.cost,
                "description": r.alarm.describe(),
            },
            "mode": r.mode.name(),
            "sentinel": match &r.mode {
                firebell_tools::cost::RuleMode::Sentinel(name) => Value::from(name.as_str()),
                firebell_tools::cost::RuleMode::Polling(_) => Value::Null,
            },
            "polling_reason": match &r.mode {
                firebell_tools::cost::RuleMode::Polling(why) => Value::from(why.to_string()),
                firebell_tools::cost::RuleMode::Sentinel(_) => Value::Null,
            },
            "polling_cost": r.polling,
            "sentinel_cost": r.sentinel.map(|c| json!({
                "alarm": c.alarm,
                "sweeps": c.sweeps,
                "hot": c.hot,
                "total": c.total(),
            })),
            "fetches": r.fetches,
        })).collect::<Vec<_>>(),
        "cycles": e.cycles,
        "metrics_requested": e.metrics_requested,
        "get_metric_data": e.get_metric_data,
        "list_metrics": e.list_metrics,
        "shards": e.shards,
        "lambda_requests": e.lambda_requests,
        "lambda": e.lambda,
        "step_functions": e.step_functions,
        "read_units_per_tick": e.read_units_per_tick,
        "dynamodb": e.dynamodb,
        "sns": e.sns,
        "total": e.total,
        "cloudwatch_alarms": e.cloudwatch_alarms,
        "sentinels": {
            "mode": e.sentinels.mode,
            "from_config": e.sentinels.from_config,
            "sweep_secs": e.sentinels.sweep.as_secs(),
            "hot_hours": e.sentinels.hot_hours,
            "covered_rules": e.sentinels.covered_rules,
            "alarm_cost": e.sentinels.alarm_cost,
            "describe_alarms_requests": e.sentinels.describe_alarms_requests,
            "describe_alarms": e.sentinels.describe_alarms,
            "polling_get_metric_data": e.sentinels.polling_get_metric_data,
            "alarms": e.sentinels.alarms.iter().map(|a| json!({
                "name": a.name,
                "rules": a.rules,
                "metrics": a.metrics,
                "used": a.used,
                "polling": a.cost.polling,
                "sentinel": a.cost.sentinel,
                "alarm": a.cost.alarm,
                "sweeps": a.cost.sweeps,
                "hot": a.cost.hot,
                "alarm_equivalent": a.alarm_equivalent,
            })).collect::<Vec<_>>(),
        },
    })
}
