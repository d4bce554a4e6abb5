//! The outbox: no lost and no duplicate notification across crashes,
//! publish failures and concurrent dispatchers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cloned_ref_to_slice_refs
)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{Flaky, T0, World, alert, config, render, summary};
use firebell_core::alert::Alert;
use firebell_core::ports::{Notifier, NotifyError, Outbound, StateStore};
use firebell_embedded::MemoryNotifier;
use firebell_notify::{
    DispatchError, PK_DEAD_LETTER, PK_GROUP, PK_OUTBOX, RenderError, deliver, dispatch, group_logs,
    idempotency_key, pending,
};

const CFG: &str = r#"
receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
  two: {topics: [arn:aws:sns:us-east-1:123456789012:t1, arn:aws:sns:us-east-1:123456789012:t2]}
route:
  receiver: r
  group_by: [team]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['team="two"']
      receiver: two
"#;

fn a(name: &str, team: &str) -> Alert {
    alert(&[("alertname", name), ("team", team)], T0)
}

fn subjects(msgs: &[Outbound]) -> Vec<String> {
    msgs.iter().map(|m| m.subject.clone()).collect()
}

#[tokio::test]
async fn a_crash_between_outbox_and_log_is_adopted_not_duplicated() {
    let w = World::new(config(CFG));
    let flaky = Flaky::new(w.store.clone());
    let notifier = MemoryNotifier::new();
    let x = a("A", "pay");
    dispatch(&w.cfg, &flaky, T0, &[x.clone()]).await.unwrap();

    // The log write "crashes" after the outbox write.
    flaky.fail_puts_to(Some(PK_GROUP));
    w.clock.set_epoch(T0 + 30);
    let err = dispatch(&w.cfg, &flaky, T0 + 30, &[x.clone()])
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    let DispatchError::Partial { report, failures } = err else {
        panic!("expected a partial failure");
    };
    assert_eq!((report.enqueued, failures.len()), (1, 1));
    assert_eq!(w.items(PK_OUTBOX).len(), 1);
    assert_eq!(group_logs(&flaky).await.unwrap()[0].seq, 0);

    // Not committed: delivery waits for the next dispatch to adopt it.
    let d = deliver(&flaky, &notifier, &render, &w.cfg, T0 + 30)
        .await
        .unwrap();
    assert_eq!((d.uncommitted, d.messages_published), (1, 0));
    assert!(notifier.is_empty());

    // Recovered. B appeared meanwhile; the re-decision would say [A,B] with
    // the same seq, but the stored [A] is what counts.
    flaky.fail_puts_to(None);
    let y = a("B", "pay");
    w.clock.set_epoch(T0 + 90);
    let r = dispatch(&w.cfg, &flaky, T0 + 90, &[x.clone(), y.clone()])
        .await
        .unwrap();
    assert_eq!((r.enqueued, r.already_enqueued), (0, 1));
    let logs = group_logs(&flaky).await.unwrap();
    assert_eq!((logs[0].seq, logs[0].last_notified), (1, Some(T0 + 30)));

    let d = deliver(&flaky, &notifier, &render, &w.cfg, T0 + 90)
        .await
        .unwrap();
    assert_eq!((d.notifications_sent, d.messages_published), (1, 1));
    assert_eq!(subjects(&notifier.messages()), vec!["r #1"]);
    assert!(w.items(PK_OUTBOX).is_empty());

    // B is told after group_interval from the adopted notification.
    let mut sent = Vec::new();
    for t in (T0 + 150..=T0 + 3000).step_by(60) {
        w.clock.set_epoch(t);
        let r = dispatch(&w.cfg, &flaky, t, &[x.clone(), y.clone()])
            .await
            .unwrap();
        sent.extend(r.notifications.iter().map(|n| (t - T0, summary(n))));
    }
    assert_eq!(
        sent,
        vec![(330, "r #2 firing firing[A,B] resolved[]".to_string())]
    );
}

