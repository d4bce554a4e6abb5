//! Shards end to end: the engine with the real adapters against the
//! emulator, a tick run as a sharded stack's Step Functions execution runs
//! it: every shard's evaluation (concurrently, as the Map state does), then
//! one delivery stage over the shared `active` set. What SNS really
//! published is counted at SQS queues subscribed to the topics.
//!
//! Eight rules, two in each of four shards, watch one error count each;
//! every one breaches from minute 2 to minute 7 (fires on bucket 2,
//! resolves on bucket 8). Team `pay` has the rules of shards 1 and 2, team
//! `web` those of shards 3 and 4, and the route groups by team: each group's
//! alerts come from rules in two shards. Without faults each team's queue
//! gets exactly `#1 firing` (four alerts), then `#2 resolved` (four alerts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use firebell_aws::{CloudWatchSource, DynamoStore, SnsNotifier};
use firebell_core::Timestamp;
use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;
use firebell_embedded::ManualClock;
use firebell_engine::{Config, CycleReport, Engine, EngineOptions, Shard, Skip, Stage, keys};
use firebell_tests::{Aws, Datum, Received, aws, counts, minute_now, unique};

const SHARDS: u32 = 4;
const LAST_TICK: i64 = 14;
const FIRE_BUCKET: i64 = 2;
const RESOLVE_BUCKET: i64 = 8;
const FIRE_TICK: i64 = FIRE_BUCKET + 1;
/// A crashed shard's lease blocks it for two ticks.
const LEASE_SECS: i64 = 120;

/// Two rule names per shard (of four), in shard order: the first names
/// `R<i>Errors` the bucket hash puts in each shard.
fn rule_names() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for k in 1..=SHARDS {
        let shard = Shard::new(k, SHARDS).unwrap();
        let names = (0..)
            .map(|i| format!("R{i}Errors"))
            .filter(|n| shard.owns_rule(n))
            .take(2);
        out.extend(names.map(|n| (k, n)));
    }
    out
}

fn team_of(shard: u32) -> &'static str {
    if shard <= 2 { "pay" } else { "web" }
}

fn config_text(ns: &str, pay: &str, web: &str) -> String {
    let mut rules = String::from("rules:\n");
    for (shard, name) in rule_names() {
        rules.push_str(&format!(
            r#"  - name: {name}
    metrics:
      errors: {{namespace: "{ns}", metric: Errors, dimensions: {{Service: {name}}}, stat: Sum, period: 1m}}
    expression: errors
    unit: count
    condition: {{op: ">", threshold: 10}}
    for: 0s
    missing_data: ok
    labels: {{team: {team}, severity: page}}
    annotations: {{title: {name} errors}}
"#,
            team = team_of(shard),
        ));
    }
    format!(
        r#"{rules}
receivers:
  pay: {{topics: ["{pay}"], send_resolved: true}}
  web: {{topics: ["{web}"], send_resolved: true}}
route:
  receiver: pay
  group_by: [team]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
  routes:
    - matchers: ['team="web"']
      receiver: web
"#
    )
}

struct World {
    aws: Aws,
    table: String,
    base: Epoch,
    clock: Arc<ManualClock>,
    config: Arc<Config>,
    /// (team, queue url)
    queues: Vec<(&'static str, String)>,
}

impl World {
    async fn new() -> World {
        let aws = aws().await.expect("emulator");
        let table = aws.table().await.expect("table");
        let pay = aws.topic(true).await.unwrap();
        let web = aws.topic(false).await.unwrap();
        let queues = vec![
            ("pay", aws.subscribed_queue(&pay).await.unwrap()),
            ("web", aws.subscribed_queue(&web).await.unwrap()),
        ];
        let ns = format!("Firebell/Shards/{}", unique("ns"));
        let base = minute_now() - 20 * 60;
        let mut data = Vec::new();
        for (_, name) in rule_names() {
            for m in -6..=LAST_TICK {
                let breach = (FIRE_BUCKET..RESOLVE_BUCKET).contains(&m);
                data.push(Datum {
                    metric: "Errors".to_string(),
                    dimensions: vec![("Service".to_string(), name.clone())],
                    t: base + 60 * m,
                    value: if breach { 50.0 } else { 1.0 },
                });
            }
        }
        aws.put_metric_data(&ns, &data).await.expect("put data");
        let mut diags = Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[("shards.yaml".to_string(), config_text(&ns, &pay, &web))],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        World {
            table,
            base,
            clock: Arc::new(ManualClock::at_epoch(base)),
            config: Arc::new(config),
            queues,
            aws,
        }
    }

