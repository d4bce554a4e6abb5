//! A big incident is delivered: one group of 10,000 firing alerts goes out
//! as one notification (under SNS's limits, listing what fits and counting
//! the rest: "… and N more"), and its resolution too, through the real
//! DynamoDB store and SNS notifier against the emulator: no store item over
//! DynamoDB's 400 KB, nothing failing every cycle.
//!
//! The whole engine cycle over 10,000 instances (each transition also
//! writes its alert record and state) is measured by
//! `benches/big_incident.rs`, with the scenario in `big/mod.rs`; against
//! the Python emulator it takes minutes, too slow for the suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use firebell_aws::{DynamoStore, SnsNotifier};
use firebell_core::alert::{Alert, AlertStatus, fingerprint};
use firebell_core::diag::Diagnostics;
use firebell_core::model::{Labels, Op, Unit};
use firebell_core::ports::{SNS_MAX_MESSAGE_BYTES, StateStore};
use firebell_embedded::ManualClock;
use firebell_notify::{PK_GROUP, PK_OUTBOX, deliver, dispatch, render};
use firebell_tests::{aws, minute_now};

const N: usize = 10_000;

fn alert(i: usize, at: i64) -> Alert {
    let labels: Labels = [
        ("alertname", "DiskFull".to_string()),
        ("team", "storage".to_string()),
        ("severity", "page".to_string()),
        ("Host", format!("host-{i:05}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: BTreeMap::from([
            (
                "title".to_string(),
                "Disk full on {{ labels.Host }}".to_string(),
            ),
            (
                "summary".to_string(),
                "The disk of {{ labels.Host }} is {{ value }} full; clean it up.".to_string(),
            ),
        ]),
        status: AlertStatus::Firing,
        active_since: at - 60,
        fired_at: at,
        resolved_at: None,
        value: Some(97.0),
        peak: Some(97.0),
        op: Op::Gt,
        threshold: 90.0,
        unit: Unit::Percent,
        recent: (0..60).map(|m| (at - 60 * m, Some(97.0))).collect(),
        expression: "used".to_string(),
        metrics: BTreeMap::new(),
    }
}

#[tokio::test]
async fn ten_thousand_alerts_fire_and_resolve_in_one_notification_each() {
    let aws = aws().await.expect("emulator");
    let table = aws.table().await.unwrap();
    let topic = aws.topic(false).await.unwrap();
    let queue = aws.subscribed_queue(&topic).await.unwrap();
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[(
            "big.yaml".to_string(),
            format!(
                "receivers:\n  storage: {{topics: [\"{topic}\"], send_resolved: true}}\nroute:\n  receiver: storage\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1m\n"
            ),
        )],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    let cfg = &config.notify;
    let t0 = minute_now() - 30 * 60;
    let clock = Arc::new(ManualClock::at_epoch(t0));
    let store = DynamoStore::new(aws.dynamodb.clone(), table, clock.clone());
    let sns = SnsNotifier::new(aws.sns.clone());
    let alerts: Vec<Alert> = (0..N).map(|i| alert(i, t0)).collect();

    let r = dispatch(cfg, &store, t0, &alerts).await.expect("dispatch");
    assert_eq!(r.enqueued, 1);
    assert_eq!(r.notifications[0].firing_count(), N);
    for pk in [PK_OUTBOX, PK_GROUP] {
        for item in store.query(pk, "").await.unwrap() {
            assert!(
                item.data.len() < 350 * 1024,
                "{pk}: {} bytes",
                item.data.len()
            );
        }
    }
    let d = deliver(&store, &sns, &render, cfg, t0)
        .await
        .expect("deliver");
    assert_eq!((d.notifications_sent, d.remaining), (1, 0));
    let size = serde_json::to_string(&d.published()[0].bodies)
        .unwrap()
        .len();
    assert!(size < SNS_MAX_MESSAGE_BYTES, "{size} bytes");
    let msgs = aws.drain(&queue).await.unwrap();
    assert_eq!(msgs.len(), 1, "one notification");
    let m = &msgs[0];
    assert_eq!(m.status(), "firing");
    assert_eq!(m.payload["counts"]["firing"], N);
    let listed = m.alerts().len();
    assert!(listed > 0 && listed < N, "listed {listed}");
    assert_eq!(m.payload["counts"]["omitted"], N - listed);
    assert!(
        m.subject.as_deref().unwrap().starts_with("[FIRING:10000] "),
        "{:?}",
        m.subject
    );
    assert!(
        d.published()[0].bodies["default"].contains(&format!("… and {} more (", N - listed)),
        "{}",
        d.published()[0].bodies["default"]
    );

    // A minute later, still firing: nothing new.
    clock.set_epoch(t0 + 60);
    let r = dispatch(cfg, &store, t0 + 60, &alerts).await.unwrap();
    assert_eq!(r.enqueued, 0);

    // All resolve: one RESOLVED notification.
    let t1 = t0 + 120;
    clock.set_epoch(t1);
    let done: Vec<Alert> = alerts
        .iter()
        .map(|a| Alert {
            status: AlertStatus::Resolved,
            resolved_at: Some(t1),
            ..a.clone()
        })
        .collect();
    let r = dispatch(cfg, &store, t1, &done).await.unwrap();
    assert_eq!(r.enqueued, 1);
    let d = deliver(&store, &sns, &render, cfg, t1).await.unwrap();
    assert_eq!((d.notifications_sent, d.remaining), (1, 0));
    let msgs = aws.drain(&queue).await.unwrap();
    assert_eq!(msgs.len(), 1, "one notification");
    assert_eq!((msgs[0].status(), msgs[0].seq()), ("resolved", 2));
    assert_eq!(msgs[0].payload["counts"]["resolved"], N);
    assert!(
        msgs[0]
            .subject
            .as_deref()
            .unwrap()
            .starts_with("[RESOLVED:10000] "),
        "{:?}",
        msgs[0].subject
    );
    // Told once.
    clock.set_epoch(t1 + 600);
    let r = dispatch(cfg, &store, t1 + 600, &done).await.unwrap();
    assert_eq!(r.enqueued, 0);
}
