//! The Lambda's handler on the real engine over the in-memory adapters
//! (replay source, memory store, memory notifier) and a manual clock: the
//! tick, the stale- and future-tick refusals, the deadline, each status with
//! its heartbeat, and the exact EMF line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, StoreError};
use firebell_core::series::Epoch;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{CycleReport, Engine, EngineError, EngineOptions, Skip, Stage};
use firebell_evaluator::{
    ApiCalls, Deps, Invocation, Outcome, RunCycle, Settings, Status, TickEvent, emf, handle, invoke,
};
use serde_json::{Value, json};

/// 2026-11-23T15:48:00Z, a whole minute.
const T: Epoch = 1_795_448_880;
const T_RFC3339: &str = "2026-11-23T15:48:00Z";

const CONFIG: &str = r#"
rules:
  - name: ApiErrors
    metrics:
      errors: {namespace: Test, metric: Errors, dimensions: {Service: api}, stat: Sum, period: 1m}
    expression: errors
    unit: count
    condition: {op: ">", threshold: 10}
    for: 0s
    missing_data: ok
    labels: {team: api, service: api, severity: page}
    annotations: {title: API errors}
receivers:
  oncall: {topics: ["arn:aws:sns:us-east-1:123456789012:oncall"], send_resolved: true}
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
"#;

/// Errors breaching the threshold for the ten minutes before `T`.
fn replay() -> ReplaySource {
    let points: Vec<String> = (1..=10).map(|m| format!("[{},50]", T - 60 * m)).collect();
    let line = format!(
        r#"{{"namespace":"Test","metric":"Errors","dimensions":{{"Service":"api"}},"stat":"Sum","period":60,"points":[{}]}}"#,
        points.join(",")
    );
    ReplaySource::parse("errors.jsonl", &line).unwrap()
}

fn settings() -> Settings {
    Settings {
        config_dir: PathBuf::from("/unused"),
        table: "unused".into(),
        function_name: "evaluator".into(),
        safety_margin_ms: 5000,
        max_tick_age_secs: 60,
        max_tick_skew_secs: 300,
        appconfig: None,
        allowed_topics: None,
        settle_secs: 660,
        sentinel_prefix: firebell_core::sentinel::DEFAULT_PREFIX.into(),
    }
}

/// The engine, counting its cycles.
struct Counted {
    engine: Engine,
    runs: AtomicUsize,
}

#[async_trait]
impl RunCycle for Counted {
    async fn run_cycle(
        &self,
        tick: Epoch,
        clock_now: Epoch,
        stage: Stage,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        RunCycle::run_cycle(&self.engine, tick, clock_now, stage, should_stop).await
    }
}

/// Counters that move by 1 (CloudWatch), 2 (DynamoDB) and 3 (SNS) at every
/// read: the handler reads them before and after, so each invocation
/// reports exactly those calls.
#[derive(Debug, Default)]
struct Calls(AtomicU64);

impl ApiCalls for Calls {
    fn calls(&self) -> BTreeMap<&'static str, u64> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        BTreeMap::from([("CloudWatch", n), ("DynamoDB", 2 * n), ("SNS", 3 * n)])
    }
}

struct World {
    clock: Arc<ManualClock>,
    notifier: Arc<MemoryNotifier>,
    cycles: Arc<Counted>,
    deps: Deps,
}

impl World {
    /// The clock at `now`.
    fn at(now: Epoch) -> World {
        let mut diags = Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[("config.yaml".to_string(), CONFIG.to_string())],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        let clock = Arc::new(ManualClock::at_epoch(now));
        let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
        let notifier = Arc::new(MemoryNotifier::new());
        let engine = Engine::new(
            Arc::new(config),
            Arc::new(replay()),
            store,
            notifier.clone(),
            EngineOptions::default(),
        );
        let cycles = Arc::new(Counted {
            engine,
            runs: AtomicUsize::new(0),
        });
        let deps = Deps {
            settings: settings(),
            cycle: cycles.clone(),
            api_calls: Arc::new(Calls::default()),
            clock: clock.clone(),
            deployed: None,
        };
        World {
            clock,
            notifier,
            cycles,
            deps,
        }
    }

