//! Issue 11, "one incident, one page": with the example config (grouped by
//! service and team, SLO pages muting the service's symptom pages, pages
//! muting tickets), a hard-down payments service trips the error-rate rule
//! and both SLO burn-rate pages, and payments-oncall is paged **once**: one
//! group, whose first notification pages; what follows for it is updates
//! (SNS attribute `update=true`: the other window joining, alerts
//! resolving), never a second page. Nobody else is told anything.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use firebell_core::series::{Epoch, Point};
use firebell_embedded::{ReplaySeries, ReplaySource};
use firebell_tools::backtest::{SimOptions, analyze, simulate};

const START: Epoch = 1_795_392_000; // 2026-11-23T00:00:00Z

fn series(metric: &str, value: impl Fn(i64) -> f64) -> ReplaySeries {
    ReplaySeries {
        namespace: "Shop".into(),
        metric: metric.into(),
        dimensions: [("Service".to_string(), "payments".to_string())].into(),
        stat: firebell_core::model::Stat::Sum,
        period: 60,
        account: None,
        region: None,
        query: None,
        points: (0..240)
            .map(|m| Point {
                t: START + 60 * m,
                v: value(m),
            })
            .collect(),
    }
}

#[test]
fn a_hard_down_service_pages_its_team_once() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let (config, diags) = firebell_engine::load(&examples).expect("examples load");
    assert!(!diags.has_errors(), "{diags}");
    let config = Arc::new(config);
    // Every payments request fails from minute 60 to minute 90.
    let source = ReplaySource::from_series([
        series("Requests", |_| 1000.0),
        series(
            "Errors",
            |m| if (60..90).contains(&m) { 1000.0 } else { 0.0 },
        ),
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let opts = SimOptions::new(START + 30 * 60, START + 240 * 60);
    let sim = rt
        .block_on(simulate(
            config.clone(),
            Arc::new(source),
            &opts,
            &mut |_| {},
        ))
        .unwrap();
    let report = analyze(&config, &sim);
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    // Several page-severity rules fired: the test is about something.
    let fired: BTreeSet<&str> = report
        .rules
        .iter()
        .filter(|r| r.fires > 0)
        .map(|r| r.rule.as_str())
        .collect();
    assert!(fired.contains("PaymentsHighErrorRate"), "{fired:?}");
    assert!(fired.contains("PaymentsAvailability:page:1h"), "{fired:?}");
    assert!(fired.contains("PaymentsAvailability:page:6h"), "{fired:?}");

    // Every notification goes to the payments team; the first one of the
    // incident pages, everything after it is an update of the same group
    // (SNS attribute `update=true`), and no update tells of a page-severity
    // rule that the page had not: the SLO pages and the symptom rule are
    // one incident.
    let receivers: Vec<&str> = report
        .notifications
        .iter()
        .map(|n| n.receiver.as_str())
        .collect();
    assert!(
        receivers.iter().all(|r| *r == "payments-oncall"),
        "{receivers:?}"
    );
    let groups: BTreeSet<&str> = report
        .notifications
        .iter()
        .map(|n| n.group_key.as_str())
        .collect();
    assert_eq!(groups.len(), 1, "one group: {groups:?}");
    let pages: Vec<&str> = report
        .notifications
        .iter()
        .filter(|n| n.wakes_someone())
        .map(|n| n.subject.as_str())
        .collect();
    assert_eq!(pages.len(), 1, "{pages:#?}");
    assert!(!report.notifications[0].update);
    assert!(report.notifications[1..].iter().all(|n| n.update));
    // The error-rate rule fired but was muted by the SLO page of its
    // service: never told.
    assert!(
        !report
            .notifications
            .iter()
            .any(|n| n.mentions("PaymentsHighErrorRate")),
        "{:#?}",
        report
            .notifications
            .iter()
            .map(|n| &n.subject)
            .collect::<Vec<_>>()
    );
    let subjects: Vec<&str> = report
        .notifications
        .iter()
        .map(|n| n.subject.as_str())
        .collect();
    // An update naming both SLO windows: a summary of the group.
    assert!(
        subjects
            .iter()
            .any(|s| s.starts_with("[FIRING:2] payments: ")),
        "{subjects:#?}"
    );
}
