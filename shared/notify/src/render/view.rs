//! What messages are made of: one [`AlertView`] per listed alert, with every
//! annotation rendered and every value, time and link formatted once.
//! Views are also the `alerts` of the receiver templates' context.

use std::collections::BTreeMap;

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::Labels;
use firebell_core::series::Epoch;
use serde::Serialize;

use firebell_core::text::rfc3339;

use super::format::{Zone, duration, mentions, one_line, sparkline, truncate, unit_name};
use super::links::console_url;
use super::template::{Sandbox, annotations};

/// Most recent datapoints kept per alert (sparkline, payload).
pub(crate) const MAX_RECENT: usize = 60;
/// Recent values listed in the text body.
pub(crate) const LISTED_VALUES: usize = 10;
/// Caps (in characters) that keep one alert from filling a message.
pub(crate) const MAX_LABEL_VALUE: usize = 1024;
pub(crate) const MAX_ANNOTATION: usize = 4096;
pub(crate) const MAX_EXPRESSION: usize = 2048;
/// A `summary` at most this long can be an alert's title.
const MAX_SUMMARY_TITLE: usize = 80;
const MAX_TITLE: usize = 200;

/// Everything the renderer needs besides the alerts.
#[derive(Debug)]
pub(crate) struct Setting<'s> {
    pub zone: Zone,
    /// The notification's decision time.
    pub at: Epoch,
    pub region: String,
    /// [`crate::MessageOptions::role_accounts`].
    pub role_accounts: &'s std::collections::BTreeSet<String>,
    pub sandbox: Sandbox<'s>,
}

/// One recent datapoint.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PointView {
    pub at: String,
    pub value: Option<f64>,
    pub value_text: Option<String>,
}

/// Links of an alert.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Links {
    pub runbook: Option<String>,
    pub dashboard: Option<String>,
    pub console: Option<String>,
}

/// An alert ready to print. Field names are part of the template context.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlertView {
    pub fingerprint: String,
    pub status: &'static str,
    pub alertname: String,
    /// `title` annotation, else a short `summary`, else the alert name.
    pub title: String,
    /// One sentence: what happened, since when, for how long.
    pub headline: String,
    pub labels: Labels,
    /// All annotations, rendered.
    pub annotations: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub value_text: Option<String>,
    pub threshold: f64,
    pub threshold_text: String,
    pub op: String,
    pub unit: &'static str,
    pub peak: Option<f64>,
    pub peak_text: Option<String>,
    /// `5.2% > 1%`, or `no data > 1%`.
    pub condition: String,
    pub active_since: String,
    pub active_since_local: String,
    pub fired_at: String,
    pub fired_at_local: String,
    pub resolved_at: Option<String>,
    pub resolved_at_local: Option<String>,
    /// Firing: how long the condition has held. Resolved: how long it fired.
    pub duration: String,
    pub expression: String,
    pub recent: Vec<PointView>,
    pub sparkline: String,
    pub recent_min: Option<String>,
    pub recent_max: Option<String>,
    /// `15:45–15:54 CET, every 1m`, when there are at least two datapoints.
    pub recent_span: Option<String>,
    pub links: Links,
    #[serde(skip)]
    pub firing: bool,
    /// The `summary` annotation when it is not the title.
    #[serde(skip)]
    pub extra_summary: Option<String>,
    /// Times as epoch seconds, for the payload.
    #[serde(skip)]
    pub epochs: Epochs,
    /// Annotations whose template failed, with why (left out: the message
    /// uses its default text there).
    #[serde(skip)]
    pub template_errors: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Epochs {
    pub active_since: Epoch,
    pub fired_at: Epoch,
}

/// Annotations that have their own place in messages.
pub(crate) const PLACED_ANNOTATIONS: [&str; 6] = [
    "title",
    "summary",
    "description",
    "runbook_url",
    "dashboard",
    "dashboard_url",
];

