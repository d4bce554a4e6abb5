//! Lint: rules that load fine but are likely to page badly. Each finding is
//! a warning at the rule's `file:line:column` (for rules generated from an
//! SLO, the SLO's) with a code; `firebell lint --strict` and
//! `firebell validate --strict` treat them as errors.
//!
//! | code | what |
//! |---|---|
//! | `page-without-runbook` | a paging rule (`severity: page`) has no `runbook_url` annotation |
//! | `unrouted` | the rule's labels reach no receiver, or only the root route's default receiver |
//! | `ratio-without-guard` | the expression divides by a metric and there is no `min_volume` guard |
//! | `page-on-one-datapoint` | a paging rule fires on a single datapoint: `for` shorter than two periods, or `datapoints` with fewer than 2 breaching |
//! | `page-on-cause` | a paging rule watches a cause metric (CPU, memory, disk, ...) rather than a symptom users feel |
//! | `brittle-for` | `for` of three periods or more on a per-period value: any single datapoint at or under the threshold restarts it, so a slow burn near the threshold or a flapping fire pages late or never |
//!
//! Notes:
//! - `unrouted` is not reported when the routing tree has no child routes
//!   (everything goes to the root receiver on purpose). Dimension labels of
//!   wildcard metrics are not known before the rule runs; routes are checked
//!   with the rule's own labels and `alertname`.
//! - A rule whose expression uses rolling windows (`RSUM`, such as the SLO
//!   burn-rate rules, whose short window is the confirmation) already looks
//!   at several datapoints: `page-on-one-datapoint` does not apply.

use firebell_core::diag::Diagnostics;
use firebell_core::model::{Pending, Rule};
use firebell_notify::NotifyConfig;

use firebell_engine::Config;

/// Every lint code with a one-line description, in the order of the table above.
pub const CODES: &[(&str, &str)] = &[
    (
        PAGE_WITHOUT_RUNBOOK,
        "a paging rule has no runbook_url annotation",
    ),
    (
        UNROUTED,
        "the rule's labels reach no receiver, or only the root's default",
    ),
    (
        RATIO_WITHOUT_GUARD,
        "a ratio of metrics without a min_volume guard",
    ),
    (
        PAGE_ON_ONE_DATAPOINT,
        "a paging rule fires on a single datapoint",
    ),
    (PAGE_ON_CAUSE, "a paging rule watches a cause metric"),
    (
        BRITTLE_FOR,
        "a long `for` that any single clear datapoint restarts",
    ),
];

pub const PAGE_WITHOUT_RUNBOOK: &str = "page-without-runbook";
pub const UNROUTED: &str = "unrouted";
pub const RATIO_WITHOUT_GUARD: &str = "ratio-without-guard";
pub const PAGE_ON_ONE_DATAPOINT: &str = "page-on-one-datapoint";
pub const PAGE_ON_CAUSE: &str = "page-on-cause";
pub const BRITTLE_FOR: &str = "brittle-for";

/// Parts of metric names (lower case) that mark a cause metric: resource
/// saturation that may or may not hurt users (`CPUUtilization`,
/// `MemoryUtilization`, `mem_used_percent`, `DiskSpaceUtilization`,
/// `FreeStorageSpace`, `SwapUsage`, ...).
const CAUSE_PARTS: &[&str] = &[
    "cpu",
    "memory",
    "mem_",
    "disk",
    "swap",
    "storagespace",
    "inode",
    "loadaverage",
    "load_average",
    "filesystem",
];

/// Whether a metric name looks like a cause (resource) metric.
pub fn is_cause_metric(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "load" || CAUSE_PARTS.iter().any(|p| n.contains(p))
}

/// Lints every rule of `config`. The result holds warnings only, sorted by position.
pub fn lint(config: &Config) -> Diagnostics {
    let mut out = Diagnostics::new();
    for rule in &config.rules.rules {
        lint_rule(rule, &config.notify, &mut out);
    }
    out.sort();
    out
}

fn warn(out: &mut Diagnostics, rule: &Rule, code: &str, message: String) {
    let o = &rule.origin;
    out.warning(&o.file, o.line, o.column, code, message);
}

