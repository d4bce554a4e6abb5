//! Receiver template overrides (`subject_template`, `body_template`).
//!
//! Both are rendered in the [`Sandbox`](super::template::Sandbox) over a
//! [`MessageContext`]; a template that fails (syntax error, unknown filter,
//! `include`, output that is empty) is replaced by the default, with a note
//! in the message saying why.

use firebell_core::model::Labels;
use serde::Serialize;

use super::template::Sandbox;
use super::text::Counts;
use super::view::AlertView;

/// Output cap of a body template, in bytes (the message must fit in 256 KiB).
pub(crate) const BODY_LIMIT: usize = 200 * 1024;
/// Output cap of a subject template, in bytes (cut to 99 characters after).
pub(crate) const SUBJECT_LIMIT: usize = 4096;

/// What receiver templates see. See `PAYLOAD.md`, "Template context".
#[derive(Debug, Serialize)]
pub(crate) struct MessageContext<'a> {
    pub status: &'static str,
    pub receiver: &'a str,
    pub group_key: &'a str,
    pub group_labels: &'a Labels,
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: &'a str,
    /// `2024-03-05 15:54 CET`.
    pub at_local: &'a str,
    pub time_zone: &'a str,
    pub counts: Counts,
    pub notes: &'a [String],
    /// Listed alerts: firing first, then resolved.
    pub alerts: &'a [AlertView],
    pub firing: Vec<&'a AlertView>,
    pub resolved: Vec<&'a AlertView>,
    /// The built-in subject.
    pub default_subject: &'a str,
    /// The subject that is sent (the built-in one while rendering the subject).
    pub subject: &'a str,
    /// The built-in text body for the same alerts (body template only).
    pub default_body: Option<&'a str>,
}

/// Splits listed views into firing and resolved.
pub(crate) fn split(views: &[AlertView]) -> (Vec<&AlertView>, Vec<&AlertView>) {
    views.iter().partition(|v| v.firing)
}

/// Renders a receiver template; `Err` says why it cannot be used.
pub(crate) fn render<'s>(
    sandbox: &Sandbox<'s>,
    source: &'s str,
    ctx: &MessageContext<'_>,
    limit: usize,
) -> Result<String, String> {
    let r = sandbox.render(source, ctx, limit)?;
    let mut text = r.text;
    if text.trim().is_empty() {
        return Err("the template rendered nothing".to_string());
    }
    if r.truncated {
        text.push_str("\n… (cut: the template's output is too long)");
    }
    Ok(text)
}
