//! The big-incident scenario, shared by `tests/big_incident.rs` and
//! `benches/big_incident.rs`: one rule over a wildcard dimension with
//! 10,000 hosts, every host breaching at once (one group of 10,000 firing
//! alerts), then every host back to normal. The datapoints come from a
//! synthetic source (10,000 series through CloudWatch would test the
//! emulator, not the delivery); the store (DynamoDB) and the notifier (SNS)
//! are the real adapters against the emulator.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use firebell_aws::{DynamoStore, SnsNotifier};
use firebell_core::diag::Diagnostics;
use firebell_core::model::MetricSpec;
use firebell_core::ports::{MetricQuery, MetricSeries, MetricsError, MetricsSource};
use firebell_core::series::{Epoch, Point};
use firebell_embedded::ManualClock;
use firebell_engine::{Engine, EngineOptions};
use firebell_tests::{Aws, minute_now};

pub(crate) const HOSTS: usize = 10_000;

/// Every host's disk usage: 97% while `breaching`, else 40%.
pub(crate) struct Synthetic {
    pub(crate) breaching: AtomicBool,
    pub(crate) hosts: usize,
}

#[async_trait]
impl MetricsSource for Synthetic {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        let v = if self.breaching.load(Ordering::SeqCst) {
            97.0
        } else {
            40.0
        };
        let first = start - start.rem_euclid(60);
        let points: Vec<Point> = (0..)
            .map(|i| first + 60 * i)
            .take_while(|t| *t < end)
            .filter(|t| *t >= start)
            .map(|t| Point { t, v })
            .collect();
        Ok(queries
            .iter()
            .map(|q| MetricSeries {
                id: q.id.clone(),
                points: points.clone(),
                complete: true,
            })
            .collect())
    }

    async fn dimension_values(
        &self,
        _spec: &MetricSpec,
    ) -> Result<Vec<firebell_core::model::Labels>, MetricsError> {
        Ok((0..self.hosts)
            .map(|i| [("Host".to_string(), format!("host-{i:05}"))].into())
            .collect())
    }
}

pub(crate) fn config_text(topic: &str) -> String {
    format!(
        r#"rules:
  - name: DiskFull
    metrics:
      used: {{namespace: "Firebell/Big", metric: DiskUsed, dimensions: {{Host: "*"}}, stat: Maximum, period: 1m}}
    expression: used
    unit: percent
    condition: {{op: ">", threshold: 90}}
    for: 0s
    missing_data: ok
    labels: {{team: storage, severity: page}}
    annotations:
      title: Disk full on {{{{ labels.Host }}}}
      summary: "The disk of {{{{ labels.Host }}}} is {{{{ value }}}} full; clean it up or grow the volume."
receivers:
  storage: {{topics: ["{topic}"], send_resolved: true}}
route:
  receiver: storage
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
"#
    )
}

pub(crate) struct Big {
    pub(crate) engine: Engine,
    pub(crate) source: Arc<Synthetic>,
    pub(crate) dynamo: Arc<DynamoStore>,
    pub(crate) sns: Arc<SnsNotifier>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) queue: String,
    /// The first tick: 30 minutes in the past.
    pub(crate) base: Epoch,
}

pub(crate) async fn setup(aws: &Aws) -> anyhow::Result<Big> {
    let table = aws.table().await?;
    let topic = aws.topic(false).await?;
    let queue = aws.subscribed_queue(&topic).await?;
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[("big.yaml".to_string(), config_text(&topic))],
        &mut diags,
        Vec::new(),
    );
    if diags.has_errors() {
        anyhow::bail!("config: {diags}");
    }
    let base = minute_now() - 30 * 60;
    let clock = Arc::new(ManualClock::at_epoch(base));
    let source = Arc::new(Synthetic {
        breaching: AtomicBool::new(true),
        hosts: HOSTS,
    });
    let dynamo = Arc::new(DynamoStore::new(aws.dynamodb.clone(), table, clock.clone()));
    let sns = Arc::new(SnsNotifier::new(aws.sns.clone()));
    let engine = Engine::new(
        Arc::new(config),
        source.clone(),
        dynamo.clone(),
        sns.clone(),
        EngineOptions {
            owner: "big".to_string(),
            ..EngineOptions::default()
        },
    );
    Ok(Big {
        engine,
        source,
        dynamo,
        sns,
        clock,
        queue,
        base,
    })
}
