#![allow(clippy::unwrap_used, clippy::expect_used)]
//! History: what a cycle that wrote remembers (transitions, notifications,
//! its own record), for how long, and that a quiet cycle still writes
//! nothing.

use std::sync::Arc;

use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, StateStore};
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::history::{self, HistoryEntry};
use firebell_engine::{Config, Engine, EngineOptions};

const T0: i64 = 1_795_392_000;

const RULES: &str = r#"
rules:
  - name: HighLatency
    metrics:
      p99: {namespace: Svc, metric: Latency, dimensions: {Service: web}, stat: p99, period: 1m}
    expression: p99
    unit: ms
    condition: {op: ">", threshold: 500}
    for: 2m
    labels: {team: web, severity: page}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
  group_by: [alertname]
  group_wait: 0s
"#;

fn config(extra: &str) -> Arc<Config> {
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(
        &[("test.yaml".to_string(), format!("{RULES}{extra}"))],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    Arc::new(c)
}

/// Above the threshold from minute 10 to 19.
fn source() -> ReplaySource {
    let points: Vec<String> = (0..60)
        .map(|m| {
            let v = if (10..20).contains(&m) { 900.0 } else { 120.0 };
            format!("[{},{v}]", T0 + 60 * m)
        })
        .collect();
    let text = format!(
        "{{\"namespace\":\"Svc\",\"metric\":\"Latency\",\"dimensions\":{{\"Service\":\"web\"}},\"stat\":\"p99\",\"period\":60,\"points\":[{}]}}\n",
        points.join(",")
    );
    ReplaySource::parse("test.jsonl", &text).unwrap()
}

struct World {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    engine: Engine,
}

fn world(extra: &str) -> World {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let engine = Engine::new(
        config(extra),
        Arc::new(source()),
        store.clone() as Arc<dyn StateStore>,
        Arc::new(MemoryNotifier::new()),
        EngineOptions::default(),
    )
    .with_stopwatch(clock.clone() as Arc<dyn Clock>);
    World {
        clock,
        store,
        engine,
    }
}

/// Runs minutes `range`, returning each cycle's store writes.
async fn run(w: &World, range: std::ops::Range<i64>) -> Vec<(i64, usize)> {
    let mut writes = Vec::new();
    for m in range {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = w.engine.run_cycle(now, &|| false).await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        writes.push((m, r.store_writes));
    }
    writes
}

fn summary(entries: &[HistoryEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            HistoryEntry::Transition(t) => format!("{} {} {}", e.at() - T0, t.rule, t.event),
            HistoryEntry::Notification(n) => {
                format!("{} notification {} {}", e.at() - T0, n.receiver, n.subject)
            }
            HistoryEntry::Cycle(c) => format!(
                "{} cycle rules={} instances={} transitions={} notifications={}",
                e.at() - T0,
                c.rules_evaluated,
                c.instances_evaluated,
                c.transitions,
                c.notifications
            ),
        })
        .collect()
}

#[tokio::test]
async fn transitions_and_notifications_are_remembered_by_the_cycles_that_wrote() {
    let w = world("");
    run(&w, 1..30).await;
    let entries = history::read(w.store.as_ref(), T0, T0 + 3600)
        .await
        .unwrap();
    let lines = summary(&entries);
    assert_eq!(
        lines,
        [
            "600 HighLatency pending (datapoint 2026-11-23T00:10:00Z)",
            "660 cycle rules=1 instances=1 transitions=1 notifications=0",
            "720 HighLatency fired (datapoint 2026-11-23T00:12:00Z, value 900)",
            "780 notification web [FIRING] HighLatency 900ms > 500ms (page)",
            "780 cycle rules=1 instances=1 transitions=1 notifications=1",
            "1200 HighLatency resolved (datapoint 2026-11-23T00:20:00Z, value 120)",
            "1260 notification web [RESOLVED] HighLatency back to 120ms (page)",
            "1260 cycle rules=1 instances=1 transitions=1 notifications=1",
        ],
        "{lines:#?}"
    );
    // Every page expires after the default retention (90 days).
    for item in w.store.items() {
        if item.pk.starts_with(history::PK_PREFIX) {
            let tick: i64 = item.sk[..10].parse().unwrap();
            assert_eq!(item.expires_at, Some(tick + 90 * 86_400), "{item:?}");
        }
    }
}

