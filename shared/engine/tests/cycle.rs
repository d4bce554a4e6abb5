#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The engine over the embedded adapters: cycles, restarts, duplicates,
//! overlaps and config changes.

use std::sync::Arc;

use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, StateStore};
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{Config, Engine, EngineOptions, Skip};

const T0: i64 = 1_795_392_000;

const RULES: &str = r#"
rules:
  - name: HighLatency
    metrics:
      p99: {namespace: Svc, metric: Latency, dimensions: {Service: "*"}, stat: p99, period: 1m}
    expression: p99
    unit: ms
    condition: {op: ">", threshold: 500}
    for: 2m
    labels: {team: web, severity: page}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
  group_by: [alertname, Service]
  group_wait: 0s
"#;

fn config(text: &str) -> Arc<Config> {
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(
        &[("test.yaml".to_string(), text.to_string())],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    Arc::new(c)
}

/// Two services; `slow` is above the threshold from minute 10 to 30.
fn source(services: &[&str]) -> ReplaySource {
    let mut text = String::new();
    for svc in services {
        let points: Vec<String> = (0..60)
            .map(|m| {
                let v = if *svc == "slow" && (10..30).contains(&m) {
                    900.0
                } else {
                    120.0
                };
                format!("[{},{v}]", T0 + 60 * m)
            })
            .collect();
        text.push_str(&format!(
            "{{\"namespace\":\"Svc\",\"metric\":\"Latency\",\"dimensions\":{{\"Service\":\"{svc}\"}},\"stat\":\"p99\",\"period\":60,\"points\":[{}]}}\n",
            points.join(",")
        ));
    }
    ReplaySource::parse("test.jsonl", &text).unwrap()
}

struct World {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    notifier: Arc<MemoryNotifier>,
}

impl World {
    fn new() -> World {
        let clock = Arc::new(ManualClock::at_epoch(T0));
        World {
            store: Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>)),
            clock,
            notifier: Arc::new(MemoryNotifier::new()),
        }
    }

    fn engine(&self, cfg: Arc<Config>, src: ReplaySource, owner: &str) -> Engine {
        Engine::new(
            cfg,
            Arc::new(src),
            self.store.clone() as Arc<dyn StateStore>,
            self.notifier.clone(),
            EngineOptions {
                owner: owner.into(),
                ..EngineOptions::default()
            },
        )
    }
}

async fn run(w: &World, e: &Engine, minutes: std::ops::Range<i64>) -> Vec<String> {
    let mut subjects = Vec::new();
    for m in minutes {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = e.run_cycle(now, &|| false).await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        subjects.extend(
            w.notifier
                .take()
                .into_iter()
                .map(|o| format!("{m} {}", o.subject)),
        );
    }
    subjects
}

#[tokio::test]
async fn wildcard_dimensions_make_one_alert_per_value() {
    let w = World::new();
    let e = w.engine(config(RULES), source(&["fast", "slow"]), "a");
    let subjects = run(&w, &e, 1..40).await;
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[0].starts_with("13 [FIRING] HighLatency 900ms > 500ms"),
        "{subjects:?}"
    );
    assert!(subjects[1].starts_with("31 [RESOLVED]"), "{subjects:?}");
}

#[tokio::test]
async fn a_restart_loses_nothing_and_repeats_nothing() {
    let w = World::new();
    let first = w.engine(config(RULES), source(&["fast", "slow"]), "a");
    let mut subjects = run(&w, &first, 1..20).await;
    drop(first);
    // A new process (cold start) on the same store carries on.
    let second = w.engine(config(RULES), source(&["fast", "slow"]), "b");
    subjects.extend(run(&w, &second, 20..40).await);
    assert_eq!(subjects.len(), 2, "{subjects:?}");
}

