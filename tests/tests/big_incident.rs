//! A big incident is delivered: one group of 10,000 firing alerts goes out
//! in one cycle as one notification (under SNS's limits, listing what fits
//! and counting the rest), and its resolution too, with the real DynamoDB
//! store and SNS notifier against the emulator (scenario in `big/mod.rs`).
//! Its wall time and memory are printed by `benches/big_incident.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod big;

use std::sync::atomic::Ordering;

use firebell_core::ports::SNS_MAX_MESSAGE_BYTES;
use firebell_tests::aws;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_fire_and_resolve_in_one_notification_each() {
    let aws = aws().await.expect("emulator");
    let b = big::setup(&aws).await.expect("setup");

    // Cycle 1: every host breaches.
    let tick = b.base + 60;
    b.clock.set_epoch(tick);
    let r = b.engine.run_cycle(tick, &|| false).await.expect("cycle");
    assert!(r.errors.is_empty(), "{:?}", &r.errors[..r.errors.len().min(3)]);
    assert_eq!(r.instances_evaluated, big::HOSTS);
    assert_eq!(r.transitions.len(), big::HOSTS);
    assert_eq!(r.notifications_sent, 1, "{r:?}");
    assert_eq!(r.messages_published, 1);
    let msgs = aws.drain(&b.queue).await.unwrap();
    assert_eq!(msgs.len(), 1, "one notification");
    let m = &msgs[0];
    assert_eq!(m.status(), "firing");
    assert_eq!(m.payload["counts"]["firing"], big::HOSTS);
    let listed = m.alerts().len();
    assert!(listed > 0 && listed < big::HOSTS, "listed {listed}");
    assert_eq!(
        m.payload["counts"]["omitted"].as_u64().unwrap(),
        (big::HOSTS - listed) as u64
    );
    assert!(
        m.subject.as_deref().unwrap().starts_with("[FIRING:10000] "),
        "{:?}",
        m.subject
    );
    let published = &r.published[0];
    let text = &published.bodies["default"];
    assert!(
        text.contains(&format!("… and {} more (", big::HOSTS - listed)),
        "{text}"
    );
    let size = serde_json::to_string(&published.bodies).unwrap().len();
    assert!(size < SNS_MAX_MESSAGE_BYTES, "{size} bytes");

    // Cycle 2, still breaching: nothing new to tell.
    let tick = tick + 60;
    b.clock.set_epoch(tick);
    let r = b.engine.run_cycle(tick, &|| false).await.expect("cycle");
    assert!(r.errors.is_empty(), "{:?}", &r.errors[..r.errors.len().min(3)]);
    assert_eq!(r.notifications_sent, 0);

    // Every host recovers: one RESOLVED notification, in one cycle.
    b.source.breaching.store(false, Ordering::SeqCst);
    let tick = tick + 60;
    b.clock.set_epoch(tick);
    let r = b.engine.run_cycle(tick, &|| false).await.expect("cycle");
    assert!(r.errors.is_empty(), "{:?}", &r.errors[..r.errors.len().min(3)]);
    assert_eq!(r.transitions.len(), big::HOSTS);
    assert_eq!(r.notifications_sent, 1, "{r:?}");
    let msgs = aws.drain(&b.queue).await.unwrap();
    assert_eq!(msgs.len(), 1, "one notification");
    assert_eq!(msgs[0].status(), "resolved");
    assert_eq!(msgs[0].seq(), 2);
    assert_eq!(msgs[0].payload["counts"]["resolved"], big::HOSTS);
    assert!(
        msgs[0]
            .subject
            .as_deref()
            .unwrap()
            .starts_with("[RESOLVED:10000] "),
        "{:?}",
        msgs[0].subject
    );

    // And nothing after.
    let tick = tick + 120;
    b.clock.set_epoch(tick);
    let r = b.engine.run_cycle(tick, &|| false).await.expect("cycle");
    assert!(r.errors.is_empty());
    assert_eq!(r.notifications_sent, 0);
    assert!(aws.drain(&b.queue).await.unwrap().is_empty());
}
