//! The JSON payload for `sqs`, `lambda` and `https` subscribers:
//! `firebell.notification/v1`, documented in `shared/notify/PAYLOAD.md` and
//! described by `notification.schema.json` next to this file.

use std::collections::BTreeMap;

use firebell_core::model::Labels;
use serde::Serialize;

use super::text::Counts;
use super::view::{AlertView, Links};

/// The payload's `schema`. A change that removes or retypes a field gets a
/// new version; adding fields does not.
pub(super) const SCHEMA: &str = "firebell.notification/v1";

/// The notification-wide part of a payload.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    pub status: &'static str,
    pub receiver: &'a str,
    pub group_key: &'a str,
    pub group_labels: &'a Labels,
    pub seq: u64,
    pub at: String,
    pub time_zone: &'a str,
    pub subject: &'a str,
    pub notes: &'a [String],
}

#[derive(Debug, Serialize)]
struct Payload<'a> {
    schema: &'static str,
    status: &'static str,
    receiver: &'a str,
    group_key: &'a str,
    group_labels: &'a Labels,
    seq: u64,
    at: &'a str,
    time_zone: &'a str,
    subject: &'a str,
    counts: Counts,
    notes: &'a [String],
    alerts: Vec<PayloadAlert<'a>>,
}

#[derive(Debug, Serialize)]
struct Point<'a> {
    at: &'a str,
    value: Option<f64>,
}

#[derive(Debug, Serialize)]
struct PayloadAlert<'a> {
    fingerprint: &'a str,
    status: &'static str,
    alertname: &'a str,
    title: &'a str,
    headline: &'a str,
    labels: &'a Labels,
    annotations: &'a BTreeMap<String, String>,
    value: Option<f64>,
    value_text: Option<&'a str>,
    threshold: f64,
    threshold_text: &'a str,
    op: &'a str,
    unit: &'static str,
    peak: Option<f64>,
    peak_text: Option<&'a str>,
    active_since: &'a str,
    fired_at: &'a str,
    resolved_at: Option<&'a str>,
    expression: &'a str,
    recent: Vec<Point<'a>>,
    links: &'a Links,
}

/// Non-finite numbers are `null` in JSON anyway; say so explicitly.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

fn alert(v: &AlertView) -> PayloadAlert<'_> {
    PayloadAlert {
        fingerprint: &v.fingerprint,
        status: v.status,
        alertname: &v.alertname,
        title: &v.title,
        headline: &v.headline,
        labels: &v.labels,
        annotations: &v.annotations,
        value: finite(v.value),
        value_text: v.value_text.as_deref(),
        threshold: v.threshold,
        threshold_text: &v.threshold_text,
        op: &v.op,
        unit: v.unit,
        peak: finite(v.peak),
        peak_text: v.peak_text.as_deref(),
        active_since: &v.active_since,
        fired_at: &v.fired_at,
        resolved_at: v.resolved_at.as_deref(),
        expression: &v.expression,
        recent: v
            .recent
            .iter()
            .map(|p| Point {
                at: &p.at,
                value: finite(p.value),
            })
            .collect(),
        links: &v.links,
    }
}

/// The payload listing `views`, as compact JSON.
pub(crate) fn payload(
    h: &Header<'_>,
    counts: Counts,
    views: &[AlertView],
) -> Result<String, serde_json::Error> {
    let p = Payload {
        schema: SCHEMA,
        status: h.status,
        receiver: h.receiver,
        group_key: h.group_key,
        group_labels: h.group_labels,
        seq: h.seq,
        at: &h.at,
        time_zone: h.time_zone,
        subject: h.subject,
        counts,
        notes: h.notes,
        alerts: views.iter().map(alert).collect(),
    };
    serde_json::to_string(&p)
}