#[tokio::test]
async fn a_duplicate_tick_is_skipped() {
    let w = World::new();
    let e = w.engine(config(RULES), source(&["slow"]), "a");
    run(&w, &e, 1..14).await;
    let again = e.run_cycle(T0 + 60 * 13, &|| false).await.unwrap();
    assert_eq!(again.skipped, Some(Skip::Duplicate));
    let older = e.run_cycle(T0 + 60 * 5, &|| false).await.unwrap();
    assert_eq!(older.skipped, Some(Skip::Duplicate));
    assert!(w.notifier.take().is_empty());
}

#[tokio::test]
async fn an_overlapping_cycle_is_skipped() {
    let w = World::new();
    let a = w.engine(config(RULES), source(&["slow"]), "a");
    let b = w.engine(config(RULES), source(&["slow"]), "b");
    // (Quiet cycles take no lease and may overlap: they write nothing.)
    run(&w, &a, 1..13).await;
    let fire = T0 + 60 * 13;
    w.clock.set_epoch(fire);
    let (ra, rb) = tokio::join!(a.run_cycle(fire, &|| false), b.run_cycle(fire, &|| false));
    let skipped = [ra.unwrap().skipped, rb.unwrap().skipped];
    assert!(
        skipped.contains(&Some(Skip::Overlap)) || skipped.contains(&Some(Skip::Duplicate)),
        "{skipped:?}"
    );
    assert!(skipped.contains(&None), "{skipped:?}");
    assert_eq!(w.notifier.take().len(), 1, "the fire is told once");
}

#[tokio::test]
async fn a_removed_rule_resolves_its_firing_alert() {
    let w = World::new();
    let e = w.engine(config(RULES), source(&["slow"]), "a");
    let subjects = run(&w, &e, 1..20).await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    // The rule is deleted while it fires: tell the team it is over.
    let without = RULES.replace("name: HighLatency", "name: Renamed");
    let e = w.engine(config(&without), source(&["slow"]), "a");
    let subjects = run(&w, &e, 20..22).await;
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("[RESOLVED] HighLatency"))
            .count(),
        1,
        "{subjects:?}"
    );
    // (The renamed rule is a new rule and fires on its own.)
    assert!(
        subjects.iter().any(|s| s.contains("[FIRING] Renamed")),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn a_vanished_instance_resolves_its_firing_alert() {
    let w = World::new();
    let e = w.engine(config(RULES), source(&["fast", "slow"]), "a");
    assert_eq!(run(&w, &e, 1..20).await.len(), 1);
    // `slow` no longer reports at all: its alert must not fire forever.
    let e = w.engine(config(RULES), source(&["fast"]), "a");
    let subjects = run(&w, &e, 20..22).await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].contains("[RESOLVED]"), "{subjects:?}");
}

/// A rule evaluated every 10 minutes still judges every datapoint since
/// the last evaluation: a 1-minute spike between evaluations fires.
#[tokio::test]
async fn a_long_interval_rule_judges_every_datapoint_between_evaluations() {
    let rules = r#"
rules:
  - name: Spike
    interval: 10m
    metrics:
      p99: {namespace: Svc, metric: Latency, dimensions: {Service: spiky}, stat: p99, period: 1m}
    expression: p99
    condition: {op: ">", threshold: 500}
    labels: {team: web}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
  group_wait: 0s
"#;
    let points: Vec<String> = (0..60)
        .map(|m| format!("[{},{}]", T0 + 60 * m, if m == 22 { 900 } else { 100 }))
        .collect();
    let src = ReplaySource::parse(
        "spiky.jsonl",
        &format!(
            "{{\"namespace\":\"Svc\",\"metric\":\"Latency\",\"dimensions\":{{\"Service\":\"spiky\"}},\"stat\":\"p99\",\"period\":60,\"points\":[{}]}}\n",
            points.join(",")
        ),
    )
    .unwrap();
    let w = World::new();
    let e = w.engine(config(rules), src, "a");
    let mut sent = Vec::new();
    for m in 1..40 {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        e.run_cycle(now, &|| false).await.unwrap();
        sent.extend(w.notifier.take());
    }
    // Judged at the 00:30 evaluation, where it fired and resolved at once:
    // told exactly once, not lost.
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].subject.starts_with("[RESOLVED] Spike"),
        "{}",
        sent[0].subject
    );
    let body = &sent[0].bodies["default"];
    assert!(
        body.contains("Spike fired at 2026-11-23 00:22 UTC and resolved at 2026-11-23 00:23 UTC before a notification could go out"),
        "{body}"
    );
}

