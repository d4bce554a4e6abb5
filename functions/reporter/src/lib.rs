//! The reporter Lambda's tested handler. `main.rs` reads settings and config
//! once, builds the AWS adapters once, and hands each scheduled invocation
//! to [`handle`] with [`Deps`]: the config, the store and the notifier
//! (the ports of `firebell_core`), the API-call counters and the clock, all
//! behind traits, so the handler runs in tests on the in-memory adapters.
//!
//! One invocation = one noise report ([`firebell_tools::report`]) of the
//! period ([`Settings::period_secs`], default 7 days) ending at the
//! scheduled time:
//! - the history of the period and the silences are read from the table;
//! - every receiver gets its team's report on each of its topics, and the
//!   ops receiver ([`Settings::ops_receiver`], default the routing tree's
//!   root receiver) the whole report with the month's estimated cost
//!   ([`firebell_tools::cost`]) instead of its own team's
//!   ([`messages`]);
//! - each message carries the text (`default`, `email`) and the
//!   `firebell.report/v1` JSON document (`sqs`, `lambda`, `https`) as SNS
//!   `MessageStructure=json` bodies, and the attribute `kind=report`;
//! - a failed publish does not stop the others: the invocation ends
//!   [`Status::Partial`] and counts it in `Errors`;
//! - one Embedded Metric Format line per invocation ([`emf`]), with
//!   `Heartbeat` 1 when every report went out, as the evaluator's.
//!
//! "Now" always comes from [`Deps::clock`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use firebell_aws::AwsAdapters;
use firebell_core::ports::{Clock, Notifier, Outbound, SNS_MAX_SUBJECT_CHARS, StateStore};
use firebell_core::series::Epoch;
use firebell_core::text::{rfc3339, sha256_hex};
use firebell_engine::Config;
use firebell_tools::cost::{Assumptions, Estimate, Prices, dollars, estimate};
use firebell_tools::report::{NoiseReport, ReportInput, report};
use serde::Serialize;
use serde_json::{Value, json};

/// The default period: a week.
pub const DEFAULT_PERIOD_SECS: i64 = 7 * 86_400;

/// Settings from the environment, read once at cold start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bundled config directory (`FIREBELL_CONFIG`, default `/opt/config`).
    pub config_dir: PathBuf,
    /// The DynamoDB table (`FIREBELL_TABLE`).
    pub table: String,
    /// The function's name, the EMF dimension (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: String,
    /// The period reported, ending at the scheduled time
    /// (`FIREBELL_REPORT_PERIOD`, a duration such as `7d`; default 7 days).
    pub period_secs: i64,
    /// The receiver of the ops summary (`FIREBELL_OPS_RECEIVER`); `None`:
    /// the routing tree's root receiver.
    pub ops_receiver: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let table = get("FIREBELL_TABLE")
            .filter(|t| !t.is_empty())
            .ok_or("FIREBELL_TABLE is not set (the DynamoDB table holding the history)")?;
        let period_secs = match get("FIREBELL_REPORT_PERIOD").filter(|v| !v.is_empty()) {
            None => DEFAULT_PERIOD_SECS,
            Some(v) => firebell_core::decode::parse_duration(&v)
                .and_then(|d| i64::try_from(d.as_secs()).ok())
                .filter(|s| *s >= 3600)
                .ok_or_else(|| {
                    format!(
                        "FIREBELL_REPORT_PERIOD={v:?} is not a duration of an hour or more (e.g. 7d)"
                    )
                })?,
        };
        Ok(Settings {
            config_dir: PathBuf::from(
                get("FIREBELL_CONFIG").unwrap_or_else(|| "/opt/config".into()),
            ),
            table,
            function_name: get("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "firebell-reporter".into()),
            period_secs,
            ops_receiver: get("FIREBELL_OPS_RECEIVER").filter(|r| !r.is_empty()),
        })
    }
}

/// The scheduled event: the period ends at its minute.
pub use firebell_core::text::ScheduledEvent as ReportEvent;

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every report went out.
    Completed,
    /// Some messages could not be published (the others went out).
    Partial,
    /// The history could not be read: nothing was sent.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }
}

/// What the handler returns (also logged).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub since: Epoch,
    pub until: Epoch,
    pub status: Status,
    /// Receivers sent a report.
    pub receivers: usize,
    pub messages_sent: usize,
    pub publish_failures: usize,
    pub duration_ms: u64,
}

