#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell alerts` on the embedded store: cycles run by `firebell run`
//! over a small replay (times relative to the wall clock, so a silence
//! added by `firebell silence add`, which starts now, is active), then
//! listed as of a fixed time after them.
//!
//! The fixture: ApiDown (page, firing), ApiSlow (ticket, firing, inhibited
//! by ApiDown), WebErrors (page, pending: `for: 10m`), DbErrors (no
//! severity, fired and resolved), BatchLag (ticket, firing, silenced).

mod common;
use common::{assert_schema, firebell, text};

use std::path::Path;

const CONFIG: &str = r#"
rules:
  - name: ApiDown
    metrics:
      errors: {namespace: T, metric: Errors, dimensions: {Service: api}, stat: Sum, period: 1m}
    expression: errors
    unit: count
    condition: {op: ">", threshold: 10}
    labels: {team: api, service: api, severity: page}
  - name: ApiSlow
    metrics:
      p99: {namespace: T, metric: Latency, dimensions: {Service: api}, stat: p99, period: 1m}
    expression: p99
    unit: ms
    condition: {op: ">", threshold: 500}
    labels: {team: api, service: api, severity: ticket}
  - name: WebErrors
    metrics:
      errors: {namespace: T, metric: Errors, dimensions: {Service: web}, stat: Sum, period: 1m}
    expression: errors
    unit: count
    condition: {op: ">", threshold: 10}
    for: 10m
    labels: {team: web, service: web, severity: page}
  - name: DbErrors
    metrics:
      errors: {namespace: T, metric: Errors, dimensions: {Service: db}, stat: Sum, period: 1m}
    expression: errors
    unit: count
    condition: {op: ">", threshold: 10}
    labels: {team: db, service: db}
  - name: BatchLag
    metrics:
      lag: {namespace: T, metric: Lag, dimensions: {Service: batch}, stat: Maximum, period: 1m}
    expression: lag
    unit: seconds
    condition: {op: ">", threshold: 60}
    labels: {team: batch, service: batch, severity: ticket}
receivers:
  ops:
    topics: [arn:aws:sns:us-east-1:123456789012:ops]
    time_zone: America/New_York
  api-oncall:
    topics: [arn:aws:sns:us-east-1:123456789012:api]
    time_zone: Europe/Berlin
  web-oncall:
    topics: [arn:aws:sns:us-east-1:123456789012:web]
route:
  receiver: ops
  group_by: [service]
  group_wait: 0s
  routes:
    - matchers: ['team="api"']
      receiver: api-oncall
    - matchers: ['team="web"']
      receiver: web-oncall
      continue: true
    - matchers: ['severity="page"']
      receiver: ops
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="ticket"']
    equal: [service]
"#;

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t).unwrap().to_string()
}

