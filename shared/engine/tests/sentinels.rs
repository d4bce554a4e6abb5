#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sentinel mode over the simulated alarms: which cycles evaluate a
//! covered rule, the reconcile and its record, and that sentinels change
//! no alert.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use firebell_core::diag::Diagnostics;
use firebell_core::ports::{AlarmService, Clock, StateStore};
use firebell_core::state::Event;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource, SimulatedAlarms};
use firebell_engine::sentinel::{self, Poll};
use firebell_engine::{Config, CycleReport, Engine, EngineOptions};

const T0: i64 = 1_795_392_000;
const PREFIX: &str = "fb-test-";

fn config(sentinels: &str) -> Arc<Config> {
    config_named("SlowCheckout", sentinels)
}

fn config_named(name: &str, sentinels: &str) -> Arc<Config> {
    let text = format!(
        r#"
rules:
  - name: {name}
    metrics:
      p99: {{namespace: Svc, metric: Latency, dimensions: {{Service: checkout}}, stat: p99, period: 1m}}
    expression: p99
    unit: ms
    condition: {{op: ">", threshold: 500}}
    for: 2m
    labels: {{team: web}}
  - name: HourlyReport
    interval: 1h
    metrics:
      n: {{namespace: Svc, metric: Reports, stat: Sum, period: 1h}}
    expression: n
    condition: {{op: "<", threshold: 1}}
receivers:
  web: {{topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}}
route:
  receiver: web
  group_by: [alertname]
  group_wait: 0s
{sentinels}
"#
    );
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(&[("test.yaml".to_string(), text)], &mut diags, Vec::new());
    assert!(!diags.has_errors(), "{diags}");
    Arc::new(c)
}

/// p99 latency: 120 ms, over 500 from minute 40 to 46.
fn source() -> Arc<ReplaySource> {
    source_breaching(40..46)
}

/// p99 latency: 120 ms, over 500 in `breach` (minutes).
fn source_breaching(breach: std::ops::Range<i64>) -> Arc<ReplaySource> {
    let points: Vec<String> = (0..120)
        .map(|m| {
            let v = if breach.contains(&m) { 900.0 } else { 120.0 };
            format!("[{},{v:?}]", T0 + 60 * m)
        })
        .collect();
    let text = format!(
        "{{\"namespace\":\"Svc\",\"metric\":\"Latency\",\"dimensions\":{{\"Service\":\"checkout\"}},\"stat\":\"p99\",\"period\":60,\"points\":[{}]}}\n",
        points.join(",")
    );
    Arc::new(ReplaySource::parse("latency.jsonl", &text).unwrap())
}

struct Run {
    engine: Engine,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    alarms: Arc<SimulatedAlarms>,
}

fn run(sentinels: &str) -> Run {
    run_with(config(sentinels), source())
}

fn run_with(config: Arc<Config>, src: Arc<ReplaySource>) -> Run {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let alarms = Arc::new(SimulatedAlarms::new(src.clone()));
    let engine = Engine::new(
        config,
        src,
        store.clone() as Arc<dyn StateStore>,
        Arc::new(MemoryNotifier::new()),
        EngineOptions {
            sentinel_prefix: PREFIX.to_string(),
            ..EngineOptions::default()
        },
    )
    .with_alarms(alarms.clone());
    Run {
        engine,
        clock,
        store,
        alarms,
    }
}

impl Run {
    async fn at(&self, minute: i64) -> CycleReport {
        let t = T0 + 60 * minute;
        self.clock.set_epoch(t);
        let r = self.engine.run_cycle_at(t, t, &|| false).await.unwrap();
        assert!(r.errors.is_empty(), "minute {minute}: {:?}", r.errors);
        r
    }
}

fn fired(r: &CycleReport) -> Vec<String> {
    r.transitions
        .iter()
        .filter(|t| matches!(t.event, Event::Fired { .. } | Event::Resolved { .. }))
        .map(|t| format!("{} {}", t.rule, t.event))
        .collect()
}

