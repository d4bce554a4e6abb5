//! Alertmanager's routing config checks (its `config/config_test.go` and
//! the `days_of_month` cases of `timeinterval/timeinterval_test.go`), for
//! the features firebell has, ported to firebell's config shape: each
//! asserts firebell's exact error, with file, line and column. Also the
//! migration hints for Alertmanager's retired `match` / `match_re` forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, labels, load};
use firebell_notify::GroupBy;

fn errors(yaml: &str) -> Vec<String> {
    load(&[("am.yaml", yaml)]).1
}

/// `TestDefaultReceiverExists`.
#[test]
fn the_root_route_needs_a_receiver() {
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  group_wait: 30s\n"
        ),
        [
            r#"am.yaml:4:3: error: the root route must have a `receiver` (it receives every alert no other route takes)"#
        ]
    );
}

/// `TestReceiverNameIsUnique` (receivers are a mapping: a name twice in
/// one file is a YAML error; across files, this).
#[test]
fn receiver_names_are_unique() {
    let (_, diags) = load(&[
        (
            "a.yaml",
            "receivers:\n  team-X: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: team-X\n",
        ),
        (
            "b.yaml",
            "receivers:\n  team-X: {topics: [arn:aws:sns:us-east-1:123456789012:u]}\n",
        ),
    ]);
    assert_eq!(
        diags,
        [r#"b.yaml:2:3: error: duplicate receiver "team-X" (first defined at a.yaml:2:3)"#]
    );
}

/// `TestReceiverExists`, `TestReceiverExistsForDeepSubRoute`.
#[test]
fn receivers_must_exist_at_any_depth() {
    assert_eq!(
        errors(
            "receivers:\n  team-Y: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: team-X\n"
        ),
        [
            r#"am.yaml:4:13: error: receiver "team-X" is not defined in `receivers` (defined: team-Y); did you mean "team-Y"?"#
        ]
    );
    assert_eq!(
        errors(
            "receivers:\n  team-X: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: team-X\n  routes:\n    - matchers: [foo=bar]\n      routes:\n        - matchers: [foo=bar]\n          receiver: nonexistent\n"
        ),
        [
            r#"am.yaml:9:21: error: receiver "nonexistent" is not defined in `receivers` (defined: team-X)"#
        ]
    );
}

/// `TestReceiverHasName`: a receiver named "".
#[test]
fn receivers_have_names() {
    assert_eq!(
        errors(
            "receivers:\n  '': {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n"
        ),
        [
            r#"am.yaml:2:3: error: invalid receiver name "" (use 1 to 64 letters, digits, `_`, `.` or `-`)"#,
            r#"am.yaml:4:13: error: receiver "r" is not defined in `receivers` (no receivers are defined)"#
        ]
    );
}

/// `TestMuteTimeExists`, `TestActiveTimeExists`.
#[test]
fn time_intervals_must_exist() {
    for key in ["mute_time_intervals", "active_time_intervals"] {
        assert_eq!(
            errors(&format!(
                "receivers:\n  team-Y: {{topics: [arn:aws:sns:us-east-1:123456789012:t]}}\nroute:\n  receiver: team-Y\n  routes:\n    - matchers: [severity=critical]\n      {key}: [business_hours]\n"
            )),
            [format!(
                r#"am.yaml:7:{}: error: time interval "business_hours" is not defined in `time_intervals` (no time intervals are defined)"#,
                key.len() + 10
            )]
        );
    }
}

/// `TestTimeIntervalHasName`.
#[test]
fn time_intervals_have_names() {
    assert_eq!(
        errors(
            "time_intervals:\n  '':\n    - times: [{start_time: '09:00', end_time: '17:00'}]\nreceivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n"
        ),
        [r#"am.yaml:2:3: error: a time interval needs a name (found an empty one)"#]
    );
}

/// `TestMuteTimeNoDuplicates` (across files; in one file a YAML error).
#[test]
fn time_interval_names_are_unique() {
    let (_, diags) = load(&[
        (
            "a.yaml",
            "time_intervals:\n  duplicate:\n    - times: [{start_time: '09:00', end_time: '17:00'}]\nreceivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n",
        ),
        (
            "b.yaml",
            "time_intervals:\n  duplicate:\n    - times: [{start_time: '10:00', end_time: '14:00'}]\n",
        ),
    ]);
    assert_eq!(
        diags,
        [r#"b.yaml:2:3: error: duplicate time interval "duplicate" (first defined at a.yaml:2:3)"#]
    );
}

/// `TestGroupByHasNoDuplicatedLabels`.
#[test]
fn group_by_has_no_duplicate_labels() {
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  group_by: ['alertname', 'cluster', 'service', 'cluster']\n  routes:\n    - matchers: [a=b]\n      group_by: [x, x, x]\n"
        ),
        [
            r#"am.yaml:5:49: error: label "cluster" appears twice in `group_by`"#,
            r#"am.yaml:8:21: error: label "x" appears twice in `group_by`"#,
            r#"am.yaml:8:24: error: label "x" appears twice in `group_by`"#
        ]
    );
}

/// `TestWildcardGroupByWithOtherGroupByLabels`.
#[test]
fn group_by_every_label_stands_alone() {
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  group_by: ['alertname', 'cluster', '...']\n"
        ),
        [
            r#"am.yaml:5:13: error: `...` (group by every label) must be the only entry of `group_by`"#
        ]
    );
}

