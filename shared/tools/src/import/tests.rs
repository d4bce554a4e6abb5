#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::validate::{Options, Verdict, check};
use firebell_core::diag::{ConfigError, Diagnostics};

const OPS: &str = "arn:aws:sns:us-east-1:123456789012:ops";
const PAGER: &str = "arn:aws:sns:us-east-1:123456789012:pager";

fn metric(ns: &str, name: &str, dims: &[(&str, &str)], stat: &str, period: u32) -> AlarmMetric {
    AlarmMetric {
        namespace: ns.into(),
        metric_name: name.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        period,
        stat: stat.into(),
        account: None,
        unit: None,
    }
}

fn plain(name: &str, m: AlarmMetric) -> AlarmDefinition {
    AlarmDefinition {
        name: name.into(),
        actions_enabled: true,
        alarm_actions: vec![OPS.into()],
        kind: AlarmKind::Metric(Box::new(MetricAlarm {
            metric: Some(m),
            threshold: Some(5.0),
            comparison: "GreaterThanThreshold".into(),
            evaluation_periods: 1,
            ..MetricAlarm::default()
        })),
        ..AlarmDefinition::default()
    }
}

fn with(mut a: AlarmDefinition, f: impl FnOnce(&mut MetricAlarm)) -> AlarmDefinition {
    if let AlarmKind::Metric(m) = &mut a.kind {
        f(m);
    }
    a
}

/// The output validates as `firebell validate` would (no errors).
fn validates(out: &Imported) {
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[
            ("rules.yaml".to_string(), out.rules_yaml.clone()),
            ("routing.yaml".to_string(), out.routing_yaml.clone()),
        ],
        &mut diags,
        Vec::new(),
    );
    let loaded = if diags.has_errors() {
        Err(ConfigError(diags))
    } else {
        Ok((config, diags))
    };
    let checked = check(loaded, &Options::default());
    assert_eq!(
        checked.verdict,
        Verdict::Ok,
        "{}\n---\n{}\n---\n{}",
        checked.report(),
        out.rules_yaml,
        out.routing_yaml
    );
}

/// The rule's YAML (between `rules:` and the next rule).
fn rule_text(out: &Imported) -> &str {
    out.rules_yaml
        .split_once("rules:\n")
        .map(|(_, r)| r)
        .unwrap_or("")
}

fn one(a: AlarmDefinition) -> Imported {
    let out = translate(&[a], &ImportOptions::default());
    validates(&out);
    out
}

fn reason(a: AlarmDefinition) -> String {
    let out = translate(&[a], &ImportOptions::default());
    assert!(out.translated.is_empty(), "{out:?}");
    out.not_translated
        .first()
        .map(|o| o.notes.join("; "))
        .unwrap_or_default()
}

#[test]
fn a_plain_alarm_becomes_a_rule_and_a_route() {
    let mut a = plain(
        "api errors",
        metric("Shop", "Errors", &[("Service", "api")], "Sum", 60),
    );
    a.description = Some("Too many errors".into());
    a.ok_actions = vec![OPS.into()];
    let out = one(a);
    assert_eq!(
        out.rules_yaml,
        r#"# Imported from CloudWatch alarms by `firebell import cloudwatch-alarms`.
# Each rule names the alarm it came from (label `alarm`); routing.yaml routes it.
rules:
  # From CloudWatch alarm "api errors".
  - name: "api-errors"
    metrics:
      m: {namespace: "Shop", metric: "Errors", dimensions: {"Service": "api"}, stat: "Sum", period: 1m}
    expression: "m"
    condition: {op: ">", threshold: 5}
    missing_data: ok
    labels: {alarm: "api errors"}
    annotations:
      title: "api errors"
      description: "Too many errors"
"#
    );
    assert_eq!(
        out.routing_yaml,
        r#"# Imported from CloudWatch alarms by `firebell import cloudwatch-alarms`:
# one receiver per set of SNS topics the alarms notify (send_resolved when
# they have OK actions), one route per alarm.
receivers:
  # The topics of alarms "api errors".
  ops:
    topics: ["arn:aws:sns:us-east-1:123456789012:ops"]
    send_resolved: true
route:
  # The receiver of most alarms (alarms that notify no one are not imported).
  receiver: ops
  # A CloudWatch alarm notifies once per state change: one group per rule
  # and alarm, sent at once, and a long repeat.
  group_by: [alertname, alarm]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 24h
  routes:
    # CloudWatch alarm "api errors" (AlarmActions).
    - matchers: ["alertname=\"api-errors\""]
      receiver: ops
"#
    );
    assert_eq!(
        out.translated,
        [Outcome {
            alarm: "api errors".into(),
            rule: Some("api-errors".into()),
            notes: vec![]
        }]
    );
}