#[tokio::test]
async fn a_covered_rule_is_evaluated_only_while_hot_and_fires_as_with_polling() {
    let polling = run("");
    let sentinel = run("sentinels: {mode: auto}");
    let desired = sentinel.engine.desired_sentinels();
    assert_eq!(desired.alarms.len(), 1, "{:?}", desired.polling);
    assert_eq!(desired.alarms[0].name, "fb-test-rule.SlowCheckout");
    assert!(matches!(
        desired.polling.get("HourlyReport"),
        Some(firebell_core::sentinel::Polling::Cheaper { .. })
    ));

    let mut cold = Vec::new();
    let mut hot = Vec::new();
    let mut events = Vec::new();
    for m in 1..80 {
        let a = polling.at(m).await;
        let b = sentinel.at(m).await;
        assert_eq!(fired(&a), fired(&b), "minute {m}");
        events.extend(fired(&a).into_iter().map(|e| (m, e)));
        let s = &b.sentinels;
        if s.cold == 1 {
            cold.push(m);
        }
        if s.alarm == 1 || s.active == 1 {
            hot.push(m);
        }
        // Cold cycles fetch nothing for the rule (the hourly rule is due
        // only on the hour).
        if s.cold == 1 && m % 60 != 0 {
            assert_eq!(b.queries, 0, "minute {m}");
        }
    }
    // It fires two minutes into the breach and resolves after it, in both.
    let kinds: Vec<(i64, &str)> = events
        .iter()
        .map(|(m, e)| (*m, e.split(' ').nth(1).unwrap_or("")))
        .collect();
    assert_eq!(kinds, vec![(43, "fired"), (47, "resolved")], "{events:?}");
    // Minute 1 puts the sentinel, minute 2 sees it evaluated: from minute
    // 3 the rule is trusted, cold but for its sweeps and the incident.
    assert!(!cold.contains(&1) && !cold.contains(&2), "{cold:?}");
    assert_eq!(sentinel.alarms.names(), vec!["fb-test-rule.SlowCheckout"]);
    // Hot from the first breaching minute's cycle (datapoint 40 arrives
    // at minute 41) until its alarm's range has passed the breach.
    assert_eq!(hot.first(), Some(&41), "{hot:?}");
    assert!(hot.iter().all(|m| (41..80).contains(m)), "{hot:?}");
    // Swept once every 25 minutes (the default) when cold: minutes 3..40
    // hold 1 or 2.
    let swept_early = (3..40).filter(|m| !cold.contains(m)).count();
    assert!((1..=2).contains(&swept_early), "{cold:?}");
    assert!(cold.len() > 40, "{cold:?}");
}

#[tokio::test]
async fn a_sentinel_deleted_behind_firebells_back_is_put_again_at_the_next_sweep() {
    let r = run("sentinels: {mode: auto, sweep: 10m}");
    for m in 1..5 {
        r.at(m).await;
    }
    let name = "fb-test-rule.SlowCheckout";
    let record = sentinel::read_sync(r.store.as_ref())
        .await
        .unwrap()
        .unwrap()
        .0;
    assert!(record.in_sync.contains_key(name), "{record:?}");
    r.alarms.remove(name);
    let puts = r.alarms.puts.load(Ordering::Relaxed);
    // Minutes 5..9: cold (or swept); the minute-10 reconcile puts it again.
    for m in 5..10 {
        r.at(m).await;
    }
    assert_eq!(r.alarms.puts.load(Ordering::Relaxed), puts);
    let at10 = r.at(10).await;
    let changes = at10
        .sentinels
        .reconciled
        .clone()
        .expect("reconciled at the sweep");
    assert_eq!(changes.create, vec![name.to_string()]);
    assert_eq!(r.alarms.puts.load(Ordering::Relaxed), puts + 1);
    // Until it is seen evaluated the rule is polled again.
    let at11 = r.at(11).await;
    assert_eq!(at11.sentinels.unsynced, 1);
    let at12 = r.at(12).await;
    assert_eq!(at12.sentinels.unsynced, 0);
}

#[tokio::test]
async fn a_quiet_reconcile_writes_nothing_and_turning_sentinels_off_deletes_them() {
    let r = run("sentinels: {mode: auto, sweep: 5m}");
    for m in 1..4 {
        r.at(m).await;
    }
    let before = r.store.items();
    // Minute 5 reconciles (a sweep boundary) and finds what minute 2 found.
    let at5 = r.at(5).await;
    assert!(
        at5.sentinels
            .reconciled
            .as_ref()
            .is_some_and(|c| c.is_noop())
    );
    assert_eq!(at5.store_writes, 0);
    assert_eq!(r.store.items(), before);

    // The same store and alarms under a config with sentinels off.
    let off = Engine::new(
        config("sentinels: {mode: off}"),
        source(),
        r.store.clone() as Arc<dyn StateStore>,
        Arc::new(MemoryNotifier::new()),
        EngineOptions {
            sentinel_prefix: PREFIX.to_string(),
            ..EngineOptions::default()
        },
    )
    .with_alarms(r.alarms.clone());
    let t = T0 + 60 * 6;
    r.clock.set_epoch(t);
    let rep = off.run_cycle_at(t, t, &|| false).await.unwrap();
    assert_eq!(
        rep.sentinels.reconciled.map(|c| c.delete),
        Some(vec!["fb-test-rule.SlowCheckout".to_string()])
    );
    assert!(r.alarms.names().is_empty());
    assert!(r.alarms.alarming(PREFIX, t).await.unwrap().is_empty());
}

