//! `firebell_tools::configdiff`: what changes between two configs, checked
//! on the exact text (and JSON) a human sees before a deploy.

use std::path::{Path, PathBuf};

use firebell_core::diag::Diagnostics;
use firebell_engine::Config;
use firebell_tools::configdiff::diff;

const RULES: &str = r#"
rules:
  - name: PaymentsErrorRate
    metrics:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: payments}, stat: Sum, period: 1m}
    expression: errors
    condition: {op: ">", threshold: 5}
    for: 5m
    labels: {team: payments, severity: page}
    annotations:
      summary: Payments errors are high
  - name: OldRule
    metrics:
      latency: {namespace: Shop, metric: Latency, dimensions: {Service: checkout}, stat: p99, period: 1m}
    expression: latency
    condition: {op: ">", threshold: 800}
    labels: {team: checkout, severity: ticket}
"#;

const ROUTING: &str = r#"
receivers:
  ops: {topics: [arn:aws:sns:us-east-1:123456789012:ops-topic]}
  payments: {topics: [arn:aws:sns:us-east-1:123456789012:payments-topic]}
route:
  receiver: ops
  group_by: [alertname]
  routes:
    - matchers: ['team="payments"']
      receiver: payments
      group_wait: 1m
"#;

/// A config from `(file name, text)` pairs; it must load without errors.
fn load(files: &[(&str, &str)]) -> Config {
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    let paths = files.iter().map(|(f, _)| PathBuf::from(f)).collect();
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(&texts, &mut diags, paths);
    assert!(!diags.has_errors(), "{diags}");
    c
}

fn base() -> Config {
    load(&[("routing.yaml", ROUTING), ("rules.yaml", RULES)])
}

/// `text` with `from` (which occurs exactly once) replaced by `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {text}");
    text.replacen(from, to, 1)
}

/// `config <old> -> <new>\n` for the two configs.
fn header(old: &Config, new: &Config) -> String {
    format!("config {} -> {}\n", old.version, new.version)
}

#[test]
fn identical_configs_have_no_changes() {
    let old = base();
    let new = base();
    let d = diff(&old, &new);
    assert!(d.is_empty());
    assert_eq!(
        d.to_text(),
        format!("no changes (config {})\n", old.version)
    );
    assert_eq!(old.version.len(), 12);
}

#[test]
fn a_comment_changes_the_version_not_the_behaviour() {
    let old = base();
    let new = load(&[
        ("routing.yaml", ROUTING),
        ("rules.yaml", &format!("# payments\n{RULES}")),
    ]);
    let d = diff(&old, &new);
    assert!(d.is_empty());
    assert_eq!(
        d.to_text(),
        format!("{}no changes in behaviour\n", header(&old, &new))
    );
}

#[test]
fn rules_added_and_removed() {
    let old = base();
    let rules = edit(RULES, "name: OldRule", "name: CheckoutLatencyHigh");
    let new = load(&[("routing.yaml", ROUTING), ("rules.yaml", &rules)]);
    let d = diff(&old, &new);
    assert!(!d.is_empty());
    assert_eq!(
        d.to_text(),
        format!(
            "{}rules: 1 added, 1 removed\n  + CheckoutLatencyHigh\n  - OldRule\n",
            header(&old, &new)
        )
    );
}

#[test]
fn a_threshold_change_names_its_fields() {
    let old = base();
    let rules = edit(RULES, "threshold: 5}", "threshold: 2}");
    let rules = edit(&rules, "for: 5m", "for: 10m");
    let rules = edit(
        &rules,
        "summary: Payments errors are high",
        "summary: Payments errors are very high",
    );
    let new = load(&[("routing.yaml", ROUTING), ("rules.yaml", &rules)]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}rules: 1 changed\n  ~ PaymentsErrorRate: threshold, for, annotations.summary\n",
            header(&old, &new)
        )
    );
}