/// `TestGroupByInvalidLabel`.
#[test]
fn group_by_labels_are_label_names() {
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  group_by: ['-invalid-']\n"
        ),
        [
            r#"am.yaml:5:14: error: invalid label name "-invalid-" in `group_by` (expected letters, digits and `_`, or `...` for every label)"#
        ]
    );
}

/// `TestGroupByEmptyOverride`: a child's empty `group_by` replaces its
/// parent's (one group for the route); `TestGroupByAll`.
#[test]
fn group_by_empty_overrides_and_every_label() {
    let cfg = config(
        "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  group_by: ['alertname', 'cluster']\n  routes:\n    - matchers: [a=b]\n      group_by: []\n    - matchers: [a=c]\n      group_by: ['...']\n",
    );
    assert_eq!(
        cfg.route.group_by,
        GroupBy::Labels(vec!["alertname".to_string(), "cluster".to_string()])
    );
    assert_eq!(cfg.route.routes[0].group_by, GroupBy::Labels(Vec::new()));
    assert_eq!(cfg.route.routes[1].group_by, GroupBy::All);
    let l = labels(&[("a", "b"), ("alertname", "X")]);
    assert!(cfg.route.routes[0].group_by.group_labels(&l).is_empty());
}

/// `TestRootRouteExists`.
#[test]
fn a_route_is_required() {
    assert_eq!(
        errors("receivers:\n  team-X-mails: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\n"),
        [
            r#"am.yaml:2:3: error: no `route` is defined: notifications need a routing tree whose root names a receiver"#
        ]
    );
}

/// `TestRootRouteNoMuteTimes`, `TestRootRouteNoActiveTimes`.
#[test]
fn the_root_route_has_no_time_intervals() {
    for key in ["mute_time_intervals", "active_time_intervals"] {
        assert_eq!(
            errors(&format!(
                "time_intervals:\n  my_time:\n    - times: [{{start_time: '09:00', end_time: '17:00'}}]\nreceivers:\n  r: {{topics: [arn:aws:sns:us-east-1:123456789012:t]}}\nroute:\n  receiver: r\n  {key}: [my_time]\n"
            )),
            [format!(
                "am.yaml:8:{}: error: the root route cannot have `{key}`: it takes every alert no other route takes (set time intervals on child routes)",
                key.len() + 5
            )]
        );
    }
}

/// `TestRootRouteHasNoMatcher`: `matchers`, and the retired `match`.
#[test]
fn the_root_route_has_no_matchers() {
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  matchers:\n    - severity=critical\n"
        ),
        [r#"am.yaml:6:5: error: the root route cannot have `matchers`: it must match every alert"#]
    );
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  match:\n    severity: critical\n"
        ),
        [
            r#"am.yaml:5:3: error: `match` is Alertmanager's retired form of `matchers`, which firebell does not read: the root route must match every alert, so leave it out"#
        ]
    );
}

/// `TestContinueErrorInRouteRoot`.
#[test]
fn the_root_route_has_no_continue() {
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  continue: true\n"
        ),
        [
            r#"am.yaml:5:13: error: the root route cannot have `continue`: it has no sibling routes to continue to"#
        ]
    );
}

/// `TestGroupIntervalIsGreaterThanZero`, `TestRepeatIntervalIsGreaterThanZero`.
#[test]
fn intervals_are_longer_than_zero() {
    assert_eq!(
        errors(
            "receivers:\n  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}\nroute:\n  receiver: r\n  group_interval: 0s\n  repeat_interval: 0s\n"
        ),
        [
            r#"am.yaml:5:19: error: `group_interval` must be longer than 0, found "0s""#,
            r#"am.yaml:6:20: error: `repeat_interval` must be longer than 0, found "0s""#
        ]
    );
}

