//! The full set of AWS adapters, wired once: what the Lambda and
//! `firebell run --backend aws` run the engine on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use firebell_core::model::{MetricSpec, Stat};
use firebell_core::ports::{Clock, Key, MetricsSource, StateStore};

use crate::{CloudWatchAlarms, CloudWatchSource, DynamoStore, SdkConfig, SnsNotifier};

/// CloudWatch metrics and alarms (the sentinels), the DynamoDB state table
/// and SNS, over one SDK config
/// and one clock. Kept typed (not as port trait objects) so their call
/// counters can be read; hand the parts to the engine as ports.
#[derive(Debug, Clone)]
pub struct AwsAdapters {
    pub metrics: Arc<CloudWatchSource>,
    pub store: Arc<DynamoStore>,
    pub notifier: Arc<SnsNotifier>,
    /// The sentinel alarms (the engine's `with_alarms`).
    pub alarms: Arc<CloudWatchAlarms>,
}

impl AwsAdapters {
    /// The adapters over `sdk` (see [`crate::load_sdk_config`]), with state
    /// in the existing table `table`; `clock` decides expiry and caching (the
    /// wall clock, [`firebell_core::ports::SystemClock`], in production).
    pub fn from_sdk_config(
        sdk: &SdkConfig,
        table: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> AwsAdapters {
        AwsAdapters {
            metrics: Arc::new(CloudWatchSource::from_sdk_config(sdk, clock.clone())),
            store: Arc::new(DynamoStore::from_sdk_config(sdk, table, clock)),
            notifier: Arc::new(SnsNotifier::from_sdk_config(sdk)),
            alarms: Arc::new(CloudWatchAlarms::from_sdk_config(sdk)),
        }
    }

    /// Opens the connections ahead of the first cycle (during a Lambda's
    /// init, billed at no extra latency to the first tick): one cheap read on
    /// each service that is read, at once: `GetItem` of `key` and one
    /// `ListMetrics` (the `Firebell/Heartbeat` functions). Failures are only
    /// logged (warnings): the cycle reports its own.
    pub async fn warm(&self, key: &Key) {
        let heartbeat = MetricSpec {
            namespace: "Firebell".into(),
            metric_name: "Heartbeat".into(),
            dimensions: [("Function".to_string(), "*".to_string())].into(),
            stat: Stat::Sum,
            period: Duration::from_secs(60),
            account: None,
            region: None,
            query: None,
        };
        let warm_store = self.store.get(key);
        let warm_metrics = self.metrics.dimension_values(&heartbeat);
        let (s, m) = tokio::join!(warm_store, warm_metrics);
        if let Err(e) = s {
            tracing::warn!(error = %e, "warming the DynamoDB connection");
        }
        if let Err(e) = m {
            tracing::warn!(error = %e, "warming the CloudWatch connection");
        }
    }

    /// API calls made so far, by service: `CloudWatch` (metrics and the
    /// sentinel alarms), `DynamoDB`, `SNS` (retries count again).
    pub fn api_calls(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            (
                "CloudWatch",
                self.metrics.stats().total() + self.alarms.stats().total(),
            ),
            ("DynamoDB", self.store.stats().total()),
            ("SNS", self.notifier.stats().total()),
        ])
    }
}
