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