/// API calls made so far, by service (as the evaluator's).
pub trait ApiCalls: Send + Sync {
    fn calls(&self) -> BTreeMap<&'static str, u64>;
}

impl ApiCalls for AwsAdapters {
    fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.api_calls()
    }
}

/// What the handler needs, behind traits; `main.rs` wires the AWS adapters.
pub struct Deps {
    pub settings: Settings,
    pub config: Arc<Config>,
    pub store: Arc<dyn StateStore>,
    pub notifier: Arc<dyn Notifier>,
    pub api_calls: Arc<dyn ApiCalls>,
    pub clock: Arc<dyn Clock>,
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
    /// Why it failed ([`Status::Failed`]), or the publish failures.
    pub errors: Vec<String>,
}

impl Invocation {
    /// The handler's answer: the outcome, or why nothing was sent.
    pub fn into_result(self) -> Result<Outcome, String> {
        match self.outcome.status {
            Status::Failed => Err(format!(
                "report until {} failed: {}",
                rfc3339(self.outcome.until),
                self.errors.join("; ")
            )),
            _ => Ok(self.outcome),
        }
    }
}

/// Handles one invocation: runs it ([`invoke`]), prints its EMF line, logs
/// failures.
pub async fn handle(deps: &Deps, event: ReportEvent) -> Result<Outcome, String> {
    let invocation = invoke(deps, event).await?;
    println!("{}", invocation.emf);
    for e in &invocation.errors {
        tracing::error!(until = invocation.outcome.until, error = %e, "report");
    }
    invocation.into_result()
}

/// Runs one invocation without printing: reads the period's history and
/// the silences, builds the report, publishes every message.
pub async fn invoke(deps: &Deps, event: ReportEvent) -> Result<Invocation, String> {
    let clock = deps.clock.as_ref();
    let started = clock.now();
    let now = started.as_second();
    let until = event.minute(now)?;
    let since = until - deps.settings.period_secs;
    let calls_before = deps.api_calls.calls();
    let mut outcome = Outcome {
        since,
        until,
        status: Status::Completed,
        receivers: 0,
        messages_sent: 0,
        publish_failures: 0,
        duration_ms: 0,
    };
    let mut errors = Vec::new();
    let read = async {
        let entries = firebell_engine::history::read(deps.store.as_ref(), since, until)
            .await
            .map_err(|e| format!("reading the history: {e}"))?;
        let silences: Vec<_> = firebell_notify::list_silences(deps.store.as_ref(), now)
            .await
            .map_err(|e| format!("reading the silences: {e}"))?
            .into_iter()
            .map(|v| v.silence)
            .collect();
        Ok::<_, String>((entries, silences))
    };
    match read.await {
        Err(e) => {
            outcome.status = Status::Failed;
            errors.push(e);
        }
        Ok((entries, silences)) => {
            let full = report(&ReportInput {
                config: &deps.config,
                entries: &entries,
                silences: &silences,
                since,
                until,
            });
            let cost = estimate(&deps.config, &Prices::default(), &Assumptions::default());
            let ops = deps
                .settings
                .ops_receiver
                .clone()
                .unwrap_or_else(|| deps.config.notify.route.receiver.clone());
            let msgs = messages(&deps.config, &full, &cost, &ops);
            let mut reached = std::collections::BTreeSet::new();
            for m in &msgs {
                match deps.notifier.publish(m).await {
                    Ok(()) => {
                        outcome.messages_sent += 1;
                        reached.insert(m.receiver.clone());
                    }
                    Err(e) => {
                        outcome.publish_failures += 1;
                        errors.push(format!(
                            "publishing the report of {} to {}: {e}",
                            m.receiver, m.destination
                        ));
                    }
                }
            }
            outcome.receivers = reached.len();
            if outcome.publish_failures > 0 {
                outcome.status = Status::Partial;
            }
        }
    }
    let ended = clock.now();
    outcome.duration_ms = u64::try_from(ended.duration_since(started).as_millis()).unwrap_or(0);
    let after = deps.api_calls.calls();
    let used: BTreeMap<&'static str, u64> = after
        .iter()
        .map(|(k, v)| {
            (
                *k,
                v.saturating_sub(calls_before.get(k).copied().unwrap_or(0)),
            )
        })
        .collect();
    let emf = emf(
        &deps.settings,
        &outcome,
        errors.len(),
        &used,
        ended.as_millisecond(),
    );
    Ok(Invocation {
        outcome,
        emf,
        errors,
    })
}

