//! The evaluator Lambda's tested handler. `main.rs` reads settings and config
//! once, builds the AWS adapters and the engine once, and hands each
//! invocation to [`handle`] with [`Deps`]: the cycle to run (the engine), the
//! API-call counters (the AWS adapters) and the clock, all behind traits, so
//! the handler runs in tests on the in-memory adapters and a manual clock.
//!
//! One invocation = one evaluation cycle as of the scheduled tick:
//! - the tick is the event's `scheduled_time` (EventBridge Scheduler), or
//!   `time` (an EventBridge scheduled rule), or the invocation time;
//! - a tick older than [`Settings::max_tick_age_secs`] is refused (a stale
//!   tick must never run: the next one is already due);
//! - a tick more than [`Settings::max_tick_skew_secs`] ahead of the clock is
//!   refused too ([`Status::Future`]): recorded as the last tick, it would
//!   make every later tick look done. The engine gets the clock's now next
//!   to the tick, so a future last tick already recorded is taken as clock
//!   skew (reported, evaluated), never as "every tick is a duplicate";
//! - the cycle stops cleanly [`Settings::safety_margin_ms`] before the
//!   invocation deadline; the outbox and the next cycle finish the work;
//! - one CloudWatch Embedded Metric Format line per invocation ([`emf`])
//!   carries the cycle's figures and, when the cycle completed, the heartbeat
//!   the watchdog alarm watches ([`Status::heartbeat`]). A skipped cycle
//!   (duplicate, overlap) does not beat: a table that skips every tick
//!   must turn the watchdog red.
//!
//! "Now" (the tick's age, the deadline, the duration, the EMF timestamp)
//! always comes from [`Deps::clock`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use firebell_aws::AwsAdapters;
use firebell_core::Timestamp;
use firebell_core::ports::Clock;
use firebell_core::series::Epoch;
use firebell_engine::deployed::{Deployed, Refresh};
use firebell_engine::{Config, CycleReport, Engine, EngineError, Shard, Skip, Stage};
use serde::Serialize;
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
    /// Refuse ticks more than this ahead of the clock
    /// (`FIREBELL_MAX_TICK_SKEW_SECS`, default 300: five minutes).
    pub max_tick_skew_secs: i64,
    /// Where the deployed config lives (`FIREBELL_APPCONFIG_APPLICATION`,
    /// `_ENVIRONMENT`, `_PROFILE`: all three or none). `None`: the bundled
    /// config only.
    pub appconfig: Option<firebell_aws::appconfig::ConfigIds>,
    /// The topics the function may publish to (`FIREBELL_ALLOWED_TOPICS`,
    /// comma-separated): a deployed config naming another does not load.
    pub allowed_topics: Option<Vec<String>>,
    /// How long a deployment may still roll back once it reached the
    /// function, in seconds (`FIREBELL_APPCONFIG_DEPLOY_MINUTES` +
    /// `FIREBELL_APPCONFIG_BAKE_MINUTES` + 1 minute).
    pub settle_secs: Epoch,
    /// The names of this stack's sentinel alarms start with it
    /// (`FIREBELL_SENTINEL_PREFIX`, default `firebell-sentinel-`): the only
    /// alarms the function lists, creates or deletes.
    pub sentinel_prefix: String,
}

/// The default of [`Settings::max_tick_skew_secs`]: five minutes.
pub const DEFAULT_MAX_TICK_SKEW_SECS: i64 = 300;

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
            max_tick_skew_secs: i64::try_from(num(
                "FIREBELL_MAX_TICK_SKEW_SECS",
                DEFAULT_MAX_TICK_SKEW_SECS as u64,
            )?)
            .unwrap_or(DEFAULT_MAX_TICK_SKEW_SECS),
            appconfig: firebell_aws::appconfig::ids_from_env(&get)?,
            allowed_topics: firebell_aws::appconfig::allowed_topics_from_env(&get),
            settle_secs: firebell_aws::appconfig::settle_secs_from_env(&get)?,
            sentinel_prefix: firebell_aws::sentinel_prefix(
                get(firebell_aws::SENTINEL_PREFIX_ENV).as_deref(),
            )
            .map_err(|e| format!("{}: {e}", firebell_aws::SENTINEL_PREFIX_ENV))?,
        })
    }
}

/// The scheduled event: the tick is its minute.
pub use firebell_core::text::ScheduledEvent as TickEvent;

