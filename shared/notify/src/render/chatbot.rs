//! AWS Chatbot (Amazon Q Developer in chat applications) custom notifications:
//!
//! ```json
//! {"version": "1.0", "source": "custom", "id": "...",
//!  "content": {"textType": "client-markdown", "title": "...", "description": "...",
//!              "nextSteps": ["..."], "keywords": ["..."]},
//!  "metadata": {"threadId": "...", "summary": "...", "eventType": "...",
//!               "additionalContext": {"...": "..."}}}
//! ```
//!
//! Chatbot drops SNS messages that are not in this shape, so with
//! `message.chatbot` this is the `default` body. The description lists at
//! most [`MAX_ALERTS`] alerts and stays under [`MAX_DESCRIPTION`] characters
//! (chat platforms cut long sections); links are written bare, which Slack
//! and Teams both turn into links. `threadId` is the same for every
//! notification of a group, so updates of a group are threaded together.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use firebell_core::model::Labels;
use serde::Serialize;

use super::format::{one_line, truncate};
use super::text::{Counts, labels_text};
use super::view::AlertView;

/// Alerts described in a chat message.
pub(crate) const MAX_ALERTS: usize = 10;
/// Characters of the description.
pub(crate) const MAX_DESCRIPTION: usize = 3000;
/// Characters of the title.
const MAX_TITLE: usize = 150;
/// Characters of all next steps together.
const MAX_NEXT_STEPS: usize = 2500;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    text_type: &'static str,
    title: String,
    description: String,
    next_steps: Vec<String>,
    keywords: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    thread_id: String,
    summary: String,
    event_type: String,
    additional_context: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
struct Notification {
    version: &'static str,
    source: &'static str,
    id: String,
    content: Content,
    metadata: Metadata,
}

/// What a Chatbot message is made of.
#[derive(Debug)]
pub(crate) struct Input<'a> {
    /// Event id: the notification's idempotency key.
    pub id: &'a str,
    /// Same for every notification of the group.
    pub thread_id: &'a str,
    pub status: &'static str,
    pub subject: &'a str,
    pub receiver: &'a str,
    pub group_key: &'a str,
    pub group_labels: &'a Labels,
    pub seq: u64,
    pub counts: Counts,
    pub notes: &'a [String],
}

fn emoji(v: &AlertView) -> &'static str {
    if v.firing { "🔥" } else { "✅" }
}

fn description(input: &Input<'_>, views: &[AlertView]) -> String {
    let mut out = String::new();
    let mut head = input.counts.summary();
    if !input.group_labels.is_empty() {
        let _ = write!(head, " · group `{}`", labels_text(input.group_labels));
    }
    let _ = writeln!(out, "{head}");
    for note in input.notes {
        let _ = writeln!(out, "> {}", one_line(note));
    }
    let shown = &views[..views.len().min(MAX_ALERTS)];
    let single = input.counts.total == 1 && shown.len() == 1;
    let mut lines = Vec::new();
    for v in shown {
        let mut block = format!("{} {}", emoji(v), v.headline);
        if let (Some(min), Some(max)) = (&v.recent_min, &v.recent_max) {
            let _ = write!(block, "\n`{}` min {min} max {max}", v.sparkline);
        }
        let own: Labels = v
            .labels
            .iter()
            .filter(|(k, val)| k.as_str() != "alertname" && input.group_labels.get(*k) != Some(val))
            .map(|(k, val)| (k.clone(), val.clone()))
            .collect();
        if !own.is_empty() {
            let _ = write!(block, "\n`{}`", labels_text(&own));
        }
        if single
            && let Some(d) = v
                .annotations
                .get("description")
                .filter(|d| !d.trim().is_empty())
        {
            let _ = write!(block, "\n{}", truncate(d.trim(), 1000));
        }
        lines.push(block);
    }
    let not_shown = input.counts.total.saturating_sub(shown.len());
    let more = |n: usize| format!("… and {n} more");
    // Leave room for the "and N more" line.
    let budget = MAX_DESCRIPTION.saturating_sub(40);
    let mut listed = 0;
    for block in &lines {
        if out.chars().count() + block.chars().count() + 2 > budget {
            break;
        }
        out.push('\n');
        out.push_str(block);
        out.push('\n');
        listed += 1;
    }
    let omitted = not_shown + (lines.len() - listed);
    if omitted > 0 {
        let _ = write!(out, "\n{}", more(omitted));
    }
    truncate(out.trim_end(), MAX_DESCRIPTION)
}

fn next_steps(views: &[AlertView]) -> Vec<String> {
    let Some(first) = views.first() else {
        return Vec::new();
    };
    let mut steps = Vec::new();
    let mut used = 0;
    let links = [
        ("Runbook", &first.links.runbook),
        ("Dashboard", &first.links.dashboard),
        ("CloudWatch graph", &first.links.console),
    ];
    for (name, link) in links {
        if let Some(url) = link {
            let step = format!("{name}: {url}");
            used += step.chars().count();
            if used > MAX_NEXT_STEPS {
                break;
            }
            steps.push(step);
        }
    }
    steps
}

fn keywords(input: &Input<'_>, views: &[AlertView]) -> Vec<String> {
    let mut out: Vec<String> = vec![input.status.to_string()];
    if let Some(first) = views.first() {
        for key in ["severity", "service", "team"] {
            if let Some(v) = first
                .labels
                .get(key)
                .or_else(|| input.group_labels.get(key))
            {
                out.push(truncate(&one_line(v), 50));
            }
        }
        out.push(truncate(&first.alertname, 50));
    }
    out.retain(|k| !k.is_empty());
    let mut seen = Vec::new();
    out.retain(|k| {
        let new = !seen.contains(k);
        seen.push(k.clone());
        new
    });
    out
}

/// The Chatbot message for `views` (the listed alerts).
pub(crate) fn notification(
    input: &Input<'_>,
    views: &[AlertView],
) -> Result<String, serde_json::Error> {
    let icon = if input.status == "firing" {
        "🚨"
    } else {
        "✅"
    };
    let n = Notification {
        version: "1.0",
        source: "custom",
        id: input.id.to_string(),
        content: Content {
            text_type: "client-markdown",
            title: truncate(&format!("{icon} {}", input.subject), MAX_TITLE),
            description: description(input, views),
            next_steps: next_steps(views),
            keywords: keywords(input, views),
        },
        metadata: Metadata {
            thread_id: input.thread_id.to_string(),
            summary: input.subject.to_string(),
            event_type: format!("firebell.{}", input.status),
            additional_context: BTreeMap::from([
                ("receiver", input.receiver.to_string()),
                ("group_key", truncate(input.group_key, 500)),
                ("seq", input.seq.to_string()),
                ("firing", input.counts.firing.to_string()),
                ("resolved", input.counts.resolved.to_string()),
            ]),
        },
    };
    serde_json::to_string(&n)
}
