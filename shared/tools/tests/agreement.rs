//! One judge: the rule unit-test runner (`firebell test`) and the engine,
//! run on their own over the same inputs, agree minute by minute — on a
//! late-arriving (sparse) datapoint, a volume-guarded window and a NoData
//! stretch.
//!
//! The engine runs here by itself (`Engine::run_cycle` on the in-memory
//! adapters, no simulator). From what it did, the test writes a rule test
//! file that expects, after every cycle, exactly the alerts the engine had
//! (status, labels, and the value an annotation renders) and every
//! notification it sent; `firebell test` must pass it. A second file with
//! one expectation changed must fail, so the check can fail.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use firebell_core::diag::Diagnostics;
use firebell_core::ports::Clock;
use firebell_core::series::{Epoch, Point};
use firebell_core::state::{Event, Status};
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySeries, ReplaySource};
use firebell_engine::{Config, Engine, EngineOptions, InstanceView, judge};
use firebell_tools::unittest;

const START: Epoch = 1_795_392_000; // 2026-11-23T00:00:00Z
const MINUTES: i64 = 60;

const CONFIG: &str = r#"
rules:
  - name: Ratio
    metrics:
      errors:   {namespace: T, metric: Errors,   dimensions: {Service: a}, stat: Sum, period: 1m}
      requests: {namespace: T, metric: Requests, dimensions: {Service: a}, stat: Sum, period: 1m}
    expression: 100 * FILL(errors, 0) / requests
    unit: percent
    condition: {op: ">", threshold: 1}
    for: 3m
    min_volume: {metric: requests, at_least: 300, window: 3m}
    missing_data: nodata
    labels: {team: t, severity: page}
    annotations:
      summary: "ratio {{ value }}"
receivers:
  oncall:
    topics: ["arn:aws:sns:us-east-1:123456789012:oncall"]
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
"#;

/// Minute by minute: `(requests, errors)`, `None` where nothing was published.
///
/// * 0-9: 200 requests, errors published only when non-zero (none): 0%.
/// * 10-19: 5% errors: pending, then firing. At 14 and 19 the errors
///   datapoint is missing while requests arrived (sparse / late): not
///   judged until the arrival grace has passed.
/// * 20-27: 50% errors at 50 requests a minute: under the volume guard.
/// * 28-37: nothing at all: NoData.
/// * 38-59: back to 200 requests, no errors.
fn inputs() -> Vec<(Option<f64>, Option<f64>)> {
    (0..MINUTES)
        .map(|m| match m {
            0..=9 => (Some(200.0), None),
            14 | 19 => (Some(200.0), None),
            10..=19 => (Some(200.0), Some(10.0)),
            20..=27 => (Some(50.0), Some(25.0)),
            28..=37 => (None, None),
            _ => (Some(200.0), None),
        })
        .collect()
}

fn series(metric: &str, values: impl Iterator<Item = Option<f64>>) -> ReplaySeries {
    ReplaySeries {
        namespace: "T".into(),
        metric: metric.into(),
        dimensions: [("Service".to_string(), "a".to_string())].into(),
        stat: firebell_core::model::Stat::Sum,
        period: 60,
        account: None,
        region: None,
        query: None,
        points: values
            .enumerate()
            .filter_map(|(i, v)| {
                v.map(|v| Point {
                    t: START + i as i64 * 60,
                    v,
                })
            })
            .collect(),
    }
}

fn notation(values: impl Iterator<Item = Option<f64>>) -> String {
    let parts: Vec<String> = values
        .map(|v| v.map_or("_".to_string(), |v| v.to_string()))
        .collect();
    parts.join(" ")
}

/// What the engine did after one cycle: the alerts (status, labels without
/// `alertname`, the rendered summary) and the notifications it sent.
#[derive(Debug, Default)]
struct Minute {
    alerts: Vec<(String, BTreeMap<String, String>, String)>,
    sent: Vec<(String, String)>,
    events: Vec<Event>,
}

async fn run_engine(config: Arc<Config>) -> Vec<Minute> {
    let ins = inputs();
    let source = ReplaySource::from_series([
        series("Requests", ins.iter().map(|(r, _)| *r)),
        series("Errors", ins.iter().map(|(_, e)| *e)),
    ]);
    let clock = Arc::new(ManualClock::at_epoch(START));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let engine = Engine::new(
        config.clone(),
        Arc::new(source),
        store,
        notifier.clone(),
        EngineOptions {
            record_views: true,
            ..EngineOptions::default()
        },
    );
    let rule = config.rules.get("Ratio").expect("rule");
    let mut out = Vec::new();
    for k in 1..=MINUTES {
        let now = START + k * 60;
        clock.set_epoch(now);
        let report = engine.run_cycle(now, &|| false).await.expect("cycle");
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let views: &[InstanceView] = &report.views;
        let mut minute = Minute::default();
        for v in views {
            minute.events.extend(v.events.iter().copied());
            let status = match v.state.status {
                Status::Pending => "pending",
                Status::Firing => "firing",
                Status::NoData => "nodata",
                _ => continue,
            };
            let alert = judge::current_alert(rule, &v.labels, &v.state, v.value, &rule.annotations)
                .expect("an alert");
            let summary = firebell_notify::render_annotation(&rule.annotations["summary"], &alert);
            let mut labels = v.labels.clone();
            labels.remove("alertname");
            minute.alerts.push((status.to_string(), labels, summary));
        }
        for m in notifier.take() {
            let status = m.attributes.get("status").cloned().unwrap_or_default();
            minute.sent.push((m.receiver, status));
        }
        out.push(minute);
    }
    out
}

