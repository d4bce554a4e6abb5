#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell sentinels plan|apply` without AWS: the sentinels a config
//! wants, their definitions and costs, the rules left on polling and why,
//! as text and as `firebell.sentinels/v1`. (Against CloudWatch:
//! `cli/tests/aws.rs`.)

mod common;
use common::{assert_schema, firebell, text};

const FIXTURE: &str = "cli/tests/fixtures/sentinels";

#[test]
fn plan_lists_the_sentinels_their_costs_and_the_rules_left_on_polling() {
    let out = firebell(&["sentinels", "plan", "-c", FIXTURE, "--prefix", "fb-prod."]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let version = text(&firebell(&["validate", FIXTURE]).stdout)
        .split_whitespace()
        .find(|w| w.len() == 12 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .expect("validate prints the config version");
    assert_eq!(
        text(&out.stdout),
        format!(
            "sentinels of config {version} (mode auto, prefix fb-prod., sweep 15m): 2 sentinels cover 3 of 7 rules
  fb-prod.slo.Checkout  (Checkout:page:1h, Checkout:page:6h)
    FILL(errors, 0) - 0.006 * FILL(total, 0) > 0, 1 of 38 x 1m, missing: notBreaching
    $0.322 a month (alarm $0.200, sweeps $0.117, hot $0.005) instead of $1.752 polling
  fb-prod.rule.ApiErrorRate  (ApiErrorRate)
    100 * FILL(errors, 0) / requests > 1, 1 of 16 x 1m, missing: notBreaching
    $0.261 a month (alarm $0.200, sweeps $0.058, hot $0.002) instead of $0.876 polling
polled (4 rules):
  ApiLatencyP99: missing data counts (breaching, nodata): CloudWatch ignores TreatMissingData while an alarm's range holds enough real datapoints, so a gap might not wake a sentinel
  Checkout:ticket:3d: an SLO alert on a coarser grid than its SLI (evaluated every few minutes; its SLO's sentinel covers the page alerts)
  NightlyExport: polling is cheaper ($0.007 against $0.107 a month)
  QueueDepth: a wildcard rule (an alarm per value)
(not compared with CloudWatch: use --backend aws)
"
        )
    );
}

#[test]
fn plan_as_json_follows_its_schema() {
    let out = firebell(&["sentinels", "plan", "-c", FIXTURE, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_schema("sentinels", &doc);
    assert_eq!(doc["schema"], "firebell.sentinels/v1");
    assert_eq!(doc["prefix"], "firebell-sentinel-");
    assert_eq!(doc["compared"], false);
    let sentinels = doc["sentinels"].as_array().unwrap();
    assert_eq!(sentinels.len(), 2);
    let ratio = &sentinels[1];
    assert_eq!(ratio["name"], "firebell-sentinel-rule.ApiErrorRate");
    assert_eq!(ratio["action"], "want");
    assert_eq!(ratio["metric_math"], "100 * FILL(errors, 0) / requests");
    assert_eq!(ratio["evaluation_periods"], 16);
    assert_eq!(ratio["treat_missing_data"], "notBreaching");
    assert_eq!(doc["polled"].as_array().map(Vec::len), Some(4));
}

#[test]
fn apply_needs_the_aws_backend_and_a_bad_prefix_is_refused() {
    let out = firebell(&["sentinels", "apply", "-c", FIXTURE]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr),
        "error: `sentinels apply` needs --backend aws: the embedded backend keeps no alarms (`firebell run` simulates them in each run)\n"
    );
    let out = firebell(&["sentinels", "plan", "-c", FIXTURE, "--prefix", "has space"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).starts_with("error: --prefix: sentinel prefix \"has space\""),
        "{}",
        text(&out.stderr)
    );
}
