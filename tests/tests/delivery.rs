//! Delivery guarantees end to end: the engine with the real adapters
//! (CloudWatchSource, DynamoStore, SnsNotifier) against the emulator, with
//! faults injected, and what SNS really published counted at the SQS queues
//! subscribed to the topics: zero lost and zero duplicate notifications.
//!
//! Every test plays the same scenario on its own table, topics, queues and
//! CloudWatch namespace. Three rules watch one error count each (`api`,
//! `web`, `db`); each breaches from minute 2 to minute 7 of the scenario
//! (fires on bucket 2, resolves on bucket 8). `api` pages `api-oncall`
//! (a FIFO topic), `web` pages `web-oncall` (a standard topic), `db` falls
//! through to `ops` (a FIFO and a standard topic). Without faults every queue
//! gets exactly two notifications: `#1 firing`, then `#2 resolved`. The
//! cycles run at ticks 1..=14 minutes after the scenario's base, which is
//! 20 minutes in the past (CloudWatch refuses very old datapoints).
//!
//! Every scenario runs twice: polling every rule every minute
//! (`polling::*`), and with `sentinels: {mode: auto}` (`with_sentinels::*`),
//! where each rule has a sentinel alarm (CloudWatchAlarms on the emulator)
//! and a cycle skips the rules whose sentinel is OK, whose state is at
//! rest and whose sweep is not due. There the sentinels are in sync before
//! the first tick (as after `firebell sentinels apply`), and their state
//! follows the scenario's data as CloudWatch would compute it at each tick
//! (ALARM while a breaching bucket is among the alarm's last
//! `EvaluationPeriods`), set with `SetAlarmState`: the emulator evaluates
//! alarms against the wall clock, so the scenario's base is 40 minutes in
//! the past there, out of every sentinel's range, where the emulator leaves
//! their state alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::StateValue;
use firebell_aws::{CloudWatchAlarms, CloudWatchSource, DynamoStore, SnsNotifier};
use firebell_core::Timestamp;
use firebell_core::diag::Diagnostics;
use firebell_core::model::MetricSpec;
use firebell_core::ports::{
    Clock, Expect, Item, Key, MetricQuery, MetricSeries, MetricsError, MetricsSource, Notifier,
    NotifyError, Outbound, StateStore, StoreError,
};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_embedded::ManualClock;
use firebell_engine::history::HistoryEntry;
use firebell_engine::{Config, CycleReport, Engine, EngineOptions, Skip};
use firebell_tests::{Aws, Datum, Received, aws, counts, minute_now, unique, unreachable_config};

/// Ticks of the scenario (minutes after the base).
const LAST_TICK: i64 = 14;
/// The bucket whose breach fires the alerts (judged at tick 3).
const FIRE_BUCKET: i64 = 2;
/// The first bucket back under the threshold (judged at tick 9).
const RESOLVE_BUCKET: i64 = 8;
const FIRE_TICK: i64 = FIRE_BUCKET + 1;
const RESOLVE_TICK: i64 = RESOLVE_BUCKET + 1;
/// Lease of the engines: two minutes, so a crashed cycle blocks two ticks.
const LEASE_SECS: i64 = 120;

const SERVICES: [(&str, &str); 3] = [("api", "Api"), ("web", "Web"), ("db", "Db")];

/// How the engine decides what to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every rule every minute.
    Polling,
    /// `sentinels: {mode: auto}`: a sentinel alarm per rule.
    Sentinels,
}

fn config_text(ns: &str, topics: &Topics, mode: Mode) -> String {
    let mut rules = String::from("rules:\n");
    for (svc, name) in SERVICES {
        rules.push_str(&format!(
            r#"  - name: {name}Errors
    metrics:
      errors: {{namespace: "{ns}", metric: Errors, dimensions: {{Service: {svc}}}, stat: Sum, period: 1m}}
    expression: errors
    unit: count
    condition: {{op: ">", threshold: 10}}
    for: 0s
    missing_data: ok
    labels: {{team: {svc}, service: {svc}, severity: page}}
    annotations: {{title: {name} errors}}
"#
        ));
    }
    format!(
        r#"{rules}
receivers:
  api-oncall: {{topics: ["{api}"], send_resolved: true}}
  web-oncall: {{topics: ["{web}"], send_resolved: true}}
  ops: {{topics: ["{ops_fifo}", "{ops_std}"], send_resolved: true}}
route:
  receiver: ops
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
  routes:
    - matchers: ['team="api"']
      receiver: api-oncall
    - matchers: ['team="web"']
      receiver: web-oncall
{sentinels}"#,
        sentinels = match mode {
            Mode::Polling => "",
            Mode::Sentinels => "sentinels: {mode: auto}\n",
        },
        api = topics.api_fifo,
        web = topics.web_std,
        ops_fifo = topics.ops_fifo,
        ops_std = topics.ops_std,
    )
}

#[derive(Debug, Clone)]
struct Topics {
    api_fifo: String,
    web_std: String,
    ops_fifo: String,
    ops_std: String,
}

/// One queue subscribed to one topic, and what it must receive.
#[derive(Debug, Clone)]
struct Queue {
    name: &'static str,
    url: String,
    fifo: bool,
    receiver: &'static str,
    alertname: &'static str,
}

