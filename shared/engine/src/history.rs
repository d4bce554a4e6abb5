//! What firebell remembers after the fact: the history of state
//! transitions, notifications sent and cycles that wrote, and the one
//! notification record every output shares (`firebell backtest`, `demo
//! --json`, `run --jsonl`, `history`, the noise report).
//!
//! History is stored in pages: one cycle's entries (its transitions, its
//! notifications, its own record) packed into as few items as fit
//! ([`PAGE_BYTES`] each), under `history#<YYYY-MM-DD>` (the UTC day of the
//! tick), sort key `<tick, 10 digits>#page#<n>`, each with an expiry (the
//! retention; DynamoDB TTL). They are written only by cycles that already
//! write, through the cycle's lease: a quiet cycle still writes nothing, and
//! a 10,000-alert incident adds a few dozen items, not 10,000.
//!
//! A failed history write is reported ([`crate::CycleError::History`]) and
//! never stops the cycle: alerting first, the record after.

use firebell_core::alert::AlertStatus;
use firebell_core::decode::Decoder;
use firebell_core::model::Labels;
use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;
use firebell_core::text::rfc3339;
use firebell_notify::Delivered;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{CycleReport, EngineError, Transition};

/// The config section: `history: {enabled: true, retention: 90d}`.
pub const SECTION: &str = "history";

/// The most a page's JSON takes (DynamoDB's item limit is 400 KB).
pub const PAGE_BYTES: usize = 256 * 1024;

/// The most alerts a stored notification lists (the rest are counted in
/// `more_alerts`): a 10,000-alert page stays one small entry.
pub const MAX_STORED_ALERTS: usize = 50;

/// The `history:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySettings {
    /// Record history (default true).
    pub enabled: bool,
    /// How long entries are kept, in seconds (default 90 days).
    pub retention_secs: Epoch,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            enabled: true,
            retention_secs: DEFAULT_RETENTION_SECS,
        }
    }
}

impl HistorySettings {
    /// Decodes the section: `enabled` (bool), `retention` (1d to 400d).
    pub fn decode(d: &mut Decoder<'_>, node: &marked_yaml::Node) -> HistorySettings {
        let mut out = HistorySettings::default();
        let Some(mut f) = d.fields(node, SECTION) else {
            return out;
        };
        if let Some(n) = f.opt("enabled")
            && let Some(b) = d.bool(n, "enabled")
        {
            out.enabled = b;
        }
        if let Some(n) = f.opt("retention")
            && let Some(v) = d.duration(n, "retention")
        {
            let secs = v.as_secs();
            if (86_400..=MAX_READ_DAYS as u64 * 86_400).contains(&secs) {
                out.retention_secs = secs as Epoch;
            } else {
                d.error(
                    n,
                    format!(
                        "retention must be between 1d and {MAX_READ_DAYS}d, found {}",
                        firebell_core::decode::format_duration(v)
                    ),
                );
            }
        }
        f.finish(d);
        out
    }
}

/// The partition key prefix of history entries: `history#<YYYY-MM-DD>`.
pub const PK_PREFIX: &str = "history#";

/// How long history is kept unless the config says otherwise: 90 days.
pub const DEFAULT_RETENTION_SECS: Epoch = 90 * 86_400;

/// The most days one [`read`] walks (a year and a bit).
pub const MAX_READ_DAYS: Epoch = 400;

const DAY: Epoch = 86_400;

/// The partition of the UTC day of `t`: `history#2026-11-26`.
pub fn day_pk(t: Epoch) -> String {
    let day = rfc3339(t.div_euclid(DAY) * DAY);
    format!("{PK_PREFIX}{}", &day[..10])
}

/// The key of one entry: its day's partition, sort key
/// `<time, 10 digits>#<kind>#<id>` (time order within the day).
pub fn key(at: Epoch, kind: &str, id: &str) -> Key {
    Key::new(day_pk(at), format!("{:010}#{kind}#{id}", at.max(0)))
}

/// Every history entry with a time in `[since, until]`, in the order the
/// cycles wrote them. Walks one partition per UTC day (at most
/// [`MAX_READ_DAYS`], the latest ones).
pub async fn read(
    store: &dyn StateStore,
    since: Epoch,
    until: Epoch,
) -> Result<Vec<HistoryEntry>, EngineError> {
    let mut out = Vec::new();
    if until < since {
        return Ok(out);
    }
    let first = since
        .div_euclid(DAY)
        .max(until.div_euclid(DAY) - MAX_READ_DAYS + 1);
    for day in first..=until.div_euclid(DAY) {
        let mut items = store.query(&day_pk(day * DAY), "").await?;
        items.sort_by(|a, b| a.sk.cmp(&b.sk));
        for item in items {
            let page: Page = crate::keys::decode(&item)?;
            out.extend(
                page.entries
                    .into_iter()
                    .filter(|e| (since..=until).contains(&e.at())),
            );
        }
    }
    Ok(out)
}