/// `days_of_month` ranges (`timeinterval_test.go`): out of range, from the
/// end to the start, and a range that holds on no day of any month.
#[test]
fn days_of_month_ranges() {
    let yaml = |range: &str| {
        format!(
            "time_intervals:\n  t:\n    - days_of_month: ['{range}']\nreceivers:\n  r: {{topics: [arn:aws:sns:us-east-1:123456789012:t]}}\nroute:\n  receiver: r\n"
        )
    };
    assert_eq!(
        errors(&yaml("0")),
        [
            r#"am.yaml:3:23: error: invalid day of month "0" (expected 1..31 or -31..-1, or a range such as "1:5")"#
        ]
    );
    assert_eq!(
        errors(&yaml("-50:-20")),
        [
            r#"am.yaml:3:23: error: invalid day of month "-50:-20" (expected 1..31 or -31..-1, or a range such as "1:5")"#
        ]
    );
    assert_eq!(
        errors(&yaml("1:50")),
        [
            r#"am.yaml:3:23: error: invalid day of month "1:50" (expected 1..31 or -31..-1, or a range such as "1:5")"#
        ]
    );
    assert_eq!(
        errors(&yaml("-15:5")),
        [
            r#"am.yaml:3:23: error: invalid day of month range "-15:5": a range cannot run from a day counted from the end to a day counted from the start"#
        ]
    );
    assert_eq!(
        errors(&yaml("10:-25")),
        [
            r#"am.yaml:3:23: error: invalid day of month range "10:-25": it holds on no day of any month (-25 is day 7 of a 31-day month, before day 10)"#
        ]
    );
    // Valid: every day; the last week; from the 1st to the 25th-last day
    // (the 4th to the 7th, by the month's length); the 20th to the last.
    for ok in ["1:-1", "-7:-1", "1:-25", "20:-1"] {
        assert_eq!(errors(&yaml(ok)), Vec::<String>::new(), "{ok}");
    }
}

/// Alertmanager's retired `match` / `match_re` on routes and
/// `source_match(_re)` / `target_match(_re)` on inhibit rules: an error
/// showing the `matchers` that say the same.
#[test]
fn retired_match_forms_show_their_matchers() {
    let yaml = r#"receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: r
  routes:
    - match: {service: api}
    - match:
        service: api
        team: "it's \"us\""
      match_re:
        service: 'web\.\d+|db'
      receiver: r
inhibit_rules:
  - source_match: {severity: critical}
    target_match_re: {severity: warning|info}
    equal: [cluster]
  - source_match_re: ["x"]
    source_matchers: [a=b]
    target_matchers: [c=d]
"#;
    assert_eq!(
        errors(yaml),
        [
            r#"am.yaml:6:7: error: `match` is Alertmanager's retired form of `matchers`, which firebell does not read: use `matchers: ['service="api"']`"#,
            r#"am.yaml:7:7: error: `match` is Alertmanager's retired form of `matchers`, which firebell does not read: use `matchers: ['service="api"', 'team="it''s \"us\""']`"#,
            r#"am.yaml:10:7: error: `match_re` is Alertmanager's retired form of `matchers`, which firebell does not read: use `matchers: ['service=~"web\\.\\d+|db"']`"#,
            r#"am.yaml:14:5: error: `source_match` is Alertmanager's retired form of `source_matchers`, which firebell does not read: use `source_matchers: ['severity="critical"']`"#,
            r#"am.yaml:15:5: error: `target_match_re` is Alertmanager's retired form of `target_matchers`, which firebell does not read: use `target_matchers: ['severity=~"warning|info"']`"#,
            r#"am.yaml:17:5: error: `source_match_re` is Alertmanager's retired form of `source_matchers`, which firebell does not read: use `source_matchers`, a list of matchers such as ['service="api"']"#
        ]
    );
    // The advice, taken, says the same as Alertmanager's retired forms.
    let cfg = config(
        r#"receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
  p: {topics: [arn:aws:sns:us-east-1:123456789012:p]}
route:
  receiver: r
  routes:
    - matchers: ['service="api"', 'team="it''s \"us\""', 'service=~"web\\.\\d+|db"']
      receiver: p
"#,
    );
    let m: Vec<String> = cfg.route.routes[0]
        .matchers
        .iter()
        .map(|m| format!("{:?}", (&m.name, &m.value)))
        .collect();
    assert_eq!(
        m,
        [
            r#"("service", "api")"#,
            r#"("team", "it's \"us\"")"#,
            r#"("service", "web\\.\\d+|db")"#
        ]
    );
}
