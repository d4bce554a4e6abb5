//! The subject line and the plain-text body (SNS `default` and `email`).

use std::fmt::Write as _;

use firebell_core::alert::AlertStatus;
use firebell_core::model::Labels;
use firebell_core::ports::SNS_MAX_SUBJECT_CHARS;
use serde::Serialize;

use super::format::{mentions, one_line, truncate};
use super::view::{AlertView, LISTED_VALUES, PLACED_ANNOTATIONS};

/// SNS wants subjects "less than 100 characters long".
pub(crate) const MAX_SUBJECT_CHARS: usize = SNS_MAX_SUBJECT_CHARS - 1;
/// The title keeps at least this many characters when a subject is cut.
const MIN_SUBJECT_TITLE: usize = 16;
/// Width of the row names in the details table.
const KEY_WIDTH: usize = 10;

/// How many alerts a message is about, and how many it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    pub firing: usize,
    pub resolved: usize,
    pub total: usize,
    pub listed: usize,
    pub omitted: usize,
}

impl Counts {
    /// `3 firing, 1 resolved`, `2 resolved`.
    pub(super) fn summary(&self) -> String {
        counts_text(self.firing, self.resolved)
    }
}

fn counts_text(firing: usize, resolved: usize) -> String {
    match (firing, resolved) {
        (f, 0) => format!("{f} firing"),
        (0, r) => format!("{r} resolved"),
        (f, r) => format!("{f} firing, {r} resolved"),
    }
}

/// `service=payments, team=core`.
pub(crate) fn labels_text(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={}", one_line(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A subject from its parts, cut to [`MAX_SUBJECT_CHARS`]: the title is cut
/// first so the status, condition and labels stay; if that is not enough the
/// whole line is.
fn fit_subject(prefix: &str, title: &str, cond: &str, suffix: &str) -> String {
    let len = |s: &str| s.chars().count();
    let fixed = len(prefix) + len(cond) + len(suffix);
    if fixed + len(title) <= MAX_SUBJECT_CHARS {
        return format!("{prefix}{title}{cond}{suffix}");
    }
    if fixed + MIN_SUBJECT_TITLE <= MAX_SUBJECT_CHARS {
        let title = truncate(title, MAX_SUBJECT_CHARS - fixed);
        return format!("{prefix}{title}{cond}{suffix}");
    }
    truncate(&format!("{prefix}{title}{cond}{suffix}"), MAX_SUBJECT_CHARS)
}

/// `[FIRING:3] Payments error rate 5.2% > 1% (payments, page)`; for a group
/// of several rules, a summary of them:
/// `[FIRING:3] payments: Payments error rate 100%, Payments availability burn 18.2, …`.
pub(crate) fn subject(
    status: AlertStatus,
    counts: &Counts,
    views: &[AlertView],
    group: &Labels,
) -> String {
    let Some(first) = views.first() else {
        return String::new();
    };
    if let Some(summary) = group_summary(status, counts, views, group) {
        return summary;
    }
    single_subject(status, counts, first, group)
}

/// The subject of a group whose alerts (of `status`) come from several
/// rules: the service (or the group's label values), then each rule's title
/// and value once, in order, cut to the limit. `None` for one rule.
fn group_summary(
    status: AlertStatus,
    counts: &Counts,
    views: &[AlertView],
    group: &Labels,
) -> Option<String> {
    let firing = status == AlertStatus::Firing;
    let mut seen: Vec<&str> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for v in views.iter().filter(|v| v.firing == firing) {
        if seen.contains(&v.alertname.as_str()) {
            continue;
        }
        seen.push(&v.alertname);
        let title = one_line(&v.title);
        parts.push(match &v.value_text {
            Some(val) if !mentions(&title, val) => format!("{title} {val}"),
            _ => title,
        });
    }
    if parts.len() < 2 {
        return None;
    }
    let (tag, n) = if firing {
        ("FIRING", counts.firing)
    } else {
        ("RESOLVED", counts.resolved)
    };
    let head = views[0]
        .labels
        .get("service")
        .or_else(|| group.get("service"))
        .map(|s| one_line(s))
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let values: Vec<String> = group.values().map(|v| one_line(v)).collect();
            (!values.is_empty()).then(|| values.join(", "))
        })
        .map(|h| format!("{h}: "))
        .unwrap_or_default();
    Some(truncate(
        &format!("[{tag}:{n}] {head}{}", parts.join(", ")),
        MAX_SUBJECT_CHARS,
    ))
}

fn single_subject(
    status: AlertStatus,
    counts: &Counts,
    first: &AlertView,
    group: &Labels,
) -> String {
    let (tag, n) = match status {
        AlertStatus::Firing => ("FIRING", counts.firing),
        AlertStatus::Resolved => ("RESOLVED", counts.resolved),
    };
    let prefix = if n > 1 {
        format!("[{tag}:{n}] ")
    } else {
        format!("[{tag}] ")
    };
    let cond = match (first.firing, &first.value_text) {
        (true, Some(v)) if !mentions(&first.title, v) => {
            format!(" {v} {} {}", first.op, first.threshold_text)
        }
        (true, None) => ": no data".to_string(),
        (false, Some(v)) if !mentions(&first.title, v) => format!(" back to {v}"),
        _ => String::new(),
    };
    let suffix = first
        .service_severity(group)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    fit_subject(&prefix, &one_line(&first.title), &cond, &suffix)
}