/// A rule test file expecting exactly what the engine did.
fn test_file(minutes: &[Minute], tamper: bool) -> String {
    let ins = inputs();
    let mut t = String::new();
    let _ = writeln!(t, "config: config.yaml\ntests:\n  - name: agreement");
    let _ = writeln!(t, "    start: 2026-11-23T00:00:00Z\n    input_series:");
    for (metric, values) in [
        ("Requests", notation(ins.iter().map(|(r, _)| *r))),
        ("Errors", notation(ins.iter().map(|(_, e)| *e))),
    ] {
        let _ = writeln!(
            t,
            "      - {{namespace: T, metric: {metric}, dimensions: {{Service: a}}, stat: Sum, values: \"{values}\"}}"
        );
    }
    let _ = writeln!(t, "    alert_rule_test:");
    for (i, m) in minutes.iter().enumerate() {
        let _ = writeln!(t, "      - eval_time: {}m\n        alertname: Ratio", i + 1);
        if m.alerts.is_empty() {
            let _ = writeln!(t, "        exp_alerts: []");
            continue;
        }
        let _ = writeln!(t, "        exp_alerts:");
        for (status, labels, summary) in &m.alerts {
            let summary = if tamper && status == "firing" {
                format!("{summary}0")
            } else {
                summary.clone()
            };
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(
                t,
                "          - {{status: {status}, exp_labels: {{{}}}, exp_annotations: {{summary: \"{summary}\"}}}}",
                labels.join(", ")
            );
        }
    }
    let _ = writeln!(
        t,
        "    notification_test:\n      - until: {MINUTES}m\n        exp_notifications:"
    );
    for (i, m) in minutes.iter().enumerate() {
        for (receiver, status) in &m.sent {
            let _ = writeln!(
                t,
                "          - {{receiver: {receiver}, status: {status}, at: {}m}}",
                i + 1
            );
        }
    }
    t
}

fn run_tests(dir: &Path, name: &str, text: &str) -> unittest::FileResult {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    let mut diags = Diagnostics::default();
    let Some((tf, config)) = unittest::load(&path, &mut diags) else {
        panic!(
            "test file does not load: {}\n{text}",
            diags
                .errors()
                .map(|d| format!("{d:?}\n"))
                .collect::<String>()
        );
    };
    assert!(
        !diags.has_errors(),
        "{}",
        diags
            .errors()
            .map(|d| format!("{d:?}\n"))
            .collect::<String>()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(unittest::run(&tf, config))
}

#[test]
fn the_rule_test_runner_and_the_engine_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.yaml"), CONFIG).expect("write config");
    let (config, _) = firebell_engine::load(dir.path()).expect("config loads");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let minutes = rt.block_on(run_engine(Arc::new(config)));

    // The scenario exercises what it says it does.
    let status_at = |m: usize| minutes[m - 1].alerts.first().map(|a| a.0.as_str());
    let events: Vec<Event> = minutes.iter().flat_map(|m| m.events.clone()).collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::Fired { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::NoDataStarted { .. })),
        "{events:?}"
    );
    // The bucket of minute 14 (requests, no errors yet) is not judged as
    // 0% by the cycle right after it: the alert stays pending or firing.
    assert!(
        matches!(status_at(16), Some("pending" | "firing")),
        "{:?}",
        status_at(16)
    );
    // Minutes 20-27 (50% errors, 50 requests a minute) are never judged:
    // nothing fires because of them.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Fired { at, .. } if (START + 20 * 60..START + 28 * 60).contains(at))),
        "{events:?}"
    );
    assert!(minutes.iter().any(|m| !m.sent.is_empty()));

    let text = test_file(&minutes, false);
    if std::env::var_os("SHOW").is_some() {
        eprintln!("{text}");
    }
    let result = run_tests(dir.path(), "agree_test.yaml", &text);
    assert_eq!(result.failed(), 0, "{}\n{text}", result.render());
    // One check per minute, and the notifications.
    assert_eq!(result.passed(), MINUTES as usize + 1, "{}", result.render());

    let tampered = test_file(&minutes, true);
    let result = run_tests(dir.path(), "tampered_test.yaml", &tampered);
    assert!(result.failed() >= 1, "{}", result.render());
}
