//! Sentinel mode end to end: the engine with the AWS adapters
//! (CloudWatchSource, CloudWatchAlarms, DynamoStore) against the emulator,
//! `sentinels: {mode: auto}`, one single-metric rule per sentinel (a plain
//! metric alarm, which the emulator evaluates; it cannot evaluate the
//! metric-math form).
//!
//! How the emulator evaluates a plain alarm: on every `PutMetricData` (of
//! any namespace) and on `PutMetricAlarm`, over the datapoints of its
//! namespace and metric name timestamped at or after the wall clock minus
//! `Period × EvaluationPeriods` (later ones included); with no such
//! datapoint it leaves the state as it is. The rules here use `Maximum`
//! and `>`: the alarm's statistic over those datapoints breaches exactly
//! when one of them does, which is what `DatapointsToAlarm` 1 over the
//! range means on CloudWatch. So the cycles run at ticks starting at the
//! current minute (`W0`), every rule's quiet data covers ten minutes before
//! it to twenty after, and a breaching datapoint put at a tick's bucket
//! turns the sentinel to ALARM at once. CloudWatch would turn it back to OK
//! once the breach left the range, minutes later: the tests say so with
//! `SetAlarmState` instead of waiting, and run one at a time (a
//! `PutMetricData` of another test would re-evaluate the alarm).
//!
//! The sweeps depend on the rule's name (its minute of the sweep) and the
//! tick: every test picks a rule name whose sweeps fall where it wants them
//! among its ticks ([`sweep_due`]), so the expected polls are exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use firebell_aws::{CloudWatchAlarms, CloudWatchSource, DynamoStore};
use firebell_core::diag::Diagnostics;
use firebell_core::model::Rule;
use firebell_core::ports::{AlarmService, Clock};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_embedded::{ManualClock, MemoryNotifier};
use firebell_engine::sentinel::{CycleSentinels, sweep_due};
use firebell_engine::{Config, CycleReport, Engine, EngineOptions};
use firebell_tests::{Aws, Datum, aws, minute_now, unique};

/// One test at a time: see the module docs.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const QUIET: f64 = 5.0;
const BREACH: f64 = 500.0;
/// Quiet data from this many minutes before `W0` ...
const QUIET_FROM: i64 = -10;
/// ... to this many after.
const QUIET_TO: i64 = 20;

fn rule_text(ns: &str, name: &str) -> String {
    format!(
        r#"  - name: {name}
    metrics:
      latency: {{namespace: "{ns}", metric: {name}, dimensions: {{Service: api}}, stat: Maximum, period: 1m}}
    expression: latency
    condition: {{op: ">", threshold: 100}}
    for: 0s
    missing_data: ok
    labels: {{severity: page}}
"#
    )
}

fn config_text(ns: &str, rules: &[&str], sweep: &str, comment: &str) -> String {
    let mut text = format!("# {comment}\nrules:\n");
    for r in rules {
        text.push_str(&rule_text(ns, r));
    }
    text.push_str(&format!(
        r#"
sentinels: {{mode: auto, sweep: {sweep}}}
receivers:
  ops: {{topics: ["arn:aws:sns:us-east-1:000000000000:firebell-sentinel-tests"], send_resolved: true}}
route:
  receiver: ops
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
"#
    ));
    text
}

/// A rule named `name` as the config has it (for [`sweep_due`]).
fn rule(name: &str) -> Rule {
    firebell_core::config::parse_rules(
        "r.yaml",
        &format!("rules:\n{}", rule_text("Firebell/Any", name)),
    )
    .expect("rule")
    .rules
    .remove(0)
}

struct World {
    aws: Aws,
    ns: String,
    prefix: String,
    /// `W0`: tick `k` is `w0 + 60 k`.
    w0: Epoch,
    clock: Arc<ManualClock>,
    metrics: Arc<CloudWatchSource>,
    alarms: Arc<CloudWatchAlarms>,
    store: Arc<DynamoStore>,
    notifier: Arc<MemoryNotifier>,
}