/// The lint warnings of one rule.
pub fn lint_rule(rule: &Rule, notify: &NotifyConfig, out: &mut Diagnostics) {
    let name = &rule.name;
    let paging = rule.severity() == Some("page");

    if paging
        && rule
            .annotations
            .get("runbook_url")
            .is_none_or(|u| u.trim().is_empty())
    {
        warn(
            out,
            rule,
            PAGE_WITHOUT_RUNBOOK,
            format!(
                "rule {name:?} pages (severity=page) but has no `runbook_url` annotation: whoever is woken up needs to know what to do"
            ),
        );
    }

    if let Some(msg) = routing_problem(rule, notify) {
        warn(out, rule, UNROUTED, msg);
    }

    let divisors = rule.expression.divisors();
    if rule.min_volume.is_none() && !divisors.is_empty() {
        let ids: Vec<String> = divisors.iter().map(|d| format!("`{d}`")).collect();
        warn(
            out,
            rule,
            RATIO_WITHOUT_GUARD,
            format!(
                "rule {name:?} divides by {} without a `min_volume` guard: at low traffic one bad request is a large ratio",
                ids.join(", ")
            ),
        );
    }

    if paging && rule.expression.history() == 0 {
        let step = rule.step();
        let single = match rule.pending {
            Pending::For(d) if d < step.saturating_mul(2) => Some(format!(
                "`for` {} is shorter than two periods ({})",
                firebell_core::decode::format_duration(d),
                firebell_core::decode::format_duration(step.saturating_mul(2))
            )),
            Pending::MofN { m, n } if m < 2 => Some(format!("`datapoints` is {m} out of {n}")),
            _ => None,
        };
        if let Some(why) = single {
            warn(
                out,
                rule,
                PAGE_ON_ONE_DATAPOINT,
                format!(
                    "rule {name:?} pages on a single breaching datapoint ({why}): one noisy datapoint wakes someone up"
                ),
            );
        }
    }

    // A `for` over several periods of a per-period value (no rolling
    // window): one datapoint at or under the threshold restarts it.
    if rule.expression.history() == 0
        && let Pending::For(d) = rule.pending
    {
        let step = rule.step().as_secs().max(1);
        let periods = d.as_secs() / step;
        if periods >= 3 {
            let n = periods.min(1440);
            warn(
                out,
                rule,
                BRITTLE_FOR,
                format!(
                    "rule {name:?}: `for: {}` restarts at any single datapoint at or under the threshold: a slow burn near it or a flapping fire pages late or never; use `datapoints: {{breaching: {}, out_of: {n}}}` (with `keep_firing_for`), or a windowed ratio (RSUM)",
                    firebell_core::decode::format_duration(d),
                    n - 1,
                ),
            );
        }
    }

    if paging {
        let causes: Vec<String> = rule
            .metrics
            .values()
            .filter(|m| is_cause_metric(&m.metric_name))
            .map(|m| format!("{} {}", m.namespace, m.metric_name))
            .collect();
        if !causes.is_empty() {
            warn(
                out,
                rule,
                PAGE_ON_CAUSE,
                format!(
                    "rule {name:?} pages on a cause metric ({}): page on what users feel (errors, latency, availability) and ticket on causes",
                    causes.join(", ")
                ),
            );
        }
    }
}

