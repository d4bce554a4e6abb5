#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store layout at scale and the stages of a sharded cycle, on the
//! in-memory adapters: a cycle reads the state of the instances that have
//! some (not one key per rule), the layout before state buckets moves once,
//! and a tick run as shards plus a delivery stage notifies what the whole
//! cycle notifies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, Expect, Item, Key, StateStore, StoreError};
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{Config, CycleReport, Engine, EngineOptions, Shard, Stage, keys};

const T0: i64 = 1_795_392_000;

/// `n` rules, one error count each; rule `i` breaches from minute
/// `breach(i)` (if any) to minute 40.
fn config(n: usize) -> Arc<Config> {
    let mut text = String::from("rules:\n");
    for i in 0..n {
        text.push_str(&format!(
            r#"  - name: Svc{i}Errors
    metrics:
      errors: {{namespace: Svc, metric: Errors, dimensions: {{Service: s{i}}}, stat: Sum, period: 1m}}
    expression: errors
    unit: count
    condition: {{op: ">", threshold: 10}}
    for: 2m
    missing_data: ok
    labels: {{team: t{team}, severity: page}}
"#,
            team = i % 3
        ));
    }
    text.push_str(
        r#"receivers:
  pager: {topics: [arn:aws:sns:us-east-1:123456789012:pager]}
route:
  receiver: pager
  group_by: [team]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
"#,
    );
    let mut diags = Diagnostics::new();
    let c =
        firebell_engine::load_texts(&[("rules.yaml".to_string(), text)], &mut diags, Vec::new());
    assert!(!diags.has_errors(), "{diags}");
    Arc::new(c)
}

/// Rule `i` breaches from this minute on (until minute 40), or never.
fn breach(i: usize) -> Option<i64> {
    i.is_multiple_of(7).then_some(5 + (i as i64 % 11))
}

fn source(n: usize) -> ReplaySource {
    let mut text = String::new();
    for i in 0..n {
        let points: Vec<String> = (0..70)
            .map(|m| {
                let hot = breach(i).is_some_and(|b| (b..40).contains(&m));
                format!("[{},{}]", T0 + 60 * m, if hot { 50 } else { 1 })
            })
            .collect();
        text += &format!(
            "{{\"namespace\":\"Svc\",\"metric\":\"Errors\",\"dimensions\":{{\"Service\":\"s{i}\"}},\"stat\":\"Sum\",\"period\":60,\"points\":[{}]}}\n",
            points.join(",")
        );
    }
    ReplaySource::parse("rules.jsonl", &text).unwrap()
}

/// A memory store counting its reads: calls per operation, and the items
/// the state partitions returned.
struct Counting {
    inner: MemoryStore,
    calls: Mutex<BTreeMap<&'static str, usize>>,
    state_items_read: Mutex<usize>,
    legacy_reads: Mutex<usize>,
}

impl Counting {
    fn new(clock: Arc<ManualClock>) -> Arc<Counting> {
        Arc::new(Counting {
            inner: MemoryStore::new(clock as Arc<dyn Clock>),
            calls: Mutex::new(BTreeMap::new()),
            state_items_read: Mutex::new(0),
            legacy_reads: Mutex::new(0),
        })
    }

    fn count(&self, op: &'static str) {
        *self.calls.lock().unwrap().entry(op).or_insert(0) += 1;
    }

    fn take(&self) -> (BTreeMap<&'static str, usize>, usize) {
        let calls = std::mem::take(&mut *self.calls.lock().unwrap());
        let items = std::mem::take(&mut *self.state_items_read.lock().unwrap());
        (calls, items)
    }

    fn note(&self, pk: &str, items: &[Item]) {
        if pk.starts_with("state/") {
            *self.state_items_read.lock().unwrap() += items.len();
        }
        if pk.starts_with("state#") {
            *self.legacy_reads.lock().unwrap() += 1;
        }
    }
}

