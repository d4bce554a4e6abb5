//! Dispatcher timelines: a sequence of `dispatch` calls at increasing times
//! with alerts coming and going, asserting exactly which notifications were
//! decided when.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cloned_ref_to_slice_refs
)]

mod common;

use common::{T0, World, alert, config, labels, resolved};
use firebell_core::alert::{Alert, AlertStatus};
use firebell_notify::{
    CLOSED_GROUP_TTL, NotifyConfig, PK_GROUP, PK_OUTBOX, SilenceSpec, add_silence, dispatch,
    group_logs, inhibited,
};

const BASE: &str = r#"
receivers:
  team: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
  quiet: {topics: [arn:aws:sns:us-east-1:123456789012:q], send_resolved: false}
route:
  receiver: team
  group_by: [team]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['receiver="quiet"']
      receiver: quiet
"#;

fn a(name: &str) -> Alert {
    alert(&[("alertname", name), ("team", "pay")], T0)
}

fn q(name: &str) -> Alert {
    alert(
        &[("alertname", name), ("team", "pay"), ("receiver", "quiet")],
        T0,
    )
}

fn none() -> Vec<String> {
    Vec::new()
}

fn one(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

#[tokio::test]
async fn group_wait_then_group_interval_then_repeat_interval() {
    let w = World::new(config(BASE));
    let (a, b, c) = (a("A"), a("B"), a("C"));
    assert_eq!(w.at(T0, &[a.clone()]).await, none());
    assert_eq!(w.at(T0 + 20, &[a.clone(), b.clone()]).await, none());
    assert_eq!(w.at(T0 + 29, &[a.clone(), b.clone()]).await, none());
    // group_wait counts from the group's first alert.
    assert_eq!(
        w.at(T0 + 30, &[a.clone(), b.clone()]).await,
        one("team #1 firing firing[A,B] resolved[]")
    );
    assert_eq!(w.at(T0 + 60, &[a.clone(), b.clone()]).await, none());
    // A new alert: at most every group_interval since the last notification.
    let abc = [a.clone(), b.clone(), c.clone()];
    assert_eq!(w.at(T0 + 120, &abc).await, none());
    assert_eq!(w.at(T0 + 329, &abc).await, none());
    assert_eq!(
        w.at(T0 + 330, &abc).await,
        one("team #2 firing firing[A,B,C] resolved[]")
    );
    // Unchanged: again after repeat_interval, not before.
    assert!(w.run(T0 + 390, T0 + 3929, 60, &abc).await.is_empty());
    assert_eq!(
        w.at(T0 + 3930, &abc).await,
        one("team #3 firing firing[A,B,C] resolved[]")
    );
    assert_eq!(w.at(T0 + 3990, &abc).await, none());
    // A cycle that runs late sends what is due at once.
    assert_eq!(
        w.at(T0 + 3930 + 3600 + 500, &abc).await,
        one("team #4 firing firing[A,B,C] resolved[]")
    );
}

#[tokio::test]
async fn the_state_survives_a_new_instance() {
    let w = World::new(config(BASE));
    let x = a("A");
    assert_eq!(w.at(T0, &[x.clone()]).await, none());
    // Another process, same store: group_wait still counts from T0.
    let cfg2 = config(BASE);
    let r = dispatch(&cfg2, w.store.as_ref(), T0 + 30, &[x.clone()])
        .await
        .unwrap();
    assert_eq!(r.enqueued, 1);
    assert_eq!(r.notifications[0].seq, 1);
}

#[tokio::test]
async fn grouping_by_labels_and_by_every_label() {
    let cfg = config(
        r#"
receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: r
  group_by: [alertname]
  group_wait: 0s
  routes:
    - matchers: ['team="search"']
      group_by: ["..."]
"#,
    );
    let w = World::new(cfg);
    let alerts = [
        alert(
            &[("alertname", "Latency"), ("team", "pay"), ("instance", "1")],
            T0,
        ),
        alert(
            &[("alertname", "Latency"), ("team", "pay"), ("instance", "2")],
            T0,
        ),
        alert(&[("alertname", "Errors"), ("team", "pay")], T0),
        alert(
            &[
                ("alertname", "Latency"),
                ("team", "search"),
                ("instance", "1"),
            ],
            T0,
        ),
        alert(
            &[
                ("alertname", "Latency"),
                ("team", "search"),
                ("instance", "2"),
            ],
            T0,
        ),
    ];
    w.clock.set_epoch(T0);
    let report = dispatch(&w.cfg, w.store.as_ref(), T0, &alerts)
        .await
        .unwrap();
    let mut got: Vec<(String, usize)> = report
        .notifications
        .iter()
        .map(|n| {
            let l: Vec<String> = n
                .group_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (l.join(","), n.firing.len())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("alertname=Errors".to_string(), 1),
            ("alertname=Latency".to_string(), 2),
            ("alertname=Latency,instance=1,team=search".to_string(), 1),
            ("alertname=Latency,instance=2,team=search".to_string(), 1),
        ]
    );
    assert_eq!(report.groups, 4);
    // Group keys are `<receiver>:<16 hex>` and distinct.
    let mut keys: Vec<&str> = report
        .notifications
        .iter()
        .map(|n| n.group_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|k| k.starts_with("r:") && k.len() == 18));
}