    fn tick(&self, k: i64) -> Epoch {
        self.base + 60 * k
    }

    fn dynamo(&self) -> Arc<DynamoStore> {
        Arc::new(DynamoStore::new(
            self.aws.dynamodb.clone(),
            self.table.clone(),
            self.clock.clone() as Arc<dyn Clock>,
        ))
    }

    /// One invocation's engine (its own clients, as another Lambda
    /// container would have), over `store`.
    fn engine(&self, owner: &str, store: Arc<dyn StateStore>) -> Engine {
        Engine::new(
            self.config.clone(),
            Arc::new(CloudWatchSource::new(
                self.aws.cloudwatch.clone(),
                self.clock.clone() as Arc<dyn Clock>,
            )),
            store,
            Arc::new(SnsNotifier::new(self.aws.sns.clone())),
            EngineOptions {
                owner: owner.to_string(),
                lease_secs: LEASE_SECS,
                ..EngineOptions::default()
            },
        )
    }

    async fn stage(&self, e: &Engine, k: i64, stage: Stage) -> CycleReport {
        let t = self.tick(k);
        e.run_stage_at(t, t, stage, &|| false)
            .await
            .unwrap_or_else(|err| panic!("tick {k}, {stage}: {err}"))
    }

    /// Tick `k` as the state machine runs it: the shards concurrently,
    /// then the delivery stage. Returns the shards' reports and the
    /// delivery stage's.
    async fn tick_all(&self, shards: &[Engine], deliver: &Engine, k: i64) -> Vec<CycleReport> {
        self.clock.set_epoch(self.tick(k));
        let runs = shards.iter().enumerate().map(|(i, e)| {
            let stage = Stage::Shard(Shard::new(i as u32 + 1, SHARDS).unwrap());
            self.stage(e, k, stage)
        });
        let mut reports = futures_util::future::join_all(runs).await;
        reports.push(
            self.stage(deliver, k, Stage::Deliver { shards: SHARDS })
                .await,
        );
        reports
    }

    fn engines(&self) -> (Vec<Engine>, Engine) {
        let shards = (1..=SHARDS)
            .map(|k| self.engine(&format!("shard-{k}"), self.dynamo()))
            .collect();
        (shards, self.engine("deliver", self.dynamo()))
    }

    async fn drain(&self) -> BTreeMap<&'static str, Vec<Received>> {
        let mut out = BTreeMap::new();
        for (team, url) in &self.queues {
            let mut got = self.aws.drain(url).await.unwrap();
            got.sort_by_key(Received::seq);
            out.insert(*team, got);
        }
        out
    }

