//! What firebell remembers after the fact: the history of state
//! transitions, notifications sent and cycles that wrote, and the one
//! notification record every output shares (`firebell backtest`, `demo
//! --json`, `run --jsonl`, `history`, the noise report).
//!
//! History entries are stored under `history#<YYYY-MM-DD>` (the UTC day of
//! their time), sort key `<time, 10 digits>#<kind>#<id>`, each with an
//! expiry (the retention, DynamoDB TTL). They are written only by cycles
//! that already write: a quiet cycle still writes nothing.

use firebell_core::alert::AlertStatus;
use firebell_core::model::Labels;
use firebell_core::series::Epoch;
use firebell_core::text::rfc3339;
use firebell_notify::Delivered;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Transition;

/// The severity label value of a page.
pub const PAGE_SEVERITY: &str = "page";

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

    /// The JSON object `firebell backtest --format json` prints.
    pub fn to_json(&self) -> Value {
        json!({
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleRecord {
    pub tick: Epoch,
    /// Wall time the cycle took, in milliseconds (0 when the caller has no clock).
    pub duration_ms: u64,
    pub rules_evaluated: usize,
    pub instances_evaluated: usize,
    pub transitions: usize,
    pub notifications: usize,
    /// The cycle's reported problems, as text.
    pub errors: Vec<String>,
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