#[tokio::test]
async fn a_quiet_cycle_still_writes_nothing_with_history_on() {
    let w = world("");
    let writes = run(&w, 1..40).await;
    let quiet: Vec<i64> = writes
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(m, _)| *m)
        .collect();
    // Only the cycles that saw the pending, the fire (and its page) and the
    // resolve wrote; the first cycle of a normal instance stores nothing.
    let wrote: Vec<i64> = writes
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(m, _)| *m)
        .collect();
    assert_eq!(wrote, [11, 13, 21], "{writes:?}");
    assert_eq!(quiet.len(), 39 - 3);
    // And the store is untouched by a quiet cycle.
    let before = w.store.items();
    run(&w, 40..45).await;
    assert_eq!(w.store.items(), before);
}

#[tokio::test]
async fn history_can_be_turned_off_and_its_retention_set() {
    let w = world("history: {enabled: false}\n");
    run(&w, 1..30).await;
    assert!(
        history::read(w.store.as_ref(), T0, T0 + 3600)
            .await
            .unwrap()
            .is_empty()
    );

    let w = world("history: {retention: 7d}\n");
    run(&w, 1..15).await;
    let pages: Vec<_> = w
        .store
        .items()
        .into_iter()
        .filter(|i| i.pk.starts_with(history::PK_PREFIX))
        .collect();
    assert!(!pages.is_empty());
    for item in pages {
        let tick: i64 = item.sk[..10].parse().unwrap();
        assert_eq!(item.expires_at, Some(tick + 7 * 86_400));
    }
}

#[test]
fn the_history_section_is_checked() {
    let mut diags = Diagnostics::new();
    firebell_engine::load_texts(
        &[(
            "h.yaml".to_string(),
            "history:\n  retention: 420d\n  enabled: maybe\n  keep: 3\n".to_string(),
        )],
        &mut diags,
        Vec::new(),
    );
    assert_eq!(
        diags.to_string(),
        "h.yaml:3:12: error: `enabled` must be true or false, found \"maybe\"\n\
         h.yaml:2:14: error: retention must be between 1d and 400d, found 420d\n\
         h.yaml:4:3: error: unknown field `keep` in history (expected one of: enabled, retention)\n"
    );
}

#[test]
fn day_partitions_and_sort_keys() {
    assert_eq!(history::day_pk(T0), "history#2026-11-23");
    let k = history::key(T0 + 61, "page", "0000");
    assert_eq!(k.pk, "history#2026-11-23");
    assert_eq!(k.sk, "1795392061#page#0000");
}

#[tokio::test]
async fn status_shows_the_cycles_and_a_stuck_outbox_degrades_it() {
    use firebell_engine::status;
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let cfg = config("");
    let version = cfg.version.clone();
    let engine = Engine::new(
        cfg,
        Arc::new(source()),
        store.clone() as Arc<dyn StateStore>,
        notifier.clone(),
        EngineOptions::default(),
    );
    for m in 1..13 {
        clock.set_epoch(T0 + 60 * m);
        engine.run_cycle(T0 + 60 * m, &|| false).await.unwrap();
    }
    let st = status::read(store.as_ref(), T0 + 13 * 60, 5).await.unwrap();
    assert_eq!(st.verdict(), "healthy");
    assert_eq!(st.config_version(), Some(version.as_str()));
    assert_eq!(st.cycles.len(), 1);
    assert_eq!(st.cycles[0].tick, T0 + 11 * 60);
    assert_eq!(st.last_tick, Some(T0 + 11 * 60));
    // The page cannot be published any more.
    notifier.fail_next(1000);
    for m in 13..30 {
        clock.set_epoch(T0 + 60 * m);
        engine.run_cycle(T0 + 60 * m, &|| false).await.unwrap();
    }
    let st = status::read(store.as_ref(), T0 + 30 * 60, 5).await.unwrap();
    assert_eq!(st.outbox.len(), 1);
    assert_eq!(st.outbox[0].receiver, "web");
    assert_eq!(st.outbox[0].oldest, T0 + 13 * 60);
    assert!(!st.healthy());
    // The firing and resolved notices, and firebell's own page about the
    // stuck outbox (it routes to `web`, the only receiver, too).
    assert_eq!(st.problems[0], "3 notifications to web undelivered for 17m");
    assert!(
        st.problems
            .iter()
            .any(|p| p.starts_with("self-monitoring check outbox failing for ")),
        "{:?}",
        st.problems
    );
}