    fn runs(&self) -> usize {
        self.cycles.runs.load(Ordering::SeqCst)
    }

    async fn invoke(&self, event: TickEvent, deadline: SystemTime) -> Invocation {
        invoke(&self.deps, event, deadline).await.unwrap()
    }
}

fn scheduled(time: &str) -> TickEvent {
    TickEvent {
        scheduled_time: Some(time.to_string()),
        ..TickEvent::default()
    }
}

/// A deadline ten minutes after `T` (Unix time, as Lambda sends it).
fn far() -> SystemTime {
    at(T + 600)
}

fn at(epoch: Epoch) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch).unwrap())
}

fn emf_of(inv: &Invocation) -> Value {
    serde_json::from_str(&inv.emf).unwrap()
}

#[tokio::test]
async fn the_tick_is_the_schedules_or_the_rules_time_or_now() {
    let w = World::at(T + 5);
    let inv = w.invoke(scheduled(T_RFC3339), far()).await;
    assert_eq!(
        (inv.outcome.tick, inv.outcome.status),
        (T, Status::Completed)
    );

    let w = World::at(T + 5);
    let rule = TickEvent {
        time: Some("2026-11-23T15:48:07Z".into()),
        ..TickEvent::default()
    };
    assert_eq!(w.invoke(rule, far()).await.outcome.tick, T);

    // Neither: the clock's minute.
    let w = World::at(T + 65);
    let inv = w.invoke(TickEvent::default(), far()).await;
    assert_eq!(
        (inv.outcome.tick, inv.outcome.status),
        (T + 60, Status::Completed)
    );

    // Not RFC 3339: an error, no cycle and no EMF line.
    let w = World::at(T + 5);
    let err = handle(&w.deps, scheduled("yesterday"), far())
        .await
        .unwrap_err();
    assert!(
        err.starts_with("scheduled time \"yesterday\" is not RFC 3339"),
        "{err}"
    );
    assert_eq!(w.runs(), 0);
}

#[tokio::test]
async fn a_stale_tick_is_refused_without_a_cycle_or_a_heartbeat() {
    // 60 s old: still run.
    let w = World::at(T + 60);
    let inv = w.invoke(scheduled(T_RFC3339), far()).await;
    assert_eq!(inv.outcome.status, Status::Completed);
    assert_eq!(w.runs(), 1);

    // 61 s old: refused.
    let w = World::at(T + 61);
    let inv = w.invoke(scheduled(T_RFC3339), far()).await;
    assert_eq!(inv.outcome.status, Status::Stale);
    assert!(inv.outcome.report.is_none());
    assert!(inv.error.is_none());
    assert_eq!(w.runs(), 0);
    assert!(w.notifier.is_empty());
    let e = emf_of(&inv);
    assert_eq!(
        (e["status"].clone(), e["Heartbeat"].clone()),
        (json!("stale"), json!(0.0))
    );
    assert_eq!(e["tick"], T);
    // The returned JSON, as the Lambda runtime serialises it.
    assert_eq!(
        serde_json::to_value(&inv.outcome).unwrap(),
        json!({"tick": T, "stage": "whole cycle", "status": "stale", "report": null, "duration_ms": 0})
    );
}

#[tokio::test]
async fn a_future_tick_is_refused_without_a_cycle_or_a_heartbeat() {
    // Five minutes ahead of the clock (the allowed skew): still run.
    let w = World::at(T - 300);
    let inv = w.invoke(scheduled(T_RFC3339), far()).await;
    assert_eq!(inv.outcome.status, Status::Completed);
    assert_eq!(w.runs(), 1);

    // 301 s ahead: refused, nothing recorded, and the EMF line says so.
    let w = World::at(T - 301);
    let inv = w.invoke(scheduled(T_RFC3339), far()).await;
    assert_eq!(inv.outcome.status, Status::Future);
    assert!(inv.outcome.report.is_none());
    assert!(inv.error.is_none());
    assert_eq!(w.runs(), 0);
    assert!(w.notifier.is_empty());
    let e = emf_of(&inv);
    assert_eq!(
        (
            e["status"].clone(),
            e["Heartbeat"].clone(),
            e["tick"].clone()
        ),
        (json!("future"), json!(0.0), json!(T))
    );
    assert_eq!(
        serde_json::to_value(&inv.outcome).unwrap(),
        json!({"tick": T, "stage": "whole cycle", "status": "future", "report": null, "duration_ms": 0})
    );

    // `run --backend aws --at 2200-01-01T00:00:00Z`'s tick, by schedule.
    let w = World::at(T);
    let inv = w.invoke(scheduled("2200-01-01T00:00:00Z"), far()).await;
    assert_eq!(
        (inv.outcome.tick, inv.outcome.status),
        (7_258_118_400, Status::Future)
    );
    assert_eq!(w.runs(), 0);
}

