//! The reporter Lambda's main: read settings and config once, build the AWS
//! adapters once, then hand every scheduled invocation to the tested
//! handler in `lib.rs`.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use firebell_aws::AwsAdapters;
use firebell_core::ports::{Clock, SystemClock};
use firebell_reporter::{Deps, ReportEvent, Settings, handle};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .init();
    let deps = Arc::new(init().await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "initialisation failed");
        e
    })?);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<ReportEvent>| {
        let deps = deps.clone();
        async move {
            handle(&deps, ev.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}

async fn init() -> Result<Deps> {
    let settings = Settings::from_env().map_err(|e| anyhow!(e))?;
    let (config, warnings) = firebell_engine::load(&settings.config_dir)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("loading config from {}", settings.config_dir.display()))?;
    for w in warnings.warnings() {
        tracing::warn!(warning = %w, "config");
    }
    if let Some(ops) = &settings.ops_receiver
        && !config.notify.receivers.contains_key(ops)
    {
        return Err(anyhow!(
            "FIREBELL_OPS_RECEIVER={ops:?} is not a receiver of the config"
        ));
    }
    let sdk = firebell_aws::load_sdk_config().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let aws = Arc::new(AwsAdapters::from_sdk_config(
        &sdk,
        settings.table.clone(),
        clock.clone(),
    ));
    Ok(Deps {
        settings,
        config: Arc::new(config),
        store: aws.store.clone(),
        notifier: aws.notifier.clone(),
        api_calls: aws,
        clock,
    })
}