#[test]
fn m_of_n_missing_data_and_percentiles() {
    let a = with(
        plain("lat", metric("Shop", "Latency", &[], "p99", 300)),
        |m| {
            m.evaluation_periods = 5;
            m.datapoints_to_alarm = Some(3);
            m.comparison = "GreaterThanOrEqualToThreshold".into();
            m.threshold = Some(0.25);
            m.treat_missing_data = Some("breaching".into());
        },
    );
    let out = one(a);
    assert_eq!(
        rule_text(&out),
        r#"  # From CloudWatch alarm "lat".
  - name: "lat"
    metrics:
      m: {namespace: "Shop", metric: "Latency", dimensions: {}, stat: "p99", period: 5m}
    expression: "m"
    condition: {op: ">=", threshold: 0.25}
    datapoints: {breaching: 3, out_of: 5}
    missing_data: breaching
    labels: {alarm: "lat"}
    annotations:
      title: "lat"
"#
    );
    // EvaluationPeriods without DatapointsToAlarm: N of N.
    let out = one(with(
        plain("x", metric("N", "M", &[], "Average", 60)),
        |m| {
            m.evaluation_periods = 3;
            m.treat_missing_data = Some("notBreaching".into());
            m.comparison = "LessThanThreshold".into();
        },
    ));
    let text = rule_text(&out);
    assert!(text.contains("    condition: {op: \"<\", threshold: 5}\n    datapoints: {breaching: 3, out_of: 3}\n    missing_data: ok\n"), "{text}");
    // `ignore` holds the state; `missing` (the default) leaves ALARM: it
    // raises NoData alerts with INSUFFICIENT_DATA actions, else clears.
    for (treat, nodata_actions, want) in [
        (Some("ignore"), false, "keep"),
        (Some("missing"), false, "ok"),
        (None, false, "ok"),
        (None, true, "nodata"),
        (Some("missing"), true, "nodata"),
        (Some("ignore"), true, "keep"),
    ] {
        let mut a = with(plain("x", metric("N", "M", &[], "Maximum", 60)), |m| {
            m.treat_missing_data = treat.map(str::to_string);
            m.comparison = "LessThanOrEqualToThreshold".into();
        });
        if nodata_actions {
            a.insufficient_data_actions = vec![OPS.into()];
        }
        let out = one(a);
        assert!(
            rule_text(&out).contains(&format!("    missing_data: {want}\n")),
            "{treat:?} {nodata_actions}: {}",
            out.rules_yaml
        );
    }
}