#[tokio::test]
async fn unreadable_alarms_mean_every_covered_rule_is_polled() {
    struct Down;
    #[async_trait::async_trait]
    impl AlarmService for Down {
        async fn alarming(
            &self,
            _: &str,
            _: i64,
        ) -> Result<Vec<String>, firebell_core::ports::AlarmError> {
            Err(firebell_core::ports::AlarmError::Unavailable("down".into()))
        }
        async fn list(
            &self,
            _: &str,
            _: i64,
        ) -> Result<Vec<firebell_core::ports::AlarmInfo>, firebell_core::ports::AlarmError>
        {
            Err(firebell_core::ports::AlarmError::Unavailable("down".into()))
        }
        async fn put(
            &self,
            _: &firebell_core::sentinel::SentinelAlarm,
        ) -> Result<(), firebell_core::ports::AlarmError> {
            Err(firebell_core::ports::AlarmError::Unavailable("down".into()))
        }
        async fn delete(&self, _: &[String]) -> Result<(), firebell_core::ports::AlarmError> {
            Err(firebell_core::ports::AlarmError::Unavailable("down".into()))
        }
    }
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let engine = Engine::new(
        config("sentinels: {mode: auto}"),
        source(),
        store as Arc<dyn StateStore>,
        Arc::new(MemoryNotifier::new()),
        EngineOptions::default(),
    )
    .with_alarms(Arc::new(Down));
    let t = T0 + 60;
    let r = engine.run_cycle_at(t, t, &|| false).await.unwrap();
    assert_eq!(r.sentinels.unsynced, 1);
    assert_eq!(r.sentinels.cold, 0);
    assert!(
        r.errors
            .iter()
            .any(|e| e.to_string() == "sentinel alarms: alarms unavailable: down"),
        "{:?}",
        r.errors
    );
    assert_eq!(Poll::Unsynced, Poll::Unsynced);
}

#[tokio::test]
async fn a_breach_missed_while_a_sentinel_was_gone_fires_at_the_rules_sweep() {
    // A rule whose sweep (25 minutes) falls at minute 20 to 24, long after
    // a breach at minutes 5 to 8 has left its lookback.
    let sweep = std::time::Duration::from_secs(25 * 60);
    let name = (0..500)
        .map(|i| format!("Slow{i}"))
        .find(|n| {
            let r = config_named(n, "").rules.rules[0].clone();
            let due: Vec<i64> = (3..25)
                .filter(|m| sentinel::sweep_due(&r, T0 + 60 * m, sweep))
                .collect();
            due.len() == 1 && (20..25).contains(&due[0])
        })
        .expect("a name swept at minute 20 to 24");
    let cfg = config_named(&name, "sentinels: {mode: auto}");
    let polling = run_with(config_named(&name, ""), source_breaching(5..9));
    let r = run_with(cfg, source_breaching(5..9));
    r.at(1).await;
    r.at(2).await;
    // Deleted behind firebell's back before the breach: nothing says so
    // until the minute-25 reconcile.
    r.alarms.remove(&format!("{PREFIX}rule.{name}"));
    let mut fired_polling = Vec::new();
    let mut fired_sentinel = Vec::new();
    for m in 1..25 {
        let a = polling.at(m).await;
        fired_polling.extend(fired(&a).into_iter().map(|e| (m, e)));
        if m >= 3 {
            let b = r.at(m).await;
            fired_sentinel.extend(fired(&b).into_iter().map(|e| (m, e)));
        }
    }
    // Polling fires at minute 8 (datapoints 5, 6, 7); sentinel mode at the
    // sweep, with the same datapoint times, and resolves with them.
    assert_eq!(fired_polling.len(), 2, "{fired_polling:?}");
    assert_eq!(fired_polling[0].0, 8);
    assert_eq!(fired_sentinel.len(), 2, "{fired_sentinel:?}");
    assert!(
        (20..25).contains(&fired_sentinel[0].0),
        "{fired_sentinel:?}"
    );
    let texts = |v: &[(i64, String)]| v.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&fired_polling), texts(&fired_sentinel));
}

