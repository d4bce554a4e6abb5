//! CloudWatch console deep links to an alert's metric graph.
//!
//! The console keeps the graph in the URL fragment,
//! `#metricsV2:graph=<state>`, where `<state>` is a JSURL-encoded object
//! (JSURL is a compact, URL-safe JSON notation):
//!
//! - a string is `~'` followed by the string with every character other than
//!   `A-Z a-z 0-9 _ - .` escaped: `$` as `!`, code units below 0x100 as `*xx`,
//!   others as `**xxxx` (lower-case hex of the UTF-16 code unit);
//! - a number is `~` followed by its decimal form, `true`/`false` are
//!   `~true`/`~false`, a non-finite number is `~null`;
//! - an array is `~(` + its items + `)` (`~(~)` when empty);
//! - an object is `~(` + `key~value` pairs joined by `~` + `)`, the key
//!   escaped as a string without the `~'` prefix.
//!
//! The graph holds one entry per metric of the rule,
//! `[namespace, metric, dim1, value1, ..., {"id": .., "stat": .., "period": ..}]`,
//! plus the rule's expression as a metric-math entry
//! (`{"expression": .., "label": alertname, "id": "e1"}`) unless the
//! expression is a single metric id, a horizontal annotation at the
//! threshold, and a time range from an hour before the alert became active to
//! 15 minutes after it resolved (or after the notification). Metrics are
//! hidden behind the expression; if a metric id is not a valid console id
//! (`^[a-z][a-zA-Z0-9_]*$`) the expression is left out and every metric shown.
//! A wildcard dimension value (`*`) is replaced by the alert's label of the
//! same name (the engine labels expanded instances with their dimension
//! values); without such a label there is no link.

use std::fmt::Write as _;

use firebell_core::alert::Alert;
use firebell_core::series::Epoch;

use firebell_core::text::rfc3339;

/// Region used when none is configured or the configured one is malformed.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// `region` if it looks like an AWS region name, else [`DEFAULT_REGION`].
pub(crate) fn region(configured: Option<&str>) -> String {
    match configured.map(str::trim) {
        Some(r)
            if !r.is_empty()
                && r.len() <= 32
                && r.starts_with(|c: char| c.is_ascii_lowercase())
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            r.to_string()
        }
        _ => DEFAULT_REGION.to_string(),
    }
}

/// A JSON value in the order it is written.
#[derive(Debug, Clone)]
enum J {
    S(String),
    N(f64),
    B(bool),
    A(Vec<J>),
    O(Vec<(&'static str, J)>),
}

fn escape(s: &str, out: &mut String) {
    for unit in s.encode_utf16() {
        match char::from_u32(u32::from(unit)) {
            Some(c) if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') => out.push(c),
            Some('$') => out.push('!'),
            _ if unit < 0x100 => {
                let _ = write!(out, "*{unit:02x}");
            }
            _ => {
                let _ = write!(out, "**{unit:04x}");
            }
        }
    }
}

fn jsurl(v: &J, out: &mut String) {
    match v {
        J::S(s) => {
            out.push_str("~'");
            escape(s, out);
        }
        J::N(n) if n.is_finite() => {
            let _ = write!(out, "~{n}");
        }
        J::N(_) => out.push_str("~null"),
        J::B(b) => {
            let _ = write!(out, "~{b}");
        }
        J::A(items) => {
            out.push_str("~(");
            if items.is_empty() {
                out.push('~');
            }
            for item in items {
                jsurl(item, out);
            }
            out.push(')');
        }
        J::O(pairs) => {
            out.push_str("~(");
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push('~');
                }
                escape(k, out);
                jsurl(v, out);
            }
            out.push(')');
        }
    }
}

fn valid_console_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The alert's label for dimension `name` (exact name first, then ignoring case).
fn label_for<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert
        .labels
        .get(name)
        .or_else(|| {
            alert
                .labels
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

fn console_base(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://{region}.console.amazonaws.cn/cloudwatch/home?region={region}")
    } else if region.starts_with("us-gov-") {
        format!("https://console.amazonaws-us-gov.com/cloudwatch/home?region={region}")
    } else {
        format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}")
    }
}