#[test]
fn metric_math_is_translated_when_it_means_the_same() {
    let mut a = plain("rate", metric("x", "x", &[], "Sum", 60));
    a.kind = AlarmKind::Metric(Box::new(MetricAlarm {
        queries: vec![
            AlarmQuery {
                id: "e".into(),
                metric: Some(metric("Shop", "Errors", &[("Service", "api")], "Sum", 60)),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "r".into(),
                metric: Some(metric("Shop", "Requests", &[("Service", "api")], "Sum", 60)),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "ratio".into(),
                expression: Some("FILL(e, 0) / r".into()),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "pct".into(),
                expression: Some("100 * ratio".into()),
                return_data: true,
                ..AlarmQuery::default()
            },
        ],
        threshold: Some(1.0),
        comparison: "GreaterThanThreshold".into(),
        evaluation_periods: 1,
        ..MetricAlarm::default()
    }));
    let out = one(a);
    assert_eq!(
        rule_text(&out),
        r#"  # From CloudWatch alarm "rate".
  - name: "rate"
    metrics:
      e: {namespace: "Shop", metric: "Errors", dimensions: {"Service": "api"}, stat: "Sum", period: 1m}
      r: {namespace: "Shop", metric: "Requests", dimensions: {"Service": "api"}, stat: "Sum", period: 1m}
    expression: "100 * (FILL(e, 0) / r)"
    condition: {op: ">", threshold: 1}
    missing_data: ok
    labels: {alarm: "rate"}
    annotations:
      title: "rate"
"#
    );
    // An array argument: MAX([a, b]).
    let mut b = plain("max", metric("x", "x", &[], "Sum", 60));
    b.kind = AlarmKind::Metric(Box::new(MetricAlarm {
        queries: vec![
            AlarmQuery {
                id: "a".into(),
                metric: Some(metric("N", "A", &[], "Maximum", 60)),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "b".into(),
                metric: Some(metric("N", "B", &[], "Maximum", 60)),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "top".into(),
                expression: Some("MAX([a, b])".into()),
                return_data: true,
                ..AlarmQuery::default()
            },
        ],
        threshold: Some(90.0),
        comparison: "GreaterThanThreshold".into(),
        evaluation_periods: 1,
        ..MetricAlarm::default()
    }));
    let out = one(b);
    assert!(
        rule_text(&out).contains("    expression: \"MAX(a, b)\"\n"),
        "{}",
        out.rules_yaml
    );
}

fn math(expression: &str) -> AlarmDefinition {
    let mut a = plain("math", metric("x", "x", &[], "Sum", 60));
    a.kind = AlarmKind::Metric(Box::new(MetricAlarm {
        queries: vec![
            AlarmQuery {
                id: "m".into(),
                metric: Some(metric("N", "M", &[], "Sum", 60)),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "e".into(),
                expression: Some(expression.into()),
                return_data: true,
                ..AlarmQuery::default()
            },
        ],
        threshold: Some(1.0),
        comparison: "GreaterThanThreshold".into(),
        evaluation_periods: 1,
        ..MetricAlarm::default()
    }));
    a
}

#[test]
fn each_reason_for_not_translating() {
    assert_eq!(
        reason(math("RUNNING_SUM(m)")),
        "expression \"RUNNING_SUM(m)\" has no firebell equivalent: unknown function RUNNING_SUM (expected one of FILL, IF, ABS, CEIL, FLOOR, LOG, LOG10, SQRT, MIN, MAX, AVG, SUM, RATE, DIFF, RSUM) at offset 0"
    );
    assert_eq!(
        reason(math("MIN(m)")),
        "expression \"MIN(m)\" means something else in firebell (an aggregate of one series, a function without a CloudWatch twin)"
    );
    assert_eq!(
        reason(math("m + x")),
        "expression \"m + x\" reads \"x\", which is no metric of the alarm"
    );
    assert_eq!(
        reason(math("ANOMALY_DETECTION_BAND(m, 2)")),
        "anomaly-detection band: firebell has no anomaly detection"
    );
    assert_eq!(
        reason(with(plain("a", metric("N", "M", &[], "Sum", 60)), |m| {
            m.comparison = "LessThanLowerOrGreaterThanUpperThreshold".into();
        })),
        "anomaly-detection band (LessThanLowerOrGreaterThanUpperThreshold): firebell has no anomaly detection"
    );
    assert_eq!(
        reason(with(plain("a", metric("N", "M", &[], "Sum", 60)), |m| {
            m.threshold_metric_id = Some("ad1".into());
        })),
        "anomaly-detection band (threshold from \"ad1\"): firebell has no anomaly detection"
    );
    assert_eq!(
        reason(plain("a", metric("N", "M", &[], "TM(10%:90", 60))),
        format!(
            "statistic \"TM(10%:90\" of metric N/M is not one firebell reads ({})",
            firebell_core::model::EXPECTED_STATS
        )
    );
    // An extended statistic is read as CloudWatch names it.
    let tm = one(plain("a", metric("N", "M", &[], "TM(10%:90%)", 60)));
    assert!(
        rule_text(&tm).contains("stat: \"TM(10%:90%)\""),
        "{}",
        tm.rules_yaml
    );
    assert_eq!(
        reason(with(plain("a", metric("N", "M", &[], "Sum", 60)), |m| {
            m.metric = None;
        })),
        "the alarm names no metric"
    );
}