#[test]
fn labels_metrics_and_pending_kind_are_named() {
    let old = base();
    let rules = edit(
        RULES,
        "labels: {team: payments, severity: page}",
        "labels: {team: payments, severity: ticket, service: payments}",
    );
    let rules = edit(&rules, "for: 5m", "datapoints: {breaching: 3, out_of: 5}");
    let rules = edit(&rules, "stat: p99", "stat: p95");
    let new = load(&[("routing.yaml", ROUTING), ("rules.yaml", &rules)]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}rules: 2 changed\n  ~ OldRule: metrics.latency\n  ~ PaymentsErrorRate: for, datapoints, labels.service, labels.severity\n",
            header(&old, &new)
        )
    );
}

#[test]
fn a_rule_moved_to_another_file_is_not_changed() {
    let (payments, old_rule) = RULES.split_at(RULES.find("  - name: OldRule").unwrap_or(0));
    assert!(old_rule.starts_with("  - name: OldRule"));
    let old = base();
    let new = load(&[
        ("routing.yaml", ROUTING),
        ("rules.yaml", payments),
        ("rules/checkout.yaml", &format!("rules:\n{old_rule}")),
    ]);
    let d = diff(&old, &new);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        d.to_text(),
        format!(
            "{}files: 1 added\n  + rules/checkout.yaml\nno changes in behaviour\n",
            header(&old, &new)
        )
    );
}

#[test]
fn a_receiver_topic_change() {
    let old = base();
    let routing = edit(
        ROUTING,
        "payments: {topics: [arn:aws:sns:us-east-1:123456789012:payments-topic]}",
        "payments: {topics: [arn:aws:sns:us-east-1:123456789012:payments-topic, arn:aws:sns:us-east-1:123456789012:payments-pager]}",
    );
    let new = load(&[("routing.yaml", &routing), ("rules.yaml", RULES)]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}receivers: 1 changed\n  ~ payments: topics\n",
            header(&old, &new)
        )
    );
}

#[test]
fn route_changes_by_path() {
    let old = base();
    // The payments route waits less; a checkout route is added after it.
    let routing = edit(ROUTING, "group_wait: 1m", "group_wait: 30s");
    let routing = format!(
        "{routing}    - matchers: ['team=\"checkout\"', 'severity=\"page\"']\n      receiver: ops\n      continue: true\n"
    );
    let new = load(&[("routing.yaml", &routing), ("rules.yaml", RULES)]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}routes: 1 added, 1 changed\n  + root/1 {{team=\"checkout\", severity=\"page\"}} -> ops\n  ~ root/0 {{team=\"payments\"}} -> payments: group_wait\n",
            header(&old, &new)
        )
    );
    // Back again: the route is removed.
    assert_eq!(
        diff(&new, &old).to_text(),
        format!(
            "{}routes: 1 removed, 1 changed\n  - root/1 {{team=\"checkout\", severity=\"page\"}} -> ops\n  ~ root/0 {{team=\"payments\"}} -> payments: group_wait\n",
            header(&new, &old)
        )
    );
}

#[test]
fn an_inherited_setting_changes_every_route_inheriting_it() {
    let old = base();
    let routing = edit(
        ROUTING,
        "group_by: [alertname]",
        "group_by: [alertname, team]",
    );
    let new = load(&[("routing.yaml", &routing), ("rules.yaml", RULES)]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}routes: 2 changed\n  ~ root {{}} -> ops: group_by\n  ~ root/0 {{team=\"payments\"}} -> payments: group_by\n",
            header(&old, &new)
        )
    );
    // Reordered group_by labels change nothing.
    let same = edit(
        ROUTING,
        "group_by: [alertname]",
        "group_by: [team, alertname]",
    );
    let same = load(&[("routing.yaml", &same), ("rules.yaml", RULES)]);
    assert!(diff(&new, &same).is_empty());
}

