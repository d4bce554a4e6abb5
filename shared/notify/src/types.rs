//! Types shared by the pipeline stages: the validated notification config
//! (receivers, the routing tree with its [`Timing`], inhibit rules, the
//! silence policy, routing tests) that `config` decodes and the stages read,
//! and what the dispatcher hands to the renderer.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::{Labels, Origin};
use firebell_core::series::Epoch;

use crate::matcher::Matcher;
use crate::timeinterval::TimeInterval;

/// Alertmanager's defaults.
pub(crate) const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub(crate) const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
/// Default longest silence.
pub(crate) const DEFAULT_MAX_SILENCE: Duration = Duration::from_secs(7 * 86_400);

/// When a group's notifications go out: the first `group_wait` after its
/// first firing alert, then at most every `group_interval` when its content
/// changed, and every `repeat_interval` while it fires unchanged. Set on a
/// route (inherited by its children), carried by the route an alert
/// reached, and remembered by the group's log (as whole seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    #[serde(with = "seconds")]
    pub group_wait: Duration,
    #[serde(with = "seconds")]
    pub group_interval: Duration,
    #[serde(with = "seconds")]
    pub repeat_interval: Duration,
}

impl Default for Timing {
    /// Alertmanager's defaults: 30s, 5m, 4h.
    fn default() -> Self {
        Timing {
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        }
    }
}

/// Seconds of a [`Duration`], saturating, for adding to an [`Epoch`].
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A [`Duration`] stored as whole seconds (a negative number reads as 0).
mod seconds {
    use super::*;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(secs(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = i64::deserialize(d)?;
        Ok(Duration::from_secs(u64::try_from(v).unwrap_or(0)))
    }
}

/// Which labels split a route's alerts into groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// `["..."]`: every label, so one group per alert.
    All,
    /// These labels (empty: one group for the whole route).
    Labels(Vec<String>),
}

impl GroupBy {
    /// The group's labels for an alert: the grouped-by labels it has.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }
}

impl std::fmt::Display for GroupBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupBy::All => f.write_str("[...]"),
            GroupBy::Labels(l) => write!(f, "[{}]", l.join(", ")),
        }
    }
}

/// A node of the routing tree, with inherited settings already applied
/// (`receiver`, `group_by` and the [`Timing`] come from the parent when not
/// set; the time interval lists are not inherited, as in Alertmanager).
#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    pub matchers: Vec<Matcher>,
    pub routes: Vec<Route>,
    /// `continue`: keep matching later siblings after this route matched.
    pub continue_matching: bool,
    pub group_by: GroupBy,
    pub timing: Timing,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    /// Where the route's mapping starts.
    pub origin: Origin,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            receiver: String::new(),
            matchers: Vec::new(),
            routes: Vec::new(),
            continue_matching: false,
            group_by: GroupBy::Labels(Vec::new()),
            timing: Timing::default(),
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            origin: Origin::default(),
        }
    }
}

/// A firing alert matching `source_matchers` mutes alerts matching
/// `target_matchers` that have the same values for the `equal` labels.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    pub equal: Vec<String>,
    pub origin: Origin,
}

/// How silences may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilencePolicy {
    /// The longest allowed silence (default 7 days).
    pub max_duration: Duration,
    /// Resolved notices of silenced alerts are still sent (default true).
    pub resolved_pass_through: bool,
}

impl Default for SilencePolicy {
    fn default() -> Self {
        SilencePolicy {
            max_duration: DEFAULT_MAX_SILENCE,
            resolved_pass_through: true,
        }
    }
}

/// An expectation checked when the config is built: these labels reach
/// these receivers.
#[derive(Debug, Clone)]
pub struct RoutingTest {
    pub labels: Labels,
    pub receivers: Vec<String>,
    pub origin: Origin,
}

/// The validated notification config.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub receivers: BTreeMap<String, Receiver>,
    pub route: Route,
    pub inhibit_rules: Vec<InhibitRule>,
    pub time_intervals: BTreeMap<String, TimeInterval>,
    pub silence_policy: SilencePolicy,
    pub routing_tests: Vec<RoutingTest>,
    /// Every receiver topic with where it is written (for checks against a
    /// deployment's allowed topics, `firebell validate --env`).
    pub topic_refs: Vec<TopicRef>,
}

/// A topic of a receiver, where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRef {
    pub receiver: String,
    pub topic: String,
    pub origin: firebell_core::model::Origin,
}