#[tokio::test]
async fn delivery_retries_keep_order_and_lose_nothing() {
    let w = World::new(config(CFG));
    let notifier = MemoryNotifier::new();
    let (p1, p2, p3, s1) = (
        a("A", "pay"),
        a("B", "pay"),
        a("C", "pay"),
        a("S", "search"),
    );
    // Three notifications for "pay" and one for "search", none delivered yet.
    w.at(T0, &[p1.clone(), s1.clone()]).await;
    assert_eq!(w.at(T0 + 30, &[p1.clone(), s1.clone()]).await.len(), 2);
    let snap = [p1.clone(), p2.clone(), s1.clone(), p3.clone()];
    assert_eq!(w.at(T0 + 330, &snap[..3]).await.len(), 1);
    w.at(T0 + 400, &snap).await;
    assert_eq!(w.at(T0 + 630, &snap).await.len(), 1);
    assert_eq!(w.items(PK_OUTBOX).len(), 4);

    notifier.fail_next(3);
    let d = deliver(w.store.as_ref(), &notifier, &render, &w.cfg, T0 + 630)
        .await
        .unwrap();
    assert_eq!((d.notifications_sent, d.failures, d.remaining), (0, 2, 4));
    assert_eq!(d.errors.len(), 2);
    // Typed, retryable, shown as `<group>: notification <seq>: <error>`.
    for e in &d.errors {
        assert!(e.error.is_retryable());
        assert_eq!(
            e.to_string(),
            format!("{}: notification {}: {}", e.group_key, e.seq, e.error)
        );
    }
    let stuck = pending(w.store.as_ref()).await.unwrap();
    let first = stuck
        .iter()
        .find(|r| r.notification.seq == 1 && r.attempts == 1);
    assert!(first.is_some_and(|r| r.last_error.is_some()));
    assert_eq!(
        first.and_then(|r| r.last_error.clone()),
        d.errors
            .iter()
            .find(|e| e.seq == 1 && first.is_some_and(|r| r.notification.group_key == e.group_key))
            .map(|e| e.error.to_string())
    );

    // One more failure, then everything goes, in order within each group.
    let mut published = Vec::new();
    for i in 0..3 {
        let d = deliver(
            w.store.as_ref(),
            &notifier,
            &render,
            &w.cfg,
            T0 + 690 + i * 60,
        )
        .await
        .unwrap();
        published.extend(d.published());
    }
    assert_eq!(notifier.attempts(), 3 + 4, "3 failures, 4 messages");
    assert!(w.items(PK_OUTBOX).is_empty());
    let msgs = notifier.messages();
    assert_eq!(msgs, published);
    let pay: Vec<&Outbound> = msgs
        .iter()
        .filter(|m| m.group_key == msgs_group(&msgs, "pay"))
        .collect();
    let pay_subjects: Vec<&str> = pay.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(pay_subjects, vec!["r #1", "r #2", "r #3"]);
    assert_eq!(msgs.len(), 4);
    // Idempotency keys: one per notification, as the renderer computes them.
    for m in &msgs {
        let seq: u64 = m.subject.rsplit('#').next().unwrap().parse().unwrap();
        assert_eq!(m.idempotency_key, idempotency_key("r", &m.group_key, seq));
    }
    let keys: BTreeSet<&str> = msgs.iter().map(|m| m.idempotency_key.as_str()).collect();
    assert_eq!(keys.len(), 4);
}

/// The group key of the messages whose body mentions alerts of `team`.
fn msgs_group(msgs: &[Outbound], team: &str) -> String {
    let first = if team == "pay" {
        "firing[A"
    } else {
        "firing[S"
    };
    msgs.iter()
        .find(|m| m.bodies["default"].contains(first))
        .map(|m| m.group_key.clone())
        .unwrap()
}

/// Fails publishes to one destination a number of times; rejects another.
struct Picky {
    fail_dest: String,
    failures_left: AtomicUsize,
    reject_dest: String,
    sent: Mutex<Vec<Outbound>>,
}