#[test]
fn an_inhibit_rule_added() {
    let old = base();
    let routing = format!(
        "{ROUTING}inhibit_rules:\n  - source_matchers: ['severity=\"page\"']\n    target_matchers: ['severity=\"ticket\"']\n    equal: [service]\n"
    );
    let new = load(&[("routing.yaml", &routing), ("rules.yaml", RULES)]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}inhibit_rules: 1 added\n  + {{severity=\"page\"}} inhibits {{severity=\"ticket\"}} equal [service]\n",
            header(&old, &new)
        )
    );
}

#[test]
fn a_time_interval_added_and_used() {
    let old = base();
    let routing = edit(
        ROUTING,
        "      group_wait: 1m\n",
        "      group_wait: 1m\n      mute_time_intervals: [nights]\ntime_intervals:\n  nights:\n    - times: [{start_time: \"22:00\", end_time: \"24:00\"}]\n",
    );
    let new = load(&[("routing.yaml", &routing), ("rules.yaml", RULES)]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}routes: 1 changed\n  ~ root/0 {{team=\"payments\"}} -> payments: mute_time_intervals\ntime_intervals: 1 added\n  + nights\n",
            header(&old, &new)
        )
    );
    let later = edit(&routing, "\"22:00\"", "\"23:00\"");
    let later = load(&[("routing.yaml", &later), ("rules.yaml", RULES)]);
    assert_eq!(
        diff(&new, &later).to_text(),
        format!(
            "{}time_intervals: 1 changed\n  ~ nights: times\n",
            header(&new, &later)
        )
    );
}

#[test]
fn settings_and_silence_policy_changes_show_their_values() {
    let old = base();
    let settings = "history:\n  retention: 30d\nself_monitoring:\n  fetch_failures: 5\n  labels: {team: sre}\nsilences:\n  max_duration: 2d\n";
    let new = load(&[
        ("routing.yaml", ROUTING),
        ("rules.yaml", RULES),
        ("settings.yaml", settings),
    ]);
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}files: 1 added\n  + settings.yaml\nsilences: 1 changed\n  ~ max_duration: 7d -> 2d\nsettings: 3 changed\n  ~ self_monitoring.labels: {{severity=\"page\", team=\"firebell\"}} -> {{team=\"sre\"}}\n  ~ self_monitoring.fetch_failures: 3 -> 5\n  ~ history.retention: 90d -> 30d\n",
            header(&old, &new)
        )
    );
}

#[test]
fn json_shape() {
    let old = base();
    let rules = edit(RULES, "name: OldRule", "name: CheckoutLatencyHigh");
    let rules = edit(&rules, "threshold: 5}", "threshold: 2}");
    let routing = edit(
        ROUTING,
        "[arn:aws:sns:us-east-1:123456789012:payments-topic]",
        "[arn:aws:sns:us-east-1:123456789012:payments-pager]",
    );
    let new = load(&[
        ("routing.yaml", &routing),
        ("rules.yaml", &rules),
        ("history.yaml", "history: {enabled: false}\n"),
    ]);
    let none = serde_json::json!({"added": [], "removed": [], "changed": []});
    assert_eq!(
        diff(&old, &new).to_json(),
        serde_json::json!({
            "version": {"old": old.version, "new": new.version},
            "empty": false,
            "files": {"added": ["history.yaml"], "removed": [], "changed": []},
            "rules": {
                "added": ["CheckoutLatencyHigh"],
                "removed": ["OldRule"],
                "changed": [{"name": "PaymentsErrorRate", "fields": ["threshold"]}],
            },
            "receivers": {
                "added": [],
                "removed": [],
                "changed": [{"name": "payments", "fields": ["topics"]}],
            },
            "routes": none,
            "inhibit_rules": none,
            "time_intervals": none,
            "silences": [],
            "settings": [{"name": "history.enabled", "old": "true", "new": "false"}],
        })
    );
    let same = diff(&old, &old).to_json();
    assert_eq!(same["empty"], true);
    assert_eq!(same["rules"], none);
    assert_eq!(same["settings"], serde_json::json!([]));
}

/// The repository's example config.
fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Copies every YAML file below `from` to `to`, keeping the layout.
fn copy_yaml(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let path = entry.map(|e| e.path()).unwrap_or_default();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("{e}"));
            copy_yaml(&path, &target);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

