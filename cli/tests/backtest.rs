#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell backtest`: over the demo's replayed day it sends exactly what
//! `firebell demo` sends; `--compare` shows what a config change alters.

mod common;
use common::{firebell, text};

use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect()
}

fn s(v: &Value, path: &[&str]) -> String {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or_default().to_string()
}

/// (time, receiver, destination, subject, status, alertname) of every message.
type Sent = (String, String, String, String, String, String);

fn demo_sent() -> Vec<Sent> {
    sent(&json_lines(&firebell(&["demo", "--json"])))
}

/// Every message of notification records (one per topic of the receiver).
fn sent(records: &[Value]) -> Vec<Sent> {
    let mut sent: Vec<Sent> = Vec::new();
    for n in records {
        common::assert_schema("notification-record", n);
        for d in n["destinations"].as_array().expect("destinations") {
            sent.push((
                s(n, &["at"]),
                s(n, &["receiver"]),
                d.as_str().unwrap_or_default().to_string(),
                s(n, &["subject"]),
                s(n, &["status"]),
                s(n, &["alertname"]),
            ));
        }
    }
    sent
}

/// The backtest's notifications over the demo day, as messages (one per
/// topic of the receiver, as the demo prints them), and the JSON objects.
fn backtest_sent(config: &str) -> (Vec<Sent>, Vec<Value>) {
    let backtest = json_lines(&firebell(&[
        "backtest",
        "--config",
        config,
        "--from",
        "2026-11-23T00:00:00Z",
        "--to",
        "2026-11-24T00:00:00Z",
        "--format",
        "json",
    ]));
    (sent(&backtest), backtest)
}

/// The example files the demo compiles in (`cli/src/bundled.rs`), copied to
/// a directory of their own.
fn bundled_config(dir: &Path) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let bundled = std::fs::read_to_string(format!("{root}/cli/src/bundled.rs")).expect("read");
    let mut n = 0;
    for line in bundled.lines() {
        let Some(rest) = line.split("include_str!(\"../../").nth(1) else {
            continue;
        };
        let Some(file) = rest.split('"').next().filter(|f| f.ends_with(".yaml")) else {
            continue;
        };
        let to = dir.join(file);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(format!("{root}/{file}"), &to).expect("copy");
        n += 1;
    }
    assert!(n >= 3, "bundled example files not found in bundled.rs");
    dir.join("examples").display().to_string()
}

#[test]
fn a_backtest_of_the_demo_day_sends_exactly_what_the_demo_sends() {
    let demo = demo_sent();
    assert!(!demo.is_empty(), "the demo sends notifications");

    // The demo's own config (the bundled example files): exactly the same.
    let dir = tempfile::tempdir().expect("tempdir");
    let (same_config, _) = backtest_sent(&bundled_config(dir.path()));
    assert_eq!(same_config, demo);

    // `--config examples` (every example file is bundled): exactly the same too.
    let (examples, objects) = backtest_sent("examples");
    assert_eq!(examples, demo);

    // The fields a notification object carries.
    let page = objects
        .iter()
        .find(|n| n["alertname"] == "PaymentsHighErrorRate" && n["status"] == "firing")
        .expect("the payments page");
    assert_eq!(page["at"], "2026-11-23T15:46:00Z");
    assert_eq!(page["receiver"], "payments-oncall");
    assert_eq!(page["labels"]["service"], "payments");
    assert_eq!(page["severity"], "page");
    assert!(page["value"].as_f64().is_some_and(|v| v > 1.0), "{page}");
}

#[test]
fn the_default_source_and_range_is_the_demo_day() {
    let out = firebell(&["backtest", "--config", "examples", "--format", "json"]);
    let explicit = firebell(&[
        "backtest",
        "--config",
        "examples",
        "--from",
        "2026-11-23T00:00:00Z",
        "--to",
        "2026-11-24T00:00:00Z",
        "--source",
        "examples/demo/day.jsonl",
        "--format",
        "json",
    ]);
    assert_eq!(json_lines(&out), json_lines(&explicit));
}