/// The severity label value of a page.
pub const PAGE_SEVERITY: &str = "page";

/// The schema of [`Notification::to_json`]: the CLI's notification record
/// (not the SNS payload, `firebell.notification/v1`).
pub const RECORD_SCHEMA: &str = "firebell.notification-record/v1";

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifiedAlert {
    pub alertname: String,
    pub status: AlertStatus,
    pub labels: Labels,
    pub value: Option<f64>,
}

/// One notification of one group to one receiver (its messages to each of
/// the receiver's topics counted once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The cycle that sent it.
    pub at: Epoch,
    pub receiver: String,
    pub destinations: Vec<String>,
    pub group_key: String,
    /// The group's status: firing if any alert in it fires.
    pub status: AlertStatus,
    /// The first alert's name.
    pub alertname: String,
    /// The first alert's `severity` label (or the group's).
    pub severity: Option<String>,
    pub subject: String,
    pub group_labels: Labels,
    /// The alerts it lists, firing first.
    pub alerts: Vec<NotifiedAlert>,
    /// A later notification of a group already notified in this episode.
    pub update: bool,
    /// Alerts of the notification not listed in `alerts` (a stored
    /// history entry lists at most [`MAX_STORED_ALERTS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_alerts: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Notification {
    /// The notification the engine delivered in the cycle at `at`.
    pub fn of(at: Epoch, d: &Delivered) -> Notification {
        let n = &d.notification;
        let alerts: Vec<NotifiedAlert> = n
            .firing
            .iter()
            .chain(&n.resolved)
            .map(|a| NotifiedAlert {
                alertname: a.name().to_string(),
                status: a.status,
                labels: a.labels.clone(),
                value: a.value.filter(|v| v.is_finite()),
            })
            .collect();
        let first = alerts.first();
        Notification {
            at,
            receiver: n.receiver.clone(),
            destinations: d.messages.iter().map(|m| m.destination.clone()).collect(),
            group_key: n.group_key.clone(),
            status: n.status,
            alertname: first.map(|a| a.alertname.clone()).unwrap_or_default(),
            severity: first
                .and_then(|a| a.labels.get("severity"))
                .or_else(|| n.group_labels.get("severity"))
                .filter(|s| !s.is_empty())
                .cloned(),
            subject: d
                .messages
                .first()
                .map(|m| m.subject.clone())
                .unwrap_or_default(),
            group_labels: n.group_labels.clone(),
            alerts,
            update: n.update,
            more_alerts: n.more_firing + n.more_resolved,
        }
    }

    /// A firing notification of severity [`PAGE_SEVERITY`] (updates of an
    /// incident already paged included).
    pub fn is_page(&self) -> bool {
        self.status == AlertStatus::Firing && self.severity.as_deref() == Some(PAGE_SEVERITY)
    }

    /// The first notification of an incident that pages: not an update.
    pub fn wakes_someone(&self) -> bool {
        self.is_page() && !self.update
    }

    /// The first alert's labels.
    pub fn labels(&self) -> Labels {
        self.alerts
            .first()
            .map(|a| a.labels.clone())
            .unwrap_or_default()
    }

    /// The first alert's value.
    pub fn value(&self) -> Option<f64> {
        self.alerts.first().and_then(|a| a.value)
    }

    /// Whether an alert of `rule` is in it.
    pub fn mentions(&self, rule: &str) -> bool {
        self.alertname == rule || self.alerts.iter().any(|a| a.alertname == rule)
    }

    /// The notification record every CLI output prints (`firebell demo`,
    /// `run` and `backtest` with `-o json`): schema [`RECORD_SCHEMA`],
    /// published as `docs/schemas/notification-record.schema.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "schema": RECORD_SCHEMA,
            "at": rfc3339(self.at),
            "receiver": self.receiver,
            "status": self.status.as_str(),
            "alertname": self.alertname,
            "labels": self.labels(),
            "value": self.value(),
            "severity": self.severity,
            "subject": self.subject,
            "group_labels": self.group_labels,
            "destinations": self.destinations,
            "alerts": self.alerts.iter().map(|a| json!({
                "alertname": a.alertname,
                "status": a.status.as_str(),
                "labels": a.labels,
                "value": a.value,
            })).collect::<Vec<_>>(),
            "group_key": self.group_key,
            "update": self.update,
        })
    }

    /// What identifies a notification across two backtests of the same
    /// history: when, to whom, which group and status (not the subject,
    /// which shows thresholds a config change may alter).
    pub fn key(&self) -> (Epoch, &str, &'static str, &str, &Labels) {
        (
            self.at,
            &self.receiver,
            self.status.as_str(),
            &self.alertname,
            &self.group_labels,
        )
    }
}

