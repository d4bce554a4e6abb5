//! Message rendering: one [`GroupNotification`] for one [`Receiver`] becomes
//! one [`Outbound`] per topic of the receiver.
//!
//! Every message carries, as SNS `MessageStructure=json` expects:
//!
//! - a subject shorter than
//!   [`SNS_MAX_SUBJECT_CHARS`](firebell_core::ports::SNS_MAX_SUBJECT_CHARS)
//!   characters,
//!   `[FIRING:3] Payments error rate 5.2% > 1% (payments, page)`;
//! - a plain-text body (`default` and `email`): a headline, the group
//!   summary, notes, then per alert its description, a sparkline of recent
//!   datapoints, recent values, expression, labels and links (runbook,
//!   dashboard, CloudWatch console graph);
//! - the JSON payload `firebell.notification/v1` (`sqs`, `lambda`, `https`),
//!   documented in `shared/notify/PAYLOAD.md` and described by the JSON
//!   Schema `notification.schema.json` next to this file;
//! - with `message.chatbot`, an AWS Chatbot custom notification as the
//!   `default` body (the text body stays for `email`);
//! - String message attributes `status`, `update` (`true` for a group's
//!   later notifications in one episode: a pager subscription filtering on
//!   `update: ["false"]` is paged once per incident), `alertname`, `team`,
//!   `severity`, `service` (those present; fewer than
//!   [`SNS_MAX_MESSAGE_ATTRIBUTES`]).
//!
//! The whole SNS message (bodies, subject and attributes) stays under
//! [`SNS_MAX_MESSAGE_BYTES`]: a group with many alerts lists as many as fit and
//! says `… and N more`. Neither size nor a template ever fails a send:
//! templates that fail fall back to the defaults with a note in the message.
//! Times are written in the receiver's time zone, with its abbreviation.
//!
//! Rendering is deterministic: the same receiver and notification give the
//! same messages, byte for byte, and the same idempotency keys
//! ([`idempotency_key`], with `-<topic index>` when the receiver has several
//! topics).

mod chatbot;
mod format;
mod links;
mod overrides;
mod payload;
mod template;
mod text;
mod view;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::{Labels, Rule};
use firebell_core::ports::{Outbound, SNS_MAX_MESSAGE_ATTRIBUTES, SNS_MAX_MESSAGE_BYTES};
use firebell_core::series::Epoch;
use firebell_core::text::{rfc3339, sha256_hex};

use crate::store::{idempotency_key, message_key};
use crate::types::{GroupNotification, Receiver};

use self::format::{Zone, one_line, truncate};
use self::overrides::MessageContext;
use self::template::{AnnotationContext, Sandbox};
use self::text::Counts;
use self::view::{AlertView, Setting};

/// Room left under [`SNS_MAX_MESSAGE_BYTES`] for SNS's own accounting.
const SIZE_MARGIN: usize = 1024;
/// Alerts that are ever considered for listing (more never fit in 256 KiB).
pub(crate) const MAX_LISTED: usize = 1000;
/// Alerts rendered before the size search starts; also the `alerts` a
/// subject template sees.
const FIRST_VIEWS: usize = 64;
const MAX_NOTES: usize = 20;
const MAX_NOTE_CHARS: usize = 1000;
const MAX_ATTRIBUTE_VALUE: usize = 256;
/// Message attributes that are sent, from the first alert's labels (or the
/// group's), plus `status`.
const ATTRIBUTE_LABELS: [&str; 4] = ["alertname", "team", "severity", "service"];
// (Plus `status` and `update`.)
const _: () = assert!(ATTRIBUTE_LABELS.len() + 2 <= SNS_MAX_MESSAGE_ATTRIBUTES);

/// Why a notification cannot be rendered. Rendering is deterministic, so
/// none of these goes away on a retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    /// A receiver without topics: there is nowhere to send.
    #[error("receiver {0:?} has no topics")]
    NoTopics(String),
    /// A notification with neither firing nor resolved alerts.
    #[error("notification of group {0:?} has no alerts")]
    EmptyGroup(String),
    #[error("cannot encode message: {0}")]
    Encode(#[source] Arc<serde_json::Error>),
}