#[test]
fn sentinels_are_skipped_by_prefix_or_tag() {
    let by_prefix = plain("firebell-sentinel-abc", metric("N", "M", &[], "Sum", 60));
    let mut by_tag = plain("custom-name", metric("N", "M", &[], "Sum", 60));
    by_tag
        .tags
        .insert("firebell:managed".into(), "sentinel".into());
    let kept = plain("real", metric("N", "M", &[], "Sum", 60));
    let out = translate(&[by_prefix, by_tag, kept], &ImportOptions::default());
    let skipped: Vec<&str> = out.skipped.iter().map(|o| o.alarm.as_str()).collect();
    assert_eq!(skipped, ["custom-name", "firebell-sentinel-abc"]);
    assert_eq!(out.translated.len(), 1);
    validates(&out);
}

#[test]
fn receivers_follow_topics_and_ok_actions() {
    let m = || metric("N", "M", &[], "Sum", 60);
    let mut a = plain("a", m());
    a.ok_actions = vec![OPS.into()];
    let b = plain("b", m()); // same topic, no OK actions
    let mut c = plain("c", m());
    c.alarm_actions = vec![
        PAGER.into(),
        OPS.into(),
        "arn:aws:automate:us-east-1:ec2:stop".into(),
    ];
    let mut d = plain("d", m()); // no actions: the default receiver
    d.alarm_actions.clear();
    let mut e = plain("e", m());
    e.ok_actions = vec![PAGER.into()];
    let out = translate(&[a, b, c, d, e], &ImportOptions::default());
    validates(&out);
    let routing = &out.routing_yaml;
    assert!(
        routing.contains(
            "  # The topics of alarms \"a\", \"e\".\n  ops:\n    topics: [\"arn:aws:sns:us-east-1:123456789012:ops\"]\n    send_resolved: true\n"
        ),
        "{routing}"
    );
    assert!(
        routing.contains(
            "  ops-no-resolved:\n    topics: [\"arn:aws:sns:us-east-1:123456789012:ops\"]\n    send_resolved: false\n"
        ),
        "{routing}"
    );
    assert!(
        routing.contains(
            "  ops_pager:\n    topics: [\"arn:aws:sns:us-east-1:123456789012:ops\", \"arn:aws:sns:us-east-1:123456789012:pager\"]\n    send_resolved: false\n"
        ),
        "{routing}"
    );
    assert_eq!(out.receivers, ["ops-no-resolved", "ops", "ops_pager"]);
    // The most used receiver is the default; d has no route of its own.
    assert!(routing.contains("  receiver: ops\n"), "{routing}");
    assert!(!routing.contains("alertname=\\\"d\\\""), "{routing}");
    let notes = |name: &str| {
        out.translated
            .iter()
            .find(|o| o.alarm == name)
            .map(|o| o.notes.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        notes("c"),
        [
            "action \"arn:aws:automate:us-east-1:ec2:stop\" not translated (firebell notifies SNS topics only)"
        ]
    );
    assert_eq!(
        notes("e"),
        [
            "OK actions go to arn:aws:sns:us-east-1:123456789012:pager, not the alarm's topics: resolved notices go to the alarm's receiver"
        ]
    );
    assert!(
        out.rules_yaml.contains("  # From CloudWatch alarm \"c\".\n  # Note: action \"arn:aws:automate:us-east-1:ec2:stop\" not translated (firebell notifies SNS topics only).\n"),
        "{}",
        out.rules_yaml
    );
}

#[test]
fn composite_alarms_map_to_inhibition_or_are_listed() {
    let m = || metric("N", "M", &[], "Sum", 60);
    let mut errors = plain("errors", m());
    errors.alarm_actions.clear();
    let deploying = plain("deploying", m());
    let composite = AlarmDefinition {
        name: "errors-not-deploying".into(),
        actions_enabled: true,
        alarm_actions: vec![PAGER.into()],
        kind: AlarmKind::Composite {
            rule: "ALARM(errors) AND NOT ALARM(\"deploying\")".into(),
            actions_suppressor: None,
        },
        ..AlarmDefinition::default()
    };
    let or = AlarmDefinition {
        name: "either".into(),
        actions_enabled: true,
        alarm_actions: vec![PAGER.into()],
        kind: AlarmKind::Composite {
            rule: "ALARM(errors) OR ALARM(deploying)".into(),
            actions_suppressor: None,
        },
        ..AlarmDefinition::default()
    };
    let own = AlarmDefinition {
        name: "own".into(),
        actions_enabled: true,
        alarm_actions: vec![PAGER.into()],
        kind: AlarmKind::Composite {
            rule: "ALARM(deploying) AND NOT ALARM(errors)".into(),
            actions_suppressor: None,
        },
        ..AlarmDefinition::default()
    };
    let out = translate(
        &[errors, deploying, composite, or, own],
        &ImportOptions::default(),
    );
    validates(&out);
    let routing = &out.routing_yaml;
    assert!(
        routing.contains(
            "    # CloudWatch alarm \"errors\" (composite alarm \"errors-not-deploying\").\n    - matchers: [\"alertname=\\\"errors\\\"\"]\n      receiver: pager\n"
        ),
        "{routing}"
    );
    assert!(
        routing.ends_with(
            "inhibit_rules:\n  # Composite alarm \"errors-not-deploying\": no errors notice while deploying fires.\n  - source_matchers: [\"alertname=\\\"deploying\\\"\"]\n    target_matchers: [\"alertname=\\\"errors\\\"\"]\n"
        ),
        "{routing}"
    );
    let reasons: Vec<(String, String)> = out
        .not_translated
        .iter()
        .map(|o| (o.alarm.clone(), o.notes.join("; ")))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "either".to_string(),
                "composite rule \"ALARM(errors) OR ALARM(deploying)\": only `ALARM(a) AND NOT ALARM(b)` (and more `AND NOT ALARM(...)`) maps to firebell (inhibition)".to_string()
            ),
            (
                "own".to_string(),
                "composite rule \"ALARM(deploying) AND NOT ALARM(errors)\": alarm \"deploying\" has actions of its own, which inhibiting it would mute too".to_string()
            ),
        ]
    );
    assert_eq!(
        out.not_translated_text(),
        "either: composite rule \"ALARM(errors) OR ALARM(deploying)\": only `ALARM(a) AND NOT ALARM(b)` (and more `AND NOT ALARM(...)`) maps to firebell (inhibition)\nown: composite rule \"ALARM(deploying) AND NOT ALARM(errors)\": alarm \"deploying\" has actions of its own, which inhibiting it would mute too\n"
    );
}

