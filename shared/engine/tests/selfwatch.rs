#![allow(clippy::unwrap_used, clippy::expect_used)]
//! firebell's own failures page someone: render, store, fetch (N cycles)
//! and stale-outbox failures raise `FirebellUnhealthy` through the normal
//! pipeline to the ops route, and resolve when healthy; a healthy quiet
//! cycle still writes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use firebell_core::diag::Diagnostics;
use firebell_core::model::MetricSpec;
use firebell_core::ports::{
    Clock, Expect, Item, Key, MetricQuery, MetricSeries, MetricsError, MetricsSource, Outbound,
    StateStore, StoreError,
};
use firebell_core::series::Epoch;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{Config, Engine, EngineOptions};

const T0: i64 = 1_795_392_000;

const CFG: &str = r#"
rules:
  - name: HighLatency
    metrics:
      p99: {namespace: Svc, metric: Latency, dimensions: {Service: "slow"}, stat: p99, period: 1m}
    expression: p99
    unit: ms
    condition: {op: ">", threshold: 500}
    for: 2m
    labels: {team: web, severity: page}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
  ops: {topics: [arn:aws:sns:us-east-1:123456789012:ops-topic]}
route:
  receiver: web
  group_by: [alertname, Service, check]
  group_wait: 0s
  routes:
    - matchers: ['team="firebell"']
      receiver: ops
"#;

fn config(text: &str) -> Config {
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(
        &[("test.yaml".to_string(), text.to_string())],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    c
}

/// `slow` is above the threshold from minute 10 to 30.
fn replay() -> ReplaySource {
    let points: Vec<String> = (0..90)
        .map(|m| {
            let v = if (10..30).contains(&m) { 900.0 } else { 120.0 };
            format!("[{},{v}]", T0 + 60 * m)
        })
        .collect();
    let text = format!(
        "{{\"namespace\":\"Svc\",\"metric\":\"Latency\",\"dimensions\":{{\"Service\":\"slow\"}},\"stat\":\"p99\",\"period\":60,\"points\":[{}]}}\n",
        points.join(",")
    );
    ReplaySource::parse("t.jsonl", &text).unwrap()
}

/// A metrics source that fails while `down` is set.
struct Flaky {
    inner: ReplaySource,
    down: AtomicBool,
}

#[async_trait]
impl MetricsSource for Flaky {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(MetricsError::Unavailable("GetMetricData timed out".into()));
        }
        self.inner.fetch(queries, start, end).await
    }
    async fn dimension_values(
        &self,
        spec: &MetricSpec,
    ) -> Result<Vec<firebell_core::model::Labels>, MetricsError> {
        self.inner.dimension_values(spec).await
    }
}

/// A store that refuses writes of rule alerts to `active` while `broken`
/// (self-alerts still go through), and counts every write.
struct Store {
    inner: MemoryStore,
    broken: AtomicBool,
    writes: std::sync::atomic::AtomicUsize,
    /// The partitions queried, in order.
    queries: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl StateStore for Store {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst)
            && item.pk == "active"
            && !item.data.contains("FirebellUnhealthy")
        {
            return Err(StoreError::Unavailable(
                "ProvisionedThroughputExceeded".into(),
            ));
        }
        self.inner.put(item, expect).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.queries.lock().unwrap().push(pk.to_string());
        self.inner.query(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key, expect).await
    }
}

struct World {
    clock: Arc<ManualClock>,
    store: Arc<Store>,
    metrics: Arc<Flaky>,
    notifier: Arc<MemoryNotifier>,
}

impl World {
    fn new() -> World {
        let clock = Arc::new(ManualClock::at_epoch(T0));
        World {
            store: Arc::new(Store {
                inner: MemoryStore::new(clock.clone() as Arc<dyn Clock>),
                broken: AtomicBool::new(false),
                writes: Default::default(),
                queries: Default::default(),
            }),
            clock,
            metrics: Arc::new(Flaky {
                inner: replay(),
                down: AtomicBool::new(false),
            }),
            notifier: Arc::new(MemoryNotifier::new()),
        }
    }

