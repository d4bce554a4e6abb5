//! `firebell import cloudwatch-alarms` against the AWS wire-protocol
//! emulator (`scripts/emulator.sh`): alarms created in the emulator's
//! CloudWatch (plain, percentile, metric math, composite, a sentinel, one
//! that notifies no one, one with a Unit filter; SNS actions on topics
//! created in its SNS) over a seeded history become a
//! config that `firebell validate` accepts, and a backtest of that config
//! on the same history (`--source cloudwatch`) fires in the window where
//! the data breaches the alarms' thresholds. Takes the endpoint from
//! `AWS_ENDPOINT_URL` and fails, never skips, when it is missing.
//!
//! What the emulator cannot check:
//! - it does not keep a composite alarm's `ActionsSuppressor`: composites
//!   with one are tested in `firebell_tools::import` tests;
//! - it does not keep a metric-math alarm's `Metrics` (its DescribeAlarms
//!   answer has neither a metric nor queries), so the metric-math alarm is
//!   listed as not translated here; the reader's conversion of `Metrics`
//!   is tested on a typed DescribeAlarms answer
//!   (`firebell_aws::alarm_definitions` tests) and the translation in
//!   `firebell_tools::import` tests;
//! - its own alarm evaluation looks only at the last Period ×
//!   EvaluationPeriods seconds of wall-clock time, across every dimension
//!   of the metric, without DatapointsToAlarm, so its alarm state says
//!   nothing about a seeded past window: the backtest is compared with the
//!   data's breaching window instead.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
use common::{assert_schema, firebell, text};

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, StandardUnit,
    Statistic, Tag,
};
use serde_json::Value;

const HOW_TO_RUN: &str = "this test needs an AWS wire-protocol emulator. Run it with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell --test import_aws\n    scripts/emulator.sh stop";

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

fn api() -> Dimension {
    Dimension::builder().name("Service").value("api").build()
}

