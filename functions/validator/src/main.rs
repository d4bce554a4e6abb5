//! The AppConfig validator Lambda's main: settings once, then every
//! validation to the tested handler in `lib.rs`. A refused config is the
//! invocation's error (`errorType` `InvalidConfiguration`, `errorMessage`
//! exactly what `firebell validate` prints; AppConfig shows it); an
//! accepted one returns `validate`'s summary line.

use firebell_validator::{Settings, ValidatorEvent, validate};
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
    let settings = Settings::from_env()?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<ValidatorEvent>| {
        let settings = settings.clone();
        async move {
            let e = &ev.payload;
            match validate(&settings, e) {
                Ok(summary) => {
                    tracing::info!(
                        application = %e.application_id,
                        profile = %e.configuration_profile_id,
                        version = %e.configuration_version,
                        summary = %summary,
                        "config valid"
                    );
                    Ok(serde_json::json!({ "valid": true, "summary": summary }))
                }
                Err(report) => {
                    tracing::warn!(
                        application = %e.application_id,
                        profile = %e.configuration_profile_id,
                        version = %e.configuration_version,
                        errors = %report,
                        "config refused"
                    );
                    Err(lambda_runtime::Diagnostic {
                        error_type: "InvalidConfiguration".to_string(),
                        error_message: report,
                    })
                }
            }
        }
    }))
    .await
}