/// Why the rule's labels do not reach a team, if they do not.
fn routing_problem(rule: &Rule, notify: &NotifyConfig) -> Option<String> {
    let labels = firebell_engine::rule_labels(rule);
    let shown: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let shown = if shown.is_empty() {
        "no labels".to_string()
    } else {
        format!("labels {}", shown.join(", "))
    };
    let name = &rule.name;
    if notify.route.receiver.is_empty() {
        return Some(format!(
            "rule {name:?} reaches no receiver: no `route` is configured"
        ));
    }
    if notify.route.routes.is_empty() {
        return None;
    }
    let matches = firebell_notify::route(notify, &labels);
    let root = &notify.route.receiver;
    if matches.iter().all(|m| m.receiver.is_empty()) {
        return Some(format!("rule {name:?} reaches no receiver ({shown})"));
    }
    if matches
        .iter()
        .all(|m| &m.receiver == root || m.receiver.is_empty())
    {
        return Some(format!(
            "rule {name:?} reaches only the root's default receiver {root:?} ({shown}): no team route claims it"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebell_core::diag::Diagnostics;

    const ROUTING: &str = r#"
receivers:
  ops: {topics: ["arn:aws:sns:us-east-1:123456789012:ops"]}
  payments: {topics: ["arn:aws:sns:us-east-1:123456789012:payments"]}
route:
  receiver: ops
  routes:
    - matchers: ['team="payments"']
      receiver: payments
"#;

    const RULES: &str = r#"rules:
  - name: Clean
    metrics:
      errors: {namespace: Shop, metric: Errors, stat: Sum}
      requests: {namespace: Shop, metric: Requests, stat: Sum}
    expression: 100 * errors / requests
    condition: {op: ">", threshold: 1}
    datapoints: {breaching: 2, out_of: 3}
    min_volume: {metric: requests, at_least: 100, window: 5m}
    labels: {team: payments, severity: page}
    annotations: {runbook_url: "https://runbooks.example.com/x"}
  - name: Everything
    metrics:
      cpu: {namespace: AWS/EC2, metric: CPUUtilization, stat: Average}
      n: {namespace: AWS/EC2, metric: NetworkIn, stat: Sum}
    expression: cpu / n
    condition: {op: ">", threshold: 90}
    for: 1m
    labels: {team: search, severity: page}
  - name: OneOfThree
    metrics:
      disk: {namespace: CWAgent, metric: disk_used_percent, stat: Maximum}
    expression: disk
    condition: {op: ">", threshold: 90}
    datapoints: {breaching: 1, out_of: 3}
    labels: {team: payments, severity: page}
    annotations: {runbook_url: " "}
  - name: TicketOnCpu
    metrics:
      cpu: {namespace: AWS/EC2, metric: CPUUtilization, stat: Average}
    expression: cpu / 100
    condition: {op: ">", threshold: 0.9}
    labels: {team: payments, severity: ticket}
"#;

    fn run(files: &[(&str, &str)]) -> Vec<String> {
        let texts: Vec<(String, String)> = files
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let mut diags = Diagnostics::new();
        let config = firebell_engine::load_texts(&texts, &mut diags, Vec::new());
        assert!(!diags.has_errors(), "{diags}");
        lint(&config).list.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn every_lint_with_its_position_and_code() {
        assert_eq!(
            run(&[("rules.yaml", RULES), ("routing.yaml", ROUTING)]),
            vec![
                "rules.yaml:12:11: warning: rule \"Everything\" pages (severity=page) but has no `runbook_url` annotation: whoever is woken up needs to know what to do [page-without-runbook]",
                "rules.yaml:12:11: warning: rule \"Everything\" reaches only the root's default receiver \"ops\" (labels severity=page, team=search): no team route claims it [unrouted]",
                "rules.yaml:12:11: warning: rule \"Everything\" divides by `n` without a `min_volume` guard: at low traffic one bad request is a large ratio [ratio-without-guard]",
                "rules.yaml:12:11: warning: rule \"Everything\" pages on a single breaching datapoint (`for` 1m is shorter than two periods (2m)): one noisy datapoint wakes someone up [page-on-one-datapoint]",
                "rules.yaml:12:11: warning: rule \"Everything\" pages on a cause metric (AWS/EC2 CPUUtilization): page on what users feel (errors, latency, availability) and ticket on causes [page-on-cause]",
                "rules.yaml:20:11: warning: rule \"OneOfThree\" pages (severity=page) but has no `runbook_url` annotation: whoever is woken up needs to know what to do [page-without-runbook]",
                "rules.yaml:20:11: warning: rule \"OneOfThree\" pages on a single breaching datapoint (`datapoints` is 1 out of 3): one noisy datapoint wakes someone up [page-on-one-datapoint]",
                "rules.yaml:20:11: warning: rule \"OneOfThree\" pages on a cause metric (CWAgent disk_used_percent): page on what users feel (errors, latency, availability) and ticket on causes [page-on-cause]",
            ]
        );
    }

    /// Issue #10: a paging rule whose period is beyond any validated one
    /// (built around `validate`) is linted without overflowing `step * 2`.
    #[test]
    fn a_huge_period_does_not_overflow() {
        let texts = vec![
            ("rules.yaml".to_string(), RULES.to_string()),
            ("routing.yaml".to_string(), ROUTING.to_string()),
        ];
        let mut diags = Diagnostics::new();
        let mut config = firebell_engine::load_texts(&texts, &mut diags, Vec::new());
        for r in &mut config.rules.rules {
            for m in r.metrics.values_mut() {
                m.period = std::time::Duration::from_secs(u64::MAX / 2 + 1);
            }
        }
        let got: Vec<String> = lint(&config).list.iter().map(|d| d.to_string()).collect();
        assert!(
            got.iter()
                .any(|w| w.contains("(`for` 1m is shorter than two periods (")),
            "{got:#?}"
        );
    }

    #[test]
    fn no_route_and_single_receiver_trees() {
        let clean = r#"rules:
  - name: A
    metrics: {m: {namespace: N, metric: Errors, stat: Sum}}
    expression: m
    condition: {op: ">", threshold: 1}
    labels: {team: x}
"#;
        assert_eq!(
            run(&[("r.yaml", clean)]),
            vec![
                "r.yaml:2:11: warning: rule \"A\" reaches no receiver: no `route` is configured [unrouted]"
            ]
        );
        let single = r#"
receivers: {ops: {topics: ["arn:aws:sns:us-east-1:123456789012:ops"]}}
route: {receiver: ops}
"#;
        assert!(run(&[("r.yaml", clean), ("routing.yaml", single)]).is_empty());
    }

    #[test]
    fn slo_rules_are_linted_at_the_slo() {
        let slos = r#"slos:
  - name: Api
    team: payments
    objective: 99.9
    sli:
      errors: {namespace: App, metric: Errors, stat: Sum}
      total: {namespace: App, metric: Requests, stat: Sum}
"#;
        assert_eq!(
            run(&[("slos.yaml", slos), ("routing.yaml", ROUTING)]),
            vec![
                "slos.yaml:2:11: warning: rule \"Api:page:1h\" pages (severity=page) but has no `runbook_url` annotation: whoever is woken up needs to know what to do [page-without-runbook]",
                "slos.yaml:2:11: warning: rule \"Api:page:1h\" divides by `total` without a `min_volume` guard: at low traffic one bad request is a large ratio [ratio-without-guard]",
                "slos.yaml:2:11: warning: rule \"Api:page:6h\" pages (severity=page) but has no `runbook_url` annotation: whoever is woken up needs to know what to do [page-without-runbook]",
                "slos.yaml:2:11: warning: rule \"Api:page:6h\" divides by `total` without a `min_volume` guard: at low traffic one bad request is a large ratio [ratio-without-guard]",
                "slos.yaml:2:11: warning: rule \"Api:ticket:3d\" divides by `total` without a `min_volume` guard: at low traffic one bad request is a large ratio [ratio-without-guard]",
            ]
        );
    }

    #[test]
    fn cause_metric_names() {
        for n in [
            "CPUUtilization",
            "MemoryUtilization",
            "mem_used_percent",
            "DiskSpaceUtilization",
            "FreeStorageSpace",
            "SwapUsage",
            "FreeableMemory",
        ] {
            assert!(is_cause_metric(n), "{n}");
        }
        for n in [
            "Errors",
            "Latency",
            "5XXError",
            "TargetResponseTime",
            "Requests",
        ] {
            assert!(!is_cause_metric(n), "{n}");
        }
    }

    #[test]
    fn the_examples_lint_clean() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let (config, _) = firebell_engine::load(&dir).unwrap();
        let found: Vec<String> = lint(&config).list.iter().map(|d| d.to_string()).collect();
        assert!(found.is_empty(), "{found:#?}");
    }
}