#[async_trait]
impl StateStore for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.count("get");
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.count("batch_get");
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        self.count("put");
        self.inner.put(item, expect).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.count("query");
        let items = self.inner.query(pk, sk_prefix).await?;
        self.note(pk, &items);
        Ok(items)
    }
    async fn query_eventually(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.count("query_eventually");
        let items = self.inner.query(pk, sk_prefix).await?;
        self.note(pk, &items);
        Ok(items)
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.count("delete");
        self.inner.delete(key, expect).await
    }
}

fn engine(n: usize, store: Arc<dyn StateStore>, notifier: Arc<MemoryNotifier>) -> Engine {
    Engine::new(
        config(n),
        Arc::new(source(n)),
        store,
        notifier,
        EngineOptions::default(),
    )
}

/// Minutes 1..=m as whole cycles.
async fn run_whole(e: &Engine, clock: &ManualClock, minutes: std::ops::RangeInclusive<i64>) {
    for m in minutes {
        let t = T0 + 60 * m;
        clock.set_epoch(t);
        let r = e.run_cycle_at(t, t, &|| false).await.unwrap();
        assert!(r.errors.is_empty(), "minute {m}: {:?}", r.errors);
    }
}

#[tokio::test]
async fn a_quiet_cycle_reads_the_states_that_exist_not_one_per_rule() {
    let mut figures = Vec::new();
    for n in [70, 700] {
        let clock = Arc::new(ManualClock::at_epoch(T0));
        let store = Counting::new(clock.clone());
        let e = engine(n, store.clone(), Arc::new(MemoryNotifier::new()));
        // Minute 30: every breaching rule fires (breaches start by minute 15).
        run_whole(&e, &clock, 1..=30).await;
        store.take();
        let t = T0 + 60 * 31;
        clock.set_epoch(t);
        let r = e.run_cycle_at(t, t, &|| false).await.unwrap();
        assert_eq!(r.store_writes, 0);
        assert_eq!(r.rules_evaluated, n);
        let (calls, items) = store.take();
        let firing = (0..n).filter(|&i| breach(i).is_some()).count();
        // The state read: one eventually consistent Query per state bucket
        // holding a rule (at most 64), returning the firing instances'
        // states and nothing of the others; no read per key.
        assert_eq!(items, firing, "{n} rules");
        let buckets: std::collections::BTreeSet<u32> = (0..n)
            .map(|i| keys::bucket(&format!("Svc{i}Errors")))
            .collect();
        assert_eq!(
            calls.get("query_eventually"),
            Some(&buckets.len()),
            "{calls:?}"
        );
        assert_eq!(calls.get("batch_get"), None, "{calls:?}");
        assert_eq!(calls.get("get"), None, "{calls:?}");
        assert_eq!(calls.get("put"), None, "{calls:?}");
        figures.push((n, buckets.len(), items));
    }
    // Ten times the rules: the same number of calls (every bucket in use)
    // and ten times the firing states, nothing for the quiet ones.
    assert_eq!(figures[1].1, 64, "{figures:?}");
    assert_eq!(figures[1].2, 10 * figures[0].2, "{figures:?}");
}

/// 70 rules run as whole cycles for 30 minutes (the breaching ones firing),
/// on a counting store.
async fn firing_for_30_minutes() -> (Arc<ManualClock>, Arc<Counting>, Arc<MemoryNotifier>, Engine) {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Counting::new(clock.clone());
    let notifier = Arc::new(MemoryNotifier::new());
    let e = engine(70, store.clone(), notifier.clone());
    run_whole(&e, &clock, 1..=30).await;
    (clock, store, notifier, e)
}