/// The stage an event asks for: `"shard": k, "shards": n` one shard's
/// evaluation, `"stage": "deliver"` the delivery stage after them, neither
/// the whole cycle.
pub fn stage_of(event: &TickEvent) -> Result<Stage, String> {
    match (event.stage.as_deref(), event.shard, event.shards) {
        (None, None, None | Some(1)) => Ok(Stage::Whole),
        (None, Some(k), Some(n)) => Shard::new(k, n).map(Stage::Shard),
        (None, Some(k), None) => Err(format!(
            "shard {k} without \"shards\": expected the shard count with the shard"
        )),
        (None, None, Some(n)) => Err(format!(
            "\"shards\": {n} without \"shard\" or \"stage\": expected one of them"
        )),
        (Some("deliver"), None, shards) => {
            let shards = shards.unwrap_or(1);
            Shard::new(1, shards)?;
            Ok(Stage::Deliver { shards })
        }
        (Some("deliver"), Some(k), _) => Err(format!(
            "\"stage\": \"deliver\" with \"shard\": {k}: the delivery stage is not a shard's"
        )),
        (Some(other), _, _) => Err(format!(
            "unknown \"stage\": {other:?}: expected \"deliver\" (or none)"
        )),
    }
}

/// How an invocation ended: the `status` of the returned JSON and of the EMF
/// line (`snake_case`: `completed`, `stopped_early`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The cycle ran to its end.
    Completed,
    /// The deadline stopped the cycle; the outbox and the next cycle finish the work.
    StoppedEarly,
    /// The tick was already done.
    Duplicate,
    /// Another cycle holds the lease or wrote meanwhile; this one did nothing.
    Overlap,
    /// The tick was older than [`Settings::max_tick_age_secs`]: refused, no cycle ran.
    Stale,
    /// The tick was more than [`Settings::max_tick_skew_secs`] ahead of the
    /// clock: refused, no cycle ran.
    Future,
    /// The cycle failed (the invocation returns an error).
    Failed,
}

impl Status {
    /// The status of a cycle that returned `report`.
    pub fn of(report: &CycleReport) -> Status {
        match report.skipped {
            Some(Skip::Duplicate) => Status::Duplicate,
            Some(Skip::Overlap) => Status::Overlap,
            None if report.stopped_early => Status::StoppedEarly,
            None => Status::Completed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::StoppedEarly => "stopped_early",
            Status::Duplicate => "duplicate",
            Status::Overlap => "overlap",
            Status::Stale => "stale",
            Status::Future => "future",
            Status::Failed => "failed",
        }
    }