#[async_trait]
impl Notifier for Picky {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        if msg.destination == self.reject_dest {
            return Err(NotifyError::Rejected("no such topic".to_string()));
        }
        if msg.destination == self.fail_dest && self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(NotifyError::Unavailable("throttled".to_string()));
        }
        self.sent.lock().unwrap().push(msg.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_partly_published_notification_resumes_where_it_failed() {
    let w = World::new(config(CFG));
    let x = a("A", "two");
    w.at(T0, &[x.clone()]).await;
    w.at(T0 + 30, &[x.clone()]).await;
    let picky = Picky {
        fail_dest: "arn:aws:sns:us-east-1:123456789012:t2".to_string(),
        failures_left: AtomicUsize::new(2),
        reject_dest: String::new(),
        sent: Mutex::new(Vec::new()),
    };
    let d = deliver(w.store.as_ref(), &picky, &render, &w.cfg, T0 + 30)
        .await
        .unwrap();
    assert_eq!((d.messages_published, d.failures), (1, 1));
    assert_eq!(pending(w.store.as_ref()).await.unwrap()[0].published, 1);
    let d = deliver(w.store.as_ref(), &picky, &render, &w.cfg, T0 + 90)
        .await
        .unwrap();
    assert_eq!((d.messages_published, d.failures), (0, 1));
    let d = deliver(w.store.as_ref(), &picky, &render, &w.cfg, T0 + 150)
        .await
        .unwrap();
    assert_eq!((d.messages_published, d.notifications_sent), (1, 1));
    let sent = picky.sent.lock().unwrap().clone();
    let dests: Vec<&str> = sent.iter().map(|m| m.destination.as_str()).collect();
    assert_eq!(
        dests,
        vec![
            "arn:aws:sns:us-east-1:123456789012:t1",
            "arn:aws:sns:us-east-1:123456789012:t2"
        ]
    );
    let key = idempotency_key("two", &sent[0].group_key, 1);
    assert_eq!(sent[0].idempotency_key, format!("{key}-0"));
    assert_eq!(sent[1].idempotency_key, format!("{key}-1"));
}

#[tokio::test]
async fn rejected_messages_and_removed_receivers_go_to_dead_letters() {
    let w = World::new(config(CFG));
    let (x, y) = (a("A", "two"), a("B", "pay"));
    w.at(T0, &[x.clone(), y.clone()]).await;
    w.at(T0 + 30, &[x.clone(), y.clone()]).await;
    let picky = Picky {
        fail_dest: String::new(),
        failures_left: AtomicUsize::new(0),
        reject_dest: "arn:aws:sns:us-east-1:123456789012:t1".to_string(),
        sent: Mutex::new(Vec::new()),
    };
    // The config no longer has receiver `r`.
    let mut cfg = w.cfg.clone();
    cfg.receivers.remove("r");
    let d = deliver(w.store.as_ref(), &picky, &render, &cfg, T0 + 30)
        .await
        .unwrap();
    assert_eq!(
        (
            d.notifications_sent,
            d.messages_published,
            d.dead_lettered,
            d.remaining
        ),
        (1, 1, 2, 0)
    );
    let dead = w.items(PK_DEAD_LETTER);
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().any(|i| i.data.contains("no such topic")));
    assert!(dead.iter().any(|i| {
        i.data
            .contains("receiver \\\"r\\\" is no longer configured")
    }));
}

