//! The pipeline's store layout (the table is in the crate documentation):
//! partitions, sort keys, TTLs, the records kept in the
//! [`StateStore`](firebell_core::ports::StateStore), and the idempotency key
//! every message of a notification carries. One definition each, used by
//! `silence`, `dispatch`, `outbox` and `render`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use firebell_core::alert::Alert;
use firebell_core::model::Labels;
use firebell_core::series::Epoch;
use firebell_core::text::{hex, sha256_hex};

use crate::types::{GroupNotification, Timing};

/// Partition of silence items (sk = the silence id).
pub const PK_SILENCE: &str = "silence";
/// How long a silence item is kept after it ended (5 days, as Alertmanager).
pub const SILENCE_RETENTION: i64 = 5 * 86_400;
/// Partition of group logs (sk = group key).
pub const PK_GROUP: &str = "group";
/// Partition of the outbox (sk = `<group_key>#<seq, 10 digits>`).
pub const PK_OUTBOX: &str = "outbox";
/// Partition of dead letters: sk = `<outbox sk>#<what>` (`item`, or the
/// index of the rejected message).
pub const PK_DEAD_LETTER: &str = "outbox-dead";
/// A closed group's log is kept this long (8 days) so its `seq` continues
/// if the group reopens; longer than an outbox item lives (7 days).
pub const CLOSED_GROUP_TTL: i64 = 8 * 86_400;
/// An outbox item still undelivered after 7 days is dropped by the store.
pub(crate) const OUTBOX_TTL: i64 = 7 * 86_400;
/// Dead letters are kept 14 days.
pub(crate) const DEAD_LETTER_TTL: i64 = 14 * 86_400;
/// Above this size an outbox record is stored without the alerts' recent
/// datapoints (store items are limited to 400 KB).
pub(crate) const OUTBOX_MAX_BYTES: usize = 300 * 1024;

/// `<receiver>:<16 hex digits of SHA-256(route path, group labels)>`. Short,
/// and valid as an SNS FIFO MessageGroupId.
pub(crate) fn group_key(receiver: &str, route_path: &str, group_labels: &Labels) -> String {
    let mut h = Sha256::new();
    h.update(route_path.as_bytes());
    for (k, v) in group_labels {
        h.update([0u8]);
        h.update(k.as_bytes());
        h.update([0xffu8]);
        h.update(v.as_bytes());
    }
    format!("{receiver}:{}", &hex(&h.finalize())[..16])
}

/// The outbox sort key of a group's notification: `<group_key>#<seq, 10 digits>`.
pub(crate) fn outbox_sk(group_key: &str, seq: u64) -> String {
    format!("{group_key}#{seq:010}")
}

/// The group key of an outbox sort key.
pub(crate) fn group_of_outbox_sk(sk: &str) -> &str {
    sk.rsplit_once('#').map(|(g, _)| g).unwrap_or(sk)
}

/// The idempotency key of a notification: SHA-256 (hex) of
/// `receiver|group_key|seq`, the same for every retry and re-decision of it.
pub fn idempotency_key(receiver: &str, group_key: &str, seq: u64) -> String {
    sha256_hex(&format!("{receiver}|{group_key}|{seq}"))
}

/// The idempotency key of message `index` of the `count` messages of a
/// notification whose key is `key`: `key` itself for a single message,
/// else `<key>-<index>`.
pub(crate) fn message_key(key: &str, index: usize, count: usize) -> String {
    if count > 1 {
        format!("{key}-{index}")
    } else {
        key.to_string()
    }
}

/// A silence as remembered by a group log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRef {
    pub id: String,
    pub created_by: String,
}

/// The effective timing of a group's route and its time intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTiming {
    #[serde(flatten)]
    pub timing: Timing,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<String>,
}