    fn engine(&self, cfg: Config) -> Engine {
        Engine::new(
            Arc::new(cfg),
            self.metrics.clone(),
            self.store.clone(),
            self.notifier.clone(),
            EngineOptions::default(),
        )
    }

    fn writes(&self) -> usize {
        self.store.writes.load(Ordering::SeqCst)
    }
}

/// Runs minutes `range`; returns `"<minute> <receiver> <subject>"` per message.
async fn run(w: &World, e: &Engine, range: std::ops::Range<i64>) -> Vec<String> {
    let mut out = Vec::new();
    for m in range {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        e.run_cycle(now, &|| false).await.unwrap();
        out.extend(
            w.notifier
                .take()
                .into_iter()
                .map(|o: Outbound| format!("{m} {} {}", o.receiver, o.subject)),
        );
    }
    out
}

fn to_ops<'a>(msgs: &'a [String], status: &str, check: &str) -> Vec<&'a String> {
    msgs.iter()
        .filter(|s| {
            s.contains(" ops ")
                && s.contains(&format!("[{status}"))
                && s.contains(&format!("firebell unhealthy ({check})"))
        })
        .collect()
}

#[tokio::test]
async fn fetch_failing_for_n_cycles_pages_ops_and_resolves_when_it_works_again() {
    let w = World::new();
    let e = w.engine(config(CFG));
    run(&w, &e, 1..5).await;
    w.metrics.down.store(true, Ordering::SeqCst);
    // Two failed fetches: below the default of 3, nobody is paged.
    let msgs = run(&w, &e, 5..7).await;
    assert!(msgs.is_empty(), "{msgs:?}");
    w.clock.set_epoch(T0 + 60 * 7);
    e.run_cycle(T0 + 60 * 7, &|| false).await.unwrap();
    let sent = w.notifier.take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].receiver, "ops");
    assert_eq!(
        sent[0].subject,
        "[FIRING] firebell unhealthy (fetch): rules are not being evaluated 3 >= 1 (page)"
    );
    let body = sent[0].bodies.values().next().cloned().unwrap_or_default();
    assert!(
        body.contains(&format!(
            "3 failure(s) in a row since {}; latest: fetching metrics: metrics source unavailable: GetMetricData timed out",
            T0 + 60 * 5
        )),
        "{body}"
    );
    let msgs = run(&w, &e, 8..9).await;
    assert!(msgs.is_empty(), "told once: {msgs:?}");
    w.metrics.down.store(false, Ordering::SeqCst);
    // (Resolved at once; told at the group's next group_interval.)
    let msgs = run(&w, &e, 9..13).await;
    assert_eq!(to_ops(&msgs, "RESOLVED", "fetch").len(), 1, "{msgs:?}");
    let before = w.writes();
    let msgs = run(&w, &e, 31..40).await;
    assert!(!msgs.iter().any(|s| s.contains(" ops ")), "{msgs:?}");
    let before_quiet = w.writes();
    w.store.queries.lock().unwrap().clear();
    run(&w, &e, 50..55).await;
    assert_eq!(
        w.writes(),
        before_quiet,
        "a healthy quiet cycle writes nothing"
    );
    // ... and self-monitoring reads nothing of its own: its checks come
    // with the cycle partition, read once per cycle.
    let queried = w.store.queries.lock().unwrap().clone();
    assert_eq!(
        queried.iter().filter(|pk| *pk == "cycle").count(),
        5,
        "{queried:?}"
    );
    assert!(!queried.iter().any(|pk| pk == "selfwatch"), "{queried:?}");
    assert!(w.writes() >= before);
}

#[tokio::test]
async fn a_store_write_failure_pages_ops_and_resolves_after_clear_after() {
    let w = World::new();
    let e = w.engine(config(
        &(CFG.to_string() + "self_monitoring: {clear_after: 5m}\n"),
    ));
    run(&w, &e, 1..10).await;
    w.store.broken.store(true, Ordering::SeqCst);
    // The fire of HighLatency cannot be written (minute 11).
    let msgs = run(&w, &e, 10..16).await;
    let fired = to_ops(&msgs, "FIRING", "store");
    assert_eq!(fired.len(), 1, "{msgs:?}");
    w.store.broken.store(false, Ordering::SeqCst);
    let msgs = run(&w, &e, 16..30).await;
    assert!(
        msgs.iter().any(|s| s.contains("web [FIRING] HighLatency")),
        "{msgs:?}"
    );
    assert_eq!(to_ops(&msgs, "RESOLVED", "store").len(), 1, "{msgs:?}");
}

