#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A Metrics Insights query the source rejects (bad SQL, a limit,
//! throttling) fails only the rules reading it: the others are judged,
//! and the failure is reported against the rule.

use std::sync::Arc;

use async_trait::async_trait;
use firebell_core::diag::Diagnostics;
use firebell_core::model::{Labels, MetricSpec};
use firebell_core::ports::{
    Clock, MetricQuery, MetricSeries, MetricsError, MetricsSource, StateStore,
};
use firebell_core::series::Epoch;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{Config, CycleError, Engine, EngineOptions};

const T0: i64 = 1_795_392_000;

const SQL: &str =
    r#"SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId"#;

fn rules() -> String {
    format!(
        r#"
rules:
  - name: HotInstance
    metrics:
      cpu: {{query: '{SQL}', period: 1m}}
    expression: cpu
    condition: {{op: ">", threshold: 90}}
    labels: {{team: web}}
  - name: LocalErrors
    metrics:
      errors: {{namespace: Shop, metric: Errors, dimensions: {{Service: pay}}, stat: Sum}}
    expression: errors
    condition: {{op: ">", threshold: 0}}
    labels: {{team: web}}
receivers:
  web: {{topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}}
route:
  receiver: web
  group_by: [alertname]
  group_wait: 0s
"#
    )
}

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

fn source() -> ReplaySource {
    let points = |v: f64| -> String {
        (0..30)
            .map(|m| format!("[{},{v}]", T0 + 60 * m))
            .collect::<Vec<_>>()
            .join(",")
    };
    let text = format!(
        "{{\"namespace\":\"Shop\",\"metric\":\"Errors\",\"dimensions\":{{\"Service\":\"pay\"}},\"stat\":\"Sum\",\"period\":60,\"points\":[{}]}}\n{{\"namespace\":\"AWS/EC2\",\"metric\":\"CPUUtilization\",\"dimensions\":{{\"InstanceId\":\"i-1\"}},\"stat\":\"Average\",\"period\":60,\"query\":{},\"points\":[{}]}}\n",
        points(1.0),
        serde_json::to_string(SQL).unwrap(),
        points(95.0)
    );
    ReplaySource::parse("insights.jsonl", &text).unwrap()
}

/// A source that rejects every fetch holding a Metrics Insights query (as
/// CloudWatch rejects SQL it cannot run); discovery works.
#[derive(Debug)]
struct QueryRejected {
    inner: ReplaySource,
}

#[async_trait]
impl MetricsSource for QueryRejected {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        if queries.iter().any(|q| q.spec.query.is_some()) {
            return Err(MetricsError::BadQuery(
                "GetMetricData: InvalidParameterValueException: query too complex".into(),
            ));
        }
        self.inner.fetch(queries, start, end).await
    }

    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        self.inner.dimension_values(spec).await
    }
}

#[tokio::test]
async fn a_rejected_query_fails_only_its_rules() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let e = Engine::new(
        config(&rules()),
        Arc::new(QueryRejected { inner: source() }),
        store as Arc<dyn StateStore>,
        notifier.clone(),
        EngineOptions {
            owner: "t".into(),
            ..EngineOptions::default()
        },
    );
    let now = T0 + 60 * 7;
    clock.set_epoch(now);
    let r = e.run_cycle(now, &|| false).await.unwrap();
    let errors: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "rule HotInstance: fetching metrics of its Metrics Insights query: bad metrics query: GetMetricData: InvalidParameterValueException: query too complex"
        ]
    );
    assert!(
        matches!(&r.errors[0], CycleError::FetchElsewhere { rule, .. } if rule == "HotInstance")
    );
    assert!(!r.errors[0].is_retryable());
    // The plain rule was judged and fired.
    let subjects: Vec<String> = notifier.take().into_iter().map(|o| o.subject).collect();
    assert_eq!(subjects, vec!["[FIRING] LocalErrors 1 > 0"]);
}

/// A source that also rejects the query's discovery (CloudWatch runs the
/// same SQL to find the groups).
#[derive(Debug)]
struct DiscoveryRejected {
    inner: QueryRejected,
}

#[async_trait]
impl MetricsSource for DiscoveryRejected {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        self.inner.fetch(queries, start, end).await
    }

    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        if spec.query.is_some() {
            return Err(MetricsError::BadQuery(
                "GetMetricData: InvalidParameterValueException: query too complex".into(),
            ));
        }
        self.inner.dimension_values(spec).await
    }
}

#[tokio::test]
async fn a_query_rejected_at_discovery_fails_only_its_rule_and_the_tick_is_recorded() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let e = Engine::new(
        config(&rules()),
        Arc::new(DiscoveryRejected {
            inner: QueryRejected { inner: source() },
        }),
        store as Arc<dyn StateStore>,
        notifier.clone(),
        EngineOptions {
            owner: "t".into(),
            ..EngineOptions::default()
        },
    );
    let now = T0 + 60 * 7;
    clock.set_epoch(now);
    let r = e.run_cycle(now, &|| false).await.unwrap();
    assert!(
        matches!(&r.errors[..], [CycleError::Discovery { rule, .. }] if rule == "HotInstance"),
        "{:?}",
        r.errors
    );
    // Not incomplete: the tick is recorded, so the other rules are not
    // re-run every minute while the query is broken.
    assert!(!r.incomplete);
    let subjects: Vec<String> = notifier.take().into_iter().map(|o| o.subject).collect();
    assert_eq!(subjects, vec!["[FIRING] LocalErrors 1 > 0"]);
}