#[tokio::test]
async fn a_config_change_polls_every_covered_rule_until_its_reconcile() {
    let r = run("sentinels: {mode: auto}");
    for m in 1..5 {
        r.at(m).await;
    }
    assert_eq!(r.at(5).await.sentinels.unsynced, 0);
    // The same rule under a config of another version (a label added).
    let changed = {
        let text = "sentinels: {mode: auto}";
        let c = config(text);
        let mut c = (*c).clone();
        c.version = "another".into();
        Arc::new(c)
    };
    let engine = r.engine.with_config(changed);
    let t = T0 + 60 * 6;
    r.clock.set_epoch(t);
    let rep = engine.run_cycle_at(t, t, &|| false).await.unwrap();
    assert_eq!(rep.sentinels.unsynced, 1, "{rep:?}");
    assert!(rep.sentinels.reconciled.is_some());
    let t = T0 + 60 * 7;
    r.clock.set_epoch(t);
    let rep = engine.run_cycle_at(t, t, &|| false).await.unwrap();
    assert_eq!(
        (rep.sentinels.unsynced, rep.sentinels.cold),
        (0, 1),
        "{rep:?}"
    );
}

#[tokio::test]
async fn a_corrupt_sync_record_polls_everything_and_is_rewritten() {
    let r = run("sentinels: {mode: auto}");
    for m in 1..4 {
        r.at(m).await;
    }
    let key = sentinel::sync_key();
    let mut item = r.store.get(&key).await.unwrap().expect("a record");
    let version = item.version;
    item.data = "{not json".into();
    item.version += 1;
    r.store
        .put(item, firebell_core::ports::Expect::Version(version))
        .await
        .unwrap();
    let t = T0 + 60 * 4;
    r.clock.set_epoch(t);
    let rep = r.engine.run_cycle_at(t, t, &|| false).await.unwrap();
    assert_eq!(rep.sentinels.unsynced, 1);
    assert!(
        rep.errors.iter().any(|e| e.to_string().starts_with(
            "sentinel alarms: alarm request refused: the sentinel sync record cannot be read"
        )),
        "{:?}",
        rep.errors
    );
    // The reconcile it was due rewrote it.
    assert!(rep.sentinels.reconciled.is_some());
    let (record, _) = sentinel::read_sync(r.store.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.corrupt, None);
    assert_eq!(record.in_sync.len(), 1);
    assert_eq!(r.at(5).await.sentinels.cold, 1);
}

#[tokio::test]
async fn a_refused_put_fails_alone() {
    struct Refusing(SimulatedAlarms);
    #[async_trait::async_trait]
    impl AlarmService for Refusing {
        async fn alarming(
            &self,
            p: &str,
            now: i64,
        ) -> Result<Vec<String>, firebell_core::ports::AlarmError> {
            self.0.alarming(p, now).await
        }
        async fn list(
            &self,
            p: &str,
            now: i64,
        ) -> Result<Vec<firebell_core::ports::AlarmInfo>, firebell_core::ports::AlarmError>
        {
            self.0.list(p, now).await
        }
        async fn put(
            &self,
            a: &firebell_core::sentinel::SentinelAlarm,
        ) -> Result<(), firebell_core::ports::AlarmError> {
            if a.name.ends_with("First") {
                return Err(firebell_core::ports::AlarmError::Refused(
                    "LimitExceeded: too many alarms".into(),
                ));
            }
            self.0.put(a).await
        }
        async fn delete(&self, n: &[String]) -> Result<(), firebell_core::ports::AlarmError> {
            self.0.delete(n).await
        }
    }
    let text = "rules:
  - name: First
    metrics:
      m: {namespace: N, metric: M, stat: Sum}
    expression: m
    condition: {op: '>', threshold: 1}
  - name: Second
    metrics:
      m: {namespace: N, metric: M2, stat: Sum}
    expression: m
    condition: {op: '>', threshold: 1}
sentinels: {mode: auto}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
";
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(&[("t.yaml".into(), text.into())], &mut diags, Vec::new());
    assert!(!diags.has_errors(), "{diags}");
    let desired = sentinel::desired(&c, PREFIX);
    let service = Refusing(SimulatedAlarms::new(source()));
    let (changes, record) =
        sentinel::reconcile(&desired, &service, PREFIX, "v", T0, 20, true, &|| false)
            .await
            .unwrap();
    assert_eq!(
        changes.refused,
        ["fb-test-rule.First: alarm request refused: LimitExceeded: too many alarms"]
    );
    assert_eq!(service.0.names(), ["fb-test-rule.Second"]);
    assert_eq!(
        record
            .out_of_sync
            .get("fb-test-rule.First")
            .map(String::as_str),
        Some("missing; refused: alarm request refused: LimitExceeded: too many alarms")
    );
    // The deadline: nothing put, everything deferred.
    let (changes, _) = sentinel::reconcile(&desired, &service, PREFIX, "v", T0, 20, true, &|| true)
        .await
        .unwrap();
    assert_eq!(changes.deferred, ["fb-test-rule.First"]);
}
