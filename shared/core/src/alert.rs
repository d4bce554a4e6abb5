//! Alerts as the notification pipeline sees them: one per alert instance
//! (rule + labels) that is firing, or that resolved and still has to be told.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Labels, MetricSpec, Op, Unit};
use crate::series::Epoch;

/// The label firebell adds to the alert of an instance without data.
pub const ALERTSTATE_LABEL: &str = "alertstate";
/// The `alertname` of firebell's own alerts (self-monitoring); no rule may
/// be named so.
pub const SELF_ALERTNAME: &str = "FirebellUnhealthy";
/// Its value: `alertstate=nodata`.
pub const NODATA: &str = "nodata";

/// `labels` plus `alertstate=nodata`: the labels of an instance's NoData alert.
pub fn nodata_labels(labels: &Labels) -> Labels {
    let mut out = labels.clone();
    out.insert(ALERTSTATE_LABEL.to_string(), NODATA.to_string());
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// What an alert is about, beyond its labels: everything a message needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id of the instance: hash of its labels (see [`fingerprint`]).
    pub fingerprint: String,
    /// `alertname` (the rule name), the rule's labels and per-instance labels
    /// (expanded dimensions; `alertstate=nodata` for a NoData alert).
    pub labels: Labels,
    /// Annotation templates of the rule, not yet rendered.
    pub annotations: BTreeMap<String, String>,
    pub status: AlertStatus,
    /// When the condition started to hold (the first breaching datapoint).
    pub active_since: Epoch,
    /// When the alert started firing.
    pub fired_at: Epoch,
    /// When it resolved.
    pub resolved_at: Option<Epoch>,
    /// The latest evaluated value, if any.
    pub value: Option<f64>,
    /// The highest (for `>`) or lowest (for `<`) value while firing.
    pub peak: Option<f64>,
    pub op: Op,
    pub threshold: f64,
    pub unit: Unit,
    /// Recent datapoints, oldest first, for sparklines and "recent values".
    pub recent: Vec<(Epoch, Option<f64>)>,
    /// The rule's expression, and its metrics (for console deep links).
    pub expression: String,
    pub metrics: BTreeMap<String, MetricSpec>,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// Stable fingerprint of a label set: 16 hex digits of FNV-1a 64 over
/// `name=value` pairs in sorted order, separated by 0xff.
pub fn fingerprint(labels: &Labels) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for (k, v) in labels {
        k.bytes().for_each(&mut eat);
        eat(0xfe);
        v.bytes().for_each(&mut eat);
        eat(0xff);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_label_sensitive() {
        let a: Labels = [
            ("alertname".into(), "X".into()),
            ("team".into(), "p".into()),
        ]
        .into();
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.insert("team".into(), "q".into());
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
    }

    #[test]
    fn nodata_labels_add_alertstate() {
        let a: Labels = [("alertname".into(), "X".into())].into();
        let n = nodata_labels(&a);
        assert_eq!(n.get("alertstate").map(String::as_str), Some("nodata"));
        assert_eq!(n.get("alertname").map(String::as_str), Some("X"));
        assert_eq!(n.len(), 2);
        assert_ne!(fingerprint(&a), fingerprint(&n));
    }
}