fn load_dir(dir: &Path) -> Config {
    match firebell_engine::load(dir) {
        Ok((c, _)) => c,
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

/// Edits the file `name` of the config directory `dir`.
fn edit_file(dir: &Path, name: &str, from: &str, to: &str) {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    std::fs::write(&path, edit(&text, from, to)).unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn the_example_config_deployed_from_another_directory() {
    let old = load_dir(&examples_dir());
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_yaml(&examples_dir(), tmp.path());
    // A copy elsewhere is the same config.
    let copy = load_dir(tmp.path());
    assert_eq!(
        diff(&old, &copy).to_text(),
        format!("no changes (config {})\n", old.version)
    );
    edit_file(
        tmp.path(),
        "rules/payments.yaml",
        "threshold: 1\n",
        "threshold: 2\n",
    );
    edit_file(
        tmp.path(),
        "routing.yaml",
        "topics: [arn:aws:sns:us-east-1:123456789012:payments-oncall]",
        "topics: [arn:aws:sns:us-east-1:123456789012:payments-pager]",
    );
    edit_file(
        tmp.path(),
        "routing.yaml",
        "group_wait: 0s",
        "group_wait: 10s",
    );
    let new = load_dir(tmp.path());
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}rules: 1 changed
  ~ PaymentsHighErrorRate: threshold
receivers: 1 changed
  ~ payments-oncall: topics
routes: 5 changed
  ~ root {{}} -> ops: group_wait
  ~ root/0 {{team=\"payments\"}} -> payments-oncall: group_wait
  ~ root/1 {{team=\"checkout\"}} -> checkout-oncall: group_wait
  ~ root/1/0 {{severity=\"ticket\"}} -> checkout-oncall: group_wait
  ~ root/2 {{alertname=\"FirebellUnhealthy\"}} -> ops: group_wait
",
            header(&old, &new)
        )
    );
}

#[test]
fn an_slo_objective_changes_its_burn_rate_rules() {
    let old = load_dir(&examples_dir());
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_yaml(&examples_dir(), tmp.path());
    edit_file(
        tmp.path(),
        "slos.yaml",
        "objective: 99.5 ",
        "objective: 99.9 ",
    );
    let new = load_dir(tmp.path());
    // The burn rates are relative to the budget: in the expressions, the
    // budget spent (a context value) and the description.
    let fields = "expression, annotations.description, context.budget_spent";
    assert_eq!(
        diff(&old, &new).to_text(),
        format!(
            "{}rules: 3 changed
  ~ PaymentsAvailability:page:1h: {fields}
  ~ PaymentsAvailability:page:6h: {fields}
  ~ PaymentsAvailability:ticket:3d: {fields}
",
            header(&old, &new)
        )
    );
}

#[test]
fn account_roles_are_settings() {
    let old = base();
    let roles = |arn: &str| format!("accounts:\n  \"111122223333\": {{role_arn: \"{arn}\"}}\n");
    let a = load(&[
        ("routing.yaml", ROUTING),
        ("rules.yaml", RULES),
        ("accounts.yaml", &roles("arn:aws:iam::111122223333:role/a")),
    ]);
    let b = load(&[
        ("routing.yaml", ROUTING),
        ("rules.yaml", RULES),
        ("accounts.yaml", &roles("arn:aws:iam::111122223333:role/b")),
    ]);
    let names = |d: serde_json::Value| d["settings"].clone();
    assert_eq!(
        names(diff(&old, &a).to_json()),
        serde_json::json!([{"name": "accounts.111122223333.role_arn", "old": "-", "new": "arn:aws:iam::111122223333:role/a"}])
    );
    assert_eq!(
        names(diff(&a, &b).to_json()),
        serde_json::json!([{"name": "accounts.111122223333.role_arn", "old": "arn:aws:iam::111122223333:role/a", "new": "arn:aws:iam::111122223333:role/b"}])
    );
}