#[test]
fn inhibition_rules_parse_names_quotes_and_arns() {
    assert_eq!(
        parse_inhibition(
            "ALARM(a) AND NOT ALARM(\"b c\") AND NOT ALARM(arn:aws:cloudwatch:us-east-1:1:alarm:d)"
        ),
        Some(("a".into(), vec!["b c".into(), "d".into()]))
    );
    assert_eq!(parse_inhibition("ALARM(a)"), None);
    assert_eq!(parse_inhibition("ALARM(a) AND ALARM(b)"), None);
    assert_eq!(parse_inhibition("(ALARM(a) AND NOT ALARM(b))"), None);
    assert_eq!(parse_inhibition("ALARM(a) AND NOT OK(b)"), None);
}

#[test]
fn more_reasons_for_not_translating() {
    let m = || metric("N", "M", &[], "Sum", 60);
    assert_eq!(
        reason(with(plain("a", m()), |a| a.comparison = "Sideways".into())),
        "unknown comparison operator \"Sideways\""
    );
    assert_eq!(
        reason(with(plain("a", m()), |a| a.threshold = None)),
        "the alarm has no threshold"
    );
    assert_eq!(
        reason(with(plain("a", metric("N", "M", &[], "Sum", 10)), |a| {
            a.evaluation_periods = 8640;
        })),
        "EvaluationPeriods 8640 is more than firebell's M of N allows (N <= 1440)"
    );
    // 1440 is fine.
    let out = one(with(plain("a", metric("N", "M", &[], "Sum", 10)), |a| {
        a.evaluation_periods = 1440;
        a.datapoints_to_alarm = Some(1000);
    }));
    assert!(
        rule_text(&out).contains("    datapoints: {breaching: 1000, out_of: 1440}\n"),
        "{}",
        out.rules_yaml
    );
    // Expressions that refer to each other in a loop.
    let mut looped = math("f");
    if let AlarmKind::Metric(a) = &mut looped.kind {
        a.queries.push(AlarmQuery {
            id: "f".into(),
            expression: Some("e + 1".into()),
            ..AlarmQuery::default()
        });
    }
    assert_eq!(reason(looped), "expressions refer to each other too deeply");
    // No query, or two, returning data.
    let mut none = math("m");
    if let AlarmKind::Metric(a) = &mut none.kind {
        a.queries.iter_mut().for_each(|q| q.return_data = false);
    }
    assert_eq!(
        reason(none),
        "0 queries return data (an alarm's metric math returns exactly one)"
    );
    let mut bare = math("m");
    if let AlarmKind::Metric(a) = &mut bare.kind {
        a.queries[1].expression = None;
    }
    assert_eq!(
        reason(bare),
        "query \"e\" has neither a metric nor an expression"
    );
    // A composite over an alarm that was not translated, or without topics.
    let quiet = with(plain("quiet", m()), |a| a.threshold = None);
    let mut loud = plain("loud", m());
    loud.alarm_actions.clear();
    let composite = |name: &str, rule: &str, actions: Vec<String>| AlarmDefinition {
        name: name.into(),
        actions_enabled: true,
        alarm_actions: actions,
        kind: AlarmKind::Composite {
            rule: rule.into(),
            actions_suppressor: None,
        },
        ..AlarmDefinition::default()
    };
    let out = translate(
        &[
            quiet,
            loud,
            composite("c1", "ALARM(loud) AND NOT ALARM(quiet)", vec![PAGER.into()]),
            composite("c2", "ALARM(loud) AND NOT ALARM(loud)", vec![]),
        ],
        &ImportOptions::default(),
    );
    let reasons: Vec<String> = out
        .not_translated
        .iter()
        .map(|o| format!("{}: {}", o.alarm, o.notes.join("; ")))
        .collect();
    assert_eq!(
        reasons,
        [
            "quiet: the alarm has no threshold",
            "c1: composite rule \"ALARM(loud) AND NOT ALARM(quiet)\": alarm \"quiet\" is not among the translated alarms",
            "c2: composite rule \"ALARM(loud) AND NOT ALARM(loud)\": the composite alarm notifies no SNS topic",
            "loud: notifies no one in CloudWatch: it has no AlarmActions",
        ]
    );
    // No alarm notifies a topic: no rule, nothing to route to.
    assert!(out.receivers.is_empty());
    assert_eq!(
        out.rules_yaml,
        "# Imported from CloudWatch alarms by `firebell import cloudwatch-alarms`: no alarm was translated.\nrules: []\n"
    );
}

