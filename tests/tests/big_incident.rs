//! A big incident is delivered: one group of 10,000 firing alerts goes out
//! as one notification (under SNS's limits, listing what fits and counting
//! the rest: "… and N more"), and its resolution too, each in one engine
//! cycle (plan, judge, persist 20,000 items, dispatch, deliver) through the
//! real DynamoDB store and SNS notifier against the emulator: no store item
//! over DynamoDB's 400 KB, nothing failing every cycle.
//!
//! The scenario is `big/mod.rs`; `benches/big_incident.rs` runs it in a
//! release build and prints the wall time and peak memory of each cycle
//! (the Lambda's timeout is 50 s). This test prints its own wall times too,
//! but asserts none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod big;

use std::sync::atomic::Ordering;
use std::time::Instant;

use firebell_core::ports::{SNS_MAX_MESSAGE_BYTES, StateStore};
use firebell_engine::CycleReport;
use firebell_notify::{PK_GROUP, PK_OUTBOX};
use firebell_tests::aws;

const N: usize = big::HOSTS;

async fn cycle(b: &big::Big, tick: i64, name: &str) -> CycleReport {
    b.clock.set_epoch(tick);
    let started = Instant::now();
    let r = b.engine.run_cycle(tick, &|| false).await.expect("cycle");
    eprintln!(
        "{name}: {} transitions, {} store writes, {} notifications in {:.1} s (debug build)",
        r.transitions.len(),
        r.store_writes,
        r.notifications_sent,
        started.elapsed().as_secs_f64()
    );
    let errors: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors, Vec::<String>::new(), "{name}");
    r
}

#[tokio::test]
async fn ten_thousand_alerts_fire_and_resolve_in_one_notification_each() {
    let aws = aws().await.expect("emulator");
    let b = big::setup(&aws).await.expect("setup");

    // Every host breaches: one cycle judges, persists and pages them all.
    let t0 = b.base + 60;
    let r = cycle(&b, t0, "fire").await;
    assert_eq!(r.instances_evaluated, N);
    assert_eq!(r.transitions.len(), N);
    assert_eq!(r.notifications_sent, 1);
    for pk in [PK_OUTBOX, PK_GROUP, "active"] {
        for item in b.dynamo.query(pk, "").await.unwrap() {
            assert!(
                item.data.len() < 350 * 1024,
                "{pk}: {} bytes",
                item.data.len()
            );
        }
    }
    let published = &r.delivered[0].messages;
    assert_eq!(published.len(), 1);
    let size = serde_json::to_string(&published[0].bodies).unwrap().len();
    assert!(size < SNS_MAX_MESSAGE_BYTES, "{size} bytes");
    let msgs = aws.drain(&b.queue).await.unwrap();
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
        published[0].bodies["default"].contains(&format!("… and {} more (", N - listed)),
        "{}",
        published[0].bodies["default"]
    );

    // A minute later, still firing: nothing new is written or sent.
    let r = cycle(&b, t0 + 60, "still firing").await;
    assert_eq!((r.transitions.len(), r.notifications_sent), (0, 0));
    assert!(aws.drain(&b.queue).await.unwrap().is_empty());

    // Every host recovers: one cycle resolves them all in one notification.
    b.source.breaching.store(false, Ordering::SeqCst);
    let r = cycle(&b, t0 + 120, "resolve").await;
    assert_eq!(r.transitions.len(), N);
    assert_eq!(r.notifications_sent, 1);
    let msgs = aws.drain(&b.queue).await.unwrap();
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
    let r = cycle(&b, t0 + 720, "later").await;
    assert_eq!(r.notifications_sent, 0);
    assert!(aws.drain(&b.queue).await.unwrap().is_empty());
}