/// An instance whose state was stored long ago replays from the start of its
/// window: the first points, where RATE has no previous value, are not judged
/// (with `missing_data: ok` they would resolve a firing alert).
#[tokio::test]
async fn warm_up_points_are_not_judged_on_replay() {
    let rules = r#"
rules:
  - name: Growing
    metrics:
      n: {namespace: Svc, metric: Queue, dimensions: {Service: q}, stat: Maximum, period: 1m}
    expression: RATE(n) * 60
    condition: {op: ">", threshold: 5}
    missing_data: ok
    labels: {team: web}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
  group_wait: 0s
"#;
    // The queue grows by 10 a minute all hour: the alert fires once and stays.
    let points: Vec<String> = (0..60)
        .map(|m| format!("[{},{}]", T0 + 60 * m, 10 * m))
        .collect();
    let src = ReplaySource::parse(
        "q.jsonl",
        &format!(
            "{{\"namespace\":\"Svc\",\"metric\":\"Queue\",\"dimensions\":{{\"Service\":\"q\"}},\"stat\":\"Maximum\",\"period\":60,\"points\":[{}]}}\n",
            points.join(",")
        ),
    )
    .unwrap();
    let w = World::new();
    let e = w.engine(config(rules), src, "a");
    let subjects = run(&w, &e, 1..55).await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].contains("[FIRING] Growing"), "{subjects:?}");
}

/// Issue #10: a rule that cannot be evaluated (here one built around
/// `validate`, with a lookback beyond any time) fails alone: an error for
/// that rule, the other rules evaluated, no panic or abort.
#[tokio::test]
async fn a_rule_that_cannot_be_evaluated_fails_alone() {
    let mut cfg = (*config(RULES)).clone();
    let mut broken = cfg.rules.rules[0].clone();
    broken.name = "Broken".into();
    broken.pending = firebell_core::model::Pending::For(std::time::Duration::from_secs(u64::MAX));
    cfg.rules.rules.push(broken);
    let w = World::new();
    let e = w.engine(Arc::new(cfg), source(&["slow"]), "a");
    let mut fired = Vec::new();
    for m in 1..20 {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = e.run_cycle(now, &|| false).await.unwrap();
        let errors: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            vec![
                "rule Broken: cannot be evaluated: lookback of 18446744073709551615 s is out of range"
            ]
        );
        assert!(!r.errors[0].is_retryable());
        fired.extend(w.notifier.take().into_iter().map(|o| o.subject));
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(fired[0].starts_with("[FIRING] HighLatency"), "{fired:?}");
}

/// 2200-01-01T00:00:00Z.
const FAR_FUTURE: i64 = 7_258_118_400;

