#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell_engine::alerts::annotate`: the dispatcher's own routing,
//! silence and inhibition decisions, shown per alert; the listing order.

use std::collections::BTreeMap;

use firebell_core::alert::{Alert, AlertStatus, fingerprint};
use firebell_core::diag::Diagnostics;
use firebell_core::model::{Labels, Op, Unit};
use firebell_engine::Config;
use firebell_engine::alerts::{AlertState, Filter, annotate};
use firebell_notify::{Matcher, Silence};

const CONFIG: &str = r#"
receivers:
  ops: {topics: [arn:aws:sns:us-east-1:123456789012:ops], time_zone: Europe/Berlin}
  api: {topics: [arn:aws:sns:us-east-1:123456789012:api]}
route:
  receiver: ops
  group_by: [service]
  routes:
    - matchers: ['team="api"']
      receiver: api
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="ticket"']
    equal: [service]
silences:
  resolved_pass_through: true
"#;

fn config() -> Config {
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(
        &[("test.yaml".to_string(), CONFIG.to_string())],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    c
}

fn alert(name: &str, labels: &[(&str, &str)], status: AlertStatus, fired_at: i64) -> Alert {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("alertname".into(), name.into());
    Alert {
        fingerprint: fingerprint(&l),
        labels: l,
        annotations: BTreeMap::new(),
        status,
        active_since: fired_at - 60,
        fired_at,
        resolved_at: (status == AlertStatus::Resolved).then_some(fired_at + 300),
        value: Some(1.0),
        peak: None,
        op: Op::Gt,
        threshold: 0.5,
        unit: Unit::Count,
        recent: Vec::new(),
        expression: "x".into(),
        metrics: BTreeMap::new(),
    }
}

fn silence(matcher: &str) -> Silence {
    Silence {
        id: "abcd12345678".into(),
        matchers: Matcher::parse_list(matcher).unwrap(),
        starts_at: 0,
        ends_at: 10_000,
        created_by: "alice".into(),
        comment: "why".into(),
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn inhibition_silences_routes_and_order_are_the_dispatchers() {
    let page = alert(
        "ApiDown",
        &[("team", "api"), ("service", "api"), ("severity", "page")],
        AlertStatus::Firing,
        1000,
    );
    let ticket = alert(
        "ApiSlow",
        &[("team", "api"), ("service", "api"), ("severity", "ticket")],
        AlertStatus::Firing,
        900,
    );
    // Pending: the dispatcher does not see it yet; shown as it would be.
    let mut pending = alert(
        "ApiQueue",
        &[("team", "api"), ("service", "api"), ("severity", "ticket")],
        AlertStatus::Firing,
        0,
    );
    pending.active_since = 1100;
    let resolved = alert(
        "DbErrors",
        &[("team", "db"), ("service", "db")],
        AlertStatus::Resolved,
        500,
    );
    let silenced = alert(
        "DbSlow",
        &[("team", "db"), ("service", "db"), ("severity", "page")],
        AlertStatus::Firing,
        2000,
    );
    let cfg = config();
    let list = annotate(
        &cfg,
        vec![
            (resolved.clone(), AlertState::Resolved),
            (pending.clone(), AlertState::Pending),
            (ticket.clone(), AlertState::Firing),
            (silenced.clone(), AlertState::Firing),
            (page.clone(), AlertState::Firing),
        ],
        // Matches the resolved DbErrors too: it passes through
        // (`resolved_pass_through`), as in the dispatcher.
        &[silence(r#"team="db""#)],
        3000,
    );
    let names: Vec<(&str, AlertState)> = list.iter().map(|a| (a.alert.name(), a.state)).collect();
    assert_eq!(
        names,
        [
            ("ApiDown", AlertState::Firing),
            ("DbSlow", AlertState::Firing),
            ("ApiSlow", AlertState::Firing),
            ("ApiQueue", AlertState::Pending),
            ("DbErrors", AlertState::Resolved),
        ]
    );
    assert_eq!(list[0].since, 1000);
    assert_eq!(list[3].since, 1100, "pending since its first breach");
    assert_eq!(list[4].since, 800, "resolved since it resolved");

    assert_eq!(list[2].inhibited_by.as_ref().unwrap().rule, "ApiDown");
    assert_eq!(
        list[2].inhibited_by.as_ref().unwrap().fingerprint,
        page.fingerprint
    );
    assert_eq!(list[3].inhibited_by.as_ref().unwrap().rule, "ApiDown");
    assert!(list[0].inhibited_by.is_none());
    assert_eq!(list[1].silenced_by.as_ref().unwrap().id, "abcd12345678");
    assert_eq!(list[1].silenced_by.as_ref().unwrap().ends_at, 10_000);
    assert!(list[4].silenced_by.is_none(), "resolved: passes through");

    let api = &list[0].routes;
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].receiver, "api");
    assert_eq!(api[0].time_zone, "UTC");
    assert_eq!(api[0].route_path, "root/0");
    assert_eq!(
        api[0].group_labels,
        Labels::from([("service".to_string(), "api".to_string())])
    );
    assert_eq!(
        api[0].group_key,
        firebell_notify::group_key("api", "root/0", &api[0].group_labels)
    );
    assert_eq!(list[1].routes[0].receiver, "ops");
    assert_eq!(list[1].routes[0].time_zone, "Europe/Berlin");

    // Filters.
    let keep = |f: Filter| -> Vec<&str> {
        list.iter()
            .filter(|a| f.accepts(a))
            .map(|a| a.alert.name())
            .collect()
    };
    assert_eq!(
        keep(Filter {
            matchers: Matcher::parse_list(r#"service="db""#).unwrap(),
            ..Filter::default()
        }),
        ["DbSlow", "DbErrors"]
    );
    assert_eq!(
        keep(Filter {
            states: vec![AlertState::Pending, AlertState::Resolved],
            ..Filter::default()
        }),
        ["ApiQueue", "DbErrors"]
    );
    assert_eq!(
        keep(Filter {
            receiver: Some("ops".into()),
            ..Filter::default()
        }),
        ["DbSlow", "DbErrors"]
    );
}