#[test]
fn alarms_that_notify_no_one_are_not_translated() {
    let m = || metric("N", "M", &[], "Sum", 60);
    let mut off = plain("off", m());
    off.actions_enabled = false;
    let mut none = plain("none", m());
    none.alarm_actions.clear();
    none.ok_actions = vec![OPS.into()];
    let mut scaling = plain("scaling", m());
    scaling.alarm_actions =
        vec!["arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:p".into()];
    let on = plain("on", m());
    let out = translate(&[off, none, scaling, on], &ImportOptions::default());
    validates(&out);
    assert_eq!(
        out.not_translated_text(),
        "none: notifies no one in CloudWatch: it has no AlarmActions, only OK or INSUFFICIENT_DATA actions\n\
         off: notifies no one in CloudWatch: its actions are disabled (ActionsEnabled false)\n\
         scaling: notifies no one in CloudWatch: its AlarmActions are no SNS topics (arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:p)\n"
    );
    let rules: Vec<_> = out.translated.iter().map(|o| o.alarm.as_str()).collect();
    assert_eq!(rules, ["on"]);
    assert!(!out.rules_yaml.contains("\"off\""), "{}", out.rules_yaml);
}

#[test]
fn a_silent_alarm_a_composite_inhibits_with_is_translated_with_a_note() {
    let m = || metric("N", "M", &[], "Sum", 60);
    let mut errors = plain("errors", m());
    errors.alarm_actions.clear();
    let mut deploying = plain("deploying", m());
    deploying.alarm_actions.clear();
    let composite = AlarmDefinition {
        name: "errors-not-deploying".into(),
        actions_enabled: true,
        alarm_actions: vec![PAGER.into()],
        kind: AlarmKind::Composite {
            rule: "ALARM(errors) AND NOT ALARM(deploying)".into(),
            actions_suppressor: None,
        },
        ..AlarmDefinition::default()
    };
    let out = translate(&[errors, deploying, composite], &ImportOptions::default());
    validates(&out);
    assert!(out.not_translated.is_empty(), "{out:?}");
    let note = "notifies no one in CloudWatch (it has no AlarmActions), but composite alarm \"errors-not-deploying\" inhibits with it: translated for the inhibition, its own alerts go to the default receiver";
    let deploying = out.translated.iter().find(|o| o.alarm == "deploying");
    assert_eq!(
        deploying.map(|o| o.notes.clone()),
        Some(vec![note.to_string()])
    );
    let errors = out.translated.iter().find(|o| o.alarm == "errors");
    assert_eq!(errors.map(|o| o.notes.clone()), Some(vec![]));
    assert!(
        out.rules_yaml.contains(&format!(
            "  # From CloudWatch alarm \"deploying\".\n  # Note: {note}.\n  - name: \"deploying\"\n"
        )),
        "{}",
        out.rules_yaml
    );
}