/// A cycle once ran at a far-future tick (a wrong `scheduled_time`, `run
/// --at 2200-01-01T00:00:00Z`): its `cycle/last` must not make every later
/// tick a duplicate.
#[tokio::test]
async fn a_future_last_tick_is_clock_skew_and_evaluation_goes_on() {
    use firebell_core::ports::{Expect, Item};
    let w = World::new();
    let e = w.engine(config(RULES), source(&["slow"]), "a");
    assert!(run(&w, &e, 1..5).await.is_empty());
    let key = firebell_engine::keys::last_tick();
    let version = w
        .store
        .get(&key)
        .await
        .unwrap()
        .map_or(1, |i| i.version + 1);
    w.store
        .put(
            Item {
                pk: key.pk.clone(),
                sk: key.sk.clone(),
                version,
                data: format!("{{\"tick\":{FAR_FUTURE},\"layout\":2}}"),
                expires_at: None,
            },
            Expect::Any,
        )
        .await
        .unwrap();
    // Without a clock the engine can only take it as a duplicate.
    let blind = e.run_cycle(T0 + 60 * 5, &|| false).await.unwrap();
    assert_eq!(blind.skipped, Some(Skip::Duplicate));
    // With the clock it is skew: reported, and the cycle evaluates.
    let mut subjects = Vec::new();
    for m in 5..20 {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = e.run_cycle_at(now, now, &|| false).await.unwrap();
        assert_eq!(r.skipped, None, "minute {m}");
        assert_eq!(r.rules_evaluated, 1, "minute {m}");
        let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
        if m == 5 {
            assert_eq!(
                errors,
                [
                    "clock skew: the last recorded tick 7258118400 is later than now (1795392300); evaluating anyway and recording tick 1795392300"
                ]
            );
            assert!(!r.errors[0].is_retryable());
        } else {
            // The first cycle recorded its own tick over the future one.
            assert!(errors.is_empty(), "minute {m}: {errors:?}");
        }
        subjects.extend(
            w.notifier
                .take()
                .into_iter()
                .map(|o| format!("{m} {}", o.subject)),
        );
    }
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(
        subjects[0].starts_with("13 [FIRING] HighLatency 900ms > 500ms"),
        "{subjects:?}"
    );
    let last = w.store.get(&key).await.unwrap().unwrap();
    // (The last cycle that wrote: the fire.)
    assert_eq!(
        last.data,
        format!("{{\"tick\":{},\"layout\":2}}", T0 + 60 * 13)
    );
    // A true duplicate (the tick already done, the clock past it) still is one.
    let again = e
        .run_cycle_at(T0 + 60 * 13, T0 + 60 * 19 + 5, &|| false)
        .await
        .unwrap();
    assert_eq!(again.skipped, Some(Skip::Duplicate));
}