/// A subject from a template's output: one line, cut to the limit.
pub(crate) fn clean_subject(s: &str) -> String {
    truncate(&one_line(s), MAX_SUBJECT_CHARS)
}

/// What the text body is made of.
#[derive(Debug)]
pub(crate) struct Body<'a> {
    pub views: &'a [AlertView],
    pub counts: Counts,
    pub group_labels: &'a Labels,
    pub notes: &'a [String],
    pub receiver: &'a str,
    pub group_key: &'a str,
    pub seq: u64,
    /// The notification time, local.
    pub at_local: &'a str,
}

fn row(out: &mut String, indent: &str, key: &str, value: &str) {
    let _ = writeln!(out, "{indent}{key:<KEY_WIDTH$} {value}");
}

fn paragraph(out: &mut String, indent: &str, text: &str) {
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
}

/// The details of one alert, each line starting with `indent`.
fn details(out: &mut String, v: &AlertView, indent: &str) {
    let mut prose = false;
    if let Some(s) = &v.extra_summary {
        paragraph(out, indent, s);
        prose = true;
    }
    if let Some(d) = v
        .annotations
        .get("description")
        .filter(|d| !d.trim().is_empty())
    {
        if prose {
            out.push('\n');
        }
        paragraph(out, indent, d);
        prose = true;
    }
    let others: Vec<(&String, &String)> = v
        .annotations
        .iter()
        .filter(|(k, a)| !PLACED_ANNOTATIONS.contains(&k.as_str()) && !a.trim().is_empty())
        .collect();
    if !others.is_empty() {
        if prose {
            out.push('\n');
        }
        for (k, a) in others {
            let a = a.trim();
            if a.contains('\n') {
                let _ = writeln!(out, "{indent}{k}:");
                paragraph(out, &format!("{indent}  "), a);
            } else {
                let _ = writeln!(out, "{indent}{k}: {a}");
            }
        }
        prose = true;
    }
    if prose {
        out.push('\n');
    }
    if let (Some(min), Some(max)) = (&v.recent_min, &v.recent_max) {
        row(
            out,
            indent,
            "Graph",
            &format!("{}  min {min}  max {max}", v.sparkline),
        );
    }
    if !v.recent.is_empty() {
        let skip = v.recent.len().saturating_sub(LISTED_VALUES);
        let values: Vec<&str> = v.recent[skip..]
            .iter()
            .map(|p| p.value_text.as_deref().unwrap_or("·"))
            .collect();
        let mut line = values.join(" ");
        if let Some(span) = &v.recent_span {
            let _ = write!(line, "  ({span})");
        }
        row(out, indent, "Recent", &line);
    }
    if v.epochs.fired_at != v.epochs.active_since {
        row(
            out,
            indent,
            "Active",
            &format!(
                "since {}, firing since {}",
                v.active_since_local, v.fired_at_local
            ),
        );
    }
    if !v.expression.is_empty() {
        row(out, indent, "Expression", &one_line(&v.expression));
    }
    if !v.labels.is_empty() {
        row(out, indent, "Labels", &labels_text(&v.labels));
    }
    if let Some(u) = &v.links.runbook {
        row(out, indent, "Runbook", u);
    }
    if let Some(u) = &v.links.dashboard {
        row(out, indent, "Dashboard", u);
    }
    if let Some(u) = &v.links.console {
        row(out, indent, "Console", u);
    }
}

/// The plain-text body.
pub(crate) fn body(b: &Body<'_>) -> String {
    let mut out = String::new();
    let single = b.counts.total == 1 && b.views.len() == 1;
    match b.views.first() {
        Some(first) => {
            let _ = writeln!(out, "{}", first.headline);
        }
        None => {
            let _ = writeln!(out, "{}", b.counts.summary());
        }
    }
    let mut group_line = b.counts.summary();
    if !b.group_labels.is_empty() {
        let _ = write!(group_line, " · group {}", labels_text(b.group_labels));
    }
    let _ = writeln!(out, "{group_line}");
    if !b.notes.is_empty() {
        out.push('\n');
        for note in b.notes {
            let _ = writeln!(out, "Note: {note}");
        }
    }
    out.push('\n');
    if single {
        details(&mut out, &b.views[0], "");
    } else {
        for (i, v) in b.views.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let tag = if v.firing { "FIRING" } else { "RESOLVED" };
            let _ = writeln!(out, "[{}] {tag}  {}", i + 1, v.headline);
            details(&mut out, v, "    ");
        }
    }
    if b.counts.omitted > 0 {
        let listed_firing = b.views.iter().filter(|v| v.firing).count();
        let firing = b.counts.firing.saturating_sub(listed_firing);
        let resolved = b.counts.omitted.saturating_sub(firing);
        let _ = writeln!(
            out,
            "\n… and {} more ({})",
            b.counts.omitted,
            counts_text(firing, resolved)
        );
    }
    let _ = writeln!(
        out,
        "\n--\nfirebell · receiver {} · notification #{} at {} · group {}",
        b.receiver,
        b.seq,
        b.at_local,
        truncate(&one_line(b.group_key), 200)
    );
    out
}
