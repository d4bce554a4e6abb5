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
//! (`{"expression": .., "label": alertname, "id": "e1"}`, or the first free
//! `e<n>` if a metric is called `e1`) unless the
//! expression is a single metric id, a horizontal annotation at the
//! threshold, and a time range from an hour before the alert became active to
//! 15 minutes after it resolved (or after the notification). Metrics are
//! hidden behind the expression.
//!
//! The expression entry is the rule's expression translated to CloudWatch
//! metric math ([`Expr::to_metric_math`]): its canonical form when every
//! part means the same in CloudWatch (`100 * FILL(errors, 0) / requests`
//! stays as it is; `MAX(a, b)` becomes `MAX([a, b])`). An expression with no
//! CloudWatch equivalent, such as an SLO burn-rate rule's `RSUM` rolling
//! sums (classic metric math has no rolling window), gets no expression
//! entry, never a broken one: the link graphs the raw metrics, visible, and
//! the threshold annotation, labelled `Threshold (expression not graphed)`
//! since it applies to the expression's value, not to the metrics. So does
//! an expression whose metric ids are not all console ids
//! (`^[a-z][a-zA-Z0-9_]*$`); a metric id that is not one is then left out of
//! its entry.
//!
//! A metric of another region (`region:`) opens that region's console (the
//! first such metric's region, by metric id; a metric of yet another
//! region carries its own `region` option), and a metric of another
//! account (`account:`) carries `accountId`, as the console's
//! cross-account graphs write it; metrics of the evaluator's own account
//! and region add nothing, so their links stay as they were.
//!
//! A wildcard dimension value (`*`) is replaced by the alert's label of the
//! same name (the engine labels expanded instances with their dimension
//! values); without such a label there is no link.

use std::fmt::Write as _;

use firebell_core::alert::Alert;
use firebell_core::expr::Expr;
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

