//! Config decoding: the happy path, and every error with its exact message
//! and position.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cloned_ref_to_slice_refs
)]

mod common;

use std::time::Duration;

use common::{config, labels, load};
use firebell_notify::{GroupBy, SECTIONS, route};

const FULL: &str = r#"
receivers:
  default:
    topics: [arn:aws:sns:eu-west-1:123456789012:default.fifo]
  payments:
    topics:
      - arn:aws:sns:eu-west-1:123456789012:payments.fifo
      - arn:aws:sns:eu-west-1:123456789012:payments-chat.fifo
    time_zone: Europe/Berlin
    send_resolved: false
    message:
      chatbot: true
      subject_template: "{{ status }}: {{ group_labels.alertname }}"
      console_region: eu-west-1
  oncall:
    topics: [arn:aws:sns:us-east-1:123456789012:oncall]
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['team="payments"']
      receiver: payments
      group_by: [alertname, service]
      repeat_interval: 1h
      mute_time_intervals: [maintenance]
      routes:
        - matchers: ['severity=~"page|critical"']
          receiver: oncall
          continue: true
        - matchers: [env!~"dev.*"]
          group_by: ["..."]
    - matchers: [severity="page"]
      receiver: oncall
      active_time_intervals: [business]
time_intervals:
  maintenance:
    - weekdays: [sunday]
      times: [{start_time: "02:00", end_time: "04:00"}]
      location: Europe/Berlin
  business:
    - weekdays: ["monday:friday"]
      times: [{start_time: "09:00", end_time: "17:00"}]
      days_of_month: ["1:-1"]
      months: ["january:december"]
      location: America/New_York
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
silences:
  max_duration: 3d
  resolved_pass_through: false
routing_tests:
  - labels: {team: payments, severity: page}
    receivers: [oncall, payments]
  - labels: {team: search}
    receivers: [default]
"#;

#[test]
fn sections_are_the_owned_keys() {
    assert_eq!(
        SECTIONS,
        &[
            "receivers",
            "route",
            "inhibit_rules",
            "time_intervals",
            "silences",
            "routing_tests"
        ]
    );
}

#[test]
fn full_config_decodes_with_inheritance_and_defaults() {
    let cfg = config(FULL);
    let p = &cfg.receivers["payments"];
    assert_eq!(p.topics.len(), 2);
    assert_eq!(p.time_zone, "Europe/Berlin");
    assert!(!p.send_resolved);
    assert!(p.message.chatbot);
    assert_eq!(p.message.console_region.as_deref(), Some("eu-west-1"));
    let d = &cfg.receivers["default"];
    assert_eq!(d.time_zone, "UTC");
    assert!(d.send_resolved);

    let root = &cfg.route;
    assert_eq!(root.timing.group_wait, Duration::from_secs(10));
    assert_eq!(root.timing.group_interval, Duration::from_secs(300));
    assert_eq!(root.timing.repeat_interval, Duration::from_secs(4 * 3600));
    let pay = &root.routes[0];
    assert_eq!(pay.timing.group_wait, Duration::from_secs(10), "inherited");
    assert_eq!(pay.timing.repeat_interval, Duration::from_secs(3600));
    let dev = &pay.routes[1];
    assert_eq!(dev.receiver, "payments", "receiver inherited");
    assert_eq!(
        dev.timing.repeat_interval,
        Duration::from_secs(3600),
        "inherited"
    );
    assert_eq!(dev.group_by, GroupBy::All);
    assert!(
        dev.mute_time_intervals.is_empty(),
        "time intervals are not inherited"
    );

    assert_eq!(cfg.inhibit_rules[0].equal, vec!["cluster".to_string()]);
    assert_eq!(
        cfg.silence_policy.max_duration,
        Duration::from_secs(3 * 86_400)
    );
    assert!(!cfg.silence_policy.resolved_pass_through);
    assert_eq!(cfg.routing_tests.len(), 2);
    assert_eq!(
        cfg.time_intervals["business"].specs[0].location_name,
        "America/New_York"
    );

    let m = route(&cfg, &labels(&[("team", "payments"), ("env", "prod")]));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].path, "root/0/1");
}