struct World {
    aws: Aws,
    table: String,
    base: Epoch,
    clock: Arc<ManualClock>,
    config: Arc<Config>,
    topics: Topics,
    queues: Vec<Queue>,
    mode: Mode,
    /// The sentinels' name prefix (this test's own).
    prefix: String,
    /// Sentinel name -> its `EvaluationPeriods`.
    sentinels: BTreeMap<String, u32>,
    /// The state each sentinel was last set to.
    driven: Mutex<BTreeMap<String, StateValue>>,
}

impl World {
    async fn new(mode: Mode) -> World {
        let aws = aws().await.expect("emulator");
        let table = aws.table().await.expect("table");
        let topics = Topics {
            api_fifo: aws.topic(true).await.unwrap(),
            web_std: aws.topic(false).await.unwrap(),
            ops_fifo: aws.topic(true).await.unwrap(),
            ops_std: aws.topic(false).await.unwrap(),
        };
        let mut queues = Vec::new();
        for (name, topic, receiver, alertname) in [
            ("api (FIFO)", &topics.api_fifo, "api-oncall", "ApiErrors"),
            ("web (standard)", &topics.web_std, "web-oncall", "WebErrors"),
            ("ops (FIFO)", &topics.ops_fifo, "ops", "DbErrors"),
            ("ops (standard)", &topics.ops_std, "ops", "DbErrors"),
        ] {
            queues.push(Queue {
                name,
                url: aws.subscribed_queue(topic).await.unwrap(),
                fifo: topic.ends_with(".fifo"),
                receiver,
                alertname,
            });
        }
        let ns = format!("Firebell/Delivery/{}", unique("ns"));
        let base = match mode {
            Mode::Polling => minute_now() - 20 * 60,
            Mode::Sentinels => minute_now() - 40 * 60,
        };
        let mut data = Vec::new();
        for (svc, _) in SERVICES {
            for m in -6..=LAST_TICK {
                let breach = (FIRE_BUCKET..RESOLVE_BUCKET).contains(&m);
                data.push(Datum {
                    metric: "Errors".to_string(),
                    dimensions: vec![("Service".to_string(), svc.to_string())],
                    t: base + 60 * m,
                    value: if breach { 50.0 } else { 1.0 },
                });
            }
        }
        aws.put_metric_data(&ns, &data).await.expect("put data");

        let mut diags = Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[("delivery.yaml".to_string(), config_text(&ns, &topics, mode))],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        let prefix = format!("{}-", unique("fb-delivery"));
        let sentinels = match mode {
            Mode::Polling => BTreeMap::new(),
            Mode::Sentinels => firebell_engine::sentinel::desired(&config, &prefix)
                .alarms
                .iter()
                .map(|a| (a.name.clone(), a.evaluation_periods))
                .collect(),
        };
        let w = World {
            table,
            base,
            clock: Arc::new(ManualClock::at_epoch(base)),
            config: Arc::new(config),
            topics,
            queues,
            aws,
            mode,
            prefix,
            sentinels,
            driven: Mutex::new(BTreeMap::new()),
        };
        if mode == Mode::Sentinels {
            w.sync_sentinels().await;
        }
        w
    }

    /// Sentinel mode: creates the sentinels, sets their state as of tick 0
    /// and records them in sync, as `firebell sentinels apply` leaves them.
    async fn sync_sentinels(&self) {
        use firebell_engine::sentinel::{MAX_PUTS_PER_CYCLE, desired, reconcile, store_sync};
        let desired = desired(&self.config, &self.prefix);
        assert_eq!(
            desired.alarms.len(),
            SERVICES.len(),
            "{:?}",
            desired.polling
        );
        let alarms = CloudWatchAlarms::new(self.aws.cloudwatch.clone());
        let version = &self.config.version;
        let (put, _) = reconcile(
            &desired,
            &alarms,
            &self.prefix,
            version,
            self.base,
            MAX_PUTS_PER_CYCLE,
            true,
            &|| false,
        )
        .await
        .unwrap();
        assert_eq!(put.create.len(), SERVICES.len());
        self.drive(0).await;
        let (found, record) = reconcile(
            &desired,
            &alarms,
            &self.prefix,
            version,
            self.base,
            MAX_PUTS_PER_CYCLE,
            true,
            &|| false,
        )
        .await
        .unwrap();
        assert_eq!(found.in_sync.len(), SERVICES.len(), "{found:?}");
        assert!(
            store_sync(self.dynamo().as_ref(), &record, None)
                .await
                .unwrap()
        );
    }

    /// Sentinel mode: sets every sentinel's state to what CloudWatch would
    /// say at tick `k`: ALARM while one of its last `EvaluationPeriods`
    /// buckets breaches (the scenario's breach: buckets FIRE_BUCKET to
    /// RESOLVE_BUCKET - 1, every service).
    async fn drive(&self, k: i64) {
        for (name, &periods) in &self.sentinels {
            let breaching =
                (k - i64::from(periods)..k).any(|b| (FIRE_BUCKET..RESOLVE_BUCKET).contains(&b));
            let state = if breaching {
                StateValue::Alarm
            } else {
                StateValue::Ok
            };
            if self.driven.lock().unwrap().get(name) == Some(&state) {
                continue;
            }
            self.aws
                .cloudwatch
                .set_alarm_state()
                .alarm_name(name)
                .state_value(state.clone())
                .state_reason(format!("the scenario's data at tick {k}"))
                .send()
                .await
                .unwrap();
            self.driven.lock().unwrap().insert(name.clone(), state);
        }
    }

