#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell lint`, lint warnings in `firebell validate`, and `firebell cost`.

mod common;
use common::{firebell, text};

const FIXTURE: &str = "cli/tests/fixtures/lint.yaml";

fn findings(severity: &str) -> String {
    let f = FIXTURE;
    format!(
        "{f}:3:11: {severity}: rule \"HostCpu\" pages (severity=page) but has no `runbook_url` annotation: whoever is woken up needs to know what to do [page-without-runbook]\n\
         {f}:3:11: {severity}: rule \"HostCpu\" reaches only the root's default receiver \"ops\" (labels severity=page, team=search): no team route claims it [unrouted]\n\
         {f}:3:11: {severity}: rule \"HostCpu\" pages on a single breaching datapoint (`for` 0s is shorter than two periods (2m)): one noisy datapoint wakes someone up [page-on-one-datapoint]\n\
         {f}:3:11: {severity}: rule \"HostCpu\" pages on a cause metric (AWS/EC2 CPUUtilization): page on what users feel (errors, latency, availability) and ticket on causes [page-on-cause]\n\
         {f}:9:11: {severity}: rule \"ApiErrors\" divides by `requests` without a `min_volume` guard: at low traffic one bad request is a large ratio [ratio-without-guard]\n\
         {f}:9:11: {severity}: rule \"ApiErrors\": `for: 5m` restarts at any single datapoint at or under the threshold: a slow burn near it or a flapping fire pages late or never; use `datapoints: {{breaching: 4, out_of: 5}}` (with `keep_firing_for`), or a windowed ratio (RSUM) [brittle-for]\n"
    )
}

