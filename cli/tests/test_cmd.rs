#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell test`: the example rule tests pass, a failing one prints its
//! diff and exits 1, and broken test files are reported with positions.

mod common;
use common::{firebell, text};

#[test]
fn the_example_rule_tests_pass() {
    let out = firebell(&[
        "test",
        "examples/tests/payments_test.yaml",
        "examples/tests/checkout_test.yaml",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "examples failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
    let passed: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 20, "{summary}");

    // A directory runs the test files in it.
    let dir = firebell(&["test", "examples/tests"]);
    assert!(dir.status.success(), "{}", text(&dir.stdout));
    assert_eq!(text(&dir.stdout).lines().last(), Some(summary));
}

#[test]
fn a_failing_rule_test_prints_the_diff_and_exits_1() {
    let out = firebell(&["test", "tests/fixtures/failing_rule_test.yaml"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let expected = "\
FAIL tests/fixtures/failing_rule_test.yaml:8: wrongly expects a page after 2 minutes (3 checks)
  tests/fixtures/failing_rule_test.yaml:14:9: alerts of PaymentsHighErrorRate at eval_time 2m
    expected (-) vs got (+):
    - firing  {service=\"payments\", severity=\"page\", team=\"payments\"}
    + pending {service=\"payments\", severity=\"page\", team=\"payments\"}
  tests/fixtures/failing_rule_test.yaml:25:9: notifications up to 10m
    expected (-) vs got (+):
    - at 2m     payments-oncall  firing
    + at 4m     payments-oncall  firing  PaymentsHighErrorRate  subject \"[FIRING] Payments error rate 5% > 1% (payments, page)\"
1 passed, 2 failed
";
    assert_eq!(stdout, expected);
}

#[test]
fn mistakes_in_test_files_are_all_reported_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let bad = dir.path().join("bad_test.yaml");
    std::fs::write(
        &bad,
        format!(
            "config: {examples}
tests:
  - input_series:
      - {{namespace: Shop, metric: Requests, dimensions: {{Service: payments}}, stat: Sum, values: \"1x3 oops\"}}
    alert_rule_test:
      - {{eval_time: 2m, alertname: PaymentHighErrorRate}}
    notification_test:
      - until: 3m
        exp_notifications: [{{receiver: payments-oncall, stauts: firing}}]
"
        ),
    )
    .expect("write");
    let unknown = dir.path().join("unknown_test.yaml");
    std::fs::write(
        &unknown,
        format!(
            "config: {examples}
tests:
  - input_series: []
    alert_rule_test:
      - {{eval_time: 2m, alertname: PaymentHighErrorRate}}
"
        ),
    )
    .expect("write");
    let out = firebell(&[
        "test",
        &bad.display().to_string(),
        &unknown.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let b = bad.display();
    let u = unknown.display();
    let want = [
        format!(
            "{b}:4:97: error: `values`: invalid value \"oops\" (expected a number, `_`, `a+bxn`, `a-bxn`, `axn` or `_xn`)"
        ),
        format!(
            "{b}:9:57: error: unknown field `stauts` in expected notification (expected one of: alertname, at, receiver, status, subject); did you mean `status`?"
        ),
        format!(
            "{u}:5:36: error: alertname \"PaymentHighErrorRate\" is not a rule of the config under test"
        ),
    ];
    for w in &want {
        assert!(stderr.contains(w.as_str()), "missing {w:?} in:\n{stderr}");
    }
    assert!(
        stderr.contains("did you mean `PaymentsHighErrorRate`?"),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).ends_with("0 passed, 0 failed, 2 files not run (errors above)\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_skips_test_files() {
    let out = firebell(&["validate", "examples/"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A rule reading a Metrics Insights query, unit-tested: an input series is
/// one group of the query (the query as the rule writes it, the group's
/// values as `dimensions`); each group is an instance with its labels.
#[test]
fn a_metrics_insights_rule_is_unit_tested_per_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let query =
        r#"SELECT MAX(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId"#;
    std::fs::write(
        dir.path().join("rules.yaml"),
        format!(
            "rules:\n  - name: HotInstance\n    metrics:\n      cpu: {{query: '{query}'}}\n    expression: cpu\n    condition: {{op: \">\", threshold: 90}}\n    labels: {{team: infra}}\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("routing.yaml"),
        "receivers:\n  ops: {topics: [\"arn:aws:sns:us-east-1:123456789012:ops\"]}\nroute: {receiver: ops, group_by: [InstanceId], group_wait: 0s}\n",
    )
    .expect("write");
    let test = dir.path().join("hot_test.yaml");
    std::fs::write(
        &test,
        format!(
            "config: ./\ntests:\n  - name: only the hot instance fires\n    start: 2026-11-23T14:00:00Z\n    input_series:\n      - {{query: '{query}', dimensions: {{InstanceId: i-1}}, values: \"20x10\"}}\n      - {{query: '{query}', dimensions: {{InstanceId: i-2}}, values: \"20x4 95x6\"}}\n    alert_rule_test:\n      - eval_time: 6m\n        alertname: HotInstance\n        exp_alerts:\n          - exp_labels: {{team: infra, InstanceId: i-2}}\n    notification_test:\n      - until: 8m\n        exp_notifications:\n          - {{receiver: ops, status: firing, alertname: HotInstance, at: 6m}}\n  - name: a query series names no namespace\n    input_series:\n      - {{query: '{query}', namespace: AWS/EC2, values: \"1\"}}\n    notification_test: [{{until: 1m}}]\n"
        ),
    )
    .expect("write");
    let out = firebell(&["test", &test.display().to_string()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:19:102: error: an input series with a `query` has no `namespace` (the query names its metric, namespace and function)\n",
            test.display(),
        )),
        "{stderr}"
    );
    // Without the broken test: passes.
    let text_ok = std::fs::read_to_string(&test).expect("read");
    let cut = text_ok
        .find("  - name: a query series")
        .expect("second test");
    std::fs::write(&test, &text_ok[..cut]).expect("write");
    let out = firebell(&["test", &test.display().to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.ends_with("2 passed, 0 failed\n"), "{stdout}");
}

/// An input series of a query no rule under test reads is an error naming
/// the query (the replay source matches queries exactly).
#[test]
fn a_query_series_no_rule_reads_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let query =
        r#"SELECT MAX(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId"#;
    let other =
        r#"SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId"#;
    std::fs::write(
        dir.path().join("rules.yaml"),
        format!(
            "rules:\n  - name: HotInstance\n    metrics:\n      cpu: {{query: '{query}'}}\n    expression: cpu\n    condition: {{op: \">\", threshold: 90}}\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("routing.yaml"),
        "receivers:\n  ops: {topics: [\"arn:aws:sns:us-east-1:123456789012:ops\"]}\nroute: {receiver: ops, group_wait: 0s}\n",
    )
    .expect("write");
    let test = dir.path().join("other_test.yaml");
    std::fs::write(
        &test,
        format!(
            "config: ./\ntests:\n  - start: 2026-11-23T14:00:00Z\n    input_series:\n      - {{query: '{other}', dimensions: {{InstanceId: i-1}}, values: \"20x10\"}}\n    notification_test: [{{until: 5m}}]\n"
        ),
    )
    .expect("write");
    let out = firebell(&["test", &test.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}:5:10: error: input series query {other:?} {{InstanceId=i-1}} 1m matches no metric of the rules under test (the rules read: query {query:?} {{InstanceId=*}} 1m)\n1 error in test files\n\n",
            test.display()
        )
    );
}

/// An incident recorded by `firebell capture` (here: the demo day's replay)
/// becomes a rule unit test: `input_replay` feeds its series as they are,
/// and the test pins what the rule did, offline (the same minutes as the
/// demo's backtest: the 15:45 datapoint fires, seen by the 15:46 cycle). A
/// missing file is an error at its position.
#[test]
fn a_recorded_incident_is_a_rule_unit_test() {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    std::fs::copy(
        format!("{examples}/demo/day.jsonl"),
        dir.path().join("incident.jsonl"),
    )
    .expect("copy");
    let test = dir.path().join("incident_test.yaml");
    std::fs::write(
        &test,
        format!(
            "config: {examples}
rules: [PaymentsHighErrorRate]
tests:
  - name: the afternoon incident pages payments once
    start: 2026-11-23T15:00:00Z
    input_replay: incident.jsonl
    alert_rule_test:
      - {{eval_time: 45m, alertname: PaymentsHighErrorRate, exp_alerts: [{{status: pending, exp_labels: {{team: payments, service: payments, severity: page}}}}]}}
      - {{eval_time: 46m, alertname: PaymentsHighErrorRate, exp_alerts: [{{exp_labels: {{team: payments, service: payments, severity: page}}}}]}}
    notification_test:
      - until: 59m
        exp_notifications:
          - {{receiver: payments-oncall, status: firing, alertname: PaymentsHighErrorRate, at: 46m, subject: \"[FIRING] Payments error rate 5.23% > 1% (payments, page)\"}}
"
        ),
    )
    .expect("write");
    let out = firebell(&["test", &test.display().to_string()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).ends_with("3 passed, 0 failed\n"),
        "{}",
        text(&out.stdout)
    );

    let missing = dir.path().join("missing_test.yaml");
    std::fs::write(
        &missing,
        format!(
            "config: {examples}
tests:
  - input_replay: gone.jsonl
    alert_rule_test:
      - {{eval_time: 2m, alertname: PaymentsHighErrorRate, exp_alerts: []}}
"
        ),
    )
    .expect("write");
    let out = firebell(&["test", &missing.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let want = format!(
        "{m}:3:19: error: invalid `input_replay` \"gone.jsonl\": {g}: No such file or directory (os error 2) (expected a replay file, relative to this test file)",
        m = missing.display(),
        g = dir.path().join("gone.jsonl").display()
    );
    assert!(stderr.lines().any(|l| l == want), "{stderr}");
}