#[tokio::test]
async fn an_unrenderable_notification_is_dead_lettered_not_counted_as_sent() {
    let w = World::new(config(CFG));
    let (x, y) = (a("A", "pay"), a("B", "two"));
    w.at(T0, &[x.clone(), y.clone()]).await;
    w.at(T0 + 30, &[x.clone(), y.clone()]).await;
    // Receiver `r` lost its topics: the real renderer cannot render for it.
    let mut cfg = w.cfg.clone();
    cfg.receivers.get_mut("r").unwrap().topics.clear();
    let notifier = MemoryNotifier::new();
    let d = deliver(
        w.store.as_ref(),
        &notifier,
        &firebell_notify::render,
        &cfg,
        T0 + 30,
    )
    .await
    .unwrap();
    // Only the notification to `two` (two topics) went out.
    assert_eq!(
        (
            d.notifications_sent,
            d.messages_published,
            d.dead_lettered,
            d.failures,
            d.remaining
        ),
        (1, 2, 1, 0, 0)
    );
    assert_eq!(notifier.messages().len(), 2);
    assert!(notifier.messages().iter().all(|m| m.receiver == "two"));
    assert_eq!(d.delivered.len(), 1);
    assert_eq!(d.delivered[0].notification.receiver, "two");
    assert_eq!(d.delivered[0].messages, d.published());
    // The render failure is reported, typed.
    assert_eq!(d.render_failures.len(), 1);
    let f = &d.render_failures[0];
    assert_eq!((f.receiver.as_str(), f.seq), ("r", 1));
    assert!(f.group_key.starts_with("r:"));
    assert!(matches!(&f.error, RenderError::NoTopics(r) if r == "r"));
    assert_eq!(
        f.to_string(),
        format!(
            "rendering {} #1 for r: receiver \"r\" has no topics",
            f.group_key
        )
    );
    // It is dead-lettered with the render error as the reason, and gone
    // from the outbox: never retried, never sent.
    let dead = w.items(PK_DEAD_LETTER);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].sk, format!("{}#0000000001#item", f.group_key));
    let letter: serde_json::Value = serde_json::from_str(&dead[0].data).unwrap();
    assert_eq!(letter["reason"], "receiver \"r\" has no topics");
    assert!(pending(w.store.as_ref()).await.unwrap().is_empty());
    let again = deliver(
        w.store.as_ref(),
        &notifier,
        &firebell_notify::render,
        &cfg,
        T0 + 90,
    )
    .await
    .unwrap();
    assert_eq!((again.notifications_sent, again.messages_published), (0, 0));
    assert_eq!(notifier.messages().len(), 2);
}

#[tokio::test]
async fn concurrent_dispatchers_decide_each_notification_once() {
    let w = World::new(config(CFG));
    let flaky = Arc::new(Flaky::new(w.store.clone()));
    flaky.yield_each_op.store(true, Ordering::SeqCst);
    let notifier = MemoryNotifier::new();
    let (x, y, z) = (a("A", "pay"), a("B", "pay"), a("C", "search"));
    let steps: Vec<(i64, Vec<Alert>)> = vec![
        (0, vec![x.clone(), z.clone()]),
        (30, vec![x.clone(), z.clone()]),
        (100, vec![x.clone(), y.clone(), z.clone()]),
        (330, vec![x.clone(), y.clone(), z.clone()]),
        (400, vec![x.clone(), y.clone()]),
        (630, vec![x.clone(), y.clone()]),
        (4 * 3600 + 400, vec![x.clone(), y.clone()]),
    ];
    let mut decided = Vec::new();
    let mut contended = 0;
    for (t, alerts) in &steps {
        let now = T0 + t;
        w.clock.set_epoch(now);
        let store: &dyn StateStore = flaky.as_ref();
        let (r1, r2, r3) = tokio::join!(
            dispatch(&w.cfg, store, now, alerts),
            dispatch(&w.cfg, store, now, alerts),
            dispatch(&w.cfg, store, now, alerts),
        );
        for r in [r1, r2, r3] {
            let r = r.unwrap();
            contended += r.conflicts + r.already_enqueued;
            decided.extend(r.notifications.iter().map(|n| (*t, summary(n))));
        }
    }
    assert!(contended > 0, "the dispatchers really raced");
    decided.sort();
    assert_eq!(
        decided,
        vec![
            (30, "r #1 firing firing[A] resolved[]".to_string()),
            (30, "r #1 firing firing[C] resolved[]".to_string()),
            (330, "r #2 firing firing[A,B] resolved[]".to_string()),
            (400, "r #2 resolved firing[] resolved[C]".to_string()),
            (
                4 * 3600 + 400,
                "r #3 firing firing[A,B] resolved[]".to_string()
            ),
        ]
    );
    let d = deliver(flaky.as_ref(), &notifier, &render, &w.cfg, T0 + 5 * 3600)
        .await
        .unwrap();
    assert_eq!(d.notifications_sent, 5);
    let keys: BTreeSet<String> = notifier
        .messages()
        .iter()
        .map(|m| m.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), 5);
}