#[tokio::test]
async fn imported_alarms_validate_and_fire_where_the_data_breaches() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"
    );
    let sdk = firebell_aws::load_sdk_config().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let run = format!(
        "imp{}x{}",
        std::process::id(),
        now.as_nanos() % 1_000_000_000
    );
    let namespace = format!("Firebell/ImportTest/{run}");
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = |name: String| {
        let sns = sns.clone();
        async move {
            sns.create_topic()
                .name(name)
                .send()
                .await
                .expect("CreateTopic")
                .topic_arn()
                .unwrap()
                .to_string()
        }
    };
    let ops = topic(format!("{run}-ops")).await;
    let pager = topic(format!("{run}-pager")).await;

    // Two hours ago, 60 minutes: errors 12 a minute in minutes 10..=19
    // (else 1), p99 latency 900 ms in minutes 30..=34 (else 100).
    let t0 = (now.as_secs() as i64).div_euclid(3600) * 3600 - 7200;
    let mut data = Vec::new();
    for m in 0..60 {
        let t = DateTime::from_secs(t0 + 60 * m);
        let errors = if (10..20).contains(&m) { 12.0 } else { 1.0 };
        let latency = if (30..35).contains(&m) { 900.0 } else { 100.0 };
        for (name, v, unit) in [
            ("Errors", errors, StandardUnit::Count),
            ("Latency", latency, StandardUnit::Milliseconds),
        ] {
            data.push(
                MetricDatum::builder()
                    .metric_name(name)
                    .dimensions(api())
                    .timestamp(t)
                    .value(v)
                    .unit(unit)
                    .build(),
            );
        }
    }
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    for chunk in data.chunks(20) {
        cw.put_metric_data()
            .namespace(&namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .expect("PutMetricData");
    }

    let alarm = |name: &str, metric: &str| {
        cw.put_metric_alarm()
            .alarm_name(format!("{run}-{name}"))
            .namespace(&namespace)
            .metric_name(metric)
            .dimensions(api())
            .period(60)
            .evaluation_periods(1)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
    };
    // Plain: more than 5 errors in 2 of 3 minutes, OK notices.
    alarm("errors-high", "Errors")
        .statistic(Statistic::Sum)
        .threshold(5.0)
        .evaluation_periods(3)
        .datapoints_to_alarm(2)
        .treat_missing_data("notBreaching")
        .alarm_description("Too many API errors")
        .alarm_actions(&ops)
        .ok_actions(&ops)
        .send()
        .await
        .expect("PutMetricAlarm errors-high");
    // Percentile: p99 above 500 ms, to the pager, no OK notices.
    alarm("latency-p99", "Latency")
        .extended_statistic("p99")
        .threshold(500.0)
        .alarm_actions(&pager)
        .send()
        .await
        .expect("PutMetricAlarm latency-p99");
    // Composite: errors above 10 (no actions of its own) pages unless a
    // maintenance alarm is in ALARM.
    alarm("errors-raw", "Errors")
        .statistic(Statistic::Sum)
        .threshold(10.0)
        .send()
        .await
        .expect("PutMetricAlarm errors-raw");
    alarm("maintenance", "Maintenance")
        .statistic(Statistic::Maximum)
        .threshold(0.0)
        .alarm_actions(&ops)
        .send()
        .await
        .expect("PutMetricAlarm maintenance");
    cw.put_composite_alarm()
        .alarm_name(format!("{run}-errors-outside-maintenance"))
        .alarm_rule(format!(
            "ALARM(\"{run}-errors-raw\") AND NOT ALARM(\"{run}-maintenance\")"
        ))
        .alarm_actions(&pager)
        .send()
        .await
        .expect("PutCompositeAlarm");
    // Metric math: the error ratio (the emulator drops `Metrics`).
    let stat = |metric: &str| {
        MetricStat::builder()
            .metric(
                Metric::builder()
                    .namespace(&namespace)
                    .metric_name(metric)
                    .dimensions(api())
                    .build(),
            )
            .period(60)
            .stat("Sum")
            .build()
    };
    cw.put_metric_alarm()
        .alarm_name(format!("{run}-error-ratio"))
        .metrics(
            MetricDataQuery::builder()
                .id("e")
                .metric_stat(stat("Errors"))
                .return_data(false)
                .build(),
        )
        .metrics(
            MetricDataQuery::builder()
                .id("ratio")
                .expression("100 * e / 60")
                .return_data(true)
                .build(),
        )
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .alarm_actions(&ops)
        .send()
        .await
        .expect("PutMetricAlarm error-ratio");
    // Notifies no one (no actions, no composite inhibits with it): not
    // translated, it would page where CloudWatch stays silent.
    alarm("quiet", "Errors")
        .statistic(Statistic::Sum)
        .threshold(3.0)
        .send()
        .await
        .expect("PutMetricAlarm quiet");
    // Reads only datapoints of one unit: not translated.
    alarm("bytes", "Latency")
        .statistic(Statistic::Maximum)
        .threshold(1.0)
        .unit(StandardUnit::Bytes)
        .alarm_actions(&ops)
        .send()
        .await
        .expect("PutMetricAlarm bytes");
    // Sentinels: one by name, one by tag (no actions).
    alarm("firebell-sentinel-rule.X", "Errors")
        .statistic(Statistic::Sum)
        .threshold(1.0)
        .actions_enabled(false)
        .send()
        .await
        .expect("PutMetricAlarm sentinel");
    alarm("custom-sentinel", "Errors")
        .statistic(Statistic::Sum)
        .threshold(1.0)
        .actions_enabled(false)
        .tags(
            Tag::builder()
                .key("firebell:managed")
                .value("sentinel")
                .build(),
        )
        .send()
        .await
        .expect("PutMetricAlarm tagged sentinel");

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("imported");
    let config = out_dir.display().to_string();
    let out = firebell(&[
        "import",
        "cloudwatch-alarms",
        "--prefix",
        &format!("{run}-"),
        "--sentinel-prefix",
        &format!("{run}-firebell-sentinel-"),
        "--out",
        &config,
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let doc: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_schema("import", &doc);
    let names = |key: &str| -> Vec<(String, Value)> {
        doc[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["alarm"]
                        .as_str()
                        .unwrap()
                        .strip_prefix(&format!("{run}-"))
                        .unwrap()
                        .to_string(),
                    o["rule"].clone(),
                )
            })
            .collect()
    };
    let rule = |s: &str| Value::String(format!("{run}-{s}"));
    assert_eq!(doc["alarms_read"], 10);
    assert_eq!(doc["validated"], true);
    assert_eq!(
        names("translated"),
        [
            ("errors-high".to_string(), rule("errors-high")),
            ("errors-raw".to_string(), rule("errors-raw")),
            ("latency-p99".to_string(), rule("latency-p99")),
            ("maintenance".to_string(), rule("maintenance")),
            ("errors-outside-maintenance".to_string(), Value::Null),
        ]
    );
    assert_eq!(
        names("skipped"),
        [
            ("custom-sentinel".to_string(), Value::Null),
            ("firebell-sentinel-rule.X".to_string(), Value::Null),
        ]
    );
    let bytes = format!(
        "metric {namespace}/Latency is read only in unit \"Bytes\" (Unit): firebell reads a metric's datapoints of every unit"
    );
    let quiet = "notifies no one in CloudWatch: it has no AlarmActions";
    assert_eq!(
        doc["not_translated"],
        serde_json::json!([
            {"alarm": format!("{run}-bytes"), "rule": null, "notes": [bytes]},
            {"alarm": format!("{run}-error-ratio"), "rule": null, "notes": ["the alarm names no metric"]},
            {"alarm": format!("{run}-quiet"), "rule": null, "notes": [quiet]},
        ])
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("not-translated.txt")).unwrap(),
        format!(
            "# CloudWatch alarms `firebell import cloudwatch-alarms` did not translate, and why.\n{run}-bytes: {bytes}\n{run}-error-ratio: the alarm names no metric\n{run}-quiet: {quiet}\n"
        )
    );
    let routing = std::fs::read_to_string(out_dir.join("routing.yaml")).unwrap();
    assert!(
        routing.contains(&format!(
            "  {run}-ops:\n    topics: [\"{ops}\"]\n    send_resolved: true\n"
        )),
        "{routing}"
    );

    // The same import for people; it never writes over an earlier one.
    let again = |dir: &str| {
        firebell(&[
            "import",
            "cloudwatch-alarms",
            "--prefix",
            &format!("{run}-"),
            "--sentinel-prefix",
            &format!("{run}-firebell-sentinel-"),
            "--out",
            dir,
        ])
    };
    let refused = again(&config);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        text(&refused.stderr),
        format!(
            "error: {config}/rules.yaml already exists: import into a new directory (--out DIR)\n"
        )
    );
    let second = dir.path().join("second").display().to_string();
    let out = again(&second);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout).replace(&format!("{run}-"), "");
    assert_eq!(
        printed,
        format!(
            "firebell import: 10 CloudWatch alarms read, 4 rules written to {second}/rules.yaml and {second}/routing.yaml (valid)

Translated
  errors-high -> rule errors-high
  errors-raw -> rule errors-raw
  latency-p99 -> rule latency-p99
  maintenance -> rule maintenance
  errors-outside-maintenance
      composite: \"errors-raw\" routed to its topics while \"maintenance\" not firing (inhibition)

Not translated (3, also in {second}/not-translated.txt)
  bytes: {bytes}
  error-ratio: the alarm names no metric
  quiet: {quiet}

Skipped (2)
  custom-sentinel: a firebell sentinel alarm
  firebell-sentinel-rule.X: a firebell sentinel alarm

Next: `firebell cost --config {second}` compares polling these rules with the CloudWatch alarms they replace (its `alarms` column and \"Total CloudWatch alarms\"); `firebell backtest --config {second} --source cloudwatch --from T1 --to T2` shows what they would have sent.
"
        )
    );

    // `firebell validate` agrees.
    let valid = firebell(&["validate", &config]);
    assert!(valid.status.success(), "{}", text(&valid.stdout));

    // `firebell cost` compares polling the imported rules with the alarms
    // they replace.
    let cost = firebell(&["cost", "--config", &config]);
    assert!(cost.status.success(), "{}", text(&cost.stderr));
    let cost = text(&cost.stdout);
    for want in ["  Total firebell:", "  Total CloudWatch alarms:"] {
        assert!(
            cost.lines()
                .any(|l| l.starts_with(want) && l.contains(" a month")),
            "{want}\n{cost}"
        );
    }

    // A backtest of the imported config on the same history.
    let out = firebell(&[
        "backtest",
        "--config",
        &config,
        "--source",
        "cloudwatch",
        "--from",
        &rfc3339(t0),
        "--to",
        &rfc3339(t0 + 60 * 60),
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let sent: Vec<(String, String, String, String)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["at"].as_str().unwrap().to_string(),
                v["alertname"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches(&format!("{run}-"))
                    .to_string(),
                v["status"].as_str().unwrap().to_string(),
                v["receiver"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at = |m: i64| rfc3339(t0 + 60 * m);
    let (ops_r, pager_r) = (format!("{run}-ops"), format!("{run}-pager"));
    // errors-raw (1 of 1) breaches from minute 10, told when minute 10 is
    // complete, through the composite's pager topic (maintenance never
    // fires), without OK notices (the composite has none). errors-high:
    // minutes 10 and 11 breach (2 of 3), told when minute 11 is complete;
    // resolved when 2 of the last 3 no longer breach (minutes 20, 21), with
    // OK notices. latency-p99 from minute 30, to the pager, no OK notice.
    assert_eq!(
        sent,
        [
            (
                at(11),
                "errors-raw".into(),
                "firing".into(),
                pager_r.clone()
            ),
            (at(12), "errors-high".into(), "firing".into(), ops_r.clone()),
            (
                at(22),
                "errors-high".into(),
                "resolved".into(),
                ops_r.clone()
            ),
            (
                at(31),
                "latency-p99".into(),
                "firing".into(),
                pager_r.clone()
            ),
        ],
        "{}",
        text(&out.stdout)
    );
}