/// A table poisoned by a far-future tick (written before the refusal
/// existed, or by `run --force`): the handler passes the clock's now, so
/// the engine takes it as skew, evaluates, reports it, and beats.
#[tokio::test]
async fn a_future_last_tick_in_the_table_is_skew_and_the_cycle_still_runs() {
    let w = World::at(T + 5);
    // The table as a cycle at 2200-01-01T00:00:00Z left it.
    let poisoned = Arc::new(Counted {
        engine: poisoned_engine(&w, 7_258_118_400).await,
        runs: AtomicUsize::new(0),
    });
    let deps = Deps {
        settings: settings(),
        cycle: poisoned,
        api_calls: Arc::new(Calls::default()),
        clock: w.clock.clone(),
        deployed: None,
    };
    let inv = invoke(&deps, scheduled(T_RFC3339), far()).await.unwrap();
    assert_eq!(inv.outcome.status, Status::Completed);
    let report = inv.outcome.report.as_ref().unwrap();
    assert_eq!(report.notifications_sent, 1);
    assert_eq!(
        report
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [format!(
            "clock skew: the last recorded tick 7258118400 is later than now ({}); evaluating anyway and recording tick {T}",
            T + 5
        )]
    );
    let e = emf_of(&inv);
    assert_eq!(
        (
            e["status"].clone(),
            e["Heartbeat"].clone(),
            e["Errors"].clone()
        ),
        (json!("completed"), json!(1.0), json!(1.0))
    );
    // Repaired: the next tick is neither a duplicate nor skewed.
    w.clock.set_epoch(T + 65);
    let inv = invoke(&deps, scheduled("2026-11-23T15:49:00Z"), far())
        .await
        .unwrap();
    assert_eq!(inv.outcome.status, Status::Completed);
    assert!(inv.outcome.report.as_ref().unwrap().errors.is_empty());
}

/// An engine over a fresh store whose `cycle/last` is `last`.
async fn poisoned_engine(w: &World, last: Epoch) -> Engine {
    use firebell_core::ports::{Expect, Item, StateStore};
    let store = Arc::new(MemoryStore::new(w.clock.clone() as Arc<dyn Clock>));
    let key = firebell_engine::keys::last_tick();
    store
        .put(
            Item {
                pk: key.pk,
                sk: key.sk,
                version: 1,
                data: format!("{{\"tick\":{last}}}"),
                expires_at: None,
            },
            Expect::Absent,
        )
        .await
        .unwrap();
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[("config.yaml".to_string(), CONFIG.to_string())],
        &mut diags,
        Vec::new(),
    );
    Engine::new(
        Arc::new(config),
        Arc::new(replay()),
        store,
        w.notifier.clone(),
        EngineOptions::default(),
    )
}

#[tokio::test]
async fn a_deadline_inside_the_safety_margin_stops_the_cycle_early() {
    // Deadline 5 s from the clock's now, margin 5 s: stop before dispatching.
    let w = World::at(T + 5);
    let inv = w.invoke(scheduled(T_RFC3339), at(T + 10)).await;
    assert_eq!(inv.outcome.status, Status::StoppedEarly);
    let report = inv.outcome.report.as_ref().unwrap();
    assert!(report.stopped_early);
    assert_eq!(report.notifications_sent, 0);
    assert!(w.notifier.is_empty());
    let e = emf_of(&inv);
    assert_eq!(
        (e["status"].clone(), e["Heartbeat"].clone()),
        (json!("stopped_early"), json!(0.0))
    );

    // The tick was not recorded: the next invocation with time to spare
    // finishes the work.
    let inv = w.invoke(scheduled(T_RFC3339), at(T + 11)).await;
    assert_eq!(inv.outcome.status, Status::Completed);
    assert_eq!(w.notifier.len(), 1);
    assert_eq!(w.runs(), 2);

    // The clock, not the wall clock, decides: the same deadline is past
    // once the clock moved on.
    let w = World::at(T + 5);
    w.clock.advance_secs(1);
    let inv = w.invoke(scheduled(T_RFC3339), at(T + 11)).await;
    assert_eq!(inv.outcome.status, Status::StoppedEarly);
}

