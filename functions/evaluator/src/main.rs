//! The evaluator Lambda's main: read settings and config once, build the AWS
//! clients once (and open their connections during init), then hand every
//! invocation to the tested handler in `lib.rs`.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use firebell_aws::{CloudWatchSource, DynamoStore, SnsNotifier, SystemClock};
use firebell_core::ports::{Clock, Key, MetricsSource, Notifier, StateStore};
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
    let cloudwatch = Arc::new(CloudWatchSource::from_sdk_config(&sdk, clock.clone()));
    let dynamo = Arc::new(DynamoStore::from_sdk_config(
        &sdk,
        settings.table.clone(),
        clock,
    ));
    let sns = Arc::new(SnsNotifier::from_sdk_config(&sdk));
    // Open connections now, during init (billed at no extra latency to the
    // first tick): one cheap read on each service the role may call.
    let last_tick = Key::new("cycle", "last");
    let heartbeat = firebell_core::model::MetricSpec {
        namespace: "Firebell".into(),
        metric_name: "Heartbeat".into(),
        dimensions: [("Function".to_string(), "*".to_string())].into(),
        stat: firebell_core::model::Stat::Sum,
        period: std::time::Duration::from_secs(60),
    };
    let warm_store = dynamo.get(&last_tick);
    let warm_metrics = cloudwatch.dimension_values(&heartbeat, "Function");
    let (s, m) = tokio::join!(warm_store, warm_metrics);
    if let Err(e) = s {
        tracing::warn!(error = %e, "warming the DynamoDB connection");
    }
    if let Err(e) = m {
        tracing::warn!(error = %e, "warming the CloudWatch connection");
    }
    let engine = Engine::new(
        Arc::new(config),
        cloudwatch.clone() as Arc<dyn MetricsSource>,
        dynamo.clone() as Arc<dyn StateStore>,
        sns.clone() as Arc<dyn Notifier>,
        EngineOptions {
            owner: std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
                .unwrap_or_else(|_| format!("evaluator-{}", std::process::id())),
            ..EngineOptions::default()
        },
    );
    Ok(Deps {
        engine,
        cloudwatch,
        dynamo,
        sns,
        settings,
    })
}