/// Puts the store back as a version before buckets left it: each state
/// under `state#<rule>`, and a last tick (`tick`) without a layout.
/// Returns the states moved back.
async fn to_old_layout(store: &Counting, tick: i64) -> usize {
    let mut moved = 0;
    for item in store.inner.items() {
        if item.pk.starts_with("state/") {
            let stored: serde_json::Value = serde_json::from_str(&item.data).unwrap();
            let rule = stored["labels"]["alertname"].as_str().unwrap().to_string();
            store
                .inner
                .delete(&Key::new(&item.pk, &item.sk), Expect::Any)
                .await
                .unwrap();
            let old = Item {
                pk: format!("state#{rule}"),
                expires_at: None,
                ..item
            };
            store.inner.put(old, Expect::Any).await.unwrap();
            moved += 1;
        }
    }
    let last = keys::last_tick();
    let item = store.inner.get(&last).await.unwrap().unwrap();
    let old_last = Item {
        data: format!("{{\"tick\":{tick}}}"),
        ..item
    };
    store.inner.put(old_last, Expect::Any).await.unwrap();
    moved
}

fn moved_all(store: &Counting) -> bool {
    let items = store.inner.items();
    items.iter().all(|i| !i.pk.starts_with("state#"))
        && items.iter().filter(|i| i.pk.starts_with("state/")).count() == 10
}

#[tokio::test]
async fn the_states_of_the_layout_before_buckets_move_once_and_nothing_fires_again() {
    let (clock, store, notifier, e) = firing_for_30_minutes().await;
    let pages = notifier.take().len();
    assert!(pages > 0);
    assert_eq!(to_old_layout(&store, T0 + 60 * 30).await, 10);
    let last = keys::last_tick();

    // The next cycle moves them first, then judges on them: nothing fires
    // again, nothing is told again.
    let t = T0 + 60 * 31;
    clock.set_epoch(t);
    let r = e.run_cycle_at(t, t, &|| false).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.transitions.is_empty(), "{:?}", r.transitions);
    assert!(notifier.take().is_empty());
    let items = store.inner.items();
    assert!(items.iter().all(|i| !i.pk.starts_with("state#")));
    assert_eq!(
        items.iter().filter(|i| i.pk.starts_with("state/")).count(),
        10
    );
    let last = store.inner.get(&last).await.unwrap().unwrap();
    assert_eq!(last.data, format!("{{\"tick\":{t},\"layout\":2}}"));
    // Once: the cycles after it read no old partition, and the rest of
    // the incident is told as it would have been (the resolutions).
    *store.legacy_reads.lock().unwrap() = 0;
    run_whole(&e, &clock, 32..=60).await;
    assert_eq!(*store.legacy_reads.lock().unwrap(), 0);
    let told: Vec<String> = notifier.take().into_iter().map(|o| o.subject).collect();
    assert_eq!(told.len(), 3, "{told:?}");
    assert!(told.iter().all(|s| s.starts_with("[RESOLVED")), "{told:?}");
}

/// The notifications of a timeline: per minute, each message's subject.
async fn timeline(stages: &[Stage], n: usize) -> Vec<(i64, String)> {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let e = engine(n, store, notifier.clone());
    let mut out = Vec::new();
    for m in 1..=60 {
        let t = T0 + 60 * m;
        clock.set_epoch(t);
        for &stage in stages {
            let r: CycleReport = e.run_stage_at(t, t, stage, &|| false).await.unwrap();
            assert!(r.errors.is_empty(), "minute {m}, {stage}: {:?}", r.errors);
            assert_eq!(r.skipped, None, "minute {m}, {stage}");
            if let Stage::Shard(_) = stage {
                assert_eq!(r.messages_published, 0);
            }
        }
        out.extend(notifier.take().into_iter().map(|o| (m, o.subject)));
    }
    out
}

#[tokio::test]
async fn three_shards_and_a_delivery_stage_notify_what_the_whole_cycle_does() {
    let whole = timeline(&[Stage::Whole], 70).await;
    let mut stages: Vec<Stage> = (1..=3)
        .map(|k| Stage::Shard(Shard::new(k, 3).unwrap()))
        .collect();
    stages.push(Stage::Deliver { shards: 3 });
    let sharded = timeline(&stages, 70).await;
    assert!(whole.len() >= 6, "{whole:?}");
    assert_eq!(sharded, whole);
}