    /// Every notification once (no duplicate), the last one of each team
    /// the resolution of all four alerts, and every alert's fire told
    /// with the data's time (none lost).
    fn check_no_loss_no_duplicate(&self, got: &BTreeMap<&'static str, Vec<Received>>) {
        let fired_at = Timestamp::from_second(self.tick(FIRE_BUCKET))
            .unwrap()
            .to_string();
        let resolved_at = Timestamp::from_second(self.tick(RESOLVE_BUCKET))
            .unwrap()
            .to_string();
        for (team, msgs) in got {
            let all: Vec<Received> = msgs.clone();
            for (key, n) in counts(&all) {
                assert_eq!(n, 1, "{team}: {key:?} arrived {n} times");
            }
            let names: BTreeSet<String> = rule_names()
                .into_iter()
                .filter(|(s, _)| team_of(*s) == *team)
                .map(|(_, n)| n)
                .collect();
            let told_firing: BTreeSet<String> = msgs
                .iter()
                .filter(|m| m.status() == "firing")
                .flat_map(|m| m.alerts().to_vec())
                .map(|a| {
                    assert_eq!(a["fired_at"], fired_at.as_str(), "{team}: {a}");
                    a["alertname"].as_str().unwrap().to_string()
                })
                .collect();
            assert_eq!(told_firing, names, "{team}: every fire told");
            let last = msgs.last().expect("notifications");
            assert_eq!(last.status(), "resolved", "{team}");
            let resolved: BTreeSet<String> = last
                .alerts()
                .iter()
                .map(|a| {
                    assert_eq!(a["resolved_at"], resolved_at.as_str(), "{team}: {a}");
                    a["alertname"].as_str().unwrap().to_string()
                })
                .collect();
            assert_eq!(resolved, names, "{team}: every resolve told at once");
        }
    }

    async fn assert_outbox_empty(&self) {
        let left = firebell_notify::pending(self.dynamo().as_ref())
            .await
            .unwrap();
        assert!(left.is_empty(), "outbox not empty: {left:?}");
    }
}

/// What a queue got: (seq, status, alerts) per notification.
fn seqs(msgs: &[Received]) -> Vec<(u64, &str, usize)> {
    msgs.iter()
        .map(|m| (m.seq(), m.status(), m.alerts().len()))
        .collect()
}

#[test]
fn each_group_spans_two_shards() {
    let names = rule_names();
    assert_eq!(names.len(), 8);
    for (team, shards) in [("pay", [1, 2]), ("web", [3, 4])] {
        let of_team: BTreeSet<u32> = names
            .iter()
            .filter(|(s, _)| team_of(*s) == team)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(of_team, shards.into_iter().collect(), "{team}");
    }
}

#[tokio::test]
async fn four_shards_deliver_each_group_once_whatever_shard_its_alerts_come_from() {
    let w = World::new().await;
    let (shards, deliver) = w.engines();
    for k in 1..=LAST_TICK {
        let reports = w.tick_all(&shards, &deliver, k).await;
        for (i, r) in reports.iter().enumerate() {
            assert!(r.errors.is_empty(), "tick {k}, run {i}: {:?}", r.errors);
            assert_eq!(r.skipped, None, "tick {k}, run {i}");
        }
        // Each shard evaluates its own two rules, and only they notify.
        for r in &reports[..SHARDS as usize] {
            assert_eq!(r.rules_evaluated, 2, "tick {k}");
            assert_eq!(r.messages_published, 0, "tick {k}");
        }
        assert_eq!(reports[SHARDS as usize].rules_evaluated, 0, "tick {k}");
        if k == FIRE_TICK {
            let fired: usize = reports.iter().map(|r| r.transitions.len()).sum();
            assert_eq!(fired, 8, "tick {k}");
            assert_eq!(reports[SHARDS as usize].messages_published, 2, "tick {k}");
        }
    }
    let got = w.drain().await;
    for (team, msgs) in &got {
        assert_eq!(seqs(msgs), [(1, "firing", 4), (2, "resolved", 4)], "{team}");
    }
    w.check_no_loss_no_duplicate(&got);
    w.assert_outbox_empty().await;
    // The shards kept their ticks apart from the delivery stage's; the
    // state of the resolved instances expires (it is not read forever).
    let store = w.dynamo();
    for k in 1..=SHARDS {
        let pk = Shard::new(k, SHARDS).unwrap().cycle_pk();
        assert!(store.get(&keys::last_tick_in(&pk)).await.unwrap().is_some());
    }
    for (_, name) in rule_names() {
        let items = store
            .query(&keys::state_partition(keys::bucket(&name)), "")
            .await
            .unwrap();
        assert!(!items.is_empty());
        assert!(items.iter().all(|i| i.expires_at.is_some()), "{items:?}");
    }
}

