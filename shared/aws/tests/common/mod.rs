//! Helpers shared by the emulator-backed integration tests.
//!
//! The tests talk to whatever `AWS_ENDPOINT_URL` points at (standard
//! aws-config behaviour): the local emulator started by
//! `scripts/emulator.sh`, or, with `FIREBELL_AWS_TEST_REAL=1` and no endpoint
//! override, a real AWS account. Without either they fail: they never skip.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use firebell_aws::{SdkConfig, load_sdk_config};
use firebell_core::ports::{Clock, SystemClock};

const HOW_TO_RUN: &str = "the firebell-aws integration tests need an AWS wire-protocol emulator. Run them with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell-aws\n    scripts/emulator.sh stop\n\n(or set FIREBELL_AWS_TEST_REAL=1 and AWS credentials to run them against a real AWS account)";

/// True when the tests run against the local emulator (an endpoint override
/// on a loopback address), false against real AWS.
pub(crate) fn is_emulator() -> bool {
    std::env::var("AWS_ENDPOINT_URL")
        .map(|u| u.contains("127.0.0.1") || u.contains("localhost") || u.contains("[::1]"))
        .unwrap_or(false)
}

/// The SDK config the tests use; panics with instructions when no endpoint
/// is configured.
pub(crate) async fn sdk_config() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let real = std::env::var("FIREBELL_AWS_TEST_REAL").is_ok_and(|v| v == "1");
    if endpoint.trim().is_empty() && !real {
        panic!("AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}");
    }
    load_sdk_config().await
}

/// A config whose endpoint refuses connections, and whose SDK does not retry:
/// for checking how network failures are classified.
pub(crate) async fn unreachable_config() -> SdkConfig {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// A name unique across test runs and tests: `prefix-<pid>-<nanos>-<n>`.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemClock.now().as_nanosecond() % 1_000_000_000_000;
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn now_secs() -> i64 {
    SystemClock.now().as_second()
}

/// The clock the tests move by hand: the one the store contract uses.
pub(crate) use firebell_embedded::ManualClock;

/// A shared manual clock at Unix second `secs`.
pub(crate) fn manual_clock(secs: i64) -> Arc<ManualClock> {
    Arc::new(ManualClock::at_epoch(secs))
}

/// How long to wait for data to become visible: instant on the emulator,
/// minutes on AWS (CloudWatch ingestion, ListMetrics propagation).
pub(crate) fn patience() -> Duration {
    if is_emulator() {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(900)
    }
}

/// Calls `f` until it returns `Some`, or panics after [`patience`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {:?} waiting for {what}", patience());
        }
        tokio::time::sleep(Duration::from_millis(if is_emulator() {
            200
        } else {
            5000
        }))
        .await;
    }
}
