//! The routing tree, Alertmanager style: depth-first, first match wins
//! unless a route has `continue: true`; a route whose children match
//! delegates to them, otherwise it takes the alert itself.

use firebell_core::decode::format_duration;
use firebell_core::model::Labels;

use crate::matcher::{MatchOp, Matcher, format_matchers, is_label_name, matches_all, quote};
use crate::types::{GroupBy, NotifyConfig, Route, Timing};

/// A route an alert reached, with its effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    pub receiver: String,
    /// `root`, `root/0`, `root/0/1`: child indices from the root.
    pub path: String,
    /// The matchers along the path, e.g. `root > {team="payments"}`.
    pub description: String,
    pub group_by: GroupBy,
    pub timing: Timing,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

/// The routes `labels` reach, in tree order. Never empty once the config
/// has a root route (the root takes what no child takes).
pub fn route(cfg: &NotifyConfig, labels: &Labels) -> Vec<RouteMatch> {
    let mut out = Vec::new();
    walk(&cfg.route, labels, "root", "root", &mut out);
    out
}

fn walk(r: &Route, labels: &Labels, path: &str, desc: &str, out: &mut Vec<RouteMatch>) -> bool {
    if !matches_all(&r.matchers, labels) {
        return false;
    }
    let before = out.len();
    for (i, c) in r.routes.iter().enumerate() {
        let child_path = format!("{path}/{i}");
        let child_desc = format!("{desc} > {}", format_matchers(&c.matchers));
        if walk(c, labels, &child_path, &child_desc, out) && !c.continue_matching {
            break;
        }
    }
    if out.len() == before {
        out.push(RouteMatch {
            receiver: r.receiver.clone(),
            path: path.to_string(),
            description: desc.to_string(),
            group_by: r.group_by.clone(),
            timing: r.timing,
            mute_time_intervals: r.mute_time_intervals.clone(),
            active_time_intervals: r.active_time_intervals.clone(),
        });
    }
    true
}

/// `payments via root/0 (root > {team="payments"})`, joined by `; `.
pub(crate) fn describe_receivers(matches: &[RouteMatch]) -> String {
    if matches.is_empty() {
        return "no route".to_string();
    }
    let parts: Vec<String> = matches
        .iter()
        .map(|m| format!("{} via {} ({})", m.receiver, m.path, m.description))
        .collect();
    parts.join("; ")
}

fn format_labels(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Human explanation of where `labels` go, for `firebell routes --labels ...`.
pub fn explain(cfg: &NotifyConfig, labels: &Labels) -> String {
    let matches = route(cfg, labels);
    let mut s = format!("labels: {}\n", format_labels(labels));
    let names: Vec<&str> = matches.iter().map(|m| m.receiver.as_str()).collect();
    let n = names.len();
    s.push_str(&format!(
        "{n} receiver{}: {}\n",
        if n == 1 { "" } else { "s" },
        names.join(", ")
    ));
    for m in &matches {
        s.push_str(&format!(
            "- {} via {}: {}\n",
            m.receiver, m.path, m.description
        ));
        s.push_str(&format!(
            "    group_by {}; group_wait {}, group_interval {}, repeat_interval {}\n",
            m.group_by,
            format_duration(m.timing.group_wait),
            format_duration(m.timing.group_interval),
            format_duration(m.timing.repeat_interval)
        ));
        s.push_str(&format!(
            "    group: {}\n",
            format_labels(&m.group_by.group_labels(labels))
        ));
        if !m.mute_time_intervals.is_empty() {
            s.push_str(&format!(
                "    muted during: {}\n",
                m.mute_time_intervals.join(", ")
            ));
        }
        if !m.active_time_intervals.is_empty() {
            s.push_str(&format!(
                "    active only during: {}\n",
                m.active_time_intervals.join(", ")
            ));
        }
    }
    s
}

/// Parses `team=payments,severity=page` for `firebell routes --labels`:
/// matcher syntax, read as [`Matcher::parse_list`] reads it (so
/// `{team="payments", summary="a, b"}` too), every matcher an `=`.
pub fn parse_label_arg(s: &str) -> Result<Labels, String> {
    const HINT: &str = "labels look like team=payments,severity=page";
    let list = Matcher::parse_list(s)
        .map_err(|e| format!("invalid labels {s:?}: {} ({HINT})", e.problem))?;
    let mut out = Labels::new();
    for m in list {
        if m.op != MatchOp::Eq {
            return Err(format!(
                "label {:?} is given with `{}`: labels take `=` ({HINT})",
                m.name,
                m.op.as_str()
            ));
        }
        if !is_label_name(&m.name) {
            return Err(format!("invalid label name {:?}", m.name));
        }
        if out.insert(m.name.clone(), m.value).is_some() {
            return Err(format!("label {:?} is given twice", m.name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_args() {
        let l = parse_label_arg("team=payments, severity=page").unwrap();
        assert_eq!(l.get("team").map(String::as_str), Some("payments"));
        assert_eq!(l.get("severity").map(String::as_str), Some("page"));
        let l = parse_label_arg(r#"summary="a, b",x=1"#).unwrap();
        assert_eq!(l.get("summary").map(String::as_str), Some("a, b"));
        assert_eq!(l.get("x").map(String::as_str), Some("1"));
        assert_eq!(parse_label_arg("").unwrap(), Labels::new());
        assert_eq!(
            parse_label_arg("team").unwrap_err(),
            "invalid labels \"team\": expected an operator (=, !=, =~ or !~) at the end (labels look like team=payments,severity=page)"
        );
        assert_eq!(
            parse_label_arg("team!=x").unwrap_err(),
            "label \"team\" is given with `!=`: labels take `=` (labels look like team=payments,severity=page)"
        );
        let l = parse_label_arg(r#"{team="pay", note="a\nb"}"#).unwrap();
        assert_eq!(l.get("note").map(String::as_str), Some("a\nb"));
        assert_eq!(
            parse_label_arg("a=1,a=2").unwrap_err(),
            "label \"a\" is given twice"
        );
        assert_eq!(
            parse_label_arg("1a=1").unwrap_err(),
            "invalid label name \"1a\""
        );
    }
}