/// What a [`Faulty`] store does once armed.
enum Fault {
    /// The process dies (a panic) at the `n`-th write of a state or
    /// `active` item, before sending it. (Before, not after: a shard writes
    /// its instances concurrently, so what else got out would vary.)
    CrashAt(usize),
    /// The first write (a shard's lease take) goes out, then waits until
    /// `open` is notified, after notifying `reached`.
    HoldFirst,
}

/// A shard's store with one fault, once.
struct Faulty {
    inner: Arc<DynamoStore>,
    fault: Fault,
    armed: AtomicBool,
    writes: AtomicUsize,
    crashed: Mutex<Option<String>>,
    reached: tokio::sync::Notify,
    open: tokio::sync::Notify,
}

impl Faulty {
    fn new(inner: Arc<DynamoStore>, fault: Fault, armed: bool) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner,
            fault,
            armed: AtomicBool::new(armed),
            writes: AtomicUsize::new(0),
            crashed: Mutex::new(None),
            reached: tokio::sync::Notify::new(),
            open: tokio::sync::Notify::new(),
        })
    }
}

#[async_trait]
impl StateStore for Faulty {
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
        if !self.armed.load(Ordering::SeqCst) {
            return self.inner.put(item, expect).await;
        }
        match self.fault {
            Fault::CrashAt(n) => {
                let counted = item.pk == keys::ACTIVE || item.pk.starts_with("state/");
                if counted && self.writes.fetch_add(1, Ordering::SeqCst) + 1 == n {
                    self.armed.store(false, Ordering::SeqCst);
                    *self.crashed.lock().unwrap() = Some(format!("{}/{}", item.pk, item.sk));
                    panic!("injected crash before writing {}/{}", item.pk, item.sk);
                }
                self.inner.put(item, expect).await
            }
            Fault::HoldFirst => {
                self.armed.store(false, Ordering::SeqCst);
                let result = self.inner.put(item, expect).await;
                self.reached.notify_one();
                self.open.notified().await;
                result
            }
        }
    }
}

