#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Quiet means quiet with real-world values: a firing alert whose value
//! stays where it is (an interpolated percentile, an error ratio, values
//! whose shortest decimal form does not read back exactly without care)
//! makes a cycle write nothing, not a rewrite of its state, lease and tick
//! every minute.

use std::sync::Arc;

use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, StateStore};
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{Config, Engine, EngineOptions};

const T0: i64 = 1_795_392_000;

const RULES: &str = r#"
rules:
  - name: SlowCheckout
    metrics:
      p99: {namespace: Svc, metric: Latency, dimensions: {Service: checkout}, stat: p99, period: 1m}
    expression: p99
    unit: ms
    condition: {op: ">", threshold: 500}
    labels: {team: web, severity: ticket}
  - name: PaymentsErrorRate
    metrics:
      errors: {namespace: Svc, metric: Errors, dimensions: {Service: payments}, stat: Sum, period: 1m}
      requests: {namespace: Svc, metric: Requests, dimensions: {Service: payments}, stat: Sum, period: 1m}
    expression: errors / requests * 100
    unit: percent
    condition: {op: ">", threshold: 1}
    labels: {team: web, severity: ticket}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
  group_by: [alertname]
  group_wait: 0s
"#;

fn config() -> Arc<Config> {
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(
        &[("test.yaml".to_string(), RULES.to_string())],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    Arc::new(c)
}

fn series(service: &str, metric: &str, stat: &str, value: impl Fn(i64) -> f64) -> String {
    let points: Vec<String> = (0..90)
        .map(|m| format!("[{},{:?}]", T0 + 60 * m, value(m)))
        .collect();
    format!(
        "{{\"namespace\":\"Svc\",\"metric\":\"{metric}\",\"dimensions\":{{\"Service\":\"{service}\"}},\"stat\":\"{stat}\",\"period\":60,\"points\":[{}]}}\n",
        points.join(",")
    )
}

/// From minute 10 on, steady values whose shortest decimal form needs all
/// 17 digits: a percentile (1515.0000000000077) and an error ratio,
/// 2 / 13 * 100 = 15.384615384615385, which serde_json's fast float parser
/// reads back as 15.384615384615383 (about 1 ratio in 10 does not round
/// trip that way).
fn source() -> ReplaySource {
    let mut text = series("checkout", "Latency", "p99", |m| {
        if m < 10 {
            120.0
        } else {
            1_515.000_000_000_007_7
        }
    });
    text += &series(
        "payments",
        "Errors",
        "Sum",
        |m| if m < 10 { 0.0 } else { 2.0 },
    );
    text += &series("payments", "Requests", "Sum", |_| 13.0);
    ReplaySource::parse("awkward.jsonl", &text).unwrap()
}

#[tokio::test]
async fn a_firing_alert_with_awkward_values_makes_quiet_cycles_write_nothing() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let engine = Engine::new(
        config(),
        Arc::new(source()),
        store.clone() as Arc<dyn StateStore>,
        Arc::new(MemoryNotifier::new()),
        EngineOptions::default(),
    );
    let mut fired = false;
    let mut quiet_writes = Vec::new();
    for m in 1..60 {
        let t = T0 + 60 * m;
        clock.set_epoch(t);
        let before = store.items();
        let r = engine.run_cycle_at(t, t, &|| false).await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        fired |= r
            .transitions
            .iter()
            .any(|x| matches!(x.event, firebell_core::state::Event::Fired { .. }));
        // Well after both fired (and their notifications went out), every
        // cycle is quiet: the same values again.
        if m >= 20 {
            quiet_writes.push((m, r.store_writes));
            assert_eq!(store.items(), before, "minute {m} rewrote the store");
        }
    }
    assert!(fired);
    assert!(
        quiet_writes.iter().all(|(_, n)| *n == 0),
        "{quiet_writes:?}"
    );
}