#[test]
fn rules_firebell_rejects_are_listed_and_the_rest_validates() {
    let reserved = plain("FirebellUnhealthy", metric("N", "M", &[], "Sum", 60));
    let mut periods = math("e / r");
    periods.name = "periods".into();
    if let AlarmKind::Metric(m) = &mut periods.kind {
        m.queries = vec![
            AlarmQuery {
                id: "e".into(),
                metric: Some(metric("N", "E", &[], "Sum", 60)),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "r".into(),
                metric: Some(metric("N", "R", &[], "Sum", 300)),
                ..AlarmQuery::default()
            },
            AlarmQuery {
                id: "x".into(),
                expression: Some("e / r".into()),
                return_data: true,
                ..AlarmQuery::default()
            },
        ];
    }
    let fine = plain("fine", metric("N", "M", &[], "Sum", 60));
    let out = translate(&[reserved, periods, fine], &ImportOptions::default());
    validates(&out);
    assert_eq!(
        out.not_translated_text(),
        "FirebellUnhealthy: firebell rejects the rule: rule name \"FirebellUnhealthy\" is reserved: firebell's own alerts use it (see `self_monitoring`)\n\
         periods: firebell rejects the rule: all metrics of a rule must have the same period (found e: 1m, r: 5m)\n"
    );
    let rules: Vec<_> = out.translated.iter().map(|o| o.alarm.as_str()).collect();
    assert_eq!(rules, ["fine"]);
}

/// The config the import's output loads into.
fn loaded(out: &Imported) -> firebell_engine::Config {
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[
            ("rules.yaml".to_string(), out.rules_yaml.clone()),
            ("routing.yaml".to_string(), out.routing_yaml.clone()),
        ],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    config
}