#[test]
fn the_text_report_counts_per_rule_and_receiver() {
    let out = firebell(&["backtest", "--config", "examples"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name} in:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // fires nodata flaps notifications pages time-firing
    assert_eq!(
        row("PaymentsHighErrorRate")[1..6],
        ["1", "0", "0", "2", "1"]
    );
    assert_eq!(row("CheckoutLatencyP99")[1..6], ["1", "0", "0", "2", "1"]);
    assert_eq!(
        row("CheckoutErrorRate")[1..7],
        ["0", "0", "0", "0", "0", "-"]
    );
    // The latency SLO pages once during the p99 degradation (it joins the
    // checkout group, and resolves with it).
    assert_eq!(
        row("CheckoutLatency:page:1h")[1..7],
        ["1", "0", "0", "2", "1", "5m"]
    );
    // notifications pages firing resolved
    assert_eq!(row("checkout-oncall")[1..], ["3", "2", "2", "1"]);
    // A day cannot back a 30-day error budget nor a 3-day window: the
    // report says so before the results, and marks the rules.
    assert!(
        stdout.starts_with(
            "firebell backtest: examples over 2026-11-23T00:00:00Z .. 2026-11-24T00:00:00Z (1440 cycles)\n  \
             source examples/demo/day.jsonl (bundled)\n  \
             note: slo PaymentsAvailability: the demo day covers 1d of its 30d window (`budget_spent`); figures computed from less history are marked Partial\n  \
             note: rule PaymentsAvailability:ticket:3d: the demo day covers 1d of the 3d its expression looks back; its values are computed from less history\n  \
             note: slo CheckoutLatency: the demo day covers 1d of its 30d window (`budget_spent`); figures computed from less history are marked Partial\n  \
             note: rule CheckoutLatency:ticket:3d: the demo day covers 1d of the 3d its expression looks back; its values are computed from less history\n\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  PaymentsAvailability:ticket:3d      0       0      0              0      0            -  (partial: computed from 1d of 30d of history)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-> payments-oncall")
            && stdout.contains("PAGE [FIRING] Payments error rate"),
        "{stdout}"
    );
}

#[test]
fn compare_shows_what_a_stricter_rule_would_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for f in ["rules/payments.yaml", "rules/checkout.yaml", "routing.yaml"] {
        let text = std::fs::read_to_string(format!("{root}/examples/{f}")).expect("read");
        for (side, text) in [
            (&a, text.clone()),
            // B pages on latency at 2s instead of 800ms: the 19:05 incident
            // (about 1.4s) no longer pages.
            (&b, text.replace("threshold: 800,", "threshold: 2000,")),
        ] {
            let to = side.join(f);
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::write(&to, text).expect("write");
        }
    }
    let (a, b) = (a.display().to_string(), b.display().to_string());
    let day = "examples/demo/day.jsonl";
    let out = firebell(&["backtest", "--config", &a, "--compare", &b, "--source", day]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Notifications only in A (2)"), "{stdout}");
    assert!(stdout.contains("Notifications only in B (0)"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("* CheckoutLatencyP99") && l.contains("1 -> 0")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  PaymentsHighErrorRate")),
        "unchanged rules are not starred:\n{stdout}"
    );
    let json = json_lines(&firebell(&[
        "backtest",
        "--config",
        &a,
        "--compare",
        &b,
        "--source",
        day,
        "--format",
        "json",
    ]));
    assert_eq!(json.len(), 2);
    for n in &json {
        common::assert_schema("notification-record", n);
    }
    assert!(
        json.iter()
            .all(|n| n["only_in"] == "a" && n["alertname"] == "CheckoutLatencyP99")
    );
}

#[test]
fn cloudwatch_needs_a_range() {
    let out = firebell(&["backtest", "--config", "examples", "--source", "cloudwatch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--source cloudwatch needs --from and --to"));
}

/// A config other than the examples has no bundled history: the backtest
/// says what to pass instead of replaying the demo day.
#[test]
fn a_user_config_needs_a_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let rules =
        std::fs::read_to_string(format!("{root}/examples/rules/payments.yaml")).expect("read");
    std::fs::write(dir.path().join("rules.yaml"), rules).expect("write");
    let config = dir.path().display().to_string();
    let out = firebell(&["backtest", "--config", &config]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {config} is not the bundled example config, so the bundled demo day is not its history: pass --source FILE (a replay file, REPLAY.md) or --source cloudwatch --from T --to T\n"
        )
    );
    assert_eq!(text(&out.stdout), "");
}

