//! The routing tree: first match wins, `continue`, delegation to children,
//! inherited settings, and `explain`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cloned_ref_to_slice_refs
)]

mod common;

use std::time::Duration;

use common::{config, labels};
use firebell_notify::{GroupBy, explain, parse_label_arg, route};

const TREE: &str = r#"
receivers:
  default: {topics: [arn:aws:sns:us-east-1:123456789012:d]}
  payments: {topics: [arn:aws:sns:us-east-1:123456789012:p]}
  payments-db: {topics: [arn:aws:sns:us-east-1:123456789012:pdb]}
  oncall: {topics: [arn:aws:sns:us-east-1:123456789012:o]}
  audit: {topics: [arn:aws:sns:us-east-1:123456789012:a]}
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['team="payments"']
      receiver: payments
      group_interval: 10m
      routes:
        - matchers: ['service=~"db|cache"', 'env!~"dev.*"']
          receiver: payments-db
          group_by: ["..."]
    - matchers: ['severity="page"']
      receiver: oncall
      continue: true
      mute_time_intervals: [nights]
    - matchers: ['severity=~"page|critical"']
      receiver: audit
    - matchers: ['team!=""']
      receiver: oncall
time_intervals:
  nights:
    - times: [{start_time: "00:00", end_time: "06:00"}]
"#;

fn receivers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let cfg = config(TREE);
    route(&cfg, &labels(pairs))
        .into_iter()
        .map(|m| (m.receiver, m.path))
        .collect()
}

fn pair(r: &str, p: &str) -> (String, String) {
    (r.to_string(), p.to_string())
}

#[test]
fn first_match_wins_and_children_take_over() {
    // A matching child takes the alert; its parent does not.
    assert_eq!(
        receivers(&[("team", "payments"), ("service", "db"), ("env", "prod")]),
        vec![pair("payments-db", "root/0/0")]
    );
    // No child matches (env is dev): the parent takes it.
    assert_eq!(
        receivers(&[("team", "payments"), ("service", "db"), ("env", "dev-1")]),
        vec![pair("payments", "root/0")]
    );
    // Anchored regex: "dbx" is not "db".
    assert_eq!(
        receivers(&[("team", "payments"), ("service", "dbx")]),
        vec![pair("payments", "root/0")]
    );
    // The first matching sibling stops the search, even if a later one matches.
    assert_eq!(
        receivers(&[("team", "payments"), ("severity", "page")]),
        vec![pair("payments", "root/0")]
    );
    // Nothing matches: the root.
    assert_eq!(
        receivers(&[("alertname", "X")]),
        vec![pair("default", "root")]
    );
}

#[test]
fn continue_keeps_matching() {
    assert_eq!(
        receivers(&[("severity", "page")]),
        vec![pair("oncall", "root/1"), pair("audit", "root/2")]
    );
    assert_eq!(
        receivers(&[("severity", "critical")]),
        vec![pair("audit", "root/2")]
    );
    // `team!=""` matches any team label.
    assert_eq!(
        receivers(&[("team", "search")]),
        vec![pair("oncall", "root/3")]
    );
}

#[test]
fn matches_carry_effective_settings() {
    let cfg = config(TREE);
    let m = route(
        &cfg,
        &labels(&[("team", "payments"), ("service", "db"), ("env", "prod")]),
    );
    assert_eq!(m[0].group_by, GroupBy::All);
    assert_eq!(
        m[0].timing.group_interval,
        Duration::from_secs(600),
        "inherited"
    );
    assert_eq!(m[0].timing.group_wait, Duration::from_secs(30), "default");
    assert_eq!(
        m[0].description,
        r#"root > {team="payments"} > {service=~"db|cache", env!~"dev.*"}"#
    );
    let m = route(&cfg, &labels(&[("severity", "page")]));
    assert_eq!(m[0].mute_time_intervals, vec!["nights".to_string()]);
    assert!(m[1].mute_time_intervals.is_empty());
}

#[test]
fn explain_prints_receivers_and_paths() {
    let cfg = config(TREE);
    let l = parse_label_arg("team=payments,severity=page,alertname=HighErrorRate").unwrap();
    assert_eq!(
        explain(&cfg, &l),
        r#"labels: {alertname="HighErrorRate", severity="page", team="payments"}
1 receiver: payments
- payments via root/0: root > {team="payments"}
    group_by [alertname]; group_wait 30s, group_interval 10m, repeat_interval 4h
    group: {alertname="HighErrorRate"}
"#
    );
    let l = parse_label_arg("severity=page").unwrap();
    assert_eq!(
        explain(&cfg, &l),
        r#"labels: {severity="page"}
2 receivers: oncall, audit
- oncall via root/1: root > {severity="page"}
    group_by [alertname]; group_wait 30s, group_interval 5m, repeat_interval 4h
    group: {}
    muted during: nights
- audit via root/2: root > {severity=~"page|critical"}
    group_by [alertname]; group_wait 30s, group_interval 5m, repeat_interval 4h
    group: {}
"#
    );
}
