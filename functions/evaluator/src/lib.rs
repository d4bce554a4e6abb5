//! The evaluator Lambda's tested handler. `main.rs` reads settings and config
//! once, builds the AWS clients once, and hands each invocation to [`handle`].
//!
//! One invocation = one evaluation cycle as of the scheduled tick:
//! - the tick is the event's `scheduled_time` (EventBridge Scheduler), or
//!   `time` (an EventBridge scheduled rule), or the invocation time;
//! - a tick older than [`Settings::max_tick_age_secs`] is refused (a stale
//!   tick must never run: the next one is already due);
//! - the cycle stops cleanly [`Settings::safety_margin_ms`] before the
//!   invocation deadline; the outbox and the next cycle finish the work;
//! - one CloudWatch Embedded Metric Format line per invocation carries the
//!   cycle's figures and, when the cycle completed, the heartbeat the
//!   watchdog alarm watches.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use firebell_aws::{CloudWatchSource, DynamoStore, SnsNotifier};
use firebell_core::series::Epoch;
use firebell_engine::{CycleReport, Engine, Skip};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Settings from the environment, read once at cold start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bundled config directory (`FIREBELL_CONFIG`, default `/opt/config`).
    pub config_dir: PathBuf,
    /// The DynamoDB table (`FIREBELL_TABLE`).
    pub table: String,
    /// The function's name, the heartbeat's dimension (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: String,
    /// Stop this long before the deadline (`FIREBELL_SAFETY_MARGIN_MS`, default 5000).
    pub safety_margin_ms: u64,
    /// Refuse ticks older than this (`FIREBELL_MAX_TICK_AGE_SECS`, default 60).
    pub max_tick_age_secs: i64,
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let table = get("FIREBELL_TABLE")
            .filter(|t| !t.is_empty())
            .ok_or("FIREBELL_TABLE is not set (the DynamoDB table holding alert state)")?;
        let num = |k: &str, default: u64| -> Result<u64, String> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("{k}={v:?} is not a whole number")),
            }
        };
        Ok(Settings {
            config_dir: PathBuf::from(
                get("FIREBELL_CONFIG").unwrap_or_else(|| "/opt/config".into()),
            ),
            table,
            function_name: get("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "firebell-evaluator".into()),
            safety_margin_ms: num("FIREBELL_SAFETY_MARGIN_MS", 5000)?,
            max_tick_age_secs: i64::try_from(num("FIREBELL_MAX_TICK_AGE_SECS", 60)?).unwrap_or(60),
        })
    }
}

/// The scheduled event. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TickEvent {
    /// EventBridge Scheduler: `<aws.scheduler.scheduled-time>`.
    #[serde(default)]
    pub scheduled_time: Option<String>,
    /// EventBridge scheduled rule: the event's `time`.
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub execution_id: Option<String>,
}

impl TickEvent {
    /// The tick, aligned down to the minute; falls back to `now`.
    pub fn tick(&self, now: Epoch) -> Result<Epoch, String> {
        let raw = self.scheduled_time.as_deref().or(self.time.as_deref());
        let t = match raw {
            None => now,
            Some(s) => s
                .parse::<jiff::Timestamp>()
                .map_err(|e| format!("scheduled time {s:?} is not RFC 3339: {e}"))?
                .as_second(),
        };
        Ok(t.div_euclid(60) * 60)
    }
}

/// What the handler returns (also logged).
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub tick: Epoch,
    pub status: &'static str,
    pub report: Option<CycleReport>,
    pub duration_ms: u64,
}