impl NotifyConfig {
    /// Every distinct topic of every receiver, sorted.
    pub fn topics(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .receivers
            .values()
            .flat_map(|r| r.topics.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The working hours of `receiver`: its `working_hours` interval, or
    /// 09:00-18:00 Monday to Friday in its `time_zone` (UTC for an unknown
    /// receiver or zone).
    pub fn working_hours(&self, receiver: &str) -> TimeInterval {
        let r = self.receivers.get(receiver);
        if let Some(name) = r.and_then(|r| r.working_hours.as_ref())
            && let Some(t) = self.time_intervals.get(name)
        {
            return t.clone();
        }
        TimeInterval::office_hours(r.map_or("UTC", |r| r.time_zone.as_str()))
    }

    /// True when no notification section was given at all.
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty() && self.route.receiver.is_empty()
    }
}

/// A receiver: a team's destination(s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receiver {
    pub name: String,
    /// SNS topic ARNs (or, in the local mode, any destination name).
    pub topics: Vec<String>,
    /// IANA time zone name used for times in messages, e.g. `Europe/Berlin`. Default `UTC`.
    pub time_zone: String,
    /// The time interval (of `time_intervals`) of the team's working hours:
    /// pages outside it are counted as out of hours by the noise report.
    /// `None`: 09:00-18:00 Monday to Friday in `time_zone`
    /// ([`NotifyConfig::working_hours`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_hours: Option<String>,
    /// Send a notice when a group's alerts resolve.
    pub send_resolved: bool,
    pub message: MessageOptions,
}

/// Per-receiver message options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageOptions {
    /// Also emit the AWS Chatbot custom-notification format (as the `default` body
    /// is then the Chatbot JSON, as Chatbot requires).
    pub chatbot: bool,
    /// Template overrides (minijinja source); `None` uses the built-in defaults.
    pub subject_template: Option<String>,
    pub body_template: Option<String>,
    /// AWS region for console deep links. Default `us-east-1`.
    pub console_region: Option<String>,
    /// Accounts whose metrics are read by assuming a role (the config's
    /// `accounts:`), not through a monitoring account's links: their
    /// console links carry no `accountId` (it works only in a monitoring
    /// account) and open the signed-in account's console. Set from
    /// `accounts:` when the config loads, not written under `message:`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub role_accounts: std::collections::BTreeSet<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One notification of one group to one receiver, decided by the dispatcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupNotification {
    pub receiver: String,
    /// Stable key of the group: route path + group label values.
    pub group_key: String,
    /// The labels the group is grouped by, with their values.
    pub group_labels: Labels,
    /// Firing if any alert in it fires, else resolved.
    pub status: AlertStatus,
    /// Firing alerts of the group (all of them, not just new ones; in a
    /// stored notification, at most what a message can list: see
    /// `more_firing`).
    pub firing: Vec<Alert>,
    /// Alerts resolved since the group's last notification (as `firing`,
    /// capped when stored: see `more_resolved`).
    pub resolved: Vec<Alert>,
    /// Firing alerts of the group left out of `firing` (a big group's
    /// stored notification keeps only the alerts a message can list); a
    /// message counts them ("… and N more").
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_firing: usize,
    /// Resolved alerts left out of `resolved`, likewise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_resolved: usize,
    /// Extra lines for the reader, e.g. "Silence 3f2a by alice ended; 2 alerts still firing".
    pub notes: Vec<String>,
    /// Sequence number of this notification within its group (1, 2, ...).
    pub seq: u64,
    /// Decision time.
    pub at: Epoch,
    /// An update of a group already notified in this episode (new alerts
    /// joining, alerts resolving, a reminder), not the incident's first
    /// notification: one incident, one page. Messages carry it as the SNS
    /// attribute `update` (`true`/`false`), so a pager subscription can take
    /// only the first with a filter policy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub update: bool,
}

impl GroupNotification {
    /// Firing alerts, listed or not.
    pub fn firing_count(&self) -> usize {
        self.firing.len().saturating_add(self.more_firing)
    }

    /// Resolved alerts, listed or not.
    pub fn resolved_count(&self) -> usize {
        self.resolved.len().saturating_add(self.more_resolved)
    }

    /// Keeps at most `listed` alerts (firing first, then resolved, the order
    /// a message lists them in) and counts the rest in `more_firing` /
    /// `more_resolved`.
    pub fn cap_listed(&mut self, listed: usize) {
        let keep_firing = self.firing.len().min(listed);
        let keep_resolved = self.resolved.len().min(listed - keep_firing);
        self.more_firing = self
            .more_firing
            .saturating_add(self.firing.len() - keep_firing);
        self.more_resolved = self
            .more_resolved
            .saturating_add(self.resolved.len() - keep_resolved);
        self.firing.truncate(keep_firing);
        self.resolved.truncate(keep_resolved);
    }
}