/// A replay without a rule's metrics: a note per rule before the results.
#[test]
fn a_replay_without_a_rules_metrics_is_noted_per_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replay = dir.path().join("other.jsonl");
    std::fs::write(
        &replay,
        "{\"namespace\":\"Shop\",\"metric\":\"Requests\",\"dimensions\":{\"Service\":\"payments\"},\"stat\":\"Sum\",\"period\":60,\"points\":[[1795392000,100],[1795392060,100]]}\n",
    )
    .expect("write");
    let replay = replay.display().to_string();
    let out = firebell(&[
        "backtest",
        "--config",
        "examples/rules/payments.yaml",
        "--source",
        &replay,
        "--no-timeline",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!(
            "firebell backtest: examples/rules/payments.yaml over 2026-11-23T00:00:00Z .. 2026-11-23T00:02:00Z (2 cycles)\n  \
             source {replay}\n  \
             note: rule PaymentsHighErrorRate: replay has no datapoints for metric Shop/Errors {{Service=\"payments\"}} (`errors`)\n\n"
        )),
        "{stdout}"
    );
}

/// A Metrics Insights rule through the engine over a replay: one instance
/// per GROUP BY value (the replay serves the query's series as lines with
/// the `query` and the group's values as `dimensions`), the group's values
/// as labels of the alert.
#[test]
fn a_metrics_insights_rule_fires_per_group_of_its_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let query =
        r#"SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId"#;
    std::fs::write(
        dir.path().join("rules.yaml"),
        format!(
            "rules:\n  - name: HotInstance\n    metrics:\n      cpu: {{query: '{query}', period: 1m}}\n    expression: cpu\n    condition: {{op: \">\", threshold: 90}}\n    for: 3m\n    annotations: {{summary: \"CPU of {{{{ labels.InstanceId }}}} at {{{{ value }}}}\"}}\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("routing.yaml"),
        "receivers:\n  ops: {topics: [\"arn:aws:sns:us-east-1:123456789012:ops\"]}\nroute: {receiver: ops, group_by: [alertname, InstanceId], group_wait: 0s}\n",
    )
    .expect("write");
    let t0 = 1_795_392_000; // 2026-11-23T00:00:00Z
    let mut replay = String::new();
    for (instance, hot_from) in [("i-1", 99), ("i-2", 10)] {
        let points: Vec<String> = (0..30)
            .map(|i| {
                let v = if i >= hot_from { 95.0 } else { 30.0 };
                format!("[{},{v}]", t0 + 60 * i)
            })
            .collect();
        let line = serde_json::json!({
            "namespace": "AWS/EC2",
            "metric": "CPUUtilization",
            "dimensions": {"InstanceId": instance},
            "stat": "Average",
            "period": 60,
            "query": query,
        })
        .to_string();
        replay.push_str(&format!(
            "{},\"points\":[{}]}}\n",
            line.trim_end_matches('}'),
            points.join(",")
        ));
    }
    let source = dir.path().join("cpu.jsonl");
    std::fs::write(&source, replay).expect("write");
    let config = dir.path().display().to_string();
    let records = json_lines(&firebell(&[
        "backtest",
        "--config",
        &config,
        "--source",
        &source.display().to_string(),
        "--format",
        "json",
    ]));
    let sent: Vec<(String, String, String)> = sent(&records)
        .into_iter()
        .map(|(at, receiver, _, subject, status, _)| (at, format!("{receiver} {status}"), subject))
        .collect();
    assert_eq!(
        sent,
        vec![(
            "2026-11-23T00:14:00Z".to_string(),
            "ops firing".to_string(),
            "[FIRING] CPU of i-2 at 95".to_string()
        )]
    );
}
