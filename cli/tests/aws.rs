//! `firebell run --backend aws` and `firebell silence --backend aws` against
//! the AWS wire-protocol emulator (`scripts/emulator.sh`): CloudWatch in,
//! DynamoDB state, SNS out, read back through an SQS queue subscribed to the
//! receiver's topic. The tests take the endpoint from `AWS_ENDPOINT_URL` and
//! fail, never skip, when it is missing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

const HOW_TO_RUN: &str = "these tests need an AWS wire-protocol emulator. Run them with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell --test aws\n    scripts/emulator.sh stop";

fn firebell(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firebell"));
    cmd.args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("FIREBELL_TABLE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run firebell")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), now_secs())
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

async fn sdk() -> firebell_aws::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"
    );
    firebell_aws::load_sdk_config().await
}

async fn table(sdk: &firebell_aws::SdkConfig) -> String {
    let name = unique("firebell-cli-test");
    firebell_aws::create_table_if_missing(&aws_sdk_dynamodb::Client::new(sdk), &name)
        .await
        .expect("create table");
    name
}

/// A topic with a queue subscribed to it: (topic ARN, queue URL).
async fn topic_with_queue(sdk: &firebell_aws::SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let name = unique("firebell-cli-test");
    let topic = sns
        .create_topic()
        .name(&name)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("topic arn")
        .to_owned();
    let queue = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue url")
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("Subscribe");
    (topic, queue)
}

/// The SNS envelopes that arrive on `queue` within `wait` (at least one).
async fn receive(sdk: &firebell_aws::SdkConfig, queue: &str, wait: Duration) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification arrived on {queue} within {wait:?}"
        );
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in out.messages() {
            got.push(serde_json::from_str(m.body().expect("body")).expect("JSON envelope"));
        }
    }
    got
}