#[tokio::test]
async fn a_runtime_that_sends_the_timeout_as_deadline_gets_it_counted_from_now() {
    // `cargo lambda watch` sends 600000 (ms): ten minutes from the clock.
    let w = World::at(T + 5);
    let inv = w
        .invoke(
            scheduled(T_RFC3339),
            UNIX_EPOCH + Duration::from_millis(600_000),
        )
        .await;
    assert_eq!(inv.outcome.status, Status::Completed);
    // Under the margin: stopped.
    let w = World::at(T + 5);
    let inv = w
        .invoke(
            scheduled(T_RFC3339),
            UNIX_EPOCH + Duration::from_millis(4_000),
        )
        .await;
    assert_eq!(inv.outcome.status, Status::StoppedEarly);
}

#[tokio::test]
async fn a_completed_cycle_beats_and_a_duplicate_tick_does_not() {
    let w = World::at(T + 5);
    let inv = w.invoke(scheduled(T_RFC3339), far()).await;
    assert_eq!(inv.outcome.status, Status::Completed);
    assert!(inv.error.is_none());
    let report = inv.outcome.report.as_ref().unwrap();
    assert_eq!(
        (
            report.rules_evaluated,
            report.instances_evaluated,
            report.transitions.len(),
            report.notifications_sent
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(w.notifier.len(), 1);
    // The whole EMF line: the clock did not move, so the cycle took 0 ms;
    // the fake counters moved by 1, 2, 3.
    assert_eq!(
        emf_of(&inv),
        json!({
            "_aws": {
                "Timestamp": (T + 5) * 1000,
                "CloudWatchMetrics": [{
                    "Namespace": "Firebell",
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "Heartbeat", "Unit": "Count"},
                        {"Name": "CycleDuration", "Unit": "Milliseconds"},
                        {"Name": "RulesEvaluated", "Unit": "Count"},
                        {"Name": "InstancesEvaluated", "Unit": "Count"},
                        {"Name": "Transitions", "Unit": "Count"},
                        {"Name": "NotificationsSent", "Unit": "Count"},
                        {"Name": "PublishFailures", "Unit": "Count"},
                        {"Name": "Errors", "Unit": "Count"},
                        {"Name": "CloudWatchCalls", "Unit": "Count"},
                        {"Name": "DynamoDBCalls", "Unit": "Count"},
                        {"Name": "SNSCalls", "Unit": "Count"},
                    ],
                }],
            },
            "Function": "evaluator",
            "tick": T,
            "status": "completed",
            "Heartbeat": 1.0,
            "CycleDuration": 0.0,
            "RulesEvaluated": 1.0,
            "InstancesEvaluated": 1.0,
            "Transitions": 1.0,
            "NotificationsSent": 1.0,
            "PublishFailures": 0.0,
            "Errors": 0.0,
            "CloudWatchCalls": 1.0,
            "DynamoDBCalls": 2.0,
            "SNSCalls": 3.0,
        })
    );

    // The same tick again (a re-delivered schedule): skipped, no beat (a
    // table that makes every tick a duplicate must turn the watchdog red).
    w.clock.advance_secs(10);
    let inv = w.invoke(scheduled(T_RFC3339), far()).await;
    assert_eq!(inv.outcome.status, Status::Duplicate);
    assert_eq!(
        inv.outcome.report.as_ref().unwrap().skipped,
        Some(Skip::Duplicate)
    );
    assert_eq!(w.notifier.len(), 1);
    let e = emf_of(&inv);
    assert_eq!(
        (e["status"].clone(), e["Heartbeat"].clone()),
        (json!("duplicate"), json!(0.0))
    );
    assert_eq!(e["NotificationsSent"], 0.0);
    assert_eq!(e["_aws"]["Timestamp"], (T + 15) * 1000);
}