impl World {
    async fn new() -> World {
        let aws = aws().await.expect("emulator");
        let table = aws.table().await.expect("table");
        let w0 = minute_now();
        let clock = Arc::new(ManualClock::at_epoch(w0));
        World {
            ns: format!("Firebell/Sentinels/{}", unique("ns")),
            prefix: format!("{}-", unique("fb-sentinel")),
            w0,
            metrics: Arc::new(CloudWatchSource::new(
                aws.cloudwatch.clone(),
                clock.clone() as Arc<dyn Clock>,
            )),
            alarms: Arc::new(CloudWatchAlarms::new(aws.cloudwatch.clone())),
            store: Arc::new(DynamoStore::new(
                aws.dynamodb.clone(),
                table,
                clock.clone() as Arc<dyn Clock>,
            )),
            notifier: Arc::new(MemoryNotifier::new()),
            clock,
            aws,
        }
    }

    fn tick(&self, k: i64) -> Epoch {
        self.w0 + 60 * k
    }

    fn config(&self, rules: &[&str], sweep: &str, comment: &str) -> Arc<Config> {
        let mut diags = Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[(
                "sentinels.yaml".to_string(),
                config_text(&self.ns, rules, sweep, comment),
            )],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        Arc::new(config)
    }

    fn engine(&self, config: Arc<Config>) -> Engine {
        Engine::new(
            config,
            self.metrics.clone(),
            self.store.clone(),
            self.notifier.clone(),
            EngineOptions {
                owner: "sentinels".to_string(),
                sentinel_prefix: self.prefix.clone(),
                ..EngineOptions::default()
            },
        )
        .with_alarms(self.alarms.clone())
    }

    /// A rule name (`<stem><i>`) whose sweep is due at tick `k` exactly when
    /// `swept(k)`, for every tick `k` in `ticks`.
    fn name_where(
        &self,
        stem: &str,
        sweep: Duration,
        ticks: std::ops::RangeInclusive<i64>,
        swept: impl Fn(i64) -> bool,
    ) -> String {
        (0..10_000)
            .map(|i| format!("{stem}{i}"))
            .find(|n| {
                let r = rule(n);
                ticks
                    .clone()
                    .all(|k| sweep_due(&r, self.tick(k), sweep) == swept(k))
            })
            .expect("a rule name with the sweeps wanted")
    }

    /// Quiet datapoints of `rules` from [`QUIET_FROM`] to [`QUIET_TO`] minutes.
    async fn put_quiet(&self, rules: &[&str]) {
        let data: Vec<Datum> = rules
            .iter()
            .flat_map(|r| {
                (QUIET_FROM..=QUIET_TO).map(move |m| Datum {
                    metric: (*r).to_string(),
                    dimensions: vec![("Service".to_string(), "api".to_string())],
                    t: self.w0 + 60 * m,
                    value: QUIET,
                })
            })
            .collect();
        self.aws.put_metric_data(&self.ns, &data).await.unwrap();
    }

    /// A breaching datapoint of `rule` in the bucket of tick `k`.
    async fn put_breach(&self, rule: &str, k: i64) {
        let datum = Datum {
            metric: rule.to_string(),
            dimensions: vec![("Service".to_string(), "api".to_string())],
            t: self.tick(k),
            value: BREACH,
        };
        self.aws.put_metric_data(&self.ns, &[datum]).await.unwrap();
    }

    async fn set_state(&self, alarm: &str, state: StateValue) {
        self.aws
            .cloudwatch
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(state)
            .state_reason("the breach left the alarm's range (test)")
            .send()
            .await
            .unwrap();
    }

