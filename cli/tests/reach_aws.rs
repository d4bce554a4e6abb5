//! `firebell capture` of a metric of another account, against the AWS
//! wire-protocol emulator (`scripts/emulator.sh`): the config's
//! `accounts:` role is assumed, as the evaluator's cycle does. The emulator
//! keeps CloudWatch data per account and takes a 12-digit access key as its
//! caller's account: the test writes the source account's datapoints with
//! such a key, and they can be read only through the role. Takes the
//! endpoint from `AWS_ENDPOINT_URL` and fails, never skips, when it is
//! missing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
use common::{firebell, text};

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::config::Credentials;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};

const HOW_TO_RUN: &str = "this test needs an AWS wire-protocol emulator. Run it with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell --test reach_aws\n    scripts/emulator.sh stop";

const SOURCE_ACCOUNT: &str = "111122223333";

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

#[tokio::test]
async fn capture_reads_another_account_through_its_role() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"
    );
    let sdk = firebell_aws::load_sdk_config().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let namespace = format!(
        "Firebell/ReachCapture/{}-{}",
        std::process::id(),
        now.as_nanos()
    );
    // Ten minutes of the source account's errors, an hour ago.
    let t0 = (now.as_secs() as i64).div_euclid(60) * 60 - 3600;
    let source = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&sdk)
            .credentials_provider(Credentials::new(
                SOURCE_ACCOUNT,
                "test",
                None,
                None,
                "tests",
            ))
            .build(),
    );
    let data: Vec<MetricDatum> = (0..10)
        .map(|m| {
            MetricDatum::builder()
                .metric_name("Errors")
                .dimensions(Dimension::builder().name("Service").value("pay").build())
                .timestamp(DateTime::from_secs(t0 + 60 * m))
                .value(m as f64)
                .build()
        })
        .collect();
    source
        .put_metric_data()
        .namespace(&namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData");

    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.yaml"),
        format!(
            r#"accounts:
  "{SOURCE_ACCOUNT}": {{role_arn: "arn:aws:iam::{SOURCE_ACCOUNT}:role/firebell-read"}}
rules:
  - name: RemoteErrors
    metrics:
      errors: {{namespace: "{namespace}", metric: Errors, dimensions: {{Service: pay}}, stat: Sum, account: "{SOURCE_ACCOUNT}"}}
    expression: errors
    condition: {{op: ">", threshold: 5}}
receivers:
  web: {{topics: [arn:aws:sns:us-east-1:000000000000:unused]}}
route:
  receiver: web
  group_by: [alertname]
"#
        ),
    )
    .unwrap();
    let file = dir.path().join("remote.jsonl");
    let out = firebell(&[
        "capture",
        "--config",
        &config_dir.display().to_string(),
        "--from",
        &rfc3339(t0),
        "--to",
        &rfc3339(t0 + 600),
        "--out",
        &file.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let written = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{written}");
    assert_eq!(lines[0]["account"], SOURCE_ACCOUNT);
    // Without the role, the evaluator's own account has none of it.
    let values: Vec<f64> = lines[0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
}