/// A cycle that finds the lease held.
struct Overlapping;

#[async_trait]
impl RunCycle for Overlapping {
    async fn run_cycle(
        &self,
        tick: Epoch,
        _clock_now: Epoch,
        _stage: Stage,
        _should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        Ok(CycleReport {
            tick,
            skipped: Some(Skip::Overlap),
            ..CycleReport::default()
        })
    }
}

/// A cycle whose store is down.
struct Failing;

#[async_trait]
impl RunCycle for Failing {
    async fn run_cycle(
        &self,
        _tick: Epoch,
        _clock_now: Epoch,
        _stage: Stage,
        _should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        Err(EngineError::Store(StoreError::Unavailable("down".into())))
    }
}

fn deps_with(cycle: Arc<dyn RunCycle>, now: Epoch) -> Deps {
    Deps {
        settings: settings(),
        cycle,
        api_calls: Arc::new(Calls::default()),
        clock: Arc::new(ManualClock::at_epoch(now)),
        deployed: None,
    }
}

#[tokio::test]
async fn neither_an_overlap_nor_a_failure_beats() {
    let deps = deps_with(Arc::new(Overlapping), T + 5);
    let inv = invoke(&deps, scheduled(T_RFC3339), far()).await.unwrap();
    assert_eq!(inv.outcome.status, Status::Overlap);
    let e = emf_of(&inv);
    assert_eq!(
        (e["status"].clone(), e["Heartbeat"].clone()),
        (json!("overlap"), json!(0.0))
    );
    assert_eq!(
        handle(&deps, scheduled(T_RFC3339), far())
            .await
            .unwrap()
            .status,
        Status::Overlap
    );

    let deps = deps_with(Arc::new(Failing), T + 5);
    let inv = invoke(&deps, scheduled(T_RFC3339), far()).await.unwrap();
    assert_eq!(inv.outcome.status, Status::Failed);
    assert!(inv.outcome.report.is_none());
    let e = emf_of(&inv);
    assert_eq!(
        (
            e["status"].clone(),
            e["Heartbeat"].clone(),
            e["Errors"].clone()
        ),
        (json!("failed"), json!(0.0), json!(1.0))
    );
    assert_eq!(e["CloudWatchCalls"], 1.0);
    assert_eq!(
        inv.into_result().unwrap_err(),
        format!("cycle {T} failed: store unavailable: down")
    );
    assert_eq!(
        handle(&deps, scheduled(T_RFC3339), far())
            .await
            .unwrap_err(),
        format!("cycle {T} failed: store unavailable: down")
    );
}

#[test]
fn statuses_serialise_as_before() {
    let all = [
        (Status::Completed, "completed", true),
        (Status::StoppedEarly, "stopped_early", false),
        (Status::Duplicate, "duplicate", false),
        (Status::Overlap, "overlap", false),
        (Status::Stale, "stale", false),
        (Status::Future, "future", false),
        (Status::Failed, "failed", false),
    ];
    for (status, text, beats) in all {
        assert_eq!(serde_json::to_value(status).unwrap(), json!(text));
        assert_eq!(
            (status.as_str(), status.to_string()),
            (text, text.to_string())
        );
        assert_eq!(status.heartbeat(), beats, "{status}");
    }
}

