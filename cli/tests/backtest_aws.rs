//! `firebell backtest --source cloudwatch` against the AWS wire-protocol
//! emulator (`scripts/emulator.sh`): history is fetched from CloudWatch in
//! chunks and replayed through the engine. Takes the endpoint from
//! `AWS_ENDPOINT_URL` and fails, never skips, when it is missing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
use common::{firebell, text};

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::Value;

const HOW_TO_RUN: &str = "this test needs an AWS wire-protocol emulator. Run it with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell --test backtest_aws\n    scripts/emulator.sh stop";

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

#[tokio::test]
async fn backtest_replays_cloudwatch_history() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"
    );
    let sdk = firebell_aws::load_sdk_config().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let namespace = format!(
        "Firebell/BacktestTest/{}-{}",
        std::process::id(),
        now.as_nanos()
    );
    // An hour ago: 40 minutes of data, 12 errors a minute in minutes 10..=19.
    let t0 = (now.as_secs() as i64).div_euclid(3600) * 3600 - 3600;
    let data: Vec<MetricDatum> = (0..40)
        .map(|m| {
            MetricDatum::builder()
                .metric_name("Errors")
                .dimensions(Dimension::builder().name("Service").value("api").build())
                .timestamp(DateTime::from_secs(t0 + 60 * m))
                .value(if (10..20).contains(&m) { 12.0 } else { 0.0 })
                .unit(StandardUnit::Count)
                .build()
        })
        .collect();
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    for chunk in data.chunks(20) {
        cw.put_metric_data()
            .namespace(&namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .expect("PutMetricData");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            r#"rules:
  - name: ApiErrors
    metrics:
      errors: {{namespace: "{namespace}", metric: Errors, dimensions: {{Service: api}}, stat: Sum, period: 1m}}
    expression: errors
    condition: {{op: ">", threshold: 5}}
    for: 2m
    labels: {{team: api, severity: page}}
receivers:
  api: {{topics: [arn:aws:sns:us-east-1:000000000000:unused]}}
route:
  receiver: api
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
"#
        ),
    )
    .unwrap();
    let config = dir.path().display().to_string();
    let out = firebell(&[
        "backtest",
        "--config",
        &config,
        "--source",
        "cloudwatch",
        "--from",
        &rfc3339(t0),
        "--to",
        &rfc3339(t0 + 40 * 60),
        "--chunk",
        "15m",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let sent: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String)> = sent
        .iter()
        .map(|n| {
            (
                n["at"].as_str().unwrap_or_default().to_string(),
                n["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // Breaching from minute 10, firing at minute 12 (`for: 2m`), sent by
    // the cycle at 13 when minute 12 is complete; clear at minute 20, told
    // at 21 (group_interval has passed since 13).
    assert_eq!(
        summary,
        [
            (rfc3339(t0 + 13 * 60), "firing".to_string()),
            (rfc3339(t0 + 21 * 60), "resolved".to_string()),
        ]
    );
    assert_eq!(sent[0]["value"], 12.0);
    assert_eq!(sent[0]["labels"]["Service"], Value::Null);
    assert_eq!(sent[0]["labels"]["team"], "api");
}