/// `t` as `firebell alerts` shows it in `zone`.
fn local(t: i64, zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    jiff::Timestamp::from_second(t)
        .unwrap()
        .to_zoned_datetime(tz)
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Twelve minutes of data from `base`: see the module documentation.
fn replay(base: i64) -> String {
    let series = |metric: &str, service: &str, stat: &str, f: &dyn Fn(i64) -> i64| {
        let points: Vec<String> = (0..12)
            .map(|i| format!("[{},{}]", base + 60 * i, f(i)))
            .collect();
        format!(
            r#"{{"namespace":"T","metric":"{metric}","dimensions":{{"Service":"{service}"}},"stat":"{stat}","period":60,"points":[{}]}}"#,
            points.join(",")
        )
    };
    [
        series("Errors", "api", "Sum", &|i| if i >= 2 { 50 } else { 0 }),
        series("Latency", "api", "p99", &|i| if i >= 3 { 900 } else { 100 }),
        series("Errors", "web", "Sum", &|i| if i >= 7 { 50 } else { 0 }),
        series("Errors", "db", "Sum", &|i| {
            if i == 2 || i == 3 { 50 } else { 0 }
        }),
        series("Lag", "batch", "Maximum", &|i| if i >= 1 { 100 } else { 0 }),
    ]
    .join("\n")
}

/// The fixture: config, store after the cycles and a silence of
/// `team="batch"`; returns (base, the time to list at, silence id, its end).
struct Fixture {
    dir: tempfile::TempDir,
    base: i64,
    at: String,
    silence_id: String,
    silence_ends: i64,
}

impl Fixture {
    fn config(&self) -> String {
        self.dir.path().join("config").display().to_string()
    }
    fn state(&self) -> String {
        self.dir.path().join("state").display().to_string()
    }
    fn alerts(&self, extra: &[&str]) -> (String, String, bool) {
        let config = self.config();
        let state = self.state();
        let mut args = vec![
            "alerts", "--config", &config, "--state", &state, "--at", &self.at,
        ];
        args.extend_from_slice(extra);
        let out = firebell(&args);
        (text(&out.stdout), text(&out.stderr), out.status.success())
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().as_second();
    let base = now.div_euclid(60) * 60 - 12 * 60;
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/rules.yaml"), CONFIG).unwrap();
    let replay_path = dir.path().join("replay.jsonl");
    std::fs::write(&replay_path, replay(base)).unwrap();
    let config = dir.path().join("config").display().to_string();
    let state = dir.path().join("state").display().to_string();
    let out = firebell(&[
        "run",
        "--config",
        &config,
        "--replay",
        &replay_path.display().to_string(),
        "--state",
        &state,
        "--at",
        &rfc3339(base),
        "--until",
        &rfc3339(base + 12 * 60),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = firebell(&[
        "silence",
        "add",
        "--config",
        &config,
        "--state",
        &state,
        "-m",
        r#"team="batch""#,
        "--duration",
        "2h",
        "--created-by",
        "alice",
        "--comment",
        "batch migration",
    ]);
    let added = text(&out.stdout);
    assert!(out.status.success(), "{added}{}", text(&out.stderr));
    // `silence <id> added: team="batch" until <RFC 3339>`
    let silence_id = added.split_whitespace().nth(1).unwrap().to_string();
    let ends: jiff::Timestamp = added.trim().rsplit(' ').next().unwrap().parse().unwrap();
    Fixture {
        dir,
        base,
        // Three minutes after the last cycle: the silence (added now) is active.
        at: rfc3339(base + 15 * 60),
        silence_id,
        silence_ends: ends.as_second(),
    }
}

#[test]
fn alerts_lists_every_active_alert_with_routes_groups_silences_and_inhibition() {
    let f = fixture();
    let b = f.base;
    let (stdout, stderr, ok) = f.alerts(&[]);
    assert!(ok, "{stderr}");
    // Pages first (oldest first), then tickets, then the rest; times are
    // the datapoints' (an alert fires at its first breaching datapoint).
    let expected = format!(
        r#"firing   ApiDown {{service="api", severity="page", team="api"}}
  value 50 (threshold > 10), firing since {api_down} (for 13m)
  -> api-oncall via root/0, group {{service="api"}} (api-oncall:7168c64f1187f8fb)

pending  WebErrors {{service="web", severity="page", team="web"}}
  value 50 (threshold > 10), pending since {web} (for 8m)
  -> web-oncall via root/1, group {{service="web"}} (web-oncall:794b5c13508de197)
  -> ops via root/2, group {{service="web"}} (ops:7ef51e2cb4316172)

firing   BatchLag {{service="batch", severity="ticket", team="batch"}}
  value 100s (threshold > 60s), firing since {batch} (for 14m)
  -> ops via root, group {{service="batch"}} (ops:af79048ce121536e)
  silenced by {id} (alice, until {ends}): batch migration

firing   ApiSlow {{service="api", severity="ticket", team="api"}}
  value 900ms (threshold > 500ms), firing since {api_slow} (for 12m)
  -> api-oncall via root/0, group {{service="api"}} (api-oncall:7168c64f1187f8fb)
  inhibited by ApiDown {{service="api", severity="page", team="api"}}

resolved DbErrors {{service="db", team="db"}}
  value 0 (threshold > 10), resolved at {db} (11m ago)
  -> ops via root, group {{service="db"}} (ops:46e73c0d19985ac7)

5 alerts
"#,
        api_down = local(b + 2 * 60, "Europe/Berlin"),
        web = local(b + 7 * 60, "UTC"),
        batch = local(b + 60, "America/New_York"),
        id = f.silence_id,
        ends = local(f.silence_ends, "America/New_York"),
        api_slow = local(b + 3 * 60, "Europe/Berlin"),
        db = local(b + 4 * 60, "America/New_York"),
    );
    assert_eq!(stdout, expected);
}

#[test]
fn alerts_filters_by_matchers_state_and_receiver() {
    let f = fixture();
    let names = |args: &[&str]| -> Vec<String> {
        let (stdout, stderr, ok) = f.alerts(args);
        assert!(ok, "{args:?}: {stderr}");
        stdout
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.is_empty() && !l.ends_with("alerts"))
            .filter(|l| !l.ends_with(" alert"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(names(&[r#"service="api""#]), ["ApiDown", "ApiSlow"]);
    assert_eq!(names(&["service=api", "severity=ticket"]), ["ApiSlow"]);
    assert_eq!(
        names(&[r#"{team=~"api|web", severity!="ticket"}"#]),
        ["ApiDown", "WebErrors"]
    );
    assert_eq!(names(&["alertname=~\"Db.*\""]), ["DbErrors"]);
    assert_eq!(names(&["--status", "pending"]), ["WebErrors"]);
    assert_eq!(
        names(&["--status", "resolved,pending"]),
        ["WebErrors", "DbErrors"]
    );
    assert_eq!(
        names(&["--status", "firing"]),
        ["ApiDown", "BatchLag", "ApiSlow"]
    );
    assert_eq!(names(&["--receiver", "web-oncall"]), ["WebErrors"]);
    assert_eq!(
        names(&["--receiver", "ops"]),
        ["WebErrors", "BatchLag", "DbErrors"]
    );
    let (stdout, _, ok) = f.alerts(&["team=nobody"]);
    assert!(ok);
    assert_eq!(stdout, "no active alerts\n");

    let (_, stderr, ok) = f.alerts(&["team"]);
    assert!(!ok);
    assert_eq!(
        stderr,
        "error: invalid matcher \"team\": expected an operator (=, !=, =~ or !~) at the end\n"
    );
    let (_, stderr, ok) = f.alerts(&["--receiver", "nobody"]);
    assert!(!ok);
    assert!(
        stderr.contains("--receiver nobody: no such receiver")
            && stderr.contains("api-oncall, ops, web-oncall"),
        "{stderr}"
    );
}

#[test]
fn alerts_json_follows_the_schema() {
    let f = fixture();
    let (stdout, stderr, ok) = f.alerts(&["-o", "json"]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let list = doc.as_array().unwrap();
    assert_eq!(list.len(), 5);
    for a in list {
        assert_schema("alert", a);
    }
    let rules: Vec<&str> = list.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        ["ApiDown", "WebErrors", "BatchLag", "ApiSlow", "DbErrors"]
    );
    let slow = &list[3];
    assert_eq!(slow["state"], "firing");
    assert_eq!(slow["inhibited_by"]["rule"], "ApiDown");
    assert_eq!(slow["inhibited_by"]["fingerprint"], list[0]["fingerprint"]);
    assert_eq!(slow["silenced_by"], serde_json::Value::Null);
    assert_eq!(slow["receivers"][0]["receiver"], "api-oncall");
    assert_eq!(slow["receivers"][0]["time_zone"], "Europe/Berlin");
    let batch = &list[2];
    assert_eq!(batch["silenced_by"]["id"], f.silence_id.as_str());
    assert_eq!(batch["silenced_by"]["created_by"], "alice");
    assert_eq!(batch["silenced_by"]["ends_at"], rfc3339(f.silence_ends));
    let web = &list[1];
    assert_eq!(web["state"], "pending");
    assert_eq!(web["fired_at"], serde_json::Value::Null);
    assert_eq!(web["since"], rfc3339(f.base + 7 * 60));
    assert_eq!(web["receivers"].as_array().unwrap().len(), 2);
    assert_eq!(list[4]["state"], "resolved");
    assert_eq!(list[4]["resolved_at"], rfc3339(f.base + 4 * 60));
    assert_eq!(list[0]["value"], 50.0);
    assert_eq!(list[0]["age_seconds"], 13 * 60);

    // A filter that keeps nothing is an empty array.
    let (stdout, _, ok) = f.alerts(&["-o", "json", "team=nobody"]);
    assert!(ok);
    assert_eq!(stdout.trim(), "[]");
}

#[test]
fn alerts_without_a_store_says_so_and_creates_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = firebell(&[
        "alerts",
        "--config",
        "examples",
        "--state",
        &missing.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "no state store at {}; run `firebell run` first or pass --state/--backend aws\n",
            missing.display()
        )
    );
    assert!(!missing.exists());
    // The default `.firebell/state` is relative to the working directory:
    // never created by reading.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_firebell"))
        .args(["alerts", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "no state store at .firebell/state; run `firebell run` first or pass --state/--backend aws\n"
    );
    assert!(!dir.path().join(".firebell").exists());
}

#[test]
fn alerts_refuses_aws_flags_on_the_embedded_backend() {
    let out = firebell(&["alerts", "--config", "examples", "--region", "eu-west-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: --region and --profile are for --backend aws (the embedded backend talks to no AWS service)\n"
    );
}