    /// Sets the clock to tick `k` (and, with sentinels, their state).
    async fn at(&self, k: i64) {
        self.clock.set_epoch(self.tick(k));
        self.drive(k).await;
    }

    fn tick(&self, k: i64) -> Epoch {
        self.base + 60 * k
    }

    /// A store client of its own on the test's table (as another Lambda
    /// container would have), judging expiry by the test's clock.
    fn dynamo(&self) -> Arc<DynamoStore> {
        Arc::new(DynamoStore::new(
            self.aws.dynamodb.clone(),
            self.table.clone(),
            self.clock.clone() as Arc<dyn Clock>,
        ))
    }

    fn cloudwatch(&self) -> Arc<CloudWatchSource> {
        Arc::new(CloudWatchSource::new(
            self.aws.cloudwatch.clone(),
            self.clock.clone() as Arc<dyn Clock>,
        ))
    }

    fn sns(&self) -> Arc<SnsNotifier> {
        Arc::new(SnsNotifier::new(self.aws.sns.clone()))
    }

    fn engine(
        &self,
        owner: &str,
        metrics: Arc<dyn MetricsSource>,
        store: Arc<dyn StateStore>,
        notifier: Arc<dyn Notifier>,
    ) -> Engine {
        let e = Engine::new(
            self.config.clone(),
            metrics,
            store,
            notifier,
            EngineOptions {
                owner: owner.to_string(),
                lease_secs: LEASE_SECS,
                sentinel_prefix: self.prefix.clone(),
                ..EngineOptions::default()
            },
        );
        match self.mode {
            Mode::Polling => e,
            Mode::Sentinels => {
                e.with_alarms(Arc::new(CloudWatchAlarms::new(self.aws.cloudwatch.clone())))
            }
        }
    }

    /// An engine with the plain adapters.
    fn plain_engine(&self, owner: &str) -> Engine {
        self.engine(owner, self.cloudwatch(), self.dynamo(), self.sns())
    }

    /// Runs tick `k` (the clock set to it).
    async fn cycle(&self, e: &Engine, k: i64) -> CycleReport {
        self.at(k).await;
        e.run_cycle(self.tick(k), &|| false)
            .await
            .unwrap_or_else(|err| panic!("tick {k}: {err}"))
    }

    /// Drains every queue and asserts the scenario's outcome: each queue got
    /// `#1 firing` then `#2 resolved` exactly once (in order on FIFO
    /// queues), fired and resolved at the data's times, and nothing is left
    /// in the outbox.
    async fn assert_exactly_once(&self) -> Vec<Received> {
        let all = self.drain().await;
        self.check(&all, &[]);
        all
    }

    async fn drain(&self) -> Vec<Received> {
        let mut all = Vec::new();
        for q in &self.queues {
            all.extend(self.aws.drain(&q.url).await.unwrap());
        }
        all
    }

    /// Checks the scenario's outcome; `tolerated` lists queues allowed one
    /// re-send of a notification (the documented at-least-once case).
    fn check(&self, all: &[Received], tolerated: &[&str]) {
        let fired_at = Timestamp::from_second(self.tick(FIRE_BUCKET))
            .unwrap()
            .to_string();
        let resolved_at = Timestamp::from_second(self.tick(RESOLVE_BUCKET))
            .unwrap()
            .to_string();
        for q in &self.queues {
            let got: Vec<&Received> = all.iter().filter(|m| m.queue == q.url).collect();
            let mut seqs: Vec<(u64, &str)> = got.iter().map(|m| (m.seq(), m.status())).collect();
            if !q.fifo {
                seqs.sort();
            }
            if tolerated.contains(&q.name) {
                seqs.dedup();
            }
            assert_eq!(
                seqs,
                [(1, "firing"), (2, "resolved")],
                "{}: what arrived, in order{}",
                q.name,
                if q.fifo { "" } else { " (sorted)" }
            );
            for m in &got {
                assert_eq!(m.receiver(), q.receiver, "{}", q.name);
                let alerts = m.alerts();
                assert_eq!(alerts.len(), 1, "{}: {:?}", q.name, m.payload);
                assert_eq!(alerts[0]["alertname"], q.alertname, "{}", q.name);
                // No lost fire, no false resolve: the times are the data's.
                assert_eq!(alerts[0]["fired_at"], fired_at.as_str(), "{}", q.name);
                if m.status() == "resolved" {
                    assert_eq!(alerts[0]["resolved_at"], resolved_at.as_str(), "{}", q.name);
                }
                if q.fifo {
                    assert_eq!(m.group_id.as_deref(), Some(m.group_key()), "{}", q.name);
                }
            }
        }
        for ((receiver, group, seq), n) in counts(all) {
            let allowed = self
                .queues
                .iter()
                .filter(|q| q.receiver == receiver)
                .map(|q| if tolerated.contains(&q.name) { 2 } else { 1 })
                .sum::<usize>();
            let topics = self
                .queues
                .iter()
                .filter(|q| q.receiver == receiver)
                .count();
            assert!(
                n >= topics && n <= allowed,
                "{receiver} {group} #{seq} arrived {n} times on {topics} topic(s)"
            );
        }
    }

    async fn assert_outbox_empty(&self) {
        let store = self.dynamo();
        let left = firebell_notify::pending(store.as_ref()).await.unwrap();
        assert!(left.is_empty(), "outbox not empty: {left:?}");
    }
}