impl From<serde_json::Error> for RenderError {
    fn from(e: serde_json::Error) -> Self {
        RenderError::Encode(Arc::new(e))
    }
}

/// Renders an annotation template of `alert` (minijinja syntax). The
/// template sees `value`, `threshold` and `peak` formatted with the alert's
/// unit (`5.2%`), their `*_raw` numbers, `labels`, `alertname`, `status`,
/// `op`, `condition`, `unit`, `expression`, `active_since`, `fired_at` and
/// `resolved_at` (RFC 3339). A template that fails gives its raw text
/// followed by `[template error: ...]`; output is capped at 4 KiB.
pub fn render_annotation(template: &str, alert: &Alert) -> String {
    let sandbox = Sandbox::new();
    template::annotation(&sandbox, template, &AnnotationContext::new(alert))
}

/// A firing sample alert of `rule` at `at`, as `firebell validate`
/// trial-renders templates over it: the rule's labels, `alertname`, each
/// metric dimension (a wildcard's value is `example`), a value past the
/// threshold, a recent datapoint.
pub fn sample_alert(rule: &Rule, at: Epoch) -> Alert {
    let mut labels = rule.labels.clone();
    for m in rule.metrics.values() {
        for (k, v) in &m.dimensions {
            let v = if v == "*" { "example" } else { v.as_str() };
            labels.entry(k.clone()).or_insert_with(|| v.to_string());
        }
    }
    labels.insert("alertname".to_string(), rule.name.clone());
    let threshold = rule.condition.threshold;
    let step = if threshold == 0.0 {
        1.0
    } else {
        threshold.abs()
    };
    let value = if rule.condition.op.is_upper() {
        threshold + step
    } else {
        threshold - step
    };
    Alert {
        fingerprint: firebell_core::alert::fingerprint(&labels),
        labels,
        annotations: rule.annotations.clone(),
        status: AlertStatus::Firing,
        active_since: at.saturating_sub(600),
        fired_at: at.saturating_sub(300),
        resolved_at: None,
        value: Some(value),
        peak: Some(value),
        op: rule.condition.op,
        threshold,
        unit: rule.unit,
        recent: vec![(at.saturating_sub(60), Some(value)), (at, Some(value))],
        expression: rule.expression_src.clone(),
        metrics: rule.metrics.clone(),
    }
}

/// Compiles `template`, an annotation of `rule`, and renders it over a
/// sample alert of the rule, firing and then resolved (with the rule's
/// context values, e.g. an SLO's `budget_spent`, set). `Err` says what
/// failed, on which line of the template, for which sample, and, for
/// Prometheus/Alertmanager syntax, the firebell equivalent.
pub fn check_annotation(rule: &Rule, template: &str, at: Epoch) -> Result<(), String> {
    let mut prefix = String::new();
    for c in &rule.context {
        if template.contains(c.name.as_str()) {
            prefix.push_str(&format!("{{% set {} = 0.5 %}}", c.name));
        }
    }
    let source = format!("{prefix}{template}");
    let sandbox = Sandbox::new();
    let firing = sample_alert(rule, at);
    let mut resolved = firing.clone();
    resolved.status = AlertStatus::Resolved;
    resolved.resolved_at = Some(at);
    for alert in [&firing, &resolved] {
        let ctx = AnnotationContext::new(alert);
        if let Err(e) = sandbox.trial(&source, &ctx) {
            let sample = format!(
                "{}, value {} {} {}",
                alert.status.as_str(),
                alert
                    .value
                    .map(|v| alert.unit.format(v))
                    .unwrap_or_default(),
                alert.op,
                alert.unit.format(alert.threshold)
            );
            return Err(format!(
                "{e}, rendering a sample alert ({sample}){}",
                template::migrant_hint(template)
            ));
        }
    }
    Ok(())
}