/// The id of the expression entry: `e1`, or the first `e<n>` that is not a
/// metric id.
fn expression_id(alert: &Alert) -> String {
    (1..)
        .map(|n| format!("e{n}"))
        .find(|id| !alert.metrics.contains_key(id))
        .unwrap_or_default()
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
pub(crate) fn console_url(
    alert: &Alert,
    region: &str,
    role_accounts: &std::collections::BTreeSet<String>,
    at: Epoch,
) -> Option<String> {
    if alert.metrics.is_empty() {
        return None;
    }
    let source = alert.expression.trim();
    let single = alert.metrics.len() == 1 && alert.metrics.contains_key(source);
    let ids_ok = alert.metrics.keys().all(|id| valid_console_id(id));
    // The expression as CloudWatch metric math, when it has an equivalent.
    // A Metrics Insights query graphs as itself (all its groups); no
    // metric math over it.
    let has_query = alert.metrics.values().any(|m| m.query.is_some());
    let expression = if single || !ids_ok || has_query {
        None
    } else {
        Expr::parse(source).ok().and_then(|e| e.to_metric_math())
    };
    let with_expression = expression.is_some();
    // The console of the metrics' region (`region:` on a metric); a metric
    // of another region than the graph's carries its own.
    let configured = region;
    let graph_region = alert
        .metrics
        .values()
        .find_map(|m| m.region.as_deref())
        .unwrap_or(configured);
    let region = graph_region;
    let mut metrics = Vec::with_capacity(alert.metrics.len() + 1);
    let mut period = 0u64;
    for (id, spec) in &alert.metrics {
        if let Some(sql) = &spec.query {
            let secs = spec.period.as_secs().max(1);
            period = period.max(secs);
            let mut opts = vec![("expression", J::S(sql.clone()))];
            if ids_ok {
                opts.push(("id", J::S(id.clone())));
            }
            opts.push(("period", J::N(secs as f64)));
            metrics.push(J::A(vec![J::O(opts)]));
            continue;
        }
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
        // Another account's metric (cross-account observability: the
        // console of the monitoring account graphs it by `accountId`). One
        // read through a role (`accounts:`) has none: `accountId` works
        // only in a monitoring account; the link opens the signed-in
        // account's console, which shows it when signed in to that account.
        if let Some(account) = spec
            .account
            .as_ref()
            .filter(|a| !role_accounts.contains(*a))
        {
            opts.push(("accountId", J::S(account.clone())));
        }
        let own_region = spec.region.as_deref().unwrap_or(configured);
        if own_region != graph_region {
            opts.push(("region", J::S(own_region.to_string())));
        }
        if with_expression {
            opts.push(("visible", J::B(false)));
        }
        entry.push(J::O(opts));
        metrics.push(J::A(entry));
    }
    let threshold_label = if let Some(expression) = expression {
        metrics.push(J::A(vec![J::O(vec![
            ("expression", J::S(expression)),
            ("label", J::S(alert.name().to_string())),
            ("id", J::S(expression_id(alert))),
        ])]));
        "Threshold"
    } else if single {
        "Threshold"
    } else {
        "Threshold (expression not graphed)"
    };
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
                    ("label", J::S(threshold_label.to_string())),
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
    use std::collections::BTreeSet;

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

    const AT: Epoch = 1_700_000_000;

    fn rule(yaml: &str) -> firebell_core::model::Rule {
        let mut set = firebell_core::config::parse_rules("r.yaml", yaml).unwrap();
        set.rules.remove(0)
    }

    /// A Metrics Insights query graphs as the query itself (every group),
    /// with no metric math over it.
    #[test]
    fn a_metrics_insights_query_links_as_its_sql() {
        let r = rule(
            r#"rules:
  - name: Hot
    metrics:
      cpu: {query: 'SELECT MAX(CPUUtilization) FROM "AWS/EC2" GROUP BY InstanceId', period: 5m}
      cap: {namespace: Fleet, metric: CpuCap, stat: Maximum, period: 5m}
    expression: cpu / cap
    condition: {op: ">", threshold: 1}
"#,
        );
        let alert = super::super::sample_alert(&r, AT);
        let url = console_url(&alert, "us-east-1", &BTreeSet::new(), AT).unwrap();
        assert!(
            url.contains("~(~'Fleet~'CpuCap~(id~'cap~stat~'Maximum~period~300))~(~(expression~'SELECT*20MAX*28CPUUtilization*29*20FROM*20*22AWS*2fEC2*22*20GROUP*20BY*20InstanceId~id~'cpu~period~300))"),
            "{url}"
        );
        assert!(!url.contains("visible"), "{url}");
        assert!(
            url.contains("Threshold*20*28expression*20not*20graphed*29"),
            "{url}"
        );
    }

    /// An SLO burn-rate rule's expression uses RSUM, which CloudWatch does
    /// not have: the link graphs its metrics, visible, and the threshold.
    #[test]
    fn slo_alert_links_raw_metrics_and_threshold() {
        let slos = firebell_core::slo::parse_slos(
            "s.yaml",
            r#"
slos:
  - name: Payments
    team: payments
    objective: 99.9
    sli:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: payments}, stat: Sum}
      total: {namespace: Shop, metric: Requests, dimensions: {Service: payments}, stat: Sum}
"#,
        )
        .unwrap();
        let rules = firebell_core::slo::rules(&slos).unwrap();
        assert_eq!(rules.len(), 3);
        for r in &rules {
            assert!(r.expression_src.contains("RSUM("));
            let alert = super::super::sample_alert(r, AT);
            let url = console_url(&alert, "eu-central-1", &BTreeSet::new(), AT).unwrap();
            assert!(!url.contains("RSUM"), "{url}");
            assert!(!url.contains("expression~"), "{url}");
            assert!(!url.contains("visible"), "{url}");
            assert!(
                url.contains("~(~'Shop~'Errors~'Service~'payments~(id~'errors~stat~'Sum~period~"),
                "{url}"
            );
            assert!(
                url.contains("~(~'Shop~'Requests~'Service~'payments~(id~'total~stat~'Sum~period~"),
                "{url}"
            );
            assert!(
                url.contains("annotations~(horizontal~(~(label~'Threshold*20*28expression*20not*20graphed*29~value~"),
                "{url}"
            );
        }
        let page = super::super::sample_alert(&rules[0], AT);
        assert_eq!(page.threshold, 14.4);
        assert_eq!(
            console_url(&page, "eu-central-1", &BTreeSet::new(), AT).unwrap(),
            "https://eu-central-1.console.aws.amazon.com/cloudwatch/home?region=eu-central-1#metricsV2:graph=~(metrics~(~(~'Shop~'Errors~'Service~'payments~(id~'errors~stat~'Sum~period~60))~(~'Shop~'Requests~'Service~'payments~(id~'total~stat~'Sum~period~60)))~view~'timeSeries~stacked~false~region~'eu-central-1~title~'Payments*3apage*3a1h~period~60~annotations~(horizontal~(~(label~'Threshold*20*28expression*20not*20graphed*29~value~14.4)))~start~'2023-11-14T21*3a03*3a20Z~end~'2023-11-14T22*3a28*3a20Z)"
        );
    }

    #[test]
    fn translated_expressions() {
        let yaml = |expr: &str| {
            format!(
                r#"
rules:
  - name: R
    metrics:
      a: {{namespace: N, metric: A, stat: Sum}}
      b: {{namespace: N, metric: B, stat: Sum}}
    expression: {expr}
    condition: {{op: ">", threshold: 1}}
"#
            )
        };
        let url = |expr: &str| {
            console_url(
                &super::super::sample_alert(&rule(&yaml(expr)), AT),
                "us-east-1",
                &BTreeSet::new(),
                AT,
            )
            .unwrap()
        };
        // Translated: hidden metrics, the metric-math expression, the threshold.
        let u = url("MAX(a,b)");
        assert!(
            u.contains("(id~'a~stat~'Sum~period~60~visible~false)"),
            "{u}"
        );
        assert!(
            u.contains("~(~(expression~'MAX*28*5ba*2c*20b*5d*29~label~'R~id~'e1))"),
            "{u}"
        );
        assert!(u.contains("(label~'Threshold~value~1)"), "{u}");
        let u = url("a*100/b");
        assert!(u.contains("expression~'a*20*2a*20100*20*2f*20b~"), "{u}");
        // Not translated: visible metrics, no expression.
        for expr in ["SQRT(a) + b", "MAX(a) - b", "RSUM(a, 5) / RSUM(b, 5)"] {
            let u = url(expr);
            assert!(
                !u.contains("expression~") && !u.contains("visible"),
                "{expr}: {u}"
            );
            assert!(
                u.contains("(label~'Threshold*20*28expression*20not*20graphed*29~value~1)"),
                "{expr}: {u}"
            );
        }
    }

    /// A metric called `e1` does not clash with the expression's id.
    #[test]
    fn expression_id_is_free() {
        let r = rule(
            r#"
rules:
  - name: R
    metrics:
      e1: {namespace: N, metric: A, stat: Sum}
      e2: {namespace: N, metric: B, stat: Sum}
    expression: e1 + e2
    condition: {op: ">", threshold: 1}
"#,
        );
        let u = console_url(
            &super::super::sample_alert(&r, AT),
            "us-east-1",
            &BTreeSet::new(),
            AT,
        )
        .unwrap();
        assert!(
            u.contains("(expression~'e1*20*2b*20e2~label~'R~id~'e3)"),
            "{u}"
        );
    }

    /// Metrics of another account and region: that region's console, the
    /// account as `accountId`, a metric of a third region with its own.
    #[test]
    fn other_accounts_and_regions() {
        let r = rule(
            r#"
rules:
  - name: R
    metrics:
      a: {namespace: N, metric: A, stat: Sum, account: "111122223333", region: eu-west-1}
      b: {namespace: N, metric: B, stat: Sum, region: ap-south-1}
      c: {namespace: N, metric: C, stat: Sum}
    expression: a + b + c
    condition: {op: ">", threshold: 1}
"#,
        );
        let u = console_url(
            &super::super::sample_alert(&r, AT),
            "us-east-1",
            &BTreeSet::new(),
            AT,
        )
        .unwrap();
        assert!(
            u.starts_with("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#metricsV2:graph=~(metrics~(~(~'N~'A~(id~'a~stat~'Sum~period~60~accountId~'111122223333~visible~false))~(~'N~'B~(id~'b~stat~'Sum~period~60~region~'ap-south-1~visible~false))~(~'N~'C~(id~'c~stat~'Sum~period~60~region~'us-east-1~visible~false))"),
            "{u}"
        );
        assert!(u.contains("~region~'eu-west-1~title~'R~"), "{u}");
        // The same account read through a role (`accounts:`): no
        // `accountId` (it works only in a monitoring account); the link
        // opens the signed-in account's console of eu-west-1.
        let roles = BTreeSet::from(["111122223333".to_string()]);
        let u = console_url(&super::super::sample_alert(&r, AT), "us-east-1", &roles, AT).unwrap();
        assert!(
            u.starts_with("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#metricsV2:graph=~(metrics~(~(~'N~'A~(id~'a~stat~'Sum~period~60~visible~false))~(~'N~'B~"),
            "{u}"
        );
        assert!(!u.contains("accountId"), "{u}");
    }

    #[test]
    fn regions() {
        assert_eq!(region(None), "us-east-1");
        assert_eq!(region(Some("eu-central-1")), "eu-central-1");
        assert_eq!(region(Some("eu-central-1/../x")), "us-east-1");
        assert!(console_base("cn-north-1").contains("amazonaws.cn"));
    }
}