/// The notification log of one group (the data of its store item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLog {
    pub group_key: String,
    pub receiver: String,
    pub route_path: String,
    pub group_labels: Labels,
    pub timing: GroupTiming,
    /// Notifications decided so far (never reset, so outbox keys never repeat).
    pub seq: u64,
    /// When the current episode's first visible firing alert was seen
    /// (`group_wait` counts from here); `None` while closed.
    pub open_since: Option<Epoch>,
    /// The last notification of the current episode; `None` while closed.
    pub last_notified: Option<Epoch>,
    /// Alerts told as firing and not yet told resolved (copies without
    /// `recent`, marked resolved once seen resolved), by fingerprint.
    #[serde(default)]
    pub notified: BTreeMap<String, Alert>,
    /// Firing alerts of the group muted by a silence, by fingerprint.
    #[serde(default)]
    pub silenced: BTreeMap<String, SilenceRef>,
    /// Notes for the next notification.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Alerts told as resolved, by fingerprint, with the `fired_at` of the
    /// episode told: an alert that fired and resolved before any notification
    /// could go out (both within one cycle, or within `group_wait`) is told
    /// once, as resolved, instead of never.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved_told: BTreeMap<String, Epoch>,
    /// Alerts seen firing while muted (silenced or inhibited), by
    /// fingerprint, with their `fired_at`: their resolution is not a missed fire.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub muted_seen: BTreeMap<String, Epoch>,
}

impl GroupLog {
    /// Nothing to tell or track: a closed group.
    pub(crate) fn is_idle(&self) -> bool {
        self.notified.is_empty()
            && self.resolved_told.is_empty()
            && self.muted_seen.is_empty()
            && self.silenced.is_empty()
            && self.notes.is_empty()
            && self.open_since.is_none()
    }
}

/// The data of an outbox item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// [`idempotency_key`] of the notification.
    pub idempotency_key: String,
    pub notification: GroupNotification,
    /// How many of the rendered messages were already published.
    #[serde(default)]
    pub published: usize,
    /// Failed delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last retryable failure, as text.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl OutboxRecord {
    pub(crate) fn new(notification: GroupNotification) -> Self {
        OutboxRecord {
            idempotency_key: idempotency_key(
                &notification.receiver,
                &notification.group_key,
                notification.seq,
            ),
            notification,
            published: 0,
            attempts: 0,
            last_error: None,
        }
    }
}

/// A dead letter's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeadLetter {
    pub(crate) reason: String,
    pub(crate) at: Epoch,
    /// The outbox item's data, or the message that was rejected.
    pub(crate) payload: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn idempotency_key_is_sha256_of_receiver_group_and_seq() {
        let key = idempotency_key("r", "g/{a=\"b\"}", 7);
        assert_eq!(key, sha256_hex("r|g/{a=\"b\"}|7"));
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(key, idempotency_key("r", "g/{a=\"b\"}", 7), "stable");
        assert_ne!(key, idempotency_key("r", "g/{a=\"b\"}", 8));
        assert_ne!(key, idempotency_key("s", "g/{a=\"b\"}", 7));
        // A known value: the key is stored and compared by consumers.
        assert_eq!(
            idempotency_key("r", "g", 1),
            "8c98be1fdccd9b6ec0069640ff2eddb823f7545e5d2e27d338c7c8eac5f408a9"
        );
        assert_eq!(message_key("k", 0, 1), "k");
        assert_eq!(message_key("k", 0, 2), "k-0");
        assert_eq!(message_key("k", 1, 2), "k-1");
    }

    #[test]
    fn keys_of_the_layout() {
        let labels: Labels = [("alertname".to_string(), "X".to_string())].into();
        let g = group_key("pay", "root/0", &labels);
        assert!(g.starts_with("pay:"));
        assert_eq!(g.len(), "pay:".len() + 16);
        assert_ne!(g, group_key("pay", "root/1", &labels));
        let sk = outbox_sk(&g, 42);
        assert_eq!(sk, format!("{g}#0000000042"));
        assert_eq!(group_of_outbox_sk(&sk), g);
    }

    #[test]
    fn group_log_format_is_stable() {
        // A log as stored: timing in whole seconds, empty lists left out.
        let stored = r#"{"group_key":"r:0123456789abcdef","receiver":"r","route_path":"root","group_labels":{"alertname":"X"},"timing":{"group_wait":30,"group_interval":300,"repeat_interval":14400,"mute_time_intervals":["night"]},"seq":3,"open_since":100,"last_notified":130,"notified":{},"silenced":{},"notes":[]}"#;
        let log: GroupLog = serde_json::from_str(stored).unwrap();
        assert_eq!(log.timing.timing, Timing::default());
        assert_eq!(log.timing.mute_time_intervals, vec!["night".to_string()]);
        assert!(log.timing.active_time_intervals.is_empty());
        assert_eq!(serde_json::to_string(&log).unwrap(), stored);
    }
}