/// The transitions of a cycle as `(rule, event)`.
fn transitions(r: &CycleReport) -> Vec<(String, Event)> {
    r.transitions
        .iter()
        .map(|t| (t.rule.clone(), t.event))
        .collect()
}

fn did_work(r: &CycleReport) -> bool {
    r.store_writes > 0 || r.messages_published > 0
}

// ------------------------------------------------------------------ wrappers

/// Records every successful publish, in order.
struct Recorder {
    inner: Arc<dyn Notifier>,
    sent: Mutex<Vec<Outbound>>,
}

impl Recorder {
    fn new(inner: Arc<dyn Notifier>) -> Arc<Recorder> {
        Arc::new(Recorder {
            inner,
            sent: Mutex::new(Vec::new()),
        })
    }

    fn sent(&self) -> Vec<Outbound> {
        self.sent.lock().unwrap().clone()
    }

    /// Successful publishes per idempotency key.
    fn per_key(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in self.sent() {
            *out.entry(m.idempotency_key).or_insert(0) += 1;
        }
        out
    }
}

#[async_trait]
impl Notifier for Recorder {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        self.inner.publish(msg).await?;
        self.sent.lock().unwrap().push(msg.clone());
        Ok(())
    }
}

/// SNS that goes down: every topic (`all_down`, through a client whose
/// endpoint refuses connections), or one topic (`down_topic`, failing with
/// `Unavailable` without a call).
struct Flaky {
    up: Arc<SnsNotifier>,
    down: Arc<SnsNotifier>,
    all_down: AtomicBool,
    down_topic: Mutex<Option<String>>,
    failures: AtomicUsize,
}

#[async_trait]
impl Notifier for Flaky {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        let result = if self.all_down.load(Ordering::SeqCst) {
            self.down.publish(msg).await
        } else if self.down_topic.lock().unwrap().as_deref() == Some(msg.destination.as_str()) {
            Err(NotifyError::Unavailable(format!(
                "{} is down (injected)",
                msg.destination
            )))
        } else {
            self.up.publish(msg).await
        };
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        result
    }
}

/// When the process "crashes" (panics) while publishing.
#[derive(Debug, Clone, PartialEq)]
enum Crash {
    Never,
    /// The next publish panics before calling SNS.
    BeforePublish,
    /// The next publish to this topic goes out, then the process panics
    /// (before the outbox item is deleted).
    AfterPublishTo(String),
}

struct Crashing {
    inner: Arc<dyn Notifier>,
    crash: Mutex<Crash>,
}

#[async_trait]
impl Notifier for Crashing {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        let crash = self.crash.lock().unwrap().clone();
        match crash {
            Crash::BeforePublish => {
                *self.crash.lock().unwrap() = Crash::Never;
                panic!("injected crash before publishing {}", msg.subject);
            }
            Crash::AfterPublishTo(topic) if topic == msg.destination => {
                self.inner.publish(msg).await?;
                *self.crash.lock().unwrap() = Crash::Never;
                panic!("injected crash after publishing {}", msg.subject);
            }
            _ => self.inner.publish(msg).await,
        }
    }
}

/// What the metrics source does this cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
enum MetricsFault {
    None,
    /// `GetMetricData` throttled (after the adapter's own retries).
    Throttled,
    /// The series come back marked partial, without their latest 4 minutes.
    Partial,
}

struct FaultySource {
    inner: Arc<CloudWatchSource>,
    fault: Mutex<MetricsFault>,
}

#[async_trait]
impl MetricsSource for FaultySource {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        let fault = *self.fault.lock().unwrap();
        match fault {
            MetricsFault::Throttled => Err(MetricsError::Throttled(
                "Rate exceeded (injected)".to_string(),
            )),
            MetricsFault::None => self.inner.fetch(queries, start, end).await,
            MetricsFault::Partial => {
                let mut series = self.inner.fetch(queries, start, end).await?;
                for s in &mut series {
                    s.points.retain(|p| p.t < end - 240);
                    s.complete = false;
                }
                Ok(series)
            }
        }
    }

    async fn dimension_values(
        &self,
        spec: &MetricSpec,
    ) -> Result<Vec<firebell_core::model::Labels>, MetricsError> {
        self.inner.dimension_values(spec).await
    }
}

/// How [`Conflicting`] makes conditional writes fail.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Interference {
    /// Another writer really wrote first: a versioned item is rewritten with
    /// the next version, an absent one is written as the caller would.
    Writer,
    /// The condition fails without any write (as after a lost race whose
    /// winner's write the reader then sees as unchanged).
    Spurious,
}

/// A store whose conditional writes (outside the `cycle` partition: the
/// lease has its own tests) conflict, `budget` times.
struct Conflicting {
    inner: Arc<DynamoStore>,
    how: Interference,
    budget: AtomicUsize,
    eligible: AtomicUsize,
    injected: Mutex<Vec<(String, Expect)>>,
}

impl Conflicting {
    /// Every other eligible write conflicts while the budget lasts, so the
    /// retries of one write go through and the next kind of write is hit.
    fn take(&self) -> bool {
        if self.eligible.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            return false;
        }
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
            .is_ok()
    }
}

