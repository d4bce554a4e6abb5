//! Shared test helpers: config loading, alerts, a world with a store and a
//! manual clock, and store wrappers to inject crashes and interleavings.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use firebell_core::alert::{Alert, AlertStatus, fingerprint};
use firebell_core::decode::Decoder;
use firebell_core::diag::Diagnostics;
use firebell_core::model::{Labels, Op, Unit};
use firebell_core::ports::{Expect, Item, Key, Outbound, StateStore, StoreError};
use firebell_core::series::Epoch;
use firebell_embedded::{ManualClock, MemoryStore};
use firebell_notify::{
    GroupNotification, NotifyConfig, NotifyConfigBuilder, Receiver, RenderError, Rendered, dispatch,
};

/// Monday 2024-06-03T00:00:00Z.
pub(crate) const T0: Epoch = 1_717_372_800;

/// Loads `(file name, yaml)` pairs; returns the config and every diagnostic.
pub(crate) fn load(files: &[(&str, &str)]) -> (NotifyConfig, Vec<String>) {
    let mut diags = Diagnostics::new();
    let mut b = NotifyConfigBuilder::default();
    for (name, text) in files {
        let mut d = Decoder::new(*name, &mut diags);
        let Some(root) = d.parse(text) else { continue };
        if let marked_yaml::Node::Mapping(m) = &root {
            for (k, v) in m.iter() {
                b.section(&mut d, k.as_str(), v);
            }
        }
    }
    let cfg = b.build(&mut diags);
    // As the engine does: by file, line and column.
    diags.sort();
    (cfg, diags.list.iter().map(ToString::to_string).collect())
}

/// Loads one file that must be valid.
pub(crate) fn config(yaml: &str) -> NotifyConfig {
    let (cfg, diags) = load(&[("notify.yaml", yaml)]);
    assert!(diags.is_empty(), "unexpected diagnostics: {diags:#?}");
    cfg
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A firing alert with these labels.
pub(crate) fn alert(pairs: &[(&str, &str)], fired_at: Epoch) -> Alert {
    let labels = labels(pairs);
    Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: BTreeMap::new(),
        status: AlertStatus::Firing,
        active_since: fired_at,
        fired_at,
        resolved_at: None,
        value: Some(1.0),
        peak: Some(1.0),
        op: Op::Gt,
        threshold: 0.5,
        unit: Unit::None,
        recent: vec![(fired_at, Some(1.0))],
        expression: "m".to_string(),
        metrics: BTreeMap::new(),
    }
}

/// `a`, resolved at `at`.
pub(crate) fn resolved(a: &Alert, at: Epoch) -> Alert {
    Alert {
        status: AlertStatus::Resolved,
        resolved_at: Some(at),
        ..a.clone()
    }
}

/// `name` of an alert: its `alertname` label.
fn name(a: &Alert) -> String {
    a.labels.get("alertname").cloned().unwrap_or_default()
}

/// `receiver #seq firing[A,B] resolved[C] notes[..]` for compact timelines.
pub(crate) fn summary(n: &GroupNotification) -> String {
    let f: Vec<String> = n.firing.iter().map(name).collect();
    let r: Vec<String> = n.resolved.iter().map(name).collect();
    let mut s = format!(
        "{} #{} {} firing[{}] resolved[{}]",
        n.receiver,
        n.seq,
        n.status.as_str(),
        f.join(","),
        r.join(",")
    );
    if !n.notes.is_empty() {
        s.push_str(&format!(" notes[{}]", n.notes.join(" | ")));
    }
    s
}

/// A store, a manual clock and a config.
pub(crate) struct World {
    pub clock: Arc<ManualClock>,
    pub store: Arc<MemoryStore>,
    pub cfg: NotifyConfig,
}

impl World {
    pub(crate) fn new(cfg: NotifyConfig) -> World {
        let clock = Arc::new(ManualClock::at_epoch(T0));
        let store = Arc::new(MemoryStore::new(clock.clone()));
        World { clock, store, cfg }
    }

    /// One dispatch at `t`; the summaries of the notifications enqueued.
    pub(crate) async fn at(&self, t: Epoch, alerts: &[Alert]) -> Vec<String> {
        self.clock.set_epoch(t);
        let report = dispatch(&self.cfg, self.store.as_ref(), t, alerts)
            .await
            .expect("dispatch");
        report.notifications.iter().map(summary).collect()
    }

    /// Dispatches every `step` seconds from `from` to `to` (inclusive) with
    /// the same alerts; returns `(time, summary)` of every notification.
    pub(crate) async fn run(
        &self,
        from: Epoch,
        to: Epoch,
        step: i64,
        alerts: &[Alert],
    ) -> Vec<(Epoch, String)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            for s in self.at(t, alerts).await {
                out.push((t, s));
            }
            t += step;
        }
        out
    }

    pub(crate) fn items(&self, pk: &str) -> Vec<Item> {
        self.store
            .items()
            .into_iter()
            .filter(|i| i.pk == pk)
            .collect()
    }
}

/// A test renderer: one message per topic, subject `<group_key> #<seq>`.
pub(crate) fn render(r: &Receiver, n: &GroupNotification) -> Result<Rendered, RenderError> {
    let messages = r
        .topics
        .iter()
        .map(|t| Outbound {
            idempotency_key: String::new(),
            group_key: String::new(),
            receiver: r.name.clone(),
            destination: t.clone(),
            subject: format!("{} #{}", n.receiver, n.seq),
            bodies: BTreeMap::from([("default".to_string(), summary(n))]),
            attributes: BTreeMap::new(),
        })
        .collect();
    Ok(Rendered {
        messages,
        template_failures: Vec::new(),
    })
}

/// Wraps a store: can fail writes to one partition (a crash before that
/// write), and yields to the scheduler before every operation so that
/// concurrent futures interleave.
pub(crate) struct Flaky {
    pub inner: Arc<dyn StateStore>,
    pub fail_puts_to: Mutex<Option<String>>,
    pub yield_each_op: AtomicBool,
}

impl Flaky {
    pub(crate) fn new(inner: Arc<dyn StateStore>) -> Flaky {
        Flaky {
            inner,
            fail_puts_to: Mutex::new(None),
            yield_each_op: AtomicBool::new(false),
        }
    }

    pub(crate) fn fail_puts_to(&self, pk: Option<&str>) {
        *self.fail_puts_to.lock().unwrap() = pk.map(str::to_string);
    }

    async fn pause(&self) {
        if self.yield_each_op.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait]
impl StateStore for Flaky {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.pause().await;
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.pause().await;
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        self.pause().await;
        let fail = self.fail_puts_to.lock().unwrap().clone();
        if fail.as_deref() == Some(item.pk.as_str()) {
            return Err(StoreError::Unavailable("injected crash".to_string()));
        }
        self.inner.put(item, expect).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.pause().await;
        self.inner.query(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.delete(key, expect).await
    }
}
