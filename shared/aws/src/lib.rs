//! firebell-aws: AWS adapters of firebell's ports.
//!
//! - [`CloudWatchSource`] ([`MetricsSource`](firebell_core::ports::MetricsSource)):
//!   `GetMetricData` in batches of up to 500 queries, `ListMetrics` for
//!   wildcard dimension discovery.
//! - [`DynamoStore`] ([`StateStore`](firebell_core::ports::StateStore)): one
//!   DynamoDB table, optimistic concurrency on a `version` attribute, TTL.
//! - [`SnsNotifier`] ([`Notifier`](firebell_core::ports::Notifier)): SNS
//!   `Publish` with `MessageStructure=json`, FIFO topics supported.
//!
//! Clients come from [`load_sdk_config`], which honours the standard AWS
//! environment (credentials, profiles, `AWS_REGION`, `AWS_ENDPOINT_URL`), so
//! the same code runs against AWS or a local wire-protocol emulator
//! (`scripts/emulator.sh`). [`AwsAdapters::from_sdk_config`] builds all three
//! at once: the one wiring of the Lambda and `firebell run --backend aws`.
//!
//! Every adapter counts its API calls (`stats()`, and
//! [`AwsAdapters::api_calls`] by service), for the Lambda's metrics,
//! benchmarks and tests.

mod adapters;
mod cloudwatch;
mod dynamo;
mod error;
mod retry;
mod sns;

pub use adapters::AwsAdapters;
pub use aws_config::SdkConfig;
pub use cloudwatch::{CloudWatchOptions, CloudWatchSource, CloudWatchStats};
pub use dynamo::{DynamoStats, DynamoStore, create_table_if_missing};
pub use retry::Backoff;
pub use sns::{SnsNotifier, SnsStats, sanitize_subject};

/// Loads the shared AWS SDK configuration the standard way: environment
/// variables, shared config/credentials files and profiles, SSO, IMDS/ECS
/// credentials, and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` endpoint
/// overrides.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
