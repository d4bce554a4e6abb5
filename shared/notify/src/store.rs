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
/// The most an outbox record may weigh (store items are limited to 400 KB):
/// above it the record drops the alerts' recent datapoints, then lists
/// fewer alerts (the rest are counted), see `dispatch`.
pub(crate) const OUTBOX_MAX_BYTES: usize = 300 * 1024;
/// The most a group log may weigh; above it, it keeps fewer alert copies
/// (see [`GroupLog::pack`]).
pub(crate) const GROUP_LOG_MAX_BYTES: usize = 350 * 1024;
/// Bytes of full alert copies a group log keeps in `notified`; further
/// alerts are kept as fingerprints only (`notified_refs`).
pub(crate) const NOTIFIED_COPIES_BYTES: usize = 64 * 1024;
/// Entries of `resolved_told` / `muted_seen` kept as JSON maps; further
/// entries are packed (`<16 hex fingerprint><8 hex fired_at>`).
pub(crate) const PLAIN_ENTRIES: usize = 100;

/// `<receiver>:<16 hex digits of SHA-256(route path, group labels)>`. Short,
/// and valid as an SNS FIFO MessageGroupId.
pub fn group_key(receiver: &str, route_path: &str, group_labels: &Labels) -> String {
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
    /// A big group's further `notified` alerts, as fingerprints only
    /// (concatenated 16-hex-digit fingerprints); see [`GroupLog::pack`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notified_refs: String,
    /// Further `resolved_told` entries, packed: `<fingerprint><fired_at as 8 hex digits>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resolved_told_refs: String,
    /// Further `muted_seen` entries, packed as `resolved_told_refs`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub muted_seen_refs: String,
}

/// How hard [`GroupLog::pack`] squeezes a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Squeeze {
    /// Full copies up to [`NOTIFIED_COPIES_BYTES`], fingerprints after.
    Normal,
    /// No full copies: fingerprints only.
    RefsOnly,
    /// Also forget `resolved_told` / `muted_seen` beyond [`PLAIN_ENTRIES`]
    /// (the price: a resolution may be told twice).
    Forget,
}

/// A stub alert standing for a fingerprint in `notified_refs`: firing, with
/// no labels (so it is never rendered; see `dispatch`).
fn stub(fingerprint: &str) -> Alert {
    Alert {
        fingerprint: fingerprint.to_string(),
        labels: Labels::new(),
        annotations: BTreeMap::new(),
        status: firebell_core::alert::AlertStatus::Firing,
        active_since: 0,
        fired_at: 0,
        resolved_at: None,
        value: None,
        peak: None,
        op: firebell_core::model::Op::Gt,
        threshold: 0.0,
        unit: firebell_core::model::Unit::default(),
        recent: Vec::new(),
        expression: String::new(),
        metrics: BTreeMap::new(),
    }
}

/// Whether `alert` is a stub from `notified_refs` (it cannot be rendered).
pub(crate) fn is_stub(alert: &Alert) -> bool {
    alert.labels.is_empty()
}

fn is_fingerprint(fp: &str) -> bool {
    fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Moves the entries of `map` past the first [`PLAIN_ENTRIES`] into
/// `packed` when they pack (a 16-hex fingerprint, a `fired_at` in `u32`).
fn pack_epochs(map: &mut BTreeMap<String, Epoch>, packed: &mut String, forget: bool) {
    let mut kept = 0;
    map.retain(|fp, at| {
        if kept < PLAIN_ENTRIES {
            kept += 1;
            return true;
        }
        if forget {
            return false;
        }
        match u32::try_from(*at) {
            Ok(at) if is_fingerprint(fp) => {
                packed.push_str(fp);
                packed.push_str(&format!("{at:08x}"));
                false
            }
            _ => true,
        }
    });
}

fn unpack_epochs(packed: &mut String, map: &mut BTreeMap<String, Epoch>) {
    let text = std::mem::take(packed);
    for chunk in text.as_bytes().chunks_exact(24) {
        let (Ok(fp), Ok(at)) = (
            std::str::from_utf8(&chunk[..16]),
            std::str::from_utf8(&chunk[16..]),
        ) else {
            continue;
        };
        if let Ok(at) = u32::from_str_radix(at, 16) {
            map.entry(fp.to_string()).or_insert(Epoch::from(at));
        }
    }
}

impl GroupLog {
    /// The log as stored: past [`NOTIFIED_COPIES_BYTES`] of alert copies
    /// (less with a harder `squeeze`), `notified` alerts are kept as
    /// fingerprints, and past [`PLAIN_ENTRIES`] the told/muted maps are
    /// packed, so a group of 10,000 alerts makes a log of about 250 KB.
    pub(crate) fn pack(&self, squeeze: Squeeze) -> GroupLog {
        let mut out = self.clone();
        let budget = if squeeze == Squeeze::Normal {
            NOTIFIED_COPIES_BYTES
        } else {
            0
        };
        let mut used = 0usize;
        let mut refs = std::mem::take(&mut out.notified_refs);
        out.notified.retain(|fp, a| {
            if !is_fingerprint(fp) {
                return true;
            }
            if !is_stub(a) && used < budget {
                let size = serde_json::to_string(a).map_or(usize::MAX, |s| s.len() + fp.len() + 4);
                if used.saturating_add(size) <= budget {
                    used += size;
                    return true;
                }
                // Once one does not fit, the rest are references.
                used = budget;
            }
            refs.push_str(fp);
            false
        });
        out.notified_refs = refs;
        let forget = squeeze == Squeeze::Forget;
        pack_epochs(&mut out.resolved_told, &mut out.resolved_told_refs, forget);
        pack_epochs(&mut out.muted_seen, &mut out.muted_seen_refs, forget);
        out
    }

    /// The log as decided on: what [`GroupLog::pack`] stored, unpacked
    /// (fingerprint-only alerts become stubs, see [`is_stub`]).
    pub(crate) fn unpack(mut self) -> GroupLog {
        let refs = std::mem::take(&mut self.notified_refs);
        for chunk in refs.as_bytes().chunks_exact(16) {
            if let Ok(fp) = std::str::from_utf8(chunk) {
                self.notified
                    .entry(fp.to_string())
                    .or_insert_with(|| stub(fp));
            }
        }
        unpack_epochs(&mut self.resolved_told_refs, &mut self.resolved_told);
        unpack_epochs(&mut self.muted_seen_refs, &mut self.muted_seen);
        self
    }
}

impl GroupLog {
    /// Nothing to tell or track: a closed group.
    pub(crate) fn is_idle(&self) -> bool {
        self.notified.is_empty()
            && self.notified_refs.is_empty()
            && self.resolved_told.is_empty()
            && self.resolved_told_refs.is_empty()
            && self.muted_seen.is_empty()
            && self.muted_seen_refs.is_empty()
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