    /// Whether the EMF line carries `Heartbeat` 1: only when the cycle
    /// completed. A duplicate or an overlap did no evaluation: were they to
    /// beat, a table that makes every tick a duplicate would keep the
    /// watchdog green while nothing is evaluated (the schedule runs one
    /// cycle a minute, so a healthy function beats every minute anyway).
    pub fn heartbeat(self) -> bool {
        matches!(self, Status::Completed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the handler returns (also logged).
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub tick: Epoch,
    /// `whole cycle`, `shard 2/4`, `delivery stage after 4 shard(s)`.
    pub stage: String,
    pub status: Status,
    pub report: Option<CycleReport>,
    pub duration_ms: u64,
}

/// Runs one evaluation cycle as of a tick: the [`Engine`] (or a fake in tests).
#[async_trait]
pub trait RunCycle: Send + Sync {
    /// As [`Engine::run_stage_at`]: the tick, the clock's now, the stage.
    async fn run_cycle(
        &self,
        tick: Epoch,
        clock_now: Epoch,
        stage: Stage,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError>;

    /// Runs `config` from the next cycle on (a newly deployed config).
    fn use_config(&self, _config: Config) {}

    /// Sets the config problem the next cycles report (`None` clears it):
    /// [`Engine::set_config_problem`].
    fn set_config_problem(&self, _problem: Option<String>) {}

    /// The running config's version.
    fn config_version(&self) -> Option<String> {
        None
    }
}

#[async_trait]
impl RunCycle for Engine {
    async fn run_cycle(
        &self,
        tick: Epoch,
        clock_now: Epoch,
        stage: Stage,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        Engine::run_stage_at(self, tick, clock_now, stage, should_stop).await
    }

    fn set_config_problem(&self, problem: Option<String>) {
        Engine::set_config_problem(self, problem);
    }

    fn config_version(&self) -> Option<String> {
        Some(self.config().version.clone())
    }
}

/// An [`Engine`] whose config can be switched between cycles: each cycle
/// runs the engine current when it starts, so a switch never lands
/// mid-cycle.
#[derive(Debug)]
pub struct Switching {
    engine: std::sync::RwLock<Arc<Engine>>,
}

impl Switching {
    pub fn new(engine: Engine) -> Switching {
        Switching {
            engine: std::sync::RwLock::new(Arc::new(engine)),
        }
    }

    /// The engine the next cycle runs.
    pub fn current(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[async_trait]
impl RunCycle for Switching {
    async fn run_cycle(
        &self,
        tick: Epoch,
        clock_now: Epoch,
        stage: Stage,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        let engine = self.current();
        engine
            .run_stage_at(tick, clock_now, stage, should_stop)
            .await
    }

    fn use_config(&self, config: Config) {
        let next = Arc::new(self.current().with_config(Arc::new(config)));
        match self.engine.write() {
            Ok(mut e) => *e = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    fn set_config_problem(&self, problem: Option<String>) {
        self.current().set_config_problem(problem);
    }

    fn config_version(&self) -> Option<String> {
        Some(self.current().config().version.clone())
    }
}

/// API calls made so far, by service; the EMF line reports each service's
/// calls during the invocation as `<service>Calls`.
pub trait ApiCalls: Send + Sync {
    fn calls(&self) -> BTreeMap<&'static str, u64>;
}

impl ApiCalls for AwsAdapters {
    /// `CloudWatch`, `DynamoDB`, `SNS`.
    fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.api_calls()
    }
}

/// The AWS adapters' calls and the AppConfig source's (`AppConfig`).
#[derive(Debug)]
pub struct AwsCalls {
    pub adapters: Arc<AwsAdapters>,
    pub appconfig: Option<Arc<firebell_aws::appconfig::DeployedConfigSource>>,
}

impl ApiCalls for AwsCalls {
    fn calls(&self) -> BTreeMap<&'static str, u64> {
        let mut calls = self.adapters.api_calls();
        if let Some(a) = &self.appconfig {
            calls.insert("AppConfig", a.calls());
        }
        calls
    }
}

/// What the handler needs, behind traits; `main.rs` wires the AWS adapters.
pub struct Deps {
    pub settings: Settings,
    /// The engine.
    pub cycle: Arc<dyn RunCycle>,
    /// The adapters' API-call counters.
    pub api_calls: Arc<dyn ApiCalls>,
    /// "Now" (the wall clock in the Lambda).
    pub clock: Arc<dyn Clock>,
    /// The deployed config, polled before each cycle (`None`: the bundled
    /// config only).
    pub deployed: Option<Arc<Deployed>>,
}

impl fmt::Debug for Deps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// One invocation's result, before [`handle`] prints and returns it.
#[derive(Debug)]
pub struct Invocation {
    pub outcome: Outcome,
    /// The EMF line ([`emf`]) for stdout.
    pub emf: String,
    /// Why the cycle failed (status [`Status::Failed`]).
    pub error: Option<EngineError>,
}

impl Invocation {
    /// The handler's answer: the outcome, or the failure's message.
    pub fn into_result(self) -> Result<Outcome, String> {
        match self.error {
            None => Ok(self.outcome),
            Some(e) => Err(format!("cycle {} failed: {e}", self.outcome.tick)),
        }
    }
}

/// Handles one invocation: runs it ([`invoke`]), prints its EMF line, logs a
/// failure. `deadline` is the invocation's deadline.
pub async fn handle(
    deps: &Deps,
    event: TickEvent,
    deadline: SystemTime,
) -> Result<Outcome, String> {
    let invocation = invoke(deps, event, deadline).await?;
    println!("{}", invocation.emf);
    if let Some(e) = &invocation.error {
        let tick = invocation.outcome.tick;
        tracing::error!(tick, error = %e, retryable = e.is_retryable(), "cycle failed");
    }
    invocation.into_result()
}

/// Runs one invocation without printing: the tick (an error when the event's
/// time is not RFC 3339), the stale- and future-tick checks, the cycle with its deadline,
/// the outcome and the EMF line.
pub async fn invoke(
    deps: &Deps,
    event: TickEvent,
    deadline: SystemTime,
) -> Result<Invocation, String> {
    let clock = deps.clock.as_ref();
    let started = clock.now();
    let now = started.as_second();
    let tick = event.minute(now)?;
    let stage = stage_of(&event)?;
    let stage_name = stage.to_string();
    let age = now - tick;
    let before = deps.api_calls.calls();
    if age > deps.settings.max_tick_age_secs {
        let outcome = Outcome {
            tick,
            stage: stage_name,
            status: Status::Stale,
            report: None,
            duration_ms: elapsed_ms(clock, started),
        };
        tracing::warn!(tick, age, "refusing a stale tick");
        return Ok(finish(deps, outcome, &before, None));
    }
    let ahead = tick.saturating_sub(now);
    if ahead > deps.settings.max_tick_skew_secs {
        let outcome = Outcome {
            tick,
            stage: stage_name,
            status: Status::Future,
            report: None,
            duration_ms: elapsed_ms(clock, started),
        };
        tracing::warn!(
            tick,
            now,
            ahead_secs = ahead,
            max_skew_secs = deps.settings.max_tick_skew_secs,
            "refusing a tick ahead of the clock (a wrong scheduled_time?)"
        );
        return Ok(finish(deps, outcome, &before, None));
    }
    if let Some(deployed) = &deps.deployed {
        refresh_config(deps.cycle.as_ref(), deployed, now).await;
    }
    let margin = Duration::from_millis(deps.settings.safety_margin_ms);
    let deadline = effective_deadline(deadline, system_time(clock.now()));
    let stop_at = deadline.checked_sub(margin).unwrap_or(deadline);
    let should_stop = || system_time(clock.now()) >= stop_at;
    let result = deps.cycle.run_cycle(tick, now, stage, &should_stop).await;
    let duration_ms = elapsed_ms(clock, started);
    match result {
        Ok(report) => {
            let status = Status::of(&report);
            for e in &report.errors {
                tracing::warn!(
                    tick,
                    error = %e,
                    retryable = e.is_retryable(),
                    rule = e.rule(),
                    group = e.group(),
                    "cycle problem"
                );
            }
            let outcome = Outcome {
                tick,
                stage: stage_name,
                status,
                report: Some(report),
                duration_ms,
            };
            tracing::info!(
                tick,
                stage = %outcome.stage,
                status = status.as_str(),
                duration_ms,
                config = %deps.cycle.config_version().unwrap_or_default(),
                summary = %summary(&outcome),
                "cycle finished"
            );
            let mut inv = finish(deps, outcome, &before, None);
            if stage != Stage::Whole {
                // A stage answers Step Functions, whose states carry at most
                // 256 KB: its report stays in the log and the EMF line.
                inv.outcome.report = None;
            }
            Ok(inv)
        }
        Err(e) => {
            let outcome = Outcome {
                tick,
                stage: stage_name,
                status: Status::Failed,
                report: None,
                duration_ms,
            };
            Ok(finish(deps, outcome, &before, Some(e)))
        }
    }
}

/// Between cycles: polls the deployed config (at most one call, when due),
/// switches to a new one that loads, and hands the problem, if any, to the
/// engine (a config that did not load pages ops while the last good one
/// runs).
pub async fn refresh_config(cycle: &dyn RunCycle, deployed: &Deployed, now: Epoch) {
    match deployed.refresh(now).await {
        Refresh::Switch(running) => {
            for note in &running.notes {
                tracing::warn!(note = %note, "deployed config");
            }
            let from = cycle.config_version().unwrap_or_default();
            tracing::info!(
                from = %from,
                to = %running.config.version,
                origin = %running.origin,
                rules = running.config.rules.rules.len(),
                "switching to the deployed config"
            );
            cycle.use_config(running.config);
        }
        Refresh::Keep { notes } => {
            for note in &notes {
                tracing::error!(note = %note, "deployed config");
            }
        }
    }
    cycle.set_config_problem(deployed.problem());
}

/// The outcome with its EMF line: API calls since `before`, stamped now.
fn finish(
    deps: &Deps,
    outcome: Outcome,
    before: &BTreeMap<&'static str, u64>,
    error: Option<EngineError>,
) -> Invocation {
    let after = deps.api_calls.calls();
    let delta: BTreeMap<&'static str, u64> = after
        .iter()
        .map(|(service, n)| {
            let was = before.get(service).copied().unwrap_or(0);
            (*service, n.saturating_sub(was))
        })
        .collect();
    let timestamp_ms = deps.clock.now().as_second() * 1000;
    let emf = emf(&deps.settings, &outcome, &delta, timestamp_ms);
    Invocation {
        outcome,
        emf,
        error,
    }
}

/// Milliseconds on `clock` since `started` (0 if it went back).
fn elapsed_ms(clock: &dyn Clock, started: Timestamp) -> u64 {
    u64::try_from(clock.now().duration_since(started).as_millis()).unwrap_or(0)
}

/// `t` as a [`SystemTime`] (every jiff timestamp is one on the platforms
/// Lambda runs on; the Unix epoch otherwise).
fn system_time(t: Timestamp) -> SystemTime {
    SystemTime::try_from(t).unwrap_or(UNIX_EPOCH)
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

/// The invocation's Embedded Metric Format line: namespace `Firebell`,
/// dimension `Function` ([`Settings::function_name`]), stamped
/// `timestamp_ms`. `Heartbeat` is 1 when [`Status::heartbeat`]; `Errors`
/// counts the cycle's errors, plus one when it failed; `api_calls` are the
/// calls made during the invocation, by service, reported as `<service>Calls`.
pub fn emf(
    settings: &Settings,
    o: &Outcome,
    api_calls: &BTreeMap<&'static str, u64>,
    timestamp_ms: i64,
) -> String {
    let none = CycleReport::default();
    let r = o.report.as_ref().unwrap_or(&none);
    let errors = r.errors.len() + usize::from(o.status == Status::Failed);
    let mut metrics: Vec<(String, &str, f64)> = vec![
        (
            "Heartbeat".into(),
            "Count",
            f64::from(u8::from(o.status.heartbeat())),
        ),
        ("CycleDuration".into(), "Milliseconds", o.duration_ms as f64),
        ("RulesEvaluated".into(), "Count", r.rules_evaluated as f64),
        (
            "InstancesEvaluated".into(),
            "Count",
            r.instances_evaluated as f64,
        ),
        ("Transitions".into(), "Count", r.transitions.len() as f64),
        (
            "NotificationsSent".into(),
            "Count",
            r.notifications_sent as f64,
        ),
        ("PublishFailures".into(), "Count", r.publish_failures as f64),
        ("Errors".into(), "Count", errors as f64),
    ];
    for (service, n) in api_calls {
        metrics.push((format!("{service}Calls"), "Count", *n as f64));
    }
    let metrics: Vec<(&str, &str, f64)> = metrics
        .iter()
        .map(|(n, u, v)| (n.as_str(), *u, *v))
        .collect();
    emf_line(&settings.function_name, timestamp_ms, o, &metrics)
}

/// Builds the EMF JSON of `metrics` (name, unit, value).
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
    root.insert("status".into(), Value::from(o.status.as_str()));
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
        assert_eq!(
            (
                s.safety_margin_ms,
                s.max_tick_age_secs,
                s.max_tick_skew_secs
            ),
            (5000, 60, 300)
        );
        assert_eq!(s.function_name, "f");
        assert_eq!(s.sentinel_prefix, firebell_core::sentinel::DEFAULT_PREFIX);
        let s = Settings::from_lookup(env(&[
            ("FIREBELL_TABLE", "t"),
            ("FIREBELL_SENTINEL_PREFIX", "prod-fb-"),
        ]))
        .unwrap();
        assert_eq!(s.sentinel_prefix, "prod-fb-");
        assert!(
            Settings::from_lookup(env(&[
                ("FIREBELL_TABLE", "t"),
                ("FIREBELL_SENTINEL_PREFIX", "two words")
            ]))
            .unwrap_err()
            .starts_with("FIREBELL_SENTINEL_PREFIX: sentinel prefix \"two words\"")
        );
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
        assert_eq!(e.minute(0).unwrap(), 1_795_448_880);
        let rule: TickEvent = serde_json::from_str(
            r#"{"time":"2026-11-23T15:48:07Z","detail-type":"Scheduled Event"}"#,
        )
        .unwrap();
        assert_eq!(rule.minute(0).unwrap(), 1_795_448_880);
        assert_eq!(
            TickEvent::default().minute(1_795_448_899).unwrap(),
            1_795_448_880
        );
        assert!(
            serde_json::from_str::<TickEvent>(r#"{"scheduled_time":"yesterday"}"#)
                .unwrap()
                .minute(0)
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
            stage: "whole cycle".to_string(),
            tick: 60,
            status: Status::Completed,
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