#[test]
fn sections_may_be_spread_over_files() {
    let (cfg, diags) = load(&[
        (
            "a.yaml",
            "receivers:\n  default:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\n",
        ),
        (
            "b.yaml",
            "route:\n  receiver: team\n  routes:\n    - matchers: ['x=\"1\"']\n      receiver: default\n",
        ),
        (
            "c.yaml",
            "receivers:\n  team:\n    topics: [arn:aws:sns:us-east-1:123456789012:u]\n",
        ),
    ]);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(cfg.receivers.len(), 2);
}

#[test]
fn no_notification_sections_is_an_empty_config() {
    let (cfg, diags) = load(&[]);
    assert!(diags.is_empty());
    assert!(cfg.is_empty());
}

/// Every kind of mistake, all reported in one run.
#[test]
fn every_error_is_reported_with_its_position() {
    let yaml = r#"receivers:
  default:
    topics: [arn:aws:sns:us-east-1:123456789012:t]
    time_zone: Europe/Berln
    send_resolvd: true
  "bad name":
    topics: [arn:aws:sns:us-east-1:123456789012:t]
  empty:
    topics: []
route:
  receiver: default
  group_interval: 0s
  routes:
    - matchers: ['team payments', 'severity=~"page|("']
      receiver: paymnts
      mute_time_intervals: [offhours]
      group_by: [alertname, "...", "1x"]
time_intervals:
  weekend:
    - weekdays: [funday, "friday:monday"]
      months: [smarch]
      days_of_month: ["0"]
      times: [{start_time: "25:00", end_time: "17:00"}, {start_time: "10:00", end_time: "09:00"}]
      location: Mars/Olympus
inhibit_rules:
  - source_matchers: []
    target_matchers: ['a="b"']
    equal: ["not-a-label"]
silences:
  max_duration: 0
routing_tests:
  - labels: {team: search}
    receivers: [default, oncall]
"#;
    let (_, diags) = load(&[("notify.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            r#"notify.yaml:4:16: error: unknown time zone "Europe/Berln" for `time_zone` (expected an IANA name such as "Europe/Berlin" or "UTC")"#,
            r#"notify.yaml:5:5: error: unknown field `send_resolvd` in receiver "default" (expected one of: message, send_resolved, time_zone, topics, working_hours); did you mean `send_resolved`?"#,
            r#"notify.yaml:6:3: error: invalid receiver name "bad name" (use 1 to 64 letters, digits, `_`, `.` or `-`)"#,
            r#"notify.yaml:9:13: error: receiver "empty" needs at least one topic"#,
            r#"notify.yaml:12:19: error: `group_interval` must be longer than 0, found "0s""#,
            r#"notify.yaml:14:18: error: invalid matcher "team payments": expected an operator (=, !=, =~ or !~) at character 6, found "payments""#,
            r#"notify.yaml:14:35: error: invalid matcher "severity=~\"page|(\"": bad regular expression: unclosed group"#,
            r#"notify.yaml:15:17: error: receiver "paymnts" is not defined in `receivers` (defined: default, empty)"#,
            r#"notify.yaml:16:29: error: time interval "offhours" is not defined in `time_intervals` (defined: weekend)"#,
            r#"notify.yaml:17:17: error: `...` (group by every label) must be the only entry of `group_by`"#,
            r#"notify.yaml:20:18: error: invalid weekday "funday" (expected monday..sunday, or a range such as "monday:friday")"#,
            r#"notify.yaml:20:26: error: invalid weekday range "friday:monday": the start is after the end"#,
            r#"notify.yaml:21:16: error: invalid month "smarch" (expected january..december or 1..12, or a range such as "january:march")"#,
            r#"notify.yaml:22:23: error: invalid day of month "0" (expected 1..31 or -31..-1, or a range such as "1:5")"#,
            r#"notify.yaml:23:28: error: invalid time of day "25:00" for `start_time` (expected HH:MM between 00:00 and 24:00)"#,
            r#"notify.yaml:23:58: error: `start_time` must be before `end_time`"#,
            r#"notify.yaml:24:17: error: unknown time zone "Mars/Olympus" for `location` (expected an IANA name such as "Europe/Berlin" or "UTC")"#,
            r#"notify.yaml:26:22: error: `source_matchers` needs at least one matcher"#,
            r#"notify.yaml:28:13: error: invalid label name "not-a-label" in `equal` (expected letters, digits and `_`, not starting with a digit)"#,
            r#"notify.yaml:30:17: error: `max_duration` must be longer than 0, found "0""#,
            r#"notify.yaml:33:26: error: receiver "oncall" is not defined in `receivers` (defined: default, empty)"#,
        ]
    );
}

#[test]
fn root_route_rules() {
    let yaml = "receivers:\n  r:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\nroute:\n  matchers: ['a=\"b\"']\n  routes:\n    - receiver: r\n      groop_by: [x]\n";
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            "n.yaml:5:3: error: the root route must have a `receiver` (it receives every alert no other route takes)",
            "n.yaml:5:13: error: the root route cannot have `matchers`: it must match every alert",
            "n.yaml:8:7: error: unknown field `groop_by` in route root/0 (expected one of: active_time_intervals, continue, group_by, group_interval, group_wait, matchers, mute_time_intervals, receiver, repeat_interval, routes); did you mean `group_by`?",
        ]
    );
}