#[tokio::test]
async fn a_render_failure_pages_ops() {
    let w = World::new();
    let mut cfg = config(CFG);
    // Receiver `web` lost its topics: its notifications cannot be rendered.
    cfg.notify.receivers.get_mut("web").unwrap().topics.clear();
    let e = w.engine(cfg);
    let msgs = run(&w, &e, 1..15).await;
    assert!(!msgs.iter().any(|s| s.contains(" web ")), "{msgs:?}");
    let fired = to_ops(&msgs, "FIRING", "render");
    assert_eq!(fired.len(), 1, "{msgs:?}");
    assert!(fired[0].starts_with("13 ops"), "{msgs:?}");
}

#[tokio::test]
async fn a_failing_template_still_sends_the_page_and_pages_ops() {
    let w = World::new();
    let mut cfg = config(CFG);
    // An annotation template that fails at run time (validate rejects this
    // one; a template can still fail on values the trial did not see).
    cfg.rules.rules[0]
        .annotations
        .insert("summary".into(), "{{ broken".into());
    let e = w.engine(cfg);
    let msgs = run(&w, &e, 1..15).await;
    // The page goes out, with the default text there.
    assert!(
        msgs.iter()
            .any(|s| s.starts_with("13 web [FIRING] HighLatency")),
        "{msgs:?}"
    );
    // And the operators hear of the broken template.
    let fired = to_ops(&msgs, "FIRING", "render");
    assert_eq!(fired.len(), 1, "{msgs:?}");
    assert!(fired[0].starts_with("13 ops"), "{msgs:?}");
}

#[tokio::test]
async fn an_outbox_item_older_than_the_threshold_pages_ops_and_resolves_once_sent() {
    let w = World::new();
    let e = w.engine(config(CFG));
    run(&w, &e, 1..10).await;
    // Every publish fails for a while: the fire stays in the outbox.
    w.notifier.fail_next(1_000_000);
    run(&w, &e, 10..31).await;
    let fire_attempts = w.notifier.attempts();
    assert!(fire_attempts > 0);
    // 15 minutes after the fire was decided (minute 11): the outbox check
    // fires; its page is delivered as soon as publishing works.
    w.notifier.fail_next(0);
    let msgs = run(&w, &e, 31..32).await;
    assert!(
        msgs.iter().any(|s| s.contains("web [FIRING] HighLatency")),
        "{msgs:?}"
    );
    let fired = to_ops(&msgs, "FIRING", "outbox");
    assert_eq!(fired.len(), 1, "{msgs:?}");
    let msgs = run(&w, &e, 32..45).await;
    assert_eq!(to_ops(&msgs, "RESOLVED", "outbox").len(), 1, "{msgs:?}");
}

#[test]
fn self_monitoring_is_decoded_strictly() {
    let mut diags = Diagnostics::new();
    firebell_engine::load_texts(
        &[(
            "sm.yaml".to_string(),
            "self_monitoring:\n  fetch_failure: 3\n  outbox_age: 30s\n".to_string(),
        )],
        &mut diags,
        Vec::new(),
    );
    let text = diags.to_string();
    assert!(
        text.contains("sm.yaml:2:3: error: unknown field `fetch_failure` in self_monitoring"),
        "{text}"
    );
    assert!(text.contains("did you mean `fetch_failures`?"), "{text}");
    assert!(
        text.contains("sm.yaml:3:15: error: outbox_age must be between 1m and 7d, found 30s"),
        "{text}"
    );
    let c = config("self_monitoring: {enabled: false, labels: {team: sre}}\n");
    assert!(!c.self_monitoring.enabled);
    assert_eq!(
        c.self_monitoring.labels.get("team").map(String::as_str),
        Some("sre")
    );
}