#[test]
fn names_and_descriptions_render_as_written() {
    let text = "{{ value }} {% raw %}a{% endraw %} {# c #} {{{ x }}} {%- if %} }} %}\n";
    let mut a = plain("{{ name }} {%", metric("N", "M", &[], "Sum", 60));
    a.description = Some(text.into());
    let out = one(a);
    assert!(
        out.rules_yaml.contains(
            "      title: \"{{ \\\"{\\\" }}{ name }} {{ \\\"{\\\" }}%\"\n      description: \"{{ \\\"{\\\" }}{ value }} {{ \\\"{\\\" }}% raw %}a{{ \\\"{\\\" }}% endraw %} {{ \\\"{\\\" }}# c #} {{ \\\"{\\\" }}{{ \\\"{\\\" }}{ x }}} {{ \\\"{\\\" }}%- if %} }} %}\\n{{ \\\"\\\" }}\"\n"
        ),
        "{}",
        out.rules_yaml
    );
    let config = loaded(&out);
    let rule = &config.rules.rules[0];
    let alert = firebell_notify::sample_alert(rule, 1_700_000_000);
    let render = |k: &str| firebell_notify::render_annotation(&rule.annotations[k], &alert);
    assert_eq!(render("title"), "{{ name }} {%");
    assert_eq!(render("description"), text);
}

#[test]
fn a_target_two_composites_route_is_translated_for_the_first_only() {
    let m = || metric("N", "M", &[], "Sum", 60);
    let mut errors = plain("errors", m());
    errors.alarm_actions.clear();
    let deploying = plain("deploying", m());
    let draining = plain("draining", m());
    let composite = |name: &str, source: &str, topic: &str| AlarmDefinition {
        name: name.into(),
        actions_enabled: true,
        alarm_actions: vec![topic.into()],
        kind: AlarmKind::Composite {
            rule: format!("ALARM(errors) AND NOT ALARM({source})"),
            actions_suppressor: None,
        },
        ..AlarmDefinition::default()
    };
    let out = translate(
        &[
            errors,
            deploying,
            draining,
            composite("a-pager", "deploying", PAGER),
            composite("b-ops", "draining", OPS),
        ],
        &ImportOptions::default(),
    );
    validates(&out);
    assert_eq!(
        out.not_translated_text(),
        "b-ops: composite rule \"ALARM(errors) AND NOT ALARM(draining)\": alarm \"errors\" is already routed by composite alarm \"a-pager\" (a rule has one receiver)\n"
    );
    assert!(
        out.routing_yaml.contains(
            "    # CloudWatch alarm \"errors\" (composite alarm \"a-pager\").\n    - matchers: [\"alertname=\\\"errors\\\"\"]\n      receiver: pager\n"
        ),
        "{}",
        out.routing_yaml
    );
    assert!(
        !out.routing_yaml.contains("draining\\\"\"]\n    target"),
        "{}",
        out.routing_yaml
    );
}

#[test]
fn composites_with_an_actions_suppressor_and_unit_filters_are_listed() {
    let m = || metric("N", "M", &[], "Sum", 60);
    let mut errors = plain("errors", m());
    errors.alarm_actions.clear();
    let deploying = plain("deploying", m());
    let suppressed = AlarmDefinition {
        name: "suppressed".into(),
        actions_enabled: true,
        alarm_actions: vec![PAGER.into()],
        kind: AlarmKind::Composite {
            rule: "ALARM(errors) AND NOT ALARM(deploying)".into(),
            actions_suppressor: Some("maintenance".into()),
        },
        ..AlarmDefinition::default()
    };
    let mut bytes = m();
    bytes.unit = Some("Bytes".into());
    let unit = plain("unit", bytes);
    let out = translate(
        &[errors, deploying, suppressed, unit],
        &ImportOptions::default(),
    );
    validates(&out);
    assert_eq!(
        out.not_translated_text(),
        "unit: metric N/M is read only in unit \"Bytes\" (Unit): firebell reads a metric's datapoints of every unit\n\
         suppressed: composite alarm with ActionsSuppressor \"maintenance\": firebell would send the notifications that alarm suppresses\n\
         errors: notifies no one in CloudWatch: it has no AlarmActions\n"
    );
}