/// One cycle that wrote, as history keeps it (quiet cycles write nothing,
/// so they are not in it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CycleRecord {
    pub tick: Epoch,
    /// Wall time the cycle took, in milliseconds (0 when the caller has no clock).
    pub duration_ms: u64,
    pub rules_evaluated: usize,
    pub instances_evaluated: usize,
    pub transitions: usize,
    pub notifications: usize,
    /// The version of the config it ran ([`crate::Config::version`]).
    #[serde(default)]
    pub config_version: String,
    /// Items the cycle wrote before its history.
    #[serde(default)]
    pub store_writes: usize,
    /// Some due rule could not be evaluated (see `CycleReport::incomplete`).
    #[serde(default)]
    pub incomplete: bool,
    /// The deadline stopped it early.
    #[serde(default)]
    pub stopped_early: bool,
    /// The cycle's reported problems, as text.
    pub errors: Vec<String>,
}

/// One stored item: entries of one cycle.
#[derive(Debug, Serialize, Deserialize)]
struct Page {
    entries: Vec<HistoryEntry>,
}

/// The history entries of a cycle that wrote: its transitions, the
/// notifications it delivered (alerts capped at [`MAX_STORED_ALERTS`]) and
/// its own record.
pub(crate) fn entries_of(
    report: &CycleReport,
    duration_ms: u64,
    config_version: &str,
) -> Vec<HistoryEntry> {
    let mut out: Vec<HistoryEntry> = report
        .transitions
        .iter()
        .cloned()
        .map(HistoryEntry::Transition)
        .collect();
    out.extend(report.delivered.iter().map(|d| {
        let mut n = Notification::of(report.tick, d);
        if n.alerts.len() > MAX_STORED_ALERTS {
            n.more_alerts += n.alerts.len() - MAX_STORED_ALERTS;
            n.alerts.truncate(MAX_STORED_ALERTS);
        }
        HistoryEntry::Notification(n)
    }));
    out.push(HistoryEntry::Cycle(CycleRecord {
        tick: report.tick,
        duration_ms,
        rules_evaluated: report.rules_evaluated,
        instances_evaluated: report.instances_evaluated,
        transitions: report.transitions.len(),
        notifications: report.delivered.len(),
        config_version: config_version.to_string(),
        store_writes: report.store_writes,
        incomplete: report.incomplete,
        stopped_early: report.stopped_early,
        errors: report.errors.iter().map(ToString::to_string).collect(),
    }));
    out
}

/// Packs `entries` into pages of at most [`PAGE_BYTES`] of JSON each: the
/// stored items' data (what [`read`] decodes).
pub fn pages(entries: Vec<HistoryEntry>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 0;
    for e in entries {
        let text = crate::keys::encode(&e);
        if !current.is_empty() && size + text.len() + 1 > PAGE_BYTES {
            out.push(format!("{{\"entries\":[{}]}}", current.join(",")));
            current.clear();
            size = 0;
        }
        size += text.len() + 1;
        current.push(text);
    }
    if !current.is_empty() {
        out.push(format!("{{\"entries\":[{}]}}", current.join(",")));
    }
    out
}

/// Writes a cycle's entries as pages expiring after `retention`. Returns
/// the number of items written. (The pages of a tick are its writer's: a
/// repeated write of the same tick replaces them. `writer_id` tells the
/// stages of one tick apart: empty for the whole cycle and the delivery
/// stage, `2-4-` for shard 2 of 4.)
pub(crate) async fn record(
    writer: &dyn StateStore,
    entries: Vec<HistoryEntry>,
    tick: Epoch,
    writer_id: &str,
    retention: Epoch,
) -> Result<usize, StoreError> {
    let mut written = 0;
    for (n, data) in pages(entries).into_iter().enumerate() {
        let key = key(tick, "page", &format!("{writer_id}{n:04}"));
        let item = Item {
            pk: key.pk,
            sk: key.sk,
            version: 1,
            data,
            expires_at: Some(tick + retention),
        };
        writer.put(item, Expect::Any).await?;
        written += 1;
    }
    Ok(written)
}

impl HistoryEntry {
    /// When it happened: the transition's datapoint, the notification's
    /// cycle, the cycle's tick.
    pub fn at(&self) -> Epoch {
        match self {
            HistoryEntry::Transition(t) => t.event.at(),
            HistoryEntry::Notification(n) => n.at,
            HistoryEntry::Cycle(c) => c.tick,
        }
    }
}

/// One entry of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryEntry {
    /// An alert instance changed state.
    Transition(Transition),
    /// A notification was sent (published to every topic of its receiver).
    Notification(Notification),
    /// A cycle that wrote something.
    Cycle(CycleRecord),
}