fn write_config(dir: &Path, namespace: &str, topic: &str) {
    std::fs::write(
        dir.join("rules.yaml"),
        format!(
            r#"rules:
  - name: CliAwsHighErrors
    metrics:
      errors: {{namespace: {namespace}, metric: Errors, dimensions: {{Service: api}}, stat: Sum, period: 1m}}
    expression: errors
    unit: count
    condition: {{op: ">", threshold: 5}}
    labels: {{team: api, severity: page}}
    annotations:
      title: API errors
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("routing.yaml"),
        format!(
            r#"receivers:
  api-oncall:
    topics: [{topic}]
route:
  receiver: api-oncall
  group_by: [alertname]
  group_wait: 0s
silences:
  max_duration: 1d
"#
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn run_once_reads_cloudwatch_keeps_state_in_dynamodb_and_pages_through_sns() {
    let sdk = sdk().await;
    let table = table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let namespace = format!("Firebell/CliTest/{}", unique("run"));

    // Ten minutes of 10 errors a minute, up to the minute before the tick.
    let tick = now_secs().div_euclid(60) * 60;
    let data: Vec<MetricDatum> = (1..=10)
        .map(|k| {
            MetricDatum::builder()
                .metric_name("Errors")
                .dimensions(Dimension::builder().name("Service").value("api").build())
                .timestamp(DateTime::from_secs(tick - 60 * k))
                .value(10.0)
                .unit(StandardUnit::Count)
                .build()
        })
        .collect();
    aws_sdk_cloudwatch::Client::new(&sdk)
        .put_metric_data()
        .namespace(&namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData");

    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &namespace, &topic);
    let config = dir.path().to_str().unwrap();
    let at = rfc3339(tick);
    let run = |env: &[(&str, &str)]| {
        firebell(
            &[
                "run",
                "--backend",
                "aws",
                "--config",
                config,
                "--once",
                "--at",
                &at,
            ],
            env,
        )
    };

    // The table from the environment, as in the Lambda.
    let out = run(&[("FIREBELL_TABLE", &table)]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "firebell run failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("CliAwsHighErrors fired (datapoint "),
        "{stdout}"
    );
    assert!(stdout.contains("1 notifications sent"), "{stdout}");

    let msgs = receive(&sdk, &queue, Duration::from_secs(20)).await;
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert_eq!(msgs[0]["TopicArn"], topic.as_str());
    let subject = msgs[0]["Subject"].as_str().unwrap();
    assert!(subject.starts_with("[FIRING] API errors"), "{subject}");
    let payload: Value = serde_json::from_str(msgs[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(payload["schema"], "firebell.notification/v1");
    assert_eq!(payload["alerts"][0]["alertname"], "CliAwsHighErrors");
    assert_eq!(payload["alerts"][0]["value"], 10.0);

    // What happened is in the table's history, and the status is healthy.
    let out = firebell(
        &[
            "history",
            "--backend",
            "aws",
            "--table",
            &table,
            "--since",
            "now-2h",
            "--until",
            "now+5m",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!("history in DynamoDB table {table} from ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "\n{at}  paged           api-oncall: [FIRING] API errors"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  fired           CliAwsHighErrors {"),
        "{stdout}"
    );
    let out = firebell(
        &[
            "status",
            "--backend",
            "aws",
            "--table",
            &table,
            "--config",
            config,
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!("store: DynamoDB table {table}\nconfig version: ")),
        "{stdout}"
    );
    assert!(stdout.contains("(the same as --config)"), "{stdout}");
    assert!(stdout.contains("outbox: 0 undelivered"), "{stdout}");
    assert!(stdout.ends_with("verdict: healthy\n"), "{stdout}");

    // The state is in DynamoDB: the same tick again is a duplicate, a new
    // process pages nobody twice.
    let out = firebell(
        &[
            "run",
            "--backend",
            "aws",
            "--table",
            &table,
            "--config",
            config,
            "--once",
            "--at",
            &at,
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("cycle skipped: duplicate tick (already evaluated)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn silences_live_in_dynamodb_with_backend_aws() {
    let sdk = sdk().await;
    let table = table(&sdk).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "Firebell/CliTest/silence",
        "arn:aws:sns:us-east-1:000000000000:unused",
    );
    let config = dir.path().to_str().unwrap();
    let aws = ["--backend", "aws", "--table", table.as_str()];

    let mut add = vec![
        "silence",
        "add",
        "--config",
        config,
        "-m",
        "team=\"api\"",
        "--duration",
        "2h",
        "--created-by",
        "alice",
        "--comment",
        "deploy",
    ];
    add.extend(aws);
    let out = firebell(&add, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let id = stdout
        .strip_prefix("silence ")
        .and_then(|s| s.split_whitespace().next())
        .expect("silence id")
        .to_owned();

    let mut list = vec!["silence", "list"];
    list.extend(aws);
    let out = firebell(&list, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&id), "{stdout}");
    assert!(stdout.contains("active"), "{stdout}");
    assert!(stdout.contains("by alice: deploy"), "{stdout}");

    // Not in the on-disk store: the embedded default knows nothing of it.
    let state = tempfile::tempdir().unwrap();
    let out = firebell(
        &["silence", "list", "--state", state.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(
        text(&out.stdout),
        format!(
            "no silences in {} (embedded)\n",
            state.path().to_str().unwrap()
        )
    );

    let mut expire = vec!["silence", "expire", id.as_str()];
    expire.extend(aws);
    let out = firebell(&expire, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = firebell(&list, &[("FIREBELL_TABLE", "ignored-when---table-given")]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("expired"), "{stdout}");
}

#[test]
fn backend_flags_are_checked() {
    let out = firebell(
        &["run", "--backend", "aws", "--config", "examples", "--once"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: --backend aws needs the DynamoDB table: --table NAME or FIREBELL_TABLE=NAME"
    );
    let out = firebell(
        &[
            "run",
            "--backend",
            "aws",
            "--table",
            "t",
            "--state",
            "x",
            "--config",
            "examples",
        ],
        &[],
    );
    assert_eq!(
        text(&out.stderr).trim(),
        "error: --state is for --backend embedded (the aws backend keeps state in --table NAME)"
    );
    let out = firebell(
        &[
            "run",
            "--backend",
            "aws",
            "--table",
            "t",
            "--replay",
            "x.jsonl",
            "--config",
            "examples",
        ],
        &[],
    );
    assert_eq!(
        text(&out.stderr).trim(),
        "error: --replay is for --backend embedded (the aws backend reads CloudWatch)"
    );
    let out = firebell(&["silence", "list", "--table", "t"], &[]);
    assert_eq!(
        text(&out.stderr).trim(),
        "error: --table is for --backend aws (the embedded backend keeps state in --state DIR)"
    );
}