#[test]
fn the_emf_line_is_a_function_of_settings_outcome_calls_and_time() {
    let report = CycleReport {
        tick: T,
        rules_evaluated: 7,
        instances_evaluated: 40,
        notifications_sent: 2,
        publish_failures: 1,
        stopped_early: true,
        ..CycleReport::default()
    };
    let outcome = Outcome {
        stage: "whole cycle".to_string(),
        tick: T,
        status: Status::StoppedEarly,
        report: Some(report),
        duration_ms: 1234,
    };
    let calls = BTreeMap::from([("CloudWatch", 4), ("DynamoDB", 9), ("SNS", 2)]);
    let line = emf(&settings(), &outcome, &calls, 1_795_448_890_000);
    let v: Value = serde_json::from_str(&line).unwrap();
    let names: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Heartbeat",
            "CycleDuration",
            "RulesEvaluated",
            "InstancesEvaluated",
            "Transitions",
            "NotificationsSent",
            "PublishFailures",
            "Errors",
            "CloudWatchCalls",
            "DynamoDBCalls",
            "SNSCalls"
        ]
    );
    let mut figures = v.as_object().unwrap().clone();
    figures.remove("_aws");
    assert_eq!(
        Value::Object(figures),
        json!({
            "Function": "evaluator",
            "tick": T,
            "status": "stopped_early",
            "Heartbeat": 0.0,
            "CycleDuration": 1234.0,
            "RulesEvaluated": 7.0,
            "InstancesEvaluated": 40.0,
            "Transitions": 0.0,
            "NotificationsSent": 2.0,
            "PublishFailures": 1.0,
            "Errors": 0.0,
            "CloudWatchCalls": 4.0,
            "DynamoDBCalls": 9.0,
            "SNSCalls": 2.0,
        })
    );
    assert_eq!(v["_aws"]["Timestamp"], 1_795_448_890_000_i64);
    assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Firebell");
    assert_eq!(
        v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function"]])
    );
    assert!(
        v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["Unit"]
                == if m["Name"] == "CycleDuration" {
                    "Milliseconds"
                } else {
                    "Count"
                })
    );

    // Without a report (a stale tick), every cycle figure is 0.
    let stale = Outcome {
        stage: "whole cycle".to_string(),
        tick: T - 3600,
        status: Status::Stale,
        report: None,
        duration_ms: 0,
    };
    let v: Value = serde_json::from_str(&emf(&settings(), &stale, &BTreeMap::new(), 0)).unwrap();
    assert_eq!(v["Heartbeat"], 0.0);
    assert_eq!(v["RulesEvaluated"], 0.0);
    assert_eq!(v["Errors"], 0.0);
    assert_eq!(v["status"], "stale");
}

/// Deployed configs in a script: each poll takes the next answer.
#[derive(Debug, Default)]
struct Script(std::sync::Mutex<std::collections::VecDeque<firebell_core::ports::ConfigPoll>>);

#[async_trait]
impl firebell_core::ports::ConfigSource for Script {
    async fn poll(
        &self,
        _now: Epoch,
        _fresh: bool,
    ) -> Result<firebell_core::ports::ConfigPoll, firebell_core::ports::ConfigSourceError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(firebell_core::ports::ConfigPoll::NotDue))
    }
}

fn pushed(text: &str, label: &str) -> firebell_core::ports::ConfigPoll {
    let bundle = firebell_engine::bundle::Bundle {
        format: firebell_engine::bundle::FORMAT.to_string(),
        files: vec![firebell_engine::bundle::BundleFile {
            path: "deployed/config.yaml".into(),
            text: text.into(),
        }],
    };
    firebell_core::ports::ConfigPoll::New {
        content: bundle.to_json(),
        label: Some(label.into()),
    }
}