#[test]
fn duplicates_across_files() {
    let (_, diags) = load(&[
        (
            "a.yaml",
            "receivers:\n  r:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\ntime_intervals:\n  nights:\n    - times: [{start_time: \"00:00\", end_time: \"06:00\"}]\nroute:\n  receiver: r\nsilences:\n  max_duration: 1d\n",
        ),
        (
            "b.yaml",
            "receivers:\n  r:\n    topics: [arn:aws:sns:us-east-1:123456789012:u]\ntime_intervals:\n  nights:\n    - weekdays: [monday]\nroute:\n  receiver: r\nsilences:\n  max_duration: 2d\n",
        ),
    ]);
    assert_eq!(
        diags,
        vec![
            "b.yaml:2:3: error: duplicate receiver \"r\" (first defined at a.yaml:2:3)",
            "b.yaml:5:3: error: duplicate time interval \"nights\" (first defined at a.yaml:5:3)",
            "b.yaml:8:3: error: `route` is already defined at a.yaml:8:3; only one file may define the routing tree",
            "b.yaml:10:3: error: `silences` is already defined at a.yaml:10:3",
        ]
    );
}

#[test]
fn missing_route_and_bad_templates() {
    let yaml = "receivers:\n  r:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\n    message:\n      body_template: \"{% if x %}\"\n      console_region: moon\n      colour: red\n";
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            "n.yaml:2:3: error: no `route` is defined: notifications need a routing tree whose root names a receiver",
            "n.yaml:5:22: error: invalid template in `body_template`: unexpected end of input, expected end of block (line 1 of the template)",
            "n.yaml:6:23: error: invalid AWS region \"moon\" for `console_region` (expected a region such as \"eu-west-1\")",
            "n.yaml:7:7: error: unknown field `colour` in `message` (expected one of: body_template, chatbot, console_region, subject_template)",
        ]
    );
}

