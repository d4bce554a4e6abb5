//! `firebell run --backend aws`, `firebell silence --backend aws` and
//! `firebell alerts --backend aws` against
//! the AWS wire-protocol emulator (`scripts/emulator.sh`): CloudWatch in,
//! DynamoDB state, SNS out, read back through an SQS queue subscribed to the
//! receiver's topic. The tests take the endpoint from `AWS_ENDPOINT_URL` and
//! fail, never skip, when it is missing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[allow(dead_code)]
mod common;

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

/// Errors per minute of the api service up to the minute before `tick`.
async fn put_errors(sdk: &firebell_aws::SdkConfig, namespace: &str, tick: i64) {
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
    aws_sdk_cloudwatch::Client::new(sdk)
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test]
async fn alerts_reads_the_dynamodb_table_with_backend_aws() {
    let sdk = sdk().await;
    let table = table(&sdk).await;
    let (topic, _queue) = topic_with_queue(&sdk).await;
    let namespace = format!("Firebell/CliTest/{}", unique("alerts"));
    let tick = now_secs().div_euclid(60) * 60;
    put_errors(&sdk, &namespace, tick).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &namespace, &topic);
    let config = dir.path().to_str().unwrap();
    let aws = ["--backend", "aws", "--table", table.as_str()];

    let mut run = vec!["run", "--config", config, "--once", "--at"];
    let at = rfc3339(tick);
    run.push(&at);
    run.extend(aws);
    let out = firebell(&run, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let alerts = |extra: &[&str]| {
        let mut args = vec!["alerts", "--config", config, "-o", "json"];
        args.extend(aws);
        args.extend_from_slice(extra);
        let out = firebell(&args, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        doc.as_array().unwrap().clone()
    };
    let list = alerts(&[]);
    assert_eq!(list.len(), 1, "{list:#?}");
    common::assert_schema("alert", &list[0]);
    assert_eq!(list[0]["rule"], "CliAwsHighErrors");
    assert_eq!(list[0]["state"], "firing");
    assert_eq!(list[0]["value"], 10.0);
    assert_eq!(list[0]["receivers"][0]["receiver"], "api-oncall");
    assert_eq!(list[0]["silenced_by"], Value::Null);
    assert!(alerts(&["team=web"]).is_empty());

    // A silence in the table mutes it.
    let mut add = vec![
        "silence",
        "add",
        "--config",
        config,
        "-m",
        "team=\"api\"",
        "--created-by",
        "alice",
        "--comment",
        "deploy",
    ];
    add.extend(aws);
    let out = firebell(&add, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = alerts(&["--status", "firing"]);
    assert_eq!(list[0]["silenced_by"]["created_by"], "alice");
    common::assert_schema("alert", &list[0]);
}

/// The one line `firebell` prints for a table that does not exist.
fn table_not_found(table: &str, region: &str) -> String {
    format!(
        "error: store error: DynamoDB table {table} not found in region {region}: check --table / the stack output StateTableName (and --region)\n"
    )
}

#[tokio::test]
async fn a_missing_table_is_one_line_naming_table_region_and_fix() {
    let sdk = sdk().await;
    let region = sdk.region().unwrap().to_string();
    let table = unique("firebell-no-such-table");
    for cmd in [
        vec!["run", "--config", "examples", "--once"],
        vec!["alerts", "--config", "examples"],
        vec!["silence", "list"],
    ] {
        let mut args = cmd.clone();
        args.extend(["--backend", "aws", "--table", table.as_str()]);
        let out = firebell(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        assert_eq!(
            text(&out.stderr),
            table_not_found(&table, &region),
            "{cmd:?}"
        );
    }
    // --region overrides AWS_REGION.
    let out = firebell(
        &[
            "alerts",
            "--config",
            "examples",
            "--backend",
            "aws",
            "--table",
            &table,
            "--region",
            "eu-west-3",
        ],
        &[],
    );
    assert_eq!(text(&out.stderr), table_not_found(&table, "eu-west-3"));

    // --profile reads region and credentials from the shared files.
    let files = tempfile::tempdir().unwrap();
    let config_file = files.path().join("config");
    let credentials_file = files.path().join("credentials");
    std::fs::write(
        &config_file,
        "[profile firebell-test]\nregion = ap-south-1\n",
    )
    .unwrap();
    std::fs::write(
        &credentials_file,
        "[firebell-test]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firebell"));
    cmd.args([
        "alerts",
        "--config",
        "examples",
        "--backend",
        "aws",
        "--table",
        &table,
        "--profile",
        "firebell-test",
    ])
    .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    .env("AWS_CONFIG_FILE", &config_file)
    .env("AWS_SHARED_CREDENTIALS_FILE", &credentials_file);
    for var in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert_eq!(text(&out.stderr), table_not_found(&table, "ap-south-1"));
}

/// `firebell` with the AWS environment cleared but for `keep`: no region,
/// no credentials, no shared files, no instance metadata.
fn firebell_without_aws(args: &[&str], keep: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firebell"));
    cmd.args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("AWS_CONFIG_FILE", "/nonexistent/firebell-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/firebell-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for var in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "FIREBELL_TABLE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in keep {
        cmd.env(k, v);
    }
    cmd.output().expect("run firebell")
}

#[test]
fn no_region_no_credentials_and_an_unknown_profile_fail_at_once_in_one_line() {
    // These fail before any call: no emulator needed.
    for cmd in [
        vec![
            "run",
            "--backend",
            "aws",
            "--table",
            "t",
            "--config",
            "examples",
            "--once",
        ],
        vec![
            "alerts",
            "--backend",
            "aws",
            "--table",
            "t",
            "--config",
            "examples",
        ],
        vec!["silence", "list", "--backend", "aws", "--table", "t"],
        vec![
            "backtest",
            "--config",
            "examples",
            "--source",
            "cloudwatch",
            "--from",
            "2026-11-23T00:00:00Z",
            "--to",
            "2026-11-23T01:00:00Z",
        ],
    ] {
        let out = firebell_without_aws(&cmd, &[]);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        assert_eq!(
            text(&out.stderr),
            "error: no AWS region: pass --region or set AWS_REGION (or a region in the profile)\n",
            "{cmd:?}"
        );
        let mut with_region = cmd.clone();
        with_region.extend(["--region", "eu-west-1"]);
        let out = firebell_without_aws(&with_region, &[]);
        let stderr = text(&out.stderr);
        // The SDK's account of the providers it tried follows, on the same line.
        assert!(
            stderr.starts_with("error: no AWS credentials: set AWS_PROFILE / --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run `aws sso login`) ("),
            "{cmd:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{cmd:?}: {stderr}");
        let mut with_profile = cmd.clone();
        with_profile.extend(["--profile", "nosuch"]);
        let out = firebell_without_aws(&with_profile, &[]);
        assert_eq!(
            text(&out.stderr),
            "error: no AWS profile \"nosuch\" in the shared config files (~/.aws/config, ~/.aws/credentials): check --profile / AWS_PROFILE\n",
            "{cmd:?}"
        );
    }
}

/// The alarm names under `prefix` (DescribeAlarms by prefix).
async fn alarm_names(sdk: &firebell_aws::SdkConfig, prefix: &str) -> Vec<String> {
    let out = aws_sdk_cloudwatch::Client::new(sdk)
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .send()
        .await
        .expect("DescribeAlarms");
    out.metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn run_keeps_sentinels_under_the_stacks_prefix() {
    let sdk = sdk().await;
    let table = table(&sdk).await;
    let (topic, _queue) = topic_with_queue(&sdk).await;
    let namespace = format!("Firebell/CliTest/{}", unique("sentinels"));
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &namespace, &topic);
    std::fs::write(
        dir.path().join("sentinels.yaml"),
        "sentinels: {mode: auto}\n",
    )
    .unwrap();
    let config = dir.path().to_str().unwrap();
    let tick = now_secs().div_euclid(60) * 60;
    let flag = format!("{}-", unique("fb-cli-flag"));
    let env = format!("{}-", unique("fb-cli-env"));
    let run = |at: i64, args: &[&str], env: &[(&str, &str)]| {
        let at = rfc3339(at);
        let mut all = vec![
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
        ];
        all.extend_from_slice(args);
        firebell(&all, env)
    };
    // The flag wins over the environment.
    let out = run(
        tick - 60,
        &["--sentinel-prefix", &flag],
        &[("FIREBELL_SENTINEL_PREFIX", &env)],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        alarm_names(&sdk, &flag).await,
        [format!("{flag}rule.CliAwsHighErrors")]
    );
    assert!(alarm_names(&sdk, &env).await.is_empty());
    // The environment without the flag; the other prefix's sentinel is
    // left alone (it is not this stack's).
    let out = run(tick, &[], &[("FIREBELL_SENTINEL_PREFIX", &env)]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        alarm_names(&sdk, &env).await,
        [format!("{env}rule.CliAwsHighErrors")]
    );
    assert_eq!(alarm_names(&sdk, &flag).await.len(), 1);
}

#[test]
fn the_sentinel_prefix_is_checked() {
    let out = firebell(
        &[
            "run",
            "--config",
            "examples",
            "--once",
            "--sentinel-prefix",
            "p-",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "error: --sentinel-prefix is for --backend aws (the sentinel alarms of a stack)"
    );
    let out = firebell(
        &[
            "run",
            "--backend",
            "aws",
            "--table",
            "t",
            "--config",
            "examples",
            "--once",
            "--sentinel-prefix",
            "two words",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "error: --sentinel-prefix: sentinel prefix \"two words\": expected 1 to 128 printable ASCII characters without spaces (the start of every sentinel alarm's name)"
    );
}

#[tokio::test]
async fn sentinels_plan_shows_the_difference_and_apply_makes_it_and_records_it() {
    let sdk = sdk().await;
    let table = table(&sdk).await;
    let (topic, _queue) = topic_with_queue(&sdk).await;
    let namespace = format!("Firebell/CliTest/{}", unique("plan"));
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &namespace, &topic);
    std::fs::write(
        dir.path().join("sentinels.yaml"),
        "sentinels: {mode: auto}\n",
    )
    .unwrap();
    let config = dir.path().to_str().unwrap();
    let prefix = format!("{}.", unique("fb-cli-plan"));
    // A leftover of an older config under the prefix, and an alarm that
    // is not firebell's (no definition in its description).
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let leftover = firebell_core::sentinel::for_rule(
        &firebell_core::config::parse_rules(
            "old.yaml",
            &format!(
                "rules:\n  - name: Gone\n    metrics:\n      m: {{namespace: {namespace}, metric: M, stat: Sum}}\n    expression: m\n    condition: {{op: '>', threshold: 1}}\n"
            ),
        )
        .unwrap()
        .rules[0],
        &prefix,
    )
    .unwrap();
    firebell_core::ports::AlarmService::put(
        &firebell_aws::CloudWatchAlarms::from_sdk_config(&sdk),
        &leftover,
    )
    .await
    .expect("put the leftover");
    cw.put_metric_alarm()
        .alarm_name(format!("{prefix}someone-elses"))
        .namespace(&namespace)
        .metric_name("M")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    let sentinels = |action: &str| {
        firebell(
            &[
                "sentinels",
                action,
                "--config",
                config,
                "--backend",
                "aws",
                "--table",
                &table,
                "--prefix",
                &prefix,
            ],
            &[],
        )
    };
    let mine = format!("{prefix}rule.CliAwsHighErrors");
    let gone = format!("{prefix}rule.Gone");
    let plan = sentinels("plan");
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let out = text(&plan.stdout);
    assert!(
        out.contains(&format!("+ {mine}  (CliAwsHighErrors)\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("- {gone}  (no longer wanted)\n")),
        "{out}"
    );
    assert!(
        out.ends_with("plan: 1 to create, 0 to update, 1 to delete\n"),
        "{out}"
    );
    // Planning changed nothing.
    let mut names = alarm_names(&sdk, &prefix).await;
    names.sort();
    assert_eq!(names, [gone.clone(), format!("{prefix}someone-elses")]);

    let apply = sentinels("apply");
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    assert!(
        text(&apply.stdout).ends_with("applied: 1 to create, 0 to update, 1 to delete\n"),
        "{}",
        text(&apply.stdout)
    );
    let mut names = alarm_names(&sdk, &prefix).await;
    names.sort();
    assert_eq!(names, [mine.clone(), format!("{prefix}someone-elses")]);
    // What it found is recorded for the cycles: the new sentinel is not
    // trusted until a listing sees it evaluated.
    let store = firebell_aws::DynamoStore::from_sdk_config(
        &sdk,
        table.clone(),
        std::sync::Arc::new(firebell_core::ports::SystemClock),
    );
    let (record, _) = firebell_engine::sentinel::read_sync(&store)
        .await
        .unwrap()
        .expect("a sync record");
    assert_eq!(record.prefix, prefix);
    assert_eq!(
        record.out_of_sync.get(&mine).map(String::as_str),
        Some("missing; put, not evaluated yet")
    );
    // A second plan: nothing to change.
    let again = sentinels("plan");
    let out = text(&again.stdout);
    assert!(out.ends_with("CloudWatch matches the config\n"), "{out}");
}