#[tokio::test]
async fn resolved_notices_then_the_group_closes_and_reopens() {
    let w = World::new(config(BASE));
    let (a, b) = (a("A"), a("B"));
    assert_eq!(w.at(T0, &[a.clone(), b.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 30, &[a.clone(), b.clone()]).await,
        one("team #1 firing firing[A,B] resolved[]")
    );
    let a_res = resolved(&a, T0 + 100);
    assert_eq!(w.at(T0 + 100, &[a_res.clone(), b.clone()]).await, none());
    assert_eq!(w.at(T0 + 329, &[a_res.clone(), b.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 330, &[a_res.clone(), b.clone()]).await,
        one("team #2 firing firing[B] resolved[A]")
    );
    // B vanishes from the snapshot: it counts as resolved, when first missed.
    assert_eq!(w.at(T0 + 400, &[a_res.clone()]).await, none());
    assert_eq!(w.at(T0 + 629, &[a_res.clone()]).await, none());
    w.clock.set_epoch(T0 + 630);
    let r = dispatch(&w.cfg, w.store.as_ref(), T0 + 630, &[a_res.clone()])
        .await
        .unwrap();
    assert_eq!(r.notifications.len(), 1);
    let n = &r.notifications[0];
    assert_eq!(common::summary(n), "team #3 resolved firing[] resolved[B]");
    assert_eq!(n.status, AlertStatus::Resolved);
    assert_eq!(n.resolved[0].resolved_at, Some(T0 + 400));
    // Closed: kept with a TTL so that seq continues.
    let logs = w.items(PK_GROUP);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].expires_at, Some(T0 + 630 + CLOSED_GROUP_TTL));
    assert!(
        w.run(T0 + 690, T0 + 790, 60, &[a_res.clone()])
            .await
            .is_empty()
    );
    // A fires again: a new episode waits group_wait again; seq goes on.
    let again = alert(&[("alertname", "A"), ("team", "pay")], T0 + 800);
    assert_eq!(w.at(T0 + 800, &[again.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 830, &[again.clone()]).await,
        one("team #4 firing firing[A] resolved[]")
    );
    assert_eq!(w.items(PK_GROUP)[0].expires_at, None, "open again");
    assert_eq!(w.items(PK_OUTBOX).len(), 4);
    // The first notification of each episode pages; the others are updates
    // (SNS attribute `update`), so a pager filtering on it is woken once per
    // incident, and again for the next one.
    let mut updates: Vec<(u64, bool)> = w
        .items(PK_OUTBOX)
        .iter()
        .map(|i| {
            let v: serde_json::Value = serde_json::from_str(&i.data).unwrap();
            let n = &v["notification"];
            (
                n["seq"].as_u64().unwrap(),
                n["update"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    updates.sort();
    assert_eq!(updates, [(1, false), (2, true), (3, true), (4, false)]);
}

#[tokio::test]
async fn no_resolved_notices_without_send_resolved() {
    let w = World::new(config(BASE));
    let (a, b) = (q("A"), q("B"));
    assert_eq!(w.at(T0, &[a.clone(), b.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 30, &[a.clone(), b.clone()]).await,
        one("quiet #1 firing firing[A,B] resolved[]")
    );
    let a_res = resolved(&a, T0 + 100);
    assert!(
        w.run(T0 + 100, T0 + 1000, 60, &[a_res.clone(), b.clone()])
            .await
            .is_empty()
    );
    // B vanishes: silently closed.
    assert!(
        w.run(T0 + 1060, T0 + 2000, 60, &[a_res.clone()])
            .await
            .is_empty()
    );
    let logs = group_logs(w.store.as_ref()).await.unwrap();
    assert!(logs[0].notified.is_empty() && logs[0].last_notified.is_none());
    // B fires again: it is news again.
    let b2 = alert(
        &[("alertname", "B"), ("team", "pay"), ("receiver", "quiet")],
        T0 + 2100,
    );
    assert_eq!(w.at(T0 + 2100, &[b2.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 2130, &[b2.clone()]).await,
        one("quiet #2 firing firing[B] resolved[]")
    );
}

fn silence_spec(matcher: &str, ends_at: i64) -> SilenceSpec {
    SilenceSpec {
        matchers: vec![matcher.to_string()],
        starts_at: None,
        ends_at,
        created_by: "alice".to_string(),
        comment: "looking into it".to_string(),
        force: false,
    }
}

#[tokio::test]
async fn a_silence_ending_while_alerts_still_fire_is_noted() {
    let w = World::new(config(BASE));
    let (a, b) = (a("A"), a("B"));
    let ab = [a.clone(), b.clone()];
    assert_eq!(w.at(T0, &ab).await, none());
    assert_eq!(
        w.at(T0 + 30, &ab).await,
        one("team #1 firing firing[A,B] resolved[]")
    );
    let s = add_silence(
        w.store.as_ref(),
        &w.cfg.silence_policy,
        T0 + 60,
        silence_spec("alertname=\"A\"", T0 + 1000),
    )
    .await
    .unwrap();
    // Muted meanwhile; nothing else changes, so nothing is sent.
    w.clock.set_epoch(T0 + 60);
    let r = dispatch(&w.cfg, w.store.as_ref(), T0 + 60, &ab)
        .await
        .unwrap();
    assert_eq!(r.silenced, 1);
    assert!(w.run(T0 + 120, T0 + 999, 60, &ab).await.is_empty());
    // The silence ends: the note goes out although nothing else changed.
    assert_eq!(
        w.at(T0 + 1000, &ab).await,
        one(&format!(
            "team #2 firing firing[A,B] resolved[] notes[Silence {} by alice ended; 1 alert still firing]",
            s.id
        ))
    );
    assert!(w.run(T0 + 1060, T0 + 2000, 60, &ab).await.is_empty());
}

#[tokio::test]
async fn alerts_silenced_from_the_start_are_sent_with_the_note_when_it_ends() {
    let w = World::new(config(BASE));
    let s = add_silence(
        w.store.as_ref(),
        &w.cfg.silence_policy,
        T0,
        silence_spec("team=\"pay\"", T0 + 500),
    )
    .await
    .unwrap();
    let (a, b) = (a("A"), a("B"));
    let ab = [a.clone(), b.clone()];
    assert!(w.run(T0, T0 + 499, 30, &ab).await.is_empty());
    // Visible from T0+500: group_wait from there.
    assert_eq!(w.at(T0 + 500, &ab).await, none());
    assert_eq!(
        w.at(T0 + 530, &ab).await,
        one(&format!(
            "team #1 firing firing[A,B] resolved[] notes[Silence {} by alice ended; 2 alerts still firing]",
            s.id
        ))
    );
}

#[tokio::test]
async fn resolved_notices_pass_through_silences() {
    let w = World::new(config(BASE));
    assert!(w.cfg.silence_policy.resolved_pass_through, "the default");
    let x = a("A");
    assert_eq!(w.at(T0, &[x.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 30, &[x.clone()]).await,
        one("team #1 firing firing[A] resolved[]")
    );
    add_silence(
        w.store.as_ref(),
        &w.cfg.silence_policy,
        T0 + 60,
        silence_spec("alertname=\"A\"", T0 + 5000),
    )
    .await
    .unwrap();
    assert_eq!(w.at(T0 + 60, &[x.clone()]).await, none());
    let x_res = resolved(&x, T0 + 100);
    assert_eq!(w.at(T0 + 100, &[x_res.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 330, &[x_res.clone()]).await,
        one("team #2 resolved firing[] resolved[A]")
    );
}

#[tokio::test]
async fn resolved_notices_stay_silenced_when_pass_through_is_off() {
    let cfg = config(&format!(
        "{BASE}silences:\n  resolved_pass_through: false\n"
    ));
    let w = World::new(cfg);
    let x = a("A");
    assert_eq!(w.at(T0, &[x.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 30, &[x.clone()]).await,
        one("team #1 firing firing[A] resolved[]")
    );
    add_silence(
        w.store.as_ref(),
        &w.cfg.silence_policy,
        T0 + 60,
        silence_spec("alertname=\"A\"", T0 + 5000),
    )
    .await
    .unwrap();
    let x_res = resolved(&x, T0 + 100);
    assert!(
        w.run(T0 + 60, T0 + 6000, 60, &[x_res.clone()])
            .await
            .is_empty()
    );
    // The group closed quietly.
    assert!(w.items(PK_GROUP)[0].expires_at.is_some());
    // Also for an alert that vanished from the snapshot while silenced.
    let y = a("B");
    let w = World::new(config(&format!(
        "{BASE}silences:\n  resolved_pass_through: false\n"
    )));
    assert_eq!(w.at(T0 + 30, &[y.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 60, &[y.clone()]).await,
        one("team #1 firing firing[B] resolved[]")
    );
    add_silence(
        w.store.as_ref(),
        &w.cfg.silence_policy,
        T0 + 61,
        silence_spec("alertname=\"B\"", T0 + 5000),
    )
    .await
    .unwrap();
    assert!(w.run(T0 + 120, T0 + 3000, 60, &[]).await.is_empty());
}

const INHIBIT: &str = r#"
receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: r
  group_by: ["..."]
  group_wait: 30s
  group_interval: 5m
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
  - source_matchers: ['alertname=~"Self.*"']
    target_matchers: ['alertname=~"Self.*"']
"#;

fn sev(name: &str, severity: &str, cluster: &str) -> Alert {
    alert(
        &[
            ("alertname", name),
            ("severity", severity),
            ("cluster", cluster),
        ],
        T0,
    )
}

#[test]
fn inhibition_needs_equal_labels_and_never_hits_the_source_itself() {
    let cfg = config(INHIBIT);
    let (x, y, z) = (
        sev("X", "critical", "a"),
        sev("Y", "warning", "a"),
        sev("Z", "warning", "b"),
    );
    let got = inhibited(&cfg.inhibit_rules, &[x.clone(), y.clone(), z.clone()]);
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec![y.fingerprint.clone()]
    );
    // A resolved source inhibits nothing.
    let got = inhibited(&cfg.inhibit_rules, &[resolved(&x, T0), y.clone()]);
    assert!(got.is_empty());
    // An alert matching both sides does not inhibit itself, nor another
    // alert matching both sides.
    let s1 = alert(&[("alertname", "Self1")], T0);
    let s2 = alert(&[("alertname", "Self2")], T0);
    assert!(inhibited(&cfg.inhibit_rules, &[s1.clone()]).is_empty());
    assert!(inhibited(&cfg.inhibit_rules, &[s1, s2]).is_empty());
}

#[tokio::test]
async fn inhibited_alerts_are_not_sent_until_the_source_resolves() {
    let w = World::new(config(INHIBIT));
    let (x, y, z) = (
        sev("X", "critical", "a"),
        sev("Y", "warning", "a"),
        sev("Z", "warning", "b"),
    );
    let all = [x.clone(), y.clone(), z.clone()];
    assert_eq!(w.at(T0, &all).await, none());
    w.clock.set_epoch(T0 + 30);
    let r = dispatch(&w.cfg, w.store.as_ref(), T0 + 30, &all)
        .await
        .unwrap();
    assert_eq!(r.inhibited, 1);
    let mut got: Vec<String> = r.notifications.iter().map(common::summary).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            "r #1 firing firing[X] resolved[]",
            "r #1 firing firing[Z] resolved[]"
        ]
    );
    // X resolves: Y is no longer inhibited, and is news.
    let now = [resolved(&x, T0 + 100), y.clone(), z.clone()];
    assert_eq!(w.at(T0 + 100, &now).await, none());
    assert_eq!(
        w.at(T0 + 130, &now).await,
        one("r #1 firing firing[Y] resolved[]")
    );
    assert_eq!(
        w.at(T0 + 330, &now).await,
        one("r #2 resolved firing[] resolved[X]")
    );
}

const TIMED: &str = r#"
receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: r
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['team="berlin"']
      mute_time_intervals: [nights]
    - matchers: ['team="nyc"']
      active_time_intervals: [business]
time_intervals:
  nights:
    - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "06:00"}]
      location: Europe/Berlin
  business:
    - weekdays: ["monday:friday"]
      times: [{start_time: "09:00", end_time: "17:00"}]
      location: America/New_York
"#;

const H: i64 = 3600;

#[tokio::test]
async fn mute_intervals_defer_until_local_morning_across_dst() {
    // 2024-03-31: Berlin springs forward at 01:00 UTC.
    let day: i64 = 1_711_843_200;
    let w = World::new(config(TIMED));
    let x = alert(&[("alertname", "A"), ("team", "berlin")], day + H);
    // Fires at 01:00Z = 03:00 CEST (night): due after group_wait, deferred.
    assert_eq!(w.at(day + H, &[x.clone()]).await, none());
    w.clock.set_epoch(day + H + 30);
    let r = dispatch(&w.cfg, w.store.as_ref(), day + H + 30, &[x.clone()])
        .await
        .unwrap();
    assert_eq!((r.notifications.len(), r.deferred), (0, 1));
    // 06:00 CEST is 04:00Z (not 05:00Z, which 06:00 CET would be).
    let sent = w.run(day + H + 60, day + 6 * H, 60, &[x.clone()]).await;
    assert_eq!(
        sent,
        vec![(day + 4 * H, "r #1 firing firing[A] resolved[]".to_string())]
    );
}

#[tokio::test]
async fn active_intervals_hold_notices_outside_business_hours() {
    // Monday 2024-03-11, the day after New York moved to EDT (UTC-4).
    let monday: i64 = 1_710_115_200;
    let w = World::new(config(TIMED));
    let x = alert(&[("alertname", "A"), ("team", "nyc")], monday + 12 * H);
    w.clock.set_epoch(monday + 12 * H + 30);
    let r = dispatch(&w.cfg, w.store.as_ref(), monday + 12 * H, &[x.clone()])
        .await
        .unwrap();
    assert!(r.notifications.is_empty());
    let r = dispatch(&w.cfg, w.store.as_ref(), monday + 12 * H + 30, &[x.clone()])
        .await
        .unwrap();
    assert_eq!((r.notifications.len(), r.deferred), (0, 1));
    // 09:00 EDT is 13:00Z; the 4h repeat at 17:00Z is 13:00 EDT.
    let sent = w
        .run(
            monday + 12 * H + 60,
            monday + 21 * H + 29 * 60,
            60,
            &[x.clone()],
        )
        .await;
    assert_eq!(
        sent,
        vec![
            (
                monday + 13 * H,
                "r #1 firing firing[A] resolved[]".to_string()
            ),
            (
                monday + 17 * H,
                "r #2 firing firing[A] resolved[]".to_string()
            ),
        ]
    );
    // Resolves at 17:30 EDT: the notice waits for Tuesday 09:00 EDT.
    let res = resolved(&x, monday + 21 * H + 30 * 60);
    let sent = w
        .run(monday + 21 * H + 30 * 60, monday + 38 * H, 60, &[res])
        .await;
    assert_eq!(
        sent,
        vec![(
            monday + 37 * H,
            "r #3 resolved firing[] resolved[A]".to_string()
        )]
    );
}

#[tokio::test]
async fn an_unconfigured_pipeline_does_nothing() {
    let w = World::new(NotifyConfig::default());
    let r = dispatch(&w.cfg, w.store.as_ref(), T0, &[a("A")])
        .await
        .unwrap();
    assert_eq!(r.alerts, 1);
    assert!(r.notifications.is_empty());
    assert!(w.store.items().is_empty());
    let _ = labels(&[]);
}

const INHIBIT_GROUPED: &str = r#"
receivers:
  r: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: r
  group_by: [cluster]
  group_wait: 30s
  group_interval: 5m
  routes:
    - matchers: ['alertname="Own"']
      group_by: [alertname]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
"#;

/// As in Alertmanager: when an inhibiting alert and the alert it inhibited
/// resolve together, the resolved notice lists both.
#[tokio::test]
async fn an_inhibited_alert_resolving_with_its_inhibitor_is_listed_with_it() {
    let w = World::new(config(INHIBIT_GROUPED));
    let (x, y) = (sev("X", "critical", "a"), sev("Y", "warning", "a"));
    assert_eq!(w.at(T0, &[x.clone(), y.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 30, &[x.clone(), y.clone()]).await,
        one("r #1 firing firing[X] resolved[]")
    );
    let both = [resolved(&x, T0 + 100), resolved(&y, T0 + 100)];
    assert!(w.run(T0 + 100, T0 + 329, 60, &both).await.is_empty());
    assert_eq!(
        w.at(T0 + 330, &both).await,
        one("r #2 resolved firing[] resolved[X,Y]")
    );
    assert!(w.run(T0 + 390, T0 + 3000, 60, &both).await.is_empty());
}

/// An inhibited alert that resolved while its inhibitor still fired stays
/// untold, also once the inhibitor resolves.
#[tokio::test]
async fn an_inhibited_alert_resolving_before_its_inhibitor_stays_untold() {
    let w = World::new(config(INHIBIT_GROUPED));
    let (x, y) = (sev("X", "critical", "a"), sev("Y", "warning", "a"));
    assert_eq!(w.at(T0, &[x.clone(), y.clone()]).await, none());
    assert_eq!(
        w.at(T0 + 30, &[x.clone(), y.clone()]).await,
        one("r #1 firing firing[X] resolved[]")
    );
    let y_done = resolved(&y, T0 + 100);
    assert!(
        w.run(T0 + 100, T0 + 199, 60, &[x.clone(), y_done.clone()])
            .await
            .is_empty()
    );
    let both = [resolved(&x, T0 + 200), y_done];
    assert!(w.run(T0 + 200, T0 + 329, 60, &both).await.is_empty());
    assert_eq!(
        w.at(T0 + 330, &both).await,
        one("r #2 resolved firing[] resolved[X]")
    );
}

/// An inhibited alert whose group never told anything is not told either
/// (Alertmanager sends nothing about a group that only ever had muted
/// alerts); nor is one a silence mutes.
#[tokio::test]
async fn inhibited_alerts_resolving_together_in_a_silent_group_or_silenced_stay_untold() {
    let w = World::new(config(INHIBIT_GROUPED));
    let x = sev("X", "critical", "a");
    let own = alert(
        &[
            ("alertname", "Own"),
            ("severity", "warning"),
            ("cluster", "a"),
        ],
        T0,
    );
    let z = sev("Z", "warning", "a");
    add_silence(
        w.store.as_ref(),
        &w.cfg.silence_policy,
        T0,
        silence_spec("alertname=\"Z\"", T0 + 5000),
    )
    .await
    .unwrap();
    let all = [x.clone(), own.clone(), z.clone()];
    assert_eq!(w.at(T0, &all).await, none());
    assert_eq!(
        w.at(T0 + 30, &all).await,
        one("r #1 firing firing[X] resolved[]")
    );
    let done = [
        resolved(&x, T0 + 100),
        resolved(&own, T0 + 100),
        resolved(&z, T0 + 100),
    ];
    let sent = w.run(T0 + 100, T0 + 3000, 60, &done).await;
    assert_eq!(
        sent,
        vec![(T0 + 340, "r #2 resolved firing[] resolved[X]".to_string())]
    );
}