#[test]
fn wrong_shapes() {
    let yaml = "receivers: [a]\ntime_intervals: x\nroute:\n  receiver: r\n  group_wait: soon\n  routes:\n    - continue: maybe\ninhibit_rules:\n  - target_matchers: x\n";
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            "n.yaml:1:12: error: `receivers` must be a mapping of receiver name to settings, found a list",
            "n.yaml:2:17: error: `time_intervals` must be a mapping of interval name to a list of times, found \"x\"",
            "n.yaml:4:13: error: receiver \"r\" is not defined in `receivers` (no receivers are defined)",
            "n.yaml:5:15: error: invalid duration \"soon\" for `group_wait` (expected a duration such as 30s, 5m, 1h or 1h30m)",
            "n.yaml:7:17: error: `continue` must be true or false, found \"maybe\"",
            "n.yaml:9:5: error: inhibit rule is missing required field `source_matchers`",
            "n.yaml:9:22: error: `target_matchers` must be a list, found \"x\"",
        ]
    );
}

#[test]
fn routing_tests_report_expected_and_actual_receivers() {
    let yaml = r#"receivers:
  default: {topics: [arn:aws:sns:us-east-1:123456789012:d]}
  payments: {topics: [arn:aws:sns:us-east-1:123456789012:p]}
  oncall: {topics: [arn:aws:sns:us-east-1:123456789012:o]}
route:
  receiver: default
  routes:
    - matchers: ['team="payments"']
      receiver: payments
    - matchers: ['severity="page"']
      receiver: oncall
routing_tests:
  - labels: {team: payments, severity: page}
    receivers: [payments, oncall]
  - labels: {team: payments}
    receivers: [payments]
  - labels: {severity: page}
    receivers: [oncall]
  - labels: {team: search, severity: page}
    receivers: [payment]
"#;
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            r#"n.yaml:13:5: error: routing test failed for {severity="page", team="payments"}: expected receivers [payments, oncall] but got [payments] (matched payments via root/0 (root > {team="payments"}))"#,
            r#"n.yaml:20:17: error: receiver "payment" is not defined in `receivers` (defined: default, oncall, payments); did you mean "payments"?"#,
        ]
    );
    // With `continue` on the first child, both receivers are reached.
    let fixed = yaml.replace(
        "      receiver: payments\n",
        "      receiver: payments\n      continue: true\n",
    );
    let fixed = fixed.replace("receivers: [payment]", "receivers: [oncall]");
    let (_, diags) = load(&[("n.yaml", &fixed)]);
    assert!(diags.is_empty(), "{diags:#?}");
}

/// Receiver templates are trial-rendered over a sample group at load: a
/// template that compiles but cannot render is an error at its position,
/// with the Alertmanager hint where it applies.
#[test]
fn receiver_templates_that_cannot_render_are_errors() {
    let yaml = "receivers:\n  r:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\n    message:\n      subject_template: \"{{ alerts[0].labels.nope.upper }}\"\n      body_template: \"{{ '%2000000000s' | format('x') }}\"\nroute:\n  receiver: r\n";
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            "n.yaml:5:25: error: template in `subject_template` fails: undefined value (line 1 of the template), rendering a sample group",
            "n.yaml:6:22: error: template in `body_template` fails: invalid operation: value too large: 2000000013 bytes (limit 262144 bytes) (line 1 of the template), rendering a sample group",
        ]
    );
    let yaml = "receivers:\n  r:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\n    message:\n      body_template: \"{{ range(3) | join(x.Labels) }}\"\nroute:\n  receiver: r\n";
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            "n.yaml:5:22: error: template in `body_template` fails: undefined value (line 1 of the template), rendering a sample group; firebell templates are Jinja (minijinja), not Go templates: write `{{ labels.name }}`, `{{ value }}`, `{% for a in alerts %}`, not `{{ .Labels.name }}`, `{{ .Value }}`, `{{ range .Alerts }}`",
        ]
    );
    // A template that renders is accepted.
    let yaml = "receivers:\n  r:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\n    message:\n      subject_template: \"{{ default_subject }} ({{ counts.firing }})\"\n      body_template: \"{% for a in firing %}{{ a.title }}{% endfor %}\"\nroute:\n  receiver: r\n";
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(diags, Vec::<String>::new());
}