#[tokio::test]
async fn status_shows_each_shard_and_a_shard_that_did_not_finish() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let e = engine(70, store.clone(), Arc::new(MemoryNotifier::new()));
    let shards: Vec<Shard> = (1..=3).map(|k| Shard::new(k, 3).unwrap()).collect();
    for m in 1..=20 {
        let t = T0 + 60 * m;
        clock.set_epoch(t);
        for s in &shards {
            e.run_stage_at(t, t, Stage::Shard(*s), &|| false)
                .await
                .unwrap();
        }
        e.run_stage_at(t, t, Stage::Deliver { shards: 3 }, &|| false)
            .await
            .unwrap();
    }
    let now = T0 + 60 * 20;
    let st = firebell_engine::status::read(store.as_ref(), now, 5)
        .await
        .unwrap();
    assert_eq!(st.shards.len(), 3);
    for (v, s) in st.shards.iter().zip(&shards) {
        assert_eq!(v.shard, *s);
        assert!(v.last_tick.is_some_and(|t| t <= now), "{v:?}");
        assert!(v.lease.as_ref().is_some_and(|l| !l.held), "{v:?}");
        assert!(v.failing.is_empty());
    }
    assert!(st.healthy(), "{}", st.verdict());
    // Shard 2's run of the next tick died holding its lease: three minutes
    // on (its lease not yet expired), status says so.
    let pk = shards[1].cycle_pk();
    let mut lease = store.get(&keys::lease_in(&pk)).await.unwrap().unwrap();
    lease.data = format!(
        "{{\"owner\":\"run-x\",\"tick\":{},\"held\":true}}",
        now + 60
    );
    lease.expires_at = Some(now + 60 + 300);
    store.put(lease, Expect::Any).await.unwrap();
    clock.set_epoch(now + 240);
    let st = firebell_engine::status::read(store.as_ref(), now + 240, 5)
        .await
        .unwrap();
    assert_eq!(
        st.problems,
        [format!(
            "the lease of shard 2/3: held by run-x for tick {}, 3m ago: that run is stuck or did not finish",
            firebell_core::text::rfc3339(now + 60)
        )]
    );
}

#[tokio::test]
async fn the_old_layout_moves_under_a_recorded_tick_from_the_future_too() {
    let (clock, store, notifier, e) = firing_for_30_minutes().await;
    notifier.take();
    // The old version once ran a tick far in the future (clock skew).
    to_old_layout(&store, T0 + 86_400 * 365).await;
    let t = T0 + 60 * 31;
    clock.set_epoch(t);
    let r = e.run_cycle_at(t, t, &|| false).await.unwrap();
    let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("clock skew"), "{errors:?}");
    assert!(r.transitions.is_empty(), "{:?}", r.transitions);
    assert!(notifier.take().is_empty());
    assert!(moved_all(&store));
}

