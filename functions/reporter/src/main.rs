//! The reporter Lambda's main: read settings and the config once (the
//! deployed one, else the last good one, else the bundled one), build the
//! AWS adapters once, then hand every scheduled invocation to the tested
//! handler in `lib.rs`.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use firebell_aws::AwsAdapters;
use firebell_aws::appconfig::DeployedConfigSource;
use firebell_core::ports::{Clock, SystemClock};
use firebell_engine::deployed::Deployed;
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
    let sdk = firebell_aws::load_sdk_config().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let aws = Arc::new(AwsAdapters::from_sdk_config(
        &sdk,
        settings.table.clone(),
        clock.clone(),
    ));
    let bundled = firebell_engine::deployed::bundled_from(settings.config_dir.clone());
    let get = |k: &str| std::env::var(k).ok();
    // The deployed config (AppConfig), else the last good one, else the
    // bundled one: what the evaluator runs. The reporter runs once a week,
    // each run a cold start: it fetches at init.
    let config = match firebell_aws::appconfig::ids_from_env(&get).map_err(|e| anyhow!(e))? {
        Some(ids) => {
            let source = Arc::new(DeployedConfigSource::from_sdk_config(&sdk, ids));
            // Its role only reads the table: it never keeps a last good one.
            let deployed = Deployed::new(
                source,
                aws.store.clone(),
                firebell_aws::appconfig::allowed_topics_from_env(&get),
                bundled,
            )
            .read_only();
            let running = deployed
                .start(clock.now().as_second())
                .await
                .map_err(|e| anyhow!(e))?;
            for note in &running.notes {
                tracing::warn!(note = %note, "deployed config");
            }
            tracing::info!(version = %running.config.version, origin = %running.origin, "running config");
            running.config
        }
        None => bundled()
            .map_err(|e| anyhow!(e))
            .context("no AppConfig settings")?,
    };
    if let Some(ops) = &settings.ops_receiver
        && !config.notify.receivers.contains_key(ops)
    {
        return Err(anyhow!(
            "FIREBELL_OPS_RECEIVER={ops:?} is not a receiver of the config"
        ));
    }
    Ok(Deps {
        settings,
        config: Arc::new(config),
        store: aws.store.clone(),
        notifier: aws.notifier.clone(),
        api_calls: aws,
        clock,
    })
}