/// Compiles a receiver's `subject_template` or `body_template` (`what`)
/// and renders it over a sample group of one firing alert. `Err` as for
/// [`check_annotation`].
pub(crate) fn check_receiver_template(what: &str, template: &str) -> Result<(), String> {
    let at: Epoch = 1_700_000_000;
    let labels: Labels = [
        ("alertname", "SampleAlert"),
        ("service", "example"),
        ("severity", "page"),
        ("team", "example"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let alert = Alert {
        fingerprint: firebell_core::alert::fingerprint(&labels),
        labels: labels.clone(),
        annotations: BTreeMap::from([("summary".to_string(), "Sample alert".to_string())]),
        status: AlertStatus::Firing,
        active_since: at - 600,
        fired_at: at - 300,
        resolved_at: None,
        value: Some(2.0),
        peak: Some(2.0),
        op: firebell_core::model::Op::Gt,
        threshold: 1.0,
        unit: firebell_core::model::Unit::Percent,
        recent: vec![(at - 60, Some(2.0)), (at, Some(2.0))],
        expression: "errors / requests * 100".to_string(),
        metrics: BTreeMap::new(),
    };
    let set = Setting {
        zone: Zone::get("UTC"),
        at,
        region: links::region(None),
        role_accounts: &std::collections::BTreeSet::new(),
        sandbox: Sandbox::new(),
    };
    let views = vec![AlertView::new(&alert, &set)];
    let (firing, resolved) = overrides::split(&views);
    let counts = Counts {
        firing: 1,
        resolved: 0,
        total: 1,
        listed: 1,
        omitted: 0,
    };
    let group_labels: Labels = labels
        .iter()
        .filter(|(k, _)| k.as_str() == "alertname")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let subject = text::subject(AlertStatus::Firing, &counts, &views, &group_labels);
    let at_s = rfc3339(at);
    let at_local = set.zone.datetime(at);
    let ctx = MessageContext {
        status: "firing",
        receiver: "example",
        group_key: "example",
        group_labels: &group_labels,
        seq: 1,
        at: &at_s,
        at_local: &at_local,
        time_zone: "UTC",
        counts,
        notes: &[],
        alerts: &views,
        firing,
        resolved,
        default_subject: &subject,
        subject: &subject,
        default_body: (what == "body_template").then_some("(the default body)"),
    };
    set.sandbox.trial(template, &ctx).map(|_| ()).map_err(|e| {
        format!(
            "{e}, rendering a sample group{}",
            template::migrant_hint(template)
        )
    })
}

/// Renders `n` for `receiver`: one [`Outbound`] per topic, in topic order,
/// identical but for `destination` and `idempotency_key`.
pub fn render(receiver: &Receiver, n: &GroupNotification) -> Result<Rendered, RenderError> {
    if receiver.topics.is_empty() {
        return Err(RenderError::NoTopics(receiver.name.clone()));
    }
    let key = idempotency_key(&receiver.name, &n.group_key, n.seq);
    let message = compose(receiver, n, &key)?;
    let count = receiver.topics.len();
    let messages = receiver
        .topics
        .iter()
        .enumerate()
        .map(|(i, topic)| Outbound {
            idempotency_key: message_key(&key, i, count),
            group_key: n.group_key.clone(),
            receiver: receiver.name.clone(),
            destination: topic.clone(),
            subject: message.subject.clone(),
            bodies: message.bodies.clone(),
            attributes: message.attributes.clone(),
        })
        .collect();
    Ok(Rendered {
        messages,
        template_failures: message.template_failures,
    })
}

/// What [`render`] made of one notification: its messages (one per topic)
/// and the templates that failed on the way (each fell back to the default
/// text, with a note in the message; the caller reports them, so a broken
/// template pages the operators too).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub messages: Vec<Outbound>,
    /// One line per failed template, e.g. ``annotation `summary` of
    /// PaymentsErrors failed (…); left out.``; at most
    /// [`MAX_TEMPLATE_FAILURES`].
    pub template_failures: Vec<String>,
}

/// The most template failures one rendering reports.
pub const MAX_TEMPLATE_FAILURES: usize = 10;

/// A message before it is addressed.
#[derive(Debug)]
struct Message {
    subject: String,
    bodies: BTreeMap<String, String>,
    attributes: BTreeMap<String, String>,
    template_failures: Vec<String>,
}

fn attributes(
    status: AlertStatus,
    update: bool,
    first: &AlertView,
    group: &Labels,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        ("status".to_string(), status.as_str().to_string()),
        ("update".to_string(), update.to_string()),
    ]);
    for key in ATTRIBUTE_LABELS {
        let value = first
            .labels
            .get(key)
            .or_else(|| group.get(key))
            .map(|v| truncate(&one_line(v), MAX_ATTRIBUTE_VALUE))
            .filter(|v| !v.is_empty());
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    }
    out
}