/// A config change that renames a rule's label while it fires: the old
/// alert resolves saying the rule changed, and the new instance fires.
#[tokio::test]
async fn a_changed_rule_label_resolves_the_old_alert_saying_the_rule_changed() {
    // (Grouped by team too, so the old and the new alert are told apart.)
    let rules = RULES.replace(
        "group_by: [alertname, Service]",
        "group_by: [alertname, Service, team]",
    );
    let w = World::new();
    let e = w.engine(config(&rules), source(&["fast", "slow"]), "a");
    assert_eq!(run(&w, &e, 1..20).await.len(), 1);
    let changed = rules.replace(
        "labels: {team: web, severity: page}",
        "labels: {team: checkout, tier: \"1\"}",
    );
    let e = w.engine(config(&changed), source(&["fast", "slow"]), "a");
    let mut subjects = Vec::new();
    let mut resolved_bodies = Vec::new();
    for m in 20..25 {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = e.run_cycle(now, &|| false).await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        for o in w.notifier.take() {
            if o.subject.contains("[RESOLVED]") {
                resolved_bodies.push(o.bodies["default"].clone());
            }
            subjects.push(format!("{m} {}", o.subject));
        }
    }
    assert_eq!(resolved_bodies.len(), 1, "{subjects:?}");
    assert!(
        resolved_bodies[0].contains(
            "resolved_because: its rule's labels changed (team: web -> checkout, tier: (none) -> 1, severity: page -> (none))"
        ),
        "{}",
        resolved_bodies[0]
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("[RESOLVED] HighLatency"))
            .count(),
        1,
        "{subjects:?}"
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("[FIRING] HighLatency"))
            .count(),
        1,
        "{subjects:?}"
    );
    let because: Vec<(String, String)> = w
        .store
        .query(firebell_engine::keys::ACTIVE, "")
        .await
        .unwrap()
        .iter()
        .map(|i| serde_json::from_str::<serde_json::Value>(&i.data).unwrap())
        .filter(|a| a["status"] == "resolved")
        .map(|a| {
            (
                a["labels"]["team"].as_str().unwrap().to_string(),
                a["annotations"]["resolved_because"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        because,
        [(
            "web".to_string(),
            "its rule's labels changed (team: web -> checkout, tier: (none) -> 1, severity: page -> (none))"
                .to_string()
        )]
    );
}

/// A dimension value that vanishes (the rule unchanged) still says so.
#[tokio::test]
async fn a_vanished_instance_says_its_dimension_value_is_gone() {
    let w = World::new();
    let e = w.engine(config(RULES), source(&["fast", "slow"]), "a");
    assert_eq!(run(&w, &e, 1..20).await.len(), 1);
    let e = w.engine(config(RULES), source(&["fast"]), "a");
    assert_eq!(run(&w, &e, 20..22).await.len(), 1);
    let item = w
        .store
        .query(firebell_engine::keys::ACTIVE, "")
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let a: serde_json::Value = serde_json::from_str(&item.data).unwrap();
    assert_eq!(
        a["annotations"]["resolved_because"],
        "its instance is gone (the dimension value no longer exists)"
    );
}

/// One whole cycle at a far-future tick (`run --force --at 2200-...`: its
/// own now) in the middle of an incident, then normal ticks: they
/// evaluate, and the incident, still going on, is told again.
#[tokio::test]
async fn after_a_cycle_at_a_far_future_tick_a_fire_is_still_notified() {
    // Missing data raises NoData: the future cycle, which has no data,
    // writes the instance's state (judged up to the future) and its tick.
    let rules = RULES.replace("for: 2m", "for: 2m\n    missing_data: nodata");
    let w = World::new();
    let e = w.engine(config(&rules), source(&["slow"]), "a");
    let subjects = run(&w, &e, 1..15).await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].starts_with("13 [FIRING]"), "{subjects:?}");
    w.clock.set_epoch(FAR_FUTURE);
    let future = e
        .run_cycle_at(FAR_FUTURE, FAR_FUTURE, &|| false)
        .await
        .unwrap();
    assert_eq!(future.skipped, None);
    w.notifier.take();
    let last = w
        .store
        .get(&firebell_engine::keys::last_tick())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.data, format!("{{\"tick\":{FAR_FUTURE},\"layout\":2}}"));
    let mut subjects = Vec::new();
    for m in 15..35 {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = e.run_cycle_at(now, now, &|| false).await.unwrap();
        assert_eq!(r.skipped, None, "minute {m}");
        let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
        if m == 15 {
            assert_eq!(
                errors,
                [
                    "clock skew: the last recorded tick 7258118400 is later than now (1795392900); evaluating anyway and recording tick 1795392900",
                    "rule HighLatency: clock skew: an instance was judged up to 7258118220, later than now (1795392900); judged again from its lookback window"
                ]
            );
            // Judged again from its lookback window: the incident fires again.
            let events: Vec<String> = r
                .transitions
                .iter()
                .map(|t| format!("{:?}", t.event))
                .collect();
            assert_eq!(
                events,
                [
                    "NoDataEnded { at: 1795392420 }",
                    "Pending { at: 1795392600 }",
                    "Fired { at: 1795392720, value: Some(900.0) }"
                ]
            );
        } else {
            assert!(errors.is_empty(), "minute {m}: {errors:?}");
        }
        subjects.extend(
            w.notifier
                .take()
                .into_iter()
                .map(|o| format!("{m} {}", o.subject)),
        );
    }
    // Told again after the group's interval (its log, dated in the future,
    // counts from now), and resolved when it ends.
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[0].starts_with("20 [FIRING] HighLatency 900ms > 500ms"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].starts_with("31 [RESOLVED] HighLatency"),
        "{subjects:?}"
    );
}