#[tokio::test]
async fn a_shard_crashing_mid_cycle_loses_and_duplicates_nothing() {
    let w = World::new().await;
    let (mut shards, deliver) = w.engines();
    // Shard 2 dies at the fire tick after taking its lease, at its first
    // `active` record: nothing of its two fires is stored.
    let crashing = Faulty::new(w.dynamo(), Fault::CrashAt(1), false);
    shards[1] = w.engine("shard-2-crashing", crashing.clone());
    let shards = Arc::new(shards);
    for k in 1..=LAST_TICK {
        if k == FIRE_TICK {
            crashing.armed.store(true, Ordering::SeqCst);
            w.clock.set_epoch(w.tick(k));
            // The Map state: a crashed shard is caught, the others and the
            // delivery stage go on.
            let mut handles = Vec::new();
            for i in 0..SHARDS as usize {
                let (w_tick, shards) = (w.tick(k), shards.clone());
                handles.push(tokio::spawn(async move {
                    let stage = Stage::Shard(Shard::new(i as u32 + 1, SHARDS).unwrap());
                    shards[i]
                        .run_stage_at(w_tick, w_tick, stage, &|| false)
                        .await
                }));
            }
            let mut crashed = 0;
            for h in handles {
                match h.await {
                    Ok(r) => assert!(r.unwrap().errors.is_empty()),
                    Err(e) if e.is_panic() => crashed += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(crashed, 1);
            assert!(crashing.crashed.lock().unwrap().as_deref().is_some());
            let d = w
                .stage(&deliver, k, Stage::Deliver { shards: SHARDS })
                .await;
            assert!(d.errors.is_empty(), "{:?}", d.errors);
            continue;
        }
        let reports = w.tick_all(&shards, &deliver, k).await;
        // The crashed shard's lease blocks it until it expires (two ticks).
        if k == FIRE_TICK + 1 {
            assert_eq!(reports[1].skipped, Some(Skip::Overlap), "tick {k}");
        }
        if k > FIRE_TICK + LEASE_SECS / 60 {
            assert_eq!(reports[1].skipped, None, "tick {k}");
        }
    }
    let got = w.drain().await;
    // web's shards never crashed: exactly once, as without faults.
    assert_eq!(seqs(&got["web"]), [(1, "firing", 4), (2, "resolved", 4)]);
    // pay's first page has shard 1's two alerts; shard 2's follow as an
    // update once it runs again, with the times of the data.
    assert_eq!(
        seqs(&got["pay"]),
        [(1, "firing", 2), (2, "firing", 4), (3, "resolved", 4)]
    );
    w.check_no_loss_no_duplicate(&got);
    w.assert_outbox_empty().await;
}

#[tokio::test]
async fn two_runs_of_a_shard_overlapping_write_and_notify_once() {
    let w = World::new().await;
    let (shards, deliver) = w.engines();
    for k in 1..FIRE_TICK {
        w.tick_all(&shards, &deliver, k).await;
    }
    // Shard 3's run A takes its lease at the fire tick and stalls; a second
    // run B of shard 3 (a retried or late invocation) starts meanwhile.
    let gate = Faulty::new(w.dynamo(), Fault::HoldFirst, true);
    let a = w.engine("shard-3-a", gate.clone());
    let b = w.engine("shard-3-b", w.dynamo());
    let shard3 = Stage::Shard(Shard::new(3, SHARDS).unwrap());
    w.clock.set_epoch(w.tick(FIRE_TICK));
    let run_b = async {
        gate.reached.notified().await;
        let r = w.stage(&b, FIRE_TICK, shard3).await;
        gate.open.notify_one();
        r
    };
    let (ra, rb) = tokio::join!(w.stage(&a, FIRE_TICK, shard3), run_b);
    assert_eq!(ra.skipped, None, "{ra:?}");
    assert_eq!(ra.transitions.len(), 2);
    assert_eq!(rb.skipped, Some(Skip::Overlap), "{rb:?}");
    assert_eq!(rb.store_writes, 0);
    // The other shards and the delivery stage of the fire tick; shards 1,
    // 2 and 4 run again concurrently with a repeat of shard 3 (a
    // duplicate tick for it).
    let mut rest = Vec::new();
    for k in [1, 2, 3, 4] {
        let stage = Stage::Shard(Shard::new(k, SHARDS).unwrap());
        rest.push(w.stage(&shards[k as usize - 1], FIRE_TICK, stage));
    }
    let rest = futures_util::future::join_all(rest).await;
    assert_eq!(rest[2].skipped, Some(Skip::Duplicate));
    let d = w
        .stage(&deliver, FIRE_TICK, Stage::Deliver { shards: SHARDS })
        .await;
    assert_eq!(d.messages_published, 2);
    // Two delivery stages of one tick overlapping: the second is a
    // duplicate or an overlap, never a second page.
    let again = w
        .stage(&deliver, FIRE_TICK, Stage::Deliver { shards: SHARDS })
        .await;
    assert_eq!(again.messages_published, 0);
    for k in FIRE_TICK + 1..=LAST_TICK {
        w.tick_all(&shards, &deliver, k).await;
    }
    let got = w.drain().await;
    for (team, msgs) in &got {
        assert_eq!(seqs(msgs), [(1, "firing", 4), (2, "resolved", 4)], "{team}");
    }
    w.check_no_loss_no_duplicate(&got);
    w.assert_outbox_empty().await;
}