/// Bytes of the SNS message as SNS counts them: the `MessageStructure=json`
/// envelope, the subject, and each attribute's name, type and value.
fn message_size(
    subject: &str,
    bodies: &BTreeMap<String, String>,
    attributes: &BTreeMap<String, String>,
) -> Result<usize, serde_json::Error> {
    let envelope = serde_json::to_string(bodies)?.len();
    let attrs: usize = attributes
        .iter()
        .map(|(k, v)| k.len() + "String".len() + v.len())
        .sum();
    Ok(envelope + subject.len() + attrs)
}

fn compose(receiver: &Receiver, n: &GroupNotification, key: &str) -> Result<Message, RenderError> {
    let set = Setting {
        zone: Zone::get(&receiver.time_zone),
        at: n.at,
        region: links::region(receiver.message.console_region.as_deref()),
        role_accounts: &receiver.message.role_accounts,
        sandbox: Sandbox::new(),
    };
    let ordered: Vec<&Alert> = n
        .firing
        .iter()
        .chain(&n.resolved)
        .take(MAX_LISTED)
        .collect();
    // Views are built as the search for what fits needs them.
    let mut views: Vec<AlertView> = Vec::new();
    let ensure = |views: &mut Vec<AlertView>, k: usize| {
        while views.len() < k {
            views.push(AlertView::new(ordered[views.len()], &set));
        }
    };
    ensure(&mut views, ordered.len().min(FIRST_VIEWS));
    let Some(first) = views.first() else {
        return Err(RenderError::EmptyGroup(n.group_key.clone()));
    };
    let total = n.firing_count().saturating_add(n.resolved_count());
    let counts = |listed: usize| Counts {
        firing: n.firing_count(),
        resolved: n.resolved_count(),
        total,
        listed,
        omitted: total - listed,
    };
    let status = n.status.as_str();
    let at = rfc3339(n.at);
    let at_local = set.zone.datetime(n.at);
    let time_zone = set.zone.name.clone();

    let mut notes: Vec<String> = n
        .notes
        .iter()
        .take(MAX_NOTES)
        .map(|s| truncate(&one_line(s), MAX_NOTE_CHARS))
        .collect();
    if n.notes.len() > MAX_NOTES {
        notes.push(format!("… and {} more notes", n.notes.len() - MAX_NOTES));
    }
    // Failing annotation templates (of the listed alerts, once per rule and
    // annotation): the message uses its default text there and says why.
    let mut failures: Vec<(&str, &str, &str)> = Vec::new();
    for v in &views {
        for (key, e) in &v.template_errors {
            if !failures
                .iter()
                .any(|(name, k, _)| *name == v.alertname && k == key)
            {
                failures.push((&v.alertname, key, e));
            }
        }
    }
    let mut template_failures = Vec::new();
    for (i, (name, key, e)) in failures.iter().enumerate() {
        let fallback = if *key == "title" {
            "using the default title".to_string()
        } else {
            "left out".to_string()
        };
        let what = if *key == "title" {
            "title template".to_string()
        } else {
            format!("annotation `{key}`")
        };
        let line = truncate(
            &one_line(&format!("{what} of {name} failed ({e}); {fallback}.")),
            MAX_NOTE_CHARS,
        );
        if i < 3 {
            notes.push(line.clone());
        }
        template_failures.push(line);
    }
    if failures.len() > 3 {
        notes.push(format!(
            "… and {} more failed annotation templates",
            failures.len() - 3
        ));
    }
    if let Some(bad) = &set.zone.unknown {
        notes.push(format!("Times are in UTC: unknown time zone {bad:?}."));
    }

    let default_subject = text::subject(n.status, &counts(total), &views, &n.group_labels);
    let (firing, resolved) = overrides::split(&views);
    // Subject template.
    let subject = match receiver.message.subject_template.as_deref() {
        None => default_subject.clone(),
        Some(src) => {
            let ctx = MessageContext {
                status,
                receiver: &receiver.name,
                group_key: &n.group_key,
                group_labels: &n.group_labels,
                seq: n.seq,
                at: &at,
                at_local: &at_local,
                time_zone: &time_zone,
                counts: counts(views.len()),
                notes: &notes,
                alerts: &views,
                firing: firing.clone(),
                resolved: resolved.clone(),
                default_subject: &default_subject,
                subject: &default_subject,
                default_body: None,
            };
            let rendered = overrides::render(&set.sandbox, src, &ctx, overrides::SUBJECT_LIMIT)
                .map(|s| text::clean_subject(&s))
                .and_then(|s| {
                    if s.is_empty() {
                        Err("the template rendered nothing".to_string())
                    } else {
                        Ok(s)
                    }
                });
            match rendered {
                Ok(s) => s,
                Err(e) => {
                    let line = format!("subject_template failed ({e}); using the default subject.");
                    notes.push(line.clone());
                    template_failures.push(line);
                    default_subject.clone()
                }
            }
        }
    };

    let attributes = attributes(n.status, n.update, first, &n.group_labels);
    let thread_id = format!(
        "firebell-{}",
        sha256_hex(&format!("{}|{}", receiver.name, n.group_key))
            .chars()
            .take(16)
            .collect::<String>()
    );

    // The text body listing some alerts: the default one, and the
    // receiver's template over it (`Err` says why it cannot be used).
    let body_src = receiver.message.body_template.as_deref();
    let default_text = |listed: &[AlertView], notes: &[String]| {
        text::body(&text::Body {
            views: listed,
            counts: counts(listed.len()),
            group_labels: &n.group_labels,
            notes,
            receiver: &receiver.name,
            group_key: &n.group_key,
            seq: n.seq,
            at_local: &at_local,
        })
    };
    let templated = |listed: &[AlertView], notes: &[String], default_body: &str| {
        body_src.map(|src| {
            let (f, r) = overrides::split(listed);
            let ctx = MessageContext {
                status,
                receiver: &receiver.name,
                group_key: &n.group_key,
                group_labels: &n.group_labels,
                seq: n.seq,
                at: &at,
                at_local: &at_local,
                time_zone: &time_zone,
                counts: counts(listed.len()),
                notes,
                alerts: listed,
                firing: f,
                resolved: r,
                default_subject: &default_subject,
                subject: &subject,
                default_body: Some(default_body),
            };
            overrides::render(&set.sandbox, src, &ctx, overrides::BODY_LIMIT)
        })
    };

    // Body template: checked once over the first alerts; a failure is noted
    // and the default body used.
    let mut body_template = body_src;
    if body_template.is_some() {
        let check = templated(&views, &notes, &default_text(&views, &notes));
        if let Some(Err(e)) = check {
            let line = format!("body_template failed ({e}); using the default body.");
            notes.push(line.clone());
            template_failures.push(line);
            body_template = None;
        }
    }

    // (They borrow the views, which grow below.)
    drop(firing);
    drop(resolved);

    let header = payload::Header {
        status,
        receiver: &receiver.name,
        group_key: &n.group_key,
        group_labels: &n.group_labels,
        seq: n.seq,
        at: at.clone(),
        time_zone: &time_zone,
        subject: &subject,
        notes: &notes,
    };
    let chatbot_input = |c: Counts| chatbot::Input {
        id: key,
        thread_id: &thread_id,
        status,
        subject: &subject,
        receiver: &receiver.name,
        group_key: &n.group_key,
        group_labels: &n.group_labels,
        seq: n.seq,
        counts: c,
        notes: &notes,
    };

    // The bodies listing the first `k` alerts.
    let build = |listed: &[AlertView]| -> Result<BTreeMap<String, String>, RenderError> {
        let c = counts(listed.len());
        let default = default_text(listed, &notes);
        let text_body = match body_template {
            None => default,
            Some(_) => match templated(listed, &notes, &default) {
                Some(Ok(s)) => s,
                _ => default,
            },
        };
        let json = payload::payload(&header, c, listed)?;
        let mut bodies = BTreeMap::new();
        if receiver.message.chatbot {
            bodies.insert(
                "default".to_string(),
                chatbot::notification(&chatbot_input(c), listed)?,
            );
        } else {
            bodies.insert("default".to_string(), text_body.clone());
        }
        bodies.insert("email".to_string(), text_body);
        for protocol in ["sqs", "lambda", "https"] {
            bodies.insert(protocol.to_string(), json.clone());
        }
        Ok(bodies)
    };
    let budget = SNS_MAX_MESSAGE_BYTES - SIZE_MARGIN;
    let fits = |listed: &[AlertView]| -> Result<Option<BTreeMap<String, String>>, RenderError> {
        let bodies = build(listed)?;
        let size = message_size(&subject, &bodies, &attributes)?;
        Ok((size <= budget).then_some(bodies))
    };

    // The most alerts that fit: all of them, usually. Else double the count
    // from FIRST_VIEWS until it does not fit, then bisect.
    let all = ordered.len();
    let mut best: Option<BTreeMap<String, String>> = None;
    let mut fitting = 0; // the most alerts known to fit (with `best`)
    let mut too_many = all + 1; // the fewest alerts known not to fit
    let mut k = views.len();
    loop {
        ensure(&mut views, k);
        match fits(&views[..k])? {
            Some(bodies) => {
                best = Some(bodies);
                fitting = k;
                if k == all {
                    break;
                }
                k = (k * 2).min(all);
            }
            None => {
                too_many = k;
                break;
            }
        }
    }
    let mut lo = if best.is_some() { fitting + 1 } else { 0 };
    while too_many <= all && lo < too_many {
        let mid = lo + (too_many - lo) / 2;
        ensure(&mut views, mid);
        match fits(&views[..mid])? {
            Some(bodies) => {
                best = Some(bodies);
                lo = mid + 1;
            }
            None => too_many = mid,
        }
    }
    let bodies = match best {
        Some(bodies) => bodies,
        None => minimal(
            receiver,
            n,
            &subject,
            &at,
            &time_zone,
            counts(0),
            key,
            &thread_id,
        )?,
    };
    template_failures.truncate(MAX_TEMPLATE_FAILURES);
    Ok(Message {
        subject,
        bodies,
        attributes,
        template_failures,
    })
}