/// An alert record over the store's 400 KB item limit (29 annotations of
/// 4,096 four-byte characters, each within the validate limits) is shrunk
/// and written, and the page goes out: it does not fail every cycle.
#[tokio::test]
async fn an_alert_too_large_to_store_is_shrunk_and_still_paged() {
    let huge = "🔥".repeat(firebell_core::config::MAX_ANNOTATION_CHARS);
    let annotations: Vec<String> = (1..firebell_core::config::MAX_ANNOTATIONS)
        .map(|i| format!("      note{i:02}: \"{huge}\"\n"))
        .collect();
    let text = RULES.replace(
        "    labels: {team: web, severity: page}\n",
        &format!(
            "    labels: {{team: web, severity: page}}\n    annotations:\n      runbook_url: https://wiki/latency\n{}",
            annotations.concat()
        ),
    );
    let w = World::new();
    let e = w.engine(config(&text), source(&["slow"]), "a");
    let subjects = run(&w, &e, 1..15).await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(
        subjects[0].starts_with("13 [FIRING] HighLatency 900ms > 500ms"),
        "{subjects:?}"
    );
    let active = w.store.query("active", "").await.unwrap();
    assert_eq!(active.len(), 1);
    let alert: firebell_core::alert::Alert = serde_json::from_str(&active[0].data).unwrap();
    assert_eq!(
        alert.annotations["note01"],
        "(left out: the alert was too large to store)"
    );
    assert_eq!(alert.annotations["runbook_url"], "https://wiki/latency");
    assert!(alert.recent.is_empty(), "the recent datapoints went first");
}

/// One replay line: `Svc` metric `metric` (Sum, 1m) with dimensions `dims`
/// (JSON) and `points` (`[t,v]` each).
fn sum_line(metric: &str, dims: &str, points: &[String]) -> String {
    format!(
        "{{\"namespace\":\"Svc\",\"metric\":\"{metric}\",\"dimensions\":{dims},\"stat\":\"Sum\",\"period\":60,\"points\":[{}]}}\n",
        points.join(",")
    )
}

/// Issue 11: every wildcard dimension is expanded, over the combinations
/// the source reports (three here), not their cross product (four), and
/// the other metric of the rule takes its wildcard from the instance.
#[tokio::test]
async fn two_wildcard_dimensions_make_one_instance_per_reported_pair() {
    let series = |metric: &str, dims: &str, f: &dyn Fn(i64) -> f64| {
        let points: Vec<String> = (0..60)
            .map(|m| format!("[{},{}]", T0 + 60 * m, f(m)))
            .collect();
        sum_line(metric, dims, &points)
    };
    let mut text = String::new();
    for (svc, inst) in [("api", "i-1"), ("api", "i-2"), ("web", "i-3")] {
        let dims = format!("{{\"Service\":\"{svc}\",\"Instance\":\"{inst}\"}}");
        let bad = inst == "i-2";
        text.push_str(&series("Errors", &dims, &|m| {
            if bad && (10..30).contains(&m) {
                50.0
            } else {
                0.0
            }
        }));
        text.push_str(&series("Requests", &dims, &|_| 1000.0));
    }
    let src = ReplaySource::parse("two.jsonl", &text).unwrap();
    let rules = r#"
rules:
  - name: InstanceErrors
    metrics:
      errors: {namespace: Svc, metric: Errors, dimensions: {Service: "*", Instance: "*"}, stat: Sum, period: 1m}
      requests: {namespace: Svc, metric: Requests, dimensions: {Service: "*", Instance: "*"}, stat: Sum, period: 1m}
    expression: 100 * errors / requests
    unit: percent
    condition: {op: ">", threshold: 1}
    for: 2m
    labels: {team: web, severity: page}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
  group_by: [alertname, Service, Instance]
  group_wait: 0s
"#;
    let w = World::new();
    let e = w.engine(config(rules), src, "a");
    w.clock.set_epoch(T0 + 60);
    let r = e.run_cycle(T0 + 60, &|| false).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.instances_evaluated, 3, "the reported pairs, not 2 x 3");
    let subjects = run(&w, &e, 2..40).await;
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[0].starts_with("13 [FIRING] InstanceErrors 5% > 1%"),
        "{subjects:?}"
    );
    assert!(subjects[1].starts_with("31 [RESOLVED]"), "{subjects:?}");
    let active = w.store.query("active", "").await.unwrap();
    let alert: firebell_core::alert::Alert = serde_json::from_str(&active[0].data).unwrap();
    assert_eq!(alert.labels["Service"], "api");
    assert_eq!(alert.labels["Instance"], "i-2");
}