/// The clients, kept typed so their call counters can be reported.
pub struct Deps {
    pub engine: Engine,
    pub cloudwatch: Arc<CloudWatchSource>,
    pub dynamo: Arc<DynamoStore>,
    pub sns: Arc<SnsNotifier>,
    pub settings: Settings,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn wall_now() -> Epoch {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Handles one invocation. `deadline` is the invocation's deadline.
pub async fn handle(
    deps: &Deps,
    event: TickEvent,
    deadline: SystemTime,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let now = wall_now();
    let tick = event.tick(now)?;
    let age = now - tick;
    let before = api_calls(deps);
    if age > deps.settings.max_tick_age_secs {
        let outcome = Outcome {
            tick,
            status: "stale",
            report: None,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        tracing::warn!(tick, age, "refusing a stale tick");
        println!("{}", emf(deps, &outcome, &before));
        return Ok(outcome);
    }
    let margin = Duration::from_millis(deps.settings.safety_margin_ms);
    let deadline = effective_deadline(deadline, SystemTime::now());
    let stop_at = deadline.checked_sub(margin).unwrap_or(deadline);
    let should_stop = move || SystemTime::now() >= stop_at;
    let result = deps.engine.run_cycle(tick, &should_stop).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(report) => {
            let status = match report.skipped {
                Some(Skip::Duplicate) => "duplicate",
                Some(Skip::Overlap) => "overlap",
                None if report.stopped_early => "stopped_early",
                None => "completed",
            };
            for e in &report.errors {
                tracing::warn!(tick, error = %e, "cycle problem");
            }
            let outcome = Outcome {
                tick,
                status,
                report: Some(report),
                duration_ms,
            };
            tracing::info!(
                tick,
                status,
                duration_ms,
                summary = %summary(&outcome),
                "cycle finished"
            );
            println!("{}", emf(deps, &outcome, &before));
            Ok(outcome)
        }
        Err(e) => {
            let outcome = Outcome {
                tick,
                status: "failed",
                report: None,
                duration_ms,
            };
            println!("{}", emf(deps, &outcome, &before));
            tracing::error!(tick, error = %e, retryable = e.is_retryable(), "cycle failed");
            Err(format!("cycle {tick} failed: {e}"))
        }
    }
}

/// Deadlines before this (2001-09-09, 10^12 ms) are not Unix times.
const EARLIEST_ABSOLUTE_DEADLINE: Duration = Duration::from_secs(1_000_000_000);

/// The invocation's deadline as a wall-clock time. Lambda sends Unix
/// milliseconds (`Lambda-Runtime-Deadline-Ms`); some runtime emulators send
/// the timeout instead (`cargo lambda watch` sends `600000`), which read as a
/// Unix time lies in 1970 and would stop every cycle before it starts. Such a
/// value is taken as milliseconds from `now`.
pub fn effective_deadline(deadline: SystemTime, now: SystemTime) -> SystemTime {
    match deadline.duration_since(UNIX_EPOCH) {
        Ok(since) if since < EARLIEST_ABSOLUTE_DEADLINE => now + since,
        _ => deadline,
    }
}

fn summary(o: &Outcome) -> String {
    match &o.report {
        Some(r) => format!(
            "{} rules, {} instances, {} transitions, {} notifications, {} errors",
            r.rules_evaluated,
            r.instances_evaluated,
            r.transitions.len(),
            r.notifications_sent,
            r.errors.len()
        ),
        None => o.status.to_string(),
    }
}

/// API calls so far, by service.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiCalls {
    pub cloudwatch: u64,
    pub dynamodb: u64,
    pub sns: u64,
}

pub fn api_calls(deps: &Deps) -> ApiCalls {
    ApiCalls {
        cloudwatch: deps.cloudwatch.stats().total(),
        dynamodb: deps.dynamo.stats().total(),
        sns: deps.sns.stats().total(),
    }
}

/// One Embedded Metric Format line: namespace `Firebell`, dimension `Function`.
/// `Heartbeat` is 1 only when the cycle completed (or was a harmless duplicate).
pub fn emf(deps: &Deps, o: &Outcome, before: &ApiCalls) -> String {
    let after = api_calls(deps);
    let none = CycleReport::default();
    let r = o.report.as_ref().unwrap_or(&none);
    let heartbeat = u8::from(matches!(o.status, "completed" | "duplicate" | "overlap"));
    let metrics: Vec<(&str, &str, f64)> = vec![
        ("Heartbeat", "Count", f64::from(heartbeat)),
        ("CycleDuration", "Milliseconds", o.duration_ms as f64),
        ("RulesEvaluated", "Count", r.rules_evaluated as f64),
        ("InstancesEvaluated", "Count", r.instances_evaluated as f64),
        ("Transitions", "Count", r.transitions.len() as f64),
        ("NotificationsSent", "Count", r.notifications_sent as f64),
        ("PublishFailures", "Count", r.publish_failures as f64),
        (
            "Errors",
            "Count",
            (r.errors.len() + usize::from(o.status == "failed")) as f64,
        ),
        (
            "CloudWatchCalls",
            "Count",
            (after.cloudwatch - before.cloudwatch) as f64,
        ),
        (
            "DynamoDBCalls",
            "Count",
            (after.dynamodb - before.dynamodb) as f64,
        ),
        ("SNSCalls", "Count", (after.sns - before.sns) as f64),
    ];
    emf_line(&deps.settings.function_name, wall_now() * 1000, o, &metrics)
}

/// Builds the EMF JSON (pure, for tests).
pub fn emf_line(
    function: &str,
    timestamp_ms: i64,
    o: &Outcome,
    metrics: &[(&str, &str, f64)],
) -> String {
    let mut root = serde_json::Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Firebell",
                "Dimensions": [["Function"]],
                "Metrics": metrics.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("Function".into(), Value::from(function));
    root.insert("tick".into(), Value::from(o.tick));
    root.insert("status".into(), Value::from(o.status));
    for (name, _, v) in metrics {
        root.insert((*name).into(), json!(v));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_a_table_and_parse_numbers() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Settings::from_lookup(env(&[])).unwrap_err(),
            "FIREBELL_TABLE is not set (the DynamoDB table holding alert state)"
        );
        let s = Settings::from_lookup(env(&[
            ("FIREBELL_TABLE", "t"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
        ]))
        .unwrap();
        assert_eq!(s.config_dir, PathBuf::from("/opt/config"));
        assert_eq!((s.safety_margin_ms, s.max_tick_age_secs), (5000, 60));
        assert_eq!(s.function_name, "f");
        assert_eq!(
            Settings::from_lookup(env(&[
                ("FIREBELL_TABLE", "t"),
                ("FIREBELL_SAFETY_MARGIN_MS", "soon")
            ]))
            .unwrap_err(),
            "FIREBELL_SAFETY_MARGIN_MS=\"soon\" is not a whole number"
        );
    }

    #[test]
    fn tick_comes_from_the_schedule_aligned_to_the_minute() {
        let e: TickEvent = serde_json::from_str(
            r#"{"source":"firebell.schedule","scheduled_time":"2026-11-23T15:48:00Z","execution_id":"x","attempt":"1"}"#,
        )
        .unwrap();
        assert_eq!(e.tick(0).unwrap(), 1_795_448_880);
        let rule: TickEvent = serde_json::from_str(
            r#"{"time":"2026-11-23T15:48:07Z","detail-type":"Scheduled Event"}"#,
        )
        .unwrap();
        assert_eq!(rule.tick(0).unwrap(), 1_795_448_880);
        assert_eq!(
            TickEvent::default().tick(1_795_448_899).unwrap(),
            1_795_448_880
        );
        assert!(
            serde_json::from_str::<TickEvent>(r#"{"scheduled_time":"yesterday"}"#)
                .unwrap()
                .tick(0)
                .unwrap_err()
                .starts_with("scheduled time \"yesterday\" is not RFC 3339")
        );
    }

    #[test]
    fn a_deadline_that_is_no_unix_time_counts_from_now() {
        let now = UNIX_EPOCH + Duration::from_millis(1_795_448_880_123);
        // Lambda: absolute Unix milliseconds, kept as they are.
        let real = now + Duration::from_secs(50);
        assert_eq!(effective_deadline(real, now), real);
        let past = now - Duration::from_secs(1);
        assert_eq!(effective_deadline(past, now), past);
        // `cargo lambda watch`: the timeout, 600000 ms.
        let emulated = UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(
            effective_deadline(emulated, now),
            now + Duration::from_secs(600)
        );
    }

    #[test]
    fn emf_line_declares_every_metric_under_the_function_dimension() {
        let o = Outcome {
            tick: 60,
            status: "completed",
            report: None,
            duration_ms: 12,
        };
        let line = emf_line(
            "fn",
            1000,
            &o,
            &[
                ("Heartbeat", "Count", 1.0),
                ("CycleDuration", "Milliseconds", 12.0),
            ],
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Firebell");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Function"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "Heartbeat"
        );
        assert_eq!(v["Function"], "fn");
        assert_eq!(v["Heartbeat"], 1.0);
        assert_eq!(v["CycleDuration"], 12.0);
    }
}