#[tokio::test]
async fn a_sharded_stack_moves_the_old_layout_shard_by_shard() {
    let (clock, store, notifier, e) = firing_for_30_minutes().await;
    notifier.take();
    to_old_layout(&store, T0 + 60 * 30).await;
    let shards: Vec<Shard> = (1..=3).map(|k| Shard::new(k, 3).unwrap()).collect();
    // Tick 31: shard 2 does not run (it crashed); the delivery stage has
    // something to write (a new alert of team t0), so it records its tick,
    // keeping the layout it read: shard 2 has not moved its states yet.
    let injected = serde_json::json!({
        "fingerprint": "00000000000000aa",
        "labels": {"alertname": "Injected", "team": "t0", "severity": "page"},
        "annotations": {},
        "status": "firing",
        "active_since": T0 + 60 * 30,
        "fired_at": T0 + 60 * 30,
        "resolved_at": null,
        "value": 5.0,
        "peak": 5.0,
        "op": ">",
        "threshold": 1.0,
        "unit": "count",
        "recent": [],
        "expression": "x",
        "metrics": {}
    });
    let a: firebell_core::alert::Alert = serde_json::from_value(injected).unwrap();
    let k = keys::active(&a.fingerprint);
    store
        .inner
        .put(
            Item {
                pk: k.pk,
                sk: k.sk,
                version: 1,
                data: serde_json::to_string(&a).unwrap(),
                expires_at: None,
            },
            Expect::Any,
        )
        .await
        .unwrap();
    let t = T0 + 60 * 31;
    clock.set_epoch(t);
    let mut transitions = 0;
    for s in [shards[0], shards[2]] {
        let r = e
            .run_stage_at(t, t, Stage::Shard(s), &|| false)
            .await
            .unwrap();
        assert!(r.errors.is_empty(), "{s}: {:?}", r.errors);
        transitions += r.transitions.len();
    }
    let d = e
        .run_stage_at(t, t, Stage::Deliver { shards: 3 }, &|| false)
        .await
        .unwrap();
    assert_eq!(d.messages_published, 1);
    let last = store.inner.get(&keys::last_tick()).await.unwrap().unwrap();
    assert_eq!(
        last.data,
        format!("{{\"tick\":{t},\"layout\":1,\"shards\":3}}")
    );
    assert!(!moved_all(&store));
    // Tick 32: shard 2's first run moves its states; nothing fires again.
    let t = T0 + 60 * 32;
    clock.set_epoch(t);
    for s in &shards {
        let r = e
            .run_stage_at(t, t, Stage::Shard(*s), &|| false)
            .await
            .unwrap();
        assert!(r.errors.is_empty(), "{s}: {:?}", r.errors);
        transitions += r.transitions.len();
    }
    e.run_stage_at(t, t, Stage::Deliver { shards: 3 }, &|| false)
        .await
        .unwrap();
    assert_eq!(transitions, 0);
    let told: Vec<String> = notifier.take().into_iter().map(|o| o.subject).collect();
    // (Only the injected alert's group t0 is told: its fire, then its
    // resolution as an orphan by the shard owning its name.)
    assert!(told.iter().all(|s| s.contains(" t0: ")), "{told:?}");
    assert!(moved_all(&store));
}

#[tokio::test]
async fn a_shard_s_self_alert_resolves_when_the_stack_no_longer_runs_that_shard() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let e = engine(7, store.clone(), Arc::new(MemoryNotifier::new()));
    let alert = serde_json::json!({
        "fingerprint": "00000000000000bb",
        "labels": {"alertname": firebell_engine::SELF_ALERTNAME, "check": "fetch", "shard": "2/3"},
        "annotations": {},
        "status": "firing",
        "active_since": T0,
        "fired_at": T0,
        "resolved_at": null,
        "value": 3.0,
        "peak": 3.0,
        "op": ">=",
        "threshold": 1.0,
        "unit": "count",
        "recent": [],
        "expression": "",
        "metrics": {}
    });
    let k = keys::active("00000000000000bb");
    store
        .put(
            Item {
                pk: k.pk.clone(),
                sk: k.sk.clone(),
                version: 1,
                data: alert.to_string(),
                expires_at: None,
            },
            Expect::Any,
        )
        .await
        .unwrap();
    // Still three shards: it stays (shard 2/3 resolves it itself).
    let t = T0 + 60;
    clock.set_epoch(t);
    e.run_stage_at(t, t, Stage::Deliver { shards: 3 }, &|| false)
        .await
        .unwrap();
    let a: serde_json::Value =
        serde_json::from_str(&store.get(&k).await.unwrap().unwrap().data).unwrap();
    assert_eq!(a["status"], "firing");
    // Four shards now: nothing runs shard 2/3 any more.
    let t = T0 + 120;
    clock.set_epoch(t);
    e.run_stage_at(t, t, Stage::Deliver { shards: 4 }, &|| false)
        .await
        .unwrap();
    let a: serde_json::Value =
        serde_json::from_str(&store.get(&k).await.unwrap().unwrap().data).unwrap();
    assert_eq!(a["status"], "resolved");
    assert_eq!(
        a["annotations"]["resolved_because"],
        "shard 2/3 is no longer run (the stack runs 4 shard(s) now)"
    );
}