fn non_empty(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn title_of(ann: &BTreeMap<String, String>, alertname: &str) -> (String, bool) {
    if let Some(t) = non_empty(ann.get("title")) {
        return (truncate(&one_line(&t), MAX_TITLE), false);
    }
    if let Some(s) = non_empty(ann.get("summary")).map(|s| one_line(&s))
        && s.chars().count() <= MAX_SUMMARY_TITLE
    {
        return (s, true);
    }
    let name = if alertname.is_empty() {
        "alert"
    } else {
        alertname
    };
    (truncate(name, MAX_TITLE), false)
}

impl AlertView {
    pub(super) fn new<'s>(alert: &'s Alert, set: &Setting<'s>) -> AlertView {
        let zone = &set.zone;
        let unit = alert.unit;
        let fmt = |v: f64| unit.format(v);
        let (rendered, template_errors) = annotations(&set.sandbox, alert);
        let annotations: BTreeMap<String, String> = rendered
            .into_iter()
            .map(|(k, v)| (k, truncate(&v, MAX_ANNOTATION)))
            .collect();
        let labels: Labels = alert
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), truncate(v, MAX_LABEL_VALUE)))
            .collect();
        let alertname = truncate(alert.name(), MAX_LABEL_VALUE);
        // A `title` template that failed is left out: the default title.
        let (title, title_is_summary) = title_of(&annotations, &alertname);
        let extra_summary = if title_is_summary {
            None
        } else {
            non_empty(annotations.get("summary"))
        };
        let value_text = alert.value.map(fmt);
        let threshold_text = fmt(alert.threshold);
        let peak_text = alert.peak.map(fmt);
        let firing = alert.status == AlertStatus::Firing;
        let condition = format!(
            "{} {} {threshold_text}",
            value_text.as_deref().unwrap_or("no data"),
            alert.op
        );

        let since = zone.time(alert.active_since, set.at);
        let resolved_at = alert.resolved_at.unwrap_or(set.at);
        let duration_secs = if firing {
            set.at.saturating_sub(alert.active_since)
        } else {
            resolved_at.saturating_sub(alert.fired_at)
        };
        let dur = duration(duration_secs);
        let headline = if firing {
            match &value_text {
                Some(v) if mentions(&title, v) => {
                    format!("{title} (threshold {threshold_text}) since {since} ({dur} ago)")
                }
                Some(v) => {
                    let verb = if alert.op.is_upper() {
                        "hit"
                    } else {
                        "fell to"
                    };
                    format!(
                        "{title} {verb} {v} (threshold {threshold_text}) since {since} ({dur} ago)"
                    )
                }
                None => format!("{title}: no data since {since} ({dur} ago)"),
            }
        } else {
            let mut details = Vec::new();
            if let Some(p) = &peak_text {
                details.push(format!("peak {p}"));
            }
            if let Some(v) = &value_text {
                details.push(format!("last {v}"));
            }
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join(", "))
            };
            format!(
                "{title} resolved at {} after firing for {dur}{details}",
                zone.time(resolved_at, set.at)
            )
        };

        let skip = alert.recent.len().saturating_sub(MAX_RECENT);
        let recent_points = &alert.recent[skip..];
        let values: Vec<Option<f64>> = recent_points.iter().map(|(_, v)| *v).collect();
        let spark = sparkline(&values);
        let recent_span = match (recent_points.first(), recent_points.last()) {
            (Some((first, _)), Some((last, _))) if recent_points.len() >= 2 => {
                let step = recent_points
                    .windows(2)
                    .map(|w| w[1].0.saturating_sub(w[0].0))
                    .filter(|d| *d > 0)
                    .min();
                let from = if zone.same_day(*first, *last) {
                    zone.clock(*first)
                } else {
                    zone.datetime(*first)
                };
                let mut span = format!("{from}–{}", zone.time(*last, set.at));
                if let Some(step) = step {
                    span.push_str(&format!(", every {}", duration(step)));
                }
                Some(span)
            }
            _ => None,
        };
        let recent = recent_points
            .iter()
            .map(|(t, v)| PointView {
                at: rfc3339(*t),
                value: *v,
                value_text: v.map(fmt),
            })
            .collect();

        let links = Links {
            runbook: non_empty(annotations.get("runbook_url")),
            dashboard: non_empty(annotations.get("dashboard"))
                .or_else(|| non_empty(annotations.get("dashboard_url"))),
            console: console_url(alert, &set.region, set.role_accounts, set.at),
        };

        AlertView {
            fingerprint: alert.fingerprint.clone(),
            status: alert.status.as_str(),
            alertname,
            title,
            headline,
            labels,
            annotations,
            value: alert.value,
            value_text,
            threshold: alert.threshold,
            threshold_text,
            op: alert.op.to_string(),
            unit: unit_name(unit),
            peak: alert.peak,
            peak_text,
            condition,
            active_since: rfc3339(alert.active_since),
            active_since_local: since,
            fired_at: rfc3339(alert.fired_at),
            fired_at_local: zone.time(alert.fired_at, set.at),
            resolved_at: alert.resolved_at.map(rfc3339),
            resolved_at_local: alert.resolved_at.map(|t| zone.time(t, set.at)),
            duration: dur,
            expression: truncate(alert.expression.trim(), MAX_EXPRESSION),
            recent,
            sparkline: spark.line,
            recent_min: spark.min.map(fmt),
            recent_max: spark.max.map(fmt),
            recent_span,
            links,
            firing,
            extra_summary,
            epochs: Epochs {
                active_since: alert.active_since,
                fired_at: alert.fired_at,
            },
            template_errors,
        }
    }

    /// `(payments, page)`: the alert's service and severity labels (falling
    /// back to the group's), or nothing.
    pub(super) fn service_severity(&self, group: &Labels) -> Option<String> {
        let get = |k: &str| {
            self.labels
                .get(k)
                .or_else(|| group.get(k))
                .map(|v| one_line(v))
                .filter(|v| !v.is_empty())
        };
        let parts: Vec<String> = ["service", "severity"]
            .into_iter()
            .filter_map(get)
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}