/// The last resort when not even a message listing no alert fits (huge
/// notes, group labels or template output): the subject, the counts, and
/// the payload without group labels or notes.
#[allow(clippy::too_many_arguments)]
fn minimal(
    receiver: &Receiver,
    n: &GroupNotification,
    subject: &str,
    at: &str,
    time_zone: &str,
    counts: Counts,
    key: &str,
    thread_id: &str,
) -> Result<BTreeMap<String, String>, RenderError> {
    let note = vec![format!(
        "This notification is too large to send in full: its {} alerts are not listed.",
        counts.total
    )];
    let group_key = truncate(&n.group_key, 1024);
    let receiver_name = truncate(&receiver.name, 1024);
    let no_labels = Labels::new();
    let text = format!(
        "{subject}\n{}\n\nNote: {}\n\n--\nfirebell · receiver {receiver_name} · notification #{}\n",
        counts.summary(),
        note[0],
        n.seq
    );
    let header = payload::Header {
        status: n.status.as_str(),
        receiver: &receiver_name,
        group_key: &group_key,
        group_labels: &no_labels,
        seq: n.seq,
        at: at.to_string(),
        time_zone,
        subject,
        notes: &note,
    };
    let json = payload::payload(&header, counts, &[])?;
    let mut bodies = BTreeMap::new();
    if receiver.message.chatbot {
        let input = chatbot::Input {
            id: key,
            thread_id,
            status: n.status.as_str(),
            subject,
            receiver: &receiver_name,
            group_key: &group_key,
            group_labels: &no_labels,
            seq: n.seq,
            counts,
            notes: &note,
        };
        bodies.insert("default".to_string(), chatbot::notification(&input, &[])?);
    } else {
        bodies.insert("default".to_string(), text.clone());
    }
    bodies.insert("email".to_string(), text);
    for protocol in ["sqs", "lambda", "https"] {
        bodies.insert(protocol.to_string(), json.clone());
    }
    Ok(bodies)
}
