//! firebell-aws: AWS adapters of firebell's ports.
//!
//! - [`CloudWatchSource`] ([`MetricsSource`](firebell_core::ports::MetricsSource)):
//!   `GetMetricData` in batches of up to 500 queries, `ListMetrics` for
//!   wildcard dimension discovery; optionally at most N `GetMetricData`
//!   calls a second ([`CloudWatchOptions::max_get_metric_data_per_second`],
//!   [`GET_METRIC_DATA_TPS`]: `firebell capture`, `backtest --source
//!   cloudwatch`).
//! - [`DynamoStore`] ([`StateStore`](firebell_core::ports::StateStore)): one
//!   DynamoDB table, optimistic concurrency on a `version` attribute, TTL.
//! - [`SnsNotifier`] ([`Notifier`](firebell_core::ports::Notifier)): SNS
//!   `Publish` with `MessageStructure=json`, FIFO topics supported.
//!
//! - [`CloudWatchAlarms`] ([`AlarmService`](firebell_core::ports::AlarmService)):
//!   sentinel alarms as CloudWatch metric alarms under firebell's name
//!   prefix (`DescribeAlarms`, `PutMetricAlarm`, `DeleteAlarms`).
//! - [`alarm_definitions`]: the account's metric and composite alarms as
//!   plain definitions (`DescribeAlarms`), for `firebell import
//!   cloudwatch-alarms`.
//! - [`appconfig`]: the deployed config (AppConfig data plane, for the
//!   functions) and deploying it (control plane, for `firebell push`).
//!
//! Clients come from [`load_sdk_config`], which honours the standard AWS
//! environment (credentials, profiles, `AWS_REGION`, `AWS_ENDPOINT_URL`), so
//! the same code runs against AWS or a local wire-protocol emulator
//! (`scripts/emulator.sh`). [`AwsAdapters::from_sdk_config`] builds them all
//! at once: the one wiring of the Lambda and `firebell run --backend aws`.
//!
//! [`load_sdk_config_for`] is the same with an explicit region and profile
//! (the CLI's `--region`, `--profile`), checked up front: no region, no
//! credentials and an unknown profile are an [`AwsProblem`] whose message
//! says the fix. The adapters' port errors carry such one-line messages too
//! (a table or topic not found, access denied, throttling), recognised from
//! the SDK's error codes, never its Debug dump.
//!
//! Every adapter counts its API calls (`stats()`, and
//! [`AwsAdapters::api_calls`] by service), for the Lambda's metrics,
//! benchmarks and tests.

mod adapters;
pub mod alarm_definitions;
mod alarms;
pub mod appconfig;
mod cloudwatch;
mod dynamo;
mod error;
mod retry;
mod sns;

pub use adapters::AwsAdapters;
pub use alarms::{
    AlarmStats, CloudWatchAlarms, DESCRIBE_PAGE, MANAGED_TAG, RULES_TAG, SENTINEL_PREFIX_ENV,
    put_request, sentinel_prefix,
};
pub use aws_config::SdkConfig;
pub use cloudwatch::{
    CloudWatchOptions, CloudWatchSource, CloudWatchStats, ELSEWHERE_ATTEMPT_TIMEOUT,
    ELSEWHERE_TIMEOUT, GET_METRIC_DATA_TPS, LIST_METRICS_RETENTION_SECS, RECENTLY_ACTIVE_SECS,
    get_metric_data_calls,
};
pub use dynamo::{DynamoStats, DynamoStore, create_table_if_missing};
pub use error::AwsProblem;
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

/// Where the SDK config comes from, beyond the standard environment: the
/// CLI's `--region` and `--profile` (each overriding `AWS_REGION` /
/// `AWS_PROFILE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// [`load_sdk_config`] with `settings` applied, then checked: a region must
/// be configured and credentials must load, so a command fails at once with
/// the fix ([`AwsProblem::NoRegion`], [`AwsProblem::NoCredentials`],
/// [`AwsProblem::UnknownProfile`]) rather than at its first call.
pub async fn load_sdk_config_for(settings: &AwsSettings) -> Result<SdkConfig, AwsProblem> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = settings.region.as_deref().filter(|r| !r.trim().is_empty()) {
        loader = loader.region(aws_config::Region::new(region.trim().to_string()));
    }
    if let Some(profile) = settings.profile.as_deref().filter(|p| !p.trim().is_empty()) {
        let profile = profile.trim();
        let profiles = aws_config::profile::load(
            &aws_types::os_shim_internal::Fs::real(),
            &aws_types::os_shim_internal::Env::real(),
            &Default::default(),
            None,
        )
        .await;
        if !profiles.is_ok_and(|p| p.get_profile(profile).is_some()) {
            return Err(AwsProblem::UnknownProfile {
                profile: profile.to_string(),
            });
        }
        loader = loader.profile_name(profile);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(AwsProblem::NoRegion);
    }
    let Some(provider) = sdk.credentials_provider() else {
        return Err(AwsProblem::NoCredentials {
            detail: "no credentials provider".to_string(),
        });
    };
    use aws_credential_types::provider::ProvideCredentials;
    if let Err(e) = provider.provide_credentials().await {
        return Err(AwsProblem::NoCredentials {
            detail: error::chain(&e),
        });
    }
    Ok(sdk)
}
