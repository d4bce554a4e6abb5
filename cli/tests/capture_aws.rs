//! `firebell capture` against the AWS wire-protocol emulator
//! (`scripts/emulator.sh`): a history seeded into CloudWatch is recorded
//! into a replay file, and `backtest` of that file sends exactly what
//! `backtest --source cloudwatch` sends over the same range. Takes the
//! endpoint from `AWS_ENDPOINT_URL` and fails, never skips, when it is
//! missing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
use common::{firebell, text};

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

const HOW_TO_RUN: &str = "this test needs an AWS wire-protocol emulator. Run it with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell --test capture_aws\n    scripts/emulator.sh stop";

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

fn datum(service: &str, t: i64, v: f64) -> MetricDatum {
    MetricDatum::builder()
        .metric_name("Errors")
        .dimensions(Dimension::builder().name("Service").value(service).build())
        .timestamp(DateTime::from_secs(t))
        .value(v)
        .unit(StandardUnit::Count)
        .build()
}

#[tokio::test]
async fn a_capture_replays_to_the_same_notifications_as_cloudwatch() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"
    );
    let sdk = firebell_aws::load_sdk_config().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let namespace = format!(
        "Firebell/CaptureTest/{}-{}",
        std::process::id(),
        now.as_nanos()
    );
    // Two hours ago: 60 minutes of two services (a wildcard rule), `api`
    // breaching in minutes 10..=19 and 40..=44, `web` in 30..=34.
    let t0 = (now.as_secs() as i64).div_euclid(3600) * 3600 - 7200;
    let mut data = Vec::new();
    for m in 0..60 {
        let t = t0 + 60 * m;
        let api = (10..20).contains(&m) || (40..45).contains(&m);
        data.push(datum("api", t, if api { 12.0 } else { 1.0 }));
        data.push(datum(
            "web",
            t,
            if (30..35).contains(&m) { 9.0 } else { 0.0 },
        ));
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

    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.yaml"),
        format!(
            r#"rules:
  - name: Errors
    metrics:
      errors: {{namespace: "{namespace}", metric: Errors, dimensions: {{Service: "*"}}, stat: Sum, period: 1m}}
    expression: errors
    condition: {{op: ">", threshold: 5}}
    for: 2m
    labels: {{team: api, severity: page}}
  - name: ErrorRate5m
    metrics:
      errors: {{namespace: "{namespace}", metric: Errors, dimensions: {{Service: api}}, stat: Average, period: 5m}}
    expression: errors
    condition: {{op: ">", threshold: 4}}
    labels: {{team: api, severity: ticket}}
receivers:
  api: {{topics: [arn:aws:sns:us-east-1:000000000000:unused]}}
route:
  receiver: api
  group_by: [alertname, Service]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
"#
        ),
    )
    .unwrap();
    let config = config_dir.display().to_string();
    let file = dir.path().join("incident.jsonl");
    let (from, to) = (rfc3339(t0 + 5 * 60), rfc3339(t0 + 60 * 60));

    let out = firebell(&[
        "capture",
        "--config",
        &config,
        "--from",
        &from,
        "--to",
        &to,
        "--out",
        &file.display().to_string(),
        "--chunk",
        "20m",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    // The plan and its cost come first: 3 queries (api and web at 1m, api
    // at 5m) from the warmup before --from (35m: the longest lookback and
    // step of the rules) in 20-minute chunks: 90 minutes, 5 chunks, 15
    // metrics.
    assert_eq!(
        stderr.lines().next(),
        Some(
            format!(
                "capture: 3 queries × 5 chunks = 15 metrics requested, {} .. {to}; GetMetricData cost $0.0001 ($0.0100 per 1,000 metrics)",
                rfc3339(t0 - 30 * 60)
            )
            .as_str()
        ),
        "{stderr}"
    );
    // Last, the calls it made: ListMetrics once (the wildcard), and two
    // GetMetricData calls a chunk (queries are grouped by period: 1m, 5m).
    assert_eq!(
        stderr.lines().last(),
        Some("capture: CloudWatch calls GetMetricData=10 ListMetrics=1 throttle_retries=0"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.lines().count(), 3, "{written}");
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "wrote {}: 3 series, 132 datapoints, {} .. {to}",
            file.display(),
            rfc3339(t0 - 30 * 60)
        )
    );
    // No temporary file is left beside the output.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["config", "incident.jsonl"]);

    let backtest = |source: &str| {
        let out = firebell(&[
            "backtest", "--config", &config, "--source", source, "--from", &from, "--to", &to,
            "--chunk", "20m", "-o", "json",
        ]);
        assert!(
            out.status.success(),
            "{source}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let replayed = backtest(&file.display().to_string());
    let live = backtest("cloudwatch");
    assert_eq!(replayed, live);
    // And the history did something: api fired twice, web once, each
    // resolved; the 5-minute average of api fired for its first breach.
    let statuses: Vec<(String, String, String)> = replayed
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                v["labels"]["Service"].as_str().unwrap_or("").to_string(),
                v["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let count = |name: &str, service: &str, status: &str| {
        statuses
            .iter()
            .filter(|(a, s, st)| a == name && s == service && st == status)
            .count()
    };
    assert_eq!(count("Errors", "api", "firing"), 2, "{replayed}");
    assert_eq!(count("Errors", "web", "firing"), 1, "{replayed}");
    assert_eq!(count("Errors", "api", "resolved"), 2, "{replayed}");
    assert!(count("ErrorRate5m", "", "firing") >= 1, "{replayed}");
}

#[test]
fn a_failed_capture_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.jsonl");
    std::fs::write(&file, "previous\n").unwrap();
    // A range the wrong way round fails before anything is fetched.
    let out = firebell(&[
        "capture",
        "--config",
        "examples",
        "--from",
        "2026-11-23T12:00:00Z",
        "--to",
        "2026-11-23T11:00:00Z",
        "--out",
        &file.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: --to 2026-11-23T11:00:00Z is not after --from 2026-11-23T12:00:00Z"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "previous\n");
    // A CloudWatch that cannot be reached fails the capture: the old file
    // stays, no temporary file is left.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_firebell"))
        .args([
            "capture",
            "--config",
            "examples",
            "--from",
            "2026-11-23T11:00:00Z",
            "--to",
            "2026-11-23T12:00:00Z",
            "--out",
            &file.display().to_string(),
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // The plan was printed (the examples have no wildcard, so nothing was
    // asked before GetMetricData), then the error, which says a retry
    // makes sense (the source is unavailable, not the query bad).
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("capture: 11 queries × 4 chunks = 44 metrics requested"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(
            "error: capturing history from CloudWatch: metrics source unavailable: GetMetricData: "
        ),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "previous\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