    async fn alarm_names(&self) -> Vec<String> {
        self.alarms
            .list(&self.prefix, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect()
    }

    /// Runs tick `k`; returns the report and the `GetMetricData` calls it made.
    async fn cycle(&self, e: &Engine, k: i64) -> (CycleReport, u64) {
        self.clock.set_epoch(self.tick(k));
        let before = self.metrics.stats().get_metric_data;
        let r = e
            .run_cycle(self.tick(k), &|| false)
            .await
            .unwrap_or_else(|err| panic!("tick {k}: {err}"));
        assert!(r.errors.is_empty(), "tick {k}: {:?}", r.errors);
        assert_eq!(r.skipped, None, "tick {k}");
        (r, self.metrics.stats().get_metric_data - before)
    }
}

/// The gate's counts of a cycle, without the reconcile.
fn polls(s: &CycleSentinels) -> [usize; 5] {
    [s.alarm, s.active, s.swept, s.unsynced, s.cold]
}
const ALARM: [usize; 5] = [1, 0, 0, 0, 0];
const ACTIVE: [usize; 5] = [0, 1, 0, 0, 0];
const SWEPT: [usize; 5] = [0, 0, 1, 0, 0];
const UNSYNCED: [usize; 5] = [0, 0, 0, 1, 0];
const COLD: [usize; 5] = [0, 0, 0, 0, 1];

/// `(kind, at)` of a cycle's transitions: `F` fired, `R` resolved.
fn events(r: &CycleReport) -> Vec<(char, Epoch)> {
    r.transitions
        .iter()
        .map(|t| match t.event {
            Event::Fired { at, .. } => ('F', at),
            Event::Resolved { at, .. } => ('R', at),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Ticks 1 and 2: the first cycle creates the sentinel (its rule polled:
/// not in sync yet), the second finds it evaluated and trusts it from then
/// on (its rule still polled: the gate reads the sync record before the
/// reconcile).
async fn sync(w: &World, e: &Engine, alarm: &str) {
    let (r, gmd) = w.cycle(e, 1).await;
    assert_eq!((polls(&r.sentinels), gmd), (UNSYNCED, 1), "{r:?}");
    let changes = r.sentinels.reconciled.expect("a reconcile");
    assert_eq!(changes.create, [alarm]);
    assert_eq!(w.alarm_names().await, [alarm]);
    let (r, gmd) = w.cycle(e, 2).await;
    assert_eq!((polls(&r.sentinels), gmd), (UNSYNCED, 1), "{r:?}");
    let changes = r.sentinels.reconciled.expect("a reconcile");
    assert_eq!(changes.in_sync, [alarm], "{changes:?}");
    assert!(changes.is_noop());
}

#[tokio::test]
async fn a_rule_goes_hot_when_its_sentinel_fires_and_is_polled_every_cycle_until_it_resolves() {
    let _serial = SERIAL.lock().await;
    let w = World::new().await;
    let sweep = Duration::from_secs(15 * 60);
    // No sweep of the rule from tick 3 to 9: every poll below is the
    // sentinel's (or the alert's) doing.
    let name = w.name_where("Hot", sweep, 3..=9, |_| false);
    let e = w.engine(w.config(&[&name], "15m", "a"));
    let alarm = e.desired_sentinels().sentinel_of(&name).unwrap().clone();
    assert_eq!(alarm.metric_math, None, "a plain alarm");
    w.put_quiet(&[&name]).await;
    sync(&w, &e, &alarm.name).await;

    for k in 3..=4 {
        let (r, gmd) = w.cycle(&e, k).await;
        assert_eq!((polls(&r.sentinels), gmd), (COLD, 0), "tick {k}: {r:?}");
        assert_eq!(r.rules_evaluated, 0);
    }
    // Bucket 4 breaches: the emulator evaluates the sentinel to ALARM.
    w.put_breach(&name, 4).await;
    assert_eq!(
        w.alarms.alarming(&w.prefix, 0).await.unwrap(),
        [alarm.name.as_str()]
    );
    // Tick 5 judges bucket 4: the rule fires, with the data's time.
    let (r, gmd) = w.cycle(&e, 5).await;
    assert_eq!((polls(&r.sentinels), gmd), (ALARM, 1), "{r:?}");
    assert_eq!(events(&r), [('F', w.tick(4))]);
    // Bucket 5 is quiet: resolved; the sentinel still in ALARM (the breach
    // is in its range), so polled on.
    let (r, gmd) = w.cycle(&e, 6).await;
    assert_eq!((polls(&r.sentinels), gmd), (ALARM, 1), "{r:?}");
    assert_eq!(events(&r), [('R', w.tick(5))]);
    let (r, gmd) = w.cycle(&e, 7).await;
    assert_eq!((polls(&r.sentinels), gmd), (ALARM, 1), "{r:?}");
    assert!(r.transitions.is_empty());
    // The breach leaves the alarm's range: OK, and the rule is cold again.
    w.set_state(&alarm.name, StateValue::Ok).await;
    for k in 8..=9 {
        let (r, gmd) = w.cycle(&e, k).await;
        assert_eq!((polls(&r.sentinels), gmd), (COLD, 0), "tick {k}: {r:?}");
    }
    let statuses: Vec<String> = w
        .notifier
        .messages()
        .iter()
        .map(|m| m.attributes.get("status").cloned().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"]);
}

#[tokio::test]
async fn a_firing_rule_is_polled_while_its_sentinel_is_ok() {
    // The alert's own state keeps its rule hot: a sentinel that returns to
    // OK before the rule resolves (a `for` it is still pending through, or
    // CloudWatch seeing the range end sooner) never leaves a firing alert
    // unjudged.
    let _serial = SERIAL.lock().await;
    let w = World::new().await;
    let sweep = Duration::from_secs(15 * 60);
    let name = w.name_where("Firing", sweep, 3..=8, |_| false);
    let e = w.engine(w.config(&[&name], "15m", "b"));
    let alarm = e.desired_sentinels().sentinel_of(&name).unwrap().clone();
    w.put_quiet(&[&name]).await;
    sync(&w, &e, &alarm.name).await;
    w.put_breach(&name, 3).await;
    w.put_breach(&name, 4).await;
    let (r, gmd) = w.cycle(&e, 4).await;
    assert_eq!((polls(&r.sentinels), gmd), (ALARM, 1), "{r:?}");
    assert_eq!(events(&r), [('F', w.tick(3))]);
    w.set_state(&alarm.name, StateValue::Ok).await;
    // Firing (bucket 4 breaches too): active, polled.
    let (r, gmd) = w.cycle(&e, 5).await;
    assert_eq!((polls(&r.sentinels), gmd), (ACTIVE, 1), "{r:?}");
    assert!(r.transitions.is_empty());
    let (r, gmd) = w.cycle(&e, 6).await;
    assert_eq!((polls(&r.sentinels), gmd), (ACTIVE, 1), "{r:?}");
    assert_eq!(events(&r), [('R', w.tick(5))]);
    let (r, gmd) = w.cycle(&e, 7).await;
    assert_eq!((polls(&r.sentinels), gmd), (COLD, 0), "{r:?}");
}

#[tokio::test]
async fn quiet_rules_are_not_polled_between_sweeps() {
    let _serial = SERIAL.lock().await;
    let w = World::new().await;
    let sweep = Duration::from_secs(5 * 60);
    // Three quiet rules, swept at different minutes of the 5.
    let mut names: Vec<String> = Vec::new();
    for stem in ["QuietA", "QuietB", "QuietC"] {
        let taken: Vec<Rule> = names.iter().map(|n| rule(n)).collect();
        let name = (0..10_000)
            .map(|i| format!("{stem}{i}"))
            .find(|n| {
                let r = rule(n);
                (3..=7).all(|k| {
                    !(sweep_due(&r, w.tick(k), sweep)
                        && taken.iter().any(|t| sweep_due(t, w.tick(k), sweep)))
                })
            })
            .unwrap();
        names.push(name);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let e = w.engine(w.config(&refs, "5m", "c"));
    assert_eq!(e.desired_sentinels().alarms.len(), 3);
    w.put_quiet(&refs).await;
    // Ticks 1 and 2: created, then trusted.
    let (r, _) = w.cycle(&e, 1).await;
    assert_eq!(r.sentinels.unsynced, 3);
    assert_eq!(r.sentinels.reconciled.unwrap().create.len(), 3);
    let (r, _) = w.cycle(&e, 2).await;
    assert_eq!(r.sentinels.unsynced, 3);
    assert_eq!(r.sentinels.reconciled.unwrap().in_sync.len(), 3);
    let rules: Vec<Rule> = names.iter().map(|n| rule(n)).collect();
    let mut swept_total = 0;
    for k in 3..=14 {
        let describes = w.alarms.stats().describe_alarms;
        let (r, gmd) = w.cycle(&e, k).await;
        let due = rules
            .iter()
            .filter(|r| sweep_due(r, w.tick(k), sweep))
            .count();
        swept_total += due;
        assert_eq!(
            (r.sentinels.swept, r.sentinels.cold, r.sentinels.alarm),
            (due, 3 - due, 0),
            "tick {k}: {r:?}"
        );
        // Every sweep of a tick in one query each, in one call; none else.
        assert_eq!((r.queries, gmd), (due, u64::from(due > 0)), "tick {k}");
        assert_eq!(r.rules_evaluated, due, "tick {k}");
        // One DescribeAlarms a cycle for all the rules (two at a sweep
        // boundary: the reconcile lists them too).
        let boundary = w.tick(k) % 300 == 0;
        assert_eq!(
            w.alarms.stats().describe_alarms - describes,
            1 + u64::from(boundary),
            "tick {k}"
        );
        assert_eq!(r.sentinels.reconciled.is_some(), boundary, "tick {k}");
        assert_eq!(r.store_writes, 0, "tick {k}: a quiet cycle writes nothing");
    }
    // Twelve cycles, each rule swept every 5 minutes: 2 or 3 times each.
    assert!((6..=9).contains(&swept_total), "{swept_total}");
    assert!(w.notifier.is_empty());
}

#[tokio::test]
async fn a_sentinel_deleted_behind_firebells_back_is_recreated_and_the_sweep_covers_the_gap() {
    let _serial = SERIAL.lock().await;
    let w = World::new().await;
    let sweep = Duration::from_secs(5 * 60);
    // `b`: the first tick from 6 on at a sweep boundary (a reconcile).
    let b = (6..=10).find(|k| w.tick(*k) % 300 == 0).unwrap();
    // The rule's sweep two ticks before it (so again at b + 3), and at no
    // other tick around.
    let name = w.name_where("Gone", sweep, b - 4..=b + 4, |k| k == b - 2 || k == b + 3);
    let config = w.config(&[&name], "5m", "d");
    let e = w.engine(config.clone());
    let alarm = e.desired_sentinels().sentinel_of(&name).unwrap().clone();
    w.put_quiet(&[&name]).await;
    sync(&w, &e, &alarm.name).await;
    for k in 3..=b - 4 {
        w.cycle(&e, k).await;
    }

    // Deleted behind firebell's back; then the rule breaches in buckets b-4
    // and b-3.
    w.aws
        .cloudwatch
        .delete_alarms()
        .alarm_names(&alarm.name)
        .send()
        .await
        .unwrap();
    w.put_breach(&name, b - 4).await;
    w.put_breach(&name, b - 3).await;
    // Nothing says so: cold until its sweep ...
    let (r, gmd) = w.cycle(&e, b - 3).await;
    assert_eq!((polls(&r.sentinels), gmd), (COLD, 0), "{r:?}");
    // ... which evaluates it: the fire is found one sweep late at most, with
    // the data's time.
    let (r, gmd) = w.cycle(&e, b - 2).await;
    assert_eq!((polls(&r.sentinels), gmd), (SWEPT, 1), "{r:?}");
    assert_eq!(events(&r), [('F', w.tick(b - 4))]);
    // Firing: polled; bucket b-2 is quiet, resolved.
    let (r, gmd) = w.cycle(&e, b - 1).await;
    assert_eq!((polls(&r.sentinels), gmd), (ACTIVE, 1), "{r:?}");
    assert_eq!(events(&r), [('R', w.tick(b - 2))]);
    let statuses: Vec<String> = w
        .notifier
        .messages()
        .iter()
        .map(|m| m.attributes.get("status").cloned().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"]);
    // The sweep boundary's reconcile finds the sentinel missing and puts it
    // back (the emulator evaluates it at once: the breach is in its range).
    let (r, gmd) = w.cycle(&e, b).await;
    assert_eq!((polls(&r.sentinels), gmd), (COLD, 0), "{r:?}");
    let changes = r.sentinels.reconciled.expect("the boundary's reconcile");
    assert_eq!(changes.create, [alarm.name.as_str()]);
    assert_eq!(w.alarm_names().await, [alarm.name.as_str()]);
    // Put, not trusted until a listing sees it evaluated: polled.
    let (r, gmd) = w.cycle(&e, b + 1).await;
    assert_eq!((polls(&r.sentinels), gmd), (UNSYNCED, 1), "{r:?}");
    assert_eq!(
        r.sentinels.reconciled.unwrap().in_sync,
        [alarm.name.as_str()]
    );
    // Trusted again, and in ALARM: hot.
    let (r, gmd) = w.cycle(&e, b + 2).await;
    assert_eq!((polls(&r.sentinels), gmd), (ALARM, 1), "{r:?}");
    assert!(r.transitions.is_empty());

    // Deleted again; this time the config changes (a new version): the
    // next cycle's reconcile recreates it, before any sweep boundary.
    w.set_state(&alarm.name, StateValue::Ok).await;
    w.aws
        .cloudwatch
        .delete_alarms()
        .alarm_names(&alarm.name)
        .send()
        .await
        .unwrap();
    assert!(w.alarm_names().await.is_empty());
    let changed = w.config(&[&name], "5m", "d, changed");
    assert_ne!(changed.version, config.version);
    let e = e.with_config(changed);
    let (r, gmd) = w.cycle(&e, b + 3).await;
    // The record is of the old config version: not trusted (the labels or
    // routes may have changed with it), so polled until a reconcile of
    // this version records what it found.
    assert_eq!((polls(&r.sentinels), gmd), (UNSYNCED, 1), "{r:?}");
    assert_eq!(
        r.sentinels.reconciled.expect("a reconcile").create,
        [alarm.name.as_str()]
    );
    assert_eq!(w.alarm_names().await, [alarm.name.as_str()]);
    let (r, gmd) = w.cycle(&e, b + 4).await;
    assert_eq!((polls(&r.sentinels), gmd), (UNSYNCED, 1), "{r:?}");
}

#[tokio::test]
async fn alarms_outside_the_prefix_are_never_touched() {
    let _serial = SERIAL.lock().await;
    let w = World::new().await;
    let name = "Mine";
    let e = w.engine(w.config(&[name], "15m", "e"));
    w.put_quiet(&[name]).await;
    // Someone else's alarm that looks like a sentinel (firebell's
    // description marker), under another prefix; and a stale sentinel of
    // this deployment, which the reconcile deletes.
    let other = format!("{}x-rule.Theirs", w.prefix.trim_end_matches('-'));
    let stale = format!("{}rule.Removed", w.prefix);
    for n in [&other, &stale] {
        w.aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(n)
            .alarm_description("firebell sentinel of Removed; definition 0123456789ab")
            .namespace(&w.ns)
            .metric_name(name)
            .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
            .period(60)
            .evaluation_periods(1)
            .threshold(100.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();
    }
    let (r, _) = w.cycle(&e, 1).await;
    let changes = r.sentinels.reconciled.unwrap();
    assert_eq!(changes.delete, [stale.as_str()]);
    let mine = e.desired_sentinels().alarms[0].name.clone();
    assert_eq!(w.alarm_names().await, [mine]);
    let theirs = w
        .aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.metric_alarms().len(), 1, "{other} was deleted");
}