/// A source whose `Errors` datapoints arrive `lag` seconds after their
/// period ends (CloudWatch's publication delay); `Requests` at once.
struct LateErrors {
    inner: ReplaySource,
    lag: i64,
}

#[async_trait::async_trait]
impl firebell_core::ports::MetricsSource for LateErrors {
    async fn fetch(
        &self,
        queries: &[firebell_core::ports::MetricQuery],
        start: i64,
        end: i64,
    ) -> Result<Vec<firebell_core::ports::MetricSeries>, firebell_core::ports::MetricsError> {
        let mut out = self.inner.fetch(queries, start, end).await?;
        for (s, q) in out.iter_mut().zip(queries) {
            if q.spec.metric_name == "Errors" {
                s.points.retain(|p| p.t + 60 + self.lag <= end);
            }
        }
        Ok(out)
    }
}

/// Issue 11, late data: `Errors` is published only when non-zero (sparse)
/// and arrives three minutes after `Requests`. Without a delay each minute
/// is judged with `Requests` in and `Errors` not yet, `FILL(errors, 0)`
/// reads it as 0%, and the fire is never seen; with `evaluation_delay`
/// (or a longer `arrival_grace`) every minute is judged once both are in.
#[tokio::test]
async fn a_late_sparse_error_minute_is_judged_once_it_arrives() {
    let mut text = String::new();
    let dims = "{\"Service\":\"pay\"}";
    let requests: Vec<String> = (0..60).map(|m| format!("[{},1000]", T0 + 60 * m)).collect();
    // Errors only while failing (minutes 10 to 19): 5%.
    let errors: Vec<String> = (10..20).map(|m| format!("[{},50]", T0 + 60 * m)).collect();
    for (metric, points) in [("Requests", requests), ("Errors", errors)] {
        text.push_str(&sum_line(metric, dims, &points));
    }
    let rules = |extra: &str| {
        format!(
            r#"
rules:
  - name: PayErrors
    metrics:
      errors: {{namespace: Svc, metric: Errors, dimensions: {{Service: pay}}, stat: Sum, period: 1m}}
      requests: {{namespace: Svc, metric: Requests, dimensions: {{Service: pay}}, stat: Sum, period: 1m}}
    expression: 100 * FILL(errors, 0) / requests
    unit: percent
    condition: {{op: ">", threshold: 1}}
    for: 3m
{extra}    labels: {{team: web, severity: page}}
receivers:
  web: {{topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}}
route:
  receiver: web
  group_wait: 0s
"#
        )
    };
    let page = |extra: &str| {
        let text = text.clone();
        let cfg = config(&rules(extra));
        async move {
            let w = World::new();
            let src = LateErrors {
                inner: ReplaySource::parse("late.jsonl", &text).unwrap(),
                lag: 180,
            };
            let e = Engine::new(
                cfg,
                Arc::new(src),
                w.store.clone() as Arc<dyn StateStore>,
                w.notifier.clone(),
                EngineOptions::default(),
            );
            run(&w, &e, 1..45).await
        }
    };
    // The default (two periods of grace) judges each minute before its
    // errors arrive: the fire is missed entirely.
    assert_eq!(page("").await, Vec::<String>::new());
    // Breaching from minute 10, `for: 3m` holds at minute 13, judged once
    // its errors are in (13 + 1 + 3 = minute 17); resolved likewise.
    let delayed = page("    evaluation_delay: 3m\n").await;
    assert_eq!(delayed.len(), 2, "{delayed:?}");
    assert!(
        delayed[0].starts_with("17 [FIRING] PayErrors 5% > 1%"),
        "{delayed:?}"
    );
    assert!(delayed[1].starts_with("24 [RESOLVED]"), "{delayed:?}");
    // A longer grace waits for late metrics only while some are missing.
    let graced = page("    arrival_grace: 5m\n").await;
    assert_eq!(graced.len(), 2, "{graced:?}");
    assert!(
        graced[0].starts_with("17 [FIRING] PayErrors 5% > 1%"),
        "{graced:?}"
    );
}