/// The ops summary's cost figures, in USD a month.
pub fn cost_json(c: &Estimate) -> Value {
    json!({
        "total": c.total,
        "lambda": c.lambda,
        "get_metric_data": c.get_metric_data,
        "list_metrics": c.list_metrics,
        "dynamodb": c.dynamodb,
        "sns": c.sns,
        "cloudwatch_alarms": c.cloudwatch_alarms,
    })
}

fn cost_text(c: &Estimate) -> String {
    format!(
        "\nEstimated monthly cost: {} (GetMetricData {}, ListMetrics {}, Lambda {}, DynamoDB {}, SNS {}); the same rules as CloudWatch alarms: {}\n",
        dollars(c.total),
        dollars(c.get_metric_data),
        dollars(c.list_metrics),
        dollars(c.lambda),
        dollars(c.dynamodb),
        dollars(c.sns),
        dollars(c.cloudwatch_alarms),
    )
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The messages of one report, pure: for every receiver with topics, one
/// message per topic; `ops` gets the whole report and the estimated cost,
/// every other receiver its team's report.
pub fn messages(config: &Config, full: &NoiseReport, cost: &Estimate, ops: &str) -> Vec<Outbound> {
    let day = |t: Epoch| rfc3339(t).chars().take(10).collect::<String>();
    let period = format!("{} .. {}", day(full.since), day(full.until));
    let mut out = Vec::new();
    for (name, receiver) in &config.notify.receivers {
        let is_ops = name == ops;
        let (shown, mut text, mut doc) = if is_ops {
            (full.clone(), full.to_text(), full.to_json())
        } else {
            let r = full.only(name);
            let (t, j) = (r.to_text(), r.to_json());
            (r, t, j)
        };
        let subject = if is_ops {
            let pages: usize = shown.teams.iter().map(|t| t.pages).sum();
            let ooh: usize = shown.teams.iter().map(|t| t.pages_out_of_hours).sum();
            format!(
                "firebell ops summary {period}: {pages} pages, {ooh} out of hours, {} a month",
                dollars(cost.total)
            )
        } else {
            let (pages, ooh) = shown
                .teams
                .first()
                .map_or((0, 0), |t| (t.pages, t.pages_out_of_hours));
            format!("firebell noise report {name} {period}: {pages} pages, {ooh} out of hours")
        };
        if is_ops {
            text.push_str(&cost_text(cost));
            if let Some(o) = doc.as_object_mut() {
                o.insert("cost".into(), cost_json(cost));
            }
        }
        let json_body = doc.to_string();
        for topic in &receiver.topics {
            let key = sha256_hex(&format!(
                "report|{name}|{}|{}|{topic}",
                full.since, full.until
            ));
            out.push(Outbound {
                idempotency_key: key,
                group_key: format!("report/{name}"),
                receiver: name.clone(),
                destination: topic.clone(),
                subject: cut(&subject, SNS_MAX_SUBJECT_CHARS),
                bodies: BTreeMap::from([
                    ("default".to_string(), text.clone()),
                    ("email".to_string(), text.clone()),
                    ("sqs".to_string(), json_body.clone()),
                    ("lambda".to_string(), json_body.clone()),
                    ("https".to_string(), json_body.clone()),
                ]),
                attributes: BTreeMap::from([
                    ("kind".to_string(), "report".to_string()),
                    ("receiver".to_string(), name.clone()),
                ]),
            });
        }
    }
    out
}

/// The invocation's Embedded Metric Format line: namespace `Firebell`,
/// dimension `Function`; `Heartbeat` 1 when [`Status::Completed`].
pub fn emf(
    settings: &Settings,
    o: &Outcome,
    errors: usize,
    api_calls: &BTreeMap<&'static str, u64>,
    timestamp_ms: i64,
) -> String {
    let mut metrics: Vec<(String, &str, f64)> = vec![
        (
            "Heartbeat".into(),
            "Count",
            f64::from(u8::from(o.status == Status::Completed)),
        ),
        (
            "ReportDuration".into(),
            "Milliseconds",
            o.duration_ms as f64,
        ),
        ("ReportsSent".into(), "Count", o.messages_sent as f64),
        ("PublishFailures".into(), "Count", o.publish_failures as f64),
        ("Errors".into(), "Count", errors as f64),
    ];
    for (service, n) in api_calls {
        metrics.push((format!("{service}Calls"), "Count", *n as f64));
    }
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
    root.insert(
        "Function".into(),
        Value::from(settings.function_name.as_str()),
    );
    root.insert("since".into(), Value::from(o.since));
    root.insert("until".into(), Value::from(o.until));
    root.insert("status".into(), Value::from(o.status.as_str()));
    for (name, _, v) in &metrics {
        root.insert(name.clone(), json!(v));
    }
    Value::Object(root).to_string()
}

/// No API-call counters (tests, local runs).
#[derive(Debug, Default)]
pub struct NoCalls;

impl ApiCalls for NoCalls {
    fn calls(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebell_core::alert::AlertStatus;
    use firebell_core::diag::Diagnostics;
    use firebell_core::model::Labels;
    use firebell_core::ports::{Expect, Item, Key, StoreError};
    use firebell_core::state::Event;
    use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore};
    use firebell_engine::Transition;
    use firebell_engine::history::{HistoryEntry, Notification, NotifiedAlert, key};

    const CONFIG: &str = r#"
receivers:
  ops: {topics: [arn:aws:sns:us-east-1:111122223333:ops]}
  payments:
    topics: [arn:aws:sns:us-east-1:111122223333:payments, arn:aws:sns:us-east-1:111122223333:payments-chat]
route:
  receiver: ops
  routes:
    - matchers: ['team="payments"']
      receiver: payments
rules:
  - name: PaymentsErrors
    metrics:
      errors: {namespace: Shop, metric: Errors, stat: Sum}
    expression: errors
    condition: {op: ">", threshold: 5}
    for: 2m
    labels: {team: payments, severity: page}
"#;

    /// Monday 2026-11-30 08:00 UTC: the weekly schedule's tick.
    const MONDAY_0800: Epoch = 1_796_025_600;
    /// Saturday 2026-11-28 02:00 UTC.
    const SAT_0200: Epoch = MONDAY_0800 - 2 * 86_400 - 6 * 3600;

    fn settings(ops: Option<&str>) -> Settings {
        Settings {
            config_dir: PathBuf::from("/opt/config"),
            table: "t".into(),
            function_name: "firebell-reporter".into(),
            period_secs: DEFAULT_PERIOD_SECS,
            ops_receiver: ops.map(str::to_string),
        }
    }

    fn config() -> Config {
        let mut diags = Diagnostics::new();
        let c = firebell_engine::load_texts(
            &[("c.yaml".to_string(), CONFIG.to_string())],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        c
    }

    async fn put(store: &dyn StateStore, kind: &str, id: &str, e: &HistoryEntry) {
        let k = key(e.at(), kind, id);
        let item = Item {
            pk: k.pk,
            sk: k.sk,
            version: 1,
            data: firebell_engine::history::pages(vec![e.clone()]).remove(0),
            expires_at: Some(MONDAY_0800 + 90 * 86_400),
        };
        store.put(item, Expect::Absent).await.unwrap();
    }

    fn page(at: Epoch) -> HistoryEntry {
        let labels: Labels = [("alertname", "PaymentsErrors"), ("severity", "page")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HistoryEntry::Notification(Notification {
            at,
            receiver: "payments".into(),
            destinations: vec![],
            group_key: "g".into(),
            status: AlertStatus::Firing,
            alertname: "PaymentsErrors".into(),
            severity: Some("page".into()),
            subject: "s".into(),
            group_labels: Labels::new(),
            alerts: vec![NotifiedAlert {
                alertname: "PaymentsErrors".into(),
                status: AlertStatus::Firing,
                labels,
                value: None,
            }],
            update: false,
            more_alerts: 0,
        })
    }

    fn transition(event: Event) -> HistoryEntry {
        HistoryEntry::Transition(Transition {
            rule: "PaymentsErrors".into(),
            labels: Labels::new(),
            event,
        })
    }

    struct World {
        deps: Deps,
        notifier: Arc<MemoryNotifier>,
    }

    async fn world(store: Option<Arc<dyn StateStore>>, ops: Option<&str>) -> World {
        let clock = Arc::new(ManualClock::at_epoch(MONDAY_0800 + 30));
        let store = match store {
            Some(s) => s,
            None => {
                let s: Arc<dyn StateStore> =
                    Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
                // A page on a Saturday night, over in four minutes; one the week before.
                let t = SAT_0200;
                put(
                    s.as_ref(),
                    "transition",
                    "a",
                    &transition(Event::Fired { at: t, value: None }),
                )
                .await;
                put(s.as_ref(), "notification", "a", &page(t + 60)).await;
                put(
                    s.as_ref(),
                    "transition",
                    "b",
                    &transition(Event::Resolved {
                        at: t + 240,
                        value: None,
                    }),
                )
                .await;
                put(s.as_ref(), "notification", "b", &page(t - 7 * 86_400)).await;
                s
            }
        };
        let notifier = Arc::new(MemoryNotifier::new());
        World {
            deps: Deps {
                settings: settings(ops),
                config: Arc::new(config()),
                store,
                notifier: notifier.clone(),
                api_calls: Arc::new(NoCalls),
                clock,
            },
            notifier,
        }
    }

    fn scheduled() -> ReportEvent {
        ReportEvent {
            time: Some("2026-11-30T08:00:00Z".into()),
            ..ReportEvent::default()
        }
    }

    #[test]
    fn settings_need_a_table_and_a_sound_period() {
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
            "FIREBELL_TABLE is not set (the DynamoDB table holding the history)"
        );
        assert_eq!(
            Settings::from_lookup(env(&[
                ("FIREBELL_TABLE", "t"),
                ("FIREBELL_REPORT_PERIOD", "5m")
            ]))
            .unwrap_err(),
            "FIREBELL_REPORT_PERIOD=\"5m\" is not a duration of an hour or more (e.g. 7d)"
        );
        let s = Settings::from_lookup(env(&[
            ("FIREBELL_TABLE", "t"),
            ("FIREBELL_REPORT_PERIOD", "30d"),
            ("FIREBELL_OPS_RECEIVER", "ops"),
        ]))
        .unwrap();
        assert_eq!(s.period_secs, 30 * 86_400);
        assert_eq!(s.ops_receiver.as_deref(), Some("ops"));
        assert_eq!(s.config_dir, PathBuf::from("/opt/config"));
        let s = Settings::from_lookup(env(&[("FIREBELL_TABLE", "t")])).unwrap();
        assert_eq!((s.period_secs, s.ops_receiver), (DEFAULT_PERIOD_SECS, None));
    }

    #[tokio::test]
    async fn each_team_gets_its_report_on_every_topic_and_ops_the_summary() {
        let w = world(None, None).await;
        let inv = invoke(&w.deps, scheduled()).await.unwrap();
        assert_eq!(inv.errors, Vec::<String>::new());
        let o = &inv.outcome;
        assert_eq!(
            (
                o.status,
                o.since,
                o.until,
                o.receivers,
                o.messages_sent,
                o.publish_failures
            ),
            (
                Status::Completed,
                MONDAY_0800 - 7 * 86_400,
                MONDAY_0800,
                2,
                3,
                0
            )
        );
        let sent = w.notifier.messages();
        let to: Vec<(&str, &str)> = sent
            .iter()
            .map(|m| (m.receiver.as_str(), m.destination.as_str()))
            .collect();
        assert_eq!(
            to,
            [
                ("ops", "arn:aws:sns:us-east-1:111122223333:ops"),
                ("payments", "arn:aws:sns:us-east-1:111122223333:payments"),
                (
                    "payments",
                    "arn:aws:sns:us-east-1:111122223333:payments-chat"
                ),
            ]
        );
        let p = &sent[1];
        assert_eq!(
            p.subject,
            "firebell noise report payments 2026-11-23 .. 2026-11-30: 1 pages, 1 out of hours"
        );
        assert_eq!(p.bodies["default"], p.bodies["email"]);
        assert!(p.bodies["default"].starts_with(
            "Noise report 2026-11-23T08:00:00Z .. 2026-11-30T08:00:00Z\n\nTeam payments (working hours: 09:00-18:00 Monday-Friday UTC)\n  1 notification, 1 page, 1 out of hours, 1 toast (100%)\n"
        ), "{}", p.bodies["default"]);
        let doc: Value = serde_json::from_str(&p.bodies["sqs"]).unwrap();
        assert_eq!(doc["schema"], "firebell.report/v1");
        assert_eq!(doc["teams"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["teams"][0]["toast_pages"], 1);
        assert_eq!(doc.get("cost"), None);
        assert_eq!(p.bodies["lambda"], p.bodies["sqs"]);
        assert_eq!(p.attributes["kind"], "report");
        assert_ne!(sent[1].idempotency_key, sent[2].idempotency_key);

        let ops = &sent[0];
        assert!(
            ops.subject.starts_with(
                "firebell ops summary 2026-11-23 .. 2026-11-30: 1 pages, 1 out of hours, $"
            ),
            "{}",
            ops.subject
        );
        let doc: Value = serde_json::from_str(&ops.bodies["sqs"]).unwrap();
        assert_eq!(doc["teams"].as_array().map(Vec::len), Some(2));
        assert!(doc["cost"]["total"].as_f64().unwrap() > 0.0);
        assert!(ops.bodies["default"].contains("\nEstimated monthly cost: $"));

        let emf: Value = serde_json::from_str(&inv.emf).unwrap();
        assert_eq!(emf["Heartbeat"], 1.0);
        assert_eq!(emf["ReportsSent"], 3.0);
        assert_eq!(emf["status"], "completed");
        assert_eq!(emf["Function"], "firebell-reporter");
    }

    #[tokio::test]
    async fn the_ops_receiver_is_a_setting() {
        let w = world(None, Some("payments")).await;
        invoke(&w.deps, scheduled()).await.unwrap();
        let subjects: Vec<String> = w
            .notifier
            .messages()
            .iter()
            .map(|m| m.subject.clone())
            .collect();
        assert!(
            subjects[0].starts_with("firebell noise report ops "),
            "{subjects:?}"
        );
        assert!(
            subjects[1].starts_with("firebell ops summary "),
            "{subjects:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_publish_does_not_stop_the_others() {
        let w = world(None, None).await;
        w.notifier.fail_next(1);
        let inv = invoke(&w.deps, scheduled()).await.unwrap();
        assert_eq!(inv.outcome.status, Status::Partial);
        assert_eq!(
            (inv.outcome.messages_sent, inv.outcome.publish_failures),
            (2, 1)
        );
        assert_eq!(inv.errors.len(), 1);
        assert!(
            inv.errors[0].starts_with(
                "publishing the report of ops to arn:aws:sns:us-east-1:111122223333:ops: "
            ),
            "{:?}",
            inv.errors
        );
        let emf: Value = serde_json::from_str(&inv.emf).unwrap();
        assert_eq!(
            (emf["Heartbeat"].as_f64(), emf["Errors"].as_f64()),
            (Some(0.0), Some(1.0))
        );
        assert!(inv.into_result().is_ok());
    }

    struct DownStore;

    #[async_trait::async_trait]
    impl StateStore for DownStore {
        async fn get(&self, _: &Key) -> Result<Option<Item>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn batch_get(&self, _: &[Key]) -> Result<Vec<Item>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn put(&self, _: Item, _: Expect) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn query(&self, _: &str, _: &str) -> Result<Vec<Item>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn delete(&self, _: &Key, _: Expect) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn an_unreadable_history_sends_nothing_and_fails() {
        let w = world(Some(Arc::new(DownStore)), None).await;
        let inv = invoke(&w.deps, scheduled()).await.unwrap();
        assert_eq!(inv.outcome.status, Status::Failed);
        assert!(w.notifier.is_empty());
        let emf: Value = serde_json::from_str(&inv.emf).unwrap();
        assert_eq!(
            (emf["Heartbeat"].as_f64(), emf["Errors"].as_f64()),
            (Some(0.0), Some(1.0))
        );
        assert_eq!(
            inv.into_result().unwrap_err(),
            "report until 2026-11-30T08:00:00Z failed: reading the history: store unavailable: down"
        );
    }

    #[tokio::test]
    async fn a_bad_scheduled_time_is_an_error() {
        let w = world(None, None).await;
        let err = invoke(
            &w.deps,
            ReportEvent {
                scheduled_time: Some("monday".into()),
                ..ReportEvent::default()
            },
        )
        .await
        .unwrap_err();
        assert!(
            err.starts_with("scheduled time \"monday\" is not RFC 3339: "),
            "{err}"
        );
    }
}