/// An entry of `matchers`, `source_matchers` or `target_matchers` may hold
/// several matchers, as in Alertmanager; one holding none is an error.
#[test]
fn matcher_entries_may_hold_lists() {
    let yaml = r#"receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
  p: {topics: [arn:aws:sns:us-east-1:123456789012:p]}
route:
  receiver: r
  routes:
    - matchers: ['{team="payments", severity!="info"}', 'env=prod,region=~"eu-.*"']
      receiver: p
inhibit_rules:
  - source_matchers: ['{severity="page", team="payments"}']
    target_matchers: [severity=ticket]
"#;
    let cfg = config(yaml);
    let shown: Vec<String> = cfg.route.routes[0]
        .matchers
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            r#"team="payments""#,
            r#"severity!="info""#,
            r#"env="prod""#,
            r#"region=~"eu-.*""#
        ]
    );
    assert_eq!(cfg.inhibit_rules[0].source_matchers.len(), 2);
    let both = labels(&[("team", "payments"), ("env", "prod"), ("region", "eu-1")]);
    assert_eq!(route(&cfg, &both)[0].receiver, "p");
    let other_env = labels(&[("team", "payments"), ("env", "dev"), ("region", "eu-1")]);
    assert_eq!(route(&cfg, &other_env)[0].receiver, "r");

    let yaml = r#"receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: r
  routes:
    - matchers: ['{}', 'a="x\ty"']
inhibit_rules:
  - source_matchers: ['']
    target_matchers: ['foo=bar}']
"#;
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            r#"n.yaml:6:18: error: invalid matcher "{}": it holds no matcher"#,
            r#"n.yaml:6:24: error: invalid matcher "a=\"x\\ty\"": Alertmanager's two parsers read it differently (classic: {a="x\\ty"}; UTF-8: {a="x\ty"}), so firebell refuses to guess: double-quote the value and escape only \\, \" and \n in it"#,
            r#"n.yaml:8:23: error: invalid matcher "": it holds no matcher"#,
        ]
    );
}

#[test]
fn working_hours_name_a_time_interval() {
    let yaml = "receivers:\n  a:\n    topics: [arn:aws:sns:us-east-1:123456789012:t]\n    working_hours: office\n  b:\n    topics: [arn:aws:sns:us-east-1:123456789012:u]\n    working_hours: ofice\n    time_zone: Europe/Berlin\n  c:\n    topics: [arn:aws:sns:us-east-1:123456789012:v]\n    time_zone: America/New_York\ntime_intervals:\n  office:\n    - weekdays: ['monday:thursday']\n      times: [{start_time: \"08:00\", end_time: \"16:00\"}]\nroute:\n  receiver: a\n";
    let (_, diags) = load(&[("n.yaml", yaml)]);
    assert_eq!(
        diags,
        vec![
            r#"n.yaml:7:20: error: time interval "ofice" is not defined in `time_intervals` (defined: office); did you mean "office"?"#
        ]
    );
    let yaml = yaml.replace("ofice", "office");
    let (cfg, diags) = load(&[("n.yaml", &yaml)]);
    assert_eq!(diags, Vec::<String>::new());
    // 2026-11-26 is a Thursday, 2026-11-27 a Friday.
    let thu_0900_utc = 1_795_683_600;
    let fri_0900_utc = thu_0900_utc + 86_400;
    let a = cfg.working_hours("a");
    assert_eq!(a.name, "office");
    assert!(a.contains(thu_0900_utc));
    assert!(!a.contains(fri_0900_utc));
    // The default: 09:00-18:00 Monday to Friday in the receiver's zone.
    let c = cfg.working_hours("c");
    assert_eq!(c.name, "09:00-18:00 Monday-Friday America/New_York");
    assert!(!c.contains(fri_0900_utc)); // 04:00 in New York
    assert!(c.contains(fri_0900_utc + 5 * 3600)); // 09:00 EST
    assert!(!c.contains(fri_0900_utc + 14 * 3600)); // 18:00 EST
    assert_eq!(
        cfg.working_hours("nobody").name,
        "09:00-18:00 Monday-Friday UTC"
    );
}