#[async_trait]
impl StateStore for Conflicting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.inner.batch_get(keys).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.inner.query(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.inner.delete(key, expect).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        if expect != Expect::Any && item.pk != "cycle" && self.take() {
            self.injected
                .lock()
                .unwrap()
                .push((format!("{}/{}", item.pk, item.sk), expect));
            match self.how {
                Interference::Spurious => {}
                Interference::Writer => match expect {
                    Expect::Version(v) => {
                        let key = Key::new(item.pk.clone(), item.sk.clone());
                        if let Some(mut current) = self.inner.get(&key).await? {
                            current.version = v + 1;
                            self.inner.put(current, Expect::Version(v)).await?;
                        }
                    }
                    Expect::Absent => self.inner.put(item.clone(), Expect::Absent).await?,
                    Expect::Any => {}
                },
            }
            return Err(StoreError::Conflict {
                pk: item.pk,
                sk: item.sk,
            });
        }
        self.inner.put(item, expect).await
    }
}

// --------------------------------------------------------------------- tests

async fn no_faults_baseline_and_quiet_cycles_write_nothing(mode: Mode) {
    let w = World::new(mode).await;
    let store = w.dynamo();
    let e = w.engine("a", w.cloudwatch(), store.clone(), w.sns());
    let mut seen = Vec::new();
    let (mut cold, mut unsynced) = (0, 0);
    for k in 1..=LAST_TICK {
        let before = store.stats();
        let r = w.cycle(&e, k).await;
        cold += r.sentinels.cold;
        unsynced += r.sentinels.unsynced;
        let writes = store.stats().writes() - before.writes();
        assert!(r.errors.is_empty(), "tick {k}: {:?}", r.errors);
        if k != FIRE_TICK && k != RESOLVE_TICK {
            assert_eq!(writes, 0, "tick {k} is quiet: {r:?}");
        } else {
            // The alerts, their states, outbox and group logs, outbox
            // deletes, and the lease (take, last tick, release).
            assert!(writes > 3, "tick {k}: {writes} writes");
        }
        for (rule, ev) in transitions(&r) {
            seen.push((k, rule, ev));
        }
    }
    let fired: Vec<i64> = seen
        .iter()
        .filter(|(_, _, ev)| matches!(ev, Event::Fired { .. }))
        .map(|(k, _, _)| *k)
        .collect();
    let resolved: Vec<i64> = seen
        .iter()
        .filter(|(_, _, ev)| matches!(ev, Event::Resolved { .. }))
        .map(|(k, _, _)| *k)
        .collect();
    assert_eq!(fired, [FIRE_TICK; 3], "{seen:?}");
    assert_eq!(resolved, [RESOLVE_TICK; 3], "{seen:?}");
    match mode {
        Mode::Polling => assert_eq!((cold, unsynced), (0, 0)),
        // The sentinels did skip the quiet rules (and were trusted throughout).
        Mode::Sentinels => {
            assert!(cold > 0, "no rule was ever skipped");
            assert_eq!(unsynced, 0);
        }
    }
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
    // History is on (the default), written by the two cycles that wrote
    // anyway: their transitions, notifications and own records.
    let history =
        firebell_engine::history::read(store.as_ref(), w.tick(1), w.tick(LAST_TICK) + 3600)
            .await
            .unwrap();
    let kinds: Vec<(i64, &str)> = history
        .iter()
        .map(|e| {
            let kind = match e {
                HistoryEntry::Transition(_) => "transition",
                HistoryEntry::Notification(_) => "notification",
                HistoryEntry::Cycle(_) => "cycle",
            };
            ((e.at() - w.tick(0)) / 60, kind)
        })
        .collect();
    let fire_cycles = kinds.iter().filter(|(_, k)| *k == "cycle").count();
    assert_eq!(fire_cycles, 2, "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|(_, k)| *k == "transition").count(),
        6,
        "{kinds:?}"
    );
    assert!(
        kinds.iter().filter(|(_, k)| *k == "notification").count() >= 2,
        "{kinds:?}"
    );
}