/// The console URL graphing `alert`'s metrics and expression, or `None` when
/// the alert has no metrics or a wildcard dimension cannot be resolved.
pub(crate) fn console_url(alert: &Alert, region: &str, at: Epoch) -> Option<String> {
    if alert.metrics.is_empty() {
        return None;
    }
    let expression = alert.expression.trim();
    let single = alert.metrics.len() == 1 && alert.metrics.contains_key(expression);
    let ids_ok = alert.metrics.keys().all(|id| valid_console_id(id));
    let with_expression = !single && ids_ok && !expression.is_empty();
    let mut metrics = Vec::with_capacity(alert.metrics.len() + 1);
    let mut period = 0u64;
    for (id, spec) in &alert.metrics {
        let mut entry = vec![J::S(spec.namespace.clone()), J::S(spec.metric_name.clone())];
        for (name, value) in &spec.dimensions {
            let value = if value == "*" {
                label_for(alert, name)?
            } else {
                value.as_str()
            };
            entry.push(J::S(name.clone()));
            entry.push(J::S(value.to_string()));
        }
        let secs = spec.period.as_secs().max(1);
        period = period.max(secs);
        let mut opts = Vec::new();
        if ids_ok {
            opts.push(("id", J::S(id.clone())));
        }
        opts.push(("stat", J::S(spec.stat.to_string())));
        // Periods are whole seconds well below 2^53: exact as f64.
        opts.push(("period", J::N(secs as f64)));
        if with_expression {
            opts.push(("visible", J::B(false)));
        }
        entry.push(J::O(opts));
        metrics.push(J::A(entry));
    }
    if with_expression {
        metrics.push(J::A(vec![J::O(vec![
            ("expression", J::S(expression.to_string())),
            ("label", J::S(alert.name().to_string())),
            ("id", J::S("e1".to_string())),
        ])]));
    }
    let start = alert.active_since.min(alert.fired_at).saturating_sub(3600);
    let end = alert
        .resolved_at
        .unwrap_or(at)
        .max(start)
        .saturating_add(900);
    let graph = J::O(vec![
        ("metrics", J::A(metrics)),
        ("view", J::S("timeSeries".to_string())),
        ("stacked", J::B(false)),
        ("region", J::S(region.to_string())),
        ("title", J::S(alert.name().to_string())),
        ("period", J::N(period as f64)),
        (
            "annotations",
            J::O(vec![(
                "horizontal",
                J::A(vec![J::O(vec![
                    ("label", J::S("Threshold".to_string())),
                    ("value", J::N(alert.threshold)),
                ])]),
            )]),
        ),
        ("start", J::S(rfc3339(start))),
        ("end", J::S(rfc3339(end))),
    ]);
    let mut url = console_base(region);
    url.push_str("#metricsV2:graph=");
    jsurl(&graph, &mut url);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &J) -> String {
        let mut s = String::new();
        jsurl(v, &mut s);
        s
    }

    #[test]
    fn jsurl_encoding() {
        assert_eq!(enc(&J::S("AWS/Lambda x$".into())), "~'AWS*2fLambda*20x!");
        assert_eq!(enc(&J::S("é€".into())), "~'*e9**20ac");
        assert_eq!(enc(&J::A(vec![])), "~(~)");
        assert_eq!(
            enc(&J::O(vec![
                ("a", J::N(1.5)),
                ("b", J::A(vec![J::B(true), J::N(f64::NAN)]))
            ])),
            "~(a~1.5~b~(~true~null))"
        );
    }

    #[test]
    fn regions() {
        assert_eq!(region(None), "us-east-1");
        assert_eq!(region(Some("eu-central-1")), "eu-central-1");
        assert_eq!(region(Some("eu-central-1/../x")), "us-east-1");
        assert!(console_base("cn-north-1").contains("amazonaws.cn"));
    }
}
