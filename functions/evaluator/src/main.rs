//! The evaluator Lambda's main: read settings and config once, build the AWS
//! adapters and the engine once (and open the connections during init), then
//! hand every invocation to the tested handler in `lib.rs`.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use firebell_aws::AwsAdapters;
use firebell_core::ports::{Clock, SystemClock};
use firebell_engine::{Engine, EngineOptions};
use firebell_evaluator::{Deps, Settings, TickEvent, handle};
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
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<TickEvent>| {
        let deps = deps.clone();
        async move {
            let deadline = ev.context.deadline();
            handle(&deps, ev.payload, deadline)
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
    let sdk = firebell_aws::load_sdk_config().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let aws = Arc::new(AwsAdapters::from_sdk_config(
        &sdk,
        settings.table.clone(),
        clock.clone(),
    ));
    // Open connections now, during init (billed at no extra latency to the
    // first tick): one cheap read on each service the role may call.
    aws.warm(&firebell_engine::keys::last_tick()).await;
    let engine = Engine::new(
        Arc::new(config),
        aws.metrics.clone(),
        aws.store.clone(),
        aws.notifier.clone(),
        EngineOptions {
            owner: std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
                .unwrap_or_else(|_| format!("evaluator-{}", std::process::id())),
            ..EngineOptions::default()
        },
    )
    .with_stopwatch(clock.clone());
    Ok(Deps {
        settings,
        cycle: Arc::new(engine),
        api_calls: aws,
        clock,
    })
}