async fn the_same_tick_delivered_twice_sequentially_and_concurrently(mode: Mode) {
    let w = World::new(mode).await;
    // Two Lambda containers: engines with their own clients on one table.
    let a = w.plain_engine("container-a");
    let b = w.plain_engine("container-b");
    let mut skips = Vec::new();
    for k in 1..=LAST_TICK {
        w.at(k).await;
        // The tick delivered to both containers at once ...
        let (ra, rb) = tokio::join!(
            a.run_cycle(w.tick(k), &|| false),
            b.run_cycle(w.tick(k), &|| false)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        // ... and once more, late, to the first.
        let again = w.cycle(&a, k).await;
        assert!(
            !(did_work(&ra) && did_work(&rb)),
            "tick {k}: both deliveries did work: {ra:?} {rb:?}"
        );
        assert!(!did_work(&again), "tick {k}: the late duplicate did work");
        if did_work(&ra) || did_work(&rb) {
            assert_eq!(again.skipped, Some(Skip::Duplicate), "tick {k}");
        }
        skips.extend([ra.skipped, rb.skipped, again.skipped]);
    }
    assert!(skips.contains(&Some(Skip::Duplicate)), "{skips:?}");
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

/// A store that stops the first lease take until it is told to go on.
struct Gate {
    inner: Arc<DynamoStore>,
    armed: AtomicBool,
    reached: tokio::sync::Notify,
    open: tokio::sync::Notify,
}

#[async_trait]
impl StateStore for Gate {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.inner.batch_get(keys).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.inner.query(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.inner.delete(key, expect).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        if (item.pk.as_str(), item.sk.as_str()) == ("cycle", "lease")
            && self.armed.swap(false, Ordering::SeqCst)
        {
            self.reached.notify_one();
            self.open.notified().await;
        }
        self.inner.put(item, expect).await
    }
}

async fn a_cycle_that_read_before_another_wrote_writes_nothing(mode: Mode) {
    // B reads everything for the fire tick and decides to write; before its
    // first write, A runs the whole tick. B's view is stale: it must write
    // and publish nothing (its lease take fails: A moved the lease).
    let w = World::new(mode).await;
    let a = w.plain_engine("a");
    let gate = Arc::new(Gate {
        inner: w.dynamo(),
        armed: AtomicBool::new(false),
        reached: tokio::sync::Notify::new(),
        open: tokio::sync::Notify::new(),
    });
    let b_sent = Recorder::new(w.sns());
    let b = w.engine("b", w.cloudwatch(), gate.clone(), b_sent.clone());
    for k in 1..FIRE_TICK {
        w.cycle(&a, k).await;
    }
    gate.armed.store(true, Ordering::SeqCst);
    w.at(FIRE_TICK).await;
    let run_a = async {
        gate.reached.notified().await;
        let r = a.run_cycle(w.tick(FIRE_TICK), &|| false).await;
        gate.open.notify_one();
        r
    };
    let (ra, rb) = tokio::join!(run_a, b.run_cycle(w.tick(FIRE_TICK), &|| false));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.skipped, None);
    assert_eq!(ra.messages_published, 4, "{ra:?}");
    assert_eq!(rb.skipped, Some(Skip::Overlap), "{rb:?}");
    assert_eq!(rb.store_writes + rb.messages_published, 0, "{rb:?}");
    assert!(b_sent.sent().is_empty());
    for k in FIRE_TICK + 1..=LAST_TICK {
        let r = w.cycle(&b, k).await;
        assert!(r.errors.is_empty(), "tick {k}: {:?}", r.errors);
    }
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn overlapping_invocations_on_the_same_table(mode: Mode) {
    let w = World::new(mode).await;
    let a = w.plain_engine("invocation-a");
    let b = w.plain_engine("invocation-b");
    let mut overlaps = 0;
    for k in 1..=LAST_TICK {
        // Odd steps: a late tick k overlaps the next tick k+1; even steps:
        // both run tick k.
        let kb = if k % 2 == 1 { k + 1 } else { k };
        w.at(kb).await;
        let (ra, rb) = tokio::join!(
            a.run_cycle(w.tick(k), &|| false),
            b.run_cycle(w.tick(kb), &|| false)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            !(did_work(&ra) && did_work(&rb)),
            "ticks {k}/{kb}: both invocations did work: {ra:?} {rb:?}"
        );
        overlaps += [&ra, &rb]
            .iter()
            .filter(|r| r.skipped == Some(Skip::Overlap))
            .count();
    }
    let last = w.cycle(&a, LAST_TICK + 1).await;
    assert!(last.errors.is_empty(), "{:?}", last.errors);
    eprintln!("overlap skips: {overlaps}");
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn a_crash_between_the_state_write_and_the_publish(mode: Mode) {
    let w = World::new(mode).await;
    let notifier = Arc::new(Crashing {
        inner: w.sns(),
        crash: Mutex::new(Crash::Never),
    });
    let e = Arc::new(w.engine("a", w.cloudwatch(), w.dynamo(), notifier.clone()));
    for k in 1..FIRE_TICK {
        w.cycle(&e, k).await;
    }

    // 1. The deadline stops the fire tick right after evaluation: the state
    //    and the alert are written, nothing is dispatched or published.
    w.at(FIRE_TICK).await;
    let r = e.run_cycle(w.tick(FIRE_TICK), &|| true).await.unwrap();
    assert!(r.stopped_early);
    assert_eq!(
        transitions(&r)
            .iter()
            .filter(|(_, ev)| matches!(ev, Event::Fired { .. }))
            .count(),
        3
    );
    assert_eq!(r.notifications_enqueued + r.messages_published, 0);
    // The scheduler retries the tick: it was not completed, so it runs,
    // finds the fire already recorded and sends it.
    let retry = w.cycle(&e, FIRE_TICK).await;
    assert_eq!(retry.skipped, None);
    assert!(retry.transitions.is_empty(), "{:?}", retry.transitions);
    assert_eq!(retry.messages_published, 4, "{retry:?}");

    // 2. At the resolve tick the deadline hits after dispatching: the
    //    outbox holds the decisions, the next tick publishes them.
    for k in FIRE_TICK + 1..RESOLVE_TICK {
        w.cycle(&e, k).await;
    }
    let polls = AtomicUsize::new(0);
    let stop_after_dispatch = || polls.fetch_add(1, Ordering::SeqCst) >= 1;
    w.at(RESOLVE_TICK).await;
    let r = e
        .run_cycle(w.tick(RESOLVE_TICK), &stop_after_dispatch)
        .await
        .unwrap();
    assert!(r.stopped_early);
    assert_eq!((r.notifications_enqueued, r.messages_published), (3, 0));
    let next = w.cycle(&e, RESOLVE_TICK + 1).await;
    assert_eq!(next.messages_published, 4, "{next:?}");
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn a_process_crash_while_publishing(mode: Mode) {
    let w = World::new(mode).await;
    let notifier = Arc::new(Crashing {
        inner: w.sns(),
        crash: Mutex::new(Crash::Never),
    });
    let e = Arc::new(w.engine("a", w.cloudwatch(), w.dynamo(), notifier.clone()));
    let mut k = 1;
    let mut crashes = 0;
    while k <= LAST_TICK + 4 {
        let crash = match k {
            // Dies right before its first publish (state, alert and outbox written).
            FIRE_TICK => Crash::BeforePublish,
            // Publishes the FIFO topic's message, dies before deleting the
            // outbox item: the re-send is deduplicated by SNS.
            RESOLVE_TICK => Crash::AfterPublishTo(w.topics.api_fifo.clone()),
            _ => Crash::Never,
        };
        *notifier.crash.lock().unwrap() = crash.clone();
        w.at(k).await;
        let (engine, tick) = (e.clone(), w.tick(k));
        let outcome = tokio::spawn(async move { engine.run_cycle(tick, &|| false).await }).await;
        match outcome {
            Err(join) => {
                assert!(join.is_panic(), "tick {k}");
                assert_ne!(crash, Crash::Never, "tick {k}: unexpected crash");
                crashes += 1;
                // The crashed cycle's lease holds the next tick off.
                let held = w.cycle(&e, k + 1).await;
                assert_eq!(held.skipped, Some(Skip::Overlap), "tick {}", k + 1);
                k += 2;
            }
            Ok(r) => {
                r.unwrap();
                k += 1;
            }
        }
    }
    assert_eq!(crashes, 2);
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn a_crash_between_publish_and_outbox_delete_on_a_standard_topic_is_at_least_once(
    mode: Mode,
) {
    // The one case that is at-least-once: SNS standard topics do not
    // deduplicate, so a message published just before a crash is published
    // again, with the same idempotency key, for the consumer to drop.
    let w = World::new(mode).await;
    let notifier = Arc::new(Crashing {
        inner: w.sns(),
        crash: Mutex::new(Crash::Never),
    });
    let recorder = Recorder::new(notifier.clone());
    let e = Arc::new(w.engine("a", w.cloudwatch(), w.dynamo(), recorder.clone()));
    for k in 1..=LAST_TICK {
        if k == FIRE_TICK {
            *notifier.crash.lock().unwrap() = Crash::AfterPublishTo(w.topics.web_std.clone());
        }
        w.at(k).await;
        let (engine, tick) = (e.clone(), w.tick(k));
        let _ = tokio::spawn(async move { engine.run_cycle(tick, &|| false).await }).await;
    }
    let all = w.drain().await;
    w.check(&all, &["web (standard)"]);
    let web: Vec<&Received> = all
        .iter()
        .filter(|m| m.receiver() == "web-oncall")
        .collect();
    let firing: Vec<&&Received> = web.iter().filter(|m| m.seq() == 1).collect();
    assert_eq!(firing.len(), 2, "the re-send after the crash");
    assert_eq!(
        firing[0].payload, firing[1].payload,
        "byte for byte the same"
    );
    w.assert_outbox_empty().await;
}

async fn sns_down_for_several_cycles_then_everything_in_order(mode: Mode) {
    let w = World::new(mode).await;
    let flaky = Arc::new(Flaky {
        up: w.sns(),
        down: Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(
            &unreachable_config().await.unwrap(),
        ))),
        all_down: AtomicBool::new(false),
        down_topic: Mutex::new(None),
        failures: AtomicUsize::new(0),
    });
    let recorder = Recorder::new(flaky.clone());
    let e = w.engine("a", w.cloudwatch(), w.dynamo(), recorder.clone());
    let recover = RESOLVE_TICK + 2;
    for k in 1..=LAST_TICK {
        // From the fire tick the ops standard topic fails (so its
        // notifications are half published), two ticks later all of SNS is
        // unreachable, until after the resolve tick.
        *flaky.down_topic.lock().unwrap() = (FIRE_TICK..recover)
            .contains(&k)
            .then(|| w.topics.ops_std.clone());
        flaky
            .all_down
            .store((FIRE_TICK + 2..recover).contains(&k), Ordering::SeqCst);
        let r = w.cycle(&e, k).await;
        if (FIRE_TICK + 2..recover).contains(&k) {
            assert_eq!(r.messages_published, 0, "tick {k}");
            assert!(r.publish_failures > 0, "tick {k}: {r:?}");
        }
        if k == recover {
            // The rest of `ops` #1 and every group's #2, in order.
            assert_eq!(r.notifications_sent, 4, "{r:?}");
        }
    }
    assert!(flaky.failures.load(Ordering::SeqCst) > 0);
    // Every message was published once: a half-published notification
    // resumes after the messages that went out.
    for (key, n) in recorder.per_key() {
        assert_eq!(n, 1, "{key} published {n} times");
    }
    // In order within each group.
    let mut by_group: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for m in recorder.sent() {
        let status = m.attributes.get("status").cloned().unwrap_or_default();
        by_group
            .entry((m.group_key.clone(), m.destination.clone()))
            .or_default()
            .push(status);
    }
    assert_eq!(by_group.len(), 4);
    for (g, statuses) in by_group {
        assert_eq!(statuses, ["firing", "resolved"], "{g:?}");
    }
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn cloudwatch_throttling_loses_no_fire_and_resolves_nothing_falsely(mode: Mode) {
    let w = World::new(mode).await;
    let source = Arc::new(FaultySource {
        inner: w.cloudwatch(),
        fault: Mutex::new(MetricsFault::None),
    });
    let e = w.engine("a", source.clone(), w.dynamo(), w.sns());
    let mut seen = Vec::new();
    for k in 1..=LAST_TICK {
        // Throttled when the alerts fire and again when they resolve.
        let throttled = [FIRE_TICK, FIRE_TICK + 1, RESOLVE_TICK, RESOLVE_TICK + 1].contains(&k);
        *source.fault.lock().unwrap() = if throttled {
            MetricsFault::Throttled
        } else {
            MetricsFault::None
        };
        let r = w.cycle(&e, k).await;
        if throttled {
            assert!(r.transitions.is_empty(), "tick {k}: {r:?}");
            assert!(
                r.errors.iter().any(|e| e.to_string().contains("throttled")),
                "{r:?}"
            );
        }
        seen.extend(transitions(&r).into_iter().map(|(rule, ev)| (k, rule, ev)));
    }
    // Caught up on the first good fetch, with the data's times.
    for (k, _, ev) in &seen {
        match ev {
            Event::Fired { at, .. } => {
                assert_eq!((*k, *at), (FIRE_TICK + 2, w.tick(FIRE_BUCKET)));
            }
            Event::Resolved { at, .. } => {
                assert_eq!((*k, *at), (RESOLVE_TICK + 2, w.tick(RESOLVE_BUCKET)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn cloudwatch_partial_data_loses_no_fire_and_resolves_nothing_falsely(mode: Mode) {
    let w = World::new(mode).await;
    let source = Arc::new(FaultySource {
        inner: w.cloudwatch(),
        fault: Mutex::new(MetricsFault::None),
    });
    let e = w.engine("a", source.clone(), w.dynamo(), w.sns());
    let partial_ticks = [FIRE_TICK, 5, 6, 7, 8, RESOLVE_TICK];
    let mut seen = Vec::new();
    for k in 1..=LAST_TICK {
        // Partial (and missing the latest minutes) when the alerts fire and
        // for long enough while they fire that judging it would resolve
        // them (missing data counts as OK for these rules).
        let partial = partial_ticks.contains(&k);
        *source.fault.lock().unwrap() = if partial {
            MetricsFault::Partial
        } else {
            MetricsFault::None
        };
        let r = w.cycle(&e, k).await;
        if partial {
            assert!(r.transitions.is_empty(), "tick {k}: {:?}", r.transitions);
            assert_eq!(r.instances_partial, 3, "tick {k}");
        }
        seen.extend(transitions(&r).into_iter().map(|(rule, ev)| (k, rule, ev)));
    }
    for (k, _, ev) in &seen {
        match ev {
            Event::Fired { at, .. } => assert_eq!((*k, *at), (FIRE_TICK + 1, w.tick(FIRE_BUCKET))),
            Event::Resolved { at, .. } => {
                assert_eq!((*k, *at), (RESOLVE_TICK + 1, w.tick(RESOLVE_BUCKET)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn conflicts(how: Interference, mode: Mode) {
    let w = World::new(mode).await;
    let store = Arc::new(Conflicting {
        inner: w.dynamo(),
        how,
        budget: AtomicUsize::new(0),
        eligible: AtomicUsize::new(0),
        injected: Mutex::new(Vec::new()),
    });
    let e = w.engine("a", w.cloudwatch(), store.clone(), w.sns());
    let mut conflicts = 0;
    for k in 1..=LAST_TICK + 2 {
        // Every conditional write of the cold start, the fire tick and the
        // resolve tick conflicts a few times.
        if [1, FIRE_TICK, RESOLVE_TICK].contains(&k) {
            store.budget.store(8, Ordering::SeqCst);
        }
        let r = w.cycle(&e, k).await;
        conflicts += r.conflicts;
    }
    let injected = store.injected.lock().unwrap().clone();
    assert!(injected.len() >= 8, "{injected:?}");
    for part in ["state/", "outbox/", "group/"] {
        assert!(
            injected.iter().any(|(k, _)| k.starts_with(part)),
            "no conflict on {part}: {injected:?}"
        );
    }
    assert!(conflicts > 0);
    w.assert_exactly_once().await;
    w.assert_outbox_empty().await;
}

async fn dynamodb_conflicts_with_a_concurrent_writer(mode: Mode) {
    conflicts(Interference::Writer, mode).await;
}

async fn dynamodb_spurious_conditional_failures(mode: Mode) {
    conflicts(Interference::Spurious, mode).await;
}

/// Every scenario, polling (`polling::*`) and with sentinels (`with_sentinels::*`).
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        mod polling {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Mode::Polling).await;
                }
            )*
        }
        mod with_sentinels {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Mode::Sentinels).await;
                }
            )*
        }
    };
}

in_both_modes!(
    no_faults_baseline_and_quiet_cycles_write_nothing,
    the_same_tick_delivered_twice_sequentially_and_concurrently,
    a_cycle_that_read_before_another_wrote_writes_nothing,
    overlapping_invocations_on_the_same_table,
    a_crash_between_the_state_write_and_the_publish,
    a_process_crash_while_publishing,
    a_crash_between_publish_and_outbox_delete_on_a_standard_topic_is_at_least_once,
    sns_down_for_several_cycles_then_everything_in_order,
    cloudwatch_throttling_loses_no_fire_and_resolves_nothing_falsely,
    cloudwatch_partial_data_loses_no_fire_and_resolves_nothing_falsely,
    dynamodb_conflicts_with_a_concurrent_writer,
    dynamodb_spurious_conditional_failures,
);
