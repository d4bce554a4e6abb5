//! A big incident: one group of 10,000 alerts is decided, stored and
//! delivered in one cycle (one message, "… and N more"), and so is its
//! resolution; no store item grows past what DynamoDB takes, and a store
//! that refuses an item as too large makes the dispatcher shrink it, never
//! fail every cycle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use common::{T0, World, alert, config, resolved};
use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::ports::{Expect, Item, Key, SNS_MAX_MESSAGE_BYTES, StateStore, StoreError};
use firebell_embedded::{MemoryNotifier, MemoryStore};
use firebell_notify::{
    GroupLog, OutboxRecord, PK_GROUP, PK_OUTBOX, deliver, dispatch, group_logs, render,
};

const CFG: &str = r#"
receivers:
  team: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
"#;

const N: usize = 10_000;

/// 10,000 alerts of one rule, each with a summary and an hour of datapoints.
fn incident() -> Vec<Alert> {
    (0..N)
        .map(|i| {
            let host = format!("host-{i:05}");
            let mut a = alert(
                &[
                    ("alertname", "DiskFull"),
                    ("team", "storage"),
                    ("host", &host),
                ],
                T0,
            );
            a.annotations = BTreeMap::from([(
                "summary".to_string(),
                format!("Disk of {host} is {{{{ value }}}} full; see the runbook"),
            )]);
            a.recent = (0..60).map(|m| (T0 - 60 * m, Some(97.5))).collect();
            a
        })
        .collect()
}

fn sizes(w: &World, pk: &str) -> Vec<usize> {
    w.items(pk).iter().map(|i| i.data.len()).collect()
}

#[tokio::test]
async fn ten_thousand_alerts_fire_and_resolve_in_one_notification_each() {
    let w = World::new(config(CFG));
    let alerts = incident();
    let r = dispatch(&w.cfg, w.store.as_ref(), T0, &alerts)
        .await
        .expect("dispatch of a big group");
    assert_eq!(r.enqueued, 1);
    let n = &r.notifications[0];
    assert_eq!(n.firing_count(), N);
    assert!(n.firing.len() <= 1000, "listed {}", n.firing.len());
    assert_eq!(n.firing.len() + n.more_firing, N);
    for size in sizes(&w, PK_OUTBOX).into_iter().chain(sizes(&w, PK_GROUP)) {
        assert!(size < 350 * 1024, "an item of {size} bytes");
    }
    // The log remembers every alert as told (by fingerprint past a budget).
    let logs = group_logs(w.store.as_ref()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].notified.len(), N);

    let notifier = MemoryNotifier::new();
    let d = deliver(w.store.as_ref(), &notifier, &render, &w.cfg, T0)
        .await
        .unwrap();
    assert_eq!(d.notifications_sent, 1);
    assert_eq!(d.remaining, 0);
    let msgs = notifier.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert!(m.subject.starts_with("[FIRING:10000] "), "{}", m.subject);
    let body = &m.bodies["default"];
    assert!(
        body.contains(" more (") && body.contains("firing)"),
        "{body}"
    );
    assert!(serde_json::to_string(&m.bodies).unwrap().len() < SNS_MAX_MESSAGE_BYTES);

    // Nothing new a minute later: every alert counts as told.
    let r = dispatch(&w.cfg, w.store.as_ref(), T0 + 60, &alerts)
        .await
        .unwrap();
    assert_eq!(r.enqueued, 0);

    // All resolve: one RESOLVED notification counting them all.
    let done: Vec<Alert> = alerts.iter().map(|a| resolved(a, T0 + 240)).collect();
    let r = dispatch(&w.cfg, w.store.as_ref(), T0 + 300, &done)
        .await
        .unwrap();
    assert_eq!(r.enqueued, 1);
    let n = &r.notifications[0];
    assert_eq!(n.status, AlertStatus::Resolved);
    assert_eq!((n.firing_count(), n.resolved_count()), (0, N));
    for size in sizes(&w, PK_OUTBOX).into_iter().chain(sizes(&w, PK_GROUP)) {
        assert!(size < 350 * 1024, "an item of {size} bytes");
    }
    let d = deliver(w.store.as_ref(), &notifier, &render, &w.cfg, T0 + 300)
        .await
        .unwrap();
    assert_eq!(d.notifications_sent, 1);
    let msgs = notifier.messages();
    assert_eq!(msgs.len(), 2);
    assert!(
        msgs[1].subject.starts_with("[RESOLVED:10000] "),
        "{}",
        msgs[1].subject
    );
    // Told once: nothing more while they stay resolved.
    let r = dispatch(&w.cfg, w.store.as_ref(), T0 + 900, &done)
        .await
        .unwrap();
    assert_eq!(r.enqueued, 0);
}

/// A store that counts items stricter than the dispatcher does: anything
/// over `limit` bytes of data is `TooLarge`.
struct Stingy {
    inner: MemoryStore,
    limit: usize,
}

#[async_trait]
impl StateStore for Stingy {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        if item.data.len() > self.limit {
            return Err(StoreError::TooLarge {
                pk: item.pk,
                sk: item.sk,
                bytes: item.data.len(),
                limit: self.limit,
            });
        }
        self.inner.put(item, expect).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.inner.query(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.inner.delete(key, expect).await
    }
}

#[tokio::test]
async fn a_store_refusing_an_item_as_too_large_gets_a_smaller_one() {
    let cfg = config(CFG);
    let clock = Arc::new(firebell_embedded::ManualClock::at_epoch(T0));
    let store = Stingy {
        inner: MemoryStore::new(clock),
        limit: 60 * 1024,
    };
    let alerts: Vec<Alert> = incident().into_iter().take(2000).collect();
    let r = dispatch(&cfg, &store, T0, &alerts)
        .await
        .expect("shrinks instead of failing");
    assert_eq!(r.enqueued, 1);
    let n = &r.notifications[0];
    assert_eq!(n.firing_count(), 2000);
    assert!(n.firing.len() < 1000 && n.firing[0].recent.is_empty());
    let outbox = store.query(PK_OUTBOX, "").await.unwrap();
    let rec: OutboxRecord = serde_json::from_str(&outbox[0].data).unwrap();
    assert_eq!(rec.notification.firing_count(), 2000);
    let log = store.query(PK_GROUP, "").await.unwrap();
    assert!(log[0].data.len() <= 60 * 1024);
    let stored: GroupLog = serde_json::from_str(&log[0].data).unwrap();
    assert!(stored.notified.is_empty(), "fingerprints only");
    assert_eq!(stored.notified_refs.len(), 2000 * 16);
    // The next cycle sends nothing new: the squeezed log still knows them.
    let r = dispatch(&cfg, &store, T0 + 60, &alerts).await.unwrap();
    assert_eq!(r.enqueued, 0);
}