#[tokio::test]
async fn a_deployed_config_is_switched_to_before_the_next_cycle_and_a_broken_one_pages_ops() {
    use firebell_engine::deployed::Deployed;
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[("config.yaml".to_string(), CONFIG.to_string())],
        &mut diags,
        Vec::new(),
    );
    let clock = Arc::new(ManualClock::at_epoch(T + 5));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let engine = Engine::new(
        Arc::new(config),
        Arc::new(replay()),
        store.clone(),
        notifier.clone(),
        EngineOptions::default(),
    );
    let script = Arc::new(Script::default());
    let deployed = Arc::new(Deployed::new(
        script.clone(),
        store.clone(),
        None,
        Box::new(|| Err("no bundled config in this test".to_string())),
    ));
    let cycle = Arc::new(firebell_evaluator::Switching::new(engine));
    let deps = Deps {
        settings: settings(),
        cycle: cycle.clone(),
        api_calls: Arc::new(Calls::default()),
        clock: clock.clone(),
        deployed: Some(deployed.clone()),
    };
    // A second rule is pushed: the cycle of this very invocation runs it.
    let two_rules = CONFIG.replace(
        "receivers:",
        "  - name: ApiErrorsAny\n    metrics:\n      errors: {namespace: Test, metric: Errors, dimensions: {Service: api}, stat: Sum, period: 1m}\n    expression: errors\n    condition: {op: \">\", threshold: 0}\n    labels: {team: api, severity: ticket}\nreceivers:",
    );
    script.0.lock().unwrap().push_back(pushed(&two_rules, "v2"));
    let first = invoke(&deps, scheduled(T_RFC3339), far()).await.unwrap();
    let report = first.outcome.report.as_ref().unwrap();
    assert_eq!(report.rules_evaluated, 2);
    assert_eq!(
        cycle.current().config().files,
        vec![PathBuf::from("deployed/config.yaml")]
    );
    // A broken one: not switched to; the running config stays, and the
    // cycle reports the problem (the `config` self-check pages ops).
    script
        .0
        .lock()
        .unwrap()
        .push_back(pushed("rules: [oops", "v3"));
    clock.set_epoch(T + 65);
    let second = invoke(&deps, scheduled("2026-11-23T15:49:00Z"), far())
        .await
        .unwrap();
    let report = second.outcome.report.as_ref().unwrap();
    assert_eq!(report.rules_evaluated, 2, "the last good config ran");
    assert!(
        report.errors.iter().any(|e| e
            .to_string()
            .starts_with("config: the deployed config v3 did not load: deployed/config.yaml:2:1: error: invalid YAML")),
        "{:?}",
        report.errors
    );
    let pages: Vec<String> = notifier.take().into_iter().map(|m| m.subject).collect();
    assert!(
        pages
            .iter()
            .any(|s| s.contains("FirebellUnhealthy") || s.contains("firebell unhealthy (config)")),
        "{pages:?}"
    );
}

/// The Step Functions state machine of a sharded stack invokes one shard
/// per Map item, then the delivery stage: each answers a small status
/// (Step Functions states carry at most 256 KB), the report in the log.
#[tokio::test]
async fn shard_and_delivery_events_run_their_stage() {
    let w = World::at(T);
    let shard = TickEvent {
        shard: Some(2),
        shards: Some(4),
        ..scheduled(T_RFC3339)
    };
    let inv = w.invoke(shard, far()).await;
    assert_eq!(inv.outcome.status, Status::Completed);
    assert_eq!(inv.outcome.stage, "shard 2/4");
    assert!(inv.outcome.report.is_none());
    assert_eq!(emf_of(&inv)["Heartbeat"], json!(1.0));

    let deliver = TickEvent {
        stage: Some("deliver".to_string()),
        shards: Some(4),
        ..scheduled(T_RFC3339)
    };
    let inv = w.invoke(deliver, far()).await;
    assert_eq!(inv.outcome.stage, "delivery stage after 4 shard(s)");
    assert_eq!(inv.outcome.status, Status::Completed);
    assert!(inv.outcome.report.is_none());
    assert_eq!(w.runs(), 2);

    // A malformed event is refused before any cycle.
    for (event, error) in [
        (
            TickEvent {
                shard: Some(5),
                shards: Some(4),
                ..scheduled(T_RFC3339)
            },
            "shard 5 is out of range: expected 1 to 4 (shards are numbered from 1)",
        ),
        (
            TickEvent {
                shard: Some(1),
                ..scheduled(T_RFC3339)
            },
            "shard 1 without \"shards\": expected the shard count with the shard",
        ),
        (
            TickEvent {
                stage: Some("evaluate".to_string()),
                ..scheduled(T_RFC3339)
            },
            "unknown \"stage\": \"evaluate\": expected \"deliver\" (or none)",
        ),
        (
            TickEvent {
                stage: Some("deliver".to_string()),
                shard: Some(1),
                shards: Some(4),
                ..scheduled(T_RFC3339)
            },
            "\"stage\": \"deliver\" with \"shard\": 1: the delivery stage is not a shard's",
        ),
    ] {
        assert_eq!(invoke(&w.deps, event, far()).await.unwrap_err(), error);
    }
    assert_eq!(w.runs(), 2);
}