#[test]
fn lint_accepts_the_examples() {
    let out = firebell(&["lint", "examples/"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: 9 rule(s), nothing to report\n");
    let strict = firebell(&["lint", "--strict", "examples/"]);
    assert!(strict.status.success());
}

#[test]
fn lint_warns_and_strict_fails() {
    let out = firebell(&["lint", FIXTURE]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("{}6 warnings in 2 rule(s)\n", findings("warning"))
    );
    let out = firebell(&["lint", "--strict", FIXTURE]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!("{}6 errors in 2 rule(s)\n", findings("error"))
    );
}

#[test]
fn validate_prints_lint_warnings() {
    let out = firebell(&["validate", FIXTURE]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), findings("warning"));
    assert_eq!(
        text(&out.stdout),
        "ok: 1 file(s), 2 rule(s), 2 receiver(s), 6 warning(s); config version e68a5a04dcb5\n"
    );
    let out = firebell(&["validate", "--strict", FIXTURE]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn cost_of_the_examples() {
    let out = firebell(&["cost", "--config", "examples"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "firebell cost: examples, 9 rule(s), per month (730 hours)",
        "PaymentsHighErrorRate              1m        2        $0.8760",
        "PaymentsAvailability:ticket:3d    15m        2        $0.0586",
        "2 alarms, 4 metrics + 1 composite",
        "Total CloudWatch alarms:     $5.90 a month",
        "Total firebell:",
        "us-east-1 list prices recorded 2026-11-24",
        "of 300 ms at 256 MB",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // Overrides change the figures: 29 alarm metrics at $0.20 and 6 composites.
    let out = firebell(&[
        "cost",
        "--config",
        "examples",
        "--price-alarm",
        "0.2",
        "--cycle-ms",
        "1000",
    ]);
    let s = text(&out.stdout);
    assert!(
        s.contains("Total CloudWatch alarms:     $8.80 a month"),
        "{s}"
    );
    assert!(s.contains("of 1000 ms at 256 MB"), "{s}");
    assert!(
        !s.contains("Step Functions"),
        "unsharded: no state machine\n{s}"
    );
}

#[test]
fn cost_with_shards() {
    let out = firebell(&["cost", "--config", "examples", "--shards", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        // 43,800 ticks of 5 invocations: 219,000 × 300 ms × 0.25 GB.
        "Shared: Lambda $0.2628 (219,000 requests, 16,425 GB-s)",
        "(13.5 read units a tick; a quiet cycle writes nothing)",
        // 43,800 × $1 / million + 43,800 × 0.6 s × 64 MB at $0.00001667.
        "Shards: 4 (5 evaluator invocations a tick: the shards, then delivery); \
         Step Functions Express $0.0712 (43,800 executions, 1,642 GB-s)",
        "Lambda $0.2628, Step Functions $0.0712, DynamoDB",
        "4 shards (5 invocations a tick; an execution lasts a shard then delivery)",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // The estimate's shard counts are the stack's: 1 to 64.
    for bad in ["0", "65"] {
        let out = firebell(&["cost", "--config", "examples", "--shards", bad]);
        assert_eq!(out.status.code(), Some(2), "--shards {bad}");
    }
}

const SENTINELS: &str = r#"
sentinels: {mode: auto}
slos:
  - name: Api
    team: a
    objective: 99.9
    sli:
      errors: {namespace: App, metric: Errors, dimensions: {Service: api}, stat: Sum}
      total: {namespace: App, metric: Requests, dimensions: {Service: api}, stat: Sum}
rules:
  - name: Ratio
    metrics:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: a}, stat: Sum}
      requests: {namespace: Shop, metric: Requests, dimensions: {Service: a}, stat: Sum}
    expression: errors / requests
    condition: {op: ">", threshold: 0.01}
  - name: Hourly
    interval: 1h
    metrics:
      orders: {namespace: Shop, metric: Orders, stat: Sum, period: 1h}
    expression: orders
    condition: {op: "<", threshold: 1}
"#;

#[test]
fn cost_shows_the_mode_of_each_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, SENTINELS).unwrap();
    let path = path.to_str().unwrap();
    let out = firebell(&["cost", "--config", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        // GetMetricData: sweeps and hot polling; firebell: plus the alarm;
        // polling, sentinel, mode.
        "  Ratio                            1m        2        $0.0374    ",
        "    $0.2000    $0.8760    $0.2374  sentinel   1 alarm, 2 metrics\n",
        "  Hourly                           1h        1        $0.0073    ",
        "    $0.1000    $0.0073    $0.1073  polling    1 alarm, 1 metric\n",
        "    $0.9000    $0.8760    $0.1374  sentinel   2 alarms, 4 metrics + 1 composite\n",
        "Sentinels: auto (the config's `sentinels:`; sweep every 25m, 2 hour(s) hot a month): 3 rule(s)",
        "  firebell-sentinel-slo.Api (2 metric(s), covers Api:page:1h, Api:page:6h): polling $1.75, \
         sentinel $0.2749 (alarm $0.2000, sweeps $0.0701, hot $0.0048), CloudWatch alarms $1.80\n",
        "  polled: Hourly: polling is cheaper ($0.007 against $0.107 a month)\n",
        "  polled: Api:ticket:3d: an SLO alert on a coarser grid than its SLI",
        "sentinel alarms $0.4000, DescribeAlarms $0.4555)",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // As if off: every rule polled, and said so.
    let out = firebell(&["cost", "--config", path, "--sentinels", "off"]);
    let s = text(&out.stdout);
    assert!(
        s.contains("Sentinels: off (--sentinels): every rule is polled every interval."),
        "{s}"
    );
    assert!(!s.contains("  sentinel   "), "{s}");
    assert!(!s.contains(", DescribeAlarms $"), "{s}");
    // The assumptions are flags.
    let out = firebell(&[
        "cost",
        "--config",
        path,
        "--sweep",
        "30m",
        "--hot-hours",
        "10",
    ]);
    let s = text(&out.stdout);
    // 2 metrics: 1,460 sweeps and 600 hot minutes.
    assert!(
        s.contains("  Ratio                            1m        2        $0.0412    "),
        "{s}"
    );
    assert!(s.contains("sweep every 30m, 10 hour(s) hot a month"), "{s}");
    for bad in [
        &["--sweep", "90s"][..],
        &["--sweep", "2d"],
        &["--hot-hours", "-1"],
        &["--sentinels", "on"],
    ] {
        let mut args = vec!["cost", "--config", path];
        args.extend_from_slice(bad);
        assert_eq!(firebell(&args).status.code(), Some(2), "{bad:?}");
    }
}

/// A Metrics Insights query's metrics analyzed are an assumption
/// (`--insights-analyzed`), not its LIMIT, and the text says so.
#[test]
fn cost_of_a_metrics_insights_rule_states_its_assumption() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules:\n  - name: HotInstance\n    metrics:\n      cpu: {query: 'SELECT MAX(CPUUtilization) FROM \"AWS/EC2\" GROUP BY InstanceId LIMIT 20'}\n    expression: cpu\n    condition: {op: \">\", threshold: 90}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("routing.yaml"),
        "receivers:\n  ops: {topics: [\"arn:aws:sns:us-east-1:123456789012:ops\"]}\nroute: {receiver: ops}\n",
    )
    .expect("write");
    let d = dir.path().display().to_string();
    let line = |out: &std::process::Output| -> String {
        text(&out.stdout)
            .lines()
            .find(|l| l.contains("Metrics Insights:"))
            .unwrap_or_default()
            .to_string()
    };
    let out = firebell(&["cost", "--config", &d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        line(&out),
        "  Metrics Insights: 26,280,000 metrics analyzed a month by SELECT MAX(CPUUtilization) FROM \"AWS/EC2\" GROUP BY InstanceId LIMIT 20 (assumed 500 metrics analyzed a fetch, --insights-analyzed: every metric the query matches is billed, its LIMIT caps only the 20 series returned; 52,560 fetches and discoveries)"
    );
    let out = firebell(&["cost", "--config", &d, "--insights-analyzed", "2000"]);
    assert!(
        line(&out).contains("assumed 2000 metrics analyzed a fetch"),
        "{}",
        line(&out)
    );
}