#[test]
fn receiver_topics_must_be_sns_topic_arns() {
    let yaml = r#"receivers:
  ok:
    topics:
      - arn:aws:sns:eu-west-1:123456789012:payments-oncall
      - arn:aws:sns:us-gov-west-1:123456789012:ops_team.fifo
      - arn:aws-cn:sns:cn-north-1:123456789012:cn
  bad:
    topics:
      - payments-oncall
      - arn:aws:sqs:us-east-1:123456789012:queue
      - arn:aws:sns:us-east-1:1234:short
      - arn:aws:sns:useast1:123456789012:region
      - arn:aws:sns:us-east-1:123456789012:has space
      - arn:aws:sns:us-east-1:123456789012:*
      - arn:aws:sns:us-east-1:123456789012:.fifo
      - arn:azure:sns:us-east-1:123456789012:x
      - ""
route:
  receiver: ok
"#;
    let (cfg, errors) = load(&[("r.yaml", yaml)]);
    let want = "expected arn:aws:sns:<region>:<12-digit account>:<topic name>[.fifo]";
    assert_eq!(
        errors,
        vec![
            format!(
                "r.yaml:9:9: error: receiver \"bad\": topic \"payments-oncall\" is not an SNS topic ARN ({want})"
            ),
            format!(
                "r.yaml:10:9: error: receiver \"bad\": topic \"arn:aws:sqs:us-east-1:123456789012:queue\" is an ARN of service \"sqs\", not of an SNS topic ({want})"
            ),
            format!(
                "r.yaml:11:9: error: receiver \"bad\": topic \"arn:aws:sns:us-east-1:1234:short\" has account \"1234\", not 12 digits ({want})"
            ),
            format!(
                "r.yaml:12:9: error: receiver \"bad\": topic \"arn:aws:sns:useast1:123456789012:region\" has region \"useast1\", not a region such as us-east-1 ({want})"
            ),
            format!(
                "r.yaml:13:9: error: receiver \"bad\": topic \"arn:aws:sns:us-east-1:123456789012:has space\" has topic name \"has space\": a name holds only letters, digits, - and _ (FIFO: ending in .fifo) ({want})"
            ),
            format!(
                "r.yaml:14:9: error: receiver \"bad\": topic \"arn:aws:sns:us-east-1:123456789012:*\" has topic name \"*\": a name holds only letters, digits, - and _ (FIFO: ending in .fifo) ({want})"
            ),
            format!(
                "r.yaml:15:9: error: receiver \"bad\": topic \"arn:aws:sns:us-east-1:123456789012:.fifo\" has topic name \".fifo\": a name holds only letters, digits, - and _ (FIFO: ending in .fifo) ({want})"
            ),
            format!(
                "r.yaml:16:9: error: receiver \"bad\": topic \"arn:azure:sns:us-east-1:123456789012:x\" has partition \"azure\", not aws, aws-cn, aws-us-gov... ({want})"
            ),
            "r.yaml:17:9: error: receiver \"bad\" has an empty topic".to_string(),
        ]
    );
    // Every topic, where it is written (for `validate --env`), and the
    // distinct topics (`firebell topics`).
    assert_eq!(cfg.topic_refs.len(), 12);
    assert_eq!(
        (
            cfg.topic_refs[0].receiver.as_str(),
            cfg.topic_refs[0].origin.line
        ),
        ("ok", 4)
    );
}

#[test]
fn topics_lists_each_topic_once() {
    let yaml = r#"receivers:
  a: {topics: [arn:aws:sns:us-east-1:123456789012:b, arn:aws:sns:us-east-1:123456789012:a]}
  c: {topics: [arn:aws:sns:us-east-1:123456789012:a]}
route:
  receiver: a
"#;
    let (cfg, errors) = load(&[("r.yaml", yaml)]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        cfg.topics(),
        vec![
            "arn:aws:sns:us-east-1:123456789012:a",
            "arn:aws:sns:us-east-1:123456789012:b"
        ]
    );
}
