//! The evaluator Lambda's main: read settings once, pick the config (the
//! deployed one from AppConfig, else the last good one, else the bundled
//! one), build the AWS adapters (the sentinel alarms included) and the
//! engine once (and open the connections during init), then hand every
//! invocation to the tested handler in `lib.rs`, which switches to a newly
//! deployed config between cycles.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use firebell_aws::AwsAdapters;
use firebell_aws::appconfig::DeployedConfigSource;
use firebell_core::ports::{Clock, SystemClock};
use firebell_engine::deployed::Deployed;
use firebell_engine::{Engine, EngineOptions};
use firebell_evaluator::{AwsCalls, Deps, Settings, Switching, TickEvent, handle};
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
    let sdk = firebell_aws::load_sdk_config().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let aws = Arc::new(AwsAdapters::from_sdk_config(
        &sdk,
        settings.table.clone(),
        clock.clone(),
    ));
    let bundled = firebell_engine::deployed::bundled_from(settings.config_dir.clone());
    // Open connections now, during init (billed at no extra latency to the
    // first tick): one cheap read on each service the role may call, while
    // the config is fetched.
    let last_tick = firebell_engine::keys::last_tick();
    let warm = aws.warm(&last_tick);
    let (config, deployed, source) = match &settings.appconfig {
        Some(ids) => {
            let source = Arc::new(DeployedConfigSource::from_sdk_config(&sdk, ids.clone()));
            let deployed = Arc::new(
                Deployed::new(
                    source.clone(),
                    aws.store.clone(),
                    settings.allowed_topics.clone(),
                    bundled,
                )
                .with_settle(settings.settle_secs),
            );
            let (running, ()) = tokio::join!(deployed.start(clock.now().as_second()), warm);
            let running = running.map_err(|e| anyhow!(e))?;
            for note in &running.notes {
                tracing::warn!(note = %note, "deployed config");
            }
            tracing::info!(
                version = %running.config.version,
                origin = %running.origin,
                rules = running.config.rules.rules.len(),
                "running config"
            );
            (running.config, Some(deployed), Some(source))
        }
        None => {
            warm.await;
            (
                bundled()
                    .map_err(|e| anyhow!(e))
                    .context("no AppConfig settings")?,
                None,
                None,
            )
        }
    };
    let engine = Engine::new(
        Arc::new(config),
        aws.metrics.clone(),
        aws.store.clone(),
        aws.notifier.clone(),
        EngineOptions {
            owner: std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
                .unwrap_or_else(|_| format!("evaluator-{}", std::process::id())),
            sentinel_prefix: settings.sentinel_prefix.clone(),
            ..EngineOptions::default()
        },
    )
    .with_alarms(aws.alarms.clone())
    .with_stopwatch(clock.clone());
    if let Some(d) = &deployed {
        engine.set_config_problem(d.problem());
    }
    Ok(Deps {
        settings,
        cycle: Arc::new(Switching::new(engine)),
        api_calls: Arc::new(AwsCalls {
            adapters: aws,
            appconfig: source,
        }),
        clock,
        deployed,
    })
}
